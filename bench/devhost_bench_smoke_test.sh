#!/usr/bin/env bash
# Runs devhost_bench with few iterations and checks that it completes and
# prints figures, a ratio and a verdict on every row of both passes (busy
# and idle). Its targets are not judged here: figures from a hundred
# operations on a shared machine mean nothing. Without a usable /dev/kvm it
# skips.
set -u
bench=$1
shift
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here; devhost_bench needs KVM"
    exit 0
fi
out=$("$bench" "$@" 2>&1)
status=$?
echo "$out"
if [ "$status" -ne 0 ]; then
    echo "FAIL: $bench exited with $status"
    exit 1
fi
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
    "port write, device on the VP's executor"
    "port write, device on another executor"
    "posted write, device on the VP's executor"
    "doorbell write, owner on the VP's executor"
)
figures='[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+ us +[0-9]+\.[0-9]+x +(ok|MISS) '
for row in "${rows[@]}"; do
    n=$(grep -F "  $row " <<<"$out" | grep -cE "$figures")
    if [ "$n" -ne 2 ]; then
        echo "FAIL: '$row' has figures on $n lines, expected 2 (busy and idle)"
        exit 1
    fi
done
n=$(grep -cE "posted writes taken when their loop ended: [0-9]+% / [0-9]+%" <<<"$out")
if [ "$n" -ne 2 ]; then
    echo "FAIL: the posted-delivery line appears $n times, expected 2"
    exit 1
fi
echo "PASS: ${#rows[@]} rows in both passes"
