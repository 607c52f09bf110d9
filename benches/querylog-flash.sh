#!/bin/sh
# Flash writes of the query log (docs/querylog.md, "Writes to flash"):
# bytes written per query and per day at 1 and at 10 queries/s, from the
# writer thread's write_bytes (/proc/self/task/TID/io), with the default
# 60 s flush. The two rates run side by side, each in its own process and
# directory under target/querylog-flash (deleted afterwards).
#   benches/querylog-flash.sh                 five minutes each (the documented run)
#   SECONDS_EACH=20 FLUSH_SECS=4 WARM=20000 benches/querylog-flash.sh   a smoke
# WARM (default: a day at the rate, at least 200000): queries of history.
# NAMES (default 20000): the size of the Zipf name universe.
# LIMIT_MB_DAY (default 50): exit 1 when a rate writes more per day.
set -eu
cd "$(dirname "$0")/.."
secs="${SECONDS_EACH:-300}"
flush="${FLUSH_SECS:-60}"
names="${NAMES:-20000}"
limit="${LIMIT_MB_DAY:-50}"
cargo build --release --example querylog_flash
dir=target/querylog-flash
rm -rf "$dir"
mkdir -p "$dir/r1" "$dir/r10"
for r in 1 10; do
    day=$((r * 86400))
    warm="${WARM:-$((day > 200000 ? day : 200000))}"
    target/release/examples/querylog_flash --dir "$dir/r$r" --rate "$r" \
        --seconds "$secs" --flush-secs "$flush" --warm "$warm" --names "$names" >"$dir/out$r" &
done
status=0
wait || status=$?
for r in 1 10; do
    cat "$dir/out$r"
    mb=$(sed -n 's/.*total [0-9]* B\/query, \([0-9.]*\) MB\/day/\1/p' "$dir/out$r")
    if [ -z "$mb" ]; then
        echo "rate $r: no result" >&2; status=1
    elif awk -v m="$mb" -v l="$limit" 'BEGIN { exit !(m > l) }'; then
        echo "rate $r: $mb MB/day, over the limit of $limit MB/day" >&2; status=1
    fi
done
rm -rf "$dir"
exit "$status"
