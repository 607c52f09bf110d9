//! The pipeline's side of prefetch (`dns::prefetch`): what a cache hit in
//! the last tenth of its entry's TTL hands over, and the refresh itself:
//! forward, inspect the answer, store it as a prefetched entry. A refresh
//! that fails, or whose answer the filter now blocks, leaves the old entry
//! to expire as it would have.
//!
//! Not for: answering a client (the hit that asked was answered from the
//! cache), or the queue between the threads (`dns::prefetch`).

use super::{Engine, Runtime, strip_opt};
use crate::dns::cache::CacheKey;
use crate::filter::Stamp;
use crate::wire;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// One entry to refresh: the question as it goes upstream, where to, and
/// what the answer is cached under.
pub struct Refresh {
    pub(super) msg: Vec<u8>,
    pub(super) key: CacheKey,
    /// A `[[forward]]` zone's upstreams, or None for `dns.upstreams`.
    pub(super) zone: Option<usize>,
    /// Inspect the answer's CNAMEs and addresses (the name was not
    /// allow-listed), for this client's groups.
    pub(super) inspect: bool,
    /// The filter's stamp for the name, kept with the refreshed answer.
    pub(super) stamp: Stamp,
    pub(super) client: IpAddr,
    pub(super) runtime: Arc<Runtime>,
}

impl Engine {
    /// Refreshes one cached entry from upstream (on the tokio side).
    pub async fn refresh(&self, r: Refresh) {
        self.prefetch.sent.fetch_add(1, Relaxed);
        let Ok(a) = r.runtime.forwarder(r.zone).query(&r.msg).await else {
            return;
        };
        if wire::rcode(&a.bytes) == wire::RCODE_SERVFAIL {
            return;
        }
        let mut resp = a.bytes;
        strip_opt(&mut resp);
        if r.inspect && self.filter.load().check_answer(&resp, r.client).is_some() {
            return;
        }
        self.cache.insert_prefetched(&r.key, &resp, r.stamp);
    }
}
