//! DNS over HTTPS (RFC 8484): POST application/dns-message.
//!
//! The URL's host is pinned to the configured bootstrap IPs and every other
//! name lookup is refused, so the box never asks itself (or anyone) where
//! its upstream is. HTTP/2 or HTTP/1.1 by ALPN; reqwest keeps connections.
//! The query goes out with ID 0 as RFC 8484 recommends (HTTP caches); TLS,
//! not the ID, protects this exchange from forgery.

use super::{AttemptError, Question, check_reply, health::Health};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

const MEDIA_TYPE: &str = "application/dns-message";
const MAX_REPLY: usize = 65_535;

pub(crate) struct DohClient {
    setup: Result<(reqwest::Client, reqwest::Url), String>,
}

/// Refuses every lookup: names we may reach are pinned with `resolve`.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let msg = format!(
            "'{}' has no bootstrap IP; glory-hole does not look up its own upstreams",
            name.as_str()
        );
        Box::pin(async move { Err(msg.into()) })
    }
}

impl DohClient {
    pub fn new(url: &str, bootstrap: &[IpAddr], roots: Arc<rustls::RootCertStore>) -> DohClient {
        DohClient {
            setup: build(url, bootstrap, roots),
        }
    }

    pub async fn exchange(
        &self,
        msg: &[u8],
        q: &Question,
        health: &Health,
    ) -> Result<Vec<u8>, AttemptError> {
        let (client, url) = self
            .setup
            .as_ref()
            .map_err(|e| AttemptError::Setup(e.clone()))?;
        let mut body = msg.to_vec();
        crate::wire::set_id(&mut body, 0);
        let mut resp = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, MEDIA_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| AttemptError::Http(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(AttemptError::Http(format!(
                "server answered {}",
                resp.status()
            )));
        }
        let mut reply = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| AttemptError::Http(error_chain(&e)))?
        {
            if reply.len() + chunk.len() > MAX_REPLY {
                return Err(AttemptError::Http("answer larger than 65535 bytes".into()));
            }
            reply.extend_from_slice(&chunk);
        }
        if check_reply(&reply, 0, q).is_err() {
            health.dropped();
            return Err(AttemptError::Http(
                "the answer does not match the question".into(),
            ));
        }
        Ok(reply)
    }
}

fn build(
    url: &str,
    bootstrap: &[IpAddr],
    roots: Arc<rustls::RootCertStore>,
) -> Result<(reqwest::Client, reqwest::Url), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("'{url}': {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!("'{url}': DoH needs an https:// URL"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("'{url}': no host"))?
        .to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bootstrap.is_empty() && bare.parse::<IpAddr>().is_err() {
        return Err(format!(
            "'{url}': no bootstrap IP for {host}; add it after '#' (https://{host}/dns-query#IP)"
        ));
    }
    let tls = super::tls::client_config(roots, &[b"h2", b"http/1.1"])?;
    // Port 0: reqwest takes the port from the URL.
    let addrs: Vec<SocketAddr> = bootstrap.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(NoLookups))
        .resolve_to_addrs(bare, &addrs)
        .no_proxy()
        // A redirect elsewhere would need a lookup we refuse to make.
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .build()
        .map_err(|e| {
            format!(
                "'{url}': cannot set up the HTTPS client: {}",
                error_chain(&e)
            )
        })?;
    Ok((client, parsed))
}

/// reqwest's top-level message hides the cause ("error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
