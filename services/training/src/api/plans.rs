//! Annual plans per team: goals, budget, target hours, planned courses per
//! quarter; approval by someone other than who drew it up; progress from
//! the sessions the plan paid.
use chrono::Datelike;
use kefu_kit::{
    Error,
    auth::Principal,
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::training::v1::{self as pb, EnrolmentState as E, PlanState, SessionState};

use super::TrainingApi;
use crate::{
    domain::{self, HalfHours},
    store::{self, PlanRow, PlannedCourse, to_json},
};

async fn plan_pb(api: &TrainingApi, conn: &mut sqlx::AnyConnection, p: &PlanRow) -> Result<pb::Plan, Error> {
    let cancelled = i64::from(SessionState::Cancelled as i32);
    let spent = store::plan_spent(conn, &p.id, cancelled).await?;
    let (delivered, people) = store::plan_delivered(conn, &p.id, i64::from(E::Completed as i32)).await?;
    let held = store::plan_sessions(conn, &p.id, cancelled).await?;
    let courses = p
        .courses()?
        .into_iter()
        .map(|c| {
            let scheduled = held
                .iter()
                .filter(|(course, start)| {
                    let d = api.date_of(*start);
                    *course == c.course_id && domain::quarter(d) == c.quarter && i64::from(d.year()) == p.year
                })
                .count();
            pb::PlannedCourse {
                course_id: c.course_id,
                quarter: c.quarter,
                sessions: c.sessions,
                sessions_scheduled: i32::try_from(scheduled).unwrap_or(i32::MAX),
            }
        })
        .collect();
    Ok(pb::Plan {
        id: p.id.clone(),
        year: i32::try_from(p.year).unwrap_or_default(),
        team: p.team.clone(),
        title: p.title.clone(),
        goals: p.goals()?,
        budget_fen: p.budget_fen,
        target_hours_per_person: HalfHours(p.target_x2).hours(),
        headcount: i32::try_from(p.headcount).unwrap_or(i32::MAX),
        courses,
        state: p.state as i32,
        created_by: p.created_by.clone(),
        approved_by: p.approved_by.clone(),
        approve_time: ts_opt(p.approved_at),
        progress: Some(pb::PlanProgress {
            hours_delivered: HalfHours(delivered).hours(),
            people_trained: i32::try_from(people).unwrap_or(i32::MAX),
            budget_spent_fen: spent,
            budget_left_fen: p.budget_fen - spent,
            hours_share: domain::hours_share(HalfHours(delivered), HalfHours(p.target_x2), p.headcount),
        }),
        create_time: ts(p.created_at),
    })
}

pub(super) async fn create(api: &TrainingApi, p: &Principal, r: pb::CreatePlanRequest) -> Result<pb::Plan, Error> {
    let plan = r.plan.unwrap_or_default();
    let this_year = api.today().year();
    let mut v = Violations::new();
    if plan.year < this_year || plan.year > 2100 {
        v.add("plan.year", format!("must be {this_year} to 2100"));
    }
    let team = v.check(parse::required_line("plan.team", &plan.team, 64));
    let title = v.check(parse::required_line("plan.title", &plan.title, 200));
    if plan.goals.is_empty() || plan.goals.len() > 20 {
        v.add("plan.goals", "give 1 to 20 goals");
    }
    let goals: Vec<String> = plan
        .goals
        .iter()
        .enumerate()
        .filter_map(|(i, g)| v.check(parse::required_line(&format!("plan.goals[{i}]"), g, 500)))
        .collect();
    if !(0..=1_000_000_000_000).contains(&plan.budget_fen) {
        v.add("plan.budget_fen", "must be 0 to 10,000,000,000 yuan in fen");
    }
    let target = v.check(HalfHours::parse("plan.target_hours_per_person", plan.target_hours_per_person, 0.0, 500.0));
    if !(1..=10_000).contains(&plan.headcount) {
        v.add("plan.headcount", "must be 1 to 10000 people");
    }
    if plan.courses.len() > 200 {
        v.add("plan.courses", "at most 200 planned courses");
    }
    let mut courses: Vec<PlannedCourse> = Vec::new();
    for (i, c) in plan.courses.iter().enumerate() {
        let f = |n: &str| format!("plan.courses[{i}].{n}");
        let id = v.check(parse::required_line(&f("course_id"), &c.course_id, 64));
        if !(1..=4).contains(&c.quarter) {
            v.add(f("quarter"), "must be 1 to 4");
        }
        if !(1..=50).contains(&c.sessions) {
            v.add(f("sessions"), "must be 1 to 50");
        }
        if let Some(id) = id {
            courses.push(PlannedCourse { course_id: id, quarter: c.quarter, sessions: c.sessions });
        }
    }
    v.finish()?;
    let (Some(team), Some(title), Some(target)) = (team, title, target) else {
        return Err(Error::invalid("plan", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    // Planned courses name courses of the catalogue (by id or code; kept by id).
    let mut v = Violations::new();
    for (i, c) in courses.iter_mut().enumerate() {
        match store::course(&mut tx, &c.course_id).await? {
            Some(course) => c.course_id = course.id,
            None => v.add(format!("plan.courses[{i}].course_id"), format!("no course {:?}", c.course_id)),
        }
    }
    // Compared once resolved: a code and an id of one course are one course.
    for (i, c) in courses.iter().enumerate() {
        if courses[..i].iter().any(|x| x.course_id == c.course_id && x.quarter == c.quarter) {
            v.add(format!("plan.courses[{i}].course_id"), "is planned twice in the same quarter");
        }
    }
    v.finish()?;
    let row = PlanRow {
        id: uuid::Uuid::now_v7().to_string(),
        year: i64::from(plan.year),
        team,
        title,
        goals: to_json(&goals)?,
        budget_fen: plan.budget_fen,
        target_x2: target.0,
        headcount: i64::from(plan.headcount),
        courses: to_json(&courses)?,
        state: i64::from(PlanState::Draft as i32),
        created_by: p.subject.clone(),
        approved_by: String::new(),
        approved_at: None,
        created_at: api.now(),
        version: 0,
    };
    if !store::insert_plan(&mut tx, &row).await? {
        let existing = store::plan_of(&mut tx, row.year, &row.team)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("plan {} {} is taken but missing", row.year, row.team)))?;
        // The same plan again (a retry) is the plan; another for the team and year is refused.
        let same = (&existing.title, &existing.goals, existing.budget_fen, existing.target_x2)
            == (&row.title, &row.goals, row.budget_fen, row.target_x2)
            && (existing.headcount, &existing.courses, &existing.created_by)
                == (row.headcount, &row.courses, &row.created_by);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "team {} has its {} plan already ({})",
                row.team, row.year, existing.title
            )));
        }
        return plan_pb(api, &mut tx, &existing).await;
    }
    let out = plan_pb(api, &mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn approve(api: &TrainingApi, p: &Principal, r: pb::ApprovePlanRequest) -> Result<pb::Plan, Error> {
    let id = parse::id("id", &r.id)?;
    let mut tx = api.pool.begin().await?;
    let plan = store::lock_plan(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("plan {id}")))?;
    if plan.created_by == p.subject {
        return Err(Error::PermissionDenied("a plan is approved by someone other than who drew it up".into()));
    }
    if !store::approve_plan(&mut tx, &plan.id, i64::from(PlanState::Approved as i32), &p.subject, api.now()).await? {
        return Err(Error::FailedPrecondition(format!("the plan was approved already by {}", plan.approved_by)));
    }
    let plan = store::plan(&mut tx, &id).await?.ok_or_else(|| Error::NotFound(format!("plan {id}")))?;
    let out = plan_pb(api, &mut tx, &plan).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn get(api: &TrainingApi, r: pb::GetPlanRequest) -> Result<pb::Plan, Error> {
    let id = parse::id("id", &r.id)?;
    let mut conn = api.reads.acquire().await?;
    let plan = store::plan(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("plan {id}")))?;
    plan_pb(api, &mut conn, &plan).await
}

pub(super) async fn list(api: &TrainingApi, r: pb::ListPlansRequest) -> Result<pb::ListPlansResponse, Error> {
    if r.year != 0 && !(2000..=2100).contains(&r.year) {
        return Err(Error::invalid("year", "must be 2000 to 2100 (or 0 for every year)"));
    }
    let mut conn = api.reads.acquire().await?;
    let rows = store::plans(&mut conn, (r.year != 0).then_some(i64::from(r.year))).await?;
    let mut plans = Vec::with_capacity(rows.len());
    for p in &rows {
        plans.push(plan_pb(api, &mut conn, p).await?);
    }
    Ok(pb::ListPlansResponse { plans })
}
