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
#include <cpuid.h>
#include <x86intrin.h>

#include "actors/partition/partition_internal.h"
#include "actors/registry/registry.h"
#include "actors/synic/synic.h"
#include "actors/vp/vp.h"

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
int partition_refuse(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
                    const char *text)
{
    partition_t *p = rt_actor_state(self);
    p->stats.refused++;
    if (msg->request_id)
        return rt_reply_error(self, msg, code, "%s", text);
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "from %s: %s", msg->sender, text);
    return 0;
}

int partition_stage_error(rt_actor_t *self, const Vmm__Envelope *msg, partition_stage_t want)
{
    static const char *const needs[] = {
        [PARTITION_FRESH] = "before NewPartition",
        [PARTITION_PROTO] = "after NewPartition and before Build",
        [PARTITION_BUILT] = "after Build",
    };
    char text[96];
    snprintf(text, sizeof text, "this request is only valid %s", needs[want]);
    return partition_refuse(self, msg, VMM__ERROR_CODE__BUSY, text);
}

/* True for VTL0; else answers NOT_SUPPORTED (KVM has no VTLs). */
static bool s_vtl0(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Vtl vtl)
{
    if (vtl == VMM__VTL__VTL0)
        return true;
    partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, "only VTL0 exists on KVM");
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

/* What a host whose KVM emulates guest kernel code cannot run there
 * (platform.md): hidden from the guest, so that guests that look before
 * they leap avoid it. */
static const struct {
    uint32_t leaf;
    uint8_t reg; /* 2: ECX, 3: EDX, 1: EBX */
    uint8_t bit;
    const char *name;
} s_unemulated[] = {
    {1, 2, 1, "pclmulqdq"},  {1, 2, 3, "monitor"},   {1, 2, 9, "ssse3"},
    {1, 2, 12, "fma"},       {1, 2, 13, "cx16"},     {1, 2, 19, "sse4.1"},
    {1, 2, 20, "sse4.2"},    {1, 2, 22, "movbe"},    {1, 2, 23, "popcnt"},
    {1, 2, 25, "aes"},       {1, 2, 26, "xsave"},    {1, 2, 27, "osxsave"},
    {1, 2, 28, "avx"},       {1, 2, 29, "f16c"},     {7, 1, 3, "bmi1"},
    {7, 1, 5, "avx2"},       {7, 1, 8, "bmi2"},      {7, 1, 16, "avx512f"},
    {7, 1, 19, "adx"},       {7, 1, 29, "sha"},      {7, 2, 22, "rdpid"},
    {0x80000001, 2, 5, "lzcnt"}, {0x80000001, 3, 27, "rdtscp"},
};

/* Whether this host's CPU has VMX or SVM: KVM then runs guest kernel code
 * on the CPU; without, as here (platform.md), it emulates it. */
static bool s_host_runs_cpl0(void)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (c & (1u << 5))
        return true;
    __cpuid(0x80000000, a, b, c, d);
    if (a < 0x80000001)
        return false;
    __cpuid(0x80000001, a, b, c, d);
    return c & (1u << 2);
}

/*
 * The default guest CPUID: what KVM supports, less, where KVM emulates
 * guest kernel code, what its instruction emulator cannot run (and XSAVE's
 * leaf). Says what it hid in `hidden` (hidden_size bytes), for the log:
 * the bits KVM offered that the guest does not see.
 */
static void s_cpuid_filter(struct kvm_cpuid2 *c, char *hidden, size_t hidden_size)
{
    struct kvm_cpuid_entry2 *e;
    if ((e = s_cpuid_find(c, 1, 0)))
        e->ecx |= 1u << 31; /* a hypervisor is present */
    if (s_host_runs_cpl0()) {
        snprintf(hidden, hidden_size, "KVM's, whole: the host's CPU runs guest kernel code");
        return;
    }
    size_t used = (size_t)snprintf(hidden, hidden_size,
                                   "KVM's, less what its instruction emulator cannot run (the "
                                   "host's CPU has no VMX or SVM): hidden");
    for (size_t i = 0; i < sizeof s_unemulated / sizeof *s_unemulated; i++) {
        if (!(e = s_cpuid_find(c, s_unemulated[i].leaf, 0)))
            continue;
        uint32_t *reg = s_unemulated[i].reg == 1 ? &e->ebx
                        : s_unemulated[i].reg == 2 ? &e->ecx
                                                   : &e->edx;
        uint32_t bit = 1u << s_unemulated[i].bit;
        if ((*reg & bit) && used < hidden_size)
            used += (size_t)snprintf(hidden + used, hidden_size - used, " %s",
                                     s_unemulated[i].name);
        *reg &= ~bit;
    }
    /* No XSAVE: the XSAVE leaf says nothing. */
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == 0xd)
            c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = c->entries[i].edx = 0;
}

static struct kvm_cpuid2 *s_supported_cpuid(int kvm_fd, char *hidden, size_t hidden_size)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + PARTITION_MAX_CPUID * sizeof c->entries[0]);
    if (!c)
        return NULL;
    c->nent = PARTITION_MAX_CPUID;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        free(c);
        return NULL;
    }
    s_cpuid_filter(c, hidden, hidden_size);
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
    for (size_t i = 0; i < sizeof hv / sizeof *hv && kept < PARTITION_MAX_CPUID; i++)
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
    if (p->stage != PARTITION_FRESH)
        return partition_stage_error(self, msg, PARTITION_FRESH);
    const Vmm__Partition__ProcessorTopology *topo = op->processor_topology;
    if (!topo || !topo->vp_count || topo->vp_count > PARTITION_MAX_VPS)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "processor_topology.vp_count must be 1 to %d", PARTITION_MAX_VPS);
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
    char hidden[sizeof p->cpuid_hidden];
    struct kvm_cpuid2 *cpuid = s_supported_cpuid(fd, hidden, sizeof hidden);
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
    p->bios_state = op->bios_state;
    snprintf(p->cpuid_hidden, sizeof p->cpuid_hidden, "%s", hidden);
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "guest CPUID: %s", hidden);
    p->kvm_fd = fd;
    p->cpuid = cpuid;
    p->run_size = (size_t)run_size;
    p->vp_count = topo->vp_count;
    p->stage = PARTITION_PROTO;
    /* user_mode_apic asks for the user-mode APIC "if supported": it is
     * not, so the in-kernel APIC serves (GetCaps says so). */
    return rt_reply_ack(self, msg);
}

static int s_on_get_cpuid(rt_actor_t *self, const Vmm__Envelope *msg,
                          const Vmm__Partition__GetCpuid *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage == PARTITION_FRESH)
        return partition_stage_error(self, msg, PARTITION_PROTO);
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
    if (p->stage == PARTITION_FRESH)
        return partition_stage_error(self, msg, PARTITION_PROTO);
    Vmm__Partition__PhysicalAddressSize size = VMM__PARTITION__PHYSICAL_ADDRESS_SIZE__INIT;
    size.bits = s_phys_bits(p);
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_MAX_PHYSICAL_ADDRESS_SIZE;
    r.max_physical_address_size = &size;
    return s_reply(self, msg, &r);
}

/* ---- Build -------------------------------------------------------------------- */

static int s_check_layout(partition_t *p, const Vmm__Partition__MemoryLayout *l, char *err,
                          size_t errlen)
{
    if (!l || !l->n_ram) {
        snprintf(err, errlen, "mem_layout: no RAM");
        return -EINVAL;
    }
    if (l->n_ram > PARTITION_MAX_RAM_RANGES) {
        snprintf(err, errlen, "mem_layout: %zu RAM ranges, at most %d", l->n_ram,
                 PARTITION_MAX_RAM_RANGES);
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
            (partition_ram_t){.gpa = r->start, .size = size, .offset = offset, .host = host};
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
        if (p->cpuid->nent == PARTITION_MAX_CPUID) {
            snprintf(err, errlen, "cpuid[%zu]: more than %d leaves", i, PARTITION_MAX_CPUID);
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

uint64_t partition_reference_time(const partition_t *p)
{
    uint64_t tsc = __rdtsc() + (uint64_t)p->tsc_offset - p->tsc_at_zero;
    return (uint64_t)((unsigned __int128)tsc * 10000 / p->tsc_khz);
}

/* Whether KVM takes an MSR it does not know for 0 rather than failing
 * (kvm.ignore_msrs): then such an MSR never reaches user space. */
static bool s_kvm_ignores_msrs(void)
{
    char c = 'Y'; /* unknown: assume the worst */
    FILE *f = fopen("/sys/module/kvm/parameters/ignore_msrs", "r");
    if (f) {
        if (fread(&c, 1, 1, f) != 1)
            c = 'Y';
        fclose(f);
    }
    return c != 'N' && c != '0';
}

/* With the Hyper-V interface, the guest's synthetic MSRs come to user
 * space: the VPs hand them to the synic. A KVM with no Hyper-V of its own
 * (KVM_CAP_HYPERV 0) knows none of them, so they exit as unknown MSRs;
 * else, or where KVM ignores unknown MSRs, an MSR filter denies KVM the
 * whole range. The filter is the slower way: KVM waits out an SRCU grace
 * period to set it (15 ms here, a restore's largest cost). */
static int s_trap_synthetic_msrs(partition_t *p, char *err, size_t errlen)
{
    bool unknown = ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) <= 0 &&
                   !s_kvm_ignores_msrs();
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_X86_USER_SPACE_MSR,
        .args = {unknown ? KVM_MSR_EXIT_REASON_UNKNOWN : KVM_MSR_EXIT_REASON_FILTER}};
    static uint8_t deny[0x100 / 8]; /* a 0 bit denies: every synthetic MSR */
    struct kvm_msr_filter filter = {
        .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
        .ranges = {{.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                    .nmsrs = 0x100,
                    .base = 0x40000000,
                    .bitmap = deny}},
    };
    if (ioctl(p->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ||
        (!unknown && ioctl(p->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0)) {
        snprintf(err, errlen, "cannot send the synthetic MSRs to user space: %s",
                 strerror(errno));
        return -errno;
    }
    return 0;
}

/* The executor VP i runs on. */
static rt_executor_t *s_vp_executor(partition_t *p, uint32_t i)
{
    return i < p->n_given && p->given_executors[i] ? p->given_executors[i]
                                                   : p->own_executors[i];
}

/* The synic, split: its central actor here, beside the partition (the
 * ports, the monitor page, the partition-wide MSRs), and each VP's part
 * on that VP's executor, so that the VP's MSRs and hypercalls are direct
 * calls. */
static int s_start_synic(rt_actor_t *self, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    synic_config_t cfg = {
        .partition = p->name,
        .vp_count = p->vp_count,
        .tsc_khz = p->tsc_khz,
        .tsc_offset = p->tsc_offset,
        .tsc_at_zero = p->tsc_at_zero,
        .role = SYNIC_CENTRAL,
    };
    rt_actor_spec_t spec = {.name = p->synic, .ops = &synic_ops, .arg = &cfg};
    int rc = rt_actor_start(rt_actor_executor(self), &spec);
    if (rc) {
        snprintf(err, errlen, "cannot start %s: %s", p->synic, strerror(-rc));
        return rc;
    }
    cfg.role = SYNIC_VP;
    cfg.central = p->synic;
    for (uint32_t i = 0; i < p->vp_count; i++) {
        char name[256];
        cfg.vp = i;
        spec.name = name;
        if ((rc = synic_vp_actor(name, sizeof name, p->synic, i)) ||
            (rc = rt_actor_start(s_vp_executor(p, i), &spec))) {
            snprintf(err, errlen, "cannot start VP %u's synic: %s", i, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* VP 0's local APIC as a PC BIOS leaves it: software-enabled (spurious
 * vector 0xff), in virtual-wire mode, so that the PIC's interrupts reach
 * it through LINT0 and an NMI through LINT1. */
static int s_bios_lapic(int fd)
{
    struct kvm_lapic_state l;
    if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
        return -1;
    uint32_t svr = 0x1ff, lint0 = 0x700, lint1 = 0x400;
    memcpy(l.regs + 0xf0, &svr, sizeof svr);
    memcpy(l.regs + 0x350, &lint0, sizeof lint0);
    memcpy(l.regs + 0x360, &lint1, sizeof lint1);
    return ioctl(fd, KVM_SET_LAPIC, &l);
}

/* Whether KVM copies a vCPU's registers and special registers into its
 * run area at each exit. */
static bool s_sync_regs(partition_t *p)
{
    int caps = ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    int want = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    return caps > 0 && (caps & want) == want;
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
    /* As a PC: only the boot VP runs; the others wait for its INIT/SIPI. */
    bool waits = p->bios_state && i > 0;
    struct kvm_mp_state mp = {.mp_state = waits ? KVM_MP_STATE_INIT_RECEIVED
                                                : KVM_MP_STATE_RUNNABLE};
    if (ioctl(fd, KVM_SET_CPUID2, p->cpuid) < 0 || ioctl(fd, KVM_SET_MP_STATE, &mp) < 0 ||
        (i == 0 && p->bios_state && s_bios_lapic(fd) < 0) ||
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
    char synic[256] = "";
    if (p->synic && synic_vp_actor(synic, sizeof synic, p->synic, i)) {
        close(fd);
        snprintf(err, errlen, "VP %u's synic: the name is too long", i);
        return -ENAMETOOLONG;
    }
    vp_config_t cfg = {.index = i, .vcpu_fd = fd, .run_size = p->run_size, .partition = p->name,
                       .synic = p->synic ? synic : NULL, .sync_regs = s_sync_regs(p)};
    rt_actor_spec_t spec = {.name = p->vp_names[i], .ops = &vp_ops, .arg = &cfg};
    int rc = rt_actor_start(ex, &spec); /* the actor owns fd from here */
    if (rc)
        snprintf(err, errlen, "cannot start %s: %s", p->vp_names[i], strerror(-rc));
    return rc;
}

/* The PICs as a PC BIOS leaves them, initialized (ICW1 to ICW4 done,
 * 8086 mode): vectors 0x08 and 0x70, every line masked but the cascade,
 * IRQ 9 (the ACPI SCI) level-triggered in the ELCR. */
static void s_bios_pics(struct kvm_irqchip chips[2])
{
    struct kvm_pic_state *master = &chips[KVM_IRQCHIP_PIC_MASTER].chip.pic;
    struct kvm_pic_state *slave = &chips[KVM_IRQCHIP_PIC_SLAVE].chip.pic;
    master->irq_base = 0x08;
    master->imr = 0xfb;
    slave->irq_base = 0x70;
    slave->imr = 0xff;
    master->init_state = slave->init_state = 0;
    master->init4 = slave->init4 = 1;
    slave->elcr |= 1u << (9 - 8);
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
    if (p->bios_state) {
        s_bios_pics(p->initial_chips);
        for (uint32_t chip = 0; chip < 2; chip++)
            if (ioctl(p->vm_fd, KVM_SET_IRQCHIP, &p->initial_chips[chip]) < 0) {
                snprintf(err, errlen, "KVM_SET_IRQCHIP %u: %s", chip, strerror(errno));
                return -errno;
            }
    }
    if (ioctl(p->vm_fd, KVM_GET_PIT2, &p->initial_pit) < 0) {
        snprintf(err, errlen, "KVM_GET_PIT2: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static int s_assign_doorbells(partition_t *p, char *err, size_t errlen);

static int s_on_build(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Partition__Build *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_PROTO)
        return partition_stage_error(self, msg, PARTITION_PROTO);
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
    if (!rc)
        rc = s_assign_doorbells(p, err, sizeof err);
    if (!rc && p->hv)
        rc = s_trap_synthetic_msrs(p, err, sizeof err);
    if (!rc)
        rc = s_map_ram(p, op->mem_layout, err, sizeof err);
    for (uint32_t i = 0; !rc && i < p->vp_count; i++)
        rc = s_start_vp(self, i, err, sizeof err);
    if (!rc && p->hv)
        rc = s_start_synic(self, err, sizeof err);
    if (rc) {
        p->stage = PARTITION_FAILED;
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "build failed: %s", err);
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s", err);
    }
    p->stage = PARTITION_BUILT;
    /* Devices that registered before the VPs existed. */
    rc = partition_push_routes(self, true, err, sizeof err);
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

/* The guest's XSAVE, from the CPUID it sees: without XSAVE, the legacy
 * x87 and SSE area and its header alone (576 bytes). */
static void s_xsave_caps(partition_t *p, Vmm__Partition__XsaveCapabilities *xs)
{
    const struct kvm_cpuid_entry2 *e1 = s_cpuid_find(p->cpuid, 1, 0);
    const struct kvm_cpuid_entry2 *d0 = s_cpuid_find(p->cpuid, 0xd, 0);
    const struct kvm_cpuid_entry2 *d1 = s_cpuid_find(p->cpuid, 0xd, 1);
    xs->features = 3; /* x87, SSE */
    xs->supervisor_features = 0;
    xs->standard_len = xs->compact_len = 576;
    if (!e1 || !(e1->ecx & (1u << 26)) || !d0 || !d0->eax)
        return;
    xs->features = d0->eax | (uint64_t)d0->edx << 32;
    xs->supervisor_features = d1 ? d1->ecx | (uint64_t)d1->edx << 32 : 0;
    xs->standard_len = d0->ecx; /* every feature the guest may enable */
    /* The compacted form: each component in order, aligned to 64 bytes
     * when its leaf says so. */
    uint64_t all = xs->features | xs->supervisor_features;
    uint32_t len = 576;
    for (uint32_t i = 2; i < 64; i++) {
        const struct kvm_cpuid_entry2 *d = (all >> i & 1) ? s_cpuid_find(p->cpuid, 0xd, i) : NULL;
        if (!d)
            continue;
        if (d->ecx & 2)
            len = (len + 63) & ~63u;
        len += d->eax;
    }
    xs->compact_len = len;
}

static int s_on_get_caps(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage == PARTITION_FRESH)
        return partition_stage_error(self, msg, PARTITION_PROTO);
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
    const struct kvm_cpuid_entry2 *e7 = s_cpuid_find(p->cpuid, 7, 0);
    const struct kvm_cpuid_entry2 *x1 = s_cpuid_find(p->cpuid, 0x80000001, 0);
    s_xsave_caps(p, &xs);
    x.x2apic = e1 && (e1->ecx & (1u << 21));
    x.reset_rdx = e1 ? e1->eax : 0;
    x.physical_address_width = s_phys_bits(p);
    x.cet = e7 && (e7->edx & (1u << 20));    /* IBT */
    x.cet_ss = e7 && (e7->ecx & (1u << 7));  /* shadow stacks */
    x.sgx = e7 && (e7->ebx & (1u << 2));
    /* IA32_TSC_AUX exists for RDTSCP or RDPID. */
    x.tsc_aux = (x1 && (x1->edx & (1u << 27))) || (e7 && (e7->ecx & (1u << 22)));
    /* kvmclock can be read and set whole (KVM_GET_CLOCK, KVM_SET_CLOCK),
     * so a stopped VM's time can stand still. The remaining flags are
     * Hyper-V's own quirks, none of them KVM's. */
    x.can_freeze_time = ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK) > 0;
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
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (!op->request)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "no MSI address and data");
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (op->device && !partition_has_virtual_device(p, op->device, msg->sender))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND,
                              "no virtual device %llu of %s", (unsigned long long)op->device,
                              msg->sender);
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
    partition_msi_t *grown = realloc(p->msis, (p->n_msis + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->msis = grown;
    partition_msi_t m = {.handle = ++p->next_msi, .owner = strdup(msg->sender)};
    if (!m.owner)
        return -ENOMEM;
    p->msis[p->n_msis++] = m;
    return s_reply_handle(self, msg, false, m.handle);
}

/* The interrupt `handle`, if msg's sender made it; else answers for it
 * and returns NULL. */
static partition_msi_t *s_own_msi(rt_actor_t *self, const Vmm__Envelope *msg, uint64_t handle)
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
        partition_deny(self, msg, text);
        return NULL;
    }
    snprintf(text, sizeof text, "no MSI %llu", (unsigned long long)handle);
    partition_refuse(self, msg, VMM__ERROR_CODE__NOT_FOUND, text);
    return NULL;
}

static int s_on_msi_interrupt(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    const Vmm__Partition__Request *req = msg->partition_request;
    switch (req->op_case) {
    case VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT: {
        const Vmm__Partition__EnableMsiInterrupt *op = req->enable_msi_interrupt;
        partition_msi_t *m = s_own_msi(self, msg, op->interrupt);
        if (!m)
            return 0;
        m->enabled = true, m->address = op->address, m->data = op->data;
        return rt_reply_ack(self, msg);
    }
    case VMM__PARTITION__REQUEST__OP_DISABLE_MSI_INTERRUPT: {
        partition_msi_t *m = s_own_msi(self, msg, req->disable_msi_interrupt->interrupt);
        if (!m)
            return 0;
        m->enabled = false;
        return rt_reply_ack(self, msg);
    }
    case VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT: {
        const Vmm__Partition__SignalMsiInterrupt *op = req->signal_msi_interrupt;
        partition_msi_t *m = s_own_msi(self, msg, op->interrupt);
        if (!m)
            return 0;
        if (!m->enabled)
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                    "the MSI is not enabled");
        if (m->address != op->address || m->data != op->data)
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                    "address and data differ from those the MSI was enabled with");
        return s_signal_msi(self, msg, m->address, m->data);
    }
    default: { /* DROP */
        partition_msi_t *m = s_own_msi(self, msg, req->drop_msi_interrupt->interrupt);
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->vp_index >= p->vp_count)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no such vp");
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (!s_vtl0(self, msg, op->vtl))
        return 0;
    if (op->vp_index >= p->vp_count || op->lint > 1)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "vp_index below the VP count and lint 0 or 1");
    if (op->lint == 0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "LINT0 is wired to the in-kernel PIC (ExtINT); only LINT1 "
                                "(NMI) can be pulsed");
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
 * the lines that have an MSI route replaced by it, and the irqfds' MSIs. */
int partition_apply_irq_routes(partition_t *p)
{
    size_t cap = PARTITION_IRQ_LINES * 2 + p->n_irqfds;
    struct kvm_irq_routing *t = calloc(1, sizeof *t + cap * sizeof t->entries[0]);
    if (!t)
        return -ENOMEM;
    struct kvm_irq_routing_entry *e = t->entries;
    uint32_t n = 0;
    for (size_t i = 0; i < p->n_irqfds; i++)
        e[n++] = (struct kvm_irq_routing_entry){
            .gsi = p->irqfds[i].gsi,
            .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = {.address_lo = (uint32_t)p->irqfds[i].address,
                      .address_hi = (uint32_t)(p->irqfds[i].address >> 32),
                      .data = p->irqfds[i].data},
        };
    for (uint32_t gsi = 0; gsi < PARTITION_IRQ_LINES; gsi++) {
        if (p->irq_routes[gsi].msi) {
            e[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_MSI,
                .u.msi = {.address_lo = (uint32_t)p->irq_routes[gsi].address,
                          .address_hi = (uint32_t)(p->irq_routes[gsi].address >> 32),
                          .data = p->irq_routes[gsi].data},
            };
            continue;
        }
        if (gsi < 16)
            e[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                              .pin = gsi % 8},
            };
        e[n++] = (struct kvm_irq_routing_entry){
            .gsi = gsi,
            .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi},
        };
    }
    t->nr = n;
    int rc = ioctl(p->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
    free(t);
    return rc;
}

/* ---- MSI irqfds ---------------------------------------------------------------- */

/* The lowest GSI above the IO-APIC's that no irqfd has. */
static uint32_t s_free_gsi(const partition_t *p)
{
    for (uint32_t gsi = PARTITION_IRQ_LINES;; gsi++) {
        bool taken = false;
        for (size_t i = 0; i < p->n_irqfds && !taken; i++)
            taken = p->irqfds[i].gsi == gsi;
        if (!taken)
            return gsi;
    }
}

static void s_irqfd_close(partition_t *p, partition_irqfd_t *f)
{
    struct kvm_irqfd off = {.fd = (uint32_t)f->efd, .gsi = f->gsi,
                            .flags = KVM_IRQFD_FLAG_DEASSIGN};
    ioctl(p->vm_fd, KVM_IRQFD, &off);
    close(f->efd);
    free(f->owner);
}

int partition_irqfd(rt_actor_t *self, const char *owner, uint64_t address, uint32_t data,
                    size_t *out, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    size_t mine = 0;
    for (size_t i = 0; i < p->n_irqfds; i++) {
        if (strcmp(p->irqfds[i].owner, owner))
            continue;
        if (p->irqfds[i].address == address && p->irqfds[i].data == data) {
            *out = i;
            return 0;
        }
        mine++;
    }
    if (mine >= PARTITION_MAX_IRQFDS_PER_DEVICE || p->n_irqfds >= PARTITION_MAX_IRQFDS) {
        snprintf(err, errlen, "%s has %zu MSI irqfds, the VM %zu: no more", owner, mine,
                 p->n_irqfds);
        return -ENOSPC;
    }
    partition_irqfd_t *grown = realloc(p->irqfds, (p->n_irqfds + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "no memory");
        return -ENOMEM;
    }
    p->irqfds = grown;
    partition_irqfd_t f = {.owner = strdup(owner), .address = address, .data = data,
                           .gsi = s_free_gsi(p),
                           .efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    int rc = !f.owner || f.efd < 0 ? -ENOMEM : 0;
    if (!rc) {
        p->irqfds[p->n_irqfds++] = f;
        rc = partition_apply_irq_routes(p);
        struct kvm_irqfd on = {.fd = (uint32_t)f.efd, .gsi = f.gsi};
        if (!rc && ioctl(p->vm_fd, KVM_IRQFD, &on) < 0)
            rc = -errno;
        if (rc) {
            p->n_irqfds--;
            partition_apply_irq_routes(p);
        }
    }
    if (rc) {
        snprintf(err, errlen, "cannot make an irqfd for MSI 0x%llx/0x%x: %s",
                 (unsigned long long)address, data, strerror(-rc));
        if (f.efd >= 0)
            close(f.efd);
        free(f.owner);
        return rc;
    }
    p->stats.irqfds_made++;
    *out = p->n_irqfds - 1;
    return 0;
}

/* ---- Line irqfds ---------------------------------------------------------------- */

static void s_line_irqfd_close(partition_t *p, partition_line_irqfd_t *f)
{
    struct kvm_irqfd off = {.fd = (uint32_t)f->efd, .gsi = f->line,
                            .flags = KVM_IRQFD_FLAG_DEASSIGN};
    ioctl(p->vm_fd, KVM_IRQFD, &off);
    close(f->efd);
    close(f->resample_efd);
    free(f->owner);
}

int partition_line_irqfd(rt_actor_t *self, const char *owner, uint32_t line, size_t *out,
                         char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_line_irqfds; i++)
        if (p->line_irqfds[i].line == line && !strcmp(p->line_irqfds[i].owner, owner)) {
            *out = i;
            return 0;
        }
    partition_line_irqfd_t *grown =
        realloc(p->line_irqfds, (p->n_line_irqfds + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "no memory");
        return -ENOMEM;
    }
    p->line_irqfds = grown;
    partition_line_irqfd_t f = {.owner = strdup(owner), .line = line,
                                .efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
                                .resample_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    int rc = !f.owner || f.efd < 0 || f.resample_efd < 0 ? -ENOMEM : 0;
    /* The level set by message would stay beside the irqfd's: lowered. */
    struct kvm_irq_level low = {.irq = line, .level = 0};
    pthread_mutex_lock(&p->irq_lock);
    if (!rc && ioctl(p->vm_fd, KVM_IRQ_LINE, &low) < 0)
        rc = -errno;
    if (!rc)
        p->irq_high[line] = false;
    pthread_mutex_unlock(&p->irq_lock);
    struct kvm_irqfd on = {.fd = (uint32_t)f.efd, .gsi = line,
                           .flags = KVM_IRQFD_FLAG_RESAMPLE,
                           .resamplefd = (uint32_t)f.resample_efd};
    if (!rc && ioctl(p->vm_fd, KVM_IRQFD, &on) < 0)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "cannot make an irqfd for line %u: %s", line, strerror(-rc));
        if (f.efd >= 0)
            close(f.efd);
        if (f.resample_efd >= 0)
            close(f.resample_efd);
        free(f.owner);
        return rc;
    }
    p->line_irqfds[p->n_line_irqfds++] = f;
    p->stats.irqfds_made++;
    *out = p->n_line_irqfds - 1;
    return 0;
}

/* Drops owner's irqfds (its registration went). */
static void s_drop_irqfds_of(partition_t *p, const char *owner)
{
    for (size_t i = p->n_line_irqfds; i-- > 0;)
        if (!strcmp(p->line_irqfds[i].owner, owner)) {
            s_line_irqfd_close(p, &p->line_irqfds[i]);
            p->line_irqfds[i] = p->line_irqfds[--p->n_line_irqfds];
        }
    bool dropped = false;
    for (size_t i = p->n_irqfds; i-- > 0;)
        if (!strcmp(p->irqfds[i].owner, owner)) {
            s_irqfd_close(p, &p->irqfds[i]);
            p->irqfds[i] = p->irqfds[--p->n_irqfds];
            dropped = true;
        }
    if (dropped && p->stage == PARTITION_BUILT)
        partition_apply_irq_routes(p);
}

static int s_on_set_irq_route(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__SetIrqRoute *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->irq >= PARTITION_IRQ_LINES)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "irq beyond the IO-APIC's 24 inputs");
    p->irq_routes[op->irq].msi = op->request != NULL;
    if (op->request) {
        p->irq_routes[op->irq].address = op->request->address;
        p->irq_routes[op->irq].data = op->request->data;
    }
    int rc = partition_apply_irq_routes(p);
    if (rc) {
        char text[96];
        snprintf(text, sizeof text, "KVM_SET_GSI_ROUTING: %s", strerror(-rc));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, text);
    }
    return s_ack(self, msg);
}

static int s_on_assert_irq(rt_actor_t *self, const Vmm__Envelope *msg,
                           const Vmm__Partition__AssertIrq *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->irq >= PARTITION_IRQ_LINES)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "irq beyond the IO-APIC's 24 inputs");
    /* An edge: the line goes high, then low again. */
    struct kvm_irq_level high = {.irq = op->irq, .level = 1}, low = {.irq = op->irq, .level = 0};
    if (ioctl(p->vm_fd, KVM_IRQ_LINE, &high) < 0 || ioctl(p->vm_fd, KVM_IRQ_LINE, &low) < 0) {
        char text[96];
        snprintf(text, sizeof text, "KVM_IRQ_LINE %u: %s", op->irq, strerror(errno));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, text);
    }
    p->stats.irqs++;
    return s_ack(self, msg);
}

int partition_irq_level(rt_actor_t *self, const Vmm__Envelope *msg, uint32_t irq, bool high)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (irq >= PARTITION_IRQ_LINES)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "irq beyond the IO-APIC's 24 inputs");
    /* The in-kernel PIC and IO-APIC keep the level: a level-triggered pin
     * interrupts again after the guest's EOI while it stays high. */
    struct kvm_irq_level level = {.irq = irq, .level = high};
    pthread_mutex_lock(&p->irq_lock);
    int rc = ioctl(p->vm_fd, KVM_IRQ_LINE, &level) < 0 ? -errno : 0;
    if (!rc)
        p->irq_high[irq] = high;
    pthread_mutex_unlock(&p->irq_lock);
    if (rc) {
        char text[96];
        snprintf(text, sizeof text, "KVM_IRQ_LINE %u: %s", irq, strerror(-rc));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, text);
    }
    p->stats.line_changes++;
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

/* ---- Doorbells ------------------------------------------------------------------- */

/* Assigns the doorbell's ioeventfd in KVM, or deassigns it (KVM
 * deassigns only an exact match of what was assigned). */
static int s_ioeventfd(partition_t *p, const partition_doorbell_t *d, bool assign)
{
    struct kvm_ioeventfd io = {
        .addr = d->address,
        .len = d->length,
        .fd = d->efd,
        .datamatch = d->value,
        .flags = (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN) |
                 (d->match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
    };
    return ioctl(p->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* Once the VM exists: the doorbells made before it go to KVM. Returns 0,
 * or a negative errno with the reason in err. */
static int s_assign_doorbells(partition_t *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->n_doorbells; i++) {
        int rc = s_ioeventfd(p, &p->doorbells[i], true);
        if (rc) {
            snprintf(err, errlen, "doorbell at 0x%llx: %s",
                     (unsigned long long)p->doorbells[i].address, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Tells d's owner it rang, by a request: until it is answered, later rings
 * are held (a ring asks the owner to look at what changed, and the look
 * it takes after answering covers them), so that a guest ringing faster
 * than its device works cannot pile up signals in the device's queue. */
static void s_signal_doorbell(rt_actor_t *self, partition_doorbell_t *d)
{
    partition_t *p = rt_actor_state(self);
    Vmm__Partition__DoorbellSignalled ds = VMM__PARTITION__DOORBELL_SIGNALLED__INIT;
    ds.handle = d->handle;
    ds.guest_address = d->address;
    Vmm__Partition__Event ev = VMM__PARTITION__EVENT__INIT;
    ev.event_case = VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED;
    ev.doorbell_signalled = &ds;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_EVENT;
    env.partition_event = &ev;
    d->held = false;
    p->stats.doorbell_signals++;
    if (rt_request(self, d->owner, &env, PARTITION_DOORBELL_TIMEOUT_MS, &d->signal)) {
        d->signal = 0;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "doorbell %llu: cannot tell %s",
               (unsigned long long)d->handle, d->owner);
    }
}

static void s_on_doorbell_fd(rt_actor_t *self, int fd)
{
    partition_t *p = rt_actor_state(self);
    uint64_t count;
    if (read(fd, &count, sizeof count) != sizeof count)
        return;
    for (size_t i = 0; i < p->n_doorbells; i++) {
        partition_doorbell_t *d = &p->doorbells[i];
        if (d->efd != fd)
            continue;
        p->stats.doorbells_signalled += count;
        if (d->signal) {
            d->held = true;
            p->stats.doorbell_rings_held += count;
        } else {
            s_signal_doorbell(self, d);
        }
        return;
    }
}

bool partition_doorbell_answered(rt_actor_t *self, const Vmm__Envelope *reply)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_doorbells; i++) {
        partition_doorbell_t *d = &p->doorbells[i];
        if (!d->signal || d->signal != reply->reply_to)
            continue;
        /* An answer, a refusal or the timeout alike: the rings held go. */
        d->signal = 0;
        if (d->held)
            s_signal_doorbell(self, d);
        return true;
    }
    return false;
}

/* Makes the doorbell op asks for, signalling owner; *handle is its handle.
 * Returns 0, or a negative errno with the reason in err. */
int partition_add_doorbell(rt_actor_t *self, const Vmm__Partition__RegisterDoorbell *op,
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
    partition_doorbell_t *grown = realloc(p->doorbells, (p->n_doorbells + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->doorbells = grown;
    partition_doorbell_t d = {
        .handle = ++p->next_doorbell,
        .address = op->guest_address,
        .efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
        .owner = strdup(owner),
        .length = op->opt_length_case ? op->length : 0,
        .match = op->opt_value_case,
        .value = op->value,
    };
    int rc = d.efd < 0 ? -errno : !d.owner ? -ENOMEM : 0;
    /* Before Build there is no VM yet: Build assigns it. */
    bool built = p->stage == PARTITION_BUILT;
    if (!rc && built)
        rc = s_ioeventfd(p, &d, true);
    if (!rc) {
        rc = rt_actor_watch_fd(self, d.efd, s_on_doorbell_fd);
        if (rc && built)
            s_ioeventfd(p, &d, false);
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (!s_vtl0(self, msg, op->minimum_vtl))
        return 0;
    uint64_t handle;
    char err[128];
    int rc = partition_add_doorbell(self, op, op->owner && *op->owner ? op->owner : msg->sender,
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
    partition_doorbell_t *d = &p->doorbells[i];
    if (!d->handed)
        rt_actor_unwatch_fd(self, d->efd);
    if (p->stage == PARTITION_BUILT)
        s_ioeventfd(p, d, false);
    close(d->efd);
    free(d->owner);
    p->doorbells[i] = p->doorbells[--p->n_doorbells];
}

int partition_hand_doorbell(rt_actor_t *self, const char *owner, uint64_t handle, int *efd)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_doorbells; i++) {
        partition_doorbell_t *d = &p->doorbells[i];
        if (d->handle != handle || strcmp(d->owner, owner))
            continue;
        if (!d->handed) {
            int rc = rt_actor_unwatch_fd(self, d->efd);
            if (rc)
                return rc;
            d->handed = true;
        }
        *efd = d->efd;
        return 0;
    }
    return -ENOENT;
}

/* Drops the doorbells that signal owner (its registration went). */
void partition_drop_doorbells_of(rt_actor_t *self, const char *owner)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = p->n_doorbells; i-- > 0;)
        if (!strcmp(p->doorbells[i].owner, owner))
            s_drop_doorbell(self, i);
    s_drop_irqfds_of(p, owner);
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    /* The same clock from the guest TSC: ref = ((tsc * scale) >> 64) + offset. */
    uint64_t scale = (uint64_t)(((unsigned __int128)10000 << 64) / p->tsc_khz);
    Vmm__Partition__ReferenceTscInfo tsc = VMM__PARTITION__REFERENCE_TSC_INFO__INIT;
    tsc.sequence = 1;
    tsc.scale = scale;
    tsc.offset = -(int64_t)(((unsigned __int128)p->tsc_at_zero * scale) >> 64);
    Vmm__Partition__ReferenceTime t = VMM__PARTITION__REFERENCE_TIME__INIT;
    t.ref_time = partition_reference_time(p);
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
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    Vmm__Partition__Reset op = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    for (uint32_t i = 0; i < p->vp_count; i++) {
        rt_msg_t reply;
        int rc = rt_call(self, p->vp_names[i], &env, &reply, PARTITION_ROUTE_TIMEOUT_MS);
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
     * for devices that mapped it alike; a snapshot's fill stops first. */
    partition_fill_finish(p, self, true);
    for (size_t i = 0; i < p->n_ram; i++)
        if (madvise(p->ram[i].host, p->ram[i].size, MADV_REMOVE) < 0)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                                  "cannot clear guest RAM: %s", strerror(errno));
    memset(p->irq_routes, 0, sizeof p->irq_routes);
    int rc = partition_apply_irq_routes(p);
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

/* MSIs on the requester's thread (rt_actor_ops_t.shared_handlers): KVM
 * takes KVM_SIGNAL_MSI from any thread, so a device or the synic need not
 * wait for this one. */
static int s_on_shared_partition_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Partition__Request *req = msg->partition_request;
    if (!req || req->op_case != VMM__PARTITION__REQUEST__OP_REQUEST_MSI || !req->request_msi)
        return RT_NOT_SHARED;
    if (!partition_permitted_shared(self, msg))
        return 0;
    return s_on_request_msi(self, msg, req->request_msi);
}

static int s_on_partition_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Partition__Request *req = msg->partition_request;
    if (!partition_permitted(self, msg))
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
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "accepting initial pages is for isolated partitions; KVM here "
                                "has none");
    case VMM__PARTITION__REQUEST__OP_SCRUB_VTL:
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "scrubbing a VTL needs VTLs; KVM has only VTL0");
    case VMM__PARTITION__REQUEST__OP_MODIFY_VTL_PAGE_SETTING:
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "VTL memory protection needs VTLs; KVM has only VTL0");
    case VMM__PARTITION__REQUEST__OP_SET_SPI_IRQ:
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "a GIC is an aarch64 interrupt controller; this partition is x86");
    case VMM__PARTITION__REQUEST__OP_GET_VM_STATE:
        return partition_on_get_vm_state(self, msg, req->get_vm_state);
    case VMM__PARTITION__REQUEST__OP_SET_VM_STATE:
        return partition_on_set_vm_state(self, msg, req->set_vm_state);
    case VMM__PARTITION__REQUEST__OP_SAVE_MEMORY:
        return partition_on_ram_file(self, msg, req->save_memory->path, true, false);
    case VMM__PARTITION__REQUEST__OP_LOAD_MEMORY:
        return partition_on_ram_file(self, msg, req->load_memory->path, false,
                                     req->load_memory->copy);
    case VMM__PARTITION__REQUEST__OP_SAVE_STATE:
        return partition_on_save_state(self, msg);
    case VMM__PARTITION__REQUEST__OP_RESTORE_STATE:
        return partition_on_restore_state(self, msg, req->restore_state);
    case VMM__PARTITION__REQUEST__OP_MAP_MEMORY:
        return partition_on_map_memory(self, msg, req->map_memory);
    case VMM__PARTITION__REQUEST__OP_UNMAP_MEMORY:
        return partition_on_unmap_memory(self, msg, req->unmap_memory);
    case VMM__PARTITION__REQUEST__OP_PREFETCH_MEMORY:
        return partition_on_touch_memory(self, msg, req->prefetch_memory->vtl,
                                         req->prefetch_memory->gpa, req->prefetch_memory->size,
                                         false);
    case VMM__PARTITION__REQUEST__OP_PIN_MEMORY:
        return partition_on_touch_memory(self, msg, req->pin_memory->vtl, req->pin_memory->gpa,
                                         req->pin_memory->size, true);
    case VMM__PARTITION__REQUEST__OP_NEW_VIRTUAL_DEVICE:
        return partition_on_new_virtual_device(self, msg, req->new_virtual_device);
    case VMM__PARTITION__REQUEST__OP_DROP_VIRTUAL_DEVICE:
        return partition_on_drop_virtual_device(self, msg, req->drop_virtual_device);
    case VMM__PARTITION__REQUEST__OP_REGISTER_VPCI_INTERRUPT:
        return partition_on_register_vpci_interrupt(self, msg, req->register_vpci_interrupt);
    case VMM__PARTITION__REQUEST__OP_UNREGISTER_VPCI_INTERRUPT:
        return partition_on_unregister_vpci_interrupt(self, msg, req->unregister_vpci_interrupt);
    case VMM__PARTITION__REQUEST__OP__NOT_SET:
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "no partition operation set");
    default: {
        char text[96];
        snprintf(text, sizeof text, "partition operation %d is not implemented on KVM yet",
                 (int)req->op_case);
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, text);
    }
    }
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
    pthread_mutex_init(&p->irq_lock, NULL);
    pthread_mutex_init(&p->grants_lock, NULL);
    p->vm = strdup(cfg->vm);
    p->name = strdup(rt_actor_name(self));
    if (asprintf(&p->registry, "%s/devices", cfg->vm) < 0)
        p->registry = NULL;
    if (cfg->n_vp_executors) {
        p->given_executors = calloc(cfg->n_vp_executors, sizeof *p->given_executors);
        if (p->given_executors) {
            memcpy(p->given_executors, cfg->vp_executors,
                   cfg->n_vp_executors * sizeof *p->given_executors);
            p->n_given = cfg->n_vp_executors;
        }
    }
    p->liveness_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    while (!p->instance)
        if (getrandom(&p->instance, sizeof p->instance, 0) != sizeof p->instance)
            p->instance = (uint64_t)rt_now_ns(self) ^ (uint64_t)getpid();
    rt_actor_set_state(self, p);
    if (!p->vm || !p->name || !p->registry || (cfg->n_vp_executors && !p->given_executors))
        return -ENOMEM; /* fini frees what there is */
    if (p->liveness_fd < 0)
        return -errno;
    int rc = rt_actor_watch_fd(self, p->liveness_fd, partition_on_liveness_fd);
    /* Its device registry, beside it: asking it is a direct call. */
    registry_config_t reg = {.partition = p->name};
    rt_actor_spec_t spec = {.name = p->registry, .ops = &registry_ops, .arg = &reg};
    if (!rc && (rc = rt_actor_start(rt_actor_executor(self), &spec)))
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot start %s: %s", p->registry,
               strerror(-rc));
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    partition_t *p = rt_actor_state(self);
    if (!p)
        return;
    partition_fill_finish(p, self, true);
    if (p->liveness_fd >= 0) {
        rt_actor_unwatch_fd(self, p->liveness_fd);
        close(p->liveness_fd);
    }
    while (p->n_doorbells)
        s_drop_doorbell(self, p->n_doorbells - 1);
    free(p->doorbells);
    for (size_t i = 0; i < p->n_irqfds; i++)
        s_irqfd_close(p, &p->irqfds[i]);
    free(p->irqfds);
    for (size_t i = 0; i < p->n_line_irqfds; i++)
        s_line_irqfd_close(p, &p->line_irqfds[i]);
    free(p->line_irqfds);
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
    partition_mapper_fini(p); /* before the VM goes: its slots are removed */
    for (size_t i = 0; i < p->n_ram; i++)
        munmap(p->ram[i].host, p->ram[i].size);
    if (p->ram_fd >= 0)
        close(p->ram_fd);
    if (p->vm_fd >= 0)
        close(p->vm_fd);
    if (p->kvm_fd >= 0)
        close(p->kvm_fd);
    partition_devices_fini(self);
    partition_vdevs_fini(p);
    if (p->registry) {
        /* Its registry goes with it (a partition of the same name may
         * start again on this executor). */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
        env.terminate = &term;
        rt_msg_t reply;
        if (!rt_call(self, p->registry, &env, &reply, PARTITION_REGISTRY_TIMEOUT_MS))
            rt_msg_release(&reply);
    }
    free(p->registry);
    free(p->cpuid);
    free(p->given_executors);
    free(p->synic);
    free(p->name);
    free(p->vm);
    pthread_mutex_destroy(&p->grants_lock);
    pthread_mutex_destroy(&p->irq_lock);
    free(p);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    partition_t *p = rt_actor_state(self);
    static const char *const stages[] = {"fresh", "prototype", "built", "failed"};
    const partition_stats_t *s = &p->stats;
    rt_inspect_add(node, "stage", "%s", stages[p->stage]);
    rt_inspect_add(node, "vps", "%u", p->vp_count);
    rt_inspect_add(node, "cpuid_hidden", "%s", p->cpuid_hidden);
    uint64_t ram = 0;
    for (size_t i = 0; i < p->n_ram; i++)
        ram += p->ram[i].size;
    rt_inspect_add(node, "ram_bytes", "%llu", (unsigned long long)ram);
    rt_msg_t listed;
    const Vmm__Registry__Devices *list;
    if (!partition_registry_list(self, &listed, &list)) {
        Vmm__Rt__InspectNode *devices = rt_inspect_add(node, "devices", "%zu", list->n_devices);
        for (size_t i = 0; devices && i < list->n_devices; i++)
            rt_inspect_add(devices, list->devices[i]->name, "%s", list->devices[i]->actor);
        rt_msg_release(&listed);
    }
    rt_inspect_add(node, "doorbells", "%zu", p->n_doorbells);
    rt_inspect_add(node, "virtual_devices", "%zu", p->n_vdevs);
    Vmm__Rt__InspectNode *maps = rt_inspect_add(node, "mappings", "%zu", p->n_mappings);
    for (size_t i = 0; maps && i < p->n_mappings; i++)
        rt_inspect_add(maps, p->mappings[i].object, "0x%llx+0x%llx%s",
                       (unsigned long long)p->mappings[i].gpa,
                       (unsigned long long)p->mappings[i].size,
                       p->mappings[i].writable ? "" : " read-only");
    rt_inspect_add(node, "pinned_bytes", "%llu", (unsigned long long)p->pinned_bytes);
    partition_fill_inspect(p, self, node);
    rt_inspect_add(node, "msi_irqfds", "%zu", p->n_irqfds);
    rt_inspect_add(node, "grants_cached", "%zu", p->n_grants);
    rt_inspect_add(node, "msis", "%llu", (unsigned long long)s->msis);
    rt_inspect_add(node, "msis_blocked", "%llu", (unsigned long long)s->msis_blocked);
    rt_inspect_add(node, "irqs", "%llu", (unsigned long long)s->irqs);
    rt_inspect_add(node, "line_changes", "%llu", (unsigned long long)s->line_changes);
    rt_inspect_add(node, "doorbells_signalled", "%llu",
                   (unsigned long long)s->doorbells_signalled);
    rt_inspect_add(node, "doorbell_signals", "%llu", (unsigned long long)s->doorbell_signals);
    rt_inspect_add(node, "doorbell_rings_held", "%llu",
                   (unsigned long long)s->doorbell_rings_held);
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
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, partition_on_device_request},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, partition_on_device_event},
};

static const rt_handler_t s_shared_handlers[] = {
    {VMM__ENVELOPE__BODY_PARTITION_REQUEST, s_on_shared_partition_request},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, partition_on_shared_device_event},
};

const rt_actor_ops_t partition_ops = {
    .kind = "partition",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .shared_handlers = s_shared_handlers,
    .n_shared_handlers = sizeof s_shared_handlers / sizeof *s_shared_handlers,
    .on_reply = partition_on_reply,
    .inspect = s_inspect,
};
