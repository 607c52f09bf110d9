#!/bin/sh
# Where the CPU per answer goes, glory-hole beside dnsmasq: each server is
# sampled with `perf record -g` while dnsperf offers the same cached names
# at the same rate as benches/dns-peers.sh, and its samples are split into
# what the kernel does for it (sending, and within that waking the client;
# receiving; sleeping and being woken) and its own code. Prints a Markdown
# table in µs per answer (CPU from /proc/PID/stat in a pass without perf,
# shares from a second pass under perf).
#
#   benches/dns-profile.sh [RATE] [SECONDS]     (defaults: 40000 qps, 8 s)
#   LISTS=1 benches/dns-profile.sh 20000        (the ~730k domains of
#                                                ../shared/data/blocklists
#                                                loaded in both, as in
#                                                benches/dns-paths.sh)
#
# A third server is sampled beside them, `floor` (benches/udp_echo.rs,
# `relay` mode: glory-hole's UDP loop with no DNS work, see dns-paths.sh),
# and glory-hole's samples are split by thread, and its own code by
# function (the 25 largest shares), after the table.
#
# Not part of CI (it needs perf, and root for kernel call chains).
set -eu
cd "$(dirname "$0")/.."
RATE=${1:-40000}
SECS=${2:-8}
NAMES=1000
. benches/peers-common.sh
peers_init profile

.ci/setup >/dev/null
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
# Symbols for our own frames; a separate target dir keeps the release build.
CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --quiet --bin glory-hole --target-dir target/profile
GH=target/profile/release/glory-hole

start_upstream
build_echo
if [ "${LISTS:-0}" = 1 ]; then
    shared_listed "$WORK/listed"
    start_glory_hole "$GH" 5401 "[[filter.lists]]
name = \"shared\"
path = \"$WORK/listed\""
    sed 's/^/0.0.0.0 /' "$WORK/listed" >"$WORK/dnsmasq-hosts"
    start_dnsmasq 5403 --addn-hosts="$WORK/dnsmasq-hosts"
    wait_blocked 5401 "$(head -n1 "$WORK/listed")" 240 "$WORK/gh.log"
else
    start_glory_hole "$GH"
    start_dnsmasq
fi
"$ECHO" 127.0.0.1:5404 relay "$UP" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!; PIDS="$PIDS $FLOOR_PID"
sleep 1

profile() { # name port pid
    # CPU per answer from a pass without perf (sampling adds its own cost).
    measured_offer "$1" "$2" "$3"
    us=$(awk -v used="$USED_TICKS" -v q="$ANSWERED" -v t="$TICK" \
        'BEGIN { printf "%.2f", (q > 0) ? used * 1e6 / t / q : 0 }')
    # Shares from a second pass under perf.
    perf record -q -F 2999 -g -p "$3" -o "$WORK/$1.data" -- sleep "$((SECS + 1))" >/dev/null 2>&1 &
    rec=$!
    sleep 0.5
    offer "$2" >/dev/null
    wait "$rec" || true
    # Each sample counted once, under the system call it happened in.
    perf report -i "$WORK/$1.data" --no-children --sort parent \
        --parent '^__(x64_)?sys_[a-z_]+$' --stdio -g none 2>/dev/null >"$WORK/$1.calls"
    perf report -i "$WORK/$1.data" --children --sort sym --stdio -g none 2>/dev/null >"$WORK/$1.syms"
    perf report -i "$WORK/$1.data" --no-children --sort dso --stdio -g none 2>/dev/null >"$WORK/$1.dso"
    awk -v n="$1" -v us="$us" '
        FILENAME ~ /calls$/ && /%/ { p = $1; sub(/%/, "", p); name = $2;
            if (name ~ /send/) send += p; else if (name ~ /recv/) recv += p;
            else if (name ~ /poll|sleep|select/) wait += p }
        FILENAME ~ /syms$/ && $3 == "[k]" && $NF == "sock_def_readable" { w = $1; sub(/%/, "", w); wake = w }
        FILENAME ~ /syms$/ && $3 == "[k]" && $NF == "schedule" { c = $1; sub(/%/, "", c); sched = c }
        FILENAME ~ /dso$/ && /%/ && $2 !~ /kernel/ { o = $1; sub(/%/, "", o); own += o }
        END { u = us / 100;
            printf "| %s | %.2f | %.2f (%.2f) | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, us,
                send * u, wake * u, recv * u, wait * u, sched * u, own * u,
                (100 - send - recv - wait - own) * u }' \
        "$WORK/$1.calls" "$WORK/$1.syms" "$WORK/$1.dso"
}

listed=0; [ "${LISTS:-0}" = 1 ] && listed=$(wc -l <"$WORK/listed")
echo "Offered rate $RATE queries/s for $SECS s, $NAMES cached names, $(nproc) cores, $listed listed names loaded; µs of CPU per answer."
echo "Each sample is counted once: under the system call it happened in, else as own code or other kernel"
echo "work (e.g. being switched out on return from a system call). The two columns in parentheses are parts"
echo "of the others: waking the client (inside send), sleeping and being woken (schedule, anywhere)."
echo
echo "| server | CPU µs per answer | send (waking the client) | receive | poll / sleep | (schedule) | own code | other kernel |"
echo "|---|---|---|---|---|---|---|---|"
profile glory-hole 5401 "$GH_PID"
profile dnsmasq 5403 "$DM_PID"
profile floor 5404 "$FLOOR_PID"
echo
echo "glory-hole's samples by thread and where they fell:"
perf report -i "$WORK/glory-hole.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null \
    | awk '/%/' | head -n 10
echo
echo "glory-hole's own code by function, share of all its samples:"
perf report -i "$WORK/glory-hole.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null \
    | awk '/%/ && $2 !~ /kernel/' | head -n 25
