#!/usr/bin/env bash
# Runs a benchmark with few iterations and checks that it completes and
# prints a ratio on every row. Its targets are not judged here: figures from
# a few hundred iterations on a shared machine mean nothing.
set -u
bench=$1
shift
out=$("$bench" "$@" 2>&1)
status=$?
echo "$out"
if [ "$status" -ne 0 ]; then
    echo "FAIL: $bench exited with $status"
    exit 1
fi
rows=$(grep -cE '[0-9.]+x|[0-9]+%' <<<"$out")
if [ "$rows" -lt 21 ]; then
    echo "FAIL: expected at least 21 figure rows, saw $rows"
    exit 1
fi
echo "PASS: $rows figure rows"
