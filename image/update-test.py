#!/usr/bin/env python3
"""An A/B update end to end under qemu-system-aarch64 (-M virt, TCG), with
this script playing the Raspberry Pi boot firmware (docs/update.md).

QEMU has no Pi firmware, so between two runs of the guest this script does
what the Pi 4 bootloader does: it reads `autoboot.txt` from the disk
image's partition 1 and boots the `[tryboot]` slot once if the guest
restarted with the tryboot flag (the kernel prints "Restarting system with
command '0 tryboot'"), otherwise the `[all]` slot; the kernel, initramfs
and command line come from that slot's boot partition. A reset by the
watchdog or a plain reboot carries no flag: the committed slot boots.

The scenario (image/boot-test.py's guest, stand-in upstream and checks):
 1. boot A, finish setup, make an API token, add a local record and make
    query-log rows;
 2. upload bundle B (the same system, a later version) through
    `POST /api/v1/firmware`, activate it: the guest restarts with tryboot,
    B boots once, passes its health check and commits itself; the
    selector on the disk then boots B; the record, the query-log rows and
    the token made under A are still there;
 3. upload a bundle whose glory-hole never starts (GH_TEST_UNHEALTHY=1),
    activate it: its trial is not committed, the image's trial guard
    restarts without the flag, B comes back by itself, and
    `GET /api/v1/firmware` says why.

The firmware API is the one docs/update.md describes: bundle bytes as the
body of POST /api/v1/firmware, POST /api/v1/firmware/activate, and GET
/api/v1/firmware with `running`, `boots_next` and `last`, the last result
(`outcome`, `version`, `reason`) as `update.json` keeps it.

usage: update-test.py --image IMG --stand-in BIN --bundle-b GHB --bundle-bad GHB [--keep DIR]
Prints one line per check and "N passed, N failed"; exits non-zero on any
failure.
"""

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("boot_test", os.path.join(HERE, "boot-test.py"))
bt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bt)

BOOT_TIMEOUT = 300  # QEMU start to DNS answers, under TCG
# The bad test image's trial guard waits 20 s for a commit (image/build.sh,
# GH_TEST_UNHEALTHY); a shipped image's 150 s bounds it, plus a boot on
# each side.
ROLLBACK_TIMEOUT = 150 + 2 * BOOT_TIMEOUT
TRYBOOT = re.compile(r"Restarting system with command '0 tryboot'")
ADMIN_PASSWORD = "correct horse battery staple 42"


# ---------------------------------------------------------------- firmware

def read_selector(disk, parts):
    """(committed, trial) boot partition numbers from autoboot.txt."""
    start, _ = parts[0]
    text = subprocess.run(["mtype", "-i", f"{disk}@@{start}", "::autoboot.txt"], check=True,
                          capture_output=True, text=True,
                          env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout
    section, found = "all", {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = "tryboot" if line == "[tryboot]" else "all"
        elif line.startswith("boot_partition="):
            found[section] = int(line.split("=", 1)[1])
    return found["all"], found.get("tryboot", found["all"])


def firmware_pick(disk, parts, tryboot, work):
    """What the Pi bootloader would boot: (partition, directory with its
    vmlinuz, initramfs and cmdline.txt)."""
    committed, trial = read_selector(disk, parts)
    part = trial if tryboot else committed
    boot_dir = os.path.join(work, f"boot-p{part}")
    shutil.rmtree(boot_dir, ignore_errors=True)
    os.makedirs(boot_dir)
    for f in ("vmlinuz", "initramfs", "cmdline.txt"):
        bt.mtools(disk, parts[part - 1], "mcopy", "-o", f"::{f}", os.path.join(boot_dir, f))
    return part, boot_dir


# ---------------------------------------------------------------- web API

class Api(bt.Http):
    """The box's API with a bearer token (sessions end at a reboot)."""

    token = None

    def request(self, method, path, body=None, headers=None, timeout=10, raw=None):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return super().request(method, path, body, headers, timeout, raw)

    def upload(self, path, file, timeout=900):
        with open(file, "rb") as f:
            return self.request("POST", path, headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(os.path.getsize(file)),
            }, timeout=timeout, raw=f)

    def json(self, method, path, body=None):
        status, text = self.request(method, path, body)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, {"unparsed": text[:300]}


def setup_and_token(res, api, up_port):
    status, body = api.request("GET", "/api/v1/setup")
    pre = json.loads(body).get("csrf", "") if status == 200 else ""
    setup = {
        "password": ADMIN_PASSWORD, "upstream": "custom", "protocol": "plain",
        "custom_upstreams": [f"10.0.2.2:{up_port}"], "blocklists": [],
        "network": {"mode": "dhcp", "address": "", "gateway": "", "address6": "",
                    "gateway6": "", "timezone": "UTC"},
    }
    status, body = api.request("POST", "/api/v1/setup", setup, headers={"x-csrf-token": pre})
    if not res.check("A: setup through the API", status == 200, f"HTTP {status}: {body[:200]}"):
        return False
    csrf = json.loads(body)["csrf"]
    status, body = api.request("POST", "/api/v1/tokens", {"name": "update-test", "scope": "admin"},
                               headers={"x-csrf-token": csrf})
    ok = status == 201
    if ok:
        api.token = json.loads(body)["token"]
    return res.check("A: admin API token created", ok, f"HTTP {status}: {body[:200]}")


def wait_until(fn, timeout, step=2.0):
    """Polls fn() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    return last


def last_result(api):
    status, info = api.json("GET", "/api/v1/firmware")
    return (info.get("last") or {}) if status == 200 else {}


def guest_memory(guest, reset_peak=False):
    """glory-hole's VmRSS and VmHWM in KiB, read through the console shell."""
    if not guest.shell and not guest.open_shell(60):
        return {}
    cmd = "p=$(pidof glory-hole); "
    if reset_peak:
        cmd += "echo 5 > /proc/$p/clear_refs; "
    cmd += "grep -E '^Vm(RSS|HWM):' /proc/$p/status"
    status, out = guest.run(cmd, timeout=30)
    mem = {}
    for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", out or "", re.M):
        mem[m.group(1)] = int(m.group(2))
    return mem


# ---------------------------------------------------------------- the run

class Box:
    """The disk and its QEMU runs; boots what the firmware would."""

    def __init__(self, disk, work, ports):
        self.disk, self.work, self.ports = disk, work, ports
        self.parts = bt.partitions(disk)
        self.tryboot = False
        self.guest = None
        self.log = os.path.join(work, "console.log")
        self.boots = []

    def boot(self):
        part, boot_dir = firmware_pick(self.disk, self.parts, self.tryboot, self.work)
        self.boots.append((part, self.tryboot))
        with open(self.log, "a") as f:
            f.write(f"\n==== firmware: boot partition {part}"
                    f"{' (tryboot)' if self.tryboot else ''} ====\n")
        print(f"boot partition {part}{' (tryboot)' if self.tryboot else ''}", flush=True)
        self.guest = bt.Guest(self.disk, boot_dir, *self.ports, self.log)
        return part

    def wait_reset(self, timeout):
        """Waits for the guest to reset (QEMU exits: -no-reboot); notes the flag."""
        if not self.guest.wait_exit(timeout):
            return False
        self.tryboot = bool(TRYBOOT.search(self.guest.output()))
        self.guest.kill()
        return True

    def poweroff(self):
        if self.guest.open_shell(60):
            self.guest.send("poweroff\n")
        self.guest.wait_exit(120)
        self.guest.kill()
        self.tryboot = False


def run(args, res, work):
    disk = os.path.join(work, "disk.img")
    shutil.copyfile(args.image, disk)
    os.truncate(disk, bt.DISK_SIZE)

    stand_in, up_port = bt.start_stand_in(args.stand_in, work)
    seed = os.path.join(work, "glory-hole.toml")
    with open(seed, "w") as f:
        f.write(f"""data_dir = "/data/glory-hole"
[dns]
listen = ["0.0.0.0:53"]
upstreams = ["10.0.2.2:{up_port}"]
[web]
listen = ["0.0.0.0:80"]
appliance = true
""")
    box = Box(disk, work, (bt.free_dns_port(), bt.free_port(socket.SOCK_STREAM)))
    bt.mtools(disk, box.parts[0], "mcopy", "-o", seed, "::glory-hole.toml")
    dns_port = box.ports[0]
    api = Api(box.ports[1])
    marker = f"qlog-{random.randrange(1 << 30):x}.example"
    try:
        # ---- 1. version A ----
        res.check("firmware boots slot A (partition 2) first", box.boot() == 2)
        up = bt.wait_dns(res, dns_port, "forwarded.example", "203.0.113.7", BOOT_TIMEOUT)
        if not res.check("A: DNS answers", isinstance(up, float)):
            return
        if not setup_and_token(res, api, up_port):
            return
        status, body = api.request("POST", "/api/v1/local/records",
                                   {"name": "kept.lan", "type": "A", "value": "192.0.2.77"})
        res.check("A: a local record added", status == 200, f"HTTP {status}: {body[:200]}")
        for _ in range(3):
            try:
                bt.dns_query(marker, dns_port, timeout=2.0)
            except (OSError, ValueError):
                pass
        logged = wait_until(lambda: marker in api.request("GET", f"/api/v1/querylog?domain={marker}")[1], 60)
        res.check("A: query-log rows written", bool(logged))

        # ---- 2. update to B ----
        # glory-hole's memory around the install, from the guest's console:
        # the peak (VmHWM) is reset first (clear_refs 5), so after the
        # upload it is the peak of the install alone.
        idle = guest_memory(box.guest, reset_peak=True)
        res.check("B: glory-hole's memory read from the console before the upload",
                  "VmRSS" in idle, str(idle))
        t0 = time.monotonic()
        status, body = api.upload("/api/v1/firmware", args.bundle_b)
        res.numbers["upload and install of bundle B (s)"] = round(time.monotonic() - t0, 1)
        res.numbers["bundle B size (bytes)"] = os.path.getsize(args.bundle_b)
        if not res.check("B: bundle uploaded and installed", status == 200, f"HTTP {status}: {body[:300]}"):
            # Kept for whoever reads the failure: the server's own words.
            _, text = box.guest.run("logread | grep -v kernel: | tail -n 40; ls -l /dev/vda* /boot/selector", timeout=60)
            print(text)
            return
        after = guest_memory(box.guest)
        if "VmRSS" in idle and "VmHWM" in after:
            growth = after["VmHWM"] - idle["VmRSS"]
            res.numbers["glory-hole RSS before the upload (KiB)"] = idle["VmRSS"]
            res.numbers["glory-hole peak RSS during the install (KiB)"] = after["VmHWM"]
            res.numbers["peak RSS over idle during the install (KiB)"] = growth
            res.check("B: the install's peak RSS is within 16 MiB of the idle RSS",
                      growth <= 16 * 1024, f"{growth} KiB over {idle['VmRSS']} KiB")
        status, body = api.request("POST", "/api/v1/firmware/activate", {})
        res.check("B: activated", status in (200, 202), f"HTTP {status}: {body[:200]}")
        res.check("B: the box restarts with the tryboot flag",
                  box.wait_reset(120) and box.tryboot, box.guest.output()[-300:])
        t_trial = time.monotonic()
        res.check("B: the firmware boots slot B (partition 3) once", box.boot() == 3)
        up = bt.wait_dns(res, dns_port, "kept.lan", "192.0.2.77", BOOT_TIMEOUT)
        res.check("B: DNS answers the record made under A", isinstance(up, float))
        committed = wait_until(lambda: last_result(api).get("outcome") == "committed", 150)
        res.numbers["B: QEMU start of the trial boot to committed (s)"] = round(time.monotonic() - t_trial, 1)
        res.check("B: passed its health check and is committed", bool(committed),
                  json.dumps(last_result(api)))
        status, info = api.json("GET", "/api/v1/firmware")
        res.check("B: GET /api/v1/firmware: running B, which boots next",
                  info.get("running") == "B" and info.get("boots_next") == "B", json.dumps(info)[:300])
        status, body = api.request("GET", f"/api/v1/querylog?domain={marker}")
        res.check("B: query-log rows made under A are there", status == 200 and marker in body,
                  f"HTTP {status}: {body[:200]}")
        box.poweroff()
        committed, _ = read_selector(disk, box.parts)
        res.check("B: autoboot.txt on the disk commits slot B ([all] boot_partition=3)",
                  committed == 3, f"boot_partition={committed}")
        res.check("B: a normal boot starts slot B", box.boot() == 3)
        up = bt.wait_dns(res, dns_port, "kept.lan", "192.0.2.77", BOOT_TIMEOUT)
        res.check("B: answers after a normal boot", isinstance(up, float))

        # ---- 3. a bundle that never becomes healthy ----
        status, body = api.upload("/api/v1/firmware", args.bundle_bad)
        if not res.check("bad: bundle uploaded and installed", status == 200, f"HTTP {status}: {body[:300]}"):
            return
        status, body = api.request("POST", "/api/v1/firmware/activate", {})
        res.check("bad: activated", status in (200, 202), f"HTTP {status}: {body[:200]}")
        res.check("bad: the box restarts with the tryboot flag", box.wait_reset(120) and box.tryboot)
        t_bad = time.monotonic()
        res.check("bad: its trial boots slot A (partition 2)", box.boot() == 2)
        # Nothing commits it: the trial guard restarts without the flag.
        res.check("bad: the uncommitted trial restarts by itself, without the flag",
                  box.wait_reset(ROLLBACK_TIMEOUT) and not box.tryboot,
                  box.guest.output()[-400:])
        res.numbers["bad: QEMU start of the trial boot to its reset by the trial guard (s)"] = \
            round(time.monotonic() - t_bad, 1)
        res.check("bad: the firmware boots the committed slot B again", box.boot() == 3)
        up = bt.wait_dns(res, dns_port, "kept.lan", "192.0.2.77", BOOT_TIMEOUT)
        res.check("bad: B answers DNS again", isinstance(up, float))
        last = wait_until(lambda: last_result(api).get("outcome") == "rolled_back" and last_result(api), 60)
        res.check("bad: GET /api/v1/firmware says it rolled back, and why",
                  bool(last) and "did not come up healthy" in (last or {}).get("reason", ""),
                  json.dumps(last_result(api)))
        box.poweroff()
        committed, _ = read_selector(disk, box.parts)
        res.check("bad: autoboot.txt still commits slot B", committed == 3, f"boot_partition={committed}")
    finally:
        if box.guest:
            box.guest.kill()
        stand_in.terminate()
        stand_in.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--stand-in", required=True)
    ap.add_argument("--bundle-b", required=True)
    ap.add_argument("--bundle-bad", required=True)
    ap.add_argument("--keep")
    args = ap.parse_args()
    t_all = time.monotonic()
    res = bt.Results()
    work = args.keep or tempfile.mkdtemp(prefix="gh-update-test-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run(args, res, work)
    res.numbers["whole test (s)"] = round(time.monotonic() - t_all, 1)
    for k, v in res.numbers.items():
        print(f"measured: {k}: {v}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed or res.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
