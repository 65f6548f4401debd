/*
 * A stand-in VM for the device actor's tests: a runtime, an executor for
 * the device under test, and two clients driven by the test thread, a VP
 * ("vm0/vp/0") that sends accesses and a partition ("vm0/partition") that
 * answers registrations and collects what devices send it.
 *
 * Functions that answer with an int return 0 on success, the code of an
 * Error reply (a positive Vmm__ErrorCode, its text kept in last_error), or
 * a negative errno when no reply came or it was not what was asked.
 */
#ifndef VMM_FAKE_VM_H
#define VMM_FAKE_VM_H

#include <stdint.h>

#include "actors/devices/device_actor.h"
#include "runtime/rt.h"

#define FAKE_VM_PARTITION "vm0/partition"
#define FAKE_VM_VP "vm0/vp/0"

#define FAKE_VM_INBOXES 4

/* Private: what a client received last, kept alive (see fake_vm_recv()). */
typedef struct {
    rt_client_t *client;
    rt_msg_t msg;
    bool held;
} fake_vm_inbox_t;

typedef struct {
    rt_t *rt;
    rt_executor_t *ex; /* hosts the devices under test */
    rt_client_t *vp;
    rt_client_t *partition;
    char last_error[512];
    bool last_was_request;
    uint64_t vm_instance; /* what its registrations name: 1 unless a test sets it */
    fake_vm_inbox_t inboxes[FAKE_VM_INBOXES];
    size_t n_inboxes;
} fake_vm_t;

fake_vm_t *fake_vm_new(void);
void fake_vm_destroy(fake_vm_t **vm);

/*
 * Starts a device actor named name on vm->ex. When cfg has a partition,
 * the fake partition answers its registration (within two seconds) with a
 * DeviceRegistration granting what was asked (doorbell i gets handle
 * FAKE_VM_DOORBELL + i), or, if refuse is not 0, an Error of that code;
 * the request is left in *registration (if not NULL and one came: release
 * it). Returns rt_actor_start()'s result.
 */
#define FAKE_VM_DOORBELL 100
int fake_vm_start(fake_vm_t *vm, const char *name, const device_actor_config_t *cfg,
                  Vmm__ErrorCode refuse, rt_msg_t *registration);

/* Calls `to` with req as the VP; a success reply is left in *reply (if not
 * NULL: release it). */
int fake_vm_request(fake_vm_t *vm, const char *to, Vmm__Devices__Request *req, rt_msg_t *reply);
/* A read of size bytes at a port (or an MMIO address); the reply must
 * carry exactly size bytes. */
int fake_vm_read(fake_vm_t *vm, const char *to, bool mmio, uint64_t address, uint32_t size,
                 uint64_t *value);
/* A write of size bytes of value, answered by an Ack. */
int fake_vm_write(fake_vm_t *vm, const char *to, bool mmio, uint64_t address, uint32_t size,
                  uint64_t value);
/* The same write sent one-way (posted); returns rt_send()'s result. */
int fake_vm_write_posted(fake_vm_t *vm, const char *to, bool mmio, uint64_t address,
                         uint32_t size, uint64_t value);

/* A write sent as the VP's request without waiting for its answer, so
 * that the test thread may answer what the device asks of the partition
 * meanwhile; fake_vm_write_end() takes the answer (0 for an Ack). */
int fake_vm_write_begin(fake_vm_t *vm, const char *to, bool mmio, uint64_t address,
                        uint32_t size, uint64_t value);
int fake_vm_write_end(fake_vm_t *vm);

/* Sends a devices.Event one-way from client `from` to `to`; returns
 * rt_send()'s result. */
int fake_vm_send_event(rt_client_t *from, const char *to, Vmm__Devices__Event *ev);

/* The value of `name` in the actor's introspection tree, parsed as a
 * number (decimal or 0x hex), or -1 when absent. */
long long fake_vm_inspect(fake_vm_t *vm, const char *to, const char *name);
/* The same as text, copied into buf; returns 0 or -ENOENT when absent. */
int fake_vm_inspect_text(fake_vm_t *vm, const char *to, const char *name, char *buf,
                         size_t size);

/* One more client of the fake VM's, e.g. the receiver of guest calls;
 * destroyed with it. */
rt_client_t *fake_vm_client(fake_vm_t *vm, const char *name);

/*
 * The next message to c (vm->vp, vm->partition or a fake_vm_client())
 * within timeout_ms, or NULL. It stays valid until the next fake_vm_recv()
 * for c, or the fake VM's end.
 */
const Vmm__Envelope *fake_vm_recv(fake_vm_t *vm, rt_client_t *c, int timeout_ms);

/*
 * Criterion expectations on the next message c receives within two
 * seconds: a partition request or device event of the given kind. They
 * fail the test otherwise. One sent as a request (a device's effect inside
 * an access a VP waits on) is acknowledged at once; vm->last_was_request
 * says which it was.
 */
void fake_vm_expect_irq_line(fake_vm_t *vm, rt_client_t *c, uint32_t irq, bool high);
void fake_vm_expect_msi(fake_vm_t *vm, rt_client_t *c, uint64_t address, uint32_t data);
void fake_vm_expect_power(fake_vm_t *vm, rt_client_t *c, Vmm__Devices__PowerAction action,
                          bool has_exit_code, uint32_t exit_code);
/* Expects nothing to reach c within ms. */
void fake_vm_expect_quiet(fake_vm_t *vm, rt_client_t *c, int ms);

#endif
