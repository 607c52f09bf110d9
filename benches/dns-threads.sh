#!/bin/sh
# Per thread, under benches/dns-peers.sh's load: CPU µs per answer and
# context switches per answer (voluntary: went to sleep; involuntary:
# preempted), for glory-hole and dnsmasq, from /proc/PID/task/*/stat and
# status. Shows where the CPU per answer goes between glory-hole's UDP
# reader and its query-log writer, and how often each server sleeps.
#
#   benches/dns-threads.sh [RATE] [SECONDS]     (defaults: 40000 qps, 10 s)
#   ROUNDS=3 benches/dns-threads.sh             (default 2 rounds)
#   MIXED=1 benches/dns-threads.sh 8000         dns-paths.sh's household mix
#       (30 % new names, 15 % listed names, 55 % the warmed ones), 2,000
#       names of ../shared's lists loaded in both servers: shows the
#       query-log writer's share when a third of the names are new.
set -eu
cd "$(dirname "$0")/.."
RATE=${1:-40000}
SECS=${2:-10}
ROUNDS=${ROUNDS:-2}
NAMES=1000
[ "${MIXED:-0}" = 1 ] && NAMES=2000
. benches/peers-common.sh
peers_init threads

.ci/setup >/dev/null
release_glory_hole
start_upstream
if [ "${MIXED:-0}" = 1 ]; then
    # The warmed pool is mixed_queries' siteK.home.example names.
    cached_pool "$NAMES" >"$WORK/queries"
    grep -hv '^#' ../shared/data/blocklists/domains/ads.txt | grep '\.' | head -n 2000 >"$WORK/listed"
    mixed_queries $((RATE * SECS)) "t$$" "$NAMES" "$WORK/listed" >"$WORK/load.queries"
    start_glory_hole "$GH" 5401 "[[filter.lists]]
name = \"listed\"
path = \"$WORK/listed\""
    sed 's/^/0.0.0.0 /' "$WORK/listed" >"$WORK/dnsmasq-hosts"
    start_dnsmasq 5403 --addn-hosts="$WORK/dnsmasq-hosts"
else
    start_glory_hole "$GH"
    start_dnsmasq
fi
sleep 1

# One line per thread: tid name cpu-ticks voluntary involuntary.
snapshot() { # pid
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s %s %s\n' "${t##*/}" "$(tr ' ' _ <"$t/comm")" \
            "$(awk '{print $14 + $15}' "$t/stat")" \
            "$(awk '/^voluntary_ctxt/ {print $2}' "$t/status")" \
            "$(awk '/^nonvoluntary_ctxt/ {print $2}' "$t/status")"
    done | sort
}

per_thread() { # name port pid
    warm "$2"
    snapshot "$3" >"$WORK/before"
    if [ "${MIXED:-0}" = 1 ]; then
        # Each server and round its own new names: the tag differs.
        mixed_queries $((RATE * SECS)) "t$$-$1-$r" "$NAMES" "$WORK/listed" >"$WORK/load.queries"
        dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/load.queries" -Q "$RATE" -l "$SECS" -c 4 -t 2 >"$WORK/load" 2>&1 || true
    else
        offer "$2" >"$WORK/load"
    fi
    snapshot "$3" >"$WORK/after"
    q=$(answered "$WORK/load")
    join "$WORK/before" "$WORK/after" | awk -v s="$1" -v q="$q" -v t="$TICK" -v r="$r" '
        q > 0 { us = ($7 - $3) * 1e6 / t / q; v = ($8 - $4) / q; i = ($9 - $5) / q;
                if (us > 0 || v > 0.001)
                    printf "| %d | %s | %s | %.2f | %.3f | %.3f |\n", r, s, $2, us, v, i }'
}

echo "Offered rate $RATE queries/s for $SECS s, $NAMES cached names$([ "${MIXED:-0}" = 1 ] && echo ', the household mix'), $(nproc) cores; threads with CPU or sleeps."
echo
echo "| round | server | thread | CPU µs per answer | sleeps per answer | preemptions per answer |"
echo "|---|---|---|---|---|---|"
r=1
while [ $r -le "$ROUNDS" ]; do
    per_thread glory-hole 5401 "$GH_PID"
    per_thread dnsmasq 5403 "$DM_PID"
    r=$((r + 1))
done
