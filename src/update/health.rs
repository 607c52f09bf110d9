//! The trial boot's health check: after a boot, `observe_boot`; if this
//! is the one-shot trial of a new slot, the system must show within
//! `within` (90 s on the board) that it does its job, looking at itself
//! from outside:
//!
//! - DNS: a real query to its own UDP listener gets an answer;
//! - web UI: `GET /api/v1/health` on its own listener answers 200 "ok";
//! - data directory: a probe file written, fsynced and removed;
//! - configuration: loads (the caller's check);
//! - query log: writable (the caller's check).
//!
//! All good: `mark_running_slot_valid` (the slot becomes the one that
//! boots). A check still failing when the time is up: the slot is given
//! up with the failures as the reason (kept in `update.json`), and the
//! restart into the other slot is returned for the caller to carry out.
//! A trial that hangs before this decides is reset by the watchdog and
//! the bootloader starts the committed slot.
//!
//! Not for: the hardware watchdog (`appliance::watchdog`), or what the
//! installer does on a verdict (`installer`).

use super::installer::BootOutcome;
use super::{Restart, Updater};
use embedded_svc::ota::Ota;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The board's deadline for a trial to prove itself (docs/update.md).
pub const WITHIN: Duration = Duration::from_secs(90);
/// Between two rounds of checks while one fails.
const RETRY: Duration = Duration::from_secs(1);
/// One probe may take this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A check the caller supplies: Err names what is wrong.
pub type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the health check looks at.
pub struct Probes {
    /// The box's own DNS listener (UDP); None: DNS is not listening.
    pub dns: Option<SocketAddr>,
    /// The box's own web listener; None: the web UI is off.
    pub web: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub config: Check,
    pub querylog: Check,
}

/// What the check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a trial boot (the outcome of `observe_boot` says what it was).
    NoTrial(BootOutcome),
    /// The trial passed and is now the slot that boots.
    Committed,
    /// The trial failed: given up for `reason`; carry out `restart`.
    GivenUp {
        reason: String,
        restart: Option<Restart>,
    },
}

/// Runs once per boot, after the listeners are up.
pub async fn after_boot(updater: Arc<Updater>, probes: Probes, within: Duration) -> Verdict {
    let u = updater.clone();
    let outcome = tokio::task::spawn_blocking(move || u.installer().observe_boot()).await;
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return give_up(&updater, format!("update state unreadable: {e}")).await,
        Err(e) => return give_up(&updater, format!("observe_boot panicked: {e}")).await,
    };
    let BootOutcome::OnTrial(slot) = outcome else {
        return Verdict::NoTrial(outcome);
    };
    tracing::info!("trial boot of slot {slot}: checking health within {within:?}");
    let deadline = tokio::time::Instant::now() + within;
    let failures = loop {
        let failures = check(&probes).await;
        if failures.is_empty() {
            let u = updater.clone();
            let done = tokio::task::spawn_blocking(move || u.installer().mark_running_slot_valid());
            return match done.await {
                Ok(Ok(())) => {
                    tracing::info!("slot {slot} passed its health check and is committed");
                    Verdict::Committed
                }
                Ok(Err(e)) => give_up(&updater, format!("committing slot {slot}: {e}")).await,
                Err(e) => give_up(&updater, format!("committing slot {slot}: {e}")).await,
            };
        }
        if tokio::time::Instant::now() + RETRY >= deadline {
            break failures;
        }
        tokio::time::sleep(RETRY).await;
    };
    let reason = format!(
        "slot {slot} failed its health check within {} s: {}",
        within.as_secs(),
        failures.join("; ")
    );
    give_up(&updater, reason).await
}

async fn give_up(updater: &Arc<Updater>, reason: String) -> Verdict {
    tracing::error!("{reason}");
    let u = updater.clone();
    let why = reason.clone();
    let e = tokio::task::spawn_blocking(move || u.installer().give_up_running(&why)).await;
    if let Ok(e) = e {
        tracing::warn!("giving up the running slot: {e}");
    }
    Verdict::GivenUp {
        reason,
        restart: updater.take_restart(),
    }
}

/// One round of every check; the failures, each naming what failed.
pub async fn check(p: &Probes) -> Vec<String> {
    let mut failures = Vec::new();
    match p.dns {
        None => failures.push("DNS: not listening".to_string()),
        Some(a) if !crate::appliance::watchdog::dns_answers(loopback(a)).await => {
            failures.push(format!("DNS: no answer from {}", loopback(a)))
        }
        Some(_) => {}
    }
    match p.web {
        None => failures.push("web UI: not listening (web.enabled = false?)".to_string()),
        Some(a) => {
            if let Err(e) = web_answers(loopback(a)).await {
                failures.push(format!("web UI: {e}"));
            }
        }
    }
    let dir = p.data_dir.clone();
    let write = tokio::task::spawn_blocking(move || data_dir_writable(&dir)).await;
    if let Err(e) = write.unwrap_or_else(|e| Err(e.to_string())) {
        failures.push(format!("data directory: {e}"));
    }
    if let Err(e) = (p.config)() {
        failures.push(format!("configuration: {e}"));
    }
    if let Err(e) = (p.querylog)() {
        failures.push(format!("query log: {e}"));
    }
    failures
}

/// A listener on every address is asked on loopback.
fn loopback(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, a.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, a.port()).into(),
        _ => a,
    }
}

/// `GET /api/v1/health` over a plain HTTP/1.1 connection: 200 and "ok".
async fn web_answers(at: SocketAddr) -> Result<(), String> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(at).await?;
        s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut reply = Vec::new();
        s.take(64 << 10).read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(PROBE_TIMEOUT, ask)
        .await
        .map_err(|_| format!("no answer from http://{at}/api/v1/health"))?
        .map_err(|e| format!("http://{at}/api/v1/health: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let status = text.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("http://{at}/api/v1/health answered '{status}'"));
    }
    if !text.contains("\"status\":\"ok\"") {
        return Err(format!("http://{at}/api/v1/health did not say ok"));
    }
    Ok(())
}

/// A probe file written, fsynced and removed.
fn data_dir_writable(dir: &std::path::Path) -> Result<(), String> {
    let path = dir.join(".health-probe");
    let what = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::create(&path).map_err(what)?;
    f.write_all(b"glory-hole health check\n").map_err(what)?;
    f.sync_all().map_err(what)?;
    std::fs::remove_file(&path).map_err(what)
}
