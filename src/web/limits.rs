//! How much a request may make the box hold: body limits sized to each
//! route, and a cap on uploads handled at once. A request past a limit is
//! refused before its body is read further (413), an upload past the cap
//! at once (503), so a few parallel uploads cannot take the memory DNS
//! needs.
//!
//! Every route gets [`JSON_BYTES`] unless it says otherwise; the uploads
//! read their body with [`read_body`] while holding an [`upload_slot`].
//! Not for: connection and header timeouts (see `listen`).

use super::State;
use super::http::{ApiError, ApiResult};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;

/// Any JSON or form request: the largest real one (a group with its
/// clients, a settings form) is a few KiB.
pub const JSON_BYTES: usize = 256 << 10;
/// A backup file: the config as TOML plus the credential hashes. A config
/// with thousands of rules and records is well under 1 MiB.
pub const BACKUP_BYTES: usize = 4 << 20;
/// A Pi-hole Teleporter archive (lists, rules, records, settings; the
/// gravity table is not in it).
pub const TELEPORTER_BYTES: usize = 16 << 20;
/// Uploads (restore, Teleporter import) handled at once; the next one is
/// told to try again.
pub const UPLOADS_AT_ONCE: usize = 2;

/// The body limit layer for a route taking up to `bytes`.
pub fn upload(bytes: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(bytes)
}

/// A place among the uploads handled at once, or 503 now.
pub fn upload_slot(st: &State) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
    st.uploads.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "another upload is being handled; try again in a moment",
        )
    })
}

/// Reads a body of at most `max` bytes; a longer one is refused as soon
/// as the limit is passed, without reading the rest.
pub async fn read_body(body: axum::body::Body, max: usize) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::field(
            "file",
            format!(
                "file: larger than {} MiB, or the upload broke off",
                max >> 20
            ),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    })
}
