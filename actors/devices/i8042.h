/*
 * dev_i8042: the least of a PC keyboard controller (ports 0x60 and 0x64):
 * command 0xfe written to 0x64 pulses the reset line, which resets the VM
 * (PowerRequest RESET to the partition actor). There is no keyboard: the
 * status register (0x64) reads 0 (output buffer empty, input buffer empty)
 * and the data port (0x60) reads 0, so a guest can reset through it and
 * Linux's probe gives up at once. Other commands and data are accepted,
 * counted and ignored. Writes are not posted: the VP resumes only after
 * the reset request has left.
 */
#ifndef VMM_DEV_I8042_H
#define VMM_DEV_I8042_H

#include "runtime/rt.h"

typedef struct {
    const char *partition; /* e.g. "vm0/partition"; NULL: not registered,
                              nothing sent (unit tests) */
} dev_i8042_config_t;

/* Starts with arg a dev_i8042_config_t *, copied by init. */
extern const rt_actor_ops_t dev_i8042_ops;

#endif
