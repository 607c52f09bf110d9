//! The installer over file-backed slots, as the spec of an update: a good
//! bundle lands in the slot that is not running and is armed for one
//! trial; the trial is committed, or falls back with its reason kept; a bad
//! bundle is refused with its reason and slot A and the selector keep
//! every byte.

mod support;

use embedded_svc::io::Write;
use embedded_svc::ota::{Ota, OtaUpdate, SlotState};
use glory_hole::update::installer::BootOutcome;
use glory_hole::update::keys;
use glory_hole::update::selector::Selector;
use glory_hole::update::state::{Health, Outcome};
use glory_hole::update::{InstallError, Refusal, Restart, SlotName};
use support::update::{
    BOARD, booted, bytes, dev_key, file_slots, good, install, installer, manifest, protected,
    signed,
};

const MIB: u64 = 1 << 20;

fn prefix(path: &std::path::Path, len: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[..len].to_vec()
}

#[test]
fn a_good_bundle_is_written_to_b_and_armed_for_one_trial() {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, 2 * MIB);
    let before = protected(&slots);
    let (mut inst, restarts) = installer(slots.clone());
    assert_eq!(inst.get_update_slot().unwrap().state, SlotState::Unknown);

    let (b, boot, root) = good();
    install(&mut inst, &b, 4096).unwrap();

    assert_eq!(prefix(&slots.b.boot, boot.len()), boot);
    assert_eq!(prefix(&slots.b.root, root.len()), root);
    assert_eq!(protected(&slots)[..2], before[..2], "slot A untouched");
    assert_eq!(
        Selector::read(&slots.selector).unwrap(),
        Selector {
            committed: SlotName::A,
            trial: SlotName::B
        }
    );
    assert_eq!(*restarts.lock().unwrap(), vec![Restart::Trial]);
    let state = inst.state().unwrap();
    assert_eq!(state.trial, Some(SlotName::B));
    assert_eq!(state.last.unwrap().outcome, Outcome::Installed);
    let b_slot = inst.get_update_slot().unwrap();
    assert_eq!(b_slot.state, SlotState::Unverified);
    assert_eq!(b_slot.firmware.unwrap().version.as_str(), "0.2.0");
    assert_eq!(inst.get_boot_slot().unwrap().label.as_str(), "A");

    // The trial boot of B passes its health check: B becomes the default.
    let (mut on_b, restarts) = installer(booted(&slots, SlotName::B));
    assert_eq!(
        on_b.observe_boot().unwrap(),
        BootOutcome::OnTrial(SlotName::B)
    );
    on_b.mark_running_slot_valid().unwrap();
    assert_eq!(
        Selector::read(&slots.selector).unwrap(),
        Selector::committed(SlotName::B)
    );
    let boot_slot = on_b.get_boot_slot().unwrap();
    assert_eq!(
        (boot_slot.label.as_str(), boot_slot.state),
        ("B", SlotState::Valid)
    );
    let state = on_b.state().unwrap();
    assert_eq!(state.trial, None);
    assert_eq!(state.last.as_ref().unwrap().outcome, Outcome::Committed);
    assert_eq!(state.a.as_ref().unwrap().version, "0.1.0");
    assert!(restarts.lock().unwrap().is_empty());

    // And the owner can go back to A, which is still good.
    on_b.rollback().unwrap();
    assert_eq!(
        Selector::read(&slots.selector).unwrap(),
        Selector::committed(SlotName::A)
    );
    assert_eq!(*restarts.lock().unwrap(), vec![Restart::Normal]);
    let last = on_b.state().unwrap().last.unwrap();
    assert_eq!(last.outcome, Outcome::RolledBack);
    assert_eq!(last.version.as_deref(), Some("0.2.0"), "the version left");
    assert_eq!(
        last.reason.as_deref(),
        Some("asked for by the owner; slot A boots next")
    );

    // Back on A, a refused bundle leaves B's good system marked good.
    let (mut on_a, _) = installer(booted(&slots, SlotName::A));
    let (boot, root) = (bytes(1, 10), bytes(2, 10));
    let p: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root)];
    let wrong = signed(&dev_key(), &manifest("0.3.0", "0.1.0", &["x86_64"], p), p);
    install(&mut on_a, &wrong, 4096).expect_err("wrong board");
    assert_eq!(on_a.get_update_slot().unwrap().state, SlotState::Valid);
}

/// Slots in `dir` after the good bundle was installed from A.
fn trial_of_b_armed(dir: &std::path::Path) -> glory_hole::update::Slots {
    let slots = file_slots(dir, SlotName::A, 2 * MIB);
    let (mut inst, _) = installer(slots.clone());
    install(&mut inst, &good().0, 65536).unwrap();
    slots
}

#[test]
fn a_trial_that_never_came_up_falls_back_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let slots = trial_of_b_armed(dir.path());

    // The bootloader cleared the tryboot flag and started A again.
    let (mut again, _) = installer(booted(&slots, SlotName::A));
    let BootOutcome::FellBack { tried, reason } = again.observe_boot().unwrap() else {
        panic!("expected a fall-back");
    };
    assert_eq!(tried, SlotName::B);
    assert!(
        reason.contains("slot B did not come up healthy"),
        "{reason}"
    );
    let state = again.state().unwrap();
    assert_eq!(state.b.as_ref().unwrap().health, Health::Invalid);
    let last = state.last.unwrap();
    assert_eq!(last.outcome, Outcome::RolledBack);
    assert_eq!(last.version.as_deref(), Some("0.2.0"));
    assert_eq!(again.get_update_slot().unwrap().state, SlotState::Invalid);
    assert_eq!(again.observe_boot().unwrap(), BootOutcome::Normal);
}

#[test]
fn a_trial_that_fails_its_health_check_restarts_into_the_old_slot() {
    let dir = tempfile::tempdir().unwrap();
    let slots = trial_of_b_armed(dir.path());

    let (mut on_b, restarts) = installer(booted(&slots, SlotName::B));
    let e = on_b.mark_running_slot_invalid_and_reboot();
    assert!(matches!(e, InstallError::Restarting(SlotName::A)), "{e}");
    assert_eq!(*restarts.lock().unwrap(), vec![Restart::Normal]);
    assert_eq!(
        Selector::read(&slots.selector).unwrap().committed,
        SlotName::A
    );
    let last = on_b.state().unwrap().last.unwrap();
    assert_eq!(last.outcome, Outcome::RolledBack);
    assert_eq!(
        last.reason.as_deref(),
        Some("marked invalid by the health check")
    );
}

/// Installs `b` and expects a refusal whose message contains `reason`,
/// with slot A and the selector unchanged and no restart.
fn refused(b: &[u8], capacity: u64, reason: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, capacity);
    let before = protected(&slots);
    let b_before = (
        std::fs::read(&slots.b.boot).unwrap(),
        std::fs::read(&slots.b.root).unwrap(),
    );
    let (mut inst, restarts) = installer(slots.clone());
    let e = install(&mut inst, b, 7919).expect_err("refused");
    assert!(
        e.to_string().contains(reason),
        "expected '{reason}' in '{e}'"
    );
    assert_eq!(
        protected(&slots),
        before,
        "slot A or the selector changed ({e})"
    );
    assert!(restarts.lock().unwrap().is_empty());
    let state = inst.state().unwrap();
    assert_eq!(state.trial, None);
    let last = state.last.expect("the refusal is recorded");
    assert_eq!(last.outcome, Outcome::Refused);
    assert_eq!(last.reason.unwrap(), e.to_string());
    let b_after = (
        std::fs::read(&slots.b.boot).unwrap(),
        std::fs::read(&slots.b.root).unwrap(),
    );
    (
        if b_after.0 == b_before.0 {
            vec![]
        } else {
            b_after.0
        },
        if b_after.1 == b_before.1 {
            vec![]
        } else {
            b_after.1
        },
    )
}

#[test]
fn bad_bundles_are_refused_and_leave_slot_a_and_the_selector_alone() {
    let (b, _, _) = good();
    let head = 46 + u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize + 64;
    let mut rng = glory_hole::testing::Rng(11);
    let mut flips: Vec<usize> = vec![0, 9, 20, 50, head - 64, head - 1, head, b.len() - 1];
    flips.extend((0..6).map(|_| (rng.next_u64() as usize) % b.len()));
    for at in flips {
        let mut bad = b.clone();
        bad[at] ^= 0x01;
        let (b_boot, b_root) = refused(&bad, 2 * MIB, "bundle refused: ");
        if at < head {
            assert!(
                b_boot.is_empty() && b_root.is_empty(),
                "flip at {at}: slot B written"
            );
        }
    }
    let (b_boot, _) = refused(
        &b[..head + 10],
        2 * MIB,
        "bundle refused: truncated at byte",
    );
    assert!(
        !b_boot.is_empty(),
        "a truncated payload is partly written to B (never A)"
    );

    let (boot, root) = (bytes(1, 1000), bytes(2, 2000));
    let both: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root)];
    let m = manifest("0.2.0", "0.1.0", &["x86_64"], both);
    refused(
        &signed(&dev_key(), &m, both),
        MIB,
        "board rpi-arm64 not in [x86_64]",
    );
    let m = manifest("0.3.0", "0.2.0", &[BOARD], both);
    refused(
        &signed(&dev_key(), &m, both),
        MIB,
        "version 0.1.0 below minimum 0.2.0",
    );
    let m = manifest("0.2.0", "0.1.0", &[BOARD], both);
    refused(
        &signed(&keys::generate(), &m, both),
        MIB,
        "signed by unknown key",
    );
    let mut forged = signed(&keys::generate(), &m, both);
    forged[14..46].copy_from_slice(dev_key().verifying_key().as_bytes());
    refused(&forged, MIB, "signature invalid");

    // Payloads that do not fit or do not match the slot.
    let big = bytes(3, 5000);
    let p: &[(&str, &[u8])] = &[("boot", &boot), ("root", &big)];
    let m = manifest("0.2.0", "0.1.0", &[BOARD], p);
    let (b_boot, b_root) = refused(
        &signed(&dev_key(), &m, p),
        4096,
        "payload root: 5000 bytes do not fit",
    );
    assert!(b_boot.is_empty() && b_root.is_empty());
    let p: &[(&str, &[u8])] = &[("boot", &boot)];
    let m = manifest("0.2.0", "0.1.0", &[BOARD], p);
    refused(
        &signed(&dev_key(), &m, p),
        MIB,
        "bundle has no root payload for slot B",
    );
    let p: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root), ("kernel", &root)];
    let m = manifest("0.2.0", "0.1.0", &[BOARD], p);
    refused(
        &signed(&dev_key(), &m, p),
        MIB,
        "payload kernel: not a payload for slot B",
    );
}

#[test]
fn slot_specific_boot_images_go_to_their_own_slot_only() {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, MIB);
    let (boot_a, boot_b, root) = (bytes(5, 3000), bytes(6, 3000), bytes(7, 9000));
    let p: &[(&str, &[u8])] = &[("boot-a", &boot_a), ("boot-b", &boot_b), ("root", &root)];
    let m = manifest("0.2.0", "0.1.0", &[BOARD], p);
    let (mut inst, _) = installer(slots.clone());
    install(&mut inst, &signed(&dev_key(), &m, p), 1000).unwrap();
    assert_eq!(prefix(&slots.b.boot, 3000), boot_b);
    assert_eq!(prefix(&slots.b.root, 9000), root);
}

#[test]
fn no_install_while_the_other_slot_is_the_one_that_boots_next() {
    let dir = tempfile::tempdir().unwrap();
    let slots = trial_of_b_armed(dir.path());
    // On B's trial, not committed yet: A is the fall-back and stays so.
    let before = protected(&slots);
    let (mut on_b, _) = installer(booted(&slots, SlotName::B));
    let e = on_b.initiate_update().err().expect("refused");
    assert!(
        e.to_string().contains("slot A is the slot that boots next"),
        "{e}"
    );
    assert_eq!(protected(&slots), before);
}

#[test]
fn an_aborted_install_marks_the_slot_and_switches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, 2 * MIB);
    let before = protected(&slots);
    let (mut inst, restarts) = installer(slots.clone());
    let (b, _, _) = good();
    let mut update = inst.initiate_update().unwrap();
    update.write_all(&b[..b.len() / 2]).unwrap();
    update.abort().unwrap();
    assert_eq!(protected(&slots), before);
    assert!(restarts.lock().unwrap().is_empty());
    let state = inst.state().unwrap();
    assert_eq!(state.b.unwrap().health, Health::Invalid);
    assert_eq!(state.last.unwrap().outcome, Outcome::Refused);
    // A later good bundle still installs.
    install(&mut inst, &b, 65536).unwrap();
    assert_eq!(inst.state().unwrap().trial, Some(SlotName::B));
}

#[test]
fn after_a_failed_write_nothing_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, 2 * MIB);
    let (mut inst, restarts) = installer(slots.clone());
    let (mut b, boot, _) = good();
    let last = b.len() - 1;
    b[last - boot.len()] ^= 1; // in the root payload
    let mut update = inst.initiate_update().unwrap();
    let e = update.write_all(&b).unwrap_err();
    assert_eq!(e.to_string(), "bundle refused: payload root: hash mismatch");
    let e = update.write_all(b"more").unwrap_err();
    assert!(e.to_string().contains("hash mismatch"), "{e}");
    let e = update.finish().err().expect("no finish after a failure");
    assert_eq!(
        e.to_string(),
        "the install already failed: bundle refused: payload root: hash mismatch"
    );
    assert!(restarts.lock().unwrap().is_empty());
    assert_eq!(inst.state().unwrap().b.unwrap().health, Health::Invalid);
}

#[test]
fn refusal_reasons_are_the_bundle_reasons() {
    // The installer's message is the bundle's reason, prefixed.
    let e = InstallError::from(Refusal::HashMismatch("root".into()));
    assert_eq!(e.to_string(), "bundle refused: payload root: hash mismatch");
}
