//! Logging in and out, the admin password and API tokens: the login page
//! and form, and `/api/v1/login`, `logout`, `password`, `tokens`.
//! Not for: checking a request's credentials (see `guard`) or storing them
//! (see `auth`).

use super::auth::TokenScope;
use super::guard::{self, Principal};
use super::html::{esc, field_error, page};
use super::http::{
    ApiError, ApiResult, Body, Ext, csrf_error, ok, peer, pre_csrf_ok, session_cookie,
    with_pre_cookie,
};
use super::{Conn, State};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/password", post(change_password))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", post(logout_form))
}

/// Checks the password with the rate limit; returns a new session.
pub async fn do_login(st: &State, client: IpAddr, password: &str) -> ApiResult<(String, String)> {
    if !st.auth.password_is_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no admin password yet: finish setup first",
        ));
    }
    let attempt = begin_attempt(st, client)?;
    if !check_password(st, password).await? {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "wrong password".into(),
            field: Some("password".into()),
        });
    }
    attempt.succeeded();
    Ok(st.auth.new_session())
}

/// Counts a password attempt from `client` before anything is hashed;
/// 429 when the address (or everyone together) tried too often.
pub fn begin_attempt(st: &State, client: IpAddr) -> ApiResult<super::login_limit::Attempt<'_>> {
    st.auth
        .logins
        .begin(client)
        .map_err(|r| ApiError::new(StatusCode::TOO_MANY_REQUESTS, r.message()))
}

/// The password check; 503 at once when the hash queue is full.
async fn check_password(st: &State, password: &str) -> ApiResult<bool> {
    st.auth
        .check_password(password)
        .await
        .map_err(ApiError::unavailable)
}

#[derive(Deserialize)]
pub struct LoginIn {
    pub password: String,
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
    let attempt = begin_attempt(&st, peer(&ci))?;
    if !check_password(&st, &input.current).await? {
        return Err(ApiError::field("current", "current: wrong password"));
    }
    attempt.succeeded();
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
    /// "read" (the default: stats, log, metrics) or "admin".
    #[serde(default)]
    scope: Option<String>,
}

async fn create_token(
    axum::extract::State(st): axum::extract::State<State>,
    Body(t): Body<TokenIn>,
) -> ApiResult<Response> {
    let scope = match t.scope.as_deref().map(str::trim) {
        None | Some("") => TokenScope::Read,
        Some(s) => TokenScope::parse(s).map_err(|e| ApiError::field("scope", e))?,
    };
    let (info, token) = st
        .auth
        .create_token(&t.name, scope)
        .await
        .map_err(|e| ApiError::field("name", e))?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": info.id, "name": info.name, "scope": info.scope, "token": token, "message": "token created" }),
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

// ---- pages ----

fn login_body(token: &str, error: Option<&str>) -> String {
    format!(
        "<div class=\"login card\"><form method=\"post\" action=\"/login\" class=\"stack\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <label>Admin password<input type=\"password\" name=\"password\" id=\"password\" autofocus autocomplete=\"current-password\" required></label>\
         {}<button id=\"login\">Log in</button></form></div>",
        esc(token),
        field_error("password", error)
    )
}

async fn login_page(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    if !st.auth.password_is_set() {
        return Redirect::to("/setup").into_response();
    }
    with_pre_cookie(
        &headers,
        |t| page("Log in", "", None, &login_body(t, None)),
        StatusCode::OK,
    )
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    password: String,
}

async fn login_form(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !pre_csrf_ok(&headers, Some(&f._csrf)) {
        return with_pre_cookie(
            &headers,
            |t| {
                page(
                    "Log in",
                    "",
                    None,
                    &login_body(t, Some("The form expired; try again.")),
                )
            },
            StatusCode::FORBIDDEN,
        );
    }
    let client = ci.map(|c| c.0.0.peer.ip()).unwrap_or([0, 0, 0, 0].into());
    match do_login(&st, client, &f.password).await {
        Ok((id, _)) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&id));
            r
        }
        Err(e) => with_pre_cookie(
            &headers,
            |t| page("Log in", "", None, &login_body(t, Some(&e.error))),
            e.status,
        ),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    _csrf: String,
}

async fn logout_form(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Principal::Session { id, csrf } = &p {
        if !guard::same_secret(&f._csrf, csrf) {
            return (
                StatusCode::FORBIDDEN,
                "wrong CSRF token; go back and reload",
            )
                .into_response();
        }
        st.auth.end_session(id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        "gh_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
            .parse()
            .expect("static"),
    );
    r
}
