#include "actors/devices/power.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/device_state.pb-c.h"

#define S_SLP_EN 0x2000

typedef struct {
    device_t dev;
    uint16_t port;
    uint16_t pm1_cnt; /* without SLP_EN */
    uint64_t power_offs;
} power_t;

static power_t *s_of(device_t *dev)
{
    return (power_t *)dev;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    power_t *p = s_of(dev);
    *value = (uint32_t)p->pm1_cnt >> (8 * (io->address - p->port));
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    power_t *p = s_of(dev);
    unsigned shift = 8 * (unsigned)(io->address - p->port);
    uint32_t mask = (io->size == 1 ? 0xffu : 0xffffu) << shift;
    uint32_t cnt = (p->pm1_cnt & ~mask) | (((uint32_t)value << shift) & mask);
    if (cnt & S_SLP_EN) {
        p->power_offs++;
        device_power(dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, -1);
    }
    p->pm1_cnt = (uint16_t)(cnt & ~S_SLP_EN);
    return 0;
}

static void s_reset(device_t *dev)
{
    s_of(dev)->pm1_cnt = 0;
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    power_t *p = s_of(dev);
    rt_inspect_add(node, "pm1_cnt", "0x%04x", p->pm1_cnt);
    device_inspect_count(node, "power_offs", p->power_offs);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    Vmm__DeviceState__Pm1a st = VMM__DEVICE_STATE__PM1A__INIT;
    st.pm1_cnt = s_of(dev)->pm1_cnt;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__Pm1a *st = vmm__device_state__pm1a__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->pm1_cnt > 0xffff || (st->pm1_cnt & S_SLP_EN) ? -EINVAL : 0;
    if (!rc)
        s_of(dev)->pm1_cnt = (uint16_t)st->pm1_cnt;
    vmm__device_state__pm1a__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "pm1a",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

device_t *dev_power_new(const void *config, device_env_t *env)
{
    const dev_power_config_t *cfg = config;
    power_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->port = cfg && cfg->port ? cfg->port : 0x604;
    p->dev = (device_t){.ops = &s_ops, .env = env};
    p->dev.spec = (device_spec_t){.name = "pm1a", .n_ranges = 1,
                                  .ranges = {{.start = p->port, .len = 2}}};
    return &p->dev;
}
