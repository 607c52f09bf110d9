//! Accepting web connections with bounds a LAN device cannot stretch: at
//! most [`MAX_CONNECTIONS`] open at once (past that a new one is closed at
//! once), request headers complete within [`HEADER_TIMEOUT`] (a client
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
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Open web connections at once; a household has a few browsers and a
/// script or two.
pub const MAX_CONNECTIONS: usize = 128;
/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request has from its headers to its answer, body upload
/// included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves `app` on `listener` until the listener fails.
pub async fn run(listener: TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let conn = Conn {
            peer,
            local: stream.local_addr().unwrap_or(peer),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
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
