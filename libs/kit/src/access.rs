//! Access declared, not called: each service declares one table
//! `RPC → roles`, and the auth layer enforces it before any handler runs.
//! An RPC missing from the table is refused (fail closed). The tables also
//! generate `docs/permissions.md`.
use std::collections::HashMap;

use crate::{Error, auth::Role};

/// Roles that only read.
pub const READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Auditor, Role::Service];
/// Roles that do day-to-day work.
pub const WRITERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];
/// Roles that manage settings and other people's work.
pub const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];
/// Every role.
pub const ANYONE: &[Role] = &Role::ALL;

/// One service's access table.
#[derive(Debug)]
pub struct Access {
    /// Fully qualified gRPC service name, e.g. `kefu.customers.v1.CustomerService`.
    pub service: &'static str,
    /// Method name → roles that may call it.
    pub rules: &'static [(&'static str, &'static [Role])],
}

impl Access {
    pub fn roles(&self, method: &str) -> Option<&'static [Role]> {
        self.rules.iter().find(|(m, _)| *m == method).map(|(_, r)| *r)
    }
}

/// The tables of every service one server runs, by service name.
#[derive(Debug, Clone, Default)]
pub struct AccessMap {
    services: HashMap<&'static str, &'static Access>,
}

impl AccessMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, access: &'static Access) {
        self.services.insert(access.service, access);
    }

    /// Adds every table of another map.
    pub fn merge(&mut self, other: AccessMap) {
        self.services.extend(other.services);
    }

    /// Decides a call to `/service/Method` by a caller holding `roles`: the
    /// first of them the call admits.
    pub fn check(&self, path: &str, roles: &[Role]) -> Result<Role, Error> {
        let p = path.trim_start_matches('/');
        let (service, method) = p.split_once('/').unwrap_or((p, ""));
        let Some(allowed) = self.services.get(service).and_then(|a| a.roles(method)) else {
            return Err(Error::PermissionDenied(format!("{service}/{method} is not in the service's access table")));
        };
        if let Some(role) = roles.iter().find(|r| allowed.contains(r)) {
            return Ok(*role);
        }
        Err(Error::PermissionDenied(format!(
            "{method} needs one of the roles [{}]; the caller has [{}]",
            names(allowed),
            names(roles)
        )))
    }
}

fn names(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// A REST endpoint the gateway serves itself (not a gRPC call), with the
/// roles it admits; an empty list means no login is needed.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static [Role],
    pub summary: &'static str,
}

/// A REST route that forwards to an RPC.
#[derive(Debug)]
pub struct RestRoute {
    pub method: &'static str,
    pub path: &'static str,
    /// `service/Method`.
    pub rpc: &'static str,
}

/// Renders the permission document: per service an RPC × role matrix with
/// the REST route of each RPC, then the gateway's own endpoints.
pub fn render_markdown(tables: &[&Access], routes: &[RestRoute], endpoints: &[Endpoint]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# Permissions\n\nGenerated from the services' access tables (`ACCESS` in each service's `api` module) \
         and the gateway's route table; a test fails when this file no longer matches them. To regenerate: \
         `KEFU_BLESS=1 cargo test -p kefu --test permissions`.\n\n\
         Roles: agent (坐席), supervisor (主管), hr (人事), admin (管理员), auditor (审计), service (内部系统). \
         An RPC missing from its table is refused.\n",
    );
    let header = |out: &mut String, first: &str| {
        let _ = write!(out, "\n| {first} | REST |");
        for r in Role::ALL {
            let _ = write!(out, " {r} |");
        }
        let _ = write!(out, "\n|---|---|");
        for _ in Role::ALL {
            out.push_str(":-:|");
        }
        out.push('\n');
    };
    for t in tables {
        let _ = writeln!(out, "\n## {}", t.service);
        header(&mut out, "RPC");
        for (method, allowed) in t.rules {
            let rpc = format!("{}/{method}", t.service);
            let rest: Vec<String> =
                routes.iter().filter(|r| r.rpc == rpc).map(|r| format!("`{} {}`", r.method, r.path)).collect();
            let _ = write!(out, "| {method} | {} |", if rest.is_empty() { "—".to_owned() } else { rest.join("<br>") });
            for r in Role::ALL {
                out.push_str(if allowed.contains(&r) { " ✓ |" } else { "   |" });
            }
            out.push('\n');
        }
    }
    out.push_str("\n## Gateway endpoints\n");
    header(&mut out, "Endpoint");
    for e in endpoints {
        let login = if e.roles.is_empty() { " (no login)" } else { "" };
        let _ = write!(out, "| {}{login} | `{} {}` |", e.summary, e.method, e.path);
        for r in Role::ALL {
            out.push_str(if e.roles.is_empty() || e.roles.contains(&r) { " ✓ |" } else { "   |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static T: Access = Access { service: "kefu.x.v1.X", rules: &[("Get", READERS), ("Set", MANAGERS)] };

    #[test]
    fn the_table_decides_and_unknown_methods_are_refused() {
        let mut m = AccessMap::new();
        m.add(&T);
        assert!(m.check("/kefu.x.v1.X/Get", &[Role::Auditor]).is_ok());
        assert!(matches!(m.check("/kefu.x.v1.X/Set", &[Role::Agent]), Err(Error::PermissionDenied(_))));
        assert!(m.check("/kefu.x.v1.X/Set", &[Role::Agent, Role::Admin]).is_ok());
        assert!(matches!(m.check("/kefu.x.v1.X/Delete", &Role::ALL), Err(Error::PermissionDenied(_))));
        assert!(matches!(m.check("/kefu.y.v1.Y/Get", &Role::ALL), Err(Error::PermissionDenied(_))));
    }
}
