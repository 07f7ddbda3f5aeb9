//! Stored rows as API messages.
use kefu_kit::{
    Error, etag,
    parse::{ts, ts_opt},
};
use kefu_proto::{customers::v1 as cpb, tickets::v1 as pb};
use kefu_sla::TargetState;
use sqlx::AnyConnection;

use crate::{
    domain::{self, Item},
    store::{self, TicketRow, TimelineRow},
};

pub(super) fn state_pb(s: TargetState) -> pb::SlaState {
    match s {
        TargetState::Active => pb::SlaState::Active,
        TargetState::Warning => pb::SlaState::Warning,
        TargetState::Breached => pb::SlaState::Breached,
        TargetState::Paused => pb::SlaState::Paused,
        TargetState::Fulfilled => pb::SlaState::Fulfilled,
        TargetState::FulfilledLate => pb::SlaState::FulfilledLate,
    }
}

/// Worse states rank higher: breached > warning > active > paused > late > done.
fn severity(s: pb::SlaState) -> u8 {
    match s {
        pb::SlaState::Breached => 5,
        pb::SlaState::Warning => 4,
        pb::SlaState::Active => 3,
        pb::SlaState::Paused => 2,
        pb::SlaState::FulfilledLate => 1,
        pb::SlaState::Fulfilled | pb::SlaState::Unspecified => 0,
    }
}

/// A stored JSON list; a damaged value reads as empty.
pub(super) fn json_list<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.into()))
}

pub(super) fn tier_name(t: i32) -> &'static str {
    match cpb::ServiceTier::try_from(t) {
        Ok(cpb::ServiceTier::Priority) => "priority",
        Ok(cpb::ServiceTier::Vip) => "vip",
        _ => "standard",
    }
}

/// A ticket with its SLA summary: the worst state of its open targets (of
/// all its targets when none is open) and the earliest pending due time.
pub(super) async fn ticket_pb(conn: &mut AnyConnection, t: &TicketRow) -> Result<pb::Ticket, Error> {
    let targets = store::targets_of(conn, &t.id).await?;
    let labels = store::category_labels(conn).await?;
    Ok(ticket_with_targets(t, &targets, &labels))
}

/// A page of tickets with their SLA summaries: one query for every
/// ticket's targets, not one per ticket.
pub(super) async fn tickets_pb(conn: &mut AnyConnection, rows: &[TicketRow]) -> Result<Vec<pb::Ticket>, Error> {
    let ids: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
    let targets = store::targets_of_many(conn, &ids).await?;
    let labels = store::category_labels(conn).await?;
    Ok(rows.iter().map(|t| ticket_with_targets(t, targets.get(&t.id).map_or(&[], Vec::as_slice), &labels)).collect())
}

fn ticket_with_targets(
    t: &TicketRow,
    targets: &[store::TargetRow],
    labels: &std::collections::HashMap<String, String>,
) -> pb::Ticket {
    // The latest resolution cycle says whether its filing cap is provisional.
    let provisional = targets
        .iter()
        .filter(|r| r.target.key.metric == kefu_sla::Metric::Resolution)
        .max_by_key(|r| r.target.key.cycle)
        .is_some_and(|r| r.cap_provisional && !t.filing_deadline.is_empty());
    let mut worst = pb::SlaState::Unspecified;
    let mut next_due: Option<i64> = None;
    for r in targets.iter().filter(|r| r.open) {
        let s = state_pb(r.target.state());
        if severity(s) > severity(worst) {
            worst = s;
        }
        if let Some(d) = r.target.due_at
            && r.target.breached_at.is_none()
        {
            next_due = Some(next_due.map_or(d, |n: i64| n.min(d)));
        }
    }
    if worst == pb::SlaState::Unspecified
        && let Some(last) = targets.iter().max_by_key(|r| severity(state_pb(r.target.state())))
    {
        worst = state_pb(last.target.state());
    }
    let materials: Vec<pb::Material> = json_list::<Vec<Item>>(&t.materials)
        .into_iter()
        .map(|m| pb::Material { name: m.name, received: m.done })
        .collect();
    let steps: Vec<pb::Step> =
        json_list::<Vec<Item>>(&t.steps).into_iter().map(|m| pb::Step { name: m.name, done: m.done }).collect();
    pb::Ticket {
        id: t.id.clone(),
        number: t.number.clone(),
        kind: t.kind as i32,
        channel: t.channel as i32,
        category: t.category.clone(),
        priority: t.priority as i32,
        status: t.status as i32,
        subject: t.subject.clone(),
        customer_id: t.customer_id.clone(),
        customer_tier: t.customer_tier.clone(),
        requester: t.requester.clone(),
        queue: t.queue.clone(),
        assignee: t.assignee.clone(),
        tags: json_list(&t.tags),
        request_type: t.request_type.clone(),
        progress_percent: domain::progress(&materials, &steps),
        materials,
        steps,
        filing_period: t.filing_period.clone(),
        filing_deadline: t.filing_deadline.clone(),
        department: t.department.clone(),
        department_response: t.department_response.clone(),
        pending_reason: t.pending_reason.clone(),
        escalated_to: t.escalated_to.clone(),
        satisfaction: t.satisfaction as i32,
        satisfaction_comment: t.satisfaction_comment.clone(),
        sla_state: worst as i32,
        next_due_time: ts_opt(next_due),
        create_time: ts(t.created_at),
        update_time: ts(t.updated_at),
        etag: etag::of(t.version),
        reopen_count: t.reopen_count as i32,
        filing_deadline_provisional: provisional,
        category_label: labels.get(&t.category).cloned().unwrap_or_else(|| t.category.clone()),
    }
}

pub(super) fn timeline_pb(r: &TimelineRow) -> pb::TimelineEntry {
    pb::TimelineEntry {
        id: r.id.clone(),
        ticket_id: r.ticket_id.clone(),
        kind: r.kind.clone(),
        author: r.author.clone(),
        body: r.body.clone(),
        time: ts(r.at),
    }
}
