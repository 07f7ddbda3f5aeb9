//! All SQL of the staff directory (portable: SQLite and PostgreSQL).
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonRow {
    pub staff_id: String,
    pub name: String,
    pub display_name: String,
    pub position: String,
    pub level: String,
    pub hire_date: String,
    pub status: i64,
    pub manager: String,
    pub skills: String,
    pub languages: String,
    pub updated_by: String,
    pub updated_at: i64,
    pub version: i64,
}

const PERSON_COLUMNS: &str = "staff_id, name, display_name, position, level, hire_date, status, manager, skills, \
    languages, updated_by, updated_at, version";

/// A JSON list column read (the kit's JSON columns).
pub fn list(table: &str, id: &str, text: &str) -> Result<Vec<String>, Error> {
    kefu_kit::db::from_json(table, id, text)
}

pub use kefu_kit::db::to_json;

fn changing(p: &PersonRow) -> Columns {
    Columns::new()
        .with("display_name", p.display_name.as_str())
        .with("position", p.position.as_str())
        .with("level", p.level.as_str())
        .with("status", p.status)
        .with("manager", p.manager.as_str())
        .with("skills", p.skills.as_str())
        .with("languages", p.languages.as_str())
        .with("updated_by", p.updated_by.as_str())
        .with("updated_at", p.updated_at)
}

/// Inserts the person unless the staff id is taken: whether they went in.
pub async fn insert_person(conn: &mut AnyConnection, p: &PersonRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("staff_id", p.staff_id.as_str())
        .with("name", p.name.as_str())
        .with("hire_date", p.hire_date.as_str())
        .with("version", p.version)
        .and(changing(p))
        .insert_unless_exists(conn, "people", "staff_id")
        .await?)
}

/// Writes the changing columns if the version still holds.
pub async fn update_person(conn: &mut AnyConnection, p: &PersonRow) -> Result<bool, Error> {
    Ok(changing(p).update_versioned_on(conn, "people", "staff_id", &p.staff_id, p.version).await?)
}

pub async fn person(conn: &mut AnyConnection, id: &str) -> Result<Option<PersonRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE staff_id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Each person's manager (for checking the reporting line).
pub async fn managers(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, Error> {
    let rows = sqlx::query("SELECT staff_id, manager FROM people LIMIT 100000").fetch_all(conn).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

pub struct PeopleFilter {
    pub team: Option<String>,
    pub status: Option<i64>,
    pub after: Option<String>,
}

pub async fn people(conn: &mut AnyConnection, f: &PeopleFilter, limit: i64) -> Result<Vec<PersonRow>, Error> {
    let mut w = Where::new();
    if let Some(t) = &f.team {
        w.and("staff_id IN (SELECT staff_id FROM memberships WHERE team = $?)", t.as_str());
    }
    if let Some(s) = f.status {
        w.and("status = $?", s);
    }
    if let Some(a) = &f.after {
        w.and("staff_id > $?", a.as_str());
    }
    let (clause, binds) = w.build();
    let sql = format!("SELECT {PERSON_COLUMNS} FROM people WHERE {clause} ORDER BY staff_id LIMIT {limit}");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub code: String,
    pub name: String,
    pub kind: i64,
    pub created_by: String,
    pub created_at: i64,
}

/// Inserts the team unless the code is taken: whether it went in.
pub async fn insert_team(conn: &mut AnyConnection, t: &TeamRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("code", t.code.as_str())
        .with("name", t.name.as_str())
        .with("kind", t.kind)
        .with("created_by", t.created_by.as_str())
        .with("created_at", t.created_at)
        .insert_unless_exists(conn, "teams", "code")
        .await?)
}

pub async fn team(conn: &mut AnyConnection, code: &str) -> Result<Option<TeamRow>, Error> {
    Ok(sqlx::query_as("SELECT code, name, kind, created_by, created_at FROM teams WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?)
}

pub async fn teams(conn: &mut AnyConnection, kind: Option<i64>) -> Result<Vec<TeamRow>, Error> {
    let mut w = Where::new();
    if let Some(k) = kind {
        w.and("kind = $?", k);
    }
    let (clause, binds) = w.build();
    let sql =
        format!("SELECT code, name, kind, created_by, created_at FROM teams WHERE {clause} ORDER BY code LIMIT 1000");
    Ok(fetch_all_as(conn, &sql, binds).await?)
}

/// A team's members, leads first: (staff id, display name, lead).
pub async fn members(conn: &mut AnyConnection, team: &str) -> Result<Vec<(String, String, bool)>, Error> {
    let rows = sqlx::query(
        "SELECT m.staff_id, p.display_name, m.lead FROM memberships m JOIN people p ON p.staff_id = m.staff_id \
         WHERE m.team = $1 ORDER BY m.lead DESC, m.staff_id",
    )
    .bind(team)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? == 1))).collect()
}

/// A person's teams: (code, name, lead).
pub async fn teams_of(conn: &mut AnyConnection, staff: &str) -> Result<Vec<(String, String, bool)>, Error> {
    let rows = sqlx::query(
        "SELECT t.code, t.name, m.lead FROM memberships m JOIN teams t ON t.code = m.team \
         WHERE m.staff_id = $1 ORDER BY t.code",
    )
    .bind(staff)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? == 1))).collect()
}

pub async fn set_member(conn: &mut AnyConnection, team: &str, staff: &str, lead: bool) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO memberships (team, staff_id, lead) VALUES ($1, $2, $3) \
         ON CONFLICT (team, staff_id) DO UPDATE SET lead = excluded.lead",
    )
    .bind(team)
    .bind(staff)
    .bind(i64::from(lead))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn remove_member(conn: &mut AnyConnection, team: &str, staff: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM memberships WHERE team = $1 AND staff_id = $2")
        .bind(team)
        .bind(staff)
        .execute(conn)
        .await?;
    Ok(())
}
