#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/: small real
examples of what each reader meets. Rerun after a format changes:

    python3 fuzz/make-seeds.py [GLORY_HOLE_BINARY]   (default target/debug/glory-hole)

DNS messages are built here byte by byte (RFC 1035 layout); blocklist
seeds are the first lines of the shared real lists (../shared/data/
blocklists/); the Teleporter seeds are the test archives in tests/data/;
the bundle is made by `glory-hole bundle create` with keys/dev.key.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
BLOCKLISTS = os.path.join(ROOT, "..", "shared", "data", "blocklists")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- DNS ----

def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(id_, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def opt(size=1232, do=False):
    return b"\0" + struct.pack(">HHIH", 41, size, 0x8000 if do else 0, 0)


def query(qname, qtype=1, id_=0x1234, edns=True, do=False, flags=0x0100):
    q = header(id_, flags, ar=1 if edns else 0) + name(qname) + struct.pack(">HH", qtype, 1)
    return q + (opt(do=do) if edns else b"")


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


PTR_QNAME = b"\xc0\x0c"  # compression pointer to the question name


def reply(q, answers=(), authority=(), rcode=0, id_=None):
    """A reply to query bytes `q` (question copied, OPT dropped)."""
    qid, qflags = struct.unpack(">HH", q[:4])
    end = 12 + len(name_of(q)) + 4
    flags = 0x8000 | 0x0080 | (qflags & 0x0110) | rcode
    h = header(qid if id_ is None else id_, flags, 1, len(answers), len(authority), 0)
    return h + q[12:end] + b"".join(answers) + b"".join(authority)


def name_of(q):
    at, out = 12, b""
    while q[at]:
        out += q[at:at + 1 + q[at]]
        at += 1 + q[at]
    return out + b"\0"


def soa(owner):
    return rr(owner, 6, name("ns.example") + name("hostmaster.example")
              + struct.pack(">IIIII", 1, 7200, 900, 1209600, 300))


def dns_seeds():
    a = query("www.example.com")
    queries = {
        "query-a-edns": a,
        "query-aaaa-do": query("www.example.com", 28, do=True),
        "query-any": query("example.com", 255),
        "query-ptr": query("10.1.168.192.in-addr.arpa", 12),
        "query-txt-0x20": query("WwW.ExAmPlE.CoM", 16, edns=False),
        "query-two-questions": header(7, 0x0100, qd=2) + name("a.example") + b"\0\1\0\1"
        + name("b.example") + b"\0\1\0\1",
        "query-notify": query("example.com", 6, flags=0x2000, edns=False),
        "query-name-pointer": header(9, 0x0100) + b"\xc0\x0c\0\1\0\1",
    }
    replies = {
        "reply-a": reply(a, [rr(PTR_QNAME, 1, bytes([93, 184, 216, 34]))]),
        "reply-cname-chain": reply(a, [
            rr(PTR_QNAME, 5, name("edge.cdn.example")),
            rr(name("edge.cdn.example"), 1, bytes([192, 0, 2, 7]))]),
        "reply-nxdomain-soa": reply(a, authority=[soa(name("example.com"))], rcode=3),
    }
    for n, m in {**queries, **replies}.items():
        put("dns_wire", n, m)
    engine = {
        "local-a": query("nas.lan"),
        "local-cname-aaaa": query("printer.lan", 28),
        "local-ptr": query("10.1.168.192.in-addr.arpa", 12),
        "private-name": query("unknown.home.arpa"),
        "blocked-exact": query("blocked.example"),
        "blocked-wildcard": query("x.y.ads.example", 28),
        "blocked-regex": query("track42.example"),
        "doh-canary": query("use-application-dns.net"),
        "forward-zone": query("wiki.corp.example"),
        "forward-default-do": query("www.example.com", 1, do=True),
    }
    for n, m in {**engine, **queries}.items():
        put("engine_begin", n, m)

    def pair(sent, rep):
        return struct.pack(">H", len(sent)) + sent + rep
    rebind = query("public.example")
    blocked_cname = query("innocent.example")
    upper = query("WWW.EXAMPLE.COM")
    put("upstream_reply", "a", pair(a, replies["reply-a"]))
    put("upstream_reply", "cname-chain", pair(a, replies["reply-cname-chain"]))
    put("upstream_reply", "nxdomain-soa", pair(a, replies["reply-nxdomain-soa"]))
    put("upstream_reply", "cname-to-blocked", pair(blocked_cname, reply(blocked_cname, [
        rr(PTR_QNAME, 5, name("blocked.example")),
        rr(name("blocked.example"), 1, bytes([192, 0, 2, 9]))])))
    put("upstream_reply", "rebind-private-address", pair(rebind, reply(rebind, [
        rr(PTR_QNAME, 1, bytes([192, 168, 1, 1]))])))
    put("upstream_reply", "case-differs", pair(a, reply(upper, [rr(PTR_QNAME, 1, bytes([1, 2, 3, 4]))])))
    put("upstream_reply", "wrong-id", pair(a, reply(a, id_=0x4321)))


# ---- lists, configs, backups, archives, bundles ----

def list_seeds():
    for fmt, file in [("hosts", "hosts/smart-tv.txt"), ("domains", "domains/crypto.txt"),
                      ("adblock", "adblock/basic.txt"), ("dnsmasq", "dnsmasq/basic.txt")]:
        with open(os.path.join(BLOCKLISTS, file), encoding="utf-8") as f:
            put("blocklist", fmt, "".join(f.readlines()[:40]))
    put("blocklist", "mixed", "# every syntax the parser knows\n0.0.0.0 a.example\n"
        "127.0.0.1 b.example c.example\n:: v6.example\nd.example\n||e.example^\n"
        "@@||ok.example^\n||f.example^$important\nserver=/g.example/\naddress=/h.example/0.0.0.0\n"
        "! adblock comment\n<html>not a list</html>\n")


FULL_CONFIG = """\
data_dir = "./glory-hole-data"

[dns]
listen = ["127.0.0.1:1053"]
upstreams = ["1.1.1.1:53", "tls://1.1.1.1:853#cloudflare-dns.com", "https://dns.quad9.net/dns-query"]
allow_clients = ["127.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
edns_udp_size = 1232
query_timeout = "4s"
upstream_timeout = "1500ms"
rate_limit = 300
rate_limit_burst = 1000
client_upstream_queries = 64

[cache]
memory_mib = 16
min_ttl = 0
max_ttl = 86400
serve_stale = true

[[local.records]]
name = "nas.lan"
type = "A"
value = "192.168.1.10"
ttl = 300

[[local.records]]
name = "_http._tcp.nas.lan"
type = "SRV"
value = "10 5 80 nas.lan"

[[local.records]]
name = "lan"
type = "MX"
value = "10 mail.lan"

[[forward]]
domains = ["corp.example", "home.arpa"]
upstreams = ["192.168.1.1:53"]

[filter]
blocked_response = "nxdomain"
allow = ["ok.example"]
deny = ["ads.example", "*.track.example", "||tele.example^", "/^ads?[0-9]*\\\\./"]

[[filter.lists]]
name = "basic"
path = "/data/lists/basic.txt"
match = "subdomains"
groups = ["kids"]

[[filter.groups]]
name = "kids"
clients = ["192.168.1.50", "192.168.2.0/24", "aa:bb:cc:dd:ee:ff"]
deny = ["*.games.example"]

[querylog]
retention_days = 30
anonymize_clients = true

[web]
listen = ["127.0.0.1:8080"]
allowed_hosts = ["pihole.lan"]
metrics = true
"""


def config_seeds():
    put("config_toml", "default", 'data_dir = "./glory-hole-data"\n\n[dns]\n'
        'listen = ["127.0.0.1:1053"]\nupstreams = ["1.1.1.1:53", "9.9.9.9:53"]\n\n'
        '[web]\nlisten = ["127.0.0.1:8080"]\n')
    with open(os.path.join(ROOT, "buildroot-overlay/rootfs-overlay/etc/glory-hole/config.toml")) as f:
        put("config_toml", "appliance", f.read())
    put("config_toml", "full", FULL_CONFIG)
    # The backup layout of src/web/backup.rs: marker, config, [backup], CRC-32.
    body = ("# glory-hole backup of the whole configuration.\n\n" + FULL_CONFIG
            + "\n[backup]\nformat = 1\nmade_ms = 1700000000000\n"
            + 'password = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"\n'
            + 'tokens = [\n    { id = "0a1b2c3d", name = "home assistant", '
            + 'hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", '
            + 'created_ms = 1700000000000, scope = "read" },\n]\n')
    put("backup", "backup", body + 'crc32 = "%08x"\n' % zlib.crc32(body.encode()))
    put("backup", "plain-config", FULL_CONFIG)


def archive_seeds():
    for f in ["pihole-v6-teleporter.zip", "pihole-v5-teleporter.tar.gz"]:
        shutil.copy(os.path.join(ROOT, "tests", "data", f), os.path.join(CORPUS, "teleporter", f))


def bundle_seeds(binary):
    with tempfile.TemporaryDirectory() as t:
        boot, root, out = (os.path.join(t, n) for n in ["boot.img", "root.img", "b.ghb"])
        with open(boot, "wb") as f:
            f.write(b"boot partition " * 20)
        with open(root, "wb") as f:
            f.write(b"root filesystem " * 40)
        subprocess.run([binary, "bundle", "create", "--key", os.path.join(ROOT, "keys/dev.key"),
                        "--version", "0.2.0", "--min-version", "0.1.0", "--board", "rpi-arm64",
                        "--boot", boot, "--root", root, "--built", "1700000000", "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        with open(out, "rb") as f:
            data = f.read()
    # The target's first byte picks the chunk size it feeds the unpacker.
    put("bundle", "dev-signed-whole", b"\xff" + data)
    put("bundle", "dev-signed-small-chunks", b"\x06" + data)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/glory-hole")
    os.makedirs(os.path.join(CORPUS, "teleporter"), exist_ok=True)
    dns_seeds()
    list_seeds()
    config_seeds()
    archive_seeds()
    bundle_seeds(binary)


if __name__ == "__main__":
    main()
