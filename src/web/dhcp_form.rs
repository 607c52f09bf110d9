//! The `[dhcp]` section as the owner edits it: the fields setup and the
//! Settings page send (`DhcpIn`), read back into a `DhcpConfig` with every
//! error naming its key (`dhcp.range`), the Settings page's DHCP section
//! with the server's status, and `GET/PUT /api/v1/dhcp/settings`.
//! Static leases stay in the config file (docs/configuration.md).
//! Not for: what setup proposes (`dhcp_offer`), the leases page (`dhcp`),
//! serving (`crate::dhcp`).

use super::State;
use super::dhcp_offer::Offer;
use super::html::{esc, field_error};
use super::http::{ApiError, ApiResult, Body, edit, ok};
use crate::config::{DhcpConfig, Dur};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::net::Ipv4Addr;

pub fn routes() -> Router<State> {
    Router::new().route("/api/v1/dhcp/settings", get(settings).put(put_settings))
}

/// The section's fields as text, as a form sends them. An empty
/// `lease_time` or `domain` keeps the saved one.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct DhcpIn {
    pub enabled: bool,
    pub interface: String,
    pub range_first: String,
    pub range_last: String,
    pub netmask: String,
    pub gateway: String,
    pub lease_time: String,
    pub domain: String,
}

fn text(ip: Option<Ipv4Addr>) -> String {
    ip.map(|i| i.to_string()).unwrap_or_default()
}

impl DhcpIn {
    /// The fields as saved.
    pub fn of(c: &DhcpConfig) -> DhcpIn {
        DhcpIn {
            enabled: c.enabled,
            interface: c.interface.clone(),
            range_first: text(c.range.map(|r| r[0])),
            range_last: text(c.range.map(|r| r[1])),
            netmask: c.netmask.to_string(),
            gateway: text(c.gateway),
            lease_time: c.lease_time.to_string(),
            domain: c.domain.to_string(),
        }
    }

    /// Setup's proposal: the interface's values, lease time and domain
    /// as saved; off until the owner ticks the box.
    pub fn offered(o: &Offer, c: &DhcpConfig) -> DhcpIn {
        DhcpIn {
            enabled: false,
            interface: o.interface.clone(),
            range_first: o.range[0].to_string(),
            range_last: o.range[1].to_string(),
            netmask: o.netmask.to_string(),
            gateway: o.gateway.to_string(),
            ..DhcpIn::of(c)
        }
    }

    /// `base` with these fields, checked as the config file's section is:
    /// the error names the key (`dhcp.range`) so the form shows it there.
    pub fn apply(&self, base: &DhcpConfig) -> Result<DhcpConfig, ApiError> {
        let ip = |key: &str, v: &str| -> Result<Option<Ipv4Addr>, ApiError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(|_| {
                refuse(
                    key,
                    format!("'{v}' is not an IPv4 address like 192.168.1.100"),
                )
            })
        };
        let mut c = base.clone();
        c.enabled = self.enabled;
        let interface = self.interface.trim();
        if interface.len() > 15 || interface.contains(|ch: char| ch == '/' || ch.is_whitespace()) {
            return Err(refuse(
                "interface",
                format!("'{interface}' is not an interface name like eth0"),
            ));
        }
        c.interface = interface.to_string();
        c.range = match (
            ip("range", &self.range_first)?,
            ip("range", &self.range_last)?,
        ) {
            (Some(a), Some(b)) => Some([a, b]),
            (None, None) => None,
            _ => {
                return Err(refuse("range", "give both the first and the last address"));
            }
        };
        c.netmask = ip("netmask", &self.netmask)?
            .ok_or_else(|| refuse("netmask", "needed (like 255.255.255.0)"))?;
        c.gateway = ip("gateway", &self.gateway)?;
        if !self.lease_time.trim().is_empty() {
            c.lease_time = self
                .lease_time
                .parse::<Dur>()
                .map_err(|e| refuse("lease_time", e))?;
        }
        if !self.domain.trim().is_empty() {
            c.domain = self.domain.parse().map_err(|e| refuse("domain", e))?;
        }
        c.validate().map_err(|msg| {
            // "dhcp.range: ..." or "dhcp.static 'aa:..': ...".
            let key = msg.split([':', ' ']).next().unwrap_or("dhcp").to_string();
            ApiError::field(&key, msg)
        })?;
        Ok(c)
    }
}

fn refuse(key: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::field(&format!("dhcp.{key}"), format!("dhcp.{key}: {why}"))
}

async fn settings(axum::extract::State(st): axum::extract::State<State>) -> Json<DhcpIn> {
    Json(DhcpIn::of(&st.backend.config().dhcp))
}

async fn put_settings(
    axum::extract::State(st): axum::extract::State<State>,
    Body(input): Body<DhcpIn>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| {
        c.dhcp = input.apply(&c.dhcp)?;
        Ok(())
    })?;
    Ok(ok("DHCP settings saved"))
}

/// The fields of the section, named as `DhcpIn`'s with `prefix` before
/// each (`dhcp_` on the setup form), errors shown at `dhcp.KEY`.
pub fn fields(prefix: &str, v: &DhcpIn, err: Option<&ApiError>) -> String {
    let e = |key: &str| {
        let at = format!("dhcp.{key}");
        field_error(
            &at,
            err.filter(|e| e.field.as_deref() == Some(at.as_str()))
                .map(|e| e.error.as_str()),
        )
    };
    let input = |name: &str, label: &str, value: &str, hint: &str| {
        format!(
            "<label>{label}<input type=\"text\" name=\"{prefix}{name}\" id=\"{prefix}{name}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(value)
        )
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{}{}<div class=\"row\">{}{}</div>{}{}{}{}{}{}{}",
        input("interface", "Interface", &v.interface, "eth0"),
        e("interface"),
        input(
            "range_first",
            "First address handed out",
            &v.range_first,
            "192.168.1.100"
        ),
        input(
            "range_last",
            "Last address handed out",
            &v.range_last,
            "192.168.1.199"
        ),
        e("range"),
        input(
            "gateway",
            "Gateway (your router)",
            &v.gateway,
            "192.168.1.1"
        ),
        e("gateway"),
        input("netmask", "Netmask", &v.netmask, "255.255.255.0"),
        e("netmask"),
        input("lease_time", "Lease time", &v.lease_time, "12h"),
        e("lease_time"),
    );
    s.push_str(&input("domain", "Domain of device names", &v.domain, "lan"));
    s.push_str(&e("domain"));
    s.push_str(&e("static"));
    s
}

/// The Settings page's DHCP section: the server's status and the form.
pub fn section(st: &State) -> String {
    let cfg = st.backend.config();
    let v = DhcpIn::of(&cfg.dhcp);
    format!(
        "<h2>DHCP server</h2><p id=\"dhcp-settings-status\">{}</p>\
         <p class=\"muted\">Turn this on only if your router cannot hand out the box as DNS server, and then switch off your router's own DHCP server.</p>\
         <form data-api=\"/api/v1/dhcp/settings\" data-method=\"PUT\" data-done=\"show\" class=\"stack\" id=\"dhcp-settings\">\
         <label class=\"check\"><input type=\"checkbox\" name=\"enabled\"{}> Hand out addresses (DHCP server)</label>{}\
         <p class=\"muted\">Static leases (a device always gets the same address and name) are set in the config file: <span class=\"mono\">[[dhcp.static]]</span>, see docs/configuration.md. This box has {} of them; they are kept when you save here.</p>\
         <button>Save DHCP settings</button><span class=\"status\"></span></form>",
        super::dhcp::status_text(&st.backend.dhcp_status()),
        if v.enabled { " checked" } else { "" },
        fields("", &v, None),
        cfg.dhcp.statics.len(),
    )
}
