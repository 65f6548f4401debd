/*
 * virtio-console (virtio 1.x 5.3, device id 3) on the virtio-mmio
 * transport: one port, without VIRTIO_CONSOLE_F_MULTIPORT, so two queues:
 * receiveq (0), the device's bytes into buffers the driver gave, and
 * transmitq (1), the driver's bytes out. Both go through the device's
 * console (device_console_write() and the rest), which a console actor
 * ties to stdout and stdin, or a file.
 *
 * Output that the console cannot take yet waits in its chain, which is
 * used only once every byte of it is out; input is asked for only as far
 * as the device can hold it (VIRTIO_CONSOLE_IN_BUF bytes) and goes into
 * receive buffers as the driver gives them. A transmit buffer the device
 * would have to write, or a receive buffer it would have to read, is a
 * driver's error: the device needs a reset (virtio_mmio.h), counted.
 */
#ifndef VMM_VIRTIO_CONSOLE_H
#define VMM_VIRTIO_CONSOLE_H

#include <stdint.h>

#include "actors/devices/device.h"

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_CONSOLE_RX 0
#define VIRTIO_CONSOLE_TX 1
#define VIRTIO_CONSOLE_IN_BUF 4096u

typedef struct {
    const char *name; /* e.g. "virtio-console0"; NULL: "virtio-console" */
    uint64_t base;    /* the register block */
    uint32_t irq;
} dev_virtio_console_config_t;

/* A device_new_fn: config is a dev_virtio_console_config_t *. */
device_t *dev_virtio_console_new(const void *config, device_env_t *env);

#endif
