#include "actors/devices/debug_exit.h"

#include <errno.h>
#include <stdlib.h>

#include "actors/devices/device.h"

typedef struct {
    device_t dev;
    uint32_t last_value;
} debug_exit_t;

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    debug_exit_t *d = rt_actor_state(self);
    device_access_t access;
    if (device_access_get(&d->dev, self, msg, &access))
        return 0;
    if (access.write) {
        /* QEMU takes the value as written, whatever its width and port. */
        d->last_value = access.value;
        device_power(&d->dev, self, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, true,
                     access.value << 1 | 1);
    }
    return device_access_done(&d->dev, self, msg, &access, UINT32_MAX);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const dev_debug_exit_config_t *cfg = arg;
    uint8_t size = cfg && cfg->size ? cfg->size : 1;
    if (!cfg || (size != 1 && size != 2 && size != 4))
        return -EINVAL;
    debug_exit_t *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    const device_range_t ports = {cfg->port ? cfg->port : 0xf4, size};
    device_spec_t spec = {.name = "debug-exit", .ranges = &ports, .n_ranges = 1};
    int rc = device_init(&d->dev, self, cfg->partition, &spec);
    if (rc) {
        free(d);
        return rc;
    }
    rt_actor_set_state(self, d);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    debug_exit_t *d = rt_actor_state(self);
    device_fini(&d->dev);
    free(d);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    debug_exit_t *d = rt_actor_state(self);
    rt_inspect_add(node, "last_value", "0x%x", d->last_value);
    device_inspect(&d->dev, node);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
};

const rt_actor_ops_t dev_debug_exit_ops = {
    .kind = "debug-exit",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
