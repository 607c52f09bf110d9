//! glory-hole: a DNS ad-blocking sinkhole for small boards.
//!
//! A query's life, top to bottom: `dns::server` (sockets) → `wire`
//! (checked views) → `dns::pipeline` (local records → filter → cache →
//! forward) → answer bytes, plus a `events::QueryEvent` for `querylog`.
//! The control plane (`web`, `filter` updates, `app` reloads) builds
//! immutable snapshots and swaps them in; DNS workers never wait on it.
//!
//! A query as the pipeline first sees it: a checked view over the bytes,
//! its name lower-cased, nothing allocated.
//!
//! ```
//! use glory_hole::wire::{self, Query};
//!
//! // ID 0x1234, RD, one question: Ads.Example.COM A IN.
//! let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
//! for label in ["Ads", "Example", "COM"] {
//!     bytes.push(label.len() as u8);
//!     bytes.extend_from_slice(label.as_bytes());
//! }
//! bytes.extend_from_slice(&[0, 0, 1, 0, 1]);
//!
//! let q = Query::parse(&bytes).unwrap();
//! let mut name = heapless::String::<256>::new();
//! wire::name_to_text(&q.qname, &mut name);
//! assert_eq!((q.id, q.qtype, name.as_str()), (0x1234, wire::TYPE_A, "ads.example.com"));
//! // Cut short, it is refused before anything reads past the end.
//! assert!(Query::parse(&bytes[..20]).is_err());
//! ```
//!
//! A blocklist line as the filter reads it: each line in its own syntax.
//!
//! ```
//! use glory_hole::filter::parse::{parse_line, Action, Format, LineKind};
//!
//! let mut rules = Vec::new();
//! let kind = parse_line("@@||cdn.Example.com^", &mut |r| {
//!     rules.push((r.domain.into_owned(), r.action, r.subdomains))
//! });
//! assert_eq!(kind, LineKind::Rules(Format::Adblock));
//! assert_eq!(rules, [("cdn.example.com".to_string(), Action::Allow, true)]);
//!
//! let kind = parse_line("0.0.0.0 localhost", &mut |_| {});
//! assert_eq!(kind, LineKind::Ignored);
//! ```

pub mod allocator;
pub mod app;
pub mod appliance;
pub mod atomic_file;
pub mod clock;
pub mod config;
pub mod dhcp;
pub mod dns;
pub mod events;
pub mod filter;
pub mod names;
pub mod netif;
pub mod priority;
pub mod querylog;
pub mod syntax;
/// Test doubles, only with the `testing` feature (tests, benches and
/// examples, the stand-in-upstream among them); the firmware build leaves
/// them out.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trim;
pub mod update;
pub mod web;
pub mod wire;
