#!/usr/bin/env bash
# Debian's gdb in batch mode against vmm run --gdb and tests/guests/gdb_target:
# a breakpoint by the symbol from the guest's ELF, a variable and an
# argument read, a register and memory written, a step, a watchpoint (gdb
# single-steps: data breakpoints never fire on this KVM), and the guest run
# to its exit. Then the protocol by hand
# against the spinning ctl_count guest: Ctrl-C stops it, the registers
# read, and after detaching the VM runs on without the debugger. Skips
# without a usable /dev/kvm or gdb.
set -u
vmm=$1
target=$2
spinner=$3
fails=0
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here"
    exit 0
fi
if ! command -v gdb >/dev/null; then
    echo "SKIP: no gdb (tools/setup installs it)"
    exit 0
fi
tmp=$(mktemp -d -p /tmp)
chmod 700 "$tmp"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

# start NAME GUEST ARGS: vmm run --gdb in the background; sets $where to
# where it waits (10 s at most).
start() {
    local name=$1 guest=$2
    shift 2
    ("$vmm" run --guest "$guest" --verbose --serial "$tmp/$name.serial" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
        echo $? >"$tmp/$name.status") &
    pids+=($!)
    where=""
    for _ in $(seq 100); do
        where=$(sed -nE 's/^vmm run: waiting for gdb at (.*)$/\1/p' "$tmp/$name.err")
        [ -n "$where" ] && return 0
        sleep 0.1
    done
    fail "$name: vmm run did not wait for gdb: $(cat "$tmp/$name.err")"
    return 1
}

ended() {
    for _ in $(seq 100); do
        [ -s "$tmp/$1.status" ] && break
        sleep 0.1
    done
    local got
    got=$(cat "$tmp/$1.status" 2>/dev/null)
    [ "$got" = "$2" ] && ok "$1: vmm run ended with $2" ||
        fail "$1: vmm run ended with '${got:-nothing within 10 s}', want $2: $(cat "$tmp/$1.err")"
}

expect_line() {
    grep -qF -- "$2" "$tmp/$1" && ok "$1 has '$2'" || fail "$1 lacks '$2'"
}

# ---- gdb itself -----------------------------------------------------------------

if start one "$target" --gdb tcp:127.0.0.1:0; then
    port=${where##*:}
    cat >"$tmp/script" <<EOF
set pagination off
target remote 127.0.0.1:$port
info threads
break gdb_target_add
continue
print gdb_total
print n
print/x \$rip
set var \$rdi = 5
stepi
print/x \$rip
delete
set can-use-hw-watchpoints 0
watch gdb_total
continue
delete
set var gdb_total = 90
continue
EOF
    timeout 120 gdb -batch -nx -x "$tmp/script" "$target" >"$tmp/gdb.log" 2>&1
    expect_line gdb.log 'Thread 1 (vp 0)'
    expect_line gdb.log 'Breakpoint 1, gdb_target_add (n=n@entry=1)'
    expect_line gdb.log '$1 = 0'
    expect_line gdb.log '$2 = 1'
    expect_line gdb.log '$3 = 0x100000'
    expect_line gdb.log '$4 = 0x100006'
    expect_line gdb.log 'Watchpoint 2: gdb_total'
    expect_line gdb.log 'New value = 5'
    expect_line gdb.log 'exited with code 0307'
    ended one 199
    grep -q "gdb: total 99" "$tmp/one.serial" && ok "the guest's total is 90 + 2 + 3 + 4" ||
        fail "the guest said: $(cat "$tmp/one.serial")"
    [ -s "$tmp/one.status" ] || cat "$tmp/gdb.log"
fi

# A unix socket, and two VPs: two threads, stopped together.
if start two "$target" --vps 2 --gdb "unix:$tmp/gdb.sock"; then
    [ "$(stat -c %a "$tmp/gdb.sock")" = 600 ] && ok "the socket is the user's alone" ||
        fail "the socket's mode is $(stat -c %a "$tmp/gdb.sock")"
    cat >"$tmp/script2" <<EOF
set pagination off
target remote $tmp/gdb.sock
break gdb_target_add
continue
info threads
thread 2
delete
continue
EOF
    timeout 60 gdb -batch -nx -x "$tmp/script2" "$target" >"$tmp/gdb2.log" 2>&1
    expect_line gdb2.log 'Thread 2 (vp 1)'
    expect_line gdb2.log '[Switching to thread 2 (Thread 2)]'
    expect_line gdb2.log 'exited with code 025'
    ended two 21
    grep -q 'exited with code 025' "$tmp/gdb2.log" || cat "$tmp/gdb2.log" "$tmp/two.err"
fi

# ---- The protocol by hand: Ctrl-C, registers, detach -----------------------------

if start three "$spinner" --gdb tcp:127.0.0.1:0 --control "ipc://$tmp/c"; then
    port=${where##*:}
    /usr/bin/python3 - "$port" >"$tmp/rsp.log" 2>&1 <<'EOF'
import socket, sys, time

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)

def packet(data):
    s.sendall(b"$%s#%02x" % (data, sum(data) % 256))

def reply():
    buf = b""
    while b"#" not in buf or len(buf) < buf.index(b"#") + 3:
        buf += s.recv(65536)
    body = buf[buf.index(b"$") + 1:buf.index(b"#")]
    assert int(buf[buf.index(b"#") + 1:][:2], 16) == sum(body) % 256, buf
    return body

packet(b"QStartNoAckMode")
assert reply() == b"OK"
packet(b"c")
time.sleep(0.5)
s.sendall(b"\x03")
stop = reply()
print("stop", stop.decode())
assert stop.startswith(b"T02"), stop
packet(b"g")
regs = reply()
print("g", len(regs))
assert len(regs) == 2 * 536, len(regs)
second = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
try:
    gone = second.recv(1) == b""
except OSError:
    gone = True
print("second refused", gone)
packet(b"D")
assert reply() == b"OK"
print("detached")
EOF
    cat "$tmp/rsp.log"
    expect_line rsp.log "stop T02thread:1;"
    expect_line rsp.log "g 1072"
    expect_line rsp.log "second refused True"
    expect_line rsp.log "detached"
    # Detached, the VM runs on: its counter moves, and it ends as asked.
    addr=$(sed -nE 's/^ctl: counter (0x[0-9a-f]+) quit (0x[0-9a-f]+).*/\2/p' "$tmp/three.serial")
    if [ -n "$addr" ]; then
        "$vmm" ctl "ipc://$tmp/c" mem write "$addr" "07 00 00 00" || fail "ctl mem write"
        ended three 15
    else
        fail "the spinner did not start: $(cat "$tmp/three.serial")"
    fi
fi

# Bad --gdb values are one line each.
"$vmm" run --gdb nowhere >"$tmp/bad" 2>&1
[ $? -eq 1 ] && grep -q "nowhere: tcp:HOST:PORT or unix:PATH" "$tmp/bad" && ok "--gdb nowhere" ||
    fail "--gdb nowhere: $(cat "$tmp/bad")"
[ "$fails" -eq 0 ]
