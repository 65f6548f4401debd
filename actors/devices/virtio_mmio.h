/*
 * The virtio-mmio transport, version 2 (virtio 1.x, 4.2.2), as a device
 * model: the register block at base (0x200 bytes: registers, then the
 * device type's configuration space at 0x100), feature negotiation,
 * status, split virtqueues (virtqueue.h; VIRTIO_RING_F_EVENT_IDX
 * offered), and the interrupt status and acknowledge registers on one
 * level-triggered line, as Firecracker's transport does. Each queue's
 * QueueNotify write is a doorbell (device_spec_t), matched by the queue's
 * index, so that a kick costs the VP no exit to the VMM; a write that
 * still reaches the register is taken the same way.
 *
 * A device type (virtio-blk, virtio-console, virtio-rng) is a
 * virtio_type_t: its id, features, queues and configuration, and what it
 * does when the driver kicks a queue; it reaches its queues and raises
 * interrupts through the transport.
 *
 * Bad driver input is refused and counted, and never reaches memory
 * outside guest RAM: a queue made ready with a size that is not a power of
 * two or misaligned rings, a bad chain, a notify before DRIVER_OK or for a
 * queue not ready, features never offered, a register written in the
 * wrong status. A bad queue or chain sets DEVICE_NEEDS_RESET and raises a
 * configuration-change interrupt (4.2.2, 2.1.2); the driver must reset
 * the device (status 0).
 */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/devices/device.h"
#include "actors/devices/virtqueue.h"

#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_MMIO_QUEUES_MAX 8

/* Registers (offsets in the block). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Interrupt status bits. */
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2

/* Feature bits the transport offers itself. */
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

typedef struct virtio_mmio_s virtio_mmio_t;

/* A device type on the transport. */
typedef struct {
    uint32_t device_id;     /* e.g. 2 for a block device */
    uint64_t features;      /* its own; the transport adds its two */
    uint16_t n_queues;      /* at most VIRTIO_MMIO_QUEUES_MAX */
    uint32_t config_size;   /* its configuration space, at most 0x100 */
    /* Its configuration space's bytes, into config[0..config_size). */
    void (*config)(void *state, uint8_t *config);
    /* The driver wrote config[offset..offset+len); 0, or -EINVAL to
     * refuse (counted). NULL: read-only. */
    int (*config_write)(void *state, uint32_t offset, const uint8_t *bytes, uint32_t len);
    /* The driver kicked queue q (DRIVER_OK, the queue ready). */
    void (*notify)(void *state, virtio_mmio_t *m, uint16_t q);
    /* The driver reset the device: forget what is in flight. */
    void (*reset)(void *state);
    /* Optional, for a type with a console: input bytes, and room for
     * output again (device_ops_t's console_input and console_ready). */
    void (*console_input)(void *state, virtio_mmio_t *m, const uint8_t *bytes, size_t len);
    void (*console_ready)(void *state, virtio_mmio_t *m);
    /* Optional: its own registers and counters in the device's tree. */
    void (*inspect)(void *state, Vmm__Rt__InspectNode *node);
    void (*destroy)(void *state);
} virtio_type_t;

typedef struct {
    const char *name;  /* e.g. "virtio-rng", copied */
    uint64_t base;     /* the register block's guest physical address */
    uint32_t irq;      /* its IO-APIC input */
    const virtio_type_t *type;
    uint64_t features; /* this device's, beside the type's (read-only, say) */
    void *state;       /* the type's, owned by the device from here */
} virtio_mmio_config_t;

/* The transport with its type (a device_new_fn: config is a
 * virtio_mmio_config_t *). NULL when the type asks for too much. */
device_t *dev_virtio_mmio_new(const void *config, device_env_t *env);

/* For a type: its device (guest memory, the clock), its queue q (NULL
 * past n_queues or not ready). */
device_t *virtio_mmio_device(virtio_mmio_t *m);
virtq_t *virtio_mmio_queue(virtio_mmio_t *m, uint16_t q);

/* Raises the used-buffer interrupt for queue q when its driver asked for
 * one (event index or flags). */
void virtio_mmio_used(virtio_mmio_t *m, uint16_t q);

/* What a type takes from a queue at one go: past it, it stops and calls
 * virtio_mmio_again(), so that the device answers its host's pings (and
 * other work) while a driver keeps a queue full. */
#define VIRTIO_MMIO_BATCH 64

/* Notifies queue q again from a timer at once (type->notify), for a type
 * that stopped after VIRTIO_MMIO_BATCH chains. */
void virtio_mmio_again(virtio_mmio_t *m, uint16_t q);

/* The device cannot go on (a bad chain): DEVICE_NEEDS_RESET, a
 * configuration-change interrupt, counted and logged with why. */
void virtio_mmio_needs_reset(virtio_mmio_t *m, const char *why);

#endif
