//! SQL for the tickets service (portable: SQLite and PostgreSQL).
use kefu_kit::Error;
use kefu_sla::{ClockKind, Metric, SlaEvent, Target, TargetKey};
use sqlx::{AnyConnection, Row, any::AnyRow};

pub fn now_wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub id: String,
    pub number: String,
    pub kind: i64,
    pub channel: i64,
    pub category: String,
    pub priority: i64,
    pub status: i64,
    pub subject: String,
    pub customer_id: String,
    pub customer_tier: String,
    pub requester: String,
    pub queue: String,
    pub assignee: String,
    pub tags: String,
    pub request_type: String,
    pub materials: String,
    pub steps: String,
    pub filing_period: String,
    pub filing_deadline: String,
    pub department: String,
    pub department_response: String,
    pub pending_reason: String,
    pub escalated_to: String,
    pub satisfaction: i64,
    pub satisfaction_comment: String,
    pub reopen_count: i64,
    pub resolution_cycle: i64,
    pub next_response_cycle: i64,
    pub first_replied_at: Option<i64>,
    pub solved_at: Option<i64>,
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const TICKET_COLUMNS: &str = "id, number, kind, channel, category, priority, status, subject, customer_id, customer_tier, \
    requester, queue, assignee, tags, request_type, materials, steps, filing_period, filing_deadline, department, \
    department_response, pending_reason, escalated_to, satisfaction, satisfaction_comment, reopen_count, resolution_cycle, \
    next_response_cycle, first_replied_at, solved_at, version, created_by, created_at, updated_at";

pub async fn next_number(conn: &mut AnyConnection) -> Result<String, Error> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'ticket'").execute(&mut *conn).await?;
    let n: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'ticket'").fetch_one(conn).await?.try_get(0)?;
    Ok(format!("KF-{n:06}"))
}

pub async fn insert_ticket(conn: &mut AnyConnection, t: &TicketRow, request_id: Option<&str>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO tickets (id, number, kind, channel, category, priority, status, subject, customer_id, customer_tier, \
         requester, queue, assignee, tags, request_type, materials, steps, filing_period, filing_deadline, department, \
         department_response, pending_reason, escalated_to, satisfaction, satisfaction_comment, reopen_count, \
         resolution_cycle, next_response_cycle, first_replied_at, solved_at, version, request_id, created_by, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31,$32,$33,$34,$35)",
    )
    .bind(&t.id)
    .bind(&t.number)
    .bind(t.kind)
    .bind(t.channel)
    .bind(&t.category)
    .bind(t.priority)
    .bind(t.status)
    .bind(&t.subject)
    .bind(&t.customer_id)
    .bind(&t.customer_tier)
    .bind(&t.requester)
    .bind(&t.queue)
    .bind(&t.assignee)
    .bind(&t.tags)
    .bind(&t.request_type)
    .bind(&t.materials)
    .bind(&t.steps)
    .bind(&t.filing_period)
    .bind(&t.filing_deadline)
    .bind(&t.department)
    .bind(&t.department_response)
    .bind(&t.pending_reason)
    .bind(&t.escalated_to)
    .bind(t.satisfaction)
    .bind(&t.satisfaction_comment)
    .bind(t.reopen_count)
    .bind(t.resolution_cycle)
    .bind(t.next_response_cycle)
    .bind(t.first_replied_at)
    .bind(t.solved_at)
    .bind(t.version)
    .bind(request_id)
    .bind(&t.created_by)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every mutable column if the version still holds; stamps the
/// update time and bumps the version on `t` too.
pub async fn save_ticket(conn: &mut AnyConnection, t: &mut TicketRow) -> Result<(), Error> {
    t.updated_at = now_wall_ms();
    let done = sqlx::query(
        "UPDATE tickets SET channel = $1, category = $2, priority = $3, status = $4, subject = $5, customer_tier = $6, \
         queue = $7, assignee = $8, tags = $9, materials = $10, steps = $11, filing_period = $12, filing_deadline = $13, \
         department = $14, department_response = $15, pending_reason = $16, escalated_to = $17, satisfaction = $18, \
         satisfaction_comment = $19, reopen_count = $20, resolution_cycle = $21, next_response_cycle = $22, \
         first_replied_at = $23, solved_at = $24, updated_at = $25, version = version + 1 \
         WHERE id = $26 AND version = $27",
    )
    .bind(t.channel)
    .bind(&t.category)
    .bind(t.priority)
    .bind(t.status)
    .bind(&t.subject)
    .bind(&t.customer_tier)
    .bind(&t.queue)
    .bind(&t.assignee)
    .bind(&t.tags)
    .bind(&t.materials)
    .bind(&t.steps)
    .bind(&t.filing_period)
    .bind(&t.filing_deadline)
    .bind(&t.department)
    .bind(&t.department_response)
    .bind(&t.pending_reason)
    .bind(&t.escalated_to)
    .bind(t.satisfaction)
    .bind(&t.satisfaction_comment)
    .bind(t.reopen_count)
    .bind(t.resolution_cycle)
    .bind(t.next_response_cycle)
    .bind(t.first_replied_at)
    .bind(t.solved_at)
    .bind(t.updated_at)
    .bind(&t.id)
    .bind(t.version)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Aborted("the ticket was changed by someone else; reload it and retry".into()));
    }
    t.version += 1;
    Ok(())
}

pub async fn get_ticket(conn: &mut AnyConnection, id_or_number: &str) -> Result<Option<TicketRow>, Error> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1 OR number = $2");
    Ok(sqlx::query_as::<_, TicketRow>(&sql).bind(id_or_number).bind(id_or_number).fetch_optional(conn).await?)
}

pub async fn require_ticket(conn: &mut AnyConnection, id: &str) -> Result<TicketRow, Error> {
    get_ticket(conn, id).await?.ok_or_else(|| Error::NotFound(format!("ticket {id}")))
}

pub async fn ticket_by_request_id(conn: &mut AnyConnection, request_id: &str) -> Result<Option<TicketRow>, Error> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE request_id = $1");
    Ok(sqlx::query_as::<_, TicketRow>(&sql).bind(request_id).fetch_optional(conn).await?)
}

pub use kefu_kit::db::Bind;

pub async fn list_tickets(
    conn: &mut AnyConnection,
    where_sql: &str,
    binds: Vec<Bind>,
    limit: i64,
) -> Result<Vec<TicketRow>, Error> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE {where_sql} ORDER BY t.id LIMIT {limit}");
    Ok(kefu_kit::db::fetch_all_as(conn, &sql, binds).await?)
}

// ---------------------------------------------------------------- timeline

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimelineRow {
    pub id: String,
    pub ticket_id: String,
    pub kind: String,
    pub author: String,
    pub body: String,
    pub at: i64,
}

pub async fn add_timeline(
    conn: &mut AnyConnection,
    ticket_id: &str,
    kind: &str,
    author: &str,
    body: &str,
    at: i64,
) -> Result<TimelineRow, Error> {
    let row = TimelineRow {
        id: uuid::Uuid::now_v7().to_string(),
        ticket_id: ticket_id.to_owned(),
        kind: kind.to_owned(),
        author: author.to_owned(),
        body: body.to_owned(),
        at,
    };
    sqlx::query("INSERT INTO timeline (id, ticket_id, kind, author, body, at) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(&row.id)
        .bind(&row.ticket_id)
        .bind(&row.kind)
        .bind(&row.author)
        .bind(&row.body)
        .bind(row.at)
        .execute(conn)
        .await?;
    Ok(row)
}

pub async fn timeline(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<TimelineRow>, Error> {
    Ok(sqlx::query_as::<_, TimelineRow>(
        "SELECT id, ticket_id, kind, author, body, at FROM timeline WHERE ticket_id = $1 ORDER BY at, id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

// ---------------------------------------------------------------- SLA targets

pub const TARGET_COLUMNS: &str = "record_id, metric, cycle, policy_id, clock, duration_ms, warn_percent, started_at, \
    consumed_ms, running_since, cap_at, due_at, warn_at, warned_at, breached_at, fulfilled_at, escalation_due_at, escalated_at, open";

#[derive(Debug, Clone)]
pub struct TargetRow {
    pub target: Target,
    pub policy_id: String,
    pub escalation_due_at: Option<i64>,
    pub escalated_at: Option<i64>,
    pub open: bool,
}

fn clock_name(c: ClockKind) -> &'static str {
    match c {
        ClockKind::Business => "business",
        ClockKind::Calendar => "calendar",
    }
}

pub fn target_from_row(r: &AnyRow) -> Result<TargetRow, Error> {
    let metric: String = r.try_get("metric")?;
    let metric = Metric::parse(&metric).ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown metric {metric:?}")))?;
    let clock: String = r.try_get("clock")?;
    Ok(TargetRow {
        target: Target {
            key: TargetKey { record_id: r.try_get("record_id")?, metric, cycle: r.try_get("cycle")? },
            clock: if clock == "calendar" { ClockKind::Calendar } else { ClockKind::Business },
            duration_ms: r.try_get("duration_ms")?,
            warn_percent: u8::try_from(r.try_get::<i64, _>("warn_percent")?).unwrap_or(80),
            started_at: r.try_get("started_at")?,
            consumed_ms: r.try_get("consumed_ms")?,
            running_since: r.try_get("running_since")?,
            cap_at: r.try_get("cap_at")?,
            due_at: r.try_get("due_at")?,
            warn_at: r.try_get("warn_at")?,
            warned_at: r.try_get("warned_at")?,
            breached_at: r.try_get("breached_at")?,
            fulfilled_at: r.try_get("fulfilled_at")?,
        },
        policy_id: r.try_get("policy_id")?,
        escalation_due_at: r.try_get("escalation_due_at")?,
        escalated_at: r.try_get("escalated_at")?,
        open: r.try_get::<i64, _>("open")? == 1,
    })
}

/// Inserts or replaces a target's durable state.
pub async fn put_target(conn: &mut AnyConnection, row: &TargetRow) -> Result<(), Error> {
    let t = &row.target;
    sqlx::query(
        "INSERT INTO sla_targets (record_id, metric, cycle, policy_id, clock, duration_ms, warn_percent, started_at, \
         consumed_ms, running_since, cap_at, due_at, warn_at, warned_at, breached_at, fulfilled_at, escalation_due_at, escalated_at, open) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) \
         ON CONFLICT (record_id, metric, cycle) DO UPDATE SET policy_id = excluded.policy_id, clock = excluded.clock, \
         duration_ms = excluded.duration_ms, warn_percent = excluded.warn_percent, consumed_ms = excluded.consumed_ms, \
         running_since = excluded.running_since, cap_at = excluded.cap_at, due_at = excluded.due_at, warn_at = excluded.warn_at, \
         warned_at = excluded.warned_at, breached_at = excluded.breached_at, fulfilled_at = excluded.fulfilled_at, \
         escalation_due_at = excluded.escalation_due_at, escalated_at = excluded.escalated_at, open = excluded.open",
    )
    .bind(&t.key.record_id)
    .bind(t.key.metric.as_str())
    .bind(t.key.cycle)
    .bind(&row.policy_id)
    .bind(clock_name(t.clock))
    .bind(t.duration_ms)
    .bind(i64::from(t.warn_percent))
    .bind(t.started_at)
    .bind(t.consumed_ms)
    .bind(t.running_since)
    .bind(t.cap_at)
    .bind(t.due_at)
    .bind(t.warn_at)
    .bind(t.warned_at)
    .bind(t.breached_at)
    .bind(t.fulfilled_at)
    .bind(row.escalation_due_at)
    .bind(row.escalated_at)
    .bind(i64::from(row.open))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn targets_of(conn: &mut AnyConnection, record_id: &str) -> Result<Vec<TargetRow>, Error> {
    let sql = format!("SELECT {TARGET_COLUMNS} FROM sla_targets WHERE record_id = $1 ORDER BY metric, cycle");
    let rows = sqlx::query(&sql).bind(record_id).fetch_all(conn).await?;
    rows.iter().map(target_from_row).collect()
}

pub async fn get_target(conn: &mut AnyConnection, key: &TargetKey) -> Result<Option<TargetRow>, Error> {
    let sql = format!("SELECT {TARGET_COLUMNS} FROM sla_targets WHERE record_id = $1 AND metric = $2 AND cycle = $3");
    let row =
        sqlx::query(&sql).bind(&key.record_id).bind(key.metric.as_str()).bind(key.cycle).fetch_optional(conn).await?;
    row.as_ref().map(target_from_row).transpose()
}

/// Open targets after a cursor with their ticket's queue and assignee, for
/// rebuilding the live view page by page.
pub async fn open_targets_page(
    conn: &mut AnyConnection,
    after: &(String, String, i64),
    limit: i64,
) -> Result<Vec<(TargetRow, String, String)>, Error> {
    let cols: String = TARGET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, COALESCE(t.queue, '') AS t_queue, COALESCE(t.assignee, '') AS t_assignee \
         FROM sla_targets s LEFT JOIN tickets t ON t.id = s.record_id \
         WHERE (s.record_id, s.metric, s.cycle) > ($1, $2, $3) AND s.open = 1 \
         ORDER BY s.record_id, s.metric, s.cycle LIMIT {limit}"
    );
    // A row-value comparison walks the primary key: each page is an index range.
    let rows = sqlx::query(&sql).bind(&after.0).bind(&after.1).bind(after.2).fetch_all(conn).await?;
    rows.iter().map(|r| Ok((target_from_row(r)?, r.try_get("t_queue")?, r.try_get("t_assignee")?))).collect()
}

/// Records a breach only if none was recorded: the arbiter of "exactly once".
pub async fn claim_breach(
    conn: &mut AnyConnection,
    key: &TargetKey,
    breached_at: i64,
    escalation_due_at: Option<i64>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET breached_at = $1, warn_at = NULL, escalation_due_at = $2 \
         WHERE record_id = $3 AND metric = $4 AND cycle = $5 AND breached_at IS NULL AND fulfilled_at IS NULL \
         AND running_since IS NOT NULL AND due_at IS NOT NULL AND due_at <= $6",
    )
    .bind(breached_at)
    .bind(escalation_due_at)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(breached_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn claim_warning(conn: &mut AnyConnection, key: &TargetKey, now: i64) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET warned_at = $1, warn_at = NULL \
         WHERE record_id = $2 AND metric = $3 AND cycle = $4 AND warned_at IS NULL AND breached_at IS NULL \
         AND fulfilled_at IS NULL AND running_since IS NOT NULL AND warn_at IS NOT NULL AND warn_at <= $5",
    )
    .bind(now)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn claim_escalation(conn: &mut AnyConnection, key: &TargetKey, now: i64) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET escalated_at = $1 WHERE record_id = $2 AND metric = $3 AND cycle = $4 \
         AND escalated_at IS NULL AND escalation_due_at IS NOT NULL AND escalation_due_at <= $5 AND fulfilled_at IS NULL",
    )
    .bind(now)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn escalations_due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<TargetRow>, Error> {
    let sql = format!(
        "SELECT {TARGET_COLUMNS} FROM sla_targets WHERE escalation_due_at IS NOT NULL AND escalation_due_at <= $1 \
         AND escalated_at IS NULL AND fulfilled_at IS NULL ORDER BY escalation_due_at LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(conn).await?;
    rows.iter().map(target_from_row).collect()
}

/// Stores an event once; false when its id was already recorded.
pub async fn insert_event(conn: &mut AnyConnection, e: &SlaEvent) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO sla_events (id, record_id, metric, cycle, kind, at, due_at, queue, assignee) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&e.id)
    .bind(&e.key.record_id)
    .bind(e.key.metric.as_str())
    .bind(e.key.cycle)
    .bind(e.kind.as_str())
    .bind(e.at_ms)
    .bind(e.due_at_ms)
    .bind(&e.queue)
    .bind(&e.assignee)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count_events(conn: &mut AnyConnection, record_id: &str, kind: &str) -> Result<i64, Error> {
    Ok(sqlx::query("SELECT COUNT(*) FROM sla_events WHERE record_id = $1 AND kind = $2")
        .bind(record_id)
        .bind(kind)
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

// ---------------------------------------------------------------- settings, policies, request types

pub async fn get_setting(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub async fn put_setting(conn: &mut AnyConnection, name: &str, value: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn policies(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    let rows = sqlx::query("SELECT body FROM sla_policies ORDER BY position, id").fetch_all(conn).await?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::from)).collect()
}

pub async fn put_policy(conn: &mut AnyConnection, id: &str, position: i64, body: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO sla_policies (id, position, body) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET position = excluded.position, body = excluded.body",
    )
    .bind(id)
    .bind(position)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_policy(conn: &mut AnyConnection, id: &str) -> Result<bool, Error> {
    Ok(sqlx::query("DELETE FROM sla_policies WHERE id = $1").bind(id).execute(conn).await?.rows_affected() == 1)
}

pub async fn request_types(conn: &mut AnyConnection) -> Result<Vec<(String, String, String, String)>, Error> {
    let rows = sqlx::query("SELECT name, category, required_materials, steps FROM request_types ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
}

pub async fn put_request_type(
    conn: &mut AnyConnection,
    name: &str,
    category: &str,
    materials: &str,
    steps: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO request_types (name, category, required_materials, steps) VALUES ($1,$2,$3,$4) \
         ON CONFLICT (name) DO UPDATE SET category = excluded.category, required_materials = excluded.required_materials, steps = excluded.steps",
    )
    .bind(name)
    .bind(category)
    .bind(materials)
    .bind(steps)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- email, phone

pub async fn email_ticket(conn: &mut AnyConnection, message_id: &str) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT ticket_id FROM email_messages WHERE message_id = $1")
        .bind(message_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub async fn put_email(conn: &mut AnyConnection, message_id: &str, ticket_id: &str, at: i64) -> Result<(), Error> {
    sqlx::query("INSERT INTO email_messages (message_id, ticket_id, at) VALUES ($1,$2,$3)")
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
}

pub async fn get_call(conn: &mut AnyConnection, call_id: &str) -> Result<Option<CallRow>, Error> {
    Ok(sqlx::query_as::<_, CallRow>(
        "SELECT call_id, caller_number, queue, agent, offered_at, answered_at, abandoned_at, ring_count FROM phone_contacts WHERE call_id = $1",
    )
    .bind(call_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn put_call(conn: &mut AnyConnection, c: &CallRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO phone_contacts (call_id, caller_number, queue, agent, offered_at, answered_at, abandoned_at, ring_count) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (call_id) DO UPDATE SET caller_number = excluded.caller_number, \
         queue = excluded.queue, agent = excluded.agent, answered_at = excluded.answered_at, abandoned_at = excluded.abandoned_at, \
         ring_count = excluded.ring_count",
    )
    .bind(&c.call_id)
    .bind(&c.caller_number)
    .bind(&c.queue)
    .bind(&c.agent)
    .bind(c.offered_at)
    .bind(c.answered_at)
    .bind(c.abandoned_at)
    .bind(c.ring_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// Events recorded after `since_id` (by time, then id), for watchers that
/// reconnect. An unknown id replays nothing.
pub async fn events_after(conn: &mut AnyConnection, since_id: &str, limit: i64) -> Result<Vec<SlaEvent>, Error> {
    let sql = format!(
        "SELECT e.id, e.record_id, e.metric, e.cycle, e.kind, e.at, e.due_at, e.queue, e.assignee FROM sla_events e, \
         (SELECT at, id FROM sla_events WHERE id = $1) s WHERE e.at > s.at OR (e.at = s.at AND e.id > s.id) \
         ORDER BY e.at, e.id LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(since_id).fetch_all(conn).await?;
    let mut out = Vec::new();
    for r in rows {
        let metric: String = r.try_get(2)?;
        let kind: String = r.try_get(4)?;
        let (Some(metric), Some(kind)) = (Metric::parse(&metric), kefu_sla::EventKind::parse(&kind)) else { continue };
        out.push(SlaEvent {
            id: r.try_get(0)?,
            key: TargetKey { record_id: r.try_get(1)?, metric, cycle: r.try_get(3)? },
            kind,
            at_ms: r.try_get(5)?,
            due_at_ms: r.try_get(6)?,
            queue: r.try_get(7)?,
            assignee: r.try_get(8)?,
        });
    }
    Ok(out)
}
