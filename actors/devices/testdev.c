#include "actors/devices/testdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

#define S_MSI_ADDRESS 0xfee00000u
#define S_NS_PER_MS 1000000ull

typedef struct {
    device_t dev;
    uint32_t args[TESTDEV_MAX_ARGS];
    size_t n_args;
    uint32_t delay_ms;
    bool line_high;
    /* Deferred reads of DELAY, each on the timer of its slot. */
    struct {
        device_deferred_t *token; /* NULL: the slot is free */
        uint32_t delay_ms;
    } slow[TESTDEV_MAX_DEFERRED];
    struct {
        uint64_t calls, msis, deferred, args_dropped;
    } counts;
} testdev_t;

static testdev_t *s_of(device_t *dev)
{
    return (testdev_t *)dev;
}

static int s_only_32_bits(device_t *dev, const device_io_t *io)
{
    device_log(dev, RT_LOG_INFO, "the test device takes 32-bit accesses, not %u bytes at 0x%llx",
               io->size, (unsigned long long)io->address);
    return -EINVAL;
}

/* Defers a read of DELAY for delay_ms, on a free slot's timer. */
static int s_defer_read(testdev_t *t)
{
    for (uint32_t i = 0; i < TESTDEV_MAX_DEFERRED; i++) {
        if (t->slow[i].token)
            continue;
        device_deferred_t *d = device_defer(&t->dev);
        if (!d)
            return -ENOMEM;
        int rc = device_timer_set(&t->dev, i,
                                  device_now_ns(&t->dev) + t->delay_ms * S_NS_PER_MS);
        if (rc) {
            device_complete(&t->dev, d, rc, 0);
            return DEVICE_IO_DEFERRED; /* failed, through its token */
        }
        t->slow[i].token = d;
        t->slow[i].delay_ms = t->delay_ms;
        t->counts.deferred++;
        return DEVICE_IO_DEFERRED;
    }
    device_log(&t->dev, RT_LOG_INFO, "%d reads of DELAY are in flight already",
               TESTDEV_MAX_DEFERRED);
    return -EBUSY;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    testdev_t *t = s_of(dev);
    if (io->size != 4)
        return s_only_32_bits(dev, io);
    switch (io->address) {
    case TESTDEV_PORT_DELAY:
        return s_defer_read(t);
    case TESTDEV_PORT_LINE:
        *value = t->line_high;
        return 0;
    default:
        *value = UINT32_MAX;
        return 0;
    }
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    testdev_t *t = s_of(dev);
    if (io->size != 4)
        return s_only_32_bits(dev, io);
    uint32_t v = (uint32_t)value;
    switch (io->address) {
    case TESTDEV_PORT_ARG:
        if (t->n_args < TESTDEV_MAX_ARGS)
            t->args[t->n_args++] = v;
        else
            t->counts.args_dropped++;
        return 0;
    case TESTDEV_PORT_CALL:
        t->counts.calls++;
        device_guest_call(dev, io->vp_index, v, t->args, t->n_args);
        t->n_args = 0;
        return 0;
    case TESTDEV_PORT_MSI:
        if (v >> 16) {
            device_log(dev, RT_LOG_INFO, "MSI request 0x%x: the APIC id must fit in 8 bits", v);
            return -EINVAL;
        }
        t->counts.msis++;
        device_msi(dev, S_MSI_ADDRESS | (v >> 8) << 12, v & 0xff);
        return 0;
    case TESTDEV_PORT_DELAY:
        if (v > TESTDEV_MAX_DELAY_MS) {
            device_log(dev, RT_LOG_INFO, "a delay of %u ms: at most %u", v,
                       TESTDEV_MAX_DELAY_MS);
            return -EINVAL;
        }
        t->delay_ms = v;
        return 0;
    case TESTDEV_PORT_LINE:
        if (v > 1) {
            device_log(dev, RT_LOG_INFO, "the line's level is 0 or 1, not %u", v);
            return -EINVAL;
        }
        t->line_high = v;
        device_irq_set(dev, TESTDEV_IRQ, t->line_high);
        return 0;
    default:
        device_log(dev, RT_LOG_INFO, "port 0x%llx is inside no test device register",
                   (unsigned long long)io->address);
        return -EINVAL;
    }
}

static void s_timer(device_t *dev, uint32_t id)
{
    testdev_t *t = s_of(dev);
    if (id >= TESTDEV_MAX_DEFERRED || !t->slow[id].token)
        return;
    device_deferred_t *d = t->slow[id].token;
    t->slow[id].token = NULL;
    device_complete(dev, d, 0, t->slow[id].delay_ms);
}

static void s_reset(device_t *dev)
{
    testdev_t *t = s_of(dev);
    for (uint32_t i = 0; i < TESTDEV_MAX_DEFERRED; i++)
        if (t->slow[i].token) {
            device_timer_cancel(dev, i);
            device_complete(dev, t->slow[i].token, -ECANCELED, 0);
            t->slow[i].token = NULL;
        }
    t->n_args = 0;
    t->delay_ms = 0;
    t->line_high = false;
    device_irq_set(dev, TESTDEV_IRQ, false);
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    testdev_t *t = s_of(dev);
    device_inspect_count(node, "args", t->n_args);
    device_inspect_count(node, "delay_ms", t->delay_ms);
    device_inspect_count(node, "line", t->line_high);
    device_inspect_count(node, "calls", t->counts.calls);
    device_inspect_count(node, "msis", t->counts.msis);
    device_inspect_count(node, "slow_reads", t->counts.deferred);
    device_inspect_count(node, "args_dropped", t->counts.args_dropped);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    testdev_t *t = s_of(dev);
    Vmm__DeviceState__Testdev st = VMM__DEVICE_STATE__TESTDEV__INIT;
    st.n_args = t->n_args;
    st.args = t->args;
    st.delay_ms = t->delay_ms;
    st.line_high = t->line_high;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__Testdev *st = vmm__device_state__testdev__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->n_args > TESTDEV_MAX_ARGS || st->delay_ms > TESTDEV_MAX_DELAY_MS ? -EINVAL : 0;
    if (!rc) {
        testdev_t *t = s_of(dev);
        t->n_args = st->n_args;
        for (size_t i = 0; i < st->n_args; i++)
            t->args[i] = st->args[i];
        t->delay_ms = st->delay_ms;
        t->line_high = st->line_high;
        device_irq_set(dev, TESTDEV_IRQ, t->line_high);
    }
    vmm__device_state__testdev__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "testdev",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .timer = s_timer,
    .destroy = s_destroy,
};

device_t *dev_testdev_new(const void *config, device_env_t *env)
{
    (void)config;
    testdev_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->dev = (device_t){.ops = &s_ops, .env = env};
    t->dev.spec = (device_spec_t){
        .name = "testdev",
        .n_ranges = 1,
        .ranges = {{.start = TESTDEV_PORT_BASE, .len = TESTDEV_PORT_COUNT}},
        .n_irq_lines = 1,
        .irq_lines = {TESTDEV_IRQ},
        .msi_count = 1,
    };
    return &t->dev;
}
