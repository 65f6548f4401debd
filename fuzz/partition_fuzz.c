/*
 * The partition's bookkeeping through its messages: any partition.proto and
 * devices.proto requests, as the VMM, devices of this VM, an actor of
 * another VM, the host or a VP (which a peer may not claim to be) would
 * send them to a built partition of one VP on KVM: registrations and
 * removals, doorbells, irqfds, IRQ routes and lines, MSIs, guest memory
 * reads, writes and updates, resets, power requests. The partition must
 * answer a Ping after every input, within 15 s.
 *
 * Input: records of [sender][length, 2 bytes LE][envelope]. Each envelope
 * that protobuf-c decodes is sent with the chosen sender, to the
 * partition; a RegisterDevice's endpoint, if any, becomes one fixed ipc://
 * path where nothing listens, so that no input makes the fuzzer connect
 * out. Bytes that do not decode are sent as they are.
 *
 * It needs /dev/kvm. Without it, it says so on stderr and exits 0 before
 * the first input; tools/fuzz reports the target skipped.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/partition/partition.h"
#include "fuzz/fuzz_pong.h"
#include "runtime/rt_internal.h"

#define S_PARTITION "vm0/partition"
#define S_MAX_RECORDS 32
#define S_RAM (2u << 20)

static const char *const s_senders[] = {
    "vm0/vmm", "vm0/dev/0", "vm0/dev/1", "vm0/dev/2",
    "vm0/synic", "vm1/dev/0", "host", "vm0/vp/0", /* the last is local: refused */
};

static rt_t *s_rt;
static rt_client_t *s_setup;
static void *s_zctx, *s_peer;
static char s_dir[] = "/tmp/partition-fuzz-XXXXXX";
static char s_endpoint[128], s_nowhere[128];

static void s_call(Vmm__Partition__Request *req, Vmm__Envelope__BodyCase want)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    rt_msg_t reply;
    if (rt_call(rt_client_actor(s_setup), S_PARTITION, &env, &reply, 10000))
        abort();
    if (reply.env->body_case != want) {
        fprintf(stderr, "partition fuzz: setup refused: %s\n",
                reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text : "?");
        abort();
    }
    rt_msg_release(&reply);
}

/* A partition of one VP and 2 MiB of RAM, built, its VPs not running; it
 * listens on ipc:// so that the fuzzer's peer may name any sender but its
 * process's own actors. */
static void s_start(void)
{
    if (!mkdtemp(s_dir))
        abort();
    snprintf(s_endpoint, sizeof s_endpoint, "ipc://%s/p", s_dir);
    snprintf(s_nowhere, sizeof s_nowhere, "ipc://%s/nobody", s_dir);
    rt_config_t cfg = {.log_level = RT_LOG_ERROR, .log_level_set = true};
    s_rt = rt_new(&cfg);
    rt_executor_t *ex = s_rt ? rt_executor_new(s_rt, "partition") : NULL;
    partition_config_t pc = {.vm = "vm0"};
    rt_actor_spec_t spec = {.name = S_PARTITION, .ops = &partition_ops, .arg = &pc,
                            .endpoint = s_endpoint};
    if (!ex || rt_actor_start(ex, &spec) || !(s_setup = rt_client_new(s_rt, "fuzz")))
        abort();

    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = 1;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    s_call(&req, VMM__ENVELOPE__BODY_ACK);

    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.end = S_RAM;
    Vmm__Partition__RamRange ram = VMM__PARTITION__RAM_RANGE__INIT;
    ram.range = &range;
    Vmm__Partition__RamRange *rams[] = {&ram};
    Vmm__Partition__MemoryLayout layout = VMM__PARTITION__MEMORY_LAYOUT__INIT;
    layout.n_ram = 1;
    layout.ram = rams;
    Vmm__Partition__Build build = VMM__PARTITION__BUILD__INIT;
    build.mem_layout = &layout;
    req.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    req.build = &build;
    s_call(&req, VMM__ENVELOPE__BODY_PARTITION_REPLY);

    int zero = 0;
    if (!(s_zctx = zmq_ctx_new()) || !(s_peer = zmq_socket(s_zctx, ZMQ_DEALER)) ||
        zmq_setsockopt(s_peer, ZMQ_LINGER, &zero, sizeof zero) || zmq_connect(s_peer, s_endpoint))
        abort();
}

static void s_send(const void *bytes, size_t len)
{
    if (zmq_send(s_peer, bytes, len, 0) != (int)len)
        abort();
}

/* One record's envelope, from its sender, to the partition. */
static void s_send_record(uint8_t who, const uint8_t *bytes, size_t len)
{
    Vmm__Envelope *env = rt_wire_depth_ok(bytes, len) ? vmm__envelope__unpack(NULL, len, bytes)
                                                       : NULL;
    if (!env) {
        s_send(bytes, len);
        return;
    }
    char *sender = env->sender, *receiver = env->receiver, *endpoint = NULL;
    env->sender = (char *)s_senders[who % (sizeof s_senders / sizeof s_senders[0])];
    env->receiver = S_PARTITION;
    Vmm__Devices__RegisterDevice *reg =
        env->body_case == VMM__ENVELOPE__BODY_DEVICE_REQUEST &&
                env->device_request->op_case == VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE
            ? env->device_request->register_device
            : NULL;
    if (reg && *reg->endpoint) {
        endpoint = reg->endpoint;
        reg->endpoint = s_nowhere;
    }
    size_t n = vmm__envelope__get_packed_size(env);
    uint8_t *out = malloc(n ? n : 1);
    if (!out)
        abort();
    vmm__envelope__pack(env, out);
    s_send(out, n);
    free(out);
    if (reg && endpoint)
        reg->endpoint = endpoint;
    env->sender = sender;
    env->receiver = receiver;
    vmm__envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "partition fuzz: needs /dev/kvm: skipped\n");
        exit(0);
    }
    close(fd);
    s_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;
    for (int i = 0; i < S_MAX_RECORDS && at + 3 <= size; i++) {
        size_t len = data[at + 1] | (size_t)data[at + 2] << 8;
        if (len > size - at - 3)
            len = size - at - 3;
        s_send_record(data[at], data + at + 3, len);
        at += 3 + len;
    }
    /* Answered within 15 s: every record before it was taken. */
    fuzz_expect_pong(s_peer, "fuzz-op", S_PARTITION);
    return 0;
}
