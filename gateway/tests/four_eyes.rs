//! Four eyes over REST, as an admin with a browser meets them: roles given
//! through the API wait for a second admin, who is neither the proposer nor
//! the one receiving them; taking roles away is immediate; and a customer's
//! erasure is proposed by one person and done by another.
//! Each runs on SQLite + memory and on PostgreSQL + Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend, customer_body};
use kefu_kit::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

async fn login(app: &App, user: &str, password: &str) -> Value {
    let r = app.login(user, password).await;
    assert_eq!(r.status(), 200, "{user} logs in");
    r.json().await.unwrap()
}

async fn roles_of(app: &App, token: &str) -> Value {
    let (s, me, _) = app.call(Method::GET, "/api/v1/me", token, None).await;
    assert_eq!(s, 200, "{me}");
    me["roles"].clone()
}

async fn audit_actions(app: &App, admin: &str, subject: &str) -> Vec<(String, String)> {
    let (s, trail, _) = app.call(Method::GET, &format!("/api/v1/gateway-audit?subject={subject}"), admin, None).await;
    assert_eq!(s, 200, "{trail}");
    trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor"].as_str().unwrap().to_owned()))
        .collect()
}

/// A new account's roles take effect only when a second admin approves
/// them; the proposer cannot approve, nor can the person who receives them.
async fn a_role_grant_waits_for_a_second_admin_who_is_neither_proposer_nor_grantee(app: App) {
    let admin = app.admin_token().await;
    // Staff ids name people in the audit trail: no look-alikes, no API key's identity.
    for staff in ["admin\u{200b}", "apikey:nightly-sync"] {
        let body =
            json!({"username": "mimic", "password": "correct horse battery", "roles": ["agent"], "staffId": staff});
        let (s, p, _) = app.call(Method::POST, "/api/v1/accounts", &admin, Some(body)).await;
        assert_eq!(s, 400, "{staff:?}: {p}");
    }
    let body = json!({"username": "zhou.min", "password": "correct horse battery", "roles": ["supervisor"],
                      "staffId": "s-zhou", "reason": "新任主管"});
    // An account speaks for a person of the staff directory: none yet.
    let (s, p, _) = app.call(Method::POST, "/api/v1/accounts", &admin, Some(body.clone())).await;
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("s-zhou is not an active person of the staff directory"), "{p}");
    app.person(&admin, "s-zhou", "周敏").await;
    let (s, made, _) = app.call(Method::POST, "/api/v1/accounts", &admin, Some(body)).await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["roles"], json!([]), "no role before approval: {made}");
    let grant = made["pendingRoleGrant"].clone();
    assert_eq!((grant["state"].as_str(), grant["roles"].clone()), (Some("pending"), json!(["supervisor"])));
    assert!(grant["summary"].as_str().unwrap().contains("主管"), "{grant}");
    let id = grant["id"].as_str().unwrap().to_owned();
    let account = made["id"].as_str().unwrap().to_owned();

    // Before approval the person cannot log in: there is no role to act in.
    let r = app.login("zhou.min", "correct horse battery").await;
    assert_eq!(r.status(), 403);
    let p: Value = r.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("approval"), "{p}");

    // The proposer cannot approve their own grant.
    let approve = format!("/api/v1/role-grants/{id}/approve");
    let (s, p, _) = app.call(Method::POST, &approve, &admin, None).await;
    assert_eq!(s, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("four eyes"), "{p}");
    // Nor can a non-admin, nor the grantee (were they an admin already).
    let (s, _, _) = app.call(Method::POST, &approve, &app.minted("s-sup", Role::Supervisor), None).await;
    assert_eq!(s, 403);
    let (s, p, _) = app.call(Method::POST, &approve, &app.minted("s-zhou", Role::Admin), None).await;
    assert_eq!(s, 403, "the grantee approving their own roles: {p}");
    let (s, list, _) = app.call(Method::GET, "/api/v1/role-grants?state=pending", &admin, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["roleGrants"].as_array().unwrap().len(), 1, "{list}");
    let (s, p, _) = app.call(Method::GET, "/api/v1/role-grants?state=maybe", &admin, None).await;
    assert_eq!(s, 400, "{p}");

    // A second admin approves: the roles apply from the next login.
    let second = app.minted("admin-2", Role::Admin);
    let (s, done, _) = app.call(Method::POST, &approve, &second, Some(json!({"note": "已核对任命文件"}))).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!((done["state"].as_str(), done["decidedBy"].as_str()), (Some("approved"), Some("admin-2")));
    let (s, _, _) = app.call(Method::POST, &approve, &app.minted("admin-3", Role::Admin), None).await;
    assert_eq!(s, 412, "decided once");
    let fresh = login(&app, "zhou.min", "correct horse battery").await;
    assert_eq!(roles_of(&app, fresh["accessToken"].as_str().unwrap()).await, json!(["supervisor"]));

    let actions = audit_actions(&app, &admin, &account).await;
    let expected = [
        ("account.create", "admin"),
        ("approval.propose", "admin"),
        ("approval.approve", "admin-2"),
        ("account.roles", "admin-2"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(actions, expected);
}

/// Adding a role to an existing account waits for approval; taking one
/// away applies at once and ends the sessions that carried it.
async fn adding_roles_waits_and_taking_them_away_ends_sessions_at_once(app: App) {
    let admin = app.admin_token().await;
    let id = app.agent_account(&admin, "qian.li", "s-qian").await;
    let session = login(&app, "qian.li", "correct horse battery").await;
    let token = session["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(roles_of(&app, &token).await, json!(["agent"]));

    let path = format!("/api/v1/accounts/{id}");
    let (s, p, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "service"]}))).await;
    assert_eq!(s, 400, "{p}");
    let (s, p, _) = app.call(Method::PATCH, &path, &admin, Some(json!({}))).await;
    assert_eq!(s, 400, "{p}");
    let (s, added, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "admin"]}))).await;
    assert_eq!(s, 202, "{added}");
    assert_eq!(roles_of(&app, &token).await, json!(["agent"]), "not before approval");
    let (s, p, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "auditor"]}))).await;
    assert_eq!(s, 412, "one pending grant per account: {p}");
    // The proposer withdraws it; another admin may not.
    let grant = added["pendingRoleGrant"]["id"].as_str().unwrap();
    let withdraw = format!("/api/v1/role-grants/{grant}/withdraw");
    let (s, _, _) = app.call(Method::POST, &withdraw, &app.minted("admin-2", Role::Admin), None).await;
    assert_eq!(s, 403);
    let (s, w, _) = app.call(Method::POST, &withdraw, &admin, None).await;
    assert_eq!((s, w["state"].as_str()), (200, Some("withdrawn")), "{w}");
    // A rejection says why.
    let (_, again, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "hr"]}))).await;
    let reject = format!("/api/v1/role-grants/{}/reject", again["pendingRoleGrant"]["id"].as_str().unwrap());
    let (s, _, _) = app.call(Method::POST, &reject, &app.minted("admin-2", Role::Admin), None).await;
    assert_eq!(s, 400, "a rejection without a note");
    let (s, r, _) =
        app.call(Method::POST, &reject, &app.minted("admin-2", Role::Admin), Some(json!({"note": "无人事审批"}))).await;
    assert_eq!((s, r["state"].as_str()), (200, Some("rejected")), "{r}");
    assert_eq!(roles_of(&app, &token).await, json!(["agent"]));

    // Two roles, approved; then one taken away: at once, and the session
    // whose token carried it ends.
    let (s, both, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "auditor"]}))).await;
    assert_eq!(s, 202, "{both}");
    app.approve_roles(&both).await;
    let session = login(&app, "qian.li", "correct horse battery").await;
    let token = session["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(roles_of(&app, &token).await, json!(["agent", "auditor"]));
    let (s, p, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": []}))).await;
    assert_eq!(s, 400, "an account keeps at least one role: {p}");
    let (s, more, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["agent", "auditor", "hr"]}))).await;
    assert_eq!(s, 202, "{more}");
    let (s, cut, _) = app.call(Method::PATCH, &path, &admin, Some(json!({"roles": ["auditor"]}))).await;
    assert_eq!((s, cut["roles"].clone()), (200, json!(["auditor"])), "{cut}");
    // The grant proposed before the removal cannot give the role back.
    let stale = format!("/api/v1/role-grants/{}/approve", more["pendingRoleGrant"]["id"].as_str().unwrap());
    let (s, p, _) = app.call(Method::POST, &stale, &app.minted("admin-2", Role::Admin), None).await;
    assert_eq!(s, 412, "{p}");
    assert_eq!(app.call(Method::GET, "/api/v1/me", &token, None).await.0, 401, "the old session ended");
    let after = login(&app, "qian.li", "correct horse battery").await;
    assert_eq!(roles_of(&app, after["accessToken"].as_str().unwrap()).await, json!(["auditor"]));
    let actions = audit_actions(&app, &admin, &id).await;
    let roles_changes: Vec<&String> = actions.iter().filter(|(a, _)| a == "account.roles").map(|(_, by)| by).collect();
    assert_eq!(roles_changes, vec!["admin-2", "admin-2", "admin"], "{actions:?}");
}

/// A customer's erasure over REST: refused to one person, proposed by a
/// supervisor, approved (and done) by another.
async fn an_erasure_over_rest_is_proposed_by_one_person_and_done_by_another(app: App) {
    let sup = app.minted("s-lead", Role::Supervisor);
    let (s, c, _) = app.call(Method::POST, "/api/v1/customers", &sup, Some(customer_body("删除测试", 901))).await;
    assert_eq!(s, 200, "{c}");
    let cid = c["id"].as_str().unwrap();
    let (s, p, _) =
        app.call(Method::POST, &format!("/api/v1/customers/{cid}/erase"), &sup, Some(json!({"reason": "PIPL"}))).await;
    assert_eq!(s, 412, "{p}");
    let (s, proposed, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{cid}/approvals"),
            &sup,
            Some(json!({"reason": "PIPL art. 47 #9", "erasure": {}})),
        )
        .await;
    assert_eq!(s, 200, "{proposed}");
    assert_eq!(proposed["state"], "APPROVAL_STATE_PENDING");
    let approve = format!("/api/v1/approvals/{}/approve", proposed["id"].as_str().unwrap());
    let (s, p, _) = app.call(Method::POST, &approve, &sup, Some(json!({}))).await;
    assert_eq!(s, 403, "not by the proposer: {p}");
    let (s, done, _) =
        app.call(Method::POST, &approve, &app.minted("s-other", Role::Supervisor), Some(json!({}))).await;
    assert_eq!(s, 200, "{done}");
    let (s, c, _) = app.call(Method::GET, &format!("/api/v1/customers/{cid}"), &sup, None).await;
    assert_eq!((s, c["lifecycleStatus"].as_str()), (200, Some("LIFECYCLE_STATUS_ERASED")), "{c}");
}

kefu_testkit::on_both_backends!(spawn;
    a_role_grant_waits_for_a_second_admin_who_is_neither_proposer_nor_grantee,
    adding_roles_waits_and_taking_them_away_ends_sessions_at_once,
    an_erasure_over_rest_is_proposed_by_one_person_and_done_by_another,
);
