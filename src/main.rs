//! `kefu`: one binary for every part of the suite.
//!
//! - `kefu up` — all-in-one, embedded (SQLite, in-memory live state);
//! - `kefu serve <service>` — one service per process (PostgreSQL, Redis);
//! - `kefu migrate <service|all>` — schema migrations;
//! - `kefu admin ...` — tokens and keys; `kefu import ...` — bulk import;
//! - `kefu health ADDR` — gRPC health probe for containers.
#![forbid(unsafe_code)]

mod import;
mod up;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use kefu_kit::{
    auth::{Role, TokenSigner},
    config::{AuthArgs, DatabaseArgs, ServerArgs, TelemetryArgs},
    keys::{self, KeyEntry},
};

#[derive(Parser)]
#[command(name = "kefu", version, about = "kefu (客服): customer-service management for finance & tax firms")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process with embedded storage.
    Up(up::UpArgs),
    /// Run one service (microservices mode).
    Serve {
        #[command(subcommand)]
        service: ServeCommand,
    },
    /// Apply schema migrations.
    Migrate(MigrateArgs),
    /// Tokens and keys.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Bulk import.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Check a kefu server's health (exit 0 when SERVING / HTTP 200).
    Health {
        /// host:port of the gRPC server, or with --http the URL to GET.
        addr: String,
        /// Probe an HTTP URL (the gateway's /healthz) instead of gRPC health.
        #[arg(long)]
        http: bool,
        /// Service to check; empty for the whole server.
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long, default_value = "3s", value_parser = kefu_kit::config::parse_duration)]
        timeout: Duration,
    },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum ServeCommand {
    /// The customers service.
    Customers {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        customers: kefu_customers::CustomersArgs,
        #[command(flatten)]
        telemetry: TelemetryArgs,
        /// Apply migrations before serving.
        #[arg(long, env = "KEFU_MIGRATE")]
        migrate: bool,
    },
    /// The gateway: REST, OpenAPI, login, server-sent events.
    Gateway {
        #[command(flatten)]
        gateway: kefu_gateway::GatewayArgs,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        telemetry: TelemetryArgs,
        /// Apply migrations before serving.
        #[arg(long, env = "KEFU_MIGRATE")]
        migrate: bool,
    },
    /// The tickets service and its SLA sweeper.
    Tickets {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        tickets: kefu_tickets::TicketsArgs,
        #[command(flatten)]
        telemetry: TelemetryArgs,
        /// Apply migrations before serving.
        #[arg(long, env = "KEFU_MIGRATE")]
        migrate: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MigrateTarget {
    Customers,
    Tickets,
    Gateway,
    All,
}

#[derive(Args)]
struct MigrateArgs {
    /// Which service's schema.
    target: MigrateTarget,
    /// Database of the named service (with `customers`).
    #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// With `all`: the customers service's database.
    #[arg(long, env = "KEFU_CUSTOMERS_DATABASE_URL", hide_env_values = true)]
    customers_database_url: Option<String>,
    /// With `all`: the tickets service's database.
    #[arg(long, env = "KEFU_TICKETS_DATABASE_URL", hide_env_values = true)]
    tickets_database_url: Option<String>,
    /// With `all`: the gateway's database.
    #[arg(long, env = "KEFU_GATEWAY_DATABASE_URL", hide_env_values = true)]
    gateway_database_url: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Mint a bearer token for an internal system or a test.
    Token {
        /// Role(s) the token carries.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Staff id (or system name) the token speaks for.
        #[arg(long)]
        staff_id: String,
        /// Lifetime, e.g. 1h or 30d.
        #[arg(long, default_value = "1h", value_parser = kefu_kit::config::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        key: SigningKeyArgs,
    },
    /// Create a login account in the gateway's database.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Staff id the account speaks for (default: the username).
        #[arg(long, default_value = "")]
        staff_id: String,
        /// Password; read from KEFU_NEW_PASSWORD or standard input when not given.
        #[arg(long, env = "KEFU_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// The gateway's database; default: `kefu up`'s in the data directory.
        #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
        data_dir: PathBuf,
    },
    /// Generate a key: a token signing key (with its public key) or a data key.
    Keygen {
        #[arg(value_enum)]
        kind: KeyKind,
        /// Key id prefix.
        #[arg(long, default_value = "kefu")]
        kid: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyKind {
    /// Ed25519 token signing key; prints KEFU_TOKEN_SIGNING_KEY and KEFU_TOKEN_PUBLIC_KEYS.
    Token,
    /// AES-256 data key; prints KEFU_DATA_KEYS.
    Data,
}

#[derive(Args, Clone)]
pub(crate) struct SigningKeyArgs {
    /// Token signing key `KID:BASE64URL`; by default the one `kefu up` keeps in the data directory.
    #[arg(long, env = "KEFU_TOKEN_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// Data directory of `kefu up`.
    #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
    data_dir: PathBuf,
}

impl SigningKeyArgs {
    pub(crate) fn signer(&self) -> anyhow::Result<TokenSigner> {
        let text = match &self.signing_key {
            Some(k) => k.clone(),
            None => {
                let path = up::signing_key_path(&self.data_dir);
                if !path.exists() {
                    anyhow::bail!(
                        "no signing key: set KEFU_TOKEN_SIGNING_KEY or run `kefu up` once so {} exists",
                        path.display()
                    );
                }
                std::fs::read_to_string(&path)?.trim().to_owned()
            }
        };
        let entry = keys::parse_key_list("KEFU_TOKEN_SIGNING_KEY", &text)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("KEFU_TOKEN_SIGNING_KEY: no key"))?;
        TokenSigner::from_entry(&entry)
    }
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import customers from a CSV file (see README for the columns).
    Customers(import::ImportArgs),
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kefu: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kefu: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up(args) => up::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Serve { service } => serve(service).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Admin { command } => admin(command).await.map(|()| ExitCode::SUCCESS),
        Command::Import { what: ImportCommand::Customers(args) } => import::run(args).await,
        Command::Health { addr, http: true, timeout, .. } => http_health(&addr, timeout).await,
        Command::Health { addr, service, timeout, .. } => health(&addr, &service, timeout).await,
    }
}

async fn serve(cmd: ServeCommand) -> anyhow::Result<()> {
    match cmd {
        ServeCommand::Customers { server, auth, db, customers, telemetry, migrate } => {
            let guard = kefu_kit::telemetry::init("kefu-customers", &telemetry)?;
            // Validate every setting before touching the network.
            let verifier = auth.verifier()?;
            let keyring = customers.keyring()?;
            kefu_kit::db::validate_url(&db.database_url)?;
            let pool = kefu_kit::db::connect(&db.database_url, db.database_max_connections).await?;
            if migrate {
                kefu_kit::db::migrate(&pool, &kefu_customers::MIGRATOR).await?;
            }
            let svc = kefu_customers::service(pool, keyring, customers.settings());
            let srv = kefu_kit::server::ServerBuilder::new()
                .add_service(svc, &kefu_customers::ACCESS)
                .bind(&server, verifier)
                .await?;
            tracing::info!(grpc = %srv.local_addr(), admin = %srv.admin_addr(), "customers service listening");
            let shutdown = kefu_kit::shutdown::on_signal();
            let result = srv.run(shutdown).await;
            guard.shutdown().await;
            result
        }
        ServeCommand::Gateway { gateway, db, telemetry, migrate } => {
            let guard = kefu_kit::telemetry::init("kefu-gateway", &telemetry)?;
            kefu_kit::db::validate_url(&db.database_url)?;
            let pool = kefu_kit::db::connect(&db.database_url, db.database_max_connections).await?;
            if migrate {
                kefu_kit::db::migrate(&pool, &kefu_gateway::MIGRATOR).await?;
            }
            let gw = std::sync::Arc::new(kefu_gateway::Gateway::new(&gateway, pool.clone())?);
            let listener = tokio::net::TcpListener::bind(gateway.http_listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {}: {e}", gateway.http_listen))?;
            let admin = tokio::net::TcpListener::bind(gateway.admin_listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for admin HTTP on {}: {e}", gateway.admin_listen))?;
            tracing::info!(http = %listener.local_addr()?, admin = %admin.local_addr()?, "gateway listening");
            let app = kefu_gateway::router(gw, &gateway);
            let shutdown = kefu_kit::shutdown::on_signal();
            // The admin port outlives the public one, so /readyz answers 503
            // while the gateway drains.
            let admin_stop = tokio_util::sync::CancellationToken::new();
            let admin_task = tokio::spawn(kefu_gateway::serve(
                admin,
                kefu_gateway::admin_router(pool, shutdown.clone()),
                admin_stop.clone(),
            ));
            let result = kefu_gateway::serve(listener, app, shutdown).await;
            admin_stop.cancel();
            let _ = admin_task.await;
            guard.shutdown().await;
            result
        }
        ServeCommand::Tickets { server, auth, db, tickets, telemetry, migrate } => {
            let guard = kefu_kit::telemetry::init("kefu-tickets", &telemetry)?;
            let verifier = auth.verifier()?;
            kefu_kit::db::validate_url(&db.database_url)?;
            let pool = kefu_kit::db::connect(&db.database_url, db.database_max_connections).await?;
            if migrate {
                kefu_kit::db::migrate(&pool, &kefu_tickets::MIGRATOR).await?;
            }
            let live = kefu_sla::RedisLiveStore::connect(&tickets.redis_url, tickets.sla_shards, "kefu").await?;
            let owner =
                format!("{}-{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "kefu".into()), std::process::id());
            let sweep = kefu_sla::SweeperConfig { owner, interval: tickets.sla_sweep_interval, ..Default::default() };
            let built = kefu_tickets::build(
                pool,
                std::sync::Arc::new(live),
                std::sync::Arc::new(kefu_sla::SystemClock),
                kefu_tickets::SlaSettings::default(),
                tickets.customers_addr.clone(),
                sweep,
            )
            .await?;
            let srv = kefu_kit::server::ServerBuilder::new()
                .add_service(built.service, &kefu_tickets::ACCESS)
                .bind(&server, verifier)
                .await?;
            tracing::info!(grpc = %srv.local_addr(), admin = %srv.admin_addr(), "tickets service listening");
            let shutdown = kefu_kit::shutdown::on_signal();
            let sweeper = tokio::spawn(built.sweeper.clone().run(shutdown.clone()));
            let result = srv.run(shutdown).await;
            let _ = sweeper.await;
            guard.shutdown().await;
            result
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    type Target = (&'static str, String, &'static sqlx::migrate::Migrator);
    let one = |name: &'static str,
               migrator: &'static sqlx::migrate::Migrator,
               url: Option<String>|
     -> anyhow::Result<Target> {
        let url = url.ok_or_else(|| anyhow::anyhow!("set --database-url (KEFU_DATABASE_URL) for {name}"))?;
        Ok((name, url, migrator))
    };
    let targets: Vec<Target> = match args.target {
        MigrateTarget::Customers => {
            vec![one("customers", &kefu_customers::MIGRATOR, args.database_url.or(args.customers_database_url))?]
        }
        MigrateTarget::Tickets => {
            vec![one("tickets", &kefu_tickets::MIGRATOR, args.database_url.or(args.tickets_database_url))?]
        }
        MigrateTarget::Gateway => {
            vec![one("gateway", &kefu_gateway::MIGRATOR, args.database_url.or(args.gateway_database_url))?]
        }
        MigrateTarget::All => {
            let c = args.customers_database_url.ok_or_else(|| {
                anyhow::anyhow!(
                    "set --customers-database-url (KEFU_CUSTOMERS_DATABASE_URL): each service has its own database"
                )
            })?;
            let t = args
                .tickets_database_url
                .ok_or_else(|| anyhow::anyhow!("set --tickets-database-url (KEFU_TICKETS_DATABASE_URL)"))?;
            let g = args
                .gateway_database_url
                .ok_or_else(|| anyhow::anyhow!("set --gateway-database-url (KEFU_GATEWAY_DATABASE_URL)"))?;
            vec![
                ("customers", c, &kefu_customers::MIGRATOR),
                ("tickets", t, &kefu_tickets::MIGRATOR),
                ("gateway", g, &kefu_gateway::MIGRATOR),
            ]
        }
    };
    for (name, url, migrator) in targets {
        kefu_kit::db::validate_url(&url)?;
        let pool = kefu_kit::db::connect(&url, 1).await?;
        kefu_kit::db::migrate(&pool, migrator).await?;
        pool.close().await;
        println!("migrated {name} ({})", kefu_kit::db::redact(&url));
    }
    Ok(())
}

async fn create_user(
    username: &str,
    roles: &[Role],
    staff_id: &str,
    password: Option<String>,
    database_url: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gateway.db").display()));
    kefu_kit::db::validate_url(&url)?;
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let pool = kefu_kit::db::connect(&url, 1).await?;
    kefu_kit::db::migrate(&pool, &kefu_gateway::MIGRATOR).await?;
    // Only the account store is needed here; no tokens are minted.
    let signer = TokenSigner::from_entry(&KeyEntry::generate("cli"))?;
    let verifier = kefu_kit::auth::TokenVerifier::new(&keys::parse_key_list("k", &signer.public_key())?)?;
    let auth = kefu_gateway::auth::Auth { pool, signer, verifier };
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let account = auth
        .create_account(username, &password, &roles, staff_id)
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    println!("created account {} ({}) with roles {}", account.username, account.id, account.roles.join(", "));
    Ok(())
}

async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::CreateUser { username, roles, staff_id, password, database_url, data_dir } => {
            create_user(&username, &roles, &staff_id, password, database_url, &data_dir).await?;
        }
        AdminCommand::Token { roles, staff_id, ttl, key } => {
            let token = key.signer()?.mint(&staff_id, &roles, ttl)?;
            println!("{token}");
        }
        AdminCommand::Keygen { kind, kid } => match kind {
            KeyKind::Token => {
                let entry = KeyEntry::generate(&kid);
                let signer = TokenSigner::from_entry(&entry)?;
                println!("KEFU_TOKEN_SIGNING_KEY={}", entry.encode());
                println!("KEFU_TOKEN_PUBLIC_KEYS={}", signer.public_key());
            }
            KeyKind::Data => println!("KEFU_DATA_KEYS={}", KeyEntry::generate(&kid).encode()),
        },
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET (the image carries no curl).
async fn http_health(url: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("--http needs an http:// URL"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(host).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(head)) if head.starts_with("HTTP/1.1 200") => {
            println!("OK");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(head)) => {
            eprintln!("kefu health: {url}: {}", head.lines().next().unwrap_or(""));
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(e)) => {
            eprintln!("kefu health: {url}: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!("kefu health: {url}: no answer within {timeout:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn health(addr: &str, service: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let channel = kefu_kit::client::channel(addr)?;
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest { service: service.to_owned() });
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(resp)) => {
            let status = resp.into_inner().status();
            println!("{}", status.as_str_name());
            Ok(if status == ServingStatus::Serving { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Ok(Err(e)) => {
            eprintln!("kefu health: {}: {}", addr, e.message());
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!("kefu health: {addr}: no answer within {timeout:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}
