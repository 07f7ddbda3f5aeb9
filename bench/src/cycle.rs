//! Performance cycles as teams grow: for each backend (SQLite + memory,
//! PostgreSQL + Redis) the suite runs in-process as `kefu up` builds it;
//! for teams of 50, 200 and 500 people (each with two solved, rated tickets)
//! HR opens a month's cycle, closes it — every person's figures read over
//! gRPC from tickets, complaints and training and stored as the snapshot —
//! and the results are listed, reported and exported to Excel.
//!
//! Beside the close stands its floor, measured in the same run: the same
//! three figure calls per person (`GetAgentStats`, `GetStaffComplaintStats`,
//! `GetStaffTrainingStats`) made directly, one after another, as the close
//! makes them. What the close costs above it is its own work (scoring, one
//! transaction writing every snapshot and history entry).
//!
//! `cycle [SIZES=50,200,500]` with KEFU_TEST_DATABASE_URL and
//! KEFU_TEST_REDIS_URL (as the tests take them). Prints one table per
//! backend, times in ms.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use anyhow::Context;
use kefu_kit::auth::Role;
use kefu_proto::{
    common::v1::Channel,
    complaints::v1 as cpb,
    customers::v1 as kpb,
    performance::v1::{self as pb, Curve, IndicatorGroup as G, Source},
    staff::v1 as spb,
    tickets::v1 as tpb,
    training::v1 as lpb,
};
use kefu_testkit::{Backend, Suite, SuiteOptions};

/// 2026-03-02 09:00 in Beijing (the suite's clock: the month's work) and
/// 2026-04-02 09:00 (the month has ended: the close).
const MARCH_2: i64 = 1_772_413_200_000;
const APRIL_2: i64 = MARCH_2 + 31 * 86_400_000;

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn scheme() -> pb::DefineSchemeRequest {
    let ind = |code: &str, group: G, source: Source, curve: Curve, range: (f64, f64), weight: i32| pb::Indicator {
        code: code.into(),
        name: code.into(),
        group: group as i32,
        source: source as i32,
        curve: curve as i32,
        floor: range.0,
        target: range.1,
        weight,
        ..Default::default()
    };
    pb::DefineSchemeRequest {
        scheme: Some(pb::Scheme {
            code: "bench".into(),
            name: "基准方案".into(),
            position: "客服专员".into(),
            groups: vec![
                pb::GroupWeight { group: G::ServiceQuality as i32, weight: 50 },
                pb::GroupWeight { group: G::Capability as i32, weight: 20 },
                pb::GroupWeight { group: G::Attitude as i32, weight: 30 },
            ],
            indicators: vec![
                ind("csat", G::ServiceQuality, Source::TicketsCsat, Curve::Linear, (60.0, 100.0), 50),
                ind("sla", G::ServiceQuality, Source::TicketsSlaMet, Curve::Linear, (80.0, 100.0), 50),
                ind("hours", G::Capability, Source::TrainingHours, Curve::Linear, (0.0, 8.0), 100),
                ind("complaints", G::Attitude, Source::ComplaintsReceived, Curve::Inverse, (2.0, 0.0), 50),
                ind("rating", G::Attitude, Source::ManualSupervisorRating, Curve::Direct, (0.0, 0.0), 50),
            ],
            ..Default::default()
        }),
    }
}

async fn run(backend: Backend, sizes: &[usize]) -> anyhow::Result<()> {
    let opts = SuiteOptions { server: Some(Box::new(|a| a.rate_limit_per_caller = 0)), ..Default::default() };
    let s = Suite::spawn_with(backend, opts).await.context("the backend is not configured")?;
    let mut hr_staff = s.staff_as(Role::Hr);
    let mut perf = s.performance_as(Role::Hr);
    perf.define_scheme(scheme()).await?;
    let customer = s.customer("基准测试有限公司", 9001, kpb::ServiceTier::Standard).await;
    println!(
        "| people | open | close | floor: 3 figure calls × people | list evaluations | cycle report | Excel export (KiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in sizes {
        let team = format!("bench-{n}");
        hr_staff
            .create_team(spb::CreateTeamRequest {
                team: Some(spb::Team {
                    code: team.clone(),
                    name: format!("基准组 {n}"),
                    kind: spb::TeamKind::Team as i32,
                    ..Default::default()
                }),
            })
            .await?;
        hr_staff
            .set_membership(spb::SetMembershipRequest {
                team: team.clone(),
                staff_id: "supervisor-1".into(),
                member: true,
                lead: true,
            })
            .await?;
        let ids: Vec<String> = (0..n).map(|i| format!("b{n}-{i:04}")).collect();
        for id in &ids {
            hr_staff
                .create_person(spb::CreatePersonRequest {
                    person: Some(spb::Person {
                        staff_id: id.clone(),
                        name: format!("员工{id}"),
                        position: "客服专员".into(),
                        hire_date: "2024-01-02".into(),
                        ..Default::default()
                    }),
                })
                .await?;
            hr_staff
                .set_membership(spb::SetMembershipRequest {
                    team: team.clone(),
                    staff_id: id.clone(),
                    member: true,
                    lead: false,
                })
                .await?;
            let mut t = s.tickets_with_token(Some(&s.token_for(id, Role::Agent)));
            for rating in [5, 4] {
                let made = t
                    .create_ticket(tpb::CreateTicketRequest {
                        ticket: Some(tpb::Ticket {
                            kind: tpb::TicketKind::Consultation as i32,
                            channel: Channel::Phone as i32,
                            subject: "申报咨询".into(),
                            customer_id: customer.clone(),
                            assignee: id.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                t.change_status(tpb::ChangeStatusRequest {
                    ticket_id: made.id.clone(),
                    status: tpb::Status::Solved as i32,
                    ..Default::default()
                })
                .await?;
                s.tickets_as(Role::Service)
                    .rate_ticket(tpb::RateTicketRequest { ticket_id: made.id, rating, comment: String::new() })
                    .await?;
            }
        }
        // March 2026 for each team, closed once it has ended.
        let month = "2026-03".to_owned();
        let started = Instant::now();
        let cycle = perf
            .open_cycle(pb::OpenCycleRequest {
                cycle: Some(pb::Cycle {
                    kind: pb::PeriodKind::Month as i32,
                    period: month,
                    team: team.clone(),
                    grades: vec![
                        pb::GradeBand { grade: "A".into(), min_score: 90.0, coefficient: 150, ..Default::default() },
                        pb::GradeBand { grade: "B".into(), min_score: 0.0, coefficient: 100, ..Default::default() },
                    ],
                    bonus_base_fen: 500_000,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        let open = ms(started);
        s.clock.set(APRIL_2);
        // The floor: the figure calls a close makes, made directly.
        let (from, to) = ("2026-03-01".to_owned(), "2026-03-31".to_owned());
        let mut tk = s.tickets_as(Role::Service);
        let mut cp = s.complaints_as(Role::Service);
        let mut tr = s.training_as(Role::Service);
        let started = Instant::now();
        for id in &ids {
            tk.get_agent_stats(tpb::GetAgentStatsRequest {
                agent: id.clone(),
                from_date: from.clone(),
                to_date: to.clone(),
            })
            .await?;
            cp.get_staff_complaint_stats(cpb::GetStaffComplaintStatsRequest {
                staff: id.clone(),
                from_date: from.clone(),
                to_date: to.clone(),
            })
            .await?;
            tr.get_staff_training_stats(lpb::GetStaffTrainingStatsRequest {
                staff_id: id.clone(),
                from_date: from.clone(),
                to_date: to.clone(),
            })
            .await?;
        }
        let floor = ms(started);
        let started = Instant::now();
        perf.close_cycle(pb::CloseCycleRequest { id: cycle.id.clone() }).await?;
        let close = ms(started);
        let started = Instant::now();
        let listed =
            perf.list_evaluations(pb::ListEvaluationsRequest { cycle_id: cycle.id.clone() }).await?.into_inner();
        let list = ms(started);
        anyhow::ensure!(listed.evaluations.len() == n, "{} evaluations, not {n}", listed.evaluations.len());
        let started = Instant::now();
        perf.get_cycle_report(pb::GetCycleReportRequest { id: cycle.id.clone() }).await?;
        let report = ms(started);
        let started = Instant::now();
        let export = perf.export_cycle(pb::ExportCycleRequest { id: cycle.id.clone() }).await?.into_inner();
        let xlsx = ms(started);
        println!("| {n} | {open} | {close} | {floor} | {list} | {report} | {xlsx} ({}) |", export.content.len() / 1024);
        s.clock.set(MARCH_2);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "50,200,500".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    for (backend, name) in [(Backend::Embedded, "SQLite + memory"), (Backend::Production, "PostgreSQL + Redis")] {
        println!("\n{name}:\n");
        run(backend, &sizes).await?;
    }
    Ok(())
}
