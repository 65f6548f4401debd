#include "actors/devices/device_models.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/bochs_shutdown.h"
#include "actors/devices/debug_exit.h"
#include "actors/devices/fw_cfg.h"
#include "actors/devices/hyperv_testdev.h"
#include "actors/devices/i8042.h"
#include "actors/devices/pc_testdev.h"
#include "actors/devices/power.h"
#include "actors/devices/rtc.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_rng.h"

static const struct {
    const char *kind;
    device_new_fn new_model;
} s_models[] = {
    {"serial", dev_serial_new},   {"debug-exit", dev_debug_exit_new},
    {"i8042", dev_i8042_new},     {"pm1a", dev_power_new},
    {"rtc", dev_rtc_new},         {"testdev", dev_testdev_new},
    {"fw-cfg", dev_fw_cfg_new},   {"bochs-shutdown", dev_bochs_shutdown_new},
    {"pc-testdev", dev_pc_testdev_new}, {"hyperv-testdev", dev_hyperv_testdev_new},
    {"virtio-blk", dev_virtio_blk_new}, {"virtio-console", dev_virtio_console_new},
    {"virtio-rng", dev_virtio_rng_new},
};

device_new_fn device_model_find(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof s_models / sizeof *s_models; i++)
        if (!strcmp(s_models[i].kind, kind))
            return s_models[i].new_model;
    return NULL;
}

const char *device_model_kind(device_new_fn new_model)
{
    for (size_t i = 0; i < sizeof s_models / sizeof *s_models; i++)
        if (s_models[i].new_model == new_model)
            return s_models[i].kind;
    return NULL;
}

const char *device_model_kinds(void)
{
    static char kinds[256];
    if (!kinds[0])
        for (size_t i = 0, n = 0; i < sizeof s_models / sizeof *s_models && n < sizeof kinds;
             i++)
            n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s%s", i ? ", " : "",
                                  s_models[i].kind);
    return kinds;
}

bool device_model_takes_args(device_new_fn new_model)
{
    return new_model == dev_virtio_blk_new || new_model == dev_virtio_console_new ||
           new_model == dev_virtio_rng_new;
}

/* What the text gave, pointing into a copy of it. */
typedef struct {
    const char *name, *file, *serial;
    uint64_t base;
    uint32_t irq;
    bool has_base, has_irq, readonly;
} s_args_t;

static bool s_number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (!*s || *end || errno || v > max || *s == '-')
        return false;
    *out = v;
    return true;
}

/* Parses text (modified in place) into *a; only blk takes the disk's keys.
 * 0, or -EINVAL with the reason in err. */
static int s_parse(char *text, bool blk, s_args_t *a, char *err, size_t errlen)
{
    for (char *save = NULL, *kv = strtok_r(text, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (v)
            *v++ = 0;
        uint64_t n;
        if (!strcmp(kv, "name") && v && *v) {
            a->name = v;
        } else if (!strcmp(kv, "base") && v && s_number(v, UINT64_MAX - 0x1000, &n) &&
                   !(n & 0xfff)) {
            a->base = n;
            a->has_base = true;
        } else if (!strcmp(kv, "irq") && v && s_number(v, DEVICE_MAX_IRQS - 1, &n)) {
            a->irq = (uint32_t)n;
            a->has_irq = true;
        } else if (blk && !strcmp(kv, "file") && v && *v) {
            a->file = v;
        } else if (blk && !strcmp(kv, "readonly") && !v) {
            a->readonly = true;
        } else if (blk && !strcmp(kv, "serial") && v && strlen(v) <= VIRTIO_BLK_ID_BYTES) {
            a->serial = v;
        } else {
            snprintf(err, errlen, "%s%s%s: not a setting of this device, or out of range", kv,
                     v ? "=" : "", v ? v : "");
            return -EINVAL;
        }
    }
    const char *missing = !a->has_base        ? "base="
                          : !a->has_irq       ? "irq="
                          : blk && !a->file   ? "file="
                                              : NULL;
    if (missing) {
        snprintf(err, errlen, "%s is needed", missing);
        return -EINVAL;
    }
    return 0;
}

device_t *device_model_new_args(device_new_fn new_model, const char *args, device_env_t *env,
                                char *err, size_t errlen)
{
    if (!device_model_takes_args(new_model)) {
        snprintf(err, errlen, "%s takes no settings as text", device_model_kind(new_model));
        errno = EINVAL;
        return NULL;
    }
    char *text = strdup(args ? args : "");
    s_args_t a = {0};
    device_t *dev = NULL;
    int rc = text ? s_parse(text, new_model == dev_virtio_blk_new, &a, err, errlen) : -ENOMEM;
    if (!rc && new_model == dev_virtio_blk_new) {
        dev_virtio_blk_config_t cfg = {.name = a.name, .base = a.base, .irq = a.irq,
                                       .path = a.file, .readonly = a.readonly,
                                       .serial = a.serial};
        dev = dev_virtio_blk_new(&cfg, env);
    } else if (!rc && new_model == dev_virtio_console_new) {
        dev_virtio_console_config_t cfg = {.name = a.name, .base = a.base, .irq = a.irq};
        dev = dev_virtio_console_new(&cfg, env);
    } else if (!rc) {
        dev_virtio_rng_config_t cfg = {.name = a.name, .base = a.base, .irq = a.irq};
        dev = dev_virtio_rng_new(&cfg, env);
    }
    if (!rc && !dev) {
        rc = errno ? -errno : -EINVAL;
        snprintf(err, errlen, "%s%s%s", a.file ? a.file : "", a.file ? ": " : "",
                 strerror(-rc));
    }
    free(text);
    errno = -rc;
    return dev;
}
