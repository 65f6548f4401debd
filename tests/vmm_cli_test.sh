#!/usr/bin/env bash
# The vmm command as a user meets it: help, the demo's exit status and
# output, guests' exit statuses, and every kind of error as one line with
# the right status. Runs that need KVM skip without a usable /dev/kvm; the
# missing-KVM error is checked by hiding /dev/kvm in a mount namespace where
# unshare allows it.
set -u
vmm=$1
exit_guest=$2
lines_guest=$3
info_kernel=$4
left_out=$5
fails=0
tmp=$(mktemp -d -p /tmp) # short: vmm's sockets go below it
trap 'rm -rf "$tmp"' EXIT

# expect STATUS LINES PATTERN -- ARGS: runs vmm ARGS, checks its status,
# that stderr has exactly LINES lines (-1: any), and that stdout and stderr
# together match PATTERN (empty: that both are empty).
expect() {
    local status=$1 lines=$2 pattern=$3
    shift 4
    "$vmm" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local got=$?
    local n
    n=$(wc -l <"$tmp/err")
    local matched=true
    if [ -z "$pattern" ]; then
        [ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] || matched=false
    else
        cat "$tmp/out" "$tmp/err" | grep -Eq -- "$pattern" || matched=false
    fi
    if [ "$got" -ne "$status" ] || { [ "$lines" -ge 0 ] && [ "$n" -ne "$lines" ]; } ||
        ! $matched; then
        echo "FAIL: vmm $*: status $got (want $status), $n stderr lines (want $lines)," \
            "output should match /$pattern/:"
        cat "$tmp/out" "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok: vmm $*"
    fi
}

expect 0 0 "usage: vmm" -- --help
expect 0 0 "--guest FILE" -- run --help
expect 2 -1 "usage: vmm" --
expect 2 1 "unknown command 'bogus'" -- bogus
expect 2 1 "unknown option '--bogus'" -- run --bogus
expect 2 1 "missing value for '--mem'" -- run --mem
expect 2 1 "--mem 3M: a multiple of 2M" -- run --mem 3M
expect 2 1 "--vps 0: a number from 1 to 256" -- run --vps 0
expect 2 1 "--devices sideways" -- run --devices sideways
expect 2 1 "--log-level loud" -- run --log-level loud
expect 2 1 "unexpected argument 'extra'" -- run extra
expect 1 1 "/nonexistent/guest: No such file" -- run --guest /nonexistent/guest
expect 1 1 "--serial /nonexistent/dir/out" -- run --serial /nonexistent/dir/out
echo "not an ELF" >"$tmp/bad"
expect 1 1 "the guest cannot be loaded" -- run --guest "$tmp/bad"

# run --kernel: the options that go with it, and each kind of bad image
# (refused before KVM is asked for anything).
expect 0 0 "--kernel FILE" -- run --help
expect 2 1 "--guest and --kernel: give one" -- run --guest "$exit_guest" --kernel "$info_kernel"
expect 2 1 "--append and --initrd need --kernel FILE" -- run --append "console=ttyS0"
expect 2 1 "--mem 4G: a multiple of 2M from 4M to 3G" -- run --mem 4G
expect 2 1 "--mem 2T: a multiple of 2M from 4M to 1T for a kernel" -- run --kernel "$info_kernel" --mem 2T
expect 2 1 "--vps 256: a kernel takes 1 to 255" -- run --kernel "$info_kernel" --vps 256
expect 1 1 "/nonexistent/initrd: No such file" -- run --kernel "$info_kernel" --initrd /nonexistent/initrd
expect 1 1 "the kernel cannot be loaded: neither a multiboot kernel .* nor a Linux bzImage" -- run --kernel "$tmp/bad"
head -c 4200 "$info_kernel" >"$tmp/cut_kernel"
expect 1 1 "the kernel cannot be loaded: truncated: segment" -- run --kernel "$tmp/cut_kernel"
head -c $((3 << 20)) /dev/zero >"$tmp/big_initrd"
expect 1 1 "the initrd \(module 0\) .* does not fit in guest RAM \(4 MiB" -- run --kernel "$info_kernel" --mem 4M --initrd "$tmp/big_initrd"
# A bzImage of boot protocol 2.05: its setup header and nothing more.
head -c 8192 /dev/zero >"$tmp/old_bzimage"
printf '\125\252' | dd of="$tmp/old_bzimage" bs=1 seek=$((0x1fe)) conv=notrunc status=none
printf 'HdrS\005\002' | dd of="$tmp/old_bzimage" bs=1 seek=$((0x202)) conv=notrunc status=none
expect 1 1 "Linux boot protocol 2.05: 2.06 or later is needed" -- run --kernel "$tmp/old_bzimage"

# keygen: a pair, its key printed, the secret private, no silent overwrite.
expect 0 0 "--out PREFIX" -- keygen --help
expect 0 0 "^[^[:space:]]{40}$" -- keygen --out "$tmp/vm"
if [ "$(cat "$tmp/vm.pub")" != "$(cat "$tmp/out")" ] || [ "$(stat -c %a "$tmp/vm.key")" != 600 ]; then
    echo "FAIL: keygen: the printed key is not vm.pub's, or vm.key is not mode 600"
    fails=$((fails + 1))
fi
expect 1 1 "vm.key: File exists \(--force replaces it\)" -- keygen --out "$tmp/vm"
expect 0 0 "^[^[:space:]]{40}$" -- keygen --out "$tmp/vm" --force
expect 2 1 "unknown option '--bogus'" -- keygen --bogus
expect 1 1 "/nonexistent/dir/k.key: No such file" -- keygen --out /nonexistent/dir/k

# devhost: its own errors (a run with one is checked with KVM below).
expect 0 0 "--vm ENDPOINT" -- devhost --help
expect 2 1 "--vm and --device are needed" -- devhost --vm ipc:///nowhere
mkdir -m 755 "$tmp/open"
expect 1 1 "not a folder only this user can enter" -- devhost --vm ipc:///x --dir "$tmp/open" --device serial
expect 2 1 "--device nic: not a device kind" -- devhost --device nic
expect 2 1 "--device host=ipc: not an option of a serial here" -- devhost --device serial,host=ipc
expect 2 1 "--device: serial: named twice" -- devhost --device serial --device serial,required
expect 2 1 "--vm: an ipc:// or tcp:// endpoint" -- devhost --vm inproc://x --device serial
expect 2 1 "ipc:// takes --dir" -- devhost --vm ipc:///x --device serial --listen 127.0.0.1
expect 2 1 "tcp:// takes --listen, --key and --vm-key" -- devhost --vm tcp://127.0.0.1:1 --device serial --dir "$tmp"
expect 1 1 "/nonexistent.key: No such file" -- devhost --vm tcp://127.0.0.1:1 --device serial --listen 127.0.0.1 --key /nonexistent.key --vm-key "$tmp/vm.pub"

# run --device: the syntax, one transport per VM, and what host=remote needs.
expect 2 1 "--device udp: not a device kind" -- run --device udp
expect 2 1 "--device host=udp: not an option" -- run --device serial,host=udp
expect 2 1 "required is for a device in a device host" -- run --device serial,required
expect 2 1 "share one transport" -- run --device serial,host=ipc --device testdev,host=tcp
expect 2 1 "--wait-devices 0: seconds" -- run --wait-devices 0
expect 2 1 "virtio-blk needs file=PATH" -- run --device virtio-blk
expect 2 1 "irq=24: not an option of a virtio-rng" -- run --device virtio-rng,irq=24
expect 2 1 "readonly: not an option of a virtio-rng" -- run --device virtio-rng,readonly
expect 2 1 "virtio-rng0 and virtio-rng1 share a register block" -- run --device virtio-rng,base=0xd0001000 --device virtio-rng
expect 2 1 "virtio-rng5: at most 5 virtio devices" -- run --device virtio-rng --device virtio-rng --device virtio-rng --device virtio-rng --device virtio-rng --device virtio-rng
expect 1 1 "are for devices with host=remote" -- run --listen tcp://127.0.0.1:7000
expect 1 1 "vmm makes its own for host=tcp" -- run --device serial,host=tcp --key "$tmp/vm.key"
expect 1 1 "host=remote needs --listen" -- run --device serial,host=remote --key "$tmp/vm.key"
expect 1 1 "--key /nonexistent.key: No such file" -- run --device serial,host=remote --listen tcp://127.0.0.1:7000 --key /nonexistent.key --allow-key "$tmp/vm.pub"

# trace: the commands on a recorded trace (tests/traces/), then on files
# that are cut short, corrupt, foreign, of a newer version, empty or
# missing: one line and status 1 each, never a crash. No KVM needed.
demo=tests/traces/demo.trace
expect 0 0 "usage: vmm trace dump" -- trace --help
expect 2 1 "no command \"bogus\"" -- trace bogus
expect 2 1 "a trace file, please" -- trace dump
expect 2 1 "one trace file, please" -- trace dump "$demo" "$demo"
expect 0 0 "vm0/vp/0 -> vm0/dev/com1 device_request.read_io" -- trace dump "$demo"
expect 0 0 "testdev -> vm0/partition partition_request.request_msi" -- trace dump "$demo" --actor vm0/dev/testdev --kind request_msi
expect 0 0 "vm0/dev/com1 +device_request.read_io +[0-9]+ +[0-9.]+" -- trace stats "$demo"
expect 0 0 "replay of vm0/dev/com1 from .*: matched" -- trace replay "$demo" --actor vm0/dev/com1
expect 1 1 "a vp actor; a replay drives devices, the synic and the device registry" -- trace replay "$demo" --actor vm0/vp/0
expect 0 0 "replay of vm0/devices from .*: matched" -- trace replay "$demo" --actor vm0/devices
expect 1 1 "no actor nobody in it; it has vm0/vmm, vm0/partition" -- trace replay "$demo" --actor nobody
expect 2 1 "one --actor NAME" -- trace replay "$demo"
expect 0 0 "2 trace files|1 trace files, [0-9]+ tracks" -- trace export "$demo" -o "$tmp/demo.pftrace"
expect 2 1 "-o OUT, please" -- trace export "$demo"
expect 2 1 "--trace-actor and --trace-kind need --trace FILE" -- run --trace-actor vm0/dev
expect 1 1 "/nonexistent/dir/t: No such file" -- run --trace /nonexistent/dir/t
expect 1 1 "no message kind \"bogus\"" -- run --trace "$tmp/t" --trace-kind bogus

size=$(stat -c %s "$demo")
head -c $((size - 3)) "$demo" >"$tmp/cut"
# The record after the header, its length prefix made no varint.
cp "$demo" "$tmp/corrupt"
read -r b0 b1 b2 b3 < <(od -An -tu1 -N4 "$demo")
second=$((4 + (b0 & 127) + ((b1 & 127) << 7) + ((b2 & 127) << 14) + (b3 << 21)))
printf '\377\377\377\377' | dd of="$tmp/corrupt" bs=1 seek=$second conv=notrunc status=none
echo "#!/bin/sh" >"$tmp/foreign"
printf '\217\200\200\000\012\015\012\011vmm-trace\020\143' >"$tmp/future"
: >"$tmp/empty"
for verb in dump stats replay export; do
    extra=()
    [ $verb = replay ] && extra=(--actor vm0/dev/com1)
    [ $verb = export ] && extra=(-o "$tmp/bad.pftrace")
    expect 1 1 "cut short" -- trace $verb "$tmp/cut" "${extra[@]}"
    expect 1 1 "record at byte [0-9]+ " -- trace $verb "$tmp/corrupt" "${extra[@]}"
    expect 1 1 "not a vmm trace" -- trace $verb "$tmp/foreign" "${extra[@]}"
    expect 1 1 "a trace of version 99; this vmm reads version 1" -- trace $verb "$tmp/future" "${extra[@]}"
    expect 1 1 "empty: not a vmm trace" -- trace $verb "$tmp/empty" "${extra[@]}"
    expect 1 1 "/nonexistent/trace: No such file" -- trace $verb /nonexistent/trace "${extra[@]}"
done

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    expect 0 0 "MSI received on vector 0x40" -- run
    # A run recorded, with its device host's trace beside it, and replayed.
    expect 0 0 "MSI received on vector 0x40" -- run --trace "$tmp/run.trace" --device serial,host=ipc
    expect 0 0 "replay of vm0/dev/com1 .*: matched" -- trace replay "$tmp/run.trace.devhost0" --actor vm0/dev/com1
    expect 0 0 "matched" -- trace replay "$tmp/run.trace" --actor vm0/dev/testdev
    expect 0 0 "2 trace files" -- trace export "$tmp/run.trace" -o "$tmp/run.pftrace"
    expect 0 0 "MSI received on vector 0x40" -- run --vps 2 --devices apart
    # 256 VPs take more sockets than ZeroMQ's default 1023, and from a soft
    # open-file limit of 1024, which vmm raises to the hard one.
    expect 0 0 "MSI received on vector 0x40" -- run --vps 256 --mem 256M
    if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 8192 ]; then
        if (ulimit -Sn 1024 && "$vmm" run --vps 256 --mem 256M >"$tmp/out" 2>"$tmp/err") &&
            ! [ -s "$tmp/err" ]; then
            echo "ok: 256 VPs from a soft open-file limit of 1024"
        else
            echo "FAIL: 256 VPs from a soft open-file limit of 1024:"
            head -5 "$tmp/err"
            fails=$((fails + 1))
        fi
    fi
    # A halt report that cannot reach vmm run ends it with an error within
    # a second, where it used to wait for ever. With more VPs, another
    # reports the power off, which ends the run as it should.
    for case in "1 vm0/vp/0 1" "4 vm0/vp/0 0" "4 vm0/vp/3 0"; do
        read -r vps from want <<<"$case"
        if VMM_TEST_DROP="$from>vm0/vmm" timeout 20 "$vmm" run --vps "$vps" \
            >"$tmp/out" 2>"$tmp/err"; then
            got=0
        else
            got=$?
        fi
        # (With 4 VPs, vmm run may end before the VP dropped halts at all.)
        if [ "$got" = "$want" ] && { [ "$want" = 0 ] || {
            grep -q "$from: cannot report a halt to vm0/vmm" "$tmp/err" &&
                grep -q "^vmm run: 1 event to vm0/vmm could not be delivered" "$tmp/err"; }; }; then
            echo "ok: $vps VPs, a halt report from $from lost: vmm run ends with $want"
        else
            echo "FAIL: $vps VPs, a halt report from $from lost: vmm run ended with $got" \
                "(124: killed), want $want:"
            cat "$tmp/err"
            fails=$((fails + 1))
        fi
    done
    VMM_TEST_DROP=x expect 1 1 "VMM_TEST_DROP 'x': FROM>TO pairs" -- run
    expect 0 0 "" -- run --serial "$tmp/com1" --mem 16M # nothing on stdout
    if ! grep -q "Hello from the demo guest on vp 0" "$tmp/com1"; then
        echo "FAIL: --serial FILE: the greeting is not in the file"
        fails=$((fails + 1))
    fi
    expect 11 1 "exit status 11" -- run --guest "$exit_guest"
    # A multiboot kernel written for QEMU: its output, and the status
    # isa-debug-exit gives it ((0 << 1) | 1).
    expect 1 1 "cmdline=\[$info_kernel console=ttyS0\]" -- run --kernel "$info_kernel" --append console=ttyS0
    # Virtio devices are on the kernel's command line, as Firecracker puts them.
    expect 1 1 "cmdline=\[$info_kernel console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6\]" -- run --kernel "$info_kernel" --append console=ttyS0 --device virtio-rng --device virtio-console,file=$tmp/con
    expect 1 -1 "multiboot kernel \(ELF32\), header at 0x1000" -- run --kernel "$info_kernel" --verbose
    if ! grep -q "guest CPUID: KVM's" "$tmp/err"; then
        echo "FAIL: --verbose: no word of the guest's CPUID"
        fails=$((fails + 1))
    fi
    # COM1 and the MSI's test device in a device host, another process
    # over ipc://, or over tcp:// with CURVE: the same output. The private
    # folders vmm makes for them (in $TMPDIR) must be gone afterwards.
    export TMPDIR="$tmp/folders"
    mkdir "$TMPDIR"
    for host in ipc tcp; do
        expect 0 0 "Hello from the demo guest on vp 0" -- run --device serial,host=$host \
            --device testdev,host=$host,required
        if ! grep -q "^MSI received on vector 0x40$" "$tmp/out"; then
            echo "FAIL: --device ...,host=$host: the second line is missing"
            fails=$((fails + 1))
        fi
    done
    # A device host killed in the middle of the run: vmm starts another,
    # which registers COM1 again and goes on where the first stopped; the
    # guest's lines come out once each, to the last.
    "$vmm" run --guest "$lines_guest" --device serial,host=ipc >"$tmp/lines" 2>"$tmp/lines.err" &
    run_pid=$!
    for _ in $(seq 100); do
        [ "$(wc -l <"$tmp/lines")" -ge 10 ] && break
        sleep 0.05
    done
    pkill -KILL -P "$run_pid" -f "vmm devhost"
    for _ in $(seq 450); do
        kill -0 "$run_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$run_pid" 2>/dev/null; then
        echo "vmm run: still running after 45 s: killed" >>"$tmp/lines.err"
        kill -KILL "$run_pid"
    fi
    wait "$run_pid"
    got=$?
    # All 300 lines once, in order, but for one character the kill may
    # lose (tests/testing/left_out.awk).
    for i in $(seq 0 299); do
        echo "line $i"
    done >"$tmp/lines.want"
    if [ "$got" -ne 0 ] ||
        ! grep -q "the device host died (killed by signal 9); started another" "$tmp/lines.err" ||
        ! awk -v most=1 -f "$left_out" "$tmp/lines.want" "$tmp/lines" >"$tmp/lines.verdict"; then
        echo "FAIL: a killed device host: status $got, $(cat "$tmp/lines.verdict" 2>/dev/null), stderr:"
        cat "$tmp/lines.err"
        fails=$((fails + 1))
    else
        echo "ok: a killed device host was started again: $(head -1 "$tmp/lines.verdict")"
    fi
    if [ -n "$(ls -A "$TMPDIR")" ]; then
        echo "FAIL: a private folder was left behind: $(ls "$TMPDIR")"
        fails=$((fails + 1))
    fi
    unset TMPDIR
else
    echo "SKIP: /dev/kvm is absent or not usable here: the runs are not checked"
fi

# No KVM at all: /dev hidden by an empty tmpfs in a private mount namespace.
if unshare -m true 2>/dev/null; then
    unshare -m sh -c "mount -t tmpfs none /dev && exec '$vmm' run" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne 1 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] ||
        ! grep -q "KVM is not available: /dev/kvm" "$tmp/err"; then
        echo "FAIL: without /dev/kvm: status $got, stderr:"
        cat "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok: without /dev/kvm: $(cat "$tmp/err")"
    fi
else
    echo "SKIP: no mount namespace here: the missing-KVM error is not checked"
fi

if [ "$fails" -ne 0 ]; then
    echo "FAIL: $fails checks"
    exit 1
fi
echo "PASS"
