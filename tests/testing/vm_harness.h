/*
 * A VM under test, built from the partition and VP actors by messages, as
 * a VMM front end would: a runtime, the partition actor on an executor of
 * its own, and a client named "test" that plays the VMM (it runs the VPs
 * and receives their halts). Tests that need /dev/kvm call
 * vm_harness_need_kvm() first, which skips them with a message where KVM is
 * absent.
 */
#ifndef VMM_VM_HARNESS_H
#define VMM_VM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

#define VM_HARNESS_PARTITION "vm0/partition"

typedef struct {
    rt_t *rt;
    rt_executor_t *partition_ex;
    rt_client_t *client; /* "test" */
    uint32_t n_vps;
} vm_harness_t;

/* A guest ELF read whole; free elf. */
typedef struct {
    uint8_t *elf;
    size_t len;
} vm_harness_file_t;

/* Reads a test guest (a runfiles path such as "tests/guests/exit");
 * asserts it is there. */
vm_harness_file_t vm_harness_read(const char *path);

/* Skips the calling Criterion test when /dev/kvm cannot be opened. */
void vm_harness_need_kvm(void);

/* Starts the runtime, a fresh partition actor and the client, and sends
 * nothing: for tests of the partition's lifecycle. */
void vm_harness_open(vm_harness_t *h);

/* Opens, then builds a VM with n_vps VPs and mem_size bytes of RAM at 0;
 * asserts on failure. vp_executors (may be NULL) places the VPs, as
 * partition_config_t says. */
void vm_harness_start(vm_harness_t *h, uint32_t n_vps, uint64_t mem_size,
                      rt_executor_t **vp_executors);
/* The same, the runtime made with rt_cfg (NULL: the defaults) and the
 * partition's mailbox bound to endpoint too (NULL: none), for peers in
 * other processes or runtimes. */
void vm_harness_start_listening(vm_harness_t *h, uint32_t n_vps, uint64_t mem_size,
                                rt_executor_t **vp_executors, const rt_config_t *rt_cfg,
                                const char *endpoint);
void vm_harness_stop(vm_harness_t *h);

/* Sends a partition request from the client; *reply is released by the
 * caller. Returns the call's result. */
int vm_harness_partition(vm_harness_t *h, Vmm__Partition__Request *req, rt_msg_t *reply);

/* Sends the partition a devices.proto request from `from`, wrapped in an
 * envelope; returns the call's result, the reply left in *reply (released
 * by the caller). */
int vm_harness_device_call(rt_actor_t *from, Vmm__Devices__Request *req, rt_msg_t *reply);

/* Registers a device named `name` for the actor `from`: one port range
 * (mmio false) or MMIO range [start, start + len). Returns the call's
 * result; the reply (a DeviceRegistration or an Error) is left in *reply. */
int vm_harness_register(rt_actor_t *from, const char *name, bool mmio, uint64_t start,
                        uint64_t len, bool posted, rt_msg_t *reply);

/* Stops VP vp ("vm0/vp/<vp>") from the actor `from`; asserts the Ack. */
void vm_harness_stop_vp(rt_actor_t *from, uint32_t vp);

/* Writes bytes into guest RAM through the partition; asserts success. */
void vm_harness_write(vm_harness_t *h, uint64_t gpa, const void *data, size_t len);
/* Reads len bytes of guest RAM through the partition; asserts they came. */
void vm_harness_read_ram(vm_harness_t *h, uint64_t gpa, void *buf, uint32_t len);
/* The same two from the actor `from` (a VM's own client, say). */
void vm_harness_write_ram_from(rt_actor_t *from, uint64_t gpa, const void *data, size_t len);
void vm_harness_read_ram_from(rt_actor_t *from, uint64_t gpa, void *buf, uint32_t len);

/* A VP request from the client; returns the call's result. */
int vm_harness_vp_call(vm_harness_t *h, uint32_t vp, Vmm__Vp__Request *req, rt_msg_t *reply);

/* Reads the state elements kinds[0..n) (all when n is 0) of VP vp, and
 * asserts it got them; the state lives in *reply, released by the caller. */
Vmm__Vp__VpState *vm_harness_get_state(vm_harness_t *h, uint32_t vp,
                                       const Vmm__Vp__StateKind *kinds, size_t n,
                                       rt_msg_t *reply);

/* A VP request from the client; asserts an Ack. */
void vm_harness_vp_ack(vm_harness_t *h, uint32_t vp, Vmm__Vp__Request *req);

/* Puts VP vp in real mode at 0:ip (segments read back, cs changed). */
void vm_harness_real_mode(vm_harness_t *h, uint32_t vp, uint16_t ip);

/* Sends Run to VP vp; asserts an Ack. */
void vm_harness_run(vm_harness_t *h, uint32_t vp);

/* Waits up to timeout_ms for VP vp's next Halted event (asserts it comes)
 * and returns its reason case. With msg, the event is kept there for the
 * caller to look at, who releases it. */
int vm_harness_wait_halt(vm_harness_t *h, uint32_t vp, int timeout_ms, rt_msg_t *msg);

/* Reads VP vp's general registers. */
void vm_harness_regs(vm_harness_t *h, uint32_t vp, Vmm__Vp__GeneralRegisters *out);

#endif
