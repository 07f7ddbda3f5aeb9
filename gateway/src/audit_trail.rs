//! The gateway's own audit trail over REST: account, password and API-key
//! changes (`kefu_kit::audit`), listed and verified by auditors and admins.
use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AppState, access, problem::Problem, require};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Entries after this sequence number.
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<i64>,
    /// Entries about one account or API key.
    #[serde(default)]
    subject: Option<String>,
}

pub(crate) async fn list(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    require(&p, access::roles("GET", "/api/v1/gateway-audit"))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit", "must be 1–1000"));
    }
    let mut conn = gw.auth.pool.acquire().await.map_err(Problem::internal)?;
    let entries = kefu_kit::audit::list(&mut conn, q.subject.as_deref(), q.after.max(0), limit).await?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({"seq": e.seq, "time": e.at, "actor": e.actor, "actorRole": e.actor_role, "action": e.action,
                   "subject": e.subject, "detail": e.detail, "hash": e.hash, "prevHash": e.prev_hash, "keyId": e.key_id})
        })
        .collect();
    Ok(Json(json!({"entries": entries})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    #[serde(default)]
    checkpoint_seq: Option<i64>,
    #[serde(default)]
    checkpoint_hash: Option<String>,
}

pub(crate) async fn verify(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    require(&p, access::roles("GET", "/api/v1/gateway-audit/verify"))?;
    if q.checkpoint_seq.is_none() && q.checkpoint_hash.is_some() {
        return Err(Problem::bad_request("checkpointSeq", "is required with checkpointHash"));
    }
    // Refusals name the query's parameters.
    let checkpoint =
        kefu_kit::audit::parse_checkpoint(q.checkpoint_seq.unwrap_or(0), q.checkpoint_hash.as_deref().unwrap_or(""))
            .map_err(|e| match e {
                kefu_kit::Error::InvalidArgument(v) => kefu_kit::Error::InvalidArgument(
                    v.into_iter()
                        .map(|f| {
                            let field = if f.field == "checkpoint_seq" { "checkpointSeq" } else { "checkpointHash" };
                            kefu_kit::FieldViolation::new(field, f.description)
                        })
                        .collect(),
                ),
                other => other,
            })?;
    let mut conn = gw.auth.pool.acquire().await.map_err(Problem::internal)?;
    let v = kefu_kit::audit::verify_logged(&mut conn, &gw.auth.audit_keys, checkpoint.as_ref()).await?;
    Ok(Json(json!({
        "intact": v.problem.is_none(),
        "entriesChecked": v.entries_checked,
        "firstBadSeq": v.problem.as_ref().map_or(0, |p| p.0),
        "problem": v.problem.map(|p| p.1).unwrap_or_default(),
        "headSeq": v.head.seq,
        "headHash": v.head.hash,
    }))
    .into_response())
}
