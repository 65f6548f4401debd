/*
 * The control actor: a running VM's control endpoint (`vmm run --control`,
 * `vmm ctl`, clients/python). Its mailbox listens on an ipc:// socket in a
 * folder only the user may enter, or on tcp:// under CURVE, and it is a
 * proxy (rt_actor_ops_t.forward): an operator addresses the VM's actors
 * by name ("vm0/vp/0", "vm0/partition", "vm0/synic", "vm0/dev/com1") with
 * their own protocols, and the control actor passes on what lies within
 * the operator's scope (control_refusal()) and answers with their replies.
 * What needs several actors at once is its own protocol
 * (proto/control.proto): pause and resume VPs, reset and power off the
 * VM, list the actors that make it up, snapshot it (through its owner).
 *
 * Who is an operator: whoever can reach the ipc:// socket (the file
 * system guards it), or over tcp:// a peer whose CURVE key is one of
 * operator_keys (the runtime admits those keys to the control actor's
 * name alone, and the control actor refuses every other key, a device
 * host's say, that the runtime admits to the VM's actors). Everything else
 * is refused with PERMISSION_DENIED, logged and counted (`denied` in its
 * Inspect). No request waits longer than CONTROL_TIMEOUT_MS for an actor,
 * and at most max_pending wait at once: beyond, a request is refused with
 * BUSY (counted, `busy` in its Inspect), so that operators sending faster
 * than the VM's actors answer cannot grow the control actor's memory.
 */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

/* The longest a request passed on, or one step of Pause and Resume, waits
 * for the actor that handles it. */
#define CONTROL_TIMEOUT_MS 5000
/* Requests passed on that may wait for their actors at once, by default. */
#define CONTROL_MAX_PENDING 256
/* The longest the VM's owner may take to write a snapshot. */
#define CONTROL_SNAPSHOT_TIMEOUT_MS 300000

typedef struct {
    const char *vm;    /* the VM's name, "vm0": it acts on "<vm>/..." only */
    const char *owner; /* the VM's owner, which runs the VPs and gets their
                          halts ("vm0/vmm") */
    uint32_t n_vps;
    /* Over tcp://: the operators' CURVE public keys (Z85); copied. */
    const char *const *operator_keys;
    size_t n_operator_keys;
    size_t max_pending; /* 0: CONTROL_MAX_PENDING */
} control_config_t;

/* Starts with arg a control_config_t *, copied by init. Name it
 * "<vm>/control". */
extern const rt_actor_ops_t control_ops;

/*
 * Whether an operator may send env to its receiver in the VM vm: NULL if
 * so, else why not (written into buf). The operator's scope: Inspect and
 * Ping for any actor of the VM; VPs' Stop, Yield, state and debug state;
 * the partition's queries, MSIs and yields; guest memory reads and writes
 * (the partition's); device registers; the synic's messages, events and
 * SINTs and its queries. Not what builds, configures or resets the VM,
 * hands out descriptors or guest memory's file, registers devices, or
 * speaks for a device or a VP; nor Terminate, or anything sent one-way
 * but Stop and Yield.
 */
const char *control_refusal(const char *vm, const Vmm__Envelope *env, char *buf, size_t size);

#endif
