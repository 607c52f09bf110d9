//! The JSON API under `/api/v1`: everything the pages do, for the pages
//! themselves and for scripts (with an API token). Each change builds a new
//! config, hands it to `Backend::apply` (validate, save atomically, swap)
//! and reports a bad value as `{"error": "...", "field": "..."}` with 422,
//! changing nothing.

use super::backend::{
    Bucket, EngineStats, ListStatus, LogPage, LogQuery, PauseStatus, Summary, TimeRange, TopItem,
    TopKind,
};
use super::guard::{self, CSRF_HEADER, PRE_COOKIE, Principal, SESSION_COOKIE};
use super::scope::{self, RuleList, Scope};
use super::setup::{self, Network};
use super::sysinfo::SysInfo;
use super::{Conn, State};
use crate::config::{
    ClientGroup, Config, DomainName, Dur, FilterList, ForwardZone, LocalRecord, Rdata, RecordType,
    RuleEntry,
};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

/// Uploads (config restore, Teleporter archives) may be this large.
const MAX_UPLOAD: usize = 64 << 20;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/setup", get(setup_status).post(setup_api))
        .route(
            "/api/v1/setup/restore",
            post(setup_restore).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/querylog", get(querylog))
        .route("/api/v1/explain", get(explain))
        .route(
            "/api/v1/rules",
            get(rules).post(add_rule).delete(remove_rule),
        )
        .route("/api/v1/lists", get(lists).post(add_list))
        .route("/api/v1/lists/update", post(update_lists))
        .route(
            "/api/v1/lists/{name}",
            delete(remove_list).patch(patch_list),
        )
        .route(
            "/api/v1/groups",
            get(groups).put(put_groups).post(add_group),
        )
        .route("/api/v1/groups/{name}", delete(remove_group))
        .route(
            "/api/v1/local/records",
            get(local_records).post(add_record).delete(remove_record),
        )
        .route(
            "/api/v1/forward",
            get(forward).post(add_forward).delete(remove_forward),
        )
        .route("/api/v1/settings", get(settings).put(put_settings))
        .route("/api/v1/password", post(change_password))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route(
            "/api/v1/pause",
            get(pause_status).post(pause).delete(resume),
        )
        .route("/api/v1/system", get(system))
        .route("/api/v1/network", get(network).put(put_network))
        .route("/api/v1/backup", get(backup))
        .route(
            "/api/v1/restore",
            post(restore).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route(
            "/api/v1/import/teleporter",
            post(teleporter).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/api/v1/system/reboot", post(reboot))
        .route("/api/v1/system/factory-reset", post(factory_reset))
        .route("/api/v1/firmware", post(firmware))
        .route("/metrics", get(metrics))
}

// ---- errors and extractors ----

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }
    pub fn field(field: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: error.into(),
            field: Some(field.to_string()),
        }
    }
    /// A backend message "dns.upstreams: ..." names its field first.
    pub fn from_config(msg: String) -> ApiError {
        let head = msg.split(':').next().unwrap_or("");
        let first = head.split([' ', '(']).next().unwrap_or("");
        let rest = head[first.len()..].trim();
        if !rest.is_empty() && !rest.starts_with('(') {
            // Not "field: problem" but e.g. "saving /data/config.toml: disk full".
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg);
        }
        let field = head
            .split([' ', '('])
            .next()
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .split('[')
            .next()
            .unwrap_or("");
        // "local.records[0] (nas.lan): value: ..." names the field second.
        let inner = msg
            .split(": ")
            .nth(1)
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        let field = inner
            .or((!field.is_empty() && !field.contains('/')).then_some(field))
            .map(str::to_string);
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: msg,
            field,
        }
    }
    fn unavailable(msg: String) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg)
    }
}

impl From<setup::FieldError> for ApiError {
    fn from((field, msg): setup::FieldError) -> ApiError {
        ApiError::field(&field, format!("{field}: {msg}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error });
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        (self.status, Json(body)).into_response()
    }
}

/// JSON body whose parse errors come back in our error shape.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}

fn ok(message: impl Into<String>) -> Json<serde_json::Value> {
    Json(json!({ "message": message.into() }))
}

/// Clones the running config, lets `f` change it, applies it. One edit at
/// a time, so two pages saving at once do not lose each other's change.
pub fn edit(st: &State, f: impl FnOnce(&mut Config) -> ApiResult<()>) -> ApiResult<()> {
    let _one = st.edit_lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut cfg = (*st.backend.config()).clone();
    f(&mut cfg)?;
    check_filter(&cfg)?;
    st.backend.apply(cfg).map_err(ApiError::from_config)
}

/// Compiles the filter's rules and groups once before anything is saved:
/// the handlers check each field, this catches what they cannot see (a
/// restored file, a group name a list still uses).
pub fn check_filter(cfg: &Config) -> ApiResult<()> {
    crate::filter::rules::Policy::new(cfg, 0)
        .map(drop)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))
}

/// Runs a backend read that may touch SQLite or list files on a blocking
/// thread, so a slow disk never stalls the async workers.
pub async fn blocking<T: Send + 'static>(
    st: &State,
    f: impl FnOnce(&State) -> T + Send + 'static,
) -> T {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .expect("backend read panicked")
}

fn peer(ci: &Option<Extension<ConnectInfo<Conn>>>) -> IpAddr {
    ci.as_ref()
        .map(|c| c.0.0.peer.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

pub fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=604800"
    ))
    .expect("hex cookie")
}

pub fn pre_cookie(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    ))
    .expect("hex cookie")
}

/// The double-submit check for login and setup: the token in the form or
/// header must equal the SameSite cookie no other site can set or read.
pub fn pre_csrf_ok(headers: &HeaderMap, sent: Option<&str>) -> bool {
    let sent = sent.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    match (guard::cookie(headers, PRE_COOKIE), sent) {
        (Some(c), Some(s)) => !c.is_empty() && guard::same_secret(c, s),
        _ => false,
    }
}

fn csrf_error() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token (reload the page)",
    )
}

// ---- health, openapi, login ----

async fn health(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": st.backend.firmware_version(),
        "setup_needed": !st.auth.password_is_set(),
    }))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document().to_string(),
    )
        .into_response()
}

/// Checks the password with the rate limit; returns a new session.
pub async fn do_login(st: &State, client: IpAddr, password: &str) -> ApiResult<(String, String)> {
    if !st.auth.password_is_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no admin password yet: finish setup first",
        ));
    }
    if st.auth.login_blocked(client) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; wait a minute",
        ));
    }
    if !st.auth.check_password(password).await {
        st.auth.login_failed(client);
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "wrong password".into(),
            field: Some("password".into()),
        });
    }
    st.auth.login_succeeded(client);
    Ok(st.auth.new_session())
}

#[derive(Deserialize)]
struct LoginIn {
    password: String,
}

async fn login(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    Body(input): Body<LoginIn>,
) -> ApiResult<Response> {
    if !pre_csrf_ok(&headers, None) {
        return Err(csrf_error());
    }
    let (id, csrf) = do_login(&st, peer(&ci), &input.password).await?;
    let mut resp = Json(json!({ "csrf": csrf })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&id));
    Ok(resp)
}

async fn logout(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Extension<Principal>,
) -> Response {
    if let Principal::Session { id, .. } = p {
        st.auth.end_session(&id);
    }
    let mut resp = ok("logged out").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("gh_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    resp
}

// ---- setup ----

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetupIn {
    pub password: String,
    /// cloudflare, quad9, google or custom.
    pub upstream: String,
    /// plain, dot or doh.
    pub protocol: String,
    pub custom_upstreams: Vec<String>,
    pub blocklists: Vec<String>,
    /// Appliance only.
    pub network: Option<Network>,
}

/// Applies first-boot choices: config first (so a bad choice leaves the
/// box unconfigured and the form can be fixed), then the password.
pub async fn do_setup(st: &State, input: &SetupIn) -> ApiResult<()> {
    if st.auth.password_is_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "setup is already finished; log in instead",
        ));
    }
    super::auth::check_password_strength(&input.password)
        .map_err(|e| ApiError::field("password", e))?;
    let mut cfg = (*st.backend.config()).clone();
    cfg.dns.upstreams =
        setup::upstreams(&input.upstream, &input.protocol, &input.custom_upstreams)?;
    setup::add_blocklists(&mut cfg, &input.blocklists)?;
    cfg.validate().map_err(ApiError::from_config)?;
    if cfg.web.appliance {
        let net = input.network.clone().unwrap_or_default();
        net.validate()?;
        net.save(&st.backend.data_dir())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    }
    st.auth
        .set_password(&input.password, true)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    edit(st, |c| {
        *c = cfg;
        Ok(())
    })
}

async fn setup_status(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    // Reuse the token a page in another tab already holds.
    let token = guard::cookie(&headers, PRE_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| super::auth::random_hex(16));
    let cfg = st.backend.config();
    let mut resp = Json(json!({
        "needed": !st.auth.password_is_set(),
        "appliance": cfg.web.appliance,
        "csrf": token,
        "upstream_presets": setup::UPSTREAM_PRESETS.iter().map(|p| json!({"id": p.id, "label": p.label})).collect::<Vec<_>>(),
        "blocklist_presets": setup::BLOCKLIST_PRESETS.iter().map(|p| json!({"id": p.0, "label": p.1, "url": p.2})).collect::<Vec<_>>(),
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, pre_cookie(&token));
    resp
}

async fn setup_api(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
    Body(input): Body<SetupIn>,
) -> ApiResult<Response> {
    if !pre_csrf_ok(&headers, None) {
        return Err(csrf_error());
    }
    do_setup(&st, &input).await?;
    let (id, csrf) = st.auth.new_session();
    let mut resp = Json(json!({ "message": "setup finished", "csrf": csrf })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&id));
    Ok(resp)
}

// ---- dashboard ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RangeIn {
    /// "1h", "24h", "7d"...
    pub range: Option<String>,
}

#[derive(Serialize)]
pub struct Stats {
    pub range: String,
    pub summary: Option<Summary>,
    pub percent_blocked: f64,
    pub series: Vec<Bucket>,
    pub top_domains: Vec<TopItem>,
    pub top_blocked: Vec<TopItem>,
    pub top_clients: Vec<TopItem>,
    pub engine: EngineStats,
    pub cache_hit_rate: f64,
    pub system: SysInfo,
    pub pause: PauseStatus,
}

pub fn parse_range(range: Option<&str>) -> ApiResult<(String, TimeRange)> {
    let text = range.filter(|r| !r.is_empty()).unwrap_or("24h");
    let d: Dur = text
        .parse()
        .map_err(|e: String| ApiError::field("range", format!("range: {e}")))?;
    if d.0.as_secs() < 60 || d.0.as_secs() > 366 * 86_400 {
        return Err(ApiError::field("range", "range: between 1m and 366d"));
    }
    let now = crate::clock::now_ms();
    Ok((
        text.to_string(),
        TimeRange {
            from_ms: now - d.0.as_millis() as i64,
            to_ms: now,
        },
    ))
}

pub fn stats_data(st: &State, range: Option<&str>) -> ApiResult<Stats> {
    let (label, r) = parse_range(range)?;
    let b = &st.backend;
    let summary = b.summary(r);
    let engine = b.engine_stats();
    Ok(Stats {
        range: label,
        percent_blocked: summary.as_ref().map(|s| s.percent_blocked()).unwrap_or(0.0),
        summary,
        series: b.time_series(r, 48),
        top_domains: b.top(TopKind::Domains, r, 10),
        top_blocked: b.top(TopKind::Blocked, r, 10),
        top_clients: b.top(TopKind::Clients, r, 10),
        cache_hit_rate: engine.cache_hit_rate(),
        engine,
        system: st.sys.sample(&b.data_dir()),
        pause: b.pause_status(),
    })
}

async fn stats(
    axum::extract::State(st): axum::extract::State<State>,
    Query(q): Query<RangeIn>,
) -> ApiResult<Json<Stats>> {
    blocking(&st, move |st| stats_data(st, q.range.as_deref()))
        .await
        .map(Json)
}

// ---- query log ----

/// Query-string form of a log search; empty fields mean "any".
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct LogParams {
    pub from_ms: Option<String>,
    pub to_ms: Option<String>,
    pub domain: Option<String>,
    pub client: Option<String>,
    pub status: Option<String>,
    pub qtype: Option<String>,
    pub before_ms: Option<String>,
    pub after_ms: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

pub const STATUSES: &[&str] = &[
    "blocked", "cache", "upstream", "local", "stale", "refused", "failed",
];

impl LogParams {
    pub fn to_query(&self) -> ApiResult<LogQuery> {
        fn s(v: &Option<String>) -> Option<String> {
            v.as_ref()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        }
        fn n(v: &Option<String>, field: &str) -> ApiResult<Option<i64>> {
            match s(v) {
                None => Ok(None),
                Some(x) => x
                    .parse()
                    .map(Some)
                    .map_err(|_| ApiError::field(field, format!("{field}: '{x}' is not a number"))),
            }
        }
        let status = s(&self.status);
        if let Some(st) = &status
            && !STATUSES.contains(&st.as_str())
        {
            return Err(ApiError::field(
                "status",
                format!("status: '{st}': use one of {}", STATUSES.join(", ")),
            ));
        }
        let limit = n(&self.limit, "limit")?.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::field("limit", "limit: between 1 and 1000"));
        }
        Ok(LogQuery {
            from_ms: n(&self.from_ms, "from_ms")?,
            to_ms: n(&self.to_ms, "to_ms")?,
            domain: s(&self.domain).map(|d| d.to_ascii_lowercase()),
            client: s(&self.client),
            status,
            qtype: s(&self.qtype).map(|t| t.to_ascii_uppercase()),
            before_ms: n(&self.before_ms, "before_ms")?,
            after_ms: n(&self.after_ms, "after_ms")?,
            cursor: n(&self.cursor, "cursor")?,
            limit: Some(limit as u32),
        })
    }
}

async fn querylog(
    axum::extract::State(st): axum::extract::State<State>,
    Query(p): Query<LogParams>,
) -> ApiResult<Json<LogPage>> {
    let q = p.to_query()?;
    Ok(Json(blocking(&st, move |st| st.backend.search(&q)).await))
}

#[derive(Deserialize)]
struct ExplainIn {
    domain: String,
    #[serde(default)]
    client: Option<String>,
}

async fn explain(
    axum::extract::State(st): axum::extract::State<State>,
    Query(q): Query<ExplainIn>,
) -> ApiResult<Json<super::backend::Explanation>> {
    let d: DomainName = q
        .domain
        .parse()
        .map_err(|e: String| ApiError::field("domain", e))?;
    let client = match q.client.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<IpAddr>()
                .map_err(|_| ApiError::field("client", format!("'{c}' is not an IP address")))?,
        ),
    };
    blocking(&st, move |st| st.backend.explain(&d.0, client))
        .await
        .map(Json)
        .ok_or_else(|| ApiError::unavailable(format!("explain: {}", super::backend::NOT_AVAILABLE)))
}

// ---- allow / deny rules ----

#[derive(Deserialize, Serialize)]
pub struct RuleIn {
    /// "allow" or "deny".
    pub list: String,
    pub entry: String,
    /// Groups the entry applies to; missing or empty: every client.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// An allow/deny entry as the filter reads it, in its stored spelling:
/// "d", "*.d" or "/regex/" (the config file's parser, `syntax::rule`).
pub fn normalize_rule(entry: &str) -> ApiResult<String> {
    rule_entry(entry).map(|r| r.to_string())
}

fn rule_entry(entry: &str) -> ApiResult<RuleEntry> {
    RuleEntry::parse(entry).map_err(|e| ApiError::field("entry", format!("entry: {e}")))
}

fn rule_list(list: &str) -> ApiResult<RuleList> {
    RuleList::parse(list)
        .ok_or_else(|| ApiError::field("list", format!("list: '{list}': use allow or deny")))
}

/// The groups a form or script chose; empty means every client.
fn chosen_scope(c: &Config, groups: &Option<Vec<String>>) -> ApiResult<Scope> {
    let names = scope::check_groups(c, groups.as_deref().unwrap_or(&[]))
        .map_err(|e| ApiError::field("groups", e))?;
    Ok(if names.is_empty() {
        Scope::Everyone
    } else {
        Scope::Groups(names)
    })
}

fn scope_words(s: &Scope) -> String {
    match s {
        Scope::Everyone => "every client".into(),
        Scope::Groups(g) => format!(
            "group{} {}",
            if g.len() == 1 { "" } else { "s" },
            g.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

async fn rules(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    let c = st.backend.config();
    Json(json!({
        "allow": c.filter.allow,
        "deny": c.filter.deny,
        "entries": scope::entries(&c),
    }))
}

/// Sets where the entry applies, and takes it off the other list for
/// those clients: "block this" from the log must win over an earlier
/// "allow this".
async fn add_rule(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RuleIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = rule_list(&r.list)?;
    let entry = normalize_rule(&r.entry)?;
    let mut words = String::new();
    edit(&st, |c| {
        let want = chosen_scope(c, &r.groups)?;
        scope::set_rule_scope(c, list, &entry, &want);
        if let Some(other) = scope::rule_scope(c, list.other(), &entry) {
            let left = other.minus(&want, &scope::group_names(c));
            scope::set_rule_scope(c, list.other(), &entry, &left);
        }
        words = scope_words(&want);
        Ok(())
    })?;
    Ok(ok(format!("{entry} added to {} for {words}", list.name())))
}

/// Removes the entry; with `groups`, only for those groups.
async fn remove_rule(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RuleIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = rule_list(&r.list)?;
    let entry = r.entry.trim().to_string();
    edit(&st, |c| {
        let Some(now) = scope::rule_scope(c, list, &entry) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("'{entry}' is not in the {} list", list.name()),
            ));
        };
        let take = chosen_scope(c, &r.groups)?;
        let left = now.minus(&take, &scope::group_names(c));
        if left == now {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("'{entry}' does not apply to {}", scope_words(&take)),
            ));
        }
        scope::set_rule_scope(c, list, &entry, &left);
        Ok(())
    })?;
    Ok(ok(format!("{entry} removed from {}", list.name())))
}

// ---- lists ----

async fn lists(axum::extract::State(st): axum::extract::State<State>) -> Json<Vec<ListStatus>> {
    Json(st.backend.lists())
}

#[derive(Deserialize)]
struct ListIn {
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    /// Groups the list applies to; empty = the default group.
    #[serde(default)]
    groups: Vec<String>,
}

fn yes() -> bool {
    true
}

async fn add_list(
    axum::extract::State(st): axum::extract::State<State>,
    Body(l): Body<ListIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let name = l.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::field(
            "name",
            "name: 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let url = l
        .url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let path = l
        .path
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    match (&url, &path) {
        (Some(u), None) if u.starts_with("https://") || u.starts_with("http://") => {}
        (Some(_), None) => return Err(ApiError::field("url", "url: must start with https://")),
        (None, Some(p)) if p.starts_with('/') => {}
        (None, Some(_)) => return Err(ApiError::field("path", "path: must be absolute")),
        _ => {
            return Err(ApiError::field(
                "url",
                "url: give a URL or a file path (one of them)",
            ));
        }
    }
    edit(&st, |c| {
        let chosen = scope::check_groups(c, &l.groups).map_err(|e| ApiError::field("groups", e))?;
        // None ticked: the default group, as the config reads an empty list.
        let groups = scope::store_list_groups(&chosen).unwrap_or_default();
        if c.filter.lists.iter().any(|x| x.name == name) {
            return Err(ApiError::field(
                "name",
                format!("name: a list '{name}' exists already"),
            ));
        }
        c.filter.lists.push(FilterList {
            name: name.clone(),
            path: path.map(Into::into),
            url,
            enabled: l.enabled,
            match_mode: None,
            groups,
        });
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' added")))
}

/// Fields left out stay as they are.
#[derive(Deserialize)]
struct ListPatch {
    #[serde(default)]
    enabled: Option<bool>,
    /// The groups the list applies to; empty: the default group.
    #[serde(default)]
    groups: Option<Vec<String>>,
}

async fn patch_list(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
    Body(p): Body<ListPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    if p.enabled.is_none() && p.groups.is_none() {
        return Err(ApiError::field(
            "enabled",
            "enabled: give enabled and/or groups",
        ));
    }
    let mut said = Vec::new();
    edit(&st, |c| {
        let groups = match &p.groups {
            None => None,
            Some(g) => {
                let chosen = scope::check_groups(c, g).map_err(|e| ApiError::field("groups", e))?;
                Some(scope::store_list_groups(&chosen).unwrap_or_default())
            }
        };
        let l = c
            .filter
            .lists
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no list '{name}'")))?;
        if let Some(e) = p.enabled {
            l.enabled = e;
            said.push(if e { "enabled" } else { "disabled" }.to_string());
        }
        if let Some(g) = groups {
            l.groups = g;
            said.push(format!("for {}", scope::list_groups(l).join(", ")));
        }
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' {}", said.join(" "))))
}

async fn remove_list(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| {
        let before = c.filter.lists.len();
        c.filter.lists.retain(|l| l.name != name);
        if c.filter.lists.len() == before {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no list '{name}'"),
            ));
        }
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' removed")))
}

async fn update_lists(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Response> {
    st.backend.update_lists().map_err(ApiError::unavailable)?;
    Ok((StatusCode::ACCEPTED, ok("list update started")).into_response())
}

// ---- clients and groups ----

pub fn valid_client(c: &str) -> bool {
    let is_mac = c.len() == 17
        && c.split(':').count() == 6
        && c.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    is_mac || c.parse::<crate::config::Cidr>().is_ok()
}

/// A group as the API shows and takes it. On input, fields left out stay
/// as they are (a new group starts with none).
#[derive(Deserialize, Serialize, Default)]
pub struct GroupIo {
    pub name: String,
    /// IPs, CIDRs or MAC addresses; none for `default` (everyone else).
    #[serde(default)]
    pub clients: Option<Vec<String>>,
    /// The blocklists that apply to this group's clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<Vec<String>>,
    /// Allow / deny entries for this group's clients only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
}

/// Every group, `default` first, with its lists and its own entries.
pub fn groups_of(c: &Config) -> Vec<GroupIo> {
    scope::group_names(c)
        .into_iter()
        .map(|name| {
            let g = c.filter.groups.iter().find(|g| g.name == name);
            GroupIo {
                clients: Some(g.map(|g| g.clients.clone()).unwrap_or_default()),
                lists: Some(scope::lists_of_group(c, &name)),
                allow: Some(g.map(|g| texts(&g.allow)).unwrap_or_default()),
                deny: Some(g.map(|g| texts(&g.deny)).unwrap_or_default()),
                name,
            }
        })
        .collect()
}

fn texts(rules: &[RuleEntry]) -> Vec<String> {
    rules.iter().map(RuleEntry::to_string).collect()
}

async fn groups(axum::extract::State(st): axum::extract::State<State>) -> Json<Vec<GroupIo>> {
    Json(groups_of(&st.backend.config()))
}

/// Entries for one group, each as the filter reads it; the error names
/// the field ("allow" or "deny") and the entry.
fn normalize_rules(field: &str, group: &str, entries: &[String]) -> ApiResult<Vec<RuleEntry>> {
    let mut out: Vec<RuleEntry> = Vec::new();
    for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let n = rule_entry(e).map_err(|err| {
            ApiError::field(
                field,
                format!(
                    "group '{group}': {field}: {}",
                    err.error.trim_start_matches("entry: ")
                ),
            )
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Writes `g` into `c` (replacing the group of that name), leaving out
/// fields as they are.
fn put_group(c: &mut Config, g: &GroupIo) -> ApiResult<()> {
    let name = g.name.trim().to_string();
    // Names travel in URLs (DELETE /api/v1/groups/{name}) and in forms.
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b))
    {
        return Err(ApiError::field(
            "name",
            "name: 1 to 64 letters, digits, spaces, '-', '_' or '.'",
        ));
    }
    let mut clients = None;
    if let Some(list) = &g.clients {
        let mut out = Vec::new();
        for cl in list.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            if !valid_client(cl) {
                return Err(ApiError::field(
                    "clients",
                    format!("group '{name}': '{cl}' is not an IP, CIDR or MAC address"),
                ));
            }
            out.push(cl.to_ascii_lowercase());
        }
        clients = Some(out);
    }
    if name == crate::filter::groups::DEFAULT_GROUP
        && clients.as_ref().is_some_and(|c| !c.is_empty())
    {
        return Err(ApiError::field(
            "clients",
            "clients: the default group holds every client not in another group; it takes none",
        ));
    }
    let allow = g
        .allow
        .as_ref()
        .map(|a| normalize_rules("allow", &name, a))
        .transpose()?;
    let deny = g
        .deny
        .as_ref()
        .map(|d| normalize_rules("deny", &name, d))
        .transpose()?;
    let i = match c.filter.groups.iter().position(|x| x.name == name) {
        Some(i) => i,
        None => {
            c.filter.groups.push(ClientGroup {
                name: name.clone(),
                ..ClientGroup::default()
            });
            c.filter.groups.len() - 1
        }
    };
    let cg = &mut c.filter.groups[i];
    if let Some(cl) = clients {
        cg.clients = cl;
    }
    if let Some(a) = allow {
        cg.allow = a;
    }
    if let Some(d) = deny {
        cg.deny = d;
    }
    if let Some(lists) = &g.lists {
        let mut set = std::collections::BTreeSet::new();
        for l in lists.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            if !c.filter.lists.iter().any(|x| x.name == l) {
                return Err(ApiError::field("lists", format!("lists: no list '{l}'")));
            }
            set.insert(l.to_string());
        }
        scope::set_group_lists(c, &name, &set).map_err(|e| ApiError::field("lists", e))?;
    }
    scope::tidy(c);
    Ok(())
}

/// Replaces every group; lists lose the groups that are gone.
async fn put_groups(
    axum::extract::State(st): axum::extract::State<State>,
    Body(groups): Body<Vec<GroupIo>>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut names = std::collections::HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        if !names.insert(g.name.trim().to_string()) {
            return Err(ApiError::field(
                "name",
                format!("groups[{i}].name: '{}' twice", g.name.trim()),
            ));
        }
    }
    edit(&st, |c| {
        let old = std::mem::take(&mut c.filter.groups);
        for g in &groups {
            // Rules a script leaves out stay those the group had.
            if let Some(o) = old.iter().find(|o| o.name == g.name.trim()) {
                c.filter.groups.push(o.clone());
            }
            put_group(c, g)?;
        }
        scope::forget_missing_groups(c);
        Ok(())
    })?;
    Ok(ok("groups saved"))
}

/// Adds a group, or changes the one with the same name.
async fn add_group(
    axum::extract::State(st): axum::extract::State<State>,
    Body(g): Body<GroupIo>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| put_group(c, &g))?;
    Ok(ok(format!("group '{}' saved", g.name.trim())))
}

async fn remove_group(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| {
        let before = c.filter.groups.len();
        c.filter.groups.retain(|g| g.name != name);
        if before == c.filter.groups.len() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no group '{name}'"),
            ));
        }
        scope::forget_missing_groups(c);
        Ok(())
    })?;
    Ok(ok(format!("group '{name}' removed")))
}

// ---- local records and forwarding ----

async fn local_records(
    axum::extract::State(st): axum::extract::State<State>,
) -> Json<Vec<LocalRecord>> {
    Json(st.backend.config().local.records.clone())
}

#[derive(Deserialize)]
struct RecordIn {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    value: String,
    #[serde(default)]
    ttl: Option<u32>,
}

fn parse_record(r: &RecordIn) -> ApiResult<LocalRecord> {
    let name: DomainName = r
        .name
        .parse()
        .map_err(|e: String| ApiError::field("name", e))?;
    let rtype: RecordType = serde_json::from_value(json!(r.rtype.trim().to_ascii_uppercase()))
        .map_err(|_| {
            ApiError::field(
                "type",
                format!(
                    "type: '{}': use A, AAAA, CNAME, PTR, TXT, MX or SRV",
                    r.rtype
                ),
            )
        })?;
    let value = r.value.trim().to_string();
    let bad = |m: &str| ApiError::field("value", format!("value: '{value}' {m}"));
    match rtype {
        RecordType::A if value.parse::<std::net::Ipv4Addr>().is_err() => {
            return Err(bad("is not an IPv4 address"));
        }
        RecordType::AAAA if value.parse::<std::net::Ipv6Addr>().is_err() => {
            return Err(bad("is not an IPv6 address"));
        }
        RecordType::CNAME | RecordType::PTR if value.parse::<DomainName>().is_err() => {
            return Err(bad("is not a domain name"));
        }
        _ if value.is_empty() => return Err(bad("is empty")),
        _ => {}
    }
    Ok(LocalRecord {
        name,
        rtype,
        value: Rdata::parse(rtype, &value)
            .map_err(|e| ApiError::field("value", format!("value: {e}")))?,
        ttl: r.ttl.unwrap_or(300),
    })
}

async fn add_record(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RecordIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let rec = parse_record(&r)?;
    let label = format!("{} {:?} {}", rec.name, rec.rtype, rec.value);
    edit(&st, |c| {
        if !c.local.records.contains(&rec) {
            c.local.records.push(rec);
        }
        Ok(())
    })?;
    Ok(ok(format!("record {label} added")))
}

async fn remove_record(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RecordIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let rec = parse_record(&r)?;
    edit(&st, |c| {
        let before = c.local.records.len();
        c.local
            .records
            .retain(|x| !(x.name == rec.name && x.rtype == rec.rtype && x.value == rec.value));
        if before == c.local.records.len() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "no such record"));
        }
        Ok(())
    })?;
    Ok(ok("record removed"))
}

async fn forward(axum::extract::State(st): axum::extract::State<State>) -> Json<Vec<ForwardZone>> {
    Json(st.backend.config().forward.clone())
}

#[derive(Deserialize)]
struct ForwardIn {
    domains: Vec<String>,
    #[serde(default)]
    upstreams: Vec<String>,
}

fn parse_domains(list: &[String]) -> ApiResult<Vec<DomainName>> {
    if list.is_empty() {
        return Err(ApiError::field("domains", "domains: give at least one"));
    }
    list.iter()
        .map(|d| d.parse().map_err(|e: String| ApiError::field("domains", e)))
        .collect()
}

async fn add_forward(
    axum::extract::State(st): axum::extract::State<State>,
    Body(f): Body<ForwardIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let domains = parse_domains(&f.domains)?;
    let upstreams = setup::parse_upstreams(&f.upstreams, "upstreams")?;
    edit(&st, |c| {
        c.forward.push(ForwardZone { domains, upstreams });
        Ok(())
    })?;
    Ok(ok("forwarding added"))
}

async fn remove_forward(
    axum::extract::State(st): axum::extract::State<State>,
    Body(f): Body<ForwardIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let domains = parse_domains(&f.domains)?;
    edit(&st, |c| {
        let at = c
            .forward
            .iter()
            .position(|z| z.domains == domains)
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "no forwarding for those domains")
            })?;
        c.forward.remove(at);
        Ok(())
    })?;
    Ok(ok("forwarding removed"))
}

// ---- settings, password, tokens ----

#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(default)]
pub struct SettingsIo {
    pub upstreams: Option<Vec<String>>,
    pub cache_memory_mib: Option<u32>,
    pub blocked_response: Option<String>,
    pub blocked_ttl: Option<u32>,
    pub querylog_enabled: Option<bool>,
    pub retention_days: Option<u32>,
    pub flush_interval: Option<String>,
    pub anonymize_clients: Option<bool>,
    pub hide_domains: Option<bool>,
}

pub fn settings_of(c: &Config) -> SettingsIo {
    SettingsIo {
        upstreams: Some(c.dns.upstreams.iter().map(|u| u.to_string()).collect()),
        cache_memory_mib: Some(c.cache.memory_mib),
        blocked_response: Some(c.filter.blocked_response.to_string()),
        blocked_ttl: Some(c.filter.blocked_ttl),
        querylog_enabled: Some(c.querylog.enabled),
        retention_days: Some(c.querylog.retention_days),
        flush_interval: Some(c.querylog.flush_interval.to_string()),
        anonymize_clients: Some(c.querylog.anonymize_clients),
        hide_domains: Some(c.querylog.hide_domains),
    }
}

async fn settings(axum::extract::State(st): axum::extract::State<State>) -> Json<SettingsIo> {
    Json(settings_of(&st.backend.config()))
}

async fn put_settings(
    axum::extract::State(st): axum::extract::State<State>,
    Body(s): Body<SettingsIo>,
) -> ApiResult<Json<serde_json::Value>> {
    let upstreams = match &s.upstreams {
        Some(u) => Some(setup::parse_upstreams(u, "upstreams")?),
        None => None,
    };
    let blocked = match &s.blocked_response {
        Some(b) => Some(
            b.trim()
                .parse()
                .map_err(|e: String| ApiError::field("blocked_response", e))?,
        ),
        None => None,
    };
    let flush: Option<Dur> = match &s.flush_interval {
        Some(f) => {
            let d: Dur = f
                .parse()
                .map_err(|e: String| ApiError::field("flush_interval", e))?;
            if d.0.as_millis() < 100 || d.0.as_secs() > 3600 {
                return Err(ApiError::field(
                    "flush_interval",
                    "flush_interval: between 100ms and 1h",
                ));
            }
            Some(d)
        }
        None => None,
    };
    if let Some(m) = s.cache_memory_mib
        && !(1..=1024).contains(&m)
    {
        return Err(ApiError::field(
            "cache_memory_mib",
            "cache_memory_mib: between 1 and 1024",
        ));
    }
    if let Some(d) = s.retention_days
        && !(1..=3650).contains(&d)
    {
        return Err(ApiError::field(
            "retention_days",
            "retention_days: between 1 and 3650",
        ));
    }
    if let Some(t) = s.blocked_ttl
        && t > 86_400
    {
        return Err(ApiError::field("blocked_ttl", "blocked_ttl: at most 86400"));
    }
    edit(&st, |c| {
        if let Some(u) = upstreams {
            c.dns.upstreams = u;
        }
        if let Some(m) = s.cache_memory_mib {
            c.cache.memory_mib = m;
        }
        if let Some(b) = blocked {
            c.filter.blocked_response = b;
        }
        if let Some(t) = s.blocked_ttl {
            c.filter.blocked_ttl = t;
        }
        if let Some(e) = s.querylog_enabled {
            c.querylog.enabled = e;
        }
        if let Some(d) = s.retention_days {
            c.querylog.retention_days = d;
        }
        if let Some(f) = flush {
            c.querylog.flush_interval = f;
        }
        if let Some(a) = s.anonymize_clients {
            c.querylog.anonymize_clients = a;
        }
        if let Some(h) = s.hide_domains {
            c.querylog.hide_domains = h;
        }
        Ok(())
    })?;
    Ok(ok("settings saved"))
}

#[derive(Deserialize)]
struct PasswordIn {
    current: String,
    new: String,
}

async fn change_password(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    Extension(p): Extension<Principal>,
    Body(input): Body<PasswordIn>,
) -> ApiResult<Response> {
    let client = peer(&ci);
    if st.auth.login_blocked(client) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed attempts; wait a minute",
        ));
    }
    if !st.auth.check_password(&input.current).await {
        st.auth.login_failed(client);
        return Err(ApiError::field("current", "current: wrong password"));
    }
    st.auth
        .set_password(&input.new, false)
        .await
        .map_err(|e| ApiError::field("new", e.replacen("password", "new", 1)))?;
    // Every session was ended; the one that changed it continues.
    let mut resp = ok("password changed; other sessions were logged out").into_response();
    if let Principal::Session { .. } = p {
        let (id, _) = st.auth.new_session();
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&id));
    }
    Ok(resp)
}

async fn tokens(
    axum::extract::State(st): axum::extract::State<State>,
) -> Json<Vec<super::auth::TokenInfo>> {
    Json(st.auth.tokens())
}

#[derive(Deserialize)]
struct TokenIn {
    name: String,
}

async fn create_token(
    axum::extract::State(st): axum::extract::State<State>,
    Body(t): Body<TokenIn>,
) -> ApiResult<Response> {
    let (info, token) = st
        .auth
        .create_token(&t.name)
        .await
        .map_err(|e| ApiError::field("name", e))?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": info.id, "name": info.name, "token": token, "message": "token created" }),
        ),
    )
        .into_response())
}

async fn revoke_token(
    axum::extract::State(st): axum::extract::State<State>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    st.auth
        .revoke_token(&id)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e))?;
    Ok(ok("token revoked"))
}

// ---- pause ----

async fn pause_status(axum::extract::State(st): axum::extract::State<State>) -> Json<PauseStatus> {
    Json(st.backend.pause_status())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PauseIn {
    /// None or 0: until resumed.
    minutes: Option<u32>,
}

async fn pause(
    axum::extract::State(st): axum::extract::State<State>,
    Body(p): Body<PauseIn>,
) -> ApiResult<Json<PauseStatus>> {
    let minutes = p.minutes.filter(|m| *m > 0);
    if minutes.is_some_and(|m| m > 7 * 24 * 60) {
        return Err(ApiError::field("minutes", "minutes: at most one week"));
    }
    st.backend.pause(minutes).map_err(ApiError::unavailable)?;
    Ok(Json(st.backend.pause_status()))
}

async fn resume(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<PauseStatus>> {
    st.backend.resume().map_err(ApiError::unavailable)?;
    Ok(Json(st.backend.pause_status()))
}

// ---- system ----

async fn system(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    let cfg = st.backend.config();
    Json(json!({
        "version": st.backend.firmware_version(),
        "appliance": cfg.web.appliance,
        "system": st.sys.sample(&st.backend.data_dir()),
        "assets_compressed_bytes": st.assets.compressed_total(),
    }))
}

fn appliance_only(st: &State) -> ApiResult<()> {
    if st.backend.config().web.appliance {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "only on the appliance ([web] appliance = true)",
        ))
    }
}

async fn network(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<Network>> {
    appliance_only(&st)?;
    Ok(Json(Network::load(&st.backend.data_dir())))
}

async fn put_network(
    axum::extract::State(st): axum::extract::State<State>,
    Body(n): Body<Network>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    n.validate()?;
    n.save(&st.backend.data_dir())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(ok("network settings saved; they apply at the next boot"))
}

async fn backup(axum::extract::State(st): axum::extract::State<State>) -> Response {
    let text = super::backup::write(
        &st.backend.config(),
        &st.auth.credentials(),
        crate::clock::now_ms(),
    );
    (
        [
            (header::CONTENT_TYPE, "application/toml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"glory-hole-backup.toml\"",
            ),
        ],
        text,
    )
        .into_response()
}

/// Restores a backup: the config, then the password and tokens it holds.
/// Everything is checked before anything changes. The data directory and
/// the appliance flag stay those of this box: a backup from another
/// machine must not move its state. Returns how many tokens came back,
/// None when the file held no credentials.
async fn restore_backup(st: &State, body: &[u8], at_setup: bool) -> ApiResult<Option<usize>> {
    let bad = |e: String| ApiError::field("file", format!("uploaded file: {e}"));
    let text = std::str::from_utf8(body).map_err(|_| bad("not a text (TOML) file".into()))?;
    let (mut cfg, creds) = super::backup::read(text).map_err(bad)?;
    if let Some(c) = &creds {
        super::auth::check_credentials(c).map_err(|e| bad(format!("[backup]: {e}")))?;
    }
    if at_setup && creds.as_ref().is_none_or(|c| c.password.is_none()) {
        return Err(bad(
            "it holds no admin password (a plain config file?): finish setup, then restore it on the System page".into(),
        ));
    }
    edit(st, |c| {
        cfg.data_dir = c.data_dir.clone();
        cfg.web.appliance = c.web.appliance;
        *c = cfg;
        Ok(())
    })
    .map_err(|e| match e.status {
        StatusCode::UNPROCESSABLE_ENTITY => bad(e.error),
        _ => e,
    })?;
    let Some(creds) = creds else {
        return Ok(None);
    };
    let tokens = creds.tokens.len();
    st.auth
        .restore(creds, at_setup)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    Ok(Some(tokens))
}

async fn restore(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let Some(tokens) = restore_backup(&st, &body, false).await? else {
        return Ok(
            ok("configuration restored (the file held no password or tokens)").into_response(),
        );
    };
    let message = format!(
        "configuration restored, with the backup's admin password and {tokens} API token{}; other sessions were logged out",
        if tokens == 1 { "" } else { "s" }
    );
    // The person restoring stays logged in, with a new session.
    if let Principal::Session { .. } = p {
        let (id, csrf) = st.auth.new_session();
        let mut resp = Json(json!({ "message": message, "csrf": csrf })).into_response();
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&id));
        return Ok(resp);
    }
    Ok(ok(message).into_response())
}

/// First boot on a new card: restore a backup instead of setting up. No
/// session comes with it: the backup's password is needed to log in.
async fn setup_restore(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    if !pre_csrf_ok(&headers, None) {
        return Err(csrf_error());
    }
    if st.auth.password_is_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "setup is already finished; log in and restore on the System page",
        ));
    }
    restore_backup(&st, &body, true).await?;
    Ok(ok("backup restored: log in with its admin password"))
}

async fn teleporter(
    axum::extract::State(st): axum::extract::State<State>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let scratch = st.backend.data_dir();
    let imp = tokio::task::spawn_blocking(move || super::teleporter::read(&body, &scratch))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::field("file", e))?;
    edit(&st, |c| {
        super::teleporter::merge(c, &imp);
        Ok(())
    })?;
    Ok(Json(json!({ "message": imp.summary(), "imported": imp })))
}

async fn reboot(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    st.backend.reboot().map_err(ApiError::unavailable)?;
    Ok(ok("rebooting"))
}

async fn factory_reset(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    st.backend.factory_reset().map_err(ApiError::unavailable)?;
    st.auth
        .reset()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    // The network settings apply at boot; DNS already runs on the defaults.
    if let Err(e) = st.backend.reboot() {
        tracing::warn!("factory reset: {e}");
    }
    Ok(ok("factory reset done; the box restarts into setup"))
}

async fn firmware() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "firmware upload is not available yet; update by flashing a new card image",
    )
}

// ---- Prometheus ----

async fn metrics(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    if !st.backend.config().web.metrics {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are off ([web] metrics = true turns them on)",
        ));
    }
    if !matches!(p, Principal::Token) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics need an API token (Authorization: Bearer ...)",
        ));
    }
    let (_, r) = parse_range(Some("24h"))?;
    let s = st.backend.summary(r).unwrap_or_default();
    let e = st.backend.engine_stats();
    let sys = st.sys.sample(&st.backend.data_dir());
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, value: String| {
        out.push_str(&format!(
            "# HELP glory_hole_{name} {help}\n# TYPE glory_hole_{name} {kind}\nglory_hole_{name} {value}\n"
        ));
    };
    metric(
        "queries_24h",
        "Queries in the last 24 hours.",
        "gauge",
        s.total.to_string(),
    );
    metric(
        "blocked_24h",
        "Blocked queries in the last 24 hours.",
        "gauge",
        s.blocked.to_string(),
    );
    metric(
        "cached_24h",
        "Queries answered from cache in the last 24 hours.",
        "gauge",
        s.cached.to_string(),
    );
    metric(
        "cache_hits_total",
        "Cache hits since start.",
        "counter",
        e.cache_hits.to_string(),
    );
    metric(
        "cache_misses_total",
        "Cache misses since start.",
        "counter",
        e.cache_misses.to_string(),
    );
    metric(
        "cache_entries",
        "Entries in the cache.",
        "gauge",
        e.cache_entries.to_string(),
    );
    metric(
        "resident_memory_bytes",
        "Resident memory of the process.",
        "gauge",
        sys.process_rss_bytes.unwrap_or(0).to_string(),
    );
    metric(
        "uptime_seconds",
        "Seconds since the server started.",
        "gauge",
        sys.uptime_secs.to_string(),
    );
    metric(
        "blocking_paused",
        "1 while blocking is paused.",
        "gauge",
        (st.backend.pause_status().paused as u8).to_string(),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_their_field() {
        let e = ApiError::from_config("dns.upstreams: at least one upstream is needed".into());
        assert_eq!(e.field.as_deref(), Some("upstreams"));
        let e = ApiError::from_config("local.records[0] (nas.lan): value: bad".into());
        assert_eq!(e.field.as_deref(), Some("value"));
        let e = ApiError::from_config("saving /x/y: disk full".into());
        assert_eq!(e.field, None);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn rules_are_normalized_or_refused() {
        assert_eq!(
            normalize_rule(" Ads.Example.COM ").unwrap(),
            "ads.example.com"
        );
        assert_eq!(
            normalize_rule("*.tracker.example").unwrap(),
            "*.tracker.example"
        );
        assert_eq!(
            normalize_rule("/^ads?[0-9]*\\./").unwrap(),
            "/^ads?[0-9]*\\./"
        );
        assert!(normalize_rule("/(/").is_err());
        assert!(normalize_rule("not a domain").is_err());
        assert!(normalize_rule("").is_err());
    }

    #[test]
    fn clients_are_ip_cidr_or_mac() {
        for ok in [
            "192.168.1.5",
            "192.168.1.0/24",
            "fd00::/8",
            "aa:bb:cc:dd:ee:ff",
        ] {
            assert!(valid_client(ok), "{ok}");
        }
        for bad in ["tv", "aa:bb:cc:dd:ee", "192.168.1.0/33"] {
            assert!(!valid_client(bad), "{bad}");
        }
    }
}
