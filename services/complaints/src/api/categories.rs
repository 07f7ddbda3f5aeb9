//! The category taxonomy a firm edits: codes with Chinese labels, in its
//! order; retired codes keep their labels for the complaints filed under
//! them. Each change is in the audit trail: who, when, why and what
//! changed (and with the etag, no lost update).
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
    let before = store::CATEGORIES.entries(&mut tx, false).await?;
    let detail = changes(&before.iter().map(|k| (k.code.as_str(), k.label.as_str())).collect::<Vec<_>>(), &list);
    store::CATEGORIES.replace(&mut tx, &list).await?;
    store::relabel(&mut tx, &list).await?;
    store::set_counter(&mut tx, COUNTER, version + 1).await?;
    super::audit::record(api, &mut tx, p, "complaints.categories.set", "categories", detail, &reason).await?;
    tracing::info!(by = %p.subject, categories = list.len(), "complaint categories changed");
    let out = listed(&mut tx, false).await?;
    tx.commit().await?;
    Ok(out)
}

/// What a new list changes: codes added, retired, relabelled (for the audit
/// trail).
fn changes(before: &[(&str, &str)], after: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    let added: Vec<String> =
        after.iter().filter(|(c, _)| !before.iter().any(|(b, _)| b == c)).map(|(c, l)| format!("{c}={l}")).collect();
    let retired: Vec<&str> =
        before.iter().filter(|(b, _)| !after.iter().any(|(c, _)| c == b)).map(|(b, _)| *b).collect();
    let relabelled: Vec<String> = after
        .iter()
        .filter_map(|(c, l)| {
            before.iter().find(|(b, old)| b == c && old != l).map(|(_, old)| format!("{c}: {old}→{l}"))
        })
        .collect();
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    if !retired.is_empty() {
        parts.push(format!("retired {}", retired.join(", ")));
    }
    if !relabelled.is_empty() {
        parts.push(format!("relabelled {}", relabelled.join(", ")));
    }
    if parts.is_empty() {
        parts.push("order only".into());
    }
    format!("{}; {} offered", parts.join("; "), after.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn changes_name_added_retired_and_relabelled_codes() {
        let before = [("attitude", "服务态度"), ("fees", "收费争议"), ("other", "其他")];
        let after = vec![
            ("attitude".to_owned(), "服务态度与礼仪".to_owned()),
            ("privacy".to_owned(), "信息安全".to_owned()),
            ("other".to_owned(), "其他".to_owned()),
        ];
        assert_eq!(
            super::changes(&before, &after),
            "added privacy=信息安全; retired fees; relabelled attitude: 服务态度→服务态度与礼仪; 3 offered"
        );
        let same: Vec<(String, String)> = before.iter().map(|(c, l)| ((*c).to_owned(), (*l).to_owned())).collect();
        assert_eq!(super::changes(&before, &same), "order only; 3 offered");
    }
}
