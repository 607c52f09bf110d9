//! The query log: searching it (`/api/v1/querylog`), asking why a domain
//! is blocked (`/api/v1/explain`), and the page at `/querylog` with its
//! live tail.
//! Not for: storing or reading rows (the backend's query log does).

use super::State;
use super::backend::{ExplanationView, LogPageView, LogSearch, NOT_AVAILABLE};
use super::html::{esc, html, page, time, urlencode};
use super::http::{ApiError, ApiResult, Ext, blocking, csrf};
use crate::syntax::DomainName;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use std::fmt::Write;
use std::net::IpAddr;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/querylog", get(querylog))
        .route("/api/v1/explain", get(explain))
        .route("/querylog", get(log_page))
}

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
    pub fn to_query(&self) -> ApiResult<LogSearch> {
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
        Ok(LogSearch {
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
) -> ApiResult<Json<LogPageView>> {
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
) -> ApiResult<Json<ExplanationView>> {
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
        .ok_or_else(|| ApiError::unavailable(format!("explain: {}", NOT_AVAILABLE)))
}

// ---- page ----

fn status_tag(status: &str, reason: Option<&str>) -> String {
    let title = reason
        .map(|r| format!(" title=\"{}\"", esc(r)))
        .unwrap_or_default();
    format!("<span class=\"tag {0}\"{title}>{0}</span>", esc(status))
}

async fn log_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
    Query(params): Query<LogParams>,
) -> Response {
    let mut s = String::new();
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let _ = write!(
        s,
        "<form method=\"get\" action=\"/querylog\" id=\"log-filter\" class=\"row\">\
         <label>Domain contains<input type=\"search\" name=\"domain\" value=\"{}\"></label>\
         <label>Client<input type=\"text\" name=\"client\" value=\"{}\"></label>\
         <label>Status<select name=\"status\"><option value=\"\">any</option>",
        v(&params.domain),
        v(&params.client)
    );
    for st_ in STATUSES {
        let sel = if params.status.as_deref() == Some(st_) {
            " selected"
        } else {
            ""
        };
        let _ = write!(s, "<option{sel}>{st_}</option>");
    }
    let _ = write!(
        s,
        "</select></label><label>Type<input type=\"text\" name=\"qtype\" value=\"{}\" placeholder=\"A, AAAA…\"></label>\
         <button class=\"sec\">Filter</button></form>\
         <p><label class=\"check\"><input type=\"checkbox\" id=\"live\"{}> Live: new queries appear as they arrive</label></p>",
        v(&params.qtype),
        // An older page stays put.
        if params.cursor.is_some() || params.before_ms.is_some() {
            ""
        } else {
            " checked"
        }
    );
    if !st.backend.has_querylog() {
        s.push_str(
            "<div class=\"banner\" id=\"no-log\">The query log is not running: turn it on under \
             Settings (Keep a query log).</div>",
        );
    }
    let page_ = match params.to_query() {
        Ok(q) => blocking(&st, move |st| st.backend.search(&q)).await,
        Err(e) => {
            let _ = write!(s, "<p class=\"err\">{}</p>", esc(&e.error));
            Default::default()
        }
    };
    let rows = &page_.rows;
    s.push_str("<div class=\"scroll\"><table class=\"log\" id=\"log\"><thead><tr><th>Time</th><th class=\"hide-sm\">Client</th><th>Domain</th><th class=\"hide-sm\">Type</th><th>Status</th><th></th></tr></thead><tbody>");
    if rows.is_empty() {
        let more = if page_.next_cursor.is_some() {
            " among the latest rows looked at; older ones may"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr class=\"empty\"><td colspan=\"6\" class=\"muted\">No queries match{more}.</td></tr>"
        );
    }
    for r in rows {
        let action = if r.status == "blocked" {
            format!(
                "<button type=\"button\" class=\"small sec\" data-rule=\"allow\" data-domain=\"{}\">allow</button>",
                esc(&r.domain)
            )
        } else {
            format!(
                "<button type=\"button\" class=\"small sec\" data-rule=\"deny\" data-domain=\"{}\">block</button>",
                esc(&r.domain)
            )
        };
        let _ = write!(
            s,
            "<tr data-ms=\"{ms}\"><td><time data-ms=\"{ms}\">{t}</time></td><td class=\"mono hide-sm\">{c}</td><td class=\"mono\">{d}</td><td class=\"hide-sm\">{ty}</td><td>{tag}</td>\
             <td><button type=\"button\" class=\"small sec\" data-why=\"{d}\" data-client=\"{c}\">why?</button> {action}</td></tr>",
            ms = r.time_ms,
            t = time(r.time_ms),
            c = esc(&r.client),
            d = esc(&r.domain),
            ty = esc(&r.qtype),
            tag = status_tag(&r.status, r.reason.as_deref()),
        );
    }
    s.push_str("</tbody></table></div>");
    if let Some(cursor) = page_.next_cursor {
        let mut q: Vec<(String, String)> = Vec::new();
        for (k, val) in [
            ("domain", &params.domain),
            ("client", &params.client),
            ("status", &params.status),
            ("qtype", &params.qtype),
            ("limit", &params.limit),
        ] {
            if let Some(x) = val.as_ref().filter(|x| !x.is_empty()) {
                q.push((k.into(), x.clone()));
            }
        }
        q.push(("cursor".into(), cursor.to_string()));
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        let qs = qs.join("&");
        let _ = write!(
            s,
            "<p><a href=\"/querylog?{}\">Older queries →</a></p>",
            esc(&qs)
        );
    }
    html(page("Query log", "/querylog", Some(csrf(&p)), &s))
}
