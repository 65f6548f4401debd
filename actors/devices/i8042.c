#include "actors/devices/i8042.h"

#include <errno.h>
#include <stdlib.h>

#include "actors/devices/device.h"

#define S_DATA_PORT 0x60
#define S_COMMAND_PORT 0x64
#define S_CMD_PULSE_RESET 0xfe

typedef struct {
    device_t dev;
    struct {
        uint64_t resets;
        uint64_t ignored_commands, ignored_data;
    } counts;
} i8042_t;

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    i8042_t *k = rt_actor_state(self);
    device_access_t access;
    if (device_access_get(&k->dev, self, msg, &access))
        return 0;
    if (access.write && access.port == S_COMMAND_PORT && access.value == S_CMD_PULSE_RESET) {
        k->counts.resets++;
        device_power(&k->dev, self, VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET, false, 0);
    } else if (access.write && access.port == S_COMMAND_PORT) {
        k->counts.ignored_commands++;
    } else if (access.write) {
        k->counts.ignored_data++;
    }
    return device_access_done(&k->dev, self, msg, &access, 0);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const dev_i8042_config_t *cfg = arg;
    if (!cfg)
        return -EINVAL;
    i8042_t *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    static const device_range_t ports[] = {{S_DATA_PORT, 1}, {S_COMMAND_PORT, 1}};
    device_spec_t spec = {.name = "i8042", .ranges = ports, .n_ranges = 2};
    int rc = device_init(&k->dev, self, cfg->partition, &spec);
    if (rc) {
        free(k);
        return rc;
    }
    rt_actor_set_state(self, k);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    i8042_t *k = rt_actor_state(self);
    device_fini(&k->dev);
    free(k);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    i8042_t *k = rt_actor_state(self);
    rt_inspect_add(node, "resets", "%llu", (unsigned long long)k->counts.resets);
    rt_inspect_add(node, "ignored_commands", "%llu",
                   (unsigned long long)k->counts.ignored_commands);
    rt_inspect_add(node, "ignored_data", "%llu", (unsigned long long)k->counts.ignored_data);
    device_inspect(&k->dev, node);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
};

const rt_actor_ops_t dev_i8042_ops = {
    .kind = "i8042",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
