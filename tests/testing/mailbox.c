#include "tests/testing/mailbox.h"

#include <stdlib.h>

typedef struct {
    device_t dev;
    uint64_t step, addr, rings, failed;
} mailbox_t;

static mailbox_t *s_of(device_t *dev)
{
    return (mailbox_t *)dev;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    *value = io->address == DEV_MAILBOX_BASE + 8 ? s_of(dev)->addr : UINT64_MAX;
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    if (io->address == DEV_MAILBOX_BASE + 8)
        s_of(dev)->addr = value;
    return 0;
}

static void s_doorbell(device_t *dev, size_t index)
{
    (void)index;
    mailbox_t *m = s_of(dev);
    m->rings++;
    uint64_t counter;
    if (device_guest_read(dev, m->addr, &counter, sizeof counter)) {
        m->failed++;
        device_log(dev, RT_LOG_WARN, "cannot read the counter at 0x%llx",
                   (unsigned long long)m->addr);
        return;
    }
    counter += m->step;
    if (device_guest_write(dev, m->addr, &counter, sizeof counter))
        m->failed++;
}

static void s_reset(device_t *dev)
{
    s_of(dev)->addr = 0;
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    mailbox_t *m = s_of(dev);
    device_inspect_count(node, "rings", m->rings);
    device_inspect_count(node, "failed", m->failed);
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "mailbox",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = device_save_none,
    .restore = device_restore_none,
    .doorbell = s_doorbell,
    .destroy = s_destroy,
};

device_t *dev_mailbox_new(const void *config, device_env_t *env)
{
    const dev_mailbox_config_t *cfg = config;
    mailbox_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->step = cfg && cfg->step ? cfg->step : 1;
    m->dev = (device_t){.ops = &s_ops, .env = env};
    m->dev.spec = (device_spec_t){
        .name = "mailbox",
        .n_ranges = 1,
        .ranges = {{.mmio = true, .start = DEV_MAILBOX_BASE, .len = 0x1000}},
        .n_doorbells = 1,
        .doorbells = {{.address = DEV_MAILBOX_BASE}},
    };
    return &m->dev;
}
