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
    module::{Embedded, embedded_database},
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
    /// REST requests per second allowed to one caller (token or API key).
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_KEY", default_value_t = 50)]
    rate_limit_per_key: u32,
    /// REST requests per second allowed to one client address.
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_ADDR", default_value_t = 100)]
    rate_limit_per_addr: u32,
    /// gRPC requests per second allowed to one person (token subject). 0: no limit.
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_CALLER", default_value_t = 50)]
    rate_limit_per_caller: u32,
    #[arg(long, env = "KEFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[arg(long, env = "KEFU_LOG", default_value = "info")]
    log: String,
}

pub(crate) fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("token-signing.key")
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let guard =
        kefu_kit::telemetry::init("kefu", &TelemetryArgs { log_format: args.log_format, log: args.log.clone() })?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", args.data_dir.display()))?;
    // Databases and keys: for the account running kefu only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| anyhow::anyhow!("cannot make data directory {} private: {e}", args.data_dir.display()))?;
    }

    let signing = keys::load_or_create(&signing_key_path(&args.data_dir), "up")?;
    let signing = keys::parse_key_list("token signing key", &signing)?;
    let signer = TokenSigner::from_entry(&signing[0])?;
    let verifier = kefu_kit::auth::TokenVerifier::new(&keys::parse_key_list("public key", &signer.public_key())?)?;
    let server_args = {
        let mut a = ServerArgs::on(args.listen);
        a.admin_listen = args.admin_listen;
        a.rate_limit_per_caller = args.rate_limit_per_caller;
        a
    };
    // Bound first: the services call each other through this address.
    let listeners = kefu_kit::server::Listeners::bind(&server_args).await?;
    let self_addr = format!("http://{}", listeners.grpc_addr());

    // Every service, each on its own database, on one gRPC server.
    let shutdown = kefu_kit::shutdown::on_signal();
    let mut modules = Vec::new();
    for module in kefu_suite::MODULES {
        let pool = kefu_kit::db::connect(&embedded_database(&args.data_dir, module.name()), 1).await?;
        kefu_kit::db::migrate(&pool, module.migrator()).await?;
        modules.push((*module, pool));
    }
    let embedded = Embedded {
        data_dir: args.data_dir.clone(),
        self_addr: self_addr.clone(),
        service_token: Some(kefu_kit::module::service_tokens(
            std::sync::Arc::new(TokenSigner::from_entry(&signing[0])?),
            "kefu-up",
        )),
        ..Default::default()
    };
    let mut assembly = kefu_kit::module::build_all(modules, "up", &shutdown, &embedded).await?;
    let grpc_names = assembly.services.names().join(", ");
    let server = assembly.services.serve_on(listeners, &server_args, verifier);

    // The gateway, in front of the same gRPC address.
    let gateway_pool = kefu_kit::db::connect(&embedded_database(&args.data_dir, "gateway"), 1).await?;
    kefu_kit::db::migrate(&gateway_pool, &kefu_gateway::MIGRATOR).await?;
    // In kefu up the gateway's metrics join the process-wide /metrics.
    let mut gateway_args =
        kefu_gateway::GatewayArgs::all_in_one(&self_addr, signing[0].encode(), args.http_listen, args.admin_listen);
    gateway_args.cors_origins = args.cors_origins.clone();
    gateway_args.rate_limit_per_key = args.rate_limit_per_key;
    gateway_args.rate_limit_per_addr = args.rate_limit_per_addr;
    gateway_args.audit.audit_keys = Some(embedded.key_file("audit.keys")?);
    kefu_gateway::openapi::set_rpc_roles(kefu_suite::MODULES.iter().flat_map(|m| m.access().iter().copied()));
    let gateway = Arc::new(kefu_gateway::Gateway::new(&gateway_args, gateway_pool.clone())?);
    tokio::spawn(kefu_kit::audit::checkpoints(
        "gateway",
        gateway_pool,
        gateway_args.audit.audit_checkpoint_every,
        shutdown.clone(),
    ));
    let bootstrap = kefu_gateway::bootstrap_admin(&gateway.auth).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {}: {e}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let app = kefu_gateway::router(gateway.clone(), &gateway_args);

    println!("kefu up: data in {}", args.data_dir.display());
    println!("  gRPC   {}  ({grpc_names}; health, reflection)", server.local_addr());
    println!("  HTTP   http://{http_addr}/api/v1  (reference: http://{http_addr}/api/v1/docs)");
    println!("  admin  http://{}/metrics", server.admin_addr());
    println!("  token  kefu admin token --role admin --staff-id you --data-dir {}", args.data_dir.display());
    if let Some(password) = bootstrap {
        println!("  first start: log in as admin with password {password}  (shown once; change it)");
    }
    if let Some(n) = assembly
        .handles
        .iter()
        .find(|(name, _)| *name == "tickets")
        .and_then(|(_, h)| h.downcast_ref::<kefu_tickets::Tickets>())
        .and_then(|t| t.live_view_built)
    {
        println!("  SLA    {n} open targets on the live board");
    }
    println!("kefu ready");
    let tasks: Vec<_> = std::mem::take(&mut assembly.tasks).into_iter().map(tokio::spawn).collect();
    let web = {
        let (gateway, shutdown) = (gateway.clone(), shutdown.clone());
        tokio::spawn(async move { kefu_gateway::serve_public(http, app, &gateway, &gateway_args, shutdown).await })
    };
    let result = server.run(shutdown).await;
    for task in tasks {
        let _ = task.await;
    }
    for last in assembly.finally {
        last.await;
    }
    let _ = web.await;
    guard.shutdown().await;
    result
}
