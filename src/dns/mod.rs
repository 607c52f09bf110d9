//! The DNS engine: sockets, wire views, the per-query pipeline, the cache,
//! local authority and forwarding.

pub mod cache;
pub mod forward;
pub mod local;
pub mod mmsg;
pub mod pipeline;
pub mod server;
pub mod wire;

pub use pipeline::Engine;
