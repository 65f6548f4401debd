/*
 * dev_power: the ACPI PM1a control register of QEMU's PC machine (port
 * 0x604, 16 bits). A write with SLP_EN (bit 13) set powers the VM off
 * (without an exit code: the VMM exits 0). Reads return the last value
 * written, without SLP_EN, which the hardware never reads back. Byte
 * accesses reach either half. Writes are not posted: the VP resumes only
 * after the power request has left.
 */
#ifndef VMM_DEV_POWER_H
#define VMM_DEV_POWER_H

#include <stdint.h>

#include "actors/devices/device.h"

typedef struct {
    uint16_t port; /* 0: 0x604 */
} dev_power_config_t;

/* A device_new_fn: config is a dev_power_config_t * (NULL: defaults). */
device_t *dev_power_new(const void *config, device_env_t *env);

#endif
