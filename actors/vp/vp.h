/*
 * The VP actor: one virtual processor (the seed's Processor), running
 * KVM_RUN as the blocking work of its executor (rt_actor_ops_t.run).
 *
 * - Run (vp.proto) starts it; each halt (VpHaltReason) goes to the sender of
 *   Run as a vp.Event Halted, after which it waits for the next Run.
 * - Port and MMIO exits become devices.proto requests to the device actor
 *   whose range the partition's SetIoRoutes named; the guest resumes with
 *   the reply. Where the routes allow it (one VP), a device that
 *   registered posted writes gets them one-way, sent before the guest runs
 *   on. An address nobody registered reads as all ones and drops writes,
 *   counted and logged once per address.
 * - A device may answer IoDeferred: the exit then waits, without running
 *   the guest, for the device's IoCompleted (at most 10 s; a read then
 *   sees all ones), taking other requests meanwhile: a Stop halts the VP
 *   at once, and the access goes on waiting when it runs again. Its state
 *   reads as before the instruction until then; SetState is BUSY.
 * - Stop, Yield and Cancel arrive as messages: the runtime kicks the vCPU
 *   out of KVM_RUN (immediate_exit plus the kick signal), and the exit being
 *   handled is always completed first.
 * - A power action of the VM (power off, reset), passed on by the
 *   partition, halts it with that reason; it stays in force until the
 *   partition's Reset, so a VP that was not running halts as soon as it
 *   is run.
 * - With a synic: a guest RDMSR/WRMSR of a synthetic MSR (KVM's MSR
 *   filter sends those to user space) becomes AccessMsr, completed with
 *   the reply's value or a #GP; a read of the hypercall port from the
 *   hypercall page (actors/synic/synic.h) becomes Hypercall with the
 *   guest's RCX, RDX and R8, and RAX gets the result: as the read's value
 *   in 64-bit mode with the registers synced in the run area (no ioctl at
 *   all), else by setting the registers.
 * - State access and debug state need a stopped VP (else BUSY).
 *
 * The partition actor creates the vCPU (it owns the VM descriptor) and
 * starts this actor with it.
 */
#ifndef VMM_VP_H
#define VMM_VP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

typedef struct {
    uint32_t index;
    /* The vCPU descriptor; the actor takes it over and closes it at fini,
     * also when its start fails. */
    int vcpu_fd;
    /* KVM_GET_VCPU_MMAP_SIZE. */
    size_t run_size;
    /* Its partition actor, the only sender allowed to change routes and to
     * stop it for a power action. */
    const char *partition;
    /* The partition's synic actor, when the guest has the Hyper-V
     * interface: the VP sends it the guest's synthetic MSR accesses and
     * hypercalls (synic.proto). NULL: none; those MSRs are #GP. */
    const char *synic;
    /* KVM copies the registers into the run area at each exit
     * (KVM_CAP_SYNC_REGS with REGS and SREGS): a hypercall reads them there
     * instead of by ioctl, each some 4.6 us on hosts that emulate. */
    bool sync_regs;
} vp_config_t;

extern const rt_actor_ops_t vp_ops;

#endif
