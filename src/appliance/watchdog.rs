//! Feeds the hardware watchdog (`/dev/watchdog`, bcm2835_wdt on a Pi) while
//! the DNS server answers. If glory-hole hangs, or answers nothing for
//! longer than the watchdog's timeout, the board resets itself: a box on a
//! shelf has nobody to power-cycle it. A clean stop disarms the watchdog
//! (the "magic close" 'V') so a restart by init does not reboot the board.
//! Not for: deciding what "healthy" means beyond "DNS answers a query".

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::UdpSocket;

pub const DEVICE: &str = "/dev/watchdog";
/// bcm2835_wdt allows at most about 15 s.
pub const TIMEOUT_SECS: i32 = 15;
/// Well inside the timeout, so one slow probe does not reset the board.
pub const FEED_EVERY: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// An open watchdog device; dropping it disarms the watchdog.
pub struct Watchdog {
    dev: File,
}

impl Watchdog {
    /// Opens the device (this arms it) and asks for `timeout_secs`; a
    /// device that cannot change its timeout keeps its own.
    pub fn open(path: &Path, timeout_secs: i32) -> io::Result<Watchdog> {
        let dev = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        set_timeout(&dev, timeout_secs);
        Ok(Watchdog { dev })
    }

    pub fn feed(&mut self) -> io::Result<()> {
        self.dev.write_all(b"\0")?;
        self.dev.flush()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Magic close: the driver stops the timer when 'V' precedes close.
        let _ = self.dev.write_all(b"V");
    }
}

#[cfg(target_os = "linux")]
fn set_timeout(dev: &File, secs: i32) {
    use std::os::fd::AsRawFd;
    // WDIOC_SETTIMEOUT = _IOWR('W', 6, int)
    const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
    let mut t: libc::c_int = secs;
    // SAFETY: the fd is open; the ioctl reads and writes one int. It fails
    // harmlessly (ENOTTY) on a plain file.
    unsafe {
        libc::ioctl(dev.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut t);
    }
}

#[cfg(not(target_os = "linux"))]
fn set_timeout(_dev: &File, _secs: i32) {}

/// Asks the DNS server at `dns` one question it answers by itself (a
/// `.local` name: RFC 6303 style local NXDOMAIN, no upstream needed). Any
/// well-formed response with our ID counts as alive.
pub async fn dns_answers(dns: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind(if dns.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .await
    else {
        return false;
    };
    let id: u16 = rand::random();
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["watchdog-probe", "glory-hole", "local"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    if sock.send_to(&q, dns).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(PROBE_TIMEOUT, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => {
            from == dns && n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0
        }
        _ => false,
    }
}

/// Feeds `dog` every `every` while `dns` answers; stops feeding (and so
/// lets the board reset) when it does not. Runs until dropped.
pub async fn feed_while_healthy(mut dog: Watchdog, dns: SocketAddr, every: Duration) {
    let mut failures = 0u32;
    loop {
        if dns_answers(dns).await {
            if failures > 0 {
                tracing::info!("watchdog: DNS answers again");
            }
            failures = 0;
            if let Err(e) = dog.feed() {
                tracing::warn!("watchdog: feeding failed: {e}");
            }
        } else {
            failures += 1;
            tracing::warn!(
                "watchdog: DNS on {dns} did not answer ({failures} in a row); not feeding"
            );
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A DNS server that answers only while `up` is set.
    async fn switchable_dns(up: Arc<AtomicBool>) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if up.load(Ordering::SeqCst) {
                    let mut r = buf[..n].to_vec();
                    r[2] |= 0x80;
                    r[3] = 0x03; // NXDOMAIN
                    let _ = sock.send_to(&r, from).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn fed_only_while_dns_answers_and_disarmed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("watchdog");
        std::fs::write(&dev, b"").unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let dns = switchable_dns(up.clone()).await;

        let dog = Watchdog::open(&dev, TIMEOUT_SECS).unwrap();
        let task = tokio::spawn(feed_while_healthy(dog, dns, Duration::from_millis(50)));
        let fed = |p: &Path| std::fs::read(p).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while fed(&dev).len() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a healthy server gets the watchdog fed");

        up.store(false, Ordering::SeqCst);
        // Let a feed that was already under way finish (generously: the
        // machine may be busy), then expect none.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = fed(&dev).len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(fed(&dev).len(), before, "no feeding while DNS is silent");

        up.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(10), async {
            while fed(&dev).len() == before {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("feeding resumes when DNS answers again");

        task.abort();
        let _ = task.await;
        assert_eq!(fed(&dev).last(), Some(&b'V'), "magic close on drop");
    }

    #[tokio::test]
    async fn probe_rejects_silence_and_accepts_an_answer() {
        let up = Arc::new(AtomicBool::new(false));
        let dns = switchable_dns(up.clone()).await;
        assert!(!dns_answers(dns).await);
        up.store(true, Ordering::SeqCst);
        assert!(dns_answers(dns).await);
    }

    #[test]
    fn missing_device_is_an_error_naming_it() {
        let e = Watchdog::open(Path::new("/nonexistent/watchdog"), 15)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/watchdog"), "{e}");
    }
}
