#!/bin/sh
# glory-hole under mixed load for a long time: is it still answering
# everyone, and is its memory flat?
#
#   benches/soak.sh [SECONDS]       (default 1800)
#   SMOKE=1 benches/soak.sh 60      (CI: a one-minute run, same checks)
#
# The release build runs with every list in ../shared/data/blocklists/
# (read in place) and forwards to the stand-in upstream. Each 10-second
# tick, dnsperf plays five clients from five loopback addresses, so the
# per-client limits (dns.rate_limit = 300/s) apply to each on its own:
#
#   cached     127.0.0.3  100 qps UDP, 200 names asked again and again
#   blocked    127.0.0.4  100 qps UDP, names from the lists
#   forwarded  127.0.0.5  100 qps UDP, a new name every query (a miss)
#   tcp        127.0.0.6   50 qps TCP, cached and blocked names
#   flooder    127.0.0.2 2000 qps UDP, new names: over its rate limit
#
# while the admin API (a token made through setup) reloads the lists
# every 60 s, changes a setting every tick and reads the query log page,
# the log API and /metrics. Each tick prints RSS, what each client lost
# (no answer) and failed (no answer or not NOERROR), the query log's drops
# and the API calls that failed. At the end a summary; exit 1 if
#   - a client other than the flooder failed more than 0.5% of its queries,
#   - RSS grew after warm-up (the first fifth of the run): the last third's
#     highest sample is more than max(10%, 4 MiB) above the first third's
#     highest (cache.memory_mib = 2 here, so the cache reaches its bound
#     during warm-up and later growth is not the cache filling up),
#   - glory-hole died, or an API call failed.
set -eu
cd "$(dirname "$0")/.."
DURATION=${1:-1800}
TICK=10
FAIL_BOUND=0.5
WORK=$(mktemp -d /tmp/gh-soak.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
DNS_PORT=5431
WEB_PORT=8431
UP_PORT=5330
LISTS=$(cd ../shared/data/blocklists && pwd)

.ci/setup >/dev/null
cargo build --release --quiet --bin glory-hole
cargo build --release --quiet --example stand-in-upstream
GH=target/release/glory-hole

target/release/examples/stand-in-upstream --listen 127.0.0.1:$UP_PORT >"$WORK/up.log" 2>&1 &
PIDS="$PIDS $!"
{
    cat <<TOML
data_dir = "$WORK/data"
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
upstreams = ["127.0.0.1:$UP_PORT"]
[cache]
memory_mib = 2
[web]
listen = ["127.0.0.1:$WEB_PORT"]
metrics = true
TOML
    for f in "$LISTS"/*/*.txt; do
        name=$(basename "$(dirname "$f")")-$(basename "$f" .txt)
        printf '[[filter.lists]]\nname = "%s"\npath = "%s"\n' "$name" "$f"
    done
} >"$WORK/gh.toml"
"$GH" --config "$WORK/gh.toml" >"$WORK/gh.log" 2>&1 &
GH_PID=$!; PIDS="$PIDS $GH_PID"

# ---- the admin API ----

WEB=http://127.0.0.1:$WEB_PORT
i=0
until curl -sf "$WEB/api/v1/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$GH_PID" 2>/dev/null; then
        echo "soak: glory-hole did not start; its log:" >&2
        cat "$WORK/gh.log" >&2
        exit 1
    fi
    sleep 0.1
done
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
JAR=$WORK/cookies
PRE=$(curl -sf -c "$JAR" "$WEB/api/v1/setup" | json_field csrf)
CSRF=$(curl -sf -b "$JAR" -c "$JAR" -H 'content-type: application/json' -H "x-csrf-token: $PRE" \
    -d "{\"password\":\"soak-$(date +%s)-correct-horse-battery\",\"upstream\":\"custom\",\"protocol\":\"plain\",\"custom_upstreams\":[\"127.0.0.1:$UP_PORT\"],\"blocklists\":[]}" \
    "$WEB/api/v1/setup" | json_field csrf)
TOKEN=$(curl -sf -b "$JAR" -H 'content-type: application/json' -H "x-csrf-token: $CSRF" \
    -d '{"name":"soak","scope":"admin"}' "$WEB/api/v1/tokens" | json_field token)
if [ -z "$TOKEN" ]; then
    echo "soak: setup or the API token failed; glory-hole's log:" >&2
    tail -n 20 "$WORK/gh.log" >&2
    exit 1
fi
: >"$WORK/api-errors"
# api METHOD PATH [JSON]: one call with the token; a failure is written down.
api() {
    if [ -n "${3:-}" ]; then
        code=$(curl -s -o "$WORK/api.out" -w '%{http_code}' -m 30 -X "$1" -H "authorization: Bearer $TOKEN" \
            -H 'content-type: application/json' -d "$3" "$WEB$2" || true)
    else
        code=$(curl -s -o "$WORK/api.out" -w '%{http_code}' -m 30 -X "$1" -H "authorization: Bearer $TOKEN" "$WEB$2" || true)
    fi
    case "$code" in
        2??) ;;
        *) echo "$1 $2: HTTP $code $(head -c 200 "$WORK/api.out" 2>/dev/null)" >>"$WORK/api-errors" ;;
    esac
}
# page PATH: a page as the owner's browser gets it (the setup's session).
page() {
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 30 -b "$JAR" "$WEB$1" || true)
    [ "$code" = 200 ] || echo "GET $1 (page): HTTP $code" >>"$WORK/api-errors"
}
metric() { api GET /metrics && sed -n "s/^glory_hole_$1 //p" "$WORK/api.out"; }

# ---- the clients' names ----

awk '!/^[#!]/ && NF { print; if (++n == 2000) exit }' "$LISTS/domains/ads.txt" \
    | awk '{ print $1 " A" }' >"$WORK/blocked"
awk 'BEGIN { for (i = 0; i < 200; i++) printf "cached%d.soak.example A\n", i }' >"$WORK/cached"
{ head -n 100 "$WORK/cached"; head -n 100 "$WORK/blocked"; } >"$WORK/tcp"
# Warm the cache for the cached names (the lists may still be loading).
dnsperf -s 127.0.0.1 -p $DNS_PORT -a 127.0.0.3 -d "$WORK/cached" -n 1 -Q 200 >/dev/null 2>&1 || true

# client CLASS ADDR QPS FILE [dnsperf options]: one tick of one client.
client() {
    class=$1 addr=$2 qps=$3 file=$4
    shift 4
    dnsperf -s 127.0.0.1 -p $DNS_PORT -a "$addr" -d "$file" -l $TICK -Q "$qps" -t 2 -c 1 "$@" \
        >"$WORK/tick-$class" 2>&1 || true
}
# parse CLASS: "sent lost failed" from its tick's dnsperf report.
parse() {
    awk '/Queries sent:/ { s = $3 } /Queries lost:/ { l = $3 }
         /Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") ok = $(i + 1) }
         END { printf "%d %d %d\n", s, l, s - ok }' "$WORK/tick-$1"
}

# ---- the run ----

CLASSES="cached blocked forwarded tcp flooder"
for c in $CLASSES; do echo "0 0 0" >"$WORK/total-$c"; done
START=$(date +%s)
WARM=$((DURATION / 5))
echo "soak: $DURATION s, ticks of $TICK s, warm-up $WARM s; lists: $(find "$LISTS" -name "*.txt" | wc -l) files in $LISTS"
echo
echo "| t (s) | RSS MiB | cached lost/failed | blocked | forwarded | tcp | flooder lost/failed | log drops (events/rows) | API errors |"
echo "|---|---|---|---|---|---|---|---|---|"
: >"$WORK/rss"
: >"$WORK/failures"
t=0; tick=0
while [ "$t" -lt "$DURATION" ]; do
    tick=$((tick + 1))
    awk -v k="$tick" 'BEGIN { for (i = 0; i < 1000; i++) printf "u%d-%d.soak.example A\n", k, i }' >"$WORK/fresh"
    awk -v k="$tick" 'BEGIN { for (i = 0; i < 20000; i++) printf "f%d-%d.flood.example A\n", k, i }' >"$WORK/flood"
    client cached 127.0.0.3 100 "$WORK/cached" & p1=$!
    client blocked 127.0.0.4 100 "$WORK/blocked" & p2=$!
    client forwarded 127.0.0.5 100 "$WORK/fresh" & p3=$!
    client tcp 127.0.0.6 50 "$WORK/tcp" -m tcp & p4=$!
    client flooder 127.0.0.2 2000 "$WORK/flood" & p5=$!
    # The control plane, meanwhile.
    if [ $((tick % 6)) = 3 ]; then api POST /api/v1/lists/update; fi
    api PUT /api/v1/settings "{\"blocked_ttl\": $((2 + tick % 2))}"
    page /querylog
    api GET "/api/v1/querylog?limit=100"
    api GET /api/v1/stats
    wait $p1 $p2 $p3 $p4 $p5
    t=$(($(date +%s) - START))
    if ! kill -0 "$GH_PID" 2>/dev/null; then
        echo "soak: FAIL: glory-hole died at $t s; its log:" >&2
        tail -n 30 "$WORK/gh.log" >&2
        exit 1
    fi
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$GH_PID/status")
    echo "$t $rss" >>"$WORK/rss"
    row="| $t | $(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')"
    for c in $CLASSES; do
        parse "$c" >"$WORK/tick-counts"
        read -r ts tl tf <"$WORK/tick-counts"
        row="$row | $tl/$tf"
        if [ "$c" != flooder ] && [ "$tf" -gt 0 ]; then
            echo "$c at $t s: $(grep 'Response codes:' "$WORK/tick-$c")" >>"$WORK/failures"
        fi
        read -r s l f <"$WORK/total-$c"
        echo "$((s + ts)) $((l + tl)) $((f + tf))" >"$WORK/total-$c"
    done
    drops="$(metric querylog_dropped_events_total)/$(metric querylog_dropped_rows_total)"
    echo "$row | $drops | $(wc -l <"$WORK/api-errors") |"
done

# ---- the verdict ----

echo
echo "| client | queries | lost | failed | failure rate |"
echo "|---|---|---|---|---|"
bad=0
for c in $CLASSES; do
    read -r s l f <"$WORK/total-$c"
    rate=$(awk -v s="$s" -v f="$f" 'BEGIN { printf "%.3f", s ? 100 * f / s : 100 }')
    echo "| $c | $s | $l | $f | $rate% |"
    if [ "$c" != flooder ] && awk -v r="$rate" -v b="$FAIL_BOUND" 'BEGIN { exit !(r > b) }'; then
        echo "soak: FAIL: $c failed $rate% of its queries (bound $FAIL_BOUND%)" >&2
        bad=1
    fi
done
echo
echo "flooder: $(metric dns_rate_limited_total) queries refused over its rate limit (glory_hole_dns_rate_limited_total)"
echo "blocked in the query log: $(metric blocked_24h) of $(metric queries_24h) queries (glory_hole_blocked_24h)"
echo "query log drops: $drops (events/rows, /metrics)"
if [ -s "$WORK/failures" ]; then
    echo "ticks where a household client failed, with dnsperf's response codes:"
    sed 's/^/    /' "$WORK/failures"
fi
if ! awk -v warm="$WARM" -v d="$DURATION" '
    $1 > warm { n++; t[n] = $1; r[n] = $2 }
    END {
        if (n < 3) { print "RSS: too few samples after warm-up to judge"; exit 1 }
        third = int(n / 3); if (third < 1) third = 1
        for (i = 1; i <= third; i++) if (r[i] > first) first = r[i]
        for (i = n - third + 1; i <= n; i++) if (r[i] > last) last = r[i]
        allow = first * 0.10; if (allow < 4096) allow = 4096
        printf "RSS after warm-up: first third max %.1f MiB, last third max %.1f MiB (allowed growth %.1f MiB)\n",
            first / 1024, last / 1024, allow / 1024
        exit !(last - first <= allow) }' "$WORK/rss"; then
    echo "soak: FAIL: RSS grew after warm-up (or too few samples)" >&2
    bad=1
fi
if [ -s "$WORK/api-errors" ]; then
    echo "soak: FAIL: $(wc -l <"$WORK/api-errors") API calls failed, the first:" >&2
    head -n 5 "$WORK/api-errors" >&2
    bad=1
fi
if [ $bad = 0 ]; then echo "soak: ok"; fi
exit $bad
