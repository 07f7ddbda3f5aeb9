//! The tickets service's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
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
];
