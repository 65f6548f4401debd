#!/usr/bin/env bash
# COM1's device host killed KILLS times in a row (SIGKILL) while the guest
# (tests/guests/stream_lines) streams lines through it: vmm run starts
# another each time, and the lines come out in order, none twice, to the
# last the guest says it printed; at most one character a kill is left
# out; each new host carries on with its predecessor's registers (the
# scratch register the guest wrote once). Each host is killed once it has
# lived 1.2 s (one that lived a second starts vmm's count of deaths in a
# row again) and lines have moved through it. Skips without a usable
# /dev/kvm.
set -u
vmm=$1
guest=$2
left_out=$3
kills=${4:-3}
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here"
    exit 0
fi
tmp=$(mktemp -d -p /tmp)
chmod 700 "$tmp"
mkdir -m 700 "$tmp/hosts" "$tmp/p"
run_pid=
trap '[ -n "$run_pid" ] && kill "$run_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*"
    echo "--- the lines, as runs of consecutive numbers:"
    awk '/^line [0-9]+$/ { if (seen && $2 == last + 1) { last = $2; next }
                            if (seen) printf "%d-%d ", first, last
                            first = last = $2; seen = 1; next }
         { if (seen) printf "%d-%d ", first, last; seen = 0; printf "[%s] ", $0 }
         END { if (seen) printf "%d-%d", first, last; print "" }' "$tmp/out"
    echo "--- stderr of vmm run (log level info):"
    tail -60 "$tmp/err"
    exit 1
}
lines() { grep -c '^line ' "$tmp/out"; }
host() { pgrep -f "vmm devhost --vm ipc://$tmp/hosts" | head -1; }

c="ipc://$tmp/p/c"
TMPDIR="$tmp/hosts" VMM_LOG=info "$vmm" run --guest "$guest" --device serial,host=ipc --control "$c" \
    >"$tmp/out" 2>"$tmp/err" </dev/null &
run_pid=$!
# The guest prints a character at a time: its first line is whole once
# the second begins (a part of it once named a wrong address to write).
for _ in $(seq 100); do
    grep -q "^line " "$tmp/out" && break
    sleep 0.1
done
quit=$(sed -nE '1s/^stream: quit at (0x[0-9a-f]+)$/\1/p' "$tmp/out")
[ -n "$quit" ] || fail "the guest did not start"

start=$(date +%s)
for k in $(seq "$kills"); do
    pid=$(host)
    [ -n "$pid" ] || fail "kill $k: no device host"
    before=$(lines)
    # It serves (lines move) and has lived long enough.
    for _ in $(seq 200); do
        [ "$(lines)" -ge $((before + 10)) ] && break
        sleep 0.05
    done
    [ "$(lines)" -ge $((before + 10)) ] || fail "kill $k: no lines through host $pid"
    sleep 1.2
    kill -KILL "$pid"
    for _ in $(seq 200); do
        new=$(host)
        [ -n "$new" ] && [ "$new" != "$pid" ] && break
        sleep 0.05
    done
    [ -n "$new" ] && [ "$new" != "$pid" ] || fail "kill $k: no new host after $pid"
done
"$vmm" ctl "$c" mem write "$quit" "01 00 00 00" || fail "the quit write"
for _ in $(seq 300); do
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$run_pid" 2>/dev/null; then
    echo "--- vmm run still runs 30 s after the quit write; the quit word holds:"
    "$vmm" ctl --timeout 5 "$c" mem read "$quit" 4 2>&1
    for a in vm0/vp/0 vm0/partition vm0/dev/com1; do
        echo "--- $a:"
        "$vmm" ctl --timeout 5 "$c" inspect "$a" 2>&1 | head -80
    done
    fail "vmm run did not end after the quit write"
fi
wait "$run_pid"
status=$?
run_pid=
[ "$status" -eq 0 ] || fail "vmm run ended with $status"
# The guest's count ends the output; a line cut short by a kill may run
# into it.
last=$(tail -1 "$tmp/out" | sed -nE 's/.*(stream: [0-9]+ lines, scratch 0x[0-9a-f]+)$/\1/p')
n=$(echo "$last" | sed -nE 's/^stream: ([0-9]+) .*/\1/p')
[ -n "$n" ] || fail "the guest's last line is missing: $(tail -2 "$tmp/out")"
restarts=$(grep -c "the device host died (killed by signal 9); started another" "$tmp/err")
[ "$restarts" -eq "$kills" ] || fail "$restarts restarts for $kills kills"
restored=$(grep -c "vm0/dev/com1: restored the state it kept before a restart" "$tmp/err")
[ "$restored" -eq "$kills" ] || fail "$restored of $kills hosts restored COM1's kept state"
[ "$last" = "stream: $n lines, scratch 0x5a" ] ||
    fail "COM1's scratch register did not survive its hosts: $last"
# What COM1 wrote after the guest's first line is what the guest printed,
# but for at most one character a kill (tests/testing/left_out.awk; the
# guest reads the line status before each character, so each is a frame).
for i in $(seq 0 $((n - 1))); do
    echo "line $i"
done >"$tmp/want"
echo "stream: $n lines, scratch 0x5a" >>"$tmp/want"
tail -n +2 "$tmp/out" >"$tmp/got"
awk -v most="$kills" -f "$left_out" "$tmp/want" "$tmp/got" >"$tmp/verdict"
status=$?
cat "$tmp/verdict"
[ "$status" -eq 0 ] || fail "characters out of order, repeated, or lost beyond one a kill"
echo "PASS: $kills kills in $(($(date +%s) - start)) s: $n lines, in order, none twice, $(sed -nE "s/.* ([0-9]+) left out.*/\1/p" "$tmp/verdict") characters left out"
