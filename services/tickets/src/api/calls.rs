//! Phone calls: the telephony system reports each call as offered, then
//! answered or abandoned; the `answer` SLA target runs in between.
use kefu_kit::{
    Error,
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::tickets::v1 as pb;

use super::{TicketsApi, view::state_pb};
use crate::{
    sla::Changes,
    store::{self, CallRow},
};

const CALL_ID_MAX: usize = 128;
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
            changes = api.engine.on_call_ended(&mut tx, &record_id, &c.queue, at, answered).await?;
            c
        }
    };
    let target = store::targets_of(&mut tx, &record_id).await?.into_iter().next();
    let answer_sla = target.map_or(pb::SlaState::Unspecified, |t| state_pb(t.target.state()));
    api.finish(tx, changes).await?;
    let end = call.answered_at.or(call.abandoned_at);
    Ok(pb::PhoneContact {
        call_id: call.call_id,
        caller_number: call.caller_number,
        queue: call.queue,
        agent: call.agent,
        offered_time: ts(call.offered_at),
        answered_time: ts_opt(call.answered_at),
        abandoned_time: ts_opt(call.abandoned_at),
        ring_count: i32::try_from(call.ring_count).unwrap_or(i32::MAX),
        wait_seconds: end.map_or(0.0, |e| (e - call.offered_at) as f64 / 1000.0),
        answer_sla: answer_sla as i32,
    })
}
