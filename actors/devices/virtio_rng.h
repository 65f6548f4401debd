/*
 * virtio-rng (virtio 1.x 5.4, device id 4) on the virtio-mmio transport:
 * one queue of device-writable buffers, each filled with bytes from the
 * host's random source (device_entropy(): getrandom(2), recorded in a
 * trace). A chain with a device-readable buffer, or one outside guest RAM,
 * is refused (DEVICE_NEEDS_RESET, counted).
 */
#ifndef VMM_VIRTIO_RNG_H
#define VMM_VIRTIO_RNG_H

#include <stdint.h>

#include "actors/devices/device.h"

#define VIRTIO_ID_RNG 4

typedef struct {
    const char *name; /* e.g. "virtio-rng" */
    uint64_t base;    /* the register block */
    uint32_t irq;
} dev_virtio_rng_config_t;

/* A device_new_fn: config is a dev_virtio_rng_config_t *. */
device_t *dev_virtio_rng_new(const void *config, device_env_t *env);

#endif
