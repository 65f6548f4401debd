#!/usr/bin/env bash
# Runs pm_timer_bench with few reads and checks that it completes and prints
# figures, a ratio and a verdict on every row of both passes (busy and
# idle); QEMU is left out (VMM_BENCH_QEMU=none), it would only slow this
# down. Without a usable /dev/kvm it skips.
set -u
source bench/smoke.sh
smoke_need_kvm pm_timer_bench
export VMM_BENCH_QEMU=none
smoke_run "$@"
rows=(
    "PM block on the VP's executor"
    "PM block on another executor"
)
smoke_rows_twice '[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) ' "${rows[@]}"
smoke_line_twice "QEMU: no qemu-system-x86_64" "the line that says QEMU was left out"
echo "PASS: ${#rows[@]} rows in both passes"
