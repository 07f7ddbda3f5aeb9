//! The `kefu.tickets.v1.TicketService` gRPC API, one module per resource.
//! Each RPC below takes the caller, calls its resource function and turns
//! the kit's error into a status, once. Who may call what is the `ACCESS`
//! table's business (enforced by the auth layer); only finer rules stay in
//! the resource functions.
mod access;
mod business;
mod calls;
mod config;
mod email;
mod feedback;
mod preview;
mod sla;
mod stats;
mod tickets;
mod view;

use std::{pin::Pin, sync::Arc};

pub use access::ACCESS;
use futures::Stream;
use kefu_kit::{
    Error,
    client::CallContext,
    rpc::{Res, answer, call},
};
use kefu_proto::{
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    tickets::v1::{self as pb, ticket_service_server::TicketService},
};
use sqlx::AnyPool;
use tonic::{Request, Status};

use crate::{
    sla::{Changes, SlaEngine},
    store::TicketRow,
};

pub struct TicketsApi {
    pool: AnyPool,
    /// For reads outside a write (gets and lists): see `kefu_kit::db::readers`.
    reads: AnyPool,
    engine: Arc<SlaEngine>,
    /// One channel to the customers service, shared by every call.
    customers: tonic::transport::Channel,
    /// The staff directory: assignees and escalation targets are checked there.
    pub(crate) directory: kefu_kit::directory::Directory,
    /// Cancelled when the process starts shutting down: watch streams end.
    shutdown: tokio_util::sync::CancellationToken,
}

type Customers =
    CustomerServiceClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallContext>>;

impl TicketsApi {
    pub fn new(
        pool: AnyPool,
        engine: Arc<SlaEngine>,
        customers_addr: &str,
        staff_addr: &str,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Self> {
        let customers = kefu_kit::client::channel(customers_addr)?;
        let directory = kefu_kit::directory::Directory::new(staff_addr)?;
        let reads = kefu_kit::db::readers(&pool);
        Ok(Self { pool, reads, engine, customers, directory, shutdown })
    }

    /// The active category codes, read from the database at the moment of
    /// use, so every replica sees a change at once.
    async fn categories(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.reads.acquire().await?;
        crate::store::active_category_codes(&mut conn).await
    }

    fn customers(&self, token: Option<&str>) -> Result<Customers, Error> {
        Ok(CustomerServiceClient::with_interceptor(self.customers.clone(), CallContext::new(token)?))
    }

    /// Checks the customer exists (through the customers service, with the
    /// caller's own token) and returns its service tier.
    async fn customer_tier(&self, token: Option<&str>, customer_id: &str) -> Result<String, Error> {
        let mut c = self.customers(token)?;
        let call = c.get_customer(cpb::GetCustomerRequest { id: customer_id.to_owned(), omit_contacts: true });
        match kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call).await {
            Ok(cust) => {
                if cust.lifecycle_status == cpb::LifecycleStatus::Erased as i32 {
                    return Err(Error::FailedPrecondition("the customer's data was erased; no new tickets".into()));
                }
                Ok(view::tier_name(cust.service_tier).to_owned())
            }
            Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::InvalidArgument => {
                Err(Error::invalid("ticket.customer_id", format!("no customer {customer_id:?}")))
            }
            Err(s) => Err(Error::from_peer("customers", &s)),
        }
    }

    /// The customer (id, tier) whose contact has this email, if any.
    async fn customer_by_email(&self, token: Option<&str>, email: &str) -> Result<Option<(String, String)>, Error> {
        let mut c = self.customers(token)?;
        let call = c.list_customers(cpb::ListCustomersRequest {
            contact_email: email.to_owned(),
            page_size: 1,
            ..Default::default()
        });
        match kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call).await {
            Ok(r) => Ok(r.customers.into_iter().next().map(|c| (c.id, view::tier_name(c.service_tier).to_owned()))),
            Err(s) => Err(Error::from_peer("customers", &s)),
        }
    }

    /// Commits, then tells the live SLA store and watchers what changed.
    /// Commits and hands the changes to the live store. Both run in a task of
    /// their own: a request cancelled (by its client or its timeout) while
    /// committing cannot leave a committed change unpublished.
    async fn finish(&self, tx: sqlx::Transaction<'static, sqlx::Any>, changes: Changes) -> Result<(), Error> {
        let engine = self.engine.clone();
        let task = tokio::spawn(async move {
            tx.commit().await?;
            engine.publish(changes).await;
            Ok::<(), Error>(())
        });
        task.await.map_err(|e| Error::Internal(anyhow::anyhow!("commit task: {e}")))?
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
            status: crate::domain::status_name(t.status).to_owned(),
        };
        self.engine.publish_change(c).await;
    }
}

#[tonic::async_trait]
impl TicketService for TicketsApi {
    async fn create_ticket(&self, req: Request<pb::CreateTicketRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::create(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn get_ticket(&self, req: Request<pb::GetTicketRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::get(self, c.r).await)
    }

    async fn update_ticket(&self, req: Request<pb::UpdateTicketRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::update(self, &c.p, c.r).await)
    }

    async fn list_tickets(&self, req: Request<pb::ListTicketsRequest>) -> Res<pb::ListTicketsResponse> {
        let c = call(req)?;
        answer(tickets::list(self, c.r).await)
    }

    async fn assign_ticket(&self, req: Request<pb::AssignTicketRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::assign(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn change_status(&self, req: Request<pb::ChangeStatusRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::change_status(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn add_message(&self, req: Request<pb::AddMessageRequest>) -> Res<pb::TimelineEntry> {
        let c = call(req)?;
        answer(tickets::add_message(self, &c.p, c.r).await)
    }

    async fn list_timeline(&self, req: Request<pb::ListTimelineRequest>) -> Res<pb::ListTimelineResponse> {
        let c = call(req)?;
        answer(tickets::timeline(self, c.r).await)
    }

    async fn update_progress(&self, req: Request<pb::UpdateProgressRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(business::update_progress(self, &c.p, c.r).await)
    }

    async fn list_request_types(&self, req: Request<pb::ListRequestTypesRequest>) -> Res<pb::ListRequestTypesResponse> {
        call(req)?;
        answer(business::list_request_types(self).await)
    }

    async fn upsert_request_type(&self, req: Request<pb::UpsertRequestTypeRequest>) -> Res<pb::RequestType> {
        let c = call(req)?;
        answer(business::upsert_request_type(self, c.r).await)
    }

    async fn route_feedback(&self, req: Request<pb::RouteFeedbackRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(feedback::route(self, &c.p, c.r).await)
    }

    async fn record_department_response(&self, req: Request<pb::RecordDepartmentResponseRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(feedback::record_department_response(self, &c.p, c.r).await)
    }

    async fn send_feedback_result(&self, req: Request<pb::SendFeedbackResultRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(feedback::send_result(self, &c.p, c.r).await)
    }

    async fn ingest_email(&self, req: Request<pb::IngestEmailRequest>) -> Res<pb::IngestEmailResponse> {
        let c = call(req)?;
        answer(email::ingest(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn record_call_event(&self, req: Request<pb::RecordCallEventRequest>) -> Res<pb::PhoneContact> {
        let c = call(req)?;
        answer(calls::record_event(self, c.r).await)
    }

    async fn log_phone_contact(&self, req: Request<pb::LogPhoneContactRequest>) -> Res<pb::PhoneContact> {
        let c = call(req)?;
        answer(calls::log_contact(self, &c.p, c.r).await)
    }

    async fn link_call(&self, req: Request<pb::LinkCallRequest>) -> Res<pb::PhoneContact> {
        let c = call(req)?;
        answer(calls::link(self, &c.p, c.r).await)
    }

    async fn list_calls(&self, req: Request<pb::ListCallsRequest>) -> Res<pb::ListCallsResponse> {
        let c = call(req)?;
        answer(calls::list(self, &c.p, c.r).await)
    }

    async fn rate_ticket(&self, req: Request<pb::RateTicketRequest>) -> Res<pb::Ticket> {
        let c = call(req)?;
        answer(tickets::rate(self, &c.p, c.r).await)
    }

    async fn get_ticket_sla(&self, req: Request<pb::GetTicketSlaRequest>) -> Res<pb::GetTicketSlaResponse> {
        let c = call(req)?;
        answer(sla::ticket_targets(self, c.r).await)
    }

    async fn get_sla_dashboard(&self, req: Request<pb::GetSlaDashboardRequest>) -> Res<pb::SlaDashboard> {
        let c = call(req)?;
        answer(sla::dashboard(self, c.r).await)
    }

    type WatchSlaEventsStream = Pin<Box<dyn Stream<Item = Result<pb::SlaEventMessage, Status>> + Send>>;

    async fn watch_sla_events(&self, req: Request<pb::WatchSlaEventsRequest>) -> Res<Self::WatchSlaEventsStream> {
        let c = call(req)?;
        answer(sla::watch(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn list_sla_policies(&self, req: Request<pb::ListSlaPoliciesRequest>) -> Res<pb::ListSlaPoliciesResponse> {
        call(req)?;
        answer(Ok(sla::list_policies(self)))
    }

    async fn upsert_sla_policy(&self, req: Request<pb::UpsertSlaPolicyRequest>) -> Res<pb::SlaPolicy> {
        let c = call(req)?;
        answer(sla::upsert_policy(self, &c.p, c.r).await)
    }

    async fn delete_sla_policy(&self, req: Request<pb::DeleteSlaPolicyRequest>) -> Res<pb::DeleteSlaPolicyResponse> {
        let c = call(req)?;
        answer(sla::delete_policy(self, &c.p, c.r).await)
    }

    async fn get_sla_config(&self, req: Request<pb::GetSlaConfigRequest>) -> Res<pb::SlaConfigDocument> {
        call(req)?;
        answer(sla::config_document(self))
    }

    async fn list_calendars(&self, req: Request<pb::ListCalendarsRequest>) -> Res<pb::ListCalendarsResponse> {
        call(req)?;
        answer(config::list_calendars(self).await)
    }

    async fn get_calendar(&self, req: Request<pb::GetCalendarRequest>) -> Res<pb::BusinessCalendar> {
        let c = call(req)?;
        answer(config::get_calendar(self, c.r).await)
    }

    async fn create_calendar(&self, req: Request<pb::CreateCalendarRequest>) -> Res<pb::BusinessCalendar> {
        let c = call(req)?;
        answer(config::create_calendar(self, &c.p, c.r).await)
    }

    async fn update_calendar(&self, req: Request<pb::UpdateCalendarRequest>) -> Res<pb::BusinessCalendar> {
        let c = call(req)?;
        answer(config::update_calendar(self, &c.p, c.r).await)
    }

    async fn extend_calendar(&self, req: Request<pb::ExtendCalendarRequest>) -> Res<pb::BusinessCalendar> {
        let c = call(req)?;
        answer(config::extend_calendar(self, &c.p, c.r).await)
    }

    async fn delete_calendar(&self, req: Request<pb::DeleteCalendarRequest>) -> Res<pb::DeleteCalendarResponse> {
        let c = call(req)?;
        answer(config::delete_calendar(self, &c.p, c.r).await)
    }

    async fn preview_due_date(&self, req: Request<pb::PreviewDueDateRequest>) -> Res<pb::DueDatePreview> {
        let c = call(req)?;
        answer(preview::preview(self, c.r).await)
    }

    async fn get_escalation_rules(&self, req: Request<pb::GetEscalationRulesRequest>) -> Res<pb::EscalationRules> {
        call(req)?;
        answer(config::get_rules(self).await)
    }

    async fn update_escalation_rules(
        &self,
        req: Request<pb::UpdateEscalationRulesRequest>,
    ) -> Res<pb::EscalationRules> {
        let c = call(req)?;
        answer(config::update_rules(self, &c.p, c.r).await)
    }

    async fn list_config_changes(
        &self,
        req: Request<pb::ListConfigChangesRequest>,
    ) -> Res<pb::ListConfigChangesResponse> {
        let c = call(req)?;
        answer(config::list_changes(self, c.r).await)
    }

    async fn list_categories(&self, req: Request<pb::ListCategoriesRequest>) -> Res<pb::ListCategoriesResponse> {
        let c = call(req)?;
        answer(config::list_categories(self, c.r).await)
    }

    async fn set_categories(&self, req: Request<pb::SetCategoriesRequest>) -> Res<pb::ListCategoriesResponse> {
        let c = call(req)?;
        answer(config::set_categories(self, &c.p, c.r).await)
    }

    async fn get_agent_stats(&self, req: Request<pb::GetAgentStatsRequest>) -> Res<pb::AgentStats> {
        let c = call(req)?;
        answer(stats::agent_stats(self, c.r).await)
    }
}
