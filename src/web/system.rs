//! The box itself: health, version and resources, the appliance's network
//! settings, backup and restore, Pi-hole Teleporter import, reboot and
//! factory reset (`/api/v1/system`, ... and the page at `/system`, which
//! shows the `firmware` section).
//! Not for: the backup file's format (see `backup`) or reading Teleporter
//! archives (see `teleporter`).

use super::State;
use super::guard::Principal;
use super::html::{bytes, card, duration, esc, field_error, html, page};
use super::http::{ApiError, ApiResult, Body, Ext, csrf, edit, ok, session_cookie};
use super::limits::{self, BACKUP_BYTES, TELEPORTER_BYTES};
use super::network::Network;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
        .route("/api/v1/system", get(system))
        .route("/api/v1/network", get(network).put(put_network))
        .route("/api/v1/backup", get(backup))
        .route(
            "/api/v1/restore",
            post(restore).layer(limits::upload(BACKUP_BYTES)),
        )
        .route(
            "/api/v1/import/teleporter",
            post(teleporter).layer(limits::upload(TELEPORTER_BYTES)),
        )
        .route("/api/v1/system/reboot", post(reboot))
        .route("/api/v1/system/factory-reset", post(factory_reset))
        .route("/system", get(system_page))
}

async fn health(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": st.backend.firmware_version(),
        "setup_needed": !st.auth.password_is_set(),
    }))
}

async fn system(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    let cfg = st.backend.config();
    Json(json!({
        "version": st.backend.firmware_version(),
        "appliance": cfg.web.appliance,
        "system": st.sys.sample(&st.backend.data_dir()),
        "assets_compressed_bytes": st.assets.compressed_total(),
    }))
}

fn appliance_only(st: &State) -> ApiResult<()> {
    if st.backend.config().web.appliance {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "only on the appliance ([web] appliance = true)",
        ))
    }
}

async fn network(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<Network>> {
    appliance_only(&st)?;
    Ok(Json(Network::load(&st.backend.data_dir())))
}

async fn put_network(
    axum::extract::State(st): axum::extract::State<State>,
    Body(n): Body<Network>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    n.validate()?;
    n.save(&st.backend.data_dir())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(ok("network settings saved; they apply at the next boot"))
}

async fn backup(axum::extract::State(st): axum::extract::State<State>) -> Response {
    let text = super::backup::write(
        &st.backend.config(),
        &st.auth.credentials(),
        crate::clock::now_ms(),
    );
    (
        [
            (header::CONTENT_TYPE, "application/toml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"glory-hole-backup.toml\"",
            ),
        ],
        text,
    )
        .into_response()
}

/// Restores a backup: the config, then the password and tokens it holds.
/// Everything is checked before anything changes. The data directory and
/// the appliance flag stay those of this box: a backup from another
/// machine must not move its state. Returns how many tokens came back,
/// None when the file held no credentials.
pub async fn restore_backup(st: &State, body: &[u8], at_setup: bool) -> ApiResult<Option<usize>> {
    let bad = |e: String| ApiError::field("file", format!("uploaded file: {e}"));
    let text = std::str::from_utf8(body).map_err(|_| bad("not a text (TOML) file".into()))?;
    let (mut cfg, creds) = super::backup::read(text).map_err(bad)?;
    if let Some(c) = &creds {
        super::auth::check_credentials(c).map_err(|e| bad(format!("[backup]: {e}")))?;
    }
    if at_setup && creds.as_ref().is_none_or(|c| c.password.is_none()) {
        return Err(bad(
            "it holds no admin password (a plain config file?): finish setup, then restore it on the System page".into(),
        ));
    }
    edit(st, |c| {
        cfg.data_dir = c.data_dir.clone();
        cfg.web.appliance = c.web.appliance;
        *c = cfg;
        Ok(())
    })
    .map_err(|e| match e.status {
        StatusCode::UNPROCESSABLE_ENTITY => bad(e.error),
        _ => e,
    })?;
    let Some(creds) = creds else {
        return Ok(None);
    };
    let tokens = creds.tokens.len();
    st.auth
        .restore(creds, at_setup)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    Ok(Some(tokens))
}

async fn restore(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Extension<Principal>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let _slot = limits::upload_slot(&st)?;
    let body = limits::read_body(body, BACKUP_BYTES).await?;
    let Some(tokens) = restore_backup(&st, &body, false).await? else {
        return Ok(
            ok("configuration restored (the file held no password or tokens)").into_response(),
        );
    };
    let message = format!(
        "configuration restored, with the backup's admin password and {tokens} API token{}; other sessions were logged out",
        if tokens == 1 { "" } else { "s" }
    );
    // The person restoring stays logged in, with a new session.
    if let Principal::Session { .. } = p {
        let (id, csrf) = st.auth.new_session();
        let mut resp = Json(json!({ "message": message, "csrf": csrf })).into_response();
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&id));
        return Ok(resp);
    }
    Ok(ok(message).into_response())
}

async fn teleporter(
    axum::extract::State(st): axum::extract::State<State>,
    body: axum::body::Body,
) -> ApiResult<Json<serde_json::Value>> {
    let _slot = limits::upload_slot(&st)?;
    let body = limits::read_body(body, TELEPORTER_BYTES).await?;
    let scratch = st.backend.data_dir();
    let imp = tokio::task::spawn_blocking(move || super::teleporter::read(&body, &scratch))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::field("file", e))?;
    edit(&st, |c| {
        super::teleporter::merge(c, &imp);
        Ok(())
    })?;
    Ok(Json(json!({ "message": imp.summary(), "imported": imp })))
}

async fn reboot(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    st.backend.reboot().map_err(ApiError::unavailable)?;
    Ok(ok("rebooting"))
}

async fn factory_reset(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Json<serde_json::Value>> {
    appliance_only(&st)?;
    st.backend.factory_reset().map_err(ApiError::unavailable)?;
    st.auth
        .reset()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    // The network settings apply at boot; DNS already runs on the defaults.
    if let Err(e) = st.backend.reboot() {
        tracing::warn!("factory reset: {e}");
    }
    Ok(ok("factory reset done; the box restarts into setup"))
}

// ---- page ----

async fn system_page(
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
    s.push_str(&super::firmware::section(&st));
    html(page("System", "/system", Some(csrf(&p)), &s))
}
