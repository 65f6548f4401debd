/* The device actor around a probe model: registration, accesses, bad input
 * refused and survived, deferred answers, the model's effects as messages,
 * the wall clock (and its replay), its console, doorbells, reset, save and
 * restore. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "actors/devices/rtc.h"
#include "actors/devices/testing/fake_vm.h"
#include "proto/device_state.pb-c.h"

#define DEV "vm0/dev/probe"
#define OWNER "vm0/vmm"
#define CONSOLE "vm0/console"
#define MANAGER "vm0/manager"
#define PORT 0x500
#define MMIO 0xd0000000ull
#define DOORBELL (MMIO + 0x100)
#define IRQ 5
#define DELAY_NS 20000000ull

/* ---- The probe: a model whose registers make each effect ----------------------- */

enum {
    P_CMD = PORT,          /* W: a command below */
    P_SCRATCH = PORT + 1,  /* R/W */
    P_SLOW = PORT + 2,     /* R and W: deferred 20 ms; a read answers the scratch */
    P_REFUSED = PORT + 3,  /* R: refused */
    P_AT_ONCE = PORT + 4,  /* R: deferred and completed within the access: 0x77 */
    P_DOORBELLS = PORT + 5, /* R: doorbell signals */
    P_INPUT = PORT + 6,    /* R: console input bytes taken */
    P_LAST_IN = PORT + 7,  /* R: the last of them */
};

enum {
    C_IRQ_HIGH = 1,
    C_IRQ_LOW,
    C_MSI,
    C_POWER_OFF,
    C_GUEST_CALL,
    C_LINE,       /* "hi\n" to the console */
    C_PARTIAL,    /* "partial", no newline */
    C_4K,         /* 4096 bytes: the scratch is what the console took */
    C_ROOM,       /* the scratch is the console's room */
    C_WANT,       /* asks for 3 input bytes */
    C_WALL_S,     /* the scratch is the wall clock's seconds */
    C_WALL_NS,    /* the scratch is the wall clock's ns within its second */
};

typedef struct {
    device_t dev;
    uint64_t scratch;
    uint32_t doorbells, input;
    uint8_t last_in;
    device_deferred_t *slow;
} probe_t;

static probe_t *s_probe(device_t *dev)
{
    return (probe_t *)dev;
}

static int s_probe_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    probe_t *p = s_probe(dev);
    if (io->mmio) {
        *value = 0x1122334455667788ull ^ (io->address - MMIO);
        return 0;
    }
    switch (io->address) {
    case P_SCRATCH:
        *value = p->scratch;
        return 0;
    case P_SLOW:
        if (p->slow || !(p->slow = device_defer(dev)) ||
            device_timer_set(dev, 1, device_now_ns(dev) + DELAY_NS))
            return -EBUSY;
        return DEVICE_IO_DEFERRED;
    case P_AT_ONCE: {
        device_deferred_t *d = device_defer(dev);
        if (!d)
            return -ENOMEM;
        device_complete(dev, d, 0, 0x77);
        return DEVICE_IO_DEFERRED;
    }
    case P_DOORBELLS:
        *value = p->doorbells;
        return 0;
    case P_INPUT:
        *value = p->input;
        return 0;
    case P_LAST_IN:
        *value = p->last_in;
        return 0;
    default:
        device_log(dev, RT_LOG_INFO, "no register to read at 0x%llx",
                   (unsigned long long)io->address);
        return -EINVAL;
    }
}

static void s_probe_command(probe_t *p, uint64_t cmd)
{
    static const uint32_t args[] = {1, 2};
    static uint8_t four_k[4096];
    device_t *dev = &p->dev;
    switch (cmd) {
    case C_IRQ_HIGH:
    case C_IRQ_LOW:
        device_irq_set(dev, IRQ, cmd == C_IRQ_HIGH);
        break;
    case C_MSI:
        device_msi(dev, 0xfee00000, 0x31);
        break;
    case C_POWER_OFF:
        device_power(dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, 7);
        break;
    case C_GUEST_CALL:
        device_guest_call(dev, 3, 9, args, 2);
        break;
    case C_LINE:
        device_console_write(dev, (const uint8_t *)"hi\n", 3);
        break;
    case C_PARTIAL:
        device_console_write(dev, (const uint8_t *)"partial", 7);
        break;
    case C_4K:
        memset(four_k, 'x', sizeof four_k);
        p->scratch = device_console_write(dev, four_k, sizeof four_k);
        break;
    case C_ROOM:
        p->scratch = device_console_room(dev);
        break;
    case C_WANT:
        device_console_want(dev, 3);
        break;
    case C_WALL_S:
        p->scratch = device_wall_ns(dev) / 1000000000u;
        break;
    case C_WALL_NS:
        p->scratch = device_wall_ns(dev) % 1000000000u;
        break;
    }
}

static int s_probe_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    probe_t *p = s_probe(dev);
    if (io->mmio || io->address == P_SCRATCH) {
        p->scratch = value;
        return 0;
    }
    if (io->address == P_CMD) {
        s_probe_command(p, value);
        return 0;
    }
    if (io->address == P_SLOW) {
        p->scratch = value;
        if (p->slow || !(p->slow = device_defer(dev)) ||
            device_timer_set(dev, 1, device_now_ns(dev) + DELAY_NS))
            return -EBUSY;
        return DEVICE_IO_DEFERRED;
    }
    return -EINVAL;
}

static void s_probe_timer(device_t *dev, uint32_t id)
{
    probe_t *p = s_probe(dev);
    if (id == 1 && p->slow) {
        device_deferred_t *d = p->slow;
        p->slow = NULL;
        device_complete(dev, d, 0, p->scratch);
    }
}

static void s_probe_reset(device_t *dev)
{
    s_probe(dev)->scratch = 0;
}

static void s_probe_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    rt_inspect_add(node, "scratch", "0x%llx", (unsigned long long)s_probe(dev)->scratch);
}

/* Its state is a Pm1a message: only the scratch. */
static int s_probe_save(device_t *dev, ProtobufCBinaryData *out)
{
    Vmm__DeviceState__Pm1a st = VMM__DEVICE_STATE__PM1A__INIT;
    st.pm1_cnt = (uint32_t)s_probe(dev)->scratch;
    return device_pack_state(&st.base, out);
}

static int s_probe_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__Pm1a *st = vmm__device_state__pm1a__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    s_probe(dev)->scratch = st->pm1_cnt;
    vmm__device_state__pm1a__free_unpacked(st, NULL);
    return 0;
}

static void s_probe_doorbell(device_t *dev, size_t index)
{
    if (index == 0)
        s_probe(dev)->doorbells++;
}

static void s_probe_input(device_t *dev, const uint8_t *bytes, size_t len)
{
    probe_t *p = s_probe(dev);
    p->input += (uint32_t)len;
    p->last_in = bytes[len - 1];
}

static void s_probe_ready(device_t *dev)
{
    s_probe(dev)->scratch = 0xc0ffee;
}

static void s_probe_destroy(device_t *dev)
{
    free(s_probe(dev));
}

static const device_ops_t s_probe_ops = {
    .kind = "probe",
    .read = s_probe_read,
    .write = s_probe_write,
    .reset = s_probe_reset,
    .inspect = s_probe_inspect,
    .save = s_probe_save,
    .restore = s_probe_restore,
    .timer = s_probe_timer,
    .doorbell = s_probe_doorbell,
    .console_input = s_probe_input,
    .console_ready = s_probe_ready,
    .destroy = s_probe_destroy,
};

/* config: a device_spec_t * to claim instead of the probe's own. */
static device_t *s_probe_new(const void *config, device_env_t *env)
{
    probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->dev = (device_t){.ops = &s_probe_ops, .env = env};
    p->dev.spec = config ? *(const device_spec_t *)config
                         : (device_spec_t){
                               .name = "probe",
                               .n_ranges = 2,
                               .ranges = {{.start = PORT, .len = 8},
                                          {.mmio = true, .start = MMIO, .len = 0x1000}},
                               .n_irq_lines = 1,
                               .irq_lines = {IRQ},
                               .msi_count = 1,
                               .n_doorbells = 1,
                               .doorbells = {{.address = DOORBELL, .length = 4}},
                           };
    return &p->dev;
}

static device_t *s_failing_new(const void *config, device_env_t *env)
{
    (void)config;
    (void)env;
    errno = ENODEV;
    return NULL;
}

/* ---- Helpers ---------------------------------------------------------------------- */

static fake_vm_t *s_vm;
static rt_client_t *s_owner, *s_console;

static void s_setup(void)
{
    s_vm = fake_vm_new();
    cr_assert_not_null(s_vm);
    s_owner = fake_vm_client(s_vm, OWNER);
    s_console = fake_vm_client(s_vm, CONSOLE);
    cr_assert(s_owner && s_console);
}

static void s_teardown(void)
{
    fake_vm_destroy(&s_vm);
}

static device_actor_config_t s_config(void)
{
    return (device_actor_config_t){.new_model = s_probe_new, .partition = FAKE_VM_PARTITION,
                                   .owner = OWNER, .manager = MANAGER, .console = CONSOLE};
}

/* Starts the probe as cfg says, registered; takes the owner's
 * DeviceRegistered. */
static void s_start_with(const device_actor_config_t *cfg)
{
    cr_assert_eq(fake_vm_start(s_vm, DEV, cfg, 0, NULL), 0);
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_owner, 2000);
    cr_assert_not_null(env, "the owner hears of the registration");
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_REGISTERED);
}

static void s_start(void)
{
    device_actor_config_t cfg = s_config();
    s_start_with(&cfg);
}

static uint64_t s_read(bool mmio, uint64_t address, uint32_t size)
{
    uint64_t value;
    int rc = fake_vm_read(s_vm, DEV, mmio, address, size, &value);
    cr_assert_eq(rc, 0, "a read at 0x%llx: %d %s", (unsigned long long)address, rc,
                 s_vm->last_error);
    return value;
}

static void s_write(bool mmio, uint64_t address, uint32_t size, uint64_t value)
{
    int rc = fake_vm_write(s_vm, DEV, mmio, address, size, value);
    cr_assert_eq(rc, 0, "a write at 0x%llx: %d %s", (unsigned long long)address, rc,
                 s_vm->last_error);
}

static long long s_inspect(const char *name)
{
    return fake_vm_inspect(s_vm, DEV, name);
}

/* Sends a device event from c to the device. */
static void s_event_from(rt_client_t *c, Vmm__Devices__Event *ev)
{
    cr_assert_eq(fake_vm_send_event(c, DEV, ev), 0);
}

static void s_console_written(rt_client_t *c, uint64_t total)
{
    Vmm__Devices__ConsoleWritten w = VMM__DEVICES__CONSOLE_WRITTEN__INIT;
    w.total = total;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN;
    ev.console_written = &w;
    s_event_from(c, &ev);
}

static void s_console_input(rt_client_t *c, const char *bytes)
{
    Vmm__Devices__ConsoleInput in = VMM__DEVICES__CONSOLE_INPUT__INIT;
    in.data = (ProtobufCBinaryData){strlen(bytes), (uint8_t *)bytes};
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_INPUT;
    ev.console_input = &in;
    s_event_from(c, &ev);
}

/* Waits until the probe's inspect value `name` is want (at most 2 s). */
static void s_wait_inspect(const char *name, long long want)
{
    long long got = -1;
    for (int i = 0; i < 2000 && (got = s_inspect(name)) != want; i++)
        usleep(1000);
    cr_expect_eq(got, want, "%s is %lld, not %lld", name, got, want);
}

/* ---- Registration ------------------------------------------------------------------ */

Test(registration, asks_for_what_the_model_claims_and_tells_the_owner, .init = s_setup,
     .fini = s_teardown)
{
    device_actor_config_t cfg = s_config();
    rt_msg_t reg;
    cr_assert_eq(fake_vm_start(s_vm, DEV, &cfg, 0, &reg), 0);
    cr_assert_not_null(reg.env, "it registered without being asked twice");
    const Vmm__Devices__RegisterDevice *r = reg.env->device_request->register_device;
    cr_expect_str_eq(reg.env->sender, DEV);
    cr_expect_str_eq(r->name, "probe");
    cr_assert_eq(r->n_ports, 1);
    cr_expect_eq(r->ports[0]->start, PORT);
    cr_expect_eq(r->ports[0]->len, 8);
    cr_assert_eq(r->n_mmio, 1);
    cr_expect_eq(r->mmio[0]->start, MMIO);
    cr_expect_eq(r->mmio[0]->end, MMIO + 0x1000);
    cr_assert_eq(r->n_irq_lines, 1);
    cr_expect_eq(r->irq_lines[0], IRQ);
    cr_expect_eq(r->msi_count, 1);
    cr_assert_eq(r->n_doorbells, 1);
    cr_expect_eq(r->doorbells[0]->guest_address, DOORBELL);
    cr_expect_eq(r->doorbells[0]->length, 4);
    cr_expect(r->required);
    cr_expect_not(r->posted_writes);
    cr_expect_str_eq(r->endpoint, "", "in the VM's process");
    rt_msg_release(&reg);

    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_owner, 2000);
    cr_assert_not_null(env);
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_REGISTERED);
    cr_expect_str_eq(env->device_event->registered->name, "probe");
    cr_expect_eq(env->device_event->registered->handle, 1);
    cr_expect_null(env->device_event->registered->error);
    char text[64];
    cr_assert_eq(fake_vm_inspect_text(s_vm, DEV, "registration", text, sizeof text), 0);
    cr_expect_str_eq(text, "registered");
}

Test(registration, a_refusal_reaches_the_owner_and_the_device_stays_up, .init = s_setup,
     .fini = s_teardown)
{
    device_actor_config_t cfg = s_config();
    cr_assert_eq(fake_vm_start(s_vm, DEV, &cfg, VMM__ERROR_CODE__BUSY, NULL), 0);
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_owner, 2000);
    cr_assert_not_null(env);
    const Vmm__Devices__DeviceRegistered *r = env->device_event->registered;
    cr_expect_eq(r->handle, 0);
    cr_assert_not_null(r->error);
    cr_expect_eq(r->error->code, VMM__ERROR_CODE__BUSY);
    cr_expect_neq(strstr(r->error->text, "refuses probe"), NULL, "%s", r->error->text);
    char text[128];
    cr_assert_eq(fake_vm_inspect_text(s_vm, DEV, "registration", text, sizeof text), 0);
    cr_expect_neq(strstr(text, "refused"), NULL, "%s", text);
    cr_expect_eq(s_read(false, P_SCRATCH, 1), 0, "it answers all the same");
}

Test(registration, without_a_partition_nothing_registers_and_effects_are_unsent,
     .init = s_setup, .fini = s_teardown)
{
    device_actor_config_t cfg = {.new_model = s_probe_new};
    cr_assert_eq(fake_vm_start(s_vm, DEV, &cfg, 0, NULL), 0);
    s_write(false, P_CMD, 1, C_MSI);
    s_write(false, P_CMD, 1, C_POWER_OFF);
    s_write(false, P_CMD, 1, C_GUEST_CALL);
    cr_expect_eq(s_inspect("unsent"), 3);
    s_write(false, P_CMD, 1, C_LINE);
    cr_expect_eq(s_inspect("console_dropped"), 3, "no console: discarded, counted");
    fake_vm_expect_quiet(s_vm, s_vm->partition, 50);
}

Test(registration, a_bad_model_or_config_fails_start, .init = s_setup, .fini = s_teardown)
{
    rt_actor_spec_t none = {.name = DEV, .ops = &device_actor_ops};
    cr_expect_eq(rt_actor_start(s_vm->ex, &none), -EINVAL, "no config");
    device_actor_config_t failing = {.new_model = s_failing_new};
    cr_expect_eq(fake_vm_start(s_vm, DEV, &failing, 0, NULL), -ENODEV, "the model's errno");
    const device_spec_t bad[] = {
        {.name = "empty", .n_ranges = 1, .ranges = {{.start = PORT, .len = 0}}},
        {.name = "wide", .n_ranges = 1, .ranges = {{.start = 0xfff0, .len = 0x20}}},
        {.name = "", .n_ranges = 1, .ranges = {{.start = PORT, .len = 1}}},
        {.name = "none", .n_ranges = 0},
        {.name = "bell", .n_ranges = 1, .ranges = {{.start = PORT, .len = 1}},
         .n_doorbells = 1, .doorbells = {{.address = DOORBELL}}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        device_actor_config_t cfg = {.new_model = s_probe_new, .model_config = &bad[i],
                                     .partition = FAKE_VM_PARTITION};
        cr_expect_eq(fake_vm_start(s_vm, DEV, &cfg, 0, NULL), -EINVAL, "spec %zu", i);
    }
    fake_vm_expect_quiet(s_vm, s_vm->partition, 20);
}

/* ---- Accesses ----------------------------------------------------------------------- */

Test(access, ports_and_mmio_of_every_width, .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_write(false, P_SCRATCH, 1, 0xab);
    cr_expect_eq(s_read(false, P_SCRATCH, 1), 0xab);
    s_write(false, P_SCRATCH, 4, 0x12345678);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0x12345678);
    cr_expect_eq(s_read(false, P_SCRATCH, 2), 0x5678, "the low bytes");
    cr_expect_eq(s_read(true, MMIO, 8), 0x1122334455667788ull);
    cr_expect_eq(s_read(true, MMIO + 8, 4), 0x55667780u, "its offset mixed in");
    s_write(true, MMIO + 16, 8, 0x0102030405060708ull);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0x05060708);
    cr_expect_eq(s_inspect("reads"), 6);
    cr_expect_eq(s_inspect("writes"), 3);
}

Test(access, posted_writes_get_no_reply_and_keep_their_order, .init = s_setup,
     .fini = s_teardown)
{
    s_start();
    for (uint32_t v = 1; v <= 50; v++)
        cr_assert_eq(fake_vm_write_posted(s_vm, DEV, false, P_SCRATCH, 1, v), 0);
    cr_expect_eq(s_read(false, P_SCRATCH, 1), 50, "applied in order, before the next read");
    cr_expect_eq(s_inspect("posted_writes"), 50);
    fake_vm_expect_quiet(s_vm, s_vm->vp, 50);
}

Test(access, bad_input_is_refused_counted_and_survived, .init = s_setup, .fini = s_teardown)
{
    s_start();
    uint64_t value;
    static const struct {
        bool mmio;
        uint64_t address;
        uint32_t size;
    } reads[] = {
        {false, PORT + 8, 1},     /* past the ports */
        {false, PORT + 6, 4},     /* runs past them */
        {false, P_SCRATCH, 3},    /* no such width */
        {false, P_SCRATCH, 8},    /* 8 bytes: MMIO only */
        {true, MMIO + 0x1000, 1}, /* past the MMIO range */
        {true, PORT, 1},          /* a port number as an MMIO address */
        {false, P_SCRATCH, 0},
    };
    long long refused = 0;
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++) {
        int rc = fake_vm_read(s_vm, DEV, reads[i].mmio, reads[i].address, reads[i].size, &value);
        cr_expect_eq(rc, VMM__ERROR_CODE__INVALID_ARGUMENT, "read %zu: %d", i, rc);
        cr_expect_neq(strstr(s_vm->last_error, DEV), NULL, "the text names it: %s",
                      s_vm->last_error);
        refused++;
    }
    cr_expect_eq(fake_vm_write(s_vm, DEV, false, P_SCRATCH, 3, 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "a 3-byte write");
    refused++;
    cr_expect_eq(fake_vm_read(s_vm, DEV, false, P_REFUSED, 1, &value),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "the model refused it");
    refused++;

    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    cr_expect_eq(fake_vm_request(s_vm, DEV, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "no op");
    Vmm__Devices__MapGuestMemory map = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY;
    req.map_guest_memory = &map;
    cr_expect_eq(fake_vm_request(s_vm, DEV, &req, NULL), VMM__ERROR_CODE__NOT_SUPPORTED,
                 "a request for the partition");
    refused += 2;

    /* A read sent one-way cannot be answered: dropped and counted. */
    Vmm__Devices__ReadIo read_io = VMM__DEVICES__READ_IO__INIT;
    read_io.port = P_SCRATCH;
    read_io.size = 1;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
    req.read_io = &read_io;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    cr_assert_eq(rt_send(rt_client_actor(s_vm->vp), DEV, &env), 0);
    refused++;
    cr_expect_eq(s_read(false, P_SCRATCH, 1), 0, "it still serves");
    cr_expect_eq(s_inspect("bad_requests"), refused);
    fake_vm_expect_quiet(s_vm, s_vm->vp, 20);
}

/* ---- Deferred answers ------------------------------------------------------------ */

/* Sends a request and expects IoDeferred; returns its token. */
static uint64_t s_expect_deferred(Vmm__Devices__Request *req)
{
    rt_msg_t reply;
    cr_assert_eq(fake_vm_request(s_vm, DEV, req, &reply), 0, "%s", s_vm->last_error);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
    cr_assert_eq(reply.env->device_reply->result_case, VMM__DEVICES__REPLY__RESULT_DEFERRED);
    uint64_t token = reply.env->device_reply->deferred->token;
    rt_msg_release(&reply);
    cr_expect_neq(token, 0);
    return token;
}

static const Vmm__Devices__IoCompleted *s_expect_completed(uint64_t token)
{
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_vm->vp, 2000);
    cr_assert_not_null(env, "the deferred access was completed");
    cr_assert_eq(env->request_id, 0, "one-way");
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_DEVICE_EVENT);
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_IO_COMPLETED);
    const Vmm__Devices__IoCompleted *done = env->device_event->io_completed;
    cr_expect_eq(done->token, token);
    cr_expect_null(done->error);
    return done;
}

Test(deferred, a_read_is_answered_later_by_io_completed, .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_write(false, P_SCRATCH, 2, 0xbeef);
    Vmm__Devices__ReadIo read_io = VMM__DEVICES__READ_IO__INIT;
    read_io.port = P_SLOW;
    read_io.size = 2;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
    req.read_io = &read_io;
    uint64_t token = s_expect_deferred(&req);
    cr_expect_eq(s_read(false, P_SCRATCH, 2), 0xbeef, "others are served meanwhile");
    const Vmm__Devices__IoCompleted *done = s_expect_completed(token);
    cr_assert_eq(done->data.len, 2);
    cr_expect_eq(done->data.data[0] | done->data.data[1] << 8, 0xbeef);
    cr_expect_eq(s_inspect("deferred"), 1);
    cr_expect_eq(s_inspect("completed"), 1);
}

Test(deferred, a_write_too_and_one_done_at_once_is_answered_at_once, .init = s_setup,
     .fini = s_teardown)
{
    s_start();
    uint8_t byte = 0x42;
    Vmm__Devices__WriteIo write_io = VMM__DEVICES__WRITE_IO__INIT;
    write_io.port = P_SLOW;
    write_io.data = (ProtobufCBinaryData){1, &byte};
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
    req.write_io = &write_io;
    uint64_t token = s_expect_deferred(&req);
    cr_expect_eq(s_expect_completed(token)->data.len, 0, "a write's completion has no data");
    cr_expect_eq(s_read(false, P_AT_ONCE, 1), 0x77);
    cr_expect_eq(s_inspect("deferred"), 1, "the one completed at once was never outstanding");
    fake_vm_expect_quiet(s_vm, s_vm->vp, 50);
}

/* ---- Effects ------------------------------------------------------------------------ */

Test(effects, leave_as_messages_before_the_access_is_answered, .init = s_setup,
     .fini = s_teardown)
{
    s_start();
    /* A line set in a posted write: an event. */
    cr_assert_eq(fake_vm_write_posted(s_vm, DEV, false, P_CMD, 1, C_IRQ_HIGH), 0);
    fake_vm_expect_irq_line(s_vm, s_vm->partition, IRQ, true);
    cr_expect_not(s_vm->last_was_request);
    /* In a write a VP waits on: a request, acknowledged before the write is. */
    cr_assert_eq(fake_vm_write_begin(s_vm, DEV, false, P_CMD, 1, C_IRQ_LOW), 0);
    fake_vm_expect_irq_line(s_vm, s_vm->partition, IRQ, false);
    cr_expect(s_vm->last_was_request);
    cr_expect_eq(fake_vm_write_end(s_vm), 0);
    s_write(false, P_CMD, 1, C_IRQ_LOW); /* only changes are sent */
    s_write(false, P_CMD, 1, C_MSI);
    fake_vm_expect_msi(s_vm, s_vm->partition, 0xfee00000, 0x31);
    cr_assert_eq(fake_vm_write_begin(s_vm, DEV, false, P_CMD, 1, C_POWER_OFF), 0);
    fake_vm_expect_power(s_vm, s_vm->partition,
                         VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, true, 7);
    cr_expect(s_vm->last_was_request, "a power request lands before the VP goes on");
    cr_expect_eq(fake_vm_write_end(s_vm), 0);
    s_write(false, P_CMD, 1, C_GUEST_CALL);
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_owner, 2000);
    cr_assert_not_null(env);
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_GUEST_CALL);
    const Vmm__Devices__GuestCall *call = env->device_event->guest_call;
    cr_expect_eq(call->vp_index, 3);
    cr_expect_eq(call->kind, 9);
    cr_assert_eq(call->n_args, 2);
    cr_expect_eq(call->args[1], 2);
    fake_vm_expect_quiet(s_vm, s_vm->partition, 20);
}

/* ---- The wall clock ------------------------------------------------------------- */

/* The host's time in seconds as the runtime reads it: time() is the
 * kernel's coarse clock, which may still show the second before. */
static time_t s_realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

Test(wall_clock, reads_the_host_s_real_time, .init = s_setup, .fini = s_teardown)
{
    s_start();
    time_t before = s_realtime_s();
    s_write(false, P_CMD, 1, C_WALL_S);
    uint64_t seconds = s_read(false, P_SCRATCH, 4);
    time_t after = s_realtime_s();
    cr_expect_geq(seconds, (uint64_t)before, "%llu s, before it %lld s",
                  (unsigned long long)seconds, (long long)before);
    cr_expect_leq(seconds, (uint64_t)after);
}

/* Starts recording the fake VM's runtime into a new file made from the
 * mkstemp() template path. */
static void s_trace_start(char *path)
{
    char err[1024] = "";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    rt_trace_config_t trace = {.path = path, .process = "device_actor_test"};
    cr_assert_eq(rt_trace_start(s_vm->rt, &trace, err, sizeof err), 0, "%s", err);
}

/* Recorded, the reading comes back in a replay: the read that shows its ns
 * (which a new reading would not match) is answered as it was. */
Test(wall_clock, a_replay_gives_the_model_the_reading_recorded, .init = s_setup,
     .fini = s_teardown)
{
    char path[] = "/tmp/device-actor-test-XXXXXX", err[1024] = "";
    s_trace_start(path);
    s_start();
    s_write(false, P_CMD, 1, C_WALL_NS);
    uint64_t ns = s_read(false, P_SCRATCH, 4);
    s_write(false, P_CMD, 1, C_WALL_NS);
    cr_expect_neq(s_read(false, P_SCRATCH, 4), ns, "a second reading is another");
    fake_vm_destroy(&s_vm); /* the trace ends */

    rt_replay_result_t res;
    int rc = device_actor_replay(path, DEV, s_probe_new, NULL, &res, err, sizeof err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_not(res.unfinished, "%s", res.report);
    cr_expect_geq(res.inputs, 2, "the two readings among the inputs: %s", res.report);
}

/* The RTC reads the wall clock as it is made, in the actor's init: its
 * date is the host's, and a replay of it made then matches. */
Test(wall_clock, an_rtc_shows_the_host_s_date_and_its_replay_matches, .init = s_setup,
     .fini = s_teardown)
{
    char path[] = "/tmp/device-actor-test-XXXXXX", err[1024] = "";
    s_trace_start(path);
    device_actor_config_t cfg = {.new_model = dev_rtc_new, .partition = FAKE_VM_PARTITION};
    cr_assert_eq(fake_vm_start(s_vm, "vm0/dev/rtc", &cfg, 0, NULL), 0);
    static const uint8_t regs[] = {0x0b, 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
    uint64_t v[8];
    time_t before = s_realtime_s();
    cr_assert_eq(fake_vm_write(s_vm, "vm0/dev/rtc", false, 0x70, 1, 0x0b), 0);
    cr_assert_eq(fake_vm_write(s_vm, "vm0/dev/rtc", false, 0x71, 1, 0x06), 0); /* binary */
    for (size_t i = 1; i < 8; i++) {
        cr_assert_eq(fake_vm_write(s_vm, "vm0/dev/rtc", false, 0x70, 1, regs[i]), 0);
        cr_assert_eq(fake_vm_read(s_vm, "vm0/dev/rtc", false, 0x71, 1, &v[i]), 0);
    }
    time_t after = s_realtime_s();
    struct tm tm = {.tm_sec = (int)v[1], .tm_min = (int)v[2], .tm_hour = (int)v[3],
                    .tm_mday = (int)v[4], .tm_mon = (int)v[5] - 1,
                    .tm_year = (int)(v[7] * 100 + v[6]) - 1900};
    time_t shown = timegm(&tm);
    cr_expect_geq(shown, before - 1, "it shows %lld, the host %lld", (long long)shown,
                  (long long)before);
    cr_expect_leq(shown, after);
    fake_vm_destroy(&s_vm);

    rt_replay_result_t res;
    int rc = device_actor_replay(path, "vm0/dev/rtc", NULL, NULL, &res, err, sizeof err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_not(res.unfinished, "%s", res.report);
}

/* ---- The console ------------------------------------------------------------------- */

static void s_expect_output(const char *want)
{
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_console, 2000);
    cr_assert_not_null(env, "output for the console");
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_CONSOLE_OUTPUT);
    const ProtobufCBinaryData *d = &env->device_event->console_output->data;
    cr_expect_eq(d->len, strlen(want));
    cr_expect_eq(memcmp(d->data, want, d->len < strlen(want) ? d->len : strlen(want)), 0);
}

Test(console, lines_leave_at_once_and_a_partial_one_soon, .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_write(false, P_CMD, 1, C_LINE);
    s_expect_output("hi\n");
    s_write(false, P_CMD, 1, C_PARTIAL);
    s_expect_output("partial"); /* after the flush timer */
    cr_expect_eq(s_inspect("console_sent"), 10);
}

Test(console, a_full_window_leaves_no_room_until_the_console_wrote, .init = s_setup,
     .fini = s_teardown)
{
    s_start();
    for (int i = 0; i < 16; i++) {
        s_write(false, P_CMD, 1, C_4K);
        cr_expect_eq(s_read(false, P_SCRATCH, 4), 4096, "chunk %d taken whole", i);
    }
    s_write(false, P_CMD, 1, C_4K);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0, "the window is full");
    s_write(false, P_CMD, 1, C_ROOM);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0);
    s_console_written(s_console, 70000); /* more than was sent */
    s_wait_inspect("bad_requests", 1);
    s_console_written(s_vm->vp, 4096); /* not from its console */
    s_wait_inspect("denied", 1);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0, "neither made room");
    s_console_written(s_console, 8192);
    s_wait_inspect("scratch", 0xc0ffee); /* the model heard there is room */
    s_write(false, P_CMD, 1, C_ROOM);
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 8192);
    s_console_written(s_console, 4096);
    s_wait_inspect("bad_requests", 3); /* going back */
}

Test(console, input_comes_only_as_far_as_the_model_asked, .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_write(false, P_CMD, 1, C_WANT);
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_console, 2000);
    cr_assert_not_null(env);
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_CONSOLE_WANT);
    cr_expect_eq(env->device_event->console_want->total, 3);
    s_console_input(s_console, "abcd"); /* one too many */
    s_wait_inspect("bad_requests", 1);
    cr_expect_eq(s_read(false, P_INPUT, 1), 0, "refused whole");
    s_console_input(s_console, "ab");
    s_console_input(s_console, "c");
    s_wait_inspect("console_input", 3);
    cr_expect_eq(s_read(false, P_INPUT, 1), 3);
    cr_expect_eq(s_read(false, P_LAST_IN, 1), 'c');
    s_write(false, P_CMD, 1, C_WANT);
    env = fake_vm_recv(s_vm, s_console, 2000);
    cr_assert_not_null(env);
    cr_expect_eq(env->device_event->console_want->total, 6, "totals since the start");
}

/* ---- Doorbells, reset, save and restore ------------------------------------------ */

static void s_doorbell(rt_client_t *from, uint64_t handle)
{
    Vmm__Partition__DoorbellSignalled sig = VMM__PARTITION__DOORBELL_SIGNALLED__INIT;
    sig.handle = handle;
    sig.guest_address = DOORBELL;
    Vmm__Partition__Event ev = VMM__PARTITION__EVENT__INIT;
    ev.event_case = VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED;
    ev.doorbell_signalled = &sig;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_EVENT;
    env.partition_event = &ev;
    cr_assert_eq(rt_send(rt_client_actor(from), DEV, &env), 0);
}

Test(doorbell, its_signal_reaches_the_model_by_handle, .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_doorbell(s_vm->partition, FAKE_VM_DOORBELL);
    s_doorbell(s_vm->partition, FAKE_VM_DOORBELL);
    s_doorbell(s_vm->partition, FAKE_VM_DOORBELL + 1); /* not its own */
    s_doorbell(s_vm->vp, FAKE_VM_DOORBELL);            /* not from its partition */
    s_wait_inspect("bad_requests", 2);
    cr_expect_eq(s_read(false, P_DOORBELLS, 1), 2);
    cr_expect_eq(s_inspect("denied"), 1);
}

/* A life request (reset, save, restore: op) from c; returns the reply's
 * Error code, or 0 with the reply in *reply when given. */
static int s_life(rt_client_t *c, Vmm__Devices__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = req;
    rt_msg_t local, *msg = reply ? reply : &local;
    cr_assert_eq(rt_call(rt_client_actor(c), DEV, &env, msg, 2000), 0);
    int code = msg->env->body_case == VMM__ENVELOPE__BODY_ERROR ? (int)msg->env->error->code : 0;
    if (!reply || code)
        rt_msg_release(msg);
    return code;
}

Test(life, its_owner_manager_and_partition_reset_save_and_restore_it_and_nobody_else,
     .init = s_setup, .fini = s_teardown)
{
    s_start();
    s_write(false, P_SCRATCH, 4, 1234);
    Vmm__Devices__SaveDevice save = VMM__DEVICES__SAVE_DEVICE__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_SAVE_DEVICE;
    req.save_device = &save;
    cr_expect_eq(s_life(s_vm->vp, &req, NULL), VMM__ERROR_CODE__PERMISSION_DENIED);
    rt_msg_t saved;
    cr_assert_eq(s_life(s_owner, &req, &saved), 0);
    cr_assert_eq(saved.env->device_reply->result_case, VMM__DEVICES__REPLY__RESULT_DEVICE_STATE);
    Vmm__Devices__DeviceState *state = saved.env->device_reply->device_state;
    cr_expect_str_eq(state->kind, "probe");

    Vmm__Devices__ResetDevice reset = VMM__DEVICES__RESET_DEVICE__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_RESET_DEVICE;
    req.reset_device = &reset;
    cr_expect_eq(s_life(s_vm->partition, &req, NULL), 0, "its partition may too");
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 0);

    Vmm__Devices__RestoreDevice restore = VMM__DEVICES__RESTORE_DEVICE__INIT;
    restore.state = state;
    req.op_case = VMM__DEVICES__REQUEST__OP_RESTORE_DEVICE;
    req.restore_device = &restore;
    rt_client_t *manager = fake_vm_client(s_vm, MANAGER);
    cr_assert_not_null(manager);
    cr_expect_eq(s_life(manager, &req, NULL), 0, "its manager may too");
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 1234);

    Vmm__Devices__DeviceState other = VMM__DEVICES__DEVICE_STATE__INIT;
    other.kind = "serial";
    restore.state = &other;
    cr_expect_eq(s_life(s_owner, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a state of another kind");
    other.kind = "probe";
    uint8_t garbage[] = {0xff};
    other.state = (ProtobufCBinaryData){1, garbage};
    cr_expect_eq(s_life(s_owner, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a state that does not decode");
    cr_expect_eq(s_read(false, P_SCRATCH, 4), 1234, "unchanged");
    rt_msg_release(&saved);
    cr_expect_eq(s_inspect("denied"), 1);
}

/* A device host started again after a crash: the probe's state kept in
 * its file outlives accesses that come before the registration is
 * answered (here: none is), which do not write over it; once registered,
 * the VM that kept it gets it back, another VM a probe afresh. */
Test(life, a_kept_state_resumes_for_the_same_vm_only, .init = s_setup, .fini = s_teardown)
{
    char dir[] = "/tmp/device-actor-test-XXXXXX", file[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/probe.state", dir);
    device_actor_config_t cfg = s_config();
    cfg.state_file = file;
    s_start_with(&cfg);
    s_write(false, P_SCRATCH, 4, 4321);
    fake_vm_destroy(&s_vm);

    s_vm = fake_vm_new();
    cr_assert_not_null(s_vm);
    device_actor_config_t alone = cfg;
    alone.partition = NULL;
    cr_assert_eq(fake_vm_start(s_vm, DEV, &alone, 0, NULL), 0);
    s_write(false, P_SCRATCH, 4, 99); /* before any registration: not kept */
    fake_vm_destroy(&s_vm);

    uint64_t instances[] = {1, 2};
    uint64_t want[] = {4321, 0};
    for (size_t i = 0; i < 2; i++) {
        s_vm = fake_vm_new();
        cr_assert_not_null(s_vm);
        s_vm->vm_instance = instances[i];
        s_owner = fake_vm_client(s_vm, OWNER);
        cr_assert_not_null(s_owner);
        s_start_with(&cfg);
        cr_expect_eq(s_read(false, P_SCRATCH, 4), want[i], "VM instance %llu",
                     (unsigned long long)instances[i]);
        if (i == 0)
            fake_vm_destroy(&s_vm);
    }
    unlink(file);
    rmdir(dir);
}
