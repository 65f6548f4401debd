#include "bench/io_guest.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "actors/devices/device.h"
#include "actors/devices/testdev_abi.h"
#include "bench/raw_kvm.h"

/* The guest's ports and address: guest/bench_io.c has the same numbers. */
#define S_PORT_CONFIG 0x5f0 /* inl: the iterations per timed loop */
#define S_PORT_WRITE 0x5f4  /* outl: a write the device acknowledges */
#define S_PORT_POSTED 0x5f8 /* outl: a write sent one-way */
#define S_DOORBELL 0xd0000000ull
#define S_ALL_MODES ((1u << IO_GUEST_MODES) - 1)

#define S_MEM VM_DEFAULT_MEM

/* The guest image (//guest:bench_io_embedded). */
extern const unsigned char guest_bench_io_elf[];
extern const unsigned long guest_bench_io_elf_len;

/* Takes a sync point's arguments: mode, cycles low, cycles high. */
static int s_take_sync(io_guest_report_t *r, const uint32_t *args, size_t n_args)
{
    if (n_args < 3 || args[0] < 1 || args[0] > IO_GUEST_MODES)
        return -EPROTO;
    r->cycles[args[0] - 1] = (uint64_t)args[2] << 32 | args[1];
    r->seen |= 1u << (args[0] - 1);
    return 0;
}

double io_guest_ns_per_op(uint64_t cycles, uint32_t iterations, uint32_t tsc_khz)
{
    return (double)cycles * 1e6 / tsc_khz / iterations;
}

/* ---- The raw harness: one vCPU, no actors ---------------------------------- */

/* The bare VM, its doorbell an ioeventfd nobody reads: *efd. */
static int s_raw_open(raw_kvm_t *k, int *efd, char *err, size_t errlen)
{
    int rc = raw_kvm_open(k, guest_bench_io_elf, guest_bench_io_elf_len, S_MEM, err, errlen);
    if (rc)
        return rc;
    struct kvm_ioeventfd io = {.addr = S_DOORBELL, .len = 4};
    if ((*efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        (io.fd = *efd, ioctl(k->vm, KVM_IOEVENTFD, &io) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "the doorbell's ioeventfd: %s", strerror(errno));
    }
    return rc;
}

typedef struct {
    uint32_t iterations;
    io_guest_report_t *report;
    int (*on_write)(void *arg, bool posted);
    void *arg;
} s_raw_t;

/* The bench ports, answered inline. */
static int s_raw_port(void *arg, raw_kvm_t *k, bool out, uint16_t port, uint32_t size,
                      uint8_t *data, char *err, size_t errlen)
{
    const s_raw_t *raw = arg;
    (void)k;
    if (out && (port == S_PORT_WRITE || port == S_PORT_POSTED)) {
        int rc = raw->on_write ? raw->on_write(raw->arg, port == S_PORT_POSTED) : 0;
        if (rc)
            snprintf(err, errlen, "a write's own work: %s", strerror(-rc));
        return rc;
    }
    if (!out && port == S_PORT_CONFIG && size == 4) {
        memcpy(data, &raw->iterations, 4);
        return 0;
    }
    return -ENOENT;
}

static int s_raw_sync(void *arg, const uint32_t *args, size_t n)
{
    return s_take_sync(((const s_raw_t *)arg)->report, args, n);
}

int io_guest_raw(uint32_t iterations, int (*on_write)(void *arg, bool posted), void *arg,
                 io_guest_report_t *r, uint32_t *tsc_khz, char *err, size_t errlen)
{
    raw_kvm_t k;
    int efd = -1;
    memset(r, 0, sizeof *r);
    int rc = s_raw_open(&k, &efd, err, errlen);
    *tsc_khz = k.tsc_khz;
    s_raw_t raw = {.iterations = iterations, .report = r, .on_write = on_write, .arg = arg};
    const raw_kvm_guest_t guest = {.port = s_raw_port, .sync = s_raw_sync, .arg = &raw};
    if (!rc)
        rc = raw_kvm_run(&k, &guest, err, errlen);
    uint64_t signals = 0;
    if (!rc) {
        if (read(efd, &signals, sizeof signals) != sizeof signals ||
            signals != IO_GUEST_OPS(iterations)) {
            rc = -EPROTO;
            snprintf(err, errlen, "the raw doorbell counted %llu writes of %u",
                     (unsigned long long)signals, IO_GUEST_OPS(iterations));
        }
    }
    if (!rc && r->seen != S_ALL_MODES) {
        rc = -EPROTO;
        snprintf(err, errlen, "the guest reported only modes 0x%x", r->seen);
    }
    if (efd >= 0)
        close(efd);
    raw_kvm_close(&k);
    return rc;
}

/* ---- The bench device actors ------------------------------------------------ */

typedef struct {
    device_t dev;
    io_guest_dev_config_t cfg;
} s_dev_t;

static int s_dev_on_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_dev_t *d = rt_actor_state(self);
    device_access_t a;
    if (device_access_get(&d->dev, self, msg, &a))
        return 0;
    if (!a.write) {
        if (a.port != S_PORT_CONFIG || a.size != 4)
            return device_access_refuse(&d->dev, self, msg, "no register at 0x%x", a.port);
        return device_access_done(&d->dev, self, msg, &a, d->cfg.iterations);
    }
    atomic_fetch_add_explicit(d->cfg.posted ? &d->cfg.tally->posted : &d->cfg.tally->writes, 1,
                              memory_order_relaxed);
    return device_access_done(&d->dev, self, msg, &a, 0);
}

static int s_dev_on_partition_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_dev_t *d = rt_actor_state(self);
    if (msg->partition_event->event_case == VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED)
        atomic_fetch_add_explicit(&d->cfg.tally->doorbells, 1, memory_order_relaxed);
    return 0;
}

static int s_dev_init(rt_actor_t *self, void *arg)
{
    s_dev_t *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = *(const io_guest_dev_config_t *)arg;
    const device_range_t ack_ports = {S_PORT_CONFIG, 8}, posted_ports = {S_PORT_POSTED, 4};
    device_spec_t spec = {
        .name = d->cfg.posted ? "bench-posted" : "bench",
        .ranges = d->cfg.posted ? &posted_ports : &ack_ports,
        .n_ranges = 1,
        .posted_writes = d->cfg.posted,
    };
    int rc = device_init(&d->dev, self, VM_PARTITION, &spec);
    if (rc) {
        free(d);
        return rc;
    }
    rt_actor_set_state(self, d);
    return 0;
}

static void s_dev_fini(rt_actor_t *self)
{
    s_dev_t *d = rt_actor_state(self);
    device_fini(&d->dev);
    free(d);
    rt_actor_set_state(self, NULL);
}

static const rt_handler_t s_dev_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_dev_on_request},
    {VMM__ENVELOPE__BODY_PARTITION_EVENT, s_dev_on_partition_event},
};

const rt_actor_ops_t io_guest_dev_ops = {
    .kind = "bench-device",
    .init = s_dev_init,
    .fini = s_dev_fini,
    .handlers = s_dev_handlers,
    .n_handlers = sizeof s_dev_handlers / sizeof *s_dev_handlers,
};

/* ---- The actor VMM ------------------------------------------------------------ */

vm_t *io_guest_vm_new(const io_guest_vm_config_t *cfg, char *err, size_t errlen)
{
    io_guest_dev_config_t ack = {.iterations = cfg->iterations, .tally = cfg->tally};
    io_guest_dev_config_t posted = {.posted = true, .iterations = cfg->iterations,
                                    .tally = cfg->tally};
    const rt_actor_spec_t devices[] = {
        {.name = IO_GUEST_DEV, .ops = &io_guest_dev_ops, .arg = &ack},
        {.name = IO_GUEST_DEV_POSTED, .ops = &io_guest_dev_ops, .arg = &posted},
    };
    vm_config_t vm = {
        .elf = guest_bench_io_elf,
        .elf_len = guest_bench_io_elf_len,
        .serial_out = STDERR_FILENO, /* a failed guest assertion's text */
        .serial_in = -1,
        .placement = cfg->placement,
        .partition_endpoint = cfg->partition_endpoint,
        .devices = devices,
        .n_devices = cfg->tally ? sizeof devices / sizeof *devices : 0,
        .rt = cfg->rt,
    };
    return vm_new(&vm, err, errlen);
}

static int s_register_doorbell(vm_t *vm, char *err, size_t errlen)
{
    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    db.guest_address = S_DOORBELL;
    db.opt_length_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH_LENGTH;
    db.length = 4;
    db.owner = IO_GUEST_DEV;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL;
    req.register_doorbell = &db;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    rt_msg_t reply;
    int rc = rt_call(vm_client(vm), VM_PARTITION, &env, &reply, 5000);
    if (rc) {
        snprintf(err, errlen, "RegisterDoorbell: %s", strerror(-rc));
        return rc;
    }
    if (reply.env->body_case != VMM__ENVELOPE__BODY_PARTITION_REPLY) {
        snprintf(err, errlen, "RegisterDoorbell refused: %s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "an unexpected reply");
        rc = -EIO;
    }
    rt_msg_release(&reply);
    return rc;
}

/* Waits for the guest's sync points and its power off. */
static int s_events(vm_t *vm, uint32_t iterations, io_guest_report_t *r,
                    io_guest_tally_t *tally, char *err, size_t errlen)
{
    int timeout_ms = 60000 + 2 * (int)IO_GUEST_OPS(iterations); /* 2 ms an operation */
    bool off = false;
    for (;;) {
        vm_event_t ev;
        /* The halt and the last report come from different actors, and
         * may arrive in either order: after the halt, wait a little for
         * what is missing. */
        if (off && r->seen == S_ALL_MODES)
            return 0;
        if (vm_next_event(vm, &ev, off ? 1000 : timeout_ms)) {
            if (!off) {
                snprintf(err, errlen, "the guest reported nothing for %d ms", timeout_ms);
                return -ETIMEDOUT;
            }
            snprintf(err, errlen, "the guest reported only modes 0x%x", r->seen);
            return -EPROTO;
        }
        if (ev.kind == VM_EVENT_HALT) {
            off = ev.reason == VMM__VP__HALTED__REASON_POWER_OFF;
            if (off)
                continue;
            snprintf(err, errlen, "%s", ev.text);
            return -EPROTO;
        }
        if (ev.call != TESTDEV_CALL_SYNC || s_take_sync(r, ev.args, ev.n_args)) {
            snprintf(err, errlen, "the guest made call %u (%zu args)", ev.call, ev.n_args);
            return -EPROTO;
        } else if (ev.args[0] == IO_GUEST_MODE_POSTED) {
            r->posted_taken = (double)atomic_load(&tally->posted) / IO_GUEST_OPS(iterations);
        }
    }
}

/* Waits up to 5 s for the devices to have taken every write. */
static int s_check_tally(uint32_t iterations, io_guest_tally_t *t, char *err, size_t errlen)
{
    uint64_t want = IO_GUEST_OPS(iterations);
    /* Posted writes and doorbell signals are one-way: they may still be on
     * their way when the guest reports. */
    for (int i = 0; i < 5000 && (atomic_load(&t->posted) < want || !atomic_load(&t->doorbells));
         i++)
        usleep(1000);
    if (atomic_load(&t->writes) == want && atomic_load(&t->posted) == want &&
        atomic_load(&t->doorbells) > 0)
        return 0;
    snprintf(err, errlen, "the devices took %llu writes, %llu posted writes (of %llu each) and "
                          "%llu doorbell signals",
             (unsigned long long)atomic_load(&t->writes),
             (unsigned long long)atomic_load(&t->posted), (unsigned long long)want,
             (unsigned long long)atomic_load(&t->doorbells));
    return -EPROTO;
}

int io_guest_vm_run(vm_t *vm, uint32_t iterations, io_guest_tally_t *tally,
                    io_guest_report_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int rc = s_register_doorbell(vm, err, errlen);
    if (!rc && (rc = vm_start(vm)))
        snprintf(err, errlen, "the VPs did not start: %s", strerror(-rc));
    if (!rc)
        rc = s_events(vm, iterations, r, tally, err, errlen);
    if (!rc)
        rc = s_check_tally(iterations, tally, err, errlen);
    r->doorbell_signals = (double)atomic_load(&tally->doorbells) / IO_GUEST_OPS(iterations);
    return rc;
}

int io_guest_in_process(vm_placement_t placement, uint32_t iterations, io_guest_report_t *r,
                        char *err, size_t errlen)
{
    io_guest_tally_t tally = {0};
    io_guest_vm_config_t cfg = {.iterations = iterations, .placement = placement,
                                .tally = &tally};
    vm_t *vm = io_guest_vm_new(&cfg, err, errlen);
    if (!vm)
        return -EIO;
    int rc = io_guest_vm_run(vm, iterations, &tally, r, err, errlen);
    vm_destroy(&vm);
    return rc;
}
