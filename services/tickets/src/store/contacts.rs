//! Contacts that arrive outside a ticket: ingested email Message-IDs (for
//! threading) and phone calls.
use kefu_kit::Error;
use sqlx::{AnyConnection, Row};

pub async fn email_ticket(conn: &mut AnyConnection, message_id: &str) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT ticket_id FROM email_messages WHERE message_id = $1")
        .bind(message_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The tickets some Message-IDs belong to, in one query.
pub async fn email_tickets(
    conn: &mut AnyConnection,
    message_ids: &[String],
) -> Result<std::collections::HashMap<String, String>, Error> {
    if message_ids.is_empty() {
        return Ok(Default::default());
    }
    let mut w = kefu_kit::db::Where::new();
    w.any_of("message_id", message_ids.iter().map(String::as_str));
    let (clause, binds) = w.build();
    let rows: Vec<(String, String)> = kefu_kit::db::fetch_all_as(
        conn,
        &format!("SELECT message_id, ticket_id FROM email_messages WHERE {clause}"),
        binds,
    )
    .await?;
    Ok(rows.into_iter().collect())
}

/// Remembers which ticket a Message-ID belongs to (the first mapping stays).
pub async fn put_email(conn: &mut AnyConnection, message_id: &str, ticket_id: &str, at: i64) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO email_messages (message_id, ticket_id, at) VALUES ($1,$2,$3) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(ticket_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRow {
    pub call_id: String,
    pub caller_number: String,
    pub queue: String,
    pub agent: String,
    pub offered_at: i64,
    pub answered_at: Option<i64>,
    pub abandoned_at: Option<i64>,
    pub ring_count: i64,
    /// The ticket it was about ('' when not linked).
    pub ticket_id: String,
    /// inbound or outbound.
    pub direction: String,
    /// telephony or manual.
    pub source: String,
    pub talk_seconds: i64,
    pub note: String,
    pub logged_by: String,
}

const CALL_COLUMNS: &str = "call_id, caller_number, queue, agent, offered_at, answered_at, abandoned_at, ring_count, \
    ticket_id, direction, source, talk_seconds, note, logged_by";

/// Which calls a list shows.
#[derive(Debug, Default)]
pub struct CallFilter {
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub ticket_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Newest first: calls before this (offered_at, call_id).
    pub before: Option<(i64, String)>,
}

pub async fn list_calls(conn: &mut AnyConnection, f: &CallFilter, limit: i64) -> Result<Vec<CallRow>, Error> {
    let mut w = kefu_kit::db::Where::new();
    if let Some(a) = &f.agent {
        w.and("agent = $?", a.as_str());
    }
    if let Some(q) = &f.queue {
        w.and("queue = $?", q.as_str());
    }
    if let Some(t) = &f.ticket_id {
        w.and("ticket_id = $?", t.as_str());
    }
    if let Some(from) = f.from {
        w.and("offered_at >= $?", from);
    }
    if let Some(to) = f.to {
        w.and("offered_at < $?", to);
    }
    if let Some((at, id)) = &f.before {
        w.and_many("(offered_at, call_id) < ($?, $?)", [(*at).into(), id.as_str().into()]);
    }
    let (clause, binds) = w.build();
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM phone_contacts WHERE {clause} ORDER BY offered_at DESC, call_id DESC LIMIT {limit}"
    );
    Ok(kefu_kit::db::fetch_all_as(conn, &sql, binds).await?)
}

pub async fn get_call(conn: &mut AnyConnection, call_id: &str) -> Result<Option<CallRow>, Error> {
    Ok(sqlx::query_as::<_, CallRow>(&format!("SELECT {CALL_COLUMNS} FROM phone_contacts WHERE call_id = $1"))
        .bind(call_id)
        .fetch_optional(conn)
        .await?)
}

pub async fn put_call(conn: &mut AnyConnection, c: &CallRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO phone_contacts (call_id, caller_number, queue, agent, offered_at, answered_at, abandoned_at, ring_count, \
         ticket_id, direction, source, talk_seconds, note, logged_by) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) ON CONFLICT (call_id) DO UPDATE SET caller_number = excluded.caller_number, \
         queue = excluded.queue, agent = excluded.agent, answered_at = excluded.answered_at, abandoned_at = excluded.abandoned_at, \
         ring_count = excluded.ring_count, ticket_id = excluded.ticket_id, talk_seconds = excluded.talk_seconds, note = excluded.note",
    )
    .bind(&c.call_id)
    .bind(&c.caller_number)
    .bind(&c.queue)
    .bind(&c.agent)
    .bind(c.offered_at)
    .bind(c.answered_at)
    .bind(c.abandoned_at)
    .bind(c.ring_count)
    .bind(&c.ticket_id)
    .bind(&c.direction)
    .bind(&c.source)
    .bind(c.talk_seconds)
    .bind(&c.note)
    .bind(&c.logged_by)
    .execute(conn)
    .await?;
    Ok(())
}
