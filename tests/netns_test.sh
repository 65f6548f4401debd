#!/usr/bin/env bash
# A VM and its device host on two "hosts": two network namespaces joined by
# a veth pair. The VM (vmm run, host=remote) listens on tcp:// with CURVE;
# first a device host with a key the VM does not list and a peer that does
# not speak ZeroMQ at all are refused and logged, then the listed host
# registers COM1 and the test device, and the demo runs through them: its
# greeting comes out of the device host, and its MSI crossed the link.
# Skips where KVM, root or namespaces are missing.
set -u
vmm=$1
skip() {
    echo "SKIP: $*"
    exit 0
}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is absent or not usable here"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip command (iproute2)"

tag=$$
vm_ns=vmm-vm-$tag
host_ns=vmm-host-$tag
net=10.$((tag % 200 + 20)).$((tag / 200 % 250)).
vm_ip=${net}1
host_ip=${net}2
port=7700
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns del "$vm_ns" 2>/dev/null
    ip netns del "$host_ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$vm_ns" 2>/dev/null && ip netns add "$host_ns" ||
    skip "cannot make network namespaces here"
ip link add "vv$tag" netns "$vm_ns" type veth peer name "vh$tag" netns "$host_ns" &&
    ip -n "$vm_ns" addr add "$vm_ip/24" dev "vv$tag" &&
    ip -n "$host_ns" addr add "$host_ip/24" dev "vh$tag" &&
    ip -n "$vm_ns" link set "vv$tag" up && ip -n "$host_ns" link set "vh$tag" up &&
    ip -n "$vm_ns" link set lo up && ip -n "$host_ns" link set lo up ||
    skip "cannot join the namespaces with a veth pair"

fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
for k in vm devhost stranger; do
    "$vmm" keygen --out "$tmp/$k" >/dev/null || fail "keygen $k"
done

ip netns exec "$vm_ns" "$vmm" run --device serial,host=remote --device testdev,host=remote \
    --listen "tcp://$vm_ip:$port" --key "$tmp/vm.key" --allow-key "$tmp/devhost.pub" \
    --wait-devices 30 >"$tmp/vm.out" 2>"$tmp/vm.err" &
vm_pid=$!
pids+=("$vm_pid")

# devhost NAME [PREFIX...]: a device host in the other namespace with
# NAME's key, its command run under PREFIX (timeout, say).
devhost() {
    local key=$1
    shift
    "$@" ip netns exec "$host_ns" "$vmm" devhost --vm "tcp://$vm_ip:$port" \
        --vm-key "$tmp/vm.pub" --key "$tmp/$key.key" --listen "$host_ip" \
        --device serial --device testdev
}
# Until the VM listens, a peer's first try may find nobody: ZeroMQ retries.
for _ in $(seq 50); do
    grep -q "waiting up to" "$tmp/vm.err" && break
    sleep 0.1
done

# A key the VM does not list: refused in the handshake, so its devices
# never register.
devhost stranger timeout 8 >"$tmp/stranger.out" 2>"$tmp/stranger.err"
grep -qF "refused CURVE key $(cat "$tmp/stranger.pub")" "$tmp/vm.err" ||
    fail "the VM did not log the unlisted key: $(cat "$tmp/vm.err")"
grep -q "did not register" "$tmp/stranger.err" ||
    fail "the unlisted host did not say its devices were refused: $(cat "$tmp/stranger.err")"

# Not ZeroMQ at all: a plain TCP peer sending text.
ip netns exec "$host_ns" bash -c "exec 3<>/dev/tcp/$vm_ip/$port && echo 'GET / HTTP/1.0' >&3 &&
    sleep 0.3" 2>/dev/null || fail "no TCP connection to the VM's port"
for _ in $(seq 30); do
    grep -q "failed the CURVE handshake" "$tmp/vm.err" && break
    sleep 0.1
done
grep -q "failed the CURVE handshake" "$tmp/vm.err" ||
    fail "the VM did not log the peer without CURVE: $(cat "$tmp/vm.err")"

devhost devhost >"$tmp/host.out" 2>"$tmp/host.err" &
pids+=("$!")
for _ in $(seq 300); do
    kill -0 "$vm_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$vm_pid" 2>/dev/null; then
    fail "the VM did not end within 30 s"
else
    wait "$vm_pid"
    status=$?
    [ "$status" -eq 0 ] || fail "vmm run exited $status: $(cat "$tmp/vm.err")"
fi
for _ in $(seq 20); do
    grep -q "MSI received on vector 0x40" "$tmp/host.out" && break
    sleep 0.1
done
grep -q "^Hello from the demo guest on vp 0 of 1$" "$tmp/host.out" ||
    fail "no greeting from the device host's COM1: $(cat "$tmp/host.out" "$tmp/host.err")"
grep -q "^MSI received on vector 0x40$" "$tmp/host.out" ||
    fail "the MSI line is missing: $(cat "$tmp/host.out" "$tmp/host.err")"

echo "--- the VM's stderr:"
cat "$tmp/vm.err"
if [ "$fails" -ne 0 ]; then
    echo "FAIL: $fails checks"
    exit 1
fi
echo "PASS: a VM in $vm_ns and its devices in $host_ns over tcp:// with CURVE"
