#!/usr/bin/env python3
"""The previous release on a data directory made by this build.

A firmware rollback starts the older slot on the data partition the newer
one used (docs/update.md, "Data across versions"). This builds the commit
pinned in image/previous-release in a git worktree of its own
(target/compat/src, debug build in target/compat/target), lets this
build make a data directory (its whole default config, as
`print-default-config` writes it, with test ports; a query logged), then
starts the previous release on that directory and checks that it starts,
answers DNS from that config, logs a query into the same database, and
leaves config.toml as it was.

usage: compat-test.py [--keep DIR]     (make compat-test)
"""

import argparse
import importlib.util
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

# boot-test.py's DNS client (the same one update-test.py uses).
_spec = importlib.util.spec_from_file_location(
    "boot_test", os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot-test.py"))
bt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bt)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPAT = os.path.join(ROOT, "target", "compat")
START_TIMEOUT = 60


def pinned():
    with open(os.path.join(ROOT, "image", "previous-release")) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    if len(lines) != 1 or not re.fullmatch(r"[0-9a-f]{40}", lines[0]):
        sys.exit("image/previous-release: want one line with a full commit id")
    return lines[0]


def build_previous(commit):
    src = os.path.join(COMPAT, "src")
    if not os.path.isdir(src):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", src, commit], check=True)
    else:
        subprocess.run(["git", "-C", src, "checkout", "--detach", "--quiet", commit], check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(COMPAT, "target"))
    subprocess.run(["cargo", "build", "--quiet", "--bin", "glory-hole"], cwd=src, env=env, check=True)
    return os.path.join(COMPAT, "target", "debug", "glory-hole")


def build_current():
    subprocess.run(["cargo", "build", "--quiet", "--bin", "glory-hole"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "debug", "glory-hole")


def config_text(binary, data):
    """This build's whole default config, with test ports and a record."""
    text = subprocess.run([binary, "print-default-config"], check=True, capture_output=True,
                          text=True).stdout
    edits = [
        (r'^data_dir = .*$', f'data_dir = "{data}"'),
        (r'^listen = \["127\.0\.0\.1:1053"\]$', 'listen = ["127.0.0.1:0"]'),
        (r'^upstreams = \[\n(?:    .*\n)*\]$', 'upstreams = ["127.0.0.1:9"]'),
        (r'^records = \[\]$',
         'records = [{ name = "nas.lan", type = "A", value = "192.168.1.10" }]'),
        (r'^flush_interval = .*$', 'flush_interval = "100ms"'),
        (r'^\[web\]\nenabled = true$', '[web]\nenabled = false'),
    ]
    for pattern, repl in edits:
        text, n = re.subn(pattern, repl, text, count=1, flags=re.M)
        if n != 1:
            sys.exit(f"print-default-config: no line matches {pattern!r}")
    return text


class Server:
    """One glory-hole process; its log collected in a file."""

    def __init__(self, binary, config, log):
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen([binary, "--config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1"))

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def dns_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(r"DNS on 127\.0\.0\.1:(\d+)", self.output())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                return None
            time.sleep(0.2)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def logged(db, name, timeout=30):
    """Whether `name` reaches the query log's names within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = sqlite3.connect(db, timeout=5)
            found = c.execute("SELECT count(*) FROM domains WHERE name = ?", (name,)).fetchone()[0]
            c.close()
            if found:
                return True
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="keep the data directory and logs here")
    args = ap.parse_args()
    commit = pinned()
    print(f"previous release: {commit}", flush=True)
    old = build_previous(commit)
    new = build_current()
    work = args.keep or tempfile.mkdtemp(prefix="gh-compat-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    config = os.path.join(work, "config.toml")
    db = os.path.join(data, "querylog.db")
    with open(config, "w") as f:
        f.write(config_text(new, data))
    passed = failed = 0

    def check(what, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {detail}"), flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
        return ok

    marker = f"compat-{random.randrange(1 << 30):x}.example"
    s = Server(new, config, os.path.join(work, "current.log"))
    try:
        port = s.dns_port()
        if check("this build starts on its own default config", port is not None, s.output()[-2000:]):
            check("this build answers nas.lan", bt.dns_query("nas.lan", port)[1] == ["192.168.1.10"])
            bt.dns_query(marker, port)
            check("this build logs a query", logged(db, marker), s.output()[-2000:])
    finally:
        s.stop()
    with open(config) as f:
        before = f.read()

    marker = f"compat-{random.randrange(1 << 30):x}.example"
    s = Server(old, config, os.path.join(work, "previous.log"))
    try:
        port = s.dns_port()
        if check("the previous release starts on this build's data directory", port is not None,
                 s.output()[-2000:]):
            check("the previous release answers nas.lan from that config",
                  bt.dns_query("nas.lan", port)[1] == ["192.168.1.10"])
            bt.dns_query(marker, port)
            check("the previous release logs into this build's query log", logged(db, marker),
                  s.output()[-2000:])
    finally:
        s.stop()
    with open(config) as f:
        check("config.toml is left as it was", f.read() == before)
    unknown = sorted(set(re.findall(r"unknown key '([^']+)'", s.output())))
    print(f"keys the previous release ignored: {', '.join(unknown) or 'none'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
