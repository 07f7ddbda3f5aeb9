//! Consents to process or disclose a customer's data.
use kefu_kit::{Error, Result, auth::Principal, error::Violations, parse};
use kefu_proto::customers::v1 as pb;

use super::{CustomersApi, audit, unchecked};
use crate::{
    domain::{ALL_CATEGORIES, Consent, DataCategory},
    store::{self, now_ms},
};

pub(super) fn consent_pb(c: &Consent) -> pb::Consent {
    pb::Consent {
        id: c.id.clone(),
        customer_id: c.customer_id.clone(),
        purpose: c.purpose.clone(),
        recipient: c.recipient.clone(),
        data_categories: c.categories.iter().map(|k| i32::from(*k)).collect(),
        grant_time: parse::ts(c.granted_at),
        expire_time: parse::ts_opt(c.expires_at),
        revoke_time: parse::ts_opt(c.revoked_at),
        recorded_by: c.recorded_by.clone(),
        evidence: c.evidence.clone(),
        live: c.is_live(now_ms()),
    }
}

/// Data categories, sorted and without duplicates. None named is every
/// category when `empty_means_all`, else refused.
pub(super) fn parse_categories(field: &str, raw: &[i32], empty_means_all: bool) -> Result<Vec<DataCategory>> {
    let mut v = Violations::new();
    let mut out: Vec<DataCategory> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        if let Some(cat) = v.check(parse::enumeration::<DataCategory>(&format!("{field}[{i}]"), *c, None))
            && !out.contains(&cat)
        {
            out.push(cat);
        }
    }
    v.finish()?;
    if out.is_empty() {
        if empty_means_all {
            return Ok(ALL_CATEGORIES.to_vec());
        }
        return Err(Error::invalid(field, "name at least one data category"));
    }
    out.sort_unstable_by_key(|c| i32::from(*c));
    Ok(out)
}

pub(super) async fn create(api: &CustomersApi, p: &Principal, r: pb::CreateConsentRequest) -> Result<pb::Consent> {
    let c = r.consent.ok_or_else(|| Error::invalid("consent", "is required"))?;
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let customer_id = v.check(parse::id("consent.customer_id", &c.customer_id)).unwrap_or_default();
    let purpose = v.check(parse::required_text("consent.purpose", &c.purpose, 500)).unwrap_or_default();
    let recipient = v.check(parse::line("consent.recipient", &c.recipient, 200)).unwrap_or_default();
    let categories =
        v.check(parse_categories("consent.data_categories", &c.data_categories, false)).unwrap_or_default();
    let evidence = v.check(parse::text("consent.evidence", &c.evidence, 500)).unwrap_or_default();
    let granted = v.check(parse::opt_timestamp("consent.grant_time", c.grant_time.as_ref()));
    let expires = v.check(parse::opt_timestamp("consent.expire_time", c.expire_time.as_ref()));
    // Unset, the consent is granted now.
    let granted = granted.map(|g| g.unwrap_or_else(now_ms));
    if let (Some(g), Some(Some(e))) = (granted, expires)
        && e <= g
    {
        v.add("consent.expire_time", "must be after grant_time");
    }
    v.finish()?;
    let (Some(granted_at), Some(expires_at)) = (granted, expires) else {
        return Err(unchecked("consent times"));
    };
    let consent = Consent {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: customer_id.clone(),
        purpose,
        recipient,
        categories,
        granted_at,
        expires_at,
        revoked_at: None,
        recorded_by: p.subject.clone(),
        evidence,
    };
    let mut tx = api.pool.begin().await?;
    store::require_customer(&mut tx, &customer_id).await?.ensure_writable()?;
    store::insert_consent(&mut tx, &consent).await?;
    let detail = format!("consent={};recipient={}", consent.id, consent.recipient);
    audit::record(api, &mut tx, p, "consent.create", &customer_id, detail, &consent.purpose).await?;
    tx.commit().await?;
    Ok(consent_pb(&consent))
}

pub(super) async fn revoke(api: &CustomersApi, p: &Principal, r: pb::RevokeConsentRequest) -> Result<pb::Consent> {
    let mut v = Violations::new();
    let customer_id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let id = v.check(parse::id("consent_id", &r.consent_id)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    store::require_customer(&mut tx, &customer_id).await?;
    let consent = store::revoke_consent(&mut tx, &customer_id, &id).await?;
    audit::record(api, &mut tx, p, "consent.revoke", &customer_id, format!("consent={id}"), "").await?;
    tx.commit().await?;
    Ok(consent_pb(&consent))
}

pub(super) async fn list(api: &CustomersApi, r: pb::ListConsentsRequest) -> Result<pb::ListConsentsResponse> {
    let id = parse::id("customer_id", &r.customer_id)?;
    let mut conn = api.pool.acquire().await?;
    store::require_customer(&mut conn, &id).await?;
    let consents = store::consents(&mut conn, &id).await?.iter().map(consent_pb).collect();
    Ok(pb::ListConsentsResponse { consents })
}
