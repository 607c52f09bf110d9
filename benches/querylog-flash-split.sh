#!/bin/sh
# Where the query log's flash writes go, file by file (docs/querylog.md,
# "Where a flush's bytes go"): runs examples/querylog_flash at one rate
# under strace and prints, per flush, the bytes and 4 KiB pages written to
# the WAL, the main database and the -shm file with pwrite, then the
# writer thread's write_bytes over the window. The -shm file (SQLite's
# wal-index) is written through a shared mmap, which strace does not see:
# what write_bytes counts beyond the files' pages is its pages.
#   benches/querylog-flash-split.sh                 10 queries/s, three minutes, 60 s flush
#   RATE=1 SECONDS_EACH=180 FLUSH_SECS=60 WARM=200000 benches/querylog-flash-split.sh
set -eu
cd "$(dirname "$0")/.."
rate="${RATE:-10}"
secs="${SECONDS_EACH:-180}"
flush="${FLUSH_SECS:-60}"
warm="${WARM:-200000}"
cargo build --release --example querylog_flash
dir=target/querylog-flash-split-r$rate
rm -rf "$dir"
mkdir -p "$dir/db"
strace -f -tt -y -e trace=pwrite64,write,fsync,fdatasync -o "$dir/trace" \
    target/release/examples/querylog_flash --dir "$dir/db" --rate "$rate" \
    --seconds "$secs" --flush-secs "$flush" --warm "$warm" --names "${NAMES:-20000}" >"$dir/out"
cat "$dir/out"
python3 - "$dir/trace" "$dir/out" <<'PY'
import collections, re, sys
call = re.compile(r'\d+ (\d+):(\d+):([\d.]+) pwrite64\(\d+<([^>]*)>, .*, (\d+), (\d+)\) = \d+')
writes = []
for line in open(sys.argv[1]):
    m = call.match(line)
    if m:
        h, mi, s, path, n, off = m.groups()
        writes.append((int(h) * 3600 + int(mi) * 60 + float(s), path.rsplit('/', 1)[-1], int(n), int(off)))
# Commits more than 5 s apart are separate flushes; the first group is
# the warm-up (and its checkpoint), the last one after the window's end.
groups, last = [], None
for w in writes:
    if last is None or w[0] - last > 5:
        groups.append([])
    groups[-1].append(w)
    last = w[0]
window = groups[1:-1]
pages_total = 0
for g in window:
    size, pages = collections.Counter(), collections.defaultdict(set)
    for _, f, n, off in g:
        size[f] += n
        pages[f].update(range(off // 4096, (off + n - 1) // 4096 + 1))
    pages_total += sum(len(p) for p in pages.values())
    print("flush:", ", ".join(f"{f} {size[f]} B in {len(pages[f])} pages of 4 KiB" for f in sorted(size)))
writer = int(re.search(r'writer (\d+) B', open(sys.argv[2]).read()).group(1))
# write_bytes spans the window's flushes and the one after it (merged
# above with the hour's end and the checkpoints, so not counted here).
n = max(len(window), 1)
wal = pages_total * 4096 / n
per_flush = writer / (len(window) + 1)
print(f"{len(window)} flushes: pwrite {wal:.0f} B a flush in 4 KiB pages; writer write_bytes "
      f"{per_flush:.0f} B a flush ({len(window) + 1} flushes); the rest, {per_flush - wal:.0f} B "
      f"({(per_flush - wal) / 4096:.1f} pages), the -shm file's")
PY
rm -rf "$dir"
