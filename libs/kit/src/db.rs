//! Storage on sqlx's `Any` driver: the URL picks SQLite (embedded) or
//! PostgreSQL (production) at run time, with one set of portable queries.
use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("KEFU_DATABASE_URL must start with sqlite: or postgres:// (got {:?})", redact(url))
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Opens a pool. SQLite files (and their folder) are created when missing and
/// run in WAL mode with a single connection, so writers never collide.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<AnyPool> {
    install_default_drivers();
    let backend = Backend::of(url)?;
    let (url, max) = match backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if path != ":memory:"
                && let Some(dir) = Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let url = if url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (url, 1)
        }
        Backend::Postgres => (url.to_owned(), max_connections),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact(&url)))?;
    Ok(pool)
}

/// A value bound to a query assembled at run time (search filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Bind {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<i64> for Bind {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

/// A `WHERE` clause assembled from optional filters. Each condition writes
/// `$?` where its value goes; the builder numbers the placeholders.
#[derive(Debug, Default)]
pub struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `condition` with one bound value in place of `$?`.
    pub fn and(&mut self, condition: &str, value: impl Into<Bind>) -> &mut Self {
        self.binds.push(value.into());
        self.clauses.push(condition.replacen("$?", &format!("${}", self.binds.len()), 1));
        self
    }

    /// Adds a condition with no bound value.
    pub fn and_sql(&mut self, condition: &str) -> &mut Self {
        self.clauses.push(condition.to_owned());
        self
    }

    /// The clause (`1 = 1` when empty) and its values, in placeholder order.
    pub fn build(self) -> (String, Vec<Bind>) {
        let sql = if self.clauses.is_empty() { "1 = 1".to_owned() } else { self.clauses.join(" AND ") };
        (sql, self.binds)
    }

    /// The next placeholder number (for a `LIMIT $n` after the clause).
    pub fn next_placeholder(&self) -> usize {
        self.binds.len() + 1
    }
}

/// Runs a query assembled at run time with its binds, in order.
pub async fn fetch_all_as<O>(conn: &mut sqlx::AnyConnection, sql: &str, binds: Vec<Bind>) -> Result<Vec<O>, sqlx::Error>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut q = sqlx::query_as::<_, O>(sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(conn).await
}

/// Tables the kit itself keeps in every service's database.
const KIT_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kit_idempotency (\
    scope       TEXT NOT NULL,\
    request_id  TEXT NOT NULL,\
    resource_id TEXT NOT NULL,\
    fingerprint TEXT NOT NULL,\
    created_at  BIGINT NOT NULL,\
    PRIMARY KEY (scope, request_id))";

/// Applies the kit's own tables, then a service's migrations.
pub async fn migrate(pool: &AnyPool, migrator: &Migrator) -> anyhow::Result<()> {
    pool.execute(KIT_SCHEMA).await.map_err(|e| anyhow::anyhow!("migration failed (kit tables): {e}"))?;
    migrator.run(pool).await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: go on and create `resource_id` in this transaction.
    New,
    /// An earlier request with this key created this resource: answer with it.
    Existing(String),
}

/// Claims `request_id` for a create, inside the create's transaction and
/// before it writes anything else. Concurrent claims of one key serialise on
/// the key's row: the first commits its resource, every other sees it and
/// answers with the same resource. A key reused for a different request
/// (another `fingerprint`) is refused.
pub async fn claim_request_id(
    conn: &mut sqlx::AnyConnection,
    scope: &str,
    request_id: &str,
    resource_id: &str,
    fingerprint: &str,
) -> Result<Claim, crate::Error> {
    let now = chrono::Utc::now().timestamp_millis();
    let inserted = sqlx::query(
        "INSERT INTO kit_idempotency (scope, request_id, resource_id, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, request_id) DO NOTHING",
    )
    .bind(scope)
    .bind(request_id)
    .bind(resource_id)
    .bind(fingerprint)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let (existing, fp): (String, String) =
        sqlx::query_as("SELECT resource_id, fingerprint FROM kit_idempotency WHERE scope = $1 AND request_id = $2")
            .bind(scope)
            .bind(request_id)
            .fetch_one(&mut *conn)
            .await?;
    if fp != fingerprint {
        return Err(crate::Error::invalid(
            "request_id",
            "was already used for a different request; use a new request id for a new resource",
        ));
    }
    Ok(Claim::Existing(existing))
}

/// The fingerprint of a request for [`claim_request_id`]: SHA-256 of its
/// encoded form with the request id field cleared.
pub fn fingerprint(encoded: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(encoded))
}

/// For tests and tools: creates a fresh, empty PostgreSQL database next to
/// the one `admin_url` names and returns its URL.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    install_default_drivers();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("database name {name:?} must be [A-Za-z0-9_]");
    }
    let pool = AnyPoolOptions::new().max_connections(1).connect(admin_url).await?;
    pool.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    pool.close().await;
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let at = base.rfind('/').filter(|&i| i > base.find("://").map_or(0, |s| s + 2)).unwrap_or(base.len());
    Ok(format!("{}/{name}", &base[..at]))
}

/// Parses a URL early so a bad setting fails at start.
pub fn validate_url(url: &str) -> anyhow::Result<()> {
    Backend::of(url)?;
    if Backend::of(url)? == Backend::Postgres {
        sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("KEFU_DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://kefu:s3cret@db:5432/x"), "postgres://kefu:***@db:5432/x");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn backend_by_scheme() {
        assert_eq!(Backend::of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://h/db").ok(), Some(Backend::Postgres));
        assert!(Backend::of("mysql://h/db").is_err());
    }
}
