#include "actors/devices/debug_exit.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/device_state.pb-c.h"

typedef struct {
    device_t dev;
    uint64_t last_value, exits;
} debug_exit_t;

static debug_exit_t *s_of(device_t *dev)
{
    return (debug_exit_t *)dev;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    (void)dev;
    (void)io;
    *value = UINT64_MAX;
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    (void)io;
    debug_exit_t *d = s_of(dev);
    d->last_value = value;
    d->exits++;
    device_power(dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                 (int)((uint32_t)value << 1 | 1));
    return 0;
}

static void s_reset(device_t *dev)
{
    (void)dev; /* nothing the guest can see */
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    debug_exit_t *d = s_of(dev);
    rt_inspect_add(node, "last_value", "0x%llx", (unsigned long long)d->last_value);
    device_inspect_count(node, "exits", d->exits);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    (void)dev;
    Vmm__DeviceState__DebugExit st = VMM__DEVICE_STATE__DEBUG_EXIT__INIT;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    (void)dev;
    Vmm__DeviceState__DebugExit *st = vmm__device_state__debug_exit__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    vmm__device_state__debug_exit__free_unpacked(st, NULL);
    return 0;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "debug-exit",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

device_t *dev_debug_exit_new(const void *config, device_env_t *env)
{
    const dev_debug_exit_config_t *cfg = config;
    uint8_t size = cfg && cfg->size ? cfg->size : 1;
    if (size != 1 && size != 2 && size != 4) {
        errno = EINVAL;
        return NULL;
    }
    debug_exit_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->dev = (device_t){.ops = &s_ops, .env = env};
    d->dev.spec = (device_spec_t){
        .name = "debug-exit",
        .n_ranges = 1,
        .ranges = {{.start = cfg && cfg->port ? cfg->port : 0xf4, .len = size}},
    };
    return &d->dev;
}
