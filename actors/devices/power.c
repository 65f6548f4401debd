#include "actors/devices/power.h"

#include <errno.h>
#include <stdlib.h>

#include "actors/devices/device.h"

#define S_SLP_EN 0x2000

typedef struct {
    device_t dev;
    uint32_t port;
    uint16_t pm1_cnt; /* without SLP_EN */
    uint64_t power_offs;
} power_t;

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    power_t *p = rt_actor_state(self);
    device_access_t access;
    if (device_access_get(&p->dev, self, msg, &access))
        return 0;
    unsigned shift = 8 * (access.port - p->port);
    if (access.write) {
        uint32_t mask = (access.size == 1 ? 0xffu : 0xffffu) << shift;
        uint32_t value = (p->pm1_cnt & ~mask) | ((access.value << shift) & mask);
        if (value & S_SLP_EN) {
            p->power_offs++;
            device_power(&p->dev, self, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                         false, 0);
        }
        p->pm1_cnt = (uint16_t)(value & ~S_SLP_EN);
    }
    return device_access_done(&p->dev, self, msg, &access, (uint32_t)p->pm1_cnt >> shift);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const dev_power_config_t *cfg = arg;
    if (!cfg)
        return -EINVAL;
    power_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->port = cfg->port ? cfg->port : 0x604;
    const device_range_t ports = {p->port, 2};
    device_spec_t spec = {.name = "pm1a", .ranges = &ports, .n_ranges = 1};
    int rc = device_init(&p->dev, self, cfg->partition, &spec);
    if (rc) {
        free(p);
        return rc;
    }
    rt_actor_set_state(self, p);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    power_t *p = rt_actor_state(self);
    device_fini(&p->dev);
    free(p);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    power_t *p = rt_actor_state(self);
    rt_inspect_add(node, "pm1_cnt", "0x%04x", p->pm1_cnt);
    rt_inspect_add(node, "power_offs", "%llu", (unsigned long long)p->power_offs);
    device_inspect(&p->dev, node);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
};

const rt_actor_ops_t dev_power_ops = {
    .kind = "power",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
