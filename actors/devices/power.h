/*
 * dev_power: the ACPI PM register block of QEMU's PC machine (its PIIX4
 * PM function), 12 ports from a base (0x600 by default):
 *
 *   base+0  PM1a_STS, 16 bits: TMR_STS (bit 0) is set each time bit 31 of
 *           the PM timer changes; a 1 written clears its bit.
 *   base+2  PM1a_EN, 16 bits: reads back what was written; TMR_EN (bit 0).
 *   base+4  PM1a_CNT, 16 bits: a write with SLP_EN (bit 13) set powers the
 *           VM off (without an exit code: the VMM exits 0); the rest
 *           (SCI_EN, bit 0, among it) reads back, SLP_EN never.
 *   base+8  PM_TMR, 32 bits, read-only: the ACPI PM timer, 3.579545 MHz
 *           counted from the runtime clock, all 32 bits (the FADT sets
 *           TMR_VAL_EXT); writes are ignored, as QEMU ignores them.
 *
 * The SCI is IRQ 9, high while a status bit among TMR, GBL, PWRBTN,
 * SLPBTN and RTC is set with its enable bit (a level: the guest clears the
 * status). Accesses are of QEMU's widths: 2 bytes at base+0, +2 and +4,
 * 4 bytes at base+8; another width or offset is refused, logged and
 * counted (bad_accesses). Writes are not posted: the VP resumes only after
 * a power request has left.
 */
#ifndef VMM_DEV_POWER_H
#define VMM_DEV_POWER_H

#include <stdint.h>

#include "actors/devices/device.h"

/* The SCI's IO-APIC input. */
#define DEV_POWER_SCI 9
/* The PM timer's rate, in Hz. */
#define DEV_POWER_TIMER_HZ 3579545u

typedef struct {
    uint16_t base; /* 0: 0x600; a multiple of 4, the block within 16 bits */
} dev_power_config_t;

/* A device_new_fn: config is a dev_power_config_t * (NULL: defaults). */
device_t *dev_power_new(const void *config, device_env_t *env);

#endif
