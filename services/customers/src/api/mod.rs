//! The `kefu.customers.v1.CustomerService` gRPC API, one module per
//! resource. Each resource function parses its request (with
//! `kefu_kit::parse` and the domain's parsers), runs its transaction through
//! `crate::store` and builds the answer, returning `kefu_kit::Result`. The
//! trait impl below only takes the caller, calls that function and turns its
//! result into a gRPC answer. Which roles may call each RPC is decided by the
//! auth layer from [`ACCESS`] before a handler runs.
mod access;
mod approvals;
mod audit;
mod consents;
mod contacts;
mod follow_ups;
mod greetings;
mod holds;
mod profile;
mod rights;
mod tax_profile;

use std::sync::Arc;

pub use access::ACCESS;
use kefu_kit::{
    Error,
    auth::{Principal, principal},
};
use kefu_proto::customers::v1::{self as pb, customer_service_server::CustomerService};
pub use profile::IMPORT_ERRORS_LISTED;
use sqlx::AnyPool;
pub use tax_profile::{RewrapReport, rewrap};
use tonic::{Request, Response, Status, Streaming};

use crate::crypto::DataKeyring;

/// Tunables of the customers service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Follow-up cycle for new plans when none is given (days).
    pub follow_up_cycle_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { follow_up_cycle_days: 30 }
    }
}

pub struct CustomersApi {
    pool: AnyPool,
    /// For reads outside a write (lists): see `kefu_kit::db::readers`.
    reads: AnyPool,
    keys: Arc<DataKeyring>,
    audit_keys: kefu_kit::audit::AuditKeys,
    settings: Settings,
}

impl CustomersApi {
    pub fn new(pool: AnyPool, keys: DataKeyring, audit_keys: kefu_kit::audit::AuditKeys, settings: Settings) -> Self {
        let reads = kefu_kit::db::readers(&pool);
        Self { pool, reads, keys: Arc::new(keys), audit_keys, settings }
    }
}

/// The error for a checked value that is missing after its `Violations`
/// passed. `Violations::check` returns `None` only after recording a
/// violation, so once `finish` has passed this is not expected to happen.
fn unchecked(what: &str) -> Error {
    Error::Internal(anyhow::anyhow!("{what} passed validation but has no value"))
}

type Res<T> = Result<Response<T>, Status>;

/// The caller the auth layer verified, and the request's message.
fn take<T>(req: Request<T>) -> Result<(Principal, T), Status> {
    let p = principal(&req)?;
    Ok((p, req.into_inner()))
}

/// A resource function's result as the gRPC answer.
fn reply<T>(r: kefu_kit::Result<T>) -> Res<T> {
    r.map(Response::new).map_err(Status::from)
}

/// Who gets contacts' phones, emails and WeChat ids in the clear in every
/// answer: systems. People read them one customer at a time with
/// GetCustomer, which the access log records.
const CLEAR_CONTACTS: &[kefu_kit::auth::Role] = &[kefu_kit::auth::Role::Service];

fn masked_for(p: &kefu_kit::auth::Principal, mut c: pb::Customer) -> pb::Customer {
    if !p.has_any(CLEAR_CONTACTS) {
        c.contacts = c.contacts.into_iter().map(contacts::masked).collect();
    }
    c
}

fn contact_for(p: &kefu_kit::auth::Principal, c: pb::Contact) -> pb::Contact {
    if p.has_any(CLEAR_CONTACTS) { c } else { contacts::masked(c) }
}

#[tonic::async_trait]
impl CustomerService for CustomersApi {
    #[tracing::instrument(skip_all)]
    async fn create_customer(&self, req: Request<pb::CreateCustomerRequest>) -> Res<pb::Customer> {
        let (p, r) = take(req)?;
        reply(profile::create(self, &p, r).await.map(|c| masked_for(&p, c)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_customer(&self, req: Request<pb::GetCustomerRequest>) -> Res<pb::Customer> {
        let (p, r) = take(req)?;
        reply(profile::get(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn update_customer(&self, req: Request<pb::UpdateCustomerRequest>) -> Res<pb::Customer> {
        let (p, r) = take(req)?;
        reply(profile::update(self, &p, r).await.map(|c| masked_for(&p, c)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_customers(&self, req: Request<pb::ListCustomersRequest>) -> Res<pb::ListCustomersResponse> {
        let (p, r) = take(req)?;
        reply(profile::list(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn archive_customer(&self, req: Request<pb::ArchiveCustomerRequest>) -> Res<pb::Customer> {
        let (p, r) = take(req)?;
        reply(profile::archive(self, &p, r).await.map(|c| masked_for(&p, c)))
    }

    #[tracing::instrument(skip_all)]
    async fn import_customers(
        &self,
        req: Request<Streaming<pb::ImportCustomerRow>>,
    ) -> Res<pb::ImportCustomersResponse> {
        let (p, rows) = take(req)?;
        reply(profile::import(self, &p, rows).await)
    }

    #[tracing::instrument(skip_all)]
    async fn create_contact(&self, req: Request<pb::CreateContactRequest>) -> Res<pb::Contact> {
        let (p, r) = take(req)?;
        reply(contacts::create(self, &p, r).await.map(|c| contact_for(&p, c)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_contact(&self, req: Request<pb::UpdateContactRequest>) -> Res<pb::Contact> {
        let (p, r) = take(req)?;
        reply(contacts::update(self, &p, r).await.map(|c| contact_for(&p, c)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_contact(&self, req: Request<pb::DeleteContactRequest>) -> Res<pb::DeleteContactResponse> {
        let (p, r) = take(req)?;
        reply(contacts::delete(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn update_tax_profile(&self, req: Request<pb::UpdateTaxProfileRequest>) -> Res<pb::TaxProfile> {
        let (p, r) = take(req)?;
        reply(tax_profile::update(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_tax_profile(&self, req: Request<pb::GetTaxProfileRequest>) -> Res<pb::TaxProfile> {
        let (p, r) = take(req)?;
        reply(tax_profile::get(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn create_consent(&self, req: Request<pb::CreateConsentRequest>) -> Res<pb::Consent> {
        let (p, r) = take(req)?;
        reply(consents::create(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_consent(&self, req: Request<pb::RevokeConsentRequest>) -> Res<pb::Consent> {
        let (p, r) = take(req)?;
        reply(consents::revoke(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_consents(&self, req: Request<pb::ListConsentsRequest>) -> Res<pb::ListConsentsResponse> {
        let (_, r) = take(req)?;
        reply(consents::list(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn export_customer_data(
        &self,
        req: Request<pb::ExportCustomerDataRequest>,
    ) -> Res<pb::ExportCustomerDataResponse> {
        let (p, r) = take(req)?;
        reply(rights::export(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn erase_customer(&self, req: Request<pb::EraseCustomerRequest>) -> Res<pb::Customer> {
        let (_, r) = take(req)?;
        reply(rights::erase(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn propose_change(&self, req: Request<pb::ProposeChangeRequest>) -> Res<pb::Approval> {
        let (p, r) = take(req)?;
        reply(approvals::propose(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_approval(&self, req: Request<pb::GetApprovalRequest>) -> Res<pb::Approval> {
        let (_, r) = take(req)?;
        reply(approvals::get(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_approvals(&self, req: Request<pb::ListApprovalsRequest>) -> Res<pb::ListApprovalsResponse> {
        let (_, r) = take(req)?;
        reply(approvals::list(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn approve_change(&self, req: Request<pb::ApproveChangeRequest>) -> Res<pb::Approval> {
        let (p, r) = take(req)?;
        reply(approvals::approve(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn reject_change(&self, req: Request<pb::RejectChangeRequest>) -> Res<pb::Approval> {
        let (p, r) = take(req)?;
        reply(approvals::reject(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_change(&self, req: Request<pb::WithdrawChangeRequest>) -> Res<pb::Approval> {
        let (p, r) = take(req)?;
        reply(approvals::withdraw(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_erasures(&self, req: Request<pb::ListErasuresRequest>) -> Res<pb::ListErasuresResponse> {
        let (_, r) = take(req)?;
        reply(rights::erasures(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn place_legal_hold(&self, req: Request<pb::PlaceLegalHoldRequest>) -> Res<pb::LegalHold> {
        let (p, r) = take(req)?;
        reply(holds::place(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn release_legal_hold(&self, req: Request<pb::ReleaseLegalHoldRequest>) -> Res<pb::LegalHold> {
        let (p, r) = take(req)?;
        reply(holds::release(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_legal_holds(&self, req: Request<pb::ListLegalHoldsRequest>) -> Res<pb::ListLegalHoldsResponse> {
        let (_, r) = take(req)?;
        reply(holds::list(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_access_log(&self, req: Request<pb::ListAccessLogRequest>) -> Res<pb::ListAccessLogResponse> {
        let (_, r) = take(req)?;
        reply(rights::access_log(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_entries(&self, req: Request<pb::ListAuditEntriesRequest>) -> Res<pb::ListAuditEntriesResponse> {
        let (_, r) = take(req)?;
        reply(audit::list(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn verify_audit_chain(&self, req: Request<pb::VerifyAuditChainRequest>) -> Res<pb::VerifyAuditChainResponse> {
        let (_, r) = take(req)?;
        reply(audit::verify(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn set_follow_up_plan(&self, req: Request<pb::SetFollowUpPlanRequest>) -> Res<pb::FollowUpPlan> {
        let (p, r) = take(req)?;
        reply(follow_ups::set_plan(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_follow_up_plan(&self, req: Request<pb::GetFollowUpPlanRequest>) -> Res<pb::FollowUpPlan> {
        let (_, r) = take(req)?;
        reply(follow_ups::get_plan(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_due_follow_ups(
        &self,
        req: Request<pb::ListDueFollowUpsRequest>,
    ) -> Res<pb::ListDueFollowUpsResponse> {
        let (_, r) = take(req)?;
        reply(follow_ups::list_due(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn record_follow_up_visit(&self, req: Request<pb::RecordFollowUpVisitRequest>) -> Res<pb::FollowUpVisit> {
        let (p, r) = take(req)?;
        reply(follow_ups::record_visit(self, &p, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_follow_up_visits(
        &self,
        req: Request<pb::ListFollowUpVisitsRequest>,
    ) -> Res<pb::ListFollowUpVisitsResponse> {
        let (_, r) = take(req)?;
        reply(follow_ups::list_visits(self, r).await)
    }

    #[tracing::instrument(skip_all)]
    async fn list_festivals(&self, req: Request<pb::ListFestivalsRequest>) -> Res<pb::ListFestivalsResponse> {
        let (_, r) = take(req)?;
        reply(greetings::list_festivals(r))
    }

    #[tracing::instrument(skip_all)]
    async fn list_greeting_targets(
        &self,
        req: Request<pb::ListGreetingTargetsRequest>,
    ) -> Res<pb::ListGreetingTargetsResponse> {
        let (p, r) = take(req)?;
        reply(greetings::list_targets(self, r).await.map(|mut out| {
            if !p.has_any(CLEAR_CONTACTS) {
                for t in &mut out.targets {
                    t.contact_address = contacts::masked_address(&t.contact_address);
                }
            }
            out
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn mark_greeting_sent(&self, req: Request<pb::MarkGreetingSentRequest>) -> Res<pb::MarkGreetingSentResponse> {
        let (p, r) = take(req)?;
        reply(greetings::mark_sent(self, &p, r).await)
    }
}
