/*
 * A synic under test: a runtime, the synic actor on an executor of its
 * own, a fake partition with guest RAM (testing/fake_partition.h) and
 * clients that play the VP actors, devices and host port targets. The test
 * thread plays the guest through them: MSR accesses and hypercalls as the
 * VP actor would send them, guest RAM read and written directly.
 *
 * Functions that answer with an int return 0 on success, the code of an
 * Error reply (a positive Vmm__ErrorCode, its text kept in last_error), or
 * a negative errno when no reply came or it was not what was asked.
 */
#ifndef VMM_SYNIC_HARNESS_H
#define VMM_SYNIC_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/synic/synic.h"
#include "actors/synic/synic_tlfs.h"
#include "actors/synic/testing/fake_partition.h"
#include "runtime/rt.h"

#define HARNESS_PARTITION "vm0/partition"
#define HARNESS_SYNIC "vm0/synic"
#define HARNESS_VP "vm0/vp/0"       /* sends every VP's AccessMsr / Hypercall */
#define HARNESS_DEVICE "vm0/dev/a"  /* registers ports, posts messages */
#define HARNESS_STRANGER "vm0/dev/b"
#define HARNESS_TARGET "vm0/dev/target" /* receives HostEventSignalled / HostMessage */

#define HARNESS_RAM_SIZE (1u << 20)
/* Where the tests put each VP's pages: SIMP, SIEFP. */
#define HARNESS_SIMP(vp) (0x10000u + 0x2000u * (vp))
#define HARNESS_SIEFP(vp) (0x11000u + 0x2000u * (vp))

/* Received messages are kept alive per client (see harness_recv()). */
#define HARNESS_INBOXES 4

typedef struct {
    rt_client_t *client;
    rt_msg_t msg;
    bool held;
} harness_inbox_t;

/* At most this many VPs in a split harness. */
#define HARNESS_MAX_VPS 8

typedef struct {
    rt_t *rt;
    rt_executor_t *ex;
    /* Split (SYNIC_HARNESS_SPLIT=1 in the environment): the synic as the
     * partition runs it, its central actor on ex and each VP's actor on an
     * executor of its own; the VP's MSRs and hypercalls go to that actor,
     * everything else to the central one. */
    bool split;
    rt_executor_t *vp_ex[HARNESS_MAX_VPS];
    fake_partition_t *partition;
    rt_client_t *vp, *device, *stranger, *target;
    synic_config_t cfg;
    char last_error[512];
    harness_inbox_t inboxes[HARNESS_INBOXES];
    size_t n_inboxes;
} harness_t;

/* The host TSC frequency, measured against CLOCK_MONOTONIC. */
uint64_t harness_tsc_khz(void);

/* Starts a synic for vp_count VPs (queue_limit 0: the default), with the
 * reference time starting now, whole or split as the environment says.
 * harness_start() returns NULL on error; harness_new() fails the test
 * (synic_harness_expect.c, with the other Criterion steps below). */
harness_t *harness_start(uint32_t vp_count, uint32_t queue_limit);
harness_t *harness_new(uint32_t vp_count, uint32_t queue_limit);
void harness_destroy(harness_t **h);

/* A synic request from client c; a success reply is left in *reply (if
 * not NULL: release it). */
int harness_request(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req, rt_msg_t *reply);
/* The same request sent one-way; returns rt_send()'s result. */
int harness_send(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req);

/* A guest RDMSR / WRMSR on VP vp: 0, 1 for a #GP, or an error. */
int harness_rdmsr(harness_t *h, uint32_t vp, uint32_t index, uint64_t *value);
int harness_wrmsr(harness_t *h, uint32_t vp, uint32_t index, uint64_t value);
/* A hypercall on VP vp: 0 with the guest's RAX in *rax, or an error. */
int harness_hypercall(harness_t *h, uint32_t vp, uint64_t control, uint64_t input,
                      uint64_t *rax);

int harness_post(harness_t *h, rt_client_t *c, uint32_t vp, uint32_t sint, uint32_t type,
                 const void *payload, size_t len);
/* Port changes: split, each returns once every VP's actor has taken the
 * change, which central sends them before it answers but which may reach
 * them after what the test sends next. */
int harness_new_guest_port(harness_t *h, rt_client_t *c, uint32_t vp, uint32_t sint,
                           uint32_t flag, uint64_t *handle);
int harness_signal_guest_port(harness_t *h, rt_client_t *c, uint64_t handle);
/* sint < 0 keeps the port's SINT. */
int harness_retarget_guest_port(harness_t *h, rt_client_t *c, uint64_t handle, uint32_t vp,
                                int sint);
int harness_unregister_guest_port(harness_t *h, rt_client_t *c, uint64_t handle);
int harness_register_host_port(harness_t *h, rt_client_t *c, bool message,
                               uint32_t connection_id, Vmm__Vtl minimum_vtl, const char *target,
                               uint64_t *handle);
int harness_unregister_host_port(harness_t *h, rt_client_t *c, bool message, uint64_t handle);
int harness_register_monitor(harness_t *h, rt_client_t *c, uint32_t monitor_id,
                             uint32_t connection_id, uint64_t *handle);
int harness_unregister_monitor(harness_t *h, rt_client_t *c, uint64_t handle);
int harness_set_monitor_page(harness_t *h, rt_client_t *c, bool set, uint64_t gpa);
/* A HypercallStatus request (SignalEvent or HandlePostMessage): 0 with
 * its status in *status, or an error. */
int harness_status_request(harness_t *h, Vmm__Synic__Request *req, uint32_t *status);

/* ---- The guest's side (Criterion assertions on failure) ------------------- */

/* Writes an MSR and expects no #GP. */
void harness_wrmsr_ok(harness_t *h, uint32_t vp, uint32_t index, uint64_t value);
uint64_t harness_rdmsr_ok(harness_t *h, uint32_t vp, uint32_t index);
/* SCONTROL enabled, SIMP and SIEFP at HARNESS_SIMP(vp) / HARNESS_SIEFP(vp). */
void harness_enable_synic(harness_t *h, uint32_t vp);
/* SINTn unmasked with vector. */
void harness_unmask(harness_t *h, uint32_t vp, uint32_t sint, uint32_t vector);
/* The message slot of (vp, sint) in HARNESS_SIMP(vp). */
void harness_read_slot(harness_t *h, uint32_t vp, uint32_t sint, uint8_t slot[256]);
/* Frees the slot as a guest does (type 0), then writes EOM if the pending
 * flag was set; returns whether it was. */
bool harness_free_slot(harness_t *h, uint32_t vp, uint32_t sint);

/* The next MSI must come within two seconds and be this VP's vector. */
void harness_expect_msi(harness_t *h, uint32_t vp, uint32_t vector);
/* No MSI may come within ms. */
void harness_expect_no_msi(harness_t *h, int ms);

/* The next message to c within timeout_ms, or NULL; valid until the next
 * harness_recv() for c or the harness's end. */
const Vmm__Envelope *harness_recv(harness_t *h, rt_client_t *c, int timeout_ms);

/* A value of the synic's introspection tree, "name" or "vpN/name", parsed
 * as a number (decimal or 0x hex); -1 when absent. Split, "vpN/name" is
 * VP N's actor's, the ports and monitors the central actor's, and a
 * counter the sum over all its actors. */
long long harness_inspect(harness_t *h, const char *path);

#endif
