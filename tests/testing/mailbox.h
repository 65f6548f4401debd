/*
 * dev_mailbox: a test device whose doorbell makes it work on guest RAM.
 * One MMIO page at DEV_MAILBOX_BASE:
 *   +0 DOORBELL  a write of any size rings it (a KVM doorbell: no exit);
 *                the device then adds `step` to the 64-bit counter at ADDR
 *                in guest RAM, read and written back through its
 *                environment
 *   +8 ADDR      the counter's guest physical address (64-bit)
 * Other reads return all ones. It exists to record and replay a device
 * that a doorbell wakes and that reads and writes guest memory.
 */
#ifndef VMM_TESTS_MAILBOX_H
#define VMM_TESTS_MAILBOX_H

#include <stdint.h>

#include "actors/devices/device.h"

#define DEV_MAILBOX_BASE 0xd0002000ull

typedef struct {
    uint64_t step; /* added per ring; 0: 1 */
} dev_mailbox_config_t;

/* A device_new_fn: config is a dev_mailbox_config_t * or NULL. */
device_t *dev_mailbox_new(const void *config, device_env_t *env);

#endif
