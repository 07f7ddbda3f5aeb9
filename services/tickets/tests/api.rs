//! The tickets API and its SLAs through a real client: embedded (SQLite +
//! memory) and production (PostgreSQL + Redis) backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, cst, ms_of, violations};
use kefu_kit::auth::Role;
use kefu_proto::{common::v1::Channel, customers::v1 as cpb, tickets::v1 as pb};
use tonic::Code;

on_both_backends!(
    the_team_queue_filters_by_kind_channel_category_text_and_openness,
    ticket_numbers_continue_after_the_highest_given_when_the_store_is_prepared_again,
    erasure_reaches_tickets_and_leaves_nothing_in_the_database_files,
    tickets_on_every_channel_get_their_targets,
    warning_breach_escalation_and_late_fulfilment,
    pending_customer_pauses_resolution,
    business_time_honours_the_2026_spring_festival,
    a_tax_filing_request_is_due_before_its_deadline,
    email_creates_and_threads_tickets,
    lost_live_state_is_rebuilt_and_nothing_is_lost,
    targets_the_live_view_silently_lost_still_warn_and_breach_once_from_the_database,
    two_replicas_emit_each_breach_once,
    configuration_changed_through_one_replica_is_used_by_the_other,
    phone_calls_feed_the_answer_metric_and_stats,
    feedback_is_routed_answered_and_sent,
    business_requests_track_materials_and_steps,
    reopen_starts_a_new_cycle_and_closed_is_final,
    dashboard_and_lists_answer_sla_questions,
    policies_are_data_and_rematch_keeps_elapsed_time,
    watchers_receive_sla_events,
    roles_and_bad_input,
    concurrent_creates_with_one_request_id_make_one_ticket,
    a_request_id_from_before_the_kit_table_answers_with_its_ticket,
    timestamps_outside_1970_to_9999_are_refused,
    control_characters_and_unbounded_tags_are_refused,
    invalid_enums_list_the_valid_names,
    agent_statistics_count_on_the_service_clock,
);

/// No error message may carry the database's own words.
fn assert_no_database_text(s: &tonic::Status) {
    let m = s.message();
    assert!(
        !m.to_lowercase().contains("constraint") && !m.contains("UNIQUE") && !m.contains("duplicate key"),
        "database text reached the caller: {m}"
    );
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql).fetch_one(&app.raw).await.unwrap().get::<i64, _>(0)
}

/// An upgraded database keeps its numbering: on PostgreSQL the sequence is
/// created after the counter and after every number already given
/// (whichever is higher); on SQLite the counter goes on.
async fn ticket_numbers_continue_after_the_highest_given_when_the_store_is_prepared_again(app: TestApp) {
    let c = app.customer("編號延續", 7, cpb::ServiceTier::Standard).await;
    let first = app.ticket(&c, Channel::Phone, pb::TicketKind::Consultation, "tax_policy").await;
    assert_eq!(first.number, "KF-000001");
    // As before the sequence: the counter at 41, and a number above it given by hand.
    sqlx::query("UPDATE counters SET value = 41 WHERE name = 'ticket'").execute(&app.tickets_raw).await.unwrap();
    let production = app.backend == kefu_testkit::Backend::Production;
    if production {
        sqlx::query("UPDATE tickets SET number = 'KF-000057' WHERE id = $1")
            .bind(&first.id)
            .execute(&app.tickets_raw)
            .await
            .unwrap();
        sqlx::query("DROP SEQUENCE ticket_numbers").execute(&app.tickets_raw).await.unwrap();
    }
    kefu_tickets::store::prepare(&app.tickets_pool).await.unwrap();
    kefu_tickets::store::prepare(&app.tickets_pool).await.unwrap();
    let next = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    assert_eq!(next.number, if production { "KF-000058" } else { "KF-000042" });
}

async fn tickets_on_every_channel_get_their_targets(app: TestApp) {
    let c = app.customer("渠道測試", 1, cpb::ServiceTier::Standard).await;
    // Mon 09:00: chat and WeChat answer within 60 s; others within 4
    // business hours (09:00–12:00, 13:00–14:00).
    let (minute, four_hours) = (cst(2026, 3, 2, 9, 1), cst(2026, 3, 2, 14, 0));
    for (channel, due) in [
        (kefu_proto::common::v1::Channel::Phone, four_hours),
        (kefu_proto::common::v1::Channel::OnlineChat, minute),
        (kefu_proto::common::v1::Channel::Email, four_hours),
        (kefu_proto::common::v1::Channel::Wechat, minute),
        (kefu_proto::common::v1::Channel::InPerson, four_hours),
    ] {
        let t = app.ticket(&c, channel, pb::TicketKind::Consultation, "tax_policy").await;
        assert!(t.number.starts_with("KF-") && t.number.len() == 9, "{}", t.number);
        assert_eq!(t.status, pb::Status::New as i32);
        assert_eq!(t.customer_tier, "standard");
        assert_eq!(t.sla_state, pb::SlaState::Active as i32);
        let fr = app.target(&t.id, "first_response").await;
        assert_eq!(ms_of(&fr.due_time), due, "{channel:?}");
        let res = app.target(&t.id, "resolution").await;
        assert_eq!(res.clock, "business");
    }
    // Idempotent create and lookup by number.
    let req = pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: kefu_proto::common::v1::Channel::Email as i32,
            subject: "重複".into(),
            customer_id: c.clone(),
            ..Default::default()
        }),
        description: String::new(),
        request_id: "req-42".into(),
    };
    let a = app.agent().create_ticket(req.clone()).await.unwrap().into_inner();
    let b = app.agent().create_ticket(req).await.unwrap().into_inner();
    assert_eq!(a.id, b.id);
    let by_number = app.agent().get_ticket(pb::GetTicketRequest { id: a.number.clone() }).await.unwrap().into_inner();
    assert_eq!(by_number.id, a.id);
}

async fn warning_breach_escalation_and_late_fulfilment(app: TestApp) {
    let c = app.customer("升級測試", 2, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "bookkeeping").await;
    let mut agent = app.agent();
    agent
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: t.id.clone(),
            assignee: "agent-7".into(),
            queue: String::new(),
        })
        .await
        .unwrap();
    // Mon 09:00 + 4 business hours: due 14:00 (lunch excluded); warning at
    // 80% = 3h12m of business time = 13:12.
    let fr = app.target(&t.id, "first_response").await;
    assert_eq!(ms_of(&fr.due_time), cst(2026, 3, 2, 14, 0));
    assert_eq!(ms_of(&fr.warning_time), cst(2026, 3, 2, 13, 12));

    app.advance_to(cst(2026, 3, 2, 12, 30)).await;
    assert_eq!(app.target(&t.id, "first_response").await.state, pb::SlaState::Active as i32);
    app.advance_to(cst(2026, 3, 2, 13, 30)).await;
    assert_eq!(app.target(&t.id, "first_response").await.state, pb::SlaState::Warning as i32);
    app.advance_to(cst(2026, 3, 2, 14, 1)).await;
    let fr = app.target(&t.id, "first_response").await;
    assert_eq!(fr.state, pb::SlaState::Breached as i32);
    assert!(fr.remaining_ms < 0);
    assert_eq!(app.events(&t.id, "warning").await, 1);
    assert_eq!(app.events(&t.id, "breached").await, 1);
    // Breach raised the priority one level and notified the supervisor.
    let now = agent.get_ticket(pb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(now.priority, pb::Priority::High as i32);
    assert_eq!(now.sla_state, pb::SlaState::Breached as i32);
    let timeline =
        agent.list_timeline(pb::ListTimelineRequest { ticket_id: t.id.clone() }).await.unwrap().into_inner().entries;
    let notes: Vec<&str> = timeline.iter().filter(|e| e.kind == "notification").map(|e| e.body.as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("SLA 预警") && n.contains("agent-7")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("SLA 超时") && n.contains("主管")), "{notes:?}");
    // Second level two business hours after the breach: Mon 14:00 + 2h = 16:00.
    app.advance_to(cst(2026, 3, 2, 15, 59)).await;
    assert_eq!(app.events(&t.id, "escalated").await, 0);
    app.advance_to(cst(2026, 3, 2, 16, 1)).await;
    assert_eq!(app.events(&t.id, "escalated").await, 1);
    app.sweep().await;
    assert_eq!(app.events(&t.id, "escalated").await, 1, "once");
    // Sweeping again changes nothing.
    app.sweep().await;
    assert_eq!(app.events(&t.id, "breached").await, 1);
    // A public reply fulfils it, late; an internal note would not have.
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::InternalNote as i32,
            body: "查一下".into(),
        })
        .await
        .unwrap();
    assert_eq!(app.target(&t.id, "first_response").await.state, pb::SlaState::Breached as i32);
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: "您好".into(),
        })
        .await
        .unwrap();
    assert_eq!(app.target(&t.id, "first_response").await.state, pb::SlaState::FulfilledLate as i32);
}

async fn pending_customer_pauses_resolution(app: TestApp) {
    let c = app.customer("暫停測試", 3, cpb::ServiceTier::Standard).await;
    let t = app
        .ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::BusinessRequest, "tax_registration")
        .await;
    let mut agent = app.agent();
    // Resolution: 2 business days = 16h from Mon 09:00 → Tue 18:00.
    assert_eq!(ms_of(&app.target(&t.id, "resolution").await.due_time), cst(2026, 3, 3, 18, 0));
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: "請補充材料".into(),
        })
        .await
        .unwrap();
    app.advance_to(cst(2026, 3, 2, 10, 0)).await;
    agent
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::Status::PendingCustomer as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let paused = app.target(&t.id, "resolution").await;
    assert_eq!(paused.state, pb::SlaState::Paused as i32);
    assert!(paused.due_time.is_none());
    // A week passes waiting for materials: nothing breaches.
    app.advance_to(cst(2026, 3, 9, 10, 0)).await;
    assert_eq!(app.events(&t.id, "breached").await, 0);
    assert_eq!(app.target(&t.id, "resolution").await.state, pb::SlaState::Paused as i32);
    // The customer answers Monday 9 Mar 10:00: the clock resumes with 15h
    // left: 7h on Monday, 8h on Tuesday → Tue 10 Mar 18:00.
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::CustomerMessage as i32,
            body: "材料已上傳".into(),
        })
        .await
        .unwrap();
    let resumed = app.target(&t.id, "resolution").await;
    assert_eq!(resumed.state, pb::SlaState::Active as i32);
    assert_eq!(ms_of(&resumed.due_time), cst(2026, 3, 10, 18, 0));
    let now = agent.get_ticket(pb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!(now.status, pb::Status::Open as i32);
    // Pending internal does not pause (the firm holds the ball).
    agent
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::Status::PendingInternal as i32,
            reason: "稅務專家確認".into(),
            escalated_to: "tax-expert".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(app.target(&t.id, "resolution").await.state, pb::SlaState::Active as i32);
    agent
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::Status::Solved as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(app.target(&t.id, "resolution").await.state, pb::SlaState::Fulfilled as i32);
}

async fn business_time_honours_the_2026_spring_festival(app: TestApp) {
    // Friday 13 Feb 2026 17:00: 1h that day, make-up Saturday 14 Feb (8h),
    // 15–23 Feb off, then 7h on Tuesday 24 Feb → 17:00.
    app.clock.set(cst(2026, 2, 13, 17, 0));
    let c = app.customer("春節測試", 4, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    assert_eq!(ms_of(&app.target(&t.id, "resolution").await.due_time), cst(2026, 2, 24, 17, 0));
    // First response (4h): 1h Friday + 3h on the make-up Saturday → 12:00 Sat 14 Feb.
    assert_eq!(ms_of(&app.target(&t.id, "first_response").await.due_time), cst(2026, 2, 14, 12, 0));
    // Nothing breaches during the holiday.
    app.advance_to(cst(2026, 2, 20, 12, 0)).await;
    assert_eq!(app.target(&t.id, "resolution").await.state, pb::SlaState::Active as i32);
    app.advance_to(cst(2026, 2, 24, 17, 1)).await;
    assert_eq!(app.target(&t.id, "resolution").await.state, pb::SlaState::Breached as i32);
}

async fn a_tax_filing_request_is_due_before_its_deadline(app: TestApp) {
    // Thursday 22 Oct 2026 10:00. The policy alone would give Monday 26 Oct 10:00;
    // the October deadline is Monday 26 Oct, so with one business day of lead
    // the request is due Friday 23 Oct at close of business.
    app.clock.set(cst(2026, 10, 22, 10, 0));
    let c = app.customer("申報測試", 5, cpb::ServiceTier::Standard).await;
    let t = app
        .agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: kefu_proto::common::v1::Channel::Wechat as i32,
                subject: "9月增值稅申報".into(),
                category: "tax_filing".into(),
                customer_id: c,
                request_type: "monthly_tax_filing".into(),
                filing_period: "2026-09".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.filing_deadline, "2026-10-26");
    assert_eq!(t.priority, pb::Priority::High as i32, "the deadline is near: priority rises");
    let res = app.target(&t.id, "resolution").await;
    assert_eq!(ms_of(&res.due_time), cst(2026, 10, 23, 18, 0));
    assert_eq!(ms_of(&res.cap_time), cst(2026, 10, 23, 18, 0));
    // Earlier in the month the policy's own due time is the earlier one.
    app.clock.set(cst(2026, 10, 12, 9, 0));
    let c2 = app.customer("申報測試二", 6, cpb::ServiceTier::Standard).await;
    let t2 = app
        .agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: kefu_proto::common::v1::Channel::Email as i32,
                subject: "Q3 所得稅預繳".into(),
                category: "tax_filing".into(),
                customer_id: c2,
                filing_period: "2026-Q3".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ms_of(&app.target(&t2.id, "resolution").await.due_time), cst(2026, 10, 13, 18, 0));
    assert_eq!(t2.priority, pb::Priority::Normal as i32);
    // A period whose deadline the calendar does not know gets a provisional
    // one (the 15th, moved past rest days): 15 June 2030 is a Saturday.
    let far = app
        .agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: kefu_proto::common::v1::Channel::Email as i32,
                subject: "2030".into(),
                category: "tax_filing".into(),
                customer_id: t2.customer_id.clone(),
                filing_period: "2030-05".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(far.filing_deadline, "2030-06-17");
    assert!(far.filing_deadline_provisional);
    assert!(!t2.filing_deadline_provisional);
}

fn email(message_id: &str, in_reply_to: Option<&str>, from: &str, subject: &str, body: &str) -> Vec<u8> {
    let mut m = format!(
        "From: 王芳 <{from}>\r\nTo: service@firm.example\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
    );
    if let Some(p) = in_reply_to {
        m.push_str(&format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n"));
    }
    m.push_str(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    m.push_str(body);
    m.into_bytes()
}

async fn email_creates_and_threads_tickets(app: TestApp) {
    let c = app.customer("郵件測試", 7, cpb::ServiceTier::Vip).await;
    let mut agent = app.agent();
    let first = agent
        .ingest_email(pb::IngestEmailRequest {
            raw: email("a1@client.example", None, "CFO7@example.cn", "發票問題", "請問專票怎麼開？"),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.threaded && !first.duplicate);
    let t = first.ticket.unwrap();
    assert_eq!(t.customer_id, c, "sender matched to the customer's contact");
    assert_eq!(t.customer_tier, "vip");
    assert_eq!(t.channel, kefu_proto::common::v1::Channel::Email as i32);
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: "請提供開票信息".into(),
        })
        .await
        .unwrap();
    let reply = agent
        .ingest_email(pb::IngestEmailRequest {
            raw: email(
                "a2@client.example",
                Some("a1@client.example"),
                "cfo7@example.cn",
                "Re: 發票問題",
                "開票信息如下",
            ),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.threaded);
    assert_eq!(reply.ticket.unwrap().id, t.id);
    let nr = app.target(&t.id, "next_response").await;
    assert_eq!(nr.state, pb::SlaState::Active as i32, "the customer's reply waits for an answer");
    let again = agent
        .ingest_email(pb::IngestEmailRequest {
            raw: email(
                "a2@client.example",
                Some("a1@client.example"),
                "cfo7@example.cn",
                "Re: 發票問題",
                "開票信息如下",
            ),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    let timeline =
        agent.list_timeline(pb::ListTimelineRequest { ticket_id: t.id.clone() }).await.unwrap().into_inner().entries;
    assert_eq!(timeline.iter().filter(|e| e.kind == "customer_message").count(), 2);
    // Threading by the number in the subject when headers are missing.
    let by_subject = agent
        .ingest_email(pb::IngestEmailRequest {
            raw: email(
                "a3@client.example",
                None,
                "cfo7@example.cn",
                &format!("Re: [{}] 發票", t.number),
                "還有一個問題",
            ),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_subject.threaded);
    // A stranger cannot write into the customer's ticket: not by its number
    // in the subject, nor by naming its messages as parents.
    for (mid, parent, subject) in [
        ("x1@evil.example", None, format!("Re: [{}] 發票", t.number)),
        ("x2@evil.example", Some("a1@client.example"), "Re: 發票問題".to_owned()),
    ] {
        let forged = agent
            .ingest_email(pb::IngestEmailRequest {
                raw: email(mid, parent, "attacker@evil.example", &subject, "請把退稅打到這個賬戶"),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!forged.threaded, "{mid} was threaded into the customer's ticket");
        let own = forged.ticket.unwrap();
        assert_ne!(own.id, t.id);
        assert_eq!(own.requester, "attacker@evil.example");
    }
    let timeline =
        agent.list_timeline(pb::ListTimelineRequest { ticket_id: t.id.clone() }).await.unwrap().into_inner().entries;
    assert_eq!(timeline.iter().filter(|e| e.kind == "customer_message").count(), 3, "nothing forged was added");
    // A message naming 20,000 parents is threaded by its nearest one.
    let mut raw = String::from(
        "From: <cfo7@example.cn>\r\nTo: service@firm.example\r\nSubject: Re: 發票問題\r\nMessage-ID: <many@client.example>\r\n\
         In-Reply-To: <a2@client.example>\r\nReferences:",
    );
    for i in 0..20_000 {
        raw.push_str(&format!(" <old{i}@client.example>"));
    }
    raw.push_str(" <a1@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n再補充一點");
    let many = agent.ingest_email(pb::IngestEmailRequest { raw: raw.into_bytes() }).await.unwrap().into_inner();
    assert!(many.threaded);
    assert_eq!(many.ticket.unwrap().id, t.id);
    // An unknown sender still gets a ticket; garbage is refused.
    let unknown = agent
        .ingest_email(pb::IngestEmailRequest {
            raw: email("b1@else.example", None, "someone@else.example", "諮詢", "你好"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown.ticket.unwrap().requester, "someone@else.example");
    let bad = agent.ingest_email(pb::IngestEmailRequest { raw: b"not an email".to_vec() }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

async fn targets_the_live_view_silently_lost_still_warn_and_breach_once_from_the_database(app: TestApp) {
    let c = app.customer("安全網", 31, cpb::ServiceTier::Standard).await;
    let chat = app.ticket(&c, Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    let email = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    app.sweep().await;
    // The live view loses both tickets' targets without any sign (as when a
    // request was cancelled or a process killed between commit and write):
    // no lost epoch, no failed write, no rebuild.
    let live = app.live.store();
    for id in [&chat.id, &email.id] {
        let entries = live.record(id).await.unwrap();
        assert!(!entries.is_empty(), "{id} was in the live view");
        for e in entries {
            live.remove(&e.key).await.unwrap();
        }
    }
    // Chat's first response (60 s) warns at 48 s and falls due at 60 s; the
    // safety net waits out its grace (2 s), then fires each from the database.
    app.clock.set(cst(2026, 3, 2, 9, 0) + 49_000);
    let early = app.sweep().await;
    assert_eq!((early.recovered, app.events(&chat.id, "warning").await), (0, 0), "within the grace: {early:?}");
    app.clock.set(cst(2026, 3, 2, 9, 1) + 1_000);
    let warned = app.sweep().await;
    assert!(warned.rebuilt.is_none(), "nothing told the sweeper the view was lost: {warned:?}");
    assert!(warned.recovered >= 1, "the warning came from the database: {warned:?}");
    assert_eq!(app.events(&chat.id, "warning").await, 1);
    // Firing it put the target back in the live view, so the breach comes
    // from whichever sees it first; it comes once.
    app.clock.set(cst(2026, 3, 2, 9, 1) + 3_000);
    app.sweep().await;
    assert_eq!(app.events(&chat.id, "breached").await, 1);
    // The email's warning and then its breach, each once, though the view never had them again.
    app.clock.set(cst(2026, 3, 2, 16, 0));
    let first = app.sweep().await;
    let second = app.sweep().await;
    assert!(first.recovered + second.recovered >= 1, "{first:?} {second:?}");
    assert_eq!(app.events(&email.id, "breached").await, 1);
    assert_eq!(app.events(&email.id, "warning").await, 1);
    assert_eq!(app.events(&chat.id, "breached").await, 1, "nothing fired twice");
    let quiet = app.sweep().await;
    assert_eq!(quiet.recovered, 0, "the safety net finds nothing left: {quiet:?}");
}

async fn lost_live_state_is_rebuilt_and_nothing_is_lost(app: TestApp) {
    let c = app.customer("重建測試", 8, cpb::ServiceTier::Standard).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "tax_policy").await.id,
        );
    }
    app.sweep().await;
    // The live state is lost; meanwhile every first response falls due.
    app.live.flush().await;
    app.clock.set(cst(2026, 3, 2, 15, 0));
    let report = app.sweep().await;
    assert!(report.rebuilt.is_some(), "the sweeper noticed and rebuilt");
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "breach emitted late, not lost");
    }
    // Lost again: breached targets come back breached and are not re-emitted.
    app.live.flush().await;
    app.sweep().await;
    app.sweep().await;
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "exactly once");
        assert_eq!(app.target(id, "first_response").await.state, pb::SlaState::Breached as i32);
    }
    let d =
        app.agent().get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 60 }).await.unwrap().into_inner();
    assert_eq!(d.total.unwrap().breached, 5);
}

async fn two_replicas_emit_each_breach_once(app: TestApp) {
    let c = app.customer("並發測試", 9, cpb::ServiceTier::Standard).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            app.ticket(&c, kefu_proto::common::v1::Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy")
                .await
                .id,
        );
    }
    let replica = second_replica(&app, tokio_util::sync::CancellationToken::new()).await;
    // Each replica holds half of the shards, as after a rolling start: the
    // replica already leased the lower half, this one takes what is left.
    let store = app.live.store();
    let shards = store.shards();
    assert!(shards >= 2, "the test needs shards to split");
    for shard in 0..shards / 2 {
        assert!(store.try_lease(shard, "replica-2", 30_000).await.unwrap());
    }
    let first = app.sweep().await;
    assert_eq!(first.shards_held, shards - shards / 2, "this replica took the shards nobody held");
    app.clock.set(cst(2026, 3, 2, 9, 5));
    let (a, b) = tokio::join!(app.tickets.sweeper.tick(), replica.sweeper.tick());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.shards_held > 0 && b.shards_held > 0, "both replicas held shards: {a:?} {b:?}");
    assert_eq!(a.shards_held + b.shards_held, shards, "each shard had one sweeper: {a:?} {b:?}");
    assert_eq!(a.failed + b.failed, 0);
    // A claim taken twice (a re-taken claim) must still emit once: the database decides.
    replica.sweeper.tick().await.unwrap();
    for id in &ids {
        assert_eq!(app.events(id, "breached").await, 1, "chat first response (60 s) breached once");
    }
}

async fn phone_calls_feed_the_answer_metric_and_stats(app: TestApp) {
    let mut svc = app.tickets_as(Role::Service);
    let at = |secs: i64| Some(prost_types::Timestamp { seconds: cst(2026, 3, 2, 10, 0) / 1000 + secs, nanos: 0 });
    let ev = |id: &str, kind: pb::CallEventKind, t: i64, agent: &str| pb::RecordCallEventRequest {
        call_id: id.into(),
        kind: kind as i32,
        time: at(t),
        caller_number: "13800138000".into(),
        agent: agent.into(),
        ring_count: 2,
        queue: "hotline".into(),
    };
    app.clock.set(cst(2026, 3, 2, 10, 0));
    svc.record_call_event(ev("c1", pb::CallEventKind::Offered, 0, "")).await.unwrap();
    let answered =
        svc.record_call_event(ev("c1", pb::CallEventKind::Answered, 10, "agent-3")).await.unwrap().into_inner();
    assert_eq!(answered.answer_sla, pb::SlaState::Fulfilled as i32);
    assert!((answered.wait_seconds - 10.0).abs() < 1e-9);
    svc.record_call_event(ev("c2", pb::CallEventKind::Offered, 0, "")).await.unwrap();
    let gone = svc.record_call_event(ev("c2", pb::CallEventKind::Abandoned, 30, "")).await.unwrap().into_inner();
    assert_eq!(gone.answer_sla, pb::SlaState::Breached as i32, "abandoned = breached");
    svc.record_call_event(ev("c3", pb::CallEventKind::Offered, 0, "")).await.unwrap();
    app.advance_to(cst(2026, 3, 2, 10, 0) + 16_000).await;
    assert_eq!(app.events("call:c3", "breached").await, 1, "15 s passed unanswered");
    let late = svc.record_call_event(ev("c3", pb::CallEventKind::Answered, 40, "agent-3")).await.unwrap().into_inner();
    assert_eq!(late.answer_sla, pb::SlaState::FulfilledLate as i32);
    let err = svc.record_call_event(ev("nope", pb::CallEventKind::Answered, 1, "agent-3")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        app.agent().record_call_event(ev("c9", pb::CallEventKind::Offered, 0, "")).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let stats = app
        .tickets_as(Role::Hr)
        .get_agent_stats(pb::GetAgentStatsRequest {
            agent: "agent-3".into(),
            from_date: "2026-03-01".into(),
            to_date: "2026-03-31".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.calls_answered, 2);
    assert!((stats.average_answer_seconds - 25.0).abs() < 1e-9, "{}", stats.average_answer_seconds);
    assert_eq!(stats.calls_abandoned, 1);
    assert!((stats.abandonment_rate - 1.0 / 3.0).abs() < 1e-9);
}

async fn feedback_is_routed_answered_and_sent(app: TestApp) {
    let c = app.customer("反饋測試", 10, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, kefu_proto::common::v1::Channel::Phone, pb::TicketKind::Feedback, "other").await;
    let fr = app.target(&t.id, "feedback_reply").await;
    assert_eq!(ms_of(&fr.due_time), cst(2026, 3, 4, 18, 0), "3 business days");
    let mut agent = app.agent();
    let early = agent
        .send_feedback_result(pb::SendFeedbackResultRequest { ticket_id: t.id.clone(), message: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    agent
        .route_feedback(pb::RouteFeedbackRequest { ticket_id: t.id.clone(), department: "記賬部".into() })
        .await
        .unwrap();
    agent
        .record_department_response(pb::RecordDepartmentResponseRequest {
            ticket_id: t.id.clone(),
            response: "已調整記賬流程".into(),
        })
        .await
        .unwrap();
    let sent = agent
        .send_feedback_result(pb::SendFeedbackResultRequest {
            ticket_id: t.id.clone(),
            message: "感謝反饋，已改進".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.department, "記賬部");
    assert_eq!(app.target(&t.id, "feedback_reply").await.state, pb::SlaState::Fulfilled as i32);
    assert_eq!(app.target(&t.id, "first_response").await.state, pb::SlaState::Fulfilled as i32);
    let not_feedback =
        app.ticket(&c, kefu_proto::common::v1::Channel::Phone, pb::TicketKind::Consultation, "other").await;
    let err = agent
        .route_feedback(pb::RouteFeedbackRequest { ticket_id: not_feedback.id, department: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

async fn business_requests_track_materials_and_steps(app: TestApp) {
    let c = app.customer("進度測試", 11, cpb::ServiceTier::Standard).await;
    let types =
        app.agent().list_request_types(pb::ListRequestTypesRequest {}).await.unwrap().into_inner().request_types;
    assert!(types.iter().any(|t| t.name == "tax_registration"));
    let mut agent = app.agent();
    let t = agent
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: kefu_proto::common::v1::Channel::InPerson as i32,
                subject: "稅務登記".into(),
                category: "tax_registration".into(),
                customer_id: c,
                request_type: "tax_registration".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.materials.len(), 4);
    assert_eq!(t.progress_percent, 0);
    let t = agent
        .update_progress(pb::UpdateProgressRequest {
            ticket_id: t.id.clone(),
            materials_received: vec!["business licence copy".into(), "legal representative ID".into()],
            steps_done: vec!["collect materials".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.progress_percent, 3 * 100 / 7);
    assert!(t.materials.iter().find(|m| m.name == "business licence copy").unwrap().received);
    let bad = agent
        .update_progress(pb::UpdateProgressRequest {
            ticket_id: t.id.clone(),
            materials_received: vec!["passport".into()],
            steps_done: vec![],
        })
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&"materials_received[0]".to_string()));
    let unknown = agent
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::BusinessRequest as i32,
                channel: kefu_proto::common::v1::Channel::InPerson as i32,
                subject: "x".into(),
                customer_id: t.customer_id.clone(),
                request_type: "space_travel".into(),
                ..Default::default()
            }),
            description: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert!(violations(&unknown).contains(&"ticket.request_type".to_string()));
    let denied = agent
        .upsert_request_type(pb::UpsertRequestTypeRequest {
            request_type: Some(pb::RequestType { name: "x".into(), ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.tickets_as(Role::Supervisor)
        .upsert_request_type(pb::UpsertRequestTypeRequest {
            request_type: Some(pb::RequestType {
                name: "deregistration".into(),
                category: "tax_registration".into(),
                required_materials: vec!["清稅申報表".into()],
                steps: vec!["清稅".into(), "註銷".into()],
            }),
        })
        .await
        .unwrap();
}

async fn reopen_starts_a_new_cycle_and_closed_is_final(app: TestApp) {
    let c = app.customer("重開測試", 12, cpb::ServiceTier::Standard).await;
    let t = app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    let mut agent = app.agent();
    let status = |s: pb::Status, reopen: bool| pb::ChangeStatusRequest {
        ticket_id: t.id.clone(),
        status: s as i32,
        reopen,
        ..Default::default()
    };
    agent.change_status(status(pb::Status::Solved, false)).await.unwrap();
    let no_reopen = agent.change_status(status(pb::Status::Open, false)).await.unwrap_err();
    assert_eq!(no_reopen.code(), Code::FailedPrecondition);
    app.clock.set(cst(2026, 3, 3, 9, 0));
    let reopened = agent.change_status(status(pb::Status::Open, true)).await.unwrap().into_inner();
    assert_eq!(reopened.reopen_count, 1);
    let res = app.target(&t.id, "resolution").await;
    assert_eq!(res.cycle, 2);
    assert_eq!(res.state, pb::SlaState::Active as i32);
    assert_eq!(ms_of(&res.start_time), cst(2026, 3, 3, 9, 0));
    // A customer message on a solved ticket reopens it too.
    agent.change_status(status(pb::Status::Solved, false)).await.unwrap();
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::CustomerMessage as i32,
            body: "還沒解決".into(),
        })
        .await
        .unwrap();
    assert_eq!(app.target(&t.id, "resolution").await.cycle, 3);
    agent.change_status(status(pb::Status::Solved, false)).await.unwrap();
    let rating = pb::RateTicketRequest { ticket_id: t.id.clone(), rating: 5, comment: "很好".into() };
    // Staff cannot rate (ratings feed bonuses); the customer channel rates once.
    let by_agent = agent.rate_ticket(rating.clone()).await.unwrap_err();
    assert_eq!(by_agent.code(), Code::PermissionDenied);
    let mut survey = app.tickets_as(Role::Service);
    survey.rate_ticket(rating.clone()).await.unwrap();
    let again = survey.rate_ticket(pb::RateTicketRequest { rating: 1, ..rating }).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "a rating is not overwritten");
    agent.change_status(status(pb::Status::Closed, false)).await.unwrap();
    let closed = agent.change_status(status(pb::Status::Open, true)).await.unwrap_err();
    assert_eq!(closed.code(), Code::FailedPrecondition);
    let msg = agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(msg.code(), Code::FailedPrecondition);
    let bad_rating = survey
        .rate_ticket(pb::RateTicketRequest { ticket_id: t.id.clone(), rating: 6, comment: String::new() })
        .await
        .unwrap_err();
    assert!(violations(&bad_rating).contains(&"rating".to_string()));
}

async fn the_team_queue_filters_by_kind_channel_category_text_and_openness(app: TestApp) {
    let c = app.customer("隊列篩選", 14, cpb::ServiceTier::Standard).await;
    let mut agent = app.agent();
    let chat = app.ticket(&c, Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    let email = app.ticket(&c, Channel::Email, pb::TicketKind::Consultation, "bookkeeping").await;
    let feedback = app.ticket(&c, Channel::Phone, pb::TicketKind::Feedback, "tax_policy").await;
    agent
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: email.id.clone(), subject: "发票 100%_退回".into(), ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["subject".into()] }),
        })
        .await
        .unwrap();
    agent
        .change_status(pb::ChangeStatusRequest {
            ticket_id: feedback.id.clone(),
            status: pb::Status::Solved as i32,
            reason: "已答复".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids = |r: pb::ListTicketsResponse| {
        let mut v: Vec<String> = r.tickets.into_iter().map(|t| t.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let list = |r: pb::ListTicketsRequest| {
        let mut agent = app.agent();
        async move { agent.list_tickets(r).await }
    };
    let got = list(pb::ListTicketsRequest { channel: Channel::Email as i32, ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![email.id.clone()]);
    let got =
        list(pb::ListTicketsRequest { kind: pb::TicketKind::Feedback as i32, ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![feedback.id.clone()]);
    let got = list(pb::ListTicketsRequest { category: "tax_policy".into(), ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), sorted(vec![chat.id.clone(), feedback.id.clone()]));
    let got = list(pb::ListTicketsRequest { category: "tax_policy".into(), open_only: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(ids(got.into_inner()), vec![chat.id.clone()], "the solved feedback is left out");
    // Text in the subject (LIKE's wildcards taken literally), or the number.
    let got = list(pb::ListTicketsRequest { text: "100%_".into(), ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![email.id.clone()]);
    let got = list(pb::ListTicketsRequest { text: "0%_退".into(), ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![email.id.clone()]);
    let got = list(pb::ListTicketsRequest { text: "%".into(), ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![email.id.clone()], "a % matches only a %");
    let got = list(pb::ListTicketsRequest { text: chat.number.to_lowercase(), ..Default::default() }).await.unwrap();
    assert_eq!(ids(got.into_inner()), vec![chat.id.clone()]);
    let got = list(pb::ListTicketsRequest { filing_period: "2026-03".into(), ..Default::default() }).await.unwrap();
    assert!(got.into_inner().tickets.is_empty(), "no filing requests");
    let bad = list(pb::ListTicketsRequest { filing_period: "2026-13".into(), kind: 9, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), vec!["kind".to_string(), "filing_period".to_string()]);
}

async fn dashboard_and_lists_answer_sla_questions(app: TestApp) {
    let c = app.customer("看板測試", 13, cpb::ServiceTier::Standard).await;
    let mut agent = app.agent();
    let chat =
        app.ticket(&c, kefu_proto::common::v1::Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    let email =
        app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "bookkeeping").await;
    agent
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: email.id.clone(),
            assignee: "agent-9".into(),
            queue: "vip".into(),
        })
        .await
        .unwrap();
    app.sweep().await;
    let d = agent.get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 5 }).await.unwrap().into_inner();
    let total = d.total.unwrap();
    assert_eq!(total.open, 4, "two targets per ticket");
    assert_eq!(total.at_risk, 1, "the chat's 60-second first response");
    assert_eq!(d.by_queue["vip"].open, 2);
    assert_eq!(d.by_agent["agent-9"].open, 2);
    app.advance_to(cst(2026, 3, 2, 9, 2)).await;
    let d = agent.get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 5 }).await.unwrap().into_inner();
    assert_eq!(d.total.unwrap().breached, 1);
    let breached = agent
        .list_tickets(pb::ListTicketsRequest { sla: "breached".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(breached.tickets.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), vec![chat.id.clone()]);
    // More breach; the breached list pages through them in id order, each
    // once, and combines with the other filters.
    let mut chats = vec![chat.id.clone()];
    for _ in 0..2 {
        let t = app
            .ticket(&c, kefu_proto::common::v1::Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy")
            .await;
        chats.push(t.id);
    }
    let assigned = chats[2].clone();
    agent
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: assigned.clone(),
            assignee: "agent-7".into(),
            queue: String::new(),
        })
        .await
        .unwrap();
    app.advance_to(cst(2026, 3, 2, 9, 5)).await;
    chats.sort();
    let (mut paged, mut token) = (Vec::new(), String::new());
    loop {
        let page = agent
            .list_tickets(pb::ListTicketsRequest {
                sla: "breached".into(),
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, chats, "every breached ticket once, in id order");
    let assigned_breached = agent
        .list_tickets(pb::ListTicketsRequest {
            sla: "breached".into(),
            assignee: "agent-7".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<String> = assigned_breached.tickets.into_iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![assigned], "breached and agent-7's: the one chat");
    let at_risk = agent
        .list_tickets(pb::ListTicketsRequest { sla: "at_risk".into(), at_risk_minutes: 24 * 60, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(at_risk.tickets.iter().any(|t| t.id == email.id));
    // Windows past a week are refused: a count reads every target due in it.
    let wide = agent
        .list_tickets(pb::ListTicketsRequest { sla: "at_risk".into(), at_risk_minutes: 10_081, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violations(&wide), vec!["at_risk_minutes".to_string()]);
    let wide = agent.get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 10_081 }).await.unwrap_err();
    assert_eq!(violations(&wide), vec!["within_minutes".to_string()]);
    agent.get_sla_dashboard(pb::GetSlaDashboardRequest { within_minutes: 10_080 }).await.unwrap();
    let mine = agent
        .list_tickets(pb::ListTicketsRequest { assignee: "agent-9".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.tickets.len(), 1);
    let page =
        agent.list_tickets(pb::ListTicketsRequest { page_size: 1, ..Default::default() }).await.unwrap().into_inner();
    let page2 = agent
        .list_tickets(pb::ListTicketsRequest {
            page_size: 1,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(page.tickets[0].id, page2.tickets[0].id);
    let bad =
        agent.list_tickets(pb::ListTicketsRequest { sla: "late".into(), ..Default::default() }).await.unwrap_err();
    assert!(violations(&bad).contains(&"sla".to_string()));
}

/// A second tickets replica on the suite's database and live store (in one
/// process on SQLite it shares the single writer connection).
async fn second_replica(app: &TestApp, stop: tokio_util::sync::CancellationToken) -> kefu_tickets::Tickets {
    let pool = if app.tickets_url.starts_with("sqlite") {
        app.pool.clone()
    } else {
        kefu_kit::db::connect(&app.tickets_url, 5).await.unwrap()
    };
    kefu_tickets::build(
        pool,
        app.live.store(),
        std::sync::Arc::new(app.clock.clone()),
        kefu_tickets::SlaSettings::default(),
        kefu_tickets::PeerAddrs { customers: app.addr.clone(), staff: app.addr.clone() },
        kefu_sla::SweeperConfig { owner: "replica-2".into(), ..Default::default() },
        stop,
    )
    .await
    .unwrap()
}

async fn configuration_changed_through_one_replica_is_used_by_the_other(app: TestApp) {
    // A second replica on the same database, following configuration changes.
    let stop = tokio_util::sync::CancellationToken::new();
    let replica = second_replica(&app, stop.clone()).await;
    tokio::spawn(replica.engine.clone().follow_config(std::time::Duration::from_millis(50), stop.clone()));
    let mut sup = app.tickets_as(Role::Supervisor);
    // Through the first replica (the suite's server): a policy, a holiday, a category.
    let policy = pb::SlaPolicy {
        id: "urgent-phone".into(),
        name: "Urgent phone".into(),
        position: 1,
        channels: vec!["phone".into()],
        metrics: vec![pb::SlaMetricRule {
            metric: "first_response".into(),
            duration_seconds: 600,
            clock: "calendar".into(),
            warn_percent: 80,
            ..Default::default()
        }],
        ..Default::default()
    };
    sup.upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(policy), reason: "test".into() }).await.unwrap();
    app.tickets_as(Role::Admin)
        .extend_calendar(pb::ExtendCalendarRequest {
            holidays: vec![pb::Holiday {
                name: "临时休息".into(),
                first_day: "2026-03-05".into(),
                last_day: "2026-03-05".into(),
            }],
            reason: "office closed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut admin = app.tickets_as(Role::Admin);
    let rules = admin.get_escalation_rules(pb::GetEscalationRulesRequest {}).await.unwrap().into_inner();
    let etag = rules.etag.clone();
    admin
        .update_escalation_rules(pb::UpdateEscalationRulesRequest {
            rules: Some(pb::EscalationRules { breach_notify: "manager".into(), ..rules }),
            etag,
            reason: "breaches go to the manager".into(),
        })
        .await
        .unwrap();
    kefu_testkit::wait_for("the other replica to reload", std::time::Duration::from_secs(10), || async {
        let e = &replica.engine;
        let has_policy = e.policies().iter().any(|p| p.id == "urgent-phone");
        let has_holiday = e.calendar().is_holiday(chrono::NaiveDate::from_ymd_opt(2026, 3, 5).unwrap());
        let has_rules = e.escalation().breach_notify == "manager";
        (has_policy && has_holiday && has_rules).then_some(())
    })
    .await;
    stop.cancel();
}

async fn policies_are_data_and_rematch_keeps_elapsed_time(app: TestApp) {
    let mut sup = app.tickets_as(Role::Supervisor);
    let vip = pb::SlaPolicy {
        id: "vip".into(),
        name: "VIP customers".into(),
        position: 5,
        tiers: vec!["vip".into()],
        metrics: vec![
            pb::SlaMetricRule {
                metric: "first_response".into(),
                duration_seconds: 1800,
                clock: "business".into(),
                warn_percent: 50,
                ..Default::default()
            },
            pb::SlaMetricRule {
                metric: "resolution".into(),
                duration_seconds: 8 * 3600,
                clock: "business".into(),
                warn_percent: 80,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    sup.upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(vip.clone()), reason: "VIP clients".into() })
        .await
        .unwrap();
    let listed = app.agent().list_sla_policies(pb::ListSlaPoliciesRequest {}).await.unwrap().into_inner().policies;
    assert_eq!(listed[0].id, "vip");
    let c = app.customer("VIP 客戶", 14, cpb::ServiceTier::Vip).await;
    let t = app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "tax_policy").await;
    let fr = app.target(&t.id, "first_response").await;
    assert_eq!(fr.policy_id, "vip");
    assert_eq!(ms_of(&fr.due_time), cst(2026, 3, 2, 9, 30));
    assert_eq!(ms_of(&fr.warning_time), cst(2026, 3, 2, 9, 15));

    // Urgent consultations: a 2-hour resolution. Re-matching keeps the hour used.
    let urgent = pb::SlaPolicy {
        id: "urgent".into(),
        name: "Urgent".into(),
        position: 1,
        priorities: vec!["urgent".into()],
        metrics: vec![pb::SlaMetricRule {
            metric: "resolution".into(),
            duration_seconds: 2 * 3600,
            clock: "business".into(),
            warn_percent: 80,
            ..Default::default()
        }],
        ..Default::default()
    };
    sup.upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(urgent), reason: "urgent work".into() })
        .await
        .unwrap();
    app.clock.set(cst(2026, 3, 2, 10, 0));
    let updated = app
        .agent()
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: t.id.clone(),
                priority: pb::Priority::Urgent as i32,
                etag: t.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["priority".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.priority, pb::Priority::Urgent as i32);
    let res = app.target(&t.id, "resolution").await;
    assert_eq!(res.policy_id, "urgent");
    assert_eq!(ms_of(&res.due_time), cst(2026, 3, 2, 11, 0), "1h used, 1h left");
    let stale = app
        .agent()
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: t.id.clone(),
                subject: "x".into(),
                etag: t.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["subject".into()] }),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let mut bad = vip.clone();
    bad.metrics[0].warn_percent = 150;
    let err = sup
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(bad), reason: "test".into() })
        .await
        .unwrap_err();
    assert!(violations(&err).iter().any(|f| f.contains("warn_percent")), "{:?}", violations(&err));
    let mut bad = vip;
    bad.metrics[0].metric = "lunch".into();
    assert_eq!(
        sup.upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: Some(bad), reason: "test".into() })
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        app.agent()
            .upsert_sla_policy(pb::UpsertSlaPolicyRequest { policy: None, reason: "test".into() })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    sup.delete_sla_policy(pb::DeleteSlaPolicyRequest { id: "urgent".into(), reason: "no longer used".into() })
        .await
        .unwrap();
    assert_eq!(
        sup.delete_sla_policy(pb::DeleteSlaPolicyRequest { id: "urgent".into(), reason: "no longer used".into() })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // The calendar is data too: next year's holidays arrive without a release.
    let admin = &mut app.tickets_as(Role::Admin);
    let cal = admin
        .extend_calendar(pb::ExtendCalendarRequest {
            holidays: vec![pb::Holiday {
                name: "元旦".into(),
                first_day: "2027-01-01".into(),
                last_day: "2027-01-03".into(),
            }],
            filing_deadlines: vec![pb::FilingDeadline { date: "2027-01-15".into(), provisional: false }],
            reason: "2027 dates published".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cal.holidays.iter().any(|h| h.last_day == "2027-01-03"));
    assert_eq!(cal.holiday_years, vec![2025, 2026, 2027]);
    assert_eq!(
        sup.extend_calendar(pb::ExtendCalendarRequest { reason: "x".into(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let bad = admin
        .extend_calendar(pb::ExtendCalendarRequest {
            filing_deadlines: vec![pb::FilingDeadline { date: "2027-02-30".into(), provisional: false }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields = violations(&bad);
    assert!(fields.contains(&"filing_deadlines[0].date".to_string()), "{fields:?}");
    assert!(fields.contains(&"reason".to_string()), "{fields:?}");
}

async fn watchers_receive_sla_events(app: TestApp) {
    use futures::StreamExt;
    let c = app.customer("觀察測試", 15, cpb::ServiceTier::Standard).await;
    let mut stream = app
        .tickets_as(Role::Supervisor)
        .watch_sla_events(pb::WatchSlaEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let t =
        app.ticket(&c, kefu_proto::common::v1::Channel::OnlineChat, pb::TicketKind::Consultation, "tax_policy").await;
    // The subscription is live once the stream is open; Redis relays asynchronously.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut step = 0;
    while tokio::time::Instant::now() < deadline && !got.iter().any(|k: &String| k == "breached") {
        step += 1;
        app.advance_to(cst(2026, 3, 2, 9, 0) + step * 30_000).await;
        if let Ok(Some(Ok(ev))) = tokio::time::timeout(std::time::Duration::from_millis(300), stream.next()).await {
            assert_eq!(ev.ticket_id, t.id);
            got.push(ev.kind);
        }
    }
    assert!(got.contains(&"breached".to_string()), "{got:?}");
    let denied =
        app.tickets_as(Role::Auditor).watch_sla_events(pb::WatchSlaEventsRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn roles_and_bad_input(app: TestApp) {
    let c = app.customer("權限測試", 16, cpb::ServiceTier::Standard).await;
    let create = |customer: &str| pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: kefu_proto::common::v1::Channel::Email as i32,
            subject: "s".into(),
            customer_id: customer.into(),
            ..Default::default()
        }),
        description: String::new(),
        request_id: String::new(),
    };
    assert_eq!(
        app.tickets_as(Role::Auditor).create_ticket(create(&c)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        app.tickets_as(Role::Hr).list_tickets(pb::ListTicketsRequest::default()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert!(app.tickets_as(Role::Auditor).list_tickets(pb::ListTicketsRequest::default()).await.is_ok());
    assert_eq!(
        app.agent()
            .get_agent_stats(pb::GetAgentStatsRequest {
                agent: "a".into(),
                from_date: "2026-01-01".into(),
                to_date: "2026-01-31".into()
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let missing = app.agent().create_ticket(create(&uuid::Uuid::now_v7().to_string())).await.unwrap_err();
    assert!(violations(&missing).contains(&"ticket.customer_id".to_string()), "{missing:?}");
    let empty = app
        .agent()
        .create_ticket(pb::CreateTicketRequest { ticket: Some(pb::Ticket::default()), ..Default::default() })
        .await
        .unwrap_err();
    let f = violations(&empty);
    for field in ["ticket.kind", "ticket.channel", "ticket.subject", "ticket.customer_id"] {
        assert!(f.contains(&field.to_string()), "{field} in {f:?}");
    }
    let mut bad_period = create(&c);
    bad_period.ticket.as_mut().unwrap().category = "tax_filing".into();
    bad_period.ticket.as_mut().unwrap().filing_period = "2026-13".into();
    assert!(
        violations(&app.agent().create_ticket(bad_period).await.unwrap_err())
            .contains(&"ticket.filing_period".to_string())
    );
    let mut wrong_cat = create(&c);
    wrong_cat.ticket.as_mut().unwrap().category = "payroll".into();
    assert!(
        violations(&app.agent().create_ticket(wrong_cat.clone()).await.unwrap_err())
            .contains(&"ticket.category".to_string())
    );
    // The category list is configurable (supervisors and admins).
    let set = |cats: Vec<pb::Category>| pb::SetCategoriesRequest {
        categories: cats,
        reason: "payroll service".into(),
        // The list as seeded (never changed before).
        etag: "0".into(),
    };
    let cat = |code: &str, label: &str| pb::Category { code: code.into(), label: label.into(), active: true };
    assert_eq!(
        app.agent().set_categories(set(vec![cat("payroll", "工资")])).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let bad = app.tickets_as(Role::Supervisor).set_categories(set(vec![cat("Pay Roll", "工资")])).await.unwrap_err();
    assert!(violations(&bad).contains(&"categories[0].code".to_string()));
    let mut cats =
        app.agent().list_categories(pb::ListCategoriesRequest::default()).await.unwrap().into_inner().categories;
    assert!(cats.iter().any(|c| c.code == "tax_filing" && c.label == "纳税申报"));
    cats.push(cat("payroll", "工资代发"));
    app.tickets_as(Role::Supervisor).set_categories(set(cats)).await.unwrap();
    let payroll = app.agent().create_ticket(wrong_cat).await.unwrap().into_inner();
    assert_eq!(payroll.category, "payroll");
    let pending = app.ticket(&c, kefu_proto::common::v1::Channel::Email, pb::TicketKind::Consultation, "other").await;
    let no_reason = app
        .agent()
        .change_status(pb::ChangeStatusRequest {
            ticket_id: pending.id.clone(),
            status: pb::Status::PendingInternal as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(violations(&no_reason).contains(&"reason".to_string()));
    let nothing = app.agent().get_ticket(pb::GetTicketRequest { id: "KF-999999".into() }).await.unwrap_err();
    assert_eq!(nothing.code(), Code::NotFound);
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM tickets").fetch_one(&app.raw).await.unwrap().get(0);
    assert_eq!(n, 2, "only the valid tickets were written");
}

async fn a_request_id_from_before_the_kit_table_answers_with_its_ticket(app: TestApp) {
    let c = app.customer("舊請求", 18, cpb::ServiceTier::Standard).await;
    let req = pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Phone as i32,
            subject: "升級前建立".into(),
            customer_id: c,
            ..Default::default()
        }),
        description: String::new(),
        request_id: "req-legacy-1".into(),
    };
    let first = app.agent().create_ticket(req.clone()).await.unwrap().into_inner();
    // As a ticket stored before request ids were claimed in kit_idempotency:
    // its id is only on the ticket row.
    sqlx::query("DELETE FROM kit_idempotency").execute(&app.raw).await.unwrap();
    let conflict = app.agent().create_ticket(req.clone()).await.unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists, "without the back-fill a late retry conflicts");
    // The migration's back-fill claims it again.
    sqlx::query(include_str!("../migrations/0004_request_ids_to_kit.sql")).execute(&app.raw).await.unwrap();
    let again = app.agent().create_ticket(req).await.unwrap().into_inner();
    assert_eq!(again.id, first.id, "a late retry answers with the ticket it made");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets").await, 1);
}

async fn concurrent_creates_with_one_request_id_make_one_ticket(app: TestApp) {
    let c = app.customer("冪等測試", 17, cpb::ServiceTier::Standard).await;
    let req = pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Email as i32,
            subject: "同一個請求".into(),
            customer_id: c.clone(),
            tags: vec!["retry".into()],
            ..Default::default()
        }),
        description: "客戶端超時後重試".into(),
        request_id: "req-race-8".into(),
    };
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (mut agent, req) = (app.agent(), req.clone());
            tokio::spawn(async move { agent.create_ticket(req).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(t) => ids.insert(t.into_inner().id),
            Err(e) => {
                assert_no_database_text(&e);
                panic!("a retry of one create failed: {:?} {}", e.code(), e.message());
            }
        };
    }
    assert_eq!(ids.len(), 1, "every retry answered with the same ticket: {ids:?}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets").await, 1, "exactly one ticket stored");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets WHERE request_id = 'req-race-8'").await, 1);
    // Later retries still answer with it.
    let again = app.agent().create_ticket(req.clone()).await.unwrap().into_inner();
    assert!(ids.contains(&again.id));
    // The same request id for another request is a client error, named.
    let mut other = req.clone();
    other.ticket.as_mut().unwrap().subject = "另一個請求".into();
    let err = app.agent().create_ticket(other).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), vec!["request_id".to_string()], "{}", err.message());
    assert_no_database_text(&err);
    let mut other_description = req;
    other_description.description = "另一段描述".into();
    let err = app.agent().create_ticket(other_description).await.unwrap_err();
    assert!(violations(&err).contains(&"request_id".to_string()), "{}", err.message());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets").await, 1);
    // One email delivered four times at once makes one ticket too.
    let raw = email("race@client.example", None, "cfo17@example.cn", "重複投遞", "同一封郵件");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (mut agent, raw) = (app.agent(), raw.clone());
            tokio::spawn(async move { agent.ingest_email(pb::IngestEmailRequest { raw }).await })
        })
        .collect();
    let mut emailed = std::collections::BTreeSet::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(r) => emailed.insert(r.into_inner().ticket.unwrap().id),
            Err(e) => {
                assert_no_database_text(&e);
                panic!("a delivery of one email failed: {:?} {}", e.code(), e.message());
            }
        };
    }
    assert_eq!(emailed.len(), 1, "{emailed:?}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets").await, 2);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM email_messages").await, 1);
}

async fn timestamps_outside_1970_to_9999_are_refused(app: TestApp) {
    let mut svc = app.tickets_as(Role::Service);
    let event = |id: &str, kind: pb::CallEventKind, seconds: i64| pb::RecordCallEventRequest {
        call_id: id.into(),
        kind: kind as i32,
        time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        caller_number: "13800138000".into(),
        agent: "agent-3".into(),
        ring_count: 1,
        queue: "hotline".into(),
    };
    let bad = [9_223_372_036_854_776, i64::MAX, 1 << 62, -1, 253_402_300_800];
    for (i, seconds) in bad.into_iter().enumerate() {
        let err =
            svc.record_call_event(event(&format!("bad-{i}"), pb::CallEventKind::Offered, seconds)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{seconds}: {}", err.message());
        assert_eq!(violations(&err), vec!["time".to_string()], "{seconds}: {}", err.message());
        assert_no_database_text(&err);
    }
    let nanos = pb::RecordCallEventRequest {
        time: Some(prost_types::Timestamp { seconds: cst(2026, 3, 2, 10, 0) / 1000, nanos: -1 }),
        ..event("bad-nanos", pb::CallEventKind::Offered, 0)
    };
    assert_eq!(violations(&svc.record_call_event(nanos).await.unwrap_err()), vec!["time".to_string()]);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM phone_contacts").await, 0, "nothing stored");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sla_targets").await, 0, "no target started");
    // An offered call whose answer comes with a time out of range stays unanswered.
    let offered = cst(2026, 3, 2, 10, 0) / 1000;
    svc.record_call_event(event("c1", pb::CallEventKind::Offered, offered)).await.unwrap();
    for seconds in bad {
        let err = svc.record_call_event(event("c1", pb::CallEventKind::Answered, seconds)).await.unwrap_err();
        assert_eq!(violations(&err), vec!["time".to_string()], "{seconds}: {}", err.message());
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM phone_contacts WHERE answered_at IS NOT NULL").await, 0);
    // The last second of 9999 and the epoch itself are fine.
    let last =
        svc.record_call_event(event("c1", pb::CallEventKind::Answered, 253_402_300_799)).await.unwrap().into_inner();
    assert_eq!(ms_of(&last.answered_time), 253_402_300_799_000);
    let epoch = svc.record_call_event(event("c2", pb::CallEventKind::Offered, 0)).await.unwrap().into_inner();
    assert_eq!(ms_of(&epoch.offered_time), 0);
}

async fn control_characters_and_unbounded_tags_are_refused(app: TestApp) {
    let c = app.customer("文本測試", 18, cpb::ServiceTier::Standard).await;
    let create = |subject: &str, description: &str, tags: Vec<String>| pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Email as i32,
            subject: subject.into(),
            customer_id: c.clone(),
            tags,
            ..Default::default()
        }),
        description: description.into(),
        request_id: String::new(),
    };
    let mut agent = app.agent();
    for (req, field) in [
        (create("增值稅\0申報", "", vec![]), "ticket.subject"),
        (create("增值稅\u{1b}[31m申報", "", vec![]), "ticket.subject"),
        (create("增值稅申報", "請問\0", vec![]), "description"),
        (create("增值稅申報", "請問\u{1b}[2J", vec![]), "description"),
        (create("增值稅申報", "", (0..3000).map(|i| format!("t{i}")).collect()), "ticket.tags"),
        (create("增值稅申報", "", vec!["ok".into(), "x".repeat(33)]), "ticket.tags[1]"),
        (create("增值稅申報", "", vec!["a\0".into()]), "ticket.tags[0]"),
    ] {
        let err = agent.create_ticket(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {}", err.message());
        assert_eq!(violations(&err), vec![field.to_string()], "{}", err.message());
        assert_no_database_text(&err);
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM tickets").await, 0, "nothing stored");
    // Line breaks and tabs are text; twenty tags of 32 characters are allowed.
    let tags: Vec<String> = (0..20).map(|i| format!("{i:0>32}")).collect();
    let t = agent.create_ticket(create("增值稅申報", "第一行\n第二行\t完", tags.clone())).await.unwrap().into_inner();
    assert_eq!(t.tags, tags);
    // The same bounds hold for changes.
    let update = |tags: Vec<String>, subject: &str, paths: &[&str]| pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket { id: t.id.clone(), subject: subject.into(), tags, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    let err = agent.update_ticket(update((0..21).map(|i| i.to_string()).collect(), "", &["tags"])).await.unwrap_err();
    assert_eq!(violations(&err), vec!["ticket.tags".to_string()]);
    let err = agent.update_ticket(update(vec![], "a\0b", &["subject"])).await.unwrap_err();
    assert_eq!(violations(&err), vec!["ticket.subject".to_string()]);
    let err = agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: "您好\u{1b}]0;x\u{7}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["body".to_string()]);
    let unchanged = agent.get_ticket(pb::GetTicketRequest { id: t.id.clone() }).await.unwrap().into_inner();
    assert_eq!((unchanged.etag, unchanged.tags), (t.etag, tags));
}

async fn invalid_enums_list_the_valid_names(app: TestApp) {
    let c = app.customer("枚舉測試", 19, cpb::ServiceTier::Standard).await;
    let err = app
        .agent()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::Consultation as i32,
                channel: 99,
                subject: "渠道".into(),
                customer_id: c,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["ticket.channel".to_string()]);
    for name in
        ["CHANNEL_PHONE", "CHANNEL_WECHAT", "CHANNEL_EMAIL", "CHANNEL_SMS", "CHANNEL_ONLINE_CHAT", "CHANNEL_IN_PERSON"]
    {
        assert!(err.message().contains(name), "{name} in {}", err.message());
    }
    assert!(!err.message().contains("UNSPECIFIED"), "{}", err.message());
    let err = app.agent().list_tickets(pb::ListTicketsRequest { status: 42, ..Default::default() }).await.unwrap_err();
    assert_eq!(violations(&err), vec!["status".to_string()]);
    assert!(err.message().contains("STATUS_SOLVED"), "{}", err.message());
    let err = app
        .tickets_as(Role::Service)
        .record_call_event(pb::RecordCallEventRequest { call_id: "c".into(), kind: 7, ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.message().contains("CALL_EVENT_KIND_ANSWERED"), "{}", err.message());
    // A page token from nowhere is refused, not decoded.
    let err = app
        .agent()
        .list_tickets(pb::ListTicketsRequest { page_token: "dDpub3BlIg".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), vec!["page_token".to_string()]);
}

async fn agent_statistics_count_on_the_service_clock(app: TestApp) {
    let c = app.customer("績效測試", 20, cpb::ServiceTier::Standard).await;
    let mut agent = app.agent();
    // The agent token's subject is "agent-1": its replies and its tickets.
    let new = |subject: &str| pb::CreateTicketRequest {
        ticket: Some(pb::Ticket {
            kind: pb::TicketKind::Consultation as i32,
            channel: Channel::Email as i32,
            subject: subject.into(),
            customer_id: c.clone(),
            assignee: "agent-1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let reply = |id: &str| pb::AddMessageRequest {
        ticket_id: id.into(),
        kind: pb::MessageKind::PublicReply as i32,
        body: "您好，已處理".into(),
    };
    let solve = |id: &str| pb::ChangeStatusRequest {
        ticket_id: id.into(),
        status: pb::Status::Solved as i32,
        ..Default::default()
    };
    let rate = |id: &str, rating: i32| pb::RateTicketRequest { ticket_id: id.into(), rating, comment: String::new() };

    // Friday 27 February, before the period: one ticket, solved that day.
    app.clock.set(cst(2026, 2, 27, 10, 0));
    let t0 = agent.create_ticket(new("二月")).await.unwrap().into_inner().id;
    agent.add_message(reply(&t0)).await.unwrap();
    agent.change_status(solve(&t0)).await.unwrap();

    // Monday 2 March 09:00: four tickets. Three answered at 09:10 and solved
    // at 10:00; the fourth is never answered.
    app.clock.set(cst(2026, 3, 2, 9, 0));
    let mut ids = Vec::new();
    for s in ["一", "二", "三", "四"] {
        ids.push(agent.create_ticket(new(s)).await.unwrap().into_inner().id);
    }
    let (t1, t2, t3, t4) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    app.clock.set(cst(2026, 3, 2, 9, 10));
    for t in [t1, t2, t3] {
        agent.add_message(reply(t)).await.unwrap();
    }
    app.clock.set(cst(2026, 3, 2, 10, 0));
    for t in [t1, t2, t3] {
        agent.change_status(solve(t)).await.unwrap();
    }
    app.clock.set(cst(2026, 3, 2, 10, 30));
    // Ratings arrive from the customer channels (the service role).
    let mut survey = app.tickets_as(Role::Service);
    survey.rate_ticket(rate(t1, 5)).await.unwrap();
    survey.rate_ticket(rate(t2, 4)).await.unwrap();
    // 11:00 the customer of the third writes again: reopened; solved again at 11:30, rated 2.
    app.clock.set(cst(2026, 3, 2, 11, 0));
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: t3.clone(),
            kind: pb::MessageKind::CustomerMessage as i32,
            body: "還是不對".into(),
        })
        .await
        .unwrap();
    app.clock.set(cst(2026, 3, 2, 11, 30));
    agent.change_status(solve(t3)).await.unwrap();
    app.clock.set(cst(2026, 3, 2, 11, 45));
    survey.rate_ticket(rate(t3, 2)).await.unwrap();
    // The fourth's first response (4 business hours) breaches at 14:00.
    app.advance_to(cst(2026, 3, 2, 14, 1)).await;
    assert_eq!(app.events(t4, "breached").await, 1);
    // 1 April: the February ticket is rated, outside March.
    app.clock.set(cst(2026, 4, 1, 9, 0));
    survey.rate_ticket(rate(&t0, 1)).await.unwrap();

    let stats = |from: &str, to: &str| pb::GetAgentStatsRequest {
        agent: "agent-1".into(),
        from_date: from.into(),
        to_date: to.into(),
    };
    let mut hr = app.tickets_as(Role::Hr);
    let march = hr.get_agent_stats(stats("2026-03-01", "2026-03-31")).await.unwrap().into_inner();
    assert_eq!(march.tickets_handled, 4);
    assert_eq!(march.tickets_solved, 3);
    assert_eq!(march.resolution_rate, 0.75);
    assert_eq!(march.reopen_rate, 1.0 / 3.0);
    assert_eq!(march.ratings, 3, "5, 4 and 2; the rating given in April is not March's");
    assert_eq!(march.average_satisfaction, 11.0 / 3.0);
    assert_eq!(march.csat, 2.0 / 3.0 * 100.0);
    let share = |s: &pb::AgentStats, metric: &str| {
        s.targets.iter().find(|m| m.metric == metric).map(|m| (m.met, m.missed, m.share_met))
    };
    assert_eq!(share(&march, "first_response"), Some((3, 1, 0.75)));
    // Resolution: the first three, and the third's second cycle after it was reopened.
    assert_eq!(share(&march, "resolution"), Some((4, 0, 1.0)));
    assert_eq!(march.targets.len(), 2, "{:?}", march.targets);
    // The same day only, by the firm's calendar day.
    let day = hr.get_agent_stats(stats("2026-03-02", "2026-03-02")).await.unwrap().into_inner();
    assert_eq!((day.tickets_handled, day.tickets_solved, day.ratings), (4, 3, 3));
    let before = hr.get_agent_stats(stats("2026-03-03", "2026-03-31")).await.unwrap().into_inner();
    assert_eq!((before.tickets_handled, before.tickets_solved, before.ratings), (0, 0, 0));
    // April holds the February ticket's rating and nothing else.
    let april = hr.get_agent_stats(stats("2026-04-01", "2026-04-30")).await.unwrap().into_inner();
    assert_eq!((april.tickets_handled, april.tickets_solved, april.ratings), (0, 0, 1));
    assert_eq!((april.average_satisfaction, april.csat), (1.0, 0.0));
    let february = hr.get_agent_stats(stats("2026-02-01", "2026-02-28")).await.unwrap().into_inner();
    assert_eq!((february.tickets_handled, february.tickets_solved, february.ratings), (1, 1, 0));
    assert_eq!(share(&february, "first_response"), Some((1, 0, 1.0)));
    let err = hr.get_agent_stats(stats("2026-03-31", "2026-03-01")).await.unwrap_err();
    assert_eq!(violations(&err), vec!["to_date".to_string()]);
}

/// EraseCustomer reaches tickets: once the follower has run, no ticket,
/// timeline entry or consent gives the person's phone or email back, an
/// agent cannot read the erased customer's tax profile, and (on SQLite) no
/// database file or journal still holds them.
async fn erasure_reaches_tickets_and_leaves_nothing_in_the_database_files(app: TestApp) {
    const PHONE: &str = "13912345678";
    const EMAIL: &str = "zhao.li@example.cn";
    let mut customers = app.customers();
    let uscc = kefu_customers::domain::uscc_with_check("91310000987654321").unwrap();
    let customer = customers
        .create_customer(cpb::CreateCustomerRequest {
            customer: Some(cpb::Customer {
                company_name: "赵丽个体工商户".into(),
                uscc,
                taxpayer_type: cpb::TaxpayerType::SmallScale as i32,
                ..Default::default()
            }),
            contacts: vec![cpb::Contact {
                name: "赵丽".into(),
                email: EMAIL.into(),
                mobile: PHONE.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    customers
        .create_consent(cpb::CreateConsentRequest {
            consent: Some(cpb::Consent {
                customer_id: customer.id.clone(),
                purpose: "bank loan".into(),
                recipient: "招商银行".into(),
                data_categories: vec![cpb::DataCategory::Contacts as i32],
                evidence: format!("赵丽 签字，电话 {PHONE}"),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut agent = app.agent();
    let ticket = agent
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                kind: pb::TicketKind::Consultation as i32,
                channel: kefu_proto::common::v1::Channel::Email as i32,
                subject: format!("赵丽 {PHONE} 发票问题"),
                category: "tax_policy".into(),
                customer_id: customer.id.clone(),
                requester: EMAIL.into(),
                ..Default::default()
            }),
            description: format!("请回电 {PHONE} 或邮件 {EMAIL}"),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: ticket.id.clone(),
            kind: pb::MessageKind::PublicReply as i32,
            body: format!("已致电 {PHONE}，稍后发到 {EMAIL}"),
        })
        .await
        .unwrap();

    // The person's call, in the call log by number only.
    app.tickets_as(Role::Service)
        .record_call_event(pb::RecordCallEventRequest {
            call_id: "erase-call-1".into(),
            kind: pb::CallEventKind::Offered as i32,
            time: Some(prost_types::Timestamp { seconds: kefu_sla::Clock::now_ms(&app.clock) / 1000, nanos: 0 }),
            caller_number: PHONE.into(),
            ring_count: 1,
            queue: "hotline".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    app.erase_customer(&customer.id, "PIPL 删除请求 2026-118").await;
    let follower = app.suite.tickets.erasures.clone().expect("the follower runs as part of the module");
    assert_eq!(follower.follow_once().await.unwrap(), 1, "one erasure handled");
    assert_eq!(follower.follow_once().await.unwrap(), 0, "and not again");
    assert_eq!(follower.resweep().await.unwrap(), 0, "redacting again changes nothing");
    let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM phone_contacts WHERE caller_number = $1")
        .bind(PHONE)
        .fetch_one(&app.tickets_raw)
        .await
        .unwrap();
    assert_eq!(calls, 0, "the call log no longer gives the person's number");
    // Written to the ticket after the erasure: the next sweep takes it out.
    agent
        .add_message(pb::AddMessageRequest {
            ticket_id: ticket.id.clone(),
            kind: pb::MessageKind::InternalNote as i32,
            body: format!("客户旧号码 {PHONE}"),
        })
        .await
        .unwrap();
    assert_eq!(follower.resweep().await.unwrap(), 1, "the new note is redacted");

    let got = agent.get_ticket(pb::GetTicketRequest { id: ticket.id.clone() }).await.unwrap().into_inner();
    let timeline =
        agent.list_timeline(pb::ListTimelineRequest { ticket_id: ticket.id.clone() }).await.unwrap().into_inner();
    let consents = app
        .customers_as(Role::Supervisor)
        .list_consents(cpb::ListConsentsRequest { customer_id: customer.id.clone() })
        .await
        .unwrap()
        .into_inner();
    for (what, text) in
        [("ticket", format!("{got:?}")), ("timeline", format!("{timeline:?}")), ("consents", format!("{consents:?}"))]
    {
        assert!(!text.contains(PHONE) && !text.contains(EMAIL), "{what} still holds the person's details: {text}");
    }
    assert!(!format!("{consents:?}").contains("赵丽"), "the consent's evidence named the person");
    assert_eq!(got.number, ticket.number, "the ticket itself is kept");
    let tax = app
        .customers()
        .get_tax_profile(cpb::GetTaxProfileRequest { customer_id: customer.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(tax.code(), tonic::Code::FailedPrecondition, "an agent cannot read an erased customer's profile");

    // Someone with the database files finds nothing either.
    if app.suite.backend == common::Backend::Embedded {
        for url in [&app.suite.customers_url, &app.suite.tickets_url] {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            for file in [path.to_owned(), format!("{path}-wal"), format!("{path}-shm")] {
                let Ok(bytes) = std::fs::read(&file) else { continue };
                for needle in [PHONE, EMAIL] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{file} still holds {needle}"
                    );
                }
            }
        }
    }
}
