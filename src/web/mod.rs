//! The web UI and JSON API: set up, watch and run the box from its own page.
//!
//! The web UI and JSON API: set up, watch and run the box from its own page.
//!
//! One module per feature, each owning its input and output types, its JSON
//! handlers under `/api/v1`, its server-rendered page and its `routes()`:
//! `session` (login, password, tokens), `setup`, `dashboard` (and pause),
//! `log`, `rules`, `lists`, `groups`, `local` (records and forwarding),
//! `settings`, `system` (network, backup, import, reboot, reset), `firmware`
//! (upload, trial boot, rollback), `metrics`.
//! Pages use a little progressive JavaScript (`assets`) that sends every
//! change to the API. Every request passes `guard` first: Host allowlist
//! (DNS rebinding), authentication, Origin and CSRF checks, security
//! headers. Shared by the features: `http` (errors, extractors, config
//! edits, cookies, CSRF) and `html` (escaping, page frame, widgets). The
//! rest of the server is reached only through [`Backend`], implemented
//! beside the server (`app`). `scope` maps "this entry / list applies to
//! these groups" onto the config; `backup` is the backup file (config plus
//! credential hashes); `teleporter` reads Pi-hole exports; `network` is the
//! appliance's `network.conf`.
//! Not for: DNS, filtering or storage; those live behind the backend.

mod assets;
pub mod auth;
pub mod backend;
pub mod backup;
mod dashboard;
mod firmware;
mod groups;
mod guard;
mod html;
mod http;
mod lists;
mod local;
pub mod log;
mod metrics;
pub mod network;
mod openapi;
mod rules;
pub mod scope;
mod session;
mod settings;
pub mod setup;
pub mod sysinfo;
mod system;
pub mod teleporter;

pub use backend::Backend;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
pub struct Web {
    pub backend: Arc<dyn Backend>,
    pub auth: auth::Auth,
    assets: assets::Assets,
    sys: sysinfo::Sampler,
}

pub type State = Arc<Web>;

/// Both ends of a connection: the peer for rate limits, the local address
/// to tell the user where the box answers.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl Connected<IncomingStream<'_, TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        let peer = *stream.remote_addr();
        Conn {
            peer,
            local: stream.io().local_addr().unwrap_or(peer),
        }
    }
}

impl Web {
    pub fn new(backend: Arc<dyn Backend>) -> anyhow::Result<State> {
        let data_dir = backend.data_dir();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| anyhow::anyhow!("creating data_dir {}: {e}", data_dir.display()))?;
        Ok(Arc::new(Web {
            auth: auth::Auth::load(&data_dir)?,
            backend,
            assets: assets::Assets::build(),
            sys: sysinfo::Sampler::new(),
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
        .merge(settings::routes())
        .merge(system::routes())
        .merge(firmware::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        .merge(assets::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Binds every address (port 0 picks a free one), serves in the background
/// and returns the bound addresses.
pub async fn serve(
    backend: Arc<dyn Backend>,
    addrs: &[SocketAddr],
) -> anyhow::Result<Vec<SocketAddr>> {
    let state = Web::new(backend)?;
    let mut bound = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("web: cannot listen on {addr}: {e}"))?;
        bound.push(listener.local_addr()?);
        let app = router(state.clone()).into_make_service_with_connect_info::<Conn>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("web server stopped: {e}");
            }
        });
    }
    Ok(bound)
}
