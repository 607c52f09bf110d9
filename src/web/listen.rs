//! Accepting web connections with bounds a LAN device cannot stretch: at
//! most [`MAX_CONNECTIONS`] open at once and [`PER_ADDRESS`] from one
//! address (past that a new one is closed at once, so one device's flood
//! leaves room for the owner's browser), request headers complete within [`HEADER_TIMEOUT`] (a client
//! trickling its headers, slow-loris, is dropped), and every request
//! answered within [`REQUEST_TIMEOUT`] (see `guard`).
//!
//! axum's own `serve` sets no header timeout, so connections are served
//! here with hyper's builder; the peer and local address reach handlers
//! as the same `ConnectInfo<Conn>` extension `axum::serve` would give.
//! Not for: what a request may do (see `guard`) or body sizes (see
//! `limits`).

use super::Conn;
use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Open web connections at once; a household has a few browsers and a
/// script or two.
pub const MAX_CONNECTIONS: usize = 128;
/// Open web connections from one address at once (a browser opens six).
pub const PER_ADDRESS: usize = 16;
/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request has from its headers to its answer, body upload
/// included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves `app` on `listener` until the listener fails.
pub async fn run(listener: TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let by_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("web: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let Some(mine) = AddressSlot::take(&by_address, peer.ip()) else {
            drop(stream);
            continue;
        };
        let conn = Conn {
            peer,
            local: stream.local_addr().unwrap_or(peer),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slots = (slot, mine);
            let svc = app.map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut()
                    .insert(axum::Extension(ConnectInfo(conn)).0);
                req
            });
            let svc = TowerToHyperService::new(svc.map_request(
                |req: http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new),
            ));
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            builder.http2().timer(TokioTimer::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("web: connection from {peer}: {e}");
            }
        });
    }
}

/// One of an address's [`PER_ADDRESS`] connections, given back on drop.
struct AddressSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl AddressSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<AddressSlot> {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
