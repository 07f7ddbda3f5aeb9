//! Staff certificates (table `certificates`).
use kefu_kit::{
    Error,
    db::{Columns, Where, fetch_all_as},
};
use sqlx::AnyConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub id: String,
    pub staff_id: String,
    pub name: String,
    pub kind: i64,
    pub number: String,
    pub issuer: String,
    pub issue_date: String,
    pub expiry_date: Option<String>,
    pub ce_x2: i64,
    pub recorded_by: String,
    pub recorded_at: i64,
}

const CERTIFICATE_COLUMNS: &str =
    "id, staff_id, name, kind, number, issuer, issue_date, expiry_date, ce_x2, recorded_by, recorded_at";

/// Inserts the certificate unless its name and number are recorded: whether
/// it went in.
pub async fn insert_certificate(conn: &mut AnyConnection, c: &CertificateRow) -> Result<bool, Error> {
    Ok(Columns::new()
        .with("id", c.id.as_str())
        .with("staff_id", c.staff_id.as_str())
        .with("name", c.name.as_str())
        .with("kind", c.kind)
        .with("number", c.number.as_str())
        .with("issuer", c.issuer.as_str())
        .with("issue_date", c.issue_date.as_str())
        .with("expiry_date", c.expiry_date.as_deref())
        .with("ce_x2", c.ce_x2)
        .with("recorded_by", c.recorded_by.as_str())
        .with("recorded_at", c.recorded_at)
        .insert_unless_exists(conn, "certificates", "name, number")
        .await?)
}

pub async fn certificate_by_number(
    conn: &mut AnyConnection,
    name: &str,
    number: &str,
) -> Result<Option<CertificateRow>, Error> {
    Ok(sqlx::query_as(&format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE name = $1 AND number = $2"))
        .bind(name)
        .bind(number)
        .fetch_optional(conn)
        .await?)
}

pub async fn certificates(conn: &mut AnyConnection, staff_id: Option<&str>) -> Result<Vec<CertificateRow>, Error> {
    let mut w = Where::new();
    if let Some(s) = staff_id {
        w.and("staff_id = $?", s);
    }
    let (clause, binds) = w.build();
    let sql = format!(
        "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE {clause} ORDER BY staff_id, issue_date, id LIMIT 5000"
    );
    Ok(fetch_all_as(conn, &sql, binds).await?)
}
