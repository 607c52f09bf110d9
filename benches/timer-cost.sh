#!/bin/sh
# What one short timer sleep costs the sleeping thread in CPU time on this
# machine (docs/performance.md, "No pacing hold"): N nanosleeps of a few
# hundred µs, CPU from getrusage. In a nested virtual machine arming and
# taking the timer both leave the guest, and the sleeper pays for it.
#
#   benches/timer-cost.sh [MICROSECONDS] [COUNT]    (defaults: 300 5000)
set -eu
US=${1:-300}
N=${2:-5000}
WORK=$(mktemp -d /tmp/gh-timer.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
cat >"$WORK/t.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
int main(int argc, char **argv) {
    long us = atol(argv[1]);
    int n = atoi(argv[2]);
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    for (int i = 0; i < n; i++) nanosleep(&ts, 0);
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    double cpu = (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
    printf("nanosleep(%ld us) x %d: %.2f us of CPU per sleep\n", us, n, cpu / n);
    return 0;
}
C
gcc -O2 -o "$WORK/t" "$WORK/t.c"
"$WORK/t" "$US" "$N"
