//! Sets the system clock by SNTP (RFC 4330) from NTP servers given as IP
//! literals: a Pi has no real-time clock, and the box must not need DNS
//! (itself) to find its time server. The saved clock on the data partition
//! (see the firmware's `clock` script) only keeps time from running
//! backwards across reboots; this makes it right.
//! Not for: disciplining the clock (no slewing, no drift estimate).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;

/// Public NTP servers by address (Cloudflare, Google, Netnod, PTB).
pub const DEFAULT_SERVERS: &[&str] = &[
    "162.159.200.1:123",
    "216.239.35.0:123",
    "194.58.200.20:123",
    "192.53.103.108:123",
];
/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Below this the clock is left alone (stepping is for gross errors only).
const STEP_THRESHOLD: Duration = Duration::from_millis(500);

/// One server's view of the time: how far our clock is off.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub server: SocketAddr,
    /// Server time minus our time, in seconds.
    pub offset: f64,
    pub round_trip: Duration,
}

/// Asks one server; validates the reply as RFC 4330 §5 says.
pub async fn query(server: SocketAddr) -> io::Result<Sample> {
    let bind = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    let mut req = [0u8; 48];
    req[0] = 0b00_100_011; // LI 0, version 4, mode 3 (client)
    let t1 = SystemTime::now();
    // Our transmit time doubles as the nonce the reply must echo.
    let origin = to_ntp(t1);
    req[40..48].copy_from_slice(&origin.to_be_bytes());
    sock.send(&req).await?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(REPLY_TIMEOUT, sock.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{server}: no reply")))??;
    let t4 = SystemTime::now();
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{server}: {why}"));
    if n < 48 {
        return Err(bad("short reply"));
    }
    let mode = buf[0] & 0x7;
    let leap = buf[0] >> 6;
    let stratum = buf[1];
    if mode != 4 && mode != 5 {
        return Err(bad("not a server reply"));
    }
    if leap == 3 || stratum == 0 || stratum > 15 {
        return Err(bad(
            "server is not synchronised (kiss-o'-death or stratum 0)",
        ));
    }
    if u64::from_be_bytes(buf[24..32].try_into().unwrap()) != origin {
        return Err(bad("reply does not echo our request"));
    }
    let t2 = from_ntp(u64::from_be_bytes(buf[32..40].try_into().unwrap()));
    let t3 = from_ntp(u64::from_be_bytes(buf[40..48].try_into().unwrap()));
    if t3 == 0.0 {
        return Err(bad("zero transmit time"));
    }
    let (t1, t4) = (secs(t1), secs(t4));
    let offset = ((t2 - t1) + (t3 - t4)) / 2.0;
    let round_trip = ((t4 - t1) - (t3 - t2)).max(0.0);
    Ok(Sample {
        server,
        offset,
        round_trip: Duration::from_secs_f64(round_trip),
    })
}

/// The first server (in order) that gives a valid answer.
pub async fn first_sample(servers: &[SocketAddr]) -> io::Result<Sample> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no NTP servers");
    for s in servers {
        match query(*s).await {
            Ok(sample) => return Ok(sample),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether the clock should be stepped for this sample: only for a
/// noticeable error, and never to before `floor` (the image's build time):
/// a server claiming that is wrong.
pub fn should_step(sample: &Sample, now: SystemTime, floor: SystemTime) -> Option<SystemTime> {
    if sample.offset.abs() < STEP_THRESHOLD.as_secs_f64() {
        return None;
    }
    let target = secs(now) + sample.offset;
    if target < secs(floor) || target <= 0.0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs_f64(target))
}

/// Steps the system clock (CAP_SYS_TIME needed: root on the appliance).
pub fn set_clock(to: SystemTime) -> io::Result<()> {
    let d = to.duration_since(UNIX_EPOCH).map_err(io::Error::other)?;
    let ts = libc::timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    };
    // SAFETY: a valid timespec for CLOCK_REALTIME.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps the clock set: retries every 15 s until the first success (the
/// network may not be up yet), then checks hourly.
pub async fn keep_time(servers: Vec<SocketAddr>, floor: SystemTime) {
    let mut synced = false;
    loop {
        match first_sample(&servers).await {
            Ok(sample) => {
                if let Some(to) = should_step(&sample, SystemTime::now(), floor) {
                    match set_clock(to) {
                        Ok(()) => tracing::info!(
                            "clock stepped by {:.3} s from {}",
                            sample.offset,
                            sample.server
                        ),
                        Err(e) => tracing::warn!("clock: cannot set the time: {e}"),
                    }
                } else if !synced {
                    tracing::info!("clock within {:.3} s of {}", sample.offset, sample.server);
                }
                synced = true;
            }
            Err(e) => tracing::debug!("clock: SNTP: {e}"),
        }
        let wait = if synced { 3600 } else { 15 };
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

fn to_ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// NTP timestamp to Unix seconds.
fn from_ntp(ts: u64) -> f64 {
    if ts == 0 {
        return 0.0;
    }
    let secs = (ts >> 32) as f64 - NTP_UNIX_OFFSET as f64;
    secs + (ts & 0xffff_ffff) as f64 / 4_294_967_296.0
}

fn secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NTP server stand-in whose clock is ours plus `skew` seconds;
    /// `mangle` lets a test break its replies.
    async fn fake_server(skew: f64, mangle: fn(&mut [u8; 48])) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if n < 48 {
                    continue;
                }
                let now = secs(SystemTime::now()) + skew;
                let ts = to_ntp(UNIX_EPOCH + Duration::from_secs_f64(now));
                let mut r = [0u8; 48];
                r[0] = 0b00_100_100; // version 4, mode 4 (server)
                r[1] = 2;
                r[24..32].copy_from_slice(&buf[40..48]);
                r[32..40].copy_from_slice(&ts.to_be_bytes());
                r[40..48].copy_from_slice(&ts.to_be_bytes());
                mangle(&mut r);
                let _ = sock.send_to(&r, from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn offset_matches_the_servers_clock() {
        let server = fake_server(3600.0, |_| {}).await;
        let s = query(server).await.unwrap();
        assert!((s.offset - 3600.0).abs() < 0.5, "offset {}", s.offset);
        let now = SystemTime::now();
        let to = should_step(&s, now, UNIX_EPOCH).unwrap();
        let ahead = to.duration_since(now).unwrap().as_secs_f64();
        assert!((ahead - 3600.0).abs() < 0.5, "{ahead}");
    }

    #[tokio::test]
    async fn replies_that_do_not_echo_us_or_are_unsynchronised_are_rejected() {
        let wrong_origin = fake_server(0.0, |r| r[24] ^= 0xff).await;
        assert!(query(wrong_origin).await.is_err());
        let kiss = fake_server(0.0, |r| r[1] = 0).await;
        assert!(query(kiss).await.is_err());
        let client_mode = fake_server(0.0, |r| r[0] = 0b00_100_011).await;
        assert!(query(client_mode).await.is_err());
    }

    #[tokio::test]
    async fn falls_through_to_the_next_server() {
        // A bound socket that never answers, then a good server.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let good = fake_server(-7200.0, |_| {}).await;
        let s = first_sample(&[silent.local_addr().unwrap(), good])
            .await
            .unwrap();
        assert_eq!(s.server, good);
        assert!((s.offset + 7200.0).abs() < 0.5);
    }

    #[test]
    fn never_steps_before_the_floor_or_for_small_errors() {
        let now = SystemTime::now();
        let server = "127.0.0.1:123".parse().unwrap();
        let small = Sample {
            server,
            offset: 0.2,
            round_trip: Duration::ZERO,
        };
        assert!(should_step(&small, now, UNIX_EPOCH).is_none());
        let back = Sample {
            server,
            offset: -86_400.0 * 400.0,
            round_trip: Duration::ZERO,
        };
        let floor = now - Duration::from_secs(86_400 * 30);
        assert!(
            should_step(&back, now, floor).is_none(),
            "a year back is below the floor"
        );
        assert!(should_step(&back, now, UNIX_EPOCH).is_some());
    }

    #[test]
    fn ntp_timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert!((from_ntp(to_ntp(t)) - secs(t)).abs() < 1e-6);
        assert_eq!(DEFAULT_SERVERS.len(), 4);
        for s in DEFAULT_SERVERS {
            s.parse::<SocketAddr>().unwrap();
        }
    }
}
