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
    config::{DatabaseArgs, TelemetryArgs},
    keys::{self, KeyEntry},
    module::ServeArgs,
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
        service: Box<ServeCommand>,
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
        /// For an `https://` address: the CA to trust and the client
        /// certificate to present.
        #[command(flatten)]
        tls: kefu_kit::tls::ClientTlsArgs,
    },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum ServeCommand {
    /// The customers service.
    Customers {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        customers: kefu_customers::CustomersArgs,
    },
    /// The tickets service and its SLA sweeper.
    Tickets {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        tickets: kefu_tickets::TicketsArgs,
    },
    /// The complaints service (§7).
    Complaints {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        complaints: kefu_complaints::ComplaintsArgs,
    },
    /// The staff directory: people, teams, queues.
    Staff {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        staff: kefu_staff::StaffArgs,
    },
    /// The training service (§4).
    Training {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        training: kefu_training::TrainingArgs,
    },
    /// The performance service (§5).
    Performance {
        #[command(flatten)]
        common: ServeArgs,
        #[command(flatten)]
        performance: kefu_performance::PerformanceArgs,
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
}

#[derive(Args)]
struct MigrateArgs {
    /// Which schemas: service names (staff, customers, tickets, complaints, training, performance, gateway) or `all`.
    #[arg(required = true, value_parser = parse_schema)]
    targets: Vec<String>,
    /// The database, when one schema is named. Otherwise each schema's
    /// database comes from `KEFU_<NAME>_DATABASE_URL`
    /// (`KEFU_CUSTOMERS_DATABASE_URL`, ...) or `--url NAME=URL`.
    #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// A schema's database, `NAME=URL` (repeatable).
    #[arg(long = "url", value_name = "NAME=URL")]
    urls: Vec<String>,
}

fn parse_schema(s: &str) -> Result<String, String> {
    let names: Vec<&str> = kefu_suite::schemas().into_iter().map(|(n, _)| n).collect();
    if s == "all" || names.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("no schema {s:?}; one of: {}, all", names.join(", ")))
    }
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
        /// The password is a temporary one: its holder sets their own before
        /// the first session.
        #[arg(long)]
        must_change_password: bool,
        /// The gateway's database; default: `kefu up`'s in the data directory.
        #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
        data_dir: PathBuf,
        /// The gateway's audit keys; default: `kefu up`'s in the data
        /// directory.
        #[arg(long, env = "KEFU_AUDIT_KEYS", hide_env_values = true)]
        audit_keys: Option<String>,
    },
    /// Wrap every customer's data key under the first key of KEFU_DATA_KEYS
    /// (after putting a new key first), so older keys can then be removed.
    Rewrap {
        /// The customers database; default: `kefu up`'s in the data directory.
        #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Key-encryption keys, the new one first; default: `kefu up`'s.
        #[arg(long, env = "KEFU_DATA_KEYS", hide_env_values = true)]
        data_keys: Option<String>,
        #[arg(long, env = "KEFU_DATA_DIR", default_value = "./kefu-data")]
        data_dir: PathBuf,
    },
    /// Make a private CA and a certificate for each service (TLS and mutual
    /// TLS where no PKI issues them, e.g. Docker Compose): `ca.pem` and
    /// `NAME.pem` / `NAME-key.pem` in the output directory.
    Certs {
        #[arg(long, default_value = "./kefu-certs")]
        out: PathBuf,
        /// Host names of the services, one certificate each (each also
        /// names localhost and 127.0.0.1).
        #[arg(
            long = "name",
            value_delimiter = ',',
            default_value = "staff,customers,tickets,complaints,training,performance,gateway"
        )]
        names: Vec<String>,
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=825))]
        days: u32,
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
    /// HMAC key that signs audit entries; prints KEFU_AUDIT_KEYS.
    Audit,
    /// AES-256 key sealing kept files (complaint evidence); prints KEFU_BLOB_KEYS.
    Blob,
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
        Command::Serve { service } => serve(*service).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => migrate(args).await.map(|()| ExitCode::SUCCESS),
        Command::Admin { command } => admin(command).await.map(|()| ExitCode::SUCCESS),
        Command::Import { what: ImportCommand::Customers(args) } => import::run(args).await,
        Command::Health { addr, http: true, timeout, .. } => http_health(&addr, timeout).await,
        Command::Health { addr, service, timeout, tls, .. } => {
            tls.install()?;
            health(&addr, &service, timeout).await
        }
    }
}

async fn serve(cmd: ServeCommand) -> anyhow::Result<()> {
    use kefu_kit::module::serve;
    match cmd {
        ServeCommand::Customers { common, customers } => serve::<kefu_customers::Customers>(common, customers).await,
        ServeCommand::Tickets { common, tickets } => serve::<kefu_tickets::Tickets>(common, tickets).await,
        ServeCommand::Complaints { common, complaints } => {
            serve::<kefu_complaints::Complaints>(common, complaints).await
        }
        ServeCommand::Training { common, training } => serve::<kefu_training::Training>(common, training).await,
        ServeCommand::Staff { common, staff } => serve::<kefu_staff::Staff>(common, staff).await,
        ServeCommand::Performance { common, performance } => {
            serve::<kefu_performance::Performance>(common, performance).await
        }
        ServeCommand::Gateway { gateway, db, telemetry, migrate } => {
            let guard = kefu_kit::telemetry::init("kefu-gateway", &telemetry)?;
            kefu_kit::db::validate_url(&db.database_url)?;
            let pool = kefu_kit::db::connect(&db.database_url, db.database_max_connections).await?;
            if migrate {
                kefu_kit::db::migrate(&pool, &kefu_gateway::MIGRATOR).await?;
            }
            kefu_gateway::openapi::set_rpc_roles(kefu_suite::MODULES.iter().flat_map(|m| m.access().iter().copied()));
            let gw = std::sync::Arc::new(kefu_gateway::Gateway::new(&gateway, pool.clone())?);
            let checkpoints = tokio::spawn(kefu_kit::audit::checkpoints(
                "gateway",
                pool.clone(),
                gateway.audit.audit_checkpoint_every,
                tokio_util::sync::CancellationToken::new(),
            ));
            let listener = tokio::net::TcpListener::bind(gateway.http_listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for HTTP on {}: {e}", gateway.http_listen))?;
            let admin = tokio::net::TcpListener::bind(gateway.admin_listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for admin HTTP on {}: {e}", gateway.admin_listen))?;
            tracing::info!(http = %listener.local_addr()?, admin = %admin.local_addr()?, "gateway listening");
            let app = kefu_gateway::router(gw.clone(), &gateway);
            let shutdown = kefu_kit::shutdown::on_signal();
            // The admin port outlives the public one, so /readyz answers 503
            // while the gateway drains.
            let admin_stop = tokio_util::sync::CancellationToken::new();
            let admin_task = tokio::spawn(kefu_gateway::serve(
                admin,
                kefu_gateway::admin_router(pool, shutdown.clone()),
                admin_stop.clone(),
            ));
            let result = kefu_gateway::serve_public(listener, app, &gw, &gateway, shutdown).await;
            checkpoints.abort();
            admin_stop.cancel();
            let _ = admin_task.await;
            guard.shutdown().await;
            result
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let schemas = kefu_suite::schemas();
    let all = args.targets.iter().any(|t| t == "all");
    let chosen: Vec<_> = schemas.into_iter().filter(|(n, _)| all || args.targets.iter().any(|t| t == n)).collect();
    let mut given = std::collections::HashMap::new();
    for u in &args.urls {
        let (name, url) = u.split_once('=').ok_or_else(|| anyhow::anyhow!("--url {u:?}: expected NAME=URL"))?;
        if !chosen.iter().any(|(n, _)| *n == name) {
            anyhow::bail!("--url names {name:?}, which is not being migrated");
        }
        given.insert(name.to_owned(), url.to_owned());
    }
    // Resolve every URL before migrating any schema.
    let mut targets = Vec::new();
    for (name, migrator) in chosen.iter().copied() {
        let env = kefu_kit::module::database_env(name);
        let url = given
            .remove(name)
            .or_else(|| if chosen.len() == 1 { args.database_url.clone() } else { None })
            .or_else(|| std::env::var(&env).ok().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no database for {name}: set {env} or --url {name}=URL{}",
                    if chosen.len() == 1 { " or --database-url" } else { " (each service has its own database)" }
                )
            })?;
        kefu_kit::db::validate_url(&url)?;
        targets.push((name, url, migrator));
    }
    for (name, url, migrator) in targets {
        let pool = kefu_kit::db::connect(&url, 1).await?;
        kefu_kit::db::migrate(&pool, migrator).await?;
        pool.close().await;
        println!("migrated {name} ({})", kefu_kit::db::redact(&url));
    }
    Ok(())
}

/// A login account `kefu admin create-user` makes.
struct NewUser<'a> {
    username: &'a str,
    roles: &'a [Role],
    staff_id: &'a str,
    must_change_password: bool,
}

async fn create_user(
    user: NewUser<'_>,
    password: Option<String>,
    database_url: Option<String>,
    data_dir: &std::path::Path,
    audit_keys: kefu_kit::audit::AuditKeys,
) -> anyhow::Result<()> {
    let NewUser { username, roles, staff_id, must_change_password } = user;
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
    let auth = kefu_gateway::auth::Auth {
        pool,
        signer,
        verifier,
        audit_keys,
        sessions: kefu_gateway::sessions::SessionCache::new(),
    };
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let account = auth
        .create_account(
            kefu_gateway::auth::Login { username, password: &password, must_change_password },
            &roles,
            staff_id,
            &kefu_gateway::auth::operator(),
            kefu_gateway::auth::Grant::Direct,
        )
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    println!("created account {} ({}) with roles {}", account.username, account.id, account.roles.join(", "));
    Ok(())
}

async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::CreateUser {
            username,
            roles,
            staff_id,
            password,
            must_change_password,
            database_url,
            data_dir,
            audit_keys,
        } => {
            let audit = kefu_kit::audit::AuditArgs { audit_keys, ..Default::default() };
            let embedded = kefu_kit::module::Embedded { data_dir: data_dir.clone(), ..Default::default() };
            let audit_keys = audit.keys(Some(&embedded))?;
            let account = NewUser { username: &username, roles: &roles, staff_id: &staff_id, must_change_password };
            create_user(account, password, database_url, &data_dir, audit_keys).await?;
        }
        AdminCommand::Token { roles, staff_id, ttl, key } => {
            let token = key.signer()?.mint(&staff_id, &roles, ttl)?;
            println!("{token}");
        }
        AdminCommand::Rewrap { database_url, data_keys, data_dir } => {
            let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("customers.db").display()));
            kefu_kit::db::validate_url(&url)?;
            let data_keys = match data_keys {
                Some(k) => k,
                None => kefu_kit::module::Embedded { data_dir, ..Default::default() }.key_file("data.keys")?,
            };
            let keys = kefu_customers::crypto::DataKeyring::new(&kefu_kit::config::parse_data_keys(&data_keys)?)?;
            let pool = kefu_kit::db::connect(&url, 2).await?;
            let report = kefu_customers::api::rewrap(&pool, &keys).await?;
            println!(
                "{} customer keys rewrapped under {}, {} tax profiles moved under their customer's key",
                report.rewrapped,
                keys.active_id(),
                report.resealed
            );
        }
        AdminCommand::Certs { out, names, days } => {
            let certs = kefu_kit::tls::dev_certs("kefu private CA", &names, days)?;
            std::fs::create_dir_all(&out)?;
            let write = |name: &str, text: &str, private: bool| -> anyhow::Result<()> {
                let path = out.join(name);
                std::fs::write(&path, text)?;
                #[cfg(unix)]
                if private {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                let _ = private;
                Ok(())
            };
            // The CA's private key is not kept: renewing means running this
            // again for every service (a PKI or cert-manager does better).
            write("ca.pem", &certs.ca_cert, false)?;
            for (name, cert, key) in &certs.certs {
                write(&format!("{name}.pem"), cert, false)?;
                write(&format!("{name}-key.pem"), key, true)?;
            }
            println!("wrote ca.pem and {} certificates to {} (valid {days} days)", certs.certs.len(), out.display());
        }
        AdminCommand::Keygen { kind, kid } => match kind {
            KeyKind::Token => {
                let entry = KeyEntry::generate(&kid);
                let signer = TokenSigner::from_entry(&entry)?;
                println!("KEFU_TOKEN_SIGNING_KEY={}", entry.encode());
                println!("KEFU_TOKEN_PUBLIC_KEYS={}", signer.public_key());
            }
            KeyKind::Data => println!("KEFU_DATA_KEYS={}", KeyEntry::generate(&kid).encode()),
            KeyKind::Audit => println!("KEFU_AUDIT_KEYS={}", KeyEntry::generate(&kid).encode()),
            KeyKind::Blob => println!("KEFU_BLOB_KEYS={}", KeyEntry::generate(&kid).encode()),
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
