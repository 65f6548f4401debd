/*
 * The bench_io guest (guest/bench_io.c) and what runs it, shared by
 * vm_bench and devhost_bench: its numbers, a run under a bare KVM_RUN loop,
 * the bench device actors that serve it, and a run in the VMM.
 *
 * The guest reads the iterations per loop from IO_GUEST_DEV, then times,
 * with rdtsc at CPL 0, a loop of each mode (after a warm-up of n / 10 + 1)
 * and reports the cycles as sync points:
 *   - WRITE: port writes IO_GUEST_DEV acknowledges (the VP waits for the
 *     Ack: a whole exit to the device and back, as a read is);
 *   - DOORBELL: writes to an ioeventfd whose signals the partition forwards
 *     to IO_GUEST_DEV as DoorbellSignalled events;
 *   - POSTED: port writes IO_GUEST_DEV_POSTED registered as posted.
 */
#ifndef VMM_BENCH_IO_GUEST_H
#define VMM_BENCH_IO_GUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device.h"
#include "runtime/rt.h"
#include "vmm/vm.h"

#define IO_GUEST_MODE_WRITE 1
#define IO_GUEST_MODE_DOORBELL 2
#define IO_GUEST_MODE_POSTED 3
#define IO_GUEST_MODES 3

/* The bench devices' actor names. */
#define IO_GUEST_DEV "vm0/dev/bench"
#define IO_GUEST_DEV_POSTED "vm0/dev/bench-posted"

/* What one run of the guest reported. */
typedef struct {
    uint64_t cycles[IO_GUEST_MODES]; /* per timed loop, by mode - 1 */
    unsigned seen;                   /* bit mode - 1: reported */
    /* Under the VMM, per operation: the posted writes the device had taken
     * when the guest reported their loop, and the doorbell signals its
     * owner got (the partition reads the ioeventfd's count, so one signal
     * may stand for several writes). */
    double posted_taken, doorbell_signals;
} io_guest_report_t;

/* Operations of each mode the guest does in all: its warm-up of n / 10 + 1
 * (guest/bench_io.c), then n. */
#define IO_GUEST_OPS(n) ((n) / 10 + 1 + (n))

/* ns per operation of a timed loop of iterations operations. */
double io_guest_ns_per_op(uint64_t cycles, uint32_t iterations, uint32_t tsc_khz);

/* Runs the guest on a bare vCPU that answers port writes inline, and checks
 * that every doorbell write reached the ioeventfd without an exit. Each
 * acknowledged or posted write also calls on_write(arg, posted) when it is
 * not NULL (a raw round trip or send made inside the exit, say); its error
 * ends the run. *tsc_khz gets the guest TSC's rate. Returns 0, or a
 * negative errno with a reason in err. */
int io_guest_raw(uint32_t iterations, int (*on_write)(void *arg, bool posted), void *arg,
                 io_guest_report_t *r, uint32_t *tsc_khz, char *err, size_t errlen);

/* What the bench devices took. Atomic and free of pointers, so that it may
 * live in memory shared with a device host. */
typedef struct {
    _Atomic uint64_t writes, posted, doorbells;
} io_guest_tally_t;

/* A bench device: the acknowledging one (IO_GUEST_DEV, which owns the
 * doorbell) or the posted one (IO_GUEST_DEV_POSTED). */
typedef struct {
    bool posted;
    uint32_t iterations; /* what the guest reads */
    io_guest_tally_t *tally;
} io_guest_dev_config_t;

/* The bench device model (a device_new_fn): config is an
 * io_guest_dev_config_t *, copied. */
device_t *io_guest_dev_new(const void *config, device_env_t *env);

typedef struct {
    uint32_t iterations;
    vm_placement_t placement;
    /* The bench devices' tally when they run in this process; NULL when a
     * device host serves them. */
    io_guest_tally_t *tally;
    const char *partition_endpoint; /* as vm_config_t's */
    const rt_config_t *rt;          /* as vm_config_t's */
    const char *trace;              /* a trace file to record the run into, or NULL */
} io_guest_vm_config_t;

/* Builds a VM for the guest (COM1 to stderr, for a failed assertion's
 * text), with the bench devices when cfg->tally is set. NULL with a reason
 * in err. */
vm_t *io_guest_vm_new(const io_guest_vm_config_t *cfg, char *err, size_t errlen);

/* Runs the guest until it powers off, and checks in tally that the
 * devices took every write and some doorbell signals. Returns 0, or a
 * negative errno with a reason in err. */
int io_guest_vm_run(vm_t *vm, uint32_t iterations, io_guest_tally_t *tally,
                    io_guest_report_t *r, char *err, size_t errlen);

/* The three above for the bench devices in this process, placed as asked;
 * with trace, the run is recorded there. */
int io_guest_in_process(vm_placement_t placement, uint32_t iterations, const char *trace,
                        io_guest_report_t *r, char *err, size_t errlen);

#endif
