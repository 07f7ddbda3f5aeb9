//! How a server behaves at its limits, as operators expect: a full server
//! sheds with UNAVAILABLE (counted) and still answers its probes; a unary call
//! past its timeout is DEADLINE_EXCEEDED while streams are not cut; on
//! shutdown it reports NOT_SERVING and 503 first, ends watch streams, then
//! drains. Run on the embedded backend (the server is the same on both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kefu_kit::{auth::Role, config::ServerArgs};
use kefu_proto::{customers::v1 as cpb, tickets::v1 as pb};
use kefu_testkit::{Backend, Suite, SuiteOptions, http_get, wait_for};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

async fn suite(tweak: impl FnOnce(&mut ServerArgs) + Send + 'static) -> Suite {
    Suite::spawn_with(Backend::Embedded, SuiteOptions { server: Some(Box::new(tweak)), ..Default::default() })
        .await
        .unwrap()
}

async fn health(app: &Suite) -> Result<ServingStatus, tonic::Status> {
    let mut h = HealthClient::new(kefu_kit::client::channel(&app.addr).unwrap());
    Ok(h.check(HealthCheckRequest { service: String::new() }).await?.into_inner().status())
}

async fn get_customer(app: &Suite) -> Code {
    let r = app
        .customers_as(Role::Agent)
        .get_customer(cpb::GetCustomerRequest { id: uuid_v7(), omit_contacts: false })
        .await;
    r.map_or_else(|s| s.code(), |_| Code::Ok)
}

fn uuid_v7() -> String {
    // A well-formed id no customer has: NOT_FOUND when the call runs at all.
    "0190d7a4-0000-7000-8000-000000000000".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_sheds_with_unavailable_counts_it_and_still_answers_probes() {
    let app = suite(|a| {
        a.concurrency_limit = Some(1);
        a.rate_limit_per_caller = 0;
    })
    .await;
    assert_eq!(get_customer(&app).await, Code::NotFound, "one call fits");
    // A create waiting on the database (another writer holds it) takes the only slot.
    use sqlx::Connection;
    let mut creator = app.customers_as(Role::Agent);
    let warm = creator.get_customer(cpb::GetCustomerRequest { id: uuid_v7(), omit_contacts: false }).await;
    assert_eq!(warm.unwrap_err().code(), Code::NotFound, "the creator's connection is up");
    let mut dba = sqlx::AnyConnection::connect(&app.customers_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut dba).await.unwrap();
    // The create is sent first; if a probe held the only slot at that moment
    // the create itself was shed, and it is sent again until it holds the slot.
    let send_create = || {
        let mut c = creator.clone();
        tokio::spawn(async move {
            c.create_customer(cpb::CreateCustomerRequest { customer: row(0).customer, ..Default::default() }).await
        })
    };
    let mut create = send_create();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if create.is_finished() {
            match create.await.unwrap() {
                Err(s) if s.code() == Code::Unavailable => create = send_create(),
                other => panic!("the create ended while the database was held: {other:?}"),
            }
        }
        if get_customer(&app).await == Code::Unavailable {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after 5s waiting for a call to be shed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health(&app).await.unwrap(), ServingStatus::Serving, "probes are not shed");
    let (status, body) = http_get(&format!("{}/metrics", app.admin_addr)).await.unwrap();
    assert_eq!(status, 200);
    let shed = body
        .lines()
        .filter(|l| l.starts_with("rpc_server_requests") && l.contains("GetCustomer") && l.contains("=\"14\""))
        .count();
    assert!(shed >= 1, "shed calls are counted with code 14:\n{body}");
    sqlx::query("ROLLBACK").execute(&mut dba).await.unwrap();
    create.await.unwrap().expect("the create that held the slot goes through");
    assert_eq!(get_customer(&app).await, Code::NotFound, "the slot is free again");
}

fn row(i: i64) -> cpb::ImportCustomerRow {
    cpb::ImportCustomerRow {
        line: i + 2,
        customer: Some(cpb::Customer {
            company_name: format!("匯入{i}"),
            uscc: kefu_customers::domain::uscc_with_check(&format!("91310000{:09}", 700 + i)).unwrap(),
            taxpayer_type: cpb::TaxpayerType::General as i32,
            ..Default::default()
        }),
        primary_contact: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_call_past_its_timeout_is_deadline_exceeded_and_an_import_is_not_cut() {
    use sqlx::Connection;
    let app = suite(|a| a.request_timeout = Duration::from_millis(300)).await;
    // Another writer holds the customers database: a create waits past its timeout.
    let mut dba = sqlx::AnyConnection::connect(&app.customers_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut dba).await.unwrap();
    let create = app
        .customers_as(Role::Agent)
        .create_customer(cpb::CreateCustomerRequest { customer: row(9).customer, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::DeadlineExceeded, "{create:?}");
    sqlx::query("ROLLBACK").execute(&mut dba).await.unwrap();
    // A client-streaming import runs as long as its client sends: here
    // longer than the unary timeout.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut importer = app.customers_as(Role::Supervisor);
    let import =
        tokio::spawn(async move { importer.import_customers(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
    for i in 0..3 {
        tx.send(row(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(tx);
    let done = import.await.unwrap().expect("the import outlives the unary timeout").into_inner();
    assert_eq!(done.created, 3, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_is_held_to_the_per_caller_rate_others_and_systems_are_not() {
    let app = suite(|a| a.rate_limit_per_caller = 5).await;
    // A burst of twice the rate, then RESOURCE_EXHAUSTED for that caller.
    let mut agent = app.customers_as(Role::Agent);
    let mut codes = Vec::new();
    for _ in 0..30 {
        let r = agent.get_customer(cpb::GetCustomerRequest { id: uuid_v7(), omit_contacts: false }).await;
        codes.push(r.map_or_else(|s| s.code(), |_| Code::Ok));
    }
    assert!(codes[..5].iter().all(|c| *c == Code::NotFound), "the first calls run: {codes:?}");
    assert!(codes.contains(&Code::ResourceExhausted), "an agent pulling as fast as it can is held back: {codes:?}");
    // Another person, and an integration, are not held back by it.
    let supervisor = app
        .customers_as(Role::Supervisor)
        .get_customer(cpb::GetCustomerRequest { id: uuid_v7(), omit_contacts: false })
        .await;
    assert_eq!(supervisor.unwrap_err().code(), Code::NotFound);
    let mut system = app.customers_as(Role::Service);
    for _ in 0..30 {
        let r = system.get_customer(cpb::GetCustomerRequest { id: uuid_v7(), omit_contacts: false }).await;
        assert_eq!(r.unwrap_err().code(), Code::NotFound, "the service role is not rate limited per caller");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_ends_watch_streams_then_drains() {
    use futures::StreamExt;
    let app = suite(|a| a.shutdown_delay = Duration::from_millis(800)).await;
    let mut watch = app
        .tickets_as(Role::Supervisor)
        .watch_sla_events(pb::WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(http_get(&format!("{}/readyz", app.admin_addr)).await.unwrap().0, 200);
    app.shutdown.cancel();
    // At once: the watcher is told to reconnect elsewhere, probes say so.
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.expect("the stream ends");
    let status = ended.expect("an error status").expect_err("not an event");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(health(&app).await.unwrap(), ServingStatus::NotServing);
    let (code, body) = http_get(&format!("{}/readyz", app.admin_addr)).await.unwrap();
    assert_eq!((code, body.trim()), (503, "shutting down"));
    // Still serving during the delay: load balancers have not all noticed.
    assert_eq!(get_customer(&app).await, Code::NotFound);
    let late = app.tickets_as(Role::Supervisor).watch_sla_events(pb::WatchSlaEventsRequest::default()).await;
    assert_eq!(late.map(drop).unwrap_err().code(), Code::Unavailable, "no new watch on a stopping server");
    // Then the listener closes.
    wait_for("the gRPC listener to close", Duration::from_secs(10), || async {
        matches!(get_customer(&app).await, Code::Unavailable | Code::Unknown | Code::Cancelled).then_some(())
    })
    .await;
}
