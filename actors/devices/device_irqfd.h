/*
 * The data path of a device actor in a device host on the VM's host, by
 * descriptors it takes from the VMM's process, as a vhost-user backend has
 * them, so that the VMM's process is not on the way:
 *
 *   - MSIs by irqfd: the partition makes an eventfd KVM watches for each
 *     (address, data) the device raises (devices.proto GetMsiIrqfd); the
 *     device writes it. Recorded as the RequestMsi it replaces
 *     (rt_note_sent()).
 *   - Lines by irqfd with a resample eventfd (GetLineIrqfd): the device
 *     writes the irqfd when its line rises; KVM lowers the line at the
 *     guest's EOI and signals the resample eventfd, and the device raises
 *     it again while its line is high. Recorded as the IrqLineChanged it
 *     replaces.
 *   - Doorbells by their eventfds (GetDoorbellFd): the device waits on them
 *     itself; each signal is recorded as the DoorbellSignalled the
 *     partition would have sent (rt_note_received()), so that a replay
 *     delivers it the same way.
 *
 * The device takes each descriptor with pidfd_getfd(2).
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

#include "actors/devices/device.h"
#include "actors/devices/device_guest.h"
#include "runtime/rt.h"

#define DEVICE_MAX_IRQFDS 64

/* Input kinds (rt_actor_input()), beside device_guest.h's and
 * DEVICE_INPUT_WALL_CLOCK: an int each, 1 or 0, whether irqfds apply (the
 * mapping is another process's), and whether the irqfd of the MSI at
 * address was taken. */
#define DEVICE_INPUT_IRQFDS_APPLY 4
#define DEVICE_INPUT_IRQFD_TAKEN 5
/* The same for a line's irqfd (at the line) and a doorbell's eventfd (at
 * its handle). */
#define DEVICE_INPUT_LINE_IRQFD_TAKEN 10
#define DEVICE_INPUT_DOORBELL_FD_TAKEN 11

typedef struct {
    struct {
        uint64_t address;
        uint32_t data;
        int fd;
    } slot[DEVICE_MAX_IRQFDS];
    size_t n;
    struct {
        uint32_t line;
        int fd, resample_fd;
        bool high;
    } lines[DEVICE_MAX_IRQS];
    size_t n_lines;
    struct {
        uint64_t handle;
        int fd;
    } bells[DEVICE_MAX_DOORBELLS];
    size_t n_bells;
    bool enabled;       /* asked for (device_actor_config_t.msi_irqfd) */
    bool decided;       /* whether descriptors apply is known */
    bool applies;       /* they do (the VMM's guest RAM is mapped here) */
    bool off;           /* MSIs by message from now on */
    bool lines_off;     /* lines by message from now on */
    /* In the VMM's own process: its doorbells' eventfds are this process's
     * (device_actor_config_t.doorbell_fds). */
    bool own_doorbells;
    /* The owner's callbacks for a resample eventfd and a doorbell's, which
     * this watches on its executor. */
    rt_fd_fn on_resample, on_doorbell;
    uint64_t raised;    /* MSIs raised by irqfd */
    uint64_t lines_raised, resampled, rung; /* line raises, resamples, doorbells */
} device_irqfds_t;

/* Raises MSI (address, data) by its irqfd, taking one first if it has
 * none: 0 when raised; -ENOTSUP when it goes by message (not on another
 * process's mapping, or irqfds are off). */
int device_irqfd_raise(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                       const char *partition, uint64_t address, uint32_t data);

/* Sets line's level by its irqfd, taking one first if it has none: 0 when
 * done so; -ENOTSUP when it goes by message. */
int device_irqfd_line(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                      const char *partition, uint32_t line, bool high);

/* The resample eventfd fd was signalled: its line is raised again while
 * high. */
void device_irqfd_resampled(device_irqfds_t *f, int fd);

/* Takes the eventfds of the n doorbells whose handles the registration
 * gave (from the VMM's process, or with own_doorbells this process's own),
 * and watches them (on_doorbell); those it cannot take stay the
 * partition's, signalled by message. Drops the ones an earlier
 * registration had first. */
void device_irqfd_doorbells(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                            const char *partition, const uint64_t *handles, size_t n);

/* A doorbell eventfd fd was signalled: reads it; its handle, or 0 when fd
 * is none of them or had nothing. */
uint64_t device_irqfd_rung(device_irqfds_t *f, int fd);

/* When enabled: "off" or how many, and the MSIs raised so, for inspect
 * trees. */
void device_irqfds_inspect(const device_irqfds_t *f, Vmm__Rt__InspectNode *node);

/* Stops watching and closes the descriptors. */
void device_irqfds_fini(device_irqfds_t *f, rt_actor_t *self);

#endif
