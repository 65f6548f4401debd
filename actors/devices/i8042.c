#include "actors/devices/i8042.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/device_state.pb-c.h"

#define S_DATA_PORT 0x60
#define S_COMMAND_PORT 0x64

#define S_STATUS_OBF 0x01 /* output buffer full */
#define S_STATUS_SYS 0x04 /* system flag: the self-test passed at power on */
#define S_STATUS_CMD 0x08 /* the last write was to the command port */

#define S_CB_KBD_DISABLED 0x10
/* As a PC BIOS leaves it: keyboard interrupt on, system flag, translation. */
#define S_CB_DEFAULT 0x45

enum {
    S_CMD_READ_CB = 0x20,
    S_CMD_WRITE_CB = 0x60,
    S_CMD_SELF_TEST = 0xaa,
    S_CMD_KBD_TEST = 0xab,
    S_CMD_KBD_DISABLE = 0xad,
    S_CMD_KBD_ENABLE = 0xae,
    S_CMD_WRITE_OUTPUT = 0xd1,
    S_CMD_PULSE_RESET = 0xfe,
};

typedef struct {
    device_t dev;
    uint8_t command_byte;
    bool has_output;
    uint8_t output;
    uint8_t pending; /* a command waiting for its data byte, or 0 */
    bool last_was_command;
    struct {
        uint64_t resets, ignored_commands, ignored_data;
    } counts;
} i8042_t;

static i8042_t *s_of(device_t *dev)
{
    return (i8042_t *)dev;
}

static void s_answer(i8042_t *k, uint8_t byte)
{
    k->output = byte;
    k->has_output = true;
}

static void s_pull_reset(i8042_t *k)
{
    k->counts.resets++;
    device_power(&k->dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET, -1);
}

static void s_command(i8042_t *k, uint8_t cmd)
{
    k->pending = 0;
    switch (cmd) {
    case S_CMD_READ_CB:
        s_answer(k, k->command_byte);
        break;
    case S_CMD_WRITE_CB:
    case S_CMD_WRITE_OUTPUT:
        k->pending = cmd;
        break;
    case S_CMD_SELF_TEST:
        s_answer(k, 0x55);
        break;
    case S_CMD_KBD_TEST:
        s_answer(k, 0x00);
        break;
    case S_CMD_KBD_DISABLE:
        k->command_byte |= S_CB_KBD_DISABLED;
        break;
    case S_CMD_KBD_ENABLE:
        k->command_byte &= (uint8_t)~S_CB_KBD_DISABLED;
        break;
    case S_CMD_PULSE_RESET:
        s_pull_reset(k);
        break;
    default:
        k->counts.ignored_commands++;
    }
}

static void s_data(i8042_t *k, uint8_t byte)
{
    uint8_t cmd = k->pending;
    k->pending = 0;
    if (cmd == S_CMD_WRITE_CB)
        k->command_byte = byte;
    else if (cmd == S_CMD_WRITE_OUTPUT && !(byte & 0x01))
        s_pull_reset(k); /* output port bit 0 is the reset line, active low */
    else if (cmd != S_CMD_WRITE_OUTPUT)
        k->counts.ignored_data++; /* for the keyboard, which is not there */
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    i8042_t *k = s_of(dev);
    if (io->size != 1) {
        device_log(dev, RT_LOG_INFO, "a %u-byte read at 0x%llx: its registers are bytes",
                   io->size, (unsigned long long)io->address);
        return -EINVAL;
    }
    if (io->address == S_COMMAND_PORT) {
        *value = (k->has_output ? S_STATUS_OBF : 0) | S_STATUS_SYS |
                 (k->last_was_command ? S_STATUS_CMD : 0);
        return 0;
    }
    *value = k->output; /* the last byte stays readable, as on the chip */
    k->has_output = false;
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    i8042_t *k = s_of(dev);
    if (io->size != 1) {
        device_log(dev, RT_LOG_INFO, "a %u-byte write at 0x%llx: its registers are bytes",
                   io->size, (unsigned long long)io->address);
        return -EINVAL;
    }
    k->last_was_command = io->address == S_COMMAND_PORT;
    if (k->last_was_command)
        s_command(k, (uint8_t)value);
    else
        s_data(k, (uint8_t)value);
    return 0;
}

static void s_reset(device_t *dev)
{
    i8042_t *k = s_of(dev);
    k->command_byte = S_CB_DEFAULT;
    k->has_output = false;
    k->output = 0;
    k->pending = 0;
    k->last_was_command = false;
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    i8042_t *k = s_of(dev);
    rt_inspect_add(node, "command_byte", "0x%02x", k->command_byte);
    rt_inspect_add(node, "output", k->has_output ? "0x%02x" : "empty (0x%02x)", k->output);
    device_inspect_count(node, "resets", k->counts.resets);
    device_inspect_count(node, "ignored_commands", k->counts.ignored_commands);
    device_inspect_count(node, "ignored_data", k->counts.ignored_data);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    i8042_t *k = s_of(dev);
    Vmm__DeviceState__I8042 st = VMM__DEVICE_STATE__I8042__INIT;
    st.command_byte = k->command_byte;
    st.has_output = k->has_output;
    st.output = k->output;
    st.pending_command = k->pending;
    st.last_was_command = k->last_was_command;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__I8042 *st = vmm__device_state__i8042__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->command_byte > 0xff || st->output > 0xff ||
                     (st->pending_command && st->pending_command != S_CMD_WRITE_CB &&
                      st->pending_command != S_CMD_WRITE_OUTPUT)
                 ? -EINVAL
                 : 0;
    if (!rc) {
        i8042_t *k = s_of(dev);
        k->command_byte = (uint8_t)st->command_byte;
        k->has_output = st->has_output;
        k->output = (uint8_t)st->output;
        k->pending = (uint8_t)st->pending_command;
        k->last_was_command = st->last_was_command;
    }
    vmm__device_state__i8042__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "i8042",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

device_t *dev_i8042_new(const void *config, device_env_t *env)
{
    (void)config;
    i8042_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->dev = (device_t){.ops = &s_ops, .env = env};
    k->dev.spec = (device_spec_t){
        .name = "i8042",
        .n_ranges = 2,
        .ranges = {{.start = S_DATA_PORT, .len = 1}, {.start = S_COMMAND_PORT, .len = 1}},
    };
    s_reset(&k->dev);
    return &k->dev;
}
