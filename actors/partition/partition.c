#define _GNU_SOURCE /* asprintf */
#include "actors/partition/partition.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <x86intrin.h>

#include "actors/partition/registry.h"
#include "actors/synic/synic.h"
#include "actors/vp/vp.h"

#define S_MAX_VPS 256
#define S_MAX_RAM_RANGES 32
#define S_MAX_CPUID 256
#define S_IRQ_LINES 24
/* Largest guest memory read or write by message (devices.proto). */
#define S_MAX_GUEST_IO 65536u
/* How long registration waits for a VP to take its new routes. */
#define S_ROUTE_TIMEOUT_MS 5000
/* A device in another process is pinged this often, and lost when a ping
 * goes unanswered this long. */
#define S_LIVENESS_PERIOD_MS 250
#define S_LIVENESS_TIMEOUT_MS 1000

/* Doorbells one registration may ask for. */
#define S_MAX_DOORBELL_REQUESTS 64

/* Denials logged one by one before the log goes quiet (they stay
 * counted): a misbehaving device must not flood it. */
#define S_MAX_DENIALS_LOGGED 16

/* S_FAILED: a build failed half way; the VM cannot be built again. */
typedef enum { S_FRESH, S_PROTO, S_BUILT, S_FAILED } s_stage_t;

typedef struct {
    uint64_t gpa, size;
    uint64_t offset; /* in the memory file */
    void *host;
} s_ram_t;

typedef struct {
    uint64_t handle, address;
    int efd;
    char *owner;
    /* As assigned: KVM deassigns only an exact match. */
    uint32_t length;
    bool match;
    uint64_t value;
} s_doorbell_t;

/* An MSI made from an MSI target (the seed's MsiControl). */
typedef struct {
    uint64_t handle;
    char *owner;
    bool enabled;
    uint64_t address;
    uint32_t data;
} s_msi_t;

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
} s_route_wait_t;

/* A registered device in another process, watched for its liveness. */
typedef struct {
    char *actor, *name;
    uint64_t handle;
    uint64_t ping; /* the request id of the ping in flight, or 0 */
    /* Its registration has been answered: till then the device waits for
     * the answer and cannot answer pings. */
    bool answered;
} s_remote_t;

typedef struct {
    uint64_t devices_lost, devices_replaced;
    uint64_t msis, msis_blocked, irqs, irqs_unrouted, doorbells_signalled;
    uint64_t guest_reads, guest_writes, guest_updates, power_requests, refused;
    uint64_t denied; /* acts outside what the sender may do (of refused) */
} s_stats_t;

typedef struct {
    char *vm, *name;
    rt_executor_t **given_executors;
    size_t n_given;
    s_stage_t stage;
    int kvm_fd, vm_fd;
    size_t run_size;
    uint32_t vp_count;
    bool hv; /* NewPartition had an HvConfig: the guest sees Hyper-V */
    char *synic; /* its synic actor's name when hv */
    /* The reference time (100 ns) is the guest TSC's: guest TSC = host
     * TSC + tsc_offset, and it read tsc_at_zero when the VM was built. */
    uint64_t tsc_khz;
    int64_t tsc_offset;
    uint64_t tsc_at_zero;
    struct kvm_cpuid2 *cpuid; /* the default guest CPUID, then the built one */
    s_ram_t ram[S_MAX_RAM_RANGES];
    size_t n_ram;
    int ram_fd; /* the memory file behind guest RAM (s_map_ram) */
    char **vp_names;
    rt_executor_t **own_executors; /* executors the partition started */
    struct {
        bool msi;
        uint64_t address;
        uint32_t data;
    } irq_routes[S_IRQ_LINES];
    /* The interrupt controllers and timer as created, for Reset. */
    struct kvm_irqchip initial_chips[3];
    struct kvm_pit_state2 initial_pit;
    registry_t *registry;
    s_remote_t *remotes;
    size_t n_remotes;
    s_route_wait_t *waits;
    size_t n_waits;
    int liveness_fd; /* a timerfd, armed while remotes exist */
    s_doorbell_t *doorbells;
    size_t n_doorbells;
    uint64_t next_doorbell;
    /* MSI targets are the partition's own (device 0): a handle is all
     * they are. */
    uint64_t *msi_targets;
    size_t n_msi_targets;
    s_msi_t *msis;
    size_t n_msis;
    uint64_t next_msi;
    s_stats_t stats;
} partition_t;

/* ---- Replies ----------------------------------------------------------------- */

static int s_reply(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Partition__Reply *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REPLY;
    env.partition_reply = reply;
    return rt_reply(self, msg, &env);
}

static int s_ack(rt_actor_t *self, const Vmm__Envelope *msg)
{
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

/* A failure of a request that may come one-way: counted and logged then,
 * since there is nobody to answer. */
static int s_refuse(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
                    const char *text)
{
    partition_t *p = rt_actor_state(self);
    p->stats.refused++;
    if (msg->request_id)
        return rt_reply_error(self, msg, code, "%s", text);
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "from %s: %s", msg->sender, text);
    return 0;
}

static int s_stage_error(rt_actor_t *self, const Vmm__Envelope *msg, s_stage_t want)
{
    static const char *const needs[] = {
        [S_FRESH] = "before NewPartition",
        [S_PROTO] = "after NewPartition and before Build",
        [S_BUILT] = "after Build",
    };
    char text[96];
    snprintf(text, sizeof text, "this request is only valid %s", needs[want]);
    return s_refuse(self, msg, VMM__ERROR_CODE__BUSY, text);
}

/* Refuses an act outside what the sender may do: PERMISSION_DENIED,
 * counted, and logged. Returns 0. */
static int s_deny(rt_actor_t *self, const Vmm__Envelope *msg, const char *why)
{
    partition_t *p = rt_actor_state(self);
    p->stats.refused++;
    if (++p->stats.denied <= S_MAX_DENIALS_LOGGED)
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "refused %s: %s%s", msg->sender, why,
               p->stats.denied == S_MAX_DENIALS_LOGGED ? " (further refusals are counted only)"
                                                      : "");
    return msg->request_id
               ? rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED, "%s", why)
               : 0;
}

/* Actors are named "<vm>/...": one of another VM may not act on this one.
 * Names without a VM are the host's own (the VMM, tests). */
static bool s_same_vm(const partition_t *p, const char *sender)
{
    const char *slash = strchr(sender, '/');
    return !slash || ((size_t)(slash - sender) == strlen(p->vm) &&
                      !strncmp(sender, p->vm, (size_t)(slash - sender)));
}

/* Why a registered device may not make this partition request, or NULL:
 * a device acts only within its registration (its IRQ lines, the MSIs it
 * was given, doorbells in its own ranges) and has no say over the VM's
 * configuration or its VPs. */
static const char *s_device_may_not(partition_t *p, const char *sender,
                                    const Vmm__Partition__Request *req, char *buf, size_t len)
{
    switch (req->op_case) {
    case VMM__PARTITION__REQUEST__OP_REQUEST_MSI:
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET:
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_INTERRUPT:
        if (registry_msi_count(p->registry, sender))
            return NULL;
        return "its registration was given no MSIs";
    case VMM__PARTITION__REQUEST__OP_ASSERT_IRQ:
        if (registry_has_irq(p->registry, sender, req->assert_irq->irq))
            return NULL;
        snprintf(buf, len, "IRQ %u is not among its registered lines", req->assert_irq->irq);
        return buf;
    case VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL: {
        const Vmm__Partition__RegisterDoorbell *op = req->register_doorbell;
        if (*op->owner && strcmp(op->owner, sender))
            return "a device's doorbells signal the device itself";
        if (registry_owns(p->registry, sender, true, op->guest_address,
                          op->opt_length_case ? op->length : 1))
            return NULL;
        snprintf(buf, len, "a doorbell at 0x%llx, outside its MMIO ranges",
                 (unsigned long long)op->guest_address);
        return buf;
    }
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_TARGET:
    case VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DISABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_UNREGISTER_DOORBELL: /* owners are checked there */
    case VMM__PARTITION__REQUEST__OP_GET_REFERENCE_TIME:
    case VMM__PARTITION__REQUEST__OP_GET_CAPS:
    case VMM__PARTITION__REQUEST__OP_QUERY_FEATURES:
    case VMM__PARTITION__REQUEST__OP_GET_ISOLATION:
        return NULL;
    default:
        snprintf(buf, len, "partition operation %d is not a device's to make",
                 (int)req->op_case);
        return buf;
    }
}

/* Whether msg's sender may make its request or event; else answers for
 * it (s_deny) and returns false. */
static bool s_permitted(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    char buf[128];
    const char *why = NULL;
    if (!s_same_vm(p, msg->sender)) {
        snprintf(buf, sizeof buf, "an actor of another VM may not act on %s", p->vm);
        why = buf;
    } else if (msg->body_case == VMM__ENVELOPE__BODY_PARTITION_REQUEST &&
               registry_is_device(p->registry, msg->sender)) {
        why = s_device_may_not(p, msg->sender, msg->partition_request, buf, sizeof buf);
    }
    if (!why)
        return true;
    s_deny(self, msg, why);
    return false;
}

/* True for VTL0; else answers NOT_SUPPORTED (KVM has no VTLs). */
static bool s_vtl0(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Vtl vtl)
{
    if (vtl == VMM__VTL__VTL0)
        return true;
    s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, "only VTL0 exists on KVM");
    return false;
}

/* ---- KVM --------------------------------------------------------------------- */

typedef struct {
    int cap;
    const char *name;
} s_cap_t;

/* What this VMM relies on. */
static const s_cap_t s_required_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_SET_GUEST_DEBUG, "KVM_CAP_SET_GUEST_DEBUG"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
    {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
};

/* Opens /dev/kvm and checks it; on failure says what is missing. */
static int s_open_kvm(char *missing, size_t size)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(missing, size, "/dev/kvm: %s", strerror(errno));
        return -errno;
    }
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        snprintf(missing, size, "KVM API version %d, not %d", version, KVM_API_VERSION);
        close(fd);
        return -ENOTSUP;
    }
    for (size_t i = 0; i < sizeof s_required_caps / sizeof *s_required_caps; i++)
        if (ioctl(fd, KVM_CHECK_EXTENSION, s_required_caps[i].cap) <= 0) {
            snprintf(missing, size, "%s missing", s_required_caps[i].name);
            close(fd);
            return -ENOTSUP;
        }
    return fd;
}

static struct kvm_cpuid_entry2 *s_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == fn &&
            (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
            return e;
    }
    return NULL;
}

/*
 * The default guest CPUID: what KVM supports, less what the host's
 * instruction emulator cannot run when it emulates guest kernel code
 * (platform.md), so that guests that look before they leap avoid it.
 */
static void s_cpuid_hide_unemulated(struct kvm_cpuid2 *c)
{
    struct kvm_cpuid_entry2 *e;
    if ((e = s_cpuid_find(c, 1, 0))) {
        e->ecx &= ~((1u << 1) |  /* PCLMULQDQ */
                    (1u << 3) |  /* MONITOR */
                    (1u << 9) |  /* SSSE3 */
                    (1u << 12) | /* FMA */
                    (1u << 13) | /* CMPXCHG16B */
                    (1u << 19) | /* SSE4.1 */
                    (1u << 20) | /* SSE4.2 (crc32) */
                    (1u << 22) | /* MOVBE */
                    (1u << 23) | /* POPCNT */
                    (1u << 25) | /* AES */
                    (1u << 26) | /* XSAVE */
                    (1u << 27) | /* OSXSAVE */
                    (1u << 28) | /* AVX */
                    (1u << 29)); /* F16C */
        e->ecx |= 1u << 31;      /* a hypervisor is present */
    }
    if ((e = s_cpuid_find(c, 7, 0))) {
        e->ebx &= ~((1u << 3) |  /* BMI1 */
                    (1u << 5) |  /* AVX2 */
                    (1u << 8) |  /* BMI2 */
                    (1u << 16) | /* AVX512F and the rest of AVX-512 */
                    (1u << 19) | /* ADX */
                    (1u << 29)); /* SHA */
        e->ecx &= ~(1u << 22);   /* RDPID */
    }
    if ((e = s_cpuid_find(c, 0x80000001, 0))) {
        e->ecx &= ~(1u << 5); /* LZCNT */
        e->edx &= ~(1u << 27); /* RDTSCP */
    }
    /* No XSAVE: the XSAVE leaf says nothing. */
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == 0xd)
            c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = c->entries[i].edx = 0;
}

static struct kvm_cpuid2 *s_supported_cpuid(int kvm_fd)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + S_MAX_CPUID * sizeof c->entries[0]);
    if (!c)
        return NULL;
    c->nent = S_MAX_CPUID;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        free(c);
        return NULL;
    }
    s_cpuid_hide_unemulated(c);
    return c;
}

/*
 * With an HvConfig the guest finds the Microsoft hypervisor interface where
 * KVM would put its own leaves (TLFS, "Hypervisor CPUID leaves"): vendor
 * "Microsoft Hv", interface "Hv#1", a version, what the synic actor
 * implements, the recommendations and the limits.
 */
#define S_HV_PRIVILEGES                                                                          \
    ((1u << 1) |  /* AccessPartitionReferenceCounter */                                           \
     (1u << 2) |  /* AccessSynicRegs */                                                           \
     (1u << 3) |  /* AccessSyntheticTimerRegs */                                                  \
     (1u << 5) |  /* AccessHypercallMsrs */                                                       \
     (1u << 6) |  /* AccessVpIndex */                                                             \
     (1u << 9))   /* AccessPartitionReferenceTsc */
#define S_HV_PRIVILEGES_HIGH ((1u << 4) | (1u << 5)) /* PostMessages, SignalEvents */
#define S_HV_FEATURES (1u << 19)                      /* direct-mode SynIC timers */
#define S_HV_RECOMMENDATIONS (1u << 9) /* no AutoEOI: the in-kernel APIC needs an EOI */
static void s_cpuid_present_hyperv(struct kvm_cpuid2 *c, uint32_t vp_count)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->nent; i++)
        if ((c->entries[i].function & 0xffffff00u) != 0x40000000u)
            c->entries[kept++] = c->entries[i];
    const struct kvm_cpuid_entry2 hv[] = {
        {.function = 0x40000000, .eax = 0x40000005,
         .ebx = 0x7263694d, .ecx = 0x666f736f, .edx = 0x76482074}, /* "Microsoft Hv" */
        {.function = 0x40000001, .eax = 0x31237648}, /* "Hv#1" */
        {.function = 0x40000002, .eax = 1, .ebx = 1u << 16}, /* build 1, version 1.0 */
        {.function = 0x40000003,
         .eax = S_HV_PRIVILEGES, .ebx = S_HV_PRIVILEGES_HIGH, .edx = S_HV_FEATURES},
        {.function = 0x40000004, .eax = S_HV_RECOMMENDATIONS,
         .ebx = 0xffffffff}, /* never notify about long spinlocks */
        {.function = 0x40000005, .eax = vp_count, .ebx = vp_count},
    };
    for (size_t i = 0; i < sizeof hv / sizeof *hv && kept < S_MAX_CPUID; i++)
        c->entries[kept++] = hv[i];
    c->nent = kept;
}

/* ---- Prototype --------------------------------------------------------------- */

static int s_on_is_available(rt_actor_t *self, const Vmm__Envelope *msg)
{
    char missing[128] = "";
    int fd = s_open_kvm(missing, sizeof missing);
    if (fd >= 0)
        close(fd);
    Vmm__Partition__Availability a = VMM__PARTITION__AVAILABILITY__INIT;
    a.available = fd >= 0;
    a.missing = missing;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_AVAILABILITY;
    r.availability = &a;
    return s_reply(self, msg, &r);
}

static int s_on_new_partition(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__NewPartition *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_FRESH)
        return s_stage_error(self, msg, S_FRESH);
    const Vmm__Partition__ProcessorTopology *topo = op->processor_topology;
    if (!topo || !topo->vp_count || topo->vp_count > S_MAX_VPS)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "processor_topology.vp_count must be 1 to %d", S_MAX_VPS);
    if (p->n_given && topo->vp_count > p->n_given)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "processor_topology.vp_count %u, but only %zu VP executors given",
                              topo->vp_count, p->n_given);
    if (topo->n_vps && topo->n_vps != topo->vp_count)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "processor_topology.vps has %zu entries for %u VPs", topo->n_vps,
                              topo->vp_count);
    for (size_t i = 0; i < topo->n_vps; i++)
        if (topo->vps[i]->vp_index != i || topo->vps[i]->apic_id != i)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                  "processor_topology.vps[%zu]: KVM here gives VP i the APIC "
                                  "ID i",
                                  i);
    if (op->isolation != VMM__PARTITION__ISOLATION_TYPE__NONE)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                              "isolation: KVM here runs only non-isolated partitions");
    if (op->hv_config && op->hv_config->vtl2)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                              "hv_config.vtl2: KVM has no VTL2");

    char missing[128] = "";
    int fd = s_open_kvm(missing, sizeof missing);
    if (fd < 0)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, "%s", missing);
    struct kvm_cpuid2 *cpuid = s_supported_cpuid(fd);
    int run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (!cpuid || run_size <= 0) {
        free(cpuid);
        close(fd);
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                              "cannot read KVM's CPUID or run area size");
    }
    if (op->hv_config)
        s_cpuid_present_hyperv(cpuid, topo->vp_count);
    p->hv = op->hv_config != NULL;
    p->kvm_fd = fd;
    p->cpuid = cpuid;
    p->run_size = (size_t)run_size;
    p->vp_count = topo->vp_count;
    p->stage = S_PROTO;
    /* user_mode_apic asks for the user-mode APIC "if supported": it is
     * not, so the in-kernel APIC serves (GetCaps says so). */
    return rt_reply_ack(self, msg);
}

static int s_on_get_cpuid(rt_actor_t *self, const Vmm__Envelope *msg,
                          const Vmm__Partition__GetCpuid *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage == S_FRESH)
        return s_stage_error(self, msg, S_PROTO);
    Vmm__Partition__CpuidRegisters regs = VMM__PARTITION__CPUID_REGISTERS__INIT;
    const struct kvm_cpuid_entry2 *e = s_cpuid_find(p->cpuid, op->eax, op->ecx);
    if (e) {
        regs.eax = e->eax, regs.ebx = e->ebx, regs.ecx = e->ecx, regs.edx = e->edx;
    }
    Vmm__Partition__CpuidResult res = VMM__PARTITION__CPUID_RESULT__INIT;
    res.result = &regs;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_CPUID;
    r.cpuid = &res;
    return s_reply(self, msg, &r);
}

static uint32_t s_phys_bits(partition_t *p)
{
    const struct kvm_cpuid_entry2 *e = s_cpuid_find(p->cpuid, 0x80000008, 0);
    return e && (e->eax & 0xff) ? e->eax & 0xff : 36;
}

static int s_on_get_max_phys(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage == S_FRESH)
        return s_stage_error(self, msg, S_PROTO);
    Vmm__Partition__PhysicalAddressSize size = VMM__PARTITION__PHYSICAL_ADDRESS_SIZE__INIT;
    size.bits = s_phys_bits(p);
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_MAX_PHYSICAL_ADDRESS_SIZE;
    r.max_physical_address_size = &size;
    return s_reply(self, msg, &r);
}

/* ---- Build -------------------------------------------------------------------- */

static int s_push_routes(rt_actor_t *self, bool wait, char *err, size_t errlen);

static int s_check_layout(partition_t *p, const Vmm__Partition__MemoryLayout *l, char *err,
                          size_t errlen)
{
    if (!l || !l->n_ram) {
        snprintf(err, errlen, "mem_layout: no RAM");
        return -EINVAL;
    }
    if (l->n_ram > S_MAX_RAM_RANGES) {
        snprintf(err, errlen, "mem_layout: %zu RAM ranges, at most %d", l->n_ram,
                 S_MAX_RAM_RANGES);
        return -EINVAL;
    }
    if (l->vtl2_range) {
        snprintf(err, errlen, "mem_layout.vtl2_range: KVM has no VTL2");
        return -ENOTSUP;
    }
    uint64_t limit = 1ull << s_phys_bits(p), prev_end = 0;
    for (size_t i = 0; i < l->n_ram; i++) {
        const Vmm__MemoryRange *r = l->ram[i]->range;
        if (!r || r->end <= r->start || (r->start | r->end) & 0xfff || r->end > limit ||
            r->start < prev_end) {
            snprintf(err, errlen,
                     "mem_layout.ram[%zu]: not a sorted, page-aligned, non-empty range below "
                     "the %u-bit address limit",
                     i, s_phys_bits(p));
            return -EINVAL;
        }
        for (size_t m = 0; m < l->n_mmio; m++) {
            const Vmm__MemoryRange *g = l->mmio[m];
            if (g->start < r->end && r->start < g->end) {
                snprintf(err, errlen, "mem_layout.ram[%zu] overlaps mmio[%zu]", i, m);
                return -EINVAL;
            }
        }
        prev_end = r->end;
    }
    return 0;
}

/* Creates the memory file for size bytes of guest RAM: a memfd named
 * "vmm-ram-<random>", so that the link to it (GuestMemoryMap.link) names
 * this VM's RAM and no other. Sealed once sized: a device that maps it
 * can neither shrink it (the VMM's accesses past the end would fault) nor
 * grow it; mode 0600 keeps it its user's even where /proc would let
 * another reach it. */
static int s_ram_file(partition_t *p, uint64_t size, char *err, size_t errlen)
{
    uint8_t nonce[16];
    char name[8 + 2 * sizeof nonce + 1] = "vmm-ram-";
    if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) {
        int rc = -errno;
        snprintf(err, errlen, "cannot name the guest RAM file: %s", strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < sizeof nonce; i++)
        snprintf(name + 8 + 2 * i, 3, "%02x", nonce[i]);
    p->ram_fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (p->ram_fd < 0 || fchmod(p->ram_fd, 0600) < 0 || ftruncate(p->ram_fd, (off_t)size) < 0 ||
        fcntl(p->ram_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot make a %llu MiB file for guest RAM: %s",
                 (unsigned long long)(size >> 20), strerror(-rc));
        return rc;
    }
    return 0;
}

/* Guest RAM is one memory file, each range at the next offset, mapped
 * shared: devices on this host may map it too (MapGuestMemory). */
static int s_map_ram(partition_t *p, const Vmm__Partition__MemoryLayout *l, char *err,
                     size_t errlen)
{
    uint64_t total = 0;
    for (size_t i = 0; i < l->n_ram; i++)
        total += l->ram[i]->range->end - l->ram[i]->range->start;
    int rc = s_ram_file(p, total, err, errlen);
    if (rc)
        return rc;
    uint64_t offset = 0;
    for (size_t i = 0; i < l->n_ram; i++) {
        const Vmm__MemoryRange *r = l->ram[i]->range;
        uint64_t size = r->end - r->start;
        void *host =
            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p->ram_fd, (off_t)offset);
        if (host == MAP_FAILED) {
            snprintf(err, errlen, "cannot map %llu MiB of guest RAM: %s",
                     (unsigned long long)(size >> 20), strerror(errno));
            return -ENOMEM;
        }
        p->ram[p->n_ram++] =
            (s_ram_t){.gpa = r->start, .size = size, .offset = offset, .host = host};
        offset += size;
        struct kvm_userspace_memory_region region = {
            .slot = (uint32_t)i,
            .guest_phys_addr = r->start,
            .memory_size = size,
            .userspace_addr = (uint64_t)(uintptr_t)host,
        };
        if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
            snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION for ram[%zu]: %s", i,
                     strerror(errno));
            return -errno;
        }
    }
    return 0;
}

/* Merges the caller's leaves onto the defaults, each under its mask. */
static int s_merge_cpuid(partition_t *p, Vmm__Partition__CpuidLeaf *const *leaves, size_t n,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const Vmm__Partition__CpuidLeaf *l = leaves[i];
        if (!l->result) {
            snprintf(err, errlen, "cpuid[%zu]: no result", i);
            return -EINVAL;
        }
        bool any_index = l->opt_index_case == VMM__PARTITION__CPUID_LEAF__OPT_INDEX__NOT_SET;
        const Vmm__Partition__CpuidRegisters *res = l->result, *mask = l->mask;
        uint32_t m[4] = {~0u, ~0u, ~0u, ~0u};
        if (mask)
            m[0] = mask->eax, m[1] = mask->ebx, m[2] = mask->ecx, m[3] = mask->edx;
        bool found = false;
        for (uint32_t k = 0; k < p->cpuid->nent; k++) {
            struct kvm_cpuid_entry2 *e = &p->cpuid->entries[k];
            if (e->function != l->function || (!any_index && e->index != l->index))
                continue;
            found = true;
            e->eax = (e->eax & ~m[0]) | (res->eax & m[0]);
            e->ebx = (e->ebx & ~m[1]) | (res->ebx & m[1]);
            e->ecx = (e->ecx & ~m[2]) | (res->ecx & m[2]);
            e->edx = (e->edx & ~m[3]) | (res->edx & m[3]);
        }
        if (found)
            continue;
        if (p->cpuid->nent == S_MAX_CPUID) {
            snprintf(err, errlen, "cpuid[%zu]: more than %d leaves", i, S_MAX_CPUID);
            return -EINVAL;
        }
        p->cpuid->entries[p->cpuid->nent++] = (struct kvm_cpuid_entry2){
            .function = l->function,
            .index = any_index ? 0 : l->index,
            .flags = any_index ? 0 : KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            .eax = res->eax & m[0],
            .ebx = res->ebx & m[1],
            .ecx = res->ecx & m[2],
            .edx = res->edx & m[3],
        };
    }
    return 0;
}

/* The guest TSC's frequency and offset from the host's, read on the first
 * vCPU: the reference time is counted from now on that TSC. */
static int s_measure_tsc(partition_t *p, int vcpu_fd)
{
    int khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry tsc;
    } m = {.hdr.nmsrs = 1, .tsc.index = 0x10}; /* IA32_TSC */
    uint64_t before = __rdtsc();
    int got = ioctl(vcpu_fd, KVM_GET_MSRS, &m);
    uint64_t after = __rdtsc();
    if (khz <= 0 || got != 1)
        return -1;
    p->tsc_khz = (uint64_t)khz;
    p->tsc_offset = (int64_t)(m.tsc.data - (before / 2 + after / 2));
    p->tsc_at_zero = m.tsc.data;
    return 0;
}

/* The partition's reference time now, in 100 ns units. */
static uint64_t s_reference_time(const partition_t *p)
{
    uint64_t tsc = __rdtsc() + (uint64_t)p->tsc_offset - p->tsc_at_zero;
    return (uint64_t)((unsigned __int128)tsc * 10000 / p->tsc_khz);
}

/* With the Hyper-V interface, the guest's synthetic MSRs come to user
 * space (KVM has no Hyper-V here): the VPs hand them to the synic. */
static int s_trap_synthetic_msrs(partition_t *p, char *err, size_t errlen)
{
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    static uint8_t deny[0x100 / 8]; /* a 0 bit denies: every synthetic MSR */
    struct kvm_msr_filter filter = {
        .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
        .ranges = {{.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                    .nmsrs = 0x100,
                    .base = 0x40000000,
                    .bitmap = deny}},
    };
    if (ioctl(p->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ||
        ioctl(p->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
        snprintf(err, errlen, "cannot send the synthetic MSRs to user space: %s",
                 strerror(errno));
        return -errno;
    }
    return 0;
}

static int s_start_synic(rt_actor_t *self, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    synic_config_t cfg = {
        .partition = p->name,
        .vp_count = p->vp_count,
        .tsc_khz = p->tsc_khz,
        .tsc_offset = p->tsc_offset,
        .tsc_at_zero = p->tsc_at_zero,
    };
    rt_actor_spec_t spec = {.name = p->synic, .ops = &synic_ops, .arg = &cfg};
    /* On this executor: its guest memory requests are direct calls. */
    int rc = rt_actor_start(rt_actor_executor(self), &spec);
    if (rc)
        snprintf(err, errlen, "cannot start %s: %s", p->synic, strerror(-rc));
    return rc;
}

/* Creates vCPU i and starts its actor. */
static int s_start_vp(rt_actor_t *self, uint32_t i, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    int fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
    if (fd < 0) {
        snprintf(err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
        return -errno;
    }
    /* Each VP's CPUID names its own APIC ID. */
    struct kvm_cpuid_entry2 *e = s_cpuid_find(p->cpuid, 1, 0);
    if (e)
        e->ebx = (e->ebx & 0x00ffffffu) | i << 24;
    for (uint32_t k = 0; k < p->cpuid->nent; k++)
        if (p->cpuid->entries[k].function == 0xb || p->cpuid->entries[k].function == 0x1f)
            p->cpuid->entries[k].edx = i;
    struct kvm_mp_state runnable = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (ioctl(fd, KVM_SET_CPUID2, p->cpuid) < 0 || ioctl(fd, KVM_SET_MP_STATE, &runnable) < 0 ||
        (i == 0 && s_measure_tsc(p, fd) < 0)) {
        snprintf(err, errlen, "setting up vCPU %u: %s", i, strerror(errno));
        int rc = -errno;
        close(fd);
        return rc;
    }
    rt_executor_t *ex = i < p->n_given ? p->given_executors[i] : NULL;
    if (!ex) {
        char name[64];
        snprintf(name, sizeof name, "%s/vp/%u", p->vm, i);
        ex = p->own_executors[i] = rt_executor_new(rt_actor_rt(self), name);
        if (!ex) {
            close(fd);
            snprintf(err, errlen, "cannot start an executor for vp %u", i);
            return -ENOMEM;
        }
    }
    vp_config_t cfg = {.index = i, .vcpu_fd = fd, .run_size = p->run_size, .partition = p->name,
                       .synic = p->synic};
    rt_actor_spec_t spec = {.name = p->vp_names[i], .ops = &vp_ops, .arg = &cfg};
    int rc = rt_actor_start(ex, &spec); /* the actor owns fd from here */
    if (rc)
        snprintf(err, errlen, "cannot start %s: %s", p->vp_names[i], strerror(-rc));
    return rc;
}

static int s_create_vm(partition_t *p, char *err, size_t errlen)
{
    p->vm_fd = ioctl(p->kvm_fd, KVM_CREATE_VM, 0);
    if (p->vm_fd < 0) {
        snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
        return -errno;
    }
    /* Where VMX keeps its real-mode TSS: three pages in the MMIO gap below
     * 4 GiB, where no RAM is. */
    if (ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
        ioctl(p->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
    if (ioctl(p->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
        return -errno;
    }
    struct kvm_pit_config pit = {0};
    if (ioctl(p->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
        return -errno;
    }
    for (uint32_t chip = 0; chip < 3; chip++) {
        p->initial_chips[chip].chip_id = chip; /* PIC master, PIC slave, IO-APIC */
        if (ioctl(p->vm_fd, KVM_GET_IRQCHIP, &p->initial_chips[chip]) < 0) {
            snprintf(err, errlen, "KVM_GET_IRQCHIP %u: %s", chip, strerror(errno));
            return -errno;
        }
    }
    if (ioctl(p->vm_fd, KVM_GET_PIT2, &p->initial_pit) < 0) {
        snprintf(err, errlen, "KVM_GET_PIT2: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static int s_on_build(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Partition__Build *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_PROTO)
        return s_stage_error(self, msg, S_PROTO);
    char err[192] = "";
    int rc = 0;
    if (op->opt_vtl0_alias_map_case)
        rc = -ENOTSUP, snprintf(err, sizeof err, "vtl0_alias_map: KVM has no VTL2");
    else if (op->guest_memory && *op->guest_memory)
        rc = -ENOTSUP,
        snprintf(err, sizeof err, "guest_memory: the partition allocates guest RAM itself");
    if (!rc)
        rc = s_check_layout(p, op->mem_layout, err, sizeof err);
    if (!rc)
        rc = s_merge_cpuid(p, op->cpuid, op->n_cpuid, err, sizeof err);
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);

    p->vp_names = calloc(p->vp_count, sizeof *p->vp_names);
    p->own_executors = calloc(p->vp_count, sizeof *p->own_executors);
    if (!p->vp_names || !p->own_executors)
        return -ENOMEM;
    for (uint32_t i = 0; i < p->vp_count; i++)
        if (asprintf(&p->vp_names[i], "%s/vp/%u", p->vm, i) < 0) {
            p->vp_names[i] = NULL;
            return -ENOMEM;
        }
    if (p->hv && asprintf(&p->synic, "%s/synic", p->vm) < 0) {
        p->synic = NULL;
        return -ENOMEM;
    }
    rc = s_create_vm(p, err, sizeof err);
    if (!rc && p->hv)
        rc = s_trap_synthetic_msrs(p, err, sizeof err);
    if (!rc)
        rc = s_map_ram(p, op->mem_layout, err, sizeof err);
    for (uint32_t i = 0; !rc && i < p->vp_count; i++)
        rc = s_start_vp(self, i, err, sizeof err);
    if (!rc && p->hv)
        rc = s_start_synic(self, err, sizeof err);
    if (rc) {
        p->stage = S_FAILED;
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "build failed: %s", err);
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s", err);
    }
    p->stage = S_BUILT;
    /* Devices that registered before the VPs existed. */
    rc = s_push_routes(self, true, err, sizeof err);
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);

    Vmm__Partition__BuildResult res = VMM__PARTITION__BUILD_RESULT__INIT;
    res.partition = p->name;
    res.n_vps = p->vp_count;
    res.vps = p->vp_names;
    res.synic = p->synic ? p->synic : "";
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_BUILD;
    r.build = &res;
    return s_reply(self, msg, &r);
}

/* ---- Partition -------------------------------------------------------------------- */

static int s_on_get_isolation(rt_actor_t *self, const Vmm__Envelope *msg)
{
    Vmm__Partition__IsolationInfo info = VMM__PARTITION__ISOLATION_INFO__INIT;
    info.isolation = VMM__PARTITION__ISOLATION_TYPE__NONE;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_ISOLATION;
    r.isolation = &info;
    return s_reply(self, msg, &r);
}

static int s_on_query_features(rt_actor_t *self, const Vmm__Envelope *msg,
                               const Vmm__Partition__QueryFeatures *op)
{
    Vmm__Partition__Features f = VMM__PARTITION__FEATURES__INIT;
    f.reset = true;
    f.msi_interrupt_target = op->vtl == VMM__VTL__VTL0;
    f.doorbells = op->vtl == VMM__VTL__VTL0;
    f.reference_time = true;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_FEATURES;
    r.features = &f;
    return s_reply(self, msg, &r);
}

static int s_on_get_caps(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage == S_FRESH)
        return s_stage_error(self, msg, S_PROTO);
    uint8_t vendor[12] = {0};
    const struct kvm_cpuid_entry2 *e0 = s_cpuid_find(p->cpuid, 0, 0);
    const struct kvm_cpuid_entry2 *e1 = s_cpuid_find(p->cpuid, 1, 0);
    if (e0) {
        memcpy(vendor, &e0->ebx, 4);
        memcpy(vendor + 4, &e0->edx, 4);
        memcpy(vendor + 8, &e0->ecx, 4);
    }
    Vmm__Partition__XsaveCapabilities xs = VMM__PARTITION__XSAVE_CAPABILITIES__INIT;
    Vmm__Partition__X86Capabilities x = VMM__PARTITION__X86_CAPABILITIES__INIT;
    x.vendor = (ProtobufCBinaryData){sizeof vendor, vendor};
    x.xsave = &xs;
    x.hv1 = p->hv;
    x.hv1_reference_tsc_page = p->hv;
    x.x2apic = e1 && (e1->ecx & (1u << 21));
    x.reset_rdx = e1 ? e1->eax : 0;
    x.physical_address_width = s_phys_bits(p);
    Vmm__Partition__PartitionCapabilities caps = VMM__PARTITION__PARTITION_CAPABILITIES__INIT;
    caps.arch_case = VMM__PARTITION__PARTITION_CAPABILITIES__ARCH_X86;
    caps.x86 = &x;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_CAPS;
    r.caps = &caps;
    return s_reply(self, msg, &r);
}

static int s_signal_msi(rt_actor_t *self, const Vmm__Envelope *msg, uint64_t address,
                        uint32_t data)
{
    partition_t *p = rt_actor_state(self);
    struct kvm_msi m = {
        .address_lo = (uint32_t)address,
        .address_hi = (uint32_t)(address >> 32),
        .data = data,
    };
    int rc = ioctl(p->vm_fd, KVM_SIGNAL_MSI, &m);
    if (rc < 0) {
        char text[96];
        snprintf(text, sizeof text, "KVM_SIGNAL_MSI: %s", strerror(errno));
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
    }
    p->stats.msis++;
    if (rc == 0)
        p->stats.msis_blocked++; /* the guest's APIC refused it (not enabled) */
    return s_ack(self, msg);
}

static int s_on_request_msi(rt_actor_t *self, const Vmm__Envelope *msg,
                            const Vmm__Partition__RequestMsi *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (!op->request)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no MSI address and data");
    return s_signal_msi(self, msg, op->request->address, op->request->data);
}

/* ---- MSI targets and their interrupts ------------------------------------------ */

static int s_reply_handle(rt_actor_t *self, const Vmm__Envelope *msg, bool target,
                          uint64_t handle)
{
    Vmm__Partition__MsiTargetHandle t = VMM__PARTITION__MSI_TARGET_HANDLE__INIT;
    Vmm__Partition__MsiInterruptHandle i = VMM__PARTITION__MSI_INTERRUPT_HANDLE__INIT;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    if (target) {
        t.handle = handle;
        r.result_case = VMM__PARTITION__REPLY__RESULT_MSI_TARGET;
        r.msi_target = &t;
    } else {
        i.handle = handle;
        r.result_case = VMM__PARTITION__REPLY__RESULT_MSI_INTERRUPT;
        r.msi_interrupt = &i;
    }
    return s_reply(self, msg, &r);
}

static int s_on_new_msi_target(rt_actor_t *self, const Vmm__Envelope *msg,
                               const Vmm__Partition__NewMsiTarget *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (op->device)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND,
                              "no virtual device %llu (virtual devices are not supported)",
                              (unsigned long long)op->device);
    uint64_t *grown = realloc(p->msi_targets, (p->n_msi_targets + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->msi_targets = grown;
    p->msi_targets[p->n_msi_targets++] = ++p->next_msi;
    return s_reply_handle(self, msg, true, p->next_msi);
}

static int s_on_drop_msi_target(rt_actor_t *self, const Vmm__Envelope *msg, uint64_t handle)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_msi_targets; i++)
        if (p->msi_targets[i] == handle) {
            p->msi_targets[i] = p->msi_targets[--p->n_msi_targets];
            return rt_reply_ack(self, msg);
        }
    return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND, "no MSI target %llu",
                          (unsigned long long)handle);
}

static int s_on_new_msi_interrupt(rt_actor_t *self, const Vmm__Envelope *msg,
                                  const Vmm__Partition__NewMsiInterrupt *op)
{
    partition_t *p = rt_actor_state(self);
    bool found = false;
    for (size_t i = 0; i < p->n_msi_targets; i++)
        found |= p->msi_targets[i] == op->target;
    if (!found)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND, "no MSI target %llu",
                              (unsigned long long)op->target);
    s_msi_t *grown = realloc(p->msis, (p->n_msis + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->msis = grown;
    s_msi_t m = {.handle = ++p->next_msi, .owner = strdup(msg->sender)};
    if (!m.owner)
        return -ENOMEM;
    p->msis[p->n_msis++] = m;
    return s_reply_handle(self, msg, false, m.handle);
}

/* The interrupt `handle`, if msg's sender made it; else answers for it
 * and returns NULL. */
static s_msi_t *s_own_msi(rt_actor_t *self, const Vmm__Envelope *msg, uint64_t handle)
{
    partition_t *p = rt_actor_state(self);
    char text[96];
    for (size_t i = 0; i < p->n_msis; i++) {
        if (p->msis[i].handle != handle)
            continue;
        if (!strcmp(p->msis[i].owner, msg->sender))
            return &p->msis[i];
        snprintf(text, sizeof text, "MSI %llu belongs to %s", (unsigned long long)handle,
                 p->msis[i].owner);
        s_deny(self, msg, text);
        return NULL;
    }
    snprintf(text, sizeof text, "no MSI %llu", (unsigned long long)handle);
    s_refuse(self, msg, VMM__ERROR_CODE__NOT_FOUND, text);
    return NULL;
}

static int s_on_msi_interrupt(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    const Vmm__Partition__Request *req = msg->partition_request;
    switch (req->op_case) {
    case VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT: {
        const Vmm__Partition__EnableMsiInterrupt *op = req->enable_msi_interrupt;
        s_msi_t *m = s_own_msi(self, msg, op->interrupt);
        if (!m)
            return 0;
        m->enabled = true, m->address = op->address, m->data = op->data;
        return rt_reply_ack(self, msg);
    }
    case VMM__PARTITION__REQUEST__OP_DISABLE_MSI_INTERRUPT: {
        s_msi_t *m = s_own_msi(self, msg, req->disable_msi_interrupt->interrupt);
        if (!m)
            return 0;
        m->enabled = false;
        return rt_reply_ack(self, msg);
    }
    case VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT: {
        const Vmm__Partition__SignalMsiInterrupt *op = req->signal_msi_interrupt;
        s_msi_t *m = s_own_msi(self, msg, op->interrupt);
        if (!m)
            return 0;
        if (!m->enabled)
            return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                            "the MSI is not enabled");
        if (m->address != op->address || m->data != op->data)
            return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                            "address and data differ from those the MSI was enabled with");
        return s_signal_msi(self, msg, m->address, m->data);
    }
    default: { /* DROP */
        s_msi_t *m = s_own_msi(self, msg, req->drop_msi_interrupt->interrupt);
        if (!m)
            return 0;
        free(m->owner);
        *m = p->msis[--p->n_msis];
        return rt_reply_ack(self, msg);
    }
    }
}

static int s_on_request_yield(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__RequestYield *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (op->vp_index >= p->vp_count)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no such vp");
    Vmm__Vp__Yield y = VMM__VP__YIELD__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_YIELD;
    req.yield = &y;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    int rc = rt_send(self, p->vp_names[op->vp_index], &env);
    if (rc)
        return rc;
    return s_ack(self, msg);
}

/* LINT1 is the NMI line on a PC: the VP injects one on its own thread
 * (KVM_NMI is a vCPU ioctl), kicked out of KVM_RUN by the message. It goes
 * one-way: the VP may be waiting on the synic, on this very executor. */
static int s_on_pulse_lint(rt_actor_t *self, const Vmm__Envelope *msg,
                           const Vmm__Partition__PulseLint *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (op->vp_index >= p->vp_count || op->lint > 1)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "vp_index below the VP count and lint 0 or 1");
    if (op->lint == 0)
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "LINT0 is wired to the in-kernel PIC (ExtINT); only LINT1 (NMI) can be "
                        "pulsed");
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_PULSE_LINT;
    req.pulse_lint = (Vmm__Partition__PulseLint *)op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    int rc = rt_send(self, p->vp_names[op->vp_index], &env);
    if (rc)
        return rc;
    return s_ack(self, msg);
}

/* Sends KVM the GSI routing: KVM's default (the PIC and IO-APIC pins) with
 * the lines that have an MSI route replaced by it. */
static int s_apply_irq_routes(partition_t *p)
{
    struct {
        struct kvm_irq_routing hdr;
        struct kvm_irq_routing_entry e[S_IRQ_LINES * 2];
    } t = {0};
    uint32_t n = 0;
    for (uint32_t gsi = 0; gsi < S_IRQ_LINES; gsi++) {
        if (p->irq_routes[gsi].msi) {
            t.e[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_MSI,
                .u.msi = {.address_lo = (uint32_t)p->irq_routes[gsi].address,
                          .address_hi = (uint32_t)(p->irq_routes[gsi].address >> 32),
                          .data = p->irq_routes[gsi].data},
            };
            continue;
        }
        if (gsi < 16)
            t.e[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                              .pin = gsi % 8},
            };
        t.e[n++] = (struct kvm_irq_routing_entry){
            .gsi = gsi,
            .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi},
        };
    }
    t.hdr.nr = n;
    return ioctl(p->vm_fd, KVM_SET_GSI_ROUTING, &t) < 0 ? -errno : 0;
}

static int s_on_set_irq_route(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__SetIrqRoute *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (op->irq >= S_IRQ_LINES)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "irq beyond the IO-APIC's 24 inputs");
    p->irq_routes[op->irq].msi = op->request != NULL;
    if (op->request) {
        p->irq_routes[op->irq].address = op->request->address;
        p->irq_routes[op->irq].data = op->request->data;
    }
    int rc = s_apply_irq_routes(p);
    if (rc) {
        char text[96];
        snprintf(text, sizeof text, "KVM_SET_GSI_ROUTING: %s", strerror(-rc));
        return s_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, text);
    }
    return s_ack(self, msg);
}

static int s_on_assert_irq(rt_actor_t *self, const Vmm__Envelope *msg,
                           const Vmm__Partition__AssertIrq *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (op->irq >= S_IRQ_LINES)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "irq beyond the IO-APIC's 24 inputs");
    /* An edge: the line goes high, then low again. */
    struct kvm_irq_level high = {.irq = op->irq, .level = 1}, low = {.irq = op->irq, .level = 0};
    if (ioctl(p->vm_fd, KVM_IRQ_LINE, &high) < 0 || ioctl(p->vm_fd, KVM_IRQ_LINE, &low) < 0) {
        char text[96];
        snprintf(text, sizeof text, "KVM_IRQ_LINE %u: %s", op->irq, strerror(errno));
        return s_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, text);
    }
    p->stats.irqs++;
    return s_ack(self, msg);
}

/* ---- Doorbells ------------------------------------------------------------------- */

static int s_ioeventfd(partition_t *p, const s_doorbell_t *d,
                       const Vmm__Partition__RegisterDoorbell *op, bool assign)
{
    struct kvm_ioeventfd io = {
        .addr = d->address,
        .len = op ? op->length : 0,
        .fd = d->efd,
        .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };
    if (op && op->opt_value_case) {
        io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        io.datamatch = op->value;
    }
    return ioctl(p->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void s_on_doorbell_fd(rt_actor_t *self, int fd)
{
    partition_t *p = rt_actor_state(self);
    uint64_t count;
    if (read(fd, &count, sizeof count) != sizeof count)
        return;
    for (size_t i = 0; i < p->n_doorbells; i++) {
        const s_doorbell_t *d = &p->doorbells[i];
        if (d->efd != fd)
            continue;
        p->stats.doorbells_signalled += count;
        Vmm__Partition__DoorbellSignalled ds = VMM__PARTITION__DOORBELL_SIGNALLED__INIT;
        ds.handle = d->handle;
        ds.guest_address = d->address;
        Vmm__Partition__Event ev = VMM__PARTITION__EVENT__INIT;
        ev.event_case = VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED;
        ev.doorbell_signalled = &ds;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_PARTITION_EVENT;
        env.partition_event = &ev;
        if (rt_send(self, d->owner, &env))
            rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "doorbell %llu: cannot tell %s",
                   (unsigned long long)d->handle, d->owner);
        return;
    }
}

/* Makes the doorbell op asks for, signalling owner; *handle is its handle.
 * Returns 0, or a negative errno with the reason in err. */
static int s_add_doorbell(rt_actor_t *self, const Vmm__Partition__RegisterDoorbell *op,
                          const char *owner, uint64_t *handle, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    if (op->opt_length_case && op->length != 1 && op->length != 2 && op->length != 4 &&
        op->length != 8) {
        snprintf(err, errlen, "length must be 1, 2, 4 or 8");
        return -EINVAL;
    }
    if (op->opt_value_case && !op->opt_length_case) {
        snprintf(err, errlen, "a value to match needs a length");
        return -EINVAL;
    }
    s_doorbell_t *grown = realloc(p->doorbells, (p->n_doorbells + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->doorbells = grown;
    s_doorbell_t d = {
        .handle = ++p->next_doorbell,
        .address = op->guest_address,
        .efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
        .owner = strdup(owner),
        .length = op->opt_length_case ? op->length : 0,
        .match = op->opt_value_case,
        .value = op->value,
    };
    int rc = d.efd < 0 ? -errno : !d.owner ? -ENOMEM : 0;
    if (!rc)
        rc = s_ioeventfd(p, &d, op, true);
    if (!rc) {
        rc = rt_actor_watch_fd(self, d.efd, s_on_doorbell_fd);
        if (rc)
            s_ioeventfd(p, &d, op, false);
    }
    if (rc) {
        if (d.efd >= 0)
            close(d.efd);
        free(d.owner);
        snprintf(err, errlen, "doorbell at 0x%llx: %s", (unsigned long long)op->guest_address,
                 strerror(-rc));
        return rc;
    }
    p->doorbells[p->n_doorbells++] = d;
    *handle = d.handle;
    return 0;
}

static int s_on_register_doorbell(rt_actor_t *self, const Vmm__Envelope *msg,
                                  const Vmm__Partition__RegisterDoorbell *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (!s_vtl0(self, msg, op->minimum_vtl))
        return 0;
    uint64_t handle;
    char err[128];
    int rc = s_add_doorbell(self, op, op->owner && *op->owner ? op->owner : msg->sender,
                            &handle, err, sizeof err);
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
    Vmm__Partition__DoorbellHandle h = VMM__PARTITION__DOORBELL_HANDLE__INIT;
    h.handle = handle;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_DOORBELL;
    r.doorbell = &h;
    return s_reply(self, msg, &r);
}

static void s_drop_doorbell(rt_actor_t *self, size_t i)
{
    partition_t *p = rt_actor_state(self);
    s_doorbell_t *d = &p->doorbells[i];
    rt_actor_unwatch_fd(self, d->efd);
    struct kvm_ioeventfd io = {.addr = d->address, .len = d->length, .fd = d->efd,
                               .datamatch = d->value,
                               .flags = KVM_IOEVENTFD_FLAG_DEASSIGN |
                                        (d->match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0)};
    ioctl(p->vm_fd, KVM_IOEVENTFD, &io);
    close(d->efd);
    free(d->owner);
    p->doorbells[i] = p->doorbells[--p->n_doorbells];
}

/* Drops the doorbells that signal owner (its registration went). */
static void s_drop_doorbells_of(rt_actor_t *self, const char *owner)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = p->n_doorbells; i-- > 0;)
        if (!strcmp(p->doorbells[i].owner, owner))
            s_drop_doorbell(self, i);
}

static int s_on_unregister_doorbell(rt_actor_t *self, const Vmm__Envelope *msg,
                                    const Vmm__Partition__UnregisterDoorbell *op)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_doorbells; i++) {
        if (p->doorbells[i].handle != op->handle)
            continue;
        if (strcmp(p->doorbells[i].owner, msg->sender))
            return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                                  "doorbell %llu belongs to %s",
                                  (unsigned long long)op->handle, p->doorbells[i].owner);
        s_drop_doorbell(self, i);
        return rt_reply_ack(self, msg);
    }
    return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND, "no doorbell %llu",
                          (unsigned long long)op->handle);
}

static int s_on_reference_time(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    /* The same clock from the guest TSC: ref = ((tsc * scale) >> 64) + offset. */
    uint64_t scale = (uint64_t)(((unsigned __int128)10000 << 64) / p->tsc_khz);
    Vmm__Partition__ReferenceTscInfo tsc = VMM__PARTITION__REFERENCE_TSC_INFO__INIT;
    tsc.sequence = 1;
    tsc.scale = scale;
    tsc.offset = -(int64_t)(((unsigned __int128)p->tsc_at_zero * scale) >> 64);
    Vmm__Partition__ReferenceTime t = VMM__PARTITION__REFERENCE_TIME__INIT;
    t.ref_time = s_reference_time(p);
    t.tsc = &tsc;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_REFERENCE_TIME;
    r.reference_time = &t;
    return s_reply(self, msg, &r);
}

/* Every VP back to its state at creation (each refuses while it runs),
 * guest RAM zeroed, interrupt controllers, timer and IRQ routes as built.
 * Devices keep their registrations and doorbells: they are the board. */
static int s_on_reset(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    Vmm__Partition__Reset op = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    for (uint32_t i = 0; i < p->vp_count; i++) {
        rt_msg_t reply;
        int rc = rt_call(self, p->vp_names[i], &env, &reply, S_ROUTE_TIMEOUT_MS);
        if (rc)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s: %s", p->vp_names[i],
                                  strerror(-rc));
        if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
            rc = rt_reply_error(self, msg, reply.env->error->code, "%s", reply.env->error->text);
            rt_msg_release(&reply);
            return rc;
        }
        rt_msg_release(&reply);
    }
    /* The pages leave the memory file (they read as zeroes), for KVM and
     * for devices that mapped it alike. */
    for (size_t i = 0; i < p->n_ram; i++)
        if (madvise(p->ram[i].host, p->ram[i].size, MADV_REMOVE) < 0)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                                  "cannot clear guest RAM: %s", strerror(errno));
    memset(p->irq_routes, 0, sizeof p->irq_routes);
    int rc = s_apply_irq_routes(p);
    for (uint32_t chip = 0; !rc && chip < 3; chip++)
        if (ioctl(p->vm_fd, KVM_SET_IRQCHIP, &p->initial_chips[chip]) < 0)
            rc = -errno;
    if (!rc && ioctl(p->vm_fd, KVM_SET_PIT2, &p->initial_pit) < 0)
        rc = -errno;
    if (rc)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                              "cannot reset the interrupt controllers: %s", strerror(-rc));
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "reset");
    return rt_reply_ack(self, msg);
}

static int s_on_partition_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Partition__Request *req = msg->partition_request;
    if (!s_permitted(self, msg))
        return 0;
    switch (req->op_case) {
    case VMM__PARTITION__REQUEST__OP_IS_AVAILABLE:
        return s_on_is_available(self, msg);
    case VMM__PARTITION__REQUEST__OP_NEW_PARTITION:
        return s_on_new_partition(self, msg, req->new_partition);
    case VMM__PARTITION__REQUEST__OP_GET_CPUID:
        return s_on_get_cpuid(self, msg, req->get_cpuid);
    case VMM__PARTITION__REQUEST__OP_GET_MAX_PHYSICAL_ADDRESS_SIZE:
        return s_on_get_max_phys(self, msg);
    case VMM__PARTITION__REQUEST__OP_BUILD:
        return s_on_build(self, msg, req->build);
    case VMM__PARTITION__REQUEST__OP_GET_ISOLATION:
        return s_on_get_isolation(self, msg);
    case VMM__PARTITION__REQUEST__OP_QUERY_FEATURES:
        return s_on_query_features(self, msg, req->query_features);
    case VMM__PARTITION__REQUEST__OP_GET_CAPS:
        return s_on_get_caps(self, msg);
    case VMM__PARTITION__REQUEST__OP_REQUEST_MSI:
        return s_on_request_msi(self, msg, req->request_msi);
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET:
        return s_on_new_msi_target(self, msg, req->new_msi_target);
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_TARGET:
        return s_on_drop_msi_target(self, msg, req->drop_msi_target->handle);
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_INTERRUPT:
        return s_on_new_msi_interrupt(self, msg, req->new_msi_interrupt);
    case VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DISABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_INTERRUPT:
        return s_on_msi_interrupt(self, msg);
    case VMM__PARTITION__REQUEST__OP_PULSE_LINT:
        return s_on_pulse_lint(self, msg, req->pulse_lint);
    case VMM__PARTITION__REQUEST__OP_REQUEST_YIELD:
        return s_on_request_yield(self, msg, req->request_yield);
    case VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE:
        return s_on_set_irq_route(self, msg, req->set_irq_route);
    case VMM__PARTITION__REQUEST__OP_ASSERT_IRQ:
        return s_on_assert_irq(self, msg, req->assert_irq);
    case VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL:
        return s_on_register_doorbell(self, msg, req->register_doorbell);
    case VMM__PARTITION__REQUEST__OP_UNREGISTER_DOORBELL:
        return s_on_unregister_doorbell(self, msg, req->unregister_doorbell);
    case VMM__PARTITION__REQUEST__OP_GET_REFERENCE_TIME:
        return s_on_reference_time(self, msg);
    case VMM__PARTITION__REQUEST__OP_RESET:
        return s_on_reset(self, msg);
    case VMM__PARTITION__REQUEST__OP_ACCEPT_INITIAL_PAGES:
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "accepting initial pages is for isolated partitions; KVM here has none");
    case VMM__PARTITION__REQUEST__OP_SCRUB_VTL:
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "scrubbing a VTL needs VTLs; KVM has only VTL0");
    case VMM__PARTITION__REQUEST__OP_MODIFY_VTL_PAGE_SETTING:
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "VTL memory protection needs VTLs; KVM has only VTL0");
    case VMM__PARTITION__REQUEST__OP_SET_SPI_IRQ:
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "a GIC is an aarch64 interrupt controller; this partition is x86");
    case VMM__PARTITION__REQUEST__OP__NOT_SET:
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "no partition operation set");
    default: {
        char text[96];
        snprintf(text, sizeof text, "partition operation %d is not implemented on KVM yet",
                 (int)req->op_case);
        return s_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, text);
    }
    }
}

/* ---- Devices: registry, guest memory, power ------------------------------------- */

/* Sends every VP the routing table and, when wait, waits for each to take
 * it, so that a device's ranges work once its registration is answered.
 * Without waiting (a lost device), a VP caught in a call to the synic on
 * this executor cannot hold the partition up. */
static int s_push_routes(rt_actor_t *self, bool wait, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return 0;
    Vmm__Vp__SetIoRoutes routes;
    int rc = registry_routes(p->registry, &routes);
    if (rc)
        return rc;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_IO_ROUTES;
    req.set_io_routes = &routes;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    for (uint32_t i = 0; !rc && i < p->vp_count; i++) {
        if (!wait) {
            if ((rc = rt_send(self, p->vp_names[i], &env)))
                snprintf(err, errlen, "cannot send %s the new routes: %s", p->vp_names[i],
                         strerror(-rc));
            continue;
        }
        rt_msg_t reply;
        rc = rt_call(self, p->vp_names[i], &env, &reply, S_ROUTE_TIMEOUT_MS);
        if (!rc) {
            if (reply.env->body_case != VMM__ENVELOPE__BODY_ACK)
                rc = -EIO;
            rt_msg_release(&reply);
        }
        if (rc)
            snprintf(err, errlen, "%s did not take the new routes: %s", p->vp_names[i],
                     strerror(-rc));
    }
    registry_routes_free(&routes);
    return rc;
}

static void s_wait_free(s_route_wait_t *w)
{
    free(w->ids);
    free(w->reply);
    free(w->actor);
}

static void s_drop_doorbells_of(rt_actor_t *self, const char *owner);
static void s_unwatch_remote(partition_t *p, uint64_t handle);
static void s_remote_answered(partition_t *p, uint64_t handle);

/* Undoes registration handle (0: none) of actor and refuses the deferred
 * request with why. Returns 0. */
static int s_refuse_owed(rt_actor_t *self, rt_deferred_t **owed, uint64_t handle,
                         const char *actor, const char *why)
{
    partition_t *p = rt_actor_state(self);
    if (handle) {
        registry_remove(p->registry, handle, actor);
        s_unwatch_remote(p, handle);
        s_drop_doorbells_of(self, actor);
        char ignored[192];
        s_push_routes(self, false, ignored, sizeof ignored);
    }
    p->stats.refused++;
    char text[192];
    snprintf(text, sizeof text, "%s", why);
    Vmm__Error err = VMM__ERROR__INIT;
    err.code = VMM__ERROR_CODE__TIMEOUT;
    err.text = text;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_ERROR;
    env.error = &err;
    if (rt_reply_deferred(self, owed, &env))
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "a deferred refusal could not be sent");
    return 0;
}

/* Every VP answered: the deferred reply goes, or, should one have failed,
 * the registration is undone and refused. */
static void s_wait_done(rt_actor_t *self, size_t i)
{
    partition_t *p = rt_actor_state(self);
    s_route_wait_t w = p->waits[i];
    p->waits[i] = p->waits[--p->n_waits];
    if (*w.why) {
        s_refuse_owed(self, &w.owed, w.handle, w.actor, w.why);
        s_wait_free(&w);
        return;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Ack ack = VMM__ACK__INIT;
    Vmm__Devices__Reply *r = NULL;
    if (w.reply && (r = vmm__devices__reply__unpack(NULL, w.reply_len, w.reply))) {
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = r;
    } else {
        env.body_case = VMM__ENVELOPE__BODY_ACK;
        env.ack = &ack;
    }
    if (rt_reply_deferred(self, &w.owed, &env))
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "a deferred reply could not be sent");
    s_remote_answered(p, w.handle);
    if (r)
        vmm__devices__reply__free_unpacked(r, NULL);
    s_wait_free(&w);
}

/* A VP's answer to new routes; true when it was one. */
static bool s_wait_answer(rt_actor_t *self, const Vmm__Envelope *reply)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_waits; i++) {
        s_route_wait_t *w = &p->waits[i];
        for (uint32_t v = 0; v < p->vp_count; v++) {
            if (w->ids[v] != reply->reply_to)
                continue;
            w->ids[v] = 0;
            if (reply->body_case != VMM__ENVELOPE__BODY_ACK && !*w->why)
                snprintf(w->why, sizeof w->why, "%s did not take the new routes: %s",
                         p->vp_names[v],
                         reply->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->error->text
                                                                       : "an odd answer");
            if (!--w->outstanding)
                s_wait_done(self, i);
            return true;
        }
    }
    return false;
}

/* Answers msg with reply (NULL: an Ack) once every VP has the routes;
 * should one not take them, undoes registration handle (0: none) of
 * msg's sender and refuses. Without VPs, or for a caller on this very
 * thread, it waits for them here. Returns 0 or a negative errno. */
static int s_reply_after_routes(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Devices__Reply *reply, uint64_t handle)
{
    partition_t *p = rt_actor_state(self);
    char err[192] = "";
    rt_deferred_t *owed = p->stage == S_BUILT && p->vp_count ? rt_defer(self, msg) : NULL;
    if (!owed) {
        int rc = s_push_routes(self, true, err, sizeof err);
        if (rc && handle) {
            registry_remove(p->registry, handle, msg->sender);
            s_unwatch_remote(p, handle);
            s_drop_doorbells_of(self, msg->sender);
        }
        if (rc)
            return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
        s_remote_answered(p, handle);
        if (!reply)
            return rt_reply_ack(self, msg);
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = (Vmm__Devices__Reply *)reply;
        return rt_reply(self, msg, &env);
    }
    s_route_wait_t w = {.owed = owed, .handle = handle, .outstanding = p->vp_count};
    w.ids = calloc(p->vp_count, sizeof *w.ids);
    w.actor = strdup(msg->sender);
    if (reply) {
        w.reply_len = vmm__devices__reply__get_packed_size(reply);
        if ((w.reply = malloc(w.reply_len ? w.reply_len : 1)))
            vmm__devices__reply__pack(reply, w.reply);
    }
    s_route_wait_t *grown = realloc(p->waits, (p->n_waits + 1) * sizeof *grown);
    if (grown)
        p->waits = grown;
    Vmm__Vp__SetIoRoutes routes = VMM__VP__SET_IO_ROUTES__INIT;
    int rc = !w.ids || !w.actor || (reply && !w.reply) || !grown ? -ENOMEM : 0;
    bool made = !rc && !(rc = registry_routes(p->registry, &routes));
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_IO_ROUTES;
    req.set_io_routes = &routes;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    for (uint32_t i = 0; !rc && i < p->vp_count; i++)
        if ((rc = rt_request(self, p->vp_names[i], &env, S_ROUTE_TIMEOUT_MS, &w.ids[i])))
            snprintf(w.why, sizeof w.why, "cannot send %s the new routes: %s", p->vp_names[i],
                     strerror(-rc));
    if (made)
        registry_routes_free(&routes);
    if (rc && !*w.why)
        snprintf(w.why, sizeof w.why, "the new routes: %s", strerror(-rc));
    if (rc && !grown) { /* nowhere to keep it: answer and undo now */
        s_wait_free(&w);
        return s_refuse_owed(self, &owed, handle, msg->sender, "out of memory");
    }
    if (rc) {
        /* Requests already sent are answered to nobody: their ids are
         * forgotten with w. */
        p->waits[p->n_waits++] = w;
        s_wait_done(self, p->n_waits - 1);
        return 0;
    }
    p->waits[p->n_waits++] = w;
    return 0;
}

/* ---- Devices in other processes: liveness ------------------------------------------ */

static void s_liveness_arm(partition_t *p)
{
    long ns = p->n_remotes ? S_LIVENESS_PERIOD_MS * 1000000L : 0;
    struct itimerspec its = {.it_interval = {0, ns}, .it_value = {0, ns}};
    timerfd_settime(p->liveness_fd, 0, &its, NULL);
}

static void s_remote_free(s_remote_t *r)
{
    free(r->actor);
    free(r->name);
}

/* The device host went away (or stopped answering): its ranges become
 * nobody's, so VPs treat accesses as to an unregistered address. */
static void s_remote_lost(rt_actor_t *self, size_t i, const char *why)
{
    partition_t *p = rt_actor_state(self);
    s_remote_t r = p->remotes[i];
    p->remotes[i] = p->remotes[--p->n_remotes];
    p->stats.devices_lost++;
    bool kept = registry_lose(p->registry, r.handle) == 1;
    if (!kept)
        s_drop_doorbells_of(self, r.actor);
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "device %s (%s) is lost: %s; %s", r.name,
           r.actor, why,
           kept ? "the VM cannot do without it: a VP that touches it halts"
                : "its ranges are nobody's now");
    char err[192] = "";
    if (s_push_routes(self, false, err, sizeof err))
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s", err);
    s_remote_free(&r);
    s_liveness_arm(p);
}

static void s_on_liveness_fd(rt_actor_t *self, int fd)
{
    partition_t *p = rt_actor_state(self);
    uint64_t ticks;
    if (read(fd, &ticks, sizeof ticks) < 0)
        return;
    for (size_t i = 0; i < p->n_remotes; i++) {
        if (p->remotes[i].ping || !p->remotes[i].answered)
            continue; /* a ping is answered or timed out by on_reply */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
        env.body_case = VMM__ENVELOPE__BODY_PING;
        env.ping = &ping;
        if (rt_request(self, p->remotes[i].actor, &env, S_LIVENESS_TIMEOUT_MS,
                       &p->remotes[i].ping))
            p->remotes[i].ping = 0;
    }
}

/* A ping's answer, or the TIMEOUT the runtime gives for its absence. */
static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    partition_t *p = rt_actor_state(self);
    if (s_wait_answer(self, reply))
        return;
    for (size_t i = 0; i < p->n_remotes; i++) {
        if (p->remotes[i].ping != reply->reply_to)
            continue;
        p->remotes[i].ping = 0;
        if (reply->body_case != VMM__ENVELOPE__BODY_PONG)
            s_remote_lost(self, i, reply->body_case == VMM__ENVELOPE__BODY_ERROR
                                       ? reply->error->text
                                       : "it answered a ping with something else");
        return;
    }
}

/* The registration of a remote device was answered: pings may start. */
static void s_remote_answered(partition_t *p, uint64_t handle)
{
    for (size_t i = 0; i < p->n_remotes; i++)
        if (p->remotes[i].handle == handle)
            p->remotes[i].answered = true;
}

/* Stops pinging the device of registration handle, if it is remote. */
static void s_unwatch_remote(partition_t *p, uint64_t handle)
{
    for (size_t i = 0; i < p->n_remotes; i++)
        if (p->remotes[i].handle == handle) {
            s_remote_free(&p->remotes[i]);
            p->remotes[i] = p->remotes[--p->n_remotes];
            s_liveness_arm(p);
            return;
        }
}

static int s_watch_remote(partition_t *p, const char *actor, const char *name, uint64_t handle)
{
    s_remote_t *grown = realloc(p->remotes, (p->n_remotes + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->remotes = grown;
    s_remote_t r = {.actor = strdup(actor), .name = strdup(name), .handle = handle};
    if (!r.actor || !r.name) {
        s_remote_free(&r);
        return -ENOMEM;
    }
    p->remotes[p->n_remotes++] = r;
    s_liveness_arm(p);
    return 0;
}

/* Makes the doorbells a registration asks for, each in the device's own
 * MMIO ranges and signalling the device: handles[i] is the i-th one's, or
 * 0 where it could not be made (then, with required, nothing is granted:
 * returns the error). */
static int s_grant_doorbells(rt_actor_t *self, const Vmm__Envelope *msg,
                             const Vmm__Devices__RegisterDevice *op, uint64_t *handles,
                             char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < op->n_doorbells; i++) {
        const Vmm__Devices__DoorbellRequest *want = op->doorbells[i];
        Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
        db.guest_address = want->guest_address;
        db.opt_value_case = (Vmm__Partition__RegisterDoorbell__OptValueCase)want->opt_value_case;
        db.value = want->value;
        db.opt_length_case =
            (Vmm__Partition__RegisterDoorbell__OptLengthCase)want->opt_length_case;
        db.length = want->length;
        int rc = 0;
        if (p->stage != S_BUILT) {
            snprintf(err, errlen, "doorbells are made once the VM is built");
            rc = -EBUSY;
        } else if (!registry_owns(p->registry, msg->sender, true, want->guest_address,
                                  want->opt_length_case ? want->length : 1)) {
            snprintf(err, errlen, "a doorbell at 0x%llx lies outside the device's MMIO ranges",
                     (unsigned long long)want->guest_address);
            rc = -EINVAL;
        } else {
            rc = s_add_doorbell(self, &db, msg->sender, &handles[i], err, errlen);
        }
        if (rc && op->required)
            return rc;
        if (rc)
            rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s gets no doorbell %zu: %s",
                   msg->sender, i, err);
    }
    return 0;
}

static int s_on_register_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Devices__RegisterDevice *op)
{
    partition_t *p = rt_actor_state(self);
    char err[192] = "";
    for (size_t i = 0; i < op->n_irq_lines; i++)
        if (op->irq_lines[i] >= S_IRQ_LINES)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                  "irq line %u beyond the IO-APIC's 24 inputs", op->irq_lines[i]);
    if (op->n_doorbells && p->stage != S_BUILT && op->required)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__BUSY,
                              "doorbells are made once the VM is built; register after Build, "
                              "or without required");
    if (*op->endpoint && strncmp(op->endpoint, "ipc://", 6) && strncmp(op->endpoint, "tcp://", 6))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "endpoint %s: ipc:// or tcp:// only", op->endpoint);
    /* A device host that restarted registers its device again, often
     * before the loss of its predecessor was noticed: the old registration
     * is the same actor's, and goes. */
    for (size_t i = 0; *op->endpoint && i < registry_count(p->registry); i++)
        if (!strcmp(registry_name(p->registry, i), op->name) &&
            !strcmp(registry_actor(p->registry, i), msg->sender)) {
            uint64_t old = registry_handle(p->registry, i);
            registry_remove(p->registry, old, msg->sender);
            s_unwatch_remote(p, old);
            s_drop_doorbells_of(self, msg->sender);
            p->stats.devices_replaced++;
            rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
                   "device %s (%s) registers again: its host restarted", op->name, msg->sender);
            break;
        }
    uint64_t handle, doorbells[S_MAX_DOORBELL_REQUESTS] = {0};
    if (op->n_doorbells > S_MAX_DOORBELL_REQUESTS)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "%zu doorbells, at most %d", op->n_doorbells,
                              S_MAX_DOORBELL_REQUESTS);
    int rc = registry_add(p->registry, msg->sender, op, &handle, err, sizeof err);
    if (!rc) {
        /* A device in another process: VPs reach it at its own endpoint. */
        if (*op->endpoint && ((rc = rt_directory_set_key(rt_actor_rt(self), msg->sender,
                                                         op->endpoint,
                                                         *op->server_key ? op->server_key
                                                                         : NULL)) ||
                              (rc = s_watch_remote(p, msg->sender, op->name, handle))))
            snprintf(err, sizeof err, "cannot route to %s at %s: %s", msg->sender,
                     op->endpoint, strerror(-rc));
        else
            rc = s_grant_doorbells(self, msg, op, doorbells, err, sizeof err);
        if (rc) {
            registry_remove(p->registry, handle, msg->sender);
            s_unwatch_remote(p, handle);
            s_drop_doorbells_of(self, msg->sender);
        }
    }
    if (rc) {
        p->stats.refused++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "device %s (%s) refused: %s", op->name,
               msg->sender, err);
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
    }
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "device %s registered by %s", op->name,
           msg->sender);
    Vmm__Devices__DeviceRegistration reg = VMM__DEVICES__DEVICE_REGISTRATION__INIT;
    reg.handle = handle;
    reg.n_ports = op->n_ports;
    reg.ports = op->ports;
    reg.n_mmio = op->n_mmio;
    reg.mmio = op->mmio;
    reg.n_irq_lines = op->n_irq_lines;
    reg.irq_lines = op->irq_lines;
    reg.msi_count = op->msi_count;
    reg.n_doorbells = op->n_doorbells;
    reg.doorbells = doorbells;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_REGISTRATION;
    r.registration = &reg;
    return s_reply_after_routes(self, msg, &r, handle);
}

static int s_on_unregister_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                  const Vmm__Devices__UnregisterDevice *op)
{
    partition_t *p = rt_actor_state(self);
    int rc = registry_remove(p->registry, op->handle, msg->sender);
    if (!rc) {
        s_unwatch_remote(p, op->handle);
        s_drop_doorbells_of(self, msg->sender);
    }
    if (rc == -EPERM)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "registration %llu was made by another actor",
                              (unsigned long long)op->handle);
    if (rc)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND, "no registration %llu",
                              (unsigned long long)op->handle);
    return s_reply_after_routes(self, msg, NULL, 0);
}

/* The host address of [gpa, gpa + len) when it lies in one RAM range. */
static uint8_t *s_guest_ptr(partition_t *p, uint64_t gpa, uint64_t len)
{
    for (size_t i = 0; i < p->n_ram; i++) {
        const s_ram_t *r = &p->ram[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return (uint8_t *)r->host + (gpa - r->gpa);
    }
    return NULL;
}

static int s_on_guest_memory(rt_actor_t *self, const Vmm__Envelope *msg, bool write,
                             uint64_t gpa, uint64_t len, const uint8_t *data)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if (len > S_MAX_GUEST_IO)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "%llu bytes, at most %u per request", (unsigned long long)len,
                              S_MAX_GUEST_IO);
    uint8_t *host = s_guest_ptr(p, gpa, len);
    if (!host)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "0x%llx+%llu is not guest RAM", (unsigned long long)gpa,
                              (unsigned long long)len);
    if (write) {
        p->stats.guest_writes++;
        memcpy(host, data, len);
        return rt_reply_ack(self, msg);
    }
    p->stats.guest_reads++;
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){len, host};
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY;
    r.read_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

/* Where guest RAM lies in its memory file, for a registered device: on
 * this host it may map the file rather than send its reads and writes
 * (device.h says why that is safe enough); elsewhere it learns the ranges
 * its accesses must lie in. */
static int s_on_map_guest_memory(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (!registry_is_device(p->registry, msg->sender))
        return s_deny(self, msg, "only a registered device may map guest memory");
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getpid(), p->ram_fd);
    /* Read through path itself: where /proc is not this process's (another
     * PID namespace's), the link does not match and no device maps. */
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s: %s", path,
                              strerror(errno));
    link[n] = 0;
    Vmm__Devices__GuestRamRange ranges[S_MAX_RAM_RANGES];
    Vmm__Devices__GuestRamRange *range_ptrs[S_MAX_RAM_RANGES];
    for (size_t i = 0; i < p->n_ram; i++) {
        vmm__devices__guest_ram_range__init(&ranges[i]);
        ranges[i].gpa = p->ram[i].gpa;
        ranges[i].size = p->ram[i].size;
        ranges[i].offset = p->ram[i].offset;
        range_ptrs[i] = &ranges[i];
    }
    Vmm__Devices__GuestMemoryMap map = VMM__DEVICES__GUEST_MEMORY_MAP__INIT;
    map.n_ranges = p->n_ram;
    map.ranges = range_ptrs;
    map.path = path;
    map.link = link;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP;
    r.guest_memory_map = &map;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

/* new = (old & and_mask) | or_mask on size bytes at p, atomically against
 * the guest's locked instructions on the same memory; returns old. */
static uint64_t s_atomic_update(void *p, uint32_t size, uint64_t and_mask, uint64_t or_mask)
{
#define S_UPDATE(type)                                                                        \
    do {                                                                                      \
        type *at = p, old = __atomic_load_n(at, __ATOMIC_RELAXED);                            \
        while (!__atomic_compare_exchange_n(at, &old, (type)((old & and_mask) | or_mask), true, \
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))              \
            ;                                                                                 \
        return old;                                                                           \
    } while (0)
    switch (size) {
    case 1:
        S_UPDATE(uint8_t);
    case 2:
        S_UPDATE(uint16_t);
    case 4:
        S_UPDATE(uint32_t);
    default:
        S_UPDATE(uint64_t);
    }
#undef S_UPDATE
}

static int s_on_guest_update(rt_actor_t *self, const Vmm__Envelope *msg,
                             const Vmm__Devices__UpdateGuestMemory *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    if ((op->size != 1 && op->size != 2 && op->size != 4 && op->size != 8) ||
        op->gpa % op->size)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "an update of %u bytes at 0x%llx: 1, 2, 4 or 8, aligned", op->size,
                              (unsigned long long)op->gpa);
    uint8_t *host = s_guest_ptr(p, op->gpa, op->size);
    if (!host)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "0x%llx+%u is not guest RAM", (unsigned long long)op->gpa,
                              op->size);
    p->stats.guest_updates++;
    uint64_t old = s_atomic_update(host, op->size, op->and_mask, op->or_mask);
    uint8_t bytes[8];
    for (uint32_t i = 0; i < op->size; i++)
        bytes[i] = (uint8_t)(old >> (8 * i));
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){op->size, bytes};
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_UPDATE_GUEST_MEMORY;
    r.update_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Devices__Request *req = msg->device_request;
    if (!s_permitted(self, msg))
        return 0;
    switch (req->op_case) {
    case VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE:
        return s_on_register_device(self, msg, req->register_device);
    case VMM__DEVICES__REQUEST__OP_UNREGISTER_DEVICE:
        return s_on_unregister_device(self, msg, req->unregister_device);
    case VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY:
        return s_on_guest_memory(self, msg, false, req->read_guest_memory->gpa,
                                 req->read_guest_memory->length, NULL);
    case VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY:
        return s_on_guest_update(self, msg, req->update_guest_memory);
    case VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY:
        return s_on_guest_memory(self, msg, true, req->write_guest_memory->gpa,
                                 req->write_guest_memory->data.len,
                                 req->write_guest_memory->data.data);
    case VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY:
        return s_on_map_guest_memory(self, msg);
    default:
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "the partition takes device registrations and guest memory "
                        "requests only");
    }
}

/* A device asks for a whole-VM power action: every VP halts with it. */
static int s_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    if (!s_permitted(self, msg))
        return 0;
    if (ev->event_case != VMM__DEVICES__EVENT__EVENT_POWER_REQUEST ||
        ev->power_request->action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_UNSPECIFIED)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "the partition takes power requests only, with an action");
    if (p->stage != S_BUILT)
        return s_stage_error(self, msg, S_BUILT);
    p->stats.power_requests++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s asks for %s", msg->sender,
           ev->power_request->action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET
               ? "a reset"
               : "power off");
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = (Vmm__Devices__Event *)ev;
    for (uint32_t i = 0; i < p->vp_count; i++)
        if (rt_send(self, p->vp_names[i], &env))
            rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot tell %s", p->vp_names[i]);
    return 0;
}

/* ---- Lifecycle ------------------------------------------------------------------- */

static int s_init(rt_actor_t *self, void *arg)
{
    const partition_config_t *cfg = arg;
    if (!cfg || !cfg->vm || !*cfg->vm)
        return -EINVAL;
    partition_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->kvm_fd = p->vm_fd = p->liveness_fd = p->ram_fd = -1;
    p->vm = strdup(cfg->vm);
    p->name = strdup(rt_actor_name(self));
    p->registry = registry_new();
    if (cfg->n_vp_executors) {
        p->given_executors = calloc(cfg->n_vp_executors, sizeof *p->given_executors);
        if (p->given_executors) {
            memcpy(p->given_executors, cfg->vp_executors,
                   cfg->n_vp_executors * sizeof *p->given_executors);
            p->n_given = cfg->n_vp_executors;
        }
    }
    p->liveness_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    rt_actor_set_state(self, p);
    if (!p->vm || !p->name || !p->registry || (cfg->n_vp_executors && !p->given_executors))
        return -ENOMEM; /* fini frees what there is */
    if (p->liveness_fd < 0)
        return -errno;
    return rt_actor_watch_fd(self, p->liveness_fd, s_on_liveness_fd);
}

static void s_fini(rt_actor_t *self)
{
    partition_t *p = rt_actor_state(self);
    if (!p)
        return;
    if (p->liveness_fd >= 0) {
        rt_actor_unwatch_fd(self, p->liveness_fd);
        close(p->liveness_fd);
    }
    for (size_t i = 0; i < p->n_remotes; i++)
        s_remote_free(&p->remotes[i]);
    free(p->remotes);
    while (p->n_doorbells)
        s_drop_doorbell(self, p->n_doorbells - 1);
    free(p->doorbells);
    for (size_t i = 0; i < p->n_msis; i++)
        free(p->msis[i].owner);
    free(p->msis);
    free(p->msi_targets);
    for (uint32_t i = 0; p->vp_names && i < p->vp_count; i++) {
        /* VP actors on executors the partition started go with them;
         * given executors belong to the caller, who stops them first. */
        if (p->own_executors && p->own_executors[i])
            rt_executor_destroy(&p->own_executors[i]);
        free(p->vp_names[i]);
    }
    free(p->own_executors);
    free(p->vp_names);
    for (size_t i = 0; i < p->n_ram; i++)
        munmap(p->ram[i].host, p->ram[i].size);
    if (p->ram_fd >= 0)
        close(p->ram_fd);
    if (p->vm_fd >= 0)
        close(p->vm_fd);
    if (p->kvm_fd >= 0)
        close(p->kvm_fd);
    /* Registrations still waiting for the VPs are refused. */
    while (p->n_waits) {
        s_route_wait_t *w = &p->waits[p->n_waits - 1];
        snprintf(w->why, sizeof w->why, "the partition stopped");
        w->handle = 0;
        s_wait_done(self, p->n_waits - 1);
    }
    free(p->waits);
    registry_destroy(&p->registry);
    free(p->cpuid);
    free(p->given_executors);
    free(p->synic);
    free(p->name);
    free(p->vm);
    free(p);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    partition_t *p = rt_actor_state(self);
    static const char *const stages[] = {"fresh", "prototype", "built", "failed"};
    const s_stats_t *s = &p->stats;
    rt_inspect_add(node, "stage", "%s", stages[p->stage]);
    rt_inspect_add(node, "vps", "%u", p->vp_count);
    uint64_t ram = 0;
    for (size_t i = 0; i < p->n_ram; i++)
        ram += p->ram[i].size;
    rt_inspect_add(node, "ram_bytes", "%llu", (unsigned long long)ram);
    Vmm__Rt__InspectNode *devices =
        rt_inspect_add(node, "devices", "%zu", registry_count(p->registry));
    for (size_t i = 0; devices && i < registry_count(p->registry); i++)
        rt_inspect_add(devices, registry_name(p->registry, i), "%s",
                       registry_actor(p->registry, i));
    rt_inspect_add(node, "doorbells", "%zu", p->n_doorbells);
    rt_inspect_add(node, "msis", "%llu", (unsigned long long)s->msis);
    rt_inspect_add(node, "msis_blocked", "%llu", (unsigned long long)s->msis_blocked);
    rt_inspect_add(node, "irqs", "%llu", (unsigned long long)s->irqs);
    rt_inspect_add(node, "doorbells_signalled", "%llu",
                   (unsigned long long)s->doorbells_signalled);
    rt_inspect_add(node, "guest_reads", "%llu", (unsigned long long)s->guest_reads);
    rt_inspect_add(node, "guest_writes", "%llu", (unsigned long long)s->guest_writes);
    rt_inspect_add(node, "guest_updates", "%llu", (unsigned long long)s->guest_updates);
    rt_inspect_add(node, "power_requests", "%llu", (unsigned long long)s->power_requests);
    rt_inspect_add(node, "refused", "%llu", (unsigned long long)s->refused);
    rt_inspect_add(node, "denied", "%llu", (unsigned long long)s->denied);
    rt_inspect_add(node, "devices_lost", "%llu", (unsigned long long)s->devices_lost);
    rt_inspect_add(node, "devices_replaced", "%llu", (unsigned long long)s->devices_replaced);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_PARTITION_REQUEST, s_on_partition_request},
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_on_device_event},
};

const rt_actor_ops_t partition_ops = {
    .kind = "partition",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .on_reply = s_on_reply,
    .inspect = s_inspect,
};
