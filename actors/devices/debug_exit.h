/*
 * dev_debug_exit: QEMU's isa-debug-exit. A write of v powers the VM off
 * with exit code (v << 1) | 1, so that a test guest can report its result
 * as the VMM's exit status; QEMU takes the value as written, whatever its
 * width and port. Reads return all ones. By default it spans the one port
 * 0xf4, as QEMU's iobase=0xf4,iosize=1. Writes are not posted: the VP
 * resumes only after the power request has left.
 */
#ifndef VMM_DEV_DEBUG_EXIT_H
#define VMM_DEV_DEBUG_EXIT_H

#include <stdint.h>

#include "actors/devices/device.h"

typedef struct {
    uint16_t port; /* 0: 0xf4 */
    uint8_t size;  /* ports spanned (QEMU's iosize): 1, 2 or 4; 0: 1 */
} dev_debug_exit_config_t;

/* A device_new_fn: config is a dev_debug_exit_config_t * (NULL: defaults).
 * EINVAL for a size other than 1, 2 or 4. */
device_t *dev_debug_exit_new(const void *config, device_env_t *env);

#endif
