#!/usr/bin/env python3
"""Writes pihole-v6-teleporter.zip: a Pi-hole v6 Teleporter export laid out
as Pi-hole FTL writes it (src/zip/teleporter.c in github.com/pi-hole/FTL):
a deflated zip holding etc/pihole/pihole.toml, etc/hosts,
etc/pihole/dhcp.leases, etc/pihole/gravity.db (the tables group, adlist,
adlist_by_group, domainlist, domainlist_by_group, client, client_by_group,
each copied with CREATE TABLE ... AS SELECT, so without constraints) and
etc/pihole/pihole-FTL.db (message, aliasclient, network,
network_addresses). Column names follow Pi-hole's gravity.db.sql. The
domains, addresses and dates are made up. Every adlist here is a block
list (type 0): v6 also has allow lists (type 1), which the importer does not
tell apart yet.

usage: python3 tests/data/make-pihole-v6-teleporter.py  (from the repo root)
"""
import os
import sqlite3
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
T = 1700000000

GRAVITY = f"""
CREATE TABLE "group" (id INTEGER PRIMARY KEY, enabled BOOLEAN, name TEXT,
  date_added INTEGER, date_modified INTEGER, description TEXT);
INSERT INTO "group" VALUES (0, 1, 'Default', {T}, {T}, 'The default group');
CREATE TABLE domainlist (id INTEGER PRIMARY KEY, type INTEGER, domain TEXT,
  enabled BOOLEAN, date_added INTEGER, date_modified INTEGER, comment TEXT);
INSERT INTO domainlist VALUES
  (1, 0, 's.video.example', 1, {T}, {T}, NULL),
  (2, 1, 'tracker.example', 1, {T}, {T}, 'from the log'),
  (3, 2, '(\\.|^)news\\.example$', 1, {T}, {T}, NULL),
  (4, 3, '^ads?[0-9]*\\.', 0, {T}, {T}, 'off for now');
CREATE TABLE adlist (id INTEGER PRIMARY KEY, address TEXT, enabled BOOLEAN,
  date_added INTEGER, date_modified INTEGER, comment TEXT, date_updated INTEGER,
  number INTEGER, invalid_domains INTEGER, status INTEGER, abp_entries INTEGER,
  type INTEGER);
INSERT INTO adlist VALUES
  (1, 'https://lists.example/hosts', 1, {T}, {T}, 'Migrated from /etc/pihole/adlists.list', {T}, 81234, 0, 2, 0, 0),
  (2, 'https://mirror.example/files/justdomains', 0, {T}, {T}, NULL, {T}, 0, 0, 0, 0, 0);
CREATE TABLE adlist_by_group (adlist_id INTEGER, group_id INTEGER);
INSERT INTO adlist_by_group VALUES (1, 0), (2, 0);
CREATE TABLE domainlist_by_group (domainlist_id INTEGER, group_id INTEGER);
INSERT INTO domainlist_by_group VALUES (1, 0), (2, 0), (3, 0), (4, 0);
CREATE TABLE client (id INTEGER PRIMARY KEY, ip TEXT, date_added INTEGER,
  date_modified INTEGER, comment TEXT);
INSERT INTO client VALUES (1, '192.168.1.50', {T}, {T}, 'tablet');
CREATE TABLE client_by_group (client_id INTEGER, group_id INTEGER);
INSERT INTO client_by_group VALUES (1, 0);
"""

FTL = """
CREATE TABLE message (id INTEGER PRIMARY KEY, timestamp INTEGER, type TEXT,
  message TEXT, blob1 BLOB, blob2 BLOB, blob3 BLOB, blob4 BLOB, blob5 BLOB);
CREATE TABLE aliasclient (id INTEGER PRIMARY KEY, name TEXT, comment TEXT);
CREATE TABLE network (id INTEGER PRIMARY KEY, hwaddr TEXT, interface TEXT,
  firstSeen INTEGER, lastQuery INTEGER, numQueries INTEGER, macVendor TEXT);
CREATE TABLE network_addresses (network_id INTEGER, ip TEXT, lastSeen INTEGER,
  name TEXT, nameUpdated INTEGER);
"""

TOML = """# Pi-hole configuration file (v6.0)
# Encoding: UTF-8

[dns]
  # Array of upstream DNS servers used by Pi-hole
  upstreams = [
    "9.9.9.9",
    "149.112.112.112",
    "127.0.0.1#5335"
  ] ### CHANGED, default = []

  CNAMEdeepInspect = true
  blockESNI = true
  domainNeeded = false

  # Array of custom DNS records
  hosts = [
    "192.168.1.10 nas.lan",
    "fd00::10 nas6.lan"
  ] ### CHANGED, default = []

  # List of CNAME records
  cnameRecords = [
    "files.lan,nas.lan"
  ] ### CHANGED, default = []

  [dns.cache]
    size = 10000

[dhcp]
  active = false

[webserver]
  port = "80o,443os,[::]:80o,[::]:443os"
"""


def database(sql, tables):
    """Like FTL: the tables copied into a fresh database with CREATE TABLE AS SELECT."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "disk.db")
        out = os.path.join(d, "out.db")
        disk = sqlite3.connect(src)
        disk.executescript(sql)
        disk.commit()
        disk.close()
        db = sqlite3.connect(out)
        db.execute(f"ATTACH DATABASE '{src}' AS disk")
        for t in tables:
            db.execute(f'CREATE TABLE "{t}" AS SELECT * FROM disk."{t}"')
        db.commit()
        db.execute("DETACH DATABASE disk")
        db.close()
        return open(out, "rb").read()


def main():
    gravity = database(GRAVITY, ["group", "adlist", "adlist_by_group", "domainlist",
                                 "domainlist_by_group", "client", "client_by_group"])
    ftl = database(FTL, ["message", "aliasclient", "network", "network_addresses"])
    path = os.path.join(HERE, "pihole-v6-teleporter.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        def add(name, data, comment):
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.comment = comment.encode()
            z.writestr(info, data)
        add("etc/pihole/pihole.toml", TOML, "Pi-hole's configuration")
        add("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", "System's HOSTS file")
        add("etc/pihole/dhcp.leases", "", "DHCP leases file")
        add("etc/pihole/gravity.db", gravity, "Pi-hole's gravity database")
        add("etc/pihole/pihole-FTL.db", ftl, "Pi-hole's FTL database")


main()
