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
                    // Deleted and overwritten content is zeroed in the file,
                    // so erased personal data does not linger in free pages.
                    conn.execute("PRAGMA secure_delete = ON").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact(&url)))?;
    if backend == Backend::Sqlite {
        private_files(&url);
    }
    Ok(pool)
}

/// Connections for reads beside `pool`. SQLite gives a service one writer
/// connection; reads on it would queue behind every write. Here, on SQLite,
/// up to four more connections to the same file that may only read
/// (`PRAGMA query_only`): in WAL mode they run while a write is in progress
/// and see everything committed. On PostgreSQL (and in-memory SQLite) the
/// pool itself. Reads that belong to a write's transaction stay on `pool`.
pub fn readers(pool: &AnyPool) -> AnyPool {
    let url = pool.connect_options().database_url.clone();
    let memory = url.as_str().contains(":memory:") || url.as_str().contains("mode=memory");
    if url.scheme() != "sqlite" || memory {
        return pool.clone();
    }
    AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA query_only = ON").await?;
                Ok(())
            })
        })
        .connect_lazy(url.as_str())
        .unwrap_or_else(|_| pool.clone())
}

/// After personal data was erased: on SQLite, writes the journal back into
/// the database and truncates it, so the erased values' old pages leave the
/// `-wal` file (`secure_delete` has already zeroed them in the database).
/// On PostgreSQL old row versions stay until VACUUM reuses their space.
pub async fn scrub(pool: &AnyPool) -> Result<(), sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        // (busy, log frames, checkpointed frames): busy when a reader held
        // the journal; try again shortly, then leave it to the next one.
        for attempt in 0..20 {
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await?;
            let busy: i64 = sqlx::Row::try_get(&row, 0)?;
            if busy == 0 {
                return Ok(());
            }
            if attempt < 19 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        tracing::warn!("the journal stayed busy; erased data leaves it at the next checkpoint");
    }
    Ok(())
}

/// A SQLite database and its journal files readable by their owner only
/// (they hold what the service holds; SQLite gives new journal files the
/// database file's mode).
fn private_files(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path == ":memory:" {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let f = format!("{path}{suffix}");
            if std::path::Path::new(&f).exists()
                && let Err(e) = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file = %f, error = %e, "could not make the database file private");
            }
        }
    }
}

/// A value bound to a query assembled at run time (search filters, rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
    /// Text or NULL.
    OptText(Option<String>),
    /// An integer or NULL.
    OptInt(Option<i64>),
}

impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Self {
        Self::OptText(v)
    }
}

impl From<Option<&str>> for Bind {
    fn from(v: Option<&str>) -> Self {
        Self::OptText(v.map(str::to_owned))
    }
}

impl From<&String> for Bind {
    fn from(s: &String) -> Self {
        Self::Text(s.clone())
    }
}

impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Self {
        Self::OptInt(v)
    }
}

impl From<bool> for Bind {
    /// Booleans are stored as 0 / 1 (portable between SQLite and PostgreSQL).
    fn from(b: bool) -> Self {
        Self::Int(i64::from(b))
    }
}

/// A JSON column read into `T`; a column that does not hold it is this
/// service's fault (INTERNAL, naming the table and row).
pub fn from_json<T: serde::de::DeserializeOwned>(table: &str, id: &str, text: &str) -> Result<T, crate::Error> {
    serde_json::from_str(text)
        .map_err(|e| crate::Error::Internal(anyhow::anyhow!("{table} {id} holds invalid JSON: {e}")))
}

/// A value as the text of its JSON column.
pub fn to_json<T: serde::Serialize>(x: &T) -> Result<String, crate::Error> {
    serde_json::to_string(x).map_err(|e| crate::Error::Internal(e.into()))
}

/// A row's columns and values, written once and used for both its INSERT
/// and its versioned UPDATE, so the two cannot drift apart.
#[derive(Debug, Default)]
pub struct Columns {
    cols: Vec<(&'static str, Bind)>,
}

impl Columns {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn with(mut self, column: &'static str, value: impl Into<Bind>) -> Self {
        self.cols.push((column, value.into()));
        self
    }

    /// Appends every column of `more`.
    #[must_use]
    pub fn and(mut self, more: Columns) -> Self {
        self.cols.extend(more.cols);
        self
    }

    fn insert_sql(&self, table: &str) -> String {
        let names: Vec<&str> = self.cols.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = (1..=self.cols.len()).map(|i| format!("${i}")).collect();
        format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), marks.join(", "))
    }

    fn update_sql(&self, table: &str, key: &str) -> String {
        let sets: Vec<String> = self.cols.iter().enumerate().map(|(i, (c, _))| format!("{c} = ${}", i + 1)).collect();
        let n = self.cols.len();
        format!(
            "UPDATE {table} SET {}, version = version + 1 WHERE {key} = ${} AND version = ${}",
            sets.join(", "),
            n + 1,
            n + 2
        )
    }

    /// `INSERT INTO table (columns…) VALUES (…)`.
    pub async fn insert(self, conn: &mut sqlx::AnyConnection, table: &str) -> Result<(), sqlx::Error> {
        let sql = self.insert_sql(table);
        execute(conn, &sql, self.cols.into_iter().map(|(_, b)| b).collect()).await.map(drop)
    }

    /// `INSERT … ON CONFLICT (conflict) DO NOTHING`: whether the row went in
    /// (false: a row with the same unique key is there — under concurrency,
    /// once the other writer committed).
    pub async fn insert_unless_exists(
        self,
        conn: &mut sqlx::AnyConnection,
        table: &str,
        conflict: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = format!("{} ON CONFLICT ({conflict}) DO NOTHING", self.insert_sql(table));
        Ok(execute(conn, &sql, self.cols.into_iter().map(|(_, b)| b).collect()).await? == 1)
    }

    /// Writes the columns and bumps `version` on the row `id` if its version
    /// is still `version`; false when it is not (someone else changed it).
    pub async fn update_versioned(
        self,
        conn: &mut sqlx::AnyConnection,
        table: &str,
        id: &str,
        version: i64,
    ) -> Result<bool, sqlx::Error> {
        self.update_versioned_on(conn, table, "id", id, version).await
    }

    /// [`Columns::update_versioned`] for a table keyed by column `key`.
    pub async fn update_versioned_on(
        self,
        conn: &mut sqlx::AnyConnection,
        table: &str,
        key: &str,
        id: &str,
        version: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = self.update_sql(table, key);
        let mut binds: Vec<Bind> = self.cols.into_iter().map(|(_, b)| b).collect();
        binds.push(id.into());
        binds.push(version.into());
        Ok(execute(conn, &sql, binds).await? == 1)
    }
}

/// Binds each value in order (`query` and `query_as` share no trait for it).
macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
                Bind::OptText(s) => q.bind(s),
                Bind::OptInt(i) => q.bind(i),
            };
        }
        q
    }};
}

/// Runs a statement assembled at run time with its binds, in order; the
/// number of rows it changed.
pub async fn execute(conn: &mut sqlx::AnyConnection, sql: &str, binds: Vec<Bind>) -> Result<u64, sqlx::Error> {
    let q = bind_all!(sqlx::query(sql), binds);
    Ok(q.execute(conn).await?.rows_affected())
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

    /// Adds `condition` with one bound value per `$?`, in order (a keyset
    /// cursor such as `(at, id) < ($?, $?)`).
    pub fn and_many(&mut self, condition: &str, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        let mut out = condition.to_owned();
        for v in values {
            self.binds.push(v);
            out = out.replacen("$?", &format!("${}", self.binds.len()), 1);
        }
        self.clauses.push(out);
        self
    }

    /// Adds `column IN (…)` over `values`; an empty list matches nothing.
    pub fn any_of<V: Into<Bind>>(&mut self, column: &str, values: impl IntoIterator<Item = V>) -> &mut Self {
        let mut placeholders = Vec::new();
        for v in values {
            self.binds.push(v.into());
            placeholders.push(format!("${}", self.binds.len()));
        }
        if placeholders.is_empty() {
            self.clauses.push("1 = 0".to_owned());
        } else {
            self.clauses.push(format!("{column} IN ({})", placeholders.join(", ")));
        }
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
    let q = bind_all!(sqlx::query_as::<_, O>(sql), binds);
    q.fetch_all(conn).await
}

/// Runs a query assembled at run time with its binds; the rows as they are.
pub async fn fetch_rows(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    binds: Vec<Bind>,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let q = bind_all!(sqlx::query(sql), binds);
    q.fetch_all(conn).await
}

/// PostgreSQL only (SQLite, with its single writer, needs none): creates
/// sequence `name` when it is missing, starting after the value `seed_sql`
/// returns (the highest number already handed out another way), under an
/// advisory lock so that replicas starting together create it once. A
/// sequence is held by no transaction, so concurrent creates do not queue
/// on a counter row; a create that rolls back leaves a gap.
pub async fn ensure_sequence(pool: &AnyPool, name: &str, seed_sql: &str) -> anyhow::Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        anyhow::bail!("sequence name {name:?}: use a-z and _");
    }
    let mut tx = pool.begin().await?;
    if tx.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(name).execute(&mut *tx).await?;
    // Resolved as nextval resolves it: through the search path.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(name).fetch_one(&mut *tx).await?;
    if !exists {
        tx.execute(format!("CREATE SEQUENCE {name}").as_str()).await?;
        let seed: i64 = sqlx::query_scalar(seed_sql).fetch_one(&mut *tx).await?;
        sqlx::query(&format!("SELECT setval('{name}', $1, $2)"))
            .bind(seed.max(1))
            .bind(seed > 0)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A trigram index on `table(column)` so that `column LIKE '%text%'`
/// searches of three or more characters read an index instead of every row;
/// created once, when missing. Answers whether the index is there.
///
/// - PostgreSQL: a GIN index with `pg_trgm` (`{table}_{column}_trgm`), which
///   serves the `LIKE` itself. Without the privilege to create the extension
///   (a managed database may need `CREATE EXTENSION pg_trgm` run by its
///   administrator) it warns and searches still work, by scanning.
/// - SQLite: an FTS5 table with the trigram tokenizer over the column
///   (`{table}_{column}_fts`, kept by triggers); a query narrows with
///   [`trigram_match`] and keeps its `LIKE` for the exact meaning.
pub async fn ensure_trigram_index(pool: &AnyPool, table: &str, column: &str) -> anyhow::Result<bool> {
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !ident(table) || !ident(column) {
        anyhow::bail!("trigram index on {table:?}.{column:?}: use a-z and _");
    }
    let mut tx = pool.begin().await?;
    if tx.backend_name() != "PostgreSQL" {
        let fts = format!("{table}_{column}_fts");
        // The table and its three triggers: a table rebuilt by a migration
        // loses its triggers, and then the index is made again.
        let parts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name IN ($1, $2, $3, $4) AND sql IS NOT NULL")
                .bind(&fts)
                .bind(format!("{fts}_ai"))
                .bind(format!("{fts}_ad"))
                .bind(format!("{fts}_au"))
                .fetch_one(&mut *tx)
                .await?;
        if parts != 4 {
            for t in ["ai", "ad", "au"] {
                tx.execute(format!("DROP TRIGGER IF EXISTS {fts}_{t}").as_str()).await?;
            }
            tx.execute(format!("DROP TABLE IF EXISTS {fts}").as_str()).await?;
            for sql in [
                format!(
                    "CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='rowid', \
                     tokenize='trigram')"
                ),
                format!(
                    "CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN \
                     INSERT INTO {fts}(rowid, {column}) VALUES (new.rowid, new.{column}); END"
                ),
                format!(
                    "CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN \
                     INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.rowid, old.{column}); END"
                ),
                format!(
                    "CREATE TRIGGER {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN \
                     INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.rowid, old.{column}); \
                     INSERT INTO {fts}(rowid, {column}) VALUES (new.rowid, new.{column}); END"
                ),
                format!("INSERT INTO {fts}({fts}) VALUES ('rebuild')"),
            ] {
                tx.execute(sql.as_str()).await?;
            }
        }
        tx.commit().await?;
        return Ok(true);
    }
    let name = format!("{table}_{column}_trgm");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&name).execute(&mut *tx).await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&name).fetch_one(&mut *tx).await?;
    if exists {
        return Ok(true);
    }
    let has_extension: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')")
            .fetch_one(&mut *tx)
            .await?;
    if !has_extension && let Err(e) = tx.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm").await {
        tracing::warn!(
            error = %e,
            "cannot create the pg_trgm extension: text searches on {table}.{column} read every row; \
             ask the database administrator to run CREATE EXTENSION pg_trgm"
        );
        return Ok(false);
    }
    tx.execute(format!("CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)").as_str()).await?;
    tx.commit().await?;
    Ok(true)
}

/// Rows the FTS5 table of [`ensure_trigram_index`] may name at most for
/// [`trigram_match`] to narrow by it: a fragment most rows contain (有限公司)
/// is found sooner by reading rows in order until a page is full.
const TRIGRAM_NARROW_MAX: i64 = 2_000;

/// On SQLite, a condition (with one `$?` placeholder, for [`Where::and`]) and
/// its value that narrow `alias` rows to those whose `column` contains
/// `fragment`, through the FTS5 table of [`ensure_trigram_index`], when the
/// fragment is rare enough for that to help. `None` on PostgreSQL (its index
/// serves `LIKE`), for fragments under three characters (trigrams cannot
/// narrow them) and for common ones.
pub async fn trigram_match(
    conn: &mut sqlx::AnyConnection,
    alias: &str,
    table: &str,
    column: &str,
    fragment: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    if conn.backend_name() == "PostgreSQL" || fragment.chars().count() < 3 {
        return Ok(None);
    }
    let fts = format!("{table}_{column}_fts");
    let phrase = format!("\"{}\"", fragment.replace('"', "\"\""));
    let found: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM (SELECT rowid FROM {fts} WHERE {fts} MATCH $1 LIMIT {})",
        TRIGRAM_NARROW_MAX + 1
    ))
    .bind(&phrase)
    .fetch_one(&mut *conn)
    .await?;
    if found > TRIGRAM_NARROW_MAX {
        return Ok(None);
    }
    Ok(Some((format!("{alias}.rowid IN (SELECT rowid FROM {fts} WHERE {fts} MATCH $?)"), phrase)))
}

/// Refreshes the planner's statistics of `tables` after a bulk load, as
/// autovacuum would later: until then PostgreSQL plans lists over the new
/// rows with stale estimates (an open-tickets page took 91 ms instead of
/// 4 ms right after a load). Runs in the background; a failure is logged.
pub fn analyse_later(pool: &AnyPool, tables: &'static [&'static str]) {
    let pool = pool.clone();
    tokio::spawn(async move {
        for t in tables {
            if let Err(e) = pool.execute(format!("ANALYZE {t}").as_str()).await {
                tracing::warn!(error = %e, table = t, "could not refresh planner statistics after a bulk load");
            }
        }
    });
}

/// Tables the kit itself keeps in every service's database.
const KIT_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kit_idempotency (\
    scope       TEXT NOT NULL,\
    request_id  TEXT NOT NULL,\
    resource_id TEXT NOT NULL,\
    fingerprint TEXT NOT NULL,\
    created_at  BIGINT NOT NULL,\
    PRIMARY KEY (scope, request_id))";

/// Applies the kit's own tables, then a service's migrations, then the
/// audit trail's tables (after: services that kept a trail before the kit
/// did created them in their own migrations).
pub async fn migrate(pool: &AnyPool, migrator: &Migrator) -> anyhow::Result<()> {
    for statement in std::iter::once(KIT_SCHEMA).chain(crate::approval::SCHEMA.iter().copied()) {
        pool.execute(statement).await.map_err(|e| anyhow::anyhow!("migration failed (kit tables): {e}"))?;
    }
    migrator.run(pool).await.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    for statement in crate::audit::SCHEMA {
        pool.execute(*statement).await.map_err(|e| anyhow::anyhow!("migration failed (audit tables): {e}"))?;
    }
    Ok(())
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
    // Keys recorded before fingerprints existed carry an empty one: any body.
    if !fp.is_empty() && fp != fingerprint {
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

/// [`fingerprint`] of a request message; the caller clears the request id
/// first (`Request { request_id: String::new(), ..r.clone() }`). prost
/// encodes fields in number order, so equal messages give equal prints.
pub fn fingerprint_of(message: &impl prost::Message) -> String {
    fingerprint(&message.encode_to_vec())
}

/// How long a request id is remembered: a retry within this window gets
/// the same resource.
pub const REQUEST_ID_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Forgets request ids claimed before `before_ms` (Unix ms); returns how
/// many. Hosts run it hourly for every module's database.
pub async fn forget_request_ids(pool: &AnyPool, before_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM kit_idempotency WHERE created_at < $1")
        .bind(before_ms)
        .execute(pool)
        .await?
        .rows_affected())
}

/// The hourly task forgetting request ids older than [`REQUEST_ID_RETENTION`].
pub async fn request_id_janitor(pool: AnyPool, shutdown: tokio_util::sync::CancellationToken) {
    let retention = i64::try_from(REQUEST_ID_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {
                let before = chrono::Utc::now().timestamp_millis().saturating_sub(retention);
                match forget_request_ids(&pool, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(forgotten = n, "request ids past their retention forgotten"),
                    Err(e) => tracing::warn!(error = %e, "could not forget old request ids; will retry"),
                }
            }
        }
    }
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

    async fn sqlite() -> (tempfile::TempDir, AnyPool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = connect(&format!("sqlite://{}", dir.path().join("k.db").display()), 1).await.unwrap();
        pool.execute(KIT_SCHEMA).await.unwrap();
        (dir, pool)
    }

    #[tokio::test]
    async fn a_request_id_answers_with_its_resource_refuses_another_body_and_is_forgotten_after_retention() {
        let (_dir, pool) = sqlite().await;
        let mut c = pool.acquire().await.unwrap();
        assert_eq!(claim_request_id(&mut c, "s", "k1", "r1", "fp").await.unwrap(), Claim::New);
        assert_eq!(claim_request_id(&mut c, "s", "k1", "r2", "fp").await.unwrap(), Claim::Existing("r1".into()));
        let e = claim_request_id(&mut c, "s", "k1", "r3", "other").await.unwrap_err();
        assert!(e.to_string().contains("request_id: was already used for a different request"), "{e}");
        // Another scope is another key space.
        assert_eq!(claim_request_id(&mut c, "t", "k1", "r4", "fp").await.unwrap(), Claim::New);
        // A key back-filled from before fingerprints accepts any body.
        sqlx::query("INSERT INTO kit_idempotency VALUES ('s', 'old', 'r0', '', 0)").execute(&mut *c).await.unwrap();
        assert_eq!(claim_request_id(&mut c, "s", "old", "r5", "any").await.unwrap(), Claim::Existing("r0".into()));
        drop(c);
        assert_eq!(forget_request_ids(&pool, 1).await.unwrap(), 1, "only the key claimed at 0 is older");
        let mut c = pool.acquire().await.unwrap();
        assert_eq!(claim_request_id(&mut c, "s", "old", "r6", "any").await.unwrap(), Claim::New);
    }

    #[tokio::test]
    async fn any_of_binds_each_value_and_an_empty_list_matches_nothing() {
        let (_dir, pool) = sqlite().await;
        for (k, r) in [("a", "1"), ("b", "2"), ("c", "3")] {
            sqlx::query("INSERT INTO kit_idempotency VALUES ('s', $1, $2, '', 5)")
                .bind(k)
                .bind(r)
                .execute(&pool)
                .await
                .unwrap();
        }
        let mut w = Where::new();
        w.and("scope = $?", "s").any_of("request_id", ["a", "c"]).and("created_at = $?", 5_i64);
        let (sql, binds) = w.build();
        assert_eq!(sql, "scope = $1 AND request_id IN ($2, $3) AND created_at = $4");
        let mut c = pool.acquire().await.unwrap();
        let rows: Vec<(String,)> = fetch_all_as(
            &mut c,
            &format!("SELECT resource_id FROM kit_idempotency WHERE {sql} ORDER BY resource_id"),
            binds,
        )
        .await
        .unwrap();
        assert_eq!(rows, vec![("1".to_owned(),), ("3".to_owned(),)]);
        let mut none = Where::new();
        none.any_of("request_id", Vec::<String>::new());
        let (sql, binds) = none.build();
        let rows: Vec<(String,)> =
            fetch_all_as(&mut c, &format!("SELECT resource_id FROM kit_idempotency WHERE {sql}"), binds).await.unwrap();
        assert!(rows.is_empty());
    }

    #[tokio::test]
    async fn columns_insert_a_row_and_update_it_only_at_its_version() {
        let (_dir, pool) = sqlite().await;
        pool.execute("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT NOT NULL, note TEXT, n BIGINT, done BIGINT NOT NULL, version BIGINT NOT NULL)")
            .await
            .unwrap();
        let mutable = |name: &str, note: Option<&str>, n: Option<i64>| {
            Columns::new().with("name", name).with("note", note).with("n", n).with("done", true)
        };
        let mut c = pool.acquire().await.unwrap();
        Columns::new()
            .with("id", "a")
            .with("version", 1_i64)
            .and(mutable("甲", None, Some(3)))
            .insert(&mut c, "t")
            .await
            .unwrap();
        assert!(mutable("乙", Some("改"), None).update_versioned(&mut c, "t", "a", 1).await.unwrap());
        assert!(
            !mutable("丙", None, None).update_versioned(&mut c, "t", "a", 1).await.unwrap(),
            "a stale version changes nothing"
        );
        let row: (String, Option<String>, Option<i64>, i64, i64) =
            sqlx::query_as("SELECT name, note, n, done, version FROM t WHERE id = 'a'")
                .fetch_one(&mut *c)
                .await
                .unwrap();
        assert_eq!(row, ("乙".to_owned(), Some("改".to_owned()), None, 1, 2));
    }

    #[test]
    fn backend_by_scheme() {
        assert_eq!(Backend::of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://h/db").ok(), Some(Backend::Postgres));
        assert!(Backend::of("mysql://h/db").is_err());
    }
}
