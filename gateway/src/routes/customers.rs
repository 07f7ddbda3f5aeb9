//! The customers service's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
    r!(
        "POST",
        "/api/v1/customers",
        "kefu.customers.v1.CustomerService/CreateCustomer",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Create a customer"
    ),
    r!(
        "GET",
        "/api/v1/customers",
        "kefu.customers.v1.CustomerService/ListCustomers",
        Body::None,
        [],
        None,
        None,
        "List and search customers"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}",
        "kefu.customers.v1.CustomerService/GetCustomer",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Get a customer"
    ),
    r!(
        "PATCH",
        "/api/v1/customers/{id}",
        "kefu.customers.v1.CustomerService/UpdateCustomer",
        Body::Field("customer"),
        [("id", "customer.id")],
        Some("customer.etag"),
        None,
        "Update a customer (updateMask, If-Match)"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/archive",
        "kefu.customers.v1.CustomerService/ArchiveCustomer",
        Body::None,
        [("id", "id")],
        Some("etag"),
        None,
        "Archive a customer"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/erase",
        "kefu.customers.v1.CustomerService/EraseCustomer",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Erase a customer's personal data (refused: propose the erasure for approval)"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/approvals",
        "kefu.customers.v1.CustomerService/ProposeChange",
        Body::All,
        [("id", "customer_id")],
        None,
        Some("request_id"),
        "Propose a bank-account change, erasure or disclosure for a second person's approval"
    ),
    r!(
        "GET",
        "/api/v1/approvals",
        "kefu.customers.v1.CustomerService/ListApprovals",
        Body::None,
        [],
        None,
        None,
        "List proposals awaiting or given approval"
    ),
    r!(
        "GET",
        "/api/v1/approvals/{id}",
        "kefu.customers.v1.CustomerService/GetApproval",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Get a proposal"
    ),
    r!(
        "POST",
        "/api/v1/approvals/{id}/approve",
        "kefu.customers.v1.CustomerService/ApproveChange",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Approve a proposal (not one's own); a change is applied"
    ),
    r!(
        "POST",
        "/api/v1/approvals/{id}/reject",
        "kefu.customers.v1.CustomerService/RejectChange",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Reject a proposal, saying why"
    ),
    r!(
        "POST",
        "/api/v1/approvals/{id}/withdraw",
        "kefu.customers.v1.CustomerService/WithdrawChange",
        Body::All,
        [("id", "id")],
        None,
        None,
        "Withdraw one's own proposal"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/export",
        "kefu.customers.v1.CustomerService/ExportCustomerData",
        Body::All,
        [("id", "customer_id")],
        None,
        None,
        "Export everything held on a customer"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/contacts",
        "kefu.customers.v1.CustomerService/CreateContact",
        Body::Field("contact"),
        [("id", "customer_id")],
        None,
        None,
        "Add a contact"
    ),
    r!(
        "PATCH",
        "/api/v1/customers/{id}/contacts/{contact}",
        "kefu.customers.v1.CustomerService/UpdateContact",
        Body::Field("contact"),
        [("id", "contact.customer_id"), ("contact", "contact.id")],
        None,
        None,
        "Update a contact"
    ),
    r!(
        "DELETE",
        "/api/v1/customers/{id}/contacts/{contact}",
        "kefu.customers.v1.CustomerService/DeleteContact",
        Body::None,
        [("id", "customer_id"), ("contact", "contact_id")],
        None,
        None,
        "Remove a contact"
    ),
    r!(
        "PUT",
        "/api/v1/customers/{id}/tax-profile",
        "kefu.customers.v1.CustomerService/UpdateTaxProfile",
        Body::All,
        [("id", "tax_profile.customer_id")],
        None,
        None,
        "Store the tax and financial profile (encrypted)"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}/tax-profile",
        "kefu.customers.v1.CustomerService/GetTaxProfile",
        Body::None,
        [("id", "customer_id")],
        None,
        None,
        "Read the tax profile (masked unless allowed, with a purpose)"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/consents",
        "kefu.customers.v1.CustomerService/CreateConsent",
        Body::Field("consent"),
        [("id", "consent.customer_id")],
        None,
        None,
        "Record a consent"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}/consents",
        "kefu.customers.v1.CustomerService/ListConsents",
        Body::None,
        [("id", "customer_id")],
        None,
        None,
        "List consents"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/consents/{consent}/revoke",
        "kefu.customers.v1.CustomerService/RevokeConsent",
        Body::None,
        [("id", "customer_id"), ("consent", "consent_id")],
        None,
        None,
        "Revoke a consent"
    ),
    r!(
        "PUT",
        "/api/v1/customers/{id}/follow-up-plan",
        "kefu.customers.v1.CustomerService/SetFollowUpPlan",
        Body::All,
        [("id", "customer_id")],
        None,
        None,
        "Set the follow-up plan"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}/follow-up-plan",
        "kefu.customers.v1.CustomerService/GetFollowUpPlan",
        Body::None,
        [("id", "customer_id")],
        None,
        None,
        "Get the follow-up plan"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}/follow-up-visits",
        "kefu.customers.v1.CustomerService/ListFollowUpVisits",
        Body::None,
        [("id", "customer_id")],
        None,
        None,
        "List follow-up visits"
    ),
    r!(
        "POST",
        "/api/v1/follow-up-visits",
        "kefu.customers.v1.CustomerService/RecordFollowUpVisit",
        Body::Field("visit"),
        [],
        None,
        None,
        "Record a follow-up visit"
    ),
    r!(
        "GET",
        "/api/v1/follow-ups/due",
        "kefu.customers.v1.CustomerService/ListDueFollowUps",
        Body::None,
        [],
        None,
        None,
        "Follow-ups due by a date"
    ),
    r!(
        "GET",
        "/api/v1/festivals",
        "kefu.customers.v1.CustomerService/ListFestivals",
        Body::None,
        [],
        None,
        None,
        "Festival dates of a year"
    ),
    r!(
        "GET",
        "/api/v1/greetings/targets",
        "kefu.customers.v1.CustomerService/ListGreetingTargets",
        Body::None,
        [],
        None,
        None,
        "Customers to greet for a festival"
    ),
    r!(
        "POST",
        "/api/v1/greetings",
        "kefu.customers.v1.CustomerService/MarkGreetingSent",
        Body::All,
        [],
        None,
        None,
        "Mark a greeting sent"
    ),
    r!(
        "GET",
        "/api/v1/audit-entries",
        "kefu.customers.v1.CustomerService/ListAuditEntries",
        Body::None,
        [],
        None,
        None,
        "Read the audit trail"
    ),
    r!(
        "POST",
        "/api/v1/audit-entries/verify",
        "kefu.customers.v1.CustomerService/VerifyAuditChain",
        Body::None,
        [],
        None,
        None,
        "Verify the audit chain (optionally against a kept checkpoint)"
    ),
    r!(
        "GET",
        "/api/v1/access-log",
        "kefu.customers.v1.CustomerService/ListAccessLog",
        Body::None,
        [],
        None,
        None,
        "Who read which customer's contact details in the clear"
    ),
    r!(
        "GET",
        "/api/v1/erasures",
        "kefu.customers.v1.CustomerService/ListErasures",
        Body::None,
        [],
        None,
        None,
        "Customers erased, in order (the feed services follow)"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/legal-holds",
        "kefu.customers.v1.CustomerService/PlaceLegalHold",
        Body::All,
        [("id", "customer_id")],
        None,
        None,
        "Place a legal hold: no erasure while it lasts"
    ),
    r!(
        "POST",
        "/api/v1/customers/{id}/legal-holds/{reference}/release",
        "kefu.customers.v1.CustomerService/ReleaseLegalHold",
        Body::All,
        [("id", "customer_id"), ("reference", "reference")],
        None,
        None,
        "Release a legal hold"
    ),
    r!(
        "GET",
        "/api/v1/customers/{id}/legal-holds",
        "kefu.customers.v1.CustomerService/ListLegalHolds",
        Body::None,
        [("id", "customer_id")],
        None,
        None,
        "A customer's legal holds"
    ),
];
