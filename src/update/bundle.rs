//! The bundle file (`glory-hole-<version>-rpi-arm64.ghb`): its byte layout,
//! the writer, and `Unpacker`, which takes the bytes in one pass, in chunks
//! of any size, and lets no payload byte through before the signature, the
//! signer and the policy have been checked.
//!
//! ```text
//! offset     size  field
//! 0          8     magic "GHBUNDLE"
//! 8          2     format, u16 little-endian (FORMAT)
//! 10         4     manifest length n, u32 little-endian (<= MAX_MANIFEST)
//! 14         32    signer's Ed25519 public key
//! 46         n     manifest (postcard, `manifest::Manifest`)
//! 46+n       64    Ed25519 signature over bytes 0 .. 46+n
//! 110+n      ...   payloads, back to back, in manifest order
//! ```
//! The signature covers every byte before it, so a changed format, length
//! or signer is caught like a changed manifest; payloads are covered by
//! their SHA-256 in the manifest.
//!
//! Not for: where payloads are written (`installer`) or key files (`keys`).

use super::manifest::{Manifest, PayloadEntry, Policy};
use super::{AcceptedKeys, CHUNK, Refusal, keys};
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

pub const MAGIC: [u8; 8] = *b"GHBUNDLE";
pub const FORMAT: u16 = 1;
/// A manifest is a few hundred bytes; the bound keeps a hostile length
/// from making the reader buffer much.
pub const MAX_MANIFEST: u32 = 64 << 10;
/// Magic, format, manifest length, signer.
pub const HEADER_LEN: usize = 46;
pub const SIGNATURE_LEN: usize = 64;
/// The file name a release uses.
pub fn file_name(version: &str, board: &str) -> String {
    format!("glory-hole-{version}-{board}.ghb")
}

/// Writes a bundle: header, manifest, signature, then each payload read
/// from its source, which must give exactly the measured bytes again.
/// `manifest.payloads` must be in the order of `sources`.
pub fn write(
    out: &mut dyn Write,
    key: &SigningKey,
    manifest: &Manifest,
    sources: &mut [&mut dyn Read],
) -> io::Result<u64> {
    if sources.len() != manifest.payloads.len() {
        return Err(io::Error::other("one source per manifest payload"));
    }
    manifest
        .check_shape()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let body = postcard::to_allocvec(manifest).map_err(io::Error::other)?;
    if body.len() > MAX_MANIFEST as usize {
        return Err(io::Error::other(Refusal::ManifestTooLarge(
            body.len() as u32
        )));
    }
    let mut signed = Vec::with_capacity(HEADER_LEN + body.len());
    signed.extend_from_slice(&MAGIC);
    signed.extend_from_slice(&FORMAT.to_le_bytes());
    signed.extend_from_slice(&(body.len() as u32).to_le_bytes());
    signed.extend_from_slice(key.verifying_key().as_bytes());
    signed.extend_from_slice(&body);
    out.write_all(&signed)?;
    out.write_all(&key.sign(&signed).to_bytes())?;
    let mut written = (signed.len() + SIGNATURE_LEN) as u64;
    let mut buf = vec![0u8; CHUNK];
    for (entry, source) in manifest.payloads.iter().zip(sources.iter_mut()) {
        written += copy_payload(entry, &mut **source, out, &mut buf)?;
    }
    out.flush()?;
    Ok(written)
}

fn copy_payload(
    entry: &PayloadEntry,
    source: &mut dyn Read,
    out: &mut dyn Write,
    buf: &mut [u8],
) -> io::Result<u64> {
    let mut hash = Sha256::new();
    let mut left = entry.size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = source.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let extra = source.read(&mut buf[..1])?;
    if left > 0 || extra > 0 || <[u8; 32]>::from(hash.finalize()) != entry.sha256 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "payload {} changed while the bundle was written",
                entry.name
            ),
        ));
    }
    Ok(entry.size)
}

/// What the unpacker lets through, in order: `Verified` once, then for
/// each payload its bytes and `End` (after its hash matched).
#[derive(Debug)]
pub enum Piece<'a> {
    Verified {
        manifest: &'a Manifest,
        signer: [u8; 32],
    },
    Bytes {
        index: usize,
        bytes: &'a [u8],
    },
    End {
        index: usize,
    },
}

/// The header, manifest and signature as found, before any check of the
/// signature or policy (`glory-hole bundle info`).
#[derive(Debug, Clone)]
pub struct Head {
    pub signer: [u8; 32],
    pub manifest: Manifest,
    pub signature: [u8; 64],
    /// Where the payloads start.
    pub len: usize,
}

/// Takes a bundle's bytes in one pass. After a refusal it refuses
/// everything with the same reason.
pub struct Unpacker {
    keys: AcceptedKeys,
    policy: Option<Policy>,
    /// Bytes taken so far.
    at: u64,
    /// Header, manifest and signature, until verified.
    head: Vec<u8>,
    manifest: Option<Manifest>,
    /// The payload being read, its bytes still to come, its running hash.
    payload: usize,
    left: u64,
    hash: Sha256,
    refused: Option<Refusal>,
}

impl Unpacker {
    /// `policy` None checks signature and hashes only (the release side).
    pub fn new(keys: AcceptedKeys, policy: Option<Policy>) -> Unpacker {
        Unpacker {
            keys,
            policy,
            at: 0,
            head: Vec::new(),
            manifest: None,
            payload: 0,
            left: 0,
            hash: Sha256::new(),
            refused: None,
        }
    }

    /// The verified manifest, once `Piece::Verified` has been passed on.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Bytes taken so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The whole bundle's length, once the manifest is known.
    pub fn expected_len(&self) -> Option<u64> {
        let m = self.manifest.as_ref()?;
        Some(self.head.len() as u64 + m.payload_bytes())
    }

    /// Takes the next bytes of the bundle, passing pieces to `on`. An
    /// error from `on` stops the unpacking and is returned as is.
    pub fn push<E: From<Refusal>>(
        &mut self,
        mut input: &[u8],
        mut on: impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(r) = &self.refused {
            return Err(r.clone().into());
        }
        while !input.is_empty() {
            if self.manifest.is_none() {
                let took = self.take_head(input).inspect_err(|r| self.refuse(r))?;
                input = &input[took..];
                if let Some(manifest) = &self.manifest {
                    on(Piece::Verified {
                        manifest,
                        signer: signer_of(&self.head),
                    })?;
                    self.start_payload(0, &mut on)?;
                }
                continue;
            }
            let Some(entry) = self.manifest.as_ref().unwrap().payloads.get(self.payload) else {
                let r = Refusal::TrailingBytes(self.at);
                self.refuse(&r);
                return Err(r.into());
            };
            let n = input.len().min(self.left as usize);
            let (bytes, rest) = input.split_at(n);
            self.hash.update(bytes);
            self.left -= n as u64;
            self.at += n as u64;
            input = rest;
            on(Piece::Bytes {
                index: self.payload,
                bytes,
            })?;
            if self.left == 0 {
                let digest: [u8; 32] = std::mem::take(&mut self.hash).finalize().into();
                if digest != entry.sha256 {
                    let r = Refusal::HashMismatch(entry.name.clone());
                    self.refuse(&r);
                    return Err(r.into());
                }
                on(Piece::End {
                    index: self.payload,
                })?;
                self.start_payload(self.payload + 1, &mut on)?;
            }
        }
        Ok(())
    }

    /// The end of the input: the verified manifest if every payload came
    /// in whole, else the byte it stopped at.
    pub fn finish(&self) -> Result<&Manifest, Refusal> {
        if let Some(r) = &self.refused {
            return Err(r.clone());
        }
        match &self.manifest {
            Some(m) if self.payload >= m.payloads.len() => Ok(m),
            _ => Err(Refusal::Truncated {
                at: self.at,
                expected: self.expected_len(),
            }),
        }
    }

    fn refuse(&mut self, r: &Refusal) {
        self.refused = Some(r.clone());
    }

    /// Moves to payload `index`, passing `End` for empty ones.
    fn start_payload<E: From<Refusal>>(
        &mut self,
        mut index: usize,
        on: &mut impl FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let payloads = &self.manifest.as_ref().unwrap().payloads;
        while let Some(p) = payloads.get(index) {
            if p.size > 0 {
                break;
            }
            if <[u8; 32]>::from(Sha256::new().finalize()) != p.sha256 {
                let r = Refusal::HashMismatch(p.name.clone());
                self.refused = Some(r.clone());
                return Err(r.into());
            }
            on(Piece::End { index })?;
            index += 1;
        }
        self.payload = index;
        self.left = payloads.get(index).map_or(0, |p| p.size);
        self.hash = Sha256::new();
        Ok(())
    }

    /// Buffers header, manifest and signature; when all are in, checks
    /// them and keeps the manifest. Returns how many input bytes it took.
    fn take_head(&mut self, input: &[u8]) -> Result<usize, Refusal> {
        let want = match head_len(&self.head)? {
            Some(len) => len,
            None => HEADER_LEN,
        };
        let n = input.len().min(want - self.head.len());
        self.head.extend_from_slice(&input[..n]);
        self.at += n as u64;
        if self.head.len() == HEADER_LEN {
            // The length and signer are known: refuse early, and grow to
            // the whole head on the next round.
            let len = head_len(&self.head)?.unwrap();
            let signer = signer_of(&self.head);
            if self.keys.find(&signer).is_none() {
                return Err(Refusal::UnknownKey(keys::fingerprint(&signer)));
            }
            self.head.reserve_exact(len - HEADER_LEN);
        }
        if self.head.len() > HEADER_LEN && Some(self.head.len()) == head_len(&self.head)? {
            // The signature first: nothing unsigned is even decoded.
            let key = self
                .keys
                .find(&signer_of(&self.head))
                .expect("checked above");
            let (signed, signature) = self.head.split_at(self.head.len() - SIGNATURE_LEN);
            let signature = Signature::from_bytes(signature.try_into().unwrap());
            key.verify_strict(signed, &signature)
                .map_err(|_| Refusal::SignatureInvalid)?;
            let head = split_head(&self.head)?;
            match &self.policy {
                Some(p) => head.manifest.check(p)?,
                None => head.manifest.check_shape()?,
            }
            self.manifest = Some(head.manifest);
        }
        Ok(n)
    }
}

/// The length of header + manifest + signature, once the header is in.
fn head_len(buf: &[u8]) -> Result<Option<usize>, Refusal> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..8] != MAGIC {
        return Err(Refusal::BadMagic);
    }
    let format = u16::from_le_bytes([buf[8], buf[9]]);
    if format != FORMAT {
        return Err(Refusal::UnsupportedFormat(format));
    }
    let len = u32::from_le_bytes(buf[10..14].try_into().unwrap());
    if len > MAX_MANIFEST {
        return Err(Refusal::ManifestTooLarge(len));
    }
    Ok(Some(HEADER_LEN + len as usize + SIGNATURE_LEN))
}

fn signer_of(buf: &[u8]) -> [u8; 32] {
    buf[14..HEADER_LEN].try_into().unwrap()
}

/// Splits a whole head (as measured by `head_len`) into its parts.
fn split_head(buf: &[u8]) -> Result<Head, Refusal> {
    let sig_at = buf.len() - SIGNATURE_LEN;
    let manifest = postcard::from_bytes(&buf[HEADER_LEN..sig_at])
        .map_err(|e| Refusal::ManifestUnreadable(e.to_string()))?;
    Ok(Head {
        signer: signer_of(buf),
        manifest,
        signature: buf[sig_at..].try_into().unwrap(),
        len: buf.len(),
    })
}

/// Reads only the head of a bundle, checking magic, format and manifest
/// size but NOT the signature: for showing what a file claims to be.
pub fn read_head(source: &mut dyn Read) -> Result<Head, CheckError> {
    let mut buf = vec![0u8; HEADER_LEN];
    read_exact_or_truncated(source, &mut buf, 0)?;
    let len = head_len(&buf)?.unwrap();
    buf.resize(len, 0);
    read_exact_or_truncated(source, &mut buf[HEADER_LEN..], HEADER_LEN as u64)?;
    Ok(split_head(&buf)?)
}

fn read_exact_or_truncated(
    source: &mut dyn Read,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), CheckError> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..])? {
            0 => {
                return Err(CheckError::Refused(Refusal::Truncated {
                    at: offset + got as u64,
                    expected: None,
                }));
            }
            n => got += n,
        }
    }
    Ok(())
}

/// A refusal, or the bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads a whole bundle and checks everything: signature, signer, policy
/// (when given) and every payload's hash. Payload bytes are dropped.
pub fn check(
    source: &mut dyn Read,
    keys: AcceptedKeys,
    policy: Option<Policy>,
) -> Result<Manifest, CheckError> {
    let mut unpacker = Unpacker::new(keys, policy);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        unpacker.push(&buf[..n], |_| Ok::<(), Refusal>(()))?;
    }
    Ok(unpacker.finish()?.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(payloads: &[(&str, &[u8])]) -> Manifest {
        Manifest {
            product: "glory-hole".into(),
            boards: vec!["rpi-arm64".into()],
            version: "1.0.0".into(),
            built_unix_s: 1,
            min_version: "0.1.0".into(),
            payloads: payloads
                .iter()
                .map(|(n, b)| PayloadEntry::measure(n, &mut &b[..]).unwrap())
                .collect(),
        }
    }

    fn bundle(key: &SigningKey, payloads: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sources: Vec<&[u8]> = payloads.iter().map(|p| p.1).collect();
        let mut readers: Vec<&mut dyn Read> =
            sources.iter_mut().map(|s| s as &mut dyn Read).collect();
        write(&mut out, key, &manifest(payloads), &mut readers).unwrap();
        out
    }

    #[test]
    fn byte_at_a_time_gives_the_same_pieces_and_empty_payloads_end() {
        let key = keys::generate();
        let b = bundle(&key, &[("boot", b"abc"), ("empty", b""), ("root", b"xyz!")]);
        let mut u = Unpacker::new(AcceptedKeys::new(vec![key.verifying_key()]), None);
        let mut seen = Vec::new();
        let mut ends = Vec::new();
        for byte in &b {
            u.push(std::slice::from_ref(byte), |p| {
                match p {
                    Piece::Verified { .. } => assert!(seen.is_empty()),
                    Piece::Bytes { index, bytes } => seen.push((index, bytes.to_vec())),
                    Piece::End { index } => ends.push(index),
                }
                Ok::<(), Refusal>(())
            })
            .unwrap();
        }
        assert_eq!(u.finish().unwrap().payloads.len(), 3);
        assert_eq!(ends, vec![0, 1, 2]);
        let root: Vec<u8> = seen
            .iter()
            .filter(|s| s.0 == 2)
            .flat_map(|s| s.1.clone())
            .collect();
        assert_eq!(root, b"xyz!");
        assert_eq!(u.position(), b.len() as u64);
        assert_eq!(u.expected_len(), Some(b.len() as u64));
    }

    #[test]
    fn a_writer_source_that_changes_is_caught() {
        let key = keys::generate();
        let m = manifest(&[("boot", b"abc")]);
        let mut changed: &[u8] = b"abd";
        let e = write(&mut Vec::new(), &key, &m, &mut [&mut changed]).unwrap_err();
        assert!(e.to_string().contains("payload boot changed"), "{e}");
    }
}
