//! SLA: a ticket's (or call's) targets, the dashboard, the live event
//! stream and policies (calendars and the rest of SLA administration are in
//! `config`).
use futures::StreamExt;
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::tickets::v1 as pb;
use kefu_sla::{ClockKind, Metric, MetricRule, Policy};

use super::{TicketsApi, view::state_pb};
use crate::{domain, store};

const POLICY_ID_MAX: usize = 64;
/// A metric rule's warning point when the request leaves it out.
const DEFAULT_WARN_PERCENT: i32 = 80;
/// Events a reconnecting watcher is sent at most.
const REPLAY_MAX: i64 = 1000;

fn clock_name(c: ClockKind) -> &'static str {
    match c {
        ClockKind::Business => "business",
        ClockKind::Calendar => "calendar",
    }
}

pub(super) async fn ticket_targets(
    api: &TicketsApi,
    r: pb::GetTicketSlaRequest,
) -> Result<pb::GetTicketSlaResponse, Error> {
    let raw = r.ticket_id.trim();
    let mut conn = api.pool.acquire().await?;
    // Calls' targets are asked for by their record id, `call:<call id>`.
    let record = match raw.strip_prefix("call:") {
        Some(call_id) => format!("call:{}", parse::required_line("ticket_id", call_id, 128)?),
        None => store::require_ticket(&mut conn, &domain::ticket_ref("ticket_id", raw)?).await?.id,
    };
    let now = api.engine.now();
    let cfg = api.engine.config();
    let targets = store::targets_of(&mut conn, &record)
        .await?
        .iter()
        .map(|r| {
            let t = &r.target;
            let cal = cfg.calendar(&r.calendar_id);
            pb::SlaTarget {
                metric: t.key.metric.as_str().to_owned(),
                cycle: t.key.cycle,
                state: state_pb(t.state()) as i32,
                start_time: ts(t.started_at),
                due_time: ts_opt(t.due_at),
                warning_time: ts_opt(t.warn_at),
                remaining_ms: t.remaining_ms(now, &cal).unwrap_or(0),
                clock: clock_name(t.clock).into(),
                breach_time: ts_opt(t.breached_at),
                fulfil_time: ts_opt(t.fulfilled_at),
                policy_id: r.policy_id.clone(),
                cap_time: ts_opt(t.cap_at),
                cap_provisional: r.cap_provisional && t.cap_at.is_some(),
                calendar_id: if r.calendar_id.is_empty() {
                    cfg.default_calendar.clone()
                } else {
                    r.calendar_id.clone()
                },
            }
        })
        .collect();
    Ok(pb::GetTicketSlaResponse { targets })
}

pub(super) async fn dashboard(api: &TicketsApi, r: pb::GetSlaDashboardRequest) -> Result<pb::SlaDashboard, Error> {
    let within = kefu_sla::live::at_risk_window(r.within_minutes).map_err(|m| Error::invalid("within_minutes", m))?;
    let d = api.engine.live.dashboard(api.engine.now(), within).await?;
    let c = |g: &kefu_sla::GroupCounts| pb::SlaCounts { open: g.open, at_risk: g.at_risk, breached: g.breached };
    Ok(pb::SlaDashboard {
        total: Some(c(&d.total)),
        by_queue: d.by_queue.iter().map(|(k, v)| (k.clone(), c(v))).collect(),
        by_agent: d.by_assignee.iter().filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.clone(), c(v))).collect(),
    })
}

pub(super) async fn watch(
    api: &TicketsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::WatchSlaEventsRequest,
) -> Result<<TicketsApi as pb::ticket_service_server::TicketService>::WatchSlaEventsStream, Error> {
    let mut v = Violations::new();
    let assignee = v.check(parse::line("assignee", &r.assignee, 64)).unwrap_or_default();
    let queue = v.check(parse::line("queue", &r.queue, 64)).unwrap_or_default();
    let since = v.check(parse::line("since_event_id", &r.since_event_id, 256)).unwrap_or_default();
    v.finish()?;
    // Supervisors follow everything; anyone else their own tickets and
    // their teams' (the members' and the team queues'), whatever they ask.
    let scope = if p.has_any(&[Role::Supervisor, Role::Admin, Role::Service]) {
        None
    } else {
        let (people, queues) = match api.directory.scope_of(token, &p.subject).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "the staff directory did not answer: the watcher follows their own tickets");
                ([p.subject.clone()].into(), Default::default())
            }
        };
        Some(kefu_sla::watch::Scope { people, queues })
    };
    if api.shutdown.is_cancelled() {
        return Err(Error::Unavailable("the server is shutting down; reconnect".into()));
    }
    // Subscribe before replaying so nothing falls between the two.
    let sub = kefu_sla::watch::Subscription::new(api.engine.live.as_ref(), api.engine.dropped_events());
    let replay = if since.is_empty() {
        Vec::new()
    } else {
        let mut conn = api.pool.acquire().await?;
        let routed = if assignee.is_empty() { None } else { Some(assignee.as_str()) };
        store::events_after(&mut conn, &since, REPLAY_MAX, routed).await?
    };
    let stream =
        sub.stream(replay, kefu_sla::watch::Filter { queue, assignee, scope }, api.shutdown.clone()).map(|item| {
            item.map(|w| match w {
                kefu_sla::watch::Watched::Event(ev) => pb::SlaEventMessage {
                    id: ev.id,
                    ticket_id: ev.key.record_id,
                    metric: ev.key.metric.as_str().to_owned(),
                    cycle: ev.key.cycle,
                    kind: ev.kind.as_str().to_owned(),
                    time: ts(ev.at_ms),
                    due_time: ts_opt(ev.due_at_ms),
                    queue: ev.queue,
                    assignee: ev.assignee,
                },
                kefu_sla::watch::Watched::Change(c) => pb::SlaEventMessage {
                    id: c.id,
                    ticket_id: c.record_id,
                    metric: String::new(),
                    cycle: 0,
                    kind: c.kind,
                    time: ts(c.at_ms),
                    due_time: None,
                    queue: c.queue,
                    assignee: c.assignee,
                },
            })
        });
    Ok(Box::pin(stream))
}

pub(super) fn list_policies(api: &TicketsApi) -> pb::ListSlaPoliciesResponse {
    let mut list: Vec<Policy> = api.engine.policies();
    list.sort_by_key(|p| p.position);
    pb::ListSlaPoliciesResponse { policies: list.iter().map(policy_pb).collect() }
}

pub(super) async fn upsert_policy(
    api: &TicketsApi,
    p: &Principal,
    r: pb::UpsertSlaPolicyRequest,
) -> Result<pb::SlaPolicy, Error> {
    let given = r.policy.ok_or_else(|| Error::invalid("policy", "is required"))?;
    let mut v = Violations::new();
    let why = v.check(parse::required_line("reason", &r.reason, 500)).unwrap_or_default();
    let policy = v.check(policy_from_pb(&given));
    v.finish()?;
    let Some(policy) = policy else { return Err(Error::invalid("policy", "is not valid")) };
    let body = serde_json::to_string(&policy).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = api.pool.begin().await?;
    if !policy.calendar_id.is_empty() && !store::lock_calendar(&mut tx, &policy.calendar_id).await? {
        return Err(Error::invalid("policy.calendar_id", format!("no calendar {}", policy.calendar_id)));
    }
    let before = store::policies(&mut tx)
        .await?
        .into_iter()
        .filter_map(|b| serde_json::from_str::<Policy>(&b).ok())
        .find(|x| x.id == policy.id);
    store::put_policy(&mut tx, &policy.id, i64::from(policy.position), &body).await?;
    let detail = match before {
        Some(b) if b == policy => "no change".to_owned(),
        Some(b) => format!("{} → {}", serde_json::to_string(&b).unwrap_or_default(), body),
        None => format!("created: {body}"),
    };
    super::config::audit(&mut tx, api, p, "sla.policy.upsert", &policy.id, detail, &why).await?;
    store::bump_config_version(&mut tx).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(policy_pb(&policy))
}

pub(super) async fn delete_policy(
    api: &TicketsApi,
    p: &Principal,
    r: pb::DeleteSlaPolicyRequest,
) -> Result<pb::DeleteSlaPolicyResponse, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::required_line("id", &r.id, POLICY_ID_MAX)).unwrap_or_default();
    let why = v.check(parse::required_line("reason", &r.reason, 500)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    if !store::delete_policy(&mut tx, &id).await? {
        return Err(Error::NotFound(format!("policy {id}")));
    }
    super::config::audit(&mut tx, api, p, "sla.policy.delete", &id, "deleted".into(), &why).await?;
    store::bump_config_version(&mut tx).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(pb::DeleteSlaPolicyResponse {})
}

fn policy_pb(p: &Policy) -> pb::SlaPolicy {
    pb::SlaPolicy {
        id: p.id.clone(),
        name: p.name.clone(),
        position: p.position,
        record_kinds: p.conditions.record_kinds.clone(),
        channels: p.conditions.channels.clone(),
        categories: p.conditions.categories.clone(),
        priorities: p.conditions.priorities.clone(),
        tiers: p.conditions.tiers.clone(),
        metrics: p
            .metrics
            .iter()
            .map(|m| pb::SlaMetricRule {
                metric: m.metric.as_str().into(),
                duration_seconds: m.duration_secs,
                clock: clock_name(m.clock).into(),
                warn_percent: i32::from(m.warn_percent),
                rings: m.rings.map_or(0, |r| r as i32),
                seconds_per_ring: m.seconds_per_ring.map_or(0, |s| s as i32),
            })
            .collect(),
        calendar_id: p.calendar_id.clone(),
        sources: p.conditions.sources.clone(),
    }
}

/// The configuration as one document (see `GetSlaConfig`).
pub(super) fn config_document(api: &TicketsApi) -> Result<pb::SlaConfigDocument, Error> {
    let cfg = api.engine.config();
    let doc = kefu_sla::ConfigDocument {
        version: cfg.version,
        default_calendar: cfg.default_calendar.clone(),
        calendars: cfg.calendars.values().map(|c| c.spec().clone()).collect(),
        policies: cfg.policies.clone(),
        escalation: cfg.escalation.clone(),
    };
    let document = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.into()))?;
    Ok(pb::SlaConfigDocument { version: cfg.version, document })
}

/// A policy condition list: names from `known` (policies match by name).
fn names(v: &mut Violations, field: &str, raw: &[String], known: &[&str]) -> Vec<String> {
    let list = v.check(parse::tags(field, raw, 50, 64)).unwrap_or_default();
    for (i, n) in list.iter().enumerate() {
        if !known.contains(&n.as_str()) {
            v.add(format!("{field}[{i}]"), format!("{n:?} is not one of {}", known.join(", ")));
        }
    }
    list
}

fn policy_from_pb(p: &pb::SlaPolicy) -> Result<Policy, Error> {
    let mut v = Violations::new();
    let id = v.check(parse::required_line("policy.id", &p.id, POLICY_ID_MAX)).unwrap_or_default();
    let name = v.check(parse::line("policy.name", &p.name, 200)).unwrap_or_default();
    let mut metrics = Vec::new();
    for (i, m) in p.metrics.iter().enumerate() {
        let metric = Metric::parse(&m.metric);
        if metric.is_none() {
            v.add(format!("policy.metrics[{i}].metric"), format!("{:?} is not a metric", m.metric));
        }
        let clock = match m.clock.as_str() {
            "business" | "" => Some(ClockKind::Business),
            "calendar" => Some(ClockKind::Calendar),
            other => {
                v.add(format!("policy.metrics[{i}].clock"), format!("{other:?} is not business or calendar"));
                None
            }
        };
        let warn = if m.warn_percent == 0 { DEFAULT_WARN_PERCENT } else { m.warn_percent };
        let warn = u8::try_from(warn).ok().filter(|w| (1..=99).contains(w));
        if warn.is_none() {
            v.add(format!("policy.metrics[{i}].warn_percent"), "must be 1 to 99");
        }
        let rings = match m.rings {
            0 => None,
            n if (1..=20).contains(&n) => Some(n as u32),
            _ => {
                v.add(format!("policy.metrics[{i}].rings"), "must be 1 to 20 (0: counted in seconds)");
                None
            }
        };
        let per_ring = match m.seconds_per_ring {
            0 => kefu_sla::policy::DEFAULT_SECONDS_PER_RING,
            n if (1..=30).contains(&n) => n as u32,
            _ => {
                v.add(format!("policy.metrics[{i}].seconds_per_ring"), "must be 1 to 30");
                kefu_sla::policy::DEFAULT_SECONDS_PER_RING
            }
        };
        if rings.is_some() && metric.is_some_and(|x| x != Metric::Answer) {
            v.add(format!("policy.metrics[{i}].rings"), "only the answer metric counts rings");
        }
        if let (Some(metric), Some(clock), Some(warn_percent)) = (metric, clock, warn) {
            metrics.push(match rings {
                Some(r) => MetricRule { warn_percent, ..MetricRule::in_rings(metric, r, per_ring) },
                None => MetricRule {
                    metric,
                    duration_secs: m.duration_seconds,
                    clock,
                    warn_percent,
                    rings: None,
                    seconds_per_ring: None,
                },
            });
        }
    }
    let conditions = kefu_sla::Conditions {
        record_kinds: names(&mut v, "policy.record_kinds", &p.record_kinds, domain::RECORD_KINDS),
        channels: names(&mut v, "policy.channels", &p.channels, domain::CHANNEL_NAMES),
        categories: v.check(parse::tags("policy.categories", &p.categories, 50, 64)).unwrap_or_default(),
        priorities: names(&mut v, "policy.priorities", &p.priorities, domain::PRIORITY_NAMES),
        tiers: v.check(parse::tags("policy.tiers", &p.tiers, 10, 32)).unwrap_or_default(),
        sources: names(&mut v, "policy.sources", &p.sources, domain::COMPLAINT_SOURCES),
    };
    let calendar_id = p.calendar_id.trim().to_owned();
    if calendar_id.len() > 64 {
        v.add("policy.calendar_id", "at most 64 characters");
    }
    v.finish()?;
    let policy = Policy { id, name, position: p.position, calendar_id, conditions, metrics };
    policy.validate().map_err(|(f, m)| Error::invalid(format!("policy.{f}"), m))?;
    Ok(policy)
}
