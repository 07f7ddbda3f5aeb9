//! Access is declared, not called: each service's table covers exactly its
//! descriptor's methods, and a live server admits exactly the roles the
//! table names, for every RPC and every role, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_testkit::{Suite, access};

#[test]
fn customers_access_table_covers_every_rpc_of_the_descriptor() {
    access::assert_covers_descriptor(&kefu_customers::ACCESS);
}

#[test]
fn tickets_access_table_covers_every_rpc_of_the_descriptor() {
    access::assert_covers_descriptor(&kefu_tickets::ACCESS);
}

async fn live_role_matrix_matches_the_tables(app: Suite) {
    for table in [&kefu_customers::ACCESS, &kefu_tickets::ACCESS] {
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
