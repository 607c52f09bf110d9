//! The firmware bundle reader on arbitrary bytes, accepting the dev key
//! (keys/dev.pub) under a board policy: `read_head` (what `bundle info`
//! shows) and the `Unpacker`, fed in chunks whose size the first byte
//! picks, so every split of the head and payloads gets tried. No payload
//! byte may pass before the signature and policy are checked.
#![no_main]

use glory_hole::update::bundle::{self, Piece, Unpacker};
use glory_hole::update::{AcceptedKeys, Policy, Refusal, keys};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn dev_key() -> &'static AcceptedKeys {
    static K: OnceLock<AcceptedKeys> = OnceLock::new();
    K.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys/dev.pub");
        AcceptedKeys::new(vec![keys::read_public_key(&path).expect("keys/dev.pub")])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let _ = bundle::read_head(&mut &bytes[..]);
    let policy = Policy {
        board: "rpi-arm64".into(),
        running_version: "0.1.0".into(),
    };
    let mut u = Unpacker::new(dev_key().clone(), Some(policy));
    let mut verified = false;
    for chunk in bytes.chunks(usize::from(split) + 1) {
        let pushed = u.push(chunk, |p| {
            match p {
                Piece::Verified { .. } => verified = true,
                Piece::Bytes { .. } | Piece::End { .. } => {
                    assert!(verified, "payload before verification")
                }
            }
            Ok::<(), Refusal>(())
        });
        if pushed.is_err() {
            return;
        }
    }
    let _ = u.finish();
});
