/*
 * A whole VM assembled from actors, as `vmm run` and the guest tests use
 * it: a runtime, the partition actor, one VP actor per processor, the
 * chipset devices (COM1, isa-debug-exit, i8042, the ACPI PM block, the
 * test device; each a model in a device actor) with COM1's console, and a
 * guest ELF loaded and started in 64-bit mode on every VP; or a kernel
 * (multiboot, Linux) booted on a PC (loader/kernel.h): the interrupt
 * controllers as a BIOS leaves them, VP 0 running and the others waiting
 * for INIT/SIPI, and the PC's devices too (the RTC, fw_cfg, the Bochs
 * shutdown port, pc-testdev, hyperv-testdev). Everything is done by
 * messages from a client named "vm0/vmm", which also receives the VPs'
 * halts and the test device's guest calls. With the Hyper-V interface the
 * partition also starts the synic actor, "vm0/synic", which the devices
 * reach through their SynIC environment.
 *
 * Placement is configuration: the devices share VP 0's executor (the
 * default: a port exit to them costs no thread hop), or have one of their
 * own. COM1's console has an executor of its own, so that a slow terminal
 * holds up no VP.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device.h"
#include "loader/kernel.h"
#include "proto/snapshot.pb-c.h"
#include "runtime/rt.h"

#define VM_CLIENT "vm0/vmm"
#define VM_PARTITION "vm0/partition"
#define VM_CONTROL "vm0/control"
#define VM_GDB "vm0/gdb"
#define VM_DEFAULT_MEM (64ull << 20)

typedef enum {
    VM_DEVICES_WITH_VP0 = 0, /* on VP 0's executor */
    VM_DEVICES_APART,        /* on an executor of their own */
} vm_placement_t;

/* A device's console: output to out_fd, input from in_fd (-1: none). */
typedef struct {
    int out_fd, in_fd;
} vm_console_t;

/* A device started beside the chipset: a model in a device actor that
 * registers with the VM's partition, its owner the VM's client. */
typedef struct {
    const char *name;         /* the actor's, e.g. "vm0/dev/bench" */
    device_new_fn new_model;  /* with model_config, read by vm_new() only */
    const void *model_config;
    /* Its configuration as text instead (device_models.h), which a trace's
     * recipe keeps; NULL: model_config. */
    const char *model_args;
    const char *guest_calls;  /* where its guest calls go; NULL: the client */
    /* A console of its own (a virtio-console's), "<name>/console" on the
     * consoles' executor: descriptors as console_config_t's, the caller's
     * to close after vm_destroy(). NULL: none. */
    const vm_console_t *console;
} vm_device_t;

typedef struct {
    const uint8_t *elf; /* the guest image, read by vm_new() only */
    size_t elf_len;
    /* A kernel to boot on a PC instead (loader/kernel.h: its mem_size and
     * n_vps are this config's): the interrupt controllers as a BIOS leaves
     * them and the PC's devices too. Read by vm_new() only. */
    const loader_kernel_config_t *kernel;
    uint64_t mem_size;  /* 0: VM_DEFAULT_MEM */
    uint32_t n_vps;     /* 0: 1 */
    int serial_out;     /* COM1's output; -1: discarded */
    int serial_in;      /* COM1's input; -1: none */
    vm_placement_t placement;
    /* Present the Hyper-V interface (HvConfig): CPUID leaves, synthetic
     * MSRs, the hypercall page and the SynIC, served by a synic actor. */
    bool hyperv;
    /* Where the partition also listens, so that device hosts in other
     * processes can register (ipc://... or tcp://...); NULL: none. */
    const char *partition_endpoint;
    /* Where the VM's control endpoint listens (actors/control/control.h:
     * ipc://... in a folder only the user may enter, or tcp://... under
     * CURVE); NULL: none. */
    const char *control_endpoint;
    /* Over tcp://: the operators' CURVE public keys, admitted to the
     * control endpoint alone. */
    const char *const *operator_keys;
    size_t n_operator_keys;
    /* What a snapshot records to build this VM again
     * (proto/snapshot.proto Machine; copied): with it, the control
     * endpoint's Snapshot writes one (vm_next_event() serves it). NULL: the
     * VM refuses snapshots. */
    const Vmm__Snapshot__Machine *machine;
    /* A snapshot to restore (snapshot_read() of restore_dir) instead of
     * loading the guest: the VM must be built as its machine says. The
     * devices `elsewhere` are restored by the caller once their hosts have
     * registered them (snapshot_restore_devices()). */
    const Vmm__Snapshot__Snapshot *restore;
    const char *restore_dir;
    /* Guest RAM read back before the VPs run, rather than filled on
     * demand behind them (snapshot_restore()). */
    bool restore_copy;
    /* A debugger: gdb's remote protocol on a listening socket
     * (actors/gdb/gdb.h gdb_listen(); the VM listens on a duplicate). The
     * VPs then start stopped, left to the debugger to run. */
    bool gdb;
    int gdb_listen_fd;
    /* Chipset devices served elsewhere (a device host), by their names in
     * the VM ("com1", "testdev"): the VM starts none of its own. */
    const char *const *elsewhere;
    size_t n_elsewhere;
    /* More devices, started beside the chipset (same placement); vm_new()
     * returns once each has registered. */
    const vm_device_t *devices;
    size_t n_devices;
    /* Other actors started beside the devices once the VM is built (the
     * receivers of devices' guest calls, say); the specs and their args are
     * read by vm_new() only. */
    const rt_actor_spec_t *actors;
    size_t n_actors;
    const rt_config_t *rt; /* NULL: the runtime's defaults */
    /* Records the run into a trace (rt_trace_start()); NULL: none. */
    const rt_trace_config_t *trace;
} vm_config_t;

typedef struct vm_s vm_t;

/* Builds the VM and loads the guest, ready to start. Returns NULL with a
 * one-line reason in err. */
vm_t *vm_new(const vm_config_t *cfg, char *err, size_t errlen);

/* Stops every VP, then every actor, and frees the VM; nulls *vm. */
void vm_destroy(vm_t **vm);

/* Sends Run to every VP. Returns 0 or a negative errno. */
int vm_start(vm_t *vm);
/* Sends Stop to every VP, one-way: each running VP's Halted (stop) comes
 * to vm_next_event(). Returns 0 or the first failed send's negative errno. */
int vm_stop(vm_t *vm);

typedef enum { VM_EVENT_HALT, VM_EVENT_GUEST_CALL } vm_event_kind_t;

typedef struct {
    vm_event_kind_t kind;
    uint32_t vp;
    /* VM_EVENT_HALT: the reason (Vmm__Vp__Halted__ReasonCase), the status
     * a power off asks the VMM to exit with, and a readable description. */
    int reason;
    int exit_code;
    char text[160];
    /* VM_EVENT_GUEST_CALL: the call (testdev_abi.h) and its arguments. */
    uint32_t call;
    uint32_t args[8];
    size_t n_args;
} vm_event_t;

/* Waits up to timeout_ms for the next halt or guest call, serving
 * meanwhile the control endpoint's requests to the VM's owner (Snapshot).
 * Returns 0, or -ETIMEDOUT. */
int vm_next_event(vm_t *vm, vm_event_t *ev, int timeout_ms);

/* Resets the stopped VM (partition.proto Reset: VPs, RAM, interrupt
 * controllers) and loads the guest again, ready to start. Returns 0, or a
 * negative errno with a reason in err. */
int vm_reset(vm_t *vm, char *err, size_t errlen);

/*
 * Starts the VM and waits for it to end: a power off ends it with the
 * power off's exit code (0 unless an exit device set one); any other halt,
 * or a failed guest assertion, with 1 and its description in why. A reset
 * the guest asks for (i8042) starts it again once every VP has halted. A
 * VP stopped by Stop (an operator's pause) is paused, not ended: it runs
 * again when the operator resumes it. With a debugger (vm_config_t.gdb),
 * the VPs start when it says so; halts that are not its own it passes on
 * here. An event to VM_CLIENT lost on its way (rt_client_lost()) ends it
 * with 1 within a second, unless a halt that ends it came meanwhile: a
 * lost halt would leave it waiting for ever.
 */
int vm_run(vm_t *vm, char *why, size_t whylen);

/* The client the VM is driven by, for requests of one's own (Inspect,
 * Stop, GetState). */
rt_actor_t *vm_client(vm_t *vm);

/* What the loader put where, one line per item (`vmm run --verbose`). */
const char *vm_describe(vm_t *vm);

/* The VM's runtime, for clients and actors of one's own. */
rt_t *vm_rt(vm_t *vm);

/* Where the VM's devices run (VP 0's executor, unless placed apart): to
 * start more devices beside them, at any time. */
rt_executor_t *vm_devices_executor(vm_t *vm);

/* Waits up to timeout_ms until a device named `name` has registered with
 * the partition (one in a device host, say). Returns 0 or -ETIMEDOUT. */
int vm_wait_device(vm_t *vm, const char *name, int timeout_ms);

#endif
