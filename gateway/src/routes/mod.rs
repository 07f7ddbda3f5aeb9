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

// The tables (after the macro they are written with).
mod complaints;
mod customers;
mod performance;
mod staff;
mod tickets;
mod training;

/// Every route: the customers', tickets', complaints', training's, staff's and performance's tables.
pub static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    [customers::ROUTES, tickets::ROUTES, complaints::ROUTES, training::ROUTES, staff::ROUTES, performance::ROUTES]
        .concat()
});

/// RPCs reached another way: client streaming (bulk import) and server
/// streaming (server-sent events).
pub static SPECIAL: &[(&str, &str)] = &[
    ("kefu.customers.v1.CustomerService/ImportCustomers", "POST /api/v1/customers/import"),
    ("kefu.tickets.v1.TicketService/WatchSlaEvents", "GET /api/v1/events (server-sent events)"),
    ("kefu.complaints.v1.ComplaintService/WatchComplaintDeadlines", "GET /api/v1/events (server-sent events)"),
];
