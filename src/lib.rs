//! glory-hole: a DNS ad-blocking sinkhole for small boards.
//!
//! A query's life, top to bottom: `dns::server` (sockets) → `dns::wire`
//! (checked views) → `dns::pipeline` (local records → filter → cache →
//! forward) → answer bytes, plus a `events::QueryEvent` for `querylog`.
//! The control plane (`web`, `filter` updates, `app` reloads) builds
//! immutable snapshots and swaps them in; DNS workers never wait on it.

pub mod allocator;
pub mod app;
pub mod appliance;
pub mod clock;
pub mod config;
pub mod dns;
pub mod events;
pub mod filter;
pub mod priority;
pub mod querylog;
/// Test doubles, only with the `testing` feature (tests, benches, the
/// stand-in-upstream binary); the firmware build leaves them out.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trim;
pub mod web;
