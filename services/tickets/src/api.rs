//! The `kefu.tickets.v1.TicketService` gRPC API.
use std::{pin::Pin, sync::Arc};

use base64::Engine as _;
use futures::Stream;
use kefu_kit::{
    Error,
    access::{ANYONE, Access, MANAGERS, READERS, WRITERS},
    auth::{Principal, Role, principal},
    client::CallContext,
    error::Violations,
};
use kefu_proto::{
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    tickets::v1::{self as pb, ticket_service_server::TicketService},
};
use kefu_sla::{CalendarSpec, ClockKind, Metric, MetricRule, Policy, TargetState};
use sqlx::{AnyConnection, AnyPool, Row};
use tonic::{Request, Response, Status};

use crate::{
    domain,
    sla::{Changes, SlaEngine},
    store::{self, TicketRow},
};

const TELEPHONY: &[Role] = &[Role::Service, Role::Admin, Role::Supervisor];
const DASHBOARD: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
const STATS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Service];

/// Who may call each RPC; the auth layer enforces it before a handler runs.
pub static ACCESS: Access = Access {
    service: "kefu.tickets.v1.TicketService",
    rules: &[
        ("CreateTicket", WRITERS),
        ("GetTicket", READERS),
        ("UpdateTicket", WRITERS),
        ("ListTickets", READERS),
        ("AssignTicket", WRITERS),
        ("ChangeStatus", WRITERS),
        ("AddMessage", WRITERS),
        ("ListTimeline", READERS),
        ("UpdateProgress", WRITERS),
        ("ListRequestTypes", ANYONE),
        ("UpsertRequestType", MANAGERS),
        ("RouteFeedback", WRITERS),
        ("RecordDepartmentResponse", WRITERS),
        ("SendFeedbackResult", WRITERS),
        ("IngestEmail", WRITERS),
        ("RecordCallEvent", TELEPHONY),
        ("RateTicket", WRITERS),
        ("GetTicketSla", READERS),
        ("GetSlaDashboard", DASHBOARD),
        ("WatchSlaEvents", WRITERS),
        ("ListSlaPolicies", ANYONE),
        ("UpsertSlaPolicy", MANAGERS),
        ("DeleteSlaPolicy", MANAGERS),
        ("GetCalendar", ANYONE),
        ("ExtendCalendar", ADMINS),
        ("ListCategories", ANYONE),
        ("SetCategories", MANAGERS),
        ("GetAgentStats", STATS),
    ],
};

type Res<T> = Result<Response<T>, Status>;

pub struct TicketsApi {
    pool: AnyPool,
    engine: Arc<SlaEngine>,
    customers_addr: String,
    categories: std::sync::RwLock<Vec<String>>,
}

impl TicketsApi {
    pub fn new(pool: AnyPool, engine: Arc<SlaEngine>, customers_addr: String, categories: Vec<String>) -> Self {
        Self { pool, engine, customers_addr, categories: std::sync::RwLock::new(categories) }
    }

    fn categories(&self) -> Vec<String> {
        self.categories.read().map_or_else(|p| p.into_inner().clone(), |c| c.clone())
    }
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 })
}

fn ts_opt(ms: Option<i64>) -> Option<prost_types::Timestamp> {
    ms.and_then(ts)
}

fn text(field: &str, raw: &str, max: usize, required: bool) -> Result<String, Error> {
    let s = raw.trim();
    if required && s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    let n = s.chars().count();
    if n > max {
        return Err(Error::invalid(field, format!("is {n} characters; at most {max}")));
    }
    Ok(s.to_owned())
}

fn enum_req<E: TryFrom<i32>>(field: &str, raw: i32, default: Option<E>) -> Result<E, Error> {
    if raw == 0 {
        return default.ok_or_else(|| Error::invalid(field, "is required"));
    }
    E::try_from(raw).map_err(|_| Error::invalid(field, format!("{raw} is not a known value")))
}

fn bearer<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

fn state_pb(s: TargetState) -> pb::SlaState {
    match s {
        TargetState::Active => pb::SlaState::Active,
        TargetState::Warning => pb::SlaState::Warning,
        TargetState::Breached => pb::SlaState::Breached,
        TargetState::Paused => pb::SlaState::Paused,
        TargetState::Fulfilled => pb::SlaState::Fulfilled,
        TargetState::FulfilledLate => pb::SlaState::FulfilledLate,
    }
}

/// Worse states first: breached > warning > active > paused > done.
fn severity(s: pb::SlaState) -> i32 {
    match s {
        pb::SlaState::Breached => 5,
        pb::SlaState::Warning => 4,
        pb::SlaState::Active => 3,
        pb::SlaState::Paused => 2,
        pb::SlaState::FulfilledLate => 1,
        _ => 0,
    }
}

fn json_list<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

#[derive(serde::Serialize, serde::Deserialize, Default, Clone)]
struct Item {
    name: String,
    done: bool,
}

async fn ticket_pb(conn: &mut AnyConnection, t: &TicketRow) -> Result<pb::Ticket, Error> {
    let targets = store::targets_of(conn, &t.id).await?;
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
    let materials: Vec<Item> = json_list(&t.materials);
    let steps: Vec<Item> = json_list(&t.steps);
    let materials: Vec<pb::Material> =
        materials.into_iter().map(|m| pb::Material { name: m.name, received: m.done }).collect();
    let steps: Vec<pb::Step> = steps.into_iter().map(|m| pb::Step { name: m.name, done: m.done }).collect();
    Ok(pb::Ticket {
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
        etag: t.version.to_string(),
        reopen_count: t.reopen_count as i32,
    })
}

fn timeline_pb(r: &store::TimelineRow) -> pb::TimelineEntry {
    pb::TimelineEntry {
        id: r.id.clone(),
        ticket_id: r.ticket_id.clone(),
        kind: r.kind.clone(),
        author: r.author.clone(),
        body: r.body.clone(),
        time: ts(r.at),
    }
}

fn tier_name(t: i32) -> &'static str {
    match cpb::ServiceTier::try_from(t) {
        Ok(cpb::ServiceTier::Priority) => "priority",
        Ok(cpb::ServiceTier::Vip) => "vip",
        _ => "standard",
    }
}

impl TicketsApi {
    fn customers(
        &self,
        token: Option<&str>,
    ) -> Result<
        CustomerServiceClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallContext>>,
        Error,
    > {
        let channel = kefu_kit::client::channel(&self.customers_addr)?;
        Ok(CustomerServiceClient::with_interceptor(channel, CallContext::new(token)?))
    }

    /// Checks the customer exists (through the customers service, with the
    /// caller's own token) and returns its service tier.
    async fn customer_tier(&self, token: Option<&str>, customer_id: &str) -> Result<String, Error> {
        let mut c = self.customers(token)?;
        match c.get_customer(cpb::GetCustomerRequest { id: customer_id.to_owned() }).await {
            Ok(r) => {
                let cust = r.into_inner();
                if cust.lifecycle_status == cpb::LifecycleStatus::Erased as i32 {
                    return Err(Error::FailedPrecondition("the customer's data was erased; no new tickets".into()));
                }
                Ok(tier_name(cust.service_tier).to_owned())
            }
            Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::InvalidArgument => {
                Err(Error::invalid("ticket.customer_id", format!("no customer {customer_id:?}")))
            }
            Err(s) if s.code() == tonic::Code::PermissionDenied => Err(Error::PermissionDenied(s.message().to_owned())),
            Err(s) => Err(Error::Unavailable(format!("customers service: {}", s.message()))),
        }
    }

    /// Finds the customer whose contact has this email.
    async fn customer_by_email(&self, token: Option<&str>, email: &str) -> Result<Option<(String, String)>, Error> {
        let mut c = self.customers(token)?;
        match c
            .list_customers(cpb::ListCustomersRequest {
                contact_email: email.to_owned(),
                page_size: 1,
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                Ok(r.into_inner().customers.into_iter().next().map(|c| (c.id, tier_name(c.service_tier).to_owned())))
            }
            Err(s) => Err(Error::Unavailable(format!("customers service: {}", s.message()))),
        }
    }

    async fn finish(&self, tx: sqlx::Transaction<'static, sqlx::Any>, changes: Changes) -> Result<(), Error> {
        tx.commit().await.map_err(Error::from)?;
        self.engine.publish(changes).await;
        Ok(())
    }

    /// Tells watchers a ticket changed (best effort: the change is committed).
    async fn changed(&self, t: &TicketRow, kind: &str) {
        let c = kefu_sla::RecordChange {
            id: format!("{}:{}", t.id, uuid::Uuid::now_v7().simple()),
            record_id: t.id.clone(),
            kind: kind.to_owned(),
            at_ms: self.engine.now(),
            queue: t.queue.clone(),
            assignee: t.assignee.clone(),
            status: domain::status_name(t.status).to_owned(),
        };
        if let Err(e) = self.engine.live.publish_change(&c).await {
            tracing::warn!(error = %e, "publishing a ticket change failed");
        }
    }

    async fn load(&self, id: &str) -> Result<pb::Ticket, Error> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let t = store::require_ticket(&mut conn, id.trim()).await?;
        ticket_pb(&mut conn, &t).await
    }

    async fn create(
        &self,
        p: &Principal,
        token: Option<&str>,
        r: pb::CreateTicketRequest,
    ) -> Result<pb::Ticket, Error> {
        let input = r.ticket.ok_or_else(|| Error::invalid("ticket", "is required"))?;
        let request_id = text("request_id", &r.request_id, 128, false)?;
        if !request_id.is_empty() {
            let mut conn = self.pool.acquire().await.map_err(Error::from)?;
            if let Some(t) = store::ticket_by_request_id(&mut conn, &request_id).await? {
                return ticket_pb(&mut conn, &t).await;
            }
        }
        let mut v = Violations::new();
        let kind = v.check(enum_req::<pb::TicketKind>("ticket.kind", input.kind, None));
        let channel = v.check(enum_req::<kefu_proto::common::v1::Channel>("ticket.channel", input.channel, None));
        let subject = v.check(text("ticket.subject", &input.subject, 200, true));
        let category = v.check(domain::category("ticket.category", &input.category, &self.categories()));
        let priority = v.check(enum_req("ticket.priority", input.priority, Some(pb::Priority::Normal)));
        let requester = v.check(text("ticket.requester", &input.requester, 200, false));
        let queue = v.check(text("ticket.queue", &input.queue, 64, false));
        let assignee = v.check(text("ticket.assignee", &input.assignee, 64, false));
        let description = v.check(text("description", &r.description, 20_000, false));
        let customer_id = if input.customer_id.trim().is_empty() {
            None
        } else {
            v.check(
                uuid::Uuid::parse_str(input.customer_id.trim())
                    .map(|u| u.to_string())
                    .map_err(|_| Error::invalid("ticket.customer_id", "is not a valid id")),
            )
        };
        if input.customer_id.trim().is_empty() && input.requester.trim().is_empty() {
            v.add("ticket.customer_id", "name the customer (or, for an unknown sender, the requester)");
        }
        let mut tags = Vec::new();
        for (i, t) in input.tags.iter().enumerate() {
            if let Some(t) = v.check(text(&format!("ticket.tags[{i}]"), t, 32, true))
                && !tags.contains(&t)
            {
                tags.push(t);
            }
        }
        if let Some(c) = &category
            && !input.filing_period.is_empty()
        {
            if c != "tax_filing" {
                v.add("ticket.filing_period", "only tax-filing requests carry a filing period");
            } else {
                v.check(domain::filing_period_end(&input.filing_period).map_err(|e| e.within("ticket")));
            }
        }
        v.finish()?;
        let (
            Some(kind),
            Some(channel),
            Some(subject),
            Some(category),
            Some(priority),
            Some(requester),
            Some(queue),
            Some(assignee),
            Some(description),
        ) = (kind, channel, subject, category, priority, requester, queue, assignee, description)
        else {
            return Err(Error::invalid("ticket", "is not valid"));
        };
        let tier = match &customer_id {
            Some(id) => self.customer_tier(token, id).await?,
            None => "standard".to_owned(),
        };
        let now = self.engine.now();
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let (materials, steps) = if input.request_type.trim().is_empty() {
            ("[]".to_owned(), "[]".to_owned())
        } else {
            let types = store::request_types(&mut tx).await?;
            let Some((_, _, mats, stps)) = types.iter().find(|t| t.0 == input.request_type.trim()) else {
                return Err(Error::invalid(
                    "ticket.request_type",
                    format!("{:?} is not a known request type", input.request_type),
                ));
            };
            let to_items = |j: &str| -> String {
                let names: Vec<String> = json_list(j);
                serde_json::to_string(&names.into_iter().map(|name| Item { name, done: false }).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into())
            };
            (to_items(mats), to_items(stps))
        };
        let number = store::next_number(&mut tx).await?;
        let mut t = TicketRow {
            id: uuid::Uuid::now_v7().to_string(),
            number,
            kind: kind as i64,
            channel: channel as i64,
            queue: if queue.is_empty() { category.clone() } else { queue },
            category,
            priority: priority as i64,
            status: if assignee.is_empty() { pb::Status::New as i64 } else { pb::Status::Open as i64 },
            subject,
            customer_id: customer_id.unwrap_or_default(),
            customer_tier: tier,
            requester,
            assignee,
            tags: serde_json::to_string(&tags).map_err(|e| Error::Internal(e.into()))?,
            request_type: input.request_type.trim().to_owned(),
            materials,
            steps,
            filing_period: input.filing_period.trim().to_owned(),
            filing_deadline: String::new(),
            department: String::new(),
            department_response: String::new(),
            pending_reason: String::new(),
            escalated_to: String::new(),
            satisfaction: 0,
            satisfaction_comment: String::new(),
            reopen_count: 0,
            resolution_cycle: 1,
            next_response_cycle: 0,
            first_replied_at: None,
            solved_at: None,
            version: 1,
            created_by: p.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        if let Some((cap, deadline)) = self.engine.filing_cap(&t)? {
            t.filing_deadline = deadline;
            // Close to the deadline already: at least high priority.
            let cal = self.engine.calendar();
            let left = cal.business_between(kefu_sla::target::to_dt(now), kefu_sla::target::to_dt(cap));
            if left <= cal.business_day() * 2 && t.priority < pb::Priority::High as i64 {
                t.priority = pb::Priority::High as i64;
            }
        }
        store::insert_ticket(&mut tx, &t, (!request_id.is_empty()).then_some(request_id.as_str())).await?;
        store::add_timeline(
            &mut tx,
            &t.id,
            "created",
            &p.subject,
            &format!("{} via {}", domain::kind_name(t.kind), domain::channel_name(t.channel)),
            now,
        )
        .await?;
        if !description.is_empty() {
            store::add_timeline(&mut tx, &t.id, "customer_message", &t.requester, &description, now).await?;
        }
        let changes = self.engine.on_created(&mut tx, &t).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        self.finish(tx, changes).await?;
        self.changed(&t, "ticket_created").await;
        Ok(out)
    }

    async fn add_message(&self, p: &Principal, r: pb::AddMessageRequest) -> Result<pb::TimelineEntry, Error> {
        let kind: pb::MessageKind = enum_req("kind", r.kind, None)?;
        let body = text("body", &r.body, 20_000, true)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        if t.status == pb::Status::Closed as i64 {
            return Err(Error::FailedPrecondition("the ticket is closed; open a follow-up ticket".into()));
        }
        let now = self.engine.now();
        let mut changes = Changes::default();
        let entry = match kind {
            pb::MessageKind::PublicReply => {
                let e = store::add_timeline(&mut tx, &t.id, "public_reply", &p.subject, &body, now).await?;
                t.first_replied_at = t.first_replied_at.or(Some(now));
                if t.status == pb::Status::New as i64 {
                    t.status = pb::Status::Open as i64;
                }
                if t.assignee.is_empty() {
                    t.assignee.clone_from(&p.subject);
                }
                changes = self.engine.on_agent_reply(&mut tx, &t).await?;
                e
            }
            pb::MessageKind::CustomerMessage => {
                let e =
                    store::add_timeline(&mut tx, &t.id, "customer_message", &t.requester.clone(), &body, now).await?;
                let from = t.status;
                let mut reopened = false;
                if from == pb::Status::Solved as i64 {
                    t.status = pb::Status::Open as i64;
                    t.reopen_count += 1;
                    t.resolution_cycle += 1;
                    reopened = true;
                    store::add_timeline(&mut tx, &t.id, "status", "customer", "reopened by a customer message", now)
                        .await?;
                } else if from == pb::Status::PendingCustomer as i64 {
                    t.status = pb::Status::Open as i64;
                    store::add_timeline(&mut tx, &t.id, "status", "customer", "customer answered: open", now).await?;
                }
                if t.status != from {
                    changes.merge(self.engine.on_status(&mut tx, &t, from, t.status, reopened).await?);
                }
                changes.merge(self.engine.on_customer_message(&mut tx, &mut t).await?);
                e
            }
            pb::MessageKind::InternalNote => {
                store::add_timeline(&mut tx, &t.id, "internal_note", &p.subject, &body, now).await?
            }
            pb::MessageKind::Unspecified => return Err(Error::invalid("kind", "is required")),
        };
        store::save_ticket(&mut tx, &mut t).await?;
        if kind == pb::MessageKind::PublicReply {
            changes.merge(self.engine.on_routing(&mut tx, &t).await?);
        }
        self.finish(tx, changes).await?;
        self.changed(&t, "ticket_message").await;
        Ok(timeline_pb(&entry))
    }

    async fn change_status(&self, p: &Principal, r: pb::ChangeStatusRequest) -> Result<pb::Ticket, Error> {
        let to: pb::Status = enum_req("status", r.status, None)?;
        let reason = text("reason", &r.reason, 500, false)?;
        let escalated_to = text("escalated_to", &r.escalated_to, 64, false)?;
        if to == pb::Status::PendingInternal && reason.is_empty() {
            return Err(Error::invalid("reason", "pending internal needs a reason (what it waits for)"));
        }
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        let from_s = pb::Status::try_from(t.status as i32).unwrap_or(pb::Status::Unspecified);
        domain::transition(from_s, to, r.reopen)?;
        let now = self.engine.now();
        let from = t.status;
        t.status = to as i64;
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
        } else if from == pb::Status::PendingInternal as i64 {
            t.pending_reason.clear();
            t.escalated_to.clear();
        }
        let mut body = format!("{} → {}", domain::status_name(from), domain::status_name(t.status));
        if !reason.is_empty() {
            body.push_str(&format!(": {reason}"));
        }
        if !escalated_to.is_empty() {
            body.push_str(&format!(" (waiting on {escalated_to})"));
        }
        store::add_timeline(&mut tx, &t.id, "status", &p.subject, &body, now).await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let changes = self.engine.on_status(&mut tx, &t, from, t.status, reopened).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        self.finish(tx, changes).await?;
        self.changed(&t, "ticket_status").await;
        Ok(out)
    }

    async fn update(&self, p: &Principal, r: pb::UpdateTicketRequest) -> Result<pb::Ticket, Error> {
        let patch = r.ticket.ok_or_else(|| Error::invalid("ticket", "is required"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid("update_mask", "name the fields to change"));
        }
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &patch.id).await?;
        if !patch.etag.is_empty() && patch.etag != t.version.to_string() {
            return Err(Error::Aborted(format!("etag {:?} is stale (current {})", patch.etag, t.version)));
        }
        let mut v = Violations::new();
        let mut rematch = false;
        for path in &paths {
            match path.as_str() {
                "subject" => {
                    if let Some(s) = v.check(text("ticket.subject", &patch.subject, 200, true)) {
                        t.subject = s;
                    }
                }
                "category" => {
                    if let Some(c) = v.check(domain::category("ticket.category", &patch.category, &self.categories())) {
                        rematch |= c != t.category;
                        t.category = c;
                    }
                }
                "priority" => {
                    if let Some(pr) = v.check(enum_req::<pb::Priority>("ticket.priority", patch.priority, None)) {
                        rematch |= pr as i64 != t.priority;
                        t.priority = pr as i64;
                    }
                }
                "channel" => {
                    if let Some(c) = v.check(enum_req::<kefu_proto::common::v1::Channel>("ticket.channel", patch.channel, None)) {
                        rematch |= c as i64 != t.channel;
                        t.channel = c as i64;
                    }
                }
                "tags" => t.tags = serde_json::to_string(&patch.tags).map_err(|e| Error::Internal(e.into()))?,
                "filing_period" => {
                    if patch.filing_period.is_empty() {
                        t.filing_period.clear();
                        t.filing_deadline.clear();
                    } else if v
                        .check(domain::filing_period_end(&patch.filing_period).map_err(|e| e.within("ticket")))
                        .is_some()
                    {
                        t.filing_period = patch.filing_period.trim().to_owned();
                    }
                    rematch = true;
                }
                other => v.add(
                    "update_mask",
                    format!("{other:?} is not updatable (subject, category, priority, channel, tags, filing_period)"),
                ),
            }
        }
        if !t.filing_period.is_empty() && t.category != "tax_filing" {
            v.add("ticket.filing_period", "only tax-filing requests carry a filing period");
        }
        v.finish()?;
        if let Some((_, deadline)) = self.engine.filing_cap(&t)? {
            t.filing_deadline = deadline;
        }
        let now = self.engine.now();
        store::add_timeline(&mut tx, &t.id, "update", &p.subject, &format!("changed {}", paths.join(", ")), now)
            .await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let changes = if rematch { self.engine.on_rematch(&mut tx, &t).await? } else { Changes::default() };
        let out = ticket_pb(&mut tx, &t).await?;
        self.finish(tx, changes).await?;
        self.changed(&t, "ticket_updated").await;
        Ok(out)
    }

    async fn list(&self, r: pb::ListTicketsRequest) -> Result<pb::ListTicketsResponse, Error> {
        let size = match r.page_size {
            0 => 50,
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            n => i64::from(n).min(500),
        };
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut binds: Vec<store::Bind> = Vec::new();
        let mut add = |c: &str, b: store::Bind, clauses: &mut Vec<String>| {
            binds.push(b);
            clauses.push(c.replace("$?", &format!("${}", binds.len())));
        };
        if r.status != 0 {
            let s: pb::Status = enum_req("status", r.status, None)?;
            add("t.status = $?", store::Bind::Int(s as i64), &mut clauses);
        }
        if !r.assignee.is_empty() {
            add("t.assignee = $?", store::Bind::Text(r.assignee.clone()), &mut clauses);
        }
        if !r.queue.is_empty() {
            add("t.queue = $?", store::Bind::Text(r.queue.clone()), &mut clauses);
        }
        if !r.customer_id.is_empty() {
            add("t.customer_id = $?", store::Bind::Text(r.customer_id.clone()), &mut clauses);
        }
        match r.sla.as_str() {
            "" => {}
            "breached" => clauses.push(
                "EXISTS (SELECT 1 FROM sla_targets s WHERE s.record_id = t.id AND s.open = 1 AND s.breached_at IS NOT NULL)".into(),
            ),
            "at_risk" => {
                let minutes = if r.at_risk_minutes <= 0 { 60 } else { i64::from(r.at_risk_minutes) };
                let horizon = self.engine.now() + minutes * 60_000;
                add(
                    "EXISTS (SELECT 1 FROM sla_targets s WHERE s.record_id = t.id AND s.open = 1 AND s.breached_at IS NULL AND s.due_at IS NOT NULL AND s.due_at <= $?)",
                    store::Bind::Int(horizon),
                    &mut clauses,
                );
            }
            other => return Err(Error::invalid("sla", format!("{other:?} is not at_risk or breached"))),
        }
        if !r.page_token.is_empty() {
            let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&r.page_token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| s.starts_with("t:"))
                .ok_or_else(|| Error::invalid("page_token", "is not a page token returned by this list"))?;
            add("t.id > $?", store::Bind::Text(after[2..].to_owned()), &mut clauses);
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = store::list_tickets(&mut conn, &clauses.join(" AND "), binds, size + 1).await?;
        let more = rows.len() as i64 > size;
        let mut tickets = Vec::new();
        for t in rows.iter().take(size as usize) {
            tickets.push(ticket_pb(&mut conn, t).await?);
        }
        let next_page_token = if more {
            tickets
                .last()
                .map(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("t:{}", t.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListTicketsResponse { tickets, next_page_token })
    }
}

// ---------------------------------------------------------------- email

struct Email {
    message_id: String,
    parents: Vec<String>,
    from: String,
    subject: String,
    body: String,
}

fn parse_email(raw: &[u8]) -> Result<Email, Error> {
    if raw.is_empty() {
        return Err(Error::invalid("raw", "is empty"));
    }
    if raw.len() > 10 * 1024 * 1024 {
        return Err(Error::invalid("raw", "is larger than 10 MiB"));
    }
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Error::invalid("raw", "is not an RFC 5322 message"))?;
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|m| m.address())
        .map(|a| a.trim().to_lowercase())
        .ok_or_else(|| Error::invalid("raw", "has no From address"))?;
    let message_id = msg
        .message_id()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::invalid("raw", "has no Message-ID"))?;
    let mut parents: Vec<String> = Vec::new();
    for h in [msg.in_reply_to(), msg.references()] {
        if let Some(list) = h.as_text_list() {
            parents.extend(list.iter().rev().map(|s| s.trim().to_owned()));
        } else if let Some(one) = h.as_text() {
            parents.push(one.trim().to_owned());
        }
    }
    Ok(Email {
        message_id,
        parents,
        from,
        subject: msg.subject().unwrap_or("(no subject)").trim().to_owned(),
        body: msg.body_text(0).map(|b| b.trim().to_owned()).unwrap_or_default(),
    })
}

/// "[KF-000042]" in a subject threads a reply even without headers.
fn number_in_subject(subject: &str) -> Option<String> {
    let start = subject.find("[KF-")?;
    let rest = &subject[start + 1..];
    let end = rest.find(']')?;
    let n = &rest[..end];
    (n.len() == 9 && n[3..].chars().all(|c| c.is_ascii_digit())).then(|| n.to_owned())
}

#[tonic::async_trait]
impl TicketService for TicketsApi {
    async fn create_ticket(&self, req: Request<pb::CreateTicketRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let token = bearer(&req);
        Ok(Response::new(self.create(&p, token.as_deref(), req.into_inner()).await?))
    }

    async fn get_ticket(&self, req: Request<pb::GetTicketRequest>) -> Res<pb::Ticket> {
        let id = text("id", &req.get_ref().id, 64, true)?;
        Ok(Response::new(self.load(&id).await?))
    }

    async fn update_ticket(&self, req: Request<pb::UpdateTicketRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        Ok(Response::new(self.update(&p, req.into_inner()).await?))
    }

    async fn list_tickets(&self, req: Request<pb::ListTicketsRequest>) -> Res<pb::ListTicketsResponse> {
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn assign_ticket(&self, req: Request<pb::AssignTicketRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let assignee = text("assignee", &r.assignee, 64, false)?;
        let queue = text("queue", &r.queue, 64, false)?;
        if assignee.is_empty() && queue.is_empty() {
            return Err(Error::invalid("assignee", "give an assignee, a queue or both").into());
        }
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        if t.status == pb::Status::Closed as i64 {
            return Err(Error::FailedPrecondition("the ticket is closed".into()).into());
        }
        let now = self.engine.now();
        let mut body = Vec::new();
        if !assignee.is_empty() {
            body.push(format!("assignee {} → {assignee}", if t.assignee.is_empty() { "-" } else { &t.assignee }));
            t.assignee = assignee;
            if t.status == pb::Status::New as i64 {
                t.status = pb::Status::Open as i64;
            }
        }
        if !queue.is_empty() {
            body.push(format!("queue {} → {queue}", t.queue));
            t.queue = queue;
        }
        store::add_timeline(&mut tx, &t.id, "assignment", &p.subject, &body.join("; "), now).await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let changes = self.engine.on_routing(&mut tx, &t).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        self.finish(tx, changes).await?;
        self.changed(&t, "ticket_assigned").await;
        Ok(Response::new(out))
    }

    async fn change_status(&self, req: Request<pb::ChangeStatusRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        Ok(Response::new(self.change_status(&p, req.into_inner()).await?))
    }

    async fn add_message(&self, req: Request<pb::AddMessageRequest>) -> Res<pb::TimelineEntry> {
        let p = principal(&req)?;
        Ok(Response::new(self.add_message(&p, req.into_inner()).await?))
    }

    async fn list_timeline(&self, req: Request<pb::ListTimelineRequest>) -> Res<pb::ListTimelineResponse> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let t = store::require_ticket(&mut conn, &req.get_ref().ticket_id).await?;
        let entries = store::timeline(&mut conn, &t.id).await?.iter().map(timeline_pb).collect();
        Ok(Response::new(pb::ListTimelineResponse { entries }))
    }

    async fn update_progress(&self, req: Request<pb::UpdateProgressRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        let mut materials: Vec<Item> = json_list(&t.materials);
        let mut steps: Vec<Item> = json_list(&t.steps);
        let mut v = Violations::new();
        for (i, name) in r.materials_received.iter().enumerate() {
            match materials.iter_mut().find(|m| m.name == *name) {
                Some(m) => m.done = true,
                None => {
                    v.add(format!("materials_received[{i}]"), format!("{name:?} is not a material of this request"))
                }
            }
        }
        for (i, name) in r.steps_done.iter().enumerate() {
            match steps.iter_mut().find(|m| m.name == *name) {
                Some(m) => m.done = true,
                None => v.add(format!("steps_done[{i}]"), format!("{name:?} is not a step of this request")),
            }
        }
        v.finish()?;
        t.materials = serde_json::to_string(&materials).map_err(|e| Error::Internal(e.into()))?;
        t.steps = serde_json::to_string(&steps).map_err(|e| Error::Internal(e.into()))?;
        let mut parts: Vec<String> = r.materials_received.iter().map(|m| format!("received {m}")).collect();
        parts.extend(r.steps_done.iter().map(|s| format!("done: {s}")));
        store::add_timeline(&mut tx, &t.id, "progress", &p.subject, &parts.join("; "), self.engine.now()).await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(out))
    }

    async fn list_request_types(&self, _req: Request<pb::ListRequestTypesRequest>) -> Res<pb::ListRequestTypesResponse> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let request_types = store::request_types(&mut conn)
            .await?
            .into_iter()
            .map(|(name, category, m, s)| pb::RequestType {
                name,
                category,
                required_materials: json_list(&m),
                steps: json_list(&s),
            })
            .collect();
        Ok(Response::new(pb::ListRequestTypesResponse { request_types }))
    }

    async fn upsert_request_type(&self, req: Request<pb::UpsertRequestTypeRequest>) -> Res<pb::RequestType> {
        let rt = req.into_inner().request_type.ok_or_else(|| Error::invalid("request_type", "is required"))?;
        let name = text("request_type.name", &rt.name, 100, true)?;
        let category = domain::category("request_type.category", &rt.category, &self.categories())?;
        for (f, list) in
            [("request_type.required_materials", &rt.required_materials), ("request_type.steps", &rt.steps)]
        {
            if list.len() > 50 || list.iter().any(|s| s.trim().is_empty() || s.chars().count() > 100) {
                return Err(Error::invalid(f, "at most 50 non-empty names of at most 100 characters").into());
            }
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::put_request_type(
            &mut conn,
            &name,
            &category,
            &serde_json::to_string(&rt.required_materials).map_err(|e| Error::Internal(e.into()))?,
            &serde_json::to_string(&rt.steps).map_err(|e| Error::Internal(e.into()))?,
        )
        .await?;
        Ok(Response::new(pb::RequestType {
            name,
            category,
            required_materials: rt.required_materials,
            steps: rt.steps,
        }))
    }

    async fn route_feedback(&self, req: Request<pb::RouteFeedbackRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let department = text("department", &r.department, 100, true)?;
        self.feedback_step(&p, &r.ticket_id, |t| {
            t.department.clone_from(&department);
            Ok(format!("routed to {department}"))
        })
        .await
        .map(Response::new)
        .map_err(Into::into)
    }

    async fn record_department_response(&self, req: Request<pb::RecordDepartmentResponseRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let response = text("response", &r.response, 20_000, true)?;
        self.feedback_step(&p, &r.ticket_id, |t| {
            if t.department.is_empty() {
                return Err(Error::FailedPrecondition("route the feedback to a department first".into()));
            }
            t.department_response.clone_from(&response);
            Ok(format!("{} responded: {response}", t.department))
        })
        .await
        .map(Response::new)
        .map_err(Into::into)
    }

    async fn send_feedback_result(&self, req: Request<pb::SendFeedbackResultRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let message = text("message", &r.message, 20_000, true)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        if t.kind != pb::TicketKind::Feedback as i64 {
            return Err(Error::FailedPrecondition("only feedback tickets send a feedback result".into()).into());
        }
        if t.department_response.is_empty() {
            return Err(
                Error::FailedPrecondition("record the department's response before sending the result".into()).into()
            );
        }
        let now = self.engine.now();
        store::add_timeline(&mut tx, &t.id, "public_reply", &p.subject, &message, now).await?;
        t.first_replied_at = t.first_replied_at.or(Some(now));
        store::save_ticket(&mut tx, &mut t).await?;
        let mut changes = self.engine.on_feedback_sent(&mut tx, &t).await?;
        changes.merge(self.engine.on_agent_reply(&mut tx, &t).await?);
        let out = ticket_pb(&mut tx, &t).await?;
        self.finish(tx, changes).await?;
        Ok(Response::new(out))
    }

    async fn ingest_email(&self, req: Request<pb::IngestEmailRequest>) -> Res<pb::IngestEmailResponse> {
        let p = principal(&req)?;
        let token = bearer(&req);
        let mail = parse_email(&req.get_ref().raw)?;
        {
            let mut conn = self.pool.acquire().await.map_err(Error::from)?;
            if let Some(tid) = store::email_ticket(&mut conn, &mail.message_id).await? {
                let t = store::require_ticket(&mut conn, &tid).await?;
                return Ok(Response::new(pb::IngestEmailResponse {
                    ticket: Some(ticket_pb(&mut conn, &t).await?),
                    threaded: true,
                    duplicate: true,
                }));
            }
            let mut parent = None;
            for m in &mail.parents {
                if let Some(tid) = store::email_ticket(&mut conn, m).await? {
                    parent = Some(tid);
                    break;
                }
            }
            if parent.is_none()
                && let Some(n) = number_in_subject(&mail.subject)
            {
                parent = store::get_ticket(&mut conn, &n).await?.map(|t| t.id);
            }
            if let Some(tid) = parent {
                drop(conn);
                self.add_message(
                    &p,
                    pb::AddMessageRequest {
                        ticket_id: tid.clone(),
                        kind: pb::MessageKind::CustomerMessage as i32,
                        body: mail.body.clone(),
                    },
                )
                .await?;
                let mut conn = self.pool.acquire().await.map_err(Error::from)?;
                store::put_email(&mut conn, &mail.message_id, &tid, self.engine.now()).await?;
                let t = store::require_ticket(&mut conn, &tid).await?;
                return Ok(Response::new(pb::IngestEmailResponse {
                    ticket: Some(ticket_pb(&mut conn, &t).await?),
                    threaded: true,
                    duplicate: false,
                }));
            }
        }
        let customer = self.customer_by_email(token.as_deref(), &mail.from).await?;
        let ticket = pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: kefu_proto::common::v1::Channel::Email as i32,
            subject: mail.subject.chars().take(200).collect(),
            customer_id: customer.map(|c| c.0).unwrap_or_default(),
            requester: mail.from.clone(),
            ..Default::default()
        };
        let created = self
            .create(
                &p,
                token.as_deref(),
                pb::CreateTicketRequest {
                    ticket: Some(ticket),
                    description: mail.body,
                    request_id: format!("email:{}", mail.message_id),
                },
            )
            .await?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        if store::email_ticket(&mut conn, &mail.message_id).await?.is_none() {
            store::put_email(&mut conn, &mail.message_id, &created.id, self.engine.now()).await?;
        }
        Ok(Response::new(pb::IngestEmailResponse { ticket: Some(created), threaded: false, duplicate: false }))
    }

    async fn record_call_event(&self, req: Request<pb::RecordCallEventRequest>) -> Res<pb::PhoneContact> {
        let r = req.into_inner();
        let call_id = text("call_id", &r.call_id, 128, true)?;
        let kind: pb::CallEventKind = enum_req("kind", r.kind, None)?;
        let at = match &r.time {
            Some(t) if (0..1_000_000_000).contains(&t.nanos) && t.seconds > 0 => {
                t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
            }
            Some(_) => return Err(Error::invalid("time", "is not a valid timestamp").into()),
            None => self.engine.now(),
        };
        let record_id = format!("call:{call_id}");
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let existing = store::get_call(&mut tx, &call_id).await?;
        let mut changes = Changes::default();
        let call = match (kind, existing) {
            (pb::CallEventKind::Offered, None) => {
                let c = store::CallRow {
                    call_id: call_id.clone(),
                    caller_number: text("caller_number", &r.caller_number, 32, false)?,
                    queue: text("queue", &r.queue, 64, false)?,
                    agent: String::new(),
                    offered_at: at,
                    answered_at: None,
                    abandoned_at: None,
                    ring_count: i64::from(r.ring_count.max(0)),
                };
                store::put_call(&mut tx, &c).await?;
                changes = self.engine.on_call_offered(&mut tx, &record_id, &c.queue, at).await?;
                c
            }
            (pb::CallEventKind::Offered, Some(c)) => c,
            (_, None) => return Err(Error::FailedPrecondition(format!("call {call_id} was never offered")).into()),
            (_, Some(c)) if c.answered_at.is_some() || c.abandoned_at.is_some() => c,
            (k, Some(mut c)) => {
                if at < c.offered_at {
                    return Err(Error::invalid("time", "is before the call was offered").into());
                }
                let answered = k == pb::CallEventKind::Answered;
                if answered {
                    c.answered_at = Some(at);
                    c.agent = text("agent", &r.agent, 64, true)?;
                } else {
                    c.abandoned_at = Some(at);
                }
                c.ring_count = c.ring_count.max(i64::from(r.ring_count.max(0)));
                store::put_call(&mut tx, &c).await?;
                changes = self.engine.on_call_ended(&mut tx, &record_id, &c.queue, at, answered).await?;
                c
            }
        };
        let target = store::targets_of(&mut tx, &record_id).await?.into_iter().next();
        let answer_sla = target.map_or(pb::SlaState::Unspecified, |t| state_pb(t.target.state()));
        self.finish(tx, changes).await?;
        let end = call.answered_at.or(call.abandoned_at);
        Ok(Response::new(pb::PhoneContact {
            call_id: call.call_id,
            caller_number: call.caller_number,
            queue: call.queue,
            agent: call.agent,
            offered_time: ts(call.offered_at),
            answered_time: ts_opt(call.answered_at),
            abandoned_time: ts_opt(call.abandoned_at),
            ring_count: call.ring_count as i32,
            wait_seconds: end.map_or(0.0, |e| (e - call.offered_at) as f64 / 1000.0),
            answer_sla: answer_sla as i32,
        }))
    }

    async fn rate_ticket(&self, req: Request<pb::RateTicketRequest>) -> Res<pb::Ticket> {
        let p = principal(&req)?;
        let r = req.into_inner();
        if !(1..=5).contains(&r.rating) {
            return Err(Error::invalid("rating", "must be 1 to 5").into());
        }
        let comment = text("comment", &r.comment, 2000, false)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, &r.ticket_id).await?;
        if t.status != pb::Status::Solved as i64 && t.status != pb::Status::Closed as i64 {
            return Err(Error::FailedPrecondition("only a solved or closed ticket can be rated".into()).into());
        }
        t.satisfaction = i64::from(r.rating);
        t.satisfaction_comment = comment;
        store::add_timeline(&mut tx, &t.id, "rating", &p.subject, &format!("{} / 5", r.rating), self.engine.now())
            .await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(out))
    }

    async fn get_ticket_sla(&self, req: Request<pb::GetTicketSlaRequest>) -> Res<pb::GetTicketSlaResponse> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let id = req.get_ref().ticket_id.trim().to_owned();
        let record = if id.starts_with("call:") { id } else { store::require_ticket(&mut conn, &id).await?.id };
        let now = self.engine.now();
        let cal = self.engine.calendar();
        let targets = store::targets_of(&mut conn, &record)
            .await?
            .iter()
            .map(|r| {
                let t = &r.target;
                pb::SlaTarget {
                    metric: t.key.metric.as_str().to_owned(),
                    cycle: t.key.cycle,
                    state: state_pb(t.state()) as i32,
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
                    cap_time: ts_opt(t.cap_at),
                }
            })
            .collect();
        Ok(Response::new(pb::GetTicketSlaResponse { targets }))
    }

    async fn get_sla_dashboard(&self, req: Request<pb::GetSlaDashboardRequest>) -> Res<pb::SlaDashboard> {
        let within = match req.get_ref().within_minutes {
            0 => 60,
            n if n < 0 => return Err(Error::invalid("within_minutes", "must not be negative").into()),
            n => i64::from(n),
        };
        let d = self.engine.live.dashboard(self.engine.now(), within * 60_000).await.map_err(Error::Internal)?;
        let c = |g: &kefu_sla::GroupCounts| pb::SlaCounts { open: g.open, at_risk: g.at_risk, breached: g.breached };
        Ok(Response::new(pb::SlaDashboard {
            total: Some(c(&d.total)),
            by_queue: d.by_queue.iter().map(|(k, v)| (k.clone(), c(v))).collect(),
            by_agent: d.by_assignee.iter().filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.clone(), c(v))).collect(),
        }))
    }

    type WatchSlaEventsStream = Pin<Box<dyn Stream<Item = Result<pb::SlaEventMessage, Status>> + Send>>;

    async fn watch_sla_events(&self, req: Request<pb::WatchSlaEventsRequest>) -> Res<Self::WatchSlaEventsStream> {
        let p = principal(&req)?;
        let r = req.into_inner();
        // An agent without filters follows their own tickets.
        let assignee = if r.assignee.is_empty()
            && r.queue.is_empty()
            && !p.has_any(&[Role::Supervisor, Role::Admin, Role::Service])
        {
            p.subject.clone()
        } else {
            r.assignee
        };
        let queue = r.queue;
        // Subscribe before replaying so nothing falls between the two.
        let rx = self.engine.live.subscribe();
        let replay = if r.since_event_id.is_empty() {
            Vec::new()
        } else {
            let mut conn = self.pool.acquire().await.map_err(Error::from)?;
            store::events_after(&mut conn, r.since_event_id.trim(), 1000).await?
        };
        let seen: std::collections::HashSet<String> = replay.iter().map(|e| e.id.clone()).collect();
        let to_msg = |ev: kefu_sla::SlaEvent| pb::SlaEventMessage {
            id: ev.id,
            ticket_id: ev.key.record_id,
            metric: ev.key.metric.as_str().to_owned(),
            cycle: ev.key.cycle,
            kind: ev.kind.as_str().to_owned(),
            time: ts(ev.at_ms),
            due_time: ts_opt(ev.due_at_ms),
            queue: ev.queue,
            assignee: ev.assignee,
        };
        let visible = {
            let (queue, assignee) = (queue.clone(), assignee.clone());
            move |ev: &kefu_sla::SlaEvent| {
                (queue.is_empty() || ev.queue == queue) && (assignee.is_empty() || ev.assignee == assignee)
            }
        };
        let replayed: Vec<Result<pb::SlaEventMessage, Status>> =
            replay.into_iter().filter(|e| visible(e)).map(|e| Ok(to_msg(e))).collect();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
            let out = match item {
                Ok(ev) if visible(&ev) && !seen.contains(&ev.id) => Some(Ok(to_msg(ev))),
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Err(Status::data_loss(format!("the watcher fell {n} events behind; reconnect and reload"))))
                }
            };
            futures::future::ready(out)
        });
        let changes_rx = self.engine.live.subscribe_changes();
        let (cq, ca) = (queue.clone(), assignee.clone());
        let changes = tokio_stream::wrappers::BroadcastStream::new(changes_rx).filter_map(move |item| {
            let out = match item {
                Ok(c) if (cq.is_empty() || c.queue == cq) && (ca.is_empty() || c.assignee == ca) => {
                    Some(Ok(pb::SlaEventMessage {
                        id: c.id,
                        ticket_id: c.record_id,
                        metric: String::new(),
                        cycle: 0,
                        kind: c.kind,
                        time: ts(c.at_ms),
                        due_time: None,
                        queue: c.queue,
                        assignee: c.assignee,
                    }))
                }
                _ => None,
            };
            futures::future::ready(out)
        });
        let stream = futures::stream::iter(replayed).chain(futures::stream::select(live, changes));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_sla_policies(&self, _req: Request<pb::ListSlaPoliciesRequest>) -> Res<pb::ListSlaPoliciesResponse> {
        let mut list: Vec<Policy> = self.engine.policies().as_ref().clone();
        list.sort_by_key(|p| p.position);
        Ok(Response::new(pb::ListSlaPoliciesResponse { policies: list.iter().map(policy_pb).collect() }))
    }

    async fn upsert_sla_policy(&self, req: Request<pb::UpsertSlaPolicyRequest>) -> Res<pb::SlaPolicy> {
        let p = req.into_inner().policy.ok_or_else(|| Error::invalid("policy", "is required"))?;
        let policy = policy_from_pb(&p)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::put_policy(
            &mut conn,
            &policy.id,
            i64::from(policy.position),
            &serde_json::to_string(&policy).map_err(|e| Error::Internal(e.into()))?,
        )
        .await?;
        self.engine.reload_policies(&mut conn).await?;
        Ok(Response::new(policy_pb(&policy)))
    }

    async fn delete_sla_policy(&self, req: Request<pb::DeleteSlaPolicyRequest>) -> Res<pb::DeleteSlaPolicyResponse> {
        let id = text("id", &req.get_ref().id, 64, true)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        if !store::delete_policy(&mut conn, &id).await? {
            return Err(Error::NotFound(format!("policy {id}")).into());
        }
        self.engine.reload_policies(&mut conn).await?;
        Ok(Response::new(pb::DeleteSlaPolicyResponse {}))
    }

    async fn get_calendar(&self, _req: Request<pb::GetCalendarRequest>) -> Res<pb::Calendar> {
        let json = serde_json::to_string_pretty(self.engine.calendar().spec())
            .map_err(anyhow::Error::from)
            .map_err(Error::from)?;
        Ok(Response::new(pb::Calendar { json }))
    }

    async fn extend_calendar(&self, req: Request<pb::ExtendCalendarRequest>) -> Res<pb::Calendar> {
        let mut value: serde_json::Value = serde_json::from_str(&req.get_ref().json)
            .map_err(|e| Error::invalid("json", format!("is not JSON: {e}")))?;
        let cur = self.engine.calendar();
        if let Some(obj) = value.as_object_mut() {
            obj.entry("id").or_insert_with(|| cur.id.clone().into());
            obj.entry("time_zone").or_insert_with(|| cur.spec().time_zone.clone().into());
            obj.entry("weekly").or_insert_with(|| serde_json::json!({}));
        }
        let extra: CalendarSpec = serde_json::from_value(value).map_err(|e| Error::invalid("json", e.to_string()))?;
        let next = cur.extended(&extra).map_err(|e| Error::invalid("json", e.to_string()))?;
        let json = serde_json::to_string(next.spec()).map_err(anyhow::Error::from).map_err(Error::from)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::put_setting(&mut conn, "calendar", &json).await?;
        let pretty = serde_json::to_string_pretty(next.spec()).map_err(anyhow::Error::from).map_err(Error::from)?;
        self.engine.set_calendar(next);
        Ok(Response::new(pb::Calendar { json: pretty }))
    }

    async fn list_categories(&self, _req: Request<pb::ListCategoriesRequest>) -> Res<pb::ListCategoriesResponse> {
        Ok(Response::new(pb::ListCategoriesResponse { categories: self.categories() }))
    }

    async fn set_categories(&self, req: Request<pb::SetCategoriesRequest>) -> Res<pb::ListCategoriesResponse> {
        let list = domain::category_list(&req.get_ref().categories)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::put_setting(
            &mut conn,
            "categories",
            &serde_json::to_string(&list).map_err(|e| Error::Internal(e.into()))?,
        )
        .await?;
        if let Ok(mut g) = self.categories.write() {
            g.clone_from(&list);
        }
        Ok(Response::new(pb::ListCategoriesResponse { categories: list }))
    }

    async fn get_agent_stats(&self, req: Request<pb::GetAgentStatsRequest>) -> Res<pb::AgentStats> {
        let r = req.into_inner();
        let agent = text("agent", &r.agent, 64, true)?;
        let from = domain::parse_date("from_date", &r.from_date)?;
        let to = domain::parse_date("to_date", &r.to_date)?;
        if to < from {
            return Err(Error::invalid("to_date", "is before from_date").into());
        }
        let (a, b) = (domain::day_start_ms(from), domain::day_start_ms(to.succ_opt().unwrap_or(to)));
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(Response::new(agent_stats(&mut conn, &agent, a, b).await?))
    }
}

impl TicketsApi {
    async fn feedback_step(
        &self,
        p: &Principal,
        ticket_id: &str,
        f: impl FnOnce(&mut TicketRow) -> Result<String, Error>,
    ) -> Result<pb::Ticket, Error> {
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut t = store::require_ticket(&mut tx, ticket_id).await?;
        if t.kind != pb::TicketKind::Feedback as i64 {
            return Err(Error::FailedPrecondition("this is not a feedback ticket".into()));
        }
        let body = f(&mut t)?;
        store::add_timeline(&mut tx, &t.id, "feedback", &p.subject, &body, self.engine.now()).await?;
        store::save_ticket(&mut tx, &mut t).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(out)
    }
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
                clock: match m.clock {
                    ClockKind::Business => "business".into(),
                    ClockKind::Calendar => "calendar".into(),
                },
                warn_percent: i32::from(m.warn_percent),
            })
            .collect(),
    }
}

fn policy_from_pb(p: &pb::SlaPolicy) -> Result<Policy, Error> {
    let id = text("policy.id", &p.id, 64, true)?;
    let mut metrics = Vec::new();
    for (i, m) in p.metrics.iter().enumerate() {
        let metric = Metric::parse(&m.metric).ok_or_else(|| {
            Error::invalid(format!("policy.metrics[{i}].metric"), format!("{:?} is not a metric", m.metric))
        })?;
        let clock = match m.clock.as_str() {
            "business" | "" => ClockKind::Business,
            "calendar" => ClockKind::Calendar,
            other => {
                return Err(Error::invalid(
                    format!("policy.metrics[{i}].clock"),
                    format!("{other:?} is not business or calendar"),
                ));
            }
        };
        let warn = if m.warn_percent == 0 { 80 } else { m.warn_percent };
        metrics.push(MetricRule {
            metric,
            duration_secs: m.duration_seconds,
            clock,
            warn_percent: u8::try_from(warn)
                .map_err(|_| Error::invalid(format!("policy.metrics[{i}].warn_percent"), "must be 1 to 99"))?,
        });
    }
    let policy = Policy {
        id,
        name: p.name.clone(),
        position: p.position,
        conditions: kefu_sla::Conditions {
            record_kinds: p.record_kinds.clone(),
            channels: p.channels.clone(),
            categories: p.categories.clone(),
            priorities: p.priorities.clone(),
            tiers: p.tiers.clone(),
        },
        metrics,
    };
    policy.validate().map_err(|(f, m)| Error::invalid(format!("policy.{f}"), m))?;
    Ok(policy)
}

async fn agent_stats(conn: &mut AnyConnection, agent: &str, from: i64, to: i64) -> Result<pb::AgentStats, Error> {
    let one = |sql: &'static str| sql;
    let handled: i64 =
        sqlx::query(one("SELECT COUNT(*) FROM tickets WHERE assignee = $1 AND created_at >= $2 AND created_at < $3"))
            .bind(agent)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
    let solved: i64 =
        sqlx::query("SELECT COUNT(*) FROM tickets WHERE assignee = $1 AND solved_at >= $2 AND solved_at < $3")
            .bind(agent)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
    let reopened: i64 = sqlx::query(
        "SELECT COUNT(*) FROM tickets WHERE assignee = $1 AND created_at >= $2 AND created_at < $3 AND reopen_count > 0",
    )
    .bind(agent)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let ratings = sqlx::query(
        "SELECT satisfaction FROM tickets WHERE assignee = $1 AND satisfaction > 0 AND updated_at >= $2 AND updated_at < $3",
    )
    .bind(agent)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let ratings: Vec<i64> = ratings.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<_, _>>()?;
    let rows = sqlx::query(
        "SELECT s.metric, s.breached_at FROM sla_targets s JOIN tickets t ON t.id = s.record_id \
         WHERE t.assignee = $1 AND s.fulfilled_at IS NOT NULL AND s.fulfilled_at >= $2 AND s.fulfilled_at < $3",
    )
    .bind(agent)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut shares: std::collections::BTreeMap<String, (i64, i64)> = std::collections::BTreeMap::new();
    for r in &rows {
        let metric: String = r.try_get(0)?;
        let breached: Option<i64> = r.try_get(1)?;
        let e = shares.entry(metric).or_default();
        if breached.is_some() { e.1 += 1 } else { e.0 += 1 }
    }
    let calls = sqlx::query(
        "SELECT offered_at, answered_at, abandoned_at FROM phone_contacts WHERE agent = $1 AND offered_at >= $2 AND offered_at < $3",
    )
    .bind(agent)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let mut answered = 0i64;
    let mut wait = 0i64;
    for c in &calls {
        let offered: i64 = c.try_get(0)?;
        if let Some(a) = c.try_get::<Option<i64>, _>(1)? {
            answered += 1;
            wait += a - offered;
        }
    }
    // Abandoned calls carry no agent: count the queue-level figure over the
    // queues this agent answered in.
    let abandoned: i64 = sqlx::query(
        "SELECT COUNT(*) FROM phone_contacts WHERE abandoned_at IS NOT NULL AND offered_at >= $1 AND offered_at < $2 \
         AND queue IN (SELECT DISTINCT queue FROM phone_contacts WHERE agent = $3)",
    )
    .bind(from)
    .bind(to)
    .bind(agent)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let offered = answered + abandoned;
    Ok(pb::AgentStats {
        agent: agent.to_owned(),
        tickets_handled: handled,
        tickets_solved: solved,
        resolution_rate: ratio(solved, handled),
        reopen_rate: ratio(reopened, solved.max(reopened)),
        targets: shares
            .into_iter()
            .map(|(metric, (met, missed))| pb::MetricShare { metric, met, missed, share_met: ratio(met, met + missed) })
            .collect(),
        average_satisfaction: ratio(ratings.iter().sum(), ratings.len() as i64),
        csat: ratio(ratings.iter().filter(|r| **r >= 4).count() as i64, ratings.len() as i64) * 100.0,
        ratings: ratings.len() as i64,
        calls_answered: answered,
        average_answer_seconds: ratio(wait, answered) / 1000.0,
        calls_offered: offered,
        calls_abandoned: abandoned,
        abandonment_rate: ratio(abandoned, offered),
    })
}

use futures::StreamExt;
