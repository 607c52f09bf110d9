//! STUB: to be replaced by the cache implementation.
use crate::config::CacheConfig;
use crate::dns::wire::WireName;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub name: WireName,
    pub qtype: u16,
    pub qclass: u16,
    pub do_bit: bool,
    pub cd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Stale,
    Miss,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub expired: u64,
    pub entries: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
}

pub struct Cache;

impl Cache {
    pub fn new(_cfg: &CacheConfig) -> Cache {
        Cache
    }
    pub fn get(
        &self,
        _key: &CacheKey,
        _id: u16,
        _question: &[u8],
        _allow_stale: bool,
        _out: &mut Vec<u8>,
    ) -> Lookup {
        Lookup::Miss
    }
    pub fn insert(&self, _key: &CacheKey, _response: &[u8]) {}
    pub fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
    pub fn clear(&self) {}
}
impl Cache {
    pub fn sweep_expired(&self) {}
}
