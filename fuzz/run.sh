#!/bin/sh
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each, one after
# the other, and prints a Markdown table: target, seconds it ran (a crash
# ends a target early), executions, crashes. Exits 1 if any target crashed (the input is in
# fuzz/artifacts/TARGET/; replay it with `cargo +nightly fuzz run TARGET
# FILE`, then make it a regular test in tests/).
#
#   sh fuzz/run.sh [SECONDS]      (default 1800; `make fuzz`, `make fuzz-smoke`)
#
# FUZZ_JOBS=N runs the targets in N lanes side by side (default 1), each
# lane one target at a time on one core: `make fuzz FUZZ_JOBS=2` on a
# 2-core machine takes half the wall time. FUZZ_TARGETS="a b" runs only
# those targets (default: every one `cargo fuzz list` names).
# FUZZ_BUILD_ONLY=1 builds what a run of SECONDS would run, and stops
# (.ci/run builds the smoke's targets in the background that way).
#
# Each target starts from its seeds (fuzz/corpus/TARGET/, in git) plus
# what earlier runs found (fuzz/target/corpus/TARGET/, not in git), so a
# long run continues where a short one stopped.
set -eu
cd "$(dirname "$0")"
EACH=${1:-1800}
FUZZ="cargo +nightly fuzz"
# A smoke of a few seconds per target runs an unoptimised build, which
# compiles in about half the time (CI builds it from scratch); real runs
# an optimised one. One build for all targets, with the flags `run` uses
# (no rebuild there).
PROFILE=""
[ "$EACH" -gt 30 ] || PROFILE="--dev"
$FUZZ build $PROFILE
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0
mkdir -p target/log
TABLE=target/log/summary.md
{
    echo "| target | seconds | executions | crashes |"
    echo "|---|---|---|---|"
} >"$TABLE"
fuzz_one() {
    t=$1
    mkdir -p "target/corpus/$t" "artifacts/$t"
    rm -f "target/log/$t.failed"
    before=$(find "artifacts/$t" -type f | wc -l)
    log="target/log/$t.log"
    printf 'fuzz: %s for %s s\n' "$t" "$EACH" >&2
    started=$(date +%s)
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a reader
    # must stay far below what a 1 GiB board has.
    $FUZZ run $PROFILE "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$EACH" -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        # Stopped by a crash before the final stats: the last status line.
        execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    fi
    crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
    # The seconds it ran: a crash ends a target's run early.
    echo "| $t | $(($(date +%s) - started)) | ${execs:-0} | $crashes |" >"target/log/$t.row"
    if [ "$crashes" -gt 0 ] || ! grep -q '^Done [0-9]* runs' "$log"; then
        touch "target/log/$t.failed"
        echo "fuzz: $t: crashed or stopped early; the end of $PWD/$log:" >&2
        tail -n 30 "$log" >&2
    fi
}
TARGETS=${FUZZ_TARGETS:-$($FUZZ list)}
JOBS=${FUZZ_JOBS:-1}
lane=0
while [ "$lane" -lt "$JOBS" ]; do
    (
        i=0
        for t in $TARGETS; do
            [ $((i % JOBS)) -eq "$lane" ] && fuzz_one "$t"
            i=$((i + 1))
        done
    ) &
    lane=$((lane + 1))
done
wait
failed=""
for t in $TARGETS; do
    row="target/log/$t.row"
    if [ -f "$row" ]; then cat "$row" >>"$TABLE"; else echo "| $t | 0 | 0 | ? |" >>"$TABLE"; fi
    if [ ! -f "$row" ] || [ -f "target/log/$t.failed" ]; then
        failed="$failed $t"
    fi
    rm -f "$row"
done
cat "$TABLE"
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
