#include "actors/devices/device_models.h"

#include <stdio.h>
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

static const struct {
    const char *kind;
    device_new_fn new_model;
} s_models[] = {
    {"serial", dev_serial_new},   {"debug-exit", dev_debug_exit_new},
    {"i8042", dev_i8042_new},     {"pm1a", dev_power_new},
    {"rtc", dev_rtc_new},         {"testdev", dev_testdev_new},
    {"fw-cfg", dev_fw_cfg_new},   {"bochs-shutdown", dev_bochs_shutdown_new},
    {"pc-testdev", dev_pc_testdev_new}, {"hyperv-testdev", dev_hyperv_testdev_new},
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
    static char kinds[128];
    if (!kinds[0])
        for (size_t i = 0, n = 0; i < sizeof s_models / sizeof *s_models && n < sizeof kinds;
             i++)
            n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s%s", i ? ", " : "",
                                  s_models[i].kind);
    return kinds;
}
