#!/usr/bin/env bash
# Runs devhost_bench with few iterations and checks that it completes and
# prints figures, a ratio and a verdict on every row of both passes (busy
# and idle). Without a usable /dev/kvm it skips.
set -u
source bench/smoke.sh
smoke_need_kvm devhost_bench
smoke_run "$@"
rows=()
for link in ipc tcp; do
    rows+=(
        "port write, device host over $link"
        "posted write, device host over $link"
        "doorbell write, device host over $link"
        "raw zmq round trip over $link, two processes"
    )
done
rows+=(
    "MSI from the device host over ipc (irqfd)"
    "MSI from a device on another executor"
    "port write, device on the VP's executor"
    "port write, device on another executor"
    "posted write, device on the VP's executor"
    "doorbell write, owner on the VP's executor"
)
smoke_rows_twice '[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) ' "${rows[@]}"
smoke_line_twice "posted writes taken when their loop ended: [0-9]+% / [0-9]+%" \
    "the posted-delivery line"
echo "PASS: ${#rows[@]} rows in both passes"
