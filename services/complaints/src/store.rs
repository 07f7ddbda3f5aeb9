//! All SQL of the complaints service (portable: SQLite and PostgreSQL).
//! Rows become domain values here.
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

/// A complaint as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ComplaintRow {
    pub id: String,
    pub number: String,
    pub state: i64,
    pub source: i64,
    pub channel: i64,
    pub customer_id: String,
    pub anonymous: i64,
    pub ticket_id: String,
    pub subject_kind: i64,
    pub subject: String,
    pub category: String,
    pub severity: i64,
    pub description: String,
    pub demand_kind: i64,
    pub demand_amount_fen: i64,
    pub demand_detail: String,
    pub referred_by: String,
    pub referral_reference: String,
    pub referral_due_at: Option<i64>,
    pub repeat_of: String,
    pub handler: String,
    pub preliminary_opinion: String,
    pub response: String,
    pub mediator: String,
    pub legal_hold: i64,
    pub reopen_count: i64,
    pub recorded_by: String,
    pub received_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub version: i64,
}

const COLUMNS: &str = "id, number, state, source, channel, customer_id, anonymous, ticket_id, subject_kind, subject, \
    category, severity, description, demand_kind, demand_amount_fen, demand_detail, referred_by, referral_reference, \
    referral_due_at, repeat_of, handler, preliminary_opinion, response, mediator, legal_hold, reopen_count, recorded_by, \
    received_at, created_at, updated_at, closed_at, version";

/// What changes over a complaint's life.
fn mutable(c: &ComplaintRow) -> Columns {
    Columns::new()
        .with("state", c.state)
        .with("handler", c.handler.as_str())
        .with("preliminary_opinion", c.preliminary_opinion.as_str())
        .with("response", c.response.as_str())
        .with("mediator", c.mediator.as_str())
        .with("legal_hold", c.legal_hold)
        .with("reopen_count", c.reopen_count)
        .with("updated_at", c.updated_at)
        .with("closed_at", c.closed_at)
}

pub async fn insert(conn: &mut AnyConnection, c: &ComplaintRow) -> Result<(), Error> {
    Columns::new()
        .with("id", c.id.as_str())
        .with("number", c.number.as_str())
        .with("source", c.source)
        .with("channel", c.channel)
        .with("customer_id", c.customer_id.as_str())
        .with("anonymous", c.anonymous)
        .with("ticket_id", c.ticket_id.as_str())
        .with("subject_kind", c.subject_kind)
        .with("subject", c.subject.as_str())
        .with("category", c.category.as_str())
        .with("severity", c.severity)
        .with("description", c.description.as_str())
        .with("demand_kind", c.demand_kind)
        .with("demand_amount_fen", c.demand_amount_fen)
        .with("demand_detail", c.demand_detail.as_str())
        .with("referred_by", c.referred_by.as_str())
        .with("referral_reference", c.referral_reference.as_str())
        .with("referral_due_at", c.referral_due_at)
        .with("repeat_of", c.repeat_of.as_str())
        .with("recorded_by", c.recorded_by.as_str())
        .with("received_at", c.received_at)
        .with("created_at", c.created_at)
        .with("version", c.version)
        .and(mutable(c))
        .insert(conn, "complaints")
        .await?;
    Ok(())
}

/// Writes the mutable columns if the version still holds; bumps it on `c`.
pub async fn save(conn: &mut AnyConnection, c: &mut ComplaintRow) -> Result<(), Error> {
    if !mutable(c).update_versioned(conn, "complaints", &c.id, c.version).await? {
        return Err(Error::Aborted("the complaint was changed by someone else; reload it and retry".into()));
    }
    c.version += 1;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ComplaintRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM complaints WHERE id = $1")).bind(id).fetch_optional(conn).await?)
}

pub async fn by_number(conn: &mut AnyConnection, number: &str) -> Result<Option<ComplaintRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM complaints WHERE number = $1"))
        .bind(number)
        .fetch_optional(conn)
        .await?)
}

/// The next number of `year` (counted in the caller's transaction).
pub async fn next_serial(conn: &mut AnyConnection, year: i32) -> Result<i64, Error> {
    let name = format!("complaint:{year}");
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(&name)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT value FROM counters WHERE name = $1").bind(&name).fetch_one(conn).await?;
    Ok(row.try_get(0)?)
}

/// The latest earlier complaint of a customer in a category received at or
/// after `since`: what a new one repeats.
pub async fn earlier_of(
    conn: &mut AnyConnection,
    customer_id: &str,
    category: &str,
    since: i64,
) -> Result<Option<String>, Error> {
    let row = sqlx::query(
        "SELECT number FROM complaints WHERE customer_id = $1 AND category = $2 AND received_at >= $3 \
         ORDER BY received_at DESC LIMIT 1",
    )
    .bind(customer_id)
    .bind(category)
    .bind(since)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Which complaints a list shows.
#[derive(Debug, Default)]
pub struct Filter {
    pub state: Option<i64>,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    pub severity: Option<i64>,
    pub handler: Option<String>,
    /// Only complaints this person recorded or handles (agents).
    pub involving: Option<String>,
    /// Newest first: complaints before this (created_at, id).
    pub before: Option<(i64, String)>,
}

pub async fn list(conn: &mut AnyConnection, f: &Filter, limit: i64) -> Result<Vec<ComplaintRow>, Error> {
    let mut w = Where::new();
    if let Some(s) = f.state {
        w.and("state = $?", s);
    }
    if let Some(c) = &f.customer_id {
        w.and("customer_id = $?", c.as_str());
    }
    if let Some(c) = &f.category {
        w.and("category = $?", c.as_str());
    }
    if let Some(s) = f.severity {
        w.and("severity = $?", s);
    }
    if let Some(h) = &f.handler {
        w.and("handler = $?", h.as_str());
    }
    if let Some(p) = &f.involving {
        w.and_many("(recorded_by = $? OR handler = $?)", [p.as_str().into(), p.as_str().into()]);
    }
    if let Some((at, id)) = &f.before {
        w.and_many("(created_at, id) < ($?, $?)", [(*at).into(), id.as_str().into()]);
    }
    let (clause, binds) = w.build();
    let sql =
        format!("SELECT {COLUMNS} FROM complaints WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT {limit}");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// One step of a complaint's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub seq: i64,
    pub complaint_id: String,
    pub from_state: i64,
    pub to_state: i64,
    pub action: i64,
    pub actor: String,
    pub actor_role: String,
    pub reason: String,
    pub at: i64,
}

pub async fn add_history(conn: &mut AnyConnection, h: &HistoryRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO complaint_history (seq, complaint_id, from_state, to_state, action, actor, actor_role, reason, at) \
         VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM complaint_history WHERE complaint_id = $1), $1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&h.complaint_id)
    .bind(h.from_state)
    .bind(h.to_state)
    .bind(h.action)
    .bind(&h.actor)
    .bind(&h.actor_role)
    .bind(&h.reason)
    .bind(h.at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn history(conn: &mut AnyConnection, complaint_id: &str) -> Result<Vec<HistoryRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT seq, complaint_id, from_state, to_state, action, actor, actor_role, reason, at \
         FROM complaint_history WHERE complaint_id = $1 ORDER BY seq",
    )
    .bind(complaint_id)
    .fetch_all(conn)
    .await?)
}
