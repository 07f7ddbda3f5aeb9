//! A source service down at cycle close, on SQLite with memory and on
//! PostgreSQL with Redis: the connection to tickets is cut, the close fails
//! UNAVAILABLE naming tickets with nothing written (the cycle open, no
//! snapshot, no history), and the same close succeeds once tickets answers
//! again. Bad schemes, cycles and steps out of order are refused and change
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::performance::v1::{self as pb, Curve, EvaluationState as S, IndicatorGroup as G, Source};
use kefu_testkit::{Backend, Suite, SuiteOptions, free_port, violations};
use tonic::Code;

/// Where the performance service finds tickets: nothing listens there
/// (connections are refused, as to a service that is down) until the test
/// starts a relay to the suite.
struct Relay {
    port: u16,
    target: String,
}

impl Relay {
    async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let target = self.target.trim_start_matches("http://").to_owned();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
}

async fn spawn(backend: Backend) -> Option<(Suite, Relay)> {
    let port = free_port();
    let opts = SuiteOptions {
        embedded: Some(Box::new(move |e| {
            let mut o = e.get::<kefu_performance::Overrides>().unwrap_or_default();
            o.tickets_addr = Some(format!("http://127.0.0.1:{port}"));
            e.overrides.insert(o);
        })),
        ..Default::default()
    };
    let s = Suite::spawn_with(backend, opts).await?;
    let target = s.addr.clone();
    Some((s, Relay { port, target }))
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let (s, r) = super::spawn(kefu_testkit::Backend::Embedded).await.expect("embedded");
                super::$name(s, r).await;
            })*
        }
        mod production {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                match super::spawn(kefu_testkit::Backend::Production).await {
                    Some((s, r)) => super::$name(s, r).await,
                    None => assert!(std::env::var("CI").is_err(), "CI runs the production backend"),
                }
            })*
        }
    };
}

both!(
    a_close_with_tickets_down_writes_nothing_and_succeeds_when_retried,
    bad_schemes_cycles_and_steps_are_refused_by_name_and_change_nothing,
);

fn scheme(weights: (i32, i32)) -> pb::DefineSchemeRequest {
    let ind = |code: &str, group: G, source: Source, curve: Curve, range: (f64, f64)| pb::Indicator {
        code: code.into(),
        name: code.into(),
        group: group as i32,
        source: source as i32,
        curve: curve as i32,
        floor: range.0,
        target: range.1,
        weight: 100,
        ..Default::default()
    };
    pb::DefineSchemeRequest {
        scheme: Some(pb::Scheme {
            code: "cs_basic".into(),
            name: "客服基础方案".into(),
            position: "客服专员".into(),
            groups: vec![
                pb::GroupWeight { group: G::ServiceQuality as i32, weight: weights.0 },
                pb::GroupWeight { group: G::Attitude as i32, weight: weights.1 },
            ],
            indicators: vec![
                ind("resolution", G::ServiceQuality, Source::TicketsResolutionRate, Curve::Linear, (50.0, 100.0)),
                ind("rating", G::Attitude, Source::ManualSupervisorRating, Curve::Direct, (0.0, 0.0)),
            ],
            ..Default::default()
        }),
    }
}

async fn team(s: &Suite) {
    use kefu_proto::staff::v1 as spb;
    let mut hr = s.staff_as(Role::Hr);
    hr.create_team(spb::CreateTeamRequest {
        team: Some(spb::Team {
            code: "north".into(),
            name: "华北组".into(),
            kind: spb::TeamKind::Team as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    for (id, lead) in [("agent-1", false), ("agent-2", false), ("supervisor-1", true)] {
        hr.set_membership(spb::SetMembershipRequest { team: "north".into(), staff_id: id.into(), member: true, lead })
            .await
            .unwrap();
    }
}

fn cycle(period: &str) -> pb::OpenCycleRequest {
    pb::OpenCycleRequest {
        cycle: Some(pb::Cycle {
            kind: pb::PeriodKind::Month as i32,
            period: period.into(),
            team: "north".into(),
            grades: vec![
                pb::GradeBand { grade: "A".into(), min_score: 90.0, coefficient: 150, ..Default::default() },
                pb::GradeBand { grade: "B".into(), min_score: 0.0, coefficient: 100, ..Default::default() },
            ],
            bonus_base_fen: 500_000,
            ..Default::default()
        }),
    }
}

async fn a_close_with_tickets_down_writes_nothing_and_succeeds_when_retried(s: Suite, relay: Relay) {
    team(&s).await;
    let mut hr = s.performance_as(Role::Hr);
    hr.define_scheme(scheme((60, 40))).await.unwrap();
    // January 2026 ended before the suite's clock (2 March 2026).
    let c = hr.open_cycle(cycle("2026-01")).await.unwrap().into_inner();
    assert_eq!(c.evaluations, 2, "the team's members who are not its lead");

    let down = hr.close_cycle(pb::CloseCycleRequest { id: c.id.clone() }).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert!(down.message().contains("tickets"), "the close names the source: {}", down.message());
    let same = hr.get_cycle(pb::GetCycleRequest { id: c.id.clone() }).await.unwrap().into_inner();
    assert_eq!((same.state, same.close_time), (pb::CycleState::Open as i32, None), "nothing half-written");
    let evals = hr
        .list_evaluations(pb::ListEvaluationsRequest { cycle_id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    assert!(evals.iter().all(|e| e.state == S::Pending as i32 && e.history.len() == 1), "{evals:?}");

    relay.up().await;
    let mut closed = None;
    for _ in 0..50 {
        match hr.close_cycle(pb::CloseCycleRequest { id: c.id.clone() }).await {
            Ok(r) => {
                closed = Some(r.into_inner());
                break;
            }
            Err(e) if e.code() == Code::Unavailable => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("{e:?}"),
        }
    }
    let closed = closed.expect("the close succeeds once tickets answers");
    assert_eq!(closed.state, pb::CycleState::Review as i32);
    let evals = hr
        .list_evaluations(pb::ListEvaluationsRequest { cycle_id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    assert!(evals.iter().all(|e| e.state == S::SelfAssessment as i32), "{evals:?}");
    assert!(evals.iter().all(|e| e.history.iter().filter(|h| h.action == "close").count() == 1));
}

async fn bad_schemes_cycles_and_steps_are_refused_by_name_and_change_nothing(s: Suite, relay: Relay) {
    relay.up().await;
    team(&s).await;
    let mut hr = s.performance_as(Role::Hr);
    // Weights: groups must sum to 100; each field named.
    let e = hr.define_scheme(scheme((60, 30))).await.unwrap_err();
    assert!(e.message().contains("sum to 90%"), "{}", e.message());
    let mut bad = scheme((60, 40));
    let x = bad.scheme.as_mut().unwrap();
    x.indicators[0].curve = Curve::Direct as i32;
    x.indicators[1].curve = Curve::Linear as i32;
    x.code = "Bad Code".into();
    let e = hr.define_scheme(bad).await.unwrap_err();
    let mut fields = violations(&e);
    fields.sort();
    assert_eq!(
        fields,
        vec!["scheme.code", "scheme.indicators[0].curve", "scheme.indicators[1].curve"],
        "{}",
        e.message()
    );
    assert!(hr.list_schemes(pb::ListSchemesRequest {}).await.unwrap().into_inner().schemes.is_empty());

    // A cycle: a period that is not one, grades out of order, a team with nobody.
    let mut c = cycle("2026-13");
    c.cycle.as_mut().unwrap().grades.reverse();
    let e = hr.open_cycle(c).await.unwrap_err();
    let mut fields = violations(&e);
    fields.sort();
    fields.dedup();
    assert_eq!(fields, vec!["cycle.grades[1].min_score", "cycle.period"], "{}", e.message());
    let e = hr.open_cycle(cycle("2026-01")).await.unwrap_err();
    assert!(e.message().contains("no scheme evaluates the position"), "{}", e.message());
    hr.define_scheme(scheme((60, 40))).await.unwrap();
    assert!(hr.list_cycles(pb::ListCyclesRequest::default()).await.unwrap().into_inner().cycles.is_empty());

    let mine = s.performance_for("agent-1", Role::Hr).open_cycle(cycle("2026-02")).await.unwrap_err();
    assert_eq!(mine.code(), Code::PermissionDenied, "HR does not open a cycle that evaluates themselves");
    let c = hr.open_cycle(cycle("2026-02")).await.unwrap().into_inner();
    // Nobody is evaluated twice for the same days: a quarter over February.
    let mut quarter = cycle("2026-Q1");
    quarter.cycle.as_mut().unwrap().kind = pb::PeriodKind::Quarter as i32;
    let twice = hr.open_cycle(quarter).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains("agent-1（north 2026-02）"), "{}", twice.message());
    let evals = hr
        .list_evaluations(pb::ListEvaluationsRequest { cycle_id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    let mine = evals.iter().find(|e| e.staff_id == "agent-1").unwrap();
    // Steps out of order: the cycle is open, calibration not begun.
    let agent = s.performance_for("agent-1", Role::Agent);
    let e = agent
        .clone()
        .submit_self_assessment(pb::SubmitSelfAssessmentRequest {
            evaluation_id: mine.id.clone(),
            comment: "x".into(),
            scores: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("the cycle is still open"), "{}", e.message());
    let e = hr.close_calibration(pb::CloseCalibrationRequest { id: c.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = hr.finalize_cycle(pb::FinalizeCycleRequest { id: c.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Not before the month ends (the suite's clock is 2 March 2026).
    let march = hr.open_cycle(cycle("2026-03")).await.unwrap().into_inner();
    let e = hr.close_cycle(pb::CloseCycleRequest { id: march.id }).await.unwrap_err();
    assert!(e.message().contains("runs until 2026-03-31"), "{}", e.message());
    // Someone else's evaluation is not found; a reviewer who is not theirs is refused.
    let other = evals.iter().find(|e| e.staff_id == "agent-2").unwrap();
    let e = agent.clone().get_evaluation(pb::GetEvaluationRequest { id: other.id.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let unchanged = hr
        .list_evaluations(pb::ListEvaluationsRequest { cycle_id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .evaluations;
    assert!(unchanged.iter().all(|e| e.state == S::Pending as i32 && e.history.len() == 1));
}
