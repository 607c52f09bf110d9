//! Local DNS: records the box answers itself and zones forwarded to other
//! servers (`/api/v1/local/records`, `/api/v1/forward`, the page at
//! `/local`).
//! Not for: answering them (see `dns::local`).

use super::State;
use super::html::{esc, field_error, html, page};
use super::http::{ApiError, ApiResult, Body, Ext, csrf, edit, ok};
use super::setup;
use crate::config::{ForwardZone, LocalRecord};
use crate::syntax::{DomainName, Rdata, RecordType};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route(
            "/api/v1/local/records",
            get(local_records).post(add_record).delete(remove_record),
        )
        .route(
            "/api/v1/forward",
            get(forward).post(add_forward).delete(remove_forward),
        )
        .route("/local", get(local_page))
}

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

// ---- page ----

async fn local_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let mut s = String::from(
        "<h2>Local records</h2><p class=\"muted\">Answered by the box itself, before any filtering.</p><div class=\"scroll\"><table id=\"records\"><thead><tr><th>Name</th><th>Type</th><th>Value</th><th class=\"num\">TTL</th><th></th></tr></thead><tbody>",
    );
    if cfg.local.records.is_empty() {
        s.push_str("<tr><td colspan=\"5\" class=\"muted\">None yet.</td></tr>");
    }
    for r in &cfg.local.records {
        let body = serde_json::json!({"name": r.name.0, "type": format!("{:?}", r.rtype), "value": r.value}).to_string();
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td>{:?}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td>\
             <td><button class=\"small sec\" data-action=\"DELETE /api/v1/local/records\" data-body=\"{}\">remove</button></td></tr>",
            esc(&r.name.0),
            r.rtype,
            esc(&r.value),
            r.ttl,
            esc(&body)
        );
    }
    s.push_str("</tbody></table></div><form data-api=\"/api/v1/local/records\" class=\"row\" id=\"add-record\">\
        <label>Name<input type=\"text\" name=\"name\" placeholder=\"nas.lan\" required></label>\
        <label>Type<select name=\"type\"><option>A</option><option>AAAA</option><option>CNAME</option><option>PTR</option><option>TXT</option><option>MX</option><option>SRV</option></select></label>\
        <label>Value<input type=\"text\" name=\"value\" placeholder=\"192.168.1.10\" required></label>\
        <label>TTL<input type=\"number\" name=\"ttl\" value=\"300\" min=\"0\"></label><button>Add</button>");
    for f in ["name", "type", "value"] {
        s.push_str(&field_error(f, None));
    }
    s.push_str("<span class=\"status\"></span></form>");
    s.push_str("<h2>Conditional forwarding</h2><p class=\"muted\">Names under these domains are asked from the given servers, e.g. your router for <span class=\"mono\">home.arpa</span>.</p><div class=\"scroll\"><table id=\"forward\"><thead><tr><th>Domains</th><th>Servers</th><th></th></tr></thead><tbody>");
    if cfg.forward.is_empty() {
        s.push_str("<tr><td colspan=\"3\" class=\"muted\">None yet.</td></tr>");
    }
    for z in &cfg.forward {
        let doms: Vec<String> = z.domains.iter().map(|d| d.0.clone()).collect();
        let ups: Vec<String> = z.upstreams.iter().map(|u| u.to_string()).collect();
        let body = serde_json::json!({"domains": doms}).to_string();
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td><button class=\"small sec\" data-action=\"DELETE /api/v1/forward\" data-body=\"{}\">remove</button></td></tr>",
            esc(&doms.join(", ")),
            esc(&ups.join(", ")),
            esc(&body)
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><form data-api=\"/api/v1/forward\" class=\"row\" id=\"add-forward\">\
         <label>Domains, one per line<textarea name=\"domains\" data-lines></textarea></label>\
         <label>Servers, one per line<textarea name=\"upstreams\" data-lines placeholder=\"192.168.1.1:53\"></textarea></label>\
         <button>Add</button>{}{}<span class=\"status\"></span></form>",
        field_error("domains", None),
        field_error("upstreams", None)
    );
    html(page("Local DNS", "/local", Some(csrf(&p)), &s))
}
