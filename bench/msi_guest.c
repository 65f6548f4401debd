#define _GNU_SOURCE
#include "bench/msi_guest.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bench/raw_kvm.h"

/* The guest image (//guest:bench_msi_embedded). */
extern const unsigned char guest_bench_msi_elf[];
extern const unsigned long guest_bench_msi_elf_len;

#define S_MEM (16u << 20)
#define S_MSI_ADDRESS 0xfee00000u
#define S_LOST_NS 1000000000ull
/* How long a waiter spins before it yields its core at each look. */
#define S_SPIN_NS 200000ull
#define S_BOX_STOP 4 /* the box: u32 acks, u32 stop */

/* ---- The device --------------------------------------------------------------- */

typedef struct {
    device_t dev;
    msi_guest_config_t cfg;
    uint64_t box; /* the guest's box, once it said where */
} s_dev_t;

static uint32_t s_acks(s_dev_t *d)
{
    uint32_t acks = 0;
    device_guest_read(&d->dev, d->box, &acks, sizeof acks);
    return acks;
}

/* The rounds, all at once on the device's thread: the guest needs nothing
 * else meanwhile. */
static void s_timer(device_t *dev, uint32_t id)
{
    (void)id;
    s_dev_t *d = (s_dev_t *)dev;
    for (uint32_t i = 0; i < d->cfg.rounds; i++) {
        uint32_t before = s_acks(d);
        uint64_t t0 = device_now_ns(dev), t;
        device_msi(dev, S_MSI_ADDRESS, MSI_GUEST_VECTOR);
        while (s_acks(d) == before && (t = device_now_ns(dev)) - t0 < S_LOST_NS)
            if (t - t0 > S_SPIN_NS)
                sched_yield(); /* two cores under load: the guest's thread needs one */
        t = device_now_ns(dev);
        if (t - t0 >= S_LOST_NS) {
            atomic_fetch_add(&d->cfg.tally->lost, 1);
            break;
        }
        atomic_fetch_add(&d->cfg.tally->ns, t - t0);
        atomic_fetch_add(&d->cfg.tally->rounds, 1);
    }
    /* Stop, and one more MSI: the guest may be halted already. */
    uint32_t stop = 1;
    device_guest_write(dev, d->box + S_BOX_STOP, &stop, sizeof stop);
    device_msi(dev, S_MSI_ADDRESS, MSI_GUEST_VECTOR);
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    (void)dev;
    (void)io;
    *value = 0;
    return 0;
}

/* The guest says where its box is: the rounds start once this write is
 * answered. */
static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    s_dev_t *d = (s_dev_t *)dev;
    if (io->size != 4)
        return -EINVAL;
    d->box = value;
    return device_timer_set(dev, 0, device_now_ns(dev));
}

static void s_destroy(device_t *dev)
{
    free(dev);
}

static const device_ops_t s_ops = {
    .kind = MSI_GUEST_DEV_NAME,
    .read = s_read,
    .write = s_write,
    .timer = s_timer,
    .reset = device_reset_none,
    .save = device_save_none,
    .restore = device_restore_none,
    .destroy = s_destroy,
};

device_t *msi_guest_dev_new(const void *config, device_env_t *env)
{
    s_dev_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = *(const msi_guest_config_t *)config;
    d->dev = (device_t){.ops = &s_ops, .env = env};
    d->dev.spec = (device_spec_t){.name = MSI_GUEST_DEV_NAME, .n_ranges = 1, .msi_count = 1,
                                  .ranges = {{.start = MSI_GUEST_PORT, .len = 4}}};
    return &d->dev;
}

/* ---- The bare loop -------------------------------------------------------------- */

typedef struct {
    raw_kvm_t *k;
    uint32_t rounds;
    uint64_t box;
    uint64_t ns, done;
    int rc;
    pthread_t thread;
    bool started;
} s_raw_t;

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *s_raw_main(void *arg)
{
    s_raw_t *r = arg;
    volatile uint32_t *acks = (volatile uint32_t *)((uint8_t *)r->k->mem + r->box);
    struct kvm_msi msi = {.address_lo = S_MSI_ADDRESS, .data = MSI_GUEST_VECTOR};
    for (uint32_t i = 0; i < r->rounds && !r->rc; i++) {
        uint32_t before = *acks;
        uint64_t t0 = s_now_ns(), t;
        if (ioctl(r->k->vm, KVM_SIGNAL_MSI, &msi) <= 0)
            r->rc = -EIO;
        while (!r->rc && *acks == before && (t = s_now_ns()) - t0 < S_LOST_NS)
            if (t - t0 > S_SPIN_NS)
                sched_yield(); /* as the device does */
        t = s_now_ns();
        if (t - t0 >= S_LOST_NS)
            r->rc = -ETIMEDOUT;
        r->ns += t - t0;
        r->done++;
    }
    acks[1] = 1; /* stop, and one more MSI: the guest may be halted already */
    ioctl(r->k->vm, KVM_SIGNAL_MSI, &msi);
    return NULL;
}

static int s_raw_port(void *arg, raw_kvm_t *k, bool out, uint16_t port, uint32_t size,
                      uint8_t *data, char *err, size_t errlen)
{
    s_raw_t *r = arg;
    if (!out || port != MSI_GUEST_PORT || size != 4 || r->started)
        return -ENOENT;
    uint32_t box;
    memcpy(&box, data, sizeof box);
    if ((uint64_t)box + 8 > k->mem_size) {
        snprintf(err, errlen, "the guest's box at 0x%x is outside its RAM", box);
        return -EPROTO;
    }
    r->box = box;
    r->started = !pthread_create(&r->thread, NULL, s_raw_main, r);
    if (!r->started) {
        snprintf(err, errlen, "cannot start the MSI thread");
        return -EAGAIN;
    }
    return 0;
}

static int s_raw_sync(void *arg, const uint32_t *args, size_t n)
{
    (void)arg;
    (void)args;
    (void)n;
    return -EPROTO; /* the guest makes no calls */
}

int msi_guest_raw(uint32_t rounds, double *ns, char *err, size_t errlen)
{
    raw_kvm_t k;
    s_raw_t r = {.k = &k, .rounds = rounds};
    int rc = raw_kvm_open(&k, guest_bench_msi_elf, guest_bench_msi_elf_len, S_MEM, err, errlen);
    const raw_kvm_guest_t guest = {.port = s_raw_port, .sync = s_raw_sync, .arg = &r};
    if (!rc)
        rc = raw_kvm_run(&k, &guest, err, errlen);
    if (r.started)
        pthread_join(r.thread, NULL);
    raw_kvm_close(&k);
    if (!rc && r.rc)
        snprintf(err, errlen, "the raw MSI thread: %s", strerror(-r.rc));
    if (!rc && (rc = r.rc) == 0)
        *ns = r.done ? (double)r.ns / (double)r.done : 0;
    return rc;
}

/* ---- The VMM -------------------------------------------------------------------- */

vm_t *msi_guest_vm_new(uint32_t rounds, msi_guest_tally_t *tally, vm_placement_t placement,
                       const char *partition_endpoint, char *err, size_t errlen)
{
    msi_guest_config_t dev = {.rounds = rounds, .tally = tally};
    const vm_device_t devices[] = {
        {.name = MSI_GUEST_DEV, .new_model = msi_guest_dev_new, .model_config = &dev},
    };
    vm_config_t vm = {
        .elf = guest_bench_msi_elf,
        .elf_len = guest_bench_msi_elf_len,
        .serial_out = STDERR_FILENO,
        .serial_in = -1,
        .placement = placement,
        .partition_endpoint = partition_endpoint,
        .devices = devices,
        .n_devices = tally ? 1 : 0,
    };
    return vm_new(&vm, err, errlen);
}

int msi_guest_vm_run(vm_t *vm, uint32_t rounds, msi_guest_tally_t *tally, double *ns,
                     char *err, size_t errlen)
{
    int rc = vm_start(vm);
    if (rc) {
        snprintf(err, errlen, "the VP did not start: %s", strerror(-rc));
        return rc;
    }
    vm_event_t ev;
    int timeout_ms = 60000 + (int)rounds; /* 1 ms an MSI */
    if (vm_next_event(vm, &ev, timeout_ms)) {
        snprintf(err, errlen, "the guest did not end within %d ms", timeout_ms);
        return -ETIMEDOUT;
    }
    if (ev.kind != VM_EVENT_HALT || ev.reason != VMM__VP__HALTED__REASON_POWER_OFF) {
        snprintf(err, errlen, "the guest ended otherwise: %s", ev.text);
        return -EPROTO;
    }
    uint64_t done = atomic_load(&tally->rounds);
    if (atomic_load(&tally->lost) || done != rounds) {
        snprintf(err, errlen, "%llu of %u MSIs counted, %llu lost", (unsigned long long)done,
                 rounds, (unsigned long long)atomic_load(&tally->lost));
        return -EPROTO;
    }
    *ns = (double)atomic_load(&tally->ns) / (double)done;
    return 0;
}
