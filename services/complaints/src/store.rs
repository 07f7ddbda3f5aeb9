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
    /// The category's label (kept in step when the label changes).
    pub category_label: String,
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
    pub findings: String,
    pub root_cause: i64,
    pub responsible_staff: String,
    pub responsible_department: String,
    pub upheld: Option<i64>,
    pub finding_by: String,
    pub finding_at: Option<i64>,
    pub decision_channel: i64,
    pub decision_at: Option<i64>,
    pub decision_summary: String,
    pub compensation_paid_fen: i64,
    pub satisfaction: i64,
    pub satisfaction_comment: String,
    /// How many times a missed deadline escalated it.
    pub escalation_level: i64,
    pub version: i64,
}

const COLUMNS: &str = "id, number, state, source, channel, customer_id, anonymous, ticket_id, subject_kind, subject, \
    category, category_label, severity, description, demand_kind, demand_amount_fen, demand_detail, referred_by, referral_reference, \
    referral_due_at, repeat_of, handler, preliminary_opinion, response, mediator, legal_hold, reopen_count, recorded_by, \
    received_at, created_at, updated_at, closed_at, findings, root_cause, responsible_staff, responsible_department, \
    upheld, finding_by, finding_at, decision_channel, decision_at, decision_summary, compensation_paid_fen, \
    satisfaction, satisfaction_comment, escalation_level, version";

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
        .with("findings", c.findings.as_str())
        .with("root_cause", c.root_cause)
        .with("responsible_staff", c.responsible_staff.as_str())
        .with("responsible_department", c.responsible_department.as_str())
        .with("upheld", c.upheld)
        .with("finding_by", c.finding_by.as_str())
        .with("finding_at", c.finding_at)
        .with("decision_channel", c.decision_channel)
        .with("decision_at", c.decision_at)
        .with("decision_summary", c.decision_summary.as_str())
        .with("compensation_paid_fen", c.compensation_paid_fen)
        .with("satisfaction", c.satisfaction)
        .with("satisfaction_comment", c.satisfaction_comment.as_str())
        .with("escalation_level", c.escalation_level)
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
        .with("category_label", c.category_label.as_str())
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
    until: i64,
) -> Result<Option<String>, Error> {
    let row = sqlx::query(
        "SELECT number FROM complaints WHERE customer_id = $1 AND category = $2 AND received_at >= $3 \
         AND received_at <= $4 ORDER BY received_at DESC LIMIT 1",
    )
    .bind(customer_id)
    .bind(category)
    .bind(since)
    .bind(until)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The open complaint a ticket was escalated into, if any (its number).
pub async fn open_for_ticket(conn: &mut AnyConnection, ticket_id: &str) -> Result<Option<String>, Error> {
    let row = sqlx::query("SELECT number FROM complaints WHERE ticket_id = $1 AND state <> $2 LIMIT 1")
        .bind(ticket_id)
        .bind(i64::from(kefu_proto::complaints::v1::ComplaintState::Closed as i32))
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
    /// Leaves out complaints about this person (a customer's complaints
    /// listed by someone who must not learn who complained about them).
    pub not_about: Option<String>,
    /// Newest first: complaints before this (created_at, id).
    pub before: Option<(i64, String)>,
}

/// `subject_kind` of a complaint about a staff member.
const STAFF_SUBJECT: i64 = kefu_proto::complaints::v1::SubjectKind::Staff as i64;

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
    if let Some(p) = &f.not_about {
        w.and_many(
            "NOT ((subject_kind = $? AND subject = $?) OR responsible_staff = $?)",
            [STAFF_SUBJECT.into(), p.as_str().into(), p.as_str().into()],
        );
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

/// Complaints received in `[from, to)` (monitoring).
pub async fn received_between(conn: &mut AnyConnection, from: i64, to: i64) -> Result<Vec<ComplaintRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM complaints WHERE received_at >= $1 AND received_at < $2 ORDER BY received_at"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// The first time each complaint received in `[from, to)` entered either
/// of two states (from the history).
pub async fn first_entered(
    conn: &mut AnyConnection,
    states: (i64, i64),
    from: i64,
    to: i64,
) -> Result<std::collections::HashMap<String, i64>, Error> {
    let rows = sqlx::query(
        "SELECT h.complaint_id, MIN(h.at) FROM complaint_history h JOIN complaints c ON c.id = h.complaint_id \
         WHERE h.to_state IN ($1, $4) AND c.received_at >= $2 AND c.received_at < $3 GROUP BY h.complaint_id",
    )
    .bind(states.0)
    .bind(from)
    .bind(to)
    .bind(states.1)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// Complaints against a staff member in `[from, to)`: (received, upheld
/// with them responsible, about their attitude).
pub async fn staff_counts(conn: &mut AnyConnection, staff: &str, from: i64, to: i64) -> Result<(i64, i64, i64), Error> {
    let row = sqlx::query(
        "SELECT \
           COALESCE(SUM(CASE WHEN subject_kind = $4 AND subject <> '' THEN (CASE WHEN subject = $1 THEN 1 ELSE 0 END) \
                        ELSE (CASE WHEN responsible_staff = $1 THEN 1 ELSE 0 END) END), 0), \
           COALESCE(SUM(CASE WHEN upheld = 1 AND responsible_staff = $1 THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN category = 'service_attitude' AND ((subject_kind = $4 AND subject = $1) OR responsible_staff = $1) THEN 1 ELSE 0 END), 0) \
         FROM complaints WHERE received_at >= $2 AND received_at < $3 AND (subject = $1 OR responsible_staff = $1)",
    )
    .bind(staff)
    .bind(from)
    .bind(to)
    .bind(i64::from(kefu_proto::complaints::v1::SubjectKind::Staff as i32))
    .fetch_one(conn)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// A corrective or preventive action as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActionRow {
    pub id: String,
    pub complaint_id: String,
    pub kind: i64,
    pub description: String,
    pub owner: String,
    pub due_date: String,
    pub status: i64,
    pub evidence: String,
    pub completed_at: Option<i64>,
    pub completed_by: String,
    pub verify_after_days: i64,
    pub verified_by: String,
    pub verified_at: Option<i64>,
    pub verification_note: String,
    pub created_by: String,
    pub created_at: i64,
    pub version: i64,
}

const ACTION_COLUMNS: &str = "id, complaint_id, kind, description, owner, due_date, status, evidence, completed_at, \
    completed_by, verify_after_days, verified_by, verified_at, verification_note, created_by, created_at, version";

fn action_mutable(a: &ActionRow) -> Columns {
    Columns::new()
        .with("status", a.status)
        .with("evidence", a.evidence.as_str())
        .with("completed_at", a.completed_at)
        .with("completed_by", a.completed_by.as_str())
        .with("verified_by", a.verified_by.as_str())
        .with("verified_at", a.verified_at)
        .with("verification_note", a.verification_note.as_str())
}

pub async fn insert_action(conn: &mut AnyConnection, a: &ActionRow) -> Result<(), Error> {
    Columns::new()
        .with("id", a.id.as_str())
        .with("complaint_id", a.complaint_id.as_str())
        .with("kind", a.kind)
        .with("description", a.description.as_str())
        .with("owner", a.owner.as_str())
        .with("due_date", a.due_date.as_str())
        .with("verify_after_days", a.verify_after_days)
        .with("created_by", a.created_by.as_str())
        .with("created_at", a.created_at)
        .with("version", a.version)
        .and(action_mutable(a))
        .insert(conn, "corrective_actions")
        .await?;
    Ok(())
}

pub async fn save_action(conn: &mut AnyConnection, a: &mut ActionRow) -> Result<(), Error> {
    if !action_mutable(a).update_versioned(conn, "corrective_actions", &a.id, a.version).await? {
        return Err(Error::Aborted("the action was changed by someone else; reload it and retry".into()));
    }
    a.version += 1;
    Ok(())
}

pub async fn get_action(conn: &mut AnyConnection, id: &str) -> Result<Option<ActionRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ACTION_COLUMNS} FROM corrective_actions WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// A complaint's actions in order, or (None) every open action by due date.
pub async fn actions(conn: &mut AnyConnection, complaint_id: Option<&str>) -> Result<Vec<ActionRow>, Error> {
    match complaint_id {
        Some(c) => Ok(sqlx::query_as(&format!(
            "SELECT {ACTION_COLUMNS} FROM corrective_actions WHERE complaint_id = $1 ORDER BY created_at, id"
        ))
        .bind(c)
        .fetch_all(conn)
        .await?),
        None => open_actions(conn, None).await,
    }
}

/// Open actions by due date (of one owner, when given).
pub async fn open_actions(conn: &mut AnyConnection, owner: Option<&str>) -> Result<Vec<ActionRow>, Error> {
    let open = i64::from(kefu_proto::complaints::v1::ActionStatus::Open as i32);
    Ok(match owner {
        Some(o) => {
            sqlx::query_as(&format!(
                "SELECT {ACTION_COLUMNS} FROM corrective_actions WHERE status = $1 AND owner = $2 ORDER BY due_date, id LIMIT 1000"
            ))
            .bind(open)
            .bind(o)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {ACTION_COLUMNS} FROM corrective_actions WHERE status = $1 ORDER BY due_date, id LIMIT 1000"
            ))
            .bind(open)
            .fetch_all(conn)
            .await?
        }
    })
}

/// Open actions due before `today` (YYYY-MM-DD).
pub async fn overdue_actions(conn: &mut AnyConnection, today: &str) -> Result<i64, Error> {
    let row = sqlx::query("SELECT COUNT(*) FROM corrective_actions WHERE status = $1 AND due_date < $2")
        .bind(i64::from(kefu_proto::complaints::v1::ActionStatus::Open as i32))
        .bind(today)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// What complaints show where an erased customer's words were.
pub const ERASED: &str = "[已删除]";

/// Removes what complaints hold about an erased customer — their words
/// (description, demand, the texts written to them, their comment) and
/// the history's reasons — keeping the complaints as business records
/// (numbers, categories, states, times, amounts). Complaints under a legal
/// hold are left until it ends. Rows changed.
pub async fn redact_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<usize, Error> {
    let texts = "description = $2, demand_detail = CASE WHEN demand_detail = '' THEN '' ELSE $2 END, \
        preliminary_opinion = CASE WHEN preliminary_opinion = '' THEN '' ELSE $2 END, \
        response = CASE WHEN response = '' THEN '' ELSE $2 END, \
        decision_summary = CASE WHEN decision_summary = '' THEN '' ELSE $2 END, \
        satisfaction_comment = CASE WHEN satisfaction_comment = '' THEN '' ELSE $2 END, \
        findings = CASE WHEN findings = '' THEN '' ELSE $2 END";
    let changed = sqlx::query(&format!(
        "UPDATE complaints SET {texts} WHERE customer_id = $1 AND legal_hold = 0 AND (description <> $2 \
         OR demand_detail NOT IN ('', $2) OR preliminary_opinion NOT IN ('', $2) OR response NOT IN ('', $2) \
         OR decision_summary NOT IN ('', $2) OR satisfaction_comment NOT IN ('', $2) OR findings NOT IN ('', $2))"
    ))
    .bind(customer_id)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let history = sqlx::query(
        "UPDATE complaint_history SET reason = $2 WHERE reason <> $2 AND reason <> 'recorded' AND complaint_id IN \
         (SELECT id FROM complaints WHERE customer_id = $1 AND legal_hold = 0)",
    )
    .bind(customer_id)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(usize::try_from(changed + history).unwrap_or(usize::MAX))
}

pub async fn mark_erased(conn: &mut AnyConnection, customer_id: &str, at: i64) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO erased_customers (customer_id, erased_at) VALUES ($1, $2) ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn erased_customers(conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT customer_id FROM erased_customers ORDER BY customer_id").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn is_erased(conn: &mut AnyConnection, customer_id: &str) -> Result<bool, Error> {
    Ok(sqlx::query("SELECT 1 FROM erased_customers WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// A named counter's value (0 when never set).
pub async fn counter(conn: &mut AnyConnection, name: &str) -> Result<i64, Error> {
    let row = sqlx::query("SELECT value FROM counters WHERE name = $1").bind(name).fetch_optional(conn).await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0))
}

pub async fn set_counter(conn: &mut AnyConnection, name: &str, value: i64) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

// ------------------------------------------------------------ deadlines

/// Open targets after a cursor with who they are routed to (the handler of
/// the complaint, or the owner of the corrective action), for rebuilding
/// the live view page by page.
pub async fn open_targets_page(
    conn: &mut AnyConnection,
    after: &(String, String, i64),
    limit: i64,
) -> Result<Vec<(kefu_sla::store::TargetRow, String)>, Error> {
    use kefu_sla::store::{OPEN, TARGET_COLUMNS, target_from_row};
    let cols: String = TARGET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, COALESCE(a.owner, c.handler, '') AS routed_to FROM sla_targets s \
         LEFT JOIN complaints c ON c.id = s.record_id \
         LEFT JOIN corrective_actions a ON a.complaint_id || '/' || a.id = s.record_id \
         WHERE (s.record_id, s.metric, s.cycle) > ($1, $2, $3) AND s.open = {OPEN} \
         ORDER BY s.record_id, s.metric, s.cycle LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(&after.0).bind(&after.1).bind(after.2).fetch_all(conn).await?;
    rows.iter().map(|r| Ok((target_from_row(r)?, r.try_get("routed_to")?))).collect()
}

pub async fn get_setting(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(conn).await?)
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

// ------------------------------------------------------------ attachments

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub complaint_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub note: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    pub blob_key: String,
    pub erased_at: Option<i64>,
}

const ATTACHMENT_COLUMNS: &str = "id, complaint_id, file_name, content_type, size_bytes, sha256, note, uploaded_by, uploaded_at, blob_key, erased_at";

pub async fn insert_attachment(conn: &mut AnyConnection, a: &AttachmentRow) -> Result<(), Error> {
    Columns::new()
        .with("id", a.id.as_str())
        .with("complaint_id", a.complaint_id.as_str())
        .with("file_name", a.file_name.as_str())
        .with("content_type", a.content_type.as_str())
        .with("size_bytes", a.size_bytes)
        .with("sha256", a.sha256.as_str())
        .with("note", a.note.as_str())
        .with("uploaded_by", a.uploaded_by.as_str())
        .with("uploaded_at", a.uploaded_at)
        .with("blob_key", a.blob_key.as_str())
        .with("erased_at", a.erased_at)
        .insert(conn, "complaint_attachments")
        .await?;
    Ok(())
}

pub async fn get_attachment(conn: &mut AnyConnection, id: &str) -> Result<Option<AttachmentRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {ATTACHMENT_COLUMNS} FROM complaint_attachments WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn attachments(conn: &mut AnyConnection, complaint_id: &str) -> Result<Vec<AttachmentRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM complaint_attachments WHERE complaint_id = $1 ORDER BY uploaded_at, id"
    ))
    .bind(complaint_id)
    .fetch_all(conn)
    .await?)
}

pub async fn record_read(
    conn: &mut AnyConnection,
    attachment_id: &str,
    reader: &str,
    role: &str,
    purpose: &str,
    at: i64,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO attachment_reads (attachment_id, reader, role, purpose, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(attachment_id)
        .bind(reader)
        .bind(role)
        .bind(purpose)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads of an attachment: (reader, role, purpose, at), oldest first.
pub async fn reads(conn: &mut AnyConnection, attachment_id: &str) -> Result<Vec<(String, String, String, i64)>, Error> {
    let rows =
        sqlx::query("SELECT reader, role, purpose, at FROM attachment_reads WHERE attachment_id = $1 ORDER BY at")
            .bind(attachment_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
}

/// Marks the erased customer's attachments (outside a legal hold) erased;
/// the file-store keys of every erased attachment of theirs, to delete.
pub async fn erase_attachments(conn: &mut AnyConnection, customer_id: &str, at: i64) -> Result<Vec<String>, Error> {
    sqlx::query(
        "UPDATE complaint_attachments SET erased_at = $2, file_name = $3, sha256 = '', \
         note = CASE WHEN note = '' THEN '' ELSE $3 END \
         WHERE erased_at IS NULL AND complaint_id IN (SELECT id FROM complaints WHERE customer_id = $1 AND legal_hold = 0)",
    )
    .bind(customer_id)
    .bind(at)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    // Why someone read the evidence may name the customer too.
    sqlx::query(
        "UPDATE attachment_reads SET purpose = $2 WHERE purpose <> $2 AND attachment_id IN \
         (SELECT id FROM complaint_attachments WHERE erased_at IS NOT NULL AND complaint_id IN \
         (SELECT id FROM complaints WHERE customer_id = $1))",
    )
    .bind(customer_id)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar(
        "SELECT blob_key FROM complaint_attachments WHERE erased_at IS NOT NULL AND complaint_id IN \
         (SELECT id FROM complaints WHERE customer_id = $1)",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?)
}

// ------------------------------------------------------------ categories

/// The firm's complaint categories.
pub const CATEGORIES: kefu_kit::taxonomy::Taxonomy = kefu_kit::taxonomy::Taxonomy { table: "complaint_categories" };

/// Keeps complaints' labels in step with their categories'.
pub async fn relabel(conn: &mut AnyConnection, list: &[(String, String)]) -> Result<(), Error> {
    for (code, label) in list {
        sqlx::query("UPDATE complaints SET category_label = $2 WHERE category = $1 AND category_label <> $2")
            .bind(code)
            .bind(label)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
