#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/NAME), once; libFuzzer grows them.

  wire:   every distinct envelope recorded in tests/traces/*.trace
  device: for each model, a first byte choosing it and a few accesses
  loader: the test guests and kernels given, stripped, after the byte that
          picks their loader (0: ELF64 guest, 1: kernel)
  gdb:    a few packets, and a long-mode walk's registers before memory

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


def envelopes(path):
    """The envelopes of a trace's Message records (trace-format.md)."""
    data = open(path, "rb").read()
    at = 0
    while at + 4 <= len(data) and data[at]:
        n, body = varint(data, at)
        record = data[body:body + n]
        at = body + n
        for number, kind, value in fields(record):
            if number == 3 and kind == 2:  # Record.message
                for inner, ikind, ivalue in fields(value):
                    if inner == 6 and ikind == 2:  # Message.envelope
                        yield ivalue


def prefix(path, limit):
    """A trace's first records, whole, up to limit bytes: a trace itself."""
    data = open(path, "rb").read()
    at = 0
    while at + 4 <= len(data) and data[at]:
        n, body = varint(data, at)
        if body + n > limit:
            break
        at = body + n
    return data[:at]


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
          f"trace: {len(glob.glob('tests/traces/*.trace*'))}")


if __name__ == "__main__":
    main()
