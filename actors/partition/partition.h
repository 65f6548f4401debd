/*
 * The partition actor: one KVM VM (the seed's Hypervisor, ProtoPartition
 * and Partition), driven by partition.proto requests in lifecycle order:
 *
 *   IsAvailable            probe /dev/kvm (any time)
 *   NewPartition           the prototype: VP count, HvConfig, isolation
 *   GetCpuid, GetMaxPhysicalAddressSize
 *   Build                  guest RAM, CPUID, one VP actor per processor
 *   ...                    MSIs, IRQ routes, doorbells, caps, reset
 *
 * It takes devices' registrations (devices.proto RegisterDevice) and keeps
 * what it grants in the VM's device registry, an actor it starts beside
 * itself ("<vm>/devices", actors/registry/registry.h), which refuses
 * overlapping claims, says what a device may do and makes the routing
 * table the partition sends every VP; and it answers guest memory reads
 * and writes by guest physical address. Guest
 * RAM is one sealed memory file (a memfd); MapGuestMemory tells a
 * registered device of this VM where it lies, for a device host on the
 * same host to map it.
 * A registration is answered once every VP has the new routes (before
 * Build, at once); the partition goes on meanwhile (a VP may be waiting on
 * the synic, on the partition's thread). A device may register before or
 * after Build, on any executor: the device actor does not wait for the
 * answer, so a device on a VP's executor leaves that VP free to take the
 * routes. Doorbells a registration asks for before Build are made then,
 * and given to KVM at Build.
 * Line levels from devices (IrqLineChanged) go to the in-kernel PIC and
 * IO-APIC (KVM_IRQ_LINE), each only from the device that registered the
 * line. Those and RequestMsi are taken on the sender's thread when it is
 * an actor of this process on another executor (shared handlers), so that
 * an interrupt never waits for the partition's thread; a device host on
 * this host gets an irqfd per MSI instead (GetMsiIrqfd). VPs may post writes to the devices that ask for it only in a VM
 * of one VP (see partition_posts_ok()).
 * Power requests from devices are passed to every VP, which halt with the
 * matching reason. Virtual devices (NewVirtualDevice) get VPCI interrupts:
 * the MSI address and data that reach one processor's vector (vdev.c).
 *
 * Devices in other processes (RegisterDevice.endpoint) are pinged; one
 * whose host stops answering is lost: logged, counted, and its ranges are
 * nobody's, unless it was registered halt_if_lost (then a VP that touches
 * it halts) until it registers again.
 *
 * Permissions (refused with PERMISSION_DENIED and counted as "denied"):
 * actor names begin with their VM's name, and an actor of another VM
 * ("vm1/..." for "vm0") may not act on this one; names without a '/' are
 * the host's own. A registered device may raise only its IRQ lines and,
 * with msi_count > 0, MSIs; its doorbells lie in its own MMIO ranges and
 * signal itself; it may not build, reset or configure the VM. A name from
 * another process is only what that process wrote: there it may only
 * register a device, and then act as that device, from where it registered
 * (the same CURVE key; registry.proto Add.origin).
 */
#ifndef VMM_PARTITION_H
#define VMM_PARTITION_H

#include <stddef.h>

#include "runtime/rt.h"

typedef struct {
    /* The VM's name, the prefix of its actors' names: VP i is
     * "<vm>/vp/<i>". */
    const char *vm;
    /* Where VP i runs: vp_executors[i] when given (placement is the
     * caller's choice, e.g. to put a device on a VP's thread), else an
     * executor the partition starts and stops itself. Borrowed: they must
     * outlive the partition actor. */
    rt_executor_t **vp_executors;
    size_t n_vp_executors;
} partition_config_t;

extern const rt_actor_ops_t partition_ops;

#endif
