#!/usr/bin/env bash
# Runs scale_bench on two small VMs with few rounds and checks that it
# completes and prints figures, a ratio and a verdict on every row for both
# sizes. Without a usable /dev/kvm it skips.
set -u
source bench/smoke.sh
smoke_need_kvm scale_bench
smoke_run "$@"
rows=(
    "build"
    "start to every VP's first report"
    "stop-all, median"
    "stop-all, max"
    "start-all, median"
    "start-all, max"
)
smoke_rows_twice '[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) ' "${rows[@]}"
smoke_line_twice "peak RSS +[0-9.]+ MiB +[0-9.]+ MiB +[0-9.]+x" "the peak RSS row"
echo "PASS: ${#rows[@]} rows and the peak RSS for both sizes"
