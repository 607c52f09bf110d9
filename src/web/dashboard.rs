//! The dashboard: counts, chart and top lists for a time range
//! (`/api/v1/stats` and the page at `/`), and pausing blocking
//! (`/api/v1/pause`), whose control sits on the dashboard.
//! Not for: the figures themselves (the backend computes them).

use super::State;
use super::backend::{
    BucketView, EngineStats, PauseView, SlowestView, SummaryView, TimeRange, TopItem, TopKind,
};
use super::html::{bytes, card, duration, esc, html, page, time, top_table, top_table_linked};
use super::http::{ApiError, ApiResult, Body, Ext, blocking, csrf};
use super::sysinfo::SysInfo;
use crate::config::Dur;
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/v1/stats", get(stats))
        .route(
            "/api/v1/pause",
            get(pause_status).post(pause).delete(resume),
        )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RangeIn {
    /// "1h", "24h", "7d"...
    pub range: Option<String>,
}

#[derive(Serialize)]
pub struct Stats {
    pub range: String,
    pub summary: Option<SummaryView>,
    pub percent_blocked: f64,
    pub series: Vec<BucketView>,
    pub top_domains: Vec<TopItem>,
    pub top_blocked: Vec<TopItem>,
    pub top_clients: Vec<TopItem>,
    /// The slowest domains and each upstream's latency, from the log.
    pub slowest: SlowestView,
    pub engine: EngineStats,
    pub cache_hit_rate: f64,
    pub system: SysInfo,
    pub pause: PauseView,
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
        slowest: b.slowest(r, 10),
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

async fn pause_status(axum::extract::State(st): axum::extract::State<State>) -> Json<PauseView> {
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
) -> ApiResult<Json<PauseView>> {
    let minutes = p.minutes.filter(|m| *m > 0);
    if minutes.is_some_and(|m| m > 7 * 24 * 60) {
        return Err(ApiError::field("minutes", "minutes: at most one week"));
    }
    st.backend.pause(minutes).map_err(ApiError::unavailable)?;
    Ok(Json(st.backend.pause_status()))
}

async fn resume(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<PauseView>> {
    st.backend.resume().map_err(ApiError::unavailable)?;
    Ok(Json(st.backend.pause_status()))
}

// ---- page ----

fn chart(buckets: &[BucketView]) -> String {
    if buckets.is_empty() {
        return "<p class=\"muted\">No chart: the query log is off or empty.</p>".into();
    }
    let max = buckets
        .iter()
        .map(|b| b.allowed + b.blocked + b.cached)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let w = buckets.len() * 10;
    let mut s = format!(
        "<svg class=\"chart\" id=\"chart\" viewBox=\"0 0 {w} 100\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"Queries over time\">"
    );
    for (i, b) in buckets.iter().enumerate() {
        let mut y = 100.0;
        for (v, cls) in [(b.allowed, "a"), (b.cached, "c"), (b.blocked, "b")] {
            let h = v as f64 * 100.0 / max;
            if h > 0.0 {
                y -= h;
                let _ = write!(
                    s,
                    "<rect class=\"{cls}\" x=\"{}\" y=\"{y:.2}\" width=\"8\" height=\"{h:.2}\"/>",
                    i * 10 + 1
                );
            }
        }
    }
    s.push_str("</svg><div class=\"legend\"><span><i class=\"a\"></i>allowed</span><span><i class=\"c\"></i>cached</span><span><i class=\"b\"></i>blocked</span></div>");
    s
}

/// The slowest domains (their slowest answer) and each upstream's
/// answers, average and slowest latency over the range.
fn slowest_table(v: &SlowestView) -> String {
    let mut s = String::from(
        "<div><h2>Slowest answers</h2><div class=\"scroll\"><table id=\"slowest\"><tbody>",
    );
    if v.domains.is_empty() && v.upstreams.is_empty() {
        s.push_str("<tr><td class=\"muted\">Nothing yet</td></tr>");
    }
    for u in &v.upstreams {
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{} answers, avg {:.1} ms</td><td class=\"num\">{:.1} ms</td></tr>",
            esc(&u.name),
            u.answers,
            u.avg_ms,
            u.max_ms
        );
    }
    for d in &v.domains {
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td></td><td class=\"num\">{:.1} ms</td></tr>",
            esc(&d.name),
            d.max_ms
        );
    }
    s.push_str("</tbody></table></div></div>");
    s
}

async fn dashboard(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
    Query(q): Query<RangeIn>,
) -> Response {
    let data = match blocking(&st, move |st| stats_data(st, q.range.as_deref())).await {
        Ok(d) => d,
        Err(e) => {
            return (
                e.status,
                Html(page(
                    "Dashboard",
                    "/",
                    Some(csrf(&p)),
                    &format!("<p class=\"err\">{}</p>", esc(&e.error)),
                )),
            )
                .into_response();
        }
    };
    let mut s = String::new();
    if data.pause.paused {
        let until = data
            .pause
            .until_ms
            .map(|m| format!(" until <time data-ms=\"{m}\">{}</time>", time(m)))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<div class=\"banner\" id=\"paused\">Blocking is paused{until}. <button class=\"small\" data-action=\"DELETE /api/v1/pause\">Resume now</button></div>"
        );
    }
    s.push_str("<p class=\"row\"><span>");
    for r in ["1h", "24h", "7d", "30d"] {
        let on = if r == data.range { " class=\"on\"" } else { "" };
        let _ = write!(s, "<a href=\"/?range={r}\"{on}>{r}</a> ");
    }
    s.push_str("</span>");
    if !data.pause.paused {
        s.push_str("<span>Pause blocking: <button class=\"small sec\" data-action=\"POST /api/v1/pause\" data-body='{\"minutes\":5}'>5 min</button> \
                    <button class=\"small sec\" data-action=\"POST /api/v1/pause\" data-body='{\"minutes\":60}'>1 hour</button> \
                    <button class=\"small sec\" data-action=\"POST /api/v1/pause\" data-body='{}'>until resumed</button></span>");
    }
    s.push_str("</p><div class=\"grid\">");
    match &data.summary {
        Some(sm) => {
            s.push_str(&card("Queries", &sm.total.to_string(), "total"));
            s.push_str(&card("Blocked", &sm.blocked.to_string(), "blocked"));
            s.push_str(&card(
                "Blocked %",
                &format!("{:.1}%", data.percent_blocked),
                "percent",
            ));
            s.push_str(&card("From cache", &sm.cached.to_string(), "cached"));
            s.push_str(&card("Clients", &sm.unique_clients.to_string(), "clients"));
            s.push_str(&card("Domains", &sm.unique_domains.to_string(), "domains"));
        }
        None => s.push_str(&card("Query log", "off", "total")),
    }
    s.push_str(&card(
        "Cache hit rate",
        &format!("{:.1}%", data.cache_hit_rate),
        "hitrate",
    ));
    s.push_str(&card(
        "Prefetched",
        &format!(
            "{} ({} misses saved)",
            data.engine.prefetches, data.engine.prefetch_saved
        ),
        "prefetch",
    ));
    let sys = &data.system;
    s.push_str(&card(
        "Memory (glory-hole)",
        &sys.process_rss_bytes.map(bytes).unwrap_or("–".into()),
        "memory",
    ));
    s.push_str(&card(
        "CPU",
        &sys.cpu_percent
            .map(|c| format!("{c:.0}%"))
            .unwrap_or("–".into()),
        "cpu",
    ));
    s.push_str(&card(
        "Temperature",
        &sys.temperature_c
            .map(|t| format!("{t:.0} °C"))
            .unwrap_or("–".into()),
        "temp",
    ));
    s.push_str(&card("Uptime", &duration(sys.uptime_secs), "uptime"));
    let flash = match (sys.flash_total_bytes, sys.flash_free_bytes) {
        (Some(t), Some(f)) if t > 0 => format!("{:.0}% used", (t - f) as f64 * 100.0 / t as f64),
        _ => "–".into(),
    };
    s.push_str(&card("Storage", &flash, "flash"));
    s.push_str("</div><h2>Queries over time</h2>");
    s.push_str(&chart(&data.series));
    s.push_str("<div class=\"two\">");
    s.push_str(&top_table("Top domains", "top-domains", &data.top_domains));
    s.push_str(&top_table("Top blocked", "top-blocked", &data.top_blocked));
    s.push_str(&top_table_linked(
        "Top clients",
        "top-clients",
        &data.top_clients,
        Some("client"),
    ));
    s.push_str("<div><h2>Upstreams</h2><div class=\"scroll\"><table id=\"upstreams\"><tbody>");
    if data.engine.upstreams.is_empty() {
        for u in &st.backend.config().dns.upstreams {
            let _ = write!(
                s,
                "<tr><td class=\"mono\">{}</td><td class=\"muted\">no data yet</td></tr>",
                esc(&u.to_string())
            );
        }
    }
    for u in &data.engine.upstreams {
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&u.name),
            if u.healthy {
                "<span class=\"ok\">up</span>"
            } else {
                "<span class=\"err\">down</span>"
            },
            u.latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or("–".into())
        );
    }
    s.push_str("</tbody></table></div></div>");
    s.push_str(&slowest_table(&data.slowest));
    s.push_str("</div>");
    html(page("Dashboard", "/", Some(csrf(&p)), &s))
}
