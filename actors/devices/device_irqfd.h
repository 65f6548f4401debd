/*
 * MSIs by irqfd for a device actor in a device host on the VM's host: the
 * partition makes an eventfd KVM watches for each (address, data) the
 * device raises (devices.proto GetMsiIrqfd), the device takes it from the
 * VMM's process with pidfd_getfd(2) and writes it, so that the MSI reaches
 * KVM from the device host's thread without a message (as a vhost-user
 * backend does). The request is still recorded as the RequestMsi message
 * it replaces (rt_note_sent()).
 *
 * Only where guest RAM is mapped from another process (device_guest.h:
 * the same host, the same user): in the VMM's own process the partition
 * takes MSIs on the sender's thread anyway. The descriptor is taken only
 * from the process whose memory file the device mapped (checked through a
 * pidfd, so that a recycled pid cannot pass), and only if it is an eventfd.
 * Where any of it fails (no right to trace the VMM's process, say), the
 * device says why once and raises its MSIs by message from then on.
 *
 * What only the host can tell (whether the mapping is another process's,
 * whether the irqfd could be taken) goes to the runtime as inputs, so that
 * a replay makes the same calls and records the same sends without
 * touching a descriptor.
 */
#ifndef VMM_DEVICE_IRQFD_H
#define VMM_DEVICE_IRQFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device_guest.h"
#include "runtime/rt.h"

#define DEVICE_MAX_IRQFDS 64

/* Input kinds (rt_actor_input()), beside device_guest.h's and
 * DEVICE_INPUT_WALL_CLOCK: an int each, 1 or 0, whether irqfds apply (the
 * mapping is another process's), and whether the irqfd of the MSI at
 * address was taken. */
#define DEVICE_INPUT_IRQFDS_APPLY 4
#define DEVICE_INPUT_IRQFD_TAKEN 5

typedef struct {
    struct {
        uint64_t address;
        uint32_t data;
        int fd;
    } slot[DEVICE_MAX_IRQFDS];
    size_t n;
    bool enabled;       /* asked for (device_actor_config_t.msi_irqfd) */
    bool decided;       /* whether irqfds apply is known */
    bool off;           /* by message from now on */
    uint64_t raised;    /* MSIs raised by irqfd */
} device_irqfds_t;

/* Raises MSI (address, data) by its irqfd, taking one first if it has
 * none: 0 when raised; -ENOTSUP when it goes by message (not on another
 * process's mapping, or irqfds are off). */
int device_irqfd_raise(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                       const char *partition, uint64_t address, uint32_t data);

/* When enabled: "off" or how many, and the MSIs raised so, for inspect
 * trees. */
void device_irqfds_inspect(const device_irqfds_t *f, Vmm__Rt__InspectNode *node);

/* Closes the descriptors. */
void device_irqfds_fini(device_irqfds_t *f);

#endif
