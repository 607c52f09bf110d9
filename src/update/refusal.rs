//! Why a bundle is refused: one reason per variant, each message naming
//! what was wrong so the owner (or the release maker) can act on it.
//!
//! Not for: I/O failures of the partitions or files (those are
//! `installer::InstallError::Io` and `bundle::CheckError::Io`).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("not a glory-hole bundle (bad magic)")]
    BadMagic,
    #[error("unsupported bundle format {0} (this build reads format {format})", format = super::bundle::FORMAT)]
    UnsupportedFormat(u16),
    #[error("manifest of {0} bytes is over the {max} byte limit", max = super::bundle::MAX_MANIFEST)]
    ManifestTooLarge(u32),
    #[error("signed by unknown key {0} (not among the accepted public keys)")]
    UnknownKey(String),
    #[error("signature invalid")]
    SignatureInvalid,
    #[error("manifest unreadable: {0}")]
    ManifestUnreadable(String),
    #[error("product '{0}' is not glory-hole")]
    WrongProduct(String),
    #[error("board {board} not in [{accepted}]")]
    WrongBoard { board: String, accepted: String },
    #[error("version '{0}' is not a version like 1.2.3")]
    BadVersion(String),
    #[error("version {running} below minimum {minimum}: install {minimum} or later first")]
    BelowMinimum { running: String, minimum: String },
    #[error("payload {0}: hash mismatch")]
    HashMismatch(String),
    #[error(
        "truncated at byte {at}{}",
        expected.map(|e| format!(" of {e}")).unwrap_or_default()
    )]
    Truncated { at: u64, expected: Option<u64> },
    #[error("unexpected bytes after the last payload, at byte {0}")]
    TrailingBytes(u64),
}
