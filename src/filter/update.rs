//! Downloading URL lists: HTTPS with rustls (redirects may not leave it), conditional requests (ETag,
//! If-Modified-Since), a size cap, a timeout, and a content check before the
//! copy on flash is replaced. A failed download keeps the last good copy and
//! is reported on the list, never fatal. Not for: scheduling (see the
//! service) or parsing rules into the index (see `snapshot::compile`).

use super::parse::parse_list;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What we remember about a URL list's last download, next to its copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Last attempt, successful or not (Unix ms).
    pub last_checked_ms: Option<i64>,
    /// Last time the copy's content was replaced.
    pub last_changed_ms: Option<i64>,
    pub last_error: Option<String>,
}

impl DownloadState {
    pub fn path_for(copy: &Path) -> PathBuf {
        copy.with_extension("json")
    }

    pub fn load(copy: &Path) -> DownloadState {
        std::fs::read(Self::path_for(copy))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, copy: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("download state serializes");
        crate::atomic_file::save_atomic(&Self::path_for(copy), &bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New content saved.
    Updated { bytes: u64, rules: u64 },
    /// The server said 304 Not Modified.
    NotModified,
}

/// Redirects a list download follows at most.
const MAX_REDIRECTS: usize = 5;

/// The HTTP client used for list downloads: rustls with the webpki roots,
/// HTTP/1.1; every redirect must stay on https (`config::list_url_ok`).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("glory-hole/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match crate::config::list_url_ok(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => {
                    let to = attempt.url().to_string();
                    attempt.error(format!("redirected to {to}: {e}"))
                }
            }
        }))
        .build()?)
}

/// Downloads `url` into `copy` if it changed. `state` is updated either way
/// (the caller saves it). On any error the copy is left untouched.
pub async fn download(
    client: &reqwest::Client,
    name: &str,
    url: &str,
    copy: &Path,
    state: &mut DownloadState,
    timeout: Duration,
    max_bytes: u64,
) -> anyhow::Result<Outcome> {
    state.last_checked_ms = Some(crate::clock::now_ms());
    let res = tokio::time::timeout(timeout, fetch(client, url, copy, state, max_bytes)).await;
    let res = match res {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "timed out after {}s",
            timeout.as_secs_f32()
        )),
    };
    let res = res.and_then(|body| match body {
        None => Ok(Outcome::NotModified),
        Some((body, etag, modified)) => {
            let rules = check_content(&body)?;
            crate::atomic_file::save_atomic(copy, &body)
                .with_context(|| format!("saving {}", copy.display()))?;
            state.etag = etag;
            state.last_modified = modified;
            state.last_changed_ms = state.last_checked_ms;
            Ok(Outcome::Updated {
                bytes: body.len() as u64,
                rules,
            })
        }
    });
    let res = res.with_context(|| format!("list '{name}': {url}"));
    state.last_error = res.as_ref().err().map(|e| format!("{e:#}"));
    res
}

type Body = Option<(Vec<u8>, Option<String>, Option<String>)>;

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    copy: &Path,
    state: &DownloadState,
    max_bytes: u64,
) -> anyhow::Result<Body> {
    let mut req = client.get(url);
    // Conditional headers only when we still have the copy they describe.
    if copy.exists() {
        if let Some(e) = &state.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(m) = &state.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
        }
    }
    let mut resp = req.send().await.map_err(|e| anyhow::anyhow!(explain(&e)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && copy.exists() {
        return Ok(None);
    }
    if !status.is_success() {
        bail!("HTTP {status}; keeping the previous copy");
    }
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        bail!(
            "larger than the {} MiB limit (filter.download_max_mib)",
            max_bytes >> 20
        );
    }
    let header = |h| {
        resp.headers()
            .get(h)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(reqwest::header::ETAG);
    let modified = header(reqwest::header::LAST_MODIFIED);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| anyhow::anyhow!("{e}"))? {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            bail!(
                "larger than the {} MiB limit (filter.download_max_mib)",
                max_bytes >> 20
            );
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some((body, etag, modified)))
}

/// reqwest's message with its causes (a refused redirect says why only
/// in its source).
fn explain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Refuses content that is not a blocklist (an HTML error page, a binary,
/// an empty file): returns the rule count otherwise.
pub fn check_content(body: &[u8]) -> anyhow::Result<u64> {
    if body.contains(&0) {
        bail!("not a blocklist: binary content");
    }
    let stats = parse_list(body, |_| {})?;
    if stats.rules == 0 {
        let first = stats.samples.first().cloned().unwrap_or_default();
        bail!(
            "not a blocklist: no usable rules in {} lines {first}",
            stats.lines
        );
    }
    if stats.invalid > stats.rules {
        bail!(
            "not a blocklist: {} unusable lines against {} rules ({})",
            stats.invalid,
            stats.rules,
            stats.samples.first().cloned().unwrap_or_default()
        );
    }
    Ok(stats.rules)
}
