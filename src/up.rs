//! `kefu up`: every service in one process, SQLite under a data directory,
//! keys generated on first start and kept there.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
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
    /// HTTP address of the gateway (REST, OpenAPI, server-sent events).
    #[arg(long, env = "KEFU_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// Origins allowed by CORS, comma-separated.
    #[arg(long, env = "KEFU_CORS_ORIGINS", default_value = "")]
    cors_origins: String,
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

fn sqlite(data_dir: &Path, service: &str) -> String {
    format!("sqlite://{}", data_dir.join(format!("{service}.db")).display())
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

    let server_args = {
        let mut a = ServerArgs::on(args.listen);
        a.admin_listen = args.admin_listen;
        a
    };
    // Bound first: the services call each other through this address.
    let listeners = kefu_kit::server::Listeners::bind(&server_args).await?;
    let self_addr = format!("http://{}", listeners.grpc_addr());

    let customers_pool = kefu_kit::db::connect(&sqlite(&args.data_dir, "customers"), 1).await?;
    kefu_kit::db::migrate(&customers_pool, &kefu_customers::MIGRATOR).await?;
    let customers = kefu_customers::service(
        customers_pool,
        keyring,
        kefu_customers::Settings { follow_up_cycle_days: args.follow_up_cycle_days },
    );

    let tickets_pool = kefu_kit::db::connect(&sqlite(&args.data_dir, "tickets"), 1).await?;
    kefu_kit::db::migrate(&tickets_pool, &kefu_tickets::MIGRATOR).await?;
    let tickets = kefu_tickets::build(
        tickets_pool,
        Arc::new(kefu_sla::MemoryLiveStore::new(4)),
        Arc::new(kefu_sla::SystemClock),
        kefu_tickets::SlaSettings::default(),
        self_addr.clone(),
        kefu_sla::SweeperConfig { owner: "up".into(), ..Default::default() },
    )
    .await?;

    let server = kefu_kit::server::ServerBuilder::new()
        .add_service(customers, &kefu_customers::ACCESS)
        .add_service(tickets.service, &kefu_tickets::ACCESS)
        .serve_on(listeners, &server_args, verifier);

    // The gateway, in front of the same gRPC address.
    let gateway_pool = kefu_kit::db::connect(&sqlite(&args.data_dir, "gateway"), 1).await?;
    kefu_kit::db::migrate(&gateway_pool, &kefu_gateway::MIGRATOR).await?;
    let gateway_args = kefu_gateway::GatewayArgs {
        http_listen: args.http_listen,
        customers_addr: self_addr.clone(),
        tickets_addr: self_addr,
        token_signing_key: signing[0].encode(),
        token_public_keys: String::new(),
        cors_origins: args.cors_origins.clone(),
        rate_limit_per_key: 50,
        rate_limit_per_addr: 100,
        body_limit: 2 * 1024 * 1024,
        http_timeout: std::time::Duration::from_secs(30),
        // In kefu up the gateway's metrics join the process-wide /metrics.
        admin_listen: args.admin_listen,
    };
    let gateway = Arc::new(kefu_gateway::Gateway::new(&gateway_args, gateway_pool)?);
    let bootstrap = kefu_gateway::bootstrap_admin(&gateway.auth).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {}: {e}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let app = kefu_gateway::router(gateway, &gateway_args);

    println!("kefu up: data in {}", args.data_dir.display());
    println!(
        "  gRPC   {}  (kefu.customers.v1.CustomerService, kefu.tickets.v1.TicketService; health, reflection)",
        server.local_addr()
    );
    println!("  HTTP   http://{http_addr}/api/v1  (reference: http://{http_addr}/api/v1/docs)");
    println!("  admin  http://{}/metrics", server.admin_addr());
    println!("  token  kefu admin token --role admin --staff-id you --data-dir {}", args.data_dir.display());
    if let Some(password) = bootstrap {
        println!("  first start: log in as admin with password {password}  (shown once; change it)");
    }
    println!("kefu ready");
    let shutdown = kefu_kit::shutdown::on_signal();
    let sweeper = tokio::spawn(tickets.sweeper.clone().run(shutdown.clone()));
    let web = tokio::spawn(kefu_gateway::serve(http, app, shutdown.clone()));
    let result = server.run(shutdown).await;
    let _ = sweeper.await;
    let _ = web.await;
    guard.shutdown().await;
    result
}
