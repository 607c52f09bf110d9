#!/bin/sh
# Every path a household's query takes, side by side: glory-hole, unbound
# and dnsmasq, each with the ~730,000 unique domains of
# ../shared/data/blocklists loaded, each forwarding to the same stand-in
# upstream (every name answered, TTL 300). Prints one Markdown table per
# path:
#
#   cached   names asked before (warmed), 20,000 queries/s
#   blocked  listed names, 20,000 queries/s
#   miss     a new name every query (so every one is forwarded), 4,000/s
#   mixed    like a household, 8,000/s: Zipf-distributed names, about 55 %
#            cached, 15 % blocked (from the lists), 30 % new names
#
# One more server takes its turns beside them, `floor` (benches/udp_echo.rs,
# `relay` mode): the system calls and waits of glory-hole's UDP reader with
# no DNS work, the new names relayed to the same upstream, everything else
# answered at once. Its CPU per answer is the kernel's share that no
# server's code removes; "floor / best peer" says how much of the peers'
# figure that is, so how low any ratio can go on this machine.
#
#   benches/dns-paths.sh [SECONDS]          (default 10 s a line, 3 rounds)
#   ROUNDS=5 benches/dns-paths.sh
#   PATHS="miss mixed" benches/dns-paths.sh (only those lines)
#   GH=PATH benches/dns-paths.sh            (that glory-hole build, not a
#                                            fresh release build)
#   LOGOFF=1 benches/dns-paths.sh           (also glory-hole with its query
#                                            log off, taking turns with the
#                                            rest: what storing every query,
#                                            which the peers do not, costs)
#   SMOKE=1 benches/dns-paths.sh            (CI: miss and mixed, 2 s, 1
#                                            round, 20,000 listed names;
#                                            fails if answers are missing)
#
# CPU is utime+stime from /proc/PID/stat over the measured seconds,
# divided by the answers dnsperf counted. Latency (mean and 99th
# percentile) is computed from dnsperf's -v lines, one per answer with its
# latency; dnsperf 2.10 has no histogram. The servers take turns within
# each round, in a rotating order, and the table gives each one's median
# round with every round beside it (see benches/dns-peers.sh for why).
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${ROUNDS:-3}
PATHS=${PATHS:-cached blocked miss mixed}
LISTED=0 # all
BASE=${PORT_BASE:-5410}
rate_of() { case $1 in cached|blocked) echo 20000 ;; miss) echo 4000 ;; mixed) echo 8000 ;; esac; }
if [ "${SMOKE:-0}" = 1 ]; then
    SECS=2; ROUNDS=1; PATHS="miss mixed"; LISTED=20000
    rate_of() { case $1 in miss) echo 1000 ;; *) echo 2000 ;; esac; }
fi
# NAMES and UP are read by peers-common.sh.
# shellcheck disable=SC2034
NAMES=0 UP=127.0.0.1:$BASE
. benches/peers-common.sh
peers_init paths
# How many names the cached and blocked pools hold.
POOL=2000

.ci/setup >/dev/null
if [ -z "${GH:-}" ]; then
    release_glory_hole
fi
start_upstream
build_echo

shared_listed "$WORK/listed.all"
if [ "$LISTED" -gt 0 ]; then head -n "$LISTED" "$WORK/listed.all" >"$WORK/listed"; else mv "$WORK/listed.all" "$WORK/listed"; fi
echo "$(wc -l <"$WORK/listed") listed domains loaded in every server."
# The blocked pool: names spread over the whole list.
awk -v n="$POOL" -v total="$(wc -l <"$WORK/listed")" 'NR % int(total / n) == 0 && k < n { print; k++ }' \
    "$WORK/listed" >"$WORK/blocked.pool"
awk '{ print $1 " A" }' "$WORK/blocked.pool" >"$WORK/blocked.queries"
# The cached pool: made-up ordinary names, warmed before each line.
cached_pool "$POOL" >"$WORK/cached.queries"

# With LOGOFF=1, a second glory-hole, its query log off; its own
# configuration file, written before the first server reads gh.toml.
if [ "${LOGOFF:-0}" = 1 ]; then
    glory_hole_config $((BASE + 4)) "[[filter.lists]]
name = \"shared\"
path = \"$WORK/listed\"
[querylog]
enabled = false"
    sed "s|^data_dir = .*|data_dir = \"$WORK/gh-nolog-data\"|" "$WORK/gh.toml" >"$WORK/gh-nolog.toml"
    "$GH" --config "$WORK/gh-nolog.toml" >"$WORK/gh-nolog.log" 2>&1 &
    NOLOG_PID=$!; PIDS="$PIDS $NOLOG_PID"
fi
start_glory_hole "$GH" $((BASE + 1)) "[[filter.lists]]
name = \"shared\"
path = \"$WORK/listed\""
SERVERS="glory-hole:$((BASE + 1)):$GH_PID"
[ "${LOGOFF:-0}" = 1 ] && SERVERS="$SERVERS glory-hole-nolog:$((BASE + 4)):$NOLOG_PID"
sed 's/.*/  local-zone: "&." always_null/' "$WORK/listed" >"$WORK/unbound-lists.conf"
start_unbound $((BASE + 2)) "$WORK/unbound-lists.conf"
sed 's/^/0.0.0.0 /' "$WORK/listed" >"$WORK/dnsmasq-hosts"
start_dnsmasq $((BASE + 3)) --addn-hosts="$WORK/dnsmasq-hosts"
SERVERS="$SERVERS unbound:$((BASE + 2)):$UB_PID dnsmasq:$((BASE + 3)):$DM_PID"
"$ECHO" 127.0.0.1:$((BASE + 5)) relay "$UP" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!; PIDS="$PIDS $FLOOR_PID"
SERVERS="$SERVERS floor:$((BASE + 5)):$FLOOR_PID"
NSERVERS=$(echo "$SERVERS" | wc -w)
# One field of every server's name:port:pid, a line each.
servers() { echo "$SERVERS" | tr ' ' '\n' | cut -d: -f"$1"; }

# Each server has loaded its lists once it blocks a listed name.
# (The floor blocks nothing.)
probe=$(head -n1 "$WORK/blocked.pool")
for port in $(servers 2 | grep -vx $((BASE + 5))); do
    wait_blocked "$port" "$probe" 240
done

# The queries of one measured line for one server and round: new names
# carry the server and round, so no server ever saw them before.
queries() { # path tag rate
    n=$(($3 * SECS * 12 / 10 + 100))
    case $1 in
        cached) cat "$WORK/cached.queries" ;;
        blocked) cat "$WORK/blocked.queries" ;;
        miss) awk -v n="$n" -v t="$2" 'BEGIN { for (i = 0; i < n; i++) printf "q%d.%s.miss.example A\n", i, t }' ;;
        mixed) mixed_queries "$n" "$2" "$POOL" "$WORK/blocked.pool" ;;
    esac
}

# One measured line: warm the cached pool, offer the load with -v, count
# the server's CPU; appends "path server round answered us mean_ms p99_ms".
measure() { # path server port pid round
    rate=$(rate_of "$1")
    queries "$1" "$2-r$5" "$rate" >"$WORK/q"
    dnsperf -s 127.0.0.1 -p "$3" -d "$WORK/cached.queries" -n 2 -t 2 >/dev/null 2>&1 || true
    before=$(cpu_ticks "$4")
    dnsperf -s 127.0.0.1 -p "$3" -d "$WORK/q" -Q "$rate" -l "$SECS" -c 4 -t 2 -v >"$WORK/$1.perf" 2>&1 || true
    used=$(($(cpu_ticks "$4") - before))
    done_n=$(answered "$WORK/$1.perf") || { echo "dns-paths: $2, $1 line" >&2; exit 1; }
    awk '/^> / { print $NF * 1000 }' "$WORK/$1.perf" | sort -g | awk -v p="$1" -v s="$2" -v r="$5" \
        -v q="$done_n" -v used="$used" -v tick="$TICK" '
        { lat[NR] = $1; sum += $1 }
        END { i = int(NR * 0.99); if (i < 1) i = 1;
              printf "%s %s %d %d %.2f %.3f %.3f\n", p, s, r, q, used * 1e6 / tick / q, sum / NR, lat[i] }' \
        >>"$WORK/rounds"
}

# One figure a round for PATH, printed as "LABEL, per round: median
# (every round)": server A's CPU per answer over the cheaper peer's, or
# with B, A's less B's.
per_round() { # path label a [b]
    awk -v p="$1" -v label="$2" -v a="$3" -v b="${4:-}" '$1 == p { us[$3, $2] = $5; rounds[$3] = 1 }
        END { for (r in rounds) { best = us[r, "unbound"]; if (us[r, "dnsmasq"] < best) best = us[r, "dnsmasq"];
                  x[++k] = b == "" ? us[r, a] / best : us[r, a] - us[r, b] }
              for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
              all = ""; for (i = 1; i <= k; i++) all = all (i > 1 ? ", " : "") sprintf("%.2f", x[i]);
              printf "%s, per round: %.2f (%s)\n", label, x[int((k + 1) / 2)], all }' "$WORK/rounds"
}

echo "$(nproc) cores, $SECS s a line, $ROUNDS round(s); median round per server, every round in brackets."
: >"$WORK/rounds"
r=0
while [ $r -lt "$ROUNDS" ]; do
    for path in $PATHS; do
        # Rotate who goes first, so no server always follows the same one.
        # shellcheck disable=SC2086 # words on purpose
        set -- $SERVERS
        k=0; while [ $k -lt $((r % NSERVERS)) ]; do first=$1; shift; set -- "$@" "$first"; k=$((k + 1)); done
        for s in "$@"; do
            IFS=: read -r name port pid <<EOF
$s
EOF
            measure "$path" "$name" "$port" "$pid" "$r"
        done
    done
    r=$((r + 1))
done

for path in $PATHS; do
    echo
    echo "**$path**, $(rate_of "$path") queries/s:"
    echo
    echo "| server | answered | CPU µs per answer | mean latency ms | p99 latency ms |"
    echo "|---|---|---|---|---|"
    for name in $(servers 1); do
        awk -v p="$path" -v n="$name" '$1 == p && $2 == n' "$WORK/rounds" | sort -k5,5g | awk -v n="$name" '
            { q += $4; us[NR] = $5; mean[NR] = $6; p99[NR] = $7; all = all sep $5; sep = ", " }
            END { m = int((NR + 1) / 2);
                  printf "| %s | %d | %.2f (%s) | %.3f | %.3f |\n", n, q, us[m], all, mean[m], p99[m] }'
    done
    # glory-hole against the cheaper peer, within each round.
    echo
    per_round "$path" "glory-hole / best peer" glory-hole
    per_round "$path" "floor / best peer" floor
    per_round "$path" "glory-hole's own work, CPU µs per answer (glory-hole - floor)" glory-hole floor
    if [ "${LOGOFF:-0}" = 1 ]; then
        per_round "$path" "glory-hole with the query log off / best peer" glory-hole-nolog
        per_round "$path" "the query log, CPU µs per answer (log on - log off)" glory-hole glory-hole-nolog
    fi
done
