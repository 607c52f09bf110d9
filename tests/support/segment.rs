//! A LAN segment of two network namespaces joined by a veth pair: the
//! box's (`gh0`, 192.168.7.2/24) and the household's (`gh1`, no address
//! until a DHCP client takes one). Made inside one user namespace
//! (`unshare -rn`, then a nested `unshare -n` for the household's side),
//! so no root is needed; glory-hole is started, stopped and started again
//! in the box's namespace, and the household's programs (DHCP clients, a
//! second DHCP server) run on `gh1`.
//!
//! Not for: the binary alone in a namespace (`netns`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The box's address on `gh0`.
pub const BOX: &str = "192.168.7.2";

/// The two namespaces, kept by a `sleep` in each; dropping ends them.
pub struct Segment {
    dir: PathBuf,
    box_holder: Child,
    lan_pid: u32,
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the sleep this segment started.
        unsafe { libc::kill(self.lan_pid as i32, libc::SIGKILL) };
        let _ = self.box_holder.kill();
        let _ = self.box_holder.wait();
    }
}

impl Segment {
    /// The segment, or None (said on stderr) when this kernel refuses
    /// veth pairs in a user's network namespace.
    pub fn new(dir: &Path) -> Option<Segment> {
        let lan_pid = dir.join("lan.pid");
        let ready = dir.join("ready");
        let script = format!(
            "set -e; ip link set lo up; ip link add gh0 type veth peer name gh1; \
             ip addr add {BOX}/24 dev gh0; ip link set gh0 up; \
             unshare -n sh -c 'echo $$ > {lan}; exec sleep 3600' & \
             while [ ! -s {lan} ]; do sleep 0.02; done; \
             ip link set gh1 netns \"$(cat {lan})\"; touch {ready}; exec sleep 3600",
            lan = lan_pid.display(),
            ready = ready.display(),
        );
        let mut box_holder = Command::new("unshare")
            .args(["-rn", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("segment.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux) runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Ok(Some(status)) = box_holder.try_wait() {
                let log = std::fs::read_to_string(dir.join("segment.log")).unwrap_or_default();
                if log.contains("veth") || log.contains("Operation not permitted") {
                    eprintln!("SKIPPED: the kernel refuses a veth pair here ({status}): {log}");
                    return None;
                }
                panic!("making the segment failed ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "the segment was not ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let lan_pid: u32 = std::fs::read_to_string(&lan_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let seg = Segment {
            dir: dir.to_path_buf(),
            box_holder,
            lan_pid,
        };
        seg.lan_sh("ip link set lo up; ip link set gh1 up");
        Some(seg)
    }

    fn enter(pid: u32, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["--preserve-credentials", "-U", "-n", "-t"])
            .arg(pid.to_string())
            .arg(program);
        c
    }

    /// `program` in the box's namespace.
    pub fn in_box(&self, program: &str) -> Command {
        Segment::enter(self.box_holder.id(), program)
    }

    /// `program` in the household's namespace (on `gh1`).
    pub fn on_lan(&self, program: &str) -> Command {
        Segment::enter(self.lan_pid, program)
    }

    /// Runs shell `script` on the household's side; panics on failure.
    pub fn lan_sh(&self, script: &str) {
        let out = self.on_lan("sh").args(["-c", script]).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Gives `gh1` the hardware address `mac` and no IPv4 address.
    pub fn set_mac(&self, mac: &str) {
        self.lan_sh(&format!(
            "ip link set gh1 down; ip addr flush dev gh1; ip link set gh1 address {mac}; \
             ip link set gh1 up"
        ));
    }

    /// busybox's DHCP client on the household's `gh1`, ten tries a second
    /// apart; the caller adds its own options (`-q`, `-s SCRIPT`, `-x ...`).
    pub fn udhcpc(&self) -> Command {
        let mut c = self.on_lan("busybox");
        c.args(["udhcpc", "-i", "gh1", "-t", "10", "-T", "1"]);
        c
    }

    /// glory-hole with `config` (written to `dir/config.toml`) in the
    /// box's namespace, its output in `dir/server.log` (appended across
    /// restarts).
    pub fn start_server(&self, config: &str) -> Server {
        let cfg = self.dir.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = self
            .in_box(env!("CARGO_BIN_EXE_glory-hole"))
            .arg("--config")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Server {
            child,
            dir: self.dir.clone(),
        }
    }
}

/// glory-hole in the box's namespace; dropping kills it.
pub struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// What the server wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits until the log holds `text` the `nth` time (1: once).
    pub fn wait_for_log(&mut self, text: &str, nth: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.log().matches(text).count() < nth {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!(
                    "glory-hole ended ({s}) before logging {text:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it as the init system does (SIGTERM) and waits for the end.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "glory-hole stopped with {status}:\n{}",
            self.log()
        );
    }
}
