//! The `kefu.staff.v1.StaffService` gRPC API: people, teams and who belongs
//! to them, and resolving references for other services.
mod access;

use std::collections::HashMap;

pub use access::ACCESS;
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    db,
    error::Violations,
    etag, page, parse,
    rpc::{Res, answer, call},
};
use kefu_proto::staff::v1::{self as pb, PersonStatus, staff_service_server::StaffService};
use sqlx::AnyPool;
use tonic::Request;

use crate::{
    domain,
    store::{self, PersonRow, TeamRow},
};

const LIST: &str = "people";

pub struct StaffApi {
    pool: AnyPool,
    reads: AnyPool,
}

impl StaffApi {
    pub fn new(pool: AnyPool) -> Self {
        Self { reads: db::readers(&pool), pool }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn person_pb(conn: &mut sqlx::AnyConnection, p: &PersonRow) -> Result<pb::Person, Error> {
    let teams = store::teams_of(conn, &p.staff_id).await?;
    Ok(pb::Person {
        staff_id: p.staff_id.clone(),
        name: p.name.clone(),
        display_name: p.display_name.clone(),
        position: p.position.clone(),
        level: p.level.clone(),
        hire_date: p.hire_date.clone(),
        status: p.status as i32,
        manager: p.manager.clone(),
        skills: store::list("people", &p.staff_id, &p.skills)?,
        languages: store::list("people", &p.staff_id, &p.languages)?,
        teams: teams.into_iter().map(|(team, team_name, lead)| pb::Membership { team, team_name, lead }).collect(),
        etag: etag::of(p.version),
    })
}

/// The changing fields of a person, checked (every bad field named).
fn checked(v: &mut Violations, x: &pb::Person, row: &mut PersonRow) {
    let display = v.check(parse::line("person.display_name", &x.display_name, 64)).unwrap_or_default();
    row.display_name = if display.is_empty() { row.name.clone() } else { display };
    row.position = v.check(parse::line("person.position", &x.position, 64)).unwrap_or_default();
    row.level = v.check(parse::line("person.level", &x.level, 32)).unwrap_or_default();
    row.status = i64::from(
        v.check(parse::enumeration::<PersonStatus>("person.status", x.status, Some(PersonStatus::Active)))
            .unwrap_or(PersonStatus::Active) as i32,
    );
    row.manager = if x.manager.trim().is_empty() {
        String::new()
    } else {
        v.check(domain::staff_id("person.manager", &x.manager)).unwrap_or_default()
    };
    let skills = v.check(parse::tags("person.skills", &x.skills, 30, 32)).unwrap_or_default();
    let languages = v.check(parse::tags("person.languages", &x.languages, 10, 32)).unwrap_or_default();
    row.skills = store::to_json(&skills).unwrap_or_default();
    row.languages = store::to_json(&languages).unwrap_or_default();
}

/// The manager exists, is active, and the reporting line stays a tree.
async fn check_manager(conn: &mut sqlx::AnyConnection, row: &PersonRow) -> Result<(), Error> {
    if row.manager.is_empty() {
        return Ok(());
    }
    let m = store::person(conn, &row.manager).await?;
    if m.as_ref().is_none_or(|m| m.status != i64::from(PersonStatus::Active as i32)) {
        return Err(Error::invalid(
            "person.manager",
            format!("{} is not an active person of the directory", row.manager),
        ));
    }
    let line: HashMap<String, String> = store::managers(conn).await?.into_iter().collect();
    if domain::closes_loop(&row.staff_id, &row.manager, |p| line.get(p).cloned()) {
        return Err(Error::invalid("person.manager", "would make the reporting line go round in a loop"));
    }
    Ok(())
}

async fn create_person(api: &StaffApi, p: &Principal, r: pb::CreatePersonRequest) -> Result<pb::Person, Error> {
    let x = r.person.unwrap_or_default();
    let mut v = Violations::new();
    let id = v.check(domain::staff_id("person.staff_id", &x.staff_id)).unwrap_or_default();
    let name = v.check(parse::required_line("person.name", &x.name, 64)).unwrap_or_default();
    let hire = v.check(parse::date("person.hire_date", &x.hire_date));
    // Joining dates are entered ahead, but not years ahead.
    let latest = chrono::Utc::now().date_naive() + chrono::Duration::days(366);
    if hire.is_some_and(|d| d > latest) {
        v.add("person.hire_date", "is more than a year ahead");
    }
    let mut row = PersonRow {
        staff_id: id,
        name,
        display_name: String::new(),
        position: String::new(),
        level: String::new(),
        hire_date: hire.map(parse::format_date).unwrap_or_default(),
        status: 0,
        manager: String::new(),
        skills: "[]".into(),
        languages: "[]".into(),
        updated_by: p.subject.clone(),
        updated_at: now(),
        version: 0,
    };
    checked(&mut v, &x, &mut row);
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    check_manager(&mut tx, &row).await?;
    if !store::insert_person(&mut tx, &row).await? {
        let e = store::person(&mut tx, &row.staff_id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("person {} is taken but missing", row.staff_id)))?;
        // The same person again (a retry) is the person.
        let same = (&e.name, &e.display_name, &e.position, &e.level, &e.hire_date, e.status)
            == (&row.name, &row.display_name, &row.position, &row.level, &row.hire_date, row.status)
            && (&e.manager, &e.skills, &e.languages) == (&row.manager, &row.skills, &row.languages);
        if !same {
            return Err(Error::AlreadyExists(format!("staff id {} is {}", e.staff_id, e.name)));
        }
        return person_pb(&mut tx, &e).await;
    }
    let out = person_pb(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

async fn get_person(api: &StaffApi, r: pb::GetPersonRequest) -> Result<pb::Person, Error> {
    let id = domain::staff_id("staff_id", &r.staff_id)?;
    let mut conn = api.reads.acquire().await?;
    let p = store::person(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("staff member {id}")))?;
    person_pb(&mut conn, &p).await
}

async fn update_person(api: &StaffApi, p: &Principal, r: pb::UpdatePersonRequest) -> Result<pb::Person, Error> {
    let x = r.person.unwrap_or_default();
    let id = domain::staff_id("person.staff_id", &x.staff_id)?;
    if r.etag.trim().is_empty() {
        return Err(Error::invalid(
            "etag",
            "send the etag GetPerson gave (the whole record is replaced; none is changed blind)",
        ));
    }
    let mut tx = api.pool.begin().await?;
    let mut row = store::person(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("staff member {id}")))?;
    etag::check("person", &r.etag, row.version)?;
    let mut v = Violations::new();
    checked(&mut v, &x, &mut row);
    v.finish()?;
    check_manager(&mut tx, &row).await?;
    row.updated_by = p.subject.clone();
    row.updated_at = now();
    if !store::update_person(&mut tx, &row).await? {
        return Err(Error::Aborted("the person was changed by someone else; reload and retry".into()));
    }
    row.version += 1;
    let out = person_pb(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

async fn list_people(api: &StaffApi, r: pb::ListPeopleRequest) -> Result<pb::ListPeopleResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 100, 500)).unwrap_or(100);
    let after = v.check(page::after(LIST, &r.page_token)).flatten();
    let team = if r.team.trim().is_empty() { None } else { v.check(domain::team_code("team", &r.team)) };
    let status = if r.status == 0 {
        None
    } else {
        v.check(parse::enumeration::<PersonStatus>("status", r.status, None)).map(|s| i64::from(s as i32))
    };
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::people(&mut conn, &store::PeopleFilter { team, status, after }, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |p| p.staff_id.clone());
    let mut people = Vec::with_capacity(rows.len());
    for p in &rows {
        people.push(person_pb(&mut conn, p).await?);
    }
    Ok(pb::ListPeopleResponse { people, next_page_token })
}

async fn team_pb(conn: &mut sqlx::AnyConnection, t: &TeamRow) -> Result<pb::Team, Error> {
    let members = store::members(conn, &t.code).await?;
    Ok(pb::Team {
        code: t.code.clone(),
        name: t.name.clone(),
        kind: t.kind as i32,
        members: members
            .into_iter()
            .map(|(staff_id, display_name, lead)| pb::Member { staff_id, display_name, lead })
            .collect(),
    })
}

async fn create_team(api: &StaffApi, p: &Principal, r: pb::CreateTeamRequest) -> Result<pb::Team, Error> {
    let t = r.team.unwrap_or_default();
    let mut v = Violations::new();
    let code = v.check(domain::team_code("team.code", &t.code)).unwrap_or_default();
    let name = v.check(parse::required_line("team.name", &t.name, 64)).unwrap_or_default();
    let kind = v.check(parse::enumeration::<pb::TeamKind>("team.kind", t.kind, None));
    v.finish()?;
    let Some(kind) = kind else { return Err(Error::invalid("team.kind", "is required")) };
    let row = TeamRow { code, name, kind: i64::from(kind as i32), created_by: p.subject.clone(), created_at: now() };
    let mut tx = api.pool.begin().await?;
    if store::person(&mut tx, &row.code).await?.is_some() {
        return Err(Error::invalid("team.code", "is a staff id; a team's code must not be someone's id"));
    }
    if !store::insert_team(&mut tx, &row).await? {
        let e = store::team(&mut tx, &row.code)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("team {} is taken but missing", row.code)))?;
        if (&e.name, e.kind) != (&row.name, row.kind) {
            return Err(Error::AlreadyExists(format!("team {} is {}", e.code, e.name)));
        }
        return team_pb(&mut tx, &e).await;
    }
    let out = team_pb(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

async fn get_team(api: &StaffApi, r: pb::GetTeamRequest) -> Result<pb::Team, Error> {
    let code = domain::team_code("code", &r.code)?;
    let mut conn = api.reads.acquire().await?;
    let t = store::team(&mut conn, &code).await?.ok_or_else(|| Error::NotFound(format!("team {code}")))?;
    team_pb(&mut conn, &t).await
}

async fn list_teams(api: &StaffApi, r: pb::ListTeamsRequest) -> Result<pb::ListTeamsResponse, Error> {
    let kind = if r.kind == 0 {
        None
    } else {
        Some(i64::from(parse::enumeration::<pb::TeamKind>("kind", r.kind, None)? as i32))
    };
    let mut conn = api.reads.acquire().await?;
    let rows = store::teams(&mut conn, kind).await?;
    let mut teams = Vec::with_capacity(rows.len());
    for t in &rows {
        teams.push(team_pb(&mut conn, t).await?);
    }
    Ok(pb::ListTeamsResponse { teams })
}

async fn set_membership(api: &StaffApi, p: &Principal, r: pb::SetMembershipRequest) -> Result<pb::Team, Error> {
    let mut v = Violations::new();
    let code = v.check(domain::team_code("team", &r.team)).unwrap_or_default();
    let staff = v.check(domain::staff_id("staff_id", &r.staff_id)).unwrap_or_default();
    if r.lead && !r.member {
        v.add("lead", "a lead is a member (member: true)");
    }
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let t = store::team(&mut tx, &code).await?.ok_or_else(|| Error::NotFound(format!("team {code}")))?;
    // Leads review their teams' performance: only HR names or unnames them.
    let was_lead = store::members(&mut tx, &t.code).await?.iter().any(|(id, _, lead)| *id == staff && *lead);
    if (r.lead || was_lead) && !p.has_any(&[Role::Hr, Role::Admin]) {
        return Err(Error::PermissionDenied(
            "a team's leads review its people: HR names them (supervisors add and remove members)".into(),
        ));
    }
    if r.member {
        let p = store::person(&mut tx, &staff)
            .await?
            .ok_or_else(|| Error::invalid("staff_id", format!("{staff} is not in the directory")))?;
        if p.status == i64::from(PersonStatus::Left as i32) {
            return Err(Error::invalid("staff_id", format!("{staff} has left the firm")));
        }
        store::set_member(&mut tx, &t.code, &staff, r.lead).await?;
    } else {
        store::remove_member(&mut tx, &t.code, &staff).await?;
    }
    let out = team_pb(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(out)
}

async fn resolve(api: &StaffApi, r: pb::ResolveRequest) -> Result<pb::ResolveResponse, Error> {
    if r.refs.is_empty() || r.refs.len() > 200 {
        return Err(Error::invalid("refs", "give 1 to 200 references"));
    }
    let mut v = Violations::new();
    let refs: Vec<String> = r
        .refs
        .iter()
        .enumerate()
        .map(|(i, x)| v.check(parse::required_line(&format!("refs[{i}]"), x, 64)).unwrap_or_default())
        .collect();
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let mut out = Vec::with_capacity(refs.len());
    for raw in refs {
        let key = raw.to_ascii_lowercase();
        let resolved = if let Some(p) = store::person(&mut conn, &key).await? {
            pb::Resolved {
                reference: raw,
                kind: pb::RefKind::Person as i32,
                active: p.status == i64::from(PersonStatus::Active as i32),
                display_name: p.display_name,
                team_kind: 0,
            }
        } else if let Some(t) = store::team(&mut conn, &key).await? {
            pb::Resolved {
                reference: raw,
                kind: pb::RefKind::Team as i32,
                active: true,
                display_name: t.name,
                team_kind: t.kind as i32,
            }
        } else {
            pb::Resolved { reference: raw, kind: pb::RefKind::Unknown as i32, ..Default::default() }
        };
        out.push(resolved);
    }
    Ok(pb::ResolveResponse { resolved: out })
}

#[tonic::async_trait]
impl StaffService for StaffApi {
    async fn create_person(&self, req: Request<pb::CreatePersonRequest>) -> Res<pb::Person> {
        let c = call(req)?;
        answer(create_person(self, &c.p, c.r).await)
    }

    async fn get_person(&self, req: Request<pb::GetPersonRequest>) -> Res<pb::Person> {
        let c = call(req)?;
        answer(get_person(self, c.r).await)
    }

    async fn update_person(&self, req: Request<pb::UpdatePersonRequest>) -> Res<pb::Person> {
        let c = call(req)?;
        answer(update_person(self, &c.p, c.r).await)
    }

    async fn list_people(&self, req: Request<pb::ListPeopleRequest>) -> Res<pb::ListPeopleResponse> {
        let c = call(req)?;
        answer(list_people(self, c.r).await)
    }

    async fn create_team(&self, req: Request<pb::CreateTeamRequest>) -> Res<pb::Team> {
        let c = call(req)?;
        answer(create_team(self, &c.p, c.r).await)
    }

    async fn get_team(&self, req: Request<pb::GetTeamRequest>) -> Res<pb::Team> {
        let c = call(req)?;
        answer(get_team(self, c.r).await)
    }

    async fn list_teams(&self, req: Request<pb::ListTeamsRequest>) -> Res<pb::ListTeamsResponse> {
        let c = call(req)?;
        answer(list_teams(self, c.r).await)
    }

    async fn set_membership(&self, req: Request<pb::SetMembershipRequest>) -> Res<pb::Team> {
        let c = call(req)?;
        answer(set_membership(self, &c.p, c.r).await)
    }

    async fn resolve(&self, req: Request<pb::ResolveRequest>) -> Res<pb::ResolveResponse> {
        let c = call(req)?;
        answer(resolve(self, c.r).await)
    }
}
