//! The part of Pi-hole's v6 API that Home Assistant's Pi-hole integration
//! calls (through its client library, `hole`), answered from our own stats
//! and pause, so the integration works against the box unchanged:
//!
//! - `POST /api/auth` `{"password": ...}` → `{"session": {"sid", "csrf",
//!   "validity", "valid"}}`; the password is the admin password or one of
//!   our API tokens (Pi-hole's "app password"), checked and rate-limited as
//!   our own login is. `DELETE /api/auth` ends the session.
//! - `GET /api/stats/summary`, `/api/stats/top_domains`,
//!   `/api/stats/top_clients`, `/api/stats/upstreams` (the last 24 hours).
//! - `GET /api/info/version`.
//! - `GET`/`POST /api/dns/blocking` `{"blocking": false, "timer": 60}`:
//!   our pause (`Backend::pause`), in whole minutes (a timer is rounded up).
//!
//! A request names its session in the `X-FTL-SID` header or the `sid` query
//! parameter (never a cookie, so no CSRF token is needed), or carries our
//! own credentials (session cookie, `Authorization: Bearer`), which the
//! guard has checked. A session from the password is one of our own
//! sessions (a password change or reset ends it); one from a token has that
//! token's scope and ends when the token is revoked. `read` may read;
//! changing blocking needs admin. Errors use Pi-hole's shape
//! `{"error": {"key", "message", "hint"}}`.
//! Not for: our own API (`/api/v1`), or any other Pi-hole endpoint.

use super::auth::TokenScope;
use super::backend::{TimeRange, TopKind};
use super::guard::Principal;
use super::http::{ApiError, blocking, peer};
use super::session::LoginIn;
use super::{Conn, State};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lives without use (Pi-hole's default
/// `webserver.session.timeout`).
pub const VALIDITY: Duration = Duration::from_secs(1800);
/// Sessions from tokens kept at once; the least recently used goes first.
const MAX_TOKEN_SESSIONS: usize = 64;
/// The longest pause a timer may ask for (as `/api/v1/pause`).
const MAX_TIMER_SECS: f64 = 7.0 * 86_400.0;
/// Pi-hole's summary covers the last 24 hours.
const DAY_MS: i64 = 86_400_000;

pub const SID_HEADER: &str = "x-ftl-sid";

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/auth", post(login).delete(logout))
        .route("/api/stats/summary", get(summary))
        .route("/api/stats/top_domains", get(top_domains))
        .route("/api/stats/top_clients", get(top_clients))
        .route("/api/stats/upstreams", get(upstreams))
        .route("/api/info/version", get(version))
        .route("/api/dns/blocking", get(blocking_status).post(set_blocking))
}

/// Sessions opened with an API token (password sessions are our own
/// sessions, kept by `auth`).
#[derive(Default)]
pub struct Sessions {
    by_sid: Mutex<HashMap<String, TokenSession>>,
}

struct TokenSession {
    token_id: String,
    last_seen: Instant,
}

impl Sessions {
    fn open(&self, token_id: String) -> String {
        let sid = super::auth::random_hex(32);
        let mut m = self.by_sid.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, s| s.last_seen.elapsed() < VALIDITY);
        if m.len() >= MAX_TOKEN_SESSIONS
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            sid.clone(),
            TokenSession {
                token_id,
                last_seen: Instant::now(),
            },
        );
        sid
    }

    /// The token behind a live session, touching it.
    fn token_of(&self, sid: &str) -> Option<String> {
        let mut m = self.by_sid.lock().unwrap_or_else(|e| e.into_inner());
        let s = m.get_mut(sid)?;
        if s.last_seen.elapsed() >= VALIDITY {
            m.remove(sid);
            return None;
        }
        s.last_seen = Instant::now();
        Some(s.token_id.clone())
    }

    fn close(&self, sid: &str) -> bool {
        let mut m = self.by_sid.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(sid).is_some()
    }
}

/// An answer in Pi-hole's error shape.
pub struct PiError {
    status: StatusCode,
    key: &'static str,
    message: String,
}

impl IntoResponse for PiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {"key": self.key, "message": self.message, "hint": null},
            "took": 0.0,
        });
        (self.status, Json(body)).into_response()
    }
}

type PiResult = Result<Response, PiError>;

fn error(status: StatusCode, key: &'static str, message: impl Into<String>) -> PiError {
    PiError {
        status,
        key,
        message: message.into(),
    }
}

fn from_api(e: ApiError) -> PiError {
    let key = match e.status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "rate_limiting",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        _ => "error",
    };
    error(e.status, key, e.error)
}

fn unauthorized() -> PiError {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized: log in with POST /api/auth and send the sid as X-FTL-SID",
    )
}

/// Adds the seconds the request took, as Pi-hole does.
fn answer(started: Instant, mut body: Value) -> Response {
    body["took"] = json!(started.elapsed().as_secs_f64());
    Json(body).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SidParam {
    sid: Option<String>,
}

/// Who is asking: our own credentials (already checked by the guard,
/// including a `read` token's limits) or a session from `POST /api/auth`.
fn scope_of(st: &State, req: &Request) -> Option<TokenScope> {
    if req.extensions().get::<Principal>().is_some() {
        return Some(TokenScope::Admin);
    }
    let sid = req
        .headers()
        .get(SID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            Query::<SidParam>::try_from_uri(req.uri())
                .ok()
                .and_then(|q| q.0.sid)
        })?;
    if st.auth.session(&sid).is_some() {
        return Some(TokenScope::Admin);
    }
    let token = st.pihole.token_of(&sid)?;
    st.auth
        .tokens()
        .into_iter()
        .find(|t| t.id == token)
        .map(|t| t.scope)
}

fn require(st: &State, req: &Request, need: TokenScope) -> Result<(), PiError> {
    match scope_of(st, req) {
        None => Err(unauthorized()),
        Some(TokenScope::Read) if need == TokenScope::Admin => Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API token may only read; changing blocking needs the admin password or a token with scope admin",
        )),
        Some(_) => Ok(()),
    }
}

async fn login(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    body: Result<Json<LoginIn>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let started = Instant::now();
    let Ok(Json(input)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "send a JSON body {\"password\": \"...\"}",
        )
        .into_response();
    };
    let client = peer(&ci);
    let opened = if input.password.starts_with("gh_") {
        token_login(&st, client, &input.password).await
    } else {
        super::session::do_login(&st, client, &input.password)
            .await
            .map(|(sid, csrf)| (sid, Some(csrf)))
    };
    match opened {
        Ok((sid, csrf)) => answer(
            started,
            json!({"session": {
                "valid": true, "totp": false, "sid": sid, "csrf": csrf,
                "validity": VALIDITY.as_secs(), "message": "password correct"
            }}),
        ),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let body = json!({"session": {
                "valid": false, "totp": false, "sid": null, "validity": -1,
                "message": "password incorrect"
            }, "took": started.elapsed().as_secs_f64()});
            (StatusCode::UNAUTHORIZED, Json(body)).into_response()
        }
        Err(e) => from_api(e).into_response(),
    }
}

/// An API token given as the password ("app password"): counted by the
/// login limit like a password.
async fn token_login(
    st: &State,
    client: std::net::IpAddr,
    token: &str,
) -> Result<(String, Option<String>), ApiError> {
    let attempt = super::session::begin_attempt(st, client)?;
    let (id, _) = st
        .auth
        .check_token(token)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid API token"))?;
    attempt.succeeded();
    Ok((st.pihole.open(id), None))
}

async fn logout(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    let sid = headers.get(SID_HEADER).and_then(|v| v.to_str().ok());
    let Some(sid) = sid else {
        return unauthorized().into_response();
    };
    let ours = st.auth.session(sid).is_some();
    if ours {
        st.auth.end_session(sid);
    }
    if ours || st.pihole.close(sid) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unauthorized().into_response()
    }
}

fn last_day() -> TimeRange {
    let now = crate::clock::now_ms();
    TimeRange {
        from_ms: now - DAY_MS,
        to_ms: now,
    }
}

async fn summary(axum::extract::State(st): axum::extract::State<State>, req: Request) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Read)?;
    let body = blocking(&st, |st| {
        let s = st.backend.summary(last_day()).unwrap_or_default();
        let blocked_domains: u64 = st
            .backend
            .lists()
            .iter()
            .filter(|l| l.enabled)
            .filter_map(|l| l.domains)
            .sum();
        let last_update = st
            .backend
            .lists()
            .iter()
            .filter_map(|l| l.updated_ms)
            .max()
            .map(|ms| ms / 1000)
            .unwrap_or(0);
        json!({
            "queries": {
                "total": s.total,
                "blocked": s.blocked,
                "percent_blocked": s.percent_blocked(),
                "unique_domains": s.unique_domains,
                "forwarded": s.total.saturating_sub(s.blocked + s.cached),
                "cached": s.cached,
                "frequency": s.total as f64 / (DAY_MS as f64 / 60_000.0),
                "types": {},
                "status": {},
                "replies": {},
            },
            "clients": {"active": s.unique_clients, "total": s.unique_clients},
            "gravity": {"domains_being_blocked": blocked_domains, "last_update": last_update},
        })
    })
    .await;
    Ok(answer(started, body))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TopIn {
    blocked: Option<bool>,
    count: Option<u32>,
}

fn top_query(req: &Request) -> Result<TopIn, PiError> {
    Query::<TopIn>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))
}

/// `count` as Pi-hole reads it: 10 when absent, at most 100 here.
fn top_count(q: &TopIn) -> u32 {
    q.count.unwrap_or(10).min(100)
}

async fn top_domains(
    axum::extract::State(st): axum::extract::State<State>,
    req: Request,
) -> PiResult {
    let q = top_query(&req)?;
    let kind = if q.blocked.unwrap_or(false) {
        TopKind::Blocked
    } else {
        TopKind::Domains
    };
    top_list(
        st,
        req,
        kind,
        q,
        |t| json!({"domain": t.name, "count": t.count}),
    )
    .await
}

async fn top_clients(
    axum::extract::State(st): axum::extract::State<State>,
    req: Request,
) -> PiResult {
    let q = top_query(&req)?;
    top_list(
        st,
        req,
        TopKind::Clients,
        q,
        |t| json!({"ip": t.name, "name": t.client_name.unwrap_or_default(), "count": t.count}),
    )
    .await
}

/// A top list under `"domains"` or `"clients"`, with the day's totals.
async fn top_list(
    st: State,
    req: Request,
    kind: TopKind,
    q: TopIn,
    item: fn(super::backend::TopItem) -> Value,
) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Read)?;
    let key = if kind == TopKind::Clients {
        "clients"
    } else {
        "domains"
    };
    let n = top_count(&q);
    let body = blocking(&st, move |st| {
        let r = last_day();
        let s = st.backend.summary(r).unwrap_or_default();
        let list: Vec<Value> = st.backend.top(kind, r, n).into_iter().map(item).collect();
        json!({key: list, "total_queries": s.total, "blocked_queries": s.blocked})
    })
    .await;
    Ok(answer(started, body))
}

async fn upstreams(
    axum::extract::State(st): axum::extract::State<State>,
    req: Request,
) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Read)?;
    let body = blocking(&st, |st| {
        let s = st.backend.summary(last_day()).unwrap_or_default();
        let list: Vec<Value> = st
            .backend
            .engine_stats()
            .upstreams
            .into_iter()
            .map(|u| {
                json!({
                    "ip": u.name, "name": u.name, "port": -1, "count": 0,
                    "statistics": {"response": u.latency_ms.unwrap_or(0.0) / 1000.0, "variance": 0.0}
                })
            })
            .collect();
        json!({
            "upstreams": list,
            "forwarded_queries": s.total.saturating_sub(s.blocked + s.cached),
            "total_queries": s.total,
        })
    })
    .await;
    Ok(answer(started, body))
}

async fn version(axum::extract::State(st): axum::extract::State<State>, req: Request) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Read)?;
    let v = st.backend.firmware_version();
    // The box updates itself by signed bundles (Settings → Firmware), not
    // through this API: "remote" repeats "local", so no update is offered.
    let part = json!({
        "local": {"branch": "main", "version": v, "hash": v},
        "remote": {"version": v, "hash": v},
    });
    Ok(answer(
        started,
        json!({"version": {
            "core": part, "web": part, "ftl": part,
            "docker": {"local": null, "remote": null},
        }}),
    ))
}

fn blocking_body(st: &State) -> Value {
    let p = st.backend.pause_status();
    let timer = p
        .until_ms
        .filter(|_| p.paused)
        .map(|until| ((until - crate::clock::now_ms()).max(0) as f64) / 1000.0);
    json!({
        "blocking": if p.paused { "disabled" } else { "enabled" },
        "timer": timer,
    })
}

async fn blocking_status(
    axum::extract::State(st): axum::extract::State<State>,
    req: Request,
) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Read)?;
    Ok(answer(started, blocking_body(&st)))
}

#[derive(Deserialize)]
struct BlockingIn {
    blocking: bool,
    #[serde(default)]
    timer: Option<f64>,
}

/// The pause length a Pi-hole timer asks for: None (until re-enabled) for
/// no timer or 0, else whole minutes, rounded up.
fn pause_minutes(timer: Option<f64>) -> Result<Option<u32>, String> {
    match timer {
        None => Ok(None),
        Some(0.0) => Ok(None),
        Some(t) if !(t > 0.0 && t <= MAX_TIMER_SECS) => Err(format!(
            "timer: seconds between 1 and {MAX_TIMER_SECS} (one week), or null; got {t}"
        )),
        Some(t) => Ok(Some((t / 60.0).ceil() as u32)),
    }
}

async fn set_blocking(
    axum::extract::State(st): axum::extract::State<State>,
    req: Request,
) -> PiResult {
    let started = Instant::now();
    require(&st, &req, TokenScope::Admin)?;
    let input: BlockingIn = match Json::<BlockingIn>::from_request(req, &st).await {
        Ok(Json(b)) => b,
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "send {{\"blocking\": true|false, \"timer\": seconds|null}}: {}",
                    e.body_text()
                ),
            ));
        }
    };
    let done = if input.blocking {
        if input.timer.is_some_and(|t| t > 0.0) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "timer: enabling for a while and then disabling is not supported here; send \"timer\": null",
            ));
        }
        st.backend.resume()
    } else {
        match pause_minutes(input.timer) {
            Ok(m) => st.backend.pause(m),
            Err(msg) => return Err(error(StatusCode::BAD_REQUEST, "bad_request", msg)),
        }
    };
    if let Err(msg) = done {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "error", msg));
    }
    Ok(answer(started, blocking_body(&st)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_round_up_to_minutes() {
        assert_eq!(pause_minutes(None), Ok(None));
        assert_eq!(pause_minutes(Some(0.0)), Ok(None));
        assert_eq!(pause_minutes(Some(1.0)), Ok(Some(1)));
        assert_eq!(pause_minutes(Some(60.0)), Ok(Some(1)));
        assert_eq!(pause_minutes(Some(61.0)), Ok(Some(2)));
        assert!(pause_minutes(Some(-5.0)).unwrap_err().contains("timer"));
        assert!(pause_minutes(Some(8.0 * 86_400.0)).is_err());
        assert!(pause_minutes(Some(f64::NAN)).is_err());
    }
}
