//! Who may call each RPC. The auth layer enforces this table before any
//! handler runs; an RPC missing from it is refused.
use kefu_kit::{
    access::{ANYONE, Access, MANAGERS, READERS, WRITERS},
    auth::Role,
};

/// The telephony integration and the people who run it.
const TELEPHONY: &[Role] = &[Role::Service, Role::Admin, Role::Supervisor];
/// People who work queues (not auditors or HR).
const DASHBOARD: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
/// Ratings feed CSAT and bonuses: they come from the customer channels
/// (survey, chat, mail integrations, under the service role), not from staff.
const CUSTOMER_CHANNELS: &[Role] = &[Role::Service];
/// Agent statistics feed performance reviews: supervisors, HR, admins and reporting systems.
const STATS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Service];
/// Who reads the trail of configuration changes.
const CONFIG_AUDIT: &[Role] = &[Role::Supervisor, Role::Admin, Role::Auditor];
/// Services that time their records by the firm's SLA configuration.
const CONFIG_READERS: &[Role] = &[Role::Service, Role::Admin, Role::Auditor];

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
        ("LogPhoneContact", WRITERS),
        ("LinkCall", WRITERS),
        ("ListCalls", READERS),
        ("RateTicket", CUSTOMER_CHANNELS),
        ("GetTicketSla", READERS),
        ("GetSlaDashboard", DASHBOARD),
        ("WatchSlaEvents", WRITERS),
        ("ListSlaPolicies", ANYONE),
        ("UpsertSlaPolicy", MANAGERS),
        ("DeleteSlaPolicy", MANAGERS),
        ("GetSlaConfig", CONFIG_READERS),
        ("ListCalendars", ANYONE),
        ("GetCalendar", ANYONE),
        ("CreateCalendar", ADMINS),
        ("UpdateCalendar", ADMINS),
        ("ExtendCalendar", ADMINS),
        ("DeleteCalendar", ADMINS),
        ("PreviewDueDate", ANYONE),
        ("GetEscalationRules", ANYONE),
        ("UpdateEscalationRules", ADMINS),
        ("ListConfigChanges", CONFIG_AUDIT),
        ("ListCategories", ANYONE),
        ("SetCategories", MANAGERS),
        ("GetAgentStats", STATS),
    ],
};
