//! Every kefu service, in one list. `kefu up`, `kefu migrate` and the test
//! kit iterate it; `kefu serve NAME` has one subcommand per entry. A new
//! service is added here, after the services it calls.
#![forbid(unsafe_code)]

use kefu_kit::module::{AnyModule, Of};
use sqlx::migrate::Migrator;

/// The gRPC services, each after the services it calls.
pub static MODULES: &[&dyn AnyModule] = &[
    &Of::<kefu_staff::Staff>::NEW,
    &Of::<kefu_customers::Customers>::NEW,
    &Of::<kefu_tickets::Tickets>::NEW,
    &Of::<kefu_complaints::Complaints>::NEW,
    &Of::<kefu_training::Training>::NEW,
    &Of::<kefu_performance::Performance>::NEW,
];

/// The module named `name`.
pub fn module(name: &str) -> Option<&'static dyn AnyModule> {
    MODULES.iter().copied().find(|m| m.name() == name)
}

/// Everything with a schema: the modules, then the gateway (logins, keys).
pub fn schemas() -> Vec<(&'static str, &'static Migrator)> {
    let mut out: Vec<_> = MODULES.iter().map(|m| (m.name(), m.migrator())).collect();
    out.push(("gateway", &kefu_gateway::MIGRATOR));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_listed_after_the_services_it_calls() {
        for (i, m) in MODULES.iter().enumerate() {
            for callee in m.calls() {
                let at = MODULES.iter().position(|c| c.name() == *callee);
                assert!(at.is_some_and(|at| at < i), "{} calls {callee}, which is not listed before it", m.name());
            }
        }
    }

    #[test]
    fn names_are_unique_and_each_serves_its_access_tables() {
        let mut names: Vec<_> = schemas().into_iter().map(|(n, _)| n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "two schemas share a name");
        for m in MODULES {
            assert!(!m.access().is_empty(), "{} serves no gRPC service", m.name());
            for a in m.access() {
                assert!(a.service.starts_with(&format!("kefu.{}.", m.name())), "{} serves {}", m.name(), a.service);
            }
        }
    }
}
