//! Password guesses cost an argon2 hash each; this module decides which
//! attempts get one. An attempt is counted *before* it is hashed, so a
//! thousand parallel guesses from one address get at most
//! [`PER_ADDRESS`] hashes per [`WINDOW`]; one address has at most one
//! attempt being hashed at a time, so its flood cannot fill the hash
//! queue and the owner's login from another address still gets its turn;
//! and all addresses together get at most [`GLOBAL`] attempts per window.
//! The hash queue itself is bounded in `auth` (`HASH_QUEUE`).
//! Not for: hashing or checking passwords (see `auth`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts per client address per window (a successful login starts
/// the count again).
pub const PER_ADDRESS: u32 = 5;
/// Attempts from all addresses together per window.
pub const GLOBAL: u32 = 60;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; older windows are forgotten first.
const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This address used its attempts for the window.
    TooMany,
    /// This address already has an attempt being checked.
    Busy,
    /// Every address together used the window's attempts.
    GlobalTooMany,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::TooMany => "too many failed logins; wait a minute",
            Refused::Busy => "a login from this address is still being checked",
            Refused::GlobalTooMany => "too many logins are being tried; wait a minute",
        }
    }
}

struct Entry {
    count: u32,
    since: Instant,
    in_flight: bool,
}

struct Window {
    count: u32,
    since: Instant,
}

pub struct LoginLimit {
    by_address: Mutex<HashMap<IpAddr, Entry>>,
    global: Mutex<Window>,
}

/// An attempt that was counted and may be hashed; dropping it lets the
/// address try again (within its count).
pub struct Attempt<'a> {
    limit: &'a LoginLimit,
    client: IpAddr,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(e) = lock(&self.limit.by_address).get_mut(&self.client) {
            e.in_flight = false;
        }
    }
}

impl Attempt<'_> {
    /// The password was right: the address's count starts again.
    pub fn succeeded(self) {
        lock(&self.limit.by_address).remove(&self.client);
    }
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit {
            by_address: Mutex::default(),
            global: Mutex::new(Window {
                count: 0,
                since: Instant::now(),
            }),
        }
    }
}

impl LoginLimit {
    /// Counts an attempt from `client`, or refuses it; nothing is hashed
    /// before this returns Ok.
    pub fn begin(&self, client: IpAddr) -> Result<Attempt<'_>, Refused> {
        let mut map = lock(&self.by_address);
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, e| e.in_flight || e.since.elapsed() < WINDOW);
        }
        if map.len() >= MAX_ADDRESSES {
            return Err(Refused::GlobalTooMany);
        }
        let e = map.entry(client).or_insert(Entry {
            count: 0,
            since: Instant::now(),
            in_flight: false,
        });
        if e.since.elapsed() >= WINDOW {
            e.count = 0;
            e.since = Instant::now();
        }
        if e.count >= PER_ADDRESS {
            return Err(Refused::TooMany);
        }
        if e.in_flight {
            return Err(Refused::Busy);
        }
        {
            let mut g = lock(&self.global);
            if g.since.elapsed() >= WINDOW {
                g.count = 0;
                g.since = Instant::now();
            }
            if g.count >= GLOBAL {
                return Err(Refused::GlobalTooMany);
            }
            g.count += 1;
        }
        e.count += 1;
        e.in_flight = true;
        Ok(Attempt {
            limit: self,
            client,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_before_checked_one_at_a_time_per_address() {
        let l = LoginLimit::default();
        let ip: IpAddr = "192.168.1.9".parse().unwrap();
        let other: IpAddr = "192.168.1.10".parse().unwrap();
        let first = l.begin(ip).unwrap();
        assert_eq!(l.begin(ip).err(), Some(Refused::Busy));
        // Another address is not held up by the first one's attempt.
        drop(l.begin(other).unwrap());
        drop(first);
        for _ in 1..PER_ADDRESS {
            drop(l.begin(ip).unwrap());
        }
        assert_eq!(l.begin(ip).err(), Some(Refused::TooMany));
        l.begin(other).unwrap().succeeded();
        drop(l.begin(other).unwrap());
    }

    #[test]
    fn all_addresses_together_are_bounded() {
        let l = LoginLimit::default();
        let mut granted = 0;
        for i in 0..=255u8 {
            for j in 0..PER_ADDRESS {
                let ip = IpAddr::from([10, 0, i, j as u8]);
                if l.begin(ip).is_ok() {
                    granted += 1;
                }
            }
        }
        assert_eq!(granted, GLOBAL);
    }
}
