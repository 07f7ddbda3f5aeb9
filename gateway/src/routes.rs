//! The REST surface: one row per RPC. Everything else — request parsing,
//! the call, the response, the OpenAPI document — is derived from this
//! table and the services' own descriptors, so the two cannot drift (a test
//! checks every RPC has a row).

/// Where the JSON body goes in the request message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body: fields come from the path and the query string.
    None,
    /// The body is the request message (path fields merged in).
    All,
    /// The body is this field of the request message.
    Field(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// axum path; `{name}` segments bind to `params`.
    pub path: &'static str,
    /// `service/Method` (fully qualified service).
    pub rpc: &'static str,
    pub body: Body,
    /// Path parameter → request field path (dotted).
    pub params: &'static [(&'static str, &'static str)],
    /// `If-Match` → this field (optimistic concurrency).
    pub etag: Option<&'static str>,
    /// `Idempotency-Key` → this field.
    pub idempotency: Option<&'static str>,
    pub summary: &'static str,
}

macro_rules! r {
    ($m:literal, $p:literal, $rpc:literal, $body:expr, [$(($a:literal, $b:literal)),*], $etag:expr, $idem:expr, $sum:literal) => {
        Route { method: $m, path: $p, rpc: $rpc, body: $body, params: &[$(($a, $b)),*], etag: $etag, idempotency: $idem, summary: $sum }
    };
}

pub static ROUTES: &[Route] = &[
    // ---- customers
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
    // ---- tickets
    r!(
        "POST",
        "/api/v1/tickets",
        "kefu.tickets.v1.TicketService/CreateTicket",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Create a ticket"
    ),
    r!(
        "GET",
        "/api/v1/tickets",
        "kefu.tickets.v1.TicketService/ListTickets",
        Body::None,
        [],
        None,
        None,
        "List tickets"
    ),
    r!(
        "GET",
        "/api/v1/tickets/{id}",
        "kefu.tickets.v1.TicketService/GetTicket",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Get a ticket (id or number)"
    ),
    r!(
        "PATCH",
        "/api/v1/tickets/{id}",
        "kefu.tickets.v1.TicketService/UpdateTicket",
        Body::Field("ticket"),
        [("id", "ticket.id")],
        Some("ticket.etag"),
        None,
        "Update a ticket (updateMask, If-Match)"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/assign",
        "kefu.tickets.v1.TicketService/AssignTicket",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Assign to an agent and/or queue"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/status",
        "kefu.tickets.v1.TicketService/ChangeStatus",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Change status"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/messages",
        "kefu.tickets.v1.TicketService/AddMessage",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Reply, record a customer message or note"
    ),
    r!(
        "GET",
        "/api/v1/tickets/{id}/timeline",
        "kefu.tickets.v1.TicketService/ListTimeline",
        Body::None,
        [("id", "ticket_id")],
        None,
        None,
        "The ticket's timeline"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/progress",
        "kefu.tickets.v1.TicketService/UpdateProgress",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Materials received, steps done"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/feedback/route",
        "kefu.tickets.v1.TicketService/RouteFeedback",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Route feedback to a department"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/feedback/response",
        "kefu.tickets.v1.TicketService/RecordDepartmentResponse",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Record the department's response"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/feedback/result",
        "kefu.tickets.v1.TicketService/SendFeedbackResult",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Send the feedback result"
    ),
    r!(
        "POST",
        "/api/v1/tickets/{id}/rating",
        "kefu.tickets.v1.TicketService/RateTicket",
        Body::All,
        [("id", "ticket_id")],
        None,
        None,
        "Rate a solved ticket"
    ),
    r!(
        "GET",
        "/api/v1/tickets/{id}/sla",
        "kefu.tickets.v1.TicketService/GetTicketSla",
        Body::None,
        [("id", "ticket_id")],
        None,
        None,
        "The ticket's SLA targets"
    ),
    r!(
        "GET",
        "/api/v1/request-types",
        "kefu.tickets.v1.TicketService/ListRequestTypes",
        Body::None,
        [],
        None,
        None,
        "Business request types"
    ),
    r!(
        "PUT",
        "/api/v1/request-types/{name}",
        "kefu.tickets.v1.TicketService/UpsertRequestType",
        Body::Field("request_type"),
        [("name", "request_type.name")],
        None,
        None,
        "Define a request type"
    ),
    r!(
        "POST",
        "/api/v1/emails",
        "kefu.tickets.v1.TicketService/IngestEmail",
        Body::All,
        [],
        None,
        None,
        "Ingest a raw email (base64)"
    ),
    r!(
        "POST",
        "/api/v1/calls/events",
        "kefu.tickets.v1.TicketService/RecordCallEvent",
        Body::All,
        [],
        None,
        None,
        "Record a telephony event"
    ),
    r!(
        "POST",
        "/api/v1/calls",
        "kefu.tickets.v1.TicketService/LogPhoneContact",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Log a phone contact by hand"
    ),
    r!(
        "GET",
        "/api/v1/calls",
        "kefu.tickets.v1.TicketService/ListCalls",
        Body::None,
        [],
        None,
        None,
        "Phone contacts, newest first"
    ),
    r!(
        "PUT",
        "/api/v1/calls/{call_id}/ticket",
        "kefu.tickets.v1.TicketService/LinkCall",
        Body::All,
        [("call_id", "call_id")],
        None,
        None,
        "Link a call to a ticket"
    ),
    r!(
        "GET",
        "/api/v1/sla/dashboard",
        "kefu.tickets.v1.TicketService/GetSlaDashboard",
        Body::None,
        [],
        None,
        None,
        "SLA counts by queue and agent"
    ),
    r!(
        "GET",
        "/api/v1/sla/config",
        "kefu.tickets.v1.TicketService/GetSlaConfig",
        Body::None,
        [],
        None,
        None,
        "The SLA configuration in one document (for services and audits)"
    ),
    r!(
        "GET",
        "/api/v1/sla/policies",
        "kefu.tickets.v1.TicketService/ListSlaPolicies",
        Body::None,
        [],
        None,
        None,
        "SLA policies"
    ),
    r!(
        "PUT",
        "/api/v1/sla/policies/{id}",
        "kefu.tickets.v1.TicketService/UpsertSlaPolicy",
        Body::All,
        [("id", "policy.id")],
        None,
        None,
        "Create or replace an SLA policy"
    ),
    r!(
        "DELETE",
        "/api/v1/sla/policies/{id}",
        "kefu.tickets.v1.TicketService/DeleteSlaPolicy",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Delete an SLA policy"
    ),
    r!(
        "GET",
        "/api/v1/sla/calendars",
        "kefu.tickets.v1.TicketService/ListCalendars",
        Body::None,
        [],
        None,
        None,
        "Business calendars"
    ),
    r!(
        "GET",
        "/api/v1/sla/calendars/{id}",
        "kefu.tickets.v1.TicketService/GetCalendar",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A business calendar, with the years loaded and the coming filing deadlines"
    ),
    r!(
        "POST",
        "/api/v1/sla/calendars",
        "kefu.tickets.v1.TicketService/CreateCalendar",
        Body::All,
        [],
        None,
        None,
        "Create a business calendar"
    ),
    r!(
        "PUT",
        "/api/v1/sla/calendars/{id}",
        "kefu.tickets.v1.TicketService/UpdateCalendar",
        Body::All,
        [("id", "calendar.id")],
        Some("etag"),
        None,
        "Replace a business calendar (If-Match)"
    ),
    r!(
        "POST",
        "/api/v1/sla/calendars/{id}/extend",
        "kefu.tickets.v1.TicketService/ExtendCalendar",
        Body::All,
        [("id", "calendar_id")],
        Some("etag"),
        None,
        "Add or correct holidays, make-up days, filing deadlines"
    ),
    r!(
        "DELETE",
        "/api/v1/sla/calendars/{id}",
        "kefu.tickets.v1.TicketService/DeleteCalendar",
        Body::None,
        [("id", "id")],
        Some("etag"),
        None,
        "Delete a business calendar (If-Match)"
    ),
    r!(
        "POST",
        "/api/v1/sla/preview",
        "kefu.tickets.v1.TicketService/PreviewDueDate",
        Body::All,
        [],
        None,
        None,
        "By when: due and warning times, and why"
    ),
    r!(
        "GET",
        "/api/v1/sla/escalation-rules",
        "kefu.tickets.v1.TicketService/GetEscalationRules",
        Body::None,
        [],
        None,
        None,
        "Escalation rules"
    ),
    r!(
        "PUT",
        "/api/v1/sla/escalation-rules",
        "kefu.tickets.v1.TicketService/UpdateEscalationRules",
        Body::All,
        [],
        Some("etag"),
        None,
        "Change the escalation rules (If-Match)"
    ),
    r!(
        "GET",
        "/api/v1/sla/changes",
        "kefu.tickets.v1.TicketService/ListConfigChanges",
        Body::None,
        [],
        None,
        None,
        "Who changed SLA configuration, when and why"
    ),
    r!(
        "GET",
        "/api/v1/categories",
        "kefu.tickets.v1.TicketService/ListCategories",
        Body::None,
        [],
        None,
        None,
        "Ticket categories with their labels"
    ),
    r!(
        "PUT",
        "/api/v1/categories",
        "kefu.tickets.v1.TicketService/SetCategories",
        Body::All,
        [],
        Some("etag"),
        None,
        "Replace the ticket categories (If-Match)"
    ),
    r!(
        "GET",
        "/api/v1/agents/{agent}/stats",
        "kefu.tickets.v1.TicketService/GetAgentStats",
        Body::None,
        [("agent", "agent")],
        None,
        None,
        "An agent's statistics for a period"
    ),
    // ---- complaints
    r!(
        "POST",
        "/api/v1/complaints",
        "kefu.complaints.v1.ComplaintService/RecordComplaint",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Record a complaint (any channel, a referral, or a ticket escalated)"
    ),
    r!(
        "GET",
        "/api/v1/complaints",
        "kefu.complaints.v1.ComplaintService/ListComplaints",
        Body::None,
        [],
        None,
        None,
        "Complaints, newest first"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}",
        "kefu.complaints.v1.ComplaintService/GetComplaint",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A complaint by id or number (TS-2026-000123)"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/transitions",
        "kefu.complaints.v1.ComplaintService/TransitionComplaint",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "One step of the complaint workflow, with its reason"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}/history",
        "kefu.complaints.v1.ComplaintService/ListComplaintHistory",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Who moved the complaint, when and why"
    ),
    r!(
        "GET",
        "/api/v1/complaint-categories",
        "kefu.complaints.v1.ComplaintService/ListComplaintCategories",
        Body::None,
        [],
        None,
        None,
        "The complaint categories with their labels"
    ),
    r!(
        "PUT",
        "/api/v1/complaints/{id}/finding",
        "kefu.complaints.v1.ComplaintService/RecordFinding",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "The investigation's finding: root cause, who was responsible, upheld"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/actions",
        "kefu.complaints.v1.ComplaintService/AddCorrectiveAction",
        Body::All,
        [("id", "complaint_id")],
        None,
        Some("request_id"),
        "Add a corrective or preventive action"
    ),
    r!(
        "GET",
        "/api/v1/corrective-actions",
        "kefu.complaints.v1.ComplaintService/ListCorrectiveActions",
        Body::None,
        [],
        None,
        None,
        "A complaint's actions (complaintId), or every open one, overdue first"
    ),
    r!(
        "POST",
        "/api/v1/corrective-actions/{id}/complete",
        "kefu.complaints.v1.ComplaintService/CompleteCorrectiveAction",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "Complete an action with its evidence"
    ),
    r!(
        "POST",
        "/api/v1/corrective-actions/{id}/verify",
        "kefu.complaints.v1.ComplaintService/VerifyCorrectiveAction",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "Verify an action's effect (not by its owner)"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/decision",
        "kefu.complaints.v1.ComplaintService/RecordDecisionSent",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "The decision as communicated to the customer"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/rating",
        "kefu.complaints.v1.ComplaintService/RateComplaintHandling",
        Body::All,
        [("id", "id")],
        None,
        None,
        "The customer's satisfaction with the handling"
    ),
    r!(
        "GET",
        "/api/v1/complaints-stats",
        "kefu.complaints.v1.ComplaintService/GetComplaintStats",
        Body::None,
        [],
        None,
        None,
        "Complaint monitoring for a period"
    ),
    r!(
        "GET",
        "/api/v1/staff/{staff}/complaint-stats",
        "kefu.complaints.v1.ComplaintService/GetStaffComplaintStats",
        Body::None,
        [("staff", "staff")],
        None,
        None,
        "One staff member's complaints in a period"
    ),
];

/// RPCs reached another way: client streaming (bulk import) and server
/// streaming (server-sent events).
pub static SPECIAL: &[(&str, &str)] = &[
    ("kefu.customers.v1.CustomerService/ImportCustomers", "POST /api/v1/customers/import"),
    ("kefu.tickets.v1.TicketService/WatchSlaEvents", "GET /api/v1/events (server-sent events)"),
];
