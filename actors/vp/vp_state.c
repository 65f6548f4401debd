#include "actors/vp/vp_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define S_MSR_TSC 0x10u

/* The MSRs saved and restored when GetState names none: what a 64-bit
 * guest's system calls and memory types depend on. */
static const uint32_t s_default_msrs[] = {
    0x174,      /* IA32_SYSENTER_CS */
    0x175,      /* IA32_SYSENTER_ESP */
    0x176,      /* IA32_SYSENTER_EIP */
    0x277,      /* IA32_PAT */
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* SFMASK */
    0xc0000102, /* KERNEL_GS_BASE */
};

static int __attribute__((format(printf, 4, 5)))
s_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int s_ioctl(int fd, unsigned long req, void *arg, const char *name, char *err,
                   size_t errlen)
{
    if (ioctl(fd, req, arg) >= 0)
        return 0;
    int rc = -errno;
    snprintf(err, errlen, "%s failed: %s", name, strerror(-rc));
    return rc;
}

/* ---- Segments: kvm_segment <-> the hvdef attribute layout ---------------- */

static uint32_t s_attributes(const struct kvm_segment *s)
{
    bool present = s->present && !s->unusable;
    return (s->type & 0xfu) | (uint32_t)(s->s & 1) << 4 | (uint32_t)(s->dpl & 3) << 5 |
           (uint32_t)present << 7 | (uint32_t)(s->avl & 1) << 12 | (uint32_t)(s->l & 1) << 13 |
           (uint32_t)(s->db & 1) << 14 | (uint32_t)(s->g & 1) << 15;
}

static void s_segment_out(const struct kvm_segment *in, Vmm__Vp__SegmentRegister *out)
{
    vmm__vp__segment_register__init(out);
    out->base_address = in->base;
    out->limit = in->limit;
    out->selector = in->selector;
    out->attributes = s_attributes(in);
}

static void s_segment_in(const Vmm__Vp__SegmentRegister *in, struct kvm_segment *out)
{
    uint32_t a = in->attributes;
    *out = (struct kvm_segment){
        .base = in->base_address,
        .limit = in->limit,
        .selector = (uint16_t)in->selector,
        .type = a & 0xf,
        .s = (a >> 4) & 1,
        .dpl = (a >> 5) & 3,
        .present = (a >> 7) & 1,
        .avl = (a >> 12) & 1,
        .l = (a >> 13) & 1,
        .db = (a >> 14) & 1,
        .g = (a >> 15) & 1,
        .unusable = !((a >> 7) & 1),
    };
}

/* ---- Reading ---------------------------------------------------------------- */

static bool s_wants(const Vmm__Vp__GetState *req, Vmm__Vp__StateKind kind)
{
    if (!req->n_kinds)
        return true;
    for (size_t i = 0; i < req->n_kinds; i++)
        if (req->kinds[i] == kind)
            return true;
    return false;
}

static int s_read_regs(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    struct kvm_regs r;
    int rc = s_ioctl(fd, KVM_GET_REGS, &r, "KVM_GET_REGS", err, errlen);
    if (rc)
        return rc;
    Vmm__Vp__GeneralRegisters *g = &b->general;
    vmm__vp__general_registers__init(g);
    g->rax = r.rax, g->rcx = r.rcx, g->rdx = r.rdx, g->rbx = r.rbx;
    g->rsp = r.rsp, g->rbp = r.rbp, g->rsi = r.rsi, g->rdi = r.rdi;
    g->r8 = r.r8, g->r9 = r.r9, g->r10 = r.r10, g->r11 = r.r11;
    g->r12 = r.r12, g->r13 = r.r13, g->r14 = r.r14, g->r15 = r.r15;
    g->rip = r.rip, g->rflags = r.rflags;
    b->state.general_registers = g;
    return 0;
}

static void s_fill_segments(const struct kvm_sregs *s, vp_state_buf_t *b)
{
    Vmm__Vp__Segments *out = &b->segments;
    vmm__vp__segments__init(out);
    const struct kvm_segment *in[8] = {&s->cs, &s->ds, &s->es, &s->fs,
                                       &s->gs, &s->ss, &s->tr, &s->ldt};
    Vmm__Vp__SegmentRegister **slot[8] = {&out->cs, &out->ds, &out->es, &out->fs,
                                          &out->gs, &out->ss, &out->tr, &out->ldtr};
    for (int i = 0; i < 8; i++) {
        s_segment_out(in[i], &b->seg[i]);
        *slot[i] = &b->seg[i];
    }
    for (int i = 0; i < 2; i++)
        vmm__vp__table_register__init(&b->tables[i]);
    b->tables[0].base_address = s->gdt.base, b->tables[0].limit = s->gdt.limit;
    b->tables[1].base_address = s->idt.base, b->tables[1].limit = s->idt.limit;
    out->gdtr = &b->tables[0];
    out->idtr = &b->tables[1];
    b->state.segments = out;
}

static void s_fill_control(const struct kvm_sregs *s, vp_state_buf_t *b)
{
    Vmm__Vp__ControlRegisters *c = &b->control;
    vmm__vp__control_registers__init(c);
    c->cr0 = s->cr0, c->cr2 = s->cr2, c->cr3 = s->cr3, c->cr4 = s->cr4;
    c->cr8 = s->cr8, c->efer = s->efer;
    b->state.control_registers = c;
}

static Vmm__Vp__MpState s_mp_state_out(uint32_t kvm)
{
    switch (kvm) {
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
    case KVM_MP_STATE_SIPI_RECEIVED:
        return VMM__VP__MP_STATE__WAIT_FOR_SIPI;
    case KVM_MP_STATE_HALTED:
        return VMM__VP__MP_STATE__HALTED;
    default:
        return VMM__VP__MP_STATE__RUNNING;
    }
}

static int s_read_activity(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    struct kvm_mp_state mp;
    struct kvm_vcpu_events ev;
    int rc = s_ioctl(fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE", err, errlen);
    if (!rc)
        rc = s_ioctl(fd, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS", err, errlen);
    if (rc)
        return rc;
    Vmm__Vp__Activity *a = &b->activity;
    vmm__vp__activity__init(a);
    a->mp_state = s_mp_state_out(mp.mp_state);
    a->nmi_pending = ev.nmi.pending || ev.nmi.injected;
    a->nmi_masked = ev.nmi.masked;
    a->interrupt_shadow = ev.interrupt.shadow != 0;
    if (ev.interrupt.injected) {
        a->opt_pending_interrupt_vector_case =
            VMM__VP__ACTIVITY__OPT_PENDING_INTERRUPT_VECTOR_PENDING_INTERRUPT_VECTOR;
        a->pending_interrupt_vector = ev.interrupt.nr;
    }
    if (ev.exception.injected || ev.exception.pending) {
        Vmm__Vp__PendingException *e = &b->exception;
        vmm__vp__pending_exception__init(e);
        e->vector = ev.exception.nr;
        if (ev.exception.has_error_code) {
            e->opt_error_code_case = VMM__VP__PENDING_EXCEPTION__OPT_ERROR_CODE_ERROR_CODE;
            e->error_code = ev.exception.error_code;
        }
        if (ev.exception_has_payload)
            e->parameter = ev.exception_payload;
        a->pending_exception = e;
    }
    b->state.activity = a;
    return 0;
}

static int s_read_xsave(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    int rc = s_ioctl(fd, KVM_GET_XSAVE, &b->xsave_area, "KVM_GET_XSAVE", err, errlen);
    if (rc)
        return rc;
    vmm__vp__xsave__init(&b->xsave);
    b->xsave.data.data = (uint8_t *)b->xsave_area.region;
    b->xsave.data.len = sizeof b->xsave_area.region;
    struct kvm_xcrs xcrs = {0};
    if (ioctl(fd, KVM_GET_XCRS, &xcrs) == 0)
        for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (xcrs.xcrs[i].xcr == 0)
                b->xsave.xcr0 = xcrs.xcrs[i].value;
    b->state.xsave = &b->xsave;
    return 0;
}

static int s_get_msrs(int fd, const uint32_t *idx, size_t n, uint64_t *values, char *err,
                      size_t errlen)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[VP_STATE_MAX_MSRS];
    } m = {.hdr.nmsrs = (uint32_t)n};
    for (size_t i = 0; i < n; i++)
        m.e[i].index = idx[i];
    int got = ioctl(fd, KVM_GET_MSRS, &m);
    if (got < 0)
        return s_fail(err, errlen, -errno, "KVM_GET_MSRS failed: %s", strerror(errno));
    if ((size_t)got != n) {
        snprintf(err, errlen, "MSR 0x%x cannot be read", idx[got]);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        values[i] = m.e[i].data;
    return 0;
}

static int s_read_apic(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    int rc = s_ioctl(fd, KVM_GET_LAPIC, &b->lapic, "KVM_GET_LAPIC", err, errlen);
    uint32_t index = 0x1b; /* IA32_APIC_BASE */
    uint64_t base = 0;
    if (!rc)
        rc = s_get_msrs(fd, &index, 1, &base, err, errlen);
    if (rc)
        return rc;
    vmm__vp__apic__init(&b->apic);
    b->apic.apic_base = base;
    b->apic.registers.data = (uint8_t *)b->lapic.regs;
    b->apic.registers.len = sizeof b->lapic.regs;
    b->state.apic = &b->apic;
    return 0;
}

static int s_read_msrs(int fd, const Vmm__Vp__GetState *req, vp_state_buf_t *b, char *err,
                       size_t errlen)
{
    const uint32_t *idx = req->n_msr_indices ? req->msr_indices : s_default_msrs;
    size_t n = req->n_msr_indices ? req->n_msr_indices
                                  : sizeof s_default_msrs / sizeof *s_default_msrs;
    if (n > VP_STATE_MAX_MSRS) {
        snprintf(err, errlen, "%zu MSRs asked for, at most %d", n, VP_STATE_MAX_MSRS);
        return -EINVAL;
    }
    uint64_t values[VP_STATE_MAX_MSRS];
    int rc = s_get_msrs(fd, idx, n, values, err, errlen);
    if (rc)
        return rc;
    vmm__vp__msrs__init(&b->msrs);
    for (size_t i = 0; i < n; i++) {
        vmm__vp__msr__init(&b->msr[i]);
        b->msr[i].index = idx[i];
        b->msr[i].value = values[i];
        b->msr_ptrs[i] = &b->msr[i];
    }
    b->msrs.n_msrs = n;
    b->msrs.msrs = b->msr_ptrs;
    b->state.msrs = &b->msrs;
    return 0;
}

static int s_read_debug(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    struct kvm_debugregs d;
    int rc = s_ioctl(fd, KVM_GET_DEBUGREGS, &d, "KVM_GET_DEBUGREGS", err, errlen);
    if (rc)
        return rc;
    vmm__vp__debug_registers__init(&b->debug);
    b->debug.dr0 = d.db[0], b->debug.dr1 = d.db[1];
    b->debug.dr2 = d.db[2], b->debug.dr3 = d.db[3];
    b->debug.dr6 = d.dr6, b->debug.dr7 = d.dr7;
    b->state.debug_registers = &b->debug;
    return 0;
}

static int s_read_tsc(int fd, vp_state_buf_t *b, char *err, size_t errlen)
{
    uint32_t index = S_MSR_TSC;
    uint64_t value;
    int rc = s_get_msrs(fd, &index, 1, &value, err, errlen);
    if (rc)
        return rc;
    vmm__vp__tsc__init(&b->tsc);
    b->tsc.value = value;
    b->state.tsc = &b->tsc;
    return 0;
}

int vp_state_read(int fd, const Vmm__Vp__GetState *req, vp_state_buf_t *b, char *err,
                  size_t errlen)
{
    vmm__vp__vp_state__init(&b->state);
    for (size_t i = 0; i < req->n_kinds; i++)
        if (req->kinds[i] < VMM__VP__STATE_KIND__GENERAL_REGISTERS ||
            req->kinds[i] > VMM__VP__STATE_KIND__TSC) {
            snprintf(err, errlen, "unknown state kind %d", (int)req->kinds[i]);
            return -EINVAL;
        }
    int rc = 0;
    if (s_wants(req, VMM__VP__STATE_KIND__GENERAL_REGISTERS))
        rc = s_read_regs(fd, b, err, errlen);
    bool segs = s_wants(req, VMM__VP__STATE_KIND__SEGMENTS);
    bool ctrl = s_wants(req, VMM__VP__STATE_KIND__CONTROL_REGISTERS);
    if (!rc && (segs || ctrl)) {
        struct kvm_sregs s;
        rc = s_ioctl(fd, KVM_GET_SREGS, &s, "KVM_GET_SREGS", err, errlen);
        if (!rc && segs)
            s_fill_segments(&s, b);
        if (!rc && ctrl)
            s_fill_control(&s, b);
    }
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__ACTIVITY))
        rc = s_read_activity(fd, b, err, errlen);
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__XSAVE))
        rc = s_read_xsave(fd, b, err, errlen);
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__APIC))
        rc = s_read_apic(fd, b, err, errlen);
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__MSRS))
        rc = s_read_msrs(fd, req, b, err, errlen);
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__DEBUG_REGISTERS))
        rc = s_read_debug(fd, b, err, errlen);
    if (!rc && s_wants(req, VMM__VP__STATE_KIND__TSC))
        rc = s_read_tsc(fd, b, err, errlen);
    return rc;
}

/* ---- Writing ---------------------------------------------------------------- */

static int s_check(const Vmm__Vp__VpState *st, char *err, size_t errlen)
{
    const Vmm__Vp__Segments *sg = st->segments;
    if (sg) {
        const Vmm__Vp__SegmentRegister *seg[8] = {sg->cs, sg->ds, sg->es, sg->fs,
                                                  sg->gs, sg->ss, sg->tr, sg->ldtr};
        static const char *const names[8] = {"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr"};
        for (int i = 0; i < 8; i++) {
            if (!seg[i])
                return s_fail(err, errlen, -EINVAL, "segments: %s is missing", names[i]);
            if (seg[i]->selector > 0xffff || seg[i]->attributes > 0xffff)
                return s_fail(err, errlen, -EINVAL,
                              "segments: %s selector or attributes beyond 16 bits", names[i]);
        }
        if (!sg->gdtr || !sg->idtr)
            return s_fail(err, errlen, -EINVAL, "segments: %s is missing",
                          sg->gdtr ? "idtr" : "gdtr");
        if (sg->gdtr->limit > 0xffff || sg->idtr->limit > 0xffff)
            return s_fail(err, errlen, -EINVAL, "segments: %s limit beyond 16 bits",
                          sg->gdtr->limit > 0xffff ? "gdtr" : "idtr");
    }
    if (st->activity) {
        if (st->activity->mp_state > VMM__VP__MP_STATE__IDLE)
            return s_fail(err, errlen, -EINVAL, "activity: unknown mp_state %d",
                          (int)st->activity->mp_state);
        if (st->activity->pending_interrupt_vector > 255 ||
            (st->activity->pending_exception && st->activity->pending_exception->vector > 31))
            return s_fail(err, errlen, -EINVAL, "activity: %s vector out of range",
                          st->activity->pending_exception ? "exception" : "interrupt");
    }
    if (st->xsave && st->xsave->data.len != sizeof(((struct kvm_xsave *)0)->region))
        return s_fail(err, errlen, -EINVAL, "xsave: the area must be %zu bytes, not %zu",
                      sizeof(((struct kvm_xsave *)0)->region), st->xsave->data.len);
    if (st->apic && st->apic->registers.len != sizeof(((struct kvm_lapic_state *)0)->regs))
        return s_fail(err, errlen, -EINVAL, "apic: the register page must be %zu bytes, not %zu",
                      sizeof(((struct kvm_lapic_state *)0)->regs), st->apic->registers.len);
    if (st->msrs && st->msrs->n_msrs > VP_STATE_MAX_MSRS)
        return s_fail(err, errlen, -EINVAL, "msrs: %zu, at most %d", st->msrs->n_msrs,
                      VP_STATE_MAX_MSRS);
    return 0;
}

static int s_set_msrs(int fd, const uint32_t *idx, const uint64_t *values, size_t n, char *err,
                      size_t errlen)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[VP_STATE_MAX_MSRS];
    } m = {.hdr.nmsrs = (uint32_t)n};
    for (size_t i = 0; i < n; i++) {
        m.e[i].index = idx[i];
        m.e[i].data = values[i];
    }
    int set = ioctl(fd, KVM_SET_MSRS, &m);
    if (set < 0)
        return s_fail(err, errlen, -errno, "KVM_SET_MSRS failed: %s", strerror(errno));
    if ((size_t)set != n) {
        snprintf(err, errlen, "MSR 0x%x cannot be written with 0x%llx", idx[set],
                 (unsigned long long)values[set]);
        return -EINVAL;
    }
    return 0;
}

static int s_write_regs(int fd, const Vmm__Vp__GeneralRegisters *g, char *err, size_t errlen)
{
    struct kvm_regs r = {
        .rax = g->rax, .rcx = g->rcx, .rdx = g->rdx, .rbx = g->rbx,
        .rsp = g->rsp, .rbp = g->rbp, .rsi = g->rsi, .rdi = g->rdi,
        .r8 = g->r8, .r9 = g->r9, .r10 = g->r10, .r11 = g->r11,
        .r12 = g->r12, .r13 = g->r13, .r14 = g->r14, .r15 = g->r15,
        .rip = g->rip, .rflags = g->rflags,
    };
    return s_ioctl(fd, KVM_SET_REGS, &r, "KVM_SET_REGS", err, errlen);
}

static int s_write_sregs(int fd, const Vmm__Vp__VpState *st, char *err, size_t errlen)
{
    struct kvm_sregs s;
    int rc = s_ioctl(fd, KVM_GET_SREGS, &s, "KVM_GET_SREGS", err, errlen);
    if (rc)
        return rc;
    const Vmm__Vp__Segments *sg = st->segments;
    if (sg) {
        const Vmm__Vp__SegmentRegister *in[8] = {sg->cs, sg->ds, sg->es, sg->fs,
                                                 sg->gs, sg->ss, sg->tr, sg->ldtr};
        struct kvm_segment *out[8] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt};
        for (int i = 0; i < 8; i++)
            s_segment_in(in[i], out[i]);
        s.gdt = (struct kvm_dtable){.base = sg->gdtr->base_address, .limit = (uint16_t)sg->gdtr->limit};
        s.idt = (struct kvm_dtable){.base = sg->idtr->base_address, .limit = (uint16_t)sg->idtr->limit};
    }
    const Vmm__Vp__ControlRegisters *c = st->control_registers;
    if (c) {
        s.cr0 = c->cr0, s.cr2 = c->cr2, s.cr3 = c->cr3, s.cr4 = c->cr4;
        s.cr8 = c->cr8, s.efer = c->efer;
    }
    return s_ioctl(fd, KVM_SET_SREGS, &s, "KVM_SET_SREGS", err, errlen);
}

static int s_write_activity(int fd, const Vmm__Vp__Activity *a, char *err, size_t errlen)
{
    static const uint32_t mp[] = {
        [VMM__VP__MP_STATE__RUNNING] = KVM_MP_STATE_RUNNABLE,
        [VMM__VP__MP_STATE__WAIT_FOR_SIPI] = KVM_MP_STATE_INIT_RECEIVED,
        [VMM__VP__MP_STATE__HALTED] = KVM_MP_STATE_HALTED,
        [VMM__VP__MP_STATE__IDLE] = KVM_MP_STATE_HALTED,
    };
    struct kvm_mp_state m = {.mp_state = mp[a->mp_state]};
    int rc = s_ioctl(fd, KVM_SET_MP_STATE, &m, "KVM_SET_MP_STATE", err, errlen);
    if (rc)
        return rc;
    struct kvm_vcpu_events ev = {0};
    ev.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING;
    ev.nmi.pending = a->nmi_pending;
    ev.nmi.masked = a->nmi_masked;
    ev.interrupt.shadow = a->interrupt_shadow ? 1 : 0;
    if (a->opt_pending_interrupt_vector_case) {
        ev.interrupt.injected = 1;
        ev.interrupt.nr = (uint8_t)a->pending_interrupt_vector;
    }
    const Vmm__Vp__PendingException *e = a->pending_exception;
    if (e) {
        ev.exception.injected = 1;
        ev.exception.nr = (uint8_t)e->vector;
        ev.exception.has_error_code = e->opt_error_code_case != 0;
        ev.exception.error_code = e->error_code;
    }
    return s_ioctl(fd, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS", err, errlen);
}

static int s_write_xsave(int fd, const Vmm__Vp__Xsave *x, char *err, size_t errlen)
{
    struct kvm_xsave *area = calloc(1, sizeof *area);
    if (!area)
        return -ENOMEM;
    memcpy(area->region, x->data.data, sizeof area->region);
    int rc = s_ioctl(fd, KVM_SET_XSAVE, area, "KVM_SET_XSAVE", err, errlen);
    free(area);
    if (rc || !x->xcr0)
        return rc;
    struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs[0] = {.xcr = 0, .value = x->xcr0}};
    return s_ioctl(fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS", err, errlen);
}

static int s_write_apic(int fd, const Vmm__Vp__Apic *a, char *err, size_t errlen)
{
    uint32_t index = 0x1b; /* IA32_APIC_BASE, first: it can move or disable the page */
    int rc = s_set_msrs(fd, &index, &a->apic_base, 1, err, errlen);
    if (rc)
        return rc;
    struct kvm_lapic_state l;
    memcpy(l.regs, a->registers.data, sizeof l.regs);
    return s_ioctl(fd, KVM_SET_LAPIC, &l, "KVM_SET_LAPIC", err, errlen);
}

static int s_write_msrs(int fd, const Vmm__Vp__Msrs *m, char *err, size_t errlen)
{
    uint32_t idx[VP_STATE_MAX_MSRS];
    uint64_t values[VP_STATE_MAX_MSRS];
    for (size_t i = 0; i < m->n_msrs; i++) {
        idx[i] = m->msrs[i]->index;
        values[i] = m->msrs[i]->value;
    }
    return m->n_msrs ? s_set_msrs(fd, idx, values, m->n_msrs, err, errlen) : 0;
}

static int s_write_debug(int fd, const Vmm__Vp__DebugRegisters *d, char *err, size_t errlen)
{
    struct kvm_debugregs r = {
        .db = {d->dr0, d->dr1, d->dr2, d->dr3},
        .dr6 = d->dr6,
        .dr7 = d->dr7,
    };
    return s_ioctl(fd, KVM_SET_DEBUGREGS, &r, "KVM_SET_DEBUGREGS", err, errlen);
}

int vp_state_write(int fd, const Vmm__Vp__VpState *st, char *err, size_t errlen)
{
    int rc = s_check(st, err, errlen);
    if (!rc && st->general_registers)
        rc = s_write_regs(fd, st->general_registers, err, errlen);
    if (!rc && (st->segments || st->control_registers))
        rc = s_write_sregs(fd, st, err, errlen);
    if (!rc && st->activity)
        rc = s_write_activity(fd, st->activity, err, errlen);
    if (!rc && st->xsave)
        rc = s_write_xsave(fd, st->xsave, err, errlen);
    if (!rc && st->apic)
        rc = s_write_apic(fd, st->apic, err, errlen);
    if (!rc && st->msrs)
        rc = s_write_msrs(fd, st->msrs, err, errlen);
    if (!rc && st->debug_registers)
        rc = s_write_debug(fd, st->debug_registers, err, errlen);
    if (!rc && st->tsc) {
        uint32_t index = S_MSR_TSC;
        rc = s_set_msrs(fd, &index, &st->tsc->value, 1, err, errlen);
    }
    return rc;
}
