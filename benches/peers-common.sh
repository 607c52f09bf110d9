# Sourced by benches/dns-peers.sh, dns-profile.sh and dns-paths.sh, so they
# measure the same thing: one stand-in upstream, the same cached names,
# glory-hole's configuration, unbound's and dnsmasq's, and dnsperf's load.
# The caller sets NAMES, RATE and SECS, then calls peers_init NAME; UP (the
# upstream's address) may be set before, to run beside another benchmark.
# shellcheck shell=sh

# A work directory, and every process started here killed on exit.
peers_init() { # name
    WORK=$(mktemp -d "/tmp/gh-$1.XXXXXX")
    PIDS=""
    trap peers_cleanup EXIT INT TERM
    # shellcheck disable=SC2034 # read by the scripts that source this
    TICK=$(getconf CLK_TCK)
    UP=${UP:-127.0.0.1:5300}
}

peers_cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# The stand-in upstream every server forwards to (an example, with the
# `testing` feature the shipped server leaves out), and the names asked.
start_upstream() {
    cargo build --release --quiet --example stand-in-upstream
    target/release/examples/stand-in-upstream --listen "$UP" >"$WORK/upstream.log" 2>&1 &
    PIDS="$PIDS $!"
    i=0; : >"$WORK/queries"
    while [ $i -lt "$NAMES" ]; do echo "n$i.bench.example A" >>"$WORK/queries"; i=$((i+1)); done
}

# glory-hole's release build, as shipped, copied into $WORK; sets GH. A
# copy, because `cargo bench` (build_echo) relinks target/release/glory-hole
# against the library built with the dev-dependencies' features (`testing`
# among them): a build that ran 3 % fewer instructions per cached answer
# than the shipped one (4,082 against 4,211, benches/instructions.sh at
# 6c47777), which dns-peers.sh and dns-paths.sh measured until then.
release_glory_hole() {
    cargo build --release --quiet --bin glory-hole
    cp target/release/glory-hole "$WORK/glory-hole"
    GH=$WORK/glory-hole
}

# Builds benches/udp_echo.rs (the bare echo loops and the floor) and sets
# ECHO to its binary.
build_echo() {
    cargo bench --no-run --quiet --bench udp_echo 2>/dev/null
    ECHO=$(find target/release/deps -maxdepth 1 -type f -executable -name 'udp_echo-*' | head -n1)
}

# glory-hole's configuration, $WORK/gh.toml: its defaults, DNS on PORT
# (default 5401), and the TOML tables in EXTRA appended.
glory_hole_config() { # [port] [extra toml]
    cat >"$WORK/gh.toml" <<TOML
data_dir = "$WORK/gh-data"
[dns]
listen = ["127.0.0.1:${1:-5401}"]
upstreams = ["$UP"]
udp_sockets = ${UDP_SOCKETS:-0}
# dnsperf is one client: a per-client limit it never reaches, so the
# limiter is paid for on every query but refuses none.
rate_limit = 10000000
# ...and the whole upstream share (512), not one device's (64): dnsperf
# keeps up to 100 queries outstanding, and when the upstream stalls on a
# loaded machine the 65th waiting miss is answered SERVFAIL at once (the
# likely cause of one loaded run's 7.6 % SERVFAIL misses, docs/
# performance.md), where unbound and dnsmasq have no such cap.
client_upstream_queries = 512
[web]
enabled = false
${2:-}
TOML
}

# glory-hole on PORT with glory_hole_config's configuration; sets GH_PID.
start_glory_hole() { # glory-hole binary [port] [extra toml]
    glory_hole_config "${2:-5401}" "${3:-}"
    "$1" --config "$WORK/gh.toml" >"$WORK/gh.log" 2>&1 &
    GH_PID=$!; PIDS="$PIDS $GH_PID"
}

# dnsmasq on PORT (default 5403), answering from its cache, with any
# further arguments given; sets DM_PID.
start_dnsmasq() { # [port] [dnsmasq arguments...]
    port=${1:-5403}; [ $# -gt 0 ] && shift
    dnsmasq -k -p "$port" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
        --no-hosts --server="${UP%:*}#${UP##*:}" --cache-size=10000 -u root \
        --pid-file="$WORK/dnsmasq-$port.pid" "$@" >"$WORK/dnsmasq.log" 2>&1 &
    DM_PID=$!; PIDS="$PIDS $DM_PID"
}

# unbound on PORT (default 5402), two threads, forwarding everything to
# the stand-in, with the server: lines in FILE (if given) included; sets
# UB_PID.
start_unbound() { # [port] [file of server: lines]
    {
        cat <<CONF
server:
  interface: 127.0.0.1@${1:-5402}
  do-daemonize: no
  use-syslog: no
  chroot: ""
  username: ""
  directory: "$WORK"
  pidfile: ""
  num-threads: 2
  so-reuseport: yes
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  verbosity: 0
  msg-cache-size: 16m
  rrset-cache-size: 16m
CONF
        if [ -n "${2:-}" ]; then echo "  include: \"$2\""; fi
        printf 'forward-zone:\n  name: "."\n  forward-addr: %s@%s\n' "${UP%:*}" "${UP##*:}"
    } >"$WORK/unbound-${1:-5402}.conf"
    unbound -c "$WORK/unbound-${1:-5402}.conf" >"$WORK/unbound.log" 2>&1 &
    UB_PID=$!; PIDS="$PIDS $UB_PID"
}

# The cached pool mixed_queries draws from: N made-up ordinary names
# (siteK.home.example, K < N), one query each, for dnsperf.
cached_pool() { # n
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "site%d.home.example A\n", i }'
}

# N queries like a household's, for dnsperf: 30 % new names (carrying
# TAG, so no server saw them before), 15 % listed names from the file
# BLOCKED, the rest the cached pool (siteK.home.example, K < POOL), the
# last two Zipf-distributed (s = 1) over POOL names; seeded by TAG.
mixed_queries() { # n tag pool blocked-file
    awk -v n="$1" -v t="$2" -v pool="$3" -v seed="$(printf %s "$2" | cksum | cut -d' ' -f1)" '
        NR == FNR { blocked[FNR] = $1; next }
        function zipf(  r, lo, hi, mid) {
            r = rand() * H; lo = 1; hi = pool
            while (lo < hi) { mid = int((lo + hi) / 2); if (cum[mid] < r) lo = mid + 1; else hi = mid }
            return lo
        }
        END {
            srand(seed); H = 0
            for (k = 1; k <= pool; k++) { H += 1 / k; cum[k] = H }
            for (i = 0; i < n; i++) {
                u = rand()
                if (u < 0.30) printf "q%d.%s.miss.example A\n", i, t
                else if (u < 0.45) printf "%s A\n", blocked[zipf()]
                else printf "site%d.home.example A\n", zipf() - 1
            }
        }' "$4" /dev/null
}

# Every domain of ../shared/data/blocklists, once each, lower-cased, from
# all four formats, into FILE.
shared_listed() { # file
    for f in ../shared/data/blocklists/*/*.txt; do
        case $f in
            */hosts/*) awk '!/^[#!]/ && NF >= 2 { print tolower($2) }' "$f" ;;
            */domains/*) awk '!/^[#!]/ && NF >= 1 { print tolower($1) }' "$f" ;;
            */adblock/*) sed -n 's/^||\([^/^$]*\)^$/\1/p' "$f" | tr '[:upper:]' '[:lower:]' ;;
            */dnsmasq/*) sed -n 's|^server=/\([^/]*\)/$|\1|p' "$f" | tr '[:upper:]' '[:lower:]' ;;
        esac
    done | grep -E '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$' | grep -vxE '0\.0\.0\.0|localhost|local' \
        | sort -u >"$1"
}

# Waits until the server on PORT answers NAME (a listed name) with
# 0.0.0.0, so its lists are loaded; after TRIES attempts half a second
# apart, fails naming both, with LOG (the server's output) if given.
wait_blocked() { # port name tries [log]
    t=0
    until [ "$(dig +short +tries=1 +time=2 -p "$1" @127.0.0.1 "$2" A 2>/dev/null)" = 0.0.0.0 ]; do
        t=$((t + 1))
        if [ "$t" -gt "$3" ]; then
            echo "benches: the server on port $1 never blocked $2" >&2
            if [ -n "${4:-}" ]; then echo "its log:" >&2; cat "$4" >&2; fi
            exit 1
        fi
        sleep 0.5
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Every name asked once, so the measured queries are cache hits.
warm() { # port
    dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -n 2 -t 2 >/dev/null 2>&1 || true
}

# The measured load; dnsperf's report on standard output.
offer() { # port
    dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -Q "$RATE" -l "$SECS" -c 4 -t 2 2>&1 || true
}

# The answers dnsperf counted in its report FILE. Fails, with the report
# on standard error, unless at least 95% of the queries sent came back
# NOERROR: the stand-in answers every name asked, so SERVFAIL or silence
# means a broken server, not a fast one.
answered() { # file
    awk '/Queries sent:/ { sent = $3 }
         /Queries completed:/ { done = $3 }
         /Response codes:/ { for (i = 3; i < NF; i++) if ($i == "NOERROR") ok = $(i + 1) }
         END { if (sent == 0 || ok < 0.95 * sent) exit 1; print done }' "$1" || {
        echo "benches: fewer than 95% of the queries sent were answered NOERROR; dnsperf said:" >&2
        cat "$1" >&2
        return 1
    }
}

# Warms PORT, then offers the measured load while counting PID's CPU:
# dnsperf's report in $WORK/NAME.perf; sets USED_TICKS and ANSWERED, or
# fails if the answers are missing (see answered).
measured_offer() { # name port pid
    warm "$2"
    before=$(cpu_ticks "$3")
    offer "$2" >"$WORK/$1.perf"
    USED_TICKS=$(($(cpu_ticks "$3") - before))
    ANSWERED=$(answered "$WORK/$1.perf")
}
