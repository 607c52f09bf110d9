//! The HTML pages, rendered on the server from the same data the JSON API
//! returns. Forms that change something are sent by `assets/app.js` to the
//! API; login and setup are plain forms that work without JavaScript.

use super::api::{
    self, ApiError, LogParams, SetupIn, do_login, do_setup, pre_cookie, pre_csrf_ok, session_cookie,
};
use super::guard::{self, PRE_COOKIE, Principal};
use super::html::{bytes, duration, esc, page, time};
use super::scope;
use super::setup::{BLOCKLIST_PRESETS, Network, UPSTREAM_PRESETS};
use super::{Conn, State};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", post(logout_form))
        .route("/setup", get(setup_page).post(setup_form))
        .route("/setup/done", get(setup_done))
        .route("/querylog", get(querylog))
        .route("/lists", get(lists))
        .route("/clients", get(clients))
        .route("/local", get(local))
        .route("/settings", get(settings))
        .route("/system", get(system))
}

type Ext = Extension<Principal>;

fn csrf(p: &Principal) -> &str {
    match p {
        Principal::Session { csrf, .. } => csrf,
        Principal::Token => "",
    }
}

fn html(s: String) -> Response {
    Html(s).into_response()
}

/// An element the page's JS fills with a field's error message.
fn field_error(name: &str, msg: Option<&str>) -> String {
    format!(
        "<span class=\"field-error\" data-error-for=\"{name}\">{}</span>",
        esc(msg.unwrap_or(""))
    )
}

fn with_pre_cookie(
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> String,
    status: StatusCode,
) -> Response {
    let token = guard::cookie(headers, PRE_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| super::auth::random_hex(16));
    let mut resp = (status, Html(render(&token))).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, pre_cookie(&token));
    resp
}

// ---- login, logout ----

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

// ---- first-boot setup ----

fn setup_body(st: &State, token: &str, input: &SetupIn, err: Option<&ApiError>) -> String {
    let e = |f: &str| {
        err.filter(|e| e.field.as_deref() == Some(f))
            .map(|e| e.error.as_str())
    };
    let mut s = String::new();
    s.push_str("<p>Welcome. Three choices and your box starts blocking ads for every device that uses it. DNS already answers with safe defaults.</p>");
    if let Some(er) = err.filter(|e| e.field.is_none()) {
        let _ = write!(s, "<p class=\"err\">{}</p>", esc(&er.error));
    }
    let _ = write!(
        s,
        "<form method=\"post\" action=\"/setup\" class=\"stack\" id=\"setup\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <fieldset><legend>1. Admin password</legend>\
         <label>Password (at least {} characters)<input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"new-password\" required></label>{}</fieldset>",
        esc(token),
        super::auth::MIN_PASSWORD_LEN,
        field_error("password", e("password"))
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
    s.push_str("<button id=\"finish\">Finish setup</button></form>");
    s.push_str("<h2>Replacing a box?</h2><p class=\"muted\">Restore the backup you downloaded from the old one's System page: its settings, admin password and API tokens come back, and you log in with the old password.</p>\
        <form data-upload=\"/api/v1/setup/restore\" data-done=\"/login\" class=\"row\" id=\"setup-restore\">\
        <label>Backup file<input type=\"file\" name=\"file\" accept=\".toml,text/plain\"></label><button class=\"sec\">Restore</button>");
    s.push_str(&field_error("file", None));
    s.push_str("<span class=\"status\"></span></form>");
    s
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
    }
}

async fn setup_form(
    axum::extract::State(st): axum::extract::State<State>,
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
        do_setup(&st, &input).await
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

// ---- dashboard ----

fn card(label: &str, value: &str, id: &str) -> String {
    format!(
        "<div class=\"card\" id=\"{id}\"><div class=\"n\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    )
}

fn top_table(title: &str, id: &str, items: &[super::backend::TopItem]) -> String {
    top_table_linked(title, id, items, None)
}

/// With `link`, each name links to the query log filtered by it.
fn top_table_linked(
    title: &str,
    id: &str,
    items: &[super::backend::TopItem],
    link: Option<&str>,
) -> String {
    let mut s = format!(
        "<div><h2>{}</h2><div class=\"scroll\"><table id=\"{id}\"><tbody>",
        esc(title)
    );
    if items.is_empty() {
        s.push_str("<tr><td class=\"muted\">Nothing yet</td></tr>");
    }
    for it in items {
        let name = match link {
            Some(param) => format!(
                "<a href=\"/querylog?{param}={}\">{}</a>",
                esc(&urlencode(&it.name)),
                esc(&it.name)
            ),
            None => esc(&it.name),
        };
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{name}</td><td class=\"num\">{}</td></tr>",
            it.count
        );
    }
    s.push_str("</tbody></table></div></div>");
    s
}

fn chart(buckets: &[super::backend::Bucket]) -> String {
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

async fn dashboard(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
    Query(q): Query<api::RangeIn>,
) -> Response {
    let data = match api::blocking(&st, move |st| api::stats_data(st, q.range.as_deref())).await {
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
    s.push_str("</tbody></table></div></div></div>");
    html(page("Dashboard", "/", Some(csrf(&p)), &s))
}

// ---- query log ----

fn status_tag(status: &str, reason: Option<&str>) -> String {
    let title = reason
        .map(|r| format!(" title=\"{}\"", esc(r)))
        .unwrap_or_default();
    format!("<span class=\"tag {0}\"{title}>{0}</span>", esc(status))
}

async fn querylog(
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
    for st_ in api::STATUSES {
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
        Ok(q) => api::blocking(&st, move |st| st.backend.search(&q)).await,
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

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- lists ----

/// One checkbox per group; ticked ones are sent as the `name` array.
fn group_boxes(name: &str, all: &[String], chosen: &[String]) -> String {
    let mut s = String::from("<span class=\"boxes\">");
    for g in all {
        let on = if chosen.contains(g) { " checked" } else { "" };
        let _ = write!(
            s,
            "<label class=\"check\"><input type=\"checkbox\" name=\"{name}\" value=\"{g}\" data-set{on}> {g}</label>",
            g = esc(g)
        );
    }
    s.push_str("</span>");
    s
}

fn groups_text(groups: &[String], none: &str) -> String {
    if groups.is_empty() {
        format!("<span class=\"muted\">{none}</span>")
    } else {
        esc(&groups.join(", "))
    }
}

fn rule_section(title: &str, list: &str, entries: &[scope::RuleEntry], all: &[String]) -> String {
    let mut s = format!(
        "<div><h2>{}</h2><div class=\"scroll\"><table id=\"{list}-rules\"><thead><tr><th>Entry</th><th>Applies to</th><th></th></tr></thead><tbody>",
        esc(title)
    );
    let mine: Vec<&scope::RuleEntry> = entries.iter().filter(|e| e.list == list).collect();
    if mine.is_empty() {
        s.push_str("<tr><td colspan=\"3\" class=\"muted\">None</td></tr>");
    }
    for e in mine {
        let body = serde_json::json!({"list": list, "entry": e.entry}).to_string();
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{entry}</td><td>{groups}<details><summary>change</summary>\
             <form data-api=\"/api/v1/rules\" class=\"row\">\
             <input type=\"hidden\" name=\"list\" value=\"{list}\"><input type=\"hidden\" name=\"entry\" value=\"{entry}\">\
             {boxes}<button class=\"small\">Save</button>{err}<span class=\"status\"></span></form></details></td>\
             <td class=\"num\"><button class=\"small sec\" data-action=\"DELETE /api/v1/rules\" data-body=\"{body}\">remove</button></td></tr>",
            entry = esc(&e.entry),
            groups = groups_text(&e.groups, "every client"),
            boxes = group_boxes("groups", all, &e.groups),
            err = field_error("groups", None),
            body = esc(&body)
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><form data-api=\"/api/v1/rules\" class=\"row\" id=\"add-{list}\">\
         <input type=\"hidden\" name=\"list\" value=\"{list}\">\
         <label>Domain, *.domain or /regex/<input type=\"text\" name=\"entry\" required></label>\
         <button>Add</button>{}<span class=\"status\"></span>\
         <span class=\"wide\">For {}<span class=\"muted\"> (none ticked: every client)</span></span>{}</form></div>",
        field_error("entry", None),
        group_boxes("groups", all, &[]),
        field_error("groups", None)
    );
    s
}

async fn lists(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let all_groups = scope::group_names(&cfg);
    let mut s = String::new();
    s.push_str("<h2>Is this domain blocked?</h2>\
        <form data-api=\"/api/v1/explain\" data-method=\"GET\" data-done=\"show\" class=\"row\" id=\"explain\">\
        <label>Domain<input type=\"text\" name=\"domain\" required placeholder=\"ads.example.com\"></label>\
        <label>For client (optional; its groups decide)<input type=\"text\" name=\"client\" placeholder=\"192.168.1.50\"></label>\
        <button>Check</button><span class=\"status\"></span><div class=\"result\"></div></form>");
    s.push_str("<h2>Blocklists</h2><div class=\"scroll\"><table id=\"lists\"><thead><tr><th>Name</th><th class=\"hide-sm\">Source</th><th class=\"num\">Domains</th><th>Updated</th><th>Groups</th><th></th></tr></thead><tbody>");
    let all = st.backend.lists();
    if all.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"muted\">No lists yet. Add one below.</td></tr>");
    }
    for l in &all {
        let groups = cfg
            .filter
            .lists
            .iter()
            .find(|c| c.name == l.name)
            .map(scope::list_groups)
            .unwrap_or_default();
        let toggle = serde_json::json!({"enabled": !l.enabled}).to_string();
        let _ = write!(
            s,
            "<tr><td>{name}{err}</td><td class=\"mono hide-sm\">{src}</td><td class=\"num\">{n}</td><td>{upd}</td>\
             <td>{groups_text}<details><summary>change</summary>\
             <form data-api=\"/api/v1/lists/{name_url}\" data-method=\"PATCH\" class=\"row\">{boxes}\
             <button class=\"small\">Save</button>{gerr}<span class=\"status\"></span></form></details></td>\
             <td><button class=\"small sec\" data-action=\"PATCH /api/v1/lists/{name_url}\" data-body=\"{toggle}\">{label}</button> \
             <button class=\"small sec\" data-action=\"DELETE /api/v1/lists/{name_url}\" data-confirm=\"Remove list {name}?\">remove</button></td></tr>",
            name = esc(&l.name),
            name_url = esc(&l.name),
            err = l
                .error
                .as_ref()
                .map(|e| format!("<br><span class=\"err\">{}</span>", esc(e)))
                .unwrap_or_default(),
            src = esc(&l.source),
            n = l.domains.map(|d| d.to_string()).unwrap_or("–".into()),
            upd = l
                .updated_ms
                .map(|m| format!("<time data-ms=\"{m}\">{}</time>", time(m)))
                .unwrap_or("never".into()),
            groups_text = esc(&groups.join(", ")),
            boxes = group_boxes("groups", &all_groups, &groups),
            gerr = field_error("groups", None),
            toggle = esc(&toggle),
            label = if l.enabled { "disable" } else { "enable" },
        );
    }
    s.push_str("</tbody></table></div>");
    let _ = write!(
        s,
        "<p><button class=\"sec\" data-action=\"POST /api/v1/lists/update\" data-done=\"none\">Update all lists now</button></p>\
         <form data-api=\"/api/v1/lists\" class=\"row\" id=\"add-list\">\
         <label>Name<input type=\"text\" name=\"name\" required></label>{}\
         <label>URL<input type=\"text\" name=\"url\" placeholder=\"https://…\" required></label>{}\
         <button>Add list</button><span class=\"status\"></span>\
         <span class=\"wide\">For {}<span class=\"muted\"> (none ticked: the default group)</span></span>{}</form>",
        field_error("name", None),
        field_error("url", None),
        group_boxes(
            "groups",
            &all_groups,
            &[crate::filter::groups::DEFAULT_GROUP.to_string()]
        ),
        field_error("groups", None)
    );
    let entries = scope::entries(&cfg);
    s.push_str("<div class=\"two\">");
    s.push_str(&rule_section(
        "Always allow",
        "allow",
        &entries,
        &all_groups,
    ));
    s.push_str(&rule_section("Always block", "deny", &entries, &all_groups));
    s.push_str("</div>");
    html(page("Lists", "/lists", Some(csrf(&p)), &s))
}

// ---- clients and groups ----

/// The form that adds a group or changes one (`g` filled in).
fn group_form(id: &str, g: Option<&api::GroupIo>, lists: &[String]) -> String {
    let name = g.map(|g| g.name.as_str()).unwrap_or("");
    let is_default = name == crate::filter::groups::DEFAULT_GROUP;
    let lines = |v: Option<&Vec<String>>| esc(&v.map(|v| v.join("\n")).unwrap_or_default());
    let name_field = match g {
        Some(_) => format!(
            "<input type=\"hidden\" name=\"name\" value=\"{}\">",
            esc(name)
        ),
        None => format!(
            "<label>Name<input type=\"text\" name=\"name\" required></label>{}",
            field_error("name", None)
        ),
    };
    let clients_field = if is_default {
        "<p class=\"muted\">Every client not in another group.</p>".to_string()
    } else {
        format!(
            "<label>Clients: IP, CIDR or MAC, one per line<textarea name=\"clients\" data-lines>{}</textarea></label>{}",
            lines(g.and_then(|g| g.clients.as_ref())),
            field_error("clients", None)
        )
    };
    let chosen = g.and_then(|g| g.lists.clone()).unwrap_or_default();
    let list_boxes = if lists.is_empty() {
        "<span class=\"muted\">No blocklists yet.</span>".to_string()
    } else {
        group_boxes("lists", lists, &chosen)
    };
    format!(
        "<form data-api=\"/api/v1/groups\" class=\"stack\" id=\"{id}\">{name_field}{clients_field}\
         <fieldset><legend>Blocklists for this group</legend>{list_boxes}{}</fieldset>\
         <label>Always allow for this group (domain, *.domain or /regex/, one per line)<textarea name=\"allow\" data-lines>{}</textarea></label>{}\
         <label>Always block for this group<textarea name=\"deny\" data-lines>{}</textarea></label>{}\
         <button>Save group</button><span class=\"status\"></span></form>",
        field_error("lists", None),
        lines(g.and_then(|g| g.allow.as_ref())),
        field_error("allow", None),
        lines(g.and_then(|g| g.deny.as_ref())),
        field_error("deny", None),
    )
}

async fn clients(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let mut s = String::new();
    let range = api::parse_range(Some("24h")).map(|r| r.1);
    let top = match range {
        Ok(r) => {
            api::blocking(&st, move |st| {
                st.backend.top(super::backend::TopKind::Clients, r, 50)
            })
            .await
        }
        Err(_) => Vec::new(),
    };
    s.push_str(&top_table(
        "Clients in the last 24 hours",
        "client-list",
        &top,
    ));
    s.push_str("<h2>Groups</h2><p class=\"muted\">Clients in a group get the blocklists and the allow and block entries chosen for that group; everyone else is in the default group. Entries on the Lists page marked “every client” apply to all groups.</p>\
                <div class=\"scroll\"><table id=\"groups\"><thead><tr><th>Group</th><th>Clients</th><th>Blocklists</th><th>Own entries</th><th></th></tr></thead><tbody>");
    let lists: Vec<String> = cfg.filter.lists.iter().map(|l| l.name.clone()).collect();
    for (i, g) in api::groups_of(&cfg).iter().enumerate() {
        let is_default = g.name == crate::filter::groups::DEFAULT_GROUP;
        let clients = if is_default {
            "<span class=\"muted\">everyone else</span>".to_string()
        } else {
            format!(
                "<span class=\"mono\">{}</span>",
                esc(&g.clients.as_deref().unwrap_or(&[]).join(", "))
            )
        };
        let mut own = Vec::new();
        for (word, v) in [("allow", &g.allow), ("block", &g.deny)] {
            for e in v.iter().flatten() {
                own.push(format!("{word} <span class=\"mono\">{}</span>", esc(e)));
            }
        }
        let remove = if is_default {
            String::new()
        } else {
            format!(
                "<button class=\"small sec\" data-action=\"DELETE /api/v1/groups/{n}\" data-confirm=\"Remove group {n}?\">remove</button>",
                n = esc(&g.name)
            )
        };
        let _ = write!(
            s,
            "<tr data-group=\"{n}\"><td>{n}</td><td>{clients}</td><td>{lists}</td><td>{own}</td><td>{remove}</td></tr>\
             <tr class=\"edit\"><td colspan=\"5\"><details><summary>change group {n}</summary>{form}</details></td></tr>",
            n = esc(&g.name),
            lists = groups_text(g.lists.as_deref().unwrap_or(&[]), "none"),
            own = if own.is_empty() {
                "<span class=\"muted\">none</span>".to_string()
            } else {
                own.join("<br>")
            },
            form = group_form(&format!("group-{i}"), Some(g), &lists),
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><h2>Add a group</h2>{}",
        group_form("add-group", None, &lists)
    );
    html(page("Clients and groups", "/clients", Some(csrf(&p)), &s))
}

// ---- local records and forwarding ----

async fn local(
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

// ---- settings ----

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

async fn settings(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let v = api::settings_of(&cfg);
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
            "<tr><td>{}</td><td class=\"mono\">gh_{}_…</td><td><time data-ms=\"{}\">{}</time></td><td><button class=\"small sec\" data-action=\"DELETE /api/v1/tokens/{}\" data-confirm=\"Revoke this token?\">revoke</button></td></tr>",
            esc(&t.name),
            esc(&t.id),
            t.created_ms,
            time(t.created_ms),
            esc(&t.id)
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><form data-api=\"/api/v1/tokens\" data-done=\"show\" class=\"row\" id=\"add-token\">\
         <label>Name<input type=\"text\" name=\"name\" placeholder=\"home-assistant\" required></label>\
         <button>Create token</button>{}<span class=\"status\"></span><div class=\"result\"></div></form>",
        field_error("name", None)
    );
    html(page("Settings", "/settings", Some(csrf(&p)), &s))
}

// ---- system ----

async fn system(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let sys = st.sys.sample(&st.backend.data_dir());
    let mut s = String::from("<div class=\"grid\">");
    s.push_str(&card("Firmware", &st.backend.firmware_version(), "version"));
    s.push_str(&card("Running for", &duration(sys.uptime_secs), "uptime"));
    s.push_str(&card(
        "Memory (glory-hole)",
        &sys.process_rss_bytes.map(bytes).unwrap_or("–".into()),
        "memory",
    ));
    s.push_str(&card(
        "Memory free",
        &sys.mem_available_bytes.map(bytes).unwrap_or("–".into()),
        "memfree",
    ));
    s.push_str(&card(
        "Storage free",
        &sys.flash_free_bytes.map(bytes).unwrap_or("–".into()),
        "flash",
    ));
    s.push_str("</div>");
    s.push_str("<h2>Backup</h2><p>The whole configuration as one file, with the admin password and the API tokens (as hashes, never in clear): keep it private. Restored on a new card, it lets you log in as before. <a class=\"btn\" id=\"backup\" href=\"/api/v1/backup\" download>Download backup</a></p>\
        <form data-upload=\"/api/v1/restore\" data-done=\"show\" class=\"row\" id=\"restore\" data-confirm=\"Replace the current configuration with this file?\">\
        <label>Restore a backup<input type=\"file\" name=\"file\" accept=\".toml,text/plain\"></label><button>Restore</button><span class=\"status\"></span></form>");
    s.push_str("<h2>Import from Pi-hole</h2><p class=\"muted\">A Teleporter archive (Pi-hole v5 .tar.gz or v6 .zip): adlists, allow and deny domains and regexes, local DNS and CNAME records, upstreams.</p>\
        <form data-upload=\"/api/v1/import/teleporter\" data-done=\"show\" class=\"row\" id=\"teleporter\">\
        <label>Teleporter file<input type=\"file\" name=\"file\" accept=\".zip,.gz,.tgz\"></label><button>Import</button><span class=\"status\"></span></form>");
    if cfg.web.appliance {
        let n = Network::load(&st.backend.data_dir());
        let _ = write!(
            s,
            "<h2>Network and clock</h2><form data-api=\"/api/v1/network\" data-method=\"PUT\" data-done=\"show\" class=\"stack\" id=\"network\">\
             <label>Mode<select name=\"mode\"><option{}>dhcp</option><option{}>static</option></select></label>{}\
             <label>IPv4 address/prefix<input type=\"text\" name=\"address\" value=\"{}\"></label>{}\
             <label>Gateway<input type=\"text\" name=\"gateway\" value=\"{}\"></label>{}\
             <label>IPv6 address/prefix<input type=\"text\" name=\"address6\" value=\"{}\"></label>{}\
             <label>IPv6 gateway<input type=\"text\" name=\"gateway6\" value=\"{}\"></label>{}\
             <label>Time zone<input type=\"text\" name=\"timezone\" value=\"{}\"></label>{}\
             <button>Save (applies at next boot)</button><span class=\"status\"></span></form>\
             <h2>Power</h2><p><button class=\"sec\" data-action=\"POST /api/v1/system/reboot\" data-confirm=\"Reboot the box now? DNS stops for about a minute.\" data-done=\"none\">Reboot</button> \
             <button class=\"danger\" data-action=\"POST /api/v1/system/factory-reset\" data-confirm=\"Erase every setting and the password?\" data-done=\"none\">Factory reset</button></p>",
            if n.mode == "dhcp" { " selected" } else { "" },
            if n.mode == "static" { " selected" } else { "" },
            field_error("mode", None),
            esc(&n.address),
            field_error("address", None),
            esc(&n.gateway),
            field_error("gateway", None),
            esc(&n.address6),
            field_error("address6", None),
            esc(&n.gateway6),
            field_error("gateway6", None),
            esc(&n.timezone),
            field_error("timezone", None),
        );
    }
    s.push_str("<h2>Firmware update</h2><p class=\"muted\" id=\"firmware\">Uploading a new firmware image from this page is coming. For now, update by flashing a new card image; your settings are kept in the backup above.</p>\
        <p><input type=\"file\" disabled aria-label=\"firmware file (not available yet)\"> <button disabled>Upload firmware</button></p>");
    html(page("System", "/system", Some(csrf(&p)), &s))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        crate::web::setup::upstreams(&s.upstream, &s.protocol, &s.custom_upstreams).unwrap();
    }
}
