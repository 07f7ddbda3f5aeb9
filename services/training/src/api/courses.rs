//! The course catalogue.
use kefu_kit::{Error, auth::Principal, error::Violations, page, parse};
use kefu_proto::training::v1 as pb;

use super::TrainingApi;
use crate::{
    domain::{self, HalfHours},
    store::{self, CourseRow, Material},
};

const LIST: &str = "courses";

pub(super) fn course_pb(c: &CourseRow) -> Result<pb::Course, Error> {
    Ok(pb::Course {
        id: c.id.clone(),
        code: c.code.clone(),
        title: c.title.clone(),
        topic: c.topic as i32,
        method: c.method as i32,
        hours: HalfHours(c.hours_x2).hours(),
        description: c.description.clone(),
        materials: c.materials()?.into_iter().map(|m| pb::Material { title: m.title, url: m.url }).collect(),
        requires_approval: c.requires_approval == 1,
        created_by: c.created_by.clone(),
        create_time: parse::ts(c.created_at),
    })
}

pub(super) async fn create(api: &TrainingApi, p: &Principal, r: pb::CreateCourseRequest) -> Result<pb::Course, Error> {
    let c = r.course.unwrap_or_default();
    let mut v = Violations::new();
    let code = v.check(domain::course_code("course.code", &c.code));
    let title = v.check(parse::required_line("course.title", &c.title, 200));
    let topic = v.check(parse::enumeration::<pb::Topic>("course.topic", c.topic, None));
    let method = v.check(parse::enumeration::<pb::Method>("course.method", c.method, None));
    let hours = v.check(HalfHours::parse("course.hours", c.hours, 0.5, 200.0));
    let description = v.check(parse::text("course.description", &c.description, 5000)).unwrap_or_default();
    if c.materials.len() > 20 {
        v.add("course.materials", "at most 20 materials");
    }
    let mut materials = Vec::new();
    for (i, m) in c.materials.iter().enumerate() {
        let title = v.check(parse::required_line(&format!("course.materials[{i}].title"), &m.title, 200));
        let url = v.check(domain::material_url(&format!("course.materials[{i}].url"), &m.url));
        if let (Some(title), Some(url)) = (title, url) {
            materials.push(Material { title, url });
        }
    }
    v.finish()?;
    let (Some(code), Some(title), Some(topic), Some(method), Some(hours)) = (code, title, topic, method, hours) else {
        return Err(Error::invalid("course", "is not valid"));
    };
    let row = CourseRow {
        id: uuid::Uuid::now_v7().to_string(),
        code,
        title,
        topic: i64::from(topic as i32),
        method: i64::from(method as i32),
        hours_x2: hours.0,
        description,
        materials: store::to_json(&materials)?,
        requires_approval: i64::from(c.requires_approval),
        created_by: p.subject.clone(),
        created_at: api.now(),
    };
    let mut tx = api.pool.begin().await?;
    if !store::insert_course(&mut tx, &row).await? {
        let existing = store::course(&mut tx, &row.code)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("course {} is taken but missing", row.code)))?;
        // The same course again (a retry) is the course; another under its code is refused.
        let same = (&existing.title, existing.topic, existing.method, existing.hours_x2)
            == (&row.title, row.topic, row.method, row.hours_x2)
            && (&existing.description, &existing.materials, existing.requires_approval)
                == (&row.description, &row.materials, row.requires_approval);
        if !same {
            return Err(Error::AlreadyExists(format!("course {} exists ({})", existing.code, existing.title)));
        }
        return course_pb(&existing);
    }
    tx.commit().await?;
    course_pb(&row)
}

pub(super) async fn get(api: &TrainingApi, r: pb::GetCourseRequest) -> Result<pb::Course, Error> {
    let id = parse::required_line("id", &r.id, 64)?;
    let mut conn = api.reads.acquire().await?;
    let c = store::course(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("course {id}")))?;
    course_pb(&c)
}

pub(super) async fn list(api: &TrainingApi, r: pb::ListCoursesRequest) -> Result<pb::ListCoursesResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 200)).unwrap_or(50);
    let after = v.check(page::after(LIST, &r.page_token)).flatten();
    let topic = if r.topic == 0 {
        None
    } else {
        v.check(parse::enumeration::<pb::Topic>("topic", r.topic, None)).map(|t| i64::from(t as i32))
    };
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::courses(&mut conn, topic, after.as_deref(), size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |c| c.code.clone());
    Ok(pb::ListCoursesResponse { courses: rows.iter().map(course_pb).collect::<Result<_, _>>()?, next_page_token })
}
