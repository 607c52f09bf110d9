//! Prometheus metrics at `/metrics` (when `web.metrics` is on).
//! Not for: the dashboard's figures (see `dashboard`).

use super::State;
use super::dashboard::parse_range;
use super::guard::Principal;
use super::http::{ApiError, ApiResult};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

pub fn routes() -> Router<State> {
    Router::new().route("/metrics", get(metrics))
}

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
    let limited = [
        (
            "dns_rate_limited_total",
            "Queries answered REFUSED over dns.rate_limit.",
            e.rate_limited,
        ),
        (
            "dns_over_upstream_share_total",
            "Cache misses answered SERVFAIL over dns.client_upstream_queries.",
            e.over_upstream_share,
        ),
        (
            "dns_tcp_refused_total",
            "TCP connections closed over dns.tcp_max_connections or dns.tcp_client_connections.",
            e.tcp_refused,
        ),
        (
            "dns_tcp_stalled_total",
            "TCP connections closed for an answer left unread for dns.tcp_write_timeout.",
            e.tcp_stalled,
        ),
        (
            "dns_prefetches_total",
            "Cached answers refreshed in the last tenth of their TTL (dns.prefetch).",
            e.prefetches,
        ),
        (
            "dns_prefetch_saved_misses_total",
            "Hits on a prefetched answer after the answer it replaced would have expired.",
            e.prefetch_saved,
        ),
        (
            "dns_prefetch_dropped_total",
            "Prefetch refreshes dropped because their queue was full.",
            e.prefetch_dropped,
        ),
        (
            "querylog_dropped_events_total",
            "Query events the DNS side dropped because the query log's channel was full.",
            e.querylog_dropped_events,
        ),
        (
            "querylog_dropped_rows_total",
            "Query events the query log received but could not store.",
            e.querylog_dropped_rows,
        ),
    ];
    for (name, help, value) in limited {
        metric(name, help, "counter", value.to_string());
    }
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
        "login_password_checks_total",
        "Admin password checks hashed since start (login attempts past the rate limit are not).",
        "counter",
        st.auth.password_checks().to_string(),
    );
    metric(
        "blocking_paused",
        "1 while blocking is paused.",
        "gauge",
        (st.backend.pause_status().paused as u8).to_string(),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
