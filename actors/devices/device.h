/*
 * A device model: its state and registers behind one interface
 * (device_ops_t), with every effect it has going through the environment
 * it is handed (device_env_t): an interrupt line's level, an MSI, guest
 * memory, timers, the clocks, power, its console, the SynIC, log lines. A
 * model knows nothing of actors, messages or sockets, as kvmtool's and
 * Firecracker's devices know nothing of their event loops.
 *
 * One generic actor (device_actor.h) hosts any model, wherever it is
 * placed: on a VP's executor, on one of its own, in a device host. Unit
 * tests call a model directly with a fake environment that records its
 * effects (testing/fake_env.h): no runtime, no sockets.
 *
 * A model embeds a device_t first in its state, which its constructor
 * fills (ops, env, spec) before returning it:
 *
 *     typedef struct { device_t dev; uint16_t pm1_cnt; } pm1a_t;
 *     device_t *dev_pm1a_new(const dev_pm1a_config_t *cfg, device_env_t *env);
 */
#ifndef VMM_DEVICE_H
#define VMM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/devices.pb-c.h"
#include "runtime/rt.h" /* rt_log_level_t, rt_inspect_add() for inspect trees */

#define DEVICE_MAX_RANGES 4
#define DEVICE_MAX_IRQS 24 /* the IO-APIC's inputs: pc-testdev drives them all */
#define DEVICE_MAX_DOORBELLS 4

/* A read or write that the model answers later: see device_defer(). */
#define DEVICE_IO_DEFERRED 1

/* Ports [start, start + len), or guest physical addresses with mmio. */
typedef struct {
    bool mmio;
    uint64_t start, len;
} device_range_t;

/* A doorbell (KVM ioeventfd): a guest write of `length` bytes (0: any) at
 * address, of `value` when has_value, signals the model (ops->doorbell)
 * without an exit. It must lie in one of the model's MMIO ranges. */
typedef struct {
    uint64_t address;
    uint32_t length;
    bool has_value;
    uint64_t value;
} device_doorbell_t;

/* What the model claims in the VM: the actor registers it. */
typedef struct {
    const char *name; /* unique in the VM, e.g. "com1"; the model's to keep */
    device_range_t ranges[DEVICE_MAX_RANGES];
    size_t n_ranges;
    uint32_t irq_lines[DEVICE_MAX_IRQS]; /* IO-APIC inputs it drives */
    size_t n_irq_lines;
    uint32_t msi_count; /* MSIs it may raise */
    /* The guest need not wait for its writes (nothing a write does is seen
     * elsewhere before the device's next access): VPs may send them
     * one-way where the order of accesses holds without waiting. */
    bool posted_writes;
    device_doorbell_t doorbells[DEVICE_MAX_DOORBELLS];
    size_t n_doorbells;
} device_spec_t;

/* One guest access, inside the model's ranges (the actor checks). */
typedef struct {
    bool mmio;
    uint64_t address; /* a port, or a guest physical address */
    uint32_t size;    /* 1, 2 or 4 bytes; 8 too for MMIO */
    uint32_t vp_index;
} device_io_t;

typedef struct device_s device_t;
typedef struct device_env_s device_env_t;
typedef struct device_deferred_s device_deferred_t;

typedef struct {
    const char *kind; /* e.g. "serial", the kind of its saved state */
    /*
     * A guest access. Return 0 when done (a read's result in *value, the
     * low io->size bytes, little endian), DEVICE_IO_DEFERRED after
     * device_defer() when the answer comes later, or a negative errno to
     * refuse it (a width or register the device does not have: the VP
     * counts it, and a read sees all ones); say why with device_log().
     */
    int (*read)(device_t *dev, const device_io_t *io, uint64_t *value);
    int (*write)(device_t *dev, const device_io_t *io, uint64_t value);
    /* Back to the state of a machine just powered on. */
    void (*reset)(device_t *dev);
    /* Adds the model's registers and counters to an introspection tree. */
    void (*inspect)(device_t *dev, Vmm__Rt__InspectNode *node);
    /* Packs the model's state (its device_state.proto message) into out,
     * malloc'ed and then the caller's. Returns 0 or -ENOMEM. */
    int (*save)(device_t *dev, ProtobufCBinaryData *out);
    /* Takes a state save() made: 0, or -EINVAL (changing nothing) for one
     * that does not decode or holds a value out of range. */
    int (*restore)(device_t *dev, const uint8_t *bytes, size_t len);
    /* Optional: the model was restored from the state its device host kept
     * before that host was restarted (device_actor_config_t.state_file),
     * and guest memory is reachable again: it takes up what was in flight
     * when the old host died (a virtio queue, from its used index). */
    void (*resume)(device_t *dev);
    /* Optional: timer `id` armed with device_timer_set() is due. */
    void (*timer)(device_t *dev, uint32_t id);
    /* Optional: doorbell spec.doorbells[index] was written. */
    void (*doorbell)(device_t *dev, size_t index);
    /* Optional: the guest posted a message (HvPostMessage) or signalled an
     * event (HvSignalEvent) to a connection the model made with
     * device_synic_connect(). */
    void (*synic_message)(device_t *dev, uint32_t connection_id, uint32_t type,
                          const uint8_t *payload, size_t len);
    void (*synic_event)(device_t *dev, uint32_t connection_id, uint32_t flag);
    /* Optional, for a model with a console: input bytes, never more than
     * it last asked for (device_console_want()); and room for output came
     * back after device_console_room() was 0. */
    void (*console_input)(device_t *dev, const uint8_t *bytes, size_t len);
    void (*console_ready)(device_t *dev);
    /* Frees the model. */
    void (*destroy)(device_t *dev);
} device_ops_t;

struct device_s {
    const device_ops_t *ops;
    device_env_t *env;
    device_spec_t spec;
};

/* Makes a model from its own configuration. Returns NULL (errno set:
 * EINVAL for a bad configuration, ENOMEM) on failure. */
typedef device_t *(*device_new_fn)(const void *config, device_env_t *env);

/* Frees *dev and nulls it; NULL is fine. */
void device_destroy(device_t **dev);

/*
 * The environment: a model's only way out. The generic actor implements it
 * with messages and the runtime; tests with a recorder. Every function may
 * be called from any of the model's operations.
 */
typedef struct {
    /* An IO-APIC input's level (a line of spec.irq_lines): a line that
     * rises interrupts an edge-triggered pin; a level-triggered pin
     * interrupts again after the guest's EOI while the line stays high. */
    void (*irq_set)(device_env_t *env, uint32_t line, bool high);
    void (*msi)(device_env_t *env, uint64_t address, uint32_t data);
    /* Guest RAM by guest physical address: 0, -EFAULT outside RAM, or
     * another negative errno when it could not be reached. */
    int (*guest_read)(device_env_t *env, uint64_t gpa, void *buf, size_t len);
    int (*guest_write)(device_env_t *env, uint64_t gpa, const void *buf, size_t len);
    /* The runtime's clock (ns, monotonic), and one-shot timers on it;
     * setting an armed timer moves it. */
    uint64_t (*now_ns)(device_env_t *env);
    int (*timer_set)(device_env_t *env, uint32_t id, uint64_t deadline_ns);
    void (*timer_cancel)(device_env_t *env, uint32_t id);
    /* The host's real time (CLOCK_REALTIME, ns since the Unix epoch), for a
     * model that shows the date (an RTC): read it once and advance it by
     * now_ns(), since the host's clock may step. A trace records it and a
     * replay gives it back. */
    uint64_t (*wall_ns)(device_env_t *env);
    /* len random bytes from the host's source (getrandom(2)), for a model
     * that hands the guest entropy; a trace records them and a replay
     * gives them back. 0, or a negative errno. */
    int (*entropy)(device_env_t *env, void *buf, size_t len);
    /*
     * The model's backing store (a disk image), for a storage model: opened
     * once by path, read-only or read-write, its size in *size; then reads
     * and writes at byte offsets, and a flush that returns once what was
     * written is on the disk (fdatasync). A trace records the size, each
     * result and the bytes read, so that a replay gives them back without
     * the file, and what was written (compared on replay). 0, or a negative
     * errno (-EBADF before a successful open).
     */
    int (*storage_open)(device_env_t *env, const char *path, bool readonly, uint64_t *size);
    int (*storage_read)(device_env_t *env, uint64_t offset, void *buf, size_t len);
    int (*storage_write)(device_env_t *env, uint64_t offset, const void *buf, size_t len);
    int (*storage_flush)(device_env_t *env);
    /* Powers the VM off (exit_code < 0: none) or resets it. */
    void (*power)(device_env_t *env, Vmm__Devices__PowerAction action, int exit_code);
    void (*log)(device_env_t *env, rt_log_level_t level, const char *text);
    /* See device_defer() and device_complete(). */
    device_deferred_t *(*defer)(device_env_t *env);
    void (*complete)(device_env_t *env, device_deferred_t *d, int status, uint64_t value);
    /* The console: output taken (at most room()), room for more output,
     * and how many input bytes the model takes now. */
    size_t (*console_write)(device_env_t *env, const uint8_t *bytes, size_t len);
    size_t (*console_room)(device_env_t *env);
    void (*console_want)(device_env_t *env, size_t room);
    /* A test guest's call (testdev_abi.h), for whoever runs the VM. */
    void (*guest_call)(device_env_t *env, uint32_t vp_index, uint32_t kind,
                       const uint32_t *args, size_t n_args);
    /*
     * The Hyper-V SynIC, in a VM that presents it (else -ENODEV). A
     * connection (message or event) makes what the guest posts or signals
     * to connection_id reach ops->synic_message or ops->synic_event;
     * -EEXIST when the id is taken. Into the guest: a message to VP vp's
     * SINT slot (-EBUSY when too many wait for it), an event flag set with
     * its SINT asserted, a SINT asserted alone. 0 or a negative errno.
     */
    int (*synic_connect)(device_env_t *env, bool message, uint32_t connection_id);
    int (*synic_disconnect)(device_env_t *env, bool message, uint32_t connection_id);
    int (*synic_post)(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t type,
                      const uint8_t *payload, size_t len);
    int (*synic_signal)(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t flag);
    int (*synic_assert)(device_env_t *env, uint32_t vp, uint32_t sint);
} device_env_ops_t;

struct device_env_s {
    const device_env_ops_t *ops;
};

/* ---- What a model calls ---------------------------------------------------- */

static inline void device_irq_set(device_t *dev, uint32_t line, bool high)
{
    dev->env->ops->irq_set(dev->env, line, high);
}

static inline void device_msi(device_t *dev, uint64_t address, uint32_t data)
{
    dev->env->ops->msi(dev->env, address, data);
}

static inline int device_guest_read(device_t *dev, uint64_t gpa, void *buf, size_t len)
{
    return dev->env->ops->guest_read(dev->env, gpa, buf, len);
}

static inline int device_guest_write(device_t *dev, uint64_t gpa, const void *buf, size_t len)
{
    return dev->env->ops->guest_write(dev->env, gpa, buf, len);
}

static inline uint64_t device_now_ns(device_t *dev)
{
    return dev->env->ops->now_ns(dev->env);
}

static inline int device_timer_set(device_t *dev, uint32_t id, uint64_t deadline_ns)
{
    return dev->env->ops->timer_set(dev->env, id, deadline_ns);
}

static inline void device_timer_cancel(device_t *dev, uint32_t id)
{
    dev->env->ops->timer_cancel(dev->env, id);
}

static inline uint64_t device_wall_ns(device_t *dev)
{
    return dev->env->ops->wall_ns(dev->env);
}

static inline int device_entropy(device_t *dev, void *buf, size_t len)
{
    return dev->env->ops->entropy(dev->env, buf, len);
}

static inline int device_storage_open(device_t *dev, const char *path, bool readonly,
                                      uint64_t *size)
{
    return dev->env->ops->storage_open(dev->env, path, readonly, size);
}

static inline int device_storage_read(device_t *dev, uint64_t offset, void *buf, size_t len)
{
    return dev->env->ops->storage_read(dev->env, offset, buf, len);
}

static inline int device_storage_write(device_t *dev, uint64_t offset, const void *buf,
                                       size_t len)
{
    return dev->env->ops->storage_write(dev->env, offset, buf, len);
}

static inline int device_storage_flush(device_t *dev)
{
    return dev->env->ops->storage_flush(dev->env);
}

static inline void device_power(device_t *dev, Vmm__Devices__PowerAction action, int exit_code)
{
    dev->env->ops->power(dev->env, action, exit_code);
}

/* Logs a line tagged with the device, printf-style. */
void device_log(device_t *dev, rt_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Answers the access being handled later, as OpenVMM's IoResult::Defer:
 * call it in read or write, return DEVICE_IO_DEFERRED, and pass the token
 * to device_complete() once, later (from a timer, a doorbell, another
 * access). The VP waits meanwhile without running the guest, and stays
 * stoppable. NULL when out of memory: then answer now.
 */
static inline device_deferred_t *device_defer(device_t *dev)
{
    return dev->env->ops->defer(dev->env);
}

/* Completes a deferred access: status 0 with a read's value, or a negative
 * errno for a failed one. The token is gone afterwards. */
static inline void device_complete(device_t *dev, device_deferred_t *d, int status,
                                   uint64_t value)
{
    dev->env->ops->complete(dev->env, d, status, value);
}

static inline size_t device_console_write(device_t *dev, const uint8_t *bytes, size_t len)
{
    return dev->env->ops->console_write(dev->env, bytes, len);
}

static inline size_t device_console_room(device_t *dev)
{
    return dev->env->ops->console_room(dev->env);
}

static inline void device_console_want(device_t *dev, size_t room)
{
    dev->env->ops->console_want(dev->env, room);
}

static inline void device_guest_call(device_t *dev, uint32_t vp_index, uint32_t kind,
                                     const uint32_t *args, size_t n_args)
{
    dev->env->ops->guest_call(dev->env, vp_index, kind, args, n_args);
}

static inline int device_synic_connect(device_t *dev, bool message, uint32_t connection_id)
{
    return dev->env->ops->synic_connect(dev->env, message, connection_id);
}

static inline int device_synic_disconnect(device_t *dev, bool message, uint32_t connection_id)
{
    return dev->env->ops->synic_disconnect(dev->env, message, connection_id);
}

static inline int device_synic_post(device_t *dev, uint32_t vp, uint32_t sint, uint32_t type,
                                    const uint8_t *payload, size_t len)
{
    return dev->env->ops->synic_post(dev->env, vp, sint, type, payload, len);
}

static inline int device_synic_signal(device_t *dev, uint32_t vp, uint32_t sint, uint32_t flag)
{
    return dev->env->ops->synic_signal(dev->env, vp, sint, flag);
}

static inline int device_synic_assert(device_t *dev, uint32_t vp, uint32_t sint)
{
    return dev->env->ops->synic_assert(dev->env, vp, sint);
}

/* ---- Helpers for models ---------------------------------------------------- */

/* Packs a protobuf-c message into out (malloc'ed): a save() in one line.
 * Returns 0 or -ENOMEM. */
int device_pack_state(const ProtobufCMessage *msg, ProtobufCBinaryData *out);

/* Adds "name = value" (an unsigned count) to an introspection tree. */
void device_inspect_count(Vmm__Rt__InspectNode *node, const char *name, uint64_t value);

/* For a model that keeps nothing the guest can see (a test's or a
 * benchmark's device): reset does nothing, save writes no bytes, and
 * restore takes no bytes only (-EINVAL for any). */
void device_reset_none(device_t *dev);
int device_save_none(device_t *dev, ProtobufCBinaryData *out);
int device_restore_none(device_t *dev, const uint8_t *bytes, size_t len);

#endif
