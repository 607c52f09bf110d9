//! Who may claim a box that has no admin password yet. First-boot setup
//! (and restoring a backup instead) is open only
//!
//! - while no password exists,
//! - within `web.setup_window` after the web server started (30 minutes by
//!   default; a power cycle opens it again),
//! - to a source address on the local network: private, link-local or
//!   loopback (an address the box's own network can reach without a
//!   router in between is what a new owner's phone has),
//! - with the setup secret, when `web.setup_secret_file` exists (the owner
//!   writes it on the card's boot partition right after flashing, see
//!   docs/flashing.md).
//!
//! [`check`] runs before a setup handler writes anything.
//! Not for: what setup changes (see `setup`) or logins (see `session`).

use super::State;
use super::guard::same_secret;
use super::http::{ApiError, ApiResult};
use axum::http::StatusCode;
use std::net::IpAddr;
use std::time::Duration;

/// The secret file is read at most this far (a secret is a line of text).
const MAX_SECRET: u64 = 256;

/// Whether setup is open now, as the setup page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GateStatus {
    /// No password yet and the window still open.
    pub open: bool,
    /// Seconds left in the window (0 once it has closed).
    pub closes_in_secs: u64,
    /// The boot partition holds a setup secret: setup asks for it.
    pub secret_needed: bool,
}

pub fn status(st: &State) -> GateStatus {
    let left = time_left(st);
    GateStatus {
        open: !st.auth.password_is_set() && !left.is_zero(),
        closes_in_secs: left.as_secs(),
        secret_needed: secret(st).is_some(),
    }
}

fn time_left(st: &State) -> Duration {
    let window = st.backend.config().web.setup_window.0;
    window.saturating_sub(st.started.elapsed())
}

/// The setup secret, when the file exists (trimmed; an empty file asks
/// for nothing).
fn secret(st: &State) -> Option<String> {
    use std::io::Read;
    let path = st.backend.config().web.setup_secret_file.clone();
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_SECRET)
        .read_to_string(&mut text)
        .ok()?;
    let s = text.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A source address on the box's own network: private (RFC 1918, IPv6
/// unique local), link-local, or loopback. IPv4-mapped IPv6 counts as
/// its IPv4 address.
pub fn local_source(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || a.is_link_local() || a.is_loopback(),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return local_source(IpAddr::V4(v4));
            }
            let s = a.segments()[0];
            a.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// Refuses setup unless every condition holds; nothing has been written
/// when this returns an error.
pub fn check(st: &State, peer: IpAddr, sent_secret: Option<&str>) -> ApiResult<()> {
    if st.auth.password_is_set() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "setup is already finished; log in instead",
        ));
    }
    if time_left(st).is_zero() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the setup window has closed (web.setup_window after start): \
             power-cycle the box to open it again",
        ));
    }
    if !local_source(peer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "setup is only accepted from the local network; {peer} is not a \
                 private or link-local address"
            ),
        ));
    }
    if let Some(want) = secret(st)
        && !sent_secret.is_some_and(|s| same_secret(s.trim(), &want))
    {
        return Err(ApiError::field(
            "setup_secret",
            "setup_secret: give the setup secret written on the card's boot partition",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_sources() {
        for ok in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.20",
            "169.254.7.7",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "fd00::5",
            "fe80::1",
            "::ffff:192.168.1.20",
        ] {
            assert!(local_source(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "203.0.113.5",
            "2001:db8::1",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!local_source(bad.parse().unwrap()), "{bad}");
        }
    }
}
