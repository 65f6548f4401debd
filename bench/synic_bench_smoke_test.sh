#!/usr/bin/env bash
# Runs synic_bench with few iterations and checks that it completes and
# prints figures, a ratio and a verdict on every row of both passes (busy
# and idle). Targets may be missed in so short a run: only the shape is
# checked. Without a usable /dev/kvm it skips.
set -u
source bench/smoke.sh
smoke_need_kvm synic_bench
smoke_run "$@"
latency_rows=(
    "event signal, echo actor on the VP's executor"
    "event signal, echo actor on another executor"
    "event signal, echo on the VP's executor"
    "device MSI, device on the VP's executor"
    "device MSI, device on another executor"
    "synic MSR read (SCONTROL), VP's synic actor"
    "raw MSI round trip (port exit, KVM_SIGNAL_MSI)"
    "raw event signal (answered inline)"
    "raw MSR exit (answered inline)"
)
rate_rows=(
    "messages, poster on the VP's executor"
    "messages, poster on another executor"
    "messages answered inline (raw harness)"
)
smoke_rows_twice '[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) ' \
    "${latency_rows[@]}"
smoke_rows_twice '[0-9]+/s +[0-9]+/s +[0-9]+\.[0-9]+x +(ok|MISS)? +.*, [0-9]+\.[0-9]+ us a message' \
    "${rate_rows[@]}"
smoke_line_twice "BUSY answers per message posted: [0-9]+\.[0-9]+ / [0-9]+\.[0-9]+; the guest's TSC: [0-9]+ kHz" \
    "the BUSY and TSC line"
echo "PASS: $((${#latency_rows[@]} + ${#rate_rows[@]})) rows in both passes"
