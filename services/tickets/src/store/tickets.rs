//! Tickets and their timelines.
use kefu_kit::{
    Error,
    db::{Bind, Columns, Where, fetch_all_as},
    error::{Constraint, Constraints},
};
use kefu_proto::{common::v1::Channel, tickets::v1 as pb};
use sqlx::{AnyConnection, Row};

use crate::domain::TicketRef;
use kefu_sla::store::OPEN;

/// Wall-clock time, for `updated_at` (an audit stamp, not a business time:
/// business times come from the service clock).
pub fn now_wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The ticket tables' unique constraints in the domain's words, so that a
/// clash never reports the database's own text.
pub static CONSTRAINTS: Constraints = Constraints(&[
    Constraint {
        name: "tickets_request_id",
        columns: "tickets.request_id",
        message: "a ticket was already created with this request_id",
    },
    Constraint {
        name: "tickets_number_key",
        columns: "tickets.number",
        message: "another ticket took this ticket number at the same moment; retry",
    },
]);

/// `tickets.satisfaction` of a ticket nobody rated.
pub const NOT_RATED: i64 = 0;

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
    /// When the rating was given, on the service clock.
    pub rated_at: Option<i64>,
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

impl TicketRow {
    pub fn status(&self) -> pb::Status {
        pb::Status::try_from(self.status as i32).unwrap_or(pb::Status::Unspecified)
    }

    pub fn kind(&self) -> pb::TicketKind {
        pb::TicketKind::try_from(self.kind as i32).unwrap_or(pb::TicketKind::Unspecified)
    }

    pub fn channel(&self) -> Channel {
        Channel::try_from(self.channel as i32).unwrap_or(Channel::Unspecified)
    }

    pub fn set_status(&mut self, s: pb::Status) {
        self.status = i64::from(s as i32);
    }
}

pub const TICKET_COLUMNS: &str = "id, number, kind, channel, category, priority, status, subject, customer_id, customer_tier, \
    requester, queue, assignee, tags, request_type, materials, steps, filing_period, filing_deadline, department, \
    department_response, pending_reason, escalated_to, satisfaction, satisfaction_comment, rated_at, reopen_count, \
    resolution_cycle, next_response_cycle, first_replied_at, solved_at, version, created_by, created_at, updated_at";

pub async fn next_number(conn: &mut AnyConnection) -> Result<String, Error> {
    let n: i64 = if conn.backend_name() == "PostgreSQL" {
        // From a sequence (`prepare`): no create waits for another's commit.
        sqlx::query("SELECT nextval('ticket_numbers')").fetch_one(&mut *conn).await?.try_get(0)?
    } else {
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'ticket'").execute(&mut *conn).await?;
        sqlx::query("SELECT value FROM counters WHERE name = 'ticket'").fetch_one(conn).await?.try_get(0)?
    };
    Ok(format!("KF-{n:06}"))
}

/// The columns an update may change (and an insert writes too).
fn mutable_columns(t: &TicketRow) -> Columns {
    Columns::new()
        .with("channel", t.channel)
        .with("category", &t.category)
        .with("priority", t.priority)
        .with("status", t.status)
        .with("subject", &t.subject)
        .with("customer_tier", &t.customer_tier)
        .with("queue", &t.queue)
        .with("assignee", &t.assignee)
        .with("tags", &t.tags)
        .with("materials", &t.materials)
        .with("steps", &t.steps)
        .with("filing_period", &t.filing_period)
        .with("filing_deadline", &t.filing_deadline)
        .with("department", &t.department)
        .with("department_response", &t.department_response)
        .with("pending_reason", &t.pending_reason)
        .with("escalated_to", &t.escalated_to)
        .with("satisfaction", t.satisfaction)
        .with("satisfaction_comment", &t.satisfaction_comment)
        .with("rated_at", t.rated_at)
        .with("reopen_count", t.reopen_count)
        .with("resolution_cycle", t.resolution_cycle)
        .with("next_response_cycle", t.next_response_cycle)
        .with("first_replied_at", t.first_replied_at)
        .with("solved_at", t.solved_at)
        .with("updated_at", t.updated_at)
}

pub async fn insert_ticket(conn: &mut AnyConnection, t: &TicketRow, request_id: Option<&str>) -> Result<(), Error> {
    Columns::new()
        .with("id", &t.id)
        .with("number", &t.number)
        .with("kind", t.kind)
        .with("customer_id", &t.customer_id)
        .with("requester", &t.requester)
        .with("request_type", &t.request_type)
        .with("version", t.version)
        .with("request_id", request_id)
        .with("created_by", &t.created_by)
        .with("created_at", t.created_at)
        .and(mutable_columns(t))
        .insert(conn, "tickets")
        .await
        .map_err(|e| CONSTRAINTS.map(e))
}

/// Writes every mutable column if the version still holds; stamps the
/// update time and bumps the version on `t` too.
pub async fn save_ticket(conn: &mut AnyConnection, t: &mut TicketRow) -> Result<(), Error> {
    t.updated_at = now_wall_ms();
    if !mutable_columns(t).update_versioned(conn, "tickets", &t.id, t.version).await? {
        return Err(Error::Aborted("the ticket was changed by someone else; reload it and retry".into()));
    }
    t.version += 1;
    Ok(())
}

/// A ticket by id.
pub async fn get_ticket(conn: &mut AnyConnection, id: &str) -> Result<Option<TicketRow>, Error> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1");
    Ok(sqlx::query_as::<_, TicketRow>(&sql).bind(id).fetch_optional(conn).await?)
}

/// A ticket by id or by number.
pub async fn find_ticket(conn: &mut AnyConnection, r: &TicketRef) -> Result<Option<TicketRow>, Error> {
    match r {
        TicketRef::Id(id) => get_ticket(conn, id).await,
        TicketRef::Number(n) => {
            let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE number = $1");
            Ok(sqlx::query_as::<_, TicketRow>(&sql).bind(n).fetch_optional(conn).await?)
        }
    }
}

/// A ticket by id or number; NOT_FOUND when there is none.
pub async fn require_ticket(conn: &mut AnyConnection, r: &TicketRef) -> Result<TicketRow, Error> {
    find_ticket(conn, r).await?.ok_or_else(|| Error::NotFound(format!("ticket {r}")))
}

/// Which tickets a list returns; every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<pb::Status>,
    pub assignee: Option<String>,
    pub queue: Option<String>,
    /// Waiting on this person or expert group (pending internal).
    pub escalated_to: Option<String>,
    pub customer_id: Option<String>,
    pub sla: Option<SlaFilter>,
    pub kind: Option<pb::TicketKind>,
    pub channel: Option<i32>,
    pub category: Option<String>,
    pub filing_period: Option<String>,
    /// In the subject (any case) or the ticket number.
    pub text: Option<String>,
    /// Not solved or closed.
    pub open_only: bool,
    /// Keyset paging: only tickets whose id sorts after this one.
    pub after_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaFilter {
    /// An open target has breached.
    Breached,
    /// An open, running, not yet breached target is due at or before this instant.
    DueBy(i64),
}

/// Up to `limit` tickets matching `f`, by id.
pub async fn list_tickets(conn: &mut AnyConnection, f: &TicketFilter, limit: i64) -> Result<Vec<TicketRow>, Error> {
    let mut w = Where::new();
    if let Some(s) = f.status {
        w.and("t.status = $?", i64::from(s as i32));
    }
    if let Some(a) = &f.assignee {
        w.and("t.assignee = $?", a.as_str());
    }
    if let Some(q) = &f.queue {
        w.and("t.queue = $?", q.as_str());
    }
    if let Some(e) = &f.escalated_to {
        w.and("t.escalated_to = $?", e.as_str());
    }
    if let Some(c) = &f.customer_id {
        w.and("t.customer_id = $?", c.as_str());
    }
    if let Some(k) = f.kind {
        w.and("t.kind = $?", i64::from(k as i32));
    }
    if let Some(c) = f.channel {
        w.and("t.channel = $?", i64::from(c));
    }
    if let Some(c) = &f.category {
        w.and("t.category = $?", c.as_str());
    }
    if let Some(p) = &f.filing_period {
        w.and("t.filing_period = $?", p.as_str());
    }
    if let Some(text) = &f.text {
        // LIKE's own wildcards in the text are matched literally.
        let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        w.and_many(
            "(lower(t.subject) LIKE $? ESCAPE '\\' OR t.number = $?)",
            [Bind::Text(format!("%{escaped}%")), Bind::Text(text.trim().to_uppercase())],
        );
    }
    if f.open_only && f.status.is_none() {
        w.and_sql(&format!("t.status NOT IN ({}, {})", pb::Status::Solved as i32, pb::Status::Closed as i32));
    }
    // SQLite answers "breached" by walking the partial index of breached open
    // targets in ticket-id order and stopping at a page (its planner would
    // otherwise gather and sort every breached ticket); PostgreSQL plans
    // the semi-join itself.
    let walk_breached = f.sla == Some(SlaFilter::Breached) && conn.backend_name() != "PostgreSQL";
    match f.sla {
        None => {}
        Some(SlaFilter::Breached) if walk_breached => {
            w.and_sql(&format!("s.open = {OPEN} AND s.breached_at IS NOT NULL"));
        }
        Some(SlaFilter::Breached) => {
            w.and_sql(&format!(
                "t.id IN (SELECT s.record_id FROM sla_targets s WHERE s.open = {OPEN} AND s.breached_at IS NOT NULL)"
            ));
        }
        Some(SlaFilter::DueBy(horizon)) => {
            w.and(
                // Open targets are never fulfilled; saying so lets the partial
                // index of unbreached due times serve the range.
                &format!(
                    "t.id IN (SELECT s.record_id FROM sla_targets s WHERE s.open = {OPEN} \
                     AND s.breached_at IS NULL AND s.fulfilled_at IS NULL AND s.due_at IS NOT NULL AND s.due_at <= $?)"
                ),
                horizon,
            );
        }
    }
    if let Some(after) = &f.after_id {
        w.and("t.id > $?", after.as_str());
        if walk_breached {
            w.and("s.record_id > $?", after.as_str());
        }
    }
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(Bind::Int(limit));
    let sql = if walk_breached {
        format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE id IN (SELECT s.record_id FROM sla_targets s \
             CROSS JOIN tickets t ON t.id = s.record_id WHERE {clause} GROUP BY s.record_id ORDER BY s.record_id \
             LIMIT ${limit_at}) ORDER BY id"
        )
    } else {
        format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE {clause} ORDER BY t.id LIMIT ${limit_at}")
    };
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

// ------------------------------------------------------------ timeline

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

/// Removes what the tickets of `customer_id` hold about the person: the
/// requester and satisfaction comment cleared, the customer's own messages
/// replaced, and email addresses and phone or ID numbers blotted out of
/// subjects, materials, notes and replies. Writes only rows that change;
/// returns how many did (so running it again changes nothing).
pub async fn redact_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<usize, Error> {
    use crate::domain::{ERASED, redact_identifiers};
    let rows: Vec<(String, String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT id, requester, subject, materials, steps, department_response, satisfaction_comment \
         FROM tickets WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut changed = 0;
    // The person's phone numbers as the tickets knew them, for the call log.
    let mut numbers: Vec<String> = Vec::new();
    for (_, requester, subject, ..) in &rows {
        numbers.extend(crate::domain::phone_numbers_in(requester));
        numbers.extend(crate::domain::phone_numbers_in(subject));
    }
    for (id, requester, subject, materials, steps, response, comment) in &rows {
        let requester_after = if requester.is_empty() { String::new() } else { ERASED.to_owned() };
        let after = (
            requester_after,
            redact_identifiers(subject),
            redact_identifiers(materials),
            redact_identifiers(steps),
            redact_identifiers(response),
        );
        if (&after.0, &after.1, &after.2, &after.3, &after.4) != (requester, subject, materials, steps, response)
            || !comment.is_empty()
        {
            sqlx::query(
                "UPDATE tickets SET requester = $1, subject = $2, materials = $3, steps = $4, department_response = $5, \
                 satisfaction_comment = '', updated_at = $6 WHERE id = $7",
            )
            .bind(&after.0)
            .bind(&after.1)
            .bind(&after.2)
            .bind(&after.3)
            .bind(&after.4)
            .bind(now_wall_ms())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            changed += 1;
        }
        let entries: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, kind, author, body FROM timeline WHERE ticket_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        // Calls linked to the ticket: their number and the agent's note go.
        let calls: Vec<(String, String)> =
            sqlx::query_as("SELECT call_id, caller_number FROM phone_contacts WHERE ticket_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        for (call_id, number) in calls {
            if !number.is_empty() && number != ERASED {
                numbers.push(number);
            }
            changed += usize::try_from(
                sqlx::query("UPDATE phone_contacts SET note = '' WHERE call_id = $1 AND note <> ''")
                    .bind(call_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
            )
            .unwrap_or(0);
        }
        for (entry, kind, author, body) in entries {
            numbers.extend(crate::domain::phone_numbers_in(&body));
            let (new_author, new_body) = if kind == "customer_message" {
                (ERASED.to_owned(), ERASED.to_owned())
            } else {
                (redact_identifiers(&author), redact_identifiers(&body))
            };
            if (&new_author, &new_body) != (&author, &body) {
                sqlx::query("UPDATE timeline SET author = $1, body = $2 WHERE id = $3")
                    .bind(new_author)
                    .bind(new_body)
                    .bind(entry)
                    .execute(&mut *conn)
                    .await?;
                changed += 1;
            }
        }
    }
    changed += forget_callers(conn, numbers).await?;
    Ok(changed)
}

/// Blots the erased person's numbers out of the call log (which links a
/// call to no customer, only to the number that called).
async fn forget_callers(conn: &mut AnyConnection, mut numbers: Vec<String>) -> Result<usize, Error> {
    numbers.sort();
    numbers.dedup();
    if numbers.is_empty() {
        return Ok(0);
    }
    let with_country: Vec<String> = numbers.iter().map(|n| format!("+86{n}")).collect();
    let mut w = kefu_kit::db::Where::new();
    w.any_of("caller_number", numbers.into_iter().chain(with_country));
    let (clause, binds) = w.build();
    // The marker is a constant without quotes: written into the statement.
    // The agent's notes on those calls go with the number.
    let sql =
        format!("UPDATE phone_contacts SET caller_number = '{}', note = '' WHERE {clause}", crate::domain::ERASED);
    Ok(usize::try_from(kefu_kit::db::execute(conn, &sql, binds).await?).unwrap_or(0))
}

/// Remembers that `customer_id` was erased.
pub async fn mark_erased(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO erased_customers (customer_id, erased_at) VALUES ($1, $2) ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer_id)
    .bind(now_wall_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every customer tickets knows was erased.
/// Whether `customer_id` was erased.
pub async fn is_erased(conn: &mut AnyConnection, customer_id: &str) -> Result<bool, Error> {
    let row = sqlx::query("SELECT 1 FROM erased_customers WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

pub async fn erased_customers(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT customer_id FROM erased_customers ORDER BY customer_id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// What the store needs besides the migrations: on PostgreSQL, the sequence
/// ticket numbers come from, continuing the counter used before it.
pub async fn prepare(pool: &sqlx::AnyPool) -> anyhow::Result<()> {
    // After the counter and after every number already given, whichever is
    // higher (`KF-` and digits).
    kefu_kit::db::ensure_sequence(
        pool,
        "ticket_numbers",
        "SELECT GREATEST((SELECT value FROM counters WHERE name = 'ticket'), \
         COALESCE((SELECT MAX(CAST(SUBSTRING(number FROM 4) AS BIGINT)) FROM tickets WHERE number ~ '^KF-[0-9]{1,18}$'), 0))",
    )
    .await
}
