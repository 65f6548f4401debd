/*
 * virtio-blk (virtio 1.x 5.2, device id 2) on the virtio-mmio transport,
 * backed by a raw disk image through the device's storage
 * (device_storage_open() and the rest, so that a trace replays it without
 * the file): one request queue; reads, writes, flushes and GET_ID, with
 * VIRTIO_BLK_F_SEG_MAX, BLK_SIZE, FLUSH, and RO for a read-only image.
 *
 * Requests are served in the order the driver made them available, as
 * many as it made available at each kick (a queue of 1024 entries); a
 * write is written before its request is used, and a flush returns once
 * every write used before it is on the disk (fdatasync).
 *
 * What a driver gets wrong fails the request with VIRTIO_BLK_S_IOERR and
 * is counted (a header shorter than 16 bytes, a device-writable buffer
 * where the device reads or the other way about, a length not a multiple
 * of 512, sectors past the disk, a write to a read-only disk); an unknown
 * type gets VIRTIO_BLK_S_UNSUPP. A chain with no writable status byte at
 * its end, or a bad chain (virtqueue.h), cannot be answered at all: the
 * device needs a reset (virtio_mmio.h).
 */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/devices/device.h"

#define VIRTIO_ID_BLOCK 2

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

/* Request types and status (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_ID_BYTES 20u
/* The buffers of one request's data the device takes (config seg_max):
 * the chain's longest, less the header and the status. */
#define VIRTIO_BLK_SEG_MAX 254u

typedef struct {
    const char *name;  /* e.g. "virtio-blk0"; NULL: "virtio-blk" */
    uint64_t base;     /* the register block */
    uint32_t irq;
    const char *path;  /* the disk image, opened by the constructor */
    bool readonly;
    /* What GET_ID answers (at most 20 bytes); NULL: the image's file name. */
    const char *serial;
} dev_virtio_blk_config_t;

/* A device_new_fn: config is a dev_virtio_blk_config_t *. NULL with errno
 * set where the image cannot be opened (its errno) or is smaller than a
 * sector (EINVAL). */
device_t *dev_virtio_blk_new(const void *config, device_env_t *env);

#endif
