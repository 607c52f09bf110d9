//! The DHCP server's page: its status (serving, or why not: another
//! server on the network, no address on the interface) and the devices it
//! knows (`GET /api/v1/dhcp/leases`, the page at `/dhcp`).
//! Not for: serving leases (see `dhcp`) or its settings (`[dhcp]`,
//! docs/configuration.md).

use super::State;
use super::html::{esc, html, page};
use super::http::{Ext, csrf};
use crate::dhcp::{LeaseInfo, Status};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/dhcp/leases", get(leases))
        .route("/dhcp", get(dhcp_page))
}

#[derive(Serialize)]
struct LeasesView {
    status: Status,
    leases: Vec<LeaseInfo>,
}

async fn leases(axum::extract::State(st): axum::extract::State<State>) -> Json<LeasesView> {
    Json(LeasesView {
        status: st.backend.dhcp_status(),
        leases: st.backend.dhcp_leases().to_vec(),
    })
}

/// What the status line says (here and on the Settings page).
pub(super) fn status_text(s: &Status) -> String {
    match s {
        Status::Off => {
            "Off: set <span class=\"mono\">[dhcp] enabled = true</span> to hand out addresses."
                .into()
        }
        Status::Checking { interface } => {
            format!("Checking {} for another DHCP server…", esc(interface))
        }
        Status::Serving { interface, address } => format!(
            "Serving on {} as {address} (the DNS server it hands out).",
            esc(interface)
        ),
        Status::Refused { reason } => format!("<strong>Not serving:</strong> {}", esc(reason)),
        Status::Failed { reason } => format!("<strong>Not serving:</strong> {}", esc(reason)),
    }
}

async fn dhcp_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let status = st.backend.dhcp_status();
    let leases = st.backend.dhcp_leases();
    let now = (crate::clock::now_ms() / 1000).max(0) as u64;
    let mut s = format!(
        "<p id=\"dhcp-status\">{}</p><div class=\"scroll\"><table id=\"leases\">\
         <thead><tr><th>Name</th><th>Address</th><th>MAC</th><th>Lease</th></tr></thead><tbody>",
        status_text(&status)
    );
    if leases.is_empty() {
        s.push_str("<tr><td colspan=\"4\" class=\"muted\">No devices yet.</td></tr>");
    }
    for l in leases.iter() {
        let lease = match (l.is_static, l.expires) {
            (_, Some(e)) if e > now => format!("ends in {}", super::html::duration(e - now)),
            (true, None) => "static, not taken yet".into(),
            _ => "ended".into(),
        };
        let lease = if l.is_static && l.expires.is_some() {
            format!("static, {lease}")
        } else {
            lease
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(l.name.as_deref().unwrap_or("")),
            l.ip,
            l.mac,
            lease
        );
    }
    s.push_str("</tbody></table></div>");
    html(page("DHCP", "/dhcp", Some(csrf(&p)), &s))
}
