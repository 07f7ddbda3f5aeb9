//! After the preliminary opinion: the investigation's finding, corrective
//! and preventive actions (CAPA) verified by someone other than their owner,
//! the decision as communicated to the customer, and the customer's rating
//! of the handling.
use chrono::{Datelike, TimeZone};
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db,
    error::Violations,
    etag,
    parse::{self, ts_opt},
};
use kefu_proto::{common::v1::Channel, complaints::v1 as pb};

use super::{ComplaintsApi, find, masked_text, shown};
use crate::store::{self, ActionRow, ComplaintRow, HistoryRow};

/// A note in the complaint's history (the state does not change).
async fn note(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    c: &ComplaintRow,
    what: String,
    at: i64,
) -> Result<(), Error> {
    store::add_history(
        conn,
        &HistoryRow {
            seq: 0,
            complaint_id: c.id.clone(),
            from_state: c.state,
            to_state: c.state,
            action: 0,
            actor: p.subject.clone(),
            actor_role: p.primary_role().to_owned(),
            reason: what,
            at,
        },
    )
    .await
}

const TEXT_MAX: usize = 10_000;
const NAME_MAX: usize = 64;
/// Days after completion an action's effect is verified, unless set.
const DEFAULT_VERIFY_AFTER_DAYS: i32 = 30;
const DAY_MS: i64 = 24 * 3600 * 1000;
const IDEMPOTENCY_SCOPE: &str = "complaints.action";

fn today(api: &ComplaintsApi) -> String {
    api.zone.timestamp_millis_opt(api.now()).single().map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

fn action_pb(p: &Principal, a: &ActionRow, today: &str) -> pb::CorrectiveAction {
    let open = a.status == i64::from(pb::ActionStatus::Open as i32);
    pb::CorrectiveAction {
        id: a.id.clone(),
        complaint_id: a.complaint_id.clone(),
        kind: a.kind as i32,
        description: masked_text(p, &a.description),
        owner: a.owner.clone(),
        due_date: a.due_date.clone(),
        status: a.status as i32,
        evidence: masked_text(p, &a.evidence),
        complete_time: ts_opt(a.completed_at),
        verify_after_days: i32::try_from(a.verify_after_days).unwrap_or(0),
        verified_by: a.verified_by.clone(),
        verify_time: ts_opt(a.verified_at),
        verification_note: a.verification_note.clone(),
        overdue: open && a.due_date.as_str() < today,
        etag: etag::of(a.version),
    }
}

pub(super) async fn record_finding(
    api: &ComplaintsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::RecordFindingRequest,
) -> Result<pb::Complaint, Error> {
    let f = r.finding.ok_or_else(|| Error::invalid("finding", "is required"))?;
    let mut v = Violations::new();
    let findings = v.check(parse::required_text("finding.findings", &f.findings, TEXT_MAX));
    let root = v.check(parse::enumeration::<pb::RootCause>("finding.root_cause", f.root_cause, None));
    let staff = v.check(parse::line("finding.responsible_staff", &f.responsible_staff, NAME_MAX)).unwrap_or_default();
    let dept =
        v.check(parse::line("finding.responsible_department", &f.responsible_department, NAME_MAX)).unwrap_or_default();
    if root == Some(pb::RootCause::Person) && staff.is_empty() {
        v.add("finding.responsible_staff", "a cause in a person names the staff member");
    }
    v.finish()?;
    let (Some(findings), Some(root)) = (findings, root) else { return Err(Error::invalid("finding", "is not valid")) };
    api.directory
        .check(token, &[("finding.responsible_staff", &staff, kefu_kit::directory::Accept::KnownPerson)])
        .await?;
    let mut tx = api.pool.begin().await?;
    let mut c = find(&mut tx, p, "id", &r.id, true).await?;
    etag::check("complaint", &r.etag, c.version)?;
    let state = pb::ComplaintState::try_from(c.state as i32).unwrap_or(pb::ComplaintState::Unspecified);
    if state != pb::ComplaintState::Investigating {
        use kefu_proto::ProtoEnum;
        return Err(Error::FailedPrecondition(format!(
            "a finding is recorded while investigating; the complaint is {}",
            state.name()
        )));
    }
    let now = api.now();
    c.findings = findings;
    c.root_cause = i64::from(root as i32);
    c.responsible_staff = staff;
    c.responsible_department = dept;
    c.upheld = Some(i64::from(f.upheld));
    let replaced = c.finding_at.is_some();
    c.finding_by.clone_from(&p.subject);
    c.finding_at = Some(now);
    c.updated_at = now;
    store::save(&mut tx, &mut c).await?;
    let what = format!(
        "finding {}: root cause {}, upheld {}, responsible {} / {}",
        if replaced { "replaced" } else { "recorded" },
        {
            use kefu_proto::ProtoEnum;
            root.name()
        },
        if f.upheld { "yes" } else { "no" },
        if c.responsible_staff.is_empty() { "-" } else { &c.responsible_staff },
        if c.responsible_department.is_empty() { "-" } else { &c.responsible_department },
    );
    note(&mut tx, p, &c, what, now).await?;
    tx.commit().await?;
    Ok(shown(p, &c))
}

pub(super) async fn add_action(
    api: &ComplaintsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::AddCorrectiveActionRequest,
) -> Result<pb::CorrectiveAction, Error> {
    let a = r.action.clone().ok_or_else(|| Error::invalid("action", "is required"))?;
    let mut v = Violations::new();
    let kind = v.check(parse::enumeration::<pb::ActionKind>("action.kind", a.kind, Some(pb::ActionKind::Corrective)));
    let description = v.check(parse::required_text("action.description", &a.description, TEXT_MAX));
    let owner = v.check(parse::required_line("action.owner", &a.owner, NAME_MAX));
    let due = v.check(parse::date("action.due_date", &a.due_date));
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    let today = today(api);
    if let Some(d) = due
        && parse::format_date(d) < today
    {
        v.add("action.due_date", format!("{d} is in the past"));
    }
    let verify_after = if a.verify_after_days == 0 { DEFAULT_VERIFY_AFTER_DAYS } else { a.verify_after_days };
    if !(0..=365).contains(&a.verify_after_days) {
        v.add("action.verify_after_days", "must be 0 (30 days) to 365");
    }
    v.finish()?;
    let (Some(kind), Some(description), Some(owner), Some(due)) = (kind, description, owner, due) else {
        return Err(Error::invalid("action", "is not valid"));
    };
    api.directory.check(token, &[("action.owner", &owner, kefu_kit::directory::Accept::Person)]).await?;
    let mut tx = api.pool.begin().await?;
    let c = find(&mut tx, p, "complaint_id", &r.complaint_id, true).await?;
    let row = ActionRow {
        id: uuid::Uuid::now_v7().to_string(),
        complaint_id: c.id.clone(),
        kind: i64::from(kind as i32),
        description,
        owner,
        due_date: parse::format_date(due),
        status: i64::from(pb::ActionStatus::Open as i32),
        evidence: String::new(),
        completed_at: None,
        verify_after_days: i64::from(verify_after),
        completed_by: String::new(),
        verified_by: String::new(),
        verified_at: None,
        verification_note: String::new(),
        created_by: p.subject.clone(),
        created_at: api.now(),
        version: 1,
    };
    if !request_id.is_empty() {
        let fingerprint =
            db::fingerprint_of(&pb::AddCorrectiveActionRequest { request_id: String::new(), ..r.clone() });
        if let db::Claim::Existing(id) =
            db::claim_request_id(&mut tx, IDEMPOTENCY_SCOPE, &request_id, &row.id, &fingerprint).await?
        {
            drop(tx);
            let mut conn = api.pool.acquire().await?;
            let existing = store::get_action(&mut conn, &id)
                .await?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("action {id} of a claimed request id is missing")))?;
            return Ok(action_pb(p, &existing, &today));
        }
    }
    store::insert_action(&mut tx, &row).await?;
    let changes = api.deadlines.on_action_added(&mut tx, &c, &row).await?;
    tx.commit().await?;
    api.deadlines.publish(changes).await;
    Ok(action_pb(p, &row, &today))
}

async fn require_action(conn: &mut sqlx::AnyConnection, raw: &str) -> Result<ActionRow, Error> {
    let id = parse::id("id", raw)?;
    store::get_action(conn, &id).await?.ok_or_else(|| Error::NotFound(format!("corrective action {id}")))
}

pub(super) async fn complete_action(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::CompleteCorrectiveActionRequest,
) -> Result<pb::CorrectiveAction, Error> {
    let evidence = parse::required_text("evidence", &r.evidence, TEXT_MAX)?;
    let mut tx = api.pool.begin().await?;
    let mut a = require_action(&mut tx, &r.id).await?;
    etag::check("action", &r.etag, a.version)?;
    if a.owner != p.subject && !p.has_any(&[Role::Supervisor, Role::Admin]) {
        return Err(Error::PermissionDenied(format!("the action belongs to {}; its owner completes it", a.owner)));
    }
    if a.status != i64::from(pb::ActionStatus::Open as i32) {
        return Err(Error::FailedPrecondition("the action is not open".into()));
    }
    a.status = i64::from(pb::ActionStatus::Done as i32);
    a.completed_by.clone_from(&p.subject);
    a.evidence = evidence;
    a.completed_at = Some(api.now());
    store::save_action(&mut tx, &mut a).await?;
    let changes = api.deadlines.on_action_completed(&mut tx, &a).await?;
    tx.commit().await?;
    api.deadlines.publish(changes).await;
    Ok(action_pb(p, &a, &today(api)))
}

pub(super) async fn verify_action(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::VerifyCorrectiveActionRequest,
) -> Result<pb::CorrectiveAction, Error> {
    let note = parse::required_text("note", &r.note, TEXT_MAX)?;
    let mut tx = api.pool.begin().await?;
    let mut a = require_action(&mut tx, &r.id).await?;
    etag::check("action", &r.etag, a.version)?;
    if a.owner == p.subject || a.completed_by == p.subject {
        return Err(Error::PermissionDenied(
            "an action is verified by someone other than its owner and whoever completed it".into(),
        ));
    }
    let Some(done) = a.completed_at.filter(|_| a.status == i64::from(pb::ActionStatus::Done as i32)) else {
        return Err(Error::FailedPrecondition("only a completed action is verified".into()));
    };
    let now = api.now();
    let due = done + a.verify_after_days * DAY_MS;
    if now < due {
        let on = api
            .zone
            .timestamp_millis_opt(due)
            .single()
            .map(|t| format!("{}-{:02}-{:02}", t.year(), t.month(), t.day()));
        return Err(Error::FailedPrecondition(format!(
            "its effect is verified from {} ({} day(s) after completion)",
            on.unwrap_or_default(),
            a.verify_after_days
        )));
    }
    a.status = i64::from(if r.effective { pb::ActionStatus::Effective } else { pb::ActionStatus::Ineffective } as i32);
    a.verified_by.clone_from(&p.subject);
    a.verified_at = Some(now);
    a.verification_note = note;
    store::save_action(&mut tx, &mut a).await?;
    tx.commit().await?;
    Ok(action_pb(p, &a, &today(api)))
}

pub(super) async fn list_actions(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::ListCorrectiveActionsRequest,
) -> Result<pb::ListCorrectiveActionsResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let rows = if r.complaint_id.trim().is_empty() {
        // Agents list their own open actions; the others every open one.
        let owner =
            (!p.has_any(&[Role::Supervisor, Role::Admin, Role::Auditor, Role::Service])).then_some(p.subject.as_str());
        store::open_actions(&mut conn, owner).await?
    } else {
        let c = find(&mut conn, p, "complaint_id", &r.complaint_id, false).await?;
        store::actions(&mut conn, Some(&c.id)).await?
    };
    let today = today(api);
    let mut actions: Vec<pb::CorrectiveAction> = rows.iter().map(|a| action_pb(p, a, &today)).collect();
    // Overdue first.
    actions.sort_by_key(|a| !a.overdue);
    Ok(pb::ListCorrectiveActionsResponse { actions })
}

pub(super) async fn decision_sent(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::RecordDecisionSentRequest,
) -> Result<pb::Complaint, Error> {
    let mut v = Violations::new();
    let channel = v.check(parse::enumeration::<Channel>("channel", r.channel, None));
    let at = v.check(parse::opt_timestamp("time", r.time.as_ref())).flatten();
    let summary = v.check(parse::required_text("summary", &r.summary, TEXT_MAX));
    if !(0..=10_000_000_000).contains(&r.compensation_paid_fen) {
        v.add("compensation_paid_fen", "must be 0 to 10,000,000,000 fen");
    }
    let now = api.now();
    if at.is_some_and(|t| t > now + 60_000) {
        v.add("time", "is in the future");
    }
    v.finish()?;
    let (Some(channel), Some(summary)) = (channel, summary) else {
        return Err(Error::invalid("channel", "is required"));
    };
    let mut tx = api.pool.begin().await?;
    let mut c = find(&mut tx, p, "id", &r.id, true).await?;
    etag::check("complaint", &r.etag, c.version)?;
    let state = pb::ComplaintState::try_from(c.state as i32).unwrap_or(pb::ComplaintState::Unspecified);
    if matches!(
        state,
        pb::ComplaintState::Received
            | pb::ComplaintState::Acknowledged
            | pb::ComplaintState::PreliminaryOpinionGiven
            | pb::ComplaintState::Investigating
            | pb::ComplaintState::Unspecified
    ) {
        return Err(Error::FailedPrecondition("a decision is communicated once a response is proposed".into()));
    }
    c.decision_channel = i64::from(channel as i32);
    c.decision_at = Some(at.unwrap_or(now));
    c.decision_summary = summary;
    // Payments add up (a first offer, then what mediation settled).
    c.compensation_paid_fen = c.compensation_paid_fen.saturating_add(r.compensation_paid_fen);
    c.updated_at = now;
    store::save(&mut tx, &mut c).await?;
    let what = {
        use kefu_proto::ProtoEnum;
        format!("decision sent by {}, compensation paid {} fen", channel.name(), r.compensation_paid_fen)
    };
    note(&mut tx, p, &c, what, now).await?;
    tx.commit().await?;
    Ok(shown(p, &c))
}

pub(super) async fn rate(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::RateComplaintHandlingRequest,
) -> Result<pb::Complaint, Error> {
    let mut v = Violations::new();
    if !(1..=5).contains(&r.rating) {
        v.add("rating", "must be 1 to 5");
    }
    let comment = v.check(parse::text("comment", &r.comment, 2000)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let mut c = find(&mut tx, p, "id", &r.id, true).await?;
    if c.decision_at.is_none() {
        return Err(Error::FailedPrecondition("the handling is rated after the decision reached the customer".into()));
    }
    c.satisfaction = i64::from(r.rating);
    c.satisfaction_comment = comment;
    let now = api.now();
    c.updated_at = now;
    store::save(&mut tx, &mut c).await?;
    note(&mut tx, p, &c, format!("handling rated {} of 5", r.rating), now).await?;
    tx.commit().await?;
    Ok(shown(p, &c))
}
