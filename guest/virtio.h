/*
 * A virtio-mmio driver for test guests (virtio 1.x, 4.2.3 and 2.7): finds
 * a device of a given id at a register block, negotiates VIRTIO_F_VERSION_1
 * and the features asked, and drives its first queues (split virtqueues in
 * rings the caller's structure holds) by polling their used rings. Enough
 * to test a device's model from a guest; interrupts are the caller's (the
 * transport's interrupt status register, the IO-APIC line).
 */
#ifndef VMM_GUEST_VIRTIO_H
#define VMM_GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_VIRTIO_QSIZE 128
#define GUEST_VIRTIO_QUEUES 2

/* One buffer of a request. */
typedef struct {
    uint64_t addr;
    uint32_t len;
    bool write; /* device-writable */
} guest_virtio_buf_t;

/* A queue of GUEST_VIRTIO_QSIZE entries: the descriptor table (16-byte
 * aligned), the available ring and the used ring. */
typedef struct {
    struct {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
    } desc[GUEST_VIRTIO_QSIZE] __attribute__((aligned(16)));
    struct {
        uint16_t flags, idx, ring[GUEST_VIRTIO_QSIZE], used_event;
    } avail __attribute__((aligned(2)));
    struct {
        uint16_t flags, idx;
        struct {
            uint32_t id, len;
        } ring[GUEST_VIRTIO_QSIZE];
        uint16_t avail_event;
    } used __attribute__((aligned(4)));
    uint16_t next_desc; /* descriptors are handed out round and round */
    uint16_t last_used;
} guest_virtio_queue_t;

typedef struct {
    volatile uint32_t *regs;
    uint16_t n_queues;
    guest_virtio_queue_t q[GUEST_VIRTIO_QUEUES];
} guest_virtio_t;

/* Initializes the device at base (3.1.1) with its first n_queues queues
 * (at most GUEST_VIRTIO_QUEUES): 0, or the step that failed (1: not a
 * virtio-mmio version 2 block, 2: another device id, 3: the features
 * refused, 4: a queue missing or smaller than ours). */
int guest_virtio_init(guest_virtio_t *v, uint64_t base, uint32_t device_id, uint64_t features,
                      uint16_t n_queues);

/* Makes a request of n buffers available on queue q; returns its head.
 * Descriptors are handed out in turn: at most GUEST_VIRTIO_QSIZE may be in
 * flight, and a device must use requests in the order they came. */
uint16_t guest_virtio_add(guest_virtio_t *v, uint16_t q, const guest_virtio_buf_t *bufs,
                          uint16_t n);
/* Notifies queue q of what was added. */
void guest_virtio_kick(guest_virtio_t *v, uint16_t q);
/* Both. */
uint16_t guest_virtio_submit(guest_virtio_t *v, uint16_t q, const guest_virtio_buf_t *bufs,
                             uint16_t n);

/* Waits (polling, at most GUEST_VIRTIO_WAIT_CYCLES of the TSC: about 13 s
 * at this host's 2.6 GHz, however fast a look is at CPL 0 or CPL 3) for
 * queue q's next used element: its head, and the bytes the device wrote in
 * *len; GUEST_VIRTIO_NONE when none came. */
#define GUEST_VIRTIO_WAIT_CYCLES (1ull << 35)
#define GUEST_VIRTIO_NONE 0xffff
uint16_t guest_virtio_wait(guest_virtio_t *v, uint16_t q, uint32_t *len);

/* The device status register (DEVICE_NEEDS_RESET is bit 6). */
uint32_t guest_virtio_status(guest_virtio_t *v);

/* Reads the interrupt status (bit 0: used buffers, bit 1: configuration
 * change) and acknowledges what it read; returns it. */
uint32_t guest_virtio_ack(guest_virtio_t *v);

#endif
