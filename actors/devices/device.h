/*
 * What every port device actor shares: registration with the partition
 * actor (the VM's device registry), the port accesses VPs send
 * (devices.proto ReadIo / WriteIo) checked against the device's ranges and
 * answered, the one-way messages a device sends (AssertIrq, RequestMsi,
 * PowerRequest, events to a named actor), and guest memory access by guest
 * physical address. A device embeds a device_t in its state; the dev_*
 * actors are its users.
 */
#ifndef VMM_DEVICE_H
#define VMM_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/rt.h"

#define DEVICE_MAX_RANGES 4

/* The ports [start, start + len). */
typedef struct {
    uint32_t start, len;
} device_range_t;

/* What a device asks the partition for at init. */
typedef struct {
    const char *name; /* unique in the VM, e.g. "com1" */
    const device_range_t *ranges;
    size_t n_ranges; /* at most DEVICE_MAX_RANGES */
    const uint32_t *irq_lines;
    size_t n_irq_lines;
    bool posted_writes; /* VPs may send writes one-way */
    uint32_t msi_count; /* MSIs it may raise (device_request_msi) */
    bool halt_if_lost;  /* the VM cannot do without it (in another process) */
} device_spec_t;

typedef struct {
    uint64_t reads, writes; /* served */
    uint64_t posted_writes; /* of writes: sent one-way, not answered */
    uint64_t bad_requests;  /* refused: malformed, out of range, unserved op */
    uint64_t unsent;        /* one-way messages with no receiver or a failed send */
} device_counters_t;

/* A guest RAM range as the partition described it (GuestMemoryMap). */
typedef struct {
    uint64_t gpa, size;
    uint8_t *host; /* its bytes in the mapped memory file, or NULL */
} device_ram_t;

typedef struct {
    char *partition; /* owned; NULL: not registered, nothing sent to it */
    uint64_t handle; /* the registration's, 0 when not registered */
    device_range_t ranges[DEVICE_MAX_RANGES];
    size_t n_ranges;
    device_counters_t counters;
    /* Guest memory (device_guest_read / _write). The device may set
     * guest_by_message after device_init: its accesses then go by message
     * even where guest RAM is mapped (for tests and measurements). */
    bool guest_by_message;
    device_ram_t *ram; /* owned; NULL until the first access asks */
    size_t n_ram;
    void *ram_map; /* the memory file mapped (ram_map_size bytes), or NULL */
    size_t ram_map_size;
} device_t;

/* One port access taken from a request. */
typedef struct {
    bool write;
    uint32_t vp_index;
    uint32_t port;
    uint32_t size;  /* 1, 2 or 4 */
    uint32_t value; /* a write's data, little endian; 0 for a read */
} device_access_t;

/*
 * Sets dev up with spec's ranges and, when partition is not NULL, registers
 * them with that actor (a blocking rt_call, meant for init). A refusal is
 * logged with the partition's text. Returns 0, or a negative errno: -EINVAL
 * for an empty range or one past port 0xffff, the refusal's code as an
 * errno (BUSY -> -EBUSY, INVALID_ARGUMENT -> -EINVAL, ...),
 * -EPROTO for a reply that is no registration, or the call's error; then
 * dev holds nothing.
 */
int device_init(device_t *dev, rt_actor_t *self, const char *partition,
                const device_spec_t *spec);
/* Releases what dev holds, the guest RAM mapping included. */
void device_fini(device_t *dev);

/*
 * Takes the port access a device_request carries. Returns 0, or -EINVAL
 * when it is not a port access inside dev's ranges (an unset or other op, a
 * size or data length other than 1, 2 or 4, a port outside the ranges):
 * then the request has been answered with INVALID_ARGUMENT (NOT_SUPPORTED
 * for an op a port device does not serve), or only logged when it was
 * one-way, and counted, and the handler has nothing more to do.
 */
int device_access_get(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                      device_access_t *access);

/* Answers an access, and counts it served: a read with the low
 * access->size bytes of value, little endian; a write with an Ack, unless
 * it was one-way. The events a
 * write caused leave before its Ack, so that a VP waiting for it resumes
 * after them. */
int device_access_done(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                       const device_access_t *access, uint32_t value);

/* Refuses an access the device cannot take (a width or port its register
 * does not have): INVALID_ARGUMENT with the text, logged and counted.
 * Returns 0. */
int device_access_refuse(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* One-way messages. Nothing a guest did can fix a failed send, so failures
 * (and a NULL receiver) are counted in unsent and logged, not returned. */
void device_send(device_t *dev, rt_actor_t *self, const char *to, Vmm__Envelope *env);
/* An edge on IO-APIC input irq. */
void device_assert_irq(device_t *dev, rt_actor_t *self, uint32_t irq);
void device_request_msi(device_t *dev, rt_actor_t *self, uint64_t address, uint32_t data);
/* A whole-VM power action; exit_code only with has_exit_code. */
void device_power(device_t *dev, rt_actor_t *self, Vmm__Devices__PowerAction action,
                  bool has_exit_code, uint32_t exit_code);

/*
 * Guest memory for a device's handlers: len bytes at guest physical
 * address gpa read into buf, or written from it. The first access asks the
 * partition where guest RAM lies (MapGuestMemory, a blocking call, valid
 * after Build) and maps its memory file when this process can open it
 * (device_guest_map): an access is then a memcpy. Otherwise, and with
 * guest_by_message, it goes by ReadGuestMemory / WriteGuestMemory messages
 * of at most 64 KiB each, so from any host. Either way [gpa, gpa + len)
 * must lie in one RAM range the partition gave, checked before anything is
 * read or written.
 *
 * Returns 0; -EFAULT outside RAM; -ENOTCONN for a device without a
 * partition; a refusal's code as an errno (-EBUSY before Build, -EPERM for
 * a device that is not registered); -EPROTO for an answer that does not
 * fit; or the call's error (a write by message may then have been done in
 * part).
 *
 * Why mapping guest RAM is safe enough: the memory file is reachable only
 * by the VM's own user on the VM's host (its /proc/<pid>/fd entry needs the
 * right to inspect the VMM's process, and the file is mode 0600); the
 * partition tells where it is only to a registered device of its own VM;
 * the file is sealed, so no mapper can shrink it under the VMM or grow it;
 * a device maps a file only when it is the VM's (GuestMemoryMap.link), so a
 * path meant for another host never reaches an unrelated file here; and
 * accesses through these helpers are range-checked against the ranges the
 * partition gave, never a wild pointer. A device host is trusted with guest
 * RAM as much as a vhost-user backend is: it may read and write all of it,
 * and keeps the mapping until device_fini, past its registration's end.
 */
int device_guest_read(device_t *dev, rt_actor_t *self, uint64_t gpa, void *buf, size_t len);
int device_guest_write(device_t *dev, rt_actor_t *self, uint64_t gpa, const void *buf,
                       size_t len);

/*
 * Takes a description of guest RAM (the partition's answer to
 * MapGuestMemory), replacing what dev had: keeps its ranges, which every
 * access is checked against from then on, and maps the memory file when
 * map->path links to map->link, the file it opens links there too, is
 * sealed against shrinking and holds every range. Returns 0 when mapped;
 * otherwise accesses go by message and it says why: -EXDEV (path names
 * another file or none: another host or PID namespace), -EPERM (the file
 * is not sealed), -ERANGE (it is too small), or open's or mmap's error.
 * -EINVAL (no ranges, an empty one, or one that wraps) and -ENOMEM keep
 * nothing. The guest accesses call it on their first use; tests give it
 * descriptions of their own.
 */
int device_guest_map(device_t *dev, const Vmm__Devices__GuestMemoryMap *map);

/* Adds the registration and the counters to an introspection tree. */
void device_inspect(const device_t *dev, Vmm__Rt__InspectNode *node);

#endif
