//! The staff directory through a real client, on SQLite + memory and
//! PostgreSQL + Redis: people with their reporting line, teams, queues and
//! expert groups with members and leads, references resolved for other
//! services, and bad input refused by name without changing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kefu_kit::auth::Role;
use kefu_proto::staff::v1::{self as pb, PersonStatus, RefKind, TeamKind};
use kefu_testkit::{Backend, Suite, violations};
use tonic::Code;

async fn spawn(backend: Backend) -> Option<Suite> {
    // The directory from empty: none of the suite's standard people.
    Suite::spawn_with(backend, kefu_testkit::SuiteOptions { seed_staff: false, ..Default::default() }).await
}

kefu_testkit::on_both_backends!(spawn;
    people_teams_and_queues_make_a_directory_others_resolve,
    bad_input_wrong_callers_and_loops_are_refused_and_change_nothing,
);

fn person(id: &str, name: &str, manager: &str) -> pb::CreatePersonRequest {
    pb::CreatePersonRequest {
        person: Some(pb::Person {
            staff_id: id.into(),
            name: name.into(),
            display_name: format!("{name}（代账一组）"),
            position: "客服专员".into(),
            level: "CS-1".into(),
            hire_date: "2024-03-01".into(),
            manager: manager.into(),
            skills: vec!["个税".into(), "社保".into()],
            languages: vec!["普通话".into()],
            ..Default::default()
        }),
    }
}

async fn people_teams_and_queues_make_a_directory_others_resolve(s: Suite) {
    let mut hr = s.staff_as(Role::Hr);
    let lead = hr.create_person(person("sup-1", "李强", "")).await.unwrap().into_inner();
    assert_eq!((lead.status, lead.etag.is_empty()), (PersonStatus::Active as i32, false));
    let a = hr.create_person(person("Agent-1", "王芳", "sup-1")).await.unwrap().into_inner();
    assert_eq!(a.staff_id, "agent-1", "staff ids are kept in lower case");
    let again = hr.create_person(person("agent-1", "王芳", "sup-1")).await.unwrap().into_inner();
    assert_eq!(again.etag, a.etag, "an identical retry is the person");
    let other = hr.create_person(person("agent-1", "张伟", "")).await.unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    hr.create_person(person("agent-2", "张伟", "sup-1")).await.unwrap();

    // A team with its lead, a queue, an expert group.
    let mut sup = s.staff_as(Role::Supervisor);
    let team = |code: &str, name: &str, kind: TeamKind| pb::CreateTeamRequest {
        team: Some(pb::Team { code: code.into(), name: name.into(), kind: kind as i32, ..Default::default() }),
    };
    sup.create_team(team("daizhang-1", "代账一组", TeamKind::Team)).await.unwrap();
    sup.create_team(team("tax-experts", "税务专家组", TeamKind::ExpertGroup)).await.unwrap();
    let member = |t: &str, who: &str, lead: bool| pb::SetMembershipRequest {
        team: t.into(),
        staff_id: who.into(),
        member: true,
        lead,
    };
    sup.set_membership(member("daizhang-1", "agent-1", false)).await.unwrap();
    sup.set_membership(member("daizhang-1", "agent-2", false)).await.unwrap();
    let naming = sup.set_membership(member("daizhang-1", "sup-1", true)).await.unwrap_err();
    assert_eq!(naming.code(), Code::PermissionDenied, "a supervisor does not name a team's lead");
    let t = hr.set_membership(member("daizhang-1", "sup-1", true)).await.unwrap().into_inner();
    let unnaming = sup
        .set_membership(pb::SetMembershipRequest {
            team: "daizhang-1".into(),
            staff_id: "sup-1".into(),
            member: false,
            lead: false,
        })
        .await
        .unwrap_err();
    assert_eq!(unnaming.code(), Code::PermissionDenied, "nor takes a lead out");
    let order: Vec<(&str, bool)> = t.members.iter().map(|m| (m.staff_id.as_str(), m.lead)).collect();
    assert_eq!(order, vec![("sup-1", true), ("agent-1", false), ("agent-2", false)], "leads first");
    sup.set_membership(member("tax-experts", "agent-2", false)).await.unwrap();
    let p = s.staff_as(Role::Agent).get_person(pb::GetPersonRequest { staff_id: "agent-2".into() }).await.unwrap();
    let teams: Vec<String> = p.into_inner().teams.into_iter().map(|m| m.team_name).collect();
    assert_eq!(teams, vec!["代账一组".to_string(), "税务专家组".to_string()]);
    let listed = s
        .staff_as(Role::Agent)
        .list_people(pb::ListPeopleRequest { team: "tax-experts".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .people;
    assert_eq!(listed.len(), 1);

    // agent-2 goes on leave: still a person, not active; out of a team.
    let cur = hr.get_person(pb::GetPersonRequest { staff_id: "agent-2".into() }).await.unwrap().into_inner();
    let mut upd = cur.clone();
    upd.status = PersonStatus::OnLeave as i32;
    let leave = hr
        .update_person(pb::UpdatePersonRequest { person: Some(upd.clone()), etag: cur.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(leave.status, PersonStatus::OnLeave as i32);
    let blind =
        hr.update_person(pb::UpdatePersonRequest { person: Some(upd.clone()), etag: String::new() }).await.unwrap_err();
    assert_eq!(violations(&blind), vec!["etag".to_string()], "no record is replaced blind");
    let stale = hr.update_person(pb::UpdatePersonRequest { person: Some(upd), etag: cur.etag }).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    sup.set_membership(pb::SetMembershipRequest {
        team: "tax-experts".into(),
        staff_id: "agent-2".into(),
        member: false,
        lead: false,
    })
    .await
    .unwrap();

    // Services resolve references: people, teams, nothing.
    let r = s
        .staff_as(Role::Service)
        .resolve(pb::ResolveRequest {
            refs: vec!["agent-1".into(), "AGENT-2".into(), "tax-experts".into(), "不存在的人".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .resolved;
    let got: Vec<(i32, bool, &str)> = r.iter().map(|x| (x.kind, x.active, x.display_name.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (RefKind::Person as i32, true, "王芳（代账一组）"),
            (RefKind::Person as i32, false, "张伟（代账一组）"),
            (RefKind::Team as i32, true, "税务专家组"),
            (RefKind::Unknown as i32, false, ""),
        ]
    );
    assert_eq!(r[3].reference, "不存在的人");
}

async fn bad_input_wrong_callers_and_loops_are_refused_and_change_nothing(s: Suite) {
    let mut hr = s.staff_as(Role::Hr);
    let bad = hr
        .create_person(pb::CreatePersonRequest {
            person: Some(pb::Person {
                staff_id: "王芳".into(),
                hire_date: "2024-13-01".into(),
                status: 99,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&bad),
        vec![
            "person.staff_id".to_string(),
            "person.name".to_string(),
            "person.hire_date".to_string(),
            "person.status".to_string()
        ]
    );
    let mut far = person("agent-9", "赵六", "");
    far.person.as_mut().unwrap().hire_date = "2099-01-01".into();
    assert_eq!(violations(&hr.create_person(far).await.unwrap_err()), vec!["person.hire_date".to_string()]);
    let nobody = hr.create_person(person("agent-9", "赵六", "no-such-boss")).await.unwrap_err();
    assert_eq!(violations(&nobody), vec!["person.manager".to_string()]);
    let listed = hr.list_people(pb::ListPeopleRequest::default()).await.unwrap().into_inner().people;
    assert!(listed.is_empty(), "nothing was created");
    assert_eq!(
        s.staff_as(Role::Agent).create_person(person("agent-8", "钱七", "")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // A loop in the reporting line: a → b, then b → a is refused.
    hr.create_person(person("a", "甲", "")).await.unwrap();
    hr.create_person(person("b", "乙", "a")).await.unwrap();
    let cur = hr.get_person(pb::GetPersonRequest { staff_id: "a".into() }).await.unwrap().into_inner();
    let mut upd = cur.clone();
    upd.manager = "b".into();
    let looped = hr.update_person(pb::UpdatePersonRequest { person: Some(upd), etag: cur.etag.clone() }).await;
    assert_eq!(violations(&looped.unwrap_err()), vec!["person.manager".to_string()]);
    let after = hr.get_person(pb::GetPersonRequest { staff_id: "a".into() }).await.unwrap().into_inner();
    assert_eq!((after.manager.as_str(), after.etag), ("", cur.etag), "nothing changed");
    // Teams: a bad kind, a code that is a staff id, someone not in the directory, a lead not a member.
    let mut sup = s.staff_as(Role::Supervisor);
    let t = sup
        .create_team(pb::CreateTeamRequest {
            team: Some(pb::Team {
                code: "a".into(),
                name: "甲组".into(),
                kind: TeamKind::Team as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&t), vec!["team.code".to_string()]);
    sup.create_team(pb::CreateTeamRequest {
        team: Some(pb::Team {
            code: "q1".into(),
            name: "一号队列".into(),
            kind: TeamKind::Queue as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let stranger = sup
        .set_membership(pb::SetMembershipRequest {
            team: "q1".into(),
            staff_id: "ghost".into(),
            member: true,
            lead: false,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&stranger), vec!["staff_id".to_string()]);
    let lead = sup
        .set_membership(pb::SetMembershipRequest { team: "q1".into(), staff_id: "a".into(), member: false, lead: true })
        .await
        .unwrap_err();
    assert_eq!(violations(&lead), vec!["lead".to_string()]);
    let too_many =
        s.staff_as(Role::Service).resolve(pb::ResolveRequest { refs: vec!["x".into(); 201] }).await.unwrap_err();
    assert_eq!(violations(&too_many), vec!["refs".to_string()]);
}
