/*
 * The console actor: one device's line to the host, a terminal or a file.
 * It writes the ConsoleOutput its device sends to an output descriptor and
 * answers each with ConsoleWritten, so the device keeps a bounded window in
 * flight; it reads the input descriptor only as far as the device asked
 * (ConsoleWant) and sends what it read as ConsoleInput. It runs on an
 * executor of its own: a slow terminal or a full pipe holds up nobody
 * else. A write that makes no progress for 5 s gives up on the rest of
 * that output (counted in lost, logged), so that no wait is endless.
 *
 * Only its device's messages are taken; others are refused, logged and
 * counted. Ownership: the descriptors stay the caller's, who closes them
 * after the actor has terminated.
 */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include "runtime/rt.h"

typedef struct {
    const char *device; /* the device actor it serves, e.g. "vm0/dev/com1" */
    int out_fd;         /* -1: output is acknowledged and discarded */
    int in_fd;          /* -1: no input */
} console_config_t;

/* Starts with arg a console_config_t *, copied by init. */
extern const rt_actor_ops_t console_ops;

#endif
