#define _GNU_SOURCE /* strdup */
#include "actors/vp/vp.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/synic/synic.h"
#include "actors/vp/vp_state.h"

/* How long a VP waits for a device's answer before it gives up on the
 * access (a read then sees all ones). */
#define S_EFER_LMA (1ull << 10)
#define S_DEVICE_TIMEOUT_MS 5000
/* A device in another process: past this its host is as good as lost (the
 * partition notices a silent host in about 3.25 s). */
#define S_REMOTE_TIMEOUT_MS 3500
/* Unregistered addresses logged one by one before the log goes quiet. */
#define S_MAX_LOGGED 32
/* How long a VP waits for a device to complete an access it deferred
 * before it gives up on it (a read then sees all ones). */
#define S_DEFERRED_TIMEOUT_MS 10000
/* The runtime timer of that wait. */
#define S_DEFERRED_TIMER 1
/* What s_access() returns for an access the device deferred. */
#define S_DEFERRED 1

typedef struct {
    bool mmio;
    uint64_t start, len;
    char *actor;
    bool posted, remote, lost, halt_if_lost;
} s_route_t;

/* KVM's exit reasons counted one by one; later ones count as the last. */
#define S_EXIT_REASONS 64

typedef struct {
    uint64_t exits, io_exits, mmio_exits, kicks, device_calls, posted_writes;
    uint64_t unregistered_reads, unregistered_writes, device_errors, refused;
    uint64_t msr_exits, hypercalls, deferred;
    uint64_t by_reason[S_EXIT_REASONS]; /* KVM_EXIT_*, for operators (vmm ctl stats) */
} s_stats_t;

/* An access a device deferred (IoDeferred): the exit it belongs to waits,
 * without running the guest, for the device's IoCompleted. */
typedef struct {
    bool active;
    bool waiting; /* for IoCompleted; false: it came, the exit goes on */
    uint64_t token;
    char *actor; /* the device: only its IoCompleted counts */
    bool halt_if_lost;
    uint64_t address;
    uint8_t *data; /* where a read's bytes go, in the run area */
    uint32_t size;
    bool write;
    uint32_t next; /* of a string port access: the iteration after it */
} s_deferred_t;

typedef struct {
    vp_config_t cfg;
    char *partition;
    char *synic; /* NULL: no Hyper-V interface */
    int fd;
    struct kvm_run *run;
    size_t run_size;
    bool running;
    /* KVM finishes an I/O or MMIO exit only on the next KVM_RUN. */
    bool needs_completion;
    /* Set by kick (another thread), taken before each KVM_RUN: a kick that
     * lands while the VP is busy outside KVM_RUN (s_complete() clears
     * immediate_exit) is not lost. */
    atomic_bool kicked;
    char *owner; /* the sender of Run, told about halts */
    s_route_t *routes;
    size_t n_routes;
    struct {
        bool mmio;
        uint64_t address;
    } logged[S_MAX_LOGGED];
    size_t n_logged;
    /* A hardware breakpoint just reported: single-step past it once, with
     * breakpoints off, before arming them again (platform.md). */
    bool step_over;
    struct kvm_guest_debug debug;
    /* The vCPU as created, for the partition's Reset. */
    vp_state_buf_t *initial;
    s_deferred_t io;
    /* The VM's power action (PowerRequest), kept until the partition
     * resets: a VP that was not running when it came halts with it as
     * soon as it runs. Action 0: none. */
    Vmm__Devices__PowerAction power;
    int exit_code; /* -1: none */
    s_stats_t stats;
} vp_t;

/* The kick (another thread) and the VP both write it: atomically. */
static void s_immediate_exit(vp_t *vp, uint8_t value)
{
    __atomic_store_n(&vp->run->immediate_exit, value, __ATOMIC_SEQ_CST);
}

/* ---- Halts ---------------------------------------------------------------- */

/* Finishes the exit KVM is in the middle of, so that state is whole: KVM
 * completes it on entry and returns at once with immediate_exit set. An
 * exit whose access a device deferred cannot be finished yet: its state is
 * that of before the instruction until the device answers. */
static void s_complete(vp_t *vp)
{
    if (!vp->needs_completion || vp->io.active)
        return;
    s_immediate_exit(vp, 1);
    if (ioctl(vp->fd, KVM_RUN, 0) == 0 || errno == EINTR)
        vp->needs_completion = false;
    s_immediate_exit(vp, 0);
}

static void s_halt(rt_actor_t *self, Vmm__Vp__Halted *h)
{
    vp_t *vp = rt_actor_state(self);
    s_complete(vp);
    vp->running = false;
    h->vp_index = vp->cfg.index;
    Vmm__Vp__Event ev = VMM__VP__EVENT__INIT;
    ev.event_case = VMM__VP__EVENT__EVENT_HALTED;
    ev.halted = h;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_EVENT;
    env.vp_event = &ev;
    int rc = vp->owner ? rt_send(self, vp->owner, &env) : -ENOENT;
    if (rc)
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot report a halt to %s: %s",
               vp->owner ? vp->owner : "nobody", strerror(-rc));
}

#define S_HALT(self, field, CASE, value)                                                     \
    do {                                                                                     \
        Vmm__Vp__Halted h_ = VMM__VP__HALTED__INIT;                                          \
        h_.reason_case = VMM__VP__HALTED__REASON_##CASE;                                     \
        h_.field = (value);                                                                  \
        s_halt((self), &h_);                                                                 \
    } while (0)

static void s_halt_hypervisor(rt_actor_t *self, int err, const char *what)
{
    char text[128];
    snprintf(text, sizeof text, "%s: %s", what, strerror(err));
    Vmm__Vp__HypervisorFailure f = VMM__VP__HYPERVISOR_FAILURE__INIT;
    f.os_error = err;
    f.text = text;
    rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s", text);
    S_HALT(self, hypervisor, HYPERVISOR, &f);
}

static void s_halt_invalid(rt_actor_t *self, const char *text)
{
    Vmm__Vp__InvalidVmState s = VMM__VP__INVALID_VM_STATE__INIT;
    s.text = (char *)text;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "%s", text);
    S_HALT(self, invalid_vm_state, INVALID_VM_STATE, &s);
}

/* Halts with the VM's power action. */
static void s_halt_power(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    if (vp->power == VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET) {
        Vmm__Vp__Reset r = VMM__VP__RESET__INIT;
        S_HALT(self, reset, RESET, &r);
        return;
    }
    Vmm__Vp__PowerOff p = VMM__VP__POWER_OFF__INIT;
    if (vp->exit_code >= 0) {
        p.opt_exit_code_case = VMM__VP__POWER_OFF__OPT_EXIT_CODE_EXIT_CODE;
        p.exit_code = (uint32_t)vp->exit_code;
    }
    S_HALT(self, power_off, POWER_OFF, &p);
}

/* ---- Device routing --------------------------------------------------------- */

static const s_route_t *s_route(const vp_t *vp, bool mmio, uint64_t address, uint32_t size)
{
    for (size_t i = 0; i < vp->n_routes; i++) {
        const s_route_t *r = &vp->routes[i];
        if (r->mmio == mmio && address >= r->start && address - r->start < r->len &&
            size <= r->len - (address - r->start))
            return r;
    }
    return NULL;
}

static void s_note_unregistered(rt_actor_t *self, bool mmio, uint64_t address, bool write)
{
    vp_t *vp = rt_actor_state(self);
    if (write)
        vp->stats.unregistered_writes++;
    else
        vp->stats.unregistered_reads++;
    for (size_t i = 0; i < vp->n_logged; i++)
        if (vp->logged[i].mmio == mmio && vp->logged[i].address == address)
            return;
    if (vp->n_logged == S_MAX_LOGGED)
        return;
    vp->logged[vp->n_logged].mmio = mmio;
    vp->logged[vp->n_logged++].address = address;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN,
           "%s 0x%llx: no device registered it (reads are all ones, writes dropped)%s",
           mmio ? "MMIO address" : "port", (unsigned long long)address,
           vp->n_logged == S_MAX_LOGGED ? "; further addresses are not logged" : "");
}

/* What a device answered: a read's bytes go to out; a deferral's token to
 * *token, and the reply function returns S_DEFERRED. */
typedef struct {
    uint8_t *out; /* NULL for a write */
    uint32_t size;
    uint64_t token;
} s_answer_t;

static int s_take_answer(void *arg, const Vmm__Envelope *reply)
{
    s_answer_t *a = arg;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR)
        return -EIO;
    if (!a->out && reply->body_case == VMM__ENVELOPE__BODY_ACK)
        return 0;
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY)
        return -EPROTO;
    const Vmm__Devices__Reply *r = reply->device_reply;
    if (r->result_case == VMM__DEVICES__REPLY__RESULT_DEFERRED) {
        a->token = r->deferred->token;
        return S_DEFERRED;
    }
    const Vmm__Devices__ReadResult *res =
        !a->out                                                   ? NULL
        : r->result_case == VMM__DEVICES__REPLY__RESULT_READ_IO   ? r->read_io
        : r->result_case == VMM__DEVICES__REPLY__RESULT_READ_MMIO ? r->read_mmio
                                                                  : NULL;
    if (!res || res->data.len != a->size)
        return -EPROTO;
    memcpy(a->out, res->data.data, a->size);
    return 0;
}

static void s_device_failed(rt_actor_t *self, const char *actor, uint64_t address, int rc)
{
    vp_t *vp = rt_actor_state(self);
    vp->stats.device_errors++;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "%s at 0x%llx: %s", actor,
           (unsigned long long)address,
           rc == -EIO ? "the device answered with an error" : strerror(-rc));
}

/* Halts on an access to a device the VM cannot do without, which is gone:
 * why says how it went. */
static void s_halt_required(rt_actor_t *self, const char *actor, uint64_t address,
                            const char *why)
{
    char text[192];
    snprintf(text, sizeof text, "%s at 0x%llx: the VM cannot do without this device, and %s",
             actor, (unsigned long long)address, why);
    s_halt_invalid(self, text);
}

static void s_on_deferred_timeout(rt_actor_t *self, uint64_t id);

/* The device deferred the access: the exit waits for its IoCompleted, at
 * most S_DEFERRED_TIMEOUT_MS. Returns S_DEFERRED. */
static int s_wait_deferred(rt_actor_t *self, const s_route_t *r, uint64_t address,
                           uint8_t *data, uint32_t size, bool write, uint64_t token)
{
    vp_t *vp = rt_actor_state(self);
    char *actor = strdup(r->actor);
    if (!actor) {
        s_device_failed(self, r->actor, address, -ENOMEM);
        if (!write)
            memset(data, 0xff, size);
        return 0;
    }
    vp->stats.deferred++;
    vp->io = (s_deferred_t){.active = true, .waiting = true, .token = token, .actor = actor,
                            .halt_if_lost = r->halt_if_lost, .address = address,
                            .data = data, .size = size, .write = write};
    rt_timer_set(self, S_DEFERRED_TIMER,
                 rt_now_ns(self) + (uint64_t)S_DEFERRED_TIMEOUT_MS * 1000000u,
                 s_on_deferred_timeout);
    return S_DEFERRED;
}

/* One guest access of size bytes at address: data is what a write writes
 * or where a read's result goes. Returns 0 when done (or failed: a read
 * then sees all ones), S_DEFERRED when the device answers later. */
static int s_access(rt_actor_t *self, bool mmio, uint64_t address, uint8_t *data,
                    uint32_t size, bool write)
{
    vp_t *vp = rt_actor_state(self);
    const s_route_t *r = s_route(vp, mmio, address, size);
    if (!r || r->lost) {
        if (!write)
            memset(data, 0xff, size);
        if (!r) {
            s_note_unregistered(self, mmio, address, write);
            return 0;
        }
        s_halt_required(self, r->actor, address, "its host is lost");
        return 0;
    }
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    Vmm__Devices__ReadIo rio = VMM__DEVICES__READ_IO__INIT;
    Vmm__Devices__WriteIo wio = VMM__DEVICES__WRITE_IO__INIT;
    Vmm__Devices__ReadMmio rmm = VMM__DEVICES__READ_MMIO__INIT;
    Vmm__Devices__WriteMmio wmm = VMM__DEVICES__WRITE_MMIO__INIT;
    ProtobufCBinaryData bytes = {size, data};
    if (mmio && write) {
        wmm.vp_index = vp->cfg.index, wmm.address = address, wmm.data = bytes;
        wmm.posted = r->posted;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_MMIO, req.write_mmio = &wmm;
    } else if (mmio) {
        rmm.vp_index = vp->cfg.index, rmm.address = address, rmm.size = size;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_MMIO, req.read_mmio = &rmm;
    } else if (write) {
        wio.vp_index = vp->cfg.index, wio.port = (uint32_t)address, wio.data = bytes;
        wio.posted = r->posted;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO, req.write_io = &wio;
    } else {
        rio.vp_index = vp->cfg.index, rio.port = (uint32_t)address, rio.size = size;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_IO, req.read_io = &rio;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;

    int rc, timeout = r->remote ? S_REMOTE_TIMEOUT_MS : S_DEVICE_TIMEOUT_MS;
    s_answer_t answer = {.out = write ? NULL : data, .size = size};
    if (write && r->posted) {
        vp->stats.posted_writes++;
        rc = rt_send(self, r->actor, &env);
    } else {
        vp->stats.device_calls++;
        rc = rt_call_with(self, r->actor, &env, timeout, s_take_answer, &answer);
    }
    if (rc == S_DEFERRED)
        return s_wait_deferred(self, r, address, data, size, write, answer.token);
    if (rc) {
        s_device_failed(self, r->actor, address, rc);
        if (!write)
            memset(data, 0xff, size);
        if (rc == -ETIMEDOUT && r->halt_if_lost) {
            char why[48];
            snprintf(why, sizeof why, "it did not answer in %d ms", timeout);
            s_halt_required(self, r->actor, address, why);
        }
    }
    return 0;
}

/* ---- Exits ---------------------------------------------------------------- */

/* ---- The synic's MSRs and hypercalls ------------------------------------------ */

typedef struct {
    bool ok;
    uint64_t value;
    bool gp;
} s_msr_reply_t;

static int s_take_synic(void *arg, const Vmm__Envelope *reply)
{
    s_msr_reply_t *r = arg;
    if (reply->body_case != VMM__ENVELOPE__BODY_SYNIC_REPLY)
        return reply->body_case == VMM__ENVELOPE__BODY_ERROR ? -EIO : -EPROTO;
    const Vmm__Synic__Reply *sr = reply->synic_reply;
    if (sr->result_case == VMM__SYNIC__REPLY__RESULT_MSR_RESULT) {
        r->value = sr->msr_result->value;
        r->gp = sr->msr_result->gp;
    } else if (sr->result_case == VMM__SYNIC__REPLY__RESULT_HYPERCALL_RESULT) {
        r->value = sr->hypercall_result->rax;
    } else {
        return -EPROTO;
    }
    r->ok = true;
    return 0;
}

static int s_call_synic(rt_actor_t *self, Vmm__Synic__Request *req, s_msr_reply_t *out)
{
    vp_t *vp = rt_actor_state(self);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    int rc = rt_call_with(self, vp->synic, &env, S_DEVICE_TIMEOUT_MS, s_take_synic, out);
    if (rc) {
        vp->stats.device_errors++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "%s: %s", vp->synic,
               rc == -EIO ? "it answered with an error" : strerror(-rc));
    }
    return rc;
}

/* A synthetic MSR (the filter sends every one in 0x40000000-0x400000ff
 * here): the synic's, or #GP without one. */
static void s_exit_msr(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    struct kvm_run *run = vp->run;
    vp->stats.msr_exits++;
    vp->needs_completion = true;
    s_msr_reply_t r = {.gp = true};
    if (vp->synic) {
        Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
        op.vp = vp->cfg.index;
        op.index = run->msr.index;
        op.write = run->exit_reason == KVM_EXIT_X86_WRMSR;
        op.value = run->msr.data;
        Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
        req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
        req.access_msr = &op;
        if (s_call_synic(self, &req, &r))
            r.gp = true;
    }
    run->msr.error = r.gp ? 1 : 0;
    if (!r.gp && run->exit_reason == KVM_EXIT_X86_RDMSR)
        run->msr.data = r.value;
}

/* The hypercall page's port read (`in eax`): the call's inputs are the
 * guest's registers, its result the read's value in 64-bit mode (the read
 * completes into RAX, zero-extended: a simple call's result has no bits
 * above 31), and EDX:EAX set after the read in 32-bit mode. At CPL 3 the
 * TLFS has hypercalls raise #UD. */
static void s_hypercall(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    vp->stats.hypercalls++;
    struct kvm_run *run = vp->run;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (vp->cfg.sync_regs) {
        regs = run->s.regs.regs;
        sregs = run->s.regs.sregs;
    } else if (ioctl(vp->fd, KVM_GET_REGS, &regs) < 0 ||
               ioctl(vp->fd, KVM_GET_SREGS, &sregs) < 0) {
        s_halt_hypervisor(self, errno, "reading a hypercall's registers");
        return;
    }
    vp->needs_completion = true;
    if (sregs.cs.dpl != 0) {
        s_complete(vp);
        struct kvm_vcpu_events ev = {0};
        if (ioctl(vp->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
            ev.exception.injected = 1;
            ev.exception.nr = 6; /* #UD */
            ev.exception.has_error_code = 0;
            ev.flags = 0;
            ioctl(vp->fd, KVM_SET_VCPU_EVENTS, &ev);
        }
        return;
    }
    /* The TLFS's calling conventions: x64's in registers, or in 32-bit
     * mode register pairs: EDX:EAX the control, EBX:ECX the input, EDI:ESI
     * the output; the result in EDX:EAX. */
    bool x64 = (sregs.efer & S_EFER_LMA) && sregs.cs.l;
    Vmm__Synic__Hypercall op = VMM__SYNIC__HYPERCALL__INIT;
    op.vp = vp->cfg.index;
    op.control = x64 ? regs.rcx : (regs.rdx & 0xffffffffu) << 32 | (uint32_t)regs.rax;
    op.input = x64 ? regs.rdx : (regs.rbx & 0xffffffffu) << 32 | (uint32_t)regs.rcx;
    op.output = x64 ? regs.r8 : (regs.rdi & 0xffffffffu) << 32 | (uint32_t)regs.rsi;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_HYPERCALL;
    req.hypercall = &op;
    s_msr_reply_t r = {0};
    if (s_call_synic(self, &req, &r))
        r.value = 0x6; /* HV_STATUS_ACCESS_DENIED: the synic did not answer */
    uint32_t low = (uint32_t)r.value;
    memcpy((uint8_t *)run + run->io.data_offset, &low, sizeof low);
    if (x64 && !(r.value >> 32))
        return; /* the next KVM_RUN completes the read into RAX */
    /* The read completes first (it moves RIP past the `in`); then RAX. */
    s_complete(vp);
    if (ioctl(vp->fd, KVM_GET_REGS, &regs) < 0) {
        s_halt_hypervisor(self, errno, "reading registers after a hypercall");
        return;
    }
    if (x64) {
        regs.rax = r.value;
    } else {
        regs.rax = (uint32_t)r.value;
        regs.rdx = r.value >> 32;
    }
    if (ioctl(vp->fd, KVM_SET_REGS, &regs) < 0)
        s_halt_hypervisor(self, errno, "writing a hypercall's result");
}

/* The port accesses of the exit, from iteration first on (a string
 * instruction makes count of them), until one is deferred. */
static void s_io_from(rt_actor_t *self, uint32_t first)
{
    vp_t *vp = rt_actor_state(self);
    struct kvm_run *run = vp->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset + (size_t)first * run->io.size;
    bool write = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = first; vp->running && i < run->io.count; i++, data += run->io.size)
        if (s_access(self, false, run->io.port, data, run->io.size, write) == S_DEFERRED) {
            vp->io.next = i + 1;
            return;
        }
}

static void s_exit_io(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    struct kvm_run *run = vp->run;
    if (vp->synic && run->io.port == SYNIC_HYPERCALL_PORT &&
        run->io.direction == KVM_EXIT_IO_IN && run->io.size == 4 && run->io.count == 1 &&
        run->io.data_offset <= vp->run_size - 4) {
        s_hypercall(self);
        return;
    }
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;
    if (run->io.data_offset > vp->run_size || bytes > vp->run_size - run->io.data_offset) {
        s_halt_invalid(self, "KVM reported port data outside the run area");
        return;
    }
    vp->stats.io_exits++;
    vp->needs_completion = true;
    s_io_from(self, 0);
}

static void s_exit_mmio(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    struct kvm_run *run = vp->run;
    vp->stats.mmio_exits++;
    uint32_t len = run->mmio.len <= sizeof run->mmio.data ? run->mmio.len : sizeof run->mmio.data;
    vp->needs_completion = true;
    s_access(self, true, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

static void s_exit_internal_error(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    struct kvm_run *run = vp->run;
    char text[96];
    if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
        snprintf(text, sizeof text, "KVM internal error, suberror %u", run->internal.suberror);
        s_halt_invalid(self, text);
        return;
    }
    struct kvm_regs regs = {0};
    ioctl(vp->fd, KVM_GET_REGS, &regs);
    Vmm__Vp__EmulationFailure f = VMM__VP__EMULATION_FAILURE__INIT;
    f.rip = regs.rip;
    if (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) {
        f.instruction.data = run->emulation_failure.insn_bytes;
        f.instruction.len = run->emulation_failure.insn_size <= 15 ? run->emulation_failure.insn_size
                                                                   : 15;
    }
    snprintf(text, sizeof text, "the instruction emulator cannot run the instruction at 0x%llx",
             (unsigned long long)regs.rip);
    f.text = text;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "%s", text);
    S_HALT(self, emulation_failure, EMULATION_FAILURE, &f);
}

static int s_apply_debug(vp_t *vp, bool breakpoints)
{
    struct kvm_guest_debug d = vp->debug;
    if (!breakpoints) {
        d.control &= ~(uint32_t)KVM_GUESTDBG_USE_HW_BP;
        d.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
    }
    return ioctl(vp->fd, KVM_SET_GUEST_DEBUG, &d) < 0 ? -errno : 0;
}

static void s_exit_debug(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    uint64_t dr6 = vp->run->debug.arch.dr6;
    if (vp->step_over) {
        /* The step past a reported breakpoint: arm them again. */
        vp->step_over = false;
        int rc = s_apply_debug(vp, true);
        if (rc)
            s_halt_hypervisor(self, -rc, "KVM_SET_GUEST_DEBUG");
        if (!(vp->debug.control & KVM_GUESTDBG_SINGLESTEP))
            return; /* not asked to stop after each step */
        Vmm__Vp__SingleStep s = VMM__VP__SINGLE_STEP__INIT;
        S_HALT(self, single_step, SINGLE_STEP, &s);
        return;
    }
    for (int i = 0; i < 4; i++) {
        if (!(dr6 & (1ull << i)) || !(vp->debug.arch.debugreg[7] & (3ull << (2 * i))))
            continue;
        uint64_t dr7 = vp->debug.arch.debugreg[7];
        Vmm__Vp__HardwareBreakpoint bp = VMM__VP__HARDWARE_BREAKPOINT__INIT;
        bp.address = vp->debug.arch.debugreg[i];
        bp.type = (Vmm__Vp__BreakpointType)((dr7 >> (16 + 4 * i)) & 3);
        bp.size = (Vmm__Vp__BreakpointSize)((dr7 >> (18 + 4 * i)) & 3);
        Vmm__Vp__HwBreak hb = VMM__VP__HW_BREAK__INIT;
        hb.breakpoint = &bp;
        vp->step_over = true;
        int rc = s_apply_debug(vp, false);
        if (rc) {
            s_halt_hypervisor(self, -rc, "KVM_SET_GUEST_DEBUG");
            return;
        }
        S_HALT(self, hw_break, HW_BREAK, &hb);
        return;
    }
    Vmm__Vp__SingleStep s = VMM__VP__SINGLE_STEP__INIT;
    S_HALT(self, single_step, SINGLE_STEP, &s);
}

static void s_exit_system_event(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    switch (vp->run->system_event.type) {
    case KVM_SYSTEM_EVENT_RESET: {
        Vmm__Vp__Reset r = VMM__VP__RESET__INIT;
        S_HALT(self, reset, RESET, &r);
        break;
    }
    case KVM_SYSTEM_EVENT_SHUTDOWN: {
        Vmm__Vp__PowerOff p = VMM__VP__POWER_OFF__INIT;
        S_HALT(self, power_off, POWER_OFF, &p);
        break;
    }
    default: {
        char text[64];
        snprintf(text, sizeof text, "system event %u", vp->run->system_event.type);
        s_halt_invalid(self, text);
    }
    }
}

static void s_handle_exit(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    vp->stats.exits++;
    uint32_t reason = vp->run->exit_reason;
    vp->stats.by_reason[reason < S_EXIT_REASONS ? reason : S_EXIT_REASONS - 1]++;
    switch (reason) {
    case KVM_EXIT_IO:
        s_exit_io(self);
        break;
    case KVM_EXIT_MMIO:
        s_exit_mmio(self);
        break;
    case KVM_EXIT_SHUTDOWN: {
        Vmm__Vp__TripleFault t = VMM__VP__TRIPLE_FAULT__INIT;
        t.vtl = VMM__VTL__VTL0;
        S_HALT(self, triple_fault, TRIPLE_FAULT, &t);
        break;
    }
    case KVM_EXIT_INTERNAL_ERROR:
        s_exit_internal_error(self);
        break;
    case KVM_EXIT_FAIL_ENTRY: {
        char text[96];
        snprintf(text, sizeof text, "VM entry failed, reason 0x%llx",
                 (unsigned long long)vp->run->fail_entry.hardware_entry_failure_reason);
        s_halt_invalid(self, text);
        break;
    }
    case KVM_EXIT_DEBUG:
        s_exit_debug(self);
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        s_exit_system_event(self);
        break;
    case KVM_EXIT_X86_RDMSR:
    case KVM_EXIT_X86_WRMSR:
        s_exit_msr(self);
        break;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT: /* the in-kernel APIC waits; a stray one just resumes */
        break;
    default: {
        char text[64];
        snprintf(text, sizeof text, "unexpected exit reason %u", vp->run->exit_reason);
        s_halt_hypervisor(self, ENOTSUP, text);
    }
    }
}

/* ---- Deferred accesses ---------------------------------------------------------- */

static void s_deferred_end(vp_t *vp)
{
    free(vp->io.actor);
    vp->io = (s_deferred_t){0};
}

/* The deferred access is done: the rest of its exit's accesses follow
 * (the iterations of a string instruction), and the guest runs on. */
static void s_io_resume(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    uint32_t next = vp->io.next;
    bool port = vp->run->exit_reason == KVM_EXIT_IO;
    s_deferred_end(vp);
    if (port)
        s_io_from(self, next);
}

/* The device's answer came, or it failed (status < 0: a read sees all
 * ones). The exit goes on when the VP runs. */
static void s_deferred_done(rt_actor_t *self, int status, const ProtobufCBinaryData *data)
{
    vp_t *vp = rt_actor_state(self);
    rt_timer_cancel(self, S_DEFERRED_TIMER);
    vp->io.waiting = false;
    if (!status && !vp->io.write) {
        if (data->len == vp->io.size)
            memcpy(vp->io.data, data->data, data->len);
        else
            status = -EPROTO;
    }
    if (status) {
        s_device_failed(self, vp->io.actor, vp->io.address, status);
        if (!vp->io.write)
            memset(vp->io.data, 0xff, vp->io.size);
    }
}

static void s_on_deferred_timeout(rt_actor_t *self, uint64_t id)
{
    (void)id;
    vp_t *vp = rt_actor_state(self);
    if (!vp->io.active || !vp->io.waiting)
        return;
    char why[64];
    snprintf(why, sizeof why, "it did not complete a deferred access in %d ms",
             S_DEFERRED_TIMEOUT_MS);
    uint64_t address = vp->io.address;
    char *actor = vp->io.halt_if_lost ? strdup(vp->io.actor) : NULL;
    s_deferred_done(self, -ETIMEDOUT, NULL);
    if (actor) {
        s_halt_required(self, actor, address, why);
        free(actor);
    }
}

/* Runs the vCPU until it halts or a message needs the thread. */
static rt_run_t s_run(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    while (vp->running) {
        if (vp->io.active && vp->io.waiting)
            return RT_RUN_IDLE; /* its IoCompleted, or a Stop, comes as a message */
        if (vp->io.active) {
            s_io_resume(self);
            continue;
        }
        /* Posted writes leave before the guest runs on: another VP, or the
         * device through another path, must not see them late. */
        rt_flush(self);
        if (atomic_exchange(&vp->kicked, false)) {
            s_immediate_exit(vp, 0);
            vp->stats.kicks++;
            return RT_RUN_AGAIN; /* a message waits */
        }
        int rc = ioctl(vp->fd, KVM_RUN, 0);
        int err = errno;
        vp->needs_completion = false;
        if (rc < 0 && (err == EINTR || err == EAGAIN)) {
            atomic_store(&vp->kicked, false);
            s_immediate_exit(vp, 0);
            vp->stats.kicks++;
            return RT_RUN_AGAIN;
        }
        if (rc < 0) {
            s_halt_hypervisor(self, err, "KVM_RUN");
            break;
        }
        s_handle_exit(self);
    }
    return RT_RUN_IDLE;
}

static void s_kick(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    atomic_store(&vp->kicked, true);
    s_immediate_exit(vp, 1);
}

/* ---- Requests ---------------------------------------------------------------- */

static bool s_from_partition(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    if (!strcmp(msg->sender, vp->partition))
        return true;
    vp->stats.refused++;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "%s may not do that: only %s may",
           msg->sender, vp->partition);
    return false;
}

static int s_ack(rt_actor_t *self, const Vmm__Envelope *msg)
{
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

static int s_on_run(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    if (vp->running)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__BUSY, "vp %u is already running",
                              vp->cfg.index);
    const char *report_to = msg->vp_request->run->report_to;
    char *owner = strdup(report_to && *report_to ? report_to : msg->sender);
    if (!owner)
        return -ENOMEM;
    free(vp->owner);
    vp->owner = owner;
    vp->running = true;
    int rc = s_ack(self, msg);
    if (vp->power) /* the VM is off or resetting until the partition resets */
        s_halt_power(self);
    return rc;
}

static int s_on_stop(rt_actor_t *self, const Vmm__Envelope *msg, bool cancel)
{
    vp_t *vp = rt_actor_state(self);
    if (vp->running) {
        if (cancel) {
            Vmm__Vp__Cancelled c = VMM__VP__CANCELLED__INIT;
            S_HALT(self, cancel, CANCEL, &c);
        } else {
            Vmm__Vp__Stopped s = VMM__VP__STOPPED__INIT;
            S_HALT(self, stop, STOP, &s);
        }
    }
    return s_ack(self, msg);
}

static int s_busy_if_running(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    if (!vp->running)
        return 0;
    rt_reply_error(self, msg, VMM__ERROR_CODE__BUSY, "vp %u is running: stop it first",
                   vp->cfg.index);
    return -EBUSY;
}

/* State and debugging need a stopped VP, and VTL0 (KVM has no VTLs): true
 * when they can go ahead, else the request is answered. */
static bool s_stopped_vtl0(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Vtl vtl)
{
    if (s_busy_if_running(self, msg))
        return false;
    if (vtl == VMM__VTL__VTL0)
        return true;
    rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED, "only VTL0 exists on KVM");
    return false;
}

static int s_breakpoint(const Vmm__Vp__HardwareBreakpoint *bp, int slot, struct kvm_guest_debug *d,
                        char *err, size_t errlen)
{
    if (!bp)
        return 0;
    if (bp->type != VMM__VP__BREAKPOINT_TYPE__EXECUTE) {
        /* platform.md: data watchpoints never fire on this KVM. */
        snprintf(err, errlen, "dr%d: only execute breakpoints are supported", slot);
        return -ENOTSUP;
    }
    if (bp->size != VMM__VP__BREAKPOINT_SIZE__SIZE_1) {
        snprintf(err, errlen, "dr%d: an execute breakpoint is 1 byte", slot);
        return -EINVAL;
    }
    d->arch.debugreg[slot] = bp->address;
    d->arch.debugreg[7] |= 2ull << (2 * slot); /* global enable; R/W and LEN 0: execute */
    d->control |= KVM_GUESTDBG_USE_HW_BP;
    return 0;
}

static int s_on_set_debug_state(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Vp__SetDebugState *op)
{
    vp_t *vp = rt_actor_state(self);
    if (!s_stopped_vtl0(self, msg, op->vtl))
        return 0;
    struct kvm_guest_debug d = {0};
    char err[96] = "";
    const Vmm__Vp__DebugState *st = op->state;
    if (st) {
        d.control = KVM_GUESTDBG_ENABLE | (st->single_step ? KVM_GUESTDBG_SINGLESTEP : 0);
        const Vmm__Vp__HardwareBreakpoint *bps[4] = {st->dr0, st->dr1, st->dr2, st->dr3};
        for (int i = 0; i < 4; i++) {
            int rc = s_breakpoint(bps[i], i, &d, err, sizeof err);
            if (rc)
                return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
        }
    }
    vp->debug = d;
    vp->step_over = false;
    s_complete(vp);
    int rc = s_apply_debug(vp, true);
    if (rc)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                              "KVM_SET_GUEST_DEBUG failed: %s", strerror(-rc));
    return rt_reply_ack(self, msg);
}

static int s_on_get_state(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Vp__GetState *op)
{
    vp_t *vp = rt_actor_state(self);
    if (!s_stopped_vtl0(self, msg, op->vtl))
        return 0;
    s_complete(vp);
    vp_state_buf_t *buf = malloc(sizeof *buf);
    if (!buf)
        return -ENOMEM;
    char err[128] = "";
    int rc = vp_state_read(vp->fd, op, buf, err, sizeof err);
    if (rc) {
        rc = rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
    } else {
        Vmm__Vp__Reply reply = VMM__VP__REPLY__INIT;
        reply.result_case = VMM__VP__REPLY__RESULT_STATE;
        reply.state = &buf->state;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_VP_REPLY;
        env.vp_reply = &reply;
        rc = rt_reply(self, msg, &env);
    }
    free(buf);
    return rc;
}

static int s_on_set_state(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Vp__SetState *op)
{
    vp_t *vp = rt_actor_state(self);
    if (!s_stopped_vtl0(self, msg, op->vtl))
        return 0;
    if (!op->state)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no state given");
    if (vp->io.active)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__BUSY,
                              "vp %u waits for %s to complete an access", vp->cfg.index,
                              vp->io.actor);
    s_complete(vp);
    char err[128] = "";
    int rc = vp_state_write(vp->fd, op->state, err, sizeof err);
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
    return rt_reply_ack(self, msg);
}

static void s_free_routes(s_route_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(routes[i].actor);
    free(routes);
}

static int s_on_set_io_routes(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Vp__SetIoRoutes *op)
{
    vp_t *vp = rt_actor_state(self);
    if (!s_from_partition(self, msg))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "only %s sets routes", vp->partition);
    s_route_t *routes = calloc(op->n_routes ? op->n_routes : 1, sizeof *routes);
    if (!routes)
        return -ENOMEM;
    for (size_t i = 0; i < op->n_routes; i++) {
        const Vmm__Vp__IoRoute *in = op->routes[i];
        routes[i] = (s_route_t){.mmio = in->mmio, .start = in->start, .len = in->len,
                                .actor = strdup(in->actor), .posted = in->posted_writes,
                                .remote = in->remote, .lost = in->lost,
                                .halt_if_lost = in->halt_if_lost};
        if (!routes[i].actor) {
            s_free_routes(routes, i);
            return -ENOMEM;
        }
    }
    s_free_routes(vp->routes, vp->n_routes);
    vp->routes = routes;
    vp->n_routes = op->n_routes;
    return s_ack(self, msg);
}

static int s_on_vp_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    const Vmm__Vp__Request *req = msg->vp_request;
    switch (req->op_case) {
    case VMM__VP__REQUEST__OP_RUN:
        return s_on_run(self, msg);
    case VMM__VP__REQUEST__OP_STOP:
        return s_on_stop(self, msg, false);
    case VMM__VP__REQUEST__OP_CANCEL:
        return s_on_stop(self, msg, true);
    case VMM__VP__REQUEST__OP_YIELD:
        /* Arriving kicked the vCPU out; run goes on after this turn. */
        return s_ack(self, msg);
    case VMM__VP__REQUEST__OP_FLUSH_ASYNC_REQUESTS:
        s_complete(vp);
        return s_ack(self, msg);
    case VMM__VP__REQUEST__OP_SET_DEBUG_STATE:
        return s_on_set_debug_state(self, msg, req->set_debug_state);
    case VMM__VP__REQUEST__OP_IS_VTL_INSPECTABLE: {
        Vmm__Vp__VtlInspectable v = VMM__VP__VTL_INSPECTABLE__INIT;
        v.inspectable = req->is_vtl_inspectable->vtl == VMM__VTL__VTL0;
        Vmm__Vp__Reply reply = VMM__VP__REPLY__INIT;
        reply.result_case = VMM__VP__REPLY__RESULT_VTL_INSPECTABLE;
        reply.vtl_inspectable = &v;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_VP_REPLY;
        env.vp_reply = &reply;
        return rt_reply(self, msg, &env);
    }
    case VMM__VP__REQUEST__OP_GET_STATE:
        return s_on_get_state(self, msg, req->get_state);
    case VMM__VP__REQUEST__OP_SET_STATE:
        return s_on_set_state(self, msg, req->set_state);
    case VMM__VP__REQUEST__OP_SET_IO_ROUTES:
        return s_on_set_io_routes(self, msg, req->set_io_routes);
    default:
        vp->stats.refused++;
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "no vp operation set");
    }
}

/* From the partition: its Reset (back to the state the VP was created in,
 * not running, no debugging), and LINT1 pulses. */
static int s_on_partition_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    Vmm__Partition__Request__OpCase op = msg->partition_request->op_case;
    if (op != VMM__PARTITION__REQUEST__OP_RESET && op != VMM__PARTITION__REQUEST__OP_PULSE_LINT) {
        vp->stats.refused++;
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "a vp takes only Reset and PulseLint from its partition");
    }
    if (!s_from_partition(self, msg))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "only %s may", vp->partition);
    if (op == VMM__PARTITION__REQUEST__OP_PULSE_LINT) {
        /* The partition checked it is LINT1, the NMI line; it sends it
         * one-way, so a failure is logged. */
        if (ioctl(vp->fd, KVM_NMI) < 0) {
            int err = errno;
            rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "KVM_NMI: %s", strerror(err));
            return msg->request_id ? rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                                                    "KVM_NMI: %s", strerror(err))
                                   : 0;
        }
        return s_ack(self, msg);
    }
    if (s_busy_if_running(self, msg))
        return 0;
    rt_timer_cancel(self, S_DEFERRED_TIMER);
    s_deferred_end(vp); /* the reset ends it: its exit completes with any data */
    s_complete(vp);
    memset(&vp->debug, 0, sizeof vp->debug);
    vp->step_over = false;
    vp->power = VMM__DEVICES__POWER_ACTION__POWER_ACTION_UNSPECIFIED;
    char err[128] = "";
    int rc = s_apply_debug(vp, true);
    if (!rc)
        rc = vp_state_write(vp->fd, &vp->initial->state, err, sizeof err);
    else
        snprintf(err, sizeof err, "KVM_SET_GUEST_DEBUG failed: %s", strerror(-rc));
    if (rc)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "vp %u: %s", vp->cfg.index,
                              err);
    return rt_reply_ack(self, msg);
}

/* A device's answer to an access it deferred. */
static int s_on_io_completed(rt_actor_t *self, const Vmm__Envelope *msg,
                             const Vmm__Devices__IoCompleted *done)
{
    vp_t *vp = rt_actor_state(self);
    if (!vp->io.active || !vp->io.waiting || strcmp(msg->sender, vp->io.actor) ||
        done->token != vp->io.token) {
        vp->stats.refused++;
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
               "refused an IoCompleted from %s (token %llu): no access of it waits", msg->sender,
               (unsigned long long)done->token);
        return msg->request_id ? rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                                "no access waits for token %llu",
                                                (unsigned long long)done->token)
                               : 0;
    }
    s_deferred_done(self, done->error ? rt_errno_of(done->error->code) : 0, &done->data);
    return s_ack(self, msg);
}

/* Power actions reach every VP through the partition; devices complete
 * their deferred accesses. */
static int s_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    vp_t *vp = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    if (ev->event_case == VMM__DEVICES__EVENT__EVENT_IO_COMPLETED)
        return s_on_io_completed(self, msg, ev->io_completed);
    if (ev->event_case != VMM__DEVICES__EVENT__EVENT_POWER_REQUEST) {
        vp->stats.refused++;
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "a vp takes only power requests and completed accesses");
    }
    if (!s_from_partition(self, msg))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "only %s sends power actions", vp->partition);
    const Vmm__Devices__PowerRequest *pr = ev->power_request;
    vp->power = pr->action;
    vp->exit_code = pr->opt_exit_code_case ? (int)pr->exit_code : -1;
    if (vp->running)
        s_halt_power(self);
    return 0;
}

/* ---- Lifecycle ---------------------------------------------------------------- */

static int s_init(rt_actor_t *self, void *arg)
{
    const vp_config_t *cfg = arg;
    vp_t *vp = calloc(1, sizeof *vp);
    int rc = -ENOMEM;
    if (!vp)
        goto fail_close;
    vp->cfg = *cfg;
    vp->fd = cfg->vcpu_fd;
    vp->run_size = cfg->run_size;
    vp->partition = strdup(cfg->partition ? cfg->partition : "");
    if (!vp->partition)
        goto fail_free;
    vp->cfg.partition = vp->partition;
    if (cfg->synic && !(vp->synic = strdup(cfg->synic)))
        goto fail_partition;
    vp->cfg.synic = vp->synic;
    vp->run = mmap(NULL, cfg->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cfg->vcpu_fd, 0);
    if (vp->run == MAP_FAILED) {
        rc = -errno;
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot map the vCPU run area: %s",
               strerror(-rc));
        goto fail_partition;
    }
    vp->cfg.sync_regs = cfg->sync_regs && cfg->synic;
    if (vp->cfg.sync_regs)
        vp->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    vp->initial = malloc(sizeof *vp->initial);
    Vmm__Vp__GetState all = VMM__VP__GET_STATE__INIT;
    char err[128] = "";
    rc = vp->initial ? vp_state_read(vp->fd, &all, vp->initial, err, sizeof err) : -ENOMEM;
    if (rc) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot read the vCPU's state: %s", err);
        goto fail_unmap;
    }
    rt_actor_set_state(self, vp);
    return 0;

fail_unmap:
    free(vp->initial);
    munmap(vp->run, cfg->run_size);
fail_partition:
    free(vp->synic);
    free(vp->partition);
fail_free:
    free(vp);
fail_close:
    close(cfg->vcpu_fd);
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    vp_t *vp = rt_actor_state(self);
    if (!vp)
        return;
    munmap(vp->run, vp->run_size);
    close(vp->fd);
    s_free_routes(vp->routes, vp->n_routes);
    s_deferred_end(vp);
    free(vp->initial);
    free(vp->owner);
    free(vp->synic);
    free(vp->partition);
    free(vp);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    vp_t *vp = rt_actor_state(self);
    const s_stats_t *s = &vp->stats;
    rt_inspect_add(node, "index", "%u", vp->cfg.index);
    rt_inspect_add(node, "running", "%s", vp->running ? "true" : "false");
    rt_inspect_add(node, "exits", "%llu", (unsigned long long)s->exits);
    rt_inspect_add(node, "io_exits", "%llu", (unsigned long long)s->io_exits);
    rt_inspect_add(node, "mmio_exits", "%llu", (unsigned long long)s->mmio_exits);
    rt_inspect_add(node, "kicks", "%llu", (unsigned long long)s->kicks);
    rt_inspect_add(node, "device_calls", "%llu", (unsigned long long)s->device_calls);
    rt_inspect_add(node, "posted_writes", "%llu", (unsigned long long)s->posted_writes);
    rt_inspect_add(node, "unregistered_reads", "%llu", (unsigned long long)s->unregistered_reads);
    rt_inspect_add(node, "unregistered_writes", "%llu",
                   (unsigned long long)s->unregistered_writes);
    rt_inspect_add(node, "device_errors", "%llu", (unsigned long long)s->device_errors);
    rt_inspect_add(node, "refused", "%llu", (unsigned long long)s->refused);
    rt_inspect_add(node, "msr_exits", "%llu", (unsigned long long)s->msr_exits);
    rt_inspect_add(node, "hypercalls", "%llu", (unsigned long long)s->hypercalls);
    rt_inspect_add(node, "deferred", "%llu", (unsigned long long)s->deferred);
    rt_inspect_add(node, "waiting_for", "%s",
                   vp->io.active && vp->io.waiting ? vp->io.actor : "");
    static const char *const names[] = {
        [KVM_EXIT_IO] = "io",           [KVM_EXIT_MMIO] = "mmio",
        [KVM_EXIT_HLT] = "hlt",         [KVM_EXIT_SHUTDOWN] = "shutdown",
        [KVM_EXIT_INTR] = "intr",       [KVM_EXIT_DEBUG] = "debug",
        [KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
        [KVM_EXIT_SYSTEM_EVENT] = "system_event", [KVM_EXIT_X86_RDMSR] = "rdmsr",
        [KVM_EXIT_X86_WRMSR] = "wrmsr",
    };
    Vmm__Rt__InspectNode *reasons = rt_inspect_add(node, "exit_reasons", "%llu",
                                                   (unsigned long long)s->exits);
    for (uint32_t r = 0; reasons && r < S_EXIT_REASONS; r++) {
        if (!s->by_reason[r])
            continue;
        const char *name = r < sizeof names / sizeof names[0] ? names[r] : NULL;
        char other[16];
        snprintf(other, sizeof other, "reason_%u", r);
        rt_inspect_add(reasons, name ? name : other, "%llu",
                       (unsigned long long)s->by_reason[r]);
    }
    Vmm__Rt__InspectNode *routes = rt_inspect_add(node, "routes", "%zu", vp->n_routes);
    for (size_t i = 0; routes && i < vp->n_routes; i++) {
        const s_route_t *r = &vp->routes[i];
        rt_inspect_add(routes, r->actor, "%s 0x%llx+0x%llx%s", r->mmio ? "mmio" : "port",
                       (unsigned long long)r->start, (unsigned long long)r->len,
                       r->posted ? " posted" : "");
    }
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_VP_REQUEST, s_on_vp_request},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_on_device_event},
    {VMM__ENVELOPE__BODY_PARTITION_REQUEST, s_on_partition_request},
};

const rt_actor_ops_t vp_ops = {
    .kind = "vp",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
    .run = s_run,
    .kick = s_kick,
};
