#!/usr/bin/env bash
# A device host over tcp:// admits the VM's CURVE key alone: a VM
# (vmm run, host=remote) runs the demo through a device host's COM1; then,
# the host still serving, `vmm ctl` asks its COM1 for its inspect tree with
# the VM's key (answered) and with another key (refused in the handshake,
# logged by the host with the key, no answer). Skips without /dev/kvm.
set -u
vmm=$1
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here"
    exit 0
fi
tmp=$(mktemp -d)
host_pid=
trap '[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null; wait; rm -rf "$tmp"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
for k in vm devhost stranger; do
    "$vmm" keygen --out "$tmp/$k" >/dev/null || fail "keygen $k"
done
# A free port for the VM: the kernel's pick, let go just before vmm binds it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$vmm" run --device serial,host=remote --listen "tcp://127.0.0.1:$port" --key "$tmp/vm.key" \
    --allow-key "$tmp/devhost.pub" --wait-devices 30 >"$tmp/vm.out" 2>"$tmp/vm.err" &
vm_pid=$!
for _ in $(seq 50); do
    grep -q "waiting up to" "$tmp/vm.err" && break
    sleep 0.1
done
"$vmm" devhost --vm "tcp://127.0.0.1:$port" --vm-key "$tmp/vm.pub" --key "$tmp/devhost.key" \
    --listen 127.0.0.1 --device serial >"$tmp/host.out" 2>"$tmp/host.err" &
host_pid=$!
for _ in $(seq 300); do
    kill -0 "$vm_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$vm_pid" 2>/dev/null; then
    fail "vmm run did not end within 30 s of the host's start: killed"
    kill -KILL "$vm_pid"
fi
wait "$vm_pid"
status=$?
[ "$status" -eq 0 ] || fail "vmm run exited $status: $(cat "$tmp/vm.err")"
grep -q "^Hello from the demo guest" "$tmp/host.out" ||
    fail "no greeting from the device host's COM1: $(cat "$tmp/host.out" "$tmp/host.err")"

# The host's COM1 listens on a port of the kernel's choosing.
host_port=$(ss -ltnpH 2>/dev/null | sed -nE "s/.*127\.0\.0\.1:([0-9]+) .*pid=$host_pid,.*/\1/p" | head -1)
if [ -z "$host_port" ]; then
    fail "the device host listens nowhere: $(ss -ltnp 2>&1 | head -5)"
else
    ask() {
        "$vmm" ctl --key "$tmp/$1.key" --server-key "$tmp/devhost.pub" --timeout 3 \
            "tcp://127.0.0.1:$host_port" inspect vm0/dev/com1
    }
    ask vm >"$tmp/vm.ask" 2>&1 && grep -q "^vm0/dev/com1 (device)" "$tmp/vm.ask" ||
        fail "the VM's key got no inspect tree: $(cat "$tmp/vm.ask")"
    if ask stranger >"$tmp/stranger.ask" 2>&1; then
        fail "another key was answered: $(cat "$tmp/stranger.ask")"
    fi
    grep -q "no answer" "$tmp/stranger.ask" ||
        fail "another key: not the refusal expected: $(cat "$tmp/stranger.ask")"
    grep -qF "refused CURVE key $(cat "$tmp/stranger.pub")" "$tmp/host.err" ||
        fail "the device host did not log the key it refused: $(cat "$tmp/host.err")"
fi
if [ "$fails" -ne 0 ]; then
    echo "FAIL: $fails checks"
    exit 1
fi
echo "PASS: the device host answered the VM's key and refused another"
