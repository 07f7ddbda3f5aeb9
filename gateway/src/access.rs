//! The gateway's own endpoints (those that are not a forwarded RPC) and the
//! roles each admits. Forwarded routes take the roles of their RPC, which
//! the service enforces itself.
use kefu_kit::{
    access::{ANYONE, Endpoint},
    auth::Role,
};

const ADMIN: &[Role] = &[Role::Admin];
const ADMIN_AUDITOR: &[Role] = &[Role::Admin, Role::Auditor];
/// No login needed.
const PUBLIC: &[Role] = &[];

macro_rules! e {
    ($m:literal, $p:literal, $roles:expr, $s:literal) => {
        Endpoint { method: $m, path: $p, roles: $roles, summary: $s }
    };
}

pub static ENDPOINTS: &[Endpoint] = &[
    e!("POST", "/api/v1/auth/login", PUBLIC, "Log in"),
    e!("POST", "/api/v1/auth/refresh", PUBLIC, "Rotate the refresh token"),
    e!("POST", "/api/v1/auth/logout", PUBLIC, "Log out"),
    e!("POST", "/api/v1/auth/password", ANYONE, "Change one's own password"),
    e!("GET", "/api/v1/me", ANYONE, "Who am I"),
    e!("POST", "/api/v1/accounts", ADMIN, "Create an account; its roles wait for a second admin's approval"),
    e!("GET", "/api/v1/accounts", ADMIN_AUDITOR, "List accounts"),
    e!("PATCH", "/api/v1/accounts/{id}", ADMIN, "Lock or unlock an account; take roles away, or propose more"),
    e!("GET", "/api/v1/role-grants", ADMIN_AUDITOR, "Role grants proposed, approved, rejected"),
    e!("POST", "/api/v1/role-grants/{id}/approve", ADMIN, "Approve a role grant (not one's own, nor to oneself)"),
    e!("POST", "/api/v1/role-grants/{id}/reject", ADMIN, "Reject a role grant, saying why"),
    e!("POST", "/api/v1/role-grants/{id}/withdraw", ADMIN, "Withdraw one's own role grant"),
    e!("POST", "/api/v1/api-keys", ADMIN, "Create an API key"),
    e!("GET", "/api/v1/api-keys", ADMIN_AUDITOR, "List API keys"),
    e!("DELETE", "/api/v1/api-keys/{id}", ADMIN, "Revoke an API key"),
    e!("GET", "/api/v1/gateway-audit", ADMIN_AUDITOR, "The gateway's audit trail (accounts, passwords, API keys)"),
    e!(
        "GET",
        "/api/v1/gateway-audit/verify",
        ADMIN_AUDITOR,
        "Verify the gateway's audit chain, optionally against a kept checkpoint"
    ),
    e!("POST", "/api/v1/customers/import", ANYONE, "Bulk import (roles of ImportCustomers apply)"),
    e!(
        "GET",
        "/api/v1/customers/{id}/overview",
        ANYONE,
        "Customer 360° view (roles of GetCustomer and ListTickets apply)"
    ),
    e!(
        "GET",
        "/api/v1/sla/overview",
        ANYONE,
        "Tickets' and complaints' SLA counts on one board (roles of GetSlaDashboard apply; complaints for roles of GetComplaintSlaDashboard)"
    ),
    e!(
        "GET",
        "/api/v1/events",
        ANYONE,
        "Live SLA events of tickets and complaint deadlines (roles of WatchSlaEvents apply; complaints for roles of WatchComplaintDeadlines)"
    ),
    e!("GET", "/api/v1/openapi.json", PUBLIC, "OpenAPI document"),
    e!("GET", "/api/v1/docs", PUBLIC, "API reference"),
];

/// The roles of one of the gateway's own endpoints. Panics on a pair missing
/// from the table, which the endpoint test catches for every route.
pub fn roles(method: &str, path: &str) -> &'static [Role] {
    ENDPOINTS
        .iter()
        .find(|e| e.method == method && e.path == path)
        .map(|e| e.roles)
        .unwrap_or_else(|| panic!("{method} {path} is not in the gateway's endpoint table"))
}

/// The REST routes that forward to RPCs, for the permission document.
pub fn rest_routes() -> Vec<kefu_kit::access::RestRoute> {
    crate::routes::ROUTES
        .iter()
        .map(|r| kefu_kit::access::RestRoute { method: r.method, path: r.path, rpc: r.rpc })
        .collect()
}
