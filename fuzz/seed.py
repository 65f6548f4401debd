#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/NAME), once; libFuzzer grows them.

  wire:   every distinct envelope recorded in tests/traces/*.trace
  device: for each model, a first byte choosing it and a few accesses
  loader: the test guests and kernels given, stripped, after the byte that
          picks their loader (0: ELF64 guest, 1: kernel)
  gdb:    a few packets, and a long-mode walk's registers before memory
  partition: what the partition received in each trace, as senders' records
  replay: for each device, synic and registry in each trace, the header and
          that actor's first records: a trace of it alone

  fuzz/seed.py [GUEST_OR_KERNEL ...]    (run from the repository's root)
"""
import glob
import hashlib
import os
import struct
import subprocess
import sys
import tempfile


def varint(buf, at):
    value, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, at


def fields(buf):
    """(number, wire type, value) of a message's fields; bytes for type 2."""
    at = 0
    while at < len(buf):
        key, at = varint(buf, at)
        kind = key & 7
        if kind == 0:
            value, at = varint(buf, at)
        elif kind == 2:
            n, at = varint(buf, at)
            value, at = buf[at:at + n], at + n
        elif kind == 1:
            value, at = buf[at:at + 8], at + 8
        elif kind == 5:
            value, at = buf[at:at + 4], at + 4
        else:
            return
        yield key >> 3, kind, value


def records(path):
    """(whole record with its length, the Record's bytes) of a trace
    (trace-format.md), to its end or its first zero byte."""
    data = open(path, "rb").read()
    at = 0
    while at + 4 <= len(data) and data[at]:
        n, body = varint(data, at)
        yield data[at:body + n], data[body:body + n]
        at = body + n


def envelopes(path):
    """The envelopes of a trace's Message records."""
    for _, record in records(path):
        for number, kind, value in fields(record):
            if number == 3 and kind == 2:  # Record.message
                for inner, ikind, ivalue in fields(value):
                    if inner == 6 and ikind == 2:  # Message.envelope
                        yield ivalue


def prefix(path, limit):
    """A trace's first records, whole, up to limit bytes: a trace itself."""
    out = b""
    for whole, _ in records(path):
        if len(out) + len(whole) > limit:
            break
        out += whole
    return out


def replay_seeds(limit=12288):
    """A trace per replayable actor: the header, then the records of that
    actor (its Actor records, the messages it sent or took, nested calls
    to it, its inputs and outputs) while they fit in limit bytes."""
    seeds = []
    for trace in sorted(glob.glob("tests/traces/*.trace*")):
        recs = list(records(trace))
        names = []
        for _, rec in recs:
            for number, _, value in fields(rec):
                if number == 2:  # Record.actor
                    actor = {n: v for n, _, v in fields(value)}
                    if actor.get(2) in (b"device", b"synic", b"registry") and \
                            actor.get(1) not in names:
                        names.append(actor.get(1))
        for name in names[:6]:
            out = bytearray(recs[0][0])
            for whole, rec in recs[1:]:
                mine = False
                for number, _, value in fields(rec):
                    inner = {n: v for n, _, v in fields(value)}
                    if number == 2:
                        mine = inner.get(1) == name
                    elif number == 3:
                        env = {n: v for n, _, v in fields(inner.get(6, b""))}
                        mine = name in (inner.get(3), env.get(1), env.get(2))
                    elif number in (4, 5):
                        mine = inner.get(2) == name
                if mine:
                    if len(out) + len(whole) > limit:
                        break
                    out += whole
            seeds.append(bytes(out))
    return seeds


def put_varint(v):
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v >> 7 else 0))
        v >>= 7
        if not v:
            return bytes(out)


def pb(number, payload):
    """A length-delimited field: a message, a string or bytes."""
    if isinstance(payload, str):
        payload = payload.encode()
    return put_varint(number << 3 | 2) + put_varint(len(payload)) + payload


def envelope(receiver, body_field, body, request_id=1):
    """An operator's envelope (envelope.proto: sender 1, receiver 2,
    request_id 3, the body's field)."""
    head = pb(1, "op") + pb(2, receiver)
    if request_id:
        head += put_varint(3 << 3) + put_varint(request_id)
    return head + pb(body_field, body)


def control_seeds():
    """What vmm ctl sends (control.proto, vp.proto, rt.proto numbers)."""
    control = [pb(1, b""), pb(1, put_varint(1 << 3) + put_varint(1)), pb(2, b""), pb(3, b""),
               pb(4, put_varint(1 << 3) + put_varint(7)), pb(5, b""), pb(6, pb(1, "/nonexistent/x"))]
    seeds = [envelope("vm0/control", 70, body) for body in control]
    seeds += [envelope("vm0/vp/0", 30, pb(2, b"")),            # Stop
              envelope("vm0/vp/0", 30, pb(2, b""), request_id=0),
              envelope("vm0/vp/1", 30, pb(1, b"")),            # Run: refused
              envelope("vm0/partition", 15, b""),              # Inspect
              envelope("vm0/partition", 12, b""),              # Terminate: refused
              envelope("vm1/vp/0", 15, b""),                   # another VM's
              envelope("vm0/control", 13, pb(1, b"hello")),    # Ping
              envelope("vm0/dev/com1", 50, b"")]
    return seeds


def registry_seeds():
    """Steps for registry_fuzz.c: [op][actor][n][n bytes], op 0 adding a
    RegisterDevice (devices.proto: name 1, ports 2 {start 1, len 2}, mmio 3
    {start 1, end 2}, irq_lines 4, msi_count 5, required 7)."""
    def num(field, v):
        return put_varint(field << 3) + put_varint(v)

    def add(actor, reg):
        return bytes([0, actor, len(reg)]) + reg

    com1 = pb(1, "com1") + pb(2, num(1, 0x3F8) + num(2, 8)) + num(4, 4) + num(7, 1)
    disk = pb(1, "disk") + pb(3, num(1, 0xD0000000) + num(2, 0xD0001000)) + num(5, 2)
    clash = pb(1, "com1b") + pb(2, num(1, 0x3FC) + num(2, 8)) + num(7, 1)
    partial = pb(1, "com2") + pb(2, num(1, 0x3FC) + num(2, 8)) + pb(2, num(1, 0x2F8) + num(2, 8))
    steps = add(0, com1) + add(1, disk) + add(2, clash) + add(3, partial)
    return [steps + bytes([3, 0, 9]) + (0x3F8).to_bytes(8, "little") + b"\x01",
            steps + bytes([1, 0, 1, 0]) + bytes([2, 1, 1, 1]) + add(2, clash)]


def synic_seeds():
    """Programs for synic_fuzz.c: [op][vp][which][8-byte value][n][n bytes]
    (op 0 WRMSR and 1 RDMSR of s_msrs[which], 2 a hypercall, 3 guest RAM
    at page which, 4 a post to SINT which, 5 a guest port)."""
    def step(op, vp, which, value, data=b""):
        return bytes([op, vp, which]) + value.to_bytes(8, "little") + bytes([len(data)]) + data

    enable = b"".join(step(0, vp, w, v) for vp in (0, 1) for w, v in
                      ((0, 1), (8, 0x10000 + 0x2000 * vp + 1), (7, 0x11000 + 0x2000 * vp + 1),
                       (5, 1), (11, 0x50)))
    # HvCallPostMessage (0x5c): connection 1, type 1, 4 bytes, at 0x20000.
    post_input = (1).to_bytes(4, "little") + bytes(4) + (1).to_bytes(4, "little") + \
        (4).to_bytes(4, "little") + b"ping"
    hypercall = step(3, 0, 0x20, 0, post_input) + step(2, 0, 0, 0x5C, (0x20000).to_bytes(8, "little"))
    posts = step(4, 1, 2, 1, b"hello") + step(1, 1, 9, 0) + step(0, 1, 9, 0)
    ports = step(5, 0, 2, 3) + step(6, 0, 0, 0) + step(1, 0, 2, 0)
    return [enable, enable + hypercall, enable + posts, enable + ports]


def partition_seeds():
    """Inputs for partition_fuzz.c, records of [sender][2-byte length]
    [envelope]: from each trace, the envelopes its partition received, the
    devices' (sender 1, "vm0/dev/0") apart from the rest (sender 0)."""
    seeds = []
    for trace in sorted(glob.glob("tests/traces/*.trace*")):
        records = []
        for env in envelopes(trace):
            head = dict((n, v) for n, k, v in fields(env) if n in (1, 2) and k == 2)
            if head.get(2) == b"vm0/partition" and len(records) < 32 and len(env) < 0x10000:
                who = 1 if b"/dev" in head.get(1, b"") or b"/devhost" in head.get(1, b"") else 0
                records.append(bytes([who]) + len(env).to_bytes(2, "little") + env)
        if records:
            seeds.append(b"".join(records))
    return seeds


def save(name, blob):
    folder = os.path.join("fuzz", "corpus", name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, hashlib.sha1(blob).hexdigest())
    with open(path, "wb") as f:
        f.write(blob)


def main():
    seen = set()
    for trace in sorted(glob.glob("tests/traces/*.trace*")):
        for env in envelopes(trace):
            if env not in seen and len(env) <= 4096:
                seen.add(env)
                save("wire", env)
    for trace in sorted(glob.glob("tests/traces/*.trace*")):
        save("trace", prefix(trace, 8192))
    for seed in control_seeds():
        save("control", seed)
    for seed in registry_seeds():
        save("registry", seed)
    for seed in synic_seeds():
        save("synic", seed)
    for seed in partition_seeds():
        save("partition", seed)
    for seed in replay_seeds():
        save("replay", seed)
    # Each model (device_fuzz.c's order), then a write and a read at its
    # first range's start, time passing, and a save and restore.
    for model in range(13):
        save("device", bytes([model, 1, 0, 0, 0, 0, 0x41, 0, 0, 0, 0, 0, 0, 0,
                              0, 0, 0, 0, 2, 0x10, 0x27, 4]))
    save("gdb", b"$g#67+$m1000,40#fd$Z0,401000,1#xx\x03-")
    # CR0 PG|PE, CR3 0x1000, CR4 PAE, EFER LME|LMA, the address; then memory.
    walk = bytearray(0x6000)
    walk[:40] = struct.pack("<5Q", 0x80000001, 0x1000, 0x20, 0x500, 0x401000)
    save("gdb", bytes(walk))
    for path in sys.argv[1:]:
        kernel = "/kernels/" in path
        with tempfile.NamedTemporaryFile() as stripped:
            subprocess.run(["objcopy", "--strip-all", path, stripped.name], check=True)
            save("loader", bytes([1 if kernel else 0]) + open(stripped.name, "rb").read())
    print(f"wire: {len(seen)} envelopes; device: 13; loader: {len(sys.argv) - 1}; gdb: 2; "
          f"trace: {len(glob.glob('tests/traces/*.trace*'))}; control: {len(control_seeds())}; "
          f"registry: {len(registry_seeds())}; synic: {len(synic_seeds())}; "
          f"partition: {len(partition_seeds())}; replay: {len(replay_seeds())}")


if __name__ == "__main__":
    main()
