//! Leaving root: on the board, init starts glory-hole as root only so that
//! it can become its own user (`--user glory-hole`) before anything else
//! runs, keeping just the capabilities it needs (docs/security.md, "Least
//! privilege"):
//!
//! - `CAP_NET_BIND_SERVICE`: DNS on port 53 and the web UI on port 80;
//! - `CAP_SYS_BOOT`: the trial restart into the other slot (`reboot(2)`
//!   with the tryboot argument), which init cannot pass on;
//! - `CAP_SYS_TIME`: setting the clock from SNTP (a Pi has no RTC);
//! - `CAP_KILL`: asking init (PID 1) for a clean restart (busybox `reboot`
//!   signals it), so `/data` is unmounted and the clock saved first.
//!
//! Everything else — the update's block devices, the watchdog, the
//! selector partition — is reached through file ownership that the
//! image's run script and `rcS` set up as root. Every other capability is
//! also removed from the bounding set and `no_new_privs` is set, so nothing
//! glory-hole might run can get them back.
//!
//! Must run while the process has one thread (first thing in `main`):
//! `setuid` changes only the calling thread's credentials at the system
//! call level.
//!
//! Not for: the image's device and directory ownership (the run script,
//! `buildroot-overlay/rootfs-overlay/usr/libexec/glory-hole/run`).

use caps::{CapSet, Capability, CapsHashSet};
use std::ffi::{CStr, CString};

/// The capabilities kept, each justified in the module doc.
pub const KEPT: [Capability; 4] = [
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_BOOT,
    Capability::CAP_SYS_TIME,
    Capability::CAP_KILL,
];

/// A user from the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in the password database (`/etc/passwd`).
pub fn lookup(name: &str) -> Result<User, String> {
    let c_name =
        CString::new(name).map_err(|_| format!("user name {name:?} contains a NUL byte"))?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use
    // of the strings `pwd` points into (only `pw_name`, read below).
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(format!(
            "looking up user {name:?}: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    if found.is_null() {
        return Err(format!(
            "--user {name}: there is no such user in /etc/passwd"
        ));
    }
    // SAFETY: getpwnam_r filled `pwd` with strings inside `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    Ok(User {
        name,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Becomes `name`, keeping only [`KEPT`]. Started as that user already,
/// there is nothing to do; started as anyone else but root, it is an
/// error (switching users needs root).
pub fn become_user(name: &str) -> Result<(), String> {
    let user = lookup(name)?;
    // SAFETY: getuid/geteuid cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid == user.uid && euid == user.uid {
        return Ok(());
    }
    if euid != 0 {
        return Err(format!(
            "--user {name}: switching to uid {} needs root, but glory-hole runs as uid {euid}",
            user.uid
        ));
    }
    let kept: CapsHashSet = KEPT.into_iter().collect();
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("--user {name}: {what}: {e}");
    // While still root: take every other capability out of the bounding
    // set (this needs CAP_SETPCAP, which root still has).
    for cap in caps::all() {
        if !kept.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| fail(&format!("dropping {cap} from the bounding set"), &e))?;
        }
    }
    caps::securebits::set_keepcaps(true).map_err(|e| fail("keeping capabilities", &e))?;
    // SAFETY: plain system calls on the calling (only) thread's credentials.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail("clearing groups", &std::io::Error::last_os_error()));
        }
        if libc::setgid(user.gid) != 0 {
            return Err(fail("setgid", &std::io::Error::last_os_error()));
        }
        if libc::setuid(user.uid) != 0 {
            return Err(fail("setuid", &std::io::Error::last_os_error()));
        }
    }
    caps::securebits::set_keepcaps(false).map_err(|e| fail("resetting keepcaps", &e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| fail("permitted set", &e))?;
    caps::set(None, CapSet::Effective, &kept).map_err(|e| fail("effective set", &e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| fail("inheritable set", &e))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(fail("no_new_privs", &std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_names_a_missing_user() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        let e = lookup("no-such-user-here").unwrap_err();
        assert!(e.contains("no-such-user-here"), "{e}");
        assert!(e.contains("no such user"), "{e}");
    }
}
