#!/usr/bin/env python3
"""Which tables the commits in a query log's WAL changed, in pages.

    benches/querylog-wal-pages.py DIR
    benches/querylog-wal-pages.py --watch DIR SECONDS

DIR holds a copy of querylog.db and querylog.db-wal taken during a run of
benches/querylog-flash.sh (target/querylog-flash/r1 or r10), after its
first flush (a copy: opening the database checkpoints its WAL). Prints, per
commit, its pages by table or index (SQLite's dbstat; pages dbstat does not
list are pointer-map, free or header pages).

--watch reads the live files of a running writer in DIR (it opens no
database) for SECONDS and prints, per commit, the page numbers of its
frames and which 4 KiB pages of the wal-index (querylog.db-shm) changed
since the commit before: what the kernel writes back besides the frames.
Name the pages afterwards with the first form on a copy.
docs/querylog.md ("Writes to flash") gives the counts of one flush.
"""
import collections
import os
import sqlite3
import struct
import sys
import time


def frames(wal, start):
    """(page size, [(page, commit size or 0)]) of the frames from byte start."""
    if len(wal) < 32:
        return 0, []
    page_size = struct.unpack(">I", wal[8:12])[0]
    salt = wal[16:24]
    out, off = [], max(start, 32)
    while off + 24 + page_size <= len(wal) and wal[off + 8:off + 16] == salt:
        out.append(struct.unpack(">II", wal[off:off + 8]))
        off += 24 + page_size
    return page_size, out


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def watch(d, seconds):
    wal_path = os.path.join(d, "querylog.db-wal")
    shm_path = os.path.join(d, "querylog.db-shm")
    shm, seen = read(shm_path), len(read(wal_path))
    t0 = time.time()
    while time.time() - t0 < seconds:
        time.sleep(0.2)
        wal = read(wal_path)
        if len(wal) == seen:
            continue
        if len(wal) < seen:  # restarted after a checkpoint
            seen = 0
        now = read(shm_path)
        _, new = frames(wal, seen)
        changed = [i // 4096 for i in range(0, max(len(now), len(shm)), 4096)
                   if now[i:i + 4096] != shm[i:i + 4096]]
        print(f"{time.time() - t0:6.1f} s: {len(new)} frames, pages "
              f"{sorted(p for p, _ in new)}; wal-index pages changed {changed}",
              flush=True)
        shm, seen = now, len(wal)


def tables(d):
    page_size, all_frames = frames(read(os.path.join(d, "querylog.db-wal")), 32)
    commits, pages = [], []
    for page, commit in all_frames:
        pages.append(page)
        if commit:
            commits.append(pages)
            pages = []
    db = sqlite3.connect(os.path.join(d, "querylog.db"))
    owner = {p: name for name, p in db.execute("SELECT name, pageno FROM dbstat")}
    print(f"page size {page_size}, {len(commits)} commits")
    for c in commits:
        by = collections.Counter(owner.get(p, "other") for p in c)
        print(len(c), "pages:", ", ".join(f"{n} {k}" for k, n in by.most_common()))


if sys.argv[1] == "--watch":
    watch(sys.argv[2], float(sys.argv[3]))
else:
    tables(sys.argv[1])
