/*
 * A virtio driver for model tests: it plays the guest's side of a
 * virtio-mmio device on a fake environment (fake_env.h), in its RAM:
 * register accesses, the initialization of 3.1.1, descriptors, the
 * available ring, and reading the used ring. Criterion assertions on
 * failure.
 */
#ifndef VMM_VIRTIO_DRIVER_H
#define VMM_VIRTIO_DRIVER_H

#include <stdint.h>

#include "actors/devices/testing/fake_env.h"

/* Queue q's rings at these plus q * VIRTIO_DRIVER_STRIDE (up to 5
 * queues), and a data area, in the fake's RAM (at least 1 MiB). */
#define VIRTIO_DRIVER_DESC 0x1000u
#define VIRTIO_DRIVER_AVAIL 0x2000u
#define VIRTIO_DRIVER_USED 0x3000u
#define VIRTIO_DRIVER_STRIDE 0x3000u
#define VIRTIO_DRIVER_DATA 0x10000u

typedef struct {
    fake_env_t *f;
    uint64_t base;     /* the register block */
    uint16_t size;     /* each queue's */
    uint16_t n_queues; /* set up by init; 0: 1 */
    uint16_t q;        /* the queue desc, add, offer and used act on */
} virtio_driver_t;

uint32_t virtio_driver_rd(virtio_driver_t *d, uint32_t offset);
void virtio_driver_wr(virtio_driver_t *d, uint32_t offset, uint32_t value);

/* Resets the device, negotiates features (FEATURES_OK may not stick:
 * read STATUS), sets its queues up with d->size entries each and sets
 * DRIVER_OK. */
void virtio_driver_init(virtio_driver_t *d, uint64_t features);

/* Descriptor i of queue d->q. */
void virtio_driver_desc(virtio_driver_t *d, uint16_t i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next);
/* Makes chain head available; kicks queue d->q; both. */
void virtio_driver_add(virtio_driver_t *d, uint16_t head);
void virtio_driver_kick(virtio_driver_t *d);
void virtio_driver_offer(virtio_driver_t *d, uint16_t head);
/* The used ring's index, and its element i. */
uint16_t virtio_driver_used_idx(virtio_driver_t *d);
void virtio_driver_used(virtio_driver_t *d, uint16_t i, uint32_t *id, uint32_t *len);

#endif
