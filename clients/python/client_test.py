#!/usr/bin/python3
"""vmmctl against a running ctl_count guest: client_test.py ENDPOINT COUNTER.
Ends by powering the VM off with status 9."""

import sys
import time
import unittest

import vmmctl
from proto import common_pb2, envelope_pb2, rt_pb2, vp_pb2

ENDPOINT = sys.argv[1]
COUNTER = int(sys.argv[2], 0)


def counter(vm):
    return int.from_bytes(vm.read_memory(COUNTER, 8), "little")


def denied(vm):
    tree = vm.inspect("vm0/control")
    return int(next(c["value"] for c in tree["children"] if c["name"] == "denied"))


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.vm = vmmctl.Client(ENDPOINT, timeout=10)

    def tearDown(self):
        self.vm.close()

    def test_1_lists_and_inspects_the_actors(self):
        actors = {name: kind for name, kind, _ in self.vm.list_actors()}
        self.assertEqual(actors.get("vm0/vp/0"), "vp")
        self.assertEqual(actors.get("vm0/partition"), "partition")
        tree = self.vm.inspect("vm0/vp/0")
        self.assertEqual((tree["name"], tree["value"]), ("vm0/vp/0", "vp"))

    def test_2_pause_stops_the_counter_and_resume_moves_it(self):
        self.vm.pause()
        a = counter(self.vm)
        time.sleep(0.3)
        self.assertEqual(counter(self.vm), a)
        self.assertTrue(0x100000 <= self.vm.registers(0).rip < 0x200000)
        self.vm.resume()
        deadline = time.monotonic() + 5
        while counter(self.vm) == a and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(counter(self.vm), a)

    def test_3_outside_the_scope_is_refused_and_counted(self):
        before = denied(self.vm)
        with self.assertRaises(vmmctl.VmmError) as e:
            self.vm.call("vm0/vp/0", vp_request=vp_pb2.Request(run=vp_pb2.Run()))
        self.assertEqual(e.exception.code, common_pb2.PERMISSION_DENIED)
        with self.assertRaises(vmmctl.VmmError) as e:
            self.vm.call("vm0/partition", terminate=rt_pb2.Terminate())
        self.assertEqual(e.exception.code, common_pb2.PERMISSION_DENIED)
        with self.assertRaises(vmmctl.VmmError) as e:
            self.vm.call("vm1/vp/0", inspect=rt_pb2.Inspect())
        self.assertEqual(e.exception.code, common_pb2.PERMISSION_DENIED)
        self.assertEqual(denied(self.vm), before + 3)

    def test_4_garbage_gets_an_error_and_the_endpoint_carries_on(self):
        self.vm._socket.send(b"\x0a\xff\xff\xff")
        self.assertTrue(self.vm._socket.poll(5000))
        reply = envelope_pb2.Envelope.FromString(self.vm._socket.recv())
        self.assertEqual(reply.WhichOneof("body"), "error")
        self.assertEqual(reply.error.code, common_pb2.INVALID_ARGUMENT)
        self.vm.msi(0xFEE00000, 0x40)
        self.assertEqual(self.vm.inspect("vm0/vp/0")["name"], "vm0/vp/0")

    def test_5_power_off(self):
        self.vm.power_off(9)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
