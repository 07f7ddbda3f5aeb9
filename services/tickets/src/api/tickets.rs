//! Tickets: create, read, change, list, assign, status, messages, timeline
//! and rating.
use kefu_kit::{
    Error,
    auth::Principal,
    db::{self, Claim},
    directory::Accept,
    error::Violations,
    etag, page,
    parse::{self, ProtoEnum},
};
use kefu_proto::{common::v1::Channel, tickets::v1 as pb};
use sqlx::AnyConnection;

use super::{
    TicketsApi,
    view::{json_list, ticket_pb, timeline_pb, to_json},
};
use crate::{
    domain::{self, Item, TicketRef},
    sla::Changes,
    store::{self, SlaFilter, TicketFilter, TicketRow, TimelineRow},
};

/// The scope of tickets' idempotency keys in `kit_idempotency`.
const IDEMPOTENCY_SCOPE: &str = "tickets";
/// The page-token name of ListTickets.
const LIST: &str = "tickets";

const SUBJECT_MAX: usize = 200;
const BODY_MAX: usize = 20_000;
const NAME_MAX: usize = 64;
const REQUESTER_MAX: usize = 200;
const REQUEST_ID_MAX: usize = 128;
const REASON_MAX: usize = 500;
const COMMENT_MAX: usize = 2000;
/// A ticket carries at most this many tags…
const TAGS_MAX: usize = 20;
/// …of at most this many characters each.
const TAG_CHARS: usize = 32;
const RATING: std::ops::RangeInclusive<i32> = 1..=5;

fn enumeration<E: ProtoEnum>(field: &str, raw: i32) -> Result<E, Error> {
    parse::enumeration(field, raw, None)
}

/// A new ticket as a request describes it, checked.
pub(super) struct NewTicket {
    pub kind: pb::TicketKind,
    pub channel: Channel,
    pub subject: String,
    pub category: String,
    pub priority: pb::Priority,
    pub requester: String,
    pub queue: String,
    pub assignee: String,
    pub description: String,
    pub customer_id: Option<String>,
    pub tags: Vec<String>,
    pub request_type: String,
    pub filing_period: String,
}

/// Checks a create request's ticket; every bad field is named.
pub(super) async fn parse_new(api: &TicketsApi, input: &pb::Ticket, description: &str) -> Result<NewTicket, Error> {
    let known = api.categories().await?;
    let mut v = Violations::new();
    let kind = v.check(enumeration::<pb::TicketKind>("ticket.kind", input.kind));
    let channel = v.check(enumeration::<Channel>("ticket.channel", input.channel));
    let subject = v.check(parse::required_line("ticket.subject", &input.subject, SUBJECT_MAX));
    let category = v.check(domain::category("ticket.category", &input.category, &known));
    let priority = v.check(parse::enumeration("ticket.priority", input.priority, Some(pb::Priority::Normal)));
    let requester = v.check(parse::line("ticket.requester", &input.requester, REQUESTER_MAX));
    let queue = v.check(parse::line("ticket.queue", &input.queue, NAME_MAX));
    let assignee = v.check(parse::line("ticket.assignee", &input.assignee, NAME_MAX));
    let description = v.check(parse::text("description", description, BODY_MAX));
    let customer_id = v.check(parse::opt_id("ticket.customer_id", &input.customer_id)).flatten();
    if input.customer_id.trim().is_empty() && input.requester.trim().is_empty() {
        v.add("ticket.customer_id", "name the customer (or, for an unknown sender, the requester)");
    }
    let tags = v.check(parse::tags("ticket.tags", &input.tags, TAGS_MAX, TAG_CHARS));
    let request_type = v.check(parse::line("ticket.request_type", &input.request_type, NAME_MAX));
    let filing_period = input.filing_period.trim().to_owned();
    if let Some(c) = &category
        && !filing_period.is_empty()
    {
        if c != "tax_filing" {
            v.add("ticket.filing_period", "only tax-filing requests carry a filing period");
        } else {
            v.check(domain::filing_period_end(&filing_period).map_err(|e| e.within("ticket")));
        }
    }
    v.finish()?;
    match (kind, channel, subject, category, priority, requester, queue, assignee, description, tags, request_type) {
        (
            Some(kind),
            Some(channel),
            Some(subject),
            Some(category),
            Some(priority),
            Some(requester),
            Some(queue),
            Some(assignee),
            Some(description),
            Some(tags),
            Some(request_type),
        ) => Ok(NewTicket {
            kind,
            channel,
            subject,
            category,
            priority,
            requester,
            queue,
            assignee,
            description,
            customer_id,
            tags,
            request_type,
            filing_period,
        }),
        _ => Err(Error::invalid("ticket", "is not valid")),
    }
}

/// The fingerprint of a create request for its request id: the request
/// with the request id left out.
fn create_fingerprint(r: &pb::CreateTicketRequest) -> String {
    db::fingerprint_of(&pb::CreateTicketRequest { request_id: String::new(), ..r.clone() })
}

/// Claims `request_id` for the ticket `id` about to be created, inside the
/// create's transaction and before anything else is written. Returns the
/// ticket an earlier request with this id created, if any: the caller then
/// rolls back and answers with that ticket.
pub(super) async fn claim(
    tx: &mut AnyConnection,
    request_id: &str,
    id: &str,
    fingerprint: &str,
) -> Result<Option<String>, Error> {
    match db::claim_request_id(tx, IDEMPOTENCY_SCOPE, request_id, id, fingerprint).await? {
        Claim::Existing(existing) => Ok(Some(existing)),
        Claim::New => Ok(None),
    }
}

pub(super) async fn create(
    api: &TicketsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::CreateTicketRequest,
) -> Result<pb::Ticket, Error> {
    let input = r.ticket.as_ref().ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let request_id = parse::line("request_id", &r.request_id, REQUEST_ID_MAX)?;
    let new = parse_new(api, input, &r.description).await?;
    api.directory.check(token, &[("ticket.assignee", &new.assignee, Accept::Person)]).await?;
    // The directory's ids are lower case; figures count by them exactly.
    let mut new = new;
    new.assignee = new.assignee.to_ascii_lowercase();
    let tier = match &new.customer_id {
        Some(id) => api.customer_tier(token, id).await?,
        None => "standard".to_owned(),
    };
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = api.pool.begin().await?;
    if !request_id.is_empty()
        && let Some(existing) = claim(&mut tx, &request_id, &id, &create_fingerprint(&r)).await?
    {
        tx.rollback().await?;
        return load(api, &TicketRef::Id(existing)).await;
    }
    let (t, changes) = insert_new(api, &mut tx, p, id, new, tier, &request_id).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_created").await;
    Ok(out)
}

/// Stores a checked new ticket with its first timeline entries and starts
/// its SLA targets, in the caller's transaction.
pub(super) async fn insert_new(
    api: &TicketsApi,
    tx: &mut AnyConnection,
    p: &Principal,
    id: String,
    new: NewTicket,
    tier: String,
    request_id: &str,
) -> Result<(TicketRow, Changes), Error> {
    let (materials, steps) = if new.request_type.is_empty() {
        (to_json::<Vec<Item>>(&vec![])?, to_json::<Vec<Item>>(&vec![])?)
    } else {
        let types = store::request_types(tx).await?;
        let Some((_, _, mats, stps)) = types.iter().find(|t| t.0 == new.request_type) else {
            return Err(Error::invalid(
                "ticket.request_type",
                format!("{:?} is not a known request type", new.request_type),
            ));
        };
        let to_items = |j: &str| -> Result<String, Error> {
            let names: Vec<String> = json_list(j);
            to_json(&names.into_iter().map(|name| Item { name, done: false }).collect::<Vec<_>>())
        };
        (to_items(mats)?, to_items(stps)?)
    };
    let now = api.engine.now();
    let number = store::next_number(tx).await?;
    let status = if new.assignee.is_empty() { pb::Status::New } else { pb::Status::Open };
    let mut t = TicketRow {
        id,
        number,
        kind: i64::from(new.kind as i32),
        channel: i64::from(new.channel as i32),
        queue: if new.queue.is_empty() { new.category.clone() } else { new.queue },
        category: new.category,
        priority: i64::from(new.priority as i32),
        status: i64::from(status as i32),
        subject: new.subject,
        customer_id: new.customer_id.unwrap_or_default(),
        customer_tier: tier,
        requester: new.requester,
        assignee: new.assignee,
        tags: to_json(&new.tags)?,
        request_type: new.request_type,
        materials,
        steps,
        filing_period: new.filing_period,
        filing_deadline: String::new(),
        department: String::new(),
        department_response: String::new(),
        pending_reason: String::new(),
        escalated_to: String::new(),
        satisfaction: store::NOT_RATED,
        satisfaction_comment: String::new(),
        rated_at: None,
        reopen_count: 0,
        resolution_cycle: 1,
        next_response_cycle: 0,
        first_replied_at: None,
        solved_at: None,
        version: 1,
        created_by: p.subject.clone(),
        created_at: now,
        updated_at: store::now_wall_ms(),
    };
    if let Some(cap) = api.engine.filing_cap(&t)? {
        t.filing_deadline = cap.deadline;
        // Close to the deadline already: at least high priority.
        let cal = api.engine.calendar_for_ticket(&t);
        let left = cal.business_between(kefu_sla::target::to_dt(now), kefu_sla::target::to_dt(cap.cap_ms));
        let high = i64::from(pb::Priority::High as i32);
        if left <= cal.business_day() * 2 && t.priority < high {
            t.priority = high;
        }
    }
    store::insert_ticket(tx, &t, (!request_id.is_empty()).then_some(request_id)).await?;
    let how = format!(
        "经{}提交的{}",
        domain::zh::<kefu_proto::common::v1::Channel>(t.channel),
        domain::zh::<pb::TicketKind>(t.kind)
    );
    store::add_timeline(tx, &t.id, "created", &p.subject, &how, now).await?;
    if !new.description.is_empty() {
        store::add_timeline(tx, &t.id, "customer_message", &t.requester, &new.description, now).await?;
    }
    let changes = api.engine.on_created(tx, &t).await?;
    Ok((t, changes))
}

pub(super) async fn load(api: &TicketsApi, r: &TicketRef) -> Result<pb::Ticket, Error> {
    let mut conn = api.reads.acquire().await?;
    let t = store::require_ticket(&mut conn, r).await?;
    ticket_pb(&mut conn, &t).await
}

pub(super) async fn get(api: &TicketsApi, r: pb::GetTicketRequest) -> Result<pb::Ticket, Error> {
    load(api, &domain::ticket_ref("id", &r.id)?).await
}

pub(super) async fn update(api: &TicketsApi, p: &Principal, r: pb::UpdateTicketRequest) -> Result<pb::Ticket, Error> {
    let patch = r.ticket.ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(Error::invalid("update_mask", "name the fields to change"));
    }
    let which = domain::ticket_ref("ticket.id", &patch.id)?;
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    etag::check("ticket", &patch.etag, t.version)?;
    let known = store::active_category_codes(&mut tx).await?;
    let mut v = Violations::new();
    let mut rematch = false;
    for path in &paths {
        match path.as_str() {
            "subject" => {
                if let Some(s) = v.check(parse::required_line("ticket.subject", &patch.subject, SUBJECT_MAX)) {
                    t.subject = s;
                }
            }
            "category" => {
                if let Some(c) = v.check(domain::category("ticket.category", &patch.category, &known)) {
                    rematch |= c != t.category;
                    t.category = c;
                }
            }
            "priority" => {
                if let Some(pr) = v.check(enumeration::<pb::Priority>("ticket.priority", patch.priority)) {
                    let pr = i64::from(pr as i32);
                    rematch |= pr != t.priority;
                    t.priority = pr;
                }
            }
            "channel" => {
                if let Some(c) = v.check(enumeration::<Channel>("ticket.channel", patch.channel)) {
                    let c = i64::from(c as i32);
                    rematch |= c != t.channel;
                    t.channel = c;
                }
            }
            "tags" => {
                if let Some(tags) = v.check(parse::tags("ticket.tags", &patch.tags, TAGS_MAX, TAG_CHARS)) {
                    t.tags = to_json(&tags)?;
                }
            }
            "filing_period" => {
                let period = patch.filing_period.trim();
                if period.is_empty() {
                    t.filing_period.clear();
                    t.filing_deadline.clear();
                } else if v.check(domain::filing_period_end(period).map_err(|e| e.within("ticket"))).is_some() {
                    period.clone_into(&mut t.filing_period);
                }
                rematch = true;
            }
            other => v.add(
                "update_mask",
                format!(
                    "{:?} is not updatable (subject, category, priority, channel, tags, filing_period)",
                    other.chars().take(64).collect::<String>()
                ),
            ),
        }
    }
    if !t.filing_period.is_empty() && t.category != "tax_filing" {
        v.add("ticket.filing_period", "only tax-filing requests carry a filing period");
    }
    v.finish()?;
    if let Some(cap) = api.engine.filing_cap(&t)? {
        t.filing_deadline = cap.deadline;
    }
    let now = api.engine.now();
    store::add_timeline(&mut tx, &t.id, "update", &p.subject, &format!("修改了 {}", paths.join("、")), now).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let changes = if rematch { api.engine.on_rematch(&mut tx, &t).await? } else { Changes::default() };
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_updated").await;
    Ok(out)
}

/// A non-empty filter value, checked.
fn filter_line(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    v.check(parse::line(field, raw, NAME_MAX)).filter(|s| !s.is_empty())
}

pub(super) async fn list(api: &TicketsApi, r: pb::ListTicketsRequest) -> Result<pb::ListTicketsResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 500));
    let after_id = v.check(page::after(LIST, &r.page_token)).flatten();
    let status = if r.status == pb::Status::Unspecified as i32 {
        None
    } else {
        v.check(enumeration::<pb::Status>("status", r.status))
    };
    let assignee = filter_line(&mut v, "assignee", &r.assignee);
    let queue = filter_line(&mut v, "queue", &r.queue);
    let escalated_to = filter_line(&mut v, "escalated_to", &r.escalated_to);
    let customer_id = v.check(parse::opt_id("customer_id", &r.customer_id)).flatten();
    let kind = if r.kind == 0 { None } else { v.check(enumeration::<pb::TicketKind>("kind", r.kind)) };
    let channel =
        if r.channel == 0 { None } else { v.check(enumeration::<Channel>("channel", r.channel)).map(|c| c as i32) };
    let category = filter_line(&mut v, "category", &r.category);
    let filing_period = filter_line(&mut v, "filing_period", &r.filing_period);
    if let Some(p) = &filing_period {
        let ok = p.len() == 7
            && p.as_bytes()[4] == b'-'
            && p[..4].bytes().all(|b| b.is_ascii_digit())
            && p[5..].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m));
        if !ok {
            v.add("filing_period", format!("{p:?} is not a month (YYYY-MM)"));
        }
    }
    let text = filter_line(&mut v, "text", &r.text);
    let sla = match r.sla.trim() {
        "" => None,
        "breached" => Some(SlaFilter::Breached),
        "at_risk" => match kefu_sla::live::at_risk_window(r.at_risk_minutes) {
            Ok(ms) => Some(SlaFilter::DueBy(api.engine.now() + ms)),
            Err(m) => {
                v.add("at_risk_minutes", m);
                None
            }
        },
        other => {
            v.add("sla", format!("{:?} is not at_risk or breached", other.chars().take(32).collect::<String>()));
            None
        }
    };
    v.finish()?;
    let size = size.unwrap_or(50);
    let filter = TicketFilter {
        status,
        assignee,
        queue,
        escalated_to,
        customer_id,
        sla,
        kind,
        channel,
        category,
        filing_period,
        text,
        open_only: r.open_only,
        after_id,
    };
    let mut conn = api.reads.acquire().await?;
    let rows = store::list_tickets(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |t| t.id.clone());
    let tickets = super::view::tickets_pb(&mut conn, &rows).await?;
    Ok(pb::ListTicketsResponse { tickets, next_page_token })
}

pub(super) async fn assign(
    api: &TicketsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::AssignTicketRequest,
) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let assignee = v.check(parse::line("assignee", &r.assignee, NAME_MAX));
    let queue = v.check(parse::line("queue", &r.queue, NAME_MAX));
    if r.assignee.trim().is_empty() && r.queue.trim().is_empty() {
        v.add("assignee", "give an assignee, a queue or both");
    }
    v.finish()?;
    let (Some(which), Some(assignee), Some(queue)) = (which, assignee, queue) else {
        return Err(Error::invalid("ticket_id", "is not valid"));
    };
    api.directory.check(token, &[("assignee", &assignee, Accept::Person)]).await?;
    let assignee = assignee.to_ascii_lowercase();
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    if t.status() == pb::Status::Closed {
        return Err(Error::FailedPrecondition("the ticket is closed".into()));
    }
    let now = api.engine.now();
    let mut body = Vec::new();
    if !assignee.is_empty() {
        body.push(format!("处理人 {} → {assignee}", if t.assignee.is_empty() { "—" } else { &t.assignee }));
        t.assignee = assignee;
        if t.status() == pb::Status::New {
            t.set_status(pb::Status::Open);
        }
    }
    if !queue.is_empty() {
        body.push(format!("队列 {} → {queue}", t.queue));
        t.queue = queue;
    }
    store::add_timeline(&mut tx, &t.id, "assignment", &p.subject, &body.join("；"), now).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let changes = api.engine.on_routing(&mut tx, &t).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_assigned").await;
    Ok(out)
}

pub(super) async fn change_status(
    api: &TicketsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::ChangeStatusRequest,
) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let to = v.check(enumeration::<pb::Status>("status", r.status));
    let reason = v.check(parse::text("reason", &r.reason, REASON_MAX));
    let escalated_to = v.check(parse::line("escalated_to", &r.escalated_to, NAME_MAX));
    if to == Some(pb::Status::PendingInternal) && reason.as_ref().is_some_and(String::is_empty) {
        v.add("reason", "pending internal needs a reason (what it waits for)");
    }
    v.finish()?;
    let (Some(which), Some(to), Some(reason), Some(escalated_to)) = (which, to, reason, escalated_to) else {
        return Err(Error::invalid("status", "is not valid"));
    };
    if to == pb::Status::PendingInternal {
        api.directory.check(token, &[("escalated_to", &escalated_to, Accept::PersonOrTeam)]).await?;
    }
    let escalated_to = escalated_to.to_ascii_lowercase();
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    let from_s = t.status();
    domain::transition(from_s, to, r.reopen)?;
    let now = api.engine.now();
    let from = t.status;
    t.set_status(to);
    let reopened = from_s == pb::Status::Solved && to == pb::Status::Open;
    if reopened {
        t.reopen_count += 1;
        t.resolution_cycle += 1;
        t.solved_at = None;
    }
    if to == pb::Status::Solved {
        t.solved_at = Some(now);
    }
    if to == pb::Status::PendingInternal {
        t.pending_reason.clone_from(&reason);
        t.escalated_to.clone_from(&escalated_to);
    } else if from_s == pb::Status::PendingInternal {
        t.pending_reason.clear();
        t.escalated_to.clear();
    }
    let mut body = format!("{} → {}", domain::zh::<pb::Status>(from), domain::zh::<pb::Status>(t.status));
    if !reason.is_empty() {
        body.push_str(&format!("：{reason}"));
    }
    if !escalated_to.is_empty() {
        body.push_str(&format!("（等待 {escalated_to}）"));
    }
    store::add_timeline(&mut tx, &t.id, "status", &p.subject, &body, now).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let changes = api.engine.on_status(&mut tx, &t, from, t.status, reopened).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_status").await;
    Ok(out)
}

pub(super) async fn add_message(
    api: &TicketsApi,
    p: &Principal,
    r: pb::AddMessageRequest,
) -> Result<pb::TimelineEntry, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    let kind = v.check(enumeration::<pb::MessageKind>("kind", r.kind));
    let body = v.check(parse::required_text("body", &r.body, BODY_MAX));
    v.finish()?;
    let (Some(which), Some(kind), Some(body)) = (which, kind, body) else {
        return Err(Error::invalid("body", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    let (entry, t, changes) = post_message(api, &mut tx, p, &which, kind, &body).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_message").await;
    Ok(timeline_pb(&entry))
}

/// Adds a message to a ticket in the caller's transaction, with what it
/// does to the ticket's status and SLA targets.
pub(super) async fn post_message(
    api: &TicketsApi,
    tx: &mut AnyConnection,
    p: &Principal,
    which: &TicketRef,
    kind: pb::MessageKind,
    body: &str,
) -> Result<(TimelineRow, TicketRow, Changes), Error> {
    let mut t = store::require_ticket(tx, which).await?;
    if t.status() == pb::Status::Closed {
        return Err(Error::FailedPrecondition("the ticket is closed; open a follow-up ticket".into()));
    }
    let now = api.engine.now();
    let mut changes = Changes::default();
    let entry = match kind {
        pb::MessageKind::PublicReply => {
            let e = store::add_timeline(tx, &t.id, "public_reply", &p.subject, body, now).await?;
            t.first_replied_at = t.first_replied_at.or(Some(now));
            if t.status() == pb::Status::New {
                t.set_status(pb::Status::Open);
            }
            if t.assignee.is_empty() {
                t.assignee.clone_from(&p.subject);
            }
            changes = api.engine.on_agent_reply(tx, &t).await?;
            e
        }
        pb::MessageKind::CustomerMessage => {
            let e = store::add_timeline(tx, &t.id, "customer_message", &t.requester.clone(), body, now).await?;
            let from = t.status;
            let mut reopened = false;
            match t.status() {
                pb::Status::Solved => {
                    t.set_status(pb::Status::Open);
                    t.reopen_count += 1;
                    t.resolution_cycle += 1;
                    t.solved_at = None;
                    reopened = true;
                    store::add_timeline(tx, &t.id, "status", "customer", "客户来信，工单重新打开", now).await?;
                }
                pb::Status::PendingCustomer => {
                    t.set_status(pb::Status::Open);
                    store::add_timeline(tx, &t.id, "status", "customer", "客户已答复，转为处理中", now).await?;
                }
                _ => {}
            }
            if t.status != from {
                changes.merge(api.engine.on_status(tx, &t, from, t.status, reopened).await?);
            }
            changes.merge(api.engine.on_customer_message(tx, &mut t).await?);
            e
        }
        pb::MessageKind::InternalNote => store::add_timeline(tx, &t.id, "internal_note", &p.subject, body, now).await?,
        pb::MessageKind::Unspecified => return Err(Error::invalid("kind", "is required")),
    };
    store::save_ticket(tx, &mut t).await?;
    if kind == pb::MessageKind::PublicReply {
        changes.merge(api.engine.on_routing(tx, &t).await?);
    }
    Ok((entry, t, changes))
}

pub(super) async fn timeline(api: &TicketsApi, r: pb::ListTimelineRequest) -> Result<pb::ListTimelineResponse, Error> {
    let which = domain::ticket_ref("ticket_id", &r.ticket_id)?;
    let mut conn = api.pool.acquire().await?;
    let t = store::require_ticket(&mut conn, &which).await?;
    let entries = store::timeline(&mut conn, &t.id).await?.iter().map(timeline_pb).collect();
    Ok(pb::ListTimelineResponse { entries })
}

/// A customer's rating of a solved or closed ticket; when it was given
/// (service clock) is kept for agent statistics.
pub(super) async fn rate(api: &TicketsApi, p: &Principal, r: pb::RateTicketRequest) -> Result<pb::Ticket, Error> {
    let mut v = Violations::new();
    let which = v.check(domain::ticket_ref("ticket_id", &r.ticket_id));
    if !RATING.contains(&r.rating) {
        v.add("rating", "must be 1 to 5");
    }
    let comment = v.check(parse::text("comment", &r.comment, COMMENT_MAX));
    v.finish()?;
    let (Some(which), Some(comment)) = (which, comment) else {
        return Err(Error::invalid("rating", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    if !matches!(t.status(), pb::Status::Solved | pb::Status::Closed) {
        return Err(Error::FailedPrecondition("only a solved or closed ticket can be rated".into()));
    }
    if t.rated_at.is_some() {
        return Err(Error::FailedPrecondition("the ticket was already rated; a rating is given once".into()));
    }
    let now = api.engine.now();
    t.satisfaction = i64::from(r.rating);
    t.satisfaction_comment = comment;
    t.rated_at = Some(now);
    store::add_timeline(&mut tx, &t.id, "rating", &p.subject, &format!("{} / 5", r.rating), now).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(out)
}
