//! Settings shared by every service, as flags with environment fallbacks
//! (Kubernetes delivers secrets as environment variables).
use std::{net::SocketAddr, time::Duration};

use clap::{Args, ValueEnum};

use crate::{
    auth::TokenVerifier,
    keys::{KeyEntry, parse_key_list},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log output: json (one object per line, with trace ids) or pretty.
    #[arg(long, env = "KEFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info,kefu_customers=debug`.
    #[arg(long, env = "KEFU_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// gRPC listen address.
    #[arg(long, env = "KEFU_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Admin HTTP address serving /metrics (Prometheus) and /healthz.
    #[arg(long, env = "KEFU_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// Longest time one request may run, e.g. `30s`.
    #[arg(long, env = "KEFU_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Requests served at once; beyond it new requests are shed with
    /// UNAVAILABLE. Default: eight per database connection.
    #[arg(long, env = "KEFU_CONCURRENCY_LIMIT", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency_limit: Option<u32>,
    /// Requests per second one person (token subject) may make; bursts of
    /// twice that. Systems (the service role) are not limited. 0: no limit.
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_CALLER", default_value_t = 50)]
    pub rate_limit_per_caller: u32,
    /// After SIGTERM, how long the server keeps serving while it reports
    /// NOT_SERVING and /readyz answers 503 (so load balancers stop sending).
    #[arg(long, env = "KEFU_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Then, time allowed to drain in-flight requests.
    #[arg(long, env = "KEFU_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

impl ServerArgs {
    /// Settings for a server on the given address with everything else default.
    pub fn on(listen: SocketAddr) -> Self {
        Self {
            listen,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            request_timeout: Duration::from_secs(30),
            concurrency_limit: None,
            rate_limit_per_caller: 50,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            tls: crate::tls::TlsArgs::default(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Public keys that verify bearer tokens: `KID:BASE64URL[,KID:BASE64URL]`.
    #[arg(long, env = "KEFU_TOKEN_PUBLIC_KEYS", hide_env_values = true)]
    pub token_public_keys: String,
}

impl AuthArgs {
    pub fn verifier(&self) -> anyhow::Result<TokenVerifier> {
        TokenVerifier::new(&parse_key_list("KEFU_TOKEN_PUBLIC_KEYS", &self.token_public_keys)?)
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://user@host/db` or `sqlite://path/file.db`.
    #[arg(long, env = "KEFU_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Pool size (PostgreSQL; SQLite always uses one writer connection).
    #[arg(long, env = "KEFU_DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,
}

/// Parses `30s`, `500ms`, `2m`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 30s or 5m: {e}"))
}

/// Parses data keys for encryption at rest (`KID:BASE64URL`, first = active).
pub fn parse_data_keys(text: &str) -> anyhow::Result<Vec<KeyEntry>> {
    parse_key_list("KEFU_DATA_KEYS", text)
}
