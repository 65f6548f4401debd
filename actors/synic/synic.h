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
 * Split, as the partition runs it (synic_role_t): "<vm>/synic" on the
 * partition's executor holds the ports, the monitor page and the
 * partition-wide MSRs, and each VP's state and work is an actor of its
 * own, "<vm>/synic/vp/<N>", on that VP's executor, as OpenVMM keeps a VP's
 * synic state with the VP: the VP's MSR accesses and hypercalls are direct
 * calls there, and a device beside the VP posts and signals without
 * leaving the thread. What crosses (a port table, a partition-wide MSR, an
 * event signal for another VP) is a message between them (synic.proto
 * says where to send what). Whole, one actor does all of it (tests).
 *
 * Guest memory (SIMP and SIEFP pages, the hypercall page, the reference
 * TSC page, the monitor page, hypercall input pages) is mapped from the
 * partition's memory file as device actors map it (device_guest.h), or
 * read and written by message where it cannot be; SINT interrupts are
 * MSIs (partition.proto RequestMsi) to the VP's local APIC (APIC id = VP
 * index), which the partition takes on the sender's thread.
 *
 * What the guest sees (numbers and layouts: synic_tlfs.h):
 *
 *   - MSRs 0x40000000-0x400000ff: GUEST_OS_ID, HYPERCALL, REFERENCE_TSC
 *     (partition-wide), VP_INDEX, TIME_REF_COUNT, SCONTROL, SVERSION (1),
 *     SIEFP, SIMP, EOM (reads 0), SINT0-15 (reset: masked), STIMER0-3
 *     CONFIG / COUNT (per VP). Any other index in the range, a write to a
 *     read-only one, a reserved bit set, an unmasked SINT vector below 16,
 *     a change to a locked HYPERCALL, or a hypercall page outside guest RAM
 *     is a #GP. HYPERCALL cannot be enabled while GUEST_OS_ID is 0 (the
 *     enable bit is dropped); zeroing GUEST_OS_ID disables it. Enabling it
 *     writes E5 F5 C3 (`in eax, 0xf5; ret`) at its page.
 *   - The reference time (TIME_REF_COUNT and the TSC page, 100 ns units) is
 *     ((guest TSC * scale) >> 64) + offset, scale = 2^64 * 10^4 / tsc_khz,
 *     offset making it 0 at tsc_at_zero; enabling REFERENCE_TSC writes
 *     {u32 sequence (never 0), u32 0, u64 scale, s64 offset} at its page.
 *   - Enabling SIMP or SIEFP (or moving it) zeroes its page. A message for
 *     (VP, SINT) goes to the 256-byte slot at SIMP + 256 * SINT when the
 *     slot's type is 0, payload size bytes only, the type written last;
 *     otherwise, or while SCONTROL or SIMP is disabled, it waits in the
 *     (VP, SINT) queue (queue_limit, then BUSY) and the slot's pending flag
 *     is set; EOM, a SIMP or SCONTROL enable and the next post deliver the
 *     next one. Event flag f of a SINT is bit f % 8 of byte SIEFP + 256 *
 *     SINT + f / 8; flags signalled while SCONTROL or SIEFP is disabled are
 *     kept and set when both are enabled.
 *   - Raising a SINT is an MSI {0xfee00000 | VP << 12, the SINT's vector},
 *     sent when a message reaches the slot or a flag goes from 0 to 1. A
 *     masked SINT, or a disabled SCONTROL, keeps it pending until unmasked
 *     (enabled); a polling SINT gets none. Auto-EOI is stored but not
 *     honoured: the MSI goes to KVM's local APIC, whose ISR needs an EOI,
 *     so the partition should recommend against auto-EOI in CPUID
 *     (0x40000004 EAX bit 9, "deprecating AEOI").
 *   - Timers run on the reference time: a one-shot COUNT is the absolute
 *     expiration (in the past: at once), a periodic one the period from
 *     enable. A message-mode expiry posts HVMSG_TIMER_EXPIRED {index, 0,
 *     expiration, delivery time = when it reached the slot} to SINTx
 *     through the same queue (at most one per timer waits; more expiries
 *     meanwhile are missed and counted); direct mode sends the APIC vector
 *     as an MSI. Periods missed by a late wake-up are skipped (every timer
 *     behaves as lazy). Expiry is never early: the timer descriptor is
 *     re-armed until the reference time has reached it. A CONFIG write
 *     that sets SINTx to 0 on an enabled message-mode timer disables it
 *     (TLFS; as KVM reads it, a timer being enabled may use SINT 0).
 *   - Hypercalls (Hypercall request): HvPostMessage (0x5c, input page) and
 *     HvSignalEvent (0x5d, fast or input page) to host ports registered
 *     here; statuses as the TLFS gives them (synic_tlfs.h). Callers are
 *     VTL0.
 *   - The monitor page: while a page is set and monitors are registered,
 *     the trigger groups are read every millisecond; each registered bit
 *     seen set is cleared (a one-byte write of the bits not seen) and then
 *     signals its connection's host event port once (HostEventSignalled,
 *     flag 0). Latency: up to 1 ms plus the read. The clear is not atomic
 *     against the guest: a bit of the same byte that the guest sets between
 *     the read and the write is lost (partition.proto has no guest-memory
 *     compare-exchange to do better).
 *
 * Requests for a VTL other than 0 are NOT_SUPPORTED; malformed ones
 * INVALID_ARGUMENT, with a text, counted in the inspect tree (bad_requests,
 * unsupported). Only PostMessage, SignalGuestEventPort and AssertSint may
 * be sent one-way (and PortTable, from "<vm>/synic" to a VP's actor). Retargeting or unregistering a guest event port, and
 * unregistering a host port or monitor, is for the registering actor only.
 */
#ifndef VMM_SYNIC_H
#define VMM_SYNIC_H

#include <stdint.h>

#include "runtime/replay.h"
#include "runtime/rt.h"

/* The hypercall page the guest enables holds `in eax, SYNIC_HYPERCALL_PORT;
 * ret`: a port read exits to user space on every host (a vmcall does not
 * here), and the VP actor turns it into a synic.proto Hypercall with the
 * guest's RCX, RDX and R8; the read's value is the result, so that the
 * guest's RAX gets it as the read completes, with no register write. */
#define SYNIC_HYPERCALL_PORT 0xf5

typedef enum {
    SYNIC_WHOLE = 0, /* one actor serves every VP */
    SYNIC_CENTRAL,   /* "<vm>/synic" of a split synic: ports, monitors,
                        partition-wide MSRs; VP N's work goes to
                        "<name>/vp/<N>" */
    SYNIC_VP,        /* VP `vp`'s actor of a split synic */
} synic_role_t;

/* Init fails with -EINVAL for no partition, vp_count 0 or above 256 (the
 * MSI destination is an 8-bit APIC id), tsc_khz 10000 or less, or a VP
 * role without central or with vp out of range. */
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
    synic_role_t role;
    uint32_t vp;         /* SYNIC_VP: the VP it serves */
    const char *central; /* SYNIC_VP: the "<vm>/synic" actor */
} synic_config_t;

/* The name of VP vp's actor of the split synic `synic` into buf:
 * "<synic>/vp/<vp>". Returns 0, or -ENOSPC. */
int synic_vp_actor(char *buf, size_t size, const char *synic, uint32_t vp);

/* Starts with arg a synic_config_t *, copied by init. In a trace its
 * recipe is a synic.proto SynicRecipe, the same configuration. */
extern const rt_actor_ops_t synic_ops;

/* Replays the synic actor `actor` from a trace (runtime/replay.h) with the
 * configuration its recipe recorded. Returns rt_replay()'s result, or
 * -EINVAL for an actor that is no synic or has no recipe. */
int synic_replay(const char *trace, const char *actor, rt_replay_result_t *out, char *err,
                 size_t errlen);

#endif
