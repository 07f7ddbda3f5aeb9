//! People's accounts over REST: creating one (its roles wait for a second
//! admin, `role_grants`), listing them, locking one and changing its roles.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use kefu_kit::auth::Role;
use serde::Deserialize;
use serde_json::json;

use crate::{AppState, access, auth, json_body, problem::Problem, require, role_grants};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    username: String,
    password: String,
    roles: Vec<String>,
    #[serde(default)]
    staff_id: String,
    /// Why the roles are needed; shown to the approving admin.
    #[serde(default)]
    reason: Option<String>,
    /// The password is a temporary one: its holder must set their own
    /// before the account opens a session.
    #[serde(default)]
    must_change_password: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountPatch {
    #[serde(default)]
    disabled: Option<bool>,
    /// The account's roles: fewer apply at once, more need a second admin.
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn create(State(gw): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let (p, token) = gw.person_and_token(&headers).await?;
    let p = require(&p, access::roles("POST", "/api/v1/accounts"))?;
    let b: NewAccount = json_body(&body)?;
    let reason = role_grants::reason_or(b.reason.as_deref(), "新建账号")?;
    // An account speaks for a person of the staff directory, active.
    let (_, _, staff_id) = auth::checked_new_account(&b.username, &b.password, &b.roles, &b.staff_id)?;
    gw.require_person(&token, "staffId", &staff_id).await?;
    let a = gw
        .auth
        .create_account(
            auth::Login { username: &b.username, password: &b.password, must_change_password: b.must_change_password },
            &b.roles,
            &b.staff_id,
            &p,
            auth::Grant::FourEyes(&reason),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub(crate) async fn list(State(gw): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    require(&p, access::roles("GET", "/api/v1/accounts"))?;
    Ok(Json(json!({"accounts": gw.auth.list_accounts().await?})).into_response())
}

pub(crate) async fn patch(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("PATCH", "/api/v1/accounts/{id}"))?;
    let b: AccountPatch = json_body(&body)?;
    if b.disabled.is_none() && b.roles.is_none() {
        return Err(Problem::bad_request("body", "name what to change: disabled, roles"));
    }
    let roles = match &b.roles {
        Some(r) => {
            let roles = auth::parse_roles("roles", r)?;
            if roles.contains(&Role::Service) {
                return Err(Problem::bad_request(
                    "roles",
                    "the service role is for internal systems, not for people's accounts",
                ));
            }
            Some(roles)
        }
        None => None,
    };
    let reason = role_grants::reason_or(b.reason.as_deref(), "角色变更")?;
    // The lock first: a refused grant must not leave an account open that
    // its admin meant to lock.
    if let Some(disabled) = b.disabled {
        gw.auth.set_disabled(&id, disabled, &p).await?;
    }
    let outcome = match roles {
        Some(roles) => Some(role_grants::set_roles(&gw, &p, &id, &roles, &reason).await?),
        None => None,
    };
    Ok(match outcome {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(role_grants::Outcome::Applied(roles)) => Json(json!({"id": id, "roles": roles})).into_response(),
        Some(role_grants::Outcome::Pending(g)) => {
            (StatusCode::ACCEPTED, Json(json!({"id": id, "pendingRoleGrant": g}))).into_response()
        }
    })
}
