/*
 * What the partition actor's files share: partition.c (KVM, the
 * prototype, build, interrupts, doorbells, reset), devices.c
 * (registrations, with the device registry actor beside it; devices'
 * permissions, guest memory, device hosts' liveness), vdev.c (virtual
 * devices and their VPCI interrupts), mapper.c (memory mapped beside
 * guest RAM), vmstate.c (the partition-wide state and what a snapshot
 * keeps of the partition) and ramfile.c (guest RAM to and from a file). Not for other modules: partition.h
 * is the actor's interface.
 */
#ifndef VMM_PARTITION_INTERNAL_H
#define VMM_PARTITION_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/partition.pb-c.h"
#include "proto/registry.pb-c.h"
#include "runtime/rt.h"

#define PARTITION_MAX_VPS 256
#define PARTITION_MAX_RAM_RANGES 32
#define PARTITION_MAX_CPUID 256
#define PARTITION_IRQ_LINES 24
/* Largest guest memory read or write by message (devices.proto). */
#define PARTITION_MAX_GUEST_IO 65536u
/* How long registration waits for a VP to take its new routes. */
#define PARTITION_ROUTE_TIMEOUT_MS 5000
/* A device in another process is pinged this often, and lost when a ping
 * goes unanswered this long. */
#define PARTITION_LIVENESS_PERIOD_MS 250
#define PARTITION_LIVENESS_TIMEOUT_MS 3000

/* How long a question to the device registry (on the partition's own
 * executor: a direct call) may take. */
#define PARTITION_REGISTRY_TIMEOUT_MS 5000

/* A doorbell's owner is signalled by a request (DoorbellSignalled): rings
 * while one is unanswered are held and go in one signal once it is
 * answered, or once it has been unanswered this long. */
#define PARTITION_DOORBELL_TIMEOUT_MS 2000

/* Doorbells one registration may ask for. */
#define PARTITION_MAX_DOORBELL_REQUESTS 64
/* MSI irqfds (devices.proto GetMsiIrqfd) a device may have, and a VM:
 * their GSIs follow the IO-APIC's. */
#define PARTITION_MAX_IRQFDS_PER_DEVICE 64
#define PARTITION_MAX_IRQFDS 1024

/* Denials logged one by one before the log goes quiet (they stay
 * counted): a misbehaving device must not flood it. */
#define PARTITION_MAX_DENIALS_LOGGED 16
/* The most actors that are not devices whose grants (none) are cached:
 * beyond it each is asked of the registry again, so that names a peer
 * invents cannot grow the cache. */
#define PARTITION_MAX_NON_DEVICES_CACHED 256
/* "peer:" and a CURVE key in Z85 (registry.proto Add.origin). */
#define PARTITION_ORIGIN_MAX 48

/* PARTITION_FAILED: a build failed half way; the VM cannot be built again. */
typedef enum {
    PARTITION_FRESH,
    PARTITION_PROTO,
    PARTITION_BUILT,
    PARTITION_FAILED,
} partition_stage_t;

typedef struct {
    uint64_t gpa, size;
    uint64_t offset; /* in the memory file */
    void *host;
} partition_ram_t;

typedef struct partition_fill partition_fill_t;

typedef struct {
    uint64_t handle, address;
    int efd;
    char *owner;
    /* As assigned: KVM deassigns only an exact match. */
    uint32_t length;
    bool match;
    uint64_t value;
    /* Given to its device, which waits on efd itself (GetDoorbellFd): not
     * watched here. */
    bool handed;
    uint64_t signal; /* the signal unanswered (its request id), or 0 */
    bool held;       /* rung since that signal went */
} partition_doorbell_t;

/* An MSI a device in another process raises by writing efd (KVM_IRQFD on
 * a GSI routed to it). */
typedef struct {
    char *owner;
    uint64_t address;
    uint32_t data;
    uint32_t gsi;
    int efd;
} partition_irqfd_t;

/* A device's line raised by an irqfd it writes and lowered by KVM at the
 * guest's EOI, which then signals resample_efd (KVM_IRQFD_FLAG_RESAMPLE). */
typedef struct {
    char *owner;
    uint32_t line;
    int efd, resample_efd;
} partition_line_irqfd_t;

/* An MSI made from an MSI target (the seed's MsiControl). */
typedef struct {
    uint64_t handle;
    char *owner;
    bool enabled;
    uint64_t address;
    uint32_t data;
} partition_msi_t;

/* A registration, or its end, whose reply waits until every VP has taken
 * the new routes: the partition must not wait for them on its own thread,
 * since a VP may be waiting in turn for the synic, which runs there. */
typedef struct {
    rt_deferred_t *owed;
    uint64_t *ids;      /* each VP's SetIoRoutes request; 0 once answered */
    size_t outstanding; /* of ids */
    uint8_t *reply;     /* the packed devices.Reply; NULL: an Ack */
    size_t reply_len;
    /* A registration to undo should a VP not take the routes; 0: none. */
    uint64_t handle;
    char *actor;
    char why[160]; /* the first VP's failure, or "" */
} partition_route_wait_t;

/* A registered device in another process, watched for its liveness. */
typedef struct {
    char *actor, *name;
    uint64_t handle;
    uint64_t ping; /* the request id of the ping in flight, or 0 */
    /* Its registration has been answered: till then the device waits for
     * the answer and cannot answer pings. */
    bool answered;
    /* When the partition last heard from it otherwise (a request, an
     * event; rt_now_ns): a device busy asking for guest memory is alive
     * even when its pings wait behind its work. */
    uint64_t heard_ns;
} partition_remote_t;

/* What an actor may do as a device, as the registry last said: kept until
 * a registration changes (the partition makes every change). */
typedef struct {
    char *actor;
    bool device;
    uint32_t irq_lines; /* a bit per IO-APIC input */
    uint32_t msi_count;
    char origin[PARTITION_ORIGIN_MAX]; /* of its registrations (registry.proto) */
} partition_grants_t;

/* Atomic: the shared handlers count on their senders' threads. */
typedef struct {
    atomic_uint_fast64_t devices_lost, devices_replaced;
    atomic_uint_fast64_t msis, msis_blocked, irqs, irqs_unrouted, doorbells_signalled,
        line_changes;
    /* Signals sent to doorbells' owners, and rings held for one in flight. */
    atomic_uint_fast64_t doorbell_signals, doorbell_rings_held;
    atomic_uint_fast64_t guest_reads, guest_writes, guest_updates, power_requests, refused;
    atomic_uint_fast64_t denied; /* acts outside what the sender may do (of refused) */
    atomic_uint_fast64_t irqfds_made;
} partition_stats_t;

/* A range of a memory object mapped into guest memory (mapper.c). */
typedef struct {
    uint64_t gpa, size;
    int slot;
    void *host;
    char *object;
    bool writable;
} partition_mapping_t;

/* A memory file of the partition's that mappings name (not "ram"). */
typedef struct {
    char *name;
    int fd;
    uint64_t size;
    int users; /* mappings of it */
} partition_memobj_t;

/* A VPCI interrupt of a virtual device (vdev.c): what the guest programs. */
typedef struct {
    uint64_t address;
    uint32_t data, count;
} partition_vpci_irq_t;

/* A virtual device (Hv1::new_virtual_device), its owner's alone. */
typedef struct {
    uint64_t handle, device_id;
    char *owner;
    partition_vpci_irq_t *irqs;
    size_t n_irqs;
} partition_vdev_t;

typedef struct {
    char *vm, *name;
    rt_executor_t **given_executors;
    size_t n_given;
    /* Read by the shared handlers: BUILT once vm_fd and the RAM are set. */
    _Atomic partition_stage_t stage;
    int kvm_fd, vm_fd;
    size_t run_size;
    uint32_t vp_count;
    bool hv; /* NewPartition had an HvConfig: the guest sees Hyper-V */
    bool bios_state; /* NewPartition.bios_state: as a PC BIOS leaves it */
    char *synic; /* its synic actor's name when hv */
    /* The reference time (100 ns) is the guest TSC's: guest TSC = host
     * TSC + tsc_offset, and it read tsc_at_zero when the VM was built. */
    uint64_t tsc_khz;
    int64_t tsc_offset;
    uint64_t tsc_at_zero;
    struct kvm_cpuid2 *cpuid; /* the default guest CPUID, then the built one */
    char cpuid_hidden[256];   /* what the default hides of KVM's, and why */
    partition_ram_t ram[PARTITION_MAX_RAM_RANGES];
    size_t n_ram;
    int ram_fd; /* the memory file behind guest RAM (s_map_ram) */
    uint64_t instance; /* DeviceRegistration.vm_instance: drawn at start */
    char **vp_names;
    rt_executor_t **own_executors; /* executors the partition started */
    struct {
        bool msi;
        uint64_t address;
        uint32_t data;
    } irq_routes[PARTITION_IRQ_LINES];
    bool irq_high[PARTITION_IRQ_LINES]; /* the levels devices set */
    /* Held while a line's level goes to KVM, so that two threads setting
     * one line cannot leave KVM at a level other than irq_high's. */
    pthread_mutex_t irq_lock;
    /* The interrupt controllers and timer as created, for Reset. */
    struct kvm_irqchip initial_chips[3];
    struct kvm_pit_state2 initial_pit;
    char *registry; /* its device registry actor, "<vm>/devices" */
    /* Complete for every registered device (s_grants_refresh()): an actor
     * not listed is none. Changed by the partition's thread under
     * grants_lock, which the shared handlers take to read. */
    partition_grants_t *grants;
    size_t n_grants;
    size_t n_non_devices; /* of them; at most PARTITION_MAX_NON_DEVICES_CACHED */
    partition_grants_t uncached; /* s_grants()' answer beyond that */
    pthread_mutex_t grants_lock;
    partition_remote_t *remotes;
    size_t n_remotes;
    partition_route_wait_t *waits;
    size_t n_waits;
    int liveness_fd; /* a timerfd, armed while remotes exist */
    partition_doorbell_t *doorbells;
    size_t n_doorbells;
    uint64_t next_doorbell;
    /* MSI targets are the partition's own (device 0): a handle is all
     * they are. */
    uint64_t *msi_targets;
    size_t n_msi_targets;
    partition_msi_t *msis;
    size_t n_msis;
    uint64_t next_msi;
    partition_irqfd_t *irqfds;
    size_t n_irqfds;
    partition_line_irqfd_t *line_irqfds;
    size_t n_line_irqfds;
    partition_vdev_t *vdevs;
    size_t n_vdevs;
    uint64_t next_vdev;
    partition_mapping_t *mappings;
    size_t n_mappings;
    partition_memobj_t *objects;
    size_t n_objects;
    uint64_t pinned_bytes;
    /* Guest RAM being filled from a snapshot (ramfill.c), and what fills
     * did: the partition's thread alone touches these. */
    partition_fill_t *fill;
    uint64_t fills, fill_faults, fill_bytes, fill_ms;
    partition_stats_t stats;
} partition_t;


/* ---- partition.c ---------------------------------------------------------- */

/* A failure of a request that may come one-way: answered, or counted and
 * logged when there is nobody to answer. Returns 0. */
int partition_refuse(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
                     const char *text);
/* Refuses a request made in the wrong stage of the partition's life. */
int partition_stage_error(rt_actor_t *self, const Vmm__Envelope *msg, partition_stage_t want);
/* Makes the doorbell op asks for, signalling owner; *handle is its handle.
 * Returns 0, or a negative errno with the reason in err. */
int partition_add_doorbell(rt_actor_t *self, const Vmm__Partition__RegisterDoorbell *op,
                           const char *owner, uint64_t *handle, char *err, size_t errlen);
/* Drops the doorbells that signal owner, and its MSI and line irqfds (its
 * registration went). */
void partition_drop_doorbells_of(rt_actor_t *self, const char *owner);
/* An MSI irqfd for (address, data) of device owner, made or the one it
 * has: *out is its index. Returns 0, or a negative errno with the reason
 * in err. */
int partition_irqfd(rt_actor_t *self, const char *owner, uint64_t address, uint32_t data,
                    size_t *out, char *err, size_t errlen);

/* The doorbell `handle` of device owner, handed to it to wait on itself
 * (no longer watched here): *efd is its eventfd. Returns 0, -ENOENT (no
 * such doorbell of owner's), or unwatch's error. */
int partition_hand_doorbell(rt_actor_t *self, const char *owner, uint64_t handle, int *efd);
/* A line irqfd for line of device owner, made or the one it has: *out is
 * its index in line_irqfds. Returns 0, or a negative errno with the reason
 * in err. */
int partition_line_irqfd(rt_actor_t *self, const char *owner, uint32_t line, size_t *out,
                         char *err, size_t errlen);

/* devices.c: the registrations the registry holds, in *reply (released by
 * the caller). Returns 0 or the call's error. */
int partition_registry_list(rt_actor_t *self, rt_msg_t *reply,
                            const Vmm__Registry__Devices **list);

/* Takes a device's line level (devices.proto IrqLineChanged), refused as
 * partition_refuse() says; a request (a device whose VP waits for the
 * level) is acknowledged once the level is set. Returns 0. */
int partition_irq_level(rt_actor_t *self, const Vmm__Envelope *msg, uint32_t irq, bool high);

/* ---- vdev.c: virtual devices and their VPCI interrupts ----------------------- */

int partition_on_new_virtual_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                    const Vmm__Partition__NewVirtualDevice *op);
int partition_on_drop_virtual_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                     const Vmm__Partition__DropVirtualDevice *op);
int partition_on_register_vpci_interrupt(rt_actor_t *self, const Vmm__Envelope *msg,
                                         const Vmm__Partition__RegisterVpciInterrupt *op);
int partition_on_unregister_vpci_interrupt(rt_actor_t *self, const Vmm__Envelope *msg,
                                           const Vmm__Partition__UnregisterVpciInterrupt *op);
/* Whether owner has the virtual device `handle`. */
bool partition_has_virtual_device(partition_t *p, uint64_t handle, const char *owner);
void partition_vdevs_fini(partition_t *p);

/* The partition's reference time now, in 100 ns units (partition.c). */
uint64_t partition_reference_time(const partition_t *p);
/* Gives KVM the IRQ routing table: lines' routes and MSI irqfds. Returns 0
 * or a negative errno. */
int partition_apply_irq_routes(partition_t *p);

/* ---- vmstate.c: the partition-wide state (GetVmState, SetVmState) ------------ */

int partition_on_get_vm_state(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__GetVmState *op);
int partition_on_set_vm_state(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__SetVmState *op);
int partition_on_save_state(rt_actor_t *self, const Vmm__Envelope *msg);
int partition_on_restore_state(rt_actor_t *self, const Vmm__Envelope *msg,
                               const Vmm__Partition__RestoreState *op);

/* ---- ramfile.c: guest RAM to and from a file (SaveMemory, LoadMemory) -------- */

int partition_on_ram_file(rt_actor_t *self, const Vmm__Envelope *msg, const char *path, bool save,
                          bool copy);
/* The memory file's size: every RAM range at its offset. */
uint64_t partition_ram_bytes(const partition_t *p);

/* ---- ramfill.c -------------------------------------------------------------- */

/*
 * Fills guest RAM (total bytes of the memory file) from the RAM file fd on
 * demand, behind the running guest, on a thread of its own. On success the
 * fill owns fd; on failure (no userfaultfd here, say) the caller keeps it,
 * with the reason in why, and guest RAM may have been emptied.
 */
int partition_fill_start(partition_t *p, rt_actor_t *self, int fd, uint64_t total, char *why,
                         size_t n);

/* Waits until the fill, if any, is complete (or, with stop, has left the
 * rest), and logs what it did: before anything reads the memory file other
 * than through the partition's own mappings. */
void partition_fill_finish(partition_t *p, rt_actor_t *self, bool stop);

/* "ram_fill": filling, done or none, with the faults served first and the
 * bytes filled. */
void partition_fill_inspect(partition_t *p, rt_actor_t *self, Vmm__Rt__InspectNode *node);

/* ---- mapper.c: memory mapped beside guest RAM --------------------------------- */

int partition_on_map_memory(rt_actor_t *self, const Vmm__Envelope *msg,
                            const Vmm__Partition__MapMemory *op);
int partition_on_unmap_memory(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__UnmapMemory *op);
/* PrefetchMemory (pin false) and PinMemory (pin true). */
int partition_on_touch_memory(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Vtl vtl,
                              uint64_t gpa, uint64_t size, bool pin);
void partition_mapper_fini(partition_t *p);

/* ---- devices.c ------------------------------------------------------------ */

/*
 * Whether VPs may post writes to the devices that ask for it. A posted
 * write takes effect after the VP has run on, so with several VPs another
 * VP's later access (the guest ordered them, say, by a lock) could reach
 * the device first, by another path or another queue: a port write on
 * x86 is not posted. With one VP every access of the VM leaves the one VP
 * in order, and nothing overtakes a posted write.
 */
static inline bool partition_posts_ok(const partition_t *p)
{
    return p->vp_count == 1;
}

/* What actor may do as a device, copied into *out for a shared handler
 * (any thread): false when it is no registered device. */
bool partition_grants_of(partition_t *p, const char *actor, partition_grants_t *out);
/* Whether a sender of this VM may make a request or event on a shared
 * handler's thread; else answers for it and returns false. */
bool partition_permitted_shared(rt_actor_t *self, const Vmm__Envelope *msg);
/* The shared handler of device events: line levels, on the device's thread. */
int partition_on_shared_device_event(rt_actor_t *self, const Vmm__Envelope *msg);

/* Refuses an act outside what the sender may do: PERMISSION_DENIED,
 * counted, and logged. Returns 0. */
int partition_deny(rt_actor_t *self, const Vmm__Envelope *msg, const char *why);
/* Whether msg's sender may make its request or event; else answers for it
 * and returns false. */
bool partition_permitted(rt_actor_t *self, const Vmm__Envelope *msg);
/* Sends every VP the routing table and, when wait, waits for each to take
 * it. Returns 0, or a negative errno with the reason in err. */
int partition_push_routes(rt_actor_t *self, bool wait, char *err, size_t errlen);
/* The handlers devices.c serves for the actor. */
int partition_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg);
int partition_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg);
void partition_on_reply(rt_actor_t *self, const Vmm__Envelope *reply);
/* Takes the answer to a doorbell's signal: true when reply is one. */
bool partition_doorbell_answered(rt_actor_t *self, const Vmm__Envelope *reply);
/* The liveness timer of device hosts. */
void partition_on_liveness_fd(rt_actor_t *self, int fd);
/* Frees what devices.c keeps, refusing registrations still waiting. */
void partition_devices_fini(rt_actor_t *self);

#endif
