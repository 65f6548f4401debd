#include "tests/testing/vm_harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/partition/partition.h"

#define S_TIMEOUT_MS 10000

vm_harness_file_t vm_harness_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    vm_harness_file_t file = {.elf = malloc(1 << 20)};
    cr_assert_not_null(file.elf);
    file.len = fread(file.elf, 1, 1 << 20, f);
    fclose(f);
    cr_assert_gt(file.len, 0);
    return file;
}

void vm_harness_need_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        cr_skip_test("needs /dev/kvm (%s): skipped", strerror(errno));
    close(fd);
}

int vm_harness_partition(vm_harness_t *h, Vmm__Partition__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    return rt_call(rt_client_actor(h->client), VM_HARNESS_PARTITION, &env, reply, S_TIMEOUT_MS);
}

static void s_expect_ack(rt_msg_t *reply, const char *what)
{
    cr_assert_eq(reply->env->body_case, VMM__ENVELOPE__BODY_ACK, "%s: %s", what,
                 reply->env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->env->error->text
                                                                    : "not an Ack");
    rt_msg_release(reply);
}

static void s_open(vm_harness_t *h, rt_executor_t **vp_executors, uint32_t n_vps,
                   const rt_config_t *rt_cfg, const char *endpoint)
{
    *h = (vm_harness_t){.rt = rt_new(rt_cfg), .n_vps = n_vps};
    cr_assert_not_null(h->rt);
    h->partition_ex = rt_executor_new(h->rt, "partition");
    partition_config_t cfg = {.vm = "vm0",
                              .vp_executors = vp_executors,
                              .n_vp_executors = vp_executors ? n_vps : 0};
    rt_actor_spec_t spec = {.name = VM_HARNESS_PARTITION, .ops = &partition_ops, .arg = &cfg,
                            .endpoint = endpoint};
    cr_assert_eq(rt_actor_start(h->partition_ex, &spec), 0);
    h->client = rt_client_new(h->rt, "test");
}

void vm_harness_open(vm_harness_t *h)
{
    s_open(h, NULL, 0, NULL, NULL);
}

void vm_harness_start(vm_harness_t *h, uint32_t n_vps, uint64_t mem_size,
                      rt_executor_t **vp_executors)
{
    vm_harness_start_listening(h, n_vps, mem_size, vp_executors, NULL, NULL);
}

void vm_harness_start_listening(vm_harness_t *h, uint32_t n_vps, uint64_t mem_size,
                                rt_executor_t **vp_executors, const rt_config_t *rt_cfg,
                                const char *endpoint)
{
    s_open(h, vp_executors, n_vps, rt_cfg, endpoint);

    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = n_vps;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    s_expect_ack(&reply, "NewPartition");

    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.end = mem_size;
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
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY, "Build: %s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "?");
    cr_assert_eq(reply.env->partition_reply->build->n_vps, n_vps);
    rt_msg_release(&reply);
}

void vm_harness_stop(vm_harness_t *h)
{
    rt_destroy(&h->rt);
}

int vm_harness_device_call(rt_actor_t *from, Vmm__Devices__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = req;
    return rt_call(from, VM_HARNESS_PARTITION, &env, reply, S_TIMEOUT_MS);
}

int vm_harness_register(rt_actor_t *from, const char *name, bool mmio, uint64_t start,
                        uint64_t len, bool posted, rt_msg_t *reply)
{
    Vmm__Devices__PortRange port = VMM__DEVICES__PORT_RANGE__INIT;
    port.start = (uint32_t)start;
    port.len = (uint32_t)len;
    Vmm__Devices__PortRange *ports[] = {&port};
    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.start = start;
    range.end = start + len;
    Vmm__MemoryRange *ranges[] = {&range};
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = (char *)name;
    reg.required = true;
    reg.posted_writes = posted;
    if (mmio) {
        reg.n_mmio = 1;
        reg.mmio = ranges;
    } else {
        reg.n_ports = 1;
        reg.ports = ports;
    }
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    return vm_harness_device_call(from, &req, reply);
}

void vm_harness_stop_vp(rt_actor_t *from, uint32_t vp)
{
    char name[32];
    snprintf(name, sizeof name, "vm0/vp/%u", vp);
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_STOP;
    req.stop = &stop;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(from, name, &env, &reply, S_TIMEOUT_MS), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
}

void vm_harness_write_ram_from(rt_actor_t *from, uint64_t gpa, const void *data, size_t len)
{
    Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    w.gpa = gpa;
    w.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
    req.write_guest_memory = &w;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(from, &req, &reply), 0);
    s_expect_ack(&reply, "WriteGuestMemory");
}

void vm_harness_read_ram_from(rt_actor_t *from, uint64_t gpa, void *buf, uint32_t len)
{
    Vmm__Devices__ReadGuestMemory rd = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    rd.gpa = gpa;
    rd.length = len;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    req.read_guest_memory = &rd;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(from, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
    const ProtobufCBinaryData *data = &reply.env->device_reply->read_guest_memory->data;
    cr_assert_eq(data->len, len);
    memcpy(buf, data->data, len);
    rt_msg_release(&reply);
}

void vm_harness_write(vm_harness_t *h, uint64_t gpa, const void *data, size_t len)
{
    vm_harness_write_ram_from(rt_client_actor(h->client), gpa, data, len);
}

void vm_harness_read_ram(vm_harness_t *h, uint64_t gpa, void *buf, uint32_t len)
{
    vm_harness_read_ram_from(rt_client_actor(h->client), gpa, buf, len);
}

static void s_vp_name(uint32_t vp, char *buf, size_t size)
{
    snprintf(buf, size, "vm0/vp/%u", vp);
}

int vm_harness_vp_call(vm_harness_t *h, uint32_t vp, Vmm__Vp__Request *req, rt_msg_t *reply)
{
    char name[32];
    s_vp_name(vp, name, sizeof name);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = req;
    return rt_call(rt_client_actor(h->client), name, &env, reply, S_TIMEOUT_MS);
}

void vm_harness_vp_ack(vm_harness_t *h, uint32_t vp, Vmm__Vp__Request *req)
{
    rt_msg_t reply;
    cr_assert_eq(vm_harness_vp_call(h, vp, req, &reply), 0);
    s_expect_ack(&reply, "vp request");
}

Vmm__Vp__VpState *vm_harness_get_state(vm_harness_t *h, uint32_t vp,
                                       const Vmm__Vp__StateKind *kinds, size_t n,
                                       rt_msg_t *reply)
{
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.n_kinds = n;
    get.kinds = (Vmm__Vp__StateKind *)kinds;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    req.get_state = &get;
    cr_assert_eq(vm_harness_vp_call(h, vp, &req, reply), 0);
    cr_assert_eq(reply->env->body_case, VMM__ENVELOPE__BODY_VP_REPLY, "GetState: %s",
                 reply->env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->env->error->text
                                                                    : "?");
    return reply->env->vp_reply->state;
}

void vm_harness_real_mode(vm_harness_t *h, uint32_t vp, uint16_t ip)
{
    static const Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__SEGMENTS,
                                               VMM__VP__STATE_KIND__GENERAL_REGISTERS};
    rt_msg_t reply;
    Vmm__Vp__VpState *st = vm_harness_get_state(h, vp, kinds, 2, &reply);
    cr_assert_not_null(st->segments);
    cr_assert_not_null(st->general_registers);
    st->segments->cs->base_address = 0;
    st->segments->cs->selector = 0;
    st->general_registers->rip = ip;
    Vmm__Vp__VpState set_state = VMM__VP__VP_STATE__INIT;
    set_state.segments = st->segments;
    set_state.general_registers = st->general_registers;
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    set.state = &set_state;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &set;
    vm_harness_vp_ack(h, vp, &req);
    rt_msg_release(&reply);
}

void vm_harness_run(vm_harness_t *h, uint32_t vp)
{
    Vmm__Vp__Run run = VMM__VP__RUN__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_RUN;
    req.run = &run;
    vm_harness_vp_ack(h, vp, &req);
}

int vm_harness_wait_halt(vm_harness_t *h, uint32_t vp, int timeout_ms, rt_msg_t *out)
{
    rt_msg_t msg;
    for (;;) {
        cr_assert_eq(rt_client_recv(h->client, &msg, timeout_ms), 0,
                     "no halt from vp %u within %d ms", vp, timeout_ms);
        if (msg.env->body_case == VMM__ENVELOPE__BODY_VP_EVENT &&
            msg.env->vp_event->event_case == VMM__VP__EVENT__EVENT_HALTED &&
            msg.env->vp_event->halted->vp_index == vp)
            break;
        rt_msg_release(&msg); /* another VP's halt, or an event for the test */
    }
    int reason = msg.env->vp_event->halted->reason_case;
    if (out)
        *out = msg;
    else
        rt_msg_release(&msg);
    return reason;
}

void vm_harness_regs(vm_harness_t *h, uint32_t vp, Vmm__Vp__GeneralRegisters *out)
{
    static const Vmm__Vp__StateKind kind = VMM__VP__STATE_KIND__GENERAL_REGISTERS;
    rt_msg_t reply;
    *out = *vm_harness_get_state(h, vp, &kind, 1, &reply)->general_registers;
    rt_msg_release(&reply);
}
