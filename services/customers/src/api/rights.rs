//! Data-subject rights: exporting everything held on a customer (to the
//! customer, or to a third party a live consent names) and erasing personal
//! data.
use kefu_kit::{Error, Result, auth::Principal, error::Violations, parse};
use kefu_proto::{ProtoEnum, customers::v1 as pb};

use super::{CustomersApi, approvals, audit, consents::parse_categories, profile, tax_profile};
use crate::{
    domain::{DataCategory, LifecycleStatus},
    store::{self, now_ms},
};

/// The contract name of an enum value sent as a number ("" when unknown).
fn name_of<E: ProtoEnum>(raw: i32) -> &'static str {
    E::try_from(raw).map_or("", |e| e.name())
}

pub(super) async fn export(
    api: &CustomersApi,
    p: &Principal,
    r: pb::ExportCustomerDataRequest,
) -> Result<pb::ExportCustomerDataResponse> {
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let recipient = v.check(parse::line("recipient", &r.recipient, 200)).unwrap_or_default();
    let purpose = v.check(parse::required_text("purpose", &r.purpose, 500)).unwrap_or_default();
    let categories = v.check(parse_categories("data_categories", &r.data_categories, true)).unwrap_or_default();
    let approval_id = v.check(parse::opt_id("approval_id", &r.approval_id)).flatten();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let row = store::require_customer(&mut tx, &id).await?;
    row.ensure_writable()?;
    if !recipient.is_empty() {
        let now = now_ms();
        let consents = store::consents(&mut tx, &id).await?;
        if !consents.iter().any(|c| c.covers(&recipient, &categories, now)) {
            return Err(Error::FailedPrecondition(format!(
                "no live consent from the customer covers disclosure to {recipient:?} of the requested data categories"
            )));
        }
        // Four eyes: a disclosure to a third party needs an approval the
        // caller proposed and another person gave.
        let Some(approval_id) = approval_id else {
            return Err(Error::FailedPrecondition(
                "a disclosure to a third party needs a second person's approval: propose it with ProposeChange \
                 (disclosure), have another supervisor or admin approve it, then export with its approval_id"
                    .into(),
            ));
        };
        approvals::use_disclosure(api, &mut tx, p, &approval_id, &id, &recipient, &categories).await?;
    }
    let has = |c: DataCategory| categories.contains(&c);
    let customer = profile::load(&mut tx, &row).await?;
    let mut doc = serde_json::json!({
        "format": "kefu.customers.export.v1",
        "exported_at": chrono::Utc::now().to_rfc3339(),
        "recipient": recipient,
        "purpose": purpose,
    });
    if has(DataCategory::Profile) {
        doc["profile"] = serde_json::json!({
            "id": customer.id, "company_name": customer.company_name, "uscc": customer.uscc,
            "taxpayer_type": name_of::<pb::TaxpayerType>(customer.taxpayer_type),
            "tax_credit_rating": name_of::<pb::TaxCreditRating>(customer.tax_credit_rating),
            "business_scope": customer.business_scope, "industry": customer.industry, "region": customer.region,
            "service_tier": name_of::<pb::ServiceTier>(customer.service_tier),
            "account_manager": customer.account_manager, "tags": customer.tags,
            "preferences": customer.preferences.as_ref().map(|p| serde_json::json!({
                "preferred_channel": name_of::<kefu_proto::common::v1::Channel>(p.preferred_channel),
                "language": p.language, "greeting_opt_in": p.greeting_opt_in })),
            "lifecycle_status": name_of::<pb::LifecycleStatus>(customer.lifecycle_status),
        });
    }
    if has(DataCategory::Contacts) {
        doc["contacts"] = customer
            .contacts
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "role": c.role, "mobile": c.mobile, "email": c.email, "wechat_id": c.wechat_id, "primary": c.primary}))
            .collect();
    }
    if has(DataCategory::TaxFinancial)
        && let Some(t) = store::get_tax_profile(&mut tx, &id).await?
    {
        let secret = tax_profile::open(&api.keys, &mut tx, &id, &t).await?;
        doc["tax_profile"] = serde_json::to_value(&secret).map_err(anyhow::Error::from)?;
    }
    if has(DataCategory::ServiceHistory) {
        doc["follow_up_visits"] = store::visits(&mut tx, &id)
            .await?
            .iter()
            .map(|v| serde_json::json!({"date": parse::format_date(v.visit_date), "outcome": v.outcome, "satisfaction": v.satisfaction, "notes": v.notes, "visited_by": v.visited_by}))
            .collect();
        doc["greetings"] = store::greetings_of(&mut tx, &id)
            .await?
            .iter()
            .map(|g| serde_json::json!({"festival": g.festival.to_pb().name(), "year": g.year}))
            .collect();
        doc["consents"] = store::consents(&mut tx, &id)
            .await?
            .iter()
            .map(|c| {
                let categories: Vec<i32> = c.categories.iter().map(|k| i32::from(*k)).collect();
                serde_json::json!({"purpose": c.purpose, "recipient": c.recipient, "categories": categories, "granted_at_ms": c.granted_at, "revoked_at_ms": c.revoked_at})
            })
            .collect();
    }
    let category_names: Vec<&str> = categories.iter().map(|c| c.name()).collect();
    let detail = format!(
        "recipient={};categories={}",
        if recipient.is_empty() { "data subject" } else { &recipient },
        category_names.join("|")
    );
    audit::record(api, &mut tx, p, "customer.export", &id, detail, &purpose).await?;
    tx.commit().await?;
    Ok(pb::ExportCustomerDataResponse { document: serde_json::to_string_pretty(&doc).map_err(anyhow::Error::from)? })
}

/// Erasure is proposed and approved (`approvals`); asked for directly, it
/// names those steps and changes nothing.
pub(super) async fn erase(api: &CustomersApi, r: pb::EraseCustomerRequest) -> Result<pb::Customer> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    v.check(parse::required_text("reason", &r.reason, 500));
    v.finish()?;
    let mut conn = api.pool.acquire().await?;
    store::require_customer(&mut conn, &id).await?;
    Err(Error::FailedPrecondition(format!(
        "erasing customer {id} needs a second person: propose it with ProposeChange (erasure) and have another \
         supervisor or admin approve it, which erases"
    )))
}

/// Erases the customer's personal data inside the caller's transaction (an
/// approved erasure), audited as `customer.erase` by `p`, the approver.
pub(super) async fn erase_in(
    api: &CustomersApi,
    tx: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
    reason: &str,
    origin: &str,
) -> Result<()> {
    let customer = store::require_customer(tx, id).await?;
    if customer.lifecycle_status == LifecycleStatus::Erased {
        return Err(Error::FailedPrecondition("the customer's personal data was already erased".into()));
    }
    // A hold placed after the erasure was proposed stops its approval.
    super::holds::ensure_not_held(tx, id).await?;
    store::erase_personal_data(tx, id).await?;
    store::shred_customer_key(tx, id).await?;
    approvals::close_for_erasure(tx, id).await?;
    let detail = format!(
        "contacts, tags, preferences, visit notes purged; data key and tax profile destroyed; records kept ({origin})"
    );
    audit::record(api, tx, p, "customer.erase", id, detail, reason).await
}

/// After an erasure: what it overwrote leaves the database files too.
pub(super) async fn scrub(api: &CustomersApi) {
    if let Err(e) = kefu_kit::db::scrub(&api.pool).await {
        tracing::warn!(error = %e, "erased data may linger in the database's journal until its next checkpoint");
    }
}

/// The erasure feed: the audit trail's `customer.erase` entries, in order.
pub(super) async fn erasures(api: &CustomersApi, r: pb::ListErasuresRequest) -> Result<pb::ListErasuresResponse> {
    let size = parse::page_size("page_size", r.page_size, 100, 1000)?;
    if r.after_seq < 0 {
        return Err(kefu_kit::Error::invalid("after_seq", "must be 0 or the seq of an erasure"));
    }
    let mut conn = api.pool.acquire().await?;
    let rows = store::erasures_after(&mut conn, r.after_seq, size).await?;
    Ok(pb::ListErasuresResponse {
        erasures: rows
            .into_iter()
            .map(|(seq, customer_id, at)| pb::Erasure { seq, customer_id, time: parse::ts(at) })
            .collect(),
    })
}

const ACCESS_LOG: &str = "access-log";

/// The access log, newest first, for one customer or one reader.
pub(super) async fn access_log(api: &CustomersApi, r: pb::ListAccessLogRequest) -> Result<pb::ListAccessLogResponse> {
    let mut v = Violations::new();
    let customer = v.check(parse::opt_id("customer_id", &r.customer_id)).flatten();
    let actor = v.check(parse::line("actor", &r.actor, 128)).filter(|a| !a.is_empty());
    let size = v.check(parse::page_size("page_size", r.page_size, 100, 1000)).unwrap_or_default();
    let before = v.check(kefu_kit::page::after(ACCESS_LOG, &r.page_token)).flatten();
    v.finish()?;
    let mut conn = api.pool.acquire().await?;
    let rows = store::access_log(&mut conn, customer.as_deref(), actor.as_deref(), before.as_deref(), size + 1).await?;
    let (rows, more) = kefu_kit::page::split(rows, size);
    let next_page_token = kefu_kit::page::next(ACCESS_LOG, &rows, more, |r| r.id.clone());
    Ok(pb::ListAccessLogResponse {
        entries: rows
            .into_iter()
            .map(|r| pb::AccessLogEntry {
                time: parse::ts(r.at),
                actor: r.actor,
                actor_role: r.actor_role,
                customer_id: r.customer_id,
                what: r.what,
            })
            .collect(),
        next_page_token,
    })
}
