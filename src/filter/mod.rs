//! STUB: to be replaced by the filtering implementation (issue 3).
use crate::events::Reason;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No rule matched.
    Pass,
    /// An allow rule matched: skip answer inspection too.
    Allowed,
    Blocked(Reason),
}

/// One immutable filter snapshot; the data path reads it lock-free.
pub struct Filter;

impl Filter {
    pub fn empty() -> Filter {
        Filter
    }
    /// `name`: lower-case dotted text without the trailing dot.
    pub fn check(&self, _name: &str, _client: IpAddr) -> Verdict {
        Verdict::Pass
    }
    /// Inspects an upstream answer (CNAME chain, rebinding) for a query that
    /// passed `check`. Returns why it must be blocked.
    pub fn check_answer(&self, _response: &[u8], _client: IpAddr) -> Option<Reason> {
        None
    }
    pub fn blocked_response(&self) -> crate::config::BlockedResponse {
        crate::config::BlockedResponse::Null
    }
    pub fn blocked_ttl(&self) -> u32 {
        2
    }
}
