//! Views that join more than one call: the live event stream of tickets and
//! complaints together, the SLA overview, the customer 360° view. Each
//! leaves out what the caller's roles do not reach; none adds a rule.
use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response, sse},
};
use futures::StreamExt;
use kefu_proto::{
    complaints::v1::{self as ppb, complaint_service_client::ComplaintServiceClient},
    tickets::v1 as tpb,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AppState, problem::Problem};

const WATCH_TICKETS: &str = "kefu.tickets.v1.TicketService/WatchSlaEvents";
const WATCH_COMPLAINTS: &str = "kefu.complaints.v1.ComplaintService/WatchComplaintDeadlines";
/// The live-store queues of complaint deadlines.
const COMPLAINT_QUEUES: &[&str] = &["complaints", "corrective_actions"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventsQuery {
    #[serde(default)]
    queue: String,
    #[serde(default)]
    assignee: String,
}

fn millis(t: Option<prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

/// What the merged stream carries before it becomes an SSE event.
enum Item {
    Ticket(tpb::SlaEventMessage),
    Complaint(ppb::DeadlineEvent),
    Failed(String),
}

/// The position a browser resumes from: the last ticket event and the last
/// complaint event it saw, as `Last-Event-ID` (`ticket|complaint`; an id
/// without `|` is a ticket event's).
fn resume_from(header: &str) -> (String, String) {
    match header.split_once('|') {
        Some((t, c)) => (t.to_owned(), c.to_owned()),
        None => (header.to_owned(), String::new()),
    }
}

/// Live SLA events of tickets and complaint deadlines as server-sent
/// events; `Last-Event-ID` resumes after the last events the browser saw.
/// Complaint events come to those whose roles reach them, and never stop
/// the tickets' stream when the complaints service is away.
pub(crate) async fn events(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, Problem> {
    let (_, token, may) =
        gw.caller_maybe(&headers, &[WATCH_TICKETS], &[WATCH_COMPLAINTS, crate::names::RESOLVE]).await?;
    let named = may.get(1).copied().unwrap_or(false);
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let (since_ticket, since_complaint) = resume_from(last);
    let ctx = kefu_kit::client::CallContext::new(Some(&token)).map_err(Problem::internal)?;
    let complaint_queue = COMPLAINT_QUEUES.contains(&q.queue.as_str());
    let mut streams: Vec<futures::stream::BoxStream<'static, Item>> = Vec::new();
    if !complaint_queue {
        let mut client =
            tpb::ticket_service_client::TicketServiceClient::with_interceptor(gw.upstream("tickets")?, ctx.clone());
        let stream = client
            .watch_sla_events(tpb::WatchSlaEventsRequest {
                queue: q.queue.clone(),
                assignee: q.assignee.clone(),
                since_event_id: since_ticket.clone(),
            })
            .await
            .map_err(|s| Problem::from_status(&s))?
            .into_inner();
        streams.push(stream.map(|i| i.map_or_else(|s| Item::Failed(s.message().to_owned()), Item::Ticket)).boxed());
    }
    if may.first().copied().unwrap_or(false) && (q.queue.is_empty() || complaint_queue) {
        let opened = async {
            let mut client = ComplaintServiceClient::with_interceptor(gw.upstream("complaints")?, ctx.clone());
            client
                .watch_complaint_deadlines(ppb::WatchComplaintDeadlinesRequest {
                    handler: q.assignee.clone(),
                    since_event_id: since_complaint.clone(),
                })
                .await
                .map_err(|s| Problem::from_status(&s))
        };
        match opened.await {
            Ok(s) => streams.push(
                s.into_inner()
                    .map(|i| i.map_or_else(|s| Item::Failed(s.message().to_owned()), Item::Complaint))
                    .boxed(),
            ),
            // Tickets' events still flow; the browser reconnects later.
            Err(p) if !complaint_queue => {
                tracing::warn!(error = ?p, "complaint deadlines left out of the event stream");
            }
            Err(p) => return Err(p),
        }
    }
    let mut cursor = (since_ticket, since_complaint);
    // The assignee's name beside their id, looked up once per person.
    let cache = Arc::new(crate::names::Cache::default());
    let (names_gw, names_token) = (gw.clone(), token.clone());
    let events = futures::stream::select_all(streams)
        .then(move |item| {
            let (gw, token, cache) = (names_gw.clone(), names_token.clone(), cache.clone());
            async move {
                let who = match &item {
                    Item::Ticket(ev) => ev.assignee.as_str(),
                    Item::Complaint(ev) => ev.handler.as_str(),
                    Item::Failed(_) => "",
                };
                let name = if named { cache.name(&gw, &token, who).await } else { None };
                (item, name)
            }
        })
        .map(move |(item, name)| -> Result<sse::Event, std::convert::Infallible> {
            Ok(match item {
                Item::Ticket(ev) => {
                    let data = json!({
                        "record": "ticket",
                        "id": ev.id, "ticketId": ev.ticket_id, "metric": ev.metric, "cycle": ev.cycle, "kind": ev.kind,
                        "time": millis(ev.time), "dueTime": millis(ev.due_time),
                        "queue": ev.queue, "assignee": ev.assignee, "assigneeName": name,
                    });
                    let event = sse::Event::default().event(ev.kind).data(data.to_string());
                    // Only SLA events carry an id: they are what a reconnect
                    // replays (Last-Event-ID), ticket changes are not stored.
                    if ev.metric.is_empty() {
                        event
                    } else {
                        cursor.0 = ev.id;
                        event.id(format!("{}|{}", cursor.0, cursor.1))
                    }
                }
                Item::Complaint(ev) => {
                    let data = json!({
                        "record": "complaint",
                        "id": ev.id, "complaintId": ev.complaint_id, "actionId": ev.action_id, "metric": ev.metric,
                        "cycle": ev.cycle, "kind": ev.kind, "time": millis(ev.time), "dueTime": millis(ev.due_time),
                        "queue": ev.queue, "assignee": ev.handler, "assigneeName": name,
                    });
                    cursor.1 = ev.id;
                    sse::Event::default().event(ev.kind).data(data.to_string()).id(format!("{}|{}", cursor.0, cursor.1))
                }
                Item::Failed(message) => sse::Event::default().event("error").data(message),
            })
        });
    // A draining gateway ends its streams; browsers reconnect (to another
    // replica) with Last-Event-ID and miss nothing.
    let events = events.take_until(gw.draining.clone().cancelled_owned());
    Ok(sse::Sse::new(events).keep_alive(sse::KeepAlive::default()).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OverviewQuery {
    #[serde(default)]
    within_minutes: i32,
}

/// Adds one dashboard's counts (`{open, atRisk, breached}` maps) into `into`.
fn add_counts(into: &mut BTreeMap<String, [i64; 3]>, from: Option<&Value>) {
    let Some(Value::Object(m)) = from else { return };
    for (k, v) in m {
        // int64 fields come as JSON strings.
        let n = |f: &str| v.get(f).and_then(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok())).unwrap_or(0);
        let e = into.entry(k.clone()).or_default();
        e[0] += n("open");
        e[1] += n("atRisk");
        e[2] += n("breached");
    }
}

fn counts_json(m: &BTreeMap<String, [i64; 3]>) -> Value {
    Value::Object(m.iter().map(|(k, [o, a, b])| (k.clone(), json!({"open": o, "atRisk": a, "breached": b}))).collect())
}

/// Tickets' and complaints' SLA counts on one board: totals, by queue (the
/// complaint queues beside the tickets'), by person; each part as its
/// service gave it. Complaints are left out for roles they do not reach.
pub(crate) async fn sla_overview(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, Problem> {
    const TICKETS: &str = "kefu.tickets.v1.TicketService/GetSlaDashboard";
    const COMPLAINTS: &str = "kefu.complaints.v1.ComplaintService/GetComplaintSlaDashboard";
    let (_, token, may) = gw.caller_maybe(&headers, &[TICKETS], &[COMPLAINTS, crate::names::RESOLVE]).await?;
    let req = json!({"withinMinutes": q.within_minutes});
    let tickets = gw.call_json(TICKETS, &token, req.clone()).await?;
    let complaints =
        if may.first().copied().unwrap_or(false) { Some(gw.call_json(COMPLAINTS, &token, req).await?) } else { None };
    let mut total = BTreeMap::new();
    let mut by_queue = BTreeMap::new();
    let mut by_person = BTreeMap::new();
    add_counts(&mut total, Some(&json!({"all": tickets.get("total").cloned().unwrap_or(Value::Null)})));
    add_counts(&mut by_queue, tickets.get("byQueue"));
    add_counts(&mut by_person, tickets.get("byAgent"));
    if let Some(c) = &complaints {
        add_counts(&mut total, Some(&json!({"all": c.get("total").cloned().unwrap_or(Value::Null)})));
        add_counts(&mut by_queue, c.get("byQueue"));
        add_counts(&mut by_person, c.get("byHandler"));
    }
    let total = total.get("all").copied().unwrap_or_default();
    // The people and queues on the board by the directory's names.
    let ids = by_person.keys().chain(by_queue.keys()).cloned().collect();
    let names = if may.get(1).copied().unwrap_or(false) {
        crate::names::lookup(&gw, &token, ids).await
    } else {
        Default::default()
    };
    Ok(Json(json!({
        "total": {"open": total[0], "atRisk": total[1], "breached": total[2]},
        "byQueue": counts_json(&by_queue),
        "byPerson": counts_json(&by_person),
        "names": names,
        "tickets": tickets,
        "complaints": complaints,
    }))
    .into_response())
}

/// A customer's 360° view in one round trip: profile and contacts, open
/// tickets with their SLA state, recent satisfaction, and the customer's
/// complaints for those whose roles reach them.
pub(crate) async fn customer_overview(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    const COMPLAINTS: &str = "kefu.complaints.v1.ComplaintService/ListComplaints";
    let (_, token, may) = gw
        .caller_maybe(
            &headers,
            &["kefu.customers.v1.CustomerService/GetCustomer", "kefu.tickets.v1.TicketService/ListTickets"],
            &[COMPLAINTS, crate::names::RESOLVE],
        )
        .await?;
    let customer = gw.call_json("kefu.customers.v1.CustomerService/GetCustomer", &token, json!({"id": id})).await?;
    let tickets = gw
        .call_json("kefu.tickets.v1.TicketService/ListTickets", &token, json!({"customerId": id, "pageSize": 200}))
        .await?;
    let all = tickets.get("tickets").and_then(Value::as_array).cloned().unwrap_or_default();
    let open: Vec<&Value> = all
        .iter()
        .filter(|t| !matches!(t.get("status").and_then(Value::as_str), Some("STATUS_SOLVED" | "STATUS_CLOSED")))
        .collect();
    let ratings: Vec<i64> =
        all.iter().filter_map(|t| t.get("satisfaction").and_then(Value::as_i64)).filter(|r| *r > 0).collect();
    let avg =
        if ratings.is_empty() { Value::Null } else { json!(ratings.iter().sum::<i64>() as f64 / ratings.len() as f64) };
    let complaints = if may.first().copied().unwrap_or(false) {
        let list = gw.call_json(COMPLAINTS, &token, json!({"customerId": id, "pageSize": 50})).await?;
        list.get("complaints").cloned().unwrap_or_else(|| json!([]))
    } else {
        Value::Null
    };
    let mut view = json!({
        "customer": customer,
        "openTickets": open,
        "satisfaction": {"ratings": ratings.len(), "average": avg},
        "complaints": complaints,
    });
    if may.get(1).copied().unwrap_or(false) {
        crate::names::add(&gw, &token, &mut view).await;
    }
    Ok(Json(view).into_response())
}
