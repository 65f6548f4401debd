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
#define S_PORT_CONFIG 0x5d0 /* inl: the iterations per timed loop */
#define S_PORT_WRITE 0x5d4  /* outl: a write the device acknowledges */
#define S_PORT_POSTED 0x5d8 /* outl: a write sent one-way */
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

/* ---- The bench device model ------------------------------------------------------ */

typedef struct {
    device_t dev;
    io_guest_dev_config_t cfg;
} s_dev_t;

static s_dev_t *s_dev(device_t *dev)
{
    return (s_dev_t *)dev;
}

static int s_dev_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    if (io->mmio || io->address != S_PORT_CONFIG || io->size != 4) {
        device_log(dev, RT_LOG_INFO, "no register at 0x%llx", (unsigned long long)io->address);
        return -EINVAL;
    }
    *value = s_dev(dev)->cfg.iterations;
    return 0;
}

static int s_dev_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    (void)io;
    (void)value;
    s_dev_t *d = s_dev(dev);
    atomic_fetch_add_explicit(d->cfg.posted ? &d->cfg.tally->posted : &d->cfg.tally->writes, 1,
                              memory_order_relaxed);
    return 0;
}

static void s_dev_doorbell(device_t *dev, size_t index)
{
    (void)index;
    atomic_fetch_add_explicit(&s_dev(dev)->cfg.tally->doorbells, 1, memory_order_relaxed);
}

static void s_dev_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    rt_inspect_add(node, "posted", "%d", s_dev(dev)->cfg.posted);
}

static void s_dev_destroy(device_t *dev)
{
    free(s_dev(dev));
}

static const device_ops_t s_dev_ops = {
    .kind = "bench",
    .read = s_dev_read,
    .write = s_dev_write,
    .reset = device_reset_none,
    .inspect = s_dev_inspect,
    .save = device_save_none,
    .restore = device_restore_none,
    .doorbell = s_dev_doorbell,
    .destroy = s_dev_destroy,
};

device_t *io_guest_dev_new(const void *config, device_env_t *env)
{
    s_dev_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = *(const io_guest_dev_config_t *)config;
    d->dev = (device_t){.ops = &s_dev_ops, .env = env};
    if (d->cfg.posted) {
        d->dev.spec = (device_spec_t){.name = "bench-posted", .n_ranges = 1,
                                      .ranges = {{.start = S_PORT_POSTED, .len = 4}},
                                      .posted_writes = true};
    } else {
        /* The doorbell is the acknowledging device's, in its MMIO range. */
        d->dev.spec = (device_spec_t){
            .name = "bench",
            .n_ranges = 2,
            .ranges = {{.start = S_PORT_CONFIG, .len = 8},
                       {.mmio = true, .start = S_DOORBELL, .len = 4}},
            .n_doorbells = 1,
            .doorbells = {{.address = S_DOORBELL, .length = 4}},
        };
    }
    return &d->dev;
}

/* ---- The actor VMM ------------------------------------------------------------ */

vm_t *io_guest_vm_new(const io_guest_vm_config_t *cfg, char *err, size_t errlen)
{
    io_guest_dev_config_t ack = {.iterations = cfg->iterations, .tally = cfg->tally};
    io_guest_dev_config_t posted = {.posted = true, .iterations = cfg->iterations,
                                    .tally = cfg->tally};
    const vm_device_t devices[] = {
        {.name = IO_GUEST_DEV, .new_model = io_guest_dev_new, .model_config = &ack},
        {.name = IO_GUEST_DEV_POSTED, .new_model = io_guest_dev_new, .model_config = &posted},
    };
    rt_trace_config_t trace = {.path = cfg->trace, .process = "vm_bench"};
    vm_config_t vm = {
        .trace = cfg->trace ? &trace : NULL,
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
    int rc = vm_start(vm);
    if (rc)
        snprintf(err, errlen, "the VPs did not start: %s", strerror(-rc));
    if (!rc)
        rc = s_events(vm, iterations, r, tally, err, errlen);
    if (!rc)
        rc = s_check_tally(iterations, tally, err, errlen);
    r->doorbell_signals = (double)atomic_load(&tally->doorbells) / IO_GUEST_OPS(iterations);
    return rc;
}

int io_guest_in_process(vm_placement_t placement, uint32_t iterations, const char *trace,
                        io_guest_report_t *r, char *err, size_t errlen)
{
    io_guest_tally_t tally = {0};
    io_guest_vm_config_t cfg = {.iterations = iterations, .placement = placement,
                                .tally = &tally, .trace = trace};
    vm_t *vm = io_guest_vm_new(&cfg, err, errlen);
    if (!vm)
        return -EIO;
    int rc = io_guest_vm_run(vm, iterations, &tally, r, err, errlen);
    vm_destroy(&vm);
    return rc;
}
