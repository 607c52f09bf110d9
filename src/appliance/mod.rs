//! Things that exist only on the board image (`web.appliance = true`): the
//! mDNS responder for `glory-hole.local`, the hardware watchdog fed while
//! DNS answers, and the clock set by SNTP. The firmware's shell scripts do
//! the rest (network, saved clock, logs); see docs/image.md.
//!
//! Started once from `app::run` after the DNS listeners are up:
//! ```ignore
//! let _appliance = config.web.appliance.then(|| appliance::start(&app.dns_addrs));
//! ```
//! Dropping the returned [`Appliance`] stops its tasks and disarms the
//! watchdog.

pub mod mdns;
pub mod privileges;
pub mod sntp;
pub mod watchdog;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// The image's build time (written by the image builder): the clock floor.
pub const BUILD_TIME_FILE: &str = "/etc/glory-hole/build-time";

/// The running board services; dropping it stops them.
pub struct Appliance {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Appliance {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the board services. Must run inside a tokio runtime. A service
/// that cannot start (no watchdog device, port 5353 taken) is logged and
/// skipped: DNS matters more than any of them.
pub fn start(dns_addrs: &[SocketAddr]) -> Appliance {
    let mut tasks = Vec::new();

    let hostname = hostname();
    match mdns::Responder::bind_multicast(&hostname, Arc::new(mdns::interface_addrs)) {
        Ok(r) => {
            tracing::info!("mDNS: answering for {hostname}.local");
            tasks.push(tokio::spawn(r.run()));
        }
        Err(e) => tracing::warn!("mDNS responder not started: {e}"),
    }

    match (
        dns_addrs.first().map(|a| probe_addr(*a)),
        Path::new(watchdog::DEVICE).exists(),
    ) {
        (Some(dns), true) => {
            match watchdog::Watchdog::open(Path::new(watchdog::DEVICE), watchdog::TIMEOUT_SECS) {
                Ok(dog) => {
                    tracing::info!("watchdog: fed while DNS on {dns} answers");
                    tasks.push(tokio::spawn(watchdog::feed_while_healthy(
                        dog,
                        dns,
                        watchdog::FEED_EVERY,
                    )));
                }
                Err(e) => tracing::warn!("watchdog not armed: {e}"),
            }
        }
        (_, false) => tracing::info!("no {}; watchdog not used", watchdog::DEVICE),
        (None, _) => {}
    }

    let servers = sntp::DEFAULT_SERVERS
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    tasks.push(tokio::spawn(sntp::keep_time(servers, build_time())));

    Appliance { tasks }
}

/// Where to reach our own listener: a wildcard address means loopback.
fn probe_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && s != "(none)")
        .unwrap_or_else(|| "glory-hole".to_string())
}

fn build_time() -> SystemTime {
    std::fs::read_to_string(BUILD_TIME_FILE)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:53".parse().unwrap()),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            probe_addr("[::]:53".parse().unwrap()),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(
            probe_addr("192.168.1.2:53".parse().unwrap()),
            "192.168.1.2:53".parse().unwrap()
        );
    }
}
