#include "actors/devices/testing/fake_vm.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/testing/echo.h"

#define S_CALL_TIMEOUT_MS 5000
#define S_EXPECT_TIMEOUT_MS 2000

fake_vm_t *fake_vm_new(void)
{
    fake_vm_t *vm = calloc(1, sizeof *vm);
    if (!vm)
        return NULL;
    vm->rt = rt_new(NULL);
    if (!vm->rt)
        goto fail;
    vm->vm_instance = 1;
    vm->ex = rt_executor_new(vm->rt, "devices");
    vm->vp = rt_client_new(vm->rt, FAKE_VM_VP);
    vm->partition = rt_client_new(vm->rt, FAKE_VM_PARTITION);
    if (!vm->ex || !vm->vp || !vm->partition)
        goto fail;
    return vm;

fail:
    fake_vm_destroy(&vm);
    return NULL;
}

void fake_vm_destroy(fake_vm_t **vmp)
{
    if (!vmp || !*vmp)
        return;
    fake_vm_t *vm = *vmp;
    rt_destroy(&vm->rt); /* its executors and clients with it */
    for (size_t i = 0; i < vm->n_inboxes; i++)
        if (vm->inboxes[i].held)
            rt_msg_release(&vm->inboxes[i].msg);
    free(vm);
    *vmp = NULL;
}

/* ---- Starting a device ---------------------------------------------------- */

static int s_answer_registration(fake_vm_t *vm, const Vmm__Envelope *req, Vmm__ErrorCode refuse)
{
    rt_actor_t *self = rt_client_actor(vm->partition);
    if (req->body_case != VMM__ENVELOPE__BODY_DEVICE_REQUEST ||
        req->device_request->op_case != VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE)
        return rt_reply_error(self, req, VMM__ERROR_CODE__INTERNAL,
                              "the fake partition only takes registrations");
    if (refuse)
        return rt_reply_error(self, req, refuse, "the fake partition refuses %s",
                              req->device_request->register_device->name);
    const Vmm__Devices__RegisterDevice *asked = req->device_request->register_device;
    uint64_t doorbells[8] = {0};
    for (size_t i = 0; i < asked->n_doorbells && i < 8; i++)
        doorbells[i] = FAKE_VM_DOORBELL + i;
    Vmm__Devices__DeviceRegistration reg = VMM__DEVICES__DEVICE_REGISTRATION__INIT;
    reg.handle = 1;
    reg.vm_instance = vm->vm_instance;
    reg.n_ports = asked->n_ports;
    reg.ports = asked->ports;
    reg.n_mmio = asked->n_mmio;
    reg.mmio = asked->mmio;
    reg.n_irq_lines = asked->n_irq_lines;
    reg.irq_lines = asked->irq_lines;
    reg.msi_count = asked->msi_count;
    reg.n_doorbells = asked->n_doorbells < 8 ? asked->n_doorbells : 8;
    reg.doorbells = doorbells;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_REGISTRATION;
    reply.registration = &reg;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    return rt_reply(self, req, &env);
}

int fake_vm_start(fake_vm_t *vm, const char *name, const device_actor_config_t *cfg,
                  Vmm__ErrorCode refuse, rt_msg_t *registration)
{
    rt_actor_spec_t spec = {.name = name, .ops = &device_actor_ops, .arg = (void *)cfg};
    int rc = rt_actor_start(vm->ex, &spec);
    if (rc || !cfg || !cfg->partition)
        return rc;
    /* The device registers without waiting: its request is there now. */
    rt_msg_t local;
    rt_msg_t *msg = registration ? registration : &local;
    memset(msg, 0, sizeof *msg);
    if (rt_client_recv(vm->partition, msg, S_EXPECT_TIMEOUT_MS))
        return 0; /* the test sees no registration and says so */
    s_answer_registration(vm, msg->env, refuse);
    if (!registration)
        rt_msg_release(&local);
    return 0;
}

/* ---- Port accesses -------------------------------------------------------- */

int fake_vm_request(fake_vm_t *vm, const char *to, Vmm__Devices__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = req;
    rt_msg_t local;
    rt_msg_t *msg = reply ? reply : &local;
    vm->last_error[0] = 0;
    int rc = rt_call(rt_client_actor(vm->vp), to, &env, msg, S_CALL_TIMEOUT_MS);
    if (rc)
        return rc;
    if (msg->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        snprintf(vm->last_error, sizeof vm->last_error, "%s", msg->env->error->text);
        rc = msg->env->error->code ? (int)msg->env->error->code : -EPROTO;
        rt_msg_release(msg);
        return rc;
    }
    if (!reply)
        rt_msg_release(&local);
    return 0;
}

int fake_vm_read(fake_vm_t *vm, const char *to, bool mmio, uint64_t address, uint32_t size,
                 uint64_t *value)
{
    Vmm__Devices__ReadIo read_io = VMM__DEVICES__READ_IO__INIT;
    Vmm__Devices__ReadMmio read_mmio = VMM__DEVICES__READ_MMIO__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    if (mmio) {
        read_mmio.address = address;
        read_mmio.size = size;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_MMIO;
        req.read_mmio = &read_mmio;
    } else {
        read_io.port = (uint32_t)address;
        read_io.size = size;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
        req.read_io = &read_io;
    }
    rt_msg_t reply;
    int rc = fake_vm_request(vm, to, &req, &reply);
    if (rc)
        return rc;
    const Vmm__Envelope *env = reply.env;
    const Vmm__Devices__Reply *r = env->device_reply;
    const Vmm__Devices__ReadResult *res =
        env->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY                       ? NULL
        : !mmio && r->result_case == VMM__DEVICES__REPLY__RESULT_READ_IO       ? r->read_io
        : mmio && r->result_case == VMM__DEVICES__REPLY__RESULT_READ_MMIO      ? r->read_mmio
                                                                                : NULL;
    if (!res || res->data.len != size) {
        rt_msg_release(&reply);
        return -EPROTO;
    }
    *value = 0;
    for (uint32_t i = 0; i < size; i++)
        *value |= (uint64_t)res->data.data[i] << (8 * i);
    rt_msg_release(&reply);
    return 0;
}

/* Fills env as a WriteIo or WriteMmio of size bytes of value (kept in
 * bytes). */
typedef struct {
    Vmm__Envelope env;
    Vmm__Devices__Request req;
    Vmm__Devices__WriteIo write_io;
    Vmm__Devices__WriteMmio write_mmio;
    uint8_t bytes[8];
} s_write_t;

static void s_write_env(s_write_t *w, bool mmio, uint64_t address, uint32_t size, uint64_t value,
                        bool posted)
{
    for (uint32_t i = 0; i < 8; i++)
        w->bytes[i] = (uint8_t)(value >> (8 * i));
    vmm__devices__request__init(&w->req);
    if (mmio) {
        vmm__devices__write_mmio__init(&w->write_mmio);
        w->write_mmio.address = address;
        w->write_mmio.data = (ProtobufCBinaryData){size, w->bytes};
        w->write_mmio.posted = posted;
        w->req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_MMIO;
        w->req.write_mmio = &w->write_mmio;
    } else {
        vmm__devices__write_io__init(&w->write_io);
        w->write_io.port = (uint32_t)address;
        w->write_io.data = (ProtobufCBinaryData){size, w->bytes};
        w->write_io.posted = posted;
        w->req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
        w->req.write_io = &w->write_io;
    }
    vmm__envelope__init(&w->env);
    w->env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    w->env.device_request = &w->req;
}

int fake_vm_write(fake_vm_t *vm, const char *to, bool mmio, uint64_t address, uint32_t size,
                  uint64_t value)
{
    s_write_t w;
    s_write_env(&w, mmio, address, size, value, false);
    rt_msg_t reply;
    int rc = fake_vm_request(vm, to, &w.req, &reply);
    if (rc)
        return rc;
    rc = reply.env->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -EPROTO;
    rt_msg_release(&reply);
    return rc;
}

int fake_vm_write_posted(fake_vm_t *vm, const char *to, bool mmio, uint64_t address,
                         uint32_t size, uint64_t value)
{
    s_write_t w;
    s_write_env(&w, mmio, address, size, value, true);
    return rt_send(rt_client_actor(vm->vp), to, &w.env);
}

int fake_vm_write_begin(fake_vm_t *vm, const char *to, bool mmio, uint64_t address,
                        uint32_t size, uint64_t value)
{
    s_write_t w;
    s_write_env(&w, mmio, address, size, value, false);
    return rt_request(rt_client_actor(vm->vp), to, &w.env, S_EXPECT_TIMEOUT_MS, NULL);
}

int fake_vm_write_end(fake_vm_t *vm)
{
    const Vmm__Envelope *env = fake_vm_recv(vm, vm->vp, S_EXPECT_TIMEOUT_MS);
    if (!env)
        return -ETIMEDOUT;
    return env->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -EPROTO;
}

int fake_vm_send_event(rt_client_t *from, const char *to, Vmm__Devices__Event *ev)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = ev;
    return rt_send(rt_client_actor(from), to, &env);
}

int fake_vm_inspect_text(fake_vm_t *vm, const char *to, const char *name, char *buf,
                         size_t size)
{
    return echo_inspect_text(rt_client_actor(vm->vp), to, name, buf, size);
}

long long fake_vm_inspect(fake_vm_t *vm, const char *to, const char *name)
{
    return echo_inspect_number(rt_client_actor(vm->vp), to, name);
}

/* ---- Receiving ------------------------------------------------------------ */

static fake_vm_inbox_t *s_inbox(fake_vm_t *vm, rt_client_t *c)
{
    for (size_t i = 0; i < vm->n_inboxes; i++)
        if (vm->inboxes[i].client == c)
            return &vm->inboxes[i];
    if (vm->n_inboxes == FAKE_VM_INBOXES)
        return NULL;
    fake_vm_inbox_t *inbox = &vm->inboxes[vm->n_inboxes++];
    inbox->client = c;
    return inbox;
}

rt_client_t *fake_vm_client(fake_vm_t *vm, const char *name)
{
    rt_client_t *c = rt_client_new(vm->rt, name);
    if (c && !s_inbox(vm, c))
        rt_client_destroy(&c);
    return c;
}

const Vmm__Envelope *fake_vm_recv(fake_vm_t *vm, rt_client_t *c, int timeout_ms)
{
    fake_vm_inbox_t *inbox = s_inbox(vm, c);
    cr_assert_not_null(inbox, "more than %d clients", FAKE_VM_INBOXES);
    if (inbox->held)
        rt_msg_release(&inbox->msg);
    inbox->held = rt_client_recv(c, &inbox->msg, timeout_ms) == 0;
    return inbox->held ? inbox->msg.env : NULL;
}

/* ---- Expectations --------------------------------------------------------- */

static const Vmm__Envelope *s_expect_next(fake_vm_t *vm, rt_client_t *c)
{
    const Vmm__Envelope *env = fake_vm_recv(vm, c, S_EXPECT_TIMEOUT_MS);
    cr_assert_not_null(env, "%s received nothing", rt_actor_name(rt_client_actor(c)));
    vm->last_was_request = env->request_id != 0;
    if (vm->last_was_request)
        cr_assert_eq(rt_reply_ack(rt_client_actor(c), env), 0);
    return env;
}

static const Vmm__Partition__Request *s_expect_partition_request(const Vmm__Envelope *env,
                                                                 Vmm__Partition__Request__OpCase op)
{
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_PARTITION_REQUEST,
                 "body kind %d, not a partition request", env->body_case);
    cr_assert_eq(env->partition_request->op_case, op, "partition op %d, not %d",
                 env->partition_request->op_case, op);
    return env->partition_request;
}

/* The next message to c, checked to be a one-way devices event of kind. */
static const Vmm__Devices__Event *s_expect_event(fake_vm_t *vm, rt_client_t *c,
                                                 Vmm__Devices__Event__EventCase kind)
{
    const Vmm__Envelope *env = s_expect_next(vm, c);
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_DEVICE_EVENT,
                 "body kind %d, not a device event", env->body_case);
    cr_assert_eq(env->device_event->event_case, kind, "device event %d, not %d",
                 env->device_event->event_case, kind);
    return env->device_event;
}

void fake_vm_expect_irq_line(fake_vm_t *vm, rt_client_t *c, uint32_t irq, bool high)
{
    const Vmm__Devices__IrqLineChanged *change =
        s_expect_event(vm, c, VMM__DEVICES__EVENT__EVENT_IRQ_LINE_CHANGED)->irq_line_changed;
    cr_expect_eq(change->irq, irq, "IRQ %u changed, not %u", change->irq, irq);
    cr_expect_eq(change->high, high, "IRQ %u went %s", irq, change->high ? "high" : "low");
}

void fake_vm_expect_msi(fake_vm_t *vm, rt_client_t *c, uint64_t address, uint32_t data)
{
    const Vmm__Partition__Request *req = s_expect_partition_request(
        s_expect_next(vm, c), VMM__PARTITION__REQUEST__OP_REQUEST_MSI);
    cr_expect_eq(req->request_msi->vtl, VMM__VTL__VTL0);
    cr_assert_not_null(req->request_msi->request);
    cr_expect_eq(req->request_msi->request->address, address, "MSI address 0x%llx, not 0x%llx",
                 (unsigned long long)req->request_msi->request->address,
                 (unsigned long long)address);
    cr_expect_eq(req->request_msi->request->data, data, "MSI data 0x%x, not 0x%x",
                 req->request_msi->request->data, data);
}

void fake_vm_expect_power(fake_vm_t *vm, rt_client_t *c, Vmm__Devices__PowerAction action,
                          bool has_exit_code, uint32_t exit_code)
{
    const Vmm__Devices__PowerRequest *power =
        s_expect_event(vm, c, VMM__DEVICES__EVENT__EVENT_POWER_REQUEST)->power_request;
    cr_expect_eq(power->action, action, "power action %d, not %d", power->action, action);
    if (has_exit_code) {
        cr_expect_eq(power->opt_exit_code_case,
                     VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE_EXIT_CODE, "an exit code");
        cr_expect_eq(power->exit_code, exit_code, "exit code %u, not %u", power->exit_code,
                     exit_code);
    } else {
        cr_expect_eq(power->opt_exit_code_case,
                     VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE__NOT_SET, "no exit code");
    }
}

void fake_vm_expect_quiet(fake_vm_t *vm, rt_client_t *c, int ms)
{
    const Vmm__Envelope *env = fake_vm_recv(vm, c, ms);
    cr_expect_null(env, "%s received body kind %d, expected nothing",
                   rt_actor_name(rt_client_actor(c)), env ? (int)env->body_case : 0);
}
