/*
 * dev_testdev: the test device of testdev_abi.h, through which a test guest
 * talks to its test. 32-bit writes only:
 *   ARG   pushes an argument (beyond TESTDEV_MAX_ARGS: dropped and counted);
 *   CALL  reports a GuestCall (the writing VP, the kind written, the
 *         arguments in order) one-way to report_to, then forgets the
 *         arguments; a kind the ABI does not name is reported all the same;
 *   MSI   (apic_id << 8) | vector asks the partition actor for that MSI
 *         (RequestMsi, address 0xfee00000 | apic_id << 12, data vector).
 * Reads return all ones. Writes are not posted: the VP resumes only after
 * the call's report has left, so a sync point is seen before the guest
 * goes on.
 */
#ifndef VMM_DEV_TESTDEV_H
#define VMM_DEV_TESTDEV_H

#include <stdbool.h>

#include "actors/devices/testdev_abi.h"
#include "runtime/rt.h"

typedef struct {
    const char *partition; /* e.g. "vm0/partition"; NULL: not registered,
                              MSIs counted as unsent (unit tests) */
    const char *report_to; /* the actor GuestCalls go to, e.g. a test's
                              client; NULL: counted as unsent */
    bool halt_if_lost;     /* in a device host: the VM halts a VP that
                              touches it once the host is lost */
} dev_testdev_config_t;

/* Starts with arg a dev_testdev_config_t *, copied by init. */
extern const rt_actor_ops_t dev_testdev_ops;

#endif
