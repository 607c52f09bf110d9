//! What every feature's handlers share: the JSON error shape
//! ([`ApiError`]), the body extractor, the one way to edit the config
//! ([`edit`]), blocking reads, and the cookies and CSRF checks of login
//! and setup.
//! Not for: authenticating requests (see `guard`) or rendering pages (see
//! `html`).

use super::guard::{self, CSRF_HEADER, PRE_COOKIE, Principal, SESSION_COOKIE};
use super::{Conn, State};
use crate::config::Config;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use std::net::IpAddr;

/// A field-named error: (field, message).
pub type FieldError = (String, String);

pub fn field_err(field: &str, msg: impl Into<String>) -> FieldError {
    (field.to_string(), msg.into())
}

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
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }
    pub fn unavailable(msg: String) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg)
    }
}

impl From<FieldError> for ApiError {
    fn from((field, msg): FieldError) -> ApiError {
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

pub fn ok(message: impl Into<String>) -> Json<serde_json::Value> {
    Json(json!({ "message": message.into() }))
}

/// Clones the running config, lets `f` change it, checks the filter and
/// applies it, all under the backend's one edit lock (see
/// `Backend::edit`). `f`'s own error comes back as it is.
pub fn edit(st: &State, f: impl FnOnce(&mut Config) -> ApiResult<()>) -> ApiResult<()> {
    let mut f = Some(f);
    let mut refused = None;
    st.backend
        .edit(&mut |cfg| {
            let change = f.take().ok_or("the change ran twice")?;
            change(cfg).and_then(|()| check_filter(cfg)).map_err(|e| {
                let msg = e.error.clone();
                refused = Some(e);
                msg
            })
        })
        .map_err(|msg| refused.take().unwrap_or_else(|| ApiError::from_config(msg)))
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

pub fn peer(ci: &Option<Extension<ConnectInfo<Conn>>>) -> IpAddr {
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

pub fn csrf_error() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token (reload the page)",
    )
}

/// The pre-session CSRF token: the one a page in another tab already
/// holds, or a new one.
pub fn pre_token(headers: &HeaderMap) -> String {
    guard::cookie(headers, PRE_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| super::auth::random_hex(16))
}

pub type Ext = Extension<Principal>;

pub fn csrf(p: &Principal) -> &str {
    match p {
        Principal::Session { csrf, .. } => csrf,
        Principal::Token => "",
    }
}

/// A login or setup page with the pre-session CSRF cookie set.
pub fn with_pre_cookie(
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> String,
    status: StatusCode,
) -> Response {
    let token = pre_token(headers);
    let mut resp = (status, Html(render(&token))).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, pre_cookie(&token));
    resp
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
}
