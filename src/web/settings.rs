//! DNS, blocking and query-log settings: `/api/v1/settings` and the page
//! at `/settings`.
//! Not for: the password and API tokens (see `session`).

use super::State;
use super::html::{esc, field_error, html, page, time};
use super::http::{ApiError, ApiResult, Body, Ext, csrf, edit, ok};
use super::setup;
use crate::config::{Config, Dur};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/settings", get(settings).put(put_settings))
        .route("/settings", get(settings_page))
}

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

// ---- page ----

fn checkbox(name: &str, label: &str, on: bool) -> String {
    format!(
        "<label class=\"check\"><input type=\"checkbox\" name=\"{name}\"{}> {}</label>",
        if on { " checked" } else { "" },
        esc(label)
    )
}

fn number(name: &str, label: &str, v: u32) -> String {
    format!(
        "<label>{}<input type=\"number\" name=\"{name}\" value=\"{v}\" min=\"0\"></label>{}",
        esc(label),
        field_error(name, None)
    )
}

async fn settings_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let v = settings_of(&cfg);
    let mut s = String::new();
    let _ = write!(
        s,
        "<form data-api=\"/api/v1/settings\" data-method=\"PUT\" data-done=\"show\" class=\"stack\" id=\"settings\">\
         <fieldset><legend>DNS</legend>\
         <label>Upstreams, one per line<textarea name=\"upstreams\" data-lines>{}</textarea></label>{}\
         {}</fieldset>\
         <fieldset><legend>Blocking</legend>\
         <label>Blocked names answer<input type=\"text\" name=\"blocked_response\" value=\"{}\"></label>\
         <span class=\"muted\">null (0.0.0.0 / ::), nxdomain, refused, or an IP address</span>{}\
         {}</fieldset>\
         <fieldset><legend>Query log and privacy</legend>{}{}\
         <label>Write to flash every<input type=\"text\" name=\"flush_interval\" value=\"{}\"></label>{}\
         {}{}</fieldset>\
         <button>Save settings</button><span class=\"status\"></span></form>",
        esc(&v.upstreams.clone().unwrap_or_default().join("\n")),
        field_error("upstreams", None),
        number(
            "cache_memory_mib",
            "Cache size (MiB)",
            v.cache_memory_mib.unwrap_or(16)
        ),
        esc(v.blocked_response.as_deref().unwrap_or("")),
        field_error("blocked_response", None),
        number(
            "blocked_ttl",
            "TTL of blocked answers (s)",
            v.blocked_ttl.unwrap_or(2)
        ),
        checkbox("querylog_enabled", "Keep a query log", cfg.querylog.enabled),
        number(
            "retention_days",
            "Keep queries for (days)",
            cfg.querylog.retention_days
        ),
        esc(v.flush_interval.as_deref().unwrap_or("")),
        field_error("flush_interval", None),
        checkbox(
            "hide_domains",
            "Hide domains in the log",
            cfg.querylog.hide_domains
        ),
        checkbox(
            "anonymize_clients",
            "Hide clients in the log",
            cfg.querylog.anonymize_clients
        ),
    );
    s.push_str(&super::dhcp_form::section(&st));
    let _ = write!(
        s,
        "<h2>Admin password</h2><form data-api=\"/api/v1/password\" data-done=\"show\" class=\"stack\" id=\"password-form\">\
         <label>Current password<input type=\"password\" name=\"current\" autocomplete=\"current-password\" required></label>{}\
         <label>New password<input type=\"password\" name=\"new\" autocomplete=\"new-password\" required></label>{}\
         <button>Change password</button><span class=\"status\"></span></form>",
        field_error("current", None),
        field_error("new", None)
    );
    s.push_str("<h2>API tokens</h2><p class=\"muted\">For scripts: send <span class=\"mono\">Authorization: Bearer &lt;token&gt;</span>. The API is described at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p><div class=\"scroll\"><table id=\"tokens\"><tbody>");
    let toks = st.auth.tokens();
    if toks.is_empty() {
        s.push_str("<tr><td class=\"muted\">No tokens.</td></tr>");
    }
    for t in &toks {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"mono\">gh_{}_…</td><td>{}</td><td><time data-ms=\"{}\">{}</time></td><td><button class=\"small sec\" data-action=\"DELETE /api/v1/tokens/{}\" data-confirm=\"Revoke this token?\">revoke</button></td></tr>",
            esc(&t.name),
            esc(&t.id),
            match t.scope {
                crate::web::auth::TokenScope::Read => "read only",
                crate::web::auth::TokenScope::Admin => "admin",
            },
            t.created_ms,
            time(t.created_ms),
            esc(&t.id)
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><form data-api=\"/api/v1/tokens\" data-done=\"show\" class=\"row\" id=\"add-token\">\
         <label>Name<input type=\"text\" name=\"name\" placeholder=\"home-assistant\" required></label>\
         <label>May<select name=\"scope\"><option value=\"read\">read stats, log and metrics</option><option value=\"admin\">change everything</option></select></label>\
         <button>Create token</button>{}<span class=\"status\"></span><div class=\"result\"></div></form>",
        field_error("name", None)
    );
    html(page("Settings", "/settings", Some(csrf(&p)), &s))
}
