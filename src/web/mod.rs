//! The web UI and JSON API: set up, watch and run the box from its own page.
//!
//! One module per feature, each owning its input and output types, its JSON
//! handlers under `/api/v1`, its server-rendered page and its `routes()`:
//! `session` (login, password, tokens), `setup`, `dashboard` (and pause),
//! `log`, `rules`, `lists`, `groups`, `local` (records and forwarding),
//! `settings`, `system` (network, backup, import, reboot, reset), `firmware`
//! (upload, trial boot, rollback), `metrics`.
//! Pages use a little progressive JavaScript (`assets`) that sends every
//! change to the API. Connections are accepted by `listen` (connection
//! cap, header and request timeouts); every request passes `guard` first:
//! Host allowlist (DNS rebinding), authentication, token scope, Origin and
//! CSRF checks, security headers. `limits` bounds bodies and uploads;
//! `setup_gate` decides who may set up an unset box. Shared by the features: `http` (errors, extractors, config
//! edits, cookies, CSRF) and `html` (escaping, page frame, widgets). The
//! rest of the server is reached only through [`Backend`], implemented
//! beside the server (`app`). `scope` maps "this entry / list applies to
//! these groups" onto the config; `backup` is the backup file (config plus
//! credential hashes); `teleporter` reads Pi-hole exports; `network` is the
//! appliance's `network.conf`. `pihole` answers the part of Pi-hole's v6
//! API (`/api/auth`, `/api/stats/...`, `/api/dns/blocking`) that Home
//! Assistant's Pi-hole integration uses.
//! Not for: DNS, filtering or storage; those live behind the backend.

mod assets;
pub mod auth;
pub mod backend;
pub mod backup;
mod dashboard;
mod dhcp;
mod dhcp_form;
mod dhcp_offer;
mod firmware;
mod groups;
mod guard;
mod html;
mod http;
mod limits;
mod listen;
mod lists;
mod local;
pub mod log;
mod login_limit;
mod metrics;
pub mod network;
mod openapi;
mod pihole;
mod rules;
pub mod scope;
mod session;
mod settings;
pub mod setup;
mod setup_gate;
pub mod sysinfo;
mod system;
pub mod teleporter;

pub use backend::Backend;

use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
pub struct Web {
    pub backend: Arc<dyn Backend>,
    pub auth: auth::Auth,
    assets: assets::Assets,
    sys: sysinfo::Sampler,
    /// When the web server started: first-boot setup is open for
    /// `web.setup_window` after it (see `setup_gate`).
    started: std::time::Instant,
    /// Uploads handled at once (see `limits`).
    uploads: tokio::sync::Semaphore,
    /// Pi-hole API sessions opened with an API token (see `pihole`).
    pihole: pihole::Sessions,
}

pub type State = Arc<Web>;

/// Both ends of a connection: the peer for rate limits, the local address
/// to tell the user where the box answers.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl Web {
    pub fn new(backend: Arc<dyn Backend>) -> anyhow::Result<State> {
        let data_dir = backend.data_dir();
        crate::atomic_file::create_private_dir(&data_dir)
            .map_err(|e| anyhow::anyhow!("creating data_dir {}: {e}", data_dir.display()))?;
        Ok(Arc::new(Web {
            auth: auth::Auth::load(&data_dir)?,
            backend,
            assets: assets::Assets::build(),
            sys: sysinfo::Sampler::new(),
            started: std::time::Instant::now(),
            uploads: tokio::sync::Semaphore::new(limits::UPLOADS_AT_ONCE),
            pihole: pihole::Sessions::default(),
        }))
    }
}

/// All routes with the guard around them.
pub fn router(state: State) -> Router {
    Router::new()
        .merge(session::routes())
        .merge(setup::routes())
        .merge(dashboard::routes())
        .merge(log::routes())
        .merge(rules::routes())
        .merge(lists::routes())
        .merge(groups::routes())
        .merge(local::routes())
        .merge(dhcp::routes())
        .merge(dhcp_form::routes())
        .merge(settings::routes())
        .merge(system::routes())
        .merge(firmware::routes())
        .merge(metrics::routes())
        .merge(pihole::routes())
        .merge(openapi::routes())
        .merge(assets::routes())
        .layer(limits::upload(limits::JSON_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Binds every address (port 0 picks a free one), serves in the background
/// and returns the bound addresses. An IPv6 address is bound IPv6-only, so
/// `[::]:80` sits beside `0.0.0.0:80`; one the machine has no IPv6 for is
/// skipped with a warning (see `netif::ipv6_unavailable`).
pub async fn serve(
    backend: Arc<dyn Backend>,
    addrs: &[SocketAddr],
) -> anyhow::Result<Vec<SocketAddr>> {
    let state = Web::new(backend)?;
    let mut bound = Vec::new();
    for &addr in addrs {
        let listener = match bind(addr) {
            Err(e) if crate::netif::ipv6_unavailable(addr, &e) => {
                tracing::warn!("web: not listening on {addr}: no IPv6 there ({e}); going on");
                continue;
            }
            l => l.map_err(|e| anyhow::anyhow!("web: cannot listen on {addr}: {e}"))?,
        };
        bound.push(listener.local_addr()?);
        tokio::spawn(listen::run(listener, router(state.clone())));
    }
    if bound.is_empty() && !addrs.is_empty() {
        anyhow::bail!("web.listen: none of {addrs:?} could be bound");
    }
    Ok(bound)
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}
