//! The kefu gateway: REST/JSON (protobuf JSON mapping) and OpenAPI for web
//! clients, people's login and API keys, live SLA events as server-sent
//! events, and composite views. It adds no business rules: it
//! authenticates, translates, streams and protects.
#![forbid(unsafe_code)]

pub mod access;
mod accounts;
mod audit_trail;
pub mod console;
mod names;
pub mod role_grants;
mod serve;
pub use serve::{admin_router, serve, serve_public};
pub mod auth;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod rpc;
pub mod sessions;
mod views;

use std::{collections::HashMap, net::SocketAddr, num::NonZeroU32, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use clap::Args;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kefu_kit::auth::{Principal, Role, TokenSigner, TokenVerifier};
use prost_reflect::DescriptorPool;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    set_header::SetResponseHeaderLayer,
};

use crate::{auth::Auth, problem::Problem, routes::ROUTES};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// HTTP listen address.
    #[arg(long, env = "KEFU_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// Where a service listens, `NAME=URL` (repeat or comma-separate), e.g.
    /// `customers=http://customers:50051`. A service not named here is
    /// reached at `KEFU_<NAME>_ADDR` when set (`KEFU_CUSTOMERS_ADDR`, …), else
    /// at `http://NAME:50051`.
    #[arg(long = "upstream", env = "KEFU_UPSTREAMS", value_delimiter = ',', value_name = "NAME=URL")]
    pub upstreams: Vec<String>,
    /// Every service at one address (the all-in-one process).
    #[arg(skip)]
    pub every_upstream_at: Option<String>,
    /// Key that signs people's access tokens: `KID:BASE64URL`.
    #[arg(long, env = "KEFU_TOKEN_SIGNING_KEY", hide_env_values = true)]
    pub token_signing_key: String,
    /// Extra public keys accepted during rotation: `KID:BASE64URL[,…]`.
    #[arg(long, env = "KEFU_TOKEN_PUBLIC_KEYS", hide_env_values = true, default_value = "")]
    pub token_public_keys: String,
    /// Origins allowed by CORS, comma-separated; empty: none.
    #[arg(long, env = "KEFU_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Requests per second allowed per caller (token or API key).
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_KEY", default_value_t = 50)]
    pub rate_limit_per_key: u32,
    /// Requests per second allowed per client address.
    #[arg(long, env = "KEFU_RATE_LIMIT_PER_ADDR", default_value_t = 100)]
    pub rate_limit_per_addr: u32,
    /// Largest request body, in bytes (an attachment of 2 MiB is 2.7 MiB of
    /// base64 JSON).
    #[arg(long, env = "KEFU_BODY_LIMIT", default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// Longest time one request may take (server-sent events excepted).
    #[arg(long, env = "KEFU_HTTP_TIMEOUT", default_value = "30s", value_parser = kefu_kit::config::parse_duration)]
    pub http_timeout: Duration,
    /// Admin HTTP address serving /metrics (Prometheus).
    #[arg(long, env = "KEFU_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// After SIGTERM, how long the gateway keeps serving while /readyz
    /// answers 503 (so load balancers stop sending).
    #[arg(long, env = "KEFU_SHUTDOWN_DELAY", default_value = "5s", value_parser = kefu_kit::config::parse_duration)]
    pub shutdown_delay: Duration,
    /// Then, time allowed for requests in flight; event streams end at once.
    #[arg(long, env = "KEFU_SHUTDOWN_GRACE", default_value = "20s", value_parser = kefu_kit::config::parse_duration)]
    pub shutdown_grace: Duration,
    /// The audit trail of account and API-key changes.
    #[command(flatten)]
    pub audit: kefu_kit::audit::AuditArgs,
    /// TLS for calls to `https://` services (mutual TLS with a client
    /// certificate where they demand one).
    #[command(flatten)]
    pub tls: kefu_kit::tls::ClientTlsArgs,
}

impl GatewayArgs {
    /// The gateway of an all-in-one process: every upstream at `grpc`, the
    /// defaults of `kefu serve gateway` otherwise.
    pub fn all_in_one(
        grpc: &str,
        token_signing_key: String,
        http_listen: SocketAddr,
        admin_listen: SocketAddr,
    ) -> Self {
        Self {
            http_listen,
            upstreams: Vec::new(),
            every_upstream_at: Some(grpc.to_owned()),
            token_signing_key,
            token_public_keys: String::new(),
            cors_origins: String::new(),
            rate_limit_per_key: 50,
            rate_limit_per_addr: 100,
            body_limit: 4 * 1024 * 1024,
            http_timeout: Duration::from_secs(30),
            admin_listen,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            audit: kefu_kit::audit::AuditArgs::default(),
            tls: kefu_kit::tls::ClientTlsArgs::default(),
        }
    }
}

/// The services the gateway calls: every one its route table names.
pub fn upstream_names() -> Vec<String> {
    let mut names: Vec<String> =
        ROUTES.iter().filter_map(|r| r.rpc.split('.').nth(1)).map(str::to_owned).collect::<Vec<_>>();
    names.sort();
    names.dedup();
    names
}

/// Each service's address: `--upstream NAME=URL`, else the all-in-one
/// address, else `KEFU_<NAME>_ADDR`, else `http://NAME:50051`.
fn resolve_upstreams(
    names: &[String],
    given: &[String],
    all_at: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for spec in given.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, url) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("KEFU_UPSTREAMS / --upstream {spec:?}: expected NAME=URL"))?;
        if !names.iter().any(|n| n == name) {
            anyhow::bail!("KEFU_UPSTREAMS / --upstream names {name:?}; the gateway calls {}", names.join(", "));
        }
        if !url.parse::<http::Uri>().is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https"))) {
            anyhow::bail!("KEFU_UPSTREAMS / --upstream {name}: {url:?} is not an http:// or https:// address");
        }
        out.insert(name.to_owned(), url.to_owned());
    }
    for name in names {
        if out.contains_key(name) {
            continue;
        }
        let url = match all_at {
            Some(addr) => addr.to_owned(),
            None => env(&format!("KEFU_{}_ADDR", name.to_ascii_uppercase()))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| format!("http://{name}:50051")),
        };
        out.insert(name.clone(), url);
    }
    Ok(out)
}

pub struct Gateway {
    pub auth: Auth,
    pool: DescriptorPool,
    /// A channel per service, built once, by service name (`customers`).
    upstreams: HashMap<String, Channel>,
    per_key: Arc<DefaultKeyedRateLimiter<String>>,
    per_addr: Arc<DefaultKeyedRateLimiter<String>>,
    /// Cancelled when the drain starts: event streams end.
    draining: tokio_util::sync::CancellationToken,
}

type AppState = Arc<Gateway>;

fn limiter(per_second: u32) -> Arc<DefaultKeyedRateLimiter<String>> {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN))),
    ))
}

fn limited(l: &DefaultKeyedRateLimiter<String>, key: String) -> Result<(), Problem> {
    match l.check_key(&key) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too many requests; slow down");
            p.retry_after = Some(wait.as_secs().max(1));
            Err(p)
        }
    }
}

impl Gateway {
    pub fn new(args: &GatewayArgs, db: sqlx::AnyPool) -> anyhow::Result<Self> {
        args.tls.install()?;
        let entry = kefu_kit::keys::parse_key_list("KEFU_TOKEN_SIGNING_KEY", &args.token_signing_key)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("KEFU_TOKEN_SIGNING_KEY: no key"))?;
        let signer = TokenSigner::from_entry(&entry)?;
        // The signer's own public key, plus any others still accepted during
        // a rotation (the signer's key may be listed there too).
        let mut publics = kefu_kit::keys::parse_key_list("signing public key", &signer.public_key())?;
        if !args.token_public_keys.trim().is_empty() {
            for k in kefu_kit::keys::parse_key_list("KEFU_TOKEN_PUBLIC_KEYS", &args.token_public_keys)? {
                if k.kid != entry.kid {
                    publics.push(k);
                }
            }
        }
        let verifier = TokenVerifier::new(&publics)?;
        let sessions = sessions::SessionCache::new();
        sessions.listen(&db);
        Ok(Self {
            auth: Auth { pool: db, signer, verifier, audit_keys: args.audit.keys(None)?, sessions },
            pool: rpc::pool()?,
            upstreams: resolve_upstreams(
                &upstream_names(),
                &args.upstreams,
                args.every_upstream_at.as_deref(),
                |var| std::env::var(var).ok(),
            )?
            .into_iter()
            .map(|(name, url)| Ok((name, kefu_kit::client::channel(&url)?)))
            .collect::<anyhow::Result<_>>()?,
            per_key: limiter(args.rate_limit_per_key),
            per_addr: limiter(args.rate_limit_per_addr),
            draining: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// The channel to a service by name; every name the gateway calls was
    /// resolved at start.
    fn upstream(&self, name: &str) -> Result<Channel, Problem> {
        self.upstreams
            .get(name)
            .cloned()
            .ok_or_else(|| Problem::internal(anyhow::anyhow!("no upstream for the {name} service")))
    }

    /// The channel serving `kefu.NAME.v1.Service/Method`.
    fn channel_for(&self, rpc: &str) -> Result<Channel, Problem> {
        self.upstream(rpc.split('.').nth(1).unwrap_or_default())
    }

    /// The caller, limited to its rate, if it may make every call in `rpcs`
    /// (an API key's scopes).
    async fn caller(&self, headers: &HeaderMap, rpcs: &[&str]) -> Result<(Principal, String), Problem> {
        let (p, token, _) = self.caller_maybe(headers, rpcs, &[]).await?;
        Ok((p, token))
    }

    /// The caller, who must be allowed `rpcs`; and whether they may call
    /// each of `optional` (a composite view leaves out what they may not).
    async fn caller_maybe(
        &self,
        headers: &HeaderMap,
        rpcs: &[&str],
        optional: &[&str],
    ) -> Result<(Principal, String, Vec<bool>), Problem> {
        let c = self.auth.caller(headers).await?;
        limited(&self.per_key, format!("key:{}", c.principal.subject))?;
        for rpc in rpcs {
            c.may_call(rpc)?;
        }
        let may = optional.iter().map(|rpc| c.may_call(rpc).is_ok()).collect();
        Ok((c.principal, c.token, may))
    }

    /// A person (not an API key), limited to their rate.
    async fn person(&self, headers: &HeaderMap) -> Result<Principal, Problem> {
        let c = self.auth.caller(headers).await?;
        limited(&self.per_key, format!("key:{}", c.principal.subject))?;
        c.person().cloned()
    }

    /// A person (not an API key) and their token, limited to their rate.
    async fn person_and_token(&self, headers: &HeaderMap) -> Result<(Principal, String), Problem> {
        let c = self.auth.caller(headers).await?;
        limited(&self.per_key, format!("key:{}", c.principal.subject))?;
        let p = c.person().cloned()?;
        Ok((p, c.token))
    }

    /// The staff directory's record of `staff_id` (a JSON `Person`), which
    /// must be an active person: `field` names the request's field.
    async fn require_person(&self, token: &str, field: &str, staff_id: &str) -> Result<Value, Problem> {
        let r = self.call_json("kefu.staff.v1.StaffService/Resolve", token, json!({"refs": [staff_id]})).await?;
        let found = &r["resolved"][0];
        if found["kind"] != "REF_KIND_PERSON" || found["active"] != true {
            return Err(Problem::bad_request(
                field,
                format!("{staff_id} is not an active person of the staff directory (HR adds people there first)"),
            ));
        }
        Ok(found.clone())
    }

    /// An API key scope: a service the gateway forwards to, or one of its
    /// calls.
    fn known_scope(&self, scope: &str) -> bool {
        if scope.contains('/') {
            return rpc::method(&self.pool, scope).is_some();
        }
        self.upstreams.contains_key(scope)
    }

    /// One REST call through its route.
    async fn call(
        &self,
        route: &routes::Route,
        headers: &HeaderMap,
        path: HashMap<String, String>,
        query: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<Response, Problem> {
        let (_, token, may) = self.caller_maybe(headers, &[route.rpc], &[names::RESOLVE]).await?;
        let m = rpc::method(&self.pool, route.rpc)
            .ok_or_else(|| Problem::internal(format!("unknown rpc {}", route.rpc)))?;
        let body = if body.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(&body)
                    .map_err(|e| Problem::bad_request("body", format!("is not JSON: {e}")))?,
            )
        };
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let req = rpc::build_request(
            route,
            &m,
            rpc::Incoming {
                path: &path,
                query: &query,
                body,
                if_match: header("if-match"),
                idempotency_key: header("idempotency-key"),
            },
        )?;
        let reply =
            rpc::unary(self.channel_for(route.rpc)?, &m, req, &token).await.map_err(|s| Problem::from_status(&s))?;
        let mut json = rpc::to_json(&reply)?;
        if may.first().copied().unwrap_or(false) {
            names::add(self, &token, &mut json).await;
        }
        let etag = json.get("etag").and_then(Value::as_str).filter(|e| !e.is_empty()).map(|e| format!("\"{e}\""));
        let mut resp = Json(json).into_response();
        if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            resp.headers_mut().insert(header::ETAG, tag);
        }
        Ok(resp)
    }

    async fn call_json(&self, rpc_name: &str, token: &str, request: Value) -> Result<Value, Problem> {
        let m =
            rpc::method(&self.pool, rpc_name).ok_or_else(|| Problem::internal(format!("unknown rpc {rpc_name}")))?;
        let req = prost_reflect::DynamicMessage::deserialize(m.input(), request).map_err(Problem::internal)?;
        let reply =
            rpc::unary(self.channel_for(rpc_name)?, &m, req, token).await.map_err(|s| Problem::from_status(&s))?;
        rpc::to_json(&reply)
    }
}

fn parse_query(raw: Option<String>) -> Result<Vec<(String, String)>, Problem> {
    let Some(q) = raw else { return Ok(Vec::new()) };
    serde_urlencoded_pairs(&q)
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, Problem> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_decode(&s.replace('+', " "))
                    .ok_or_else(|| Problem::bad_request("query", "is not valid percent-encoding"))
            };
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The method router for a route's HTTP method.
fn on<H, T>(method: &str, handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    match method {
        "GET" => axum::routing::get(handler),
        "POST" => axum::routing::post(handler),
        "PUT" => axum::routing::put(handler),
        "PATCH" => axum::routing::patch(handler),
        _ => axum::routing::delete(handler),
    }
}

fn route_handler(route: &'static routes::Route) -> MethodRouter<AppState> {
    let handler = move |State(gw): State<AppState>,
                        Path(path): Path<HashMap<String, String>>,
                        RawQuery(q): RawQuery,
                        headers: HeaderMap,
                        body: Bytes| async move {
        match parse_query(q) {
            Ok(query) => gw.call(route, &headers, path, query, body).await.unwrap_or_else(IntoResponse::into_response),
            Err(p) => p.into_response(),
        }
    };
    on(route.method, handler)
}

/// Routes without path parameters (axum's `Path` refuses those).
fn route_handler_no_params(route: &'static routes::Route) -> MethodRouter<AppState> {
    let handler = move |State(gw): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes| async move {
        match parse_query(q) {
            Ok(query) => {
                gw.call(route, &headers, HashMap::new(), query, body).await.unwrap_or_else(IntoResponse::into_response)
            }
            Err(p) => p.into_response(),
        }
    };
    on(route.method, handler)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordBody {
    /// Given without a session: the first change of a password someone
    /// else chose (the login answered `urn:kefu:password-change-required`).
    #[serde(default)]
    username: Option<String>,
    current_password: String,
    new_password: String,
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::bad_request("body", e.to_string()))
}

/// The caller acting in the first of `roles` it holds, or FORBIDDEN.
fn require(p: &Principal, roles: &[Role]) -> Result<Principal, Problem> {
    p.require(roles).map_err(Problem::from)
}

async fn login(State(gw): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let b: LoginBody = json_body(&body)?;
    limited(&gw.per_key, format!("login:{}", b.username.trim()))?;
    Ok(Json(gw.auth.login(&b.username, &b.password).await?).into_response())
}

async fn refresh(State(gw): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let b: RefreshBody = json_body(&body)?;
    Ok(Json(gw.auth.refresh(&b.refresh_token).await?).into_response())
}

async fn logout(State(gw): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let b: RefreshBody = json_body(&body)?;
    gw.auth.logout(&b.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_password(State(gw): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let b: PasswordBody = json_body(&body)?;
    if let Some(username) = &b.username {
        limited(&gw.per_key, format!("login:{}", username.trim()))?;
        gw.auth.change_first_password(username, &b.current_password, &b.new_password).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let p = gw.person(&headers).await?;
    gw.auth.change_password(&p, &b.current_password, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_api_key(State(gw): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("POST", "/api/v1/api-keys"))?;
    let b: auth::NewApiKey = json_body(&body)?;
    let created = gw.auth.create_api_key(&b, |s| gw.known_scope(s), &p).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list_api_keys(State(gw): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    require(&p, access::roles("GET", "/api/v1/api-keys"))?;
    Ok(Json(json!({"apiKeys": gw.auth.list_api_keys().await?})).into_response())
}

async fn revoke_api_key(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let p = gw.person(&headers).await?;
    let p = require(&p, access::roles("DELETE", "/api/v1/api-keys/{id}"))?;
    gw.auth.revoke_api_key(&id, &p).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(State(gw): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (p, token) = gw.caller(&headers, &[]).await?;
    let mut out = json!({"staffId": p.subject, "roles": p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()});
    // The person's directory record (name, position, teams), when the
    // directory has them and answers.
    let person = gw.call_json("kefu.staff.v1.StaffService/GetPerson", &token, json!({"staffId": p.subject})).await;
    if let Ok(person) = person {
        for (k, from) in [("displayName", "displayName"), ("position", "position"), ("teams", "teams")] {
            out[k] = person[from].clone();
        }
    }
    Ok(Json(out).into_response())
}

/// Bulk import: a JSON array of rows, streamed to ImportCustomers.
async fn import_customers(State(gw): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let (_, token) = gw.caller(&headers, &["kefu.customers.v1.CustomerService/ImportCustomers"]).await?;
    let rows: Vec<Value> = json_body(&body)?;
    let m = rpc::method(&gw.pool, "kefu.customers.v1.CustomerService/ImportCustomers")
        .ok_or_else(|| Problem::internal("import rpc"))?;
    let mut msgs = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let msg = prost_reflect::DynamicMessage::deserialize(m.input(), r)
            .map_err(|e| Problem::bad_request(&format!("[{i}]"), e.to_string()))?;
        msgs.push(prost::Message::encode_to_vec(&msg));
    }
    let mut grpc = tonic::client::Grpc::new(gw.upstream("customers")?);
    grpc.ready().await.map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut req = tonic::Request::new(futures::stream::iter(msgs));
    req.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Problem::unauthorized("bad token"))?,
    );
    kefu_kit::observe::inject_trace_context(req.metadata_mut());
    let path = http::uri::PathAndQuery::from_static("/kefu.customers.v1.CustomerService/ImportCustomers");
    let resp = grpc.client_streaming(req, path, rpc::RawCodec).await.map_err(|s| Problem::from_status(&s))?;
    let out =
        prost_reflect::DynamicMessage::decode(m.output(), resp.into_inner().as_slice()).map_err(Problem::internal)?;
    Ok(Json(rpc::to_json(&out)?).into_response())
}

async fn openapi_json() -> Result<Response, Problem> {
    Ok(Json(openapi::document().map_err(Problem::internal)?).into_response())
}

async fn guard_address(
    State(gw): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if let Err(p) = limited(&gw.per_addr, format!("addr:{}", addr.ip())) {
        return p.into_response();
    }
    next.run(req).await
}

/// Opens a server span per request (child of the browser's traceparent, if
/// any), so the services' spans join one trace.
struct HttpMetrics {
    requests: opentelemetry::metrics::Counter<u64>,
    duration: opentelemetry::metrics::Histogram<f64>,
}

fn http_metrics() -> &'static HttpMetrics {
    static M: std::sync::OnceLock<HttpMetrics> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let meter = kefu_kit::telemetry::meter();
        HttpMetrics {
            requests: meter
                .u64_counter("http.server.requests")
                .with_description("HTTP requests by route and status")
                .build(),
            duration: meter
                .f64_histogram("http.server.duration")
                .with_unit("s")
                .with_description("HTTP request duration by route")
                .with_boundaries(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .build(),
        }
    })
}

/// RED metrics per route (the route pattern, not the raw path).
async fn measure(req: axum::extract::Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let attrs = [
        opentelemetry::KeyValue::new("http.route", route),
        opentelemetry::KeyValue::new("http.request.method", method),
        opentelemetry::KeyValue::new("http.response.status_code", i64::from(resp.status().as_u16())),
    ];
    let m = http_metrics();
    m.requests.add(1, &attrs);
    m.duration.record(start.elapsed().as_secs_f64(), &attrs);
    resp
}

async fn trace_request(req: axum::extract::Request, next: Next) -> Response {
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct H<'a>(&'a HeaderMap);
    impl opentelemetry::propagation::Extractor for H<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&H(req.headers())));
    let span = tracing::info_span!("http", otel.name = %format!("{} {}", req.method(), req.uri().path()), otel.kind = "server", http.method = %req.method(), http.target = %req.uri().path());
    let _ = span.set_parent(parent);
    next.run(req).instrument(span).await
}

pub fn router(gw: AppState, args: &GatewayArgs) -> Router {
    let mut app: Router<AppState> = Router::new();
    for r in ROUTES.iter() {
        app = if r.params.is_empty() {
            app.route(r.path, route_handler_no_params(r))
        } else {
            app.route(r.path, route_handler(r))
        };
    }
    let app = app
        .route("/api/v1/customers/import", post(import_customers))
        .route("/api/v1/customers/{id}/overview", get(views::customer_overview))
        .route("/api/v1/sla/overview", get(views::sla_overview))
        .route("/api/v1/events", get(views::events))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/password", post(change_password))
        .route("/api/v1/me", get(me))
        .route("/api/v1/accounts", post(accounts::create).get(accounts::list))
        .route("/api/v1/accounts/{id}", axum::routing::patch(accounts::patch))
        .route("/api/v1/role-grants", get(role_grants::list))
        .route("/api/v1/role-grants/{id}/approve", post(role_grants::approve))
        .route("/api/v1/role-grants/{id}/reject", post(role_grants::reject))
        .route("/api/v1/role-grants/{id}/withdraw", post(role_grants::withdraw))
        .route("/api/v1/api-keys", post(create_api_key).get(list_api_keys))
        .route("/api/v1/api-keys/{id}", axum::routing::delete(revoke_api_key))
        .route("/api/v1/gateway-audit", get(audit_trail::list))
        .route("/api/v1/gateway-audit/verify", get(audit_trail::verify))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(console::docs_page))
        .merge(console::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route_layer(middleware::from_fn(measure))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "no such route; see /api/v1/openapi.json").into_response()
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route").into_response()
        });

    let origins: Vec<HeaderValue> = args
        .cors_origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            "idempotency-key".parse().unwrap_or(header::ACCEPT),
            "last-event-id".parse().unwrap_or(header::ACCEPT),
            "x-api-key".parse().unwrap_or(header::ACCEPT),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER]);
    let timeout = args.http_timeout;
    app.layer(middleware::from_fn(console::cookie_login))
        .layer(middleware::from_fn_with_state(gw.clone(), guard_address))
        .layer(middleware::from_fn(move |req: axum::extract::Request, next: Next| async move {
            // Server-sent events stay open; everything else has a deadline.
            if req.uri().path() == "/api/v1/events" {
                return next.run(req).await;
            }
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => Problem::new(StatusCode::GATEWAY_TIMEOUT, "the request took too long").into_response(),
            }
        }))
        .layer(RequestBodyLimitLayer::new(args.body_limit))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
        // A client's request id is kept only if it is short and printable;
        // otherwise it is replaced (it is echoed and logged).
        .layer(middleware::map_request(|mut req: axum::extract::Request| async move {
            let bad = req
                .headers()
                .get("x-request-id")
                .is_some_and(|v| v.len() > 128 || !v.as_bytes().iter().all(|b| b.is_ascii_graphic()));
            if bad {
                req.headers_mut().remove("x-request-id");
            }
            req
        }))
        .layer(middleware::from_fn(trace_request))
        .with_state(gw)
}

/// Creates the first admin when there is no account; returns its password.
pub async fn bootstrap_admin(auth: &Auth) -> Result<Option<String>, Problem> {
    if auth.count_accounts().await? > 0 {
        return Ok(None);
    }
    let mut b = [0u8; 18];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    let password = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let operator = auth::operator();
    // Shown once on a terminal: its holder sets their own at first login.
    let login = auth::Login { username: "admin", password: &password, must_change_password: true };
    auth.create_account(login, &["admin".to_owned()], "admin", &operator, auth::Grant::Direct).await?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec![
            "complaints".into(),
            "customers".into(),
            "performance".into(),
            "staff".into(),
            "tickets".into(),
            "training".into(),
        ]
    }

    #[test]
    fn every_service_the_routes_name_has_an_upstream() {
        assert_eq!(upstream_names(), names(), "the route table calls exactly these services");
    }

    #[test]
    fn upstreams_come_from_flags_then_the_environment_then_the_service_name() {
        let env = |var: &str| (var == "KEFU_TICKETS_ADDR").then(|| "http://t.internal:7000".to_owned());
        let got = resolve_upstreams(&names(), &["customers=http://c.internal:6000".into()], None, env).unwrap();
        assert_eq!(got["customers"], "http://c.internal:6000");
        assert_eq!(got["tickets"], "http://t.internal:7000");
        let got = resolve_upstreams(&names(), &[], None, |_| None).unwrap();
        assert_eq!(got["customers"], "http://customers:50051");
        let got = resolve_upstreams(&names(), &[], Some("http://127.0.0.1:1"), env).unwrap();
        assert!(got.values().all(|u| u == "http://127.0.0.1:1"), "{got:?}");
    }

    #[test]
    fn a_bad_upstream_setting_names_itself() {
        let e = resolve_upstreams(&names(), &["customers".into()], None, |_| None).unwrap_err().to_string();
        assert!(e.contains("expected NAME=URL"), "{e}");
        let e = resolve_upstreams(&names(), &["billing=http://b:1".into()], None, |_| None).unwrap_err().to_string();
        assert!(
            e.contains("\"billing\"") && e.contains("complaints, customers, performance, staff, tickets, training"),
            "{e}"
        );
        let e = resolve_upstreams(&names(), &["tickets=tickets:50051".into()], None, |_| None).unwrap_err().to_string();
        assert!(e.contains("tickets") && e.contains("not an http"), "{e}");
    }
}
