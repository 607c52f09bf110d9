#!/usr/bin/env python3
"""Which tables the commits in a query log's WAL changed, in pages.

    benches/querylog-wal-pages.py DIR

DIR holds a copy of querylog.db and querylog.db-wal taken during a run of
benches/querylog-flash.sh (target/querylog-flash/r1 or r10), after its
first flush (a copy: opening the database checkpoints its WAL). Prints, per commit, its pages by table or index (SQLite's
dbstat; pages dbstat does not list are pointer-map, free or header pages).
docs/querylog.md ("Writes to flash") gives the counts of one flush.
"""
import collections
import os
import sqlite3
import struct
import sys

d = sys.argv[1]
wal = open(os.path.join(d, "querylog.db-wal"), "rb").read()
page_size = struct.unpack(">I", wal[8:12])[0]
salt = wal[16:24]
commits, pages, off = [], [], 32
while off + 24 + page_size <= len(wal) and wal[off + 8:off + 16] == salt:
    page, commit = struct.unpack(">II", wal[off:off + 8])
    pages.append(page)
    if commit:
        commits.append(pages)
        pages = []
    off += 24 + page_size
db = sqlite3.connect(os.path.join(d, "querylog.db"))
owner = {p: name for name, p in db.execute("SELECT name, pageno FROM dbstat")}
print(f"page size {page_size}, {len(commits)} commits")
for c in commits:
    by = collections.Counter(owner.get(p, "other") for p in c)
    print(len(c), "pages:", ", ".join(f"{n} {k}" for k, n in by.most_common()))
