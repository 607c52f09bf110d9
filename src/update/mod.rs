//! Firmware updates: a signed bundle written into the inactive A/B slot,
//! a one-shot trial boot of it, then commit or roll back (docs/update.md).
//!
//! An update, top to bottom:
//! ```text
//! bundle bytes (upload or file)
//!   -> bundle::Unpacker: magic, format, signer in keys::AcceptedKeys,
//!      Ed25519 signature, manifest::Policy (product, board, minimum version)
//!      ... all before a payload byte is let through
//!   -> installer::SlotWriter (embedded_svc::ota::OtaUpdate): each payload
//!      streamed into the inactive slot's boot / root partition, hashed
//!   -> finish: every hash matches and a read-back of the partitions too
//!   -> activate: selector (autoboot.txt) arms a one-shot trial, restart
//!   -> after the trial boot: mark_running_slot_valid (commit), or the
//!      firmware falls back and Installer::observe_boot records why
//! ```
//! `slots` says where the partitions and the selector are (the card, or
//! plain files in tests); `state` keeps what happened on the data partition.
//!
//! `updater` is the running box's one installer with its upload progress,
//! shared by the web API (`web::firmware`) and `health`, the trial boot's
//! check that commits or gives up the slot. `board` is what only the card
//! does: the running slot from the kernel command line, the card's
//! partitions, the restart with the tryboot flag.
//!
//! Not for: the HTTP API (`web::firmware`), where the app finds the box's
//! slots (`app::firmware`), nor the image build that makes the payloads
//! (`board/`, `image/`).

pub mod board;
pub mod bundle;
pub mod cli;
pub mod health;
pub mod installer;
pub mod keys;
pub mod manifest;
pub mod refusal;
pub mod selector;
pub mod slots;
pub mod state;
pub mod updater;

pub use bundle::{Piece, Unpacker};
pub use installer::{InstallError, Installer, Restart};
pub use keys::AcceptedKeys;
pub use manifest::{Manifest, PayloadEntry, Policy};
pub use refusal::Refusal;
pub use slots::{SlotName, Slots};
pub use updater::Updater;

/// Bytes moved per read or write while streaming payloads: large enough
/// for the card's erase blocks, small enough that an install stays far
/// below the 16 MiB memory budget whatever the bundle's size.
pub const CHUNK: usize = 64 << 10;
