/*
 * MSIs a device raises on its own, timed by the device: the bench_msi guest
 * (guest/bench_msi.c) waits halted and counts each MSI in a box in its RAM;
 * the device raises one, then reads the box until the count moves, rounds
 * times, and then sets the box's stop. The same guest runs under a bare
 * KVM_RUN loop, where a thread of the benchmark raises them with
 * KVM_SIGNAL_MSI, so that the two compare how an MSI reaches a halted vCPU
 * and its handler, with no exit on the way.
 */
#ifndef VMM_BENCH_MSI_GUEST_H
#define VMM_BENCH_MSI_GUEST_H

#include <stdatomic.h>
#include <stdint.h>

#include "actors/devices/device.h"
#include "vmm/vm.h"

#define MSI_GUEST_PORT 0x5c0
#define MSI_GUEST_VECTOR 0x55
#define MSI_GUEST_DEV "vm0/dev/msi-bench"
#define MSI_GUEST_DEV_NAME "msi-bench"

/* What the device measured. Atomic and free of pointers, so that it may
 * live in memory shared with a device host. */
typedef struct {
    _Atomic uint64_t rounds, ns, lost; /* lost: not counted within a second */
} msi_guest_tally_t;

typedef struct {
    uint32_t rounds;
    msi_guest_tally_t *tally;
} msi_guest_config_t;

/* The device model (a device_new_fn): config is a msi_guest_config_t *,
 * copied. */
device_t *msi_guest_dev_new(const void *config, device_env_t *env);

/* Runs the guest on a bare vCPU, a thread raising the MSIs; *ns gets the
 * mean per MSI. Returns 0, or a negative errno with a reason in err. */
int msi_guest_raw(uint32_t rounds, double *ns, char *err, size_t errlen);

/* A VM for the guest: with the device in this process (placed as asked)
 * when tally is set, else for a device host registering it at
 * partition_endpoint. NULL with a reason in err. */
vm_t *msi_guest_vm_new(uint32_t rounds, msi_guest_tally_t *tally, vm_placement_t placement,
                       const char *partition_endpoint, char *err, size_t errlen);

/* Runs the VM until the guest powers off, then reads the tally: *ns gets
 * the mean per MSI. Returns 0, or a negative errno with a reason in err
 * (an MSI lost, say). */
int msi_guest_vm_run(vm_t *vm, uint32_t rounds, msi_guest_tally_t *tally, double *ns,
                     char *err, size_t errlen);

#endif
