//! First-boot setup: the choices offered (upstream and blocklist presets,
//! and on the appliance its network and time zone), how they become a
//! config, the setup page and form, and `/api/v1/setup` (status, finish,
//! or restore a backup instead). Who may set up, and when, is
//! `setup_gate`'s: every handler here asks it before writing anything.
//! Not for: changing settings after setup (see `settings`, `system`).

use super::dhcp_form::{self, DhcpIn};
use super::guard;
use super::html::{esc, field_error, html, page};
use super::http::{
    ApiError, ApiResult, Body, Ext, FieldError, csrf, csrf_error, edit, field_err, ok, peer,
    pre_cookie, pre_csrf_ok, pre_token, session_cookie, with_pre_cookie,
};
use super::setup_gate;
use super::{Conn, State};
use crate::config::{Config, FilterList, Upstream};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::fmt::Write;

use super::network::Network;
use super::system::restore_backup;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/setup", get(setup_status).post(setup_api))
        .route(
            "/api/v1/setup/restore",
            post(setup_restore).layer(super::limits::upload(super::limits::BACKUP_BYTES)),
        )
        .route("/setup", get(setup_page).post(setup_form))
        .route("/setup/done", get(setup_done))
}

pub struct UpstreamPreset {
    pub id: &'static str,
    pub label: &'static str,
    pub plain: &'static [&'static str],
    pub dot: &'static [&'static str],
    pub doh: &'static [&'static str],
}

const fn preset(
    id: &'static str,
    label: &'static str,
    plain: &'static [&'static str],
    dot: &'static [&'static str],
    doh: &'static [&'static str],
) -> UpstreamPreset {
    UpstreamPreset {
        id,
        label,
        plain,
        dot,
        doh,
    }
}

pub const UPSTREAM_PRESETS: &[UpstreamPreset] = &[
    preset(
        "cloudflare",
        "Cloudflare (1.1.1.1)",
        &["1.1.1.1:53", "1.0.0.1:53"],
        &[
            "tls://1.1.1.1:853#cloudflare-dns.com",
            "tls://1.0.0.1:853#cloudflare-dns.com",
        ],
        &["https://cloudflare-dns.com/dns-query"],
    ),
    preset(
        "quad9",
        "Quad9 (9.9.9.9, malware blocking)",
        &["9.9.9.9:53", "149.112.112.112:53"],
        &[
            "tls://9.9.9.9:853#dns.quad9.net",
            "tls://149.112.112.112:853#dns.quad9.net",
        ],
        &["https://dns.quad9.net/dns-query"],
    ),
    preset(
        "google",
        "Google (8.8.8.8)",
        &["8.8.8.8:53", "8.8.4.4:53"],
        &[
            "tls://8.8.8.8:853#dns.google",
            "tls://8.8.4.4:853#dns.google",
        ],
        &["https://dns.google/dns-query"],
    ),
];

/// (id, label, url)
pub const BLOCKLIST_PRESETS: &[(&str, &str, &str)] = &[
    (
        "stevenblack",
        "StevenBlack unified hosts (ads + malware)",
        "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
    ),
    (
        "oisd-small",
        "OISD small",
        "https://small.oisd.nl/domainswild",
    ),
    ("oisd-big", "OISD big", "https://big.oisd.nl/domainswild"),
    (
        "hagezi-light",
        "HaGeZi Multi LIGHT",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/wildcard/light-onlydomains.txt",
    ),
    (
        "hagezi-pro",
        "HaGeZi Multi PRO",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/wildcard/pro-onlydomains.txt",
    ),
    (
        "adguard-dns",
        "AdGuard DNS filter",
        "https://adguardteam.github.io/HostlistsRegistry/assets/filter_1.txt",
    ),
];

/// The upstreams a preset and protocol stand for, or the custom lines.
pub fn upstreams(
    preset: &str,
    protocol: &str,
    custom: &[String],
) -> Result<Vec<Upstream>, FieldError> {
    if preset == "custom" {
        if custom.is_empty() {
            return Err(field_err("custom_upstreams", "give at least one upstream"));
        }
        return parse_upstreams(custom, "custom_upstreams");
    }
    let Some(p) = UPSTREAM_PRESETS.iter().find(|p| p.id == preset) else {
        return Err(field_err("upstream", format!("unknown preset '{preset}'")));
    };
    let list = match protocol {
        "plain" => p.plain,
        "dot" => p.dot,
        "doh" => p.doh,
        other => {
            return Err(field_err(
                "protocol",
                format!("'{other}': choose plain, dot or doh"),
            ));
        }
    };
    Ok(list
        .iter()
        .map(|s| s.parse().expect("presets parse"))
        .collect())
}

pub fn parse_upstreams(lines: &[String], field: &str) -> Result<Vec<Upstream>, FieldError> {
    if lines.is_empty() {
        return Err(field_err(field, "at least one upstream is needed"));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.parse()
                .map_err(|e| field_err(field, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Adds the chosen presets as URL lists, keeping lists already there.
pub fn add_blocklists(cfg: &mut Config, ids: &[String]) -> Result<(), FieldError> {
    for id in ids {
        let Some((name, _, url)) = BLOCKLIST_PRESETS.iter().find(|p| p.0 == id) else {
            return Err(field_err("blocklists", format!("unknown blocklist '{id}'")));
        };
        if cfg.filter.lists.iter().any(|l| l.name == *name) {
            continue;
        }
        cfg.filter.lists.push(FilterList {
            name: name.to_string(),
            path: None,
            url: Some(url.to_string()),
            enabled: true,
            match_mode: None,
            groups: Vec::new(),
        });
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetupIn {
    pub password: String,
    /// cloudflare, quad9, google or custom.
    pub upstream: String,
    /// plain, dot or doh.
    pub protocol: String,
    pub custom_upstreams: Vec<String>,
    pub blocklists: Vec<String>,
    /// Appliance only.
    pub network: Option<Network>,
    /// The secret on the boot partition, when there is one.
    pub setup_secret: String,
    /// "My router can't change DNS": the box's DHCP server, when enabled.
    pub dhcp: Option<DhcpIn>,
}

/// What the DHCP option starts with: read from the box's interface, else
/// the saved section.
fn dhcp_proposal(cfg: &Config) -> DhcpIn {
    match super::dhcp_offer::offer(&cfg.dhcp.interface) {
        Some(o) => DhcpIn::offered(&o, &cfg.dhcp),
        None => DhcpIn {
            enabled: false,
            ..DhcpIn::of(&cfg.dhcp)
        },
    }
}

/// Applies first-boot choices from `client`: who may set up is checked
/// first, then every choice, and only then is anything written (the
/// network settings, the password, the config).
pub async fn do_setup(st: &State, client: std::net::IpAddr, input: &SetupIn) -> ApiResult<()> {
    setup_gate::check(st, client, Some(&input.setup_secret))?;
    super::auth::check_password_strength(&input.password)
        .map_err(|e| ApiError::field("password", e))?;
    let mut cfg = (*st.backend.config()).clone();
    cfg.dns.upstreams = upstreams(&input.upstream, &input.protocol, &input.custom_upstreams)?;
    add_blocklists(&mut cfg, &input.blocklists)?;
    if let Some(d) = input.dhcp.as_ref().filter(|d| d.enabled) {
        cfg.dhcp = d.apply(&cfg.dhcp)?;
    }
    cfg.validate().map_err(ApiError::from_config)?;
    if cfg.web.appliance {
        let net = input.network.clone().unwrap_or_default();
        net.validate()?;
        net.save(&st.backend.data_dir())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    }
    st.auth
        .set_password(&input.password, true)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    edit(st, |c| {
        *c = cfg;
        Ok(())
    })
}

async fn setup_status(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    // Reuse the token a page in another tab already holds.
    let token = pre_token(&headers);
    let cfg = st.backend.config();
    let mut resp = Json(json!({
        "needed": !st.auth.password_is_set(),
        "gate": setup_gate::status(&st),
        "appliance": cfg.web.appliance,
        "dhcp": dhcp_proposal(&cfg),
        "csrf": token,
        "upstream_presets": UPSTREAM_PRESETS.iter().map(|p| json!({"id": p.id, "label": p.label})).collect::<Vec<_>>(),
        "blocklist_presets": BLOCKLIST_PRESETS.iter().map(|p| json!({"id": p.0, "label": p.1, "url": p.2})).collect::<Vec<_>>(),
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, pre_cookie(&token));
    resp
}

async fn setup_api(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    Body(input): Body<SetupIn>,
) -> ApiResult<Response> {
    if !pre_csrf_ok(&headers, None) {
        return Err(csrf_error());
    }
    do_setup(&st, peer(&ci), &input).await?;
    let (id, csrf) = st.auth.new_session();
    let mut resp = Json(json!({ "message": "setup finished", "csrf": csrf })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&id));
    Ok(resp)
}

/// First boot on a new card: restore a backup instead of setting up. No
/// session comes with it: the backup's password is needed to log in.
async fn setup_restore(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    Query(q): Query<SecretIn>,
    body: axum::body::Body,
) -> ApiResult<Json<serde_json::Value>> {
    if !pre_csrf_ok(&headers, None) {
        return Err(csrf_error());
    }
    // Before a byte of the body is read.
    setup_gate::check(&st, peer(&ci), q.setup_secret.as_deref())?;
    let _slot = super::limits::upload_slot(&st)?;
    let body = super::limits::read_body(body, super::limits::BACKUP_BYTES).await?;
    restore_backup(&st, &body, true).await?;
    Ok(ok("backup restored: log in with its admin password"))
}

#[derive(Deserialize)]
struct SecretIn {
    setup_secret: Option<String>,
}

// ---- pages ----

fn setup_body(st: &State, token: &str, input: &SetupIn, err: Option<&ApiError>) -> String {
    let e = |f: &str| {
        err.filter(|e| e.field.as_deref() == Some(f))
            .map(|e| e.error.as_str())
    };
    let mut s = String::new();
    s.push_str("<p>Welcome. Three choices and your box starts blocking ads for every device that uses it. DNS already answers with safe defaults.</p>");
    let gate = setup_gate::status(st);
    let mins = gate.closes_in_secs.div_ceil(60);
    let _ = if gate.open {
        write!(
            s,
            "<p class=\"muted\" id=\"setup-window\">Setup stays open for {mins} more minute{} after start, from this network only. Power-cycle the box to open it again.</p>",
            if mins == 1 { "" } else { "s" }
        )
    } else {
        write!(
            s,
            "<p class=\"err\" id=\"setup-window\">The setup window has closed. Power-cycle the box to open it again.</p>"
        )
    };
    if let Some(er) = err.filter(|e| e.field.is_none()) {
        let _ = write!(s, "<p class=\"err\">{}</p>", esc(&er.error));
    }
    let _ = write!(
        s,
        "<form method=\"post\" action=\"/setup\" class=\"stack\" id=\"setup\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <fieldset><legend>1. Admin password</legend>\
         <label>Password (at least {} characters)<input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"new-password\" required></label>{}{}</fieldset>",
        esc(token),
        super::auth::MIN_PASSWORD_LEN,
        field_error("password", e("password")),
        secret_field(gate.secret_needed, e("setup_secret")),
    );
    s.push_str("<fieldset><legend>2. Where the box asks</legend>");
    let chosen = if input.upstream.is_empty() {
        "quad9"
    } else {
        &input.upstream
    };
    for (id, label) in UPSTREAM_PRESETS
        .iter()
        .map(|p| (p.id, p.label))
        .chain([("custom", "Custom")])
    {
        let _ = write!(
            s,
            "<label class=\"check\"><input type=\"radio\" name=\"upstream\" value=\"{id}\" id=\"up-{id}\"{}> {label}</label>",
            if id == chosen { " checked" } else { "" }
        );
    }
    let proto = if input.protocol.is_empty() {
        "plain"
    } else {
        &input.protocol
    };
    s.push_str("<label>Protocol<select name=\"protocol\" id=\"protocol\">");
    for (v, l) in [
        ("plain", "Plain DNS (fastest)"),
        ("dot", "DNS over TLS (private)"),
        ("doh", "DNS over HTTPS (private)"),
    ] {
        let _ = write!(
            s,
            "<option value=\"{v}\"{}>{l}</option>",
            if v == proto { " selected" } else { "" }
        );
    }
    let _ = write!(
        s,
        "</select></label>{}<label data-show-when=\"upstream=custom\">Custom upstreams, one per line \
         (1.2.3.4:53, tls://1.2.3.4:853#name, https://host/dns-query#ip)\
         <textarea name=\"custom_upstreams\">{}</textarea></label>{}</fieldset>",
        field_error("protocol", e("protocol").or(e("upstream"))),
        esc(&input.custom_upstreams.join("\n")),
        field_error("custom_upstreams", e("custom_upstreams").or(e("upstreams")))
    );
    s.push_str("<fieldset><legend>3. What to block</legend>");
    for (id, label, _) in BLOCKLIST_PRESETS {
        let on = if input.password.is_empty() {
            *id == "stevenblack"
        } else {
            input.blocklists.iter().any(|b| b == id)
        };
        let _ = write!(
            s,
            "<label class=\"check\"><input type=\"checkbox\" name=\"list_{id}\" id=\"list-{id}\"{}> {}</label>",
            if on { " checked" } else { "" },
            esc(label)
        );
    }
    s.push_str(&field_error("blocklists", e("blocklists")));
    s.push_str("<p class=\"muted\">Lists are downloaded in the background; you can change them later on the Lists page.</p></fieldset>");
    if st.backend.config().web.appliance {
        let n = input.network.clone().unwrap_or_default();
        let _ = write!(
            s,
            "<fieldset><legend>4. Network and clock</legend>\
             <label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"dhcp\"{}> Automatic (DHCP) — reserve the address in your router</label>\
             <label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"static\"{}> Fixed address</label>{}\
             <div data-show-when=\"mode=static\" class=\"stack\">\
             <label>IPv4 address/prefix<input type=\"text\" name=\"address\" value=\"{}\" placeholder=\"192.168.1.2/24\"></label>{}\
             <label>Gateway<input type=\"text\" name=\"gateway\" value=\"{}\" placeholder=\"192.168.1.1\"></label>{}\
             <label>IPv6 address/prefix (optional)<input type=\"text\" name=\"address6\" value=\"{}\"></label>{}\
             <label>IPv6 gateway (optional)<input type=\"text\" name=\"gateway6\" value=\"{}\"></label>{}</div>\
             <label>Time zone<input type=\"text\" name=\"timezone\" value=\"{}\" placeholder=\"Europe/Berlin\"></label>{}</fieldset>",
            if n.mode != "static" { " checked" } else { "" },
            if n.mode == "static" { " checked" } else { "" },
            field_error("mode", e("mode")),
            esc(&n.address),
            field_error("address", e("address")),
            esc(&n.gateway),
            field_error("gateway", e("gateway")),
            esc(&n.address6),
            field_error("address6", e("address6")),
            esc(&n.gateway6),
            field_error("gateway6", e("gateway6")),
            esc(&n.timezone),
            field_error("timezone", e("timezone")),
        );
    }
    let d = input
        .dhcp
        .clone()
        .unwrap_or_else(|| dhcp_proposal(&st.backend.config()));
    let _ = write!(
        s,
        "<fieldset id=\"setup-dhcp\"><legend>My router can't change DNS</legend>\
         <label class=\"check\"><input type=\"checkbox\" name=\"dhcp_enabled\" id=\"dhcp_enabled\"{}> Let this box hand out addresses (DHCP)</label>\
         <p class=\"muted\">Tick this only if your router has no setting for the DNS server it hands out: the box then gives your devices their addresses itself, and you switch off the router's DHCP server.</p>\
         <div data-show-when=\"dhcp_enabled=on\" class=\"stack\">{}</div></fieldset>",
        if d.enabled { " checked" } else { "" },
        dhcp_form::fields("dhcp_", &d, err),
    );
    s.push_str("<button id=\"finish\">Finish setup</button></form>");
    s.push_str("<h2>Replacing a box?</h2><p class=\"muted\">Restore the backup you downloaded from the old one's System page: its settings, admin password and API tokens come back, and you log in with the old password.</p>\
        <form data-upload=\"/api/v1/setup/restore\" data-done=\"/login\" class=\"row\" id=\"setup-restore\">\
        <label>Backup file<input type=\"file\" name=\"file\" accept=\".toml,text/plain\"></label>");
    s.push_str(&secret_field(gate.secret_needed, None));
    s.push_str("<button class=\"sec\">Restore</button>");
    s.push_str(&field_error("file", None));
    s.push_str("<span class=\"status\"></span></form>");
    s
}

/// The setup secret's field, when the boot partition holds one.
fn secret_field(needed: bool, err: Option<&str>) -> String {
    if !needed {
        return String::new();
    }
    format!(
        "<label>Setup secret (from setup-secret.txt on the card)<input type=\"password\" name=\"setup_secret\" autocomplete=\"off\" required></label>{}",
        field_error("setup_secret", err)
    )
}

async fn setup_page(
    axum::extract::State(st): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    if st.auth.password_is_set() {
        return Redirect::to("/login").into_response();
    }
    with_pre_cookie(
        &headers,
        |t| {
            page(
                "Set up glory-hole",
                "",
                None,
                &setup_body(&st, t, &SetupIn::default(), None),
            )
        },
        StatusCode::OK,
    )
}

fn setup_from_form(form: &[(String, String)]) -> SetupIn {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let network = Network {
        mode: get("mode"),
        address: get("address").trim().to_string(),
        gateway: get("gateway").trim().to_string(),
        address6: get("address6").trim().to_string(),
        gateway6: get("gateway6").trim().to_string(),
        timezone: get("timezone").trim().to_string(),
    };
    SetupIn {
        password: get("password"),
        upstream: get("upstream"),
        protocol: get("protocol"),
        custom_upstreams: get("custom_upstreams")
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        blocklists: form
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("list_")
                    .filter(|_| v == "on")
                    .map(String::from)
            })
            .collect(),
        network: Some(network),
        setup_secret: get("setup_secret"),
        dhcp: Some(DhcpIn {
            enabled: get("dhcp_enabled") == "on",
            interface: get("dhcp_interface"),
            range_first: get("dhcp_range_first"),
            range_last: get("dhcp_range_last"),
            netmask: get("dhcp_netmask"),
            gateway: get("dhcp_gateway"),
            lease_time: get("dhcp_lease_time"),
            domain: get("dhcp_domain"),
        }),
    }
}

async fn setup_form(
    axum::extract::State(st): axum::extract::State<State>,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if st.auth.password_is_set() {
        return Redirect::to("/login").into_response();
    }
    let sent = form
        .iter()
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.as_str());
    let input = setup_from_form(&form);
    let result = if pre_csrf_ok(&headers, sent) {
        do_setup(&st, peer(&ci), &input).await
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "The form expired; try again.",
        ))
    };
    match result {
        Ok(()) => {
            let (id, _) = st.auth.new_session();
            let mut r = Redirect::to("/setup/done").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&id));
            r
        }
        Err(e) => {
            let status = e.status;
            with_pre_cookie(
                &headers,
                |t| {
                    page(
                        "Set up glory-hole",
                        "",
                        None,
                        &setup_body(&st, t, &input, Some(&e)),
                    )
                },
                status,
            )
        }
    }
}

async fn setup_done(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
    ci: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.backend.config();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let local_ip = ci.map(|c| c.0.0.local.ip().to_string());
    let net = Network::load(&st.backend.data_dir());
    let box_ip = if cfg.web.appliance && net.mode == "static" {
        net.address.split('/').next().unwrap_or("").to_string()
    } else {
        local_ip.unwrap_or_else(|| guard::host_name(host).to_string())
    };
    let dns: Vec<String> = cfg.dns.listen.iter().map(|a| a.to_string()).collect();
    let body = format!(
        "<div class=\"card\"><p class=\"ok\">Setup is finished. The box is at <strong class=\"mono\" id=\"box-address\">{ip}</strong>.</p>\
         <h2>Point your network at it</h2><ol>\
         <li>Open your router's admin page (often <span class=\"mono\">http://192.168.1.1</span> or <span class=\"mono\">http://192.168.0.1</span>).</li>\
         <li>Find the <strong>DHCP</strong> or <strong>LAN</strong> settings and the field called <em>DNS server</em>.</li>\
         <li>Enter <strong class=\"mono\">{ip}</strong> as the only DNS server and save.</li>\
         <li>Reconnect a phone or laptop to Wi-Fi (or wait for its lease to renew) and open a few sites; their queries appear on the dashboard.</li></ol>\
         <p class=\"muted\">DNS listens on {dns}. Give the box a fixed address in the router (DHCP reservation) so it keeps {ip}.</p>\
         <p><a class=\"btn\" href=\"/\">Go to the dashboard</a></p></div>",
        ip = esc(&box_ip),
        dns = esc(&dns.join(", "))
    );
    html(page("All set", "", Some(csrf(&p)), &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for UpstreamPreset { id, .. } in UPSTREAM_PRESETS {
            for proto in ["plain", "dot", "doh"] {
                assert!(!upstreams(id, proto, &[]).unwrap().is_empty());
            }
        }
        assert_eq!(
            upstreams("quad9", "carrier-pigeon", &[]).unwrap_err().0,
            "protocol"
        );
        assert_eq!(
            upstreams("custom", "plain", &["nonsense".into()])
                .unwrap_err()
                .0,
            "custom_upstreams"
        );
    }

    #[test]
    fn setup_form_fields_become_choices() {
        let form: Vec<(String, String)> = [
            ("password", "hunter22hunter"),
            ("upstream", "custom"),
            ("protocol", "plain"),
            (
                "custom_upstreams",
                "192.168.1.1:53\r\n\r\n tls://1.1.1.1:853#cloudflare-dns.com ",
            ),
            ("list_stevenblack", "on"),
            ("list_oisd-small", "on"),
            ("mode", "static"),
            ("address", " 192.168.1.2/24"),
            ("gateway", "192.168.1.1"),
            ("timezone", "Europe/Berlin"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let s = setup_from_form(&form);
        assert_eq!(s.custom_upstreams.len(), 2);
        assert_eq!(s.blocklists, vec!["stevenblack", "oisd-small"]);
        assert_eq!(s.network.as_ref().unwrap().address, "192.168.1.2/24");
        upstreams(&s.upstream, &s.protocol, &s.custom_upstreams).unwrap();
    }
}
