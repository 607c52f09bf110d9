#!/bin/sh
# Flash writes of the query log (docs/querylog.md, "Writes to flash"):
# bytes written per query and per day at 1 and at 10 queries/s, from the
# writer thread's write_bytes (/proc/self/task/TID/io), with the default
# 60 s flush, in the firmware's layout: the wal-index (querylog.db-shm) a
# tmpfs file bound over its path, as the board's start script does it
# (each process in a user and mount namespace of its own, `unshare -Urm`).
#
# Each rate runs a whole day in compressed time (examples/querylog_flash.rs
# --speedup: every flush, the 24 hours' ends, the writer's own checkpoints
# and a last one), and, beside it, five minutes in real time (the flushes
# alone; a check on the compressed day). All four processes run side by
# side, each in its own directory under target/querylog-flash (deleted
# afterwards).
#   benches/querylog-flash.sh            the documented run (~13 minutes)
#   SMOKE=1 benches/querylog-flash.sh    CI: the day at 1440x (a minute), no window
#   SHM=disk benches/querylog-flash.sh   the wal-index on the disk (a plain install)
# SPEEDUP (default 120): the compressed day's factor.
# SECONDS_EACH (default 300, 0: none): the real-time window.
# WARM (default: a day at the rate, at least 200000): queries of history.
# NAMES (default 20000): the size of the Zipf name universe.
# LIMIT_MB_DAY (default 50): exit 1 when a rate's day writes more.
set -eu
cd "$(dirname "$0")/.."
speedup="${SPEEDUP:-120}"
secs="${SECONDS_EACH:-300}"
if [ "${SMOKE:-0}" = 1 ]; then
    speedup="${SPEEDUP:-1440}"
    secs=0
fi
names="${NAMES:-20000}"
limit="${LIMIT_MB_DAY:-50}"
shm="${SHM:-ram}"
cargo build --release --example querylog_flash
bin=$PWD/target/release/examples/querylog_flash
dir=$PWD/target/querylog-flash
rm -rf "$dir"

# run NAME RATE ARGS...: one process in its directory, output in $dir/NAME.out
run() {
    name=$1
    rate=$2
    shift 2
    d="$dir/$name"
    mkdir -p "$d/data"
    day=$((rate * 86400))
    warm="${WARM:-$((day > 200000 ? day : 200000))}"
    set -- --dir "$d/data" --rate "$rate" --warm "$warm" --names "$names" "$@"
    if [ "$shm" = ram ]; then
        # shellcheck disable=SC2016 # expanded by the inner shell
        unshare -Urm sh -c 'd=$1; shift
            mkdir -p "$d/ram" && mount -t tmpfs tmpfs "$d/ram" && : >"$d/ram/shm" &&
            : >"$d/data/querylog.db-shm" && mount --bind "$d/ram/shm" "$d/data/querylog.db-shm" &&
            exec "$@"' sh "$d" "$bin" "$@" >"$dir/$name.out" 2>&1 &
    else
        "$bin" "$@" >"$dir/$name.out" 2>&1 &
    fi
}

for r in 1 10; do
    run "day$r" "$r" --speedup "$speedup"
    if [ "$secs" -gt 0 ]; then
        run "window$r" "$r" --seconds "$secs"
    fi
done
wait
status=0
echo "wal-index: $shm"
for r in 1 10; do
    if [ "$secs" -gt 0 ]; then cat "$dir/window$r.out"; fi
    cat "$dir/day$r.out"
    mb=$(sed -n 's/.*over the day.* B\/query, \([0-9.]*\) MB\/day/\1/p' "$dir/day$r.out")
    if [ -z "$mb" ]; then
        echo "rate $r: no result" >&2
        status=1
    elif awk -v m="$mb" -v l="$limit" 'BEGIN { exit !(m > l) }'; then
        echo "rate $r: $mb MB/day, over the limit of $limit MB/day" >&2
        status=1
    fi
done
rm -rf "$dir"
exit "$status"
