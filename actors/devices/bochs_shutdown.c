#include "actors/devices/bochs_shutdown.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/device_state.pb-c.h"

#define S_PORT 0x8900

static const char s_word[] = "Shutdown";
#define S_WORD_LEN (sizeof s_word - 1)

typedef struct {
    device_t dev;
    uint32_t matched; /* bytes of s_word that came in a row */
    struct {
        uint64_t bytes, broken, power_offs;
    } counts;
} bochs_shutdown_t;

static bochs_shutdown_t *s_of(device_t *dev)
{
    return (bochs_shutdown_t *)dev;
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
    (void)io; /* one port: only bytes reach it */
    bochs_shutdown_t *b = s_of(dev);
    char c = (char)value;
    b->counts.bytes++;
    if (c == s_word[b->matched]) {
        b->matched++;
    } else {
        b->counts.broken += b->matched > 0;
        /* No proper prefix of the word ends it but its first letter. */
        b->matched = c == s_word[0];
    }
    if (b->matched == S_WORD_LEN) {
        b->matched = 0;
        b->counts.power_offs++;
        device_power(dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, -1);
    }
    return 0;
}

static void s_reset(device_t *dev)
{
    s_of(dev)->matched = 0;
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    bochs_shutdown_t *b = s_of(dev);
    device_inspect_count(node, "matched", b->matched);
    device_inspect_count(node, "bytes", b->counts.bytes);
    device_inspect_count(node, "broken", b->counts.broken);
    device_inspect_count(node, "power_offs", b->counts.power_offs);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    Vmm__DeviceState__BochsShutdown st = VMM__DEVICE_STATE__BOCHS_SHUTDOWN__INIT;
    st.matched = s_of(dev)->matched;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__BochsShutdown *st =
        vmm__device_state__bochs_shutdown__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    /* A whole word powers off and starts again at 0. */
    int rc = st->matched >= S_WORD_LEN ? -EINVAL : 0;
    if (!rc)
        s_of(dev)->matched = st->matched;
    vmm__device_state__bochs_shutdown__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "bochs-shutdown",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

device_t *dev_bochs_shutdown_new(const void *config, device_env_t *env)
{
    (void)config;
    bochs_shutdown_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->dev = (device_t){.ops = &s_ops, .env = env};
    b->dev.spec = (device_spec_t){.name = "bochs-shutdown", .n_ranges = 1,
                                  .ranges = {{.start = S_PORT, .len = 1}}};
    return &b->dev;
}
