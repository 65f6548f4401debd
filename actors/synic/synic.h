/*
 * The synic actor: the Hyper-V synthetic interrupt controller of one
 * partition (the seed's Synic and SynicMonitor), in user space: KVM here
 * has no Hyper-V support, and the actor model wants its state in one actor
 * anyway. Its whole state (per VP: SCONTROL, SIMP, SIEFP, SINT0-15, the
 * SynIC timers; the host ports; the monitor page) lives here and changes
 * only by synic.proto messages:
 *
 *   - AccessMsr and Hypercall from VP actors: the guest's synthetic MSRs
 *     and its HvPostMessage / HvSignalEvent hypercalls;
 *   - the Synic / SynicMonitor requests from devices and the VMM.
 *
 * Guest memory (SIMP and SIEFP pages, the hypercall page, the reference
 * TSC page, the monitor page, hypercall input pages) is read and written
 * through the partition actor (devices.proto ReadGuestMemory /
 * WriteGuestMemory); SINT interrupts are MSIs the partition sends
 * (partition.proto RequestMsi) to the VP's local APIC (APIC id = VP index).
 */
#ifndef VMM_SYNIC_H
#define VMM_SYNIC_H

#include <stdint.h>

#include "runtime/rt.h"

/* The hypercall page the guest enables holds `out SYNIC_HYPERCALL_PORT, al;
 * ret`: a port write exits to user space on every host (a vmcall does not
 * here), and the VP actor turns it into a synic.proto Hypercall with the
 * guest's RCX, RDX and R8, writing the result to RAX. */
#define SYNIC_HYPERCALL_PORT 0xf5

typedef struct {
    const char *partition; /* e.g. "vm0/partition" */
    uint32_t vp_count;     /* VP i has APIC id i */
    /* The reference time (100 ns units) is the guest TSC's: guest TSC =
     * host TSC (rdtsc) + tsc_offset, and the reference time was 0 when the
     * guest TSC read tsc_at_zero. */
    uint64_t tsc_khz;
    int64_t tsc_offset;
    uint64_t tsc_at_zero;
    /* Messages that may wait per (VP, SINT) while the slot is busy; beyond
     * it PostMessage is BUSY. 0: 64. */
    uint32_t queue_limit;
} synic_config_t;

/* Starts with arg a synic_config_t *, copied by init. */
extern const rt_actor_ops_t synic_ops;

#endif
