//! Deadlines: a complaint's and its corrective actions', the live board,
//! and the live event stream.
use std::pin::Pin;

use futures::{Stream, StreamExt};
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::complaints::v1 as pb;
use kefu_sla::{ClockKind, Metric, TargetState, store::TargetRow};
use tonic::Status;

use super::{ComplaintsApi, NAME_MAX, find};
use crate::{
    sla::{action_record, split_record},
    store,
};

/// Events a reconnecting watcher is sent at most.
const REPLAY_MAX: i64 = 1000;

pub(super) type EventStream = Pin<Box<dyn Stream<Item = Result<pb::DeadlineEvent, Status>> + Send>>;

fn state_pb(s: TargetState) -> pb::DeadlineState {
    match s {
        TargetState::Active => pb::DeadlineState::Active,
        TargetState::Warning => pb::DeadlineState::Warning,
        TargetState::Breached => pb::DeadlineState::Breached,
        TargetState::Paused => pb::DeadlineState::Paused,
        TargetState::Fulfilled => pb::DeadlineState::Fulfilled,
        TargetState::FulfilledLate => pb::DeadlineState::FulfilledLate,
    }
}

fn deadline_pb(api: &ComplaintsApi, r: &TargetRow, now: i64) -> pb::Deadline {
    let t = &r.target;
    let cfg = api.deadlines.config();
    let cal = cfg.calendar(&r.calendar_id);
    pb::Deadline {
        metric: t.key.metric.as_str().to_owned(),
        cycle: t.key.cycle,
        state: state_pb(t.state()) as i32,
        action_id: split_record(&t.key.record_id).1.unwrap_or_default().to_owned(),
        start_time: ts(t.started_at),
        due_time: ts_opt(t.due_at),
        warning_time: ts_opt(t.warn_at),
        remaining_ms: t.remaining_ms(now, &cal).unwrap_or(0),
        clock: match t.clock {
            ClockKind::Business => "business".into(),
            ClockKind::Calendar => "calendar".into(),
        },
        breach_time: ts_opt(t.breached_at),
        fulfil_time: ts_opt(t.fulfilled_at),
        policy_id: r.policy_id.clone(),
        cap_time: if t.key.metric == Metric::CorrectiveAction { None } else { ts_opt(t.cap_at) },
        calendar_id: if r.calendar_id.is_empty() { cfg.doc.default_calendar.clone() } else { r.calendar_id.clone() },
        escalation_time: ts_opt(r.escalation_due_at),
        escalated_time: ts_opt(r.escalated_at),
    }
}

pub(super) async fn of_complaint(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::GetComplaintDeadlinesRequest,
) -> Result<pb::ComplaintDeadlines, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = find(&mut conn, p, "id", &r.id, false).await?;
    let now = api.now();
    let mut rows = kefu_sla::store::targets_of(&mut conn, &c.id).await?;
    for a in store::actions(&mut conn, Some(&c.id)).await? {
        rows.extend(kefu_sla::store::targets_of(&mut conn, &action_record(&c.id, &a.id)).await?);
    }
    Ok(pb::ComplaintDeadlines { deadlines: rows.iter().map(|r| deadline_pb(api, r, now)).collect() })
}

pub(super) async fn dashboard(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::GetComplaintSlaDashboardRequest,
) -> Result<pb::ComplaintSlaDashboard, Error> {
    // Per-person figures are for supervisors: an agent sees their own row.
    let own_only = !p.has_any(&[Role::Supervisor, Role::Admin]);
    let within = kefu_sla::live::at_risk_window(r.within_minutes).map_err(|m| Error::invalid("within_minutes", m))?;
    let d = api.deadlines.live.dashboard(api.now(), within).await?;
    let c = |g: &kefu_sla::GroupCounts| pb::DeadlineCounts { open: g.open, at_risk: g.at_risk, breached: g.breached };
    Ok(pb::ComplaintSlaDashboard {
        total: Some(c(&d.total)),
        by_queue: d.by_queue.iter().map(|(k, v)| (k.clone(), c(v))).collect(),
        by_handler: d
            .by_assignee
            .iter()
            .filter(|(k, _)| !k.is_empty() && (!own_only || **k == p.subject))
            .map(|(k, v)| (k.clone(), c(v)))
            .collect(),
    })
}

pub(super) async fn watch(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::WatchComplaintDeadlinesRequest,
) -> Result<EventStream, Error> {
    let mut v = Violations::new();
    let handler = v.check(parse::line("handler", &r.handler, NAME_MAX)).unwrap_or_default();
    let since = v.check(parse::line("since_event_id", &r.since_event_id, 256)).unwrap_or_default();
    v.finish()?;
    // Agents follow the deadlines routed to them, whatever they ask for.
    let handler = if p.has_any(&[Role::Supervisor, Role::Admin, Role::Service]) { handler } else { p.subject.clone() };
    if api.shutdown.is_cancelled() {
        return Err(Error::Unavailable("the server is shutting down; reconnect".into()));
    }
    let sub = kefu_sla::watch::Subscription::new(api.deadlines.live.as_ref(), api.deadlines.dropped_events());
    let replay = if since.is_empty() {
        Vec::new()
    } else {
        let mut conn = api.pool.acquire().await?;
        kefu_sla::store::events_after(&mut conn, &since, REPLAY_MAX, Some(handler.as_str())).await?
    };
    let filter = kefu_sla::watch::Filter { queue: String::new(), assignee: handler, scope: None };
    let stream = sub.stream(replay, filter, api.shutdown.clone()).filter_map(|item| {
        futures::future::ready(match item {
            Ok(kefu_sla::watch::Watched::Event(ev)) => {
                let (complaint, action) = split_record(&ev.key.record_id);
                Some(Ok(pb::DeadlineEvent {
                    id: ev.id.clone(),
                    complaint_id: complaint.to_owned(),
                    action_id: action.unwrap_or_default().to_owned(),
                    metric: ev.key.metric.as_str().to_owned(),
                    cycle: ev.key.cycle,
                    kind: ev.kind.as_str().to_owned(),
                    time: ts(ev.at_ms),
                    due_time: ts_opt(ev.due_at_ms),
                    queue: ev.queue,
                    handler: ev.assignee,
                }))
            }
            // Complaints publish no record changes.
            Ok(kefu_sla::watch::Watched::Change(_)) => None,
            Err(s) => Some(Err(s)),
        })
    });
    Ok(Box::pin(stream))
}
