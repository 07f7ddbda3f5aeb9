//! `kefu up`: every service in one process, SQLite under a data directory,
//! keys generated on first start and kept there.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use clap::Args;
use kefu_kit::{
    auth::TokenSigner,
    config::{LogFormat, ServerArgs, TelemetryArgs},
    keys,
};

#[derive(Args)]
pub(crate) struct UpArgs {
    /// Where kefu keeps its databases and keys.
    #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
    data_dir: PathBuf,
    /// gRPC address of every service.
    #[arg(long, env = "KEFU_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Admin HTTP address (/metrics, /healthz, /readyz).
    #[arg(long, env = "KEFU_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Follow-up visit cycle for new plans, in days.
    #[arg(long, env = "KEFU_FOLLOW_UP_CYCLE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    follow_up_cycle_days: u32,
    #[arg(long, env = "KEFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[arg(long, env = "KEFU_LOG", default_value = "info")]
    log: String,
}

pub(crate) fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("token-signing.key")
}

fn data_keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("data.keys")
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let guard =
        kefu_kit::telemetry::init("kefu", &TelemetryArgs { log_format: args.log_format, log: args.log.clone() })?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", args.data_dir.display()))?;

    let signing = keys::load_or_create(&signing_key_path(&args.data_dir), "up")?;
    let signing = keys::parse_key_list("token signing key", &signing)?;
    let signer = TokenSigner::from_entry(&signing[0])?;
    let verifier = kefu_kit::auth::TokenVerifier::new(&keys::parse_key_list("public key", &signer.public_key())?)?;
    let data_keys = keys::load_or_create(&data_keys_path(&args.data_dir), "up")?;
    let keyring = kefu_customers::DataKeyring::new(&kefu_kit::config::parse_data_keys(&data_keys)?)?;

    let db_url = format!("sqlite://{}", args.data_dir.join("customers.db").display());
    let customers_pool = kefu_kit::db::connect(&db_url, 1).await?;
    kefu_kit::db::migrate(&customers_pool, &kefu_customers::MIGRATOR).await?;
    let customers = kefu_customers::service(
        customers_pool,
        keyring,
        kefu_customers::Settings { follow_up_cycle_days: args.follow_up_cycle_days },
    );

    let mut server_args = ServerArgs::on(args.listen);
    server_args.admin_listen = args.admin_listen;
    let server = kefu_kit::server::ServerBuilder::new().add_service(customers).bind(&server_args, verifier).await?;

    println!("kefu up: data in {}", args.data_dir.display());
    println!("  gRPC   {}  (services: kefu.customers.v1.CustomerService; health and reflection)", server.local_addr());
    println!("  admin  http://{}/metrics", server.admin_addr());
    println!("  token  kefu admin token --role admin --staff-id you --data-dir {}", args.data_dir.display());
    println!("kefu ready");
    let shutdown = kefu_kit::shutdown::on_signal();
    let result = server.run(shutdown).await;
    guard.shutdown().await;
    result
}
