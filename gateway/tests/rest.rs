//! The gateway through a real HTTP client against `kefu up`-style wiring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Backend, customer_body};
use futures::StreamExt;
use kefu_kit::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn new_account(app: &App, admin: &str, user: &str, roles: &[&str]) -> String {
    app.person(admin, user, user).await;
    let (s, body, _) = app
        .call(
            Method::POST,
            "/api/v1/accounts",
            admin,
            Some(json!({"username": user, "password": "correct horse battery", "roles": roles, "staffId": user})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // A second admin approves the roles.
    app.approve_roles(&body).await;
    let r: Value = app.login(user, "correct horse battery").await.json().await.unwrap();
    r["accessToken"].as_str().unwrap().to_owned()
}

async fn a_new_user_logs_in_creates_an_agent_who_works_and_watches_sla_events(app: App) {
    let admin = app.admin_token().await;
    let agent = new_account(&app, &admin, "agent.li", &["agent"]).await;

    let (s, customer, h) =
        app.call(Method::POST, "/api/v1/customers", &agent, Some(customer_body("北京示例科技", 1))).await;
    assert_eq!(s, 200, "{customer}");
    assert_eq!(h.get("etag").unwrap(), "\"1\"");
    let cid = customer["id"].as_str().unwrap().to_owned();

    // The agent subscribes to live SLA events, then opens a chat ticket.
    let sse = app.http.get(app.url("/api/v1/events")).bearer_auth(&agent).send().await.unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut events = sse.bytes_stream();
    let (s, ticket, _) = app
        .call(
            Method::POST,
            "/api/v1/tickets",
            &agent,
            Some(json!({"ticket": {"kind": "TICKET_KIND_CONSULTATION", "channel": "CHANNEL_ONLINE_CHAT", "subject": "申報期限",
                                    "customerId": cid, "assignee": "agent.li"}})),
        )
        .await;
    assert_eq!(s, 200, "{ticket}");
    let tid = ticket["id"].as_str().unwrap().to_owned();
    assert!(ticket["number"].as_str().unwrap().starts_with("KF-"));

    // Two minutes later the 60-second first response has breached.
    app.clock.set(common::T0 + 120_000);
    app.sweep().await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.contains("event: breached") && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(chunk))) = tokio::time::timeout(std::time::Duration::from_millis(500), events.next()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: breached") && seen.contains(&tid), "{seen}");
    assert!(seen.contains("event: ticket_created"), "ticket changes stream too: {seen}");
    assert!(seen.contains(r#""assigneeName":"李娜""#), "events name the assignee: {seen}");
    let last_id = seen.lines().filter_map(|l| l.strip_prefix("id: ")).next_back().unwrap().to_owned();

    // Reconnecting with Last-Event-ID replays what came after it, and nothing before.
    app.clock.set(common::T0 + 3 * 3600 * 1000);
    app.sweep().await;
    let again = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&agent)
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .unwrap();
    let mut stream = again.bytes_stream();
    let mut replay = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !replay.contains("event: escalated") && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(chunk))) = tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await {
            replay.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    // The second-level escalation fired while no one watched: it is replayed,
    // and nothing up to Last-Event-ID is sent again.
    assert!(replay.contains("event: escalated") && replay.contains(&tid), "nothing was replayed: {replay}");
    assert!(!replay.contains(&format!("id: {last_id}\n")), "{replay}");
    assert!(!replay.contains("event: ticket_created"), "events before Last-Event-ID came again: {replay}");

    // The agent's SLA view and refusals with clear problem+json.
    let (s, sla, _) = app.call(Method::GET, &format!("/api/v1/tickets/{tid}/sla"), &agent, None).await;
    assert_eq!(s, 200);
    assert!(
        sla["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["metric"] == "first_response" && t["state"] == "SLA_STATE_BREACHED")
    );
    let resp = app
        .http
        .post(app.url("/api/v1/accounts"))
        .bearer_auth(&agent)
        .json(&json!({"username": "x", "password": "xxxxxxxxxxxx", "roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let (s, p, _) = app.call(Method::POST, "/api/v1/audit-entries/verify", &agent, None).await;
    assert_eq!((s, p["status"].as_u64()), (403, Some(403)));
    assert!(p["detail"].as_str().unwrap().contains("auditor"), "{p}");
    let (s, p, _) = app
        .call(Method::GET, &format!("/api/v1/customers/{cid}/tax-profile?unmasked=true&purpose=curious"), &agent, None)
        .await;
    assert_eq!(s, 403, "{p}");

    // The customer's 360° view in one round trip.
    let (s, view, _) = app.call(Method::GET, &format!("/api/v1/customers/{cid}/overview"), &agent, None).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["customer"]["companyName"], "北京示例科技");
    assert_eq!(view["openTickets"][0]["slaState"], "SLA_STATE_BREACHED");
}

async fn bad_input_etags_and_idempotency(app: App) {
    let t = app.token(Role::Supervisor);
    let (s, p, h) = app.call(Method::POST, "/api/v1/customers", &t, Some(json!({"customer": {"uscc": "bad"}}))).await;
    assert_eq!(s, 400);
    assert_eq!(h["content-type"], "application/problem+json");
    let fields: Vec<&str> = p["violations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"customer.uscc") && fields.contains(&"customer.company_name"), "{p}");
    let (s, p, _) = app.call(Method::POST, "/api/v1/customers", &t, Some(json!({"customer": {"nonsense": 1}}))).await;
    assert_eq!(s, 400, "{p}");
    let raw = app
        .http
        .post(app.url("/api/v1/customers"))
        .bearer_auth(&t)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (s, p, _) = app.call(Method::GET, "/api/v1/customers?pageSize=abc", &t, None).await;
    assert_eq!(s, 400);
    assert_eq!(p["violations"][0]["field"], "pageSize");
    let (s, _, _) = app.call(Method::GET, "/api/v1/customers?bogus=1", &t, None).await;
    assert_eq!(s, 400);
    let huge = "x".repeat(300 * 1024);
    // The server answers 413 before reading the whole body and closes the
    // connection: it must not go back to the client's pool.
    let big = app
        .http
        .post(app.url("/api/v1/customers"))
        .bearer_auth(&t)
        .header("connection", "close")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);

    // Idempotency-Key: the same customer twice.
    let send = || {
        app.http
            .post(app.url("/api/v1/customers"))
            .bearer_auth(&t)
            .header("Idempotency-Key", "abc-1")
            .json(&customer_body("冪等", 7))
            .send()
    };
    let a: Value = send().await.unwrap().json().await.unwrap();
    let b: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    let id = a["id"].as_str().unwrap();

    // If-Match: a stale ETag is a conflict.
    let patch = |etag: &str| {
        app.http
            .patch(app.url(&format!("/api/v1/customers/{id}?updateMask=companyName")))
            .bearer_auth(&t)
            .header("If-Match", format!("\"{etag}\""))
            .json(&json!({"companyName": "改名"}))
            .send()
    };
    let ok = patch("1").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let stale = patch("1").await.unwrap();
    assert_eq!(stale.status(), 409);
    let (s, got, _) = app.call(Method::GET, &format!("/api/v1/customers/{id}"), &t, None).await;
    assert_eq!((s, got["companyName"].as_str()), (200, Some("改名")));
    let (s, _, _) = app.call(Method::GET, "/api/v1/customers/not-a-uuid", &t, None).await;
    assert_eq!(s, 400);
    let (s, _, _) = app.call(Method::GET, &format!("/api/v1/customers/{}", uuid::Uuid::now_v7()), &t, None).await;
    assert_eq!(s, 404);
    let (s, _, _) = app.call(Method::GET, "/api/v1/nothing-here", &t, None).await;
    assert_eq!(s, 404);

    // Bulk import over REST.
    let rows = json!([{"line": 2, "customer": customer_body("匯入一", 20)["customer"]}, {"line": 3, "customer": {"companyName": "壞", "uscc": "x"}}]);
    let (s, out, _) = app.call(Method::POST, "/api/v1/customers/import", &t, Some(rows)).await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["created"], "1");
    assert_eq!(out["errors"][0]["line"], "3");
}

/// A firm's IT runs its SLA configuration over REST: the calendar with
/// If-Match, a preview an agent can read out, unknown fields refused.
async fn sla_administration_over_rest(app: App) {
    let admin = app.token(Role::Admin);
    let agent = app.token(Role::Agent);
    let (s, list, _) = app.call(Method::GET, "/api/v1/sla/calendars", &agent, None).await;
    assert_eq!(s, 200, "{list}");
    let cal = list["calendars"].as_array().unwrap().iter().find(|c| c["isDefault"] == true).unwrap().clone();
    let id = cal["id"].as_str().unwrap().to_owned();
    let etag = cal["etag"].as_str().unwrap().to_owned();
    let (s, got, h) = app.call(Method::GET, &format!("/api/v1/sla/calendars/{id}"), &agent, None).await;
    assert_eq!(s, 200);
    assert_eq!(got["holidayYears"], json!([2025, 2026]));
    assert!(h.get("etag").is_some(), "the calendar carries its ETag");
    // The weekly hours travel typed; an unknown field is refused.
    let mut body = json!({"calendar": cal.clone(), "reason": "午休延长到13:30"});
    body["calendar"]["weekly"][0]["intervals"][1]["start"] = json!("13:30");
    body["calendar"]["bogus"] = json!(1);
    let put = |body: Value, if_match: Option<String>| {
        let mut r = app.http.put(app.url(&format!("/api/v1/sla/calendars/{id}"))).bearer_auth(&admin).json(&body);
        if let Some(e) = if_match {
            r = r.header("If-Match", format!("\"{e}\""));
        }
        r.send()
    };
    let bad = put(body.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(bad.status(), 400);
    body["calendar"].as_object_mut().unwrap().remove("bogus");
    // Without If-Match a whole replacement is refused; with a stale one it conflicts.
    assert_eq!(put(body.clone(), None).await.unwrap().status(), 400);
    assert_eq!(put(body.clone(), Some("999".into())).await.unwrap().status(), 409);
    let ok = put(body.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(ok.status(), 200);
    let saved: Value = ok.json().await.unwrap();
    assert_eq!(saved["weekly"][0]["intervals"][1]["start"], "13:30");
    let (s, _, _) = app.call(Method::PUT, &format!("/api/v1/sla/calendars/{id}"), &agent, Some(body)).await;
    assert_eq!(s, 403);
    // By when: in Chinese, in the firm's zone.
    let (s, p, _) = app
        .call(
            Method::POST,
            "/api/v1/sla/preview",
            &agent,
            Some(json!({"startTime": "2026-09-30T09:00:00Z", "durationSeconds": 18 * 3600})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert!(p["explanation"].as_str().unwrap().contains("国庆节"), "{p}");
    assert!(p["crossed"].as_array().unwrap().iter().any(|d| d["kind"] == "holiday"));
    let (s, p, _) = app.call(Method::POST, "/api/v1/sla/preview", &agent, Some(json!({"durationSeconds": -5}))).await;
    assert_eq!((s, p["violations"][0]["field"].as_str()), (400, Some("duration_seconds")), "{p}");
    // Categories with labels; the trail of changes for the auditor.
    let (s, cats, _) = app.call(Method::GET, "/api/v1/categories", &agent, None).await;
    assert_eq!(s, 200);
    assert!(cats["categories"].as_array().unwrap().iter().any(|c| c["label"] == "纳税申报"));
    let (s, changes, _) = app.call(Method::GET, "/api/v1/sla/changes", &app.token(Role::Auditor), None).await;
    assert_eq!(s, 200, "{changes}");
    assert!(changes["changes"].as_array().unwrap().iter().any(|c| c["reason"] == "午休延长到13:30"));
}

async fn tokens_refresh_rotation_lockout_and_api_keys(app: App) {
    let admin = app.admin_token().await;
    // Forged, wrong-key, malformed and missing tokens.
    let other = kefu_kit::auth::TokenSigner::from_entry(&kefu_kit::keys::KeyEntry::generate("t")).unwrap();
    let foreign = other.mint("admin", &[Role::Admin], std::time::Duration::from_secs(60)).unwrap();
    for bad in [foreign.as_str(), "not.a.jwt", ""] {
        let (s, p, _) = app.call(Method::GET, "/api/v1/customers", bad, None).await;
        assert_eq!(s, 401, "{bad}: {p}");
    }
    let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        r#"{"sub":"x","roles":["admin"],"iss":"kefu","aud":"kefu","iat":0,"exp":9999999999}"#,
    );
    let (s, _, _) = app.call(Method::GET, "/api/v1/customers", &parts.join("."), None).await;
    assert_eq!(s, 401, "tampered claims");
    let expired = {
        use jsonwebtoken_shim::expired_token;
        expired_token(&app.signing)
    };
    let (s, p, _) = app.call(Method::GET, "/api/v1/customers", &expired, None).await;
    assert_eq!(s, 401);
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");

    // Refresh rotation; reusing an old refresh token revokes the family.
    let first: Value = app.login("admin", &app.admin_password).await.json().await.unwrap();
    let r1 = first["refreshToken"].as_str().unwrap().to_owned();
    let rotated =
        app.http.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": r1})).send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let r2 = rotated.json::<Value>().await.unwrap()["refreshToken"].as_str().unwrap().to_owned();
    let reuse = app.http.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": r1})).send().await.unwrap();
    assert_eq!(reuse.status(), 401);
    let after = app.http.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": r2})).send().await.unwrap();
    assert_eq!(after.status(), 401, "the whole family is revoked");
    // Logout ends a login.
    let l: Value = app.login("admin", &app.admin_password).await.json().await.unwrap();
    let r = l["refreshToken"].as_str().unwrap();
    assert_eq!(
        app.http.post(app.url("/api/v1/auth/logout")).json(&json!({"refreshToken": r})).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        app.http.post(app.url("/api/v1/auth/refresh")).json(&json!({"refreshToken": r})).send().await.unwrap().status(),
        401
    );

    // Lock-out after repeated failures, with Retry-After.
    new_account(&app, &admin, "clerk", &["agent"]).await;
    for _ in 0..5 {
        assert_eq!(app.login("clerk", "wrong password!").await.status(), 401);
    }
    let locked = app.login("clerk", "correct horse battery").await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));

    // Password change.
    let bob = new_account(&app, &admin, "bob", &["agent"]).await;
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password",
            &bob,
            Some(json!({"currentPassword": "nope", "newPassword": "another long secret"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password",
            &bob,
            Some(json!({"currentPassword": "correct horse battery", "newPassword": "another long secret"})),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.login("bob", "another long secret").await.status(), 200);

    // API keys: shown once, work, can be revoked.
    let (s, key, _) = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &admin,
            Some(json!({"name": "crm-sync", "roles": ["service"], "scopes": ["customers"]})),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let (_, list, _) = app.call(Method::GET, "/api/v1/api-keys", &admin, None).await;
    assert!(!list.to_string().contains(&secret), "listing never shows the key");
    let with_key = app.http.get(app.url("/api/v1/customers")).header("X-API-Key", &secret).send().await.unwrap();
    assert_eq!(with_key.status(), 200);
    let id = key["id"].as_str().unwrap();
    let (s, _, _) = app.call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), &admin, None).await;
    assert_eq!(s, 204);
    let revoked = app.http.get(app.url("/api/v1/customers")).header("X-API-Key", &secret).send().await.unwrap();
    assert_eq!(revoked.status(), 401);
    // Disabled accounts cannot log in.
    let (_, accounts, _) = app.call(Method::GET, "/api/v1/accounts", &admin, None).await;
    let clerk = accounts["accounts"].as_array().unwrap().iter().find(|a| a["username"] == "bob").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, _) =
        app.call(Method::PATCH, &format!("/api/v1/accounts/{clerk}"), &admin, Some(json!({"disabled": true}))).await;
    assert_eq!(s, 204);
    assert_eq!(app.login("bob", "another long secret").await.status(), 403);
}

/// An expired token signed with the gateway's own key.
mod jsonwebtoken_shim {
    pub(crate) fn expired_token(key: &kefu_kit::keys::KeyEntry) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{}"}}"#, key.kid).as_bytes());
        let now = chrono::Utc::now().timestamp();
        let claims = b64(format!(
            r#"{{"sub":"admin","roles":["admin"],"iss":"kefu","aud":"kefu","iat":{},"exp":{}}}"#,
            now - 7200,
            now - 3600
        )
        .as_bytes());
        let sk = ed25519_dalek::SigningKey::from_bytes(&key.bytes);
        let sig = sk.sign(format!("{header}.{claims}").as_bytes());
        format!("{header}.{claims}.{}", b64(&sig.to_bytes()))
    }
}

async fn every_route_answers_and_roles_are_enforced(app: App) {
    let admin = app.token(Role::Admin);
    let id = uuid::Uuid::now_v7().to_string();
    // Every row of the table is routed (no 404 "no such route", no 5xx).
    for r in kefu_gateway::routes::ROUTES.iter() {
        let path = r
            .path
            .replace("{id}", &id)
            .replace("{contact}", &id)
            .replace("{consent}", &id)
            .replace("{name}", "x")
            .replace("{agent}", "a");
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let body = if r.body == kefu_gateway::routes::Body::None { None } else { Some(json!({})) };
        let (s, p, _) = app.call(method, &path, &admin, body).await;
        assert!(s < 500, "{} {}: {s} {p}", r.method, r.path);
        assert!(
            !(s == 404 && p["detail"].as_str().unwrap_or("").starts_with("no such route")),
            "{} {} not routed",
            r.method,
            r.path
        );
    }
    // Every RPC of every service has a route or a special endpoint.
    let pool = kefu_gateway::rpc::pool().unwrap();
    for svc in pool.services() {
        for m in svc.methods() {
            let rpc = format!("{}/{}", svc.full_name(), m.name());
            let routed = kefu_gateway::routes::ROUTES.iter().any(|r| r.rpc == rpc)
                || kefu_gateway::routes::SPECIAL.iter().any(|(s, _)| *s == rpc);
            assert!(routed, "{rpc} has no REST route");
        }
    }
    // Role matrix on representative routes.
    let cases: &[(Method, &str, Role, bool)] = &[
        (Method::GET, "/api/v1/customers", Role::Agent, true),
        (Method::GET, "/api/v1/customers", Role::Hr, false),
        (Method::GET, "/api/v1/audit-entries", Role::Auditor, true),
        (Method::GET, "/api/v1/audit-entries", Role::Agent, false),
        (Method::GET, "/api/v1/tickets", Role::Auditor, true),
        (Method::GET, "/api/v1/agents/a/stats?fromDate=2026-03-01&toDate=2026-03-31", Role::Hr, true),
        (Method::GET, "/api/v1/agents/a/stats?fromDate=2026-03-01&toDate=2026-03-31", Role::Agent, false),
        (Method::GET, "/api/v1/sla/dashboard", Role::Supervisor, true),
        (Method::GET, "/api/v1/sla/dashboard", Role::Auditor, false),
        (Method::GET, "/api/v1/accounts", Role::Agent, false),
        (Method::GET, "/api/v1/api-keys", Role::Supervisor, false),
    ];
    for (m, path, role, allowed) in cases {
        let (s, p, _) = app.call(m.clone(), path, &app.token(*role), None).await;
        assert_eq!(s != 403, *allowed, "{m} {path} as {role}: {s} {p}");
    }
    // Reference and document served by the gateway itself.
    let doc: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Enum values carry what people read (the one label table).
    let status = &doc["components"]["schemas"]["kefu_staff_v1_Person"]["properties"]["status"];
    assert_eq!(status["x-enum-labels"]["PERSON_STATUS_LEFT"]["zh"], "离职", "{status}");
    assert!(status["description"].as_str().unwrap().contains("PERSON_STATUS_ON_LEAVE：休假（On leave）"), "{status}");
    let assignee = &doc["components"]["schemas"]["kefu_tickets_v1_Ticket"]["properties"]["assigneeName"];
    assert_eq!(assignee["readOnly"], true, "names beside staff ids are documented: {assignee}");
    for r in kefu_gateway::routes::ROUTES.iter() {
        assert!(
            doc["paths"][r.path][r.method.to_lowercase()].is_object(),
            "{} {} missing from OpenAPI",
            r.method,
            r.path
        );
    }
    let page = app.http.get(app.url("/api/v1/docs")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/api/v1/openapi.json") && !page.contains("https://"), "no CDN");
}

async fn protection_rate_limits_cors_and_headers(app: App) {
    let t = app.token(Role::Agent);
    // Twenty at once: well past 3 per second (burst 6) however slow the machine.
    let statuses: Vec<reqwest::Response> = futures::future::join_all(
        (0..20).map(|_| app.http.get(app.url("/api/v1/festivals?year=2026")).bearer_auth(&t).send()),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let limited = statuses.iter().find(|r| r.status() == 429).expect("rate limited");
    assert!(limited.headers().contains_key("retry-after"));
    let resp = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/customers"))
        .header("Origin", "https://console.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://console.example");
    let evil = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/customers"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
    let r = app.http.get(app.url("/healthz")).header("x-request-id", "req-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-123");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let gz = app.http.get(app.url("/api/v1/openapi.json")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    // RED metrics per route pattern (what the admin port's /metrics serves).
    let metrics = kefu_kit::telemetry::render_prometheus();
    assert!(
        metrics.lines().any(|l| l.starts_with("http_server_requests_total")
            && l.contains("http_route=\"/api/v1/festivals\"")
            && l.contains("http_response_status_code=\"429\"")),
        "{metrics}"
    );
}

async fn spawn(backend: Backend) -> Option<App> {
    common::spawn(backend).await
}

async fn spawn_limited(backend: Backend) -> Option<App> {
    common::spawn_with(backend, |a| a.rate_limit_per_key = 3).await
}

/// Where a REST view shows a staff id (an assignee, an author, an
/// escalation target), the directory's name for it stands beside it; `/me`
/// tells a person who the directory says they are.
async fn views_name_the_people_behind_staff_ids(app: App) {
    let agent = app.minted("agent-7", Role::Agent);
    let (s, c, _) =
        app.call(Method::POST, "/api/v1/customers", &agent, Some(customer_body("名称测试有限公司", 4242))).await;
    assert_eq!(s, 200, "{c}");
    let body = json!({"ticket": {"kind": "TICKET_KIND_CONSULTATION", "channel": "CHANNEL_PHONE", "subject": "发票冲红",
                                 "customerId": c["id"], "assignee": "agent-7"}});
    let (s, t, _) = app.call(Method::POST, "/api/v1/tickets", &agent, Some(body)).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!((t["assignee"].as_str(), t["assigneeName"].as_str()), (Some("agent-7"), Some("郑爽")), "{t}");
    let id = t["id"].as_str().unwrap().to_owned();
    let (s, _, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/tickets/{id}/messages"),
            &agent,
            Some(json!({"kind": "MESSAGE_KIND_INTERNAL_NOTE", "body": "请专家组确认红字发票流程"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, w, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/tickets/{id}/status"),
            &agent,
            Some(json!({"status": "STATUS_PENDING_INTERNAL", "reason": "等待专家组", "escalatedTo": "tax-expert"})),
        )
        .await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(w["escalatedToName"], "税务专家组", "{w}");
    let (_, list, _) = app.call(Method::GET, "/api/v1/tickets?escalatedTo=tax-expert", &agent, None).await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["tickets"][0]["assigneeName"], "郑爽", "names in lists too");
    let (_, tl, _) = app.call(Method::GET, &format!("/api/v1/tickets/{id}/timeline"), &agent, None).await;
    let entries = tl["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["author"] == "agent-7" && e["authorName"] == "郑爽"), "{tl}");
    let (s, board, _) = app.call(Method::GET, "/api/v1/sla/overview", &app.token(Role::Supervisor), None).await;
    assert_eq!(s, 200, "{board}");
    assert_eq!(board["names"]["agent-7"], "郑爽", "the board names its people: {board}");
    let (s, me, _) = app.call(Method::GET, "/api/v1/me", &agent, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (me["staffId"].as_str(), me["displayName"].as_str(), me["position"].as_str()),
        (Some("agent-7"), Some("郑爽"), Some("客服专员")),
        "{me}"
    );
    // Nobody by that name: refused over REST as over gRPC.
    let (s, p, _) = app
        .call(Method::POST, &format!("/api/v1/tickets/{id}/assign"), &agent, Some(json!({"assignee": "不存在的人"})))
        .await;
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("不存在的人 is not a person of the staff directory"), "{p}");
}

kefu_testkit::on_both_backends!(spawn; a_new_user_logs_in_creates_an_agent_who_works_and_watches_sla_events, views_name_the_people_behind_staff_ids, bad_input_etags_and_idempotency, sla_administration_over_rest, tokens_refresh_rotation_lockout_and_api_keys, every_route_answers_and_roles_are_enforced);

mod limited {
    use super::*;
    kefu_testkit::on_both_backends!(spawn_limited; protection_rate_limits_cors_and_headers);
}
