//! The web console's server side, over HTTP as a browser meets it: the
//! pages and modules under a strict Content-Security-Policy, the label
//! table, the cookie login (HttpOnly, SameSite, Secure behind TLS) with its
//! CSRF token, a password someone else chose that must be changed before a
//! first session, and the OpenAPI document naming every route and its roles.
//! Each runs on SQLite + memory and on PostgreSQL + Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

/// The cookies a response sets, by name: (value, attributes).
fn set_cookies(r: &reqwest::Response) -> std::collections::HashMap<String, (String, String)> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            (k.to_owned(), (val.to_owned(), attrs.to_owned()))
        })
        .collect()
}

fn cookie_header(c: &std::collections::HashMap<String, (String, String)>, names: &[&str]) -> String {
    names.iter().map(|n| format!("{n}={}", c[*n].0)).collect::<Vec<_>>().join("; ")
}

async fn the_console_is_served_at_the_root_under_a_strict_csp(app: App) {
    for path in ["/", "/console", "/login"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains("lang=\"zh-CN\"") && html.contains("/console/app.js"), "{html}");
        assert!(!html.contains("<script>"), "no inline script: {html}");
    }
    for (file, kind) in [("app.js", "text/javascript"), ("pages.js", "text/javascript"), ("style.css", "text/css")] {
        let r = app.http.get(app.url(&format!("/console/{file}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{file}");
    }
    let r = app.http.get(app.url("/console/../Cargo.toml")).send().await.unwrap();
    assert_ne!(r.status(), 200);
    let r = app.http.get(app.url("/console/nothing.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let labels: Value = app.http.get(app.url("/console/labels.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(labels["STATUS_SOLVED"], json!({"zh": "已解决", "en": "Solved", "n": 5}), "{}", labels["STATUS_SOLVED"]);
    assert_eq!(labels["TICKET_KIND_BUSINESS_REQUEST"]["zh"], "业务办理");
    let docs = app.http.get(app.url("/api/v1/docs")).send().await.unwrap().text().await.unwrap();
    assert!(docs.contains("/console/docs.js") && !docs.contains("<script>"), "{docs}");
}

async fn a_cookie_login_needs_its_csrf_token_for_every_change(app: App) {
    let r = app
        .http
        .post(app.url("/console/session"))
        .json(&json!({"username": "admin", "password": app.admin_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = set_cookies(&r);
    let body: Value = r.json().await.unwrap();
    for name in ["kefu_at", "kefu_rt"] {
        let attrs = &c[name].1;
        assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"), "{name}: {attrs}");
        assert!(!attrs.contains("Secure"), "plain HTTP: {attrs}");
    }
    assert!(c["kefu_rt"].1.contains("Path=/console/session"), "the refresh token goes nowhere else");
    assert!(!c["kefu_csrf"].1.contains("HttpOnly"), "the page reads its CSRF token");
    assert_eq!(body["csrfToken"], json!(c["kefu_csrf"].0));
    let csrf = c["kefu_csrf"].0.clone();
    let cookies = cookie_header(&c, &["kefu_at", "kefu_csrf"]);

    // Reads need only the cookie.
    let r = app.http.get(app.url("/api/v1/me")).header(header::COOKIE, &cookies).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["staffId"], "admin");
    // A change without the token, with a wrong one, or from another site is refused, and changes nothing.
    let person = json!({"person": {"staffId": "csrf.victim", "name": "某人", "hireDate": "2026-01-05"}});
    let post = |csrf: Option<&str>, origin: Option<&str>| {
        let mut rb = app.http.post(app.url("/api/v1/staff/people")).header(header::COOKIE, &cookies).json(&person);
        if let Some(t) = csrf {
            rb = rb.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            rb = rb.header(header::ORIGIN, o);
        }
        rb.send()
    };
    for (token, origin) in [(None, None), (Some("forged"), None), (Some(csrf.as_str()), Some("https://evil.example"))] {
        let r = post(token, origin).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{token:?} {origin:?}");
    }
    let token = app.admin_token().await;
    let (s, _, _) = app.call(Method::GET, "/api/v1/staff/people/csrf.victim", &token, None).await;
    assert_eq!(s, 404, "nothing was created");
    let r = post(Some(&csrf), Some(&app.base)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Refresh rotates the tokens; logout ends the login and removes the cookies.
    let refresh = |extra: &str| {
        app.http
            .post(app.url("/console/session/refresh"))
            .header(header::COOKIE, format!("{}; {extra}", cookie_header(&c, &["kefu_rt", "kefu_csrf"])))
            .header("x-csrf-token", &csrf)
            .send()
    };
    let r = refresh("").await.unwrap();
    assert_eq!(r.status(), 200);
    let c2 = set_cookies(&r);
    assert_ne!(c2["kefu_rt"].0, c["kefu_rt"].0, "the refresh token rotates");
    assert_ne!(c2["kefu_csrf"].0, csrf, "and so does the CSRF token");
    let csrf = c2["kefu_csrf"].0.clone();
    let r = app
        .http
        .delete(app.url("/console/session"))
        .header(header::COOKIE, cookie_header(&c2, &["kefu_at", "kefu_rt", "kefu_csrf"]))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let gone = set_cookies(&r);
    assert!(gone["kefu_at"].0.is_empty() && gone["kefu_at"].1.contains("Max-Age=0"), "{gone:?}");
    let r = app
        .http
        .get(app.url("/api/v1/me"))
        .header(header::COOKIE, cookie_header(&c2, &["kefu_at"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the access cookie died with its login");

    // Behind a TLS proxy the cookies are Secure.
    let r = app
        .http
        .post(app.url("/console/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "admin", "password": app.admin_password}))
        .send()
        .await
        .unwrap();
    let tls = set_cookies(&r);
    assert!(tls.values().all(|(_, a)| a.contains("Secure")), "{tls:?}");
    let mut names: Vec<&String> = tls.keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["__Host-kefu_at", "__Host-kefu_csrf", "__Secure-kefu_rt"],
        "prefixed: no sibling site sets them"
    );
}

async fn a_password_someone_else_chose_opens_no_session_until_changed(app: App) {
    let admin = app.admin_token().await;
    app.person(&admin, "agent.new", "新同事").await;
    let body = json!({"username": "agent.new", "password": "temporary passphrase 1", "roles": ["agent"],
                      "staffId": "agent.new", "mustChangePassword": true});
    let (s, made, _) = app.call(Method::POST, "/api/v1/accounts", &admin, Some(body)).await;
    assert_eq!(s, 201, "{made}");
    app.approve_roles(&made).await;
    let r = app.login("agent.new", "temporary passphrase 1").await;
    assert_eq!(r.status(), 403);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:kefu:password-change-required", "{p}");
    assert!(p.get("accessToken").is_none());
    let r = app
        .http
        .post(app.url("/console/session"))
        .json(&json!({"username": "agent.new", "password": "temporary passphrase 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get(header::SET_COOKIE).is_none(), "no cookie for a password that must change");

    let change = |current: &str, new: &str| {
        app.http
            .post(app.url("/api/v1/auth/password"))
            .json(&json!({"username": "agent.new", "currentPassword": current, "newPassword": new}))
            .send()
    };
    assert_eq!(change("wrong passphrase here", "my own passphrase 22").await.unwrap().status(), 401);
    assert_eq!(change("temporary passphrase 1", "short").await.unwrap().status(), 400);
    assert_eq!(change("temporary passphrase 1", "temporary passphrase 1").await.unwrap().status(), 400);
    assert_eq!(app.login("agent.new", "temporary passphrase 1").await.status(), 403, "still to change");
    assert_eq!(change("temporary passphrase 1", "my own passphrase 22").await.unwrap().status(), 204);
    assert_eq!(app.login("agent.new", "temporary passphrase 1").await.status(), 401, "the old one is gone");
    assert_eq!(app.login("agent.new", "my own passphrase 22").await.status(), 200);
    // Once one's own, the password changes only with a session.
    let r = change("my own passphrase 22", "another passphrase 33").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.login("agent.new", "my own passphrase 22").await.status(), 200);
}

async fn openapi_names_every_route_with_its_roles_and_fields(app: App) {
    let doc: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/api/v1/accounts"),
        ("get", "/api/v1/accounts"),
        ("post", "/api/v1/api-keys"),
        ("delete", "/api/v1/api-keys/{id}"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/customers/{id}/overview"),
        ("post", "/api/v1/customers/import"),
        ("get", "/api/v1/sla/overview"),
        ("post", "/api/v1/auth/password"),
        ("get", "/api/v1/gateway-audit/verify"),
    ] {
        assert!(paths[path][method]["x-roles"].is_array(), "{method} {path}: {}", paths[path][method]);
    }
    assert_eq!(paths["/api/v1/accounts"]["post"]["x-roles"], json!(["admin"]));
    assert_eq!(paths["/api/v1/auth/login"]["post"]["x-roles"], json!([]));
    let create = &paths["/api/v1/tickets"]["post"];
    assert_eq!(create["x-roles"], json!(["agent", "supervisor", "admin", "service"]), "{create}");
    assert!(create["description"].as_str().is_some_and(|d| !d.is_empty()), "the RPC's comment: {create}");
    // Fields carry their comments from the contracts.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let described = schemas
        .values()
        .flat_map(|s| s["properties"].as_object().into_iter().flat_map(|p| p.values()))
        .filter(|p| p["description"].as_str().is_some_and(|d| !d.is_empty()))
        .count();
    assert!(described > 200, "only {described} fields have a description");
    let due = &schemas["kefu_tickets_v1_Ticket"]["properties"]["filingDeadlineProvisional"];
    assert!(due["description"].as_str().is_some_and(|d| !d.is_empty()), "{due}");
}

kefu_testkit::on_both_backends!(spawn;
    the_console_is_served_at_the_root_under_a_strict_csp,
    a_cookie_login_needs_its_csrf_token_for_every_change,
    a_password_someone_else_chose_opens_no_session_until_changed,
    openapi_names_every_route_with_its_roles_and_fields,
);
