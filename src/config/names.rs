//! The `[names]` section: whether the router is asked for the names of
//! the household's devices (PTR, as Pi-hole does), and which router.
//!
//! Not for: choosing the router or asking it (`names`).

use super::values::Upstream;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct NamesConfig {
    /// Ask the router for the names of private-network clients.
    pub ask_router: bool,
    /// The router's DNS address ("192.168.1.1", port 53 unless given).
    /// Unset: the first plain-DNS upstream with a private address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<Upstream>,
}

impl Default for NamesConfig {
    fn default() -> Self {
        NamesConfig {
            ask_router: true,
            router: None,
        }
    }
}

impl NamesConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        match &self.router {
            None | Some(Upstream::Plain(_)) => Ok(()),
            Some(u) => Err(format!(
                "names.router: '{u}': give the router's plain DNS address, like \"192.168.1.1\""
            )),
        }
    }
}
