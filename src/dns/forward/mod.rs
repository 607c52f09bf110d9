//! STUB: to be replaced by the forwarding implementation.
use crate::config::{DnsConfig, Upstream};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream answered within the deadline")]
    Timeout,
}

pub struct Answer {
    pub bytes: Vec<u8>,
    pub upstream: u8,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpstreamHealth {
    pub upstream: String,
    pub latency_ms: f64,
    pub failures: u64,
    pub healthy: bool,
}

pub struct Forwarder;

impl Forwarder {
    pub fn new(_upstreams: &[Upstream], _cfg: &DnsConfig) -> Forwarder {
        Forwarder
    }
    pub async fn query(&self, _msg: &[u8]) -> Result<Answer, ForwardError> {
        Err(ForwardError::Timeout)
    }
    pub fn health(&self) -> Vec<UpstreamHealth> {
        Vec::new()
    }
}
