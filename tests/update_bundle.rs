//! The bundle as a file: a good one checks; every kind of damage or
//! mismatch is refused with its reason, before any payload byte is let
//! through when the damage is in the head; and the `glory-hole bundle`
//! command makes, verifies and describes one.

mod support;

use glory_hole::update::bundle::{self, CheckError, HEADER_LEN, SIGNATURE_LEN};
use glory_hole::update::{AcceptedKeys, Piece, Refusal, Unpacker, keys};
use std::process::Command;
use support::update::{BOARD, accepted, bytes, dev_key, good, manifest, policy, signed};

/// Checks `b` with the development key and the test policy.
fn refusal(b: &[u8]) -> Refusal {
    match bundle::check(&mut &b[..], accepted(), Some(policy())) {
        Err(CheckError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Pushes `b` through an unpacker; returns how many payload bytes it let
/// through and the result.
fn unpack(b: &[u8]) -> (usize, Result<(), Refusal>) {
    let mut u = Unpacker::new(accepted(), Some(policy()));
    let mut through = 0;
    let r = u
        .push(b, |p| {
            if let Piece::Bytes { bytes, .. } = p {
                through += bytes.len();
            }
            Ok::<(), Refusal>(())
        })
        .and_then(|_| u.finish().map(|_| ()));
    (through, r)
}

fn manifest_len(b: &[u8]) -> usize {
    u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize
}

#[test]
fn a_good_bundle_checks_and_its_head_reads_back() {
    let (b, boot, root) = good();
    let m = bundle::check(&mut &b[..], accepted(), Some(policy())).unwrap();
    assert_eq!(m.version, "0.2.0");
    assert_eq!(m.payloads[0].size, boot.len() as u64);
    assert_eq!(m.payloads[1].size, root.len() as u64);
    assert_eq!(
        b.len(),
        HEADER_LEN + manifest_len(&b) + SIGNATURE_LEN + boot.len() + root.len()
    );
    assert_eq!(&b[..8], b"GHBUNDLE");
    let head = bundle::read_head(&mut &b[..]).unwrap();
    assert_eq!(head.manifest, m);
    assert_eq!(&head.signer, dev_key().verifying_key().as_bytes());
    // The payloads follow the signature byte for byte.
    let at = head.len;
    assert_eq!(&b[at..at + boot.len()], &boot[..]);
    assert_eq!(&b[at + boot.len()..], &root[..]);
}

#[test]
fn a_flipped_byte_anywhere_is_refused_naming_where() {
    let (b, boot, _) = good();
    let n = manifest_len(&b);
    let sig_at = HEADER_LEN + n;
    let payload_at = sig_at + SIGNATURE_LEN;
    let mut offsets: Vec<usize> = (0..payload_at).collect();
    let mut rng = glory_hole::testing::Rng(7);
    offsets
        .extend((0..40).map(|_| payload_at + (rng.next_u64() as usize) % (b.len() - payload_at)));
    offsets.extend([
        payload_at,
        payload_at + boot.len() - 1,
        payload_at + boot.len(),
        b.len() - 1,
    ]);
    for at in offsets {
        let mut bad = b.clone();
        bad[at] ^= 0x20;
        let (through, r) = unpack(&bad);
        let r = r.expect_err(&format!("flip at {at} accepted"));
        let expected_kind = match at {
            0..8 => matches!(r, Refusal::BadMagic),
            8..10 => matches!(r, Refusal::UnsupportedFormat(_)),
            10..14 => matches!(
                r,
                Refusal::ManifestTooLarge(_)
                    | Refusal::SignatureInvalid
                    | Refusal::Truncated { .. }
            ),
            14..46 => matches!(r, Refusal::UnknownKey(_)),
            _ if at < payload_at => r == Refusal::SignatureInvalid,
            _ if at < payload_at + boot.len() => r == Refusal::HashMismatch("boot".into()),
            _ => r == Refusal::HashMismatch("root".into()),
        };
        assert!(expected_kind, "flip at {at}: {r}");
        if at < payload_at {
            assert_eq!(through, 0, "flip at {at}: payload bytes let through");
        }
        assert_eq!(refusal(&bad), r, "check() and the unpacker agree at {at}");
    }
}

#[test]
fn a_truncated_stream_names_the_byte_it_stopped_at() {
    let (b, _, _) = good();
    let head = HEADER_LEN + manifest_len(&b) + SIGNATURE_LEN;
    for len in [0, 5, HEADER_LEN, head - 1, head, head + 1000, b.len() - 1] {
        let r = refusal(&b[..len]);
        let expected = (len >= head).then_some(b.len() as u64);
        assert_eq!(
            r,
            Refusal::Truncated {
                at: len as u64,
                expected
            },
            "cut at {len}"
        );
        assert!(
            r.to_string()
                .starts_with(&format!("truncated at byte {len}")),
            "{r}"
        );
    }
    assert_eq!(
        refusal(&[&b[..], b"x"].concat()),
        Refusal::TrailingBytes(b.len() as u64)
    );
}

#[test]
fn policy_and_key_refusals_name_the_reason() {
    let (boot, root) = (bytes(1, 1000), bytes(2, 2000));
    let payloads: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root)];

    let m = manifest("0.2.0", "0.1.0", &["rpi-armhf", "x86_64"], payloads);
    let r = refusal(&signed(&dev_key(), &m, payloads));
    assert_eq!(r.to_string(), "board rpi-arm64 not in [rpi-armhf, x86_64]");

    let m = manifest("0.3.0", "0.2.0", &[BOARD], payloads);
    let r = refusal(&signed(&dev_key(), &m, payloads));
    assert_eq!(
        r.to_string(),
        "version 0.1.0 below minimum 0.2.0: install 0.2.0 or later first"
    );

    let stranger = keys::generate();
    let m = manifest("0.2.0", "0.1.0", &[BOARD], payloads);
    let r = refusal(&signed(&stranger, &m, payloads));
    let fp = keys::fingerprint(stranger.verifying_key().as_bytes());
    assert_eq!(
        r.to_string(),
        format!("signed by unknown key {fp} (not among the accepted public keys)")
    );

    // Signed by the stranger, but claiming the accepted key.
    let mut forged = signed(&stranger, &m, payloads);
    forged[14..46].copy_from_slice(dev_key().verifying_key().as_bytes());
    assert_eq!(refusal(&forged), Refusal::SignatureInvalid);
    assert_eq!(refusal(&forged).to_string(), "signature invalid");

    // With no policy (the release side), board and version do not matter.
    let m = manifest("0.3.0", "9.0.0", &["x86_64"], payloads);
    let b = signed(&dev_key(), &m, payloads);
    assert!(bundle::check(&mut &b[..], accepted(), None).is_ok());
    // With no accepted key at all, nothing is trusted.
    let r = bundle::check(&mut &b[..], AcceptedKeys::default(), None).unwrap_err();
    assert!(r.to_string().starts_with("signed by unknown key"), "{r}");
}

fn glory_hole(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glory-hole"))
        .arg("bundle")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_bundle_command_makes_verifies_and_describes_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("boot.vfat"), bytes(3, 50_000)).unwrap();
    std::fs::write(p("root.squashfs"), bytes(4, 90_000)).unwrap();
    let (ok, out, err) = glory_hole(&["keygen", &p("release")]);
    assert!(ok, "{err}");
    assert!(out.contains("release.key"), "{out}");
    let dev_pub = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/dev.pub");

    let out_file = p("glory-hole-0.2.0-rpi-arm64.ghb");
    let (ok, _, err) = glory_hole(&[
        "create",
        "--key",
        &p("release.key"),
        "--version",
        "0.2.0",
        "--min-version",
        "0.1.0",
        "--board",
        BOARD,
        "--boot",
        &p("boot.vfat"),
        "--root",
        &p("root.squashfs"),
        "--built",
        "1796000000",
        "-o",
        &out_file,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = glory_hole(&["verify", "--pubkey", &p("release.pub"), &out_file]);
    assert!(ok, "{err}");
    assert!(
        out.contains(": ok: glory-hole 0.2.0 for [rpi-arm64]"),
        "{out}"
    );

    let (ok, _, err) = glory_hole(&["verify", "--pubkey", dev_pub, &out_file]);
    assert!(!ok);
    assert!(err.contains("refused: signed by unknown key"), "{err}");
    let (ok, _, err) = glory_hole(&[
        "verify",
        "--pubkey",
        &p("release.pub"),
        "--board",
        "x86_64",
        "--running",
        "0.1.0",
        &out_file,
    ]);
    assert!(!ok);
    assert!(
        err.contains("refused: board x86_64 not in [rpi-arm64]"),
        "{err}"
    );

    let (ok, out, err) = glory_hole(&["info", &out_file]);
    assert!(ok, "{err}");
    assert!(out.contains("glory-hole 0.2.0 (bundle format 1)"), "{out}");
    assert!(out.contains("built:       2026-11-30T"), "{out}");
    assert!(out.contains("payload root"), "{out}");
    assert!(out.contains("90000 bytes"), "{out}");

    // A key file is never replaced.
    let (ok, _, err) = glory_hole(&["keygen", &p("release")]);
    assert!(!ok);
    assert!(err.contains("exists; not replacing a key"), "{err}");
}

/// `make image` writes a boot image per slot (each names its own root);
/// the command takes them instead of one `--boot`, and wants one of the two.
#[test]
fn the_bundle_command_takes_a_boot_image_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(p("boot-a.vfat"), bytes(5, 30_000)).unwrap();
    std::fs::write(p("boot-b.vfat"), bytes(6, 31_000)).unwrap();
    std::fs::write(p("root.squashfs"), bytes(7, 40_000)).unwrap();
    let dev_key = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/dev.key");
    let dev_pub = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/dev.pub");
    let common = [
        "create",
        "--key",
        dev_key,
        "--version",
        "0.2.0",
        "--min-version",
        "0.1.0",
        "--board",
        BOARD,
    ];
    let out_file = p("slots.ghb");
    let mut args: Vec<&str> = common.to_vec();
    let (a, b, root) = (
        format!("boot-a={}", p("boot-a.vfat")),
        format!("boot-b={}", p("boot-b.vfat")),
        p("root.squashfs"),
    );
    args.extend([
        "--root",
        &root,
        "--payload",
        &a,
        "--payload",
        &b,
        "-o",
        &out_file,
    ]);
    let (ok, _, err) = glory_hole(&args);
    assert!(ok, "{err}");
    let (ok, out, err) = glory_hole(&["verify", "--pubkey", dev_pub, &out_file]);
    assert!(ok, "{err}");
    assert!(out.contains("3 payload hashes checked"), "{out}");
    let (ok, out, err) = glory_hole(&["info", &out_file]);
    assert!(ok, "{err}");
    assert!(
        out.contains("payload boot-a") && out.contains("31000 bytes"),
        "{out}"
    );

    let mut args: Vec<&str> = common.to_vec();
    let other = p("none.ghb");
    args.extend(["--root", &root, "-o", &other]);
    let (ok, _, err) = glory_hole(&args);
    assert!(!ok);
    assert!(
        err.contains("--boot (or --payload boot-a=FILE --payload boot-b=FILE) is required"),
        "{err}"
    );
    assert!(!std::path::Path::new(&other).exists());
}
