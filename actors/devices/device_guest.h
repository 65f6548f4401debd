/*
 * Guest memory for the device actor: reads and writes by guest physical
 * address. The first access asks the partition where guest RAM lies
 * (MapGuestMemory, a blocking call, valid after Build) and maps its memory
 * file when this process can open it: an access is then a memcpy.
 * Otherwise, and with by_message, accesses go by ReadGuestMemory and
 * WriteGuestMemory messages of at most 64 KiB each, so from any host.
 * Either way [gpa, gpa + len) must lie in one RAM range the partition
 * gave, checked before anything is read or written. What is read and
 * written through the mapping goes to the runtime too
 * (DEVICE_GUEST_RAM), for traces.
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
 * and keeps the mapping until device_guest_fini(), past its registration.
 */
#ifndef VMM_DEVICE_GUEST_H
#define VMM_DEVICE_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/devices.pb-c.h"
#include "runtime/rt.h"

/* A guest RAM range as the partition described it (GuestMemoryMap). */
typedef struct {
    uint64_t gpa, size;
    uint8_t *host; /* its bytes in the mapped memory file, or NULL */
} device_ram_t;

/* What the device actor hands the runtime as it reaches guest RAM outside
 * messages (rt_actor_input(), rt_actor_output()), so that a trace holds it
 * and a replay gives it back: whether the memory file could be mapped
 * (device_guest_map()'s result, an int), and the bytes read and written
 * through the mapping, at their guest physical address. */
#define DEVICE_GUEST_INPUT_MAPPED 1
#define DEVICE_GUEST_RAM 2

typedef struct {
    /* Accesses go by message even where guest RAM is mapped (tests and
     * measurements). */
    bool by_message;
    /* Never opens the memory file (a replay: the trace holds what was
     * read there). */
    bool no_file;
    bool mapped; /* the memory file is mapped, or was in the run replayed */
    device_ram_t *ram; /* owned; NULL until the first access asks */
    size_t n_ram;
    void *map; /* the memory file mapped (map_size bytes), or NULL */
    size_t map_size;
    /* Mapped: the process whose descriptor path named the file, and what
     * that descriptor links to (GuestMemoryMap.link), to tell later that
     * the process is still the VMM's. */
    int pid;
    char link[256];
    uint64_t ino; /* the memory file's inode: one VM of that process */
} device_guest_t;

/*
 * One access for actor self, whose VM's partition is `partition`: len
 * bytes at gpa read into to, or written from from (the other NULL).
 * Returns 0; -EFAULT outside RAM; -ENOTCONN without a partition; a
 * refusal's code as an errno (-EBUSY before Build, -EPERM for a device
 * that is not registered); -EPROTO for an answer that does not fit; or the
 * call's error (a write by message may then have been done in part).
 */
int device_guest_io(device_guest_t *g, rt_actor_t *self, const char *partition, uint64_t gpa,
                    void *to, const void *from, size_t len);

/*
 * new = (old & and_mask) | or_mask on size bytes (1, 2, 4 or 8, aligned)
 * at gpa, atomically against the guest's locked instructions (a CPU
 * compare-exchange on the mapping, or UpdateGuestMemory); *old gets what
 * was there. For bits the guest changes too (event flags, a slot's
 * pending flag). Returns as device_guest_io(), or -EINVAL for a size or
 * alignment it cannot do atomically.
 */
int device_guest_update(device_guest_t *g, rt_actor_t *self, const char *partition, uint64_t gpa,
                        uint32_t size, uint64_t and_mask, uint64_t or_mask, uint64_t *old);

/*
 * Takes a description of guest RAM (the partition's answer to
 * MapGuestMemory), replacing what g had: keeps its ranges, which every
 * access is checked against from then on, and maps the memory file when
 * map->path links to map->link, the file it opens links there too, is
 * sealed against shrinking and holds every range. Returns 0 when mapped;
 * otherwise accesses go by message and it says why: -EXDEV (path names
 * another file or none: another host or PID namespace), -EPERM (the file
 * is not sealed), -ERANGE (it is too small), or open's or mmap's error.
 * -EINVAL (no ranges, an empty one, or one that wraps) and -ENOMEM keep
 * nothing; with no_file it maps nothing (-EXDEV). The first access calls
 * it; tests give it descriptions of their own.
 */
int device_guest_map(device_guest_t *g, const Vmm__Devices__GuestMemoryMap *map);

/* new = (old & and_mask) | or_mask on size bytes (1, 2, 4 or 8) at p, a
 * mapping of guest RAM, atomically against the guest's locked instructions
 * on the same memory; returns old. */
uint64_t device_guest_atomic_update(void *p, uint32_t size, uint64_t and_mask, uint64_t or_mask);

/* Learns where guest RAM is (and maps it) now rather than at the first
 * access: 0, or the error device_guest_io() would give. */
int device_guest_prepare(device_guest_t *g, rt_actor_t *self, const char *partition);

/* Whether path is a symbolic link to link (a /proc descriptor entry). */
bool device_guest_links_to(const char *path, const char *link);

/* Releases the ranges and the mapping. */
void device_guest_fini(device_guest_t *g);

/* "not asked for yet", "mapped" or "by message", for inspect trees. */
const char *device_guest_state(const device_guest_t *g);

#endif
