//! Career paths: levels in order with what promotion to each asks, each
//! person's level over time, and eligibility computed from their training
//! records — never typed in.
use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::training::v1::{self as pb, EnrolmentState as E, RequirementKind as K};

use super::{READS_ALL, TrainingApi, staff_for};
use crate::{
    domain,
    store::{self, LevelRow, json, to_json},
};

fn level_pb(l: &LevelRow) -> Result<pb::Level, Error> {
    Ok(pb::Level {
        id: l.id.clone(),
        path: l.path.clone(),
        code: l.code.clone(),
        name: l.name.clone(),
        rank: i32::try_from(l.step).unwrap_or(i32::MAX),
        courses: json("career_levels", &l.id, &l.courses)?,
        certificates: json("career_levels", &l.id, &l.certificates)?,
        months_in_level: i32::try_from(l.months_in_level).unwrap_or(i32::MAX),
        min_performance_grade: l.min_grade.clone(),
    })
}

pub(super) async fn define(api: &TrainingApi, p: &Principal, r: pb::DefineLevelRequest) -> Result<pb::Level, Error> {
    let l = r.level.unwrap_or_default();
    let mut v = Violations::new();
    let path = v.check(parse::required_line("level.path", &l.path, 64));
    let code = v.check(domain::level_code("level.code", &l.code));
    let name = v.check(parse::required_line("level.name", &l.name, 64));
    if !(1..=20).contains(&l.rank) {
        v.add("level.rank", "must be 1 to 20");
    }
    if l.courses.len() > 50 {
        v.add("level.courses", "at most 50 courses");
    }
    if l.certificates.len() > 20 {
        v.add("level.certificates", "at most 20 certificates");
    }
    let certificates: Vec<String> = l
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| v.check(parse::required_line(&format!("level.certificates[{i}]"), c, 64)))
        .collect();
    if !(0..=120).contains(&l.months_in_level) {
        v.add("level.months_in_level", "must be 0 to 120 months");
    }
    if l.rank == 1 && (!l.courses.is_empty() || !certificates.is_empty() || l.months_in_level > 0) {
        v.add("level.rank", "the entry level (1) has no promotion requirements");
    }
    let grade = v.check(domain::grade("level.min_performance_grade", &l.min_performance_grade)).unwrap_or_default();
    v.finish()?;
    let (Some(path), Some(code), Some(name)) = (path, code, name) else {
        return Err(Error::invalid("level", "is not valid"));
    };
    let mut tx = api.pool.begin().await?;
    let mut courses = Vec::with_capacity(l.courses.len());
    let mut v = Violations::new();
    for (i, c) in l.courses.iter().enumerate() {
        match store::course(&mut tx, c.trim()).await? {
            Some(course) => courses.push(course.id),
            None => v.add(format!("level.courses[{i}]"), format!("no course {:?}", c.trim())),
        }
    }
    v.finish()?;
    let row = LevelRow {
        id: uuid::Uuid::now_v7().to_string(),
        path,
        code,
        name,
        step: i64::from(l.rank),
        courses: to_json(&courses)?,
        certificates: to_json(&certificates)?,
        months_in_level: i64::from(l.months_in_level),
        min_grade: grade,
        created_by: p.subject.clone(),
        created_at: api.now(),
    };
    if !store::insert_level(&mut tx, &row).await? {
        let taken = match store::level_by_code(&mut tx, &row.code).await? {
            Some(l) => l,
            None => store::level_at(&mut tx, &row.path, row.step)
                .await?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("level {} is taken but missing", row.code)))?,
        };
        // The same level again (a retry) is the level.
        let same = (&taken.path, &taken.code, &taken.name, taken.step) == (&row.path, &row.code, &row.name, row.step)
            && (&taken.courses, &taken.certificates, taken.months_in_level, &taken.min_grade)
                == (&row.courses, &row.certificates, row.months_in_level, &row.min_grade);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "a level already holds this code or rank: {} ({}), rank {} of {}",
                taken.code, taken.name, taken.step, taken.path
            )));
        }
        return level_pb(&taken);
    }
    tx.commit().await?;
    level_pb(&row)
}

pub(super) async fn list(api: &TrainingApi, r: pb::ListLevelsRequest) -> Result<pb::ListLevelsResponse, Error> {
    let path = parse::line("path", &r.path, 64)?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::levels(&mut conn, (!path.is_empty()).then_some(path.as_str())).await?;
    Ok(pb::ListLevelsResponse { levels: rows.iter().map(level_pb).collect::<Result<_, _>>()? })
}

/// Where `staff` stands on their path today.
async fn progress(api: &TrainingApi, conn: &mut sqlx::AnyConnection, staff: &str) -> Result<pb::CareerProgress, Error> {
    let today = api.today();
    let Some((level, since)) = store::staff_level(conn, staff, &parse::format_date(today)).await? else {
        return Ok(pb::CareerProgress { staff_id: staff.to_owned(), ..Default::default() });
    };
    let next = store::level_at(conn, &level.path, level.step + 1).await?;
    let mut requirements = Vec::new();
    if let Some(n) = &next {
        let done = store::completed_courses(conn, staff, i64::from(E::Completed as i32)).await?;
        for id in json::<Vec<String>>("career_levels", &n.id, &n.courses)? {
            let course = store::course(conn, &id).await?;
            let (code, title) = course.map(|c| (c.code, c.title)).unwrap_or_else(|| (id.clone(), String::new()));
            let met = done.contains(&id);
            requirements.push(pb::Requirement {
                kind: K::Course as i32,
                what: code,
                met,
                detail: if met { format!("已完成《{title}》") } else { format!("尚未完成《{title}》") },
            });
        }
        let certs = store::certificates(conn, Some(staff)).await?;
        for name in json::<Vec<String>>("career_levels", &n.id, &n.certificates)? {
            let held = certs.iter().any(|c| {
                let expiry =
                    c.expiry_date.as_deref().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                c.name == name && !domain::expired(expiry, today)
            });
            requirements.push(pb::Requirement {
                kind: K::Certificate as i32,
                detail: if held {
                    format!("持有有效的{name}证书")
                } else {
                    format!("缺少有效的{name}证书")
                },
                what: name,
                met: held,
            });
        }
        if n.months_in_level > 0 {
            let started = chrono::NaiveDate::parse_from_str(&since, "%Y-%m-%d").unwrap_or(today);
            let months = domain::months_between(started, today);
            let met = months >= n.months_in_level;
            requirements.push(pb::Requirement {
                kind: K::MonthsInLevel as i32,
                what: n.months_in_level.to_string(),
                met,
                detail: format!("在{}岗位已满 {months} 个月，要求 {} 个月", level.name, n.months_in_level),
            });
        }
        if !n.min_grade.is_empty() {
            // Grades come from performance reviews, which call this service
            // (not the other way round): the performance service decides
            // this requirement with the grade of the review it finalises;
            // here it stays unmet rather than guessed.
            requirements.push(pb::Requirement {
                kind: K::PerformanceGrade as i32,
                what: n.min_grade.clone(),
                met: false,
                detail: format!("要求最近一次绩效等级不低于 {}；由绩效评定时确认", n.min_grade),
            });
        }
    }
    Ok(pb::CareerProgress {
        staff_id: staff.to_owned(),
        eligible: next.is_some() && requirements.iter().all(|r| r.met),
        level: Some(level_pb(&level)?),
        since,
        next: next.as_ref().map(level_pb).transpose()?,
        requirements,
    })
}

pub(super) async fn set_staff_level(
    api: &TrainingApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::SetStaffLevelRequest,
) -> Result<pb::CareerProgress, Error> {
    let mut v = Violations::new();
    let staff = v.check(parse::required_line("staff_id", &r.staff_id, 64));
    let code = v.check(domain::level_code("level", &r.level));
    let since = v.check(parse::date("since", &r.since));
    if since.is_some_and(|d| d > api.today()) {
        v.add("since", "is in the future");
    }
    v.finish()?;
    let (Some(staff), Some(code), Some(since)) = (staff, code, since) else {
        return Err(Error::invalid("staff_id", "is required"));
    };
    api.peers.directory.check(token, &[("staff_id", &staff, kefu_kit::directory::Accept::Person)]).await?;
    let mut tx = api.pool.begin().await?;
    let level = store::level_by_code(&mut tx, &code)
        .await?
        .ok_or_else(|| Error::invalid("level", format!("no level {code}")))?;
    store::set_staff_level(&mut tx, &staff, &level.id, &parse::format_date(since), &p.subject, api.now()).await?;
    let out = progress(api, &mut tx, &staff).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn get_progress(
    api: &TrainingApi,
    p: &Principal,
    r: pb::GetCareerProgressRequest,
) -> Result<pb::CareerProgress, Error> {
    let staff = staff_for(p, "staff_id", &r.staff_id, READS_ALL)?;
    let mut conn = api.reads.acquire().await?;
    progress(api, &mut conn, &staff).await
}

pub(super) async fn eligible(api: &TrainingApi, r: pb::ListEligibleRequest) -> Result<pb::ListEligibleResponse, Error> {
    let path = parse::line("path", &r.path, 64)?;
    let mut conn = api.reads.acquire().await?;
    let mut people = Vec::new();
    for staff in store::staff_with_levels(&mut conn).await? {
        let p = progress(api, &mut conn, &staff).await?;
        let on_path = path.is_empty() || p.level.as_ref().is_some_and(|l| l.path == path);
        if p.eligible && on_path {
            people.push(p);
        }
    }
    Ok(pb::ListEligibleResponse { people })
}
