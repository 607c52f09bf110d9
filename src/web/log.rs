//! The query log: searching it (`/api/v1/querylog`), exporting what a
//! search selects (`/api/v1/querylog/export`, streamed), asking why a
//! domain is blocked (`/api/v1/explain`), and the page at `/querylog` with
//! its live tail and Export button.
//! Not for: storing or reading rows (the backend's query log does).

use super::State;
use super::backend::{ExplanationView, LogPageView, LogSearch, NOT_AVAILABLE};
use super::html::{client_text, esc, html, page, time, urlencode};
use super::http::{ApiError, ApiResult, Ext, blocking, csrf};
use crate::querylog::ExportFormat;
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
        .route("/api/v1/querylog/export", get(export))
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

/// The log search's parameters and the file format.
#[derive(Deserialize, Default, Debug)]
struct ExportParams {
    #[serde(default)]
    format: Option<String>,
    #[serde(flatten)]
    search: LogParams,
}

/// Bytes per chunk of an export's body; at most `EXPORT_CHUNKS_AHEAD`
/// chunks wait for a slow reader, so an export holds the same RAM over
/// any range.
const EXPORT_CHUNK: usize = 64 << 10;
const EXPORT_CHUNKS_AHEAD: usize = 4;

/// The export's rows, as the blocking writer hands them to the body.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK));
        self.tx
            .blocking_send(Ok(chunk.into()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader left"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= EXPORT_CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

async fn export(
    axum::extract::State(st): axum::extract::State<State>,
    Query(p): Query<ExportParams>,
) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let format: ExportFormat = p
        .format
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .unwrap_or("csv")
        .parse()
        .map_err(|e: String| ApiError::field("format", e))?;
    let mut search = p.search;
    search.limit = None;
    let q = search.to_query()?;
    if !st.backend.has_querylog() {
        return Err(ApiError::unavailable(
            "export: the query log is not running (Settings: Keep a query log)".into(),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_CHUNKS_AHEAD);
    let backend = st.backend.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            buf: Vec::with_capacity(EXPORT_CHUNK),
            tx,
        };
        let result = backend.export(&q, format, &mut out);
        let result = result.and_then(|_| out.send().map_err(|e| e.to_string()));
        if let Err(e) = result {
            // The status line is gone: cut the body short instead.
            tracing::warn!("web: {e}");
            let _ = out.tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let name = format!(
        "attachment; filename=\"querylog-{}.{}\"",
        crate::clock::now_ms() / 1000,
        format.extension()
    );
    Ok((
        [
            (
                http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (http::header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
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

/// The page's filters (and `more` of its parameters) as a query string,
/// then `extra`.
fn query_string(params: &LogParams, more: &[&str], extra: &[(&str, String)]) -> String {
    let mut q: Vec<String> = Vec::new();
    for (k, val) in [
        ("domain", &params.domain),
        ("client", &params.client),
        ("status", &params.status),
        ("qtype", &params.qtype),
        ("from_ms", &params.from_ms),
        ("to_ms", &params.to_ms),
        ("limit", &params.limit),
    ] {
        let wanted = matches!(k, "domain" | "client" | "status" | "qtype") || more.contains(&k);
        if let Some(x) = val.as_ref().filter(|x| wanted && !x.is_empty()) {
            q.push(format!("{k}={}", urlencode(x)));
        }
    }
    q.extend(extra.iter().map(|(k, v)| format!("{k}={}", urlencode(v))));
    q.join("&")
}

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
            "<tr data-ms=\"{ms}\"><td><time data-ms=\"{ms}\">{t}</time></td><td class=\"client hide-sm\">{shown}</td><td class=\"mono\">{d}</td><td class=\"hide-sm\">{ty}</td><td>{tag}</td>\
             <td><button type=\"button\" class=\"small sec\" data-why=\"{d}\" data-client=\"{c}\">why?</button> {action}</td></tr>",
            ms = r.time_ms,
            t = time(r.time_ms),
            c = esc(&r.client),
            shown = client_text(
                &r.client,
                r.client_name.as_deref(),
                r.client_name_source.as_deref()
            ),
            d = esc(&r.domain),
            ty = esc(&r.qtype),
            tag = status_tag(&r.status, r.reason.as_deref()),
        );
    }
    s.push_str("</tbody></table></div>");
    if let Some(cursor) = page_.next_cursor {
        let qs = query_string(&params, &["limit"], &[("cursor", cursor.to_string())]);
        let _ = write!(
            s,
            "<p><a href=\"/querylog?{}\">Older queries →</a></p>",
            esc(&qs)
        );
    }
    // Every row the filters select, not just this page's.
    for (format, label) in [("csv", "Export CSV"), ("jsonl", "Export JSON lines")] {
        let qs = query_string(&params, &["from_ms", "to_ms"], &[("format", format.into())]);
        let _ = write!(
            s,
            "<a class=\"btn sec\" id=\"export-{format}\" href=\"/api/v1/querylog/export?{}\" download>{label}</a> ",
            esc(&qs)
        );
    }
    html(page("Query log", "/querylog", Some(csrf(&p)), &s))
}
