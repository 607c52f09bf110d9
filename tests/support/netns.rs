//! The whole glory-hole binary in a network namespace of its own
//! (`unshare -rn`, no root needed; or as real root, `start_as_root`), and commands entered into it
//! (`nsenter`): for tests that need addresses loopback alone does not give
//! (a public source, a ULA, the LAN's global IPv6 prefix on a veth).

use std::path::Path;
use std::process::{Child, Command};

/// The running binary; dropping it stops it.
pub struct Namespaced(Child);

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Namespaced {
    /// Writes `config` to `dir/config.toml`, brings loopback up, runs
    /// `net_setup` (shell, `set -e`), then the binary; its output goes to
    /// `dir/server.log`.
    pub fn start(dir: &Path, net_setup: &str, config: &str) -> Namespaced {
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        Namespaced::spawn(dir, "-rn", net_setup, &[cfg.as_os_str()])
    }

    /// As [`Namespaced::start`], in a mount namespace of its own too
    /// (`unshare -rmn`): `net_setup` may mount what the board's init
    /// mounts; [`Namespaced::command`] enters both namespaces.
    pub fn start_with_mounts(dir: &Path, net_setup: &str, config: &str) -> Namespaced {
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        Namespaced::spawn(dir, "-rmn", net_setup, &[cfg.as_os_str()])
    }

    /// The binary begun as real root (`unshare -n`, no user namespace: the
    /// test must run as root), with `--config config --user user`, as the
    /// board's init starts it, so it leaves root itself.
    pub fn start_as_root(dir: &Path, config: &Path, user: &str) -> Namespaced {
        let args = [
            config.as_os_str(),
            std::ffi::OsStr::new("--user"),
            std::ffi::OsStr::new(user),
        ];
        Namespaced::spawn(dir, "-n", "true", &args)
    }

    /// `unshare FLAGS sh -c '...; exec glory-hole --config ARGS...'`, its
    /// output in `dir/server.log`; returns once it is in its namespace.
    fn spawn(dir: &Path, flags: &str, net_setup: &str, args: &[&std::ffi::OsStr]) -> Namespaced {
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("unshare")
            .args([flags, "sh", "-c"])
            .arg(format!(
                "set -e; ip link set lo up; {net_setup}; exec \"$0\" --config \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_glory-hole"))
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare (util-linux) runs: the test needs a network namespace");
        // Until `unshare` has switched, `nsenter -t PID` (or a look at
        // /proc/PID/net) would see this process's own namespaces: wait for
        // the switch (a busy machine takes its time).
        let pid = child.id();
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while ns(&pid.to_string()) == ns("self") {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare did not enter a network namespace; log:\n{}",
                self::log(dir)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Namespaced(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the binary to end (it was expected to stop by itself).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().unwrap()
    }

    /// `program` run inside the namespace (and its mount namespace, when
    /// it has one of its own).
    pub fn command(&self, program: &str) -> Command {
        let pid = self.0.id().to_string();
        let ns = |p: &str, kind: &str| std::fs::read_link(format!("/proc/{p}/ns/{kind}")).ok();
        let mut c = Command::new("nsenter");
        c.args(["--preserve-credentials", "-U", "-n"]);
        if ns(&pid, "mnt") != ns("self", "mnt") {
            c.arg("-m");
        }
        c.arg("-t").arg(&pid).arg(program);
        c
    }

    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.0.id())).exists()
    }
}

/// What the server wrote so far.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}
