/*
 * dev_power: the ACPI PM1a control register of QEMU's PC machine (port
 * 0x604, 16 bits). A write with SLP_EN (bit 13) set powers the VM off
 * (PowerRequest POWER_OFF without an exit code: the VMM exits 0). Reads
 * return the last value written, without SLP_EN, which the hardware never
 * reads back. Byte accesses reach either half. Writes are not posted: the
 * VP resumes only after the power request has left.
 */
#ifndef VMM_DEV_POWER_H
#define VMM_DEV_POWER_H

#include <stdint.h>

#include "runtime/rt.h"

typedef struct {
    const char *partition; /* e.g. "vm0/partition"; NULL: not registered,
                              nothing sent (unit tests) */
    uint16_t port;         /* 0: 0x604 */
} dev_power_config_t;

/* Starts with arg a dev_power_config_t *, copied by init. */
extern const rt_actor_ops_t dev_power_ops;

#endif
