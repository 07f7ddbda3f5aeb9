//! The web console: static pages and ES modules embedded in the binary
//! (`gateway/console/`), served at `/`, calling the same REST API as every
//! client. A person's login is kept in cookies: the access token (`kefu_at`,
//! HttpOnly, 15 minutes), the refresh token (`kefu_rt`, HttpOnly, sent only
//! to `/console/session`), and a CSRF token (`kefu_csrf`, readable by the
//! page, new at each login and refresh) that every state-changing request
//! must repeat in `X-CSRF-Token`, from the console's own origin. All three
//! are `SameSite=Strict`. Behind a TLS-terminating proxy that says
//! `X-Forwarded-Proto: https` they are `Secure` and carry the `__Host-` /
//! `__Secure-` prefixes, which a sibling site cannot set.
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{AppState, LoginBody, auth, json_body, limited, problem::Problem};

pub const ACCESS_COOKIE: &str = "kefu_at";
pub const REFRESH_COOKIE: &str = "kefu_rt";
pub const CSRF_COOKIE: &str = "kefu_csrf";

/// A cookie's name over TLS (`__Host-` for those of path `/`, `__Secure-`
/// for the refresh token's narrower path) or over plain HTTP.
fn cookie_name(base: &'static str, secure: bool) -> String {
    match (secure, base) {
        (false, _) => base.to_owned(),
        (true, REFRESH_COOKIE) => format!("__Secure-{base}"),
        (true, _) => format!("__Host-{base}"),
    }
}

/// The value of the login cookie `base`: the prefixed one over TLS first.
fn login_cookie<'a>(headers: &'a HeaderMap, base: &'static str) -> Option<&'a str> {
    if over_tls(headers) {
        return cookie(headers, &cookie_name(base, true));
    }
    cookie(headers, base)
}
pub const CSRF_HEADER: &str = "x-csrf-token";
const SESSION_PATH: &str = "/console/session";

/// The console's files: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../console/app.js")),
    ("ui.js", "text/javascript; charset=utf-8", include_bytes!("../console/ui.js")),
    ("i18n.js", "text/javascript; charset=utf-8", include_bytes!("../console/i18n.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_bytes!("../console/pages.js")),
    ("admin.js", "text/javascript; charset=utf-8", include_bytes!("../console/admin.js")),
    ("people.js", "text/javascript; charset=utf-8", include_bytes!("../console/people.js")),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../console/docs.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../console/style.css")),
];

const INDEX: &str = include_str!("../console/index.html");
const DOCS: &str = include_str!("../console/docs.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console", get(index))
        .route("/login", get(index))
        .route("/console/labels.json", get(labels))
        .route("/console/{file}", get(file))
        .route(SESSION_PATH, post(open).delete(close))
        .route("/console/session/refresh", post(refresh))
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn index() -> Response {
    html(INDEX)
}

pub(crate) async fn docs_page() -> Response {
    html(DOCS)
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response()
        }
        None => Problem::new(StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}

/// The one label table (`proto/labels.tsv`): every enum value's Chinese and
/// English label, and its number in the contract (the order lists show).
async fn labels() -> Response {
    let numbers: std::collections::HashMap<String, i32> = crate::rpc::pool()
        .map(|pool| {
            pool.all_enums()
                .flat_map(|e| e.values().map(|v| (v.name().to_owned(), v.number())).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let map: serde_json::Map<String, Value> = kefu_proto::all_labels()
        .map(|(name, l)| {
            (name.to_owned(), json!({"zh": l.zh, "en": l.en, "n": numbers.get(name).copied().unwrap_or(0)}))
        })
        .collect();
    ([(header::CACHE_CONTROL, "no-cache")], Json(Value::Object(map))).into_response()
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached kefu over TLS.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, http_only: bool, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("kefu_invalid=; Max-Age=0"))
}

/// The three cookies of a login (or, with `None`, their removal).
fn session_cookies(resp: &mut Response, pair: Option<(&auth::TokenPair, &str)>, secure: bool) {
    let h = resp.headers_mut();
    let name = |base| cookie_name(base, secure);
    let (at, rt, csrf, at_age, rt_age) = match pair {
        Some((p, csrf)) => (
            p.access_token.as_str(),
            p.refresh_token.as_str(),
            csrf,
            auth::ACCESS_TTL.as_secs() as i64,
            auth::REFRESH_TTL_MS / 1000,
        ),
        None => ("", "", "", 0, 0),
    };
    h.append(header::SET_COOKIE, set_cookie(&name(ACCESS_COOKIE), at, "/", at_age, true, secure));
    h.append(header::SET_COOKIE, set_cookie(&name(REFRESH_COOKIE), rt, SESSION_PATH, rt_age, true, secure));
    h.append(header::SET_COOKIE, set_cookie(&name(CSRF_COOKIE), csrf, "/", rt_age, false, secure));
}

fn session_answer(pair: &auth::TokenPair, csrf: &str, secure: bool) -> Response {
    let mut resp = Json(json!({"csrfToken": csrf, "expiresIn": pair.expires_in})).into_response();
    session_cookies(&mut resp, Some((pair, csrf)), secure);
    resp
}

/// Logs in and keeps the login in cookies (the console's login form).
async fn open(State(gw): State<AppState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    check_origin(&headers, &uri)?;
    let b: LoginBody = json_body(&body)?;
    limited(&gw.per_key, format!("login:{}", b.username.trim()))?;
    let pair = gw.auth.login(&b.username, &b.password).await?;
    Ok(session_answer(&pair, &auth::random_token(24), over_tls(&headers)))
}

/// A new access token for the console's login (the refresh token rotates).
async fn refresh(State(gw): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, Problem> {
    check_csrf(&headers, &uri)?;
    let rt = login_cookie(&headers, REFRESH_COOKIE).ok_or_else(|| Problem::unauthorized("no console login; log in"))?;
    let pair = gw.auth.refresh(rt).await?;
    Ok(session_answer(&pair, &auth::random_token(24), over_tls(&headers)))
}

/// Logs out: the login ends and its cookies are removed.
async fn close(State(gw): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, Problem> {
    check_csrf(&headers, &uri)?;
    if let Some(rt) = login_cookie(&headers, REFRESH_COOKIE) {
        gw.auth.logout(rt).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    session_cookies(&mut resp, None, over_tls(&headers));
    Ok(resp)
}

/// FORBIDDEN when a request from a browser comes from another origin:
/// another scheme, host or port than the console's (the host the request
/// names, HTTP/1 `Host` or HTTP/2 `:authority`).
fn check_origin(headers: &HeaderMap, uri: &Uri) -> Result<(), Problem> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let scheme = if over_tls(headers) { "https" } else { "http" };
    if !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!("a request from {origin} may not use the console's login")))
    }
}

/// FORBIDDEN unless the request repeats the login's CSRF token in
/// `X-CSRF-Token` and comes from the console's own origin.
fn check_csrf(headers: &HeaderMap, uri: &Uri) -> Result<(), Problem> {
    check_origin(headers, uri)?;
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let kept = login_cookie(headers, CSRF_COOKIE).unwrap_or_default();
    let same = !kept.is_empty()
        && sent.len() == kept.len()
        && sent.bytes().zip(kept.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(Problem::forbidden("the X-CSRF-Token header is missing or does not match this login"))
    }
}

/// A request carrying the console's login cookie instead of a token or API
/// key is authenticated by it: the access token becomes its bearer token,
/// after the CSRF check for anything but a read. Requests with their own
/// credentials are left alone (cookies are never mixed with them).
pub async fn cookie_login(mut req: axum::extract::Request, next: Next) -> Response {
    let h = req.headers();
    let own = h.contains_key(header::AUTHORIZATION) || h.contains_key("x-api-key");
    let at = if own || !req.uri().path().starts_with("/api/") { None } else { login_cookie(h, ACCESS_COOKIE) };
    let Some(at) = at else { return next.run(req).await };
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Err(p)) = (read, check_csrf(h, req.uri())) {
        return p.into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {at}")) {
        req.headers_mut().insert(header::AUTHORIZATION, v);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_cookie_is_found_among_several_headers() {
        let h = headers(&[("cookie", "a=1; kefu_at=tok"), ("cookie", "kefu_csrf=c")]);
        assert_eq!(cookie(&h, "kefu_at"), Some("tok"));
        assert_eq!(cookie(&h, "kefu_csrf"), Some("c"));
        assert_eq!(cookie(&h, "kefu_rt"), None);
    }

    #[test]
    fn csrf_needs_the_header_equal_to_the_cookie_and_the_same_origin() {
        let uri = Uri::from_static("/api/v1/tickets");
        let check = |pairs: &[(&str, &str)]| check_csrf(&headers(pairs), &uri).is_ok();
        let ok = [("cookie", "kefu_csrf=abc"), ("x-csrf-token", "abc"), ("host", "k:8080")];
        assert!(check(&ok));
        assert!(!check(&[("cookie", "kefu_csrf=abc"), ("x-csrf-token", "abd")]));
        assert!(!check(&[("cookie", "kefu_csrf=abc")]));
        assert!(!check(&[("x-csrf-token", "")]));
        for (origin, same) in [
            ("https://evil.example", false),
            ("http://k:8080", true),
            ("https://k:8080", false),
            ("http://k:8080.evil.example", false),
            ("null", false),
        ] {
            let mut h = ok.to_vec();
            h.push(("origin", origin));
            assert_eq!(check(&h), same, "{origin}");
        }
        // Behind TLS only the prefixed cookie counts, and only an https origin.
        let tls = [("x-forwarded-proto", "https"), ("x-csrf-token", "abc"), ("host", "k")];
        let mut plain = tls.to_vec();
        plain.push(("cookie", "kefu_csrf=abc"));
        assert!(!check(&plain), "an unprefixed cookie over TLS could come from a sibling site");
        let mut prefixed = tls.to_vec();
        prefixed.push(("cookie", "__Host-kefu_csrf=abc"));
        assert!(check(&prefixed));
        prefixed.push(("origin", "https://k"));
        assert!(check(&prefixed));
        prefixed.pop();
        prefixed.push(("origin", "http://k"));
        assert!(!check(&prefixed));
    }

    /// The quoted words after each `marker` in `text` (`t('word')`).
    fn words_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        text.match_indices(marker)
            .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .filter_map(|(i, _)| {
                let rest = &text[i + marker.len()..];
                let end = rest.find(|c: char| !c.is_ascii_alphanumeric())?;
                rest[end..].starts_with('\'').then(|| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_text_the_console_shows_is_in_chinese_and_english() {
        let i18n = std::str::from_utf8(FILES.iter().find(|f| f.0 == "i18n.js").unwrap().2).unwrap();
        let (zh, en) = i18n.split_once("\n  en: {").unwrap();
        let keys = |block: &str| -> std::collections::BTreeSet<String> {
            block
                .split([',', '{', '\n'])
                .filter_map(|kv| kv.trim().split_once(": '").or_else(|| kv.trim().split_once(": \"")))
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
                .collect()
        };
        let zh = keys(zh.split_once("zh: {").unwrap().1);
        let en = keys(en.split_once("\n  },").unwrap().0);
        assert!(zh.len() > 200, "{} keys", zh.len());
        assert_eq!(zh, en, "the Chinese and English tables differ");
        let mut used = Vec::new();
        for (name, _, bytes) in FILES.iter().filter(|f| f.0.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).unwrap();
            for w in words_after(text, "t('").into_iter().chain(words_after(text, "nav: '")) {
                used.push((*name, w.to_owned()));
            }
        }
        assert!(used.len() > 200, "{} uses", used.len());
        let missing: Vec<_> = used.iter().filter(|(_, w)| !zh.contains(w)).collect();
        assert!(missing.is_empty(), "texts with no translation: {missing:?}");
    }

    #[test]
    fn cookies_are_secure_only_over_tls() {
        let c = set_cookie("kefu_at", "t", "/", 900, true, true);
        assert_eq!(c, "kefu_at=t; Path=/; Max-Age=900; SameSite=Strict; HttpOnly; Secure");
        let c = set_cookie("kefu_csrf", "c", "/", 9, false, false);
        assert_eq!(c, "kefu_csrf=c; Path=/; Max-Age=9; SameSite=Strict");
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_tls(&HeaderMap::new()));
        assert_eq!(cookie_name(ACCESS_COOKIE, true), "__Host-kefu_at");
        assert_eq!(cookie_name(REFRESH_COOKIE, true), "__Secure-kefu_rt");
        assert_eq!(cookie_name(CSRF_COOKIE, false), "kefu_csrf");
    }
}
