#!/usr/bin/env bash
# vmm ctl against a running vmm run (tests/guests/ctl_count): inspect,
# pause and resume (the guest's counter stands still, then moves), regs,
# mem, msi, stats, reset, poweroff, the endpoint over tcp:// with CURVE, and
# every error as one line with a non-zero status. The runs skip without a
# usable /dev/kvm.
set -u
vmm=$1
guest=$2
hv_guest=$3
ticks_guest=$4
ticks_disk=$5
ticks_kernel=$6
fails=0
tmp=$(mktemp -d -p /tmp) # short: sockets go below it
chmod 700 "$tmp"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# expect STATUS LINES PATTERN -- ARGS: runs vmm ARGS, checks its status,
# that stderr has exactly LINES lines (-1: any), and that stdout and stderr
# together match PATTERN (empty: that both are empty).
expect() {
    local status=$1 lines=$2 pattern=$3
    shift 4
    "$vmm" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local got=$? n
    n=$(wc -l <"$tmp/err")
    local matched=true
    if [ -z "$pattern" ]; then
        [ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] || matched=false
    else
        cat "$tmp/out" "$tmp/err" | grep -Eq -- "$pattern" || matched=false
    fi
    if [ "$got" -ne "$status" ] || { [ "$lines" -ge 0 ] && [ "$n" -ne "$lines" ]; } ||
        ! $matched; then
        fail "vmm $*: status $got (want $status), $n stderr lines (want $lines), output" \
            "should match /$pattern/:"
        cat "$tmp/out" "$tmp/err"
    else
        ok "vmm $*"
    fi
}

# ---- Without a VM -------------------------------------------------------------

expect 0 0 "post-message +VP SINT TYPE HEX" -- ctl --help
expect 0 0 "usage: vmm ctl ENDPOINT regs VP" -- ctl ipc:///nowhere regs --help
expect 2 1 "ENDPOINT COMMAND needed" -- ctl
expect 2 1 "unknown command 'bogus'" -- ctl "ipc://$tmp/c" bogus
expect 2 1 "unknown option '--bogus'" -- ctl --bogus "ipc://$tmp/c" inspect
expect 2 1 "--timeout 0: seconds" -- ctl --timeout 0 "ipc://$tmp/c" inspect
expect 1 1 "http://x: an ipc:// or tcp:// endpoint" -- ctl http://x inspect
expect 1 1 "no VM listens at ipc://$tmp/c: No such file" -- ctl "ipc://$tmp/c" inspect
expect 1 1 "needs --key and --server-key" -- ctl tcp://127.0.0.1:1 inspect
mkdir -m 755 "$tmp/open"
expect 1 1 "may be entered by others .*mode 0755" -- run --control "ipc://$tmp/open/c"
expect 1 1 "--control bogus: ipc://PATH, tcp://ADDRESS:PORT or none" -- run --control bogus
expect 1 1 "--control-key is for a tcp:// --control" -- run --control-key "$tmp/x.pub"
expect 1 1 "needs the VM's --key and at least one --control-key" -- run --control tcp://127.0.0.1:1

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here: the runs are not checked"
    [ "$fails" -eq 0 ] || exit 1
    exit 0
fi

# ---- A running VM ---------------------------------------------------------------

# start NAME ARGS: runs the ctl_count guest in the background, its COM1 in
# $tmp/NAME.serial, its status in $tmp/NAME.status once it ends; waits
# (10 s at most) until the guest has said where its counters lie.
start() {
    local name=$1
    shift
    ("$vmm" run --guest "$guest" --serial "$tmp/$name.serial" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
        echo $? >"$tmp/$name.status") &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "^ctl: counter" "$tmp/$name.serial" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$name: the guest did not start: $(cat "$tmp/$name.err")"
    return 1
}

# ended NAME STATUS: waits (10 s at most) for vmm run to end with STATUS.
ended() {
    for _ in $(seq 100); do
        [ -s "$tmp/$1.status" ] && break
        sleep 0.1
    done
    local got
    got=$(cat "$tmp/$1.status" 2>/dev/null)
    if [ "$got" = "$2" ]; then
        ok "$1: vmm run ended with $2"
    else
        fail "$1: vmm run ended with '${got:-nothing within 10 s}', want $2: $(cat "$tmp/$1.err")"
    fi
}

# The addresses the guest printed: counter, quit, msis.
addresses() {
    sed -nE 's/^ctl: counter (0x[0-9a-f]+) quit (0x[0-9a-f]+) msis (0x[0-9a-f]+).*/\1 \2 \3/p' \
        "$tmp/$1.serial" | head -1
}

# u64 ENDPOINT GPA: the little-endian 64-bit number at GPA, in decimal.
u64() {
    local line hex="" i
    line=$("$vmm" ctl "$1" mem read "$2" 8) || return 1
    read -ra b <<<"${line#*:}"
    for i in 7 6 5 4 3 2 1 0; do hex+=${b[$i]}; done
    echo $((16#$hex))
}

# msi ENDPOINT MSIS N: sends one MSI at vector 0x40 and waits up to 5 s
# until the guest's count at MSIS is N. One at a time: a second MSI to a
# vector still pending in the local APIC merges with it, as on hardware.
msi() {
    local n i
    "$vmm" ctl "$1" msi 0xfee00000 0x40 || return 1
    for i in $(seq 50); do
        n=$(u64 "$1" "$2")
        [ $((n & 0xffffffff)) -eq "$3" ] && return 0
        sleep 0.1
    done
    echo "the guest counted $((n & 0xffffffff)) MSIs, want $3"
    return 1
}

c="ipc://$tmp/p/c"
mkdir -m 700 "$tmp/p"
if start one --control "$c"; then
    read -r counter quit msis <<<"$(addresses one)"

    expect 0 0 "vm0/vp/0 \(vp\)" -- ctl "$c" inspect
    for want in "vm0/partition (partition)" "vm0/dev/com1 (device)" "vm0/control (control)"; do
        grep -qF "$want" "$tmp/out" && ok "inspect lists $want" || fail "inspect lacks $want"
    done
    "$vmm" ctl "$c" inspect vm0/vp/0 --json >"$tmp/json" 2>&1
    if /usr/bin/python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); assert t[0]["name"] == "vm0/vp/0" and t[0]["value"] == "vp", t' "$tmp/json"; then
        ok "inspect --json is JSON"
    else
        fail "inspect --json: $(cat "$tmp/json")"
    fi

    # Running: registers are refused; the counter moves.
    expect 1 1 "vm0/vp/0: vp 0 is running" -- ctl "$c" regs 0
    a=$(u64 "$c" "$counter")
    sleep 0.3
    b=$(u64 "$c" "$counter")
    [ "$b" -gt "$a" ] && ok "the counter moves ($a, $b)" || fail "the counter stands at $a, $b"

    # Paused: the counter stands still, registers can be read and set.
    expect 0 0 "" -- ctl "$c" pause
    a=$(u64 "$c" "$counter")
    sleep 0.3
    b=$(u64 "$c" "$counter")
    [ "$a" = "$b" ] && ok "paused, the counter stands at $a" || fail "paused, it moved: $a, $b"
    expect 0 0 "rip +0x00000000001" -- ctl "$c" regs 0
    expect 0 0 "" -- ctl "$c" regs 0 r15=0x5eed
    expect 0 0 "r15 +0x0000000000005eed" -- ctl "$c" regs 0
    expect 2 1 "NAME=VALUE, NAME one of" -- ctl "$c" regs 0 r99=1
    expect 1 1 "vp 1: the VM has 1 VPs" -- ctl "$c" pause 1
    expect 0 0 "" -- ctl "$c" resume
    for _ in $(seq 50); do
        b=$(u64 "$c" "$counter")
        [ "$b" -gt "$a" ] && break
        sleep 0.1
    done
    [ "$b" -gt "$a" ] && ok "resumed, the counter moves on ($a, $b)" || fail "resumed, it stands"

    # MSIs reach the guest; errors are one line.
    msi "$c" "$msis" 1 && msi "$c" "$msis" 2 && msi "$c" "$msis" 3 && ok "3 MSIs taken" ||
        fail "MSIs"
    expect 2 1 "DATA '0x100000000': a number from 0 to 4294967295" -- ctl "$c" msi 0xfee00000 0x100000000
    expect 1 1 "vm0/synic" -- ctl "$c" post-message 0 2 1 00
    expect 1 1 "vm0/partition: .*" -- ctl "$c" mem read 0xfffffff000 8
    expect 2 1 "bytes as pairs of hex digits" -- ctl "$c" mem write "$quit" 1
    expect 0 0 "vm0/vp/0 exits: .*io=" -- ctl "$c" stats
    expect 0 0 "rx/s" -- ctl "$c" stats --watch 0.2 --count 2
    [ "$(grep -c 'rx/s' "$tmp/out")" -eq 2 ] && ok "stats --watch: two periods" ||
        fail "stats --watch --count 2: $(cat "$tmp/out")"

    # The guest ends when the operator writes its status.
    expect 0 0 "" -- ctl "$c" mem write "$quit" "15 00 00 00"
    ended one 43
    grep -q "ctl: quit 21 after 3 MSIs" "$tmp/one.serial" && ok "the guest saw quit and 3 MSIs" ||
        fail "the guest's last words: $(tail -1 "$tmp/one.serial")"
fi

# Reset starts the guest again; poweroff ends it with a status, paused too.
c="ipc://$tmp/p/c2"
if start two --control "$c"; then
    expect 0 0 "" -- ctl "$c" reset
    for _ in $(seq 100); do
        [ "$(grep -c '^ctl: counter' "$tmp/two.serial")" -ge 2 ] && break
        sleep 0.1
    done
    [ "$(grep -c '^ctl: counter' "$tmp/two.serial")" -eq 2 ] && ok "reset: the guest started again" ||
        fail "reset: $(cat "$tmp/two.serial")"
    expect 0 0 "" -- ctl "$c" pause
    expect 0 0 "" -- ctl "$c" poweroff 7
    ended two 7
fi

# A device host that does not end on SIGTERM (stopped here) is killed after
# 5 s, and vmm run still ends: its private folder is in $tmp/stuck.
c="ipc://$tmp/p/c3"
mkdir -m 700 "$tmp/stuck"
if TMPDIR="$tmp/stuck" start stuck --control "$c" --device testdev,host=ipc; then
    # The private folder of the device host's socket and keys: the user's alone.
    private=$(ls -d "$tmp/stuck"/vmm-* 2>/dev/null | head -1)
    [ -n "$private" ] && [ "$(stat -c %a "$private")" = 700 ] &&
        ok "stuck: the private folder is the user's alone" ||
        fail "stuck: the private folder: '${private}' $(stat -c %a "$private" 2>&1)"
    pkill -STOP -f "vmm devhost --vm ipc://$tmp/stuck" || fail "stuck: no device host to stop"
    expect 0 0 "" -- ctl "$c" poweroff 0
    ended stuck 0
    grep -q "the device host (pid [0-9]*) did not stop within 5 s: killed" "$tmp/stuck.err" &&
        ok "stuck: the device host was killed" || fail "stuck: $(cat "$tmp/stuck.err")"
fi

# A snapshot mid-run, continued in a new process: guest memory (the MSIs
# the guest counted), its registers and devices go on from there.
c="ipc://$tmp/p/c4"
if start snap --control "$c"; then
    read -r counter quit msis <<<"$(addresses snap)"
    msi "$c" "$msis" 1 && msi "$c" "$msis" 2 || fail "snap: MSIs"
    expect 0 0 "" -- ctl "$c" snapshot "$tmp/snap" --paused
    at=$(u64 "$c" "$counter")
    [ -s "$tmp/snap/snapshot.pb" ] && [ -s "$tmp/snap/ram" ] && ok "snapshot: manifest and RAM" ||
        fail "snapshot: $(ls -la "$tmp/snap")"
    [ "$(stat -c %a "$tmp/snap")" = 700 ] && ok "the snapshot's folder is the user's alone" ||
        fail "the snapshot's folder has mode $(stat -c %a "$tmp/snap")"
    [ "$(($(stat -c %b "$tmp/snap/ram") * 512))" -lt $((16 << 20)) ] && ok "RAM is sparse" ||
        fail "RAM takes $(($(stat -c %b "$tmp/snap/ram") * 512)) bytes on disk"
    expect 1 1 "snap: File exists" -- ctl "$c" snapshot "$tmp/snap"
    expect 0 0 "" -- ctl "$c" poweroff 0
    ended snap 0

    ("$vmm" run --restore "$tmp/snap" --serial "$tmp/restored.serial" --control "ipc://$tmp/p/c5" \
        >"$tmp/restored.out" 2>"$tmp/restored.err" </dev/null
        echo $? >"$tmp/restored.status") &
    pids+=($!)
    c="ipc://$tmp/p/c5"
    for _ in $(seq 100); do
        [ -S "$tmp/p/c5" ] && break
        sleep 0.1
    done
    now=$(u64 "$c" "$counter")
    [ "$now" -ge "$at" ] && ok "restored: the counter goes on from $at ($now)" ||
        fail "restored: the counter is $now, it was $at"
    msi "$c" "$msis" 3 || fail "MSI after the restore"
    expect 0 0 "" -- ctl "$c" mem write "$quit" "09 00 00 00"
    ended restored 19
    grep -q "ctl: quit 9 after 3 MSIs" "$tmp/restored.serial" &&
        ok "the restored guest had the 2 MSIs before and took a third" ||
        fail "the restored guest said: $(cat "$tmp/restored.serial") $(cat "$tmp/restored.err")"
    ! grep -q "^ctl: counter" "$tmp/restored.serial" && ok "it did not start again" ||
        fail "the guest started again: $(cat "$tmp/restored.serial")"
fi
# ticks_across NAME OUT ARGS: runs a ticks guest as ARGS say (--hyperv),
# its COM1 (a kernel's ends lines with CR LF) in $tmp/NAME1.OUT (serial: --serial's file; out: stdout, where a
# device host's COM1 writes), snapshots it paused after 20 ticks and powers
# it off, continues the snapshot in a new process for 20 ticks and ends it.
# The two outputs, one after the other, must be every tick once, in order,
# the reference time never going back. Sets ticks_total.
ticks_across() {
    local name=$1 out=$2 quit last after n
    shift 2
    ("$vmm" run --hyperv --serial "$tmp/${name}1.serial" \
        --control "ipc://$tmp/p/${name}1" "$@" >"$tmp/${name}1.out" 2>"$tmp/${name}1.err" </dev/null
        echo $? >"$tmp/${name}1.status") &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "^tick 20 " "$tmp/${name}1.$out" 2>/dev/null && break
        sleep 0.1
    done
    quit=$(tr -d '\r' <"$tmp/${name}1.$out" | sed -nE 's/^ticks: quit (0x[0-9a-f]+)$/\1/p')
    expect 0 0 "" -- ctl "ipc://$tmp/p/${name}1" snapshot "$tmp/${name}snap" --paused
    expect 0 0 "" -- ctl "ipc://$tmp/p/${name}1" poweroff 0
    ended "${name}1" 0
    ("$vmm" run --restore "$tmp/${name}snap" --serial "$tmp/${name}2.serial" \
        --control "ipc://$tmp/p/${name}2" >"$tmp/${name}2.out" 2>"$tmp/${name}2.err" </dev/null
        echo $? >"$tmp/${name}2.status") &
    pids+=($!)
    last=$(grep -c "^tick " "$tmp/${name}1.$out")
    for _ in $(seq 100); do
        n=$(grep -c "^tick " "$tmp/${name}2.$out" 2>/dev/null)
        [ "${n:-0}" -ge 20 ] && break
        sleep 0.1
    done
    after=$(grep -c "^tick " "$tmp/${name}2.$out")
    [ "$after" -ge 20 ] && ok "$name: the continued guest printed $after ticks" ||
        fail "$name: the continued guest printed $after ticks: $(cat "$tmp/${name}2.err")"
    expect 0 0 "" -- ctl "ipc://$tmp/p/${name}2" mem write "$quit" "05 00 00 00"
    ended "${name}2" 11
    if cat "$tmp/${name}1.$out" "$tmp/${name}2.$out" | tr -d '\r' | awk '
        NR == 1 { if ($0 !~ /^ticks: quit/) bad = "the first line: " $0; next }
        $1 != "tick" || $2 != n || $4 < ref { bad = bad "line " NR ": " $0 " (want tick " n ", ref >= " ref ") "; exit }
        { n++; ref = $4 }
        END { if (bad) { print bad; exit 1 } print n }' >"$tmp/ticks.check"; then
        ticks_total=$(cat "$tmp/ticks.check")
        ok "$name: ticks once each and in order across the snapshot, the reference time" \
            "monotonic: $ticks_total ticks, $last before it"
    else
        ticks_total=0
        fail "$name: ticks across the snapshot: $(cat "$tmp/ticks.check")"
        tail -3 "$tmp/${name}1.$out"
        head -3 "$tmp/${name}2.$out"
    fi
}
ticks_across t serial --guest "$ticks_guest"
# The same booted from a multiboot kernel on the PC, VP 1 waiting for SIPI.
ticks_across k serial --kernel "$ticks_kernel" --vps 2
# The same with COM1 and a virtio-blk disk in a device host: the UART goes
# on mid-line, and the disk holds each tick's sector, written in order by
# the guest and by its continuation, whose virtqueue went on from the
# snapshot's.
truncate -s 16M "$tmp/disk"
ticks_across d out --guest "$ticks_disk" --device serial,host=ipc \
    --device "virtio-blk,host=ipc,file=$tmp/disk"
if python3 - "$tmp/disk" "$ticks_total" >"$tmp/disk.check" <<'PY'; then
import struct, sys
disk = open(sys.argv[1], "rb").read()
n = int(sys.argv[2])
bad = [k for k in range(min(n, 32768)) if disk[k * 512:(k + 1) * 512] != struct.pack("<I", k) * 128]
print(f"{min(n, 32768)} sectors" if n and not bad else f"of {n} ticks, sectors wrong: {bad[:8]}")
sys.exit(1 if bad or not n else 0)
PY
    ok "d: the disk holds every tick's sector: $(cat "$tmp/disk.check")"
else
    fail "d: the disk: $(cat "$tmp/disk.check")"
fi
expect 2 1 "--restore takes the machine from the snapshot" -- run --restore "$tmp/snap" --vps 2
expect 1 1 "--restore $tmp/none/snapshot.pb: No such file" -- run --restore "$tmp/none"
mkdir -m 700 "$tmp/bad" && head -c 100 "$tmp/snap/snapshot.pb" >"$tmp/bad/snapshot.pb"
expect 1 1 "not a snapshot's manifest" -- run --restore "$tmp/bad"

# A SynIC message posted to a VM with the Hyper-V interface.
c="ipc://$tmp/p/c3"
("$vmm" run --hyperv --guest "$hv_guest" --serial "$tmp/hv.serial" --control "$c" \
    >"$tmp/hv.out" 2>"$tmp/hv.err" </dev/null
    echo $? >"$tmp/hv.status") &
pids+=($!)
for _ in $(seq 100); do
    grep -q "^hv: ready" "$tmp/hv.serial" 2>/dev/null && break
    sleep 0.1
done
expect 2 1 "SINT '16': a number from 0 to 15" -- ctl "$c" post-message 0 16 1 00
expect 0 0 "" -- ctl "$c" post-message 0 2 0x1234 "41 42 43"
ended hv 7
grep -q "hv: message type 0x1234 size 3 first 0x41" "$tmp/hv.serial" &&
    ok "the guest took the message" || fail "the guest said: $(cat "$tmp/hv.serial")"

# The default endpoint, printed with --verbose, and tcp:// under CURVE.
"$vmm" keygen --out "$tmp/vm" >/dev/null && "$vmm" keygen --out "$tmp/op" >/dev/null &&
    "$vmm" keygen --out "$tmp/other" >/dev/null || fail "keygen"
if start three --verbose; then
    c=$(sed -nE 's/^vmm run: control endpoint (ipc:.*)$/\1/p' "$tmp/three.err")
    expect 0 0 "vm0/vp/0 \(vp\)" -- ctl "$c" inspect vm0/vp/0
    expect 0 0 "" -- ctl "$c" poweroff
    ended three 0
fi
if start four --verbose --control "tcp://127.0.0.1:*" --key "$tmp/vm.key" \
    --control-key "$tmp/op.pub"; then
    c=$(sed -nE 's/^vmm run: control endpoint (tcp:.*)$/\1/p' "$tmp/four.err")
    expect 0 0 "vm0/vp/0 \(vp\)" -- ctl --key "$tmp/op.key" --server-key "$tmp/vm.pub" "$c" inspect
    expect 1 1 "no answer from tcp://.* within 2 s" -- ctl --timeout 2 --key "$tmp/other.key" \
        --server-key "$tmp/vm.pub" "$c" inspect vm0/vp/0
    expect 0 0 "" -- ctl --key "$tmp/op.key" --server-key "$tmp/vm.pub" "$c" poweroff 3
    ended four 3
fi

[ "$fails" -eq 0 ] || exit 1
