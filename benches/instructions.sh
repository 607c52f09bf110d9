#!/bin/sh
# Instructions per answer on each path — cached, blocked, miss (a new name
# every query, forwarded to the stand-in upstream) and mixed (as
# benches/dns-paths.sh's household line) — counted by valgrind's callgrind
# in the whole glory-hole process (every thread, user space only). Unlike
# CPU time, the count hardly moves with the machine's load, so a change
# of the code shows in it.
#
#   benches/instructions.sh            print the table
#   benches/instructions.sh --record   ...and write benches/instructions.baseline
#   benches/instructions.sh --check    fail if a cached answer costs more
#                                      than 10 % over the baseline (CI)
#   GH=PATH benches/instructions.sh    that glory-hole build instead of a
#                                      fresh release build
#   N=10000 REPS=5 benches/instructions.sh  more queries, more repetitions
#   SLOW_N=3000 SLOW_RATE=200 benches/instructions.sh  the same for the
#                                      miss and mixed lines
#   KEEP=DIR PATHS=miss REPS=1 benches/instructions.sh  also keep
#                                      callgrind's files in DIR, a dump per
#                                      window and thread (cg.out.K-TT), for
#                                      callgrind_annotate (build GH with
#                                      symbols: docs/performance.md)
#
# First the idle process is counted for 3 s: its timers (tokio's, the
# query-log writer's poll) execute about a million instructions a second,
# so a window that lasts a second longer would count a thousand more per
# answer. Then per path, with the server already warm: the counters are
# zeroed, N queries offered at a fixed rate, the counters dumped, each
# window's idle share (idle rate x its seconds) subtracted; then the same
# with 2N. (I(2N) - I(N)) / N is the cost of one answer, whatever the
# warm-up and the control commands cost. The median of REPS (3) such
# pairs is reported. The idle rate itself moves (2.5 to 4.9 million
# instructions in 3 s between runs), so the whole-process figure moves by
# 10-20 %; beside it, the busiest thread's share: on the cached and
# blocked paths the UDP reader, which does all of an answer's work and
# executes nothing while idle (it sleeps in recvmmsg), so its count
# holds within a few percent. --check compares that one.
#
# The miss and mixed lines go slower: SLOW_N (2000) queries at SLOW_RATE
# (400/s). Under valgrind's slowdown a forwarded query takes long enough
# that at 2,500/s the exchanges pile up, time out and fail over, and the
# pairs' differences come out negative. And their N window is padded
# with N / SLOW_RATE seconds of sleep, so both windows of a pair last
# about as long: at these rates a window lasts 5-10 s, and the idle
# share it carries would otherwise weigh thousands of instructions per
# answer, with an idle rate that itself moves between runs.
set -eu
cd "$(dirname "$0")/.."
MODE=${1:-}
N=${N:-5000}
RATE=${RATE:-2500}
REPS=${REPS:-3}
SLOW_N=${SLOW_N:-2000}
SLOW_RATE=${SLOW_RATE:-400}
PATHS=${PATHS:-cached blocked miss mixed}
# The check needs only the cached line.
if [ "$MODE" = --check ]; then PATHS=cached; fi
BASELINE=benches/instructions.baseline
# NAMES and UP are read by peers-common.sh.
# shellcheck disable=SC2034
NAMES=0 UP=127.0.0.1:5490
PORT=5491
. benches/peers-common.sh
peers_init instructions
POOL=500

.ci/setup >/dev/null
if [ -z "${GH:-}" ]; then
    release_glory_hole
fi
start_upstream

# Made-up listed names, and the cached pool (siteK.home.example).
awk -v n="$POOL" 'BEGIN { for (i = 0; i < n; i++) printf "ad%d.tracker.example\n", i }' >"$WORK/listed"
cached_pool "$POOL" >"$WORK/cached.queries"

# peers-common's glory-hole configuration, one UDP reader (one thread on
# the path whatever the cores), under callgrind. The query log keeps its
# RAM ring only: its SQLite writes come in lumps, a flush a second, that
# fall into one measured window or the other (storing rows is measured
# by benches/querylog.sh).
UDP_SOCKETS=1 glory_hole_config "$PORT" "[querylog]
enabled = false
[[filter.lists]]
name = \"listed\"
path = \"$WORK/listed\""
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.out" "$GH" --config "$WORK/gh.toml" \
    >"$WORK/gh.log" 2>&1 &
GH_PID=$!; PIDS="$PIDS $GH_PID"
wait_blocked "$PORT" ad0.tracker.example 120 "$WORK/gh.log"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/cached.queries" -n 2 -t 5 -q 20 >/dev/null 2>&1

queries() { # path count tag
    case $1 in
        cached) awk -v n="$2" -v p="$POOL" 'BEGIN { for (i = 0; i < n; i++) printf "site%d.home.example A\n", i % p }' ;;
        blocked) awk -v n="$2" -v p="$POOL" 'BEGIN { for (i = 0; i < n; i++) printf "ad%d.tracker.example A\n", i % p }' ;;
        miss) awk -v n="$2" -v t="$3" 'BEGIN { for (i = 0; i < n; i++) printf "q%d.%s.miss.example A\n", i, t }' ;;
        mixed) mixed_queries "$2" "$3" "$POOL" "$WORK/listed" ;;
    esac
}

# Instructions in the process over one window, the busiest thread's share
# and the window's seconds: sets I, R and T. The window opens once the counters are zeroed and closes
# when the dump is asked for; WORK runs in between.
window() { # command...
    callgrind_control -z "$GH_PID" >/dev/null 2>&1
    opened=$(date +%s.%N)
    "$@"
    closed=$(date +%s.%N)
    callgrind_control -d "$GH_PID" >/dev/null 2>&1
    # Dumps are numbered from 1, a file per thread (cg.out.K-TT): the
    # newest is the number of main-thread files.
    dumps=$(find "$WORK" -name 'cg.out.*-01' | wc -l)
    for f in "$WORK/cg.out.$dumps"-*; do awk '/^(summary|totals):/ { print $2; exit }' "$f"; done >"$WORK/threads"
    I=$(awk '{ s += $1 } END { print s }' "$WORK/threads")
    R=$(sort -n "$WORK/threads" | tail -n1)
    T=$(awk -v a="$opened" -v b="$closed" 'BEGIN { printf "%.3f", b - a }')
}

# Queries per window and their rate, per path (see the top).
count_of() { case $1 in miss|mixed) echo "$SLOW_N" ;; *) echo "$N" ;; esac; }
rate_of() { case $1 in miss|mixed) echo "$SLOW_RATE" ;; *) echo "$RATE" ;; esac; }

# COUNT queries of PATH offered at its rate, then PAD seconds of sleep;
# fails unless all are answered.
offer_all() { # path count tag pad
    queries "$1" "$2" "$3" >"$WORK/q"
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/q" -n 1 -Q "$(rate_of "$1")" -t 5 >"$WORK/perf" 2>&1 || true
    done_n=$(awk '/Queries completed:/ { print $3 }' "$WORK/perf")
    if [ "$done_n" != "$2" ]; then
        echo "instructions: $1: $done_n of $2 queries answered; dnsperf said:" >&2; cat "$WORK/perf" >&2; exit 1
    fi
    sleep "$4"
}

# What the idle process executes per second (tokio's and the writer's
# timers): subtracted from each window for its length.
window sleep 3
IDLE_RATE=$(awk -v i="$I" -v t="$T" 'BEGIN { printf "%.0f", i / t }')
echo "idle: $I instructions in $T s" >&2

echo "| path | whole process, per answer (median; every repetition) | busiest thread, per answer |"
echo "|---|---|---|"
: >"$WORK/result"
for path in $PATHS; do
    : >"$WORK/reps"
    n=$(count_of "$path")
    case $path in miss|mixed) pad=$((n / SLOW_RATE)) ;; *) pad=0 ;; esac
    rep=0
    while [ $rep -lt "$REPS" ]; do
        window offer_all "$path" "$n" "$path-$rep-1" "$pad"
        first_i=$I; first_t=$T; first_r=$R
        window offer_all "$path" $((2 * n)) "$path-$rep-2" 0
        awk -v i1="$first_i" -v t1="$first_t" -v i2="$I" -v t2="$T" -v idle="$IDLE_RATE" -v n="$n" \
            -v r1="$first_r" -v r2="$R" \
            'BEGIN { printf "%.0f %.0f\n", ((i2 - idle * t2) - (i1 - idle * t1)) / n, (r2 - r1) / n }' >>"$WORK/reps"
        rep=$((rep + 1))
    done
    per=$(sort -n "$WORK/reps" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    reader=$(sort -k2,2n "$WORK/reps" | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')
    echo "$path $per $reader" >>"$WORK/result"
    echo "| $path | $per ($(cut -d' ' -f1 "$WORK/reps" | sort -n | paste -sd' ')) | $reader ($(cut -d' ' -f2 "$WORK/reps" | sort -n | paste -sd' ')) |"
done

if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$WORK"/cg.out.* "$KEEP"/
    echo "callgrind's files kept in $KEEP" >&2
fi

case $MODE in
    --record)
        { echo "# path, whole process, busiest thread (per answer). benches/instructions.sh --record, N=$N, RATE=$RATE, SLOW_N=$SLOW_N, SLOW_RATE=$SLOW_RATE, REPS=$REPS; commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)"
          cat "$WORK/result"; } >"$BASELINE"
        echo "written: $BASELINE" ;;
    --check)
        was=$(awk '$1 == "cached" { print $3 }' "$BASELINE")
        now=$(awk '$1 == "cached" { print $3 }' "$WORK/result")
        if [ "$now" -gt $((was * 110 / 100)) ]; then
            echo "instructions: a cached answer costs $now instructions on the UDP reader, more than 10 % over the $was in $BASELINE" >&2
            exit 1
        fi
        echo "cached: $now instructions per answer on the UDP reader, within 10 % of the $was in $BASELINE" ;;
    "") ;;
    *) echo "usage: benches/instructions.sh [--record | --check]" >&2; exit 2 ;;
esac
