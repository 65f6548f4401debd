#!/usr/bin/env bash
# Runs a benchmark with few iterations and checks that it completes and
# prints a ratio on at least 21 rows.
set -u
source bench/smoke.sh
smoke_run "$@"
rows=$(grep -cE '[0-9.]+x|[0-9]+%' <<<"$out")
if [ "$rows" -lt 21 ]; then
    echo "FAIL: expected at least 21 figure rows, saw $rows"
    exit 1
fi
echo "PASS: $rows figure rows"
