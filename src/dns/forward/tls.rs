//! DNS over TLS (RFC 7858) to a bootstrap IP, verifying the configured
//! server name against the trust roots.
//!
//! Connections are kept in a small idle pool and reused one query at a
//! time (no pipelining): simple and correct. A pooled connection the server
//! has closed fails at once; the attempt then retries on a fresh one.

use super::{AttemptError, Question, health::Health, tcp};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Idle connections kept per upstream.
const POOL: usize = 4;
/// Servers drop idle DoT connections after some seconds; older ones are
/// not worth trying.
const MAX_IDLE: Duration = Duration::from_secs(10);

pub(crate) struct DotClient {
    addr: SocketAddr,
    setup: Result<(ServerName<'static>, TlsConnector), String>,
    idle: Mutex<Vec<(Instant, TlsStream<TcpStream>)>>,
}

/// A rustls client config on the ring provider.
pub(crate) fn client_config(
    roots: Arc<rustls::RootCertStore>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

impl DotClient {
    pub fn new(
        addr: SocketAddr,
        server_name: &str,
        roots: Arc<rustls::RootCertStore>,
    ) -> DotClient {
        let setup = ServerName::try_from(server_name.to_string())
            .map_err(|_| format!("'{server_name}' is not a valid TLS server name"))
            .and_then(|name| {
                let config = client_config(roots, &[])?;
                Ok((name, TlsConnector::from(Arc::new(config))))
            });
        DotClient {
            addr,
            setup,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<TlsStream<TcpStream>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((since, conn)) = idle.pop() {
            if since.elapsed() < MAX_IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: TlsStream<TcpStream>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL {
            idle.push((Instant::now(), conn));
        }
    }

    pub async fn exchange(
        &self,
        msg: &[u8],
        id: u16,
        q: &Question,
        health: &Health,
    ) -> Result<Vec<u8>, AttemptError> {
        let (name, connector) = self
            .setup
            .as_ref()
            .map_err(|e| AttemptError::Setup(e.clone()))?;
        if let Some(mut conn) = self.take_idle()
            && let Ok(reply) = tcp::exchange_on(&mut conn, msg, id, q, health).await
        {
            self.put_idle(conn);
            return Ok(reply);
        }
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let mut conn = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| AttemptError::Tls(e.to_string()))?;
        let reply = tcp::exchange_on(&mut conn, msg, id, q, health).await?;
        self.put_idle(conn);
        Ok(reply)
    }
}
