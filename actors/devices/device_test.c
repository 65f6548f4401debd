/* What every device shares: registration with the partition, and bad port
 * accesses refused, counted and survived. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "actors/devices/debug_exit.h"
#include "actors/devices/i8042.h"
#include "actors/devices/power.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/testing/fake_vm.h"

/* One device as the tests see it: how to start it and what it registers. */
typedef struct {
    const char *actor;
    const rt_actor_ops_t *ops;
    void *config;
    const char *name;
    uint32_t starts[2], lens[2]; /* its port ranges */
    size_t n_ranges;
    int irq;                     /* -1: none */
    bool posted_writes;
} s_device_t;

static dev_serial_config_t s_serial = {.partition = FAKE_VM_PARTITION, .out_fd = -1,
                                       .in_fd = -1};
static dev_debug_exit_config_t s_debug_exit = {.partition = FAKE_VM_PARTITION};
static dev_i8042_config_t s_i8042 = {.partition = FAKE_VM_PARTITION};
static dev_power_config_t s_power = {.partition = FAKE_VM_PARTITION};
static dev_testdev_config_t s_testdev = {.partition = FAKE_VM_PARTITION};

static const s_device_t s_devices[] = {
    {"vm0/dev/com1", &dev_serial_ops, &s_serial, "com1", {0x3f8}, {8}, 1, 4, true},
    {"vm0/dev/debug-exit", &dev_debug_exit_ops, &s_debug_exit, "debug-exit", {0xf4}, {1}, 1,
     -1, false},
    {"vm0/dev/i8042", &dev_i8042_ops, &s_i8042, "i8042", {0x60, 0x64}, {1, 1}, 2, -1, false},
    {"vm0/dev/pm1a", &dev_power_ops, &s_power, "pm1a", {0x604}, {2}, 1, -1, false},
    {"vm0/dev/testdev", &dev_testdev_ops, &s_testdev, "testdev", {TESTDEV_PORT_BASE},
     {TESTDEV_PORT_COUNT}, 1, -1, false},
};
#define N_DEVICES (sizeof s_devices / sizeof *s_devices)

static rt_actor_spec_t s_spec(const s_device_t *d)
{
    return (rt_actor_spec_t){.name = d->actor, .ops = d->ops, .arg = d->config};
}

/* ---- Registration ---------------------------------------------------------- */

Test(registration, each_device_asks_for_its_ports_and_lines)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        rt_msg_t reg;
        cr_assert_eq(fake_vm_start(vm, &spec, 0, &reg), 0, "%s", d->actor);
        cr_assert_not_null(reg.env, "%s registered", d->actor);
        cr_expect_str_eq(reg.env->sender, d->actor);
        cr_expect_neq(reg.env->request_id, 0, "a request");
        const Vmm__Devices__RegisterDevice *r = reg.env->device_request->register_device;
        cr_expect_str_eq(r->name, d->name);
        cr_assert_eq(r->n_ports, d->n_ranges, "%s", d->actor);
        for (size_t k = 0; k < d->n_ranges; k++) {
            cr_expect_eq(r->ports[k]->start, d->starts[k], "%s", d->actor);
            cr_expect_eq(r->ports[k]->len, d->lens[k], "%s", d->actor);
        }
        cr_expect_eq(r->n_irq_lines, d->irq < 0 ? 0 : 1, "%s", d->actor);
        if (d->irq >= 0 && r->n_irq_lines)
            cr_expect_eq(r->irq_lines[0], (uint32_t)d->irq);
        cr_expect(r->required, "%s", d->actor);
        cr_expect_eq(r->posted_writes, d->posted_writes, "%s", d->actor);
        cr_expect_eq(r->n_mmio, 0);
        rt_msg_release(&reg);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "handle"), 1, "the granted handle kept");
        fake_vm_destroy(&vm);
    }
}

Test(registration, a_refusal_makes_start_fail)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        cr_expect_eq(fake_vm_start(vm, &spec, VMM__ERROR_CODE__BUSY, NULL), -EBUSY, "%s",
                     d->actor);
        cr_expect_eq(fake_vm_start(vm, &spec, VMM__ERROR_CODE__INVALID_ARGUMENT, NULL), -EINVAL,
                     "%s: the name was released", d->actor);
        cr_expect_eq(fake_vm_start(vm, &spec, 0, NULL), 0, "%s", d->actor);
        fake_vm_destroy(&vm);
    }
}

/* A partition that answers a registration with something else. */
static void *s_wrong_answer(void *arg)
{
    fake_vm_t *vm = arg;
    rt_msg_t msg;
    if (rt_client_recv(vm->partition, &msg, 5000))
        return NULL;
    rt_reply_ack(rt_client_actor(vm->partition), msg.env);
    rt_msg_release(&msg);
    return NULL;
}

Test(registration, an_answer_that_is_no_registration_makes_start_fail)
{
    fake_vm_t *vm = fake_vm_new();
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_wrong_answer, vm), 0);
    rt_actor_spec_t spec = s_spec(&s_devices[0]);
    cr_expect_eq(rt_actor_start(vm->ex, &spec), -EPROTO);
    pthread_join(thread, NULL);
    fake_vm_destroy(&vm);
}

Test(registration, a_partition_that_does_not_exist_makes_start_fail)
{
    fake_vm_t *vm = fake_vm_new();
    dev_i8042_config_t cfg = {.partition = "vm0/nobody"};
    rt_actor_spec_t spec = {.name = "vm0/dev/i8042", .ops = &dev_i8042_ops, .arg = &cfg};
    cr_expect_lt(rt_actor_start(vm->ex, &spec), 0);
    fake_vm_destroy(&vm);
}

Test(registration, without_a_partition_nothing_registers)
{
    fake_vm_t *vm = fake_vm_new();
    dev_power_config_t cfg = {0};
    rt_actor_spec_t spec = {.name = "vm0/dev/pm1a", .ops = &dev_power_ops, .arg = &cfg};
    rt_msg_t reg;
    cr_expect_eq(fake_vm_start(vm, &spec, 0, &reg), 0);
    cr_expect_null(reg.env);
    cr_expect_eq(fake_vm_inspect(vm, "vm0/dev/pm1a", "handle"), 0);
    fake_vm_destroy(&vm);
}

Test(registration, no_config_fails_start)
{
    fake_vm_t *vm = fake_vm_new();
    for (size_t i = 0; i < N_DEVICES; i++) {
        rt_actor_spec_t spec = {.name = s_devices[i].actor, .ops = s_devices[i].ops};
        cr_expect_eq(rt_actor_start(vm->ex, &spec), -EINVAL, "%s", s_devices[i].actor);
    }
    fake_vm_destroy(&vm);
}

/* ---- Bad input --------------------------------------------------------------- */

/* Requests refused so far. */
static long long s_refused;

/* Sends req as a request and expects an Error of code whose text names the
 * device. */
static void s_expect_refused(fake_vm_t *vm, const s_device_t *d, Vmm__Devices__Request *req,
                             Vmm__ErrorCode code, const char *what)
{
    int rc = fake_vm_request(vm, d->actor, req, NULL);
    s_refused++;
    cr_expect_eq(rc, (int)code, "%s, %s: %d", d->actor, what, rc);
    cr_expect_neq(strstr(vm->last_error, d->actor), NULL, "%s, %s: text \"%s\"", d->actor, what,
                  vm->last_error);
}

static void s_read_req(Vmm__Devices__Request *req, Vmm__Devices__ReadIo *read_io,
                       uint32_t port, uint32_t size)
{
    vmm__devices__read_io__init(read_io);
    read_io->port = port;
    read_io->size = size;
    vmm__devices__request__init(req);
    req->op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
    req->read_io = read_io;
}

static void s_write_req(Vmm__Devices__Request *req, Vmm__Devices__WriteIo *write_io,
                        uint32_t port, uint8_t *data, size_t len)
{
    vmm__devices__write_io__init(write_io);
    write_io->port = port;
    write_io->data.data = data;
    write_io->data.len = len;
    vmm__devices__request__init(req);
    req->op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
    req->write_io = write_io;
}

Test(bad_input, is_refused_with_invalid_argument_and_counted)
{
    for (size_t i = 0; i < N_DEVICES; i++) {
        const s_device_t *d = &s_devices[i];
        fake_vm_t *vm = fake_vm_new();
        rt_actor_spec_t spec = s_spec(d);
        cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
        uint32_t first = d->starts[0], end = d->starts[d->n_ranges - 1] + d->lens[d->n_ranges - 1];
        Vmm__Devices__Request req;
        Vmm__Devices__ReadIo read_io;
        Vmm__Devices__WriteIo write_io;
        uint8_t data[8] = {0};
        s_refused = 0;
        const Vmm__ErrorCode invalid = VMM__ERROR_CODE__INVALID_ARGUMENT;

        s_read_req(&req, &read_io, first - 1, 1);
        s_expect_refused(vm, d, &req, invalid, "below the ports");
        s_read_req(&req, &read_io, end, 1);
        s_expect_refused(vm, d, &req, invalid, "past the ports");
        s_read_req(&req, &read_io, end - 1, 2);
        s_expect_refused(vm, d, &req, invalid, "straddling the end");
        s_read_req(&req, &read_io, first + 0x10000, 1);
        s_expect_refused(vm, d, &req, invalid, "a port over 16 bits");
        uint32_t sizes[] = {0, 3, 8, 0xffffffff};
        for (size_t k = 0; k < 4; k++) {
            s_read_req(&req, &read_io, first, sizes[k]);
            s_expect_refused(vm, d, &req, invalid, "a read size not 1, 2, 4");
        }
        size_t lens[] = {0, 3, 8};
        for (size_t k = 0; k < 3; k++) {
            s_write_req(&req, &write_io, first, data, lens[k]);
            s_expect_refused(vm, d, &req, invalid, "a write length not 1, 2, 4");
        }
        s_write_req(&req, &write_io, end, data, 1);
        s_expect_refused(vm, d, &req, invalid, "a write past the ports");
        vmm__devices__request__init(&req);
        s_expect_refused(vm, d, &req, invalid, "no op");

        Vmm__Devices__ReadMmio read_mmio = VMM__DEVICES__READ_MMIO__INIT;
        read_mmio.address = first;
        read_mmio.size = 1;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_MMIO;
        req.read_mmio = &read_mmio;
        s_expect_refused(vm, d, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "an MMIO read");

        /* One-way: nothing can be answered, but all is counted. */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
        env.device_request = &req;
        s_write_req(&req, &write_io, end, data, 1);
        write_io.posted = true;
        cr_assert_eq(rt_send(rt_client_actor(vm->vp), d->actor, &env), 0);
        s_read_req(&req, &read_io, first, 1);
        cr_assert_eq(rt_send(rt_client_actor(vm->vp), d->actor, &env), 0);
        s_refused += 2;

        cr_expect_eq(fake_vm_inspect(vm, d->actor, "bad_requests"), s_refused, "%s", d->actor);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "reads"), 0, "%s", d->actor);
        cr_expect_eq(fake_vm_inspect(vm, d->actor, "writes"), 0, "%s", d->actor);
        fake_vm_expect_quiet(vm, vm->vp, 20);
        uint32_t value;
        cr_expect_eq(fake_vm_read(vm, d->actor, first, 1, &value), 0, "%s still serves",
                     d->actor);
        fake_vm_expect_quiet(vm, vm->partition, 20);
        fake_vm_destroy(&vm);
    }
}
