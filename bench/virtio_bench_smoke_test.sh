#!/usr/bin/env bash
# virtio_bench with few operations, idle only: it completes, every workload
# has its five placements, the floor (but the console) and its target row;
# and where QEMU is installed, each disk workload its four rows against
# QEMU and two target rows.
set -u
source bench/smoke.sh
smoke_need_kvm virtio_bench
smoke_run "$@"
fails=0
# count WANT PATTERN: PATTERN (fixed) on WANT lines of the output.
count() {
    local n
    n=$(grep -cF -- "$2" <<<"$out")
    if [ "$n" -ne "$1" ]; then
        echo "FAIL: '$2': $n rows, want $1"
        fails=$((fails + 1))
    fi
}
for place in "in the VMM, VP 0's executor" "in the VMM, its own executor" \
    "device host, ipc://" "device host, tcp:// + CURVE" "device host, tcp://, by message"; do
    count 5 "$place"
done
count 4 "host pread/pwrite (the floor)"
count 5 "target: device host ipc:// vs in the VMM"
if grep -q "against QEMU" <<<"$out"; then
    for row in "QEMU -M microvm, virtio-blk-device" "this VMM, in process, its own executor" \
        "this VMM, in process, VP 0's executor" "this VMM, device host over ipc://"; do
        count 4 "$row"
    done
    count 4 "target: in process vs QEMU"
    count 4 "target: device host ipc:// vs QEMU"
else
    count 1 "QEMU: no qemu-system-x86_64"
fi
[ "$fails" -eq 0 ] && echo "PASS"
exit "$fails"
