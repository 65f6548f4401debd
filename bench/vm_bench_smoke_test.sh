#!/usr/bin/env bash
# Runs vm_bench with few iterations and checks that it completes and prints
# figures, a ratio and a verdict on every row of both passes (busy and
# idle). Without a usable /dev/kvm it skips.
set -u
source bench/smoke.sh
smoke_need_kvm vm_bench
smoke_run "$@"
rows=(
    "port write, device on the VP's executor"
    "port write, device on another executor"
    "posted write, device on the VP's executor"
    "posted write, device on another executor"
    "doorbell write, owner on the VP's executor"
    "doorbell write, owner on another executor"
    "traced port write, VP's executor"
    "traced port write, another executor"
    "traced posted write, VP's executor"
    "traced doorbell write, VP's executor"
    "raw doorbell write (ioeventfd)"
    "raw OUT exit, second loop (noise)"
)
smoke_rows_twice '[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) ' "${rows[@]}"
smoke_line_twice "posted writes taken when their loop ended: [0-9]+% / [0-9]+%" \
    "the posted-delivery line"
echo "PASS: ${#rows[@]} rows in both passes"
