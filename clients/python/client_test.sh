#!/usr/bin/env bash
# The Python client (vmmctl.py) and its example against a real vmm run of
# tests/guests/ctl_count. Skips without a usable /dev/kvm.
set -u
vmm=$1
guest=$2
gen=$(cd "$(dirname "$3")/.." && pwd) # the folder that holds proto/
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$gen:$here"
python=/usr/bin/python3
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here"
    exit 0
fi
tmp=$(mktemp -d -p /tmp)
chmod 700 "$tmp"
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0

"$vmm" run --guest "$guest" --control "ipc://$tmp/c" --serial "$tmp/serial" \
    >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
for _ in $(seq 100); do
    grep -q "^ctl: counter" "$tmp/serial" 2>/dev/null && break
    sleep 0.1
done
counter=$(sed -nE 's/^ctl: counter (0x[0-9a-f]+) .*/\1/p' "$tmp/serial")
[ -n "$counter" ] || { echo "FAIL: the guest did not start: $(cat "$tmp/err")"; exit 1; }

if "$python" "$here/example.py" "ipc://$tmp/c" >"$tmp/example" 2>&1 &&
    grep -q "^vm0/vp/0 (vp)$" "$tmp/example" && grep -q "^  exit_reasons = " "$tmp/example" &&
    grep -q "^paused: vp 0 at rip 0x1" "$tmp/example" && grep -q "^resumed$" "$tmp/example"; then
    echo "ok: example.py printed the tree, paused and resumed"
else
    echo "FAIL: example.py:"
    cat "$tmp/example"
    fails=$((fails + 1))
fi
"$python" "$here/example.py" --timeout 1 "ipc://$tmp/nothing" >"$tmp/none" 2>&1
[ $? -ne 0 ] && grep -q "no answer" "$tmp/none" && echo "ok: example.py, no VM: one error" ||
    { echo "FAIL: example.py without a VM: $(cat "$tmp/none")"; fails=$((fails + 1)); }

"$python" "$here/client_test.py" "ipc://$tmp/c" "$counter" || fails=$((fails + 1))
for _ in $(seq 100); do
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
kill $pid 2>/dev/null
wait $pid
status=$?
[ $status -eq 9 ] && echo "ok: powered off with 9" ||
    { echo "FAIL: vmm run ended with $status: $(cat "$tmp/err")"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ]
