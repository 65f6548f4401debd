/* The gdb actor (gdb.h). */
#define _GNU_SOURCE /* accept4 */
#include "actors/gdb/gdb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "actors/gdb/gdb_x86.h"
#include "actors/gdb/rsp.h"

#define S_CALL_MS 5000
#define S_SIGTRAP 5
#define S_SIGINT 2
#define S_SIGKILL 9
/* The reply buffer: the largest packet's worth of hex and framing. */
#define S_OUT (2 * RSP_MAX_PACKET + 16)

typedef struct {
    bool used;
    int type; /* Vmm__Vp__BreakpointType: execute */
    int size; /* Vmm__Vp__BreakpointSize: 1 byte */
    uint64_t address;
} s_slot_t;

typedef struct {
    char *vm, *owner, *partition, *self;
    uint32_t n_vps;
    int listen_fd, conn;
    rsp_reader_t rd;
    char out[S_OUT];
    size_t out_len; /* the last packet sent, for a '-' */
    bool no_ack;
    uint32_t g_vp, c_vp; /* 'Hg' and 'Hc' */
    bool *running;       /* run by this actor, not halted since */
    bool ours;           /* the VPs are this actor's to run (else the owner's) */
    bool reporting;      /* resumed: the next halt is a stop to report */
    bool report_pending; /* the stop is reported once every VP has halted */
    bool interrupted;    /* Ctrl-C asked for the stop */
    char stop[80];       /* the last stop reply ('?') */
    s_slot_t slots[4];
    struct {
        uint64_t packets, bad_packets, connections, refused_connections, halts_passed;
    } stats;
} gdb_t;

/* ---- Sending ----------------------------------------------------------------- */

static void s_write_all(gdb_t *g, const char *p, size_t n)
{
    while (n && g->conn >= 0) {
        ssize_t w = write(g->conn, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) /* gone, or stuck past SO_SNDTIMEO: the session ends */
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void s_send_len(gdb_t *g, const char *payload, size_t len)
{
    g->out_len = rsp_frame(payload, len, g->out, sizeof g->out);
    s_write_all(g, g->out, g->out_len);
}

static void s_send(gdb_t *g, const char *payload)
{
    s_send_len(g, payload, strlen(payload));
}

static void s_error(gdb_t *g, int err)
{
    char e[8];
    snprintf(e, sizeof e, "E%02x", (unsigned)(err < 0 ? -err : err) & 0xff);
    s_send(g, e);
}

/* ---- Requests to the VM ----------------------------------------------------- */

static const char *s_vp(gdb_t *g, uint32_t vp, char *buf, size_t size)
{
    snprintf(buf, size, "%s/vp/%u", g->vm, vp);
    return buf;
}

/* A call whose reply must be body kind `want` (0: an Ack); the reply is
 * the caller's on success. */
static int s_call(rt_actor_t *self, const char *to, Vmm__Envelope *env, int want, rt_msg_t *out)
{
    char why[320];
    int rc = rt_call_expect(self, to, env, want ? want : VMM__ENVELOPE__BODY_ACK, out, S_CALL_MS,
                            why, sizeof why);
    if (rc)
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s", why);
    return rc;
}

static int s_vp_call(rt_actor_t *self, uint32_t vp, Vmm__Vp__Request *req, int want, rt_msg_t *out)
{
    char name[64];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = req;
    return s_call(self, s_vp(rt_actor_state(self), vp, name, sizeof name), &env, want, out);
}

static int s_get_state(rt_actor_t *self, uint32_t vp, const Vmm__Vp__StateKind *kinds, size_t n,
                       rt_msg_t *reply, Vmm__Vp__VpState **st)
{
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.kinds = (Vmm__Vp__StateKind *)kinds;
    get.n_kinds = n;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    req.get_state = &get;
    int rc = s_vp_call(self, vp, &req, VMM__ENVELOPE__BODY_VP_REPLY, reply);
    if (rc)
        return rc;
    if (reply->env->vp_reply->result_case != VMM__VP__REPLY__RESULT_STATE) {
        rt_msg_release(reply);
        return -EIO;
    }
    *st = reply->env->vp_reply->state;
    return 0;
}

static int s_set_state(rt_actor_t *self, uint32_t vp, Vmm__Vp__VpState *st)
{
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    set.state = st;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &set;
    return s_vp_call(self, vp, &req, 0, NULL);
}

/* Guest physical memory through the partition, one call per 64 KiB. */
static int s_phys(rt_actor_t *self, bool write, uint64_t gpa, void *buf, size_t len)
{
    gdb_t *g = rt_actor_state(self);
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    Vmm__Devices__ReadGuestMemory r = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    if (write) {
        w.gpa = gpa;
        w.data.data = buf;
        w.data.len = len;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &w;
        return s_call(self, g->partition, &env, 0, NULL);
    }
    r.gpa = gpa;
    r.length = (uint32_t)len;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    req.read_guest_memory = &r;
    rt_msg_t reply;
    int rc = s_call(self, g->partition, &env, VMM__ENVELOPE__BODY_DEVICE_REPLY, &reply);
    if (rc)
        return rc;
    const Vmm__Devices__Reply *d = reply.env->device_reply;
    if (d->result_case != VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY ||
        d->read_guest_memory->data.len != len)
        rc = -EIO;
    else
        memcpy(buf, d->read_guest_memory->data.data, len);
    rt_msg_release(&reply);
    return rc;
}

static int s_read_phys(void *arg, uint64_t gpa, void *buf, size_t len)
{
    return s_phys(arg, false, gpa, buf, len);
}

/* Reads or writes len bytes at a virtual address of the selected VP. */
static int s_virt(rt_actor_t *self, bool write, uint64_t gva, uint8_t *buf, size_t len)
{
    gdb_t *g = rt_actor_state(self);
    static const Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__CONTROL_REGISTERS};
    rt_msg_t reply;
    Vmm__Vp__VpState *st;
    int rc = s_get_state(self, g->g_vp, kinds, 1, &reply, &st);
    if (rc)
        return rc;
    if (!st->control_registers)
        rc = -EIO;
    while (!rc && len) {
        uint64_t gpa, left;
        rc = gdb_x86_translate(st->control_registers, gva, s_read_phys, self, &gpa, &left);
        size_t n = len < left ? len : (size_t)left;
        if (!rc)
            rc = s_phys(self, write, gpa, buf, n);
        gva += n;
        buf += n;
        len -= n;
    }
    rt_msg_release(&reply);
    return rc;
}

/* ---- Running and stopping ----------------------------------------------------- */

static bool s_any_running(const gdb_t *g)
{
    for (uint32_t i = 0; i < g->n_vps; i++)
        if (g->running[i])
            return true;
    return false;
}

/* Tells every VP its debug state: the breakpoints, and a single step for
 * step_vp (UINT32_MAX: none); clear drops all of it. */
static int s_apply_debug(rt_actor_t *self, uint32_t step_vp, bool clear)
{
    gdb_t *g = rt_actor_state(self);
    Vmm__Vp__HardwareBreakpoint bps[4];
    Vmm__Vp__HardwareBreakpoint *slot[4] = {NULL};
    for (int i = 0; i < 4; i++) {
        if (!g->slots[i].used)
            continue;
        vmm__vp__hardware_breakpoint__init(&bps[i]);
        bps[i].address = g->slots[i].address;
        bps[i].type = g->slots[i].type;
        bps[i].size = g->slots[i].size;
        slot[i] = &bps[i];
    }
    Vmm__Vp__DebugState state = VMM__VP__DEBUG_STATE__INIT;
    state.dr0 = slot[0];
    state.dr1 = slot[1];
    state.dr2 = slot[2];
    state.dr3 = slot[3];
    Vmm__Vp__SetDebugState set = VMM__VP__SET_DEBUG_STATE__INIT;
    set.state = clear ? NULL : &state;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_DEBUG_STATE;
    req.set_debug_state = &set;
    for (uint32_t vp = 0; vp < g->n_vps; vp++) {
        state.single_step = vp == step_vp;
        int rc = s_vp_call(self, vp, &req, 0, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs one VP, its halts coming here, or to the owner when given back. */
static int s_run_vp(rt_actor_t *self, uint32_t vp, bool to_owner)
{
    gdb_t *g = rt_actor_state(self);
    Vmm__Vp__Run run = VMM__VP__RUN__INIT;
    run.report_to = to_owner ? g->owner : g->self;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_RUN;
    req.run = &run;
    int rc = s_vp_call(self, vp, &req, 0, NULL);
    if (!rc && !to_owner)
        g->running[vp] = true;
    return rc == -EBUSY ? 0 : rc;
}

/* 'c' and 's': every VP runs, or the one stepping alone. */
static void s_resume(rt_actor_t *self, bool step)
{
    gdb_t *g = rt_actor_state(self);
    uint32_t vp = g->c_vp < g->n_vps ? g->c_vp : g->g_vp;
    int rc = s_apply_debug(self, step ? vp : UINT32_MAX, false);
    for (uint32_t i = 0; !rc && i < g->n_vps; i++)
        if (!step || i == vp)
            rc = s_run_vp(self, i, false);
    if (rc) {
        s_error(g, rc);
        return;
    }
    g->reporting = true;
    g->report_pending = false;
    g->interrupted = false;
}

/* All-stop: once one VP stopped, the others are stopped too. Each halts
 * (its Halted comes here as an event, perhaps after the Ack), so the stop
 * is reported once every VP's halt arrived, and none arrives late. */
static void s_stop_others(rt_actor_t *self)
{
    gdb_t *g = rt_actor_state(self);
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_STOP;
    req.stop = &stop;
    for (uint32_t i = 0; i < g->n_vps; i++)
        if (g->running[i])
            s_vp_call(self, i, &req, 0, NULL); /* its halt follows as an event */
}

/* Gives the VPs back to the owner: no debugging, running, halts to it. */
static void s_release(rt_actor_t *self)
{
    gdb_t *g = rt_actor_state(self);
    if (!g->ours)
        return;
    s_stop_others(self);
    s_apply_debug(self, UINT32_MAX, true);
    for (uint32_t i = 0; i < g->n_vps; i++) {
        g->running[i] = false;
        s_run_vp(self, i, true);
    }
    g->ours = false;
    g->reporting = g->report_pending = false;
}

static void s_halted(rt_actor_t *self, const Vmm__Envelope *msg)
{
    gdb_t *g = rt_actor_state(self);
    const Vmm__Vp__Halted *h = msg->vp_event->halted;
    if (h->vp_index >= g->n_vps)
        return;
    g->running[h->vp_index] = false;
    switch (h->reason_case) {
    case VMM__VP__HALTED__REASON_STOP:
    case VMM__VP__HALTED__REASON_SINGLE_STEP:
    case VMM__VP__HALTED__REASON_HW_BREAK:
        break;
    default: {
        /* Not the debugger's: the owner ends or resets the VM. */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_VP_EVENT;
        env.vp_event = msg->vp_event;
        rt_send(self, g->owner, &env);
        g->stats.halts_passed++;
        if (!g->ours)
            return;
        char why[16];
        if (h->reason_case == VMM__VP__HALTED__REASON_POWER_OFF)
            snprintf(why, sizeof why, "W%02x",
                     h->power_off->opt_exit_code_case ? h->power_off->exit_code & 0xff : 0);
        else
            snprintf(why, sizeof why, "X%02x", S_SIGKILL);
        g->ours = false;
        g->reporting = g->report_pending = false;
        snprintf(g->stop, sizeof g->stop, "%s", why);
        s_send(g, why);
        return;
    }
    }
    if (g->reporting) { /* the first halt since gdb resumed: the stop it is told of */
        bool intr = h->reason_case == VMM__VP__HALTED__REASON_STOP && g->interrupted;
        snprintf(g->stop, sizeof g->stop, "T%02xthread:%x;", intr ? S_SIGINT : S_SIGTRAP,
                 h->vp_index + 1);
        g->g_vp = g->c_vp = h->vp_index;
        g->reporting = false;
        g->report_pending = true;
        s_stop_others(self);
    }
    if (g->report_pending && !s_any_running(g)) {
        g->report_pending = false;
        s_send(g, g->stop);
    }
}

static int s_on_vp_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (msg->vp_event->event_case == VMM__VP__EVENT__EVENT_HALTED)
        s_halted(self, msg);
    return 0;
}

/* ---- Packets ------------------------------------------------------------------ */

static void s_registers(rt_actor_t *self, const char *p)
{
    gdb_t *g = rt_actor_state(self);
    static const Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__GENERAL_REGISTERS,
                                               VMM__VP__STATE_KIND__SEGMENTS,
                                               VMM__VP__STATE_KIND__XSAVE};
    rt_msg_t reply;
    Vmm__Vp__VpState *st;
    int rc = s_get_state(self, g->g_vp, kinds, 3, &reply, &st);
    if (rc) {
        s_error(g, rc);
        return;
    }
    uint8_t bytes[GDB_X86_REGS_BYTES];
    gdb_x86_pack(st, bytes);
    char hex[2 * GDB_X86_REGS_BYTES + 1];
    uint64_t n;
    const char *end;
    size_t off, size;
    if (*p == 'g') {
        rsp_hex(bytes, sizeof bytes, hex);
        s_send(g, hex);
    } else if (*p == 'p') {
        if (rsp_hex_number(p + 1, &n, &end) || n > UINT32_MAX || gdb_x86_reg((unsigned)n, &off, &size))
            s_send(g, "E16");
        else {
            rsp_hex(bytes + off, size, hex);
            s_send(g, hex);
        }
    } else if (*p == 'P' && !rsp_hex_number(p + 1, &n, &end) && *end == '=' &&
               n <= UINT32_MAX && !gdb_x86_reg((unsigned)n, &off, &size) &&
               strlen(end + 1) == 2 * size && st->general_registers) {
        uint8_t value[16];
        rc = rsp_unhex(end + 1, size, value) ? -EINVAL
                                              : gdb_x86_set(st->general_registers, (unsigned)n,
                                                            value, size);
        Vmm__Vp__VpState set = VMM__VP__VP_STATE__INIT;
        set.general_registers = st->general_registers;
        if (!rc)
            rc = s_set_state(self, g->g_vp, &set);
        rc ? s_error(g, rc) : s_send(g, "OK");
    } else if (*p == 'G' && strlen(p + 1) == 2 * GDB_X86_REGS_BYTES && st->general_registers) {
        uint8_t in[GDB_X86_REGS_BYTES];
        rc = rsp_unhex(p + 1, sizeof in, in) ? -EINVAL : 0;
        /* The general registers, rip and eflags; the rest is read-only. */
        for (unsigned r = 0; !rc && r <= GDB_X86_REG_EFLAGS; r++) {
            gdb_x86_reg(r, &off, &size);
            rc = gdb_x86_set(st->general_registers, r, in + off, size);
        }
        Vmm__Vp__VpState set = VMM__VP__VP_STATE__INIT;
        set.general_registers = st->general_registers;
        if (!rc)
            rc = s_set_state(self, g->g_vp, &set);
        rc ? s_error(g, rc) : s_send(g, "OK");
    } else {
        s_send(g, "E16");
    }
    rt_msg_release(&reply);
}

/* m addr,len | M addr,len:hex | X addr,len:binary */
static void s_memory(rt_actor_t *self, char *p, size_t plen)
{
    gdb_t *g = rt_actor_state(self);
    uint64_t addr, len;
    const char *end;
    char kind = *p;
    if (rsp_hex_number(p + 1, &addr, &end) || *end != ',' || rsp_hex_number(end + 1, &len, &end) ||
        len > RSP_MAX_PACKET / 2 || (kind == 'm' && *end) || (kind != 'm' && *end != ':')) {
        s_send(g, "E16");
        return;
    }
    uint8_t buf[RSP_MAX_PACKET / 2];
    int rc = 0;
    if (kind == 'M') {
        rc = strlen(end + 1) == 2 * len && !rsp_unhex(end + 1, len, buf) ? 0 : -EINVAL;
    } else if (kind == 'X') {
        size_t at = (size_t)(end + 1 - p);
        size_t n = rsp_unescape(p + at, plen - at);
        rc = n == len ? 0 : -EINVAL;
        if (!rc)
            memcpy(buf, p + at, n);
    }
    if (!rc && len)
        rc = s_virt(self, kind != 'm', addr, buf, len);
    if (rc) {
        s_error(g, rc == -EFAULT ? EFAULT : -rc);
        return;
    }
    if (kind != 'm') {
        s_send(g, "OK");
        return;
    }
    char hex[RSP_MAX_PACKET + 1];
    rsp_hex(buf, len, hex);
    s_send(g, hex);
}

/* Z/z type,addr,kind: breakpoints, in the debug registers. Software ones
 * go there too: with no int3 written, the guest never sees a #BP of
 * ours. Watchpoints are refused ("" to gdb, which then watches by single
 * steps): data breakpoints never fire on this KVM (platform.md). */
static void s_breakpoint(gdb_t *g, const char *p)
{
    bool insert = *p == 'Z';
    uint64_t type, addr, kind;
    const char *end;
    if (rsp_hex_number(p + 1, &type, &end) || *end != ',' ||
        rsp_hex_number(end + 1, &addr, &end) || *end != ',' ||
        rsp_hex_number(end + 1, &kind, &end)) {
        s_send(g, "E16");
        return;
    }
    if (type > 1) {
        s_send(g, "");
        return;
    }
    for (int i = 0; i < 4; i++) {
        s_slot_t *s = &g->slots[i];
        if (s->used && s->address == addr) {
            s->used = insert;
            s_send(g, "OK");
            return;
        }
    }
    for (int i = 0; insert && i < 4; i++) {
        if (g->slots[i].used)
            continue;
        g->slots[i] = (s_slot_t){true, VMM__VP__BREAKPOINT_TYPE__EXECUTE,
                                 VMM__VP__BREAKPOINT_SIZE__SIZE_1, addr};
        s_send(g, "OK");
        return;
    }
    s_send(g, insert ? "E1c" : "OK"); /* ENOSPC: four debug registers */
}

static void s_thread_select(gdb_t *g, const char *p)
{
    uint64_t t = 0;
    const char *end;
    bool any = !strcmp(p + 2, "0") || !strcmp(p + 2, "-1");
    if (!any && (rsp_hex_number(p + 2, &t, &end) || *end || !t || t > g->n_vps)) {
        s_send(g, "E16");
        return;
    }
    uint32_t vp = any ? UINT32_MAX : (uint32_t)(t - 1);
    if (p[1] == 'g')
        g->g_vp = any ? 0 : vp;
    else
        g->c_vp = vp;
    s_send(g, "OK");
}

static void s_query(rt_actor_t *self, const char *p)
{
    gdb_t *g = rt_actor_state(self);
    char buf[RSP_MAX_PACKET];
    if (!strncmp(p, "qSupported", 10)) {
        snprintf(buf, sizeof buf, "PacketSize=%x;qXfer:features:read+;QStartNoAckMode+",
                 RSP_MAX_PACKET);
        s_send(g, buf);
    } else if (!strncmp(p, "qXfer:features:read:target.xml:", 31)) {
        uint64_t off, len;
        const char *end;
        size_t total = strlen(gdb_x86_target_xml);
        if (rsp_hex_number(p + 31, &off, &end) || *end != ',' ||
            rsp_hex_number(end + 1, &len, &end) || off > total) {
            s_send(g, "E16");
            return;
        }
        size_t n = total - off < len ? total - off : (size_t)len;
        if (n > sizeof buf - 2)
            n = sizeof buf - 2;
        buf[0] = off + n < total ? 'm' : 'l';
        memcpy(buf + 1, gdb_x86_target_xml + off, n);
        s_send_len(g, buf, n + 1);
    } else if (!strncmp(p, "qXfer:", 6)) {
        s_send(g, "");
    } else if (!strcmp(p, "qfThreadInfo")) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "m");
        for (uint32_t i = 0; i < g->n_vps && n < sizeof buf - 16; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%x", i ? "," : "", i + 1);
        s_send(g, buf);
    } else if (!strcmp(p, "qsThreadInfo")) {
        s_send(g, "l");
    } else if (!strcmp(p, "qC")) {
        snprintf(buf, sizeof buf, "QC%x", g->g_vp + 1);
        s_send(g, buf);
    } else if (!strncmp(p, "qAttached", 9)) {
        s_send(g, "1");
    } else if (!strncmp(p, "qThreadExtraInfo,", 17)) {
        uint64_t t;
        const char *end;
        char text[32];
        if (rsp_hex_number(p + 17, &t, &end) || !t || t > g->n_vps) {
            s_send(g, "E16");
            return;
        }
        snprintf(text, sizeof text, "vp %u", (unsigned)(t - 1));
        rsp_hex((const uint8_t *)text, strlen(text), buf);
        s_send(g, buf);
    } else {
        s_send(g, "");
    }
}

static void s_kill(rt_actor_t *self)
{
    gdb_t *g = rt_actor_state(self);
    /* As QEMU's: the VM ends. A power request, then the VPs run to halt
     * with it, their halts to the owner. */
    Vmm__Devices__PowerRequest power = VMM__DEVICES__POWER_REQUEST__INIT;
    power.action = VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_POWER_REQUEST;
    ev.power_request = &power;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = &ev;
    s_call(self, g->partition, &env, 0, NULL);
    s_release(self);
}

static void s_packet(rt_actor_t *self, char *p, size_t len)
{
    gdb_t *g = rt_actor_state(self);
    g->stats.packets++;
    if (!g->ours && *p && strchr("gGpPmMXZzcsD?", *p)) {
        s_send(g, "E01"); /* the VM ran on without the debugger */
        return;
    }
    bool stopped = !s_any_running(g);
    switch (*p) {
    case '?':
        s_send(g, g->stop);
        return;
    case 'g':
    case 'G':
    case 'p':
    case 'P':
        stopped ? s_registers(self, p) : s_send(g, "E10");
        return;
    case 'm':
    case 'M':
    case 'X':
        stopped ? s_memory(self, p, len) : s_send(g, "E10");
        return;
    case 'Z':
    case 'z':
        s_breakpoint(g, p);
        return;
    case 'H':
        s_thread_select(g, p);
        return;
    case 'T': {
        uint64_t t;
        const char *end;
        s_send(g, !rsp_hex_number(p + 1, &t, &end) && t && t <= g->n_vps ? "OK" : "E16");
        return;
    }
    case 'c':
    case 's':
        if (p[1]) { /* resuming elsewhere: set rip first */
            s_send(g, "E16");
            return;
        }
        s_resume(self, *p == 's');
        return;
    case 'D':
        s_send(g, "OK");
        s_release(self);
        return;
    case 'k':
        s_kill(self);
        return;
    case 'q':
        s_query(self, p);
        return;
    case 'Q':
        if (!strcmp(p, "QStartNoAckMode")) {
            s_send(g, "OK");
            g->no_ack = true;
        } else {
            s_send(g, "");
        }
        return;
    default:
        s_send(g, ""); /* not supported: vCont, vMustReplyEmpty, ... */
    }
}

/* ---- The connection --------------------------------------------------------------- */

static void s_close_conn(rt_actor_t *self)
{
    gdb_t *g = rt_actor_state(self);
    if (g->conn < 0)
        return;
    rt_actor_unwatch_fd(self, g->conn);
    close(g->conn);
    g->conn = -1;
    /* The debugger went: the VM runs on without it. */
    s_release(self);
}

static void s_on_conn(rt_actor_t *self, int fd)
{
    gdb_t *g = rt_actor_state(self);
    uint8_t buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "the debugger went away");
        s_close_conn(self);
        return;
    }
    rt_actor_input(self, GDB_INPUT_BYTES, 0, buf, (size_t)n);
    for (ssize_t i = 0; i < n && g->conn >= 0; i++) {
        switch (rsp_feed(&g->rd, buf[i])) {
        case RSP_PACKET:
            if (!g->no_ack)
                s_write_all(g, "+", 1);
            s_packet(self, g->rd.data, g->rd.len);
            break;
        case RSP_BAD_PACKET:
            g->stats.bad_packets++;
            rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "a packet with a bad checksum");
            if (!g->no_ack)
                s_write_all(g, "-", 1);
            break;
        case RSP_NACK:
            s_write_all(g, g->out, g->out_len);
            break;
        case RSP_INTERRUPT:
            if (s_any_running(g)) {
                g->interrupted = true;
                s_stop_others(self);
            }
            break;
        default:
            break;
        }
    }
}

static void s_on_accept(rt_actor_t *self, int fd)
{
    gdb_t *g = rt_actor_state(self);
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    if (g->conn >= 0 || !g->ours) {
        g->stats.refused_connections++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "refused a second debugger");
        close(conn);
        return;
    }
    int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails on unix: fine */
    struct timeval tv = {5, 0}; /* a debugger that does not read ends its session */
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rt_actor_watch_fd(self, conn, s_on_conn)) {
        close(conn);
        return;
    }
    g->conn = conn;
    g->no_ack = false;
    rsp_reader_init(&g->rd);
    g->stats.connections++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "a debugger connected");
}

/* ---- Listening ------------------------------------------------------------------- */

int gdb_listen(const char *spec, char *where, size_t wherelen, char *err, size_t errlen)
{
    int fd = -1;
    if (!strncmp(spec, "unix:", 5) && spec[5]) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(spec + 5) >= sizeof a.sun_path) {
            snprintf(err, errlen, "%s: the path is too long for a socket", spec);
            return -ENAMETOOLONG;
        }
        strcpy(a.sun_path, spec + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        mode_t old = umask(0177);
        int rc = fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ? -errno : 0;
        umask(old);
        if (!rc && listen(fd, 1) < 0)
            rc = -errno;
        if (rc) {
            snprintf(err, errlen, "%s: %s", spec, strerror(-rc));
            if (fd >= 0)
                close(fd);
            return rc;
        }
        snprintf(where, wherelen, "%s", spec);
        return fd;
    }
    const char *colon = strncmp(spec, "tcp:", 4) ? NULL : strrchr(spec + 4, ':');
    if (!colon || colon == spec + 4) {
        snprintf(err, errlen, "%s: tcp:HOST:PORT or unix:PATH", spec);
        return -EINVAL;
    }
    char host[256], port[16];
    snprintf(host, sizeof host, "%.*s", (int)(colon - spec - 4), spec + 4);
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "%s: %s", spec, gai_strerror(gai));
        return -EINVAL;
    }
    int rc = 0;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0)
        rc = -errno;
    freeaddrinfo(res);
    struct sockaddr_storage a;
    socklen_t alen = sizeof a;
    char addr[INET6_ADDRSTRLEN] = "";
    if (!rc && getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "%s: %s", spec, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    unsigned p;
    if (a.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, addr, sizeof addr);
        p = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, addr, sizeof addr);
        p = ntohs(((struct sockaddr_in *)&a)->sin_port);
    }
    snprintf(where, wherelen, "tcp:%s:%u", addr, p);
    return fd;
}

/* ---- The actor ----------------------------------------------------------------------- */

static void s_free(gdb_t *g)
{
    free(g->vm);
    free(g->owner);
    free(g->partition);
    free(g->self);
    free(g->running);
    free(g);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const gdb_config_t *cfg = arg;
    gdb_t *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->vm = strdup(cfg->vm);
    g->owner = strdup(cfg->owner);
    g->self = strdup(rt_actor_name(self));
    g->partition = malloc(strlen(cfg->vm) + sizeof "/partition");
    g->running = calloc(cfg->n_vps ? cfg->n_vps : 1, sizeof *g->running);
    g->n_vps = cfg->n_vps;
    g->listen_fd = fcntl(cfg->listen_fd, F_DUPFD_CLOEXEC, 0);
    g->conn = -1;
    g->ours = true;
    snprintf(g->stop, sizeof g->stop, "T%02xthread:1;", S_SIGTRAP);
    int rc = g->listen_fd < 0 ? -errno : 0;
    if (!rc && !(g->vm && g->owner && g->self && g->partition && g->running))
        rc = -ENOMEM;
    if (!rc) {
        sprintf(g->partition, "%s/partition", cfg->vm);
        rt_actor_set_state(self, g);
        rc = rt_actor_watch_fd(self, g->listen_fd, s_on_accept);
    }
    if (rc) {
        rt_actor_set_state(self, NULL);
        if (g->listen_fd >= 0)
            close(g->listen_fd);
        s_free(g);
    }
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    gdb_t *g = rt_actor_state(self);
    if (g->conn >= 0)
        close(g->conn);
    rt_actor_unwatch_fd(self, g->listen_fd);
    close(g->listen_fd);
    s_free(g);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    gdb_t *g = rt_actor_state(self);
    rt_inspect_add(node, "connected", "%s", g->conn >= 0 ? "true" : "false");
    rt_inspect_add(node, "vps_ours", "%s", g->ours ? "true" : "false");
    rt_inspect_add(node, "packets", "%llu", (unsigned long long)g->stats.packets);
    rt_inspect_add(node, "bad_packets", "%llu", (unsigned long long)g->stats.bad_packets);
    rt_inspect_add(node, "connections", "%llu", (unsigned long long)g->stats.connections);
    rt_inspect_add(node, "refused_connections", "%llu",
                   (unsigned long long)g->stats.refused_connections);
    rt_inspect_add(node, "halts_passed", "%llu", (unsigned long long)g->stats.halts_passed);
    int n = 0;
    for (int i = 0; i < 4; i++)
        n += g->slots[i].used;
    rt_inspect_add(node, "breakpoints", "%d", n);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_VP_EVENT, s_on_vp_event},
};

const rt_actor_ops_t gdb_ops = {
    .kind = "gdb",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof s_handlers[0],
    .inspect = s_inspect,
};
