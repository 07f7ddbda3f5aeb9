//! Legal holds: while one lasts, the customer's data cannot be erased.
//! Placed and released by the complaints service (a complaint gone to
//! legal channels) or by an admin; each step is in the audit trail.
use kefu_kit::{Error, Result, auth::Principal, error::Violations, parse};
use kefu_proto::customers::v1 as pb;

use super::{CustomersApi, audit};
use crate::store::{self, HoldRow, now_ms};

fn hold_pb(h: HoldRow) -> pb::LegalHold {
    pb::LegalHold {
        active: h.released_at.is_none(),
        customer_id: h.customer_id,
        reference: h.reference,
        reason: h.reason,
        placed_by: h.placed_by,
        place_time: parse::ts(h.placed_at),
        released_by: h.released_by,
        release_time: parse::ts_opt(h.released_at),
        generation: h.generation,
    }
}

fn parts(customer_id: &str, reference: &str, reason: &str) -> Result<(String, String, String)> {
    let mut v = Violations::new();
    let id = v.check(parse::id("customer_id", customer_id)).unwrap_or_default();
    let reference = v.check(parse::required_line("reference", reference, 64)).unwrap_or_default();
    let reason = v.check(parse::required_line("reason", reason, 500)).unwrap_or_default();
    v.finish()?;
    Ok((id, reference, reason))
}

pub(super) async fn place(api: &CustomersApi, p: &Principal, r: pb::PlaceLegalHoldRequest) -> Result<pb::LegalHold> {
    let (id, reference, reason) = parts(&r.customer_id, &r.reference, &r.reason)?;
    let mut tx = api.pool.begin().await?;
    store::lock_customer(&mut tx, &id).await?;
    store::require_customer(&mut tx, &id).await?;
    if let Some(h) = store::get_hold(&mut tx, &id, &reference).await?
        && h.released_at.is_none()
    {
        // Placed again while it lasts: renewed, so that a release asked for
        // an earlier placing no longer ends it.
        store::renew_hold(&mut tx, &id, &reference).await?;
        audit::record(
            api,
            &mut tx,
            p,
            "customer.legal_hold.renew",
            &id,
            format!("reference={reference} generation={}", h.generation + 1),
            &reason,
        )
        .await?;
        let h = store::get_hold(&mut tx, &id, &reference)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the renewed hold is missing")))?;
        tx.commit().await?;
        return Ok(hold_pb(h));
    }
    let mut hold = HoldRow {
        customer_id: id.clone(),
        reference: reference.clone(),
        reason: reason.clone(),
        placed_by: p.subject.clone(),
        placed_at: now_ms(),
        released_by: String::new(),
        released_at: None,
        generation: 0,
    };
    store::put_hold(&mut tx, &hold).await?;
    hold.generation = store::get_hold(&mut tx, &id, &reference).await?.map_or(1, |h| h.generation);
    audit::record(api, &mut tx, p, "customer.legal_hold.place", &id, format!("reference={reference}"), &reason).await?;
    tx.commit().await?;
    Ok(hold_pb(hold))
}

pub(super) async fn release(
    api: &CustomersApi,
    p: &Principal,
    r: pb::ReleaseLegalHoldRequest,
) -> Result<pb::LegalHold> {
    let (id, reference, reason) = parts(&r.customer_id, &r.reference, &r.reason)?;
    if r.generation < 0 {
        return Err(Error::invalid("generation", "must be a placing's generation (or 0 for the current one)"));
    }
    let mut tx = api.pool.begin().await?;
    store::lock_customer(&mut tx, &id).await?;
    let Some(h) = store::get_hold(&mut tx, &id, &reference).await? else {
        return Err(Error::NotFound(format!("legal hold {reference:?} on customer {id}")));
    };
    if h.released_at.is_some() {
        // Released already: a retry changes nothing.
        return Ok(hold_pb(h));
    }
    if r.generation != 0 && r.generation != h.generation {
        return Err(Error::FailedPrecondition(format!(
            "legal hold {reference:?} was placed again (generation {}) after generation {} that this release names; \
             it stays",
            h.generation, r.generation
        )));
    }
    store::release_hold(&mut tx, &id, &reference, &p.subject, now_ms()).await?;
    audit::record(api, &mut tx, p, "customer.legal_hold.release", &id, format!("reference={reference}"), &reason)
        .await?;
    let h = store::get_hold(&mut tx, &id, &reference)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the released hold is missing")))?;
    tx.commit().await?;
    Ok(hold_pb(h))
}

pub(super) async fn list(api: &CustomersApi, r: pb::ListLegalHoldsRequest) -> Result<pb::ListLegalHoldsResponse> {
    let id = parse::id("customer_id", &r.customer_id)?;
    let mut conn = api.pool.acquire().await?;
    store::require_customer(&mut conn, &id).await?;
    Ok(pb::ListLegalHoldsResponse { holds: store::holds(&mut conn, &id).await?.into_iter().map(hold_pb).collect() })
}

/// Refuses an erasure while a hold lasts, naming the holds.
pub(super) async fn ensure_not_held(conn: &mut sqlx::AnyConnection, customer_id: &str) -> Result<()> {
    let held = store::active_holds(conn, customer_id).await?;
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::FailedPrecondition(format!(
        "the customer is under legal hold ({}); their data cannot be erased until the hold is released",
        held.join(", ")
    )))
}
