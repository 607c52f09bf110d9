//! The checks every request passes before a handler sees it, and the
//! headers every response leaves with.
//!
//! Order: Host allowlist (a page on another site that rebinds its name to
//! the box's address is refused here), then who is asking (session cookie
//! or `Authorization: Bearer` token), then for state-changing methods the
//! Origin check and the session's CSRF token (`X-CSRF-Token` header), and
//! for a token its scope: a `read` token may only read ([`needs_admin`]).
//! The handler then has `listen::REQUEST_TIMEOUT` to answer.
//! Unauthenticated requests to anything but login, setup, health, the
//! static assets and the Pi-hole API (which checks its own sessions, see
//! `pihole`) get 401 (API) or a redirect to the login or setup page.

use super::State;
use super::auth::TokenScope;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::IpAddr;

pub const SESSION_COOKIE: &str = "gh_session";
/// Double-submit token for the two forms used before a session exists.
pub const PRE_COOKIE: &str = "gh_pre";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// Who is making the request, once the guard has checked.
#[derive(Debug, Clone)]
pub enum Principal {
    Session { id: String, csrf: String },
    Token,
}

/// Whether a request needs an `admin` token: every change (any method but
/// GET and HEAD), and reading the backup (it holds the credential hashes)
/// or the token list.
pub fn needs_admin(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
        || matches!(path, "/api/v1/backup" | "/api/v1/tokens")
}

/// Host names accepted besides IP literals and `web.allowed_hosts`.
const BUILTIN_HOSTS: &[&str] = &["localhost", "glory-hole", "glory-hole.local"];

/// The Host header's name part, without port or IPv6 brackets.
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host).trim_end_matches('.');
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    BUILTIN_HOSTS.contains(&name.as_str()) || allowed.iter().any(|a| a.eq_ignore_ascii_case(&name))
}

fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health"
            | "/api/v1/health"
            | "/login"
            | "/api/v1/login"
            | "/setup"
            | "/api/v1/setup"
            | "/api/v1/setup/restore"
    ) || path.starts_with("/assets/")
}

/// The Pi-hole v6 API (`pihole`): its handlers check their own sessions
/// (`X-FTL-SID`), so requests without our credentials reach them.
fn is_pihole_api(path: &str) -> bool {
    matches!(
        path,
        "/api/auth" | "/api/info/version" | "/api/dns/blocking"
    ) || path.starts_with("/api/stats/")
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Equal without an early exit, so timing does not reveal a prefix.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn api_error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
}

/// A browser's cross-site request carries an Origin (or Sec-Fetch-Site)
/// that names another site; scripts and same-origin pages pass.
fn origin_ok(headers: &HeaderMap, host: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site == "cross-site"
    {
        return false;
    }
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        }
        Some(Err(_)) => false,
    }
}

pub async fn guard(
    axum::extract::State(st): axum::extract::State<State>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let mut resp = match tokio::time::timeout(
        super::listen::REQUEST_TIMEOUT,
        check_and_run(&st, &mut req, next),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => api_error(
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long (a body sent too slowly?)",
        ),
    };
    add_security_headers(resp.headers_mut());
    // How long the server worked on this request (shown by browser tools;
    // read by examples/web_page_times.rs).
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

async fn check_and_run(st: &State, req: &mut Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_string();
    let path = req.uri().path().to_string();
    let cfg = st.backend.config();
    if !host_allowed(&host, &cfg.web.allowed_hosts) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host '{host}' is not allowed (DNS-rebinding protection). Use the box's IP \
                 address, or add the name to [web] allowed_hosts."
            ),
        )
            .into_response();
    }
    let is_api = path.starts_with("/api/") || path == "/metrics";
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);

    if unsafe_method && !origin_ok(headers, &host) {
        return api_error(
            StatusCode::FORBIDDEN,
            "cross-site request refused (Origin does not match Host)",
        );
    }

    let mut principal = None;
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim);
        match token {
            Some(t) => match st.auth.check_token(t).await {
                Some((_, TokenScope::Read)) if needs_admin(req.method(), &path) => {
                    return api_error(
                        StatusCode::FORBIDDEN,
                        "this API token may only read; changes need a token with scope admin",
                    );
                }
                Some((id, _)) => {
                    tracing::debug!(token = %id, path = %req.uri().path(), "API token request");
                    principal = Some(Principal::Token)
                }
                None => return api_error(StatusCode::UNAUTHORIZED, "invalid API token"),
            },
            None => {
                return api_error(
                    StatusCode::UNAUTHORIZED,
                    "use 'Authorization: Bearer <token>'",
                );
            }
        }
    } else if let Some(id) = cookie(headers, SESSION_COOKIE)
        && let Some(s) = st.auth.session(id)
    {
        principal = Some(Principal::Session {
            id: id.to_string(),
            csrf: s.csrf,
        });
    }

    // Tokens travel in a header no other site can make a browser send, so
    // only cookie-authenticated changes need the CSRF token.
    if unsafe_method && let Some(Principal::Session { csrf, .. }) = &principal {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let form_checked_by_handler = path == "/logout";
        if !form_checked_by_handler && !sent.is_some_and(|s| same_secret(s, csrf)) {
            return api_error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (reload the page)",
            );
        }
    }

    if principal.is_none() && !is_public(&path) && !is_pihole_api(&path) {
        if is_api {
            return api_error(StatusCode::UNAUTHORIZED, "log in first");
        }
        return if st.auth.password_is_set() {
            Redirect::to("/login").into_response()
        } else {
            Redirect::to("/setup").into_response()
        };
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    let req = std::mem::replace(req, Request::new(axum::body::Body::empty()));
    next.run(req).await
}

fn add_security_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // Not "no-referrer": with it Chromium sends `Origin: null` on form posts.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    set(h, "cache-control", "no-store");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allowlist() {
        let extra = vec!["dns.home.example".to_string()];
        for ok in [
            "192.168.1.2",
            "192.168.1.2:8080",
            "[fd00::2]:80",
            "[::1]",
            "localhost:8080",
            "glory-hole",
            "GLORY-HOLE.local",
            "dns.home.example",
        ] {
            assert!(host_allowed(ok, &extra), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "",
            "glory-hole.evil.example",
        ] {
            assert!(!host_allowed(bad, &extra), "{bad}");
        }
    }

    #[test]
    fn pihole_paths() {
        for p in [
            "/api/auth",
            "/api/stats/summary",
            "/api/dns/blocking",
            "/api/info/version",
        ] {
            assert!(is_pihole_api(p), "{p}");
        }
        for p in ["/api/v1/stats", "/api/v1/pause", "/api/config", "/"] {
            assert!(!is_pihole_api(p), "{p}");
        }
    }

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; gh_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "gh_session"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
