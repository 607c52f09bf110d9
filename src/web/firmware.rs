//! Firmware updates from the System page: upload a signed bundle, see it
//! written into the slot that is not running, reboot into it for a trial,
//! or roll back (`/api/v1/firmware...`, and the page's firmware section).
//!
//! The upload is streamed: each chunk of the request body goes to the
//! installer (on a blocking thread) as it arrives, through a channel of a
//! few chunks, so memory stays flat whatever the bundle's size. One upload
//! at a time (409 for a second). The body may be as large as both slots'
//! partitions, not the API's usual limit. The restart an action asks for
//! is carried out after its answer is sent (`Backend::restart`).
//!
//! Not for: checking or writing bundles (`update`), where the slots are
//! (`app::firmware`).

use super::State;
use super::html::esc;
use super::http::{ApiError, ApiResult};
use crate::update::state::{Health, UpdateState};
use crate::update::updater::{Installed, Progress, UploadError};
use crate::update::{InstallError, SlotName, Updater};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, extract};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// Chunks in flight between the socket and the installer: a few, so a
/// slow card makes the upload wait instead of piling chunks up in RAM.
const IN_FLIGHT: usize = 4;
/// Lets the answer reach the page before the box goes down.
const RESTART_DELAY: Duration = Duration::from_millis(500);

pub fn routes() -> Router<State> {
    Router::new()
        .route(
            "/api/v1/firmware",
            // The size is checked against the slots while streaming.
            get(status).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/firmware/activate", post(activate))
        .route("/api/v1/firmware/rollback", post(rollback))
}

fn updater(st: &State) -> ApiResult<Arc<Updater>> {
    st.backend.firmware().map_err(ApiError::unavailable)
}

fn install_error(e: InstallError) -> ApiError {
    let status = match &e {
        InstallError::Refused(_)
        | InstallError::UnknownPayload(..)
        | InstallError::MissingPayload(..)
        | InstallError::DuplicatePayload(..)
        | InstallError::TooBig { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        InstallError::Busy(_)
        | InstallError::NoGoodSlot
        | InstallError::NothingToActivate(_)
        | InstallError::AlreadyFailed(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn upload_error(e: UploadError) -> ApiError {
    match e {
        UploadError::Install(e) => install_error(e),
        e @ UploadError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        e @ UploadError::Cut { .. } => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `POST /api/v1/firmware`: the bundle as the body, installed as it
/// arrives into the slot that is not running.
async fn upload(
    extract::State(st): extract::State<State>,
    req: Request,
) -> ApiResult<Json<Installed>> {
    let u = updater(&st)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared
        && len > u.max_bundle()
    {
        return Err(upload_error(UploadError::TooLarge {
            limit: u.max_bundle(),
        }));
    }
    let Some(_ticket) = u.begin_upload() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "another firmware upload is under way; wait for it to finish",
        ));
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let installer = u.clone();
    let worker = tokio::task::spawn_blocking(move || installer.install(&mut || rx.blocking_recv()));
    let mut body = req.into_body().into_data_stream();
    let mut at = 0u64;
    let mut taking = true;
    while let Some(chunk) = body.next().await {
        // After a refusal the rest is read and dropped, so that the
        // uploader (a browser) gets to read the answer.
        let item = match chunk {
            Ok(b) if u.received(b.len()) => Ok(b),
            Ok(_) => Err(UploadError::TooLarge {
                limit: u.max_bundle(),
            }),
            Err(e) => Err(UploadError::Cut {
                at,
                reason: e.to_string(),
            }),
        };
        let stop = item.is_err();
        at += item.as_ref().map_or(0, |b| b.len() as u64);
        if taking && tx.send(item).await.is_err() {
            taking = false;
        }
        if stop {
            break;
        }
    }
    drop(tx);
    let installed = worker
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(upload_error)?;
    tracing::info!(
        "firmware {} written to slot {} (signed by {})",
        installed.version,
        installed.slot,
        installed.signer
    );
    Ok(Json(installed))
}

/// One slot as `GET /api/v1/firmware` shows it.
#[derive(Debug, Serialize)]
struct SlotView {
    slot: SlotName,
    /// empty (nothing known), writing, unverified, valid, invalid.
    state: &'static str,
    version: Option<String>,
    built_unix_s: Option<u64>,
    /// Fingerprint of the key that signed it.
    signer: Option<String>,
    running: bool,
    /// The slot the selector boots normally.
    boots_next: bool,
}

#[derive(Debug, Serialize)]
struct FirmwareView {
    running: SlotName,
    boots_next: SlotName,
    /// The slot armed for a one-shot trial boot.
    trial: Option<SlotName>,
    slots: Vec<SlotView>,
    last: Option<crate::update::state::LastResult>,
    progress: Progress,
    /// The update slot holds an installed bundle that can be booted (again,
    /// if its trial is armed but the restart did not happen).
    can_activate: bool,
    /// The other slot holds a system that passed its health check.
    can_rollback: bool,
    max_bundle_bytes: u64,
}

fn health_name(h: Health) -> &'static str {
    match h {
        Health::Writing => "writing",
        Health::Unverified => "unverified",
        Health::Valid => "valid",
        Health::Invalid => "invalid",
    }
}

/// Read without the installer's lock: an upload holds it throughout.
fn view(u: &Updater) -> std::io::Result<FirmwareView> {
    let state: UpdateState = u.state()?;
    let selector = u.selector()?;
    let running = u.slots().running;
    let running_version = u.policy().running_version.clone();
    let slots = [SlotName::A, SlotName::B]
        .into_iter()
        .map(|s| {
            let rec = state.slot(s);
            // A fresh card: the running slot is the image as flashed.
            let fresh = rec.is_none() && s == running;
            SlotView {
                slot: s,
                state: rec.map(|r| health_name(r.health)).unwrap_or(if fresh {
                    "valid"
                } else {
                    "empty"
                }),
                version: rec
                    .map(|r| r.version.clone())
                    .or(fresh.then(|| running_version.clone())),
                built_unix_s: rec.map(|r| r.built_unix_s).filter(|t| *t > 0),
                signer: rec.map(|r| r.signer.clone()).filter(|k| !k.is_empty()),
                running: s == running,
                boots_next: s == selector.committed,
            }
        })
        .collect();
    let other = running.other();
    let other_health = state.slot(other).map(|r| r.health);
    Ok(FirmwareView {
        running,
        boots_next: selector.committed,
        trial: state.trial,
        slots,
        can_activate: other_health == Some(Health::Unverified),
        can_rollback: other_health == Some(Health::Valid),
        last: state.last,
        progress: u.progress(),
        max_bundle_bytes: u.max_bundle(),
    })
}

/// `GET /api/v1/firmware`: slots, trial, last result, upload progress.
async fn status(extract::State(st): extract::State<State>) -> ApiResult<Json<serde_json::Value>> {
    let u = updater(&st)?;
    let v = tokio::task::spawn_blocking(move || view(&u))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(serde_json::to_value(v).unwrap_or_default()))
}

/// Runs `action` on the installer, then the restart it asked for once
/// the answer is out.
async fn act(
    st: &State,
    action: impl FnOnce(&mut crate::update::Installer) -> Result<String, InstallError> + Send + 'static,
) -> ApiResult<Json<serde_json::Value>> {
    let u = updater(st)?;
    let runner = u.clone();
    let message = tokio::task::spawn_blocking(move || action(&mut runner.installer()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(install_error)?;
    if let Some(how) = u.take_restart() {
        let backend = st.backend.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RESTART_DELAY).await;
            if let Err(e) = backend.restart(how) {
                tracing::error!("firmware: restart ({how:?}): {e}");
            }
        });
    }
    Ok(Json(json!({ "message": message })))
}

fn version_in(inst: &crate::update::Installer, slot: SlotName) -> String {
    inst.state()
        .ok()
        .and_then(|s| s.slot(slot).map(|r| r.version.clone()))
        .unwrap_or_else(|| inst.policy().running_version.clone())
}

/// `POST /api/v1/firmware/activate`: a one-shot trial boot of the slot
/// the last upload wrote.
async fn activate(extract::State(st): extract::State<State>) -> ApiResult<Json<serde_json::Value>> {
    act(&st, |inst| {
        inst.activate_installed()?;
        let slot = inst.slots().update_slot();
        Ok(format!(
            "rebooting into slot {slot} (version {}) for a trial boot",
            version_in(inst, slot)
        ))
    })
    .await
}

/// `POST /api/v1/firmware/rollback`: boot the other slot from now on.
async fn rollback(extract::State(st): extract::State<State>) -> ApiResult<Json<serde_json::Value>> {
    act(&st, |inst| {
        inst.rollback()?;
        let slot = inst.slots().running.other();
        Ok(format!(
            "rebooting into slot {slot} (version {})",
            version_in(inst, slot)
        ))
    })
    .await
}

// ---- the System page's section ----

/// The firmware section of the System page; the script
/// (`assets/firmware.js`) fills it from `GET /api/v1/firmware`.
pub fn section(st: &State) -> String {
    let mut s = String::from("<h2 id=\"firmware\">Firmware update</h2>");
    if let Err(why) = st.backend.firmware() {
        let _ = write!(s, "<p class=\"muted\" id=\"fw-off\">{}</p>", esc(&why));
        return s;
    }
    s.push_str(
        "<div id=\"fw\">\
         <div class=\"scroll\"><table id=\"fw-slots\"><thead><tr><th>Slot</th><th>Version</th><th>State</th><th>Signed by</th><th></th></tr></thead><tbody></tbody></table></div>\
         <p id=\"fw-last\" class=\"muted\"></p>\
         <form id=\"fw-upload\" class=\"row drop\">\
         <label>Firmware bundle (.ghb): choose it, or drop it on this section<input type=\"file\" id=\"fw-file\" name=\"file\" accept=\".ghb\"></label>\
         <button id=\"fw-send\">Upload</button></form>\
         <p><progress id=\"fw-progress\" max=\"100\" value=\"0\" hidden></progress> <span id=\"fw-percent\"></span> <span id=\"fw-status\" class=\"status\"></span></p>\
         <div id=\"fw-result\" class=\"card\" hidden><p>Version <b id=\"fw-version\"></b> for <span id=\"fw-boards\"></span>, signed by key <span class=\"mono\" id=\"fw-signer\"></span>, written to slot <b id=\"fw-slot\"></b> and read back.</p>\
         <button id=\"fw-activate\" data-confirm=\"Reboot now? DNS stops for about a minute.\">Reboot into</button></div>\
         <p><button id=\"fw-rollback\" class=\"sec\" hidden data-confirm=\"Go back to the other system? The box reboots.\">Roll back</button></p>\
         </div>\
         <div id=\"fw-wait\" class=\"card\" hidden><p id=\"fw-wait-text\">Rebooting…</p><p class=\"muted\" id=\"fw-wait-detail\">This page follows the box across the reboot.</p></div>\
         <script src=\"/assets/firmware.js\" defer></script>",
    );
    s
}
