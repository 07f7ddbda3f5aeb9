//! Four eyes on roles (`kefu_kit::approval`): a role given through the API
//! (a new account's roles, or roles added to an account) takes effect when
//! a second admin approves it — never the one who proposed it, nor the
//! person receiving it. Taking roles away is immediate and ends the
//! account's sessions. The shell (`kefu admin create-user`, the first start) is
//! the one path that grants directly; it is audited as `kefu-admin`.
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use kefu_kit::{
    approval::{self, Approval, State as ApprovalState},
    audit::AuditKeys,
    auth::{Principal, Role},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::{AppState, access, problem::Problem, require};

/// The approval kind of a role grant.
pub const KIND: &str = "account.roles";

fn never_grant(_: &str) -> bool {
    false
}

/// A role as people read it.
fn label(r: Role) -> &'static str {
    match r {
        Role::Agent => "坐席",
        Role::Supervisor => "主管",
        Role::Hr => "人事",
        Role::Admin => "管理员",
        Role::Auditor => "审计员",
        Role::Service => "系统",
    }
}

#[derive(Serialize, Deserialize)]
struct Terms {
    account_id: String,
    username: String,
    roles: Vec<Role>,
}

/// A role grant as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleGrant {
    pub id: String,
    pub account_id: String,
    pub username: String,
    /// The account's roles once approved.
    pub roles: Vec<String>,
    pub summary: String,
    pub reason: String,
    /// pending, approved, rejected, withdrawn, expired.
    pub state: &'static str,
    pub requested_by: String,
    pub request_time: String,
    pub expire_time: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub decided_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decide_time: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339()
}

fn view(a: Approval) -> RoleGrant {
    let terms: Option<Terms> = serde_json::from_str(&a.payload).ok();
    RoleGrant {
        account_id: a.subject.clone(),
        username: terms.as_ref().map(|t| t.username.clone()).unwrap_or_default(),
        roles: terms.map(|t| t.roles.iter().map(|r| r.as_str().to_owned()).collect()).unwrap_or_default(),
        summary: a.summary,
        reason: a.reason,
        state: a.state.as_str(),
        requested_by: a.requested_by,
        request_time: rfc3339(a.requested_at),
        expire_time: rfc3339(a.expires_at),
        decided_by: a.decided_by,
        decide_time: a.decided_at.map(rfc3339),
        note: a.note,
        id: a.id,
    }
}

/// The account a grant is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grantee<'a> {
    pub account_id: &'a str,
    pub username: &'a str,
    pub staff_id: &'a str,
}

/// Proposes that the account hold `roles`, inside the caller's transaction.
pub(crate) async fn propose(
    conn: &mut AnyConnection,
    keys: &AuditKeys,
    by: &Principal,
    who: Grantee<'_>,
    roles: &[Role],
    reason: &str,
) -> Result<RoleGrant, Problem> {
    let Grantee { account_id, username, staff_id } = who;
    let names: Vec<&str> = roles.iter().map(|r| label(*r)).collect();
    let summary = format!("{username}（工号 {staff_id}）的角色设为：{}", names.join("、"));
    let payload = serde_json::to_string(&Terms {
        account_id: account_id.to_owned(),
        username: username.to_owned(),
        roles: roles.to_vec(),
    })
    .map_err(Problem::internal)?;
    let proposal =
        approval::Proposal { kind: KIND, key: account_id, subject: account_id, summary, payload, reason, grant: false };
    Ok(view(approval::propose(conn, keys, by, proposal, None).await?))
}

/// The reason given, or what the change itself says.
pub(crate) fn reason_or(reason: Option<&str>, default: &str) -> Result<String, Problem> {
    match reason.map(str::trim) {
        None | Some("") => Ok(default.to_owned()),
        Some(r) if r.chars().count() > 500 => Err(Problem::bad_request("reason", "at most 500 characters")),
        Some(r) if r.chars().any(char::is_control) => {
            Err(Problem::bad_request("reason", "must not contain control characters"))
        }
        Some(r) => Ok(r.to_owned()),
    }
}

/// What a role change did.
pub enum Outcome {
    /// Roles only taken away: applied, the account's sessions ended.
    Applied(Vec<String>),
    /// Roles added: waiting for a second admin.
    Pending(Box<RoleGrant>),
}

/// Sets account `id`'s roles: taking roles away applies at once (and ends
/// its sessions, whose tokens carry the old roles); adding any proposes the
/// new set for a second admin's approval.
pub(crate) async fn set_roles(
    gw: &AppState,
    by: &Principal,
    id: &str,
    roles: &[Role],
    reason: &str,
) -> Result<Outcome, Problem> {
    let auth = &gw.auth;
    let mut tx = auth.pool.begin().await.map_err(Problem::internal)?;
    let row = sqlx::query("SELECT username, roles, staff_id FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("account {id} not found")))?;
    let username: String = row.try_get(0).map_err(Problem::internal)?;
    let current = crate::auth::roles_of(&row.try_get::<String, _>(1).map_err(Problem::internal)?);
    if roles.iter().all(|r| current.contains(r)) {
        let removed: Vec<&str> = current.iter().filter(|r| !roles.contains(r)).map(|r| r.as_str()).collect();
        apply(&mut tx, id, roles, !removed.is_empty()).await?;
        if !removed.is_empty() {
            // A grant proposed before would otherwise give the roles back.
            approval::close_open_of(&mut tx, id, &[], "角色已被收回，待批准的授予作废").await?;
        }
        let detail = format!("roles={} removed={}", crate::auth::roles_text(roles), removed.join(","));
        let ev =
            kefu_kit::audit::Event { detail, purpose: reason, ..kefu_kit::audit::Event::by(by, "account.roles", id) };
        kefu_kit::audit::append(&mut tx, &auth.audit_keys, ev).await?;
        tx.commit().await.map_err(Problem::internal)?;
        if !removed.is_empty() {
            auth.sessions.forget_all();
        }
        return Ok(Outcome::Applied(roles.iter().map(|r| r.as_str().to_owned()).collect()));
    }
    let staff_id: String = row.try_get(2).map_err(Problem::internal)?;
    let who = Grantee { account_id: id, username: &username, staff_id: &staff_id };
    let grant = propose(&mut tx, &auth.audit_keys, by, who, roles, reason).await?;
    tx.commit().await.map_err(Problem::internal)?;
    Ok(Outcome::Pending(Box::new(grant)))
}

/// Writes the account's roles; when some were taken away, its sessions end.
async fn apply(tx: &mut AnyConnection, id: &str, roles: &[Role], end_sessions: bool) -> Result<(), Problem> {
    let now = crate::auth::now_ms();
    sqlx::query(
        "UPDATE accounts SET roles = $1, updated_at = $2, \
         tokens_after = CASE WHEN $3 = 1 THEN $4 ELSE tokens_after END WHERE id = $5",
    )
    .bind(crate::auth::roles_text(roles))
    .bind(now)
    .bind(i64::from(end_sessions))
    .bind(crate::auth::tokens_after_now())
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(Problem::internal)?;
    if end_sessions {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Problem::internal)?;
        crate::sessions::announce(tx).await.map_err(Problem::internal)?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

pub(crate) async fn list(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    require(&p, access::roles("GET", "/api/v1/role-grants"))?;
    let state =
        match q.state.as_deref() {
            None | Some("") => None,
            Some(s) => Some(ApprovalState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
                Problem::bad_request("state", "one of pending, approved, rejected, withdrawn, expired")
            })?),
        };
    let filter = approval::Filter { subject: q.account, kinds: vec![KIND.to_owned()], state, requested_by: None };
    let mut conn = gw.auth.pool.acquire().await.map_err(Problem::internal)?;
    let rows = approval::list(&mut conn, &filter, None, 500, never_grant).await?;
    Ok(Json(json!({"roleGrants": rows.into_iter().map(view).collect::<Vec<_>>()})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    #[serde(default)]
    note: String,
}

fn decision(body: &axum::body::Bytes) -> Result<Decision, Problem> {
    if body.is_empty() {
        return Ok(Decision::default());
    }
    let d: Decision = serde_json::from_slice(body).map_err(|e| Problem::bad_request("body", e.to_string()))?;
    if d.note.chars().count() > 500 || d.note.chars().any(char::is_control) {
        return Err(Problem::bad_request("note", "at most 500 characters, no control characters"));
    }
    Ok(d)
}

async fn grant_of(conn: &mut AnyConnection, id: &str) -> Result<Approval, Problem> {
    let a = approval::get(conn, id, never_grant).await?;
    if a.kind != KIND {
        return Err(Problem::new(StatusCode::NOT_FOUND, format!("role grant {id} not found")));
    }
    Ok(a)
}

pub(crate) async fn approve(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("POST", "/api/v1/role-grants/{id}/approve"))?;
    let d = decision(&body)?;
    let auth = &gw.auth;
    let mut tx = auth.pool.begin().await.map_err(Problem::internal)?;
    let pending = grant_of(&mut tx, &id).await?;
    if pending.state != ApprovalState::Pending {
        let why = if pending.note.is_empty() { String::new() } else { format!(": {}", pending.note) };
        return Err(
            kefu_kit::Error::FailedPrecondition(format!("role grant {id} is {}{why}", pending.state.as_str())).into()
        );
    }
    let terms: Terms = serde_json::from_str(&pending.payload).map_err(Problem::internal)?;
    let grantee: Option<String> = sqlx::query("SELECT staff_id FROM accounts WHERE id = $1")
        .bind(&terms.account_id)
        .fetch_optional(&mut *tx)
        .await
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .map_err(Problem::internal)?;
    let Some(grantee) = grantee else {
        return Err(Problem::new(StatusCode::CONFLICT, format!("the account of role grant {id} no longer exists")));
    };
    if grantee == p.subject {
        return Err(Problem::forbidden("a role grant to oneself is decided by another admin (four eyes)"));
    }
    let a = approval::approve(&mut tx, &auth.audit_keys, &p, &id, &d.note, never_grant).await?;
    let current: String = sqlx::query_scalar("SELECT roles FROM accounts WHERE id = $1")
        .bind(&terms.account_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Problem::internal)?;
    // A set that leaves out a role the account holds ends its sessions too.
    let removes = crate::auth::roles_of(&current).iter().any(|r| !terms.roles.contains(r));
    apply(&mut tx, &terms.account_id, &terms.roles, removes).await?;
    let detail =
        format!("roles={} (approval {} proposed by {})", crate::auth::roles_text(&terms.roles), a.id, a.requested_by);
    let ev = kefu_kit::audit::Event { detail, ..kefu_kit::audit::Event::by(&p, "account.roles", &terms.account_id) };
    kefu_kit::audit::append(&mut tx, &auth.audit_keys, ev).await?;
    tx.commit().await.map_err(Problem::internal)?;
    if removes {
        auth.sessions.forget_all();
    }
    Ok(Json(view(a)).into_response())
}

pub(crate) async fn reject(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("POST", "/api/v1/role-grants/{id}/reject"))?;
    let d = decision(&body)?;
    if d.note.trim().is_empty() {
        return Err(Problem::bad_request("note", "say why the grant is rejected"));
    }
    let mut tx = gw.auth.pool.begin().await.map_err(Problem::internal)?;
    grant_of(&mut tx, &id).await?;
    let a = approval::reject(&mut tx, &gw.auth.audit_keys, &p, &id, &d.note, never_grant).await?;
    tx.commit().await.map_err(Problem::internal)?;
    Ok(Json(view(a)).into_response())
}

pub(crate) async fn withdraw(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("POST", "/api/v1/role-grants/{id}/withdraw"))?;
    let mut tx = gw.auth.pool.begin().await.map_err(Problem::internal)?;
    grant_of(&mut tx, &id).await?;
    let a = approval::withdraw(&mut tx, &gw.auth.audit_keys, &p, &id, never_grant).await?;
    tx.commit().await.map_err(Problem::internal)?;
    Ok(Json(view(a)).into_response())
}
