//! What the end-to-end tests share, one submodule per subject: `dns` (a
//! real glory-hole on loopback from a config text), `querylog` (a config
//! on a temp dir, query events as the DNS core emits them), `traffic`
//! (seeded household traffic for the log's read side), `heap` (the
//! allocator that counts the Rust heap's peak), `web` (a web
//! server over a real config file, an HTTP client keeping cookies and the
//! CSRF token), `update` (bundles, keys and file-backed slots for the updater),
//! `firmware` (a real box over file-backed slots, streamed bundles),
//! `browser` (headless Chromium over WebDriver), `names` (a household
//! with device names: local records, a stand-in router answering PTR), `netns` (the binary in a
//! network namespace of its own), `segment` (a LAN of two namespaces
//! over a veth pair, for the DHCP server), `relay` (a loopback port here
//! reaching the box's namespace, for the browser). Each test file declares `mod support;` and uses the part
//! it needs.
//!
//! Not for: test doubles of the outside world (stand-in upstream, DNS test
//! client); those live in the library's `testing` module.
#![allow(dead_code)]

pub mod browser;
pub mod dns;
pub mod firmware;
pub mod forward;
pub mod heap;
pub mod names;
pub mod netns;
pub mod querylog;
pub mod relay;
pub mod segment;
pub mod traffic;
pub mod update;
pub mod web;
