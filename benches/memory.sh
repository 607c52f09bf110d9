#!/bin/sh
# glory-hole's memory: idle RSS, then RSS through a flood of distinct names
# (every one a cache miss and an insert) with cache.memory_mib = 16.
#
#   benches/memory.sh [NAMES]      (default 1000000)
#   SMOKE=1 benches/memory.sh      (CI: 50000 names)
#   QUERYLOG=off benches/memory.sh (query log in RAM only: the DNS side alone)
#   MIB=31 benches/memory.sh       (another cache.memory_mib; default 16)
#   PROFILE=release benches/memory.sh (default: the `firmware` profile, the
#                                  code the board runs; smaller code maps fewer
#                                  program pages)
#   GH=PATH benches/memory.sh      (that glory-hole build instead of a fresh one)
#   SAMPLE=1 benches/memory.sh     (also the highest and mean anonymous and
#                                  file-backed RSS through the flood, from
#                                  /proc/PID/status every 0.2 s)
#
# Prints Markdown, then fails (exit 1) if a bound is broken: idle <= 8 MiB
# and peak during the flood <= memory_mib + 12 MiB (docs/performance.md's
# targets, the same for the smoke run's shorter flood), or fewer than 95%
# of the flood's names answered.
set -eu
cd "$(dirname "$0")/.."
NAMES=${1:-1000000}
if [ "${SMOKE:-0}" = 1 ]; then NAMES=50000; fi
MIB=${MIB:-16}
WORK=$(mktemp -d /tmp/gh-mem.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

.ci/setup >/dev/null
PROFILE=${PROFILE:-firmware}
if [ -z "${GH:-}" ]; then
    cargo build --profile "$PROFILE" --quiet --bin glory-hole
    GH=target/$PROFILE/glory-hole
fi
# The test's internet: an example, with the `testing` feature.
cargo build --release --quiet --example stand-in-upstream

target/release/examples/stand-in-upstream --listen 127.0.0.1:5310 >"$WORK/up.log" 2>&1 &
PIDS="$PIDS $!"
cat >"$WORK/gh.toml" <<TOML
data_dir = "$WORK/data"
[dns]
listen = ["127.0.0.1:5411"]
upstreams = ["127.0.0.1:5310"]
# The flood is one dnsperf client: no per-client rate limit and the
# whole upstream share, or it would be refused (REFUSED, SERVFAIL)
# instead of filling the cache.
rate_limit = 0
client_upstream_queries = 512
[cache]
memory_mib = $MIB
[web]
enabled = false
TOML
if [ "${QUERYLOG:-on}" = off ]; then printf '[querylog]\nenabled = false\n' >>"$WORK/gh.toml"; fi
"$GH" --config "$WORK/gh.toml" >"$WORK/gh.log" 2>&1 &
GH_PID=$!; PIDS="$PIDS $GH_PID"
# Idle means listening (port 5411 is 1523 in /proc/net/udp), then two
# seconds for start-up work to finish.
i=0
until grep -q ':1523 ' /proc/net/udp; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$GH_PID" 2>/dev/null; then
        echo "memory: glory-hole did not start listening; its log:" >&2
        cat "$WORK/gh.log" >&2
        exit 1
    fi
    sleep 0.1
done
sleep 2
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$GH_PID/status"; }
IDLE=$(kib VmRSS)
IDLE_ANON=$(kib RssAnon); IDLE_FILE=$(kib RssFile)

awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "flood%d.example A\n", i }' >"$WORK/names"
if [ "${SAMPLE:-0}" = 1 ]; then
    while kill -0 "$GH_PID" 2>/dev/null; do
        awk '$1 == "RssAnon:" { a = $2 } $1 == "RssFile:" { f = $2 } END { print a, f }' \
            "/proc/$GH_PID/status" >>"$WORK/samples" 2>/dev/null || true
        sleep 0.2
    done &
    SAMPLER=$!
fi
dnsperf -s 127.0.0.1 -p 5411 -d "$WORK/names" -n 1 -q 200 -t 5 >"$WORK/perf" 2>&1 || true
if [ -n "${SAMPLER:-}" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
# Answered: NOERROR, as the stand-in answers every name.
DONE=$(awk '/Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") n = $(i + 1) }
            END { print n + 0 }' "$WORK/perf")
AFTER=$(kib VmRSS)
PEAK=$(kib VmHWM)
# What the RSS is made of: heap and stacks (anonymous), and the pages of
# the program (and the query log's mapped -shm) the flood has touched.
AFTER_ANON=$(kib RssAnon); AFTER_FILE=$(kib RssFile)

echo "query log: ${QUERYLOG:-on}; build: $GH"
echo
echo "| measure | MiB |"
echo "|---|---|"
awk -v i="$IDLE" -v a="$AFTER" -v p="$PEAK" -v n="$NAMES" -v d="$DONE" -v m="$MIB" \
    -v ia="$IDLE_ANON" -v aa="$AFTER_ANON" -v if_="$IDLE_FILE" -v af="$AFTER_FILE" 'BEGIN {
    printf "| idle RSS | %.1f |\n", i / 1024;
    printf "| RSS after %d distinct names (%d answered), memory_mib = %d | %.1f |\n", n, d, m, a / 1024;
    printf "| peak RSS (VmHWM) during the flood | %.1f |\n", p / 1024;
    printf "| of the RSS at idle / after: anonymous (heap, stacks) | %.1f / %.1f |\n", ia / 1024, aa / 1024;
    printf "| of the RSS at idle / after: file pages (the program, the -shm) | %.1f / %.1f |\n", if_ / 1024, af / 1024;
    printf "| bound: memory_mib + 12 | %d |\n", m + 12 }'
if [ "${SAMPLE:-0}" = 1 ]; then
    awk 'NF == 2 { n++; sa += $1; sf += $2; if ($1 > ma) ma = $1; if ($2 > mf) mf = $2 }
         END { printf "| through the flood (%d samples): anonymous highest / mean | %.1f / %.1f |\n", n, ma / 1024, sa / n / 1024;
               printf "| through the flood: file pages highest / mean | %.1f / %.1f |\n", mf / 1024, sf / n / 1024 }' "$WORK/samples"
fi
awk -v i="$IDLE" -v p="$PEAK" -v n="$NAMES" -v d="$DONE" -v m="$MIB" 'BEGIN {
    if (i / 1024 > 8) { printf "memory: idle RSS %.1f MiB is over the bound of 8\n", i / 1024; bad = 1 }
    if (p / 1024 > m + 12) { printf "memory: peak RSS %.1f MiB is over the bound of memory_mib + 12 = %d\n", p / 1024, m + 12; bad = 1 }
    if (d < 0.95 * n) { printf "memory: %d of %d names answered NOERROR, fewer than 95%%\n", d, n; bad = 1 }
    exit bad }' >&2
