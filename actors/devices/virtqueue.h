/*
 * A split virtqueue (virtio 1.x, "Split Virtqueues") as a device sees it:
 * the driver's descriptor table and available ring, the device's used
 * ring, all in guest RAM, reached through the device's environment
 * (device_guest_read / device_guest_write), so that a queue works the
 * same in process, in a device host with the memory file mapped, or by
 * message.
 *
 * Everything read from the rings is the guest's to get wrong, and is
 * checked: a head or next index past the table, a chain longer than the
 * queue (a loop), a device-readable buffer after a writable one, an
 * indirect descriptor (not offered), a chain past VIRTQ_CHAIN_MAX, a ring
 * or buffer outside guest RAM. A bad chain is refused with a reason and
 * counted; the transport decides what follows (virtio_mmio.h sets
 * DEVICE_NEEDS_RESET).
 */
#ifndef VMM_VIRTQUEUE_H
#define VMM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/devices/device.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* The largest queue the transport offers, and the longest chain taken. */
#define VIRTQ_MAX_SIZE 1024
#define VIRTQ_CHAIN_MAX 256

/* One buffer of a chain. */
typedef struct {
    uint64_t gpa;
    uint32_t len;
    bool write; /* device-writable */
} virtq_buf_t;

/* A chain the driver made available: readable buffers first. */
typedef struct {
    uint16_t head;
    uint16_t n;
    uint64_t readable, writable; /* bytes of each kind */
    virtq_buf_t buf[VIRTQ_CHAIN_MAX];
} virtq_chain_t;

typedef struct {
    uint16_t size;               /* QueueNum */
    uint64_t desc, avail, used;  /* the rings' guest physical addresses */
    bool ready;
    bool event_idx;              /* VIRTIO_RING_F_EVENT_IDX negotiated */
    uint16_t last_avail;         /* the next available entry to take */
    uint16_t used_idx;           /* the used ring's index, as written */
    uint16_t signalled;          /* used_idx when the driver was last told */
    struct {
        uint64_t popped, pushed, bad;
    } counts;
} virtq_t;

/* Whether the rings' layout holds: a size a power of two from 1 to max,
 * each ring aligned as the spec asks. 0, or -EINVAL. */
int virtq_check(const virtq_t *q, uint16_t max);

/* Goes on from the used index in guest RAM (a device host restarted): the
 * next chain taken is the first the ring shows unused. 0, or -EFAULT. */
int virtq_resume(virtq_t *q, device_t *dev);

/* Back to where a reset leaves it (layout and indexes forgotten). */
void virtq_reset(virtq_t *q);

/* Takes the next chain the driver made available: 1 with *c filled, 0
 * when there is none, or a negative errno for a chain that cannot be
 * taken (counted; why says it): -ELOOP, -EINVAL, -EFAULT. */
int virtq_pop(virtq_t *q, device_t *dev, virtq_chain_t *c, const char **why);

/* The chain's bytes as two streams, readable then writable, whatever
 * their buffers: copies len bytes of the readable ones from offset into
 * buf, or buf into the writable ones at offset. 0, -EINVAL past the
 * stream's end, or -EFAULT outside guest RAM. */
int virtq_chain_read(device_t *dev, const virtq_chain_t *c, uint64_t offset, void *buf,
                     size_t len);
int virtq_chain_write(device_t *dev, const virtq_chain_t *c, uint64_t offset, const void *buf,
                      size_t len);

/* Gives a chain back with written bytes: the used element, then the used
 * index. 0, or a negative errno (the ring is not in guest RAM). */
int virtq_push(virtq_t *q, device_t *dev, uint16_t head, uint32_t written);

/* Whether the driver asked to be interrupted for what was pushed since it
 * was last told (the used_event index, or the avail ring's NO_INTERRUPT
 * flag); when it did, that is now "told". */
bool virtq_should_interrupt(virtq_t *q, device_t *dev);

/* With event indexes, asks the driver to kick again once it makes entry
 * last_avail available (avail_event). */
void virtq_want_kicks(virtq_t *q, device_t *dev);

#endif
