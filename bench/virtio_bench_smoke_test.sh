#!/usr/bin/env bash
# virtio_bench with few operations, idle only: it completes, and every
# workload has its five placements, the floor (but the console) and its
# target row.
set -u
source bench/smoke.sh
smoke_need_kvm virtio_bench
smoke_run "$@"
fails=0
for place in "VP 0's executor" "its own executor" "device host, ipc://" \
    "device host, tcp:// + CURVE" "device host, tcp://, by message"; do
    n=$(grep -cF -- "$place" <<<"$out")
    if [ "$n" -ne 5 ]; then
        echo "FAIL: '$place': $n rows, want 5"
        fails=$((fails + 1))
    fi
done
n=$(grep -c "host pread/pwrite (the floor)" <<<"$out")
[ "$n" -eq 4 ] || { echo "FAIL: $n floor rows, want 4"; fails=$((fails + 1)); }
n=$(grep -c "target: device host ipc:// vs in the VMM" <<<"$out")
[ "$n" -eq 5 ] || { echo "FAIL: $n target rows, want 5"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ] && echo "PASS"
exit "$fails"
