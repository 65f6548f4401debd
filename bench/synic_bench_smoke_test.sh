#!/usr/bin/env bash
# Runs synic_bench with few iterations and checks that it completes and
# prints figures and a ratio on every row of both passes (busy and idle).
# Figures from a hundred rounds on a shared machine mean nothing, and the issue
# sets no targets: none are judged here. Without a usable /dev/kvm it skips.
set -u
bench=$1
shift
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here; synic_bench needs KVM"
    exit 0
fi
out=$("$bench" "$@" 2>&1)
status=$?
echo "$out"
if [ "$status" -ne 0 ]; then
    echo "FAIL: $bench exited with $status"
    exit 1
fi
latency_rows=(
    "event signal, echo actor on the VP's executor"
    "event signal, echo actor on another executor"
    "raw MSI round trip (port exit, KVM_SIGNAL_MSI)"
)
rate_rows=(
    "messages, poster on the VP's executor"
    "messages, poster on another executor"
)
latency='[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +\((no target|reference)\)'
rate='[0-9]+/s +[0-9]+/s +[0-9]+\.[0-9]+x +\(no target\) [0-9]+\.[0-9]+ us a message'
check() {
    local row=$1 figures=$2 n
    n=$(grep -F "  $row " <<<"$out" | grep -cE "$figures")
    if [ "$n" -ne 2 ]; then
        echo "FAIL: '$row' has figures on $n lines, expected 2 (busy and idle)"
        exit 1
    fi
}
for row in "${latency_rows[@]}"; do
    check "$row" "$latency"
done
for row in "${rate_rows[@]}"; do
    check "$row" "$rate"
done
busy_line="BUSY answers per message posted: [0-9]+\.[0-9]+ / [0-9]+\.[0-9]+; "
n=$(grep -cE "${busy_line}the guest's TSC: [0-9]+ kHz" <<<"$out")
if [ "$n" -ne 2 ]; then
    echo "FAIL: the BUSY and TSC line appears $n times, expected 2"
    exit 1
fi
echo "PASS: $((${#latency_rows[@]} + ${#rate_rows[@]})) rows in both passes"
