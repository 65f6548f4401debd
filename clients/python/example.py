#!/usr/bin/python3
"""Connects to a running VM, prints its inspect tree, pauses and resumes it.

    example.py ipc:///tmp/vmm-XXXXXX/control
    example.py --key op.key --server-key vm.pub tcp://10.0.0.1:7701

Run with the folder that holds the generated proto/ modules on PYTHONPATH
(bazel-bin/clients/python/gen after `bazel build //clients/python:client`).
"""

import argparse
import sys

import vmmctl


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the VM's control endpoint (vmm run --control)")
    parser.add_argument("--key", help="your secret key file (vmm keygen), for tcp://; "
                                      "its .pub beside it")
    parser.add_argument("--server-key", help="the VM's public key file, for tcp://")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each answer (default 10)")
    args = parser.parse_args()
    keys = {}
    if args.key or args.server_key:
        keys = {"secret_key": vmmctl.read_key(args.key),
                "public_key": vmmctl.read_key(args.key[:-len(".key")] + ".pub"),
                "server_key": vmmctl.read_key(args.server_key)}
    try:
        with vmmctl.Client(args.endpoint, timeout=args.timeout, **keys) as vm:
            for tree in vm.inspect_all():
                vmmctl.print_tree(tree)
            vm.pause()
            rip = vm.registers(0).rip
            print(f"paused: vp 0 at rip 0x{rip:x}")
            vm.resume()
            print("resumed")
    except (vmmctl.VmmError, TimeoutError) as e:
        print(f"example.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
