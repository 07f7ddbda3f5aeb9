//! SLA administration through a real client, on both backends: calendars
//! (working hours, holidays, several calendars), provisional filing
//! deadlines and their re-capping, due-date previews, recomputing running
//! targets, escalation rules, categories with labels, phone rings and
//! phone contacts logged by hand, and the audit trail of it all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestApp, cst, ms_of, violations};
use kefu_kit::auth::Role;
use kefu_proto::{common::v1::Channel, customers::v1 as cpb, tickets::v1 as pb};
use tonic::Code;

on_both_backends!(
    working_hours_set_through_the_api_move_new_and_running_due_times_and_the_dashboard_agrees,
    next_months_filing_request_is_accepted_with_a_provisional_cap_and_recapped_once_the_official_date_is_loaded,
    the_preview_matches_a_created_tickets_due_time_and_explains_it,
    a_six_ring_call_breaches_the_default_answer_target,
    agents_log_phone_contacts_link_calls_to_tickets_and_list_them,
    several_calendars_policies_refer_to_one_and_holidays_are_corrected_or_removed,
    escalation_rules_are_edited_through_the_api_and_take_effect,
    categories_carry_chinese_labels_and_are_checked_against_the_stored_list,
    every_configuration_change_is_audited_with_who_and_why,
);

const WAIT: Duration = Duration::from_secs(15);

fn weekdays(intervals: &[(&str, &str)]) -> Vec<pb::WorkingDay> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| pb::WorkingDay {
            weekday: (*d).into(),
            intervals: if matches!(*d, "sat" | "sun") {
                vec![]
            } else {
                intervals.iter().map(|(a, b)| pb::WorkingInterval { start: (*a).into(), end: (*b).into() }).collect()
            },
        })
        .collect()
}

async fn default_calendar(app: &TestApp) -> pb::BusinessCalendar {
    app.agent().get_calendar(pb::GetCalendarRequest::default()).await.unwrap().into_inner()
}

async fn update_calendar(app: &TestApp, cal: pb::BusinessCalendar, why: &str) -> pb::BusinessCalendar {
    let etag = cal.etag.clone();
    app.tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest { calendar: Some(cal), etag, reason: why.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Events of one target's metric and kind.
async fn events(app: &TestApp, record: &str, metric: &str, kind: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) FROM sla_events WHERE record_id = $1 AND metric = $2 AND kind = $3")
        .bind(record)
        .bind(metric)
        .bind(kind)
        .fetch_one(&app.raw)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn filing_request(app: &TestApp, customer: &str, period: &str) -> pb::Ticket {
    app.agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: Channel::Email as i32,
                subject: "增值税申报".into(),
                category: "tax_filing".into(),
                customer_id: customer.into(),
                filing_period: period.into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn working_hours_set_through_the_api_move_new_and_running_due_times_and_the_dashboard_agrees(app: TestApp) {
    let c = app.customer("工时测试", 31, cpb::ServiceTier::Standard).await;
    // Monday 2 March 2026, 09:00: first response in 4 business hours, lunch 12:00–13:00.
    let running = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    let before = app.target(&running.id, "first_response").await;
    assert_eq!(ms_of(&before.due_time), cst(2026, 3, 2, 14, 0));
    let within = |minutes: i32| {
        let app = &app;
        async move {
            let d = app
                .tickets_as(Role::Supervisor)
                .get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: minutes })
                .await
                .unwrap()
                .into_inner();
            d.by_queue.get("tax_policy").map_or(0, |q| q.at_risk)
        }
    };
    kefu_testkit::wait_for("the live view to hold the ticket", WAIT, || async {
        (within(310).await == 1).then_some(())
    })
    .await;

    // The firm's lunch now ends at 13:30.
    let mut cal = default_calendar(&app).await;
    let etag = cal.etag.clone();
    cal.weekly = weekdays(&[("09:00", "12:00"), ("13:30", "18:00")]);
    let mut bad = cal.clone();
    bad.weekly[0].weekday = "funday".into();
    bad.weekly[1].intervals[0].start = "25:00".into();
    let err = app
        .tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest { calendar: Some(bad), etag: etag.clone(), reason: "x".into() })
        .await
        .unwrap_err();
    let fields = violations(&err);
    assert!(fields.contains(&"calendar.weekly[0].weekday".to_string()), "{fields:?}");
    assert!(fields.contains(&"calendar.weekly[1].intervals[0].start".to_string()), "{fields:?}");
    let mut overlapping = cal.clone();
    overlapping.weekly[0].intervals[1].start = "11:00".into();
    let err = app
        .tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest {
            calendar: Some(overlapping),
            etag: etag.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["calendar.weekly[0].intervals".to_string()], "{}", err.message());
    // A whole replacement names the version it replaces.
    let blind = app
        .tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest {
            calendar: Some(cal.clone()),
            etag: String::new(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&blind), vec!["etag".to_string()]);
    assert_eq!(
        app.tickets_as(Role::Supervisor)
            .update_calendar(pb::UpdateCalendarRequest {
                calendar: Some(cal.clone()),
                etag: etag.clone(),
                reason: "x".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let no_reason = app
        .tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest {
            calendar: Some(cal.clone()),
            etag: etag.clone(),
            reason: "".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&no_reason), vec!["reason".to_string()]);
    let unchanged = default_calendar(&app).await;
    assert_eq!(unchanged.etag, etag, "refused changes change nothing");
    assert_eq!(ms_of(&app.target(&running.id, "first_response").await.due_time), cst(2026, 3, 2, 14, 0));

    let updated = update_calendar(&app, cal.clone(), "lunch break ends at 13:30 from March").await;
    // The running ticket is recomputed: 3 h before lunch, 1 h from 13:30.
    let moved = kefu_testkit::wait_for("the running target to be recomputed", WAIT, || async {
        let t = app.target(&running.id, "first_response").await;
        (ms_of(&t.due_time) != cst(2026, 3, 2, 14, 0)).then_some(t)
    })
    .await;
    assert_eq!(ms_of(&moved.due_time), cst(2026, 3, 2, 14, 30));
    assert_eq!(moved.state, pb::SlaState::Active as i32);
    // The live view agrees: due at 14:30 is outside 5 h 20 min from 09:00 and inside 5 h 40 min.
    kefu_testkit::wait_for("the dashboard to follow", WAIT, || async {
        (within(320).await == 0 && within(340).await >= 1).then_some(())
    })
    .await;
    assert_ne!(updated.etag, etag);
    assert_eq!(updated.weekly[0].intervals[1].start, "13:30");
    let stale = app
        .tickets_as(Role::Admin)
        .update_calendar(pb::UpdateCalendarRequest { calendar: Some(cal), etag, reason: "again".into() })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // A new ticket at 11:30: half an hour before lunch, then 13:30–17:00.
    app.clock.set(cst(2026, 3, 2, 11, 30));
    let fresh = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    assert_eq!(ms_of(&app.target(&fresh.id, "first_response").await.due_time), cst(2026, 3, 2, 17, 0));

    // No event was emitted by recomputing.
    assert_eq!(app.events(&running.id, "warning").await + app.events(&running.id, "breached").await, 0);
}

async fn next_months_filing_request_is_accepted_with_a_provisional_cap_and_recapped_once_the_official_date_is_loaded(
    app: TestApp,
) {
    app.clock.set(cst(2026, 12, 1, 9, 0));
    let c = app.customer("征期测试", 32, cpb::ServiceTier::Standard).await;
    // The calendar shows which coming deadlines are official and which provisional.
    let cal = default_calendar(&app).await;
    assert_eq!(cal.holiday_years, vec![2025, 2026]);
    assert_eq!(cal.filing_outlook[0], pb::FilingDeadline { date: "2026-12-15".into(), provisional: false });
    assert_eq!(cal.filing_outlook[1], pb::FilingDeadline { date: "2027-01-15".into(), provisional: true });

    let early = filing_request(&app, &c, "2026-12").await;
    assert_eq!(early.filing_deadline, "2027-01-15");
    assert!(early.filing_deadline_provisional);
    let res = app.target(&early.id, "resolution").await;
    assert!(res.cap_provisional);
    assert_eq!(ms_of(&res.cap_time), cst(2027, 1, 14, 18, 0), "one business day before the 15th's close");

    // Two days before the provisional deadline, the cap decides the due time.
    app.clock.set(cst(2027, 1, 13, 10, 0));
    let late = filing_request(&app, &c, "2026-12").await;
    let res = app.target(&late.id, "resolution").await;
    assert_eq!(ms_of(&res.due_time), cst(2027, 1, 14, 18, 0));
    assert!(res.cap_provisional);
    // Its warning fires under the provisional cap.
    app.advance_to(cst(2027, 1, 14, 15, 0)).await;
    assert_eq!(events(&app, &late.id, "resolution", "warning").await, 1);

    // The authority publishes January 2027: the 20th (after the New Year holiday).
    let etag = default_calendar(&app).await.etag;
    app.tickets_as(Role::Admin)
        .extend_calendar(pb::ExtendCalendarRequest {
            holidays: vec![pb::Holiday {
                name: "元旦".into(),
                first_day: "2027-01-01".into(),
                last_day: "2027-01-03".into(),
            }],
            filing_deadlines: vec![pb::FilingDeadline { date: "2027-01-20".into(), provisional: false }],
            etag,
            reason: "2027年1月征期已公布".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // An official deadline on a rest day is a typing error, refused.
    let etag = default_calendar(&app).await.etag;
    let saturday = app
        .tickets_as(Role::Admin)
        .extend_calendar(pb::ExtendCalendarRequest {
            filing_deadlines: vec![pb::FilingDeadline { date: "2027-02-20".into(), provisional: false }],
            etag,
            reason: "typo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&saturday), vec!["filing_deadlines[0].date".to_string()], "the request's own item");
    assert!(saturday.message().contains("2027-02-20"), "{}", saturday.message());
    // A make-up day must be a rest day (a Wednesday already works).
    let wednesday = app
        .tickets_as(Role::Admin)
        .extend_calendar(pb::ExtendCalendarRequest {
            makeup_days: vec![pb::MakeupDay { date: "2027-02-03".into(), works_as: "mon".into(), name: "x".into() }],
            reason: "typo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&wednesday), vec!["makeup_days[0].date".to_string()]);
    let recapped = kefu_testkit::wait_for("the running target to be re-capped", WAIT, || async {
        let t = app.target(&late.id, "resolution").await;
        (!t.cap_provisional).then_some(t)
    })
    .await;
    assert_eq!(ms_of(&recapped.cap_time), cst(2027, 1, 19, 18, 0));
    // Two business days from 13 Jan 10:00 now come first: 15 Jan 10:00.
    assert_eq!(ms_of(&recapped.due_time), cst(2027, 1, 15, 10, 0));
    assert_eq!(recapped.state, pb::SlaState::Warning as i32, "the warning already given stays given");
    let ticket = app.agent().get_ticket(pb::GetTicketRequest { id: late.id.clone() }).await.unwrap().into_inner();
    assert_eq!(ticket.filing_deadline, "2027-01-20");
    assert!(!ticket.filing_deadline_provisional);
    let outlook = default_calendar(&app).await.filing_outlook;
    assert!(outlook.contains(&pb::FilingDeadline { date: "2027-01-20".into(), provisional: false }), "{outlook:?}");

    // Each event once: no second warning; the breach at the new due time, once.
    app.advance_to(cst(2027, 1, 15, 10, 1)).await;
    app.advance_to(cst(2027, 1, 15, 10, 2)).await;
    assert_eq!(events(&app, &late.id, "resolution", "warning").await, 1);
    assert_eq!(events(&app, &late.id, "resolution", "breached").await, 1);
    // A period that is not one is refused by name.
    let err = app
        .agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: Channel::Email as i32,
                subject: "x".into(),
                category: "tax_filing".into(),
                customer_id: c.clone(),
                filing_period: "2027-13".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["ticket.filing_period".to_string()]);
}

async fn the_preview_matches_a_created_tickets_due_time_and_explains_it(app: TestApp) {
    let c = app.customer("预览测试", 33, cpb::ServiceTier::Vip).await;
    app.clock.set(cst(2026, 9, 30, 17, 0));
    let t = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    let res = app.target(&t.id, "resolution").await;
    let preview = app
        .agent()
        .preview_due_date(pb::PreviewDueDateRequest {
            start_time: Some(prost_types::Timestamp { seconds: cst(2026, 9, 30, 17, 0) / 1000, nanos: 0 }),
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Email as i32,
            category: "tax_policy".into(),
            tier: "vip".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ms_of(&preview.due_time), ms_of(&res.due_time));
    assert_eq!(ms_of(&preview.warning_time), ms_of(&res.warning_time));
    assert_eq!(preview.policy_id, res.policy_id);
    assert_eq!(preview.metric, "resolution");
    assert!(preview.crossed.iter().any(|d| d.date == "2026-10-01" && d.kind == "holiday" && d.name == "国庆节"));
    assert!(preview.explanation.contains("国庆节"), "{}", preview.explanation);
    assert!(preview.explanation.contains("北京时间"), "{}", preview.explanation);
    assert!(preview.explanation.contains("（周三）"), "the weekday is said: {}", preview.explanation);

    // A plain duration: 18 business hours crossing National Day and its make-up Saturday.
    let p = app
        .agent()
        .preview_due_date(pb::PreviewDueDateRequest { duration_seconds: 18 * 3600, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ms_of(&p.due_time), cst(2026, 10, 10, 10, 0));
    assert!(p.crossed.iter().any(|d| d.date == "2026-10-10" && d.kind == "makeup_day"));
    assert!(p.explanation.contains("调休上班"), "{}", p.explanation);

    // A filing request near its deadline: the cap decides, and the answer says so.
    let f = app
        .agent()
        .preview_due_date(pb::PreviewDueDateRequest {
            start_time: Some(prost_types::Timestamp { seconds: cst(2026, 10, 22, 14, 0) / 1000, nanos: 0 }),
            kind: pb::TicketKind::BusinessRequest as i32,
            category: "tax_filing".into(),
            filing_period: "2026-09".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(f.capped_by_filing);
    assert_eq!(f.filing_deadline, "2026-10-26");
    assert!(!f.filing_deadline_provisional);
    assert_eq!(ms_of(&f.due_time), cst(2026, 10, 23, 18, 0));
    assert!(f.explanation.contains("申报截止日为 2026-10-26"), "{}", f.explanation);
    assert!(f.explanation.contains("10月23日（周五）18:00 前"), "{}", f.explanation);

    let bad = app
        .agent()
        .preview_due_date(pb::PreviewDueDateRequest {
            metric: "lunch".into(),
            filing_period: "2026-13".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violations(&bad);
    assert!(fields.contains(&"metric".to_string()) && fields.contains(&"filing_period".to_string()), "{fields:?}");
    let bad = app
        .agent()
        .preview_due_date(pb::PreviewDueDateRequest {
            duration_seconds: 60,
            calendar_id: "mars".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["calendar_id".to_string()]);
}

async fn a_six_ring_call_breaches_the_default_answer_target(app: TestApp) {
    let phone = app
        .agent()
        .list_sla_policies(pb::ListSlaPoliciesRequest {})
        .await
        .unwrap()
        .into_inner()
        .policies
        .into_iter()
        .find(|p| p.id == "default-phone")
        .unwrap();
    assert_eq!((phone.metrics[0].rings, phone.metrics[0].seconds_per_ring), (3, 5), "three rings by default");
    let mut svc = app.tickets_as(Role::Service);
    let at = |secs: i64| Some(prost_types::Timestamp { seconds: cst(2026, 3, 2, 10, 0) / 1000 + secs, nanos: 0 });
    let ev = |id: &str, kind: pb::CallEventKind, t: i64, rings: i32| pb::RecordCallEventRequest {
        call_id: id.into(),
        kind: kind as i32,
        time: at(t),
        caller_number: "13800138001".into(),
        agent: if kind == pb::CallEventKind::Answered { "agent-7".into() } else { String::new() },
        ring_count: rings,
        queue: "hotline".into(),
    };
    app.clock.set(cst(2026, 3, 2, 10, 0));
    svc.record_call_event(ev("six", pb::CallEventKind::Offered, 0, 0)).await.unwrap();
    let six = svc.record_call_event(ev("six", pb::CallEventKind::Answered, 14, 6)).await.unwrap().into_inner();
    assert_eq!(six.answer_sla, pb::SlaState::FulfilledLate as i32, "six rings in 14 s miss three rings");
    assert_eq!(app.events("call:six", "breached").await, 1);
    svc.record_call_event(ev("two", pb::CallEventKind::Offered, 0, 0)).await.unwrap();
    let two = svc.record_call_event(ev("two", pb::CallEventKind::Answered, 9, 2)).await.unwrap().into_inner();
    assert_eq!(two.answer_sla, pb::SlaState::Fulfilled as i32);
    assert_eq!(app.events("call:two", "breached").await, 0);

    // In seconds instead (rings 0): six rings in 14 s meet a 20-second target.
    let mut seconds = phone.clone();
    seconds.metrics[0] = pb::SlaMetricRule {
        metric: "answer".into(),
        duration_seconds: 20,
        clock: "calendar".into(),
        ..Default::default()
    };
    app.tickets_as(Role::Supervisor)
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(seconds), reason: "measure seconds".into() })
        .await
        .unwrap();
    svc.record_call_event(ev("secs", pb::CallEventKind::Offered, 0, 0)).await.unwrap();
    let secs = svc.record_call_event(ev("secs", pb::CallEventKind::Answered, 14, 6)).await.unwrap().into_inner();
    assert_eq!(secs.answer_sla, pb::SlaState::Fulfilled as i32);
    // Rings on another metric, or out of range, are refused by name.
    let mut bad = phone.clone();
    bad.metrics[0].rings = 40;
    let err = app
        .tickets_as(Role::Supervisor)
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(bad), reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["policy.metrics[0].rings".to_string()]);
}

async fn agents_log_phone_contacts_link_calls_to_tickets_and_list_them(app: TestApp) {
    let c = app.customer("电话记录", 34, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, Channel::Phone, pb::TicketKind::Consultation, "tax_policy").await;
    let mut agent = app.tickets_with_token(Some(&app.token_for("agent-9", Role::Agent)));
    let log = pb::LogPhoneContactRequest {
        direction: pb::CallDirection::Outbound as i32,
        caller_number: "13900139000".into(),
        talk_seconds: 240,
        ticket_id: t.number.clone(),
        note: "回电说明申报材料".into(),
        request_id: "log-1".into(),
        ..Default::default()
    };
    let first = agent.log_phone_contact(log.clone()).await.unwrap().into_inner();
    assert_eq!(first.source, "manual");
    assert_eq!(first.logged_by, "agent-9");
    assert_eq!(first.agent, "agent-9");
    assert_eq!(first.ticket_id, t.id);
    assert_eq!(first.direction, pb::CallDirection::Outbound as i32);
    let again = agent.log_phone_contact(log.clone()).await.unwrap().into_inner();
    assert_eq!(again.call_id, first.call_id, "a retry returns the first contact");
    let timeline =
        agent.list_timeline(pb::ListTimelineRequest { ticket_id: t.id.clone() }).await.unwrap().into_inner().entries;
    assert_eq!(timeline.iter().filter(|e| e.kind == "phone_contact").count(), 1);

    // A telephony call, linked afterwards.
    let mut svc = app.tickets_as(Role::Service);
    svc.record_call_event(pb::RecordCallEventRequest {
        call_id: "tel-1".into(),
        kind: pb::CallEventKind::Offered as i32,
        caller_number: "13800138002".into(),
        queue: "hotline".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let linked = agent
        .link_call(pb::LinkCallRequest { call_id: "tel-1".into(), ticket_id: t.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((linked.ticket_id.as_str(), linked.source.as_str()), (t.id.as_str(), "telephony"));
    assert_eq!(linked.answer_sla, pb::SlaState::Active as i32);

    let by_ticket = agent
        .list_calls(pb::ListCallsRequest { ticket_id: t.number.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_ticket.calls.len(), 2);
    // Agents see callers' numbers masked, as in the customers service; supervisors in full.
    assert!(by_ticket.calls.iter().any(|c| c.caller_number == "139****9000"), "{:?}", by_ticket.calls);
    let full = app
        .tickets_as(Role::Supervisor)
        .list_calls(pb::ListCallsRequest { ticket_id: t.number.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(full.calls.iter().any(|c| c.caller_number == "13900139000"));
    let page1 =
        agent.list_calls(pb::ListCallsRequest { page_size: 1, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(page1.calls.len(), 1);
    let page2 = agent
        .list_calls(pb::ListCallsRequest { page_size: 1, page_token: page1.next_page_token, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.calls.len(), 1);
    assert_ne!(page1.calls[0].call_id, page2.calls[0].call_id);
    let mine = agent
        .list_calls(pb::ListCallsRequest { agent: "agent-9".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.calls.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(), vec![first.call_id.as_str()]);

    // Bad input is named and changes nothing.
    let bad = agent
        .log_phone_contact(pb::LogPhoneContactRequest {
            talk_seconds: -1,
            ticket_id: "KF-999999".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violations(&bad);
    assert!(
        fields.contains(&"caller_number".to_string()) && fields.contains(&"talk_seconds".to_string()),
        "{fields:?}"
    );
    let unknown = agent
        .log_phone_contact(pb::LogPhoneContactRequest {
            caller_number: "13900139000".into(),
            ticket_id: "KF-999999".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&unknown), vec!["ticket_id".to_string()]);
    let not_a_number = agent
        .log_phone_contact(pb::LogPhoneContactRequest { caller_number: "abc".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violations(&not_a_number), vec!["caller_number".to_string()]);
    // An agent logs their own calls, not a colleague's.
    let as_other = agent
        .log_phone_contact(pb::LogPhoneContactRequest {
            caller_number: "13900139000".into(),
            agent: "agent-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(as_other.code(), Code::PermissionDenied);
    let all = agent.list_calls(pb::ListCallsRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.calls.len(), 2);
    assert_eq!(
        agent
            .link_call(pb::LinkCallRequest { call_id: "nope".into(), ticket_id: t.id.clone() })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // A contact logged by hand is not an answered telephony call in the statistics.
    let stats = app
        .tickets_as(Role::Hr)
        .get_agent_stats(pb::GetAgentStatsRequest {
            agent: "agent-9".into(),
            from_date: "2026-03-01".into(),
            to_date: "2026-03-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.calls_answered, 0);
}

async fn several_calendars_policies_refer_to_one_and_holidays_are_corrected_or_removed(app: TestApp) {
    let mut admin = app.tickets_as(Role::Admin);
    let shenzhen = pb::BusinessCalendar {
        id: "shenzhen".into(),
        name: "深圳分公司".into(),
        time_zone: "Asia/Shanghai".into(),
        weekly: weekdays(&[("08:30", "12:00"), ("13:30", "17:30")]),
        holidays: vec![pb::Holiday {
            name: "公司年会".into(),
            first_day: "2026-03-03".into(),
            last_day: "2026-03-03".into(),
        }],
        ..Default::default()
    };
    let created = admin
        .create_calendar(pb::CreateCalendarRequest {
            calendar: Some(shenzhen.clone()), reason: "深圳办公室".into()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!created.is_default);
    let retried = admin
        .create_calendar(pb::CreateCalendarRequest {
            calendar: Some(shenzhen.clone()), reason: "深圳办公室".into()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.etag, created.etag, "the same create again returns the calendar");
    let mut other = shenzhen.clone();
    other.name = "另一个".into();
    assert_eq!(
        admin
            .create_calendar(pb::CreateCalendarRequest { calendar: Some(other), reason: "x".into() })
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let listed = app.agent().list_calendars(pb::ListCalendarsRequest {}).await.unwrap().into_inner().calendars;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|c| c.is_default).count(), 1);

    // Chat tickets count in Shenzhen's hours.
    let mut sup = app.tickets_as(Role::Supervisor);
    let policy = pb::SlaPolicy {
        id: "sz-chat".into(),
        name: "深圳在线咨询".into(),
        position: 1,
        channels: vec!["online_chat".into()],
        calendar_id: "shenzhen".into(),
        metrics: vec![pb::SlaMetricRule {
            metric: "resolution".into(),
            duration_seconds: 4 * 3600,
            clock: "business".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut missing = policy.clone();
    missing.calendar_id = "beijing".into();
    let err = sup
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(missing), reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["policy.calendar_id".to_string()]);
    sup.upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(policy), reason: "深圳".into() }).await.unwrap();
    // Monday 2 March 11:00: 1 h before lunch, 3 h from 13:30 → 16:30; Tuesday would be the holiday.
    app.clock.set(cst(2026, 3, 2, 11, 0));
    let c = app.customer("深圳客户", 35, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    let res = app.target(&t.id, "resolution").await;
    assert_eq!(res.calendar_id, "shenzhen");
    assert_eq!(ms_of(&res.due_time), cst(2026, 3, 2, 16, 30));
    app.clock.set(cst(2026, 3, 2, 17, 0));
    let t2 = app.ticket(&c, Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    // 30 min Monday; Tuesday is the company holiday; 3.5 h Wednesday from 08:30.
    assert_eq!(ms_of(&app.target(&t2.id, "resolution").await.due_time), cst(2026, 3, 4, 12, 0));

    // The holiday is cancelled (removed): the running target moves back to Tuesday.
    let mut cal =
        app.agent().get_calendar(pb::GetCalendarRequest { id: "shenzhen".into() }).await.unwrap().into_inner();
    cal.holidays.clear();
    update_calendar(&app, cal, "年会取消").await;
    let moved = kefu_testkit::wait_for("the target to move", WAIT, || async {
        let r = app.target(&t2.id, "resolution").await;
        (ms_of(&r.due_time) != cst(2026, 3, 4, 12, 0)).then_some(r)
    })
    .await;
    assert_eq!(ms_of(&moved.due_time), cst(2026, 3, 3, 12, 0));

    // A calendar in use, or the default, cannot be deleted.
    let cal = app.agent().get_calendar(pb::GetCalendarRequest { id: "shenzhen".into() }).await.unwrap().into_inner();
    let err = admin
        .delete_calendar(pb::DeleteCalendarRequest {
            id: "shenzhen".into(),
            etag: cal.etag.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("sz-chat"), "{}", err.message());
    let default = default_calendar(&app).await;
    assert_eq!(
        admin
            .delete_calendar(pb::DeleteCalendarRequest {
                id: default.id.clone(),
                etag: default.etag.clone(),
                reason: "x".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    // Shenzhen becomes the default; the old default can then go once no policy uses it.
    let mut sz = cal.clone();
    sz.is_default = true;
    update_calendar(&app, sz, "总部迁往深圳").await;
    let now_default = default_calendar(&app).await;
    assert_eq!(now_default.id, "shenzhen");
    let old = app.agent().get_calendar(pb::GetCalendarRequest { id: default.id.clone() }).await.unwrap().into_inner();
    assert!(!old.is_default);
    admin
        .delete_calendar(pb::DeleteCalendarRequest {
            id: old.id.clone(),
            etag: old.etag.clone(),
            reason: "不再使用".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        app.agent().get_calendar(pb::GetCalendarRequest { id: old.id }).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.agent().get_calendar(pb::GetCalendarRequest { id: "Not An Id".into() }).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

async fn escalation_rules_are_edited_through_the_api_and_take_effect(app: TestApp) {
    let rules = app.agent().get_escalation_rules(pb::GetEscalationRulesRequest {}).await.unwrap().into_inner();
    assert_eq!((rules.warning_notify.as_str(), rules.breach_notify.as_str()), ("assignee", "supervisor"));
    let mut sup = app.tickets_as(Role::Admin);
    let mut bad = rules.clone();
    bad.warning_notify = "everyone".into();
    bad.second_level_after_seconds = 5;
    let err = sup
        .update_escalation_rules(pb::UpdateEscalationRulesRequest {
            rules: Some(bad),
            etag: rules.etag.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, vec!["rules.second_level_after_seconds".to_string(), "rules.warning_notify".to_string()]);
    assert_eq!(
        app.tickets_as(Role::Supervisor)
            .update_escalation_rules(pb::UpdateEscalationRulesRequest {
                rules: Some(rules.clone()),
                etag: String::new(),
                reason: "x".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut next = rules.clone();
    next.breach_notify = "manager".into();
    next.breach_raises_priority = false;
    let saved = sup
        .update_escalation_rules(pb::UpdateEscalationRulesRequest {
            rules: Some(next.clone()),
            etag: rules.etag.clone(),
            reason: "违约直接通知经理".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(saved.etag, rules.etag);
    assert_eq!(
        sup.update_escalation_rules(pb::UpdateEscalationRulesRequest {
            rules: Some(next),
            etag: rules.etag,
            reason: "again".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::Aborted
    );
    // A breach now tells the manager and leaves the priority alone.
    let c = app.customer("升级测试", 36, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    app.advance_to(cst(2026, 3, 2, 13, 1)).await;
    app.advance_to(cst(2026, 3, 2, 14, 1)).await;
    assert_eq!(app.events(&t.id, "breached").await, 1);
    let timeline =
        app.agent().list_timeline(pb::ListTimelineRequest { ticket_id: t.id.clone() }).await.unwrap().into_inner();
    assert!(timeline.entries.iter().any(|e| e.body.contains("SLA 超时") && e.body.contains("通知 manager")));
    let after = app.agent().get_ticket(pb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(after.priority, t.priority, "breach_raises_priority is off");
}

async fn categories_carry_chinese_labels_and_are_checked_against_the_stored_list(app: TestApp) {
    let listed = app.agent().list_categories(pb::ListCategoriesRequest::default()).await.unwrap().into_inner();
    assert!(listed.categories.iter().any(|c| c.code == "tax_filing" && c.label == "纳税申报"));
    let c = app.customer("分类测试", 37, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "bookkeeping").await;
    assert_eq!(t.category_label, "代理记账");
    let mut sup = app.tickets_as(Role::Supervisor);
    let mut list: Vec<pb::Category> = listed.categories.iter().filter(|c| c.code != "bookkeeping").cloned().collect();
    list.push(pb::Category { code: "payroll".into(), label: "工资代发".into(), active: true });
    let mut twice = list.clone();
    twice.push(pb::Category { code: "tax_filing".into(), label: "申报".into(), active: true });
    twice.push(pb::Category { code: "annual".into(), label: "纳税申报".into(), active: true });
    let err = sup
        .set_categories(pb::SetCategoriesRequest { categories: twice, etag: listed.etag.clone(), reason: "x".into() })
        .await
        .unwrap_err();
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec![format!("categories[{}].code", list.len()), format!("categories[{}].label", list.len() + 1)]
    );
    let mut unlabeled = list.clone();
    unlabeled.push(pb::Category { code: "audit".into(), label: String::new(), active: true });
    let err = sup
        .set_categories(pb::SetCategoriesRequest {
            categories: unlabeled,
            etag: listed.etag.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec![format!("categories[{}].label", list.len())]);
    let saved = sup
        .set_categories(pb::SetCategoriesRequest {
            categories: list.clone(),
            etag: listed.etag.clone(),
            reason: "代账业务并入会计部".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(saved.categories.iter().any(|c| c.code == "payroll" && c.active));
    assert!(!saved.categories.iter().any(|c| c.code == "bookkeeping"));
    assert_eq!(
        sup.set_categories(pb::SetCategoriesRequest { categories: list, etag: listed.etag, reason: "again".into() })
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    // At once, with no reload: the new code is accepted, the retired one refused.
    let payroll = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "payroll").await;
    assert_eq!(payroll.category_label, "工资代发");
    let mut retired = pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Email as i32,
            subject: "x".into(),
            category: "bookkeeping".into(),
            customer_id: c.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = app.agent().create_ticket(retired.clone()).await.unwrap_err();
    assert_eq!(violations(&err), vec!["ticket.category".to_string()]);
    retired.ticket.as_mut().unwrap().category = "other".into();
    app.agent().create_ticket(retired).await.unwrap();
    // Tickets filed under a retired code keep it and its label.
    let old = app.agent().get_ticket(pb::GetTicketRequest { id: t.id }).await.unwrap().into_inner();
    assert_eq!((old.category.as_str(), old.category_label.as_str()), ("bookkeeping", "代理记账"));
    let all =
        app.agent().list_categories(pb::ListCategoriesRequest { include_retired: true }).await.unwrap().into_inner();
    assert!(all.categories.iter().any(|c| c.code == "bookkeeping" && !c.active));
}

async fn every_configuration_change_is_audited_with_who_and_why(app: TestApp) {
    let admin_token = app.token_for("it-admin", Role::Admin);
    let mut admin = app.tickets_with_token(Some(&admin_token));
    let cal = default_calendar(&app).await;
    admin
        .extend_calendar(pb::ExtendCalendarRequest {
            calendar_id: cal.id.clone(),
            holidays: vec![pb::Holiday {
                name: "台风停工".into(),
                first_day: "2026-03-10".into(),
                last_day: String::new(),
            }],
            etag: cal.etag,
            reason: "台风红色预警".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let changes = app
        .tickets_as(Role::Auditor)
        .list_config_changes(pb::ListConfigChangesRequest { subject: cal.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let last = changes.last().unwrap();
    assert_eq!(last.action, "sla.calendar.extend");
    assert_eq!((last.actor.as_str(), last.actor_role.as_str()), ("it-admin", "admin"));
    assert_eq!(last.reason, "台风红色预警");
    assert!(last.detail.contains("holidays +1"), "{}", last.detail);
    assert_eq!(
        app.agent().list_config_changes(pb::ListConfigChangesRequest::default()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // The trail's chain holds (signed with the service's audit key).
    let mut conn = app.tickets_pool.acquire().await.unwrap();
    let verdict = kefu_kit::audit::verify(&mut conn, &app.tickets.engine.audit_keys, None).await.unwrap();
    assert!(verdict.problem.is_none(), "{verdict:?}");
    assert!(verdict.entries_checked >= 1);
}
