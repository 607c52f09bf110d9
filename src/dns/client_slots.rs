//! Per-client caps on what a client holds at once: its cache misses
//! waiting for upstreams (`dns.client_upstream_queries`, within the
//! forwarder's 512) and its TCP connections (`dns.tcp_client_connections`,
//! within `dns.tcp_max_connections`), so one device cannot take every
//! slot the household shares.
//!
//! A count per address that holds something right now: the table is as big
//! as what is held, which the global caps and the rate limit bound, not as
//! big as the addresses ever seen. Taken on cache misses and TCP accepts
//! only, never on the cached path.
//! Not for: rates over time (`rate_limit`).

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How many slots each client holds.
#[derive(Default)]
pub struct ClientSlots {
    held: Mutex<HashMap<IpAddr, u32>>,
}

/// One slot held by one client; given back when dropped.
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    ip: IpAddr,
}

impl ClientSlots {
    /// A slot for `ip`, unless it already holds `cap`.
    pub fn take(self: &Arc<Self>, ip: IpAddr, cap: u32) -> Option<ClientSlot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                held.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self.clone(),
            ip,
        })
    }

    /// Slots `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> u32 {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&ip).copied().unwrap_or(0)
    }

    /// Addresses holding at least one slot.
    pub fn clients(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_cap_and_slots_come_back() {
        let s = Arc::new(ClientSlots::default());
        let a: IpAddr = "192.168.1.20".parse().unwrap();
        let b: IpAddr = "192.168.1.21".parse().unwrap();
        let mut held: Vec<ClientSlot> = (0..3).map_while(|_| s.take(a, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(s.take(a, 3).is_none(), "a fourth is over the cap");
        assert!(s.take(b, 3).is_some(), "another client has its own");
        held.pop();
        assert_eq!(s.held(a), 2);
        assert!(s.take(a, 3).is_some());
        held.clear();
        assert_eq!(
            (s.held(a), s.clients()),
            (0, 0),
            "nothing held, nothing kept"
        );
        assert!(s.take(a, 0).is_none());
        assert_eq!(s.clients(), 0);
    }
}
