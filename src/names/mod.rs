//! Device names: the name to show for a client address, and where it came
//! from, so the dashboard, the log, the clients page and the export say
//! "tv" where they would say `192.168.1.23`.
//!
//! Three sources, the first that knows an address wins:
//! 1. DHCP leases, when this box is the DHCP server: the DHCP code hands
//!    the whole set over with [`DeviceNames::set_dhcp`] after every change.
//! 2. Local records: an A or AAAA record's name names its address.
//! 3. The router, asked like Pi-hole asks it: a PTR query for a private,
//!    link-local or ULA address (`ptr`), only while the box is not the
//!    DHCP server (then the router knows no names the box does not).
//!
//! Each source is an immutable map behind an `ArcSwap`: a read is three
//! loads and hash look-ups, with no lock. A read that finds no router
//! answer, or an expired one, hands the address to the background asker
//! with one `try_send` and returns what it has; nothing waits for the
//! router. Nothing on the DNS path reads this table.
//!
//! Not for: answering DNS for these names (`dns::local`), or what the log
//! stores (rows keep addresses; names are looked up when shown).

mod ptr;

use crate::config::{Config, Upstream};
use arc_swap::{ArcSwap, ArcSwapOption};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Router answers kept: a household has tens of devices; past this the
/// earliest to expire make room.
const MAX_NAMES: usize = 1024;
/// Addresses waiting for the router at once (queued and being asked); more
/// are not asked until some are answered.
const MAX_ASKED: usize = 64;
/// Questions to the router in flight at once.
const LOOKUPS_AT_ONCE: usize = 4;
/// How long a router's name is trusted before it is asked again (Pi-hole
/// refreshes its names hourly). Past it the old name still shows while the
/// new answer is on its way.
const NAME_TTL: Duration = Duration::from_secs(3600);
/// How long "the router has no name for it" (or did not answer) is kept.
const NO_NAME_TTL: Duration = Duration::from_secs(600);

/// Where a device's name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A lease of this box's DHCP server.
    Dhcp,
    /// An A or AAAA record in `[[local.records]]`.
    Local,
    /// The router's answer to a PTR query.
    Ptr,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dhcp => "dhcp",
            Source::Local => "local",
            Source::Ptr => "ptr",
        }
    }
}

/// A client's name and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName {
    pub name: Arc<str>,
    pub source: Source,
}

type Names = HashMap<IpAddr, Arc<str>>;

/// A router's answer: a name, or none, until `expires`.
#[derive(Debug, Clone)]
struct Answer {
    name: Option<Arc<str>>,
    expires: Instant,
}

/// The router PTR questions go to.
struct Router {
    addr: SocketAddr,
    forwarder: crate::dns::forward::Forwarder,
}

/// The client name table. One per running server (`App::names`).
pub struct DeviceNames {
    dhcp: ArcSwap<Names>,
    local: ArcSwap<Names>,
    ptr: ArcSwap<HashMap<IpAddr, Answer>>,
    /// None: the router is not asked.
    router: ArcSwapOption<Router>,
    /// This box serves DHCP (`set_dhcp` was called, `stop_dhcp` not since).
    dhcp_serving: AtomicBool,
    /// Addresses handed to the asker and not answered yet.
    asked: Mutex<HashSet<IpAddr>>,
    asks: tokio::sync::mpsc::Sender<IpAddr>,
}

impl DeviceNames {
    /// The table for `cfg`, with its router asker running on tokio (call
    /// inside a runtime). The asker ends when the table is dropped.
    pub fn start(cfg: &Config) -> Arc<DeviceNames> {
        let (asks, rx) = tokio::sync::mpsc::channel(MAX_ASKED);
        let names = Arc::new(DeviceNames {
            dhcp: ArcSwap::default(),
            local: ArcSwap::default(),
            ptr: ArcSwap::default(),
            router: ArcSwapOption::empty(),
            dhcp_serving: AtomicBool::new(false),
            asked: Mutex::new(HashSet::new()),
            asks,
        });
        names.apply(cfg);
        tokio::spawn(ptr::serve(Arc::downgrade(&names), rx));
        names
    }

    /// Takes a new config's local records and router. A different router
    /// forgets the old one's answers.
    pub fn apply(&self, cfg: &Config) {
        self.local.store(Arc::new(local_names(cfg)));
        let want = router_of(cfg);
        let have = self.router.load().as_ref().map(|r| r.addr);
        if want != have {
            self.router.store(want.map(|addr| {
                Arc::new(Router {
                    addr,
                    forwarder: crate::dns::forward::Forwarder::new(
                        &[Upstream::Plain(addr)],
                        &cfg.dns,
                    ),
                })
            }));
            self.ptr.store(Arc::default());
        }
    }

    /// The DHCP server's names: every lease (and static lease) with a
    /// name, as address and host name. Replaces the previous set; call it
    /// after every change. While the box serves DHCP the router is not
    /// asked (its names would be stale), so call it, even with no names,
    /// when the server starts, and [`stop_dhcp`](Self::stop_dhcp) when it
    /// stops.
    pub fn set_dhcp(&self, entries: impl IntoIterator<Item = (IpAddr, String)>) {
        let mut names = Names::default();
        for (ip, name) in entries {
            let name = name.trim().trim_end_matches('.');
            if !name.is_empty() {
                names.insert(ip.to_canonical(), Arc::from(name));
            }
        }
        self.dhcp.store(Arc::new(names));
        self.dhcp_serving.store(true, Ordering::Relaxed);
    }

    /// The box no longer serves DHCP: its lease names go, the router is
    /// asked again.
    pub fn stop_dhcp(&self) {
        self.dhcp.store(Arc::default());
        self.dhcp_serving.store(false, Ordering::Relaxed);
    }

    /// The name to show for `ip`, if any source knows one. Never waits: an
    /// address only the router could name is asked about in the
    /// background, and named on a later read.
    pub fn name(&self, ip: IpAddr) -> Option<DeviceName> {
        let ip = ip.to_canonical();
        let named = |name: &Arc<str>, source| DeviceName {
            name: name.clone(),
            source,
        };
        if let Some(n) = self.dhcp.load().get(&ip) {
            return Some(named(n, Source::Dhcp));
        }
        if let Some(n) = self.local.load().get(&ip) {
            return Some(named(n, Source::Local));
        }
        let ptr = self.ptr.load();
        let answer = ptr.get(&ip);
        if answer.is_none_or(|a| a.expires <= Instant::now()) {
            self.ask(ip);
        }
        answer?.name.as_ref().map(|n| named(n, Source::Ptr))
    }

    /// [`name`](Self::name) of an address written as text (a log row's
    /// client); None for text that is not an address.
    pub fn name_of(&self, client: &str) -> Option<DeviceName> {
        self.name(client.trim().parse().ok()?)
    }

    /// Hands `ip` to the asker unless it is not the router's to name, or
    /// already asked, or the asker is full.
    fn ask(&self, ip: IpAddr) {
        if self.dhcp_serving.load(Ordering::Relaxed)
            || !on_local_network(ip)
            || self.router.load().is_none()
        {
            return;
        }
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.len() < MAX_ASKED && !asked.contains(&ip) && self.asks.try_send(ip).is_ok() {
            asked.insert(ip);
        }
    }

    /// Stores the router's answer for `ip` (None: no name, or no answer).
    fn answered(&self, ip: IpAddr, name: Option<String>) {
        let ttl = if name.is_some() {
            NAME_TTL
        } else {
            NO_NAME_TTL
        };
        let answer = Answer {
            name: name.map(Arc::from),
            expires: Instant::now() + ttl,
        };
        self.ptr.rcu(|old| {
            let mut table = HashMap::clone(old);
            if table.len() >= MAX_NAMES && !table.contains_key(&ip) {
                let now = Instant::now();
                table.retain(|_, a| a.expires > now);
                if table.len() >= MAX_NAMES
                    && let Some(first) = table.iter().min_by_key(|(_, a)| a.expires).map(|e| *e.0)
                {
                    table.remove(&first);
                }
            }
            table.insert(ip, answer.clone());
            table
        });
        self.asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

/// Address to name from the config's A and AAAA records; the first record
/// for an address names it.
fn local_names(cfg: &Config) -> Names {
    let mut names = Names::default();
    for r in &cfg.local.records {
        if let Some(ip) = r.value.ip() {
            names
                .entry(ip.to_canonical())
                .or_insert_with(|| Arc::from(r.name.to_string().trim_end_matches('.')));
        }
    }
    names
}

/// Where PTR questions go: `names.router`, or else the first plain-DNS
/// upstream on the local network (a home router used as the upstream);
/// None when `names.ask_router` is off or there is no such router.
pub fn router_of(cfg: &Config) -> Option<SocketAddr> {
    if !cfg.names.ask_router {
        return None;
    }
    if let Some(Upstream::Plain(a)) = &cfg.names.router {
        return Some(*a);
    }
    cfg.dns.upstreams.iter().find_map(|u| match u {
        Upstream::Plain(a) if on_local_network(a.ip()) => Some(*a),
        _ => None,
    })
}

/// Private (RFC 1918), link-local and ULA addresses: the ones whose names
/// only the local network knows. Loopback and public addresses are not.
pub fn on_local_network(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests;
