#!/usr/bin/env python3
"""Boots the SD image under qemu-system-aarch64 (-M virt, TCG) and checks the
appliance from the outside, the way a user's network would see it.

The kernel, initramfs and command line are read from the image's own boot
partition (slot A); the disk is a copy of the image grown to 1 GiB, so the
first boot creates the data partition as on a real card. QEMU's user network
forwards host ports to the guest's 53 (UDP+TCP) and 80; the user network
carries no multicast and its UDP forward to 5353 went unanswered, so the
mDNS responder is asked from inside the guest: a one-shot query to port
5353 from BusyBox's nslookup, which the responder answers by unicast as
RFC 6762 section 6.7 asks; the guest reaches a
stand-in upstream on the host at 10.0.2.2 (QEMU's alias for the host's
loopback). The serial console's recovery shell is used to look inside
(mounts, processes). The box is rebooted once to check that the data
partition and the configuration survive.

usage: boot-test.py --image IMG --stand-in STAND_IN_UPSTREAM [--keep DIR]
Prints one line per check and "N passed, N failed"; exits non-zero on any
failure.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import http.cookiejar

BOOT_TIMEOUT = 240  # seconds from QEMU start to a console shell, under TCG
DISK_SIZE = 1 << 30


# ---------------------------------------------------------------- results

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.numbers = {}

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL  {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


# ---------------------------------------------------------------- DNS client

def dns_query(name, port, qtype=1, tcp=False, timeout=3.0):
    """Sends one query to 127.0.0.1:port; returns (rcode, [A/AAAA values])."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">H", len(q)) + q)
            head = _recv_exact(s, 2)
            resp = _recv_exact(s, struct.unpack(">H", head)[0])
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, ("127.0.0.1", port))
            resp, _ = s.recvfrom(4096)
    rid, flags, qd, an = struct.unpack(">HHHH", resp[:8])
    if rid != qid:
        raise ValueError("answer ID does not match")
    off = 12
    for _ in range(qd):
        off = _skip_name(resp, off) + 4
    values = []
    for _ in range(an):
        off = _skip_name(resp, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", resp[off:off + 10])
        off += 10
        rdata = resp[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            values.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28 and rdlen == 16:
            values.append(socket.inet_ntop(socket.AF_INET6, rdata))
    return flags & 0xF, values


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


# ---------------------------------------------------------------- HTTP client

class Http:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method, path, body=None, headers=None, timeout=10, raw=None):
        """`body` is sent as JSON; `raw` (a file) as it is."""
        data = json.dumps(body).encode() if body is not None else raw
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")
        except OSError as e:
            return 0, f"no HTTP answer: {e}"


# ---------------------------------------------------------------- the guest

def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_dns_port():
    """A port free for both UDP and TCP (the forward uses the same number)."""
    for _ in range(50):
        p = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port for both UDP and TCP")


class Guest:
    """One QEMU run; the serial console is the recovery shell."""

    def __init__(self, disk, boot_dir, dns_port, http_port, log_path):
        cmdline = open(os.path.join(boot_dir, "cmdline.txt")).read().strip()
        # The Pi's console names mean nothing under -M virt: use the PL011.
        cmdline = " ".join(a for a in cmdline.split() if not a.startswith("console=") and a != "quiet")
        cmdline += " console=ttyAMA0"
        fwd = (f"hostfwd=udp:127.0.0.1:{dns_port}-:53,"
               f"hostfwd=tcp:127.0.0.1:{dns_port}-:53,"
               f"hostfwd=tcp:127.0.0.1:{http_port}-:80")
        self.start([
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "512",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", os.path.join(boot_dir, "vmlinuz"),
            "-initrd", os.path.join(boot_dir, "initramfs"),
            "-append", cmdline,
            "-drive", f"file={disk},if=none,format=raw,id=d0",
            "-device", "virtio-blk-pci,drive=d0",
            "-netdev", f"user,id=n0,{fwd}",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-device", "virtio-rng-pci",
            "-device", "i6300esb",
        ], log_path)

    def start(self, argv, log_path):
        """Starts QEMU with the serial console on its stdin/stdout."""
        self.argv = argv
        self.log = open(log_path, "ab")
        self.buf = b""
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._reader, daemon=True).start()
        self.shell = False

    def _reader(self):
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            self.log.write(chunk)
            self.log.flush()
            with self.lock:
                self.buf += chunk

    def output(self):
        with self.lock:
            return self.buf.decode("utf-8", "replace")

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def open_shell(self, timeout):
        """Waits for init's "press Enter" prompt and activates the console."""
        if not self.wait_for(r"Please press Enter to activate this console", timeout):
            return False
        self.send("\n")
        self.shell = self.wait_for(r"glory-hole# ", 30)
        return self.shell

    def run(self, cmd, timeout=30):
        """Runs cmd in the guest shell; returns (exit status, output)."""
        tag = f"{random.randrange(1 << 30):x}"
        start = len(self.output())
        # The quotes keep the echoed command line from matching the markers.
        self.send(f"echo B{tag}''B; {cmd}; echo E{tag}''E $?\n")
        pat = re.compile(rf"B{tag}B\r?\n(.*?)E{tag}E (\d+)", re.S)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = pat.search(self.output()[start:])
            if m:
                return int(m.group(2)), m.group(1).replace("\r", "")
            time.sleep(0.1)
        return None, ""

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- the image

def partitions(image):
    """(start_bytes, size_bytes) of the four primary MBR partitions."""
    with open(image, "rb") as f:
        mbr = f.read(512)
    parts = []
    for i in range(4):
        e = mbr[446 + 16 * i: 446 + 16 * (i + 1)]
        start, size = struct.unpack("<II", e[8:16])
        parts.append((start * 512, size * 512))
    return parts


def mtools(image, part, *args):
    start, _ = part
    subprocess.run(args[:1] + ("-i", f"{image}@@{start}") + args[1:], check=True,
                   env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))


def wait_dns(res, port, name, want, timeout):
    """Polls until `name` resolves to `want`; returns seconds waited or None."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        try:
            rcode, values = dns_query(name, port, timeout=1.0)
            if want in values:
                return time.monotonic() - t0
            last = f"rcode {rcode}, answers {values}"
        except (OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.5)
    return None, last


def dns_check(res, label, name, port, want, tcp=False):
    try:
        rcode, values = dns_query(name, port, tcp=tcp)
        res.check(label, want in values, f"rcode {rcode}, answers {values}")
    except (OSError, ValueError) as e:
        res.check(label, False, str(e))


def start_stand_in(binary, work):
    """The stand-in upstream, the internet for a test: (process, port).
    It answers forwarded.example A 203.0.113.7."""
    port = free_dns_port()
    zone = os.path.join(work, "zone.txt")
    with open(zone, "w") as f:
        f.write("forwarded.example A 203.0.113.7\n")
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--zone", zone],
                            stdout=open(os.path.join(work, "stand-in.log"), "wb"),
                            stderr=subprocess.STDOUT)
    return proc, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--stand-in", required=True, help="host stand-in-upstream binary (cargo build --example stand-in-upstream)")
    ap.add_argument("--keep", help="directory for the console logs and the disk")
    args = ap.parse_args()

    t_all = time.monotonic()
    res = Results()
    work = args.keep or tempfile.mkdtemp(prefix="gh-boot-test-")
    os.makedirs(work, exist_ok=True)
    disk = os.path.join(work, "disk.img")
    shutil.copyfile(args.image, disk)
    os.truncate(disk, DISK_SIZE)
    parts = partitions(disk)
    boot_dir = os.path.join(work, "boot-a")
    os.makedirs(boot_dir, exist_ok=True)
    for f in ("vmlinuz", "initramfs", "cmdline.txt"):
        mtools(disk, parts[1], "mcopy", "-o", f"::{f}", os.path.join(boot_dir, f))

    stand_in, up_port = start_stand_in(args.stand_in, work)
    up_ready = wait_dns(res, up_port, "forwarded.example", "203.0.113.7", 30)
    if not res.check("stand-in upstream answers on the host", isinstance(up_ready, float),
                     open(os.path.join(work, "stand-in.log")).read()[:300]):
        print(f"{res.passed} passed, {res.failed} failed")
        return 1

    # First-boot seed: a glory-hole.toml on the FAT boot partition.
    seed = os.path.join(work, "glory-hole.toml")
    with open(seed, "w") as f:
        f.write(f"""data_dir = "/data/glory-hole"
[dns]
listen = ["0.0.0.0:53"]
upstreams = ["10.0.2.2:{up_port}"]
[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
[filter]
deny = ["ads.example.com"]
[web]
listen = ["0.0.0.0:80"]
appliance = true
""")
    mtools(disk, parts[0], "mcopy", "-o", seed, "::glory-hole.toml")

    dns_port = free_dns_port()
    http_port = free_port(socket.SOCK_STREAM)
    log = os.path.join(work, "console.log")
    guests = []
    try:
        # ---- first boot ----
        print(f"boot 1 (console log: {log})", flush=True)
        g = Guest(disk, boot_dir, dns_port, http_port, log)
        guests.append(g)
        first = wait_dns(res, dns_port, "nas.lan", "192.168.1.10", BOOT_TIMEOUT)
        if isinstance(first, float):
            res.numbers["boot to first DNS answer (s)"] = round(time.monotonic() - g.started, 1)
        res.check("first boot: DNS answers a local record (nas.lan A)", isinstance(first, float),
                  first[1] if isinstance(first, tuple) else "")
        res.check("first boot: console shell", g.open_shell(BOOT_TIMEOUT if not isinstance(first, float) else 60))
        out = g.output()
        res.check("first boot: data partition created", "first boot: creating the data partition" in out)
        res.check("first boot: config seeded from the boot partition",
                  "using glory-hole.toml from the boot partition" in out)
        if g.shell:
            guest_checks(res, g, up_port)
        dns_check(res, "DNS: forwarded name via the stand-in upstream (UDP)", "forwarded.example",
                  dns_port, "203.0.113.7")
        dns_check(res, "DNS: local record over TCP", "nas.lan", dns_port, "192.168.1.10", tcp=True)
        dns_check(res, "DNS: blocked name answers 0.0.0.0", "ads.example.com", dns_port, "0.0.0.0")
        # Asked over mDNS's port from inside the box (a legacy unicast
        # query): the responder answers with eth0's DHCP address (QEMU's
        # user network hands the guest 10.0.2.15).
        mdns_label = "mDNS: glory-hole.local answers with the box's address"
        if g.shell:
            rc, out = g.run("busybox nslookup -type=a -port=5353 glory-hole.local 127.0.0.1",
                            timeout=30)
            answer = out.split("glory-hole.local", 1)[-1] if "Name:" in out else ""
            res.check(mdns_label, rc == 0 and "Address: 10.0.2.15" in answer,
                      f"exit {rc}: {out.strip()[-300:]}")
        else:
            res.check(mdns_label, False, "no guest shell to ask from")
        web = Http(http_port)
        web_checks(res, web, up_port)

        marker = f"persist-{random.randrange(1 << 30):x}"
        if g.shell:
            rc, _ = g.run(f"echo {marker} > /data/marker && sync")
            res.check("data partition is writable", rc == 0)
            g.send("reboot\n")
        else:
            g.proc.terminate()
        res.check("reboot: clean shutdown", g.wait_exit(90))
        g.kill()
        out1 = g.output()

        # ---- second boot ----
        print("boot 2", flush=True)
        g = Guest(disk, boot_dir, dns_port, http_port, log)
        guests.append(g)
        again = wait_dns(res, dns_port, "nas.lan", "192.168.1.10", BOOT_TIMEOUT)
        if isinstance(again, float):
            res.numbers["second boot to first DNS answer (s)"] = round(time.monotonic() - g.started, 1)
        res.check("second boot: DNS answers", isinstance(again, float),
                  again[1] if isinstance(again, tuple) else "")
        res.check("second boot: console shell", g.open_shell(60 if isinstance(again, float) else BOOT_TIMEOUT))
        res.check("second boot: data partition kept (no re-creation)",
                  "creating the data partition" not in g.output())
        if g.shell:
            rc, text = g.run("cat /data/marker")
            res.check("second boot: file on the data partition survived", rc == 0 and marker in text, text)
            rc, text = g.run("cat /data/clock")
            res.check("shutdown saved the clock to /data/clock", rc == 0 and text.strip().isdigit(), text)
        status, body = web.request("GET", "/api/v1/setup")
        try:
            needed = json.loads(body).get("needed")
        except ValueError:
            needed = None
        res.check("second boot: setup stays done (config survived the reboot)",
                  status == 200 and needed is False, f"HTTP {status}: {body[:200]}")
        dns_check(res, "second boot: forwarded name still answers", "forwarded.example", dns_port,
                  "203.0.113.7")
        if g.shell:
            # A hung server must not leave the box dead: freeze glory-hole
            # and the hardware watchdog (i6300esb here, bcm2835 on a Pi)
            # has to reset the board; -no-reboot turns that into QEMU
            # exiting.
            rc, _ = g.run("kill -STOP $(pidof glory-hole)")
            res.check("hung glory-hole: the watchdog resets the board",
                      rc == 0 and g.wait_exit(90))
            if g.proc.poll() is None:
                g.send("kill -CONT $(pidof glory-hole); poweroff\n")
                g.wait_exit(60)
        del out1
    finally:
        for g in guests:
            g.kill()
        stand_in.terminate()
        stand_in.wait()

    res.numbers["whole test (s)"] = round(time.monotonic() - t_all, 1)
    for k, v in res.numbers.items():
        print(f"measured: {k}: {v}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


def guest_checks(res, g, up_port):
    rc, mounts = g.run("cat /proc/mounts")
    root = [l for l in mounts.splitlines() if l.split()[1:2] == ["/"]]
    res.check("root is squashfs, mounted read-only",
              bool(root) and root[-1].split()[2] == "squashfs" and root[-1].split()[3].startswith("ro"),
              str(root))
    data = [l for l in mounts.splitlines() if l.split()[1:2] == ["/data"]]
    res.check("data partition is ext4 on partition 7, read-write",
              bool(data) and data[0].split()[0].endswith("7") and data[0].split()[2] == "ext4"
              and data[0].split()[3].startswith("rw"), str(data))
    rc, _ = g.run("touch /etc/should-fail")
    res.check("root filesystem refuses writes", rc not in (0, None))
    rc, text = g.run("echo $(( $(cat /sys/class/block/vda7/size) / 2048 ))")
    res.check("data partition grown to fill the disk (> 700 MiB of 1 GiB)",
              rc == 0 and text.strip().isdigit() and int(text) > 700, text)
    rc, text = g.run("hostname")
    res.check("hostname is glory-hole", text.strip() == "glory-hole", text)
    rc, text = g.run("pidof glory-hole")
    res.check("glory-hole is running", rc == 0 and text.strip() != "", text)
    rc, text = g.run("grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs)' /proc/$(pidof glory-hole)/status")
    # CAP_KILL, CAP_NET_BIND_SERVICE, CAP_SYS_BOOT, CAP_SYS_TIME (docs/security.md).
    res.check("glory-hole runs as its own user (uid 100) with four capabilities",
              "Uid:\t100\t100\t100\t100" in text and "CapEff:\t0000000002400420" in text
              and "CapBnd:\t0000000002400420" in text and "NoNewPrivs:\t1" in text, text)
    rc, text = g.run("stat -c '%u %a %n' /data/glory-hole /data/glory-hole/*")
    res.check("state on the data partition belongs to glory-hole, 0700/0600",
              rc == 0 and all(l.startswith("100 700 ") if l.endswith("/data/glory-hole") else
                              l.startswith("100 600 ") or l.startswith("100 700 ")
                              for l in text.strip().splitlines()), text)
    rc, text = g.run("grep ' /data/glory-hole/querylog.db-shm ' /proc/mounts")
    res.check("query log's wal-index in RAM: tmpfs bound over querylog.db-shm",
              rc == 0 and text.split()[2:3] == ["tmpfs"], text)
    rc, text = g.run("glory-hole sql --db /data/glory-hole/querylog.db --format csv "
                     "'SELECT count(*) FROM queries'")
    lines = text.split()
    res.check("glory-hole sql reads the query log beside the running server",
              rc == 0 and bool(lines) and lines[-1].isdigit(), text)
    rc, text = g.run(f"grep -c 10.0.2.2:{up_port} /data/glory-hole/config.toml")
    res.check("config on the data partition names the seeded upstream", rc == 0, text)
    rc, text = g.run("logread | grep -c glory-hole")
    res.check("system log in RAM (logread) has glory-hole's lines", rc == 0, text)
    rc, text = g.run("ip -4 addr show eth0")
    res.check("eth0 configured by DHCP (10.0.2.15)", "10.0.2.15" in text, text)
    # Kept for whoever reads a failure: the guest's system log.
    rc, text = g.run("logread", timeout=60)
    with open(os.path.join(os.path.dirname(g.log.name), "guest-syslog.txt"), "a") as f:
        f.write(text)
    res.check("hardware watchdog armed and fed while DNS answers",
              "watchdog: fed while DNS" in text)


def web_checks(res, web, up_port):
    status, body = web.request("GET", "/setup")
    res.check("web: setup page loads", status == 200 and "<form" in body.lower(), f"HTTP {status}: {body[:200]}")
    status, body = web.request("GET", "/api/v1/setup")
    try:
        info = json.loads(body)
    except ValueError:
        info = {}
    res.check("web: setup is needed on a fresh box", status == 200 and info.get("needed") is True,
              f"HTTP {status}: {body[:200]}")
    res.check("web: the box reports appliance mode", info.get("appliance") is True, body[:200])
    setup = {
        "password": "correct horse battery staple 42",
        "upstream": "custom",
        "protocol": "plain",
        "custom_upstreams": [f"10.0.2.2:{up_port}"],
        "blocklists": [],
        "network": {"mode": "dhcp", "address": "", "gateway": "", "address6": "", "gateway6": "",
                    "timezone": "UTC"},
    }
    status, body = web.request("POST", "/api/v1/setup", setup,
                               headers={"x-csrf-token": info.get("csrf", "")})
    res.check("web: setup completes through the API", status == 200, f"HTTP {status}: {body[:300]}")


if __name__ == "__main__":
    sys.exit(main())
