//! The DNS engine: sockets, the per-query pipeline, the cache, local
//! authority and forwarding. The wire views they read queries and answers
//! through are `crate::wire`.

pub mod cache;
pub mod client_slots;
pub mod forward;
pub mod lease_names;
pub mod local;
pub mod mmsg;
pub mod pipeline;
pub mod prefetch;
pub mod rate_limit;
pub mod server;
pub mod udp_loop;

pub use pipeline::Engine;
