//! Feedback: routed to a department, the department's response recorded,
//! the result sent to the customer.
use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::tickets::v1 as pb;

use super::{TicketsApi, view::ticket_pb};
use crate::{
    domain::{self, TicketRef},
    store::{self, TicketRow},
};

const DEPARTMENT_MAX: usize = 100;
const BODY_MAX: usize = 20_000;

pub(super) async fn route(api: &TicketsApi, p: &Principal, r: pb::RouteFeedbackRequest) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let department = v.check(parse::required_line("department", &r.department, DEPARTMENT_MAX));
    v.finish()?;
    let (Some(which), Some(department)) = (which, department) else {
        return Err(Error::invalid("department", "is not valid"));
    };
    step(api, p, &which, |t| {
        t.department.clone_from(&department);
        Ok(format!("已转交{department}"))
    })
    .await
}

pub(super) async fn record_department_response(
    api: &TicketsApi,
    p: &Principal,
    r: pb::RecordDepartmentResponseRequest,
) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let response = v.check(parse::required_text("response", &r.response, BODY_MAX));
    v.finish()?;
    let (Some(which), Some(response)) = (which, response) else {
        return Err(Error::invalid("response", "is not valid"));
    };
    step(api, p, &which, |t| {
        if t.department.is_empty() {
            return Err(Error::FailedPrecondition("route the feedback to a department first".into()));
        }
        t.department_response.clone_from(&response);
        Ok(format!("{}答复：{response}", t.department))
    })
    .await
}

pub(super) async fn send_result(
    api: &TicketsApi,
    p: &Principal,
    r: pb::SendFeedbackResultRequest,
) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let message = v.check(parse::required_text("message", &r.message, BODY_MAX));
    v.finish()?;
    let (Some(which), Some(message)) = (which, message) else {
        return Err(Error::invalid("message", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    if t.kind() != pb::TicketKind::Feedback {
        return Err(Error::FailedPrecondition("only feedback tickets send a feedback result".into()));
    }
    if t.department_response.is_empty() {
        return Err(Error::FailedPrecondition("record the department's response before sending the result".into()));
    }
    let now = api.engine.now();
    store::add_timeline(&mut tx, &t.id, "public_reply", &p.subject, &message, now).await?;
    t.first_replied_at = t.first_replied_at.or(Some(now));
    store::save_ticket(&mut tx, &mut t).await?;
    let mut changes = api.engine.on_feedback_sent(&mut tx, &t).await?;
    changes.merge(api.engine.on_agent_reply(&mut tx, &t).await?);
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    Ok(out)
}

/// One step of a feedback ticket's workflow: `f` changes the ticket and
/// says what happened, for the timeline.
async fn step(
    api: &TicketsApi,
    p: &Principal,
    which: &TicketRef,
    f: impl FnOnce(&mut TicketRow) -> Result<String, Error>,
) -> Result<pb::Ticket, Error> {
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, which).await?;
    if t.kind() != pb::TicketKind::Feedback {
        return Err(Error::FailedPrecondition("this is not a feedback ticket".into()));
    }
    let body = f(&mut t)?;
    store::add_timeline(&mut tx, &t.id, "feedback", &p.subject, &body, api.engine.now()).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(out)
}
