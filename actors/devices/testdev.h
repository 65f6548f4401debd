/*
 * dev_testdev: the test device of testdev_abi.h, through which a test guest
 * talks to its test. 32-bit accesses only:
 *   ARG   pushes an argument (beyond TESTDEV_MAX_ARGS: dropped and counted);
 *   CALL  reports a guest call (the writing VP, the kind written, the
 *         arguments in order) to whoever runs the VM, then forgets the
 *         arguments; a kind the ABI does not name is reported all the same;
 *   MSI   (apic_id << 8) | vector raises that MSI (address 0xfee00000 |
 *         apic_id << 12, data vector);
 *   DELAY a write sets a delay in ms (at most TESTDEV_MAX_DELAY_MS); a read
 *         is deferred that long, then answered with the delay: at most
 *         TESTDEV_MAX_DEFERRED at once, a reset fails those in flight;
 *   LINE  sets (1) or clears (0) the level of IO-APIC input TESTDEV_IRQ,
 *         and reads it back.
 * Other reads return all ones. Writes are not posted: the VP resumes only
 * after the call's report has left, so a sync point is seen before the
 * guest goes on.
 */
#ifndef VMM_DEV_TESTDEV_H
#define VMM_DEV_TESTDEV_H

#include "actors/devices/device.h"
#include "actors/devices/testdev_abi.h"

#define TESTDEV_MAX_DELAY_MS 60000
#define TESTDEV_MAX_DEFERRED 8

/* A device_new_fn; it takes no configuration (config is ignored). */
device_t *dev_testdev_new(const void *config, device_env_t *env);

#endif
