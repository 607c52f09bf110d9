//! The manifest: what a bundle claims to be (product, boards, version,
//! build time, the oldest version it may replace, its payloads' names,
//! sizes and SHA-256), and the policy that decides whether this box takes
//! it. Encoded with postcard inside the bundle and covered by its signature.
//!
//! Not for: the byte layout around it (`bundle`) or where payloads go
//! (`installer`).

use super::Refusal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::io::Read;

/// The only product this build installs.
pub const PRODUCT: &str = "glory-hole";

/// The longest version string: `embedded_svc::ota::FirmwareInfo` holds 24 bytes.
pub const MAX_VERSION_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub product: String,
    /// Boards the payloads boot on, such as `rpi-arm64`.
    pub boards: Vec<String>,
    pub version: String,
    /// Seconds since the Unix epoch.
    pub built_unix_s: u64,
    /// The oldest running version that may install this bundle.
    pub min_version: String,
    /// In the order their bytes follow the signature.
    pub payloads: Vec<PayloadEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadEntry {
    /// `boot` (the slot's FAT image) or `root` (its squashfs); see
    /// `installer` for the slot-specific names.
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl PayloadEntry {
    /// Reads `source` to its end once, for its size and hash.
    pub fn measure(name: &str, source: &mut dyn Read) -> std::io::Result<PayloadEntry> {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; super::CHUNK];
        let mut size = 0u64;
        loop {
            let n = source.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            size += n as u64;
        }
        Ok(PayloadEntry {
            name: name.to_string(),
            size,
            sha256: hash.finalize().into(),
        })
    }
}

/// What this box is and runs: decides whether a bundle fits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// This board's name as bundles list it (`rpi-arm64`).
    pub board: String,
    /// The version running now, compared with the bundle's `min_version`.
    pub running_version: String,
}

impl Manifest {
    /// Fields that must make sense whatever box reads the bundle.
    pub fn check_shape(&self) -> Result<(), Refusal> {
        if self.product != PRODUCT {
            return Err(Refusal::WrongProduct(self.product.clone()));
        }
        for v in [&self.version, &self.min_version] {
            parse_version(v)?;
        }
        let mut total = 0u64;
        for p in &self.payloads {
            total = total
                .checked_add(p.size)
                .ok_or_else(|| Refusal::ManifestUnreadable("payload sizes overflow".into()))?;
        }
        Ok(())
    }

    /// `check_shape`, then the board and the version policy.
    pub fn check(&self, policy: &Policy) -> Result<(), Refusal> {
        self.check_shape()?;
        if !self.boards.iter().any(|b| b == &policy.board) {
            return Err(Refusal::WrongBoard {
                board: policy.board.clone(),
                accepted: self.boards.join(", "),
            });
        }
        if compare_versions(&policy.running_version, &self.min_version)? == Ordering::Less {
            return Err(Refusal::BelowMinimum {
                running: policy.running_version.clone(),
                minimum: self.min_version.clone(),
            });
        }
        Ok(())
    }

    /// The sum of the payload sizes.
    pub fn payload_bytes(&self) -> u64 {
        self.payloads.iter().map(|p| p.size).sum()
    }
}

/// `1.2.3` as numbers; up to four dot-separated parts of digits, at most
/// `MAX_VERSION_LEN` bytes.
pub fn parse_version(v: &str) -> Result<Vec<u64>, Refusal> {
    let bad = || Refusal::BadVersion(v.chars().take(40).collect());
    if v.is_empty() || v.len() > MAX_VERSION_LEN {
        return Err(bad());
    }
    let parts: Vec<u64> = v
        .split('.')
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        })
        .collect::<Result<_, _>>()?;
    if parts.len() > 4 {
        return Err(bad());
    }
    Ok(parts)
}

/// Numeric comparison, missing parts counting as 0 (`1.2` = `1.2.0`).
pub fn compare_versions(a: &str, b: &str) -> Result<Ordering, Refusal> {
    let (a, b) = (parse_version(a)?, parse_version(b)?);
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).unwrap_or(&0), b.get(i).unwrap_or(&0));
        if x != y {
            return Ok(x.cmp(y));
        }
    }
    Ok(Ordering::Equal)
}

/// `2026-12-06T18:13:52Z`; empty for 0 (unknown).
pub fn utc(unix_s: u64) -> String {
    if unix_s == 0 {
        return String::new();
    }
    let c = crate::clock::Civil::from_unix(unix_s as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            product: PRODUCT.into(),
            boards: vec!["rpi-arm64".into()],
            version: "0.3.0".into(),
            built_unix_s: 1_800_000_000,
            min_version: "0.2.0".into(),
            payloads: vec![],
        }
    }

    fn policy(board: &str, running: &str) -> Policy {
        Policy {
            board: board.into(),
            running_version: running.into(),
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("0.10.0", "0.9.9"), Ok(Ordering::Greater));
        assert_eq!(compare_versions("1.2", "1.2.0"), Ok(Ordering::Equal));
        assert_eq!(compare_versions("1.2.0", "1.2.1"), Ok(Ordering::Less));
        for bad in [
            "",
            "1..2",
            "v1.2",
            "1.2.3.4.5",
            "1.2-rc1",
            "1234567890.1234567890.123",
        ] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_names_board_and_minimum() {
        let m = manifest();
        assert_eq!(m.check(&policy("rpi-arm64", "0.2.0")), Ok(()));
        let e = m.check(&policy("x86", "0.2.0")).unwrap_err();
        assert_eq!(e.to_string(), "board x86 not in [rpi-arm64]");
        let e = m.check(&policy("rpi-arm64", "0.1.9")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "version 0.1.9 below minimum 0.2.0: install 0.2.0 or later first"
        );
        let mut other = manifest();
        other.product = "pi-hole".into();
        assert_eq!(
            other.check(&policy("rpi-arm64", "1.0.0")),
            Err(Refusal::WrongProduct("pi-hole".into()))
        );
    }
}
