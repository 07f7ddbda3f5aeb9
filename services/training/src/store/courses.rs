//! The course catalogue (table `courses`).
use super::json;
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CourseRow {
    pub id: String,
    pub code: String,
    pub title: String,
    pub topic: i64,
    pub method: i64,
    pub hours_x2: i64,
    pub description: String,
    pub materials: String,
    pub requires_approval: i64,
    pub created_by: String,
    pub created_at: i64,
}

impl CourseRow {
    pub fn materials(&self) -> Result<Vec<Material>, Error> {
        json("courses", &self.id, &self.materials)
    }
}

const COURSE_COLUMNS: &str =
    "id, code, title, topic, method, hours_x2, description, materials, requires_approval, created_by, created_at";

/// Inserts the course unless its code is taken: whether it went in.
pub async fn insert_course(conn: &mut AnyConnection, c: &CourseRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", c.id.as_str())
        .with("code", c.code.as_str())
        .with("title", c.title.as_str())
        .with("topic", c.topic)
        .with("method", c.method)
        .with("hours_x2", c.hours_x2)
        .with("description", c.description.as_str())
        .with("materials", c.materials.as_str())
        .with("requires_approval", c.requires_approval)
        .with("created_by", c.created_by.as_str())
        .with("created_at", c.created_at)
        .insert_unless_exists(conn, "courses", "code")
        .await?)
}

pub async fn course(conn: &mut AnyConnection, id_or_code: &str) -> Result<Option<CourseRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {COURSE_COLUMNS} FROM courses WHERE id = $1 OR code = $2"))
        .bind(id_or_code)
        .bind(id_or_code.to_ascii_uppercase())
        .fetch_optional(conn)
        .await?)
}

pub async fn courses(
    conn: &mut AnyConnection,
    topic: Option<i64>,
    after_code: Option<&str>,
    limit: i64,
) -> Result<Vec<CourseRow>, Error> {
    let mut w = Where::new();
    if let Some(t) = topic {
        w.and("topic = $?", t);
    }
    if let Some(a) = after_code {
        w.and("code > $?", a);
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {COURSE_COLUMNS} FROM courses WHERE {clause} ORDER BY code LIMIT {limit}");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}
