//! Access is declared, not called: each service's table covers exactly its
//! descriptor's methods, and a live server admits exactly the roles the
//! table names, for every RPC and every role, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_testkit::{Suite, access};

/// Every access table of every registered module.
fn tables() -> Vec<&'static kefu_kit::access::Access> {
    kefu_suite::MODULES.iter().flat_map(|m| m.access().iter().copied()).collect()
}

#[test]
fn every_modules_access_table_covers_every_rpc_of_its_descriptor() {
    let tables = tables();
    let services: Vec<_> = tables.iter().map(|t| t.service).collect();
    assert!(
        services.contains(&"kefu.customers.v1.CustomerService") && services.contains(&"kefu.tickets.v1.TicketService"),
        "the registry lost a service: {services:?}"
    );
    for table in tables {
        access::assert_covers_descriptor(table);
    }
}

#[test]
fn every_grpc_service_in_the_contract_belongs_to_a_registered_module() {
    let served: Vec<_> = tables().iter().map(|t| t.service.to_owned()).collect();
    let contract = kefu_testkit::raw::services();
    assert!(contract.len() >= 2, "the descriptor set lists {contract:?}");
    for svc in contract {
        assert!(served.contains(&svc), "{svc} has no module in kefu_suite::MODULES");
    }
}

async fn live_role_matrix_matches_the_tables(app: Suite) {
    for table in tables() {
        let bad = access::role_matrix(&app.addr, &app.signer, table).await;
        assert!(bad.is_empty(), "{}: the server disagrees with its access table: {bad:#?}", table.service);
    }
}

async fn an_rpc_missing_from_the_table_is_refused(app: Suite) {
    // A method no table names (on a service the server runs) is refused
    // before any handler, whatever the caller's role.
    let m = kefu_testkit::raw::Method { name: "NoSuchMethod".into(), client_streaming: false, server_streaming: false };
    let ch = kefu_kit::client::channel(&app.addr).unwrap();
    let admin = app.token(kefu_kit::auth::Role::Admin);
    let code = kefu_testkit::raw::call_empty(ch, "kefu.tickets.v1.TicketService", &m, &admin).await;
    assert_eq!(code, tonic::Code::PermissionDenied);
}

kefu_testkit::on_both_backends!(Suite::spawn; live_role_matrix_matches_the_tables, an_rpc_missing_from_the_table_is_refused);

#[test]
fn gateway_endpoint_table_names_each_endpoint_once() {
    let mut seen = std::collections::HashSet::new();
    for e in kefu_gateway::access::ENDPOINTS {
        assert!(seen.insert((e.method, e.path)), "{} {} is listed twice", e.method, e.path);
    }
    assert_eq!(kefu_gateway::access::roles("POST", "/api/v1/accounts"), &[kefu_kit::auth::Role::Admin]);
}
