//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, written by
//! hand from one table so it cannot drift far from the features' routes: a
//! test checks that every route in the table answers.
//! Not for: serving the routes it describes (each feature module does).

use super::State;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub fn routes() -> Router<State> {
    Router::new().route("/api/v1/openapi.json", get(openapi))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_string(),
    )
        .into_response()
}

/// (method, path, summary, request body schema, public)
pub const OPERATIONS: &[(&str, &str, &str, Option<&str>, bool)] = &[
    ("get", "/health", "Liveness: status and version", None, true),
    (
        "get",
        "/api/v1/health",
        "Liveness: status and version",
        None,
        true,
    ),
    ("get", "/api/v1/openapi.json", "This document", None, false),
    (
        "post",
        "/api/v1/login",
        "Log in; sets the session cookie (needs the gh_pre cookie and X-CSRF-Token from GET /api/v1/setup)",
        Some("Login"),
        true,
    ),
    ("post", "/api/v1/logout", "End the session", None, false),
    (
        "get",
        "/api/v1/setup",
        "Whether first-boot setup is needed; presets; sets the gh_pre CSRF cookie",
        None,
        true,
    ),
    (
        "post",
        "/api/v1/setup",
        "Finish first-boot setup (only while no admin password exists, within web.setup_window after start, from a private or link-local address, with setup_secret when the card holds one)",
        Some("Setup"),
        true,
    ),
    (
        "post",
        "/api/v1/setup/restore",
        "First boot on a new card: restore a backup holding an admin password instead of setting up (only while no admin password exists; needs the gh_pre cookie and X-CSRF-Token; no session: log in with the backup's password)",
        Some("Bytes"),
        true,
    ),
    (
        "get",
        "/api/v1/stats",
        "Dashboard: totals, chart buckets, top lists, cache, upstreams, system (query: range=24h)",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/querylog",
        "Query-log search, newest first (query: domain, client, status, qtype, from_ms, to_ms, before_ms, after_ms, cursor, limit); `next_cursor` in the answer fetches the older page, null when there is none",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/querylog/export",
        "Every stored query the log search's filters select, oldest first, streamed as a download (query: format=csv|jsonl, domain, client, status, qtype, from_ms, to_ms, before_ms, after_ms; no page limit). Columns: time (UTC, `YYYY-MM-DD HH:MM:SS.mmm`), time_ms, client, domain, type, rcode, status, upstream, latency_us, rule, client_name (the device name, when known)",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/explain",
        "Why a domain is blocked or allowed (query: domain, client)",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/rules",
        "Allow and deny entries: `allow`/`deny` hold those for every client, `entries` every entry with the groups it applies to (empty: every client)",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/rules",
        "Add an allow or deny entry, or change the groups it applies to (`groups` empty or left out: every client); takes it off the other list for those clients",
        Some("Rule"),
        false,
    ),
    (
        "delete",
        "/api/v1/rules",
        "Remove an allow or deny entry (with `groups`: only for those groups)",
        Some("Rule"),
        false,
    ),
    (
        "get",
        "/api/v1/lists",
        "Blocklists with domain counts, last update and errors",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/lists",
        "Add a blocklist",
        Some("List"),
        false,
    ),
    (
        "post",
        "/api/v1/lists/update",
        "Download every list now",
        None,
        false,
    ),
    (
        "patch",
        "/api/v1/lists/{name}",
        "Enable or disable a list, or choose the groups it applies to (`groups` empty: the default group)",
        Some("ListPatch"),
        false,
    ),
    (
        "delete",
        "/api/v1/lists/{name}",
        "Remove a list",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/groups",
        "Client groups, `default` first, each with its clients, the blocklists that apply to it (`lists`) and its own allow/deny entries",
        None,
        false,
    ),
    (
        "put",
        "/api/v1/groups",
        "Replace the client groups; lists lose groups that are gone",
        Some("Groups"),
        false,
    ),
    (
        "post",
        "/api/v1/groups",
        "Add a group or change the one with that name (`lists`, `allow`, `deny` left out stay as they are)",
        Some("Group"),
        false,
    ),
    (
        "delete",
        "/api/v1/groups/{name}",
        "Remove a group",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/dhcp/leases",
        "The DHCP server's status and the devices it knows",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/dhcp/settings",
        "The [dhcp] section as the Settings page edits it",
        None,
        false,
    ),
    (
        "put",
        "/api/v1/dhcp/settings",
        "Change the DHCP server's settings (static leases are kept)",
        Some("DhcpSettings"),
        false,
    ),
    (
        "get",
        "/api/v1/local/records",
        "Local DNS records",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/local/records",
        "Add a local record",
        Some("Record"),
        false,
    ),
    (
        "delete",
        "/api/v1/local/records",
        "Remove a local record",
        Some("Record"),
        false,
    ),
    (
        "get",
        "/api/v1/forward",
        "Conditional forwarding zones",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/forward",
        "Add a forwarding zone",
        Some("Forward"),
        false,
    ),
    (
        "delete",
        "/api/v1/forward",
        "Remove the zone with these domains",
        Some("Forward"),
        false,
    ),
    (
        "get",
        "/api/v1/settings",
        "Upstreams, cache, blocked response, query log, privacy",
        None,
        false,
    ),
    (
        "put",
        "/api/v1/settings",
        "Change settings (fields left out stay as they are)",
        Some("Settings"),
        false,
    ),
    (
        "post",
        "/api/v1/password",
        "Change the admin password",
        Some("Password"),
        false,
    ),
    (
        "get",
        "/api/v1/tokens",
        "API tokens (without secrets)",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/tokens",
        "Create an API token; the secret is in the answer only",
        Some("TokenName"),
        false,
    ),
    (
        "delete",
        "/api/v1/tokens/{id}",
        "Revoke an API token",
        None,
        false,
    ),
    ("get", "/api/v1/pause", "Blocking pause status", None, false),
    (
        "post",
        "/api/v1/pause",
        "Pause blocking for N minutes (or until resumed)",
        Some("Pause"),
        false,
    ),
    ("delete", "/api/v1/pause", "Resume blocking", None, false),
    (
        "get",
        "/api/v1/system",
        "Version, memory, CPU, temperature, flash, uptime",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/network",
        "Appliance network and time zone",
        None,
        false,
    ),
    (
        "put",
        "/api/v1/network",
        "Set appliance network and time zone (applies at next boot)",
        Some("Network"),
        false,
    ),
    (
        "get",
        "/api/v1/backup",
        "Download the whole configuration (TOML), with the admin password hash and API token hashes under [backup] (never the secrets themselves) and a checksum",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/restore",
        "Restore a backup (TOML body): the configuration, and the admin password and API tokens when the file has a [backup] section; a bad or cut-short file changes nothing",
        Some("Bytes"),
        false,
    ),
    (
        "post",
        "/api/v1/import/teleporter",
        "Import a Pi-hole Teleporter archive (.tar.gz or .zip body)",
        Some("Bytes"),
        false,
    ),
    (
        "post",
        "/api/v1/system/reboot",
        "Reboot (appliance only)",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/system/factory-reset",
        "Forget all settings and the password (appliance only)",
        None,
        false,
    ),
    (
        "get",
        "/api/v1/firmware",
        "Firmware slots (version, state), running slot, pending trial, last result with its reason, upload progress (503 off the board image)",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/firmware",
        "Upload a signed bundle (.ghb), streamed into the slot that is not running; answers version, signer, boards, slot; 422 names a refusal, 409 while another upload runs, 413 over the slots' size",
        Some("Bytes"),
        false,
    ),
    (
        "post",
        "/api/v1/firmware/activate",
        "Reboot into the uploaded slot for a one-shot trial boot (committed after its health check)",
        None,
        false,
    ),
    (
        "post",
        "/api/v1/firmware/rollback",
        "Boot the other slot from now on, if it holds a system that passed its health check; reboots",
        None,
        false,
    ),
    (
        "post",
        "/api/auth",
        "Pi-hole v6 API (Home Assistant): log in with the admin password or an API token as `password`; answers `session.sid` to send as `X-FTL-SID` (or `?sid=`) to the Pi-hole endpoints below",
        Some("Login"),
        true,
    ),
    (
        "delete",
        "/api/auth",
        "Pi-hole v6 API: end the session named by X-FTL-SID",
        None,
        false,
    ),
    (
        "get",
        "/api/stats/summary",
        "Pi-hole v6 API: queries, blocked, cached, forwarded, clients, blocked domains over the last 24 hours",
        None,
        false,
    ),
    (
        "get",
        "/api/stats/top_domains",
        "Pi-hole v6 API: top domains (`?blocked=true` for blocked ones, `count`)",
        None,
        false,
    ),
    (
        "get",
        "/api/stats/top_clients",
        "Pi-hole v6 API: top clients (`count`)",
        None,
        false,
    ),
    (
        "get",
        "/api/stats/upstreams",
        "Pi-hole v6 API: upstreams and their latency",
        None,
        false,
    ),
    (
        "get",
        "/api/info/version",
        "Pi-hole v6 API: the firmware version as core, web and ftl",
        None,
        false,
    ),
    (
        "get",
        "/api/dns/blocking",
        "Pi-hole v6 API: `blocking` enabled or disabled, `timer` seconds left",
        None,
        false,
    ),
    (
        "post",
        "/api/dns/blocking",
        "Pi-hole v6 API: pause (`blocking: false`, `timer` seconds rounded up to minutes, null: until resumed) or resume (`blocking: true`); admin",
        Some("PiholeBlocking"),
        false,
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics (off by default; API token only)",
        None,
        false,
    ),
];

fn schemas() -> Value {
    let s = |props: Value, req: &[&str]| json!({"type": "object", "properties": props, "required": req});
    let str_ = json!({"type": "string"});
    let strs = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "Login": s(json!({"password": str_}), &["password"]),
        "Setup": s(json!({
            "password": str_, "upstream": {"enum": ["cloudflare", "quad9", "google", "custom"]},
            "protocol": {"enum": ["plain", "dot", "doh"]}, "custom_upstreams": strs,
            "blocklists": strs, "network": {"$ref": "#/components/schemas/Network"},
            "setup_secret": {"type": "string", "description": "the card's setup secret, when it holds one (docs/flashing.md)"},
            "dhcp": {"$ref": "#/components/schemas/DhcpSettings"}
        }), &["password", "upstream", "protocol"]),
        "DhcpSettings": s(json!({
            "enabled": {"type": "boolean"}, "interface": str_, "range_first": str_, "range_last": str_,
            "netmask": str_, "gateway": str_,
            "lease_time": {"type": "string", "description": "like 12h; empty keeps the saved one"},
            "domain": {"type": "string", "description": "empty keeps the saved one"}
        }), &["enabled"]),
        "Rule": s(json!({"list": {"enum": ["allow", "deny"]}, "entry": {"type": "string", "description": "domain, *.domain or /regex/"}, "exact": {"type": "boolean", "description": "entry is a queried name matched exactly, never a pattern (the log's buttons)"}, "groups": {"type": "array", "items": str_, "description": "groups the entry applies to; empty or left out: every client"}}), &["list", "entry"]),
        "List": s(json!({"name": str_, "url": str_, "path": str_, "enabled": {"type": "boolean"}, "groups": strs}), &["name"]),
        "ListPatch": s(json!({"enabled": {"type": "boolean"}, "groups": {"type": "array", "items": str_, "description": "groups the list applies to; empty: the default group"}}), &[]),
        "Group": s(json!({"name": str_, "clients": {"type": "array", "items": str_, "description": "IP, CIDR or MAC addresses; none for `default`"}, "lists": {"type": "array", "items": str_, "description": "blocklists that apply to this group"}, "allow": {"type": "array", "items": str_, "description": "allow entries for this group only"}, "deny": {"type": "array", "items": str_, "description": "deny entries for this group only"}}), &["name"]),
        "Groups": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}},
        "Record": s(json!({"name": str_, "type": {"enum": ["A", "AAAA", "CNAME", "PTR", "TXT", "MX", "SRV"]}, "value": str_, "ttl": {"type": "integer"}}), &["name", "type", "value"]),
        "Forward": s(json!({"domains": strs, "upstreams": strs}), &["domains"]),
        "Settings": s(json!({
            "upstreams": strs, "cache_memory_mib": {"type": "integer"}, "blocked_response": str_,
            "blocked_ttl": {"type": "integer"}, "querylog_enabled": {"type": "boolean"},
            "retention_days": {"type": "integer"}, "flush_interval": str_,
            "anonymize_clients": {"type": "boolean"}, "hide_domains": {"type": "boolean"}
        }), &[]),
        "Password": s(json!({"current": str_, "new": str_}), &["current", "new"]),
        "TokenName": s(json!({"name": str_, "scope": {"enum": ["read", "admin"], "description": "read (default): GET requests only (stats, log, metrics); admin: everything"}}), &["name"]),
        "Pause": s(json!({"minutes": {"type": ["integer", "null"]}}), &[]),
        "PiholeBlocking": s(json!({"blocking": {"type": "boolean"}, "timer": {"type": ["number", "null"], "description": "seconds; rounded up to whole minutes"}}), &["blocking"]),
        "Network": s(json!({
            "mode": {"enum": ["dhcp", "static"]}, "address": str_, "gateway": str_,
            "address6": str_, "gateway6": str_, "timezone": str_
        }), &["mode"]),
        "Bytes": {"type": "string", "format": "binary"},
        "Error": s(json!({"error": str_, "field": str_}), &["error"]),
    })
}

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, body, public) in OPERATIONS {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "OK"},
                "401": {"description": "Not logged in", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "403": {"description": "CSRF or Origin check failed"},
                "422": {"description": "Invalid input; `field` names it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            }
        });
        if *public {
            op["security"] = json!([]);
        }
        if let Some(b) = body {
            let ct = if *b == "Bytes" {
                "application/octet-stream"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({"required": true, "content": {ct: {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        if path.contains('{') {
            let name = path.split('{').nth(1).unwrap().trim_end_matches('}');
            op["parameters"] = json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(method.to_string(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "glory-hole API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Everything the web UI does. Scripts authenticate with an API token \
    (Settings → API tokens) as `Authorization: Bearer <token>`. Browser sessions use the \
    `gh_session` cookie and must send the page's CSRF token as `X-CSRF-Token` on every change. \
    A token with scope `read` may only make GET requests (and not read the backup or the token list). \
    The `/api/auth`, `/api/stats/...`, `/api/info/version` and `/api/dns/blocking` routes are the part of \
    Pi-hole's v6 API that Home Assistant's Pi-hole integration uses (docs/integrations.md)."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "gh_session"}
            }
        }
    })
}
