#!/bin/sh
# Query-log benchmark (docs/performance.md, docs/querylog.md): ingest rate,
# bytes per row, dashboard and log-page latency, the seed's five questions
# side by side with a plain row-per-query table holding the same rows, the
# dashboard's top domains and top blocked over 7 d and 30 d (timed, and
# checked against a count of the plain table's rows), a retention pass.
# It ends with the documented targets, met or missed, and exits 1 if one
# is missed (so a --smoke run in CI fails).
#   benches/querylog.sh            10 million rows (the documented run)
#   benches/querylog.sh --smoke    200 000 rows, for CI: times printed, not
#                                  held (they move with the machine)
#   benches/querylog.sh --rows N
# The databases (a few GB at 10 million rows) live in target/querylog-bench
# and are deleted afterwards.
set -eu
cd "$(dirname "$0")/.."
rows=10000000
smoke=""
case "${1:-}" in
    --smoke) rows=200000; smoke="--smoke" ;;
    --rows) rows="$2" ;;
    "") ;;
    *) echo "usage: $0 [--smoke | --rows N]" >&2; exit 2 ;;
esac
cargo build --release --example querylog_bench
dir=target/querylog-bench
rm -rf "$dir"
mkdir -p "$dir"
status=0
target/release/examples/querylog_bench --rows "$rows" --dir "$dir" ${smoke:+"$smoke"} || status=$?
rm -rf "$dir"
exit "$status"
