//! Signing keys: the key files (`NAME.key` secret, `NAME.pub` public; a
//! line of 64 hex digits each, `#` lines are comments) and the set of
//! public keys a box accepts bundles from.
//!
//! The development key in `keys/` is for tests and local builds only;
//! release keys never enter the repository (docs/update.md).
//!
//! Not for: checking a signature (`bundle::Unpacker` does, with the
//! key the bundle names).

use crate::atomic_file::with_suffix;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::io;
use std::path::{Path, PathBuf};

/// Where the board's root filesystem keeps the accepted `*.pub` files.
pub const ACCEPTED_DIR: &str = "/etc/glory-hole/update-keys";

/// A fresh secret key from the operating system's random source.
pub fn generate() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed[..]);
    SigningKey::from_bytes(&seed)
}

/// Writes `PREFIX.key` (readable by its owner only) and `PREFIX.pub`;
/// refuses to replace existing files. Returns their paths.
pub fn write_pair(prefix: &Path, key: &SigningKey, note: &str) -> io::Result<(PathBuf, PathBuf)> {
    let secret = with_suffix(prefix, ".key");
    let public = with_suffix(prefix, ".pub");
    for p in [&secret, &public] {
        if p.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists; not replacing a key", p.display()),
            ));
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let text = format!(
        "# glory-hole bundle signing key, SECRET. {note}\n{}\n",
        hex(key.as_bytes())
    );
    io::Write::write_all(&mut opts.open(&secret)?, text.as_bytes())?;
    let text = format!(
        "# glory-hole bundle public key {}. {note}\n{}\n",
        fingerprint(key.verifying_key().as_bytes()),
        hex(key.verifying_key().as_bytes())
    );
    std::fs::write(&public, text)?;
    Ok((secret, public))
}

pub fn read_signing_key(path: &Path) -> io::Result<SigningKey> {
    Ok(SigningKey::from_bytes(&read_hex32(path)?))
}

pub fn read_public_key(path: &Path) -> io::Result<VerifyingKey> {
    VerifyingKey::from_bytes(&read_hex32(path)?).map_err(|_| {
        invalid(format!(
            "{}: not an Ed25519 public key (not a curve point)",
            path.display()
        ))
    })
}

/// A short name for a public key: its first 8 bytes in hex.
pub fn fingerprint(public: &[u8; 32]) -> String {
    hex(&public[..8])
}

/// The public keys whose bundles a box installs.
#[derive(Debug, Clone, Default)]
pub struct AcceptedKeys(Vec<VerifyingKey>);

impl AcceptedKeys {
    pub fn new(keys: Vec<VerifyingKey>) -> AcceptedKeys {
        AcceptedKeys(keys)
    }

    pub fn from_files(paths: &[PathBuf]) -> io::Result<AcceptedKeys> {
        let keys = paths
            .iter()
            .map(|p| read_public_key(p))
            .collect::<io::Result<_>>()?;
        Ok(AcceptedKeys(keys))
    }

    /// Every `*.pub` in `dir` (the board's `ACCEPTED_DIR`).
    pub fn from_dir(dir: &Path) -> io::Result<AcceptedKeys> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pub"))
            .collect();
        paths.sort();
        AcceptedKeys::from_files(&paths)
    }

    /// The accepted key with these bytes.
    pub fn find(&self, public: &[u8; 32]) -> Option<&VerifyingKey> {
        self.0.iter().find(|k| k.as_bytes() == public)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn read_hex32(path: &Path) -> io::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    unhex32(line).ok_or_else(|| {
        invalid(format!(
            "{}: not a glory-hole key file (expected a line of 64 hex digits)",
            path.display()
        ))
    })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k");
        let key = generate();
        let (secret, public) = write_pair(&prefix, &key, "test").unwrap();
        assert_eq!(
            read_signing_key(&secret).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert_eq!(read_public_key(&public).unwrap(), key.verifying_key());
        let again = write_pair(&prefix, &generate(), "test").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            read_signing_key(&secret).unwrap().as_bytes(),
            key.as_bytes()
        );
        let accepted = AcceptedKeys::from_dir(dir.path()).unwrap();
        assert!(accepted.find(key.verifying_key().as_bytes()).is_some());
        assert!(accepted.find(&[7; 32]).is_none());
    }

    #[test]
    fn a_file_that_is_not_a_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pub");
        std::fs::write(&p, "# comment\nnot hex\n").unwrap();
        let e = read_public_key(&p).unwrap_err();
        assert!(
            e.to_string().contains("x.pub: not a glory-hole key file"),
            "{e}"
        );
    }
}
