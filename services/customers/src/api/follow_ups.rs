//! Follow-up visits: each customer's plan, the plans due, and visits, which
//! move the plan on by one cycle.
use chrono::NaiveDate;
use kefu_kit::{Error, Result, auth::Principal, error::Violations, page, parse};
use kefu_proto::customers::v1 as pb;

use super::{CustomersApi, audit, unchecked};
use crate::{
    domain::{self, Channel, DueFilter, FollowUpPlan, Visit},
    store,
};

const LIST: &str = "follow_ups";

fn plan_pb(p: &FollowUpPlan) -> pb::FollowUpPlan {
    pb::FollowUpPlan {
        customer_id: p.customer_id.clone(),
        owner: p.owner.clone(),
        cycle_days: i32::try_from(p.cycle_days).unwrap_or(i32::MAX),
        next_due_date: parse::format_date(p.next_due),
        active: p.active,
        company_name: p.company_name.clone(),
        last_visit_date: p.last_visit.map(parse::format_date).unwrap_or_default(),
    }
}

fn visit_pb(v: &Visit) -> pb::FollowUpVisit {
    pb::FollowUpVisit {
        id: v.id.clone(),
        customer_id: v.customer_id.clone(),
        visit_date: parse::format_date(v.visit_date),
        channel: v.channel.into(),
        outcome: v.outcome.clone(),
        satisfaction: v.satisfaction,
        notes: v.notes.clone(),
        visited_by: v.visited_by.clone(),
        next_due_date: parse::format_date(v.next_due),
    }
}

/// A cycle in days: 0 means `default`.
fn cycle_days(field: &str, raw: i32, default: u32) -> Result<i64> {
    match raw {
        0 => Ok(i64::from(default)),
        1..=366 => Ok(i64::from(raw)),
        _ => Err(Error::invalid(field, "must be between 1 and 366 days")),
    }
}

/// An optional date: empty is `None`.
fn opt_date(field: &str, raw: &str) -> Result<Option<NaiveDate>> {
    if raw.trim().is_empty() { Ok(None) } else { parse::date(field, raw).map(Some) }
}

pub(super) async fn set_plan(
    api: &CustomersApi,
    p: &Principal,
    r: pb::SetFollowUpPlanRequest,
) -> Result<pb::FollowUpPlan> {
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let customer_id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let owner = v.check(parse::required_line("owner", &r.owner, 64)).unwrap_or_default();
    let cycle = v.check(cycle_days("cycle_days", r.cycle_days, api.settings.follow_up_cycle_days)).unwrap_or_default();
    let next_due = v.check(opt_date("next_due_date", &r.next_due_date));
    v.finish()?;
    let next_due = next_due.ok_or_else(|| unchecked("next_due_date"))?;
    let mut tx = api.pool.begin().await?;
    let customer = store::require_customer(&mut tx, &customer_id).await?;
    customer.ensure_writable()?;
    let existing = store::get_plan(&mut tx, &customer_id).await?;
    let plan = FollowUpPlan {
        customer_id: customer_id.clone(),
        owner,
        cycle_days: cycle,
        next_due: next_due.unwrap_or_else(|| domain::add_days(domain::today(), cycle)),
        active: r.active,
        last_visit: existing.and_then(|e| e.last_visit),
        company_name: customer.company_name.clone(),
    };
    store::put_plan(&mut tx, &plan).await?;
    let detail = format!("owner={};cycle_days={cycle};active={}", plan.owner, plan.active);
    audit::record(api, &mut tx, p, "follow_up.plan", &customer_id, detail, "").await?;
    tx.commit().await?;
    Ok(plan_pb(&plan))
}

pub(super) async fn get_plan(api: &CustomersApi, r: pb::GetFollowUpPlanRequest) -> Result<pb::FollowUpPlan> {
    let id = parse::id("customer_id", &r.customer_id)?;
    let mut conn = api.pool.acquire().await?;
    let plan = store::get_plan(&mut conn, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("follow-up plan of customer {id}")))?;
    Ok(plan_pb(&plan))
}

/// The `(next_due, customer_id)` a page token of this list carries.
fn cursor(token: &str) -> Result<Option<(NaiveDate, String)>> {
    let Some(keys) = page::keys(LIST, 2, token)? else { return Ok(None) };
    let bad = || Error::invalid("page_token", "is not a page token returned by this list");
    let [due, customer_id] = <[String; 2]>::try_from(keys).map_err(|_| bad())?;
    let due = NaiveDate::parse_from_str(&due, "%Y-%m-%d").map_err(|_| bad())?;
    Ok(Some((due, customer_id)))
}

pub(super) async fn list_due(
    api: &CustomersApi,
    r: pb::ListDueFollowUpsRequest,
) -> Result<pb::ListDueFollowUpsResponse> {
    let mut v = Violations::new();
    let due_by = v.check(opt_date("due_by", &r.due_by)).flatten().unwrap_or_else(domain::today);
    let owner = v.check(parse::line("owner", &r.owner, 64)).filter(|o| !o.is_empty());
    let size = v.check(parse::page_size("page_size", r.page_size, 100, 1000)).unwrap_or_default();
    let after = v.check(cursor(&r.page_token)).flatten();
    v.finish()?;
    let filter = DueFilter { due_by, owner, after };
    let mut conn = api.pool.acquire().await?;
    let rows = store::due_plans(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = match rows.last() {
        Some(last) if more => page::token(LIST, &[&parse::format_date(last.next_due), &last.customer_id]),
        _ => String::new(),
    };
    Ok(pb::ListDueFollowUpsResponse { plans: rows.iter().map(plan_pb).collect(), next_page_token })
}

pub(super) async fn record_visit(
    api: &CustomersApi,
    p: &Principal,
    r: pb::RecordFollowUpVisitRequest,
) -> Result<pb::FollowUpVisit> {
    let visit = r.visit.ok_or_else(|| Error::invalid("visit", "is required"))?;
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let customer_id = v.check(parse::id("visit.customer_id", &visit.customer_id)).unwrap_or_default();
    let date = v.check(opt_date("visit.visit_date", &visit.visit_date)).flatten().unwrap_or_else(domain::today);
    if date > domain::add_days(domain::today(), 1) {
        v.add("visit.visit_date", "is in the future");
    }
    let channel = v.check(parse::enumeration("visit.channel", visit.channel, Some(Channel::Phone)));
    let outcome = v.check(parse::required_text("visit.outcome", &visit.outcome, 500)).unwrap_or_default();
    if !(1..=5).contains(&visit.satisfaction) {
        v.add("visit.satisfaction", "must be 1 to 5");
    }
    let notes = v.check(parse::text("visit.notes", &visit.notes, 4000)).unwrap_or_default();
    v.finish()?;
    let channel = channel.ok_or_else(|| unchecked("visit.channel"))?;
    let mut tx = api.pool.begin().await?;
    let customer = store::require_customer(&mut tx, &customer_id).await?;
    customer.ensure_writable()?;
    let mut plan = match store::get_plan(&mut tx, &customer_id).await? {
        Some(plan) => plan,
        None => FollowUpPlan {
            customer_id: customer_id.clone(),
            owner: if customer.account_manager.is_empty() {
                p.subject.clone()
            } else {
                customer.account_manager.clone()
            },
            cycle_days: i64::from(api.settings.follow_up_cycle_days),
            next_due: date,
            active: true,
            last_visit: None,
            company_name: customer.company_name.clone(),
        },
    };
    plan.record_visit(date);
    store::put_plan(&mut tx, &plan).await?;
    let recorded = Visit {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: customer_id.clone(),
        visit_date: date,
        channel,
        outcome,
        satisfaction: visit.satisfaction,
        notes,
        visited_by: p.subject.clone(),
        next_due: plan.next_due,
    };
    store::insert_visit(&mut tx, &recorded).await?;
    let detail = format!("visit={};satisfaction={}", recorded.id, recorded.satisfaction);
    audit::record(api, &mut tx, p, "follow_up.visit", &customer_id, detail, "").await?;
    tx.commit().await?;
    Ok(visit_pb(&recorded))
}

pub(super) async fn list_visits(
    api: &CustomersApi,
    r: pb::ListFollowUpVisitsRequest,
) -> Result<pb::ListFollowUpVisitsResponse> {
    let id = parse::id("customer_id", &r.customer_id)?;
    let mut conn = api.pool.acquire().await?;
    store::require_customer(&mut conn, &id).await?;
    let visits = store::visits(&mut conn, &id).await?.iter().map(visit_pb).collect();
    Ok(pb::ListFollowUpVisitsResponse { visits })
}
