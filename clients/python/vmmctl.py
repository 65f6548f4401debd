"""A client of a running VM's control endpoint (vmm run --control).

The endpoint is an actor mailbox, a ZeroMQ ROUTER: this client connects a
DEALER and sends one packed vmm.Envelope per frame, addressed to one of the
VM's actors by name ("vm0/vp/0", "vm0/partition", "vm0/control", ...); the
reply is one Envelope per frame whose reply_to is the request's id
(proto/envelope.proto). Over tcp:// the connection is CURVE, with the VM's
public key and an operator's key pair (vmm keygen files).

The protocol modules (proto/*_pb2.py) are made by protoc from the project's
.proto files at build time; put the folder that holds proto/ on sys.path.
"""

import zmq

from proto import control_pb2, devices_pb2, envelope_pb2, partition_pb2, rt_pb2, vp_pb2


class VmmError(Exception):
    """An Error reply: code is a vmm.ErrorCode number, text says why."""

    def __init__(self, receiver, code, text):
        super().__init__(f"{receiver}: {text}")
        self.receiver = receiver
        self.code = code
        self.text = text


def read_key(path):
    """A key file of vmm keygen: 40 Z85 characters and a newline."""
    with open(path, "rb") as f:
        return f.read().strip()


class Client:
    """One connection to a VM's control endpoint."""

    def __init__(self, endpoint, *, vm="vm0", timeout=10.0, server_key=None,
                 public_key=None, secret_key=None, name="python"):
        self.vm = vm
        self.name = name
        self.timeout_ms = int(timeout * 1000)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if endpoint.startswith("tcp://"):
            if not (server_key and public_key and secret_key):
                raise ValueError("a tcp:// endpoint needs server_key, public_key and secret_key")
            self._socket.curve_serverkey = server_key
            self._socket.curve_publickey = public_key
            self._socket.curve_secretkey = secret_key
        self._socket.connect(endpoint)
        self._next_id = 1

    def close(self):
        self._socket.close()
        self._context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- Requests ------------------------------------------------------------

    def call(self, receiver, **body):
        """Sends one request, body given as the envelope's oneof field
        (vp_request=..., inspect=...), and returns the reply envelope.
        Raises VmmError for an Error reply, TimeoutError for none."""
        env = envelope_pb2.Envelope(sender=self.name, receiver=receiver,
                                    request_id=self._next_id, **body)
        self._next_id += 1
        self._socket.send(env.SerializeToString())
        while True:
            if not self._socket.poll(self.timeout_ms):
                raise TimeoutError(f"{receiver}: no answer within {self.timeout_ms} ms")
            reply = envelope_pb2.Envelope.FromString(self._socket.recv())
            if reply.reply_to != env.request_id:
                continue  # a late answer to a request that timed out
            if reply.WhichOneof("body") == "error":
                raise VmmError(receiver, reply.error.code, reply.error.text)
            return reply

    def _control(self, **op):
        return self.call(f"{self.vm}/control",
                         control_request=control_pb2.Request(**op))

    # ---- What vmm ctl does ---------------------------------------------------

    def list_actors(self):
        """[(name, kind, elsewhere)] of every actor of the VM."""
        reply = self._control(list_actors=control_pb2.ListActors())
        return [(a.name, a.kind, a.elsewhere) for a in reply.control_reply.actors.actors]

    def inspect(self, actor):
        """The actor's state tree, as nested dicts {name, value, children}."""
        def tree(node):
            return {"name": node.name, "value": node.value,
                    "children": [tree(c) for c in node.children]}
        return tree(self.call(actor, inspect=rt_pb2.Inspect()).inspect_reply)

    def inspect_all(self):
        return [self.inspect(name) for name, _, _ in sorted(self.list_actors())]

    def pause(self, vp=None):
        self._control(pause=control_pb2.Pause(vp_index=vp) if vp is not None
                      else control_pb2.Pause())

    def resume(self, vp=None):
        self._control(resume=control_pb2.Resume(vp_index=vp) if vp is not None
                      else control_pb2.Resume())

    def reset(self):
        self._control(reset=control_pb2.Reset())

    def power_off(self, status=0):
        self._control(power_off=control_pb2.PowerOff(exit_code=status))

    def registers(self, vp):
        """A paused VP's general registers (vp_pb2.GeneralRegisters)."""
        get = vp_pb2.GetState(kinds=[vp_pb2.GENERAL_REGISTERS])
        reply = self.call(f"{self.vm}/vp/{vp}", vp_request=vp_pb2.Request(get_state=get))
        return reply.vp_reply.state.general_registers

    def read_memory(self, gpa, length):
        op = devices_pb2.ReadGuestMemory(gpa=gpa, length=length)
        reply = self.call(f"{self.vm}/partition",
                          device_request=devices_pb2.Request(read_guest_memory=op))
        return reply.device_reply.read_guest_memory.data

    def write_memory(self, gpa, data):
        op = devices_pb2.WriteGuestMemory(gpa=gpa, data=data)
        self.call(f"{self.vm}/partition",
                  device_request=devices_pb2.Request(write_guest_memory=op))

    def msi(self, address, data):
        op = partition_pb2.RequestMsi(request=partition_pb2.MsiRequest(address=address, data=data))
        self.call(f"{self.vm}/partition", partition_request=partition_pb2.Request(request_msi=op))


def print_tree(tree, depth=0, out=None):
    """Prints a tree as `vmm ctl inspect` does."""
    if depth == 0:
        print(f"{tree['name']} ({tree['value']})", file=out)
    elif tree["value"]:
        print(f"{'  ' * depth}{tree['name']} = {tree['value']}", file=out)
    else:
        print(f"{'  ' * depth}{tree['name']}", file=out)
    for child in tree["children"]:
        print_tree(child, depth + 1, out)
