//! The category taxonomy a firm edits: codes with Chinese labels, in its
//! order; retired codes keep their labels for the complaints filed under
//! them. Each change is in the complaint history's sense of record: who,
//! when and why are kept with it (and with the etag, no lost update).
use kefu_kit::{Error, auth::Principal, error::Violations, etag, parse};
use kefu_proto::complaints::v1 as pb;

use super::ComplaintsApi;
use crate::{domain, store};

const COUNTER: &str = "categories";
const LABEL_MAX: usize = 40;

async fn listed(
    conn: &mut sqlx::AnyConnection,
    include_retired: bool,
) -> Result<pb::ListComplaintCategoriesResponse, Error> {
    let list = store::CATEGORIES.entries(conn, include_retired).await?;
    let version = store::counter(conn, COUNTER).await?;
    Ok(pb::ListComplaintCategoriesResponse {
        categories: list
            .into_iter()
            .map(|k| pb::ComplaintCategory { code: k.code, label: k.label, active: k.active == 1 })
            .collect(),
        etag: etag::of(version),
    })
}

pub(super) async fn list(
    api: &ComplaintsApi,
    r: pb::ListComplaintCategoriesRequest,
) -> Result<pb::ListComplaintCategoriesResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    listed(&mut conn, r.include_retired).await
}

pub(super) async fn set(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::SetComplaintCategoriesRequest,
) -> Result<pb::ListComplaintCategoriesResponse, Error> {
    let mut v = Violations::new();
    let reason = v.check(parse::required_line("reason", &r.reason, 500)).unwrap_or_default();
    if r.etag.trim().is_empty() {
        v.add("etag", "send the etag ListComplaintCategories gave (no change is made blind)");
    }
    if r.categories.is_empty() || r.categories.len() > 50 {
        v.add("categories", "give 1 to 50 categories");
    }
    for (i, c) in r.categories.iter().enumerate() {
        v.check(domain::category(&format!("categories[{i}].code"), &c.code));
    }
    let given: Vec<(String, String)> = r.categories.iter().map(|c| (c.code.clone(), c.label.clone())).collect();
    // `other` is always offered.
    let list = kefu_kit::taxonomy::checked_list(&mut v, &given, LABEL_MAX, ("other", "其他"));
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let version = store::counter(&mut tx, COUNTER).await?;
    etag::check("categories", &r.etag, version)?;
    store::CATEGORIES.replace(&mut tx, &list).await?;
    store::relabel(&mut tx, &list).await?;
    store::set_counter(&mut tx, COUNTER, version + 1).await?;
    tracing::info!(by = %p.subject, categories = list.len(), reason = %reason, "complaint categories changed");
    let out = listed(&mut tx, false).await?;
    tx.commit().await?;
    Ok(out)
}
