/*
 * The gdb actor: gdb's remote serial protocol (rsp.h) on a VM's VP actors,
 * for `vmm run --gdb`. Each VP is a thread (VP i is thread i + 1); the VM
 * stops as a whole (all-stop): registers ('g', 'G', 'p', 'P') by the VPs'
 * GetState and SetState; memory ('m', 'M', 'X') at virtual addresses,
 * translated through the VP's page tables (gdb_x86.h) and read and
 * written by the partition's guest memory requests; breakpoints ('Z0',
 * 'Z1') in the four debug registers, by SetDebugState (watchpoints are
 * left to gdb, which single-steps: data breakpoints never fire on this
 * KVM); single step ('s') and continue ('c') by SetDebugState and
 * Run, the VPs' halts reported to this actor (Run.report_to); Ctrl-C by
 * Stop. A halt that is not the debugger's (power off, reset, a fault) goes
 * on to the VM's owner, which ends or resets the VM as without a debugger,
 * and gdb is told the program exited.
 *
 * The VPs start stopped: the VM's owner leaves them to this actor, and the
 * guest runs at gdb's first continue or step. One debugger at a time; when
 * it detaches or goes away, the VPs run on without it, their halts going
 * to the owner. The bytes it sends are recorded in a trace (input kind
 * GDB_INPUT_BYTES).
 */
#ifndef VMM_GDB_H
#define VMM_GDB_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

#define GDB_INPUT_BYTES 1

typedef struct {
    const char *vm;    /* "vm0" */
    const char *owner; /* the VM's owner, where other halts go ("vm0/vmm") */
    uint32_t n_vps;
    /* A listening stream socket (gdb_listen()); the actor listens on a
     * duplicate, the caller closes its own. */
    int listen_fd;
} gdb_config_t;

/* Starts with arg a gdb_config_t *, copied by init. Name it "<vm>/gdb". */
extern const rt_actor_ops_t gdb_ops;

/* Listens for gdb at "tcp:HOST:PORT" (PORT 0: any free one) or
 * "unix:PATH" (a socket made mode 0600). Returns the descriptor, or a
 * negative errno with a one-line reason in err; where it listens (the
 * port resolved) goes to where. */
int gdb_listen(const char *spec, char *where, size_t wherelen, char *err, size_t errlen);

#endif
