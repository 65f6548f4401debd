/*
 * dev_rtc: the PC's MC146818 real-time clock and its 128 bytes of CMOS
 * RAM, at ports 0x70 (the index; its bit 7, the NMI mask, is kept without
 * effect; a read gives 0xff, as QEMU's) and 0x71 (the byte the index
 * names), on IRQ 8.
 *
 * Its time is the host's wall clock as read at creation and at reset
 * (device_wall_ns()), advanced by the runtime clock, plus the offset the
 * guest gives it by setting the time: 0x00 seconds, 0x02 minutes, 0x04
 * hours, 0x06 day of the week (1: Sunday; derived from the date), 0x07 day
 * of the month, 0x08 month, 0x09 year, 0x32 century, in BCD or binary and
 * 24 or 12 hours (bit 7 of the hour: PM) as status B says, for reads and
 * writes. A write while the clock runs moves it at once; while B's SET is
 * set (or the divider is held) the registers stand still and take writes,
 * which count from when SET is cleared, half a second later after a
 * divider reset.
 *
 *   A (0x0a): divider (bits 6-4) and rate select (3-0) of the periodic
 *      interrupt; UIP (bit 7, read-only) for the 244 us before each
 *      second's update.
 *   B (0x0b): SET (setting it clears UIE), PIE, AIE, UIE, SQWE (kept), DM,
 *      24/12, DSE (kept, without effect).
 *   C (0x0c): IRQF, PF, AF, UF; a read clears it and lowers IRQ 8.
 *   D (0x0d): VRT, always set.
 *
 * Periodic (at A's rate), alarm (0x01, 0x03, 0x05; values 0xc0-0xff match
 * any) and update-ended flags are set as the time passes, whether enabled
 * or not; IRQ 8 is high while IRQF is, that is while C holds a flag whose
 * interrupt B enables. The rest of CMOS is plain memory, filled at power
 * on as QEMU's PC machine leaves it: memory sizes, CPUs, equipment.
 *
 * Its registers are bytes: an access of another width is refused, logged
 * and counted (bad_accesses), where QEMU would split it into bytes.
 * Writes to C and D are ignored (ignored_writes).
 */
#ifndef VMM_DEV_RTC_H
#define VMM_DEV_RTC_H

#include <stdint.h>

#include "actors/devices/device.h"

#define DEV_RTC_IRQ 8

typedef struct {
    /* Guest RAM below 4 GiB (at most 4 GiB) and above, in bytes: CMOS
     * 0x15-0x18, 0x30-0x31, 0x34-0x35 and 0x5b-0x5d say them in KiB and
     * 64 KiB units, as QEMU's pc_cmos_init does (capped at the fields'
     * widths). */
    uint64_t ram_below_4g, ram_above_4g;
    uint32_t n_cpus; /* at least 1; CMOS 0x5f is n_cpus - 1 (0 beyond 255) */
} dev_rtc_config_t;

/* A device_new_fn: config is a dev_rtc_config_t * (NULL: no RAM said, one
 * CPU). */
device_t *dev_rtc_new(const void *config, device_env_t *env);

#endif
