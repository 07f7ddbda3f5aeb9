//! List and search latency as the tables grow: for each backend (SQLite +
//! memory, PostgreSQL + Redis) the suite runs in-process as `kefu up` builds
//! it; one customer (with a contact) and one ticket are created through the
//! API, then cloned in SQL up to each size (1 k, 10 k, 100 k, 1 M rows of
//! customers, contacts and tickets; one ticket in ten open with its SLA
//! targets due over 97 days, one in a hundred breached), the tables
//! analysed as autovacuum would, and each call timed through gRPC.
//!
//! `growth [MAX=1000000]` with KEFU_TEST_DATABASE_URL and KEFU_TEST_REDIS_URL
//! (as the tests take them). Prints one table per backend: p50 (p90) in ms
//! over 30 calls after 3 warm-ups, [rows answered].
#![allow(clippy::print_stdout)]

use std::time::Instant;

use anyhow::Context;
use kefu_kit::auth::Role;
use kefu_proto::{common::v1::Channel, customers::v1 as cpb, tickets::v1 as tpb};
use kefu_testkit::{Backend, Suite, SuiteOptions};
use sqlx::{AnyPool, Executor, Row};

const SIZES: [i64; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// The columns of `table`, in order.
async fn columns(pool: &AnyPool, table: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = pool.acquire().await?;
    let sql = if conn.backend_name() == "PostgreSQL" {
        format!(
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_name = '{table}' \
             AND table_schema = current_schema() ORDER BY ordinal_position"
        )
    } else {
        format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
    };
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Into::into)).collect()
}

/// Copies the row of `table` where `key_col = key` for every n in
/// `from..to`, with `subst` giving SQL expressions (over `n`) for columns
/// that must differ, and `filter` an SQL condition on `n` for which copies
/// to make.
async fn clone_rows(
    pool: &AnyPool,
    table: &str,
    key_col: &str,
    key: &str,
    subst: &[(&str, String)],
    filter: &str,
    (from, to): (i64, i64),
) -> anyhow::Result<()> {
    let cols = columns(pool, table).await?;
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| subst.iter().find(|(name, _)| name == c).map_or_else(|| format!("t.{c}"), |(_, e)| e.clone()))
        .collect();
    // Batches of 100,000 keep each statement's memory bounded.
    let mut lo = from;
    while lo < to {
        let hi = (lo + 100_000).min(to);
        let sql = format!(
            "WITH RECURSIVE nums(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM nums WHERE n + 1 < {hi}) \
             INSERT INTO {table} ({}) SELECT {} FROM {table} t, nums WHERE t.{key_col} = '{key}' AND ({filter})",
            cols.join(", "),
            exprs.join(", ")
        );
        pool.execute(sql.as_str()).await.with_context(|| format!("cloning {table}"))?;
        lo = hi;
    }
    Ok(())
}

async fn analyse(pool: &AnyPool) -> anyhow::Result<()> {
    pool.execute("ANALYZE").await?;
    Ok(())
}

/// p50 and p90 in ms of `f` over 30 calls after 3 warm-ups, and how many
/// rows the call answered.
async fn time<F, Fut>(mut f: F) -> anyhow::Result<(f64, f64, usize)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let mut rows = 0;
    for _ in 0..3 {
        rows = f().await?;
    }
    let mut v = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        f().await?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(f64::total_cmp);
    Ok((v[15], v[27], rows))
}

async fn run(backend: Backend, max: i64) -> anyhow::Result<()> {
    // One bench caller: the per-person rate limit is lifted.
    let opts = SuiteOptions { server: Some(Box::new(|a| a.rate_limit_per_caller = 0)), ..Default::default() };
    let s = Suite::spawn_with(backend, opts).await.context("the backend is not configured")?;
    let mut c = s.customers_as(Role::Supervisor);
    let mut t = s.tickets_as(Role::Supervisor);
    let customer = c
        .create_customer(cpb::CreateCustomerRequest {
            customer: Some(cpb::Customer {
                company_name: "增长测试0有限公司".into(),
                uscc: "91310000000000001Y".into(),
                taxpayer_type: cpb::TaxpayerType::General as i32,
                service_tier: cpb::ServiceTier::Standard as i32,
                ..Default::default()
            }),
            contacts: vec![cpb::Contact {
                name: "联系人".into(),
                mobile: "13900000000".into(),
                primary: true,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let ticket = t
        .create_ticket(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                kind: tpb::TicketKind::Consultation as i32,
                channel: Channel::Phone as i32,
                subject: "增值税申报咨询".into(),
                customer_id: customer.id.clone(),
                ..Default::default()
            }),
            request_id: "growth-template".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let (cp, tp) = (&s.customers_raw, &s.tickets_raw);
    let closed = tpb::Status::Closed as i32;
    let open = tpb::Status::Open as i32;
    println!(
        "\n{} — p50 (p90) ms, page of 50",
        match backend {
            Backend::Embedded => "SQLite + memory",
            Backend::Production => "PostgreSQL + Redis",
        }
    );
    println!(
        "| rows | ListTickets status=open | ListTickets sla=breached | ListTickets sla=at_risk (a week) | ListCustomers name contains | ListCustomers by phone | ListCustomers |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut have = 1;
    for size in SIZES.into_iter().filter(|n| *n <= max) {
        let span = (have, size);
        clone_rows(
            cp,
            "customers",
            "id",
            &customer.id,
            &[
                ("id", "'grow-c-' || CAST(n AS TEXT)".into()),
                ("uscc", "'9' || CAST(n + 10000000000000000 AS TEXT)".into()),
                ("company_name", "'增长测试' || CAST(n AS TEXT) || '有限公司'".into()),
                ("company_name_lower", "'增长测试' || CAST(n AS TEXT) || '有限公司'".into()),
                ("request_id", "NULL".into()),
            ],
            "1 = 1",
            span,
        )
        .await?;
        clone_rows(
            cp,
            "contacts",
            "customer_id",
            &customer.id,
            &[
                ("id", "'grow-x-' || CAST(n AS TEXT)".into()),
                ("customer_id", "'grow-c-' || CAST(n AS TEXT)".into()),
                ("mobile", "'13' || CAST(n + 100000000 AS TEXT)".into()),
            ],
            "1 = 1",
            span,
        )
        .await?;
        clone_rows(
            tp,
            "tickets",
            "id",
            &ticket.id,
            &[
                ("id", "'grow-t-' || CAST(n AS TEXT)".into()),
                ("number", "'KF-G' || CAST(n AS TEXT)".into()),
                ("status", format!("CASE WHEN n % 10 = 0 THEN {open} ELSE {closed} END")),
                ("request_id", "NULL".into()),
            ],
            "1 = 1",
            span,
        )
        .await?;
        clone_rows(
            tp,
            "sla_targets",
            "record_id",
            &ticket.id,
            &[
                ("record_id", "'grow-t-' || CAST(n AS TEXT)".into()),
                ("breached_at", "CASE WHEN n % 100 = 0 THEN t.due_at ELSE NULL END".into()),
                // Due times spread over 97 days.
                ("due_at", "t.due_at + (n % 97) * CAST(86400000 AS BIGINT)".into()),
            ],
            "n % 10 = 0",
            span,
        )
        .await?;
        analyse(cp).await?;
        analyse(tp).await?;
        have = size;
        let probe = size / 2;
        let list_tickets = |req: tpb::ListTicketsRequest| {
            let t = t.clone();
            move || {
                let mut t = t.clone();
                let req = req.clone();
                async move { Ok(t.list_tickets(req).await?.into_inner().tickets.len()) }
            }
        };
        let list_customers = |req: cpb::ListCustomersRequest| {
            let c = c.clone();
            move || {
                let mut c = c.clone();
                let req = req.clone();
                async move { Ok(c.list_customers(req).await?.into_inner().customers.len()) }
            }
        };
        let page = 50;
        let cells = [
            time(list_tickets(tpb::ListTicketsRequest { page_size: page, status: open, ..Default::default() })).await?,
            time(list_tickets(tpb::ListTicketsRequest {
                page_size: page,
                sla: "breached".into(),
                ..Default::default()
            }))
            .await?,
            time(list_tickets(tpb::ListTicketsRequest {
                page_size: page,
                sla: "at_risk".into(),
                // A week: the open tickets' resolution targets fall due in it.
                at_risk_minutes: 7 * 24 * 60,
                ..Default::default()
            }))
            .await?,
            time(list_customers(cpb::ListCustomersRequest {
                page_size: page,
                name_contains: format!("测试{probe}有"),
                ..Default::default()
            }))
            .await?,
            time(list_customers(cpb::ListCustomersRequest {
                page_size: page,
                contact_phone: format!("13{}", probe + 100_000_000),
                ..Default::default()
            }))
            .await?,
            time(list_customers(cpb::ListCustomersRequest { page_size: page, ..Default::default() })).await?,
        ];
        let row: Vec<String> = cells.iter().map(|(p50, p90, n)| format!("{p50:.1} ({p90:.1}) [{n}]")).collect();
        println!("| {size} | {} |", row.join(" | "));
    }
    // Leaves nothing behind on the shared PostgreSQL.
    if backend == Backend::Production {
        let admin = std::env::var("KEFU_TEST_DATABASE_URL")?;
        let names: Vec<String> =
            [&s.customers_url, &s.tickets_url].iter().filter_map(|u| u.rsplit('/').next().map(str::to_owned)).collect();
        s.shutdown.cancel();
        drop(s);
        let admin_pool = kefu_kit::db::connect(&admin, 1).await?;
        for n in names {
            let _ = admin_pool.execute(format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)").as_str()).await;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let max: i64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    sqlx::any::install_default_drivers();
    run(Backend::Embedded, max).await?;
    run(Backend::Production, max).await?;
    Ok(())
}
