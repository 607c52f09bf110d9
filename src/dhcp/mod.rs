//! The DHCPv4 server, for a household whose router cannot hand out
//! another DNS server: the box hands out addresses on one interface, with
//! itself as the DNS server, the router as the gateway, and the devices'
//! names answering as local names (`tv.lan`).
//!
//! ```text
//! start: interface's address → leases file → another server? (probe)
//!   → refuse (Status::Refused) | serve (server: socket → reply → pool)
//!   → publish leases (Leases snapshot, DNS names) → save in batches (store)
//! ```
//!
//! [`Dhcp`] is the app's handle: the [`Status`] the web UI shows, the
//! read-only [`Leases`] snapshot any part may read, and the leases saved
//! on shutdown. The wire format is `dhcproto`'s; the decisions are ours.
//! Not for: the `[dhcp]` schema (`config`), answering DNS (`dns`).

mod pool;
mod probe;
mod reply;
mod server;
mod store;

use crate::config::{Config, DhcpConfig, Mac};
use crate::dns::lease_names::LeaseNames;
use crate::names::DeviceNames;
use arc_swap::ArcSwap;
use pool::Pool;
use reply::Network;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often changed leases are written at most: a lost minute costs a
/// client at worst a new address, and the card's flash is spared a write
/// per packet. Also written on shutdown and before an update's restart.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// What the DHCP server is doing, for the log and the web UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    /// `dhcp.enabled = false`.
    Off,
    /// Looking for another DHCP server before serving.
    Checking { interface: String },
    Serving {
        interface: String,
        /// The box's own address there: DNS server and server identifier.
        address: Ipv4Addr,
    },
    /// Another DHCP server answers on the segment: ours stays off.
    Refused { reason: String },
    /// It cannot serve (no address on the interface, port taken, ...).
    Failed { reason: String },
}

/// One device the DHCP server knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseInfo {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// Its name as a DNS label (`tv`): the static lease's, or the one the
    /// device sent (option 12).
    pub name: Option<String>,
    /// Unix seconds when its lease ends (in the past: ended, the address
    /// still kept for it); None for a static lease not taken yet.
    pub expires: Option<u64>,
    #[serde(rename = "static")]
    pub is_static: bool,
}

/// The leases as last changed, for any part of the app: reading never
/// waits on the DHCP server (an `ArcSwap` snapshot, replaced whole).
#[derive(Clone, Default)]
pub struct Leases(Arc<ArcSwap<Vec<LeaseInfo>>>);

impl Leases {
    /// Every known device, by address.
    pub fn snapshot(&self) -> Arc<Vec<LeaseInfo>> {
        self.0.load_full()
    }
}

/// The running server's leases and where they are saved.
struct State {
    pool: Pool,
    /// Changed since the last save.
    dirty: bool,
}

/// What the server task, the saver and the handle share.
struct Shared {
    state: Mutex<State>,
    file: PathBuf,
    domain: String,
    leases: Leases,
    names: Arc<ArcSwap<LeaseNames>>,
    device_names: Arc<DeviceNames>,
}

impl Shared {
    /// Replaces the lease snapshot and the DNS names with the pool's.
    fn publish(&self) {
        let mut list: Vec<LeaseInfo> = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let statics: Vec<_> = state.pool.statics().map(|(m, ..)| *m).collect();
            let mut list: Vec<LeaseInfo> = state
                .pool
                .leases()
                .map(|(mac, l)| LeaseInfo {
                    mac: *mac,
                    ip: l.ip,
                    name: l.name.clone(),
                    expires: Some(l.expires),
                    is_static: statics.contains(mac),
                })
                .collect();
            for (mac, ip, name) in state.pool.statics() {
                if !list.iter().any(|l| l.mac == *mac) {
                    list.push(LeaseInfo {
                        mac: *mac,
                        ip,
                        name: name.map(str::to_string),
                        expires: None,
                        is_static: true,
                    });
                }
            }
            list
        };
        // A name two devices sent goes to the one leased last; static
        // leases' names win.
        list.sort_by_key(|l| (l.is_static, l.expires));
        let full: Vec<(String, Ipv4Addr)> = list
            .iter()
            .filter_map(|l| Some((format!("{}.{}", l.name.as_ref()?, self.domain), l.ip)))
            .collect();
        self.names.store(Arc::new(LeaseNames::new(
            full.iter().map(|(n, ip)| (n.as_str(), *ip)),
        )));
        self.device_names
            .set_dhcp(full.into_iter().map(|(n, ip)| (IpAddr::V4(ip), n)));
        list.sort_by_key(|l| l.ip);
        self.leases.0.store(Arc::new(list));
    }

    /// Writes the leases if they changed since the last save.
    fn save(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.dirty {
            return;
        }
        match store::save(&self.file, state.pool.leases()) {
            Ok(()) => state.dirty = false,
            Err(e) => tracing::warn!("dhcp: saving leases to {}: {e}", self.file.display()),
        }
    }
}

/// A started server: its task, and its leases to save when it stops.
struct Running {
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

/// The app's handle on the DHCP server.
pub struct Dhcp {
    status: Arc<ArcSwap<Status>>,
    leases: Leases,
    names: Arc<ArcSwap<LeaseNames>>,
    device_names: Arc<DeviceNames>,
    running: Mutex<Option<Running>>,
}

impl Dhcp {
    /// Starts serving when `[dhcp]` is enabled (checking for another
    /// server first, in the background); lease names go into `names`
    /// (the engine's, answered over DNS) and `device_names` (what the web
    /// shows for a client address). Must run inside a tokio runtime.
    pub fn start(
        cfg: &Config,
        names: Arc<ArcSwap<LeaseNames>>,
        device_names: Arc<DeviceNames>,
    ) -> Dhcp {
        let dhcp = Dhcp {
            status: Arc::new(ArcSwap::from_pointee(Status::Off)),
            leases: Leases::default(),
            names,
            device_names,
            running: Mutex::new(None),
        };
        dhcp.apply(cfg);
        dhcp
    }

    pub fn status(&self) -> Arc<Status> {
        self.status.load_full()
    }

    /// The read-only lease snapshot (cheap to clone and keep).
    pub fn leases(&self) -> Leases {
        self.leases.clone()
    }

    /// Saves changed leases now (shutdown, restart for an update).
    pub fn flush(&self) {
        if let Some(r) = &*self.running.lock().unwrap_or_else(|p| p.into_inner()) {
            r.shared.save();
        }
    }

    /// Stops the running server (its leases saved) and starts one for
    /// `cfg`'s `[dhcp]`, if enabled.
    pub fn apply(&self, cfg: &Config) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = running.take() {
            old.task.abort();
            old.shared.save();
        }
        self.names.store(Arc::default());
        self.device_names.stop_dhcp();
        self.leases.0.store(Arc::default());
        let d = &cfg.dhcp;
        if !d.enabled {
            self.status.store(Arc::new(Status::Off));
            return;
        }
        let net = match network(d) {
            Ok(n) => n,
            Err(reason) => {
                tracing::error!("dhcp: not serving: {reason}");
                self.status.store(Arc::new(Status::Failed { reason }));
                return;
            }
        };
        let file = store::path(&cfg.data_dir);
        let mut pool = Pool::new(d, net.own);
        pool.restore(store::load(&file));
        let shared = Arc::new(Shared {
            state: Mutex::new(State { pool, dirty: false }),
            file,
            domain: d.domain.to_string(),
            leases: self.leases.clone(),
            names: self.names.clone(),
            device_names: self.device_names.clone(),
        });
        self.status.store(Arc::new(Status::Checking {
            interface: d.interface.clone(),
        }));
        let task = tokio::spawn(run(
            d.interface.clone(),
            net,
            shared.clone(),
            self.status.clone(),
        ));
        *running = Some(Running { task, shared });
    }
}

/// What the answers carry, from `[dhcp]` and the interface's address.
fn network(d: &DhcpConfig) -> Result<Network, String> {
    let mask = u32::from(d.netmask);
    let gateway = d.gateway.ok_or("dhcp.gateway is not set")?;
    let own = crate::netif::addrs_on(&d.interface)
        .into_iter()
        .filter_map(|a| match a.ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .find(|ip| u32::from(*ip) & mask == u32::from(gateway) & mask)
        .ok_or_else(|| {
            format!(
                "dhcp.interface '{}' has no address in the network of dhcp.gateway {gateway}/{} \
                 (is the interface up, with a fixed address on the LAN?)",
                d.interface,
                mask.leading_ones()
            )
        })?;
    Ok(Network {
        own,
        netmask: d.netmask,
        gateway: Some(gateway),
        domain: d.domain.to_string(),
        lease_secs: d.lease_time.0.as_secs().min(u32::MAX as u64) as u32,
    })
}

/// The server's life: check for another server, then serve and save.
async fn run(interface: String, net: Network, shared: Arc<Shared>, status: Arc<ArcSwap<Status>>) {
    let stop = |s: Status| {
        if let Status::Refused { reason } | Status::Failed { reason } = &s {
            tracing::error!("dhcp: not serving: {reason}");
        }
        status.store(Arc::new(s));
    };
    match probe::other_server(&interface, probe::WAIT).await {
        Ok(None) => {}
        Ok(Some(other)) => {
            return stop(Status::Refused {
                reason: format!(
                    "another DHCP server ({other}) answers on {interface}; two DHCP servers on one \
                     network hand out clashing addresses. Switch one off (the router's DHCP, or \
                     dhcp.enabled here) and restart"
                ),
            });
        }
        Err(e) => {
            return stop(Status::Failed {
                reason: format!("cannot check {interface} for another DHCP server: {e}"),
            });
        }
    }
    let sock = match server::bind(&interface, 67) {
        Ok(s) => s,
        Err(e) => {
            return stop(Status::Failed {
                reason: format!("{e}"),
            });
        }
    };
    shared.publish();
    tracing::info!("dhcp: serving on {interface} as {}", net.own);
    status.store(Arc::new(Status::Serving {
        interface,
        address: net.own,
    }));
    let saver = {
        let shared = shared.clone();
        async move {
            let mut tick = tokio::time::interval(SAVE_EVERY);
            loop {
                tick.tick().await;
                let s = shared.clone();
                let _ = tokio::task::spawn_blocking(move || s.save()).await;
            }
        }
    };
    tokio::select! {
        _ = server::serve(sock, net, shared) => {}
        _ = saver => {}
    }
}

/// Unix seconds (the leases file's time).
fn now_unix() -> u64 {
    (crate::clock::now_ms() / 1000).max(0) as u64
}
