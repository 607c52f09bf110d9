#!/bin/sh
# CPU time per answered query over loopback, side by side: glory-hole,
# unbound, dnsmasq and a bare UDP echo loop, serving the same cached names
# at the same offered rate, in one run. Prints a Markdown table. Also
# measured: udp-echo-batch, the same echo through glory-hole's own
# one-thread recvmmsg/sendmmsg loop (the floor of its design: what is left
# once the DNS path and the query log cost nothing).
#
#   benches/dns-peers.sh [RATE] [SECONDS]     (defaults: 40000 qps, 10 s)
#   ROUNDS=5 benches/dns-peers.sh             (default 3 rounds)
#   SMOKE=1 benches/dns-peers.sh              (CI: 5000 qps, 2 s, 1 round)
#   UDP_SOCKETS=2 benches/dns-peers.sh        (glory-hole's dns.udp_sockets;
#                                              default 0: one per two cores)
#   BASELINE_BIN=PATH benches/dns-peers.sh    (also measures another build of
#                                              glory-hole, log on, in the same
#                                              rounds: an A/B of two commits)
#
# The servers are measured in turn, round after round, and each one's
# median round is reported: this machine's per-packet kernel cost drifts
# by tens of percent over minutes (a bare echo loop measured 3.2 µs one
# hour and 5.7 µs the next), and taking turns exposes every server to the
# same drift.
#
# CPU comes from /proc/PID/stat (utime+stime of every thread), divided by
# the answers dnsperf counted. Every server forwards to the same stand-in
# upstream and is warmed first, so the measured queries are cache hits.
set -eu
cd "$(dirname "$0")/.."
RATE=${1:-40000}
SECS=${2:-10}
ROUNDS=${ROUNDS:-3}
if [ "${SMOKE:-0}" = 1 ]; then RATE=5000; SECS=2; ROUNDS=1; fi
NAMES=1000
. benches/peers-common.sh
peers_init peers

.ci/setup >/dev/null
release_glory_hole
build_echo

start_upstream
start_glory_hole "$GH"

# The same with the query log kept in RAM only (no SQLite writes), to show
# the DNS path's own cost apart from logging every query to flash.
sed -e 's/5401/5405/' -e "s#gh-data#gh-data-nolog#" "$WORK/gh.toml" >"$WORK/gh-nolog.toml"
printf '[querylog]\nenabled = false\n' >>"$WORK/gh-nolog.toml"
"$GH" --config "$WORK/gh-nolog.toml" >"$WORK/gh-nolog.log" 2>&1 &
GN_PID=$!; PIDS="$PIDS $GN_PID"

# Another build to compare with, same configuration as the first.
if [ -n "${BASELINE_BIN:-}" ]; then
    # Builds older than dns.rate_limit do not know the key (and limit nothing).
    sed -e 's/5401/5406/' -e "s#gh-data#gh-data-baseline#" -e '/^rate_limit/d' "$WORK/gh.toml" >"$WORK/gh-baseline.toml"
    "$BASELINE_BIN" --config "$WORK/gh-baseline.toml" >"$WORK/gh-baseline.log" 2>&1 &
    GB_PID=$!; PIDS="$PIDS $GB_PID"
fi

start_unbound

start_dnsmasq

"$ECHO" 127.0.0.1:5404 2 &
EC_PID=$!; PIDS="$PIDS $EC_PID"
# The floor of glory-hole's own design: one thread, its recvmmsg/sendmmsg
# loop, no DNS work and no query log.
"$ECHO" 127.0.0.1:5407 batch &
EB_PID=$!; PIDS="$PIDS $EB_PID"
sleep 1

measure() { # name port pid
    measured_offer "$1" "$2" "$3"
    lost=$(awk '/Queries lost:/ {print $3}' "$WORK/$1.perf")
    lat=$(awk '/Average Latency/ {print $4}' "$WORK/$1.perf")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$3/status")
    awk -v n="$1" -v used="$USED_TICKS" -v q="$ANSWERED" -v l="${lost:-0}" \
        -v t="$TICK" -v r="$rss" -v lat="${lat:-0}" -v round="$r" 'BEGIN {
        us = (q > 0) ? used * 1e6 / t / q : 0;
        printf "%s %d %d %.4f %.6f %.1f %d\n", n, q, l, us, lat * 1000, r / 1024, round }' >>"$WORK/rounds"
}

echo "Offered rate $RATE queries/s for $SECS s, $NAMES cached names, $(nproc) cores, $ROUNDS round(s); median round per server."
echo
: >"$WORK/rounds"
r=0
while [ $r -lt "$ROUNDS" ]; do
    # glory-hole and dnsmasq back to back, first one then the other, so
    # their ratio within a round is taken seconds apart, not a minute.
    if [ $((r % 2)) = 0 ]; then
        measure glory-hole 5401 "$GH_PID"
        measure dnsmasq 5403 "$DM_PID"
    else
        measure dnsmasq 5403 "$DM_PID"
        measure glory-hole 5401 "$GH_PID"
    fi
    measure glory-hole-log-off 5405 "$GN_PID"
    if [ -n "${BASELINE_BIN:-}" ]; then measure baseline 5406 "$GB_PID"; fi
    measure unbound 5402 "$UB_PID"
    measure udp-echo 5404 "$EC_PID"
    measure udp-echo-batch 5407 "$EB_PID"
    r=$((r + 1))
done
echo "| server | answered | lost | CPU µs per answer (median; every round) | mean latency ms | RSS MiB |"
echo "|---|---|---|---|---|---|"
for n in glory-hole glory-hole-log-off baseline unbound dnsmasq udp-echo udp-echo-batch; do
    awk -v n="$n" '$1 == n' "$WORK/rounds" | sort -k4,4n | awk '
        { q += $2; l += $3; us[NR] = $4; lat[NR] = $5; rss = $6; name = $1; all = all sep sprintf("%.2f", $4); sep = ", " }
        END { if (NR == 0) exit; m = int((NR + 1) / 2);
              printf "| %s | %d | %d | %.2f (%s) | %.3f | %.1f |\n", name, q, l, us[m], all, lat[m], rss }'
done | tee "$WORK/table"
echo
echo "Ratios of the medians above, then the median of the ratios taken within each round"
echo "(each pair measured in the same round, glory-hole and dnsmasq back to back; every round's ratio in brackets):"
awk -F'|' '{gsub(/ /,"",$2); split($5, f, " "); us[$2]=f[1]} END {
    split("glory-hole glory-hole-log-off baseline udp-echo-batch", names, " ");
    for (k = 1; k <= 4; k++) {
        n = names[k]; g = us[n];
        if (g == "") continue;
        if (us["unbound"] > 0) printf "%s / unbound  = %.2f\n", n, g / us["unbound"];
        if (us["dnsmasq"] > 0) printf "%s / dnsmasq  = %.2f\n", n, g / us["dnsmasq"];
        if (us["udp-echo"] > 0) printf "%s / udp-echo = %.2f\n", n, g / us["udp-echo"];
    }
}' "$WORK/table"
for n in glory-hole glory-hole-log-off baseline udp-echo-batch; do
    for peer in unbound dnsmasq udp-echo; do
        awk -v n="$n" -v p="$peer" '
            $1 == n { a[$7] = $4 } $1 == p { b[$7] = $4 }
            END { k = 0; for (r in a) if ((r in b) && b[r] > 0) x[++k] = a[r] / b[r];
                  if (k == 0) exit;
                  for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
                  all = ""; for (i = 1; i <= k; i++) all = all (i > 1 ? ", " : "") sprintf("%.2f", x[i]);
                  printf "%s / %s, per round = %.2f (%s)\n", n, p, x[int((k + 1) / 2)], all }' "$WORK/rounds"
    done
done
