//! Follow-up plans and visits.
use kefu_kit::{
    Error,
    db::{Bind, Where, fetch_all_as},
    parse::format_date,
};
use sqlx::AnyConnection;

use super::{flag, now_ms, number, stored, stored_date};
use crate::domain::{DueFilter, FollowUpPlan, Visit};

const PLAN_SELECT: &str = "SELECT p.customer_id, p.owner, p.cycle_days, p.next_due, p.active, p.last_visit, \
    c.company_name FROM follow_up_plans p JOIN customers c ON c.id = p.customer_id";

#[derive(sqlx::FromRow)]
struct PlanRecord {
    customer_id: String,
    owner: String,
    cycle_days: i64,
    next_due: String,
    active: i64,
    last_visit: Option<String>,
    company_name: String,
}

impl PlanRecord {
    fn into_plan(self) -> Result<FollowUpPlan, Error> {
        Ok(FollowUpPlan {
            next_due: stored_date("follow_up_plans.next_due", &self.next_due)?,
            last_visit: self.last_visit.as_deref().map(|d| stored_date("follow_up_plans.last_visit", d)).transpose()?,
            customer_id: self.customer_id,
            owner: self.owner,
            cycle_days: self.cycle_days,
            active: self.active == 1,
            company_name: self.company_name,
        })
    }
}

pub async fn get_plan(conn: &mut AnyConnection, customer_id: &str) -> Result<Option<FollowUpPlan>, Error> {
    let sql = format!("{PLAN_SELECT} WHERE p.customer_id = $1");
    let row = sqlx::query_as::<_, PlanRecord>(&sql).bind(customer_id).fetch_optional(conn).await?;
    row.map(PlanRecord::into_plan).transpose()
}

/// Stores a customer's plan, replacing any earlier one; concurrent writers do
/// not clash, the last to commit wins.
pub async fn put_plan(conn: &mut AnyConnection, p: &FollowUpPlan) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO follow_up_plans (customer_id, owner, cycle_days, next_due, active, last_visit) \
         VALUES ($1,$2,$3,$4,$5,$6) \
         ON CONFLICT (customer_id) DO UPDATE SET owner = excluded.owner, cycle_days = excluded.cycle_days, \
         next_due = excluded.next_due, active = excluded.active, last_visit = excluded.last_visit",
    )
    .bind(&p.customer_id)
    .bind(&p.owner)
    .bind(p.cycle_days)
    .bind(format_date(p.next_due))
    .bind(flag(p.active))
    .bind(p.last_visit.map(format_date))
    .execute(conn)
    .await?;
    Ok(())
}

/// Stops a customer's plan (archived or erased customers are not visited).
pub async fn deactivate_plan(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    sqlx::query("UPDATE follow_up_plans SET active = 0 WHERE customer_id = $1").bind(customer_id).execute(conn).await?;
    Ok(())
}

/// Active plans of live customers matching `f`, earliest due first (ties in
/// customer id order), at most `limit`.
pub async fn due_plans(conn: &mut AnyConnection, f: &DueFilter, limit: i64) -> Result<Vec<FollowUpPlan>, Error> {
    let mut w = Where::new();
    w.and_sql("p.active = 1").and_sql("c.live = 1").and("p.next_due <= $?", format_date(f.due_by));
    if let Some(owner) = &f.owner {
        w.and("p.owner = $?", owner.as_str());
    }
    if let Some((due, customer_id)) = &f.after {
        // After (due, customer_id): due on or after `due`, and past the
        // cursor's customer when due on the same day. The second condition
        // reuses the first one's placeholder for `due`.
        let due_at = w.next_placeholder();
        w.and("p.next_due >= $?", format_date(*due));
        w.and(&format!("(p.next_due > ${due_at} OR p.customer_id > $?)"), customer_id.as_str());
    }
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(Bind::Int(limit));
    let sql = format!("{PLAN_SELECT} WHERE {clause} ORDER BY p.next_due, p.customer_id LIMIT ${limit_at}");
    let rows: Vec<PlanRecord> = fetch_all_as(conn, &sql, binds).await?;
    rows.into_iter().map(PlanRecord::into_plan).collect()
}

#[derive(sqlx::FromRow)]
struct VisitRecord {
    id: String,
    customer_id: String,
    visit_date: String,
    channel: i64,
    outcome: String,
    satisfaction: i64,
    notes: String,
    visited_by: String,
    next_due: String,
}

impl VisitRecord {
    fn into_visit(self) -> Result<Visit, Error> {
        Ok(Visit {
            visit_date: stored_date("follow_up_visits.visit_date", &self.visit_date)?,
            next_due: stored_date("follow_up_visits.next_due", &self.next_due)?,
            channel: stored("follow_up_visits.channel", self.channel)?,
            satisfaction: i32::try_from(self.satisfaction).map_err(|_| {
                Error::Internal(anyhow::anyhow!("follow_up_visits.satisfaction holds {}", self.satisfaction))
            })?,
            id: self.id,
            customer_id: self.customer_id,
            outcome: self.outcome,
            notes: self.notes,
            visited_by: self.visited_by,
        })
    }
}

pub async fn insert_visit(conn: &mut AnyConnection, v: &Visit) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO follow_up_visits (id, customer_id, visit_date, channel, outcome, satisfaction, notes, \
         visited_by, next_due, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&v.id)
    .bind(&v.customer_id)
    .bind(format_date(v.visit_date))
    .bind(number(v.channel))
    .bind(&v.outcome)
    .bind(i64::from(v.satisfaction))
    .bind(&v.notes)
    .bind(&v.visited_by)
    .bind(format_date(v.next_due))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// A customer's visits, oldest first.
pub async fn visits(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<Visit>, Error> {
    let rows = sqlx::query_as::<_, VisitRecord>(
        "SELECT id, customer_id, visit_date, channel, outcome, satisfaction, notes, visited_by, next_due \
         FROM follow_up_visits WHERE customer_id = $1 ORDER BY visit_date, id",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(VisitRecord::into_visit).collect()
}
