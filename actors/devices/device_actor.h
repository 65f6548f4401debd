/*
 * The device actor: hosts any device model (device.h), wherever it is
 * placed (on a VP's executor, on one of its own, in a device host), and
 * speaks the devices protocol for it:
 *
 *   - registration with the partition, without waiting for the answer (a
 *     device on a VP's thread could not otherwise let that VP take its
 *     routes): the outcome goes to the owner as DeviceRegistered;
 *   - port and MMIO reads and writes checked against the model's ranges
 *     and answered, posted writes taken one-way, and deferred accesses
 *     answered IoDeferred, then completed by IoCompleted to their VP;
 *   - ResetDevice, SaveDevice and RestoreDevice from its owner, its
 *     manager or its partition;
 *   - the model's effects as messages: IrqLineChanged when a line changes
 *     level, RequestMsi, PowerRequest, GuestCall to the owner, timers on
 *     the runtime, guest memory through the mapped memory file on the VM's
 *     host or by message elsewhere (device_guest.h), and its console's
 *     output and input (ConsoleOutput and the rest, to a console actor);
 *   - the host's wall clock, read with CLOCK_REALTIME and handed to the
 *     runtime as an input (DEVICE_INPUT_WALL_CLOCK), so that a replay
 *     gives the model the time it read then.
 *
 * Bad input (an access outside the ranges, of a bad size, a read sent
 * one-way, a request of another kind, a console message from elsewhere or
 * beyond what was asked) is refused, logged at INFO and counted in
 * bad_requests; refusals by permission also in denied.
 */
#ifndef VMM_DEVICE_ACTOR_H
#define VMM_DEVICE_ACTOR_H

#include <stdbool.h>

#include "actors/devices/device.h"
#include "runtime/replay.h"
#include "runtime/rt.h"

/* The input kind (rt_actor_input()) of a wall clock reading: 8 bytes,
 * the ns since the Unix epoch, at address 0. Kinds 1 and 2 are guest
 * memory's (device_guest.h). */
#define DEVICE_INPUT_WALL_CLOCK 3
/* The input kind of random bytes a model took (device_entropy()), at
 * address 0. (4 and 5 are device_irqfd.h's.) */
#define DEVICE_INPUT_ENTROPY 6
/* The backing store (device_storage_open() and the rest): each operation's
 * outcome as 8 bytes, signed (a negative errno, else 0; an open's the
 * size), at the operation's offset; the bytes a read took, at its offset;
 * and, as output (rt_actor_output()), the bytes a write gave. */
#define DEVICE_INPUT_STORAGE_RESULT 7
#define DEVICE_INPUT_STORAGE_READ 8
#define DEVICE_OUTPUT_STORAGE_WRITE 9
/* The kept state found at start (state_file): its length (8 bytes) at
 * address 0, then its bytes at address 1; once registered, whether it was
 * kept for this same VM (an int) at address 2. */
#define DEVICE_INPUT_KEPT_STATE 12

typedef struct {
    /* The model, made by init: new_model(model_config, env). The config is
     * read by new_model only. */
    device_new_fn new_model;
    const void *model_config;
    /* Or its configuration as text, for the models that take one
     * (device_model_new_args()): kept in the trace's recipe, so that a
     * replay makes the same model. */
    const char *model_args;
    /* The partition to register with, e.g. "vm0/partition"; NULL: not
     * registered, and its effects on the VM are counted as unsent (tests). */
    const char *partition;
    /* Whoever started it, e.g. "vm0/vmm": told the registration's outcome
     * and the guest's calls, and may reset, save and restore it; NULL:
     * nobody (the partition still may). */
    const char *owner;
    /* Another actor that may reset, save and restore it: the VM's owner
     * ("vm0/vmm", which writes and restores snapshots) for a device in a
     * device host, whose owner is the host's own. NULL: none. */
    const char *manager;
    /* Where the guest's calls go (device_guest_call()); NULL: the owner. */
    const char *guest_calls;
    /* The console actor its console talks to (console.h); NULL: output is
     * discarded (counted) and there is no input. */
    const char *console;
    /* Each console write leaves at once rather than a line at a time: in
     * a device host, whose delivery record counts a write taken as soon as
     * it arrives, a write held in a buffer would be lost with the host. */
    bool console_unbuffered;
    /* The VM's synic actor (e.g. "vm0/synic") its SynIC environment talks
     * to; NULL: the VM has none, and those calls fail with -ENODEV. */
    const char *synic;
    /* In another process: the VM halts a VP that touches the device once
     * its host is lost (RegisterDevice.halt_if_lost). */
    bool halt_if_lost;
    /* Guest memory goes by message even where the VM's memory file could
     * be mapped (tests and measurements). */
    bool guest_by_message;
    /* In a device host on the VM's host: MSIs and lines by irqfd, and
     * doorbells by their eventfds, where the VMM's process lets it take them
     * (device_irqfd.h); else by message. */
    bool msi_irqfd;
    /* In the VMM's own process: it waits on its doorbells' eventfds itself,
     * rather than hearing of each from the partition's thread. */
    bool doorbell_fds;
    /* A file where the model's state is kept (its save()) after each write
     * the guest makes, before the write is answered, and with it the VM
     * (the instance its registration named). A device host started again
     * after a crash, for the same VM, restores it once registered (until
     * then it keeps nothing over it) and resumes the model
     * (device_ops_t.resume), so that the guest's device carries on, over
     * ipc:// or tcp:// alike. NULL:
     * none. Under a replay, any non-NULL: the kept bytes come from the
     * trace. */
    const char *state_file;
} device_actor_config_t;

/* Starts with arg a device_actor_config_t *, read by init only. init fails
 * with the model's errno when new_model does. In a trace its recipe is a
 * devices.proto DeviceRecipe: its configuration, and its model by kind
 * (device_models.h). */
extern const rt_actor_ops_t device_actor_ops;

/*
 * Replays the device actor `actor` from a trace (runtime/replay.h) with
 * the configuration its recipe recorded: a model's test in a few lines.
 * new_model (and model_config) replace the recorded model, say with a
 * changed copy; NULL: the model the recipe names. Returns rt_replay()'s
 * result, or -ENOTSUP for a model the VMM does not know by name, or one
 * that had a configuration of its own and was given none here.
 */
int device_actor_replay(const char *trace, const char *actor, device_new_fn new_model,
                        const void *model_config, rt_replay_result_t *out, char *err,
                        size_t errlen);

/*
 * For whoever started n device actors with owner the client `owner`:
 * waits for their DeviceRegistered, at most timeout_ms in all, dropping
 * what else reaches the client meanwhile. Returns 0 once all n were
 * granted; the first refusal's code as an errno, with "device NAME did not
 * register: why" in err; or -ETIMEDOUT.
 */
int device_actor_wait_registered(rt_client_t *owner, size_t n, int timeout_ms, char *err,
                                 size_t errlen);

#endif
