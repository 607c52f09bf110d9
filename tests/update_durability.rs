//! The installer as a process that can die and must stay small: killed
//! (SIGKILL) at many points of an install, it leaves slot A and the
//! selector byte for byte as they were; installing a 64 MiB bundle made
//! on the fly grows its peak memory by well under 16 MiB.

mod support;

use embedded_svc::ota::{Ota, OtaUpdate};
use glory_hole::testing::Rng;
use glory_hole::update::installer::SlotWriter;
use glory_hole::update::selector::Selector;
use glory_hole::update::state::UpdateState;
use glory_hole::update::{Manifest, PayloadEntry, SlotName, bundle};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use support::update::{
    BOARD, Generated, bytes, dev_key, file_slots, installer, manifest, protected, signed, slots_in,
};

const CHILD_DIR: &str = "UPDATE_CHILD_DIR";
const CHILD_PACED: &str = "UPDATE_CHILD_PACED";
const KILL_CHUNK: usize = 16 << 10;

/// The bundle the killed installs write: 1 MiB boot, 3 MiB root.
fn kill_bundle() -> Vec<u8> {
    let (boot, root) = (bytes(21, 1 << 20), bytes(22, 3 << 20));
    let p: &[(&str, &[u8])] = &[("boot", &boot), ("root", &root)];
    signed(&dev_key(), &manifest("0.2.0", "0.1.0", &[BOARD], p), p)
}

/// Run only by the test below: installs `kill_bundle` into the slots in
/// `CHILD_DIR` in 16 KiB writes, reporting each step ("reached step N"); when
/// paced, each step waits for a line on stdin first.
#[test]
#[ignore = "helper process for killed_installs_leave_slot_a_and_the_selector_intact"]
fn child_installs_until_killed() {
    let dir = std::path::PathBuf::from(std::env::var(CHILD_DIR).expect("run by the kill test"));
    let paced = std::env::var(CHILD_PACED).is_ok_and(|v| v == "1");
    let mut stdin = std::io::stdin().lock();
    let mut step = |n: usize| {
        if paced {
            let mut line = String::new();
            stdin.read_line(&mut line).unwrap();
        }
        println!("reached step {n}");
    };
    let b = kill_bundle();
    let (mut inst, _) = installer(slots_in(&dir, SlotName::A));
    let mut update = inst.initiate_update().unwrap();
    let mut n = 0;
    for c in b.chunks(KILL_CHUNK) {
        step(n);
        embedded_svc::io::Write::write_all(&mut update, c).unwrap();
        n += 1;
    }
    step(n);
    let finished = update.finish().unwrap();
    step(n + 1);
    embedded_svc::ota::OtaUpdateFinished::activate(finished).unwrap();
    println!("done");
}

#[test]
fn killed_installs_leave_slot_a_and_the_selector_intact() {
    let dir = tempfile::tempdir().unwrap();
    let slots = file_slots(dir.path(), SlotName::A, 4 << 20);
    let before = protected(&slots);
    let steps = kill_bundle().len().div_ceil(KILL_CHUNK) + 2;
    let mut rng = Rng(2026);
    let mut completed = 0;
    // Paced rounds stop at a chosen step (0 .. all of them); free rounds
    // kill a running install as soon as it reports the chosen step.
    let rounds: Vec<(bool, usize)> = (0..10)
        .map(|i| (i < 8, (rng.next_u64() as usize) % (steps + 2)))
        .chain([(true, 0), (true, steps - 1), (true, steps + 5)])
        .collect();
    for (paced, kill_at) in rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_installs_until_killed",
                "--nocapture",
            ])
            .args(["--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_PACED, if paced { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut finished = false;
        if paced {
            let _ = writeln!(input);
        }
        while let Some(Ok(line)) = lines.next() {
            if line.ends_with("done") {
                finished = true;
                break;
            }
            // The first report follows libtest's "test NAME ... ".
            let Some((_, n)) = line.split_once("reached step ") else {
                continue;
            };
            if n.parse::<usize>().unwrap() >= kill_at {
                break;
            }
            if paced {
                let _ = writeln!(input);
            }
        }
        // SIGKILL: no cleanup runs.
        child.kill().unwrap();
        child.wait().unwrap();
        completed += finished as usize;

        assert_eq!(
            protected(&slots),
            before,
            "slot A or the selector changed (paced {paced}, killed at step {kill_at})"
        );
        let selector = Selector::read(&slots.selector).unwrap();
        assert_eq!(selector.committed, SlotName::A);
        UpdateState::load(&slots.state).expect("the state file is whole");
    }
    assert!(completed >= 1, "the round past the last step completes");
    assert!(completed < 13, "most rounds are cut off");
}

const MEM_DIR: &str = "UPDATE_MEM_DIR";
const BOOT_LEN: u64 = 16 << 20;
const ROOT_LEN: u64 = 48 << 20;

/// Bundle bytes written straight into an install.
struct IntoInstall<'a, 'b>(&'a mut SlotWriter<'b>);

impl std::io::Write for IntoInstall<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        embedded_svc::io::Write::write_all(self.0, buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Run only by the test below: installs a bundle of 64 MiB of payload,
/// generated while it is written, and prints the peak RSS growth.
#[test]
#[ignore = "helper process for a_64_mib_install_stays_within_16_mib"]
fn child_installs_a_large_bundle() {
    let dir = std::path::PathBuf::from(std::env::var(MEM_DIR).expect("run by the memory test"));
    let slots = file_slots(&dir, SlotName::A, ROOT_LEN);
    let m = Manifest {
        payloads: vec![
            PayloadEntry::measure("boot", &mut Generated::new(31, BOOT_LEN)).unwrap(),
            PayloadEntry::measure("root", &mut Generated::new(32, ROOT_LEN)).unwrap(),
        ],
        ..manifest("0.2.0", "0.1.0", &[BOARD], &[])
    };
    let (mut inst, _) = installer(slots);
    let key = dev_key();
    let rss_before = status_kib("VmRSS:");
    let mut update = inst.initiate_update().unwrap();
    let written = bundle::write(
        &mut IntoInstall(&mut update),
        &key,
        &m,
        &mut [
            &mut Generated::new(31, BOOT_LEN),
            &mut Generated::new(32, ROOT_LEN),
        ],
    )
    .unwrap();
    update.complete().unwrap();
    let hwm = status_kib("VmHWM:");
    println!(
        "measured: bundle {written} growth_kib {}",
        hwm.saturating_sub(rss_before)
    );
}

#[test]
fn a_64_mib_install_stays_within_16_mib() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_installs_a_large_bundle",
            "--nocapture",
        ])
        .args(["--test-threads=1"])
        .env(MEM_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first line the child prints follows libtest's "test NAME ... ".
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("measured: ").map(|(_, m)| m))
        .expect("the child reports");
    let words: Vec<&str> = line.split_whitespace().collect();
    let bundle_len: u64 = words[1].parse().unwrap();
    let growth_kib: u64 = words[3].parse().unwrap();
    assert!(bundle_len > BOOT_LEN + ROOT_LEN, "{line}");
    assert!(
        growth_kib < 16 << 10,
        "peak RSS grew by {growth_kib} KiB installing {bundle_len} bytes"
    );
    // The install really happened: B holds the generated root.
    let slots = slots_in(dir.path(), SlotName::A);
    let state = UpdateState::load(&slots.state).unwrap();
    assert_eq!(state.trial, Some(SlotName::B));
    eprintln!("peak RSS growth {growth_kib} KiB for a {bundle_len}-byte bundle");
}
