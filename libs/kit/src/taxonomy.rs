//! A labelled code list a firm edits — ticket categories, complaint
//! categories: each entry a code records store and a Chinese label people
//! read, in the firm's order. Replacing the list retires the codes left out
//! (kept, with their labels, for the records filed under them).
use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::{Error, error::Violations, parse};

/// One entry as stored (`active` 1 or 0).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub code: String,
    pub label: String,
    pub position: i64,
    pub active: i64,
}

/// A list kept in `table` (columns code, label, position, active).
#[derive(Debug, Clone, Copy)]
pub struct Taxonomy {
    pub table: &'static str,
}

impl Taxonomy {
    pub async fn entries(self, conn: &mut AnyConnection, include_retired: bool) -> Result<Vec<Entry>, Error> {
        let filter = if include_retired { "" } else { "WHERE active = 1" };
        Ok(sqlx::query_as(&format!(
            "SELECT code, label, position, active FROM {} {filter} ORDER BY active DESC, position, code",
            self.table
        ))
        .fetch_all(conn)
        .await?)
    }

    /// The active codes, read at the moment of use (every replica sees a
    /// change at once).
    pub async fn active_codes(self, conn: &mut AnyConnection) -> Result<Vec<String>, Error> {
        let sql = format!("SELECT code FROM {} WHERE active = 1 ORDER BY position, code", self.table);
        let rows = sqlx::query(&sql).fetch_all(conn).await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::from)).collect()
    }

    /// Code → label of every entry, retired ones included.
    pub async fn labels(self, conn: &mut AnyConnection) -> Result<HashMap<String, String>, Error> {
        let rows = sqlx::query(&format!("SELECT code, label FROM {}", self.table)).fetch_all(conn).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Makes `list` the active entries in its order; codes left out are
    /// retired, their labels kept.
    pub async fn replace(self, conn: &mut AnyConnection, list: &[(String, String)]) -> Result<(), Error> {
        sqlx::query(&format!("UPDATE {} SET active = 0", self.table)).execute(&mut *conn).await?;
        for (i, (code, label)) in list.iter().enumerate() {
            sqlx::query(&format!(
                "INSERT INTO {} (code, label, position, active) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (code) DO UPDATE SET label = excluded.label, position = excluded.position, active = 1",
                self.table
            ))
            .bind(code)
            .bind(label)
            .bind(i64::try_from(i).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A list a request gives, checked entry by entry (`categories[i].label`
/// names a problem): labels required (at most `label_max` characters), no
/// code or label twice (a picker shows no two alike); `always` (code,
/// label) is kept whatever the list says. Codes are checked by the caller.
pub fn checked_list(
    v: &mut Violations,
    items: &[(String, String)],
    label_max: usize,
    always: (&str, &str),
) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = Vec::new();
    for (i, (code, label)) in items.iter().enumerate() {
        let label = v.check(parse::required_line(&format!("categories[{i}].label"), label, label_max));
        let code = code.trim().to_owned();
        if let Some(j) = list.iter().position(|(k, _)| *k == code) {
            v.add(format!("categories[{i}].code"), format!("{code} is listed twice (also categories[{j}])"));
        }
        if let Some(label) = label {
            if let Some(j) = list.iter().position(|(_, l)| *l == label) {
                v.add(format!("categories[{i}].label"), format!("{label} is also the label of categories[{j}]"));
            }
            list.push((code, label));
        }
    }
    if !list.iter().any(|(c, _)| c == always.0) {
        list.push((always.0.to_owned(), always.1.to_owned()));
    }
    list
}
