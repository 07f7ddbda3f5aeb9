//! Phone calls: the telephony system reports each call as offered, then
//! answered or abandoned; the `answer` SLA target runs in between, counted
//! in rings or seconds. Agents log the calls the telephony system does not
//! see, link calls to tickets and list them.
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db,
    error::Violations,
    page,
    parse::{self, ts, ts_opt},
};
use kefu_proto::tickets::v1 as pb;

use super::{TicketsApi, view::state_pb};
use crate::{
    sla::Changes,
    store::{self, CallRow},
};

const CALL_ID_MAX: usize = 128;
const NOTE_MAX: usize = 2000;
/// The longest call an agent can log (a working day).
const TALK_MAX_SECONDS: i32 = 12 * 3600;
const CALLS_LIST: &str = "calls";
const IDEMPOTENCY_SCOPE: &str = "tickets.phone_contact";
const NUMBER_MAX: usize = 32;
const NAME_MAX: usize = 64;

pub(super) async fn record_event(api: &TicketsApi, r: pb::RecordCallEventRequest) -> Result<pb::PhoneContact, Error> {
    let mut v = Violations::new();
    let call_id = v.check(parse::required_line("call_id", &r.call_id, CALL_ID_MAX));
    let kind = v.check(parse::enumeration::<pb::CallEventKind>("kind", r.kind, None));
    let at = v.check(parse::opt_timestamp("time", r.time.as_ref()));
    let caller_number = v.check(parse::line("caller_number", &r.caller_number, NUMBER_MAX));
    let queue = v.check(parse::line("queue", &r.queue, NAME_MAX));
    let agent = v.check(parse::line("agent", &r.agent, NAME_MAX));
    if r.ring_count < 0 {
        v.add("ring_count", "must not be negative");
    }
    v.finish()?;
    let (Some(call_id), Some(kind), Some(at), Some(caller_number), Some(queue), Some(agent)) =
        (call_id, kind, at, caller_number, queue, agent)
    else {
        return Err(Error::invalid("call_id", "is not valid"));
    };
    let at = at.unwrap_or_else(|| api.engine.now());
    let ring_count = i64::from(r.ring_count);
    let record_id = format!("call:{call_id}");
    let mut tx = api.pool.begin().await?;
    let existing = store::get_call(&mut tx, &call_id).await?;
    let mut changes = Changes::default();
    let call = match (kind, existing) {
        (pb::CallEventKind::Offered, None) => {
            let c = CallRow {
                call_id: call_id.clone(),
                caller_number,
                queue,
                agent: String::new(),
                offered_at: at,
                answered_at: None,
                abandoned_at: None,
                ring_count,
                ticket_id: String::new(),
                direction: "inbound".into(),
                source: "telephony".into(),
                talk_seconds: 0,
                note: String::new(),
                logged_by: String::new(),
            };
            store::put_call(&mut tx, &c).await?;
            changes = api.engine.on_call_offered(&mut tx, &record_id, &c.queue, at).await?;
            c
        }
        // Repeated events change nothing.
        (pb::CallEventKind::Offered, Some(c)) => c,
        (_, None) => return Err(Error::FailedPrecondition(format!("call {call_id} was never offered"))),
        (_, Some(c)) if c.answered_at.is_some() || c.abandoned_at.is_some() => c,
        (k, Some(mut c)) => {
            if at < c.offered_at {
                return Err(Error::invalid("time", "is before the call was offered"));
            }
            let answered = k == pb::CallEventKind::Answered;
            if answered {
                if agent.is_empty() {
                    return Err(Error::invalid("agent", "is required when a call is answered"));
                }
                c.answered_at = Some(at);
                c.agent = agent;
            } else {
                c.abandoned_at = Some(at);
            }
            c.ring_count = c.ring_count.max(ring_count);
            store::put_call(&mut tx, &c).await?;
            changes = api.engine.on_call_ended(&mut tx, &record_id, &c.queue, at, answered, c.ring_count).await?;
            c
        }
    };
    let target = store::targets_of(&mut tx, &record_id).await?.into_iter().next();
    let answer_sla = target.map_or(pb::SlaState::Unspecified, |t| state_pb(t.target.state()));
    api.finish(tx, changes).await?;
    Ok(contact_pb(call, answer_sla))
}

fn contact_pb(call: CallRow, answer_sla: pb::SlaState) -> pb::PhoneContact {
    let end = call.answered_at.or(call.abandoned_at);
    pb::PhoneContact {
        wait_seconds: end.map_or(0.0, |e| (e - call.offered_at) as f64 / 1000.0),
        call_id: call.call_id,
        caller_number: call.caller_number,
        queue: call.queue,
        agent: call.agent,
        offered_time: ts(call.offered_at),
        answered_time: ts_opt(call.answered_at),
        abandoned_time: ts_opt(call.abandoned_at),
        ring_count: i32::try_from(call.ring_count).unwrap_or(i32::MAX),
        answer_sla: answer_sla as i32,
        ticket_id: call.ticket_id,
        direction: if call.direction == "outbound" { pb::CallDirection::Outbound } else { pb::CallDirection::Inbound }
            as i32,
        source: call.source,
        talk_seconds: i32::try_from(call.talk_seconds).unwrap_or(i32::MAX),
        note: call.note,
        logged_by: call.logged_by,
    }
}

/// The answer target's state of a call, if it has one.
async fn answer_state(conn: &mut sqlx::AnyConnection, call_id: &str) -> Result<pb::SlaState, Error> {
    let target = store::targets_of(conn, &format!("call:{call_id}")).await?.into_iter().next();
    Ok(target.map_or(pb::SlaState::Unspecified, |t| state_pb(t.target.state())))
}

/// A ticket reference (id or number) that must exist; its id.
async fn ticket_id_of(conn: &mut sqlx::AnyConnection, field: &str, raw: &str) -> Result<String, Error> {
    let which = crate::domain::ticket_ref(field, raw)?;
    match store::find_ticket(conn, &which).await? {
        Some(t) => Ok(t.id),
        None => Err(Error::invalid(field, format!("no ticket {:?}", raw.chars().take(64).collect::<String>()))),
    }
}

/// A ticket a call may be tied to: not one of a customer whose data was
/// erased (a number or note tied to it would bring the person back).
async fn linkable_ticket(conn: &mut sqlx::AnyConnection, field: &str, raw: &str) -> Result<String, Error> {
    let which = crate::domain::ticket_ref(field, raw)?;
    let Some(t) = store::find_ticket(conn, &which).await? else {
        return Err(Error::invalid(field, format!("no ticket {:?}", raw.chars().take(64).collect::<String>())));
    };
    if !t.customer_id.is_empty() && store::is_erased(conn, &t.customer_id).await? {
        return Err(Error::FailedPrecondition(format!(
            "the customer of ticket {} was erased; calls are not tied to it",
            t.number
        )));
    }
    Ok(t.id)
}

/// A call an agent took or made outside the telephony system. It has no
/// answer target (nothing measured when it rang); it counts in the agent's
/// contacts and the ticket's history.
pub(super) async fn log_contact(
    api: &TicketsApi,
    p: &Principal,
    r: pb::LogPhoneContactRequest,
) -> Result<pb::PhoneContact, Error> {
    let mut v = Violations::new();
    let direction =
        v.check(parse::enumeration::<pb::CallDirection>("direction", r.direction, Some(pb::CallDirection::Inbound)));
    let at = v.check(parse::opt_timestamp("time", r.time.as_ref())).flatten();
    let caller_number = v.check(parse::required_line("caller_number", &r.caller_number, NUMBER_MAX).and_then(|n| {
        let digits = n.chars().filter(char::is_ascii_digit).count();
        if digits >= 3 && n.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) {
            Ok(n)
        } else {
            Err(Error::invalid("caller_number", "is not a phone number (digits, +, -, spaces and parentheses)"))
        }
    }));
    let queue = v.check(parse::line("queue", &r.queue, NAME_MAX));
    let agent = v.check(parse::line("agent", &r.agent, NAME_MAX));
    let note = v.check(parse::text("note", &r.note, NOTE_MAX));
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    if !(0..=TALK_MAX_SECONDS).contains(&r.talk_seconds) {
        v.add("talk_seconds", format!("must be 0 to {TALK_MAX_SECONDS}"));
    }
    if !(0..=100).contains(&r.ring_count) {
        v.add("ring_count", "must be 0 to 100");
    }
    let now = api.engine.now();
    if at.is_some_and(|t| t > now + 60_000) {
        v.add("time", "is in the future");
    }
    v.finish()?;
    let (Some(direction), Some(caller_number), Some(queue), Some(agent), Some(note)) =
        (direction, caller_number, queue, agent, note)
    else {
        return Err(Error::invalid("caller_number", "is not valid"));
    };
    let at = at.unwrap_or(now);
    // Agents log their own calls; supervisors (and integrations) anyone's.
    if !agent.is_empty() && agent != p.subject && !p.has_any(&[Role::Supervisor, Role::Admin, Role::Service]) {
        return Err(Error::PermissionDenied("an agent logs their own calls; leave agent empty".into()));
    }
    let mut tx = api.pool.begin().await?;
    let ticket_id = if r.ticket_id.trim().is_empty() {
        String::new()
    } else {
        linkable_ticket(&mut tx, "ticket_id", &r.ticket_id).await?
    };
    let call_id = format!("manual-{}", uuid::Uuid::now_v7());
    if !request_id.is_empty() {
        let fingerprint = db::fingerprint_of(&pb::LogPhoneContactRequest { request_id: String::new(), ..r.clone() });
        if let db::Claim::Existing(existing) =
            db::claim_request_id(&mut tx, IDEMPOTENCY_SCOPE, &request_id, &call_id, &fingerprint).await?
        {
            drop(tx);
            let mut conn = api.pool.acquire().await?;
            let call = store::get_call(&mut conn, &existing).await?.ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("call {existing} of a claimed request id is missing"))
            })?;
            return Ok(contact_pb(call, pb::SlaState::Unspecified));
        }
    }
    let call = CallRow {
        call_id: call_id.clone(),
        caller_number,
        queue,
        agent: if agent.is_empty() { p.subject.clone() } else { agent },
        offered_at: at,
        answered_at: Some(at),
        abandoned_at: None,
        ring_count: i64::from(r.ring_count),
        ticket_id: ticket_id.clone(),
        direction: if direction == pb::CallDirection::Outbound { "outbound" } else { "inbound" }.into(),
        source: "manual".into(),
        talk_seconds: i64::from(r.talk_seconds),
        note,
        logged_by: p.subject.clone(),
    };
    store::put_call(&mut tx, &call).await?;
    if !ticket_id.is_empty() {
        let what = if call.direction == "outbound" { "已记录外呼" } else { "已记录来电" };
        store::add_timeline(&mut tx, &ticket_id, "phone_contact", &p.subject, &format!("{what}（{call_id}）"), now)
            .await?;
    }
    tx.commit().await?;
    Ok(contact_pb(call, pb::SlaState::Unspecified))
}

pub(super) async fn link(api: &TicketsApi, p: &Principal, r: pb::LinkCallRequest) -> Result<pb::PhoneContact, Error> {
    let call_id = parse::required_line("call_id", &r.call_id, CALL_ID_MAX)?;
    let mut tx = api.pool.begin().await?;
    let mut call =
        store::get_call(&mut tx, &call_id).await?.ok_or_else(|| Error::NotFound(format!("call {call_id}")))?;
    let ticket_id = if r.ticket_id.trim().is_empty() {
        String::new()
    } else {
        linkable_ticket(&mut tx, "ticket_id", &r.ticket_id).await?
    };
    if call.ticket_id != ticket_id {
        call.ticket_id.clone_from(&ticket_id);
        store::put_call(&mut tx, &call).await?;
        if !ticket_id.is_empty() {
            let now = api.engine.now();
            store::add_timeline(
                &mut tx,
                &ticket_id,
                "phone_contact",
                &p.subject,
                &format!("已关联通话 {call_id}"),
                now,
            )
            .await?;
        }
    }
    let state = answer_state(&mut tx, &call_id).await?;
    tx.commit().await?;
    Ok(contact_pb(call, state))
}

/// A caller's number as people without a need for it see it: `138****8000`.
fn masked(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() < 7 || number == crate::domain::ERASED {
        return number.to_owned();
    }
    let (head, tail) = (&chars[..3], &chars[chars.len() - 4..]);
    format!("{}****{}", head.iter().collect::<String>(), tail.iter().collect::<String>())
}

/// Whether the caller sees numbers in full (who calls customers back on
/// the firm's behalf and the systems that route calls); agents see them
/// masked, as in the customers service.
fn sees_numbers(p: &Principal) -> bool {
    p.has_any(&[Role::Supervisor, Role::Admin, Role::Service])
}

pub(super) async fn list(
    api: &TicketsApi,
    p: &Principal,
    r: pb::ListCallsRequest,
) -> Result<pb::ListCallsResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 200)).unwrap_or(50);
    let before = v.check(page::time_and_id(CALLS_LIST, &r.page_token)).flatten();
    let agent = v.check(parse::line("agent", &r.agent, NAME_MAX)).unwrap_or_default();
    let queue = v.check(parse::line("queue", &r.queue, NAME_MAX)).unwrap_or_default();
    let from = v.check(parse::opt_timestamp("from_time", r.from_time.as_ref())).flatten();
    let to = v.check(parse::opt_timestamp("to_time", r.to_time.as_ref())).flatten();
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let ticket_id = if r.ticket_id.trim().is_empty() {
        None
    } else {
        Some(ticket_id_of(&mut conn, "ticket_id", &r.ticket_id).await?)
    };
    let filter = store::CallFilter {
        agent: (!agent.is_empty()).then_some(agent),
        queue: (!queue.is_empty()).then_some(queue),
        ticket_id,
        from,
        to,
        before,
    };
    let rows = store::list_calls(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next_time_and_id(CALLS_LIST, &rows, more, |c| (c.offered_at, c.call_id.as_str()));
    let mut calls = Vec::with_capacity(rows.len());
    for c in rows {
        let state = if c.source == "telephony" {
            answer_state(&mut conn, &c.call_id).await?
        } else {
            pb::SlaState::Unspecified
        };
        let mut contact = contact_pb(c, state);
        if !sees_numbers(p) {
            contact.caller_number = masked(&contact.caller_number);
        }
        calls.push(contact);
    }
    Ok(pb::ListCallsResponse { calls, next_page_token })
}
