#include "actors/devices/testdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/device.h"

#define S_MSI_ADDRESS 0xfee00000u

typedef struct {
    device_t dev;
    char *report_to; /* owned; NULL: calls go nowhere */
    uint32_t args[TESTDEV_MAX_ARGS];
    size_t n_args;
    struct {
        uint64_t calls, msis;
        uint64_t args_dropped; /* pushed beyond TESTDEV_MAX_ARGS */
    } counts;
} testdev_t;

static void s_call(rt_actor_t *self, testdev_t *t, uint32_t vp_index, uint32_t kind)
{
    Vmm__Devices__GuestCall call = VMM__DEVICES__GUEST_CALL__INIT;
    call.vp_index = vp_index;
    call.kind = kind;
    call.n_args = t->n_args;
    call.args = t->args;
    Vmm__Devices__Event event = VMM__DEVICES__EVENT__INIT;
    event.event_case = VMM__DEVICES__EVENT__EVENT_GUEST_CALL;
    event.guest_call = &call;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = &event;
    t->counts.calls++;
    device_send(&t->dev, self, t->report_to, &env);
    t->n_args = 0;
}

static int s_write(rt_actor_t *self, testdev_t *t, const Vmm__Envelope *msg,
                   const device_access_t *access)
{
    if (access->size != 4)
        return device_access_refuse(&t->dev, self, msg,
                                    "the test device takes 32-bit writes, not %u bytes at 0x%x",
                                    access->size, access->port);
    switch (access->port) {
    case TESTDEV_PORT_ARG:
        if (t->n_args < TESTDEV_MAX_ARGS)
            t->args[t->n_args++] = access->value;
        else
            t->counts.args_dropped++;
        break;
    case TESTDEV_PORT_CALL:
        s_call(self, t, access->vp_index, access->value);
        break;
    case TESTDEV_PORT_MSI:
        if (access->value >> 16)
            return device_access_refuse(&t->dev, self, msg,
                                        "MSI request 0x%x: the APIC id must fit in 8 bits",
                                        access->value);
        t->counts.msis++;
        device_request_msi(&t->dev, self, S_MSI_ADDRESS | (access->value >> 8) << 12,
                           access->value & 0xff);
        break;
    default:
        return device_access_refuse(&t->dev, self, msg,
                                    "port 0x%x is inside no test device register",
                                    access->port);
    }
    return device_access_done(&t->dev, self, msg, access, 0);
}

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    testdev_t *t = rt_actor_state(self);
    device_access_t access;
    if (device_access_get(&t->dev, self, msg, &access))
        return 0;
    if (access.write)
        return s_write(self, t, msg, &access);
    return device_access_done(&t->dev, self, msg, &access, UINT32_MAX);
}

static void s_release(testdev_t *t)
{
    device_fini(&t->dev);
    free(t->report_to);
    free(t);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const dev_testdev_config_t *cfg = arg;
    if (!cfg)
        return -EINVAL;
    testdev_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    if (cfg->report_to && !(t->report_to = strdup(cfg->report_to))) {
        free(t);
        return -ENOMEM;
    }
    const device_range_t ports = {TESTDEV_PORT_BASE, TESTDEV_PORT_COUNT};
    /* Not posted: a guest call must have left before its VP goes on. */
    device_spec_t spec = {.name = "testdev", .ranges = &ports, .n_ranges = 1, .msi_count = 1,
                          .halt_if_lost = cfg->halt_if_lost};
    int rc = device_init(&t->dev, self, cfg->partition, &spec);
    if (rc) {
        s_release(t);
        return rc;
    }
    rt_actor_set_state(self, t);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    s_release(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    testdev_t *t = rt_actor_state(self);
    rt_inspect_add(node, "report_to", "%s", t->report_to ? t->report_to : "");
    rt_inspect_add(node, "args", "%zu", t->n_args);
    rt_inspect_add(node, "calls", "%llu", (unsigned long long)t->counts.calls);
    rt_inspect_add(node, "msis", "%llu", (unsigned long long)t->counts.msis);
    rt_inspect_add(node, "args_dropped", "%llu", (unsigned long long)t->counts.args_dropped);
    device_inspect(&t->dev, node);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
};

const rt_actor_ops_t dev_testdev_ops = {
    .kind = "testdev",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
