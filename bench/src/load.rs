//! kefu's load generator: drives running services over gRPC (tonic, one
//! HTTP/2 channel shared by every worker, as a real client) or the gateway
//! over REST, checks every answer's status, and prints one line per
//! measurement for `bench/load.sh`, which interleaves it with pgbench and
//! redis-benchmark.
//!
//! ```text
//! load seed CUSTOMERS_ADDR TICKETS_ADDR N_CUSTOMERS N_TICKETS IDS_FILE
//! load run WHAT ADDR SECONDS CONCURRENCY IDS_FILE
//!   WHAT: create-ticket | get-customer | get-customer-summary | get-ticket | list-tickets | rest-get-customer | rest-get-ticket
//! ```
//! The bearer token comes from `KEFU_BENCH_TOKEN`. Output of `run`:
//! `WHAT ok=N rps=R p50_ms=A p99_ms=B`; any answer that is not OK stops the
//! run with its status.
#![allow(clippy::print_stdout)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use kefu_kit::client::CallContext;
use kefu_proto::{
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type Customers = CustomerServiceClient<InterceptedService<Channel, CallContext>>;
type Tickets = TicketServiceClient<InterceptedService<Channel, CallContext>>;

fn token() -> anyhow::Result<String> {
    std::env::var("KEFU_BENCH_TOKEN").context("KEFU_BENCH_TOKEN (a supervisor token) is not set")
}

fn ctx() -> anyhow::Result<CallContext> {
    CallContext::new(Some(&token()?))
}

fn customers(addr: &str) -> anyhow::Result<Customers> {
    Ok(CustomerServiceClient::with_interceptor(kefu_kit::client::channel(addr)?, ctx()?))
}

fn tickets(addr: &str) -> anyhow::Result<Tickets> {
    Ok(TicketServiceClient::with_interceptor(kefu_kit::client::channel(addr)?, ctx()?))
}

/// A valid unified social credit code for `n` (distinct per `n`).
fn uscc(n: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let body = format!("91310000{:09}", n % 1_000_000_000);
    let sum: u32 =
        body.bytes().zip(WEIGHTS).map(|(b, w)| ALPHABET.iter().position(|a| *a == b).map_or(0, |p| p as u32) * w).sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", ALPHABET[check as usize] as char)
}

fn new_ticket(customer: &str, n: u64) -> tpb::CreateTicketRequest {
    tpb::CreateTicketRequest {
        ticket: Some(tpb::Ticket {
            kind: tpb::TicketKind::Consultation as i32,
            channel: kefu_proto::common::v1::Channel::Phone as i32,
            subject: format!("增值税申报咨询 {n}"),
            customer_id: customer.to_owned(),
            ..Default::default()
        }),
        description: format!("客户来电询问本月申报事项（第 {n} 次）"),
        request_id: uuid::Uuid::now_v7().to_string(),
    }
}

async fn seed(args: &[String]) -> anyhow::Result<()> {
    let [c_addr, t_addr, n_customers, n_tickets, file] = args else {
        bail!("seed CUSTOMERS_ADDR TICKETS_ADDR N_CUSTOMERS N_TICKETS IDS_FILE");
    };
    let (n_customers, n_tickets): (u64, u64) = (n_customers.parse()?, n_tickets.parse()?);
    let c = customers(c_addr)?;
    let base = u64::from(std::process::id()) * 1_000_000 + (chrono::Utc::now().timestamp() as u64 % 1000) * 1000;
    let mut ids: Vec<String> = Vec::new();
    for chunk in (0..n_customers).collect::<Vec<_>>().chunks(16) {
        let made = futures::future::try_join_all(chunk.iter().map(|&i| {
            let mut c = c.clone();
            async move {
                let req = cpb::CreateCustomerRequest {
                    customer: Some(cpb::Customer {
                        company_name: format!("压测客户{i}有限公司"),
                        uscc: uscc(base + i),
                        taxpayer_type: cpb::TaxpayerType::General as i32,
                        service_tier: cpb::ServiceTier::Standard as i32,
                        ..Default::default()
                    }),
                    contacts: vec![cpb::Contact {
                        name: format!("联系人{i}"),
                        mobile: format!("138{:08}", i % 100_000_000),
                        primary: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                c.create_customer(req).await.map(|r| r.into_inner().id)
            }
        }))
        .await?;
        ids.extend(made);
    }
    let t = tickets(t_addr)?;
    let mut ticket_ids = Vec::new();
    for chunk in (0..n_tickets).collect::<Vec<_>>().chunks(16) {
        let made = futures::future::try_join_all(chunk.iter().map(|n| {
            let mut t = t.clone();
            let customer = ids[(*n as usize) % ids.len()].clone();
            async move { t.create_ticket(new_ticket(&customer, *n)).await.map(|r| r.into_inner().id) }
        }))
        .await?;
        ticket_ids.extend(made);
    }
    let text = format!("{}\n{}\n", ids.join(","), ticket_ids.join(","));
    std::fs::write(file, text)?;
    println!("seeded {} customers, {} tickets", ids.len(), ticket_ids.len());
    Ok(())
}

/// Latencies in microseconds, shared by the workers.
struct Recorder {
    ok: AtomicU64,
    lat: std::sync::Mutex<Vec<u64>>,
}

async fn run(args: &[String]) -> anyhow::Result<()> {
    let [what, addr, secs, conc, file] = args else {
        bail!("run WHAT ADDR SECONDS CONCURRENCY IDS_FILE");
    };
    let secs: u64 = secs.parse()?;
    let conc: usize = conc.parse()?;
    let text = std::fs::read_to_string(file)?;
    let mut lines = text.lines();
    let customer_ids: Arc<Vec<String>> =
        Arc::new(lines.next().unwrap_or_default().split(',').map(str::to_owned).collect());
    let ticket_ids: Arc<Vec<String>> =
        Arc::new(lines.next().unwrap_or_default().split(',').map(str::to_owned).collect());
    let rec = Arc::new(Recorder { ok: AtomicU64::new(0), lat: std::sync::Mutex::new(Vec::new()) });
    let http = reqwest::Client::builder().pool_max_idle_per_host(conc).build()?;
    let token = token()?;
    let c = customers(addr).ok();
    let t = tickets(addr).ok();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers = (0..conc).map(|w| {
        let (rec, customer_ids, ticket_ids) = (rec.clone(), customer_ids.clone(), ticket_ids.clone());
        let (mut c, mut t, http, token, what, addr) =
            (c.clone(), t.clone(), http.clone(), token.clone(), what.clone(), addr.clone());
        async move {
            let mut n = w as u64;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                n += conc as u64;
                let customer = &customer_ids[(n as usize) % customer_ids.len()];
                let ticket = &ticket_ids[(n as usize) % ticket_ids.len()];
                let started = Instant::now();
                let result: anyhow::Result<()> = match what.as_str() {
                    "create-ticket" => {
                        let t = t.as_mut().context("tickets client")?;
                        t.create_ticket(new_ticket(customer, n)).await.map(drop).map_err(anyhow::Error::from)
                    }
                    "get-customer" | "get-customer-summary" => {
                        let c = c.as_mut().context("customers client")?;
                        // A person's read (contacts, logged) or a system's (no contacts).
                        let omit_contacts = what == "get-customer-summary";
                        let req = cpb::GetCustomerRequest { id: customer.clone(), omit_contacts };
                        c.get_customer(req).await.map(drop).map_err(anyhow::Error::from)
                    }
                    "get-ticket" => {
                        let t = t.as_mut().context("tickets client")?;
                        t.get_ticket(tpb::GetTicketRequest { id: ticket.clone() })
                            .await
                            .map(drop)
                            .map_err(anyhow::Error::from)
                    }
                    "list-tickets" => {
                        let t = t.as_mut().context("tickets client")?;
                        let req = tpb::ListTicketsRequest { page_size: 50, ..Default::default() };
                        match t.list_tickets(req).await {
                            Ok(r) if r.get_ref().tickets.len() == 50 => Ok(()),
                            Ok(r) => Err(anyhow::anyhow!("a page of {} tickets, not 50", r.get_ref().tickets.len())),
                            Err(e) => Err(e.into()),
                        }
                    }
                    "rest-get-customer" | "rest-get-ticket" => {
                        let path = if what == "rest-get-customer" {
                            format!("{addr}/api/v1/customers/{customer}")
                        } else {
                            format!("{addr}/api/v1/tickets/{ticket}")
                        };
                        let r = http.get(path).bearer_auth(&token).send().await?;
                        if r.status().is_success() {
                            r.bytes().await.map(drop).map_err(anyhow::Error::from)
                        } else {
                            Err(anyhow::anyhow!("HTTP {}: {}", r.status(), r.text().await.unwrap_or_default()))
                        }
                    }
                    other => Err(anyhow::anyhow!("unknown measurement {other}")),
                };
                result?;
                lat.push(started.elapsed().as_micros() as u64);
                rec.ok.fetch_add(1, Ordering::Relaxed);
            }
            rec.lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.extend(lat);
            anyhow::Ok(())
        }
    });
    let began = Instant::now();
    futures::future::try_join_all(workers).await?;
    let elapsed = began.elapsed().as_secs_f64();
    let mut lat = rec.lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    let ok = rec.ok.load(Ordering::Relaxed);
    println!("{what} ok={ok} rps={:.0} p50_ms={:.2} p99_ms={:.2}", ok as f64 / elapsed, pct(0.5), pct(0.99));
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => seed(&args[1..]).await,
        Some("run") => run(&args[1..]).await,
        _ => bail!("usage: load seed … | load run … (see the source's header)"),
    }
}
