#include <criterion/criterion.h>

#include "proto/testing/proto_check.h"
#include "proto/vp.pb-c.h"

/* A Request / Reply / Event with one oneof member set, round-tripped: the copy
 * must pack to the same bytes and have the same member set. */
#define S_REQ(member, CASE, op)                                                                            \
    PROTO_CHECK_ONEOF(Vmm__Vp__Request, &vmm__vp__request__descriptor, op_case, VMM__VP__REQUEST__OP_##CASE, \
                      member, op)
#define S_REPLY(member, CASE, res)                                                                         \
    PROTO_CHECK_ONEOF(Vmm__Vp__Reply, &vmm__vp__reply__descriptor, result_case,                             \
                      VMM__VP__REPLY__RESULT_##CASE, member, res)
#define S_EVENT(member, CASE, ev)                                                                          \
    PROTO_CHECK_ONEOF(Vmm__Vp__Event, &vmm__vp__event__descriptor, event_case, VMM__VP__EVENT__EVENT_##CASE, \
                      member, ev)

#define S_FREE_REQ(m) vmm__vp__request__free_unpacked((m), NULL)
#define S_FREE_REPLY(m) vmm__vp__reply__free_unpacked((m), NULL)
#define S_FREE_EVENT(m) vmm__vp__event__free_unpacked((m), NULL)

/* The three bodies the VP protocol sends. */
static const ProtobufCMessageDescriptor *const s_bodies[] = {
    &vmm__vp__request__descriptor,
    &vmm__vp__reply__descriptor,
    &vmm__vp__event__descriptor,
};

/* Wraps a Halted in an Event and round-trips it; the copy's Halted must keep
 * the reason (its oneof case) and the VP index. Free with S_FREE_EVENT. */
static Vmm__Vp__Event *s_halted(Vmm__Vp__Halted *h)
{
    Vmm__Vp__Event *out = S_EVENT(halted, HALTED, h);
    proto_check_same_cases(&out->halted->base, &h->base);
    cr_expect_eq(out->halted->vp_index, h->vp_index);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Defaults and fixed numbers. */

/* Each body starts with its oneof NOT_SET and packs to nothing. */
Test(vp_defaults, bodies_are_empty)
{
    proto_check_defaults_empty(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

Test(vp_defaults, ops_start_zero_and_unset)
{
    Vmm__Vp__SetDebugState sds = VMM__VP__SET_DEBUG_STATE__INIT;
    cr_expect_eq(sds.vtl, VMM__VTL__VTL0);
    cr_expect_null(sds.state);

    Vmm__Vp__GetState gs = VMM__VP__GET_STATE__INIT;
    cr_expect_eq(gs.n_kinds, 0);
    cr_expect_eq(gs.n_msr_indices, 0);

    Vmm__Vp__Activity act = VMM__VP__ACTIVITY__INIT;
    cr_expect_eq(act.mp_state, VMM__VP__MP_STATE__RUNNING);
    cr_expect_eq(act.opt_pending_interrupt_vector_case, VMM__VP__ACTIVITY__OPT_PENDING_INTERRUPT_VECTOR__NOT_SET);
    cr_expect_null(act.pending_exception);

    Vmm__Vp__VpState st = VMM__VP__VP_STATE__INIT;
    cr_expect_null(st.general_registers);
    cr_expect_null(st.tsc);

    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    cr_expect_eq(h.vp_index, 0);
    cr_expect_eq(h.reason_case, VMM__VP__HALTED__REASON__NOT_SET);
}

/* The breakpoint enums are the DR7 encodings only if these hold. */
Test(vp_defaults, breakpoint_numbers_are_dr7)
{
    cr_expect_eq(VMM__VP__BREAKPOINT_TYPE__EXECUTE, 0);
    cr_expect_eq(VMM__VP__BREAKPOINT_TYPE__INVALID, 1);
    cr_expect_eq(VMM__VP__BREAKPOINT_TYPE__WRITE, 2);
    cr_expect_eq(VMM__VP__BREAKPOINT_TYPE__READ_OR_WRITE, 3);
    cr_expect_eq(VMM__VP__BREAKPOINT_SIZE__SIZE_1, 0);
    cr_expect_eq(VMM__VP__BREAKPOINT_SIZE__SIZE_2, 1);
    cr_expect_eq(VMM__VP__BREAKPOINT_SIZE__SIZE_8, 2);
    cr_expect_eq(VMM__VP__BREAKPOINT_SIZE__SIZE_4, 3);
}

/* Fails when an op, result, event or halt reason is added or removed: add
 * its round-trip test below, then update the count. */
Test(vp_defaults, every_member_has_a_test)
{
    cr_expect_eq(vmm__vp__request__descriptor.n_fields, 10);
    cr_expect_eq(vmm__vp__reply__descriptor.n_fields, 2);
    cr_expect_eq(vmm__vp__event__descriptor.n_fields, 1);
    /* vp_index plus ten reasons. */
    cr_expect_eq(vmm__vp__halted__descriptor.n_fields, 11);
}

/* ------------------------------------------------------------------------ */
/* Requests. */

Test(vp_request, run)
{
    Vmm__Vp__Run op = VMM__VP__RUN__INIT;
    Vmm__Vp__Request *out = S_REQ(run, RUN, &op);
    cr_expect_not_null(out->run);
    S_FREE_REQ(out);
}

Test(vp_request, stop)
{
    Vmm__Vp__Stop op = VMM__VP__STOP__INIT;
    Vmm__Vp__Request *out = S_REQ(stop, STOP, &op);
    cr_expect_not_null(out->stop);
    S_FREE_REQ(out);
}

Test(vp_request, yield)
{
    Vmm__Vp__Yield op = VMM__VP__YIELD__INIT;
    Vmm__Vp__Request *out = S_REQ(yield, YIELD, &op);
    cr_expect_not_null(out->yield);
    S_FREE_REQ(out);
}

Test(vp_request, cancel)
{
    Vmm__Vp__Cancel op = VMM__VP__CANCEL__INIT;
    Vmm__Vp__Request *out = S_REQ(cancel, CANCEL, &op);
    cr_expect_not_null(out->cancel);
    S_FREE_REQ(out);
}

Test(vp_request, flush_async_requests)
{
    Vmm__Vp__FlushAsyncRequests op = VMM__VP__FLUSH_ASYNC_REQUESTS__INIT;
    Vmm__Vp__Request *out = S_REQ(flush_async_requests, FLUSH_ASYNC_REQUESTS, &op);
    cr_expect_not_null(out->flush_async_requests);
    S_FREE_REQ(out);
}

Test(vp_request, set_debug_state)
{
    Vmm__Vp__HardwareBreakpoint exec = VMM__VP__HARDWARE_BREAKPOINT__INIT;
    exec.address = 0xffffffff81000000ull;
    exec.type = VMM__VP__BREAKPOINT_TYPE__EXECUTE;
    exec.size = VMM__VP__BREAKPOINT_SIZE__SIZE_1;
    Vmm__Vp__HardwareBreakpoint watch = VMM__VP__HARDWARE_BREAKPOINT__INIT;
    watch.address = 0x7000;
    watch.type = VMM__VP__BREAKPOINT_TYPE__READ_OR_WRITE;
    watch.size = VMM__VP__BREAKPOINT_SIZE__SIZE_8;
    Vmm__Vp__DebugState ds = VMM__VP__DEBUG_STATE__INIT;
    ds.single_step = true;
    ds.dr0 = &exec;
    ds.dr2 = &watch; /* dr1 stays a hole */
    Vmm__Vp__SetDebugState op = VMM__VP__SET_DEBUG_STATE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.state = &ds;
    Vmm__Vp__Request *out = S_REQ(set_debug_state, SET_DEBUG_STATE, &op);
    Vmm__Vp__SetDebugState *o = out->set_debug_state;
    cr_expect_eq(o->vtl, VMM__VTL__VTL1);
    cr_assert_not_null(o->state);
    cr_expect(o->state->single_step);
    cr_assert_not_null(o->state->dr0);
    cr_expect_eq(o->state->dr0->address, 0xffffffff81000000ull);
    cr_expect_eq(o->state->dr0->type, VMM__VP__BREAKPOINT_TYPE__EXECUTE);
    cr_expect_null(o->state->dr1);
    cr_assert_not_null(o->state->dr2);
    cr_expect_eq(o->state->dr2->address, 0x7000);
    cr_expect_eq(o->state->dr2->type, VMM__VP__BREAKPOINT_TYPE__READ_OR_WRITE);
    cr_expect_eq(o->state->dr2->size, VMM__VP__BREAKPOINT_SIZE__SIZE_8);
    cr_expect_null(o->state->dr3);
    S_FREE_REQ(out);

    /* None clears debugging; it must not come back as an empty DebugState. */
    op.state = NULL;
    out = S_REQ(set_debug_state, SET_DEBUG_STATE, &op);
    cr_expect_null(out->set_debug_state->state);
    S_FREE_REQ(out);
}

Test(vp_request, is_vtl_inspectable)
{
    Vmm__Vp__IsVtlInspectable op = VMM__VP__IS_VTL_INSPECTABLE__INIT;
    op.vtl = VMM__VTL__VTL2;
    Vmm__Vp__Request *out = S_REQ(is_vtl_inspectable, IS_VTL_INSPECTABLE, &op);
    cr_expect_eq(out->is_vtl_inspectable->vtl, VMM__VTL__VTL2);
    S_FREE_REQ(out);
}

Test(vp_request, get_state)
{
    Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__GENERAL_REGISTERS, VMM__VP__STATE_KIND__MSRS,
                                  VMM__VP__STATE_KIND__TSC};
    uint32_t msrs[] = {0x10, 0x1b, 0xc0000080, 0x40000070};
    Vmm__Vp__GetState op = VMM__VP__GET_STATE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.n_kinds = 3;
    op.kinds = kinds;
    op.n_msr_indices = 4;
    op.msr_indices = msrs;
    Vmm__Vp__Request *out = S_REQ(get_state, GET_STATE, &op);
    Vmm__Vp__GetState *o = out->get_state;
    cr_expect_eq(o->vtl, VMM__VTL__VTL1);
    cr_assert_eq(o->n_kinds, 3);
    cr_expect_eq(o->kinds[0], VMM__VP__STATE_KIND__GENERAL_REGISTERS);
    cr_expect_eq(o->kinds[1], VMM__VP__STATE_KIND__MSRS);
    cr_expect_eq(o->kinds[2], VMM__VP__STATE_KIND__TSC);
    cr_assert_eq(o->n_msr_indices, 4);
    cr_expect_arr_eq(o->msr_indices, msrs, sizeof(msrs));
    S_FREE_REQ(out);
}

/* A VpState with every element set; the pointers refer to s_state_parts. */
static struct {
    Vmm__Vp__GeneralRegisters gpr;
    Vmm__Vp__SegmentRegister cs, ds, es, fs, gs, ss, tr, ldtr;
    Vmm__Vp__TableRegister gdtr, idtr;
    Vmm__Vp__Segments seg;
    Vmm__Vp__ControlRegisters cr;
    Vmm__Vp__PendingException exc;
    Vmm__Vp__Activity act;
    Vmm__Vp__Xsave xsave;
    Vmm__Vp__Apic apic;
    Vmm__Vp__Msr msr0, msr1;
    Vmm__Vp__Msr *msr_list[2];
    Vmm__Vp__Msrs msrs;
    Vmm__Vp__DebugRegisters dr;
    Vmm__Vp__Tsc tsc;
    uint8_t xsave_area[4096];
    uint8_t apic_page[1024];
    Vmm__Vp__VpState state;
} s_state_parts;

static Vmm__Vp__VpState *s_full_state(void)
{
    __typeof__(s_state_parts) *p = &s_state_parts;
    *p = (__typeof__(s_state_parts)){
        .gpr = VMM__VP__GENERAL_REGISTERS__INIT,
        .cs = VMM__VP__SEGMENT_REGISTER__INIT,
        .ds = VMM__VP__SEGMENT_REGISTER__INIT,
        .es = VMM__VP__SEGMENT_REGISTER__INIT,
        .fs = VMM__VP__SEGMENT_REGISTER__INIT,
        .gs = VMM__VP__SEGMENT_REGISTER__INIT,
        .ss = VMM__VP__SEGMENT_REGISTER__INIT,
        .tr = VMM__VP__SEGMENT_REGISTER__INIT,
        .ldtr = VMM__VP__SEGMENT_REGISTER__INIT,
        .gdtr = VMM__VP__TABLE_REGISTER__INIT,
        .idtr = VMM__VP__TABLE_REGISTER__INIT,
        .seg = VMM__VP__SEGMENTS__INIT,
        .cr = VMM__VP__CONTROL_REGISTERS__INIT,
        .exc = VMM__VP__PENDING_EXCEPTION__INIT,
        .act = VMM__VP__ACTIVITY__INIT,
        .xsave = VMM__VP__XSAVE__INIT,
        .apic = VMM__VP__APIC__INIT,
        .msr0 = VMM__VP__MSR__INIT,
        .msr1 = VMM__VP__MSR__INIT,
        .msrs = VMM__VP__MSRS__INIT,
        .dr = VMM__VP__DEBUG_REGISTERS__INIT,
        .tsc = VMM__VP__TSC__INIT,
        .state = VMM__VP__VP_STATE__INIT,
    };
    p->gpr.rax = 0x1111;
    p->gpr.rcx = 0x2222;
    p->gpr.rsp = 0x7ff0;
    p->gpr.r15 = 0xf15;
    p->gpr.rip = 0xfff0;
    p->gpr.rflags = 0x2;
    Vmm__Vp__SegmentRegister *segs[] = {&p->cs, &p->ds, &p->es, &p->fs, &p->gs, &p->ss, &p->tr, &p->ldtr};
    for (unsigned i = 0; i < 8; i++) {
        segs[i]->base_address = 0x1000u * (i + 1);
        segs[i]->limit = 0xffff;
        segs[i]->selector = 8 * (i + 1);
        segs[i]->attributes = 0x93;
    }
    p->cs.base_address = 0xffff0000;
    p->cs.attributes = 0x9b;
    p->gdtr.base_address = 0x9000;
    p->gdtr.limit = 0x27;
    p->idtr.base_address = 0xa000;
    p->idtr.limit = 0xfff;
    p->seg.cs = &p->cs;
    p->seg.ds = &p->ds;
    p->seg.es = &p->es;
    p->seg.fs = &p->fs;
    p->seg.gs = &p->gs;
    p->seg.ss = &p->ss;
    p->seg.tr = &p->tr;
    p->seg.ldtr = &p->ldtr;
    p->seg.gdtr = &p->gdtr;
    p->seg.idtr = &p->idtr;
    p->cr.cr0 = 0x60000010;
    p->cr.cr2 = 0xdead000;
    p->cr.cr3 = 0x1000;
    p->cr.cr4 = 0x20;
    p->cr.cr8 = 0xf;
    p->cr.efer = 0xd01;
    p->exc.vector = 14;
    p->exc.opt_error_code_case = VMM__VP__PENDING_EXCEPTION__OPT_ERROR_CODE_ERROR_CODE;
    p->exc.error_code = 0; /* Some(0), not None */
    p->exc.parameter = 0xdead000;
    p->act.mp_state = VMM__VP__MP_STATE__WAIT_FOR_SIPI;
    p->act.nmi_pending = true;
    p->act.interrupt_shadow = true;
    p->act.opt_pending_interrupt_vector_case = VMM__VP__ACTIVITY__OPT_PENDING_INTERRUPT_VECTOR_PENDING_INTERRUPT_VECTOR;
    p->act.pending_interrupt_vector = 0x30;
    p->act.pending_exception = &p->exc;
    for (size_t i = 0; i < sizeof(p->xsave_area); i++)
        p->xsave_area[i] = (uint8_t)(i * 7);
    p->xsave.data = (ProtobufCBinaryData){sizeof(p->xsave_area), p->xsave_area};
    p->xsave.xcr0 = 0x7;
    for (size_t i = 0; i < sizeof(p->apic_page); i++)
        p->apic_page[i] = (uint8_t)(i ^ 0x5a);
    p->apic.apic_base = 0xfee00900;
    p->apic.registers = (ProtobufCBinaryData){sizeof(p->apic_page), p->apic_page};
    p->msr0.index = 0x277; /* PAT */
    p->msr0.value = 0x0007040600070406ull;
    p->msr1.index = 0x40000080; /* Hyper-V SCONTROL */
    p->msr1.value = 1;
    p->msr_list[0] = &p->msr0;
    p->msr_list[1] = &p->msr1;
    p->msrs.n_msrs = 2;
    p->msrs.msrs = p->msr_list;
    p->dr.dr0 = 0x100;
    p->dr.dr3 = 0x400;
    p->dr.dr6 = 0xffff0ff0;
    p->dr.dr7 = 0x401;
    p->tsc.value = 0x123456789abcull;
    p->state.general_registers = &p->gpr;
    p->state.segments = &p->seg;
    p->state.control_registers = &p->cr;
    p->state.activity = &p->act;
    p->state.xsave = &p->xsave;
    p->state.apic = &p->apic;
    p->state.msrs = &p->msrs;
    p->state.debug_registers = &p->dr;
    p->state.tsc = &p->tsc;
    return &p->state;
}

/* Checks a round-tripped copy of s_full_state(). */
static void s_check_full_state(const Vmm__Vp__VpState *o)
{
    cr_assert_not_null(o->general_registers);
    cr_expect_eq(o->general_registers->rax, 0x1111);
    cr_expect_eq(o->general_registers->rcx, 0x2222);
    cr_expect_eq(o->general_registers->rsp, 0x7ff0);
    cr_expect_eq(o->general_registers->r15, 0xf15);
    cr_expect_eq(o->general_registers->rip, 0xfff0);
    cr_expect_eq(o->general_registers->rflags, 0x2);

    cr_assert_not_null(o->segments);
    cr_assert(o->segments->cs && o->segments->ldtr && o->segments->gdtr && o->segments->idtr);
    cr_expect_eq(o->segments->cs->base_address, 0xffff0000);
    cr_expect_eq(o->segments->cs->attributes, 0x9b);
    cr_expect_eq(o->segments->ldtr->selector, 64);
    cr_expect_eq(o->segments->ldtr->base_address, 0x8000);
    cr_expect_eq(o->segments->gdtr->base_address, 0x9000);
    cr_expect_eq(o->segments->gdtr->limit, 0x27);
    cr_expect_eq(o->segments->idtr->limit, 0xfff);

    cr_assert_not_null(o->control_registers);
    cr_expect_eq(o->control_registers->cr0, 0x60000010);
    cr_expect_eq(o->control_registers->cr2, 0xdead000);
    cr_expect_eq(o->control_registers->cr8, 0xf);
    cr_expect_eq(o->control_registers->efer, 0xd01);

    cr_assert_not_null(o->activity);
    cr_expect_eq(o->activity->mp_state, VMM__VP__MP_STATE__WAIT_FOR_SIPI);
    cr_expect(o->activity->nmi_pending);
    cr_expect_not(o->activity->nmi_masked);
    cr_expect(o->activity->interrupt_shadow);
    cr_expect_eq(o->activity->opt_pending_interrupt_vector_case,
                 VMM__VP__ACTIVITY__OPT_PENDING_INTERRUPT_VECTOR_PENDING_INTERRUPT_VECTOR);
    cr_expect_eq(o->activity->pending_interrupt_vector, 0x30);
    cr_assert_not_null(o->activity->pending_exception);
    cr_expect_eq(o->activity->pending_exception->vector, 14);
    cr_expect_eq(o->activity->pending_exception->opt_error_code_case,
                 VMM__VP__PENDING_EXCEPTION__OPT_ERROR_CODE_ERROR_CODE);
    cr_expect_eq(o->activity->pending_exception->error_code, 0);
    cr_expect_eq(o->activity->pending_exception->parameter, 0xdead000);

    cr_assert_not_null(o->xsave);
    cr_assert_eq(o->xsave->data.len, sizeof(s_state_parts.xsave_area));
    cr_expect_arr_eq(o->xsave->data.data, s_state_parts.xsave_area, sizeof(s_state_parts.xsave_area));
    cr_expect_eq(o->xsave->xcr0, 0x7);

    cr_assert_not_null(o->apic);
    cr_expect_eq(o->apic->apic_base, 0xfee00900);
    cr_assert_eq(o->apic->registers.len, sizeof(s_state_parts.apic_page));
    cr_expect_arr_eq(o->apic->registers.data, s_state_parts.apic_page, sizeof(s_state_parts.apic_page));

    cr_assert_not_null(o->msrs);
    cr_assert_eq(o->msrs->n_msrs, 2);
    cr_expect_eq(o->msrs->msrs[0]->index, 0x277);
    cr_expect_eq(o->msrs->msrs[0]->value, 0x0007040600070406ull);
    cr_expect_eq(o->msrs->msrs[1]->index, 0x40000080);
    cr_expect_eq(o->msrs->msrs[1]->value, 1);

    cr_assert_not_null(o->debug_registers);
    cr_expect_eq(o->debug_registers->dr0, 0x100);
    cr_expect_eq(o->debug_registers->dr3, 0x400);
    cr_expect_eq(o->debug_registers->dr6, 0xffff0ff0);
    cr_expect_eq(o->debug_registers->dr7, 0x401);

    cr_assert_not_null(o->tsc);
    cr_expect_eq(o->tsc->value, 0x123456789abcull);
}

Test(vp_request, set_state)
{
    Vmm__Vp__SetState op = VMM__VP__SET_STATE__INIT;
    op.vtl = VMM__VTL__VTL0;
    op.state = s_full_state();
    Vmm__Vp__Request *out = S_REQ(set_state, SET_STATE, &op);
    cr_assert_not_null(out->set_state->state);
    s_check_full_state(out->set_state->state);
    S_FREE_REQ(out);
}

Test(vp_request, set_io_routes)
{
    Vmm__Vp__IoRoute com1 = VMM__VP__IO_ROUTE__INIT;
    com1.start = 0x3f8;
    com1.len = 8;
    com1.actor = "vm0/dev/com1";
    Vmm__Vp__IoRoute bar = VMM__VP__IO_ROUTE__INIT;
    bar.mmio = true;
    bar.start = 0xfebf0000;
    bar.len = 0x1000;
    bar.actor = "vm0/dev/nic";
    bar.posted_writes = true;
    Vmm__Vp__IoRoute *routes[] = {&com1, &bar};
    Vmm__Vp__SetIoRoutes op = VMM__VP__SET_IO_ROUTES__INIT;
    op.n_routes = 2;
    op.routes = routes;
    Vmm__Vp__Request *out = S_REQ(set_io_routes, SET_IO_ROUTES, &op);
    cr_assert_eq(out->set_io_routes->n_routes, 2);
    Vmm__Vp__IoRoute **o = out->set_io_routes->routes;
    cr_expect_not(o[0]->mmio);
    cr_expect_eq(o[0]->start, 0x3f8);
    cr_expect_eq(o[0]->len, 8);
    cr_expect_str_eq(o[0]->actor, "vm0/dev/com1");
    cr_expect_not(o[0]->posted_writes);
    cr_expect(o[1]->mmio);
    cr_expect_eq(o[1]->start, 0xfebf0000);
    cr_expect_eq(o[1]->len, 0x1000);
    cr_expect_str_eq(o[1]->actor, "vm0/dev/nic");
    cr_expect(o[1]->posted_writes);
    S_FREE_REQ(out);
}

/* Elements left out of a SetState mean "unchanged": they must stay absent. */
Test(vp_request, set_state_partial)
{
    Vmm__Vp__Tsc tsc = VMM__VP__TSC__INIT;
    tsc.value = 42;
    Vmm__Vp__VpState state = VMM__VP__VP_STATE__INIT;
    state.tsc = &tsc;
    Vmm__Vp__SetState op = VMM__VP__SET_STATE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.state = &state;
    Vmm__Vp__Request *out = S_REQ(set_state, SET_STATE, &op);
    Vmm__Vp__VpState *o = out->set_state->state;
    cr_assert_not_null(o);
    cr_expect_eq(out->set_state->vtl, VMM__VTL__VTL1);
    cr_expect_null(o->general_registers);
    cr_expect_null(o->segments);
    cr_expect_null(o->control_registers);
    cr_expect_null(o->activity);
    cr_expect_null(o->xsave);
    cr_expect_null(o->apic);
    cr_expect_null(o->msrs);
    cr_expect_null(o->debug_registers);
    cr_assert_not_null(o->tsc);
    cr_expect_eq(o->tsc->value, 42);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Replies. */

Test(vp_reply, vtl_inspectable)
{
    Vmm__Vp__VtlInspectable res = VMM__VP__VTL_INSPECTABLE__INIT;
    res.inspectable = true;
    Vmm__Vp__Reply *out = S_REPLY(vtl_inspectable, VTL_INSPECTABLE, &res);
    cr_expect(out->vtl_inspectable->inspectable);
    S_FREE_REPLY(out);
}

Test(vp_reply, state)
{
    Vmm__Vp__Reply *out = S_REPLY(state, STATE, s_full_state());
    s_check_full_state(out->state);
    S_FREE_REPLY(out);
}

/* ------------------------------------------------------------------------ */
/* Events: Halted with every VpHaltReason. */

Test(vp_event, halted_stop)
{
    Vmm__Vp__Stopped r = VMM__VP__STOPPED__INIT;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 3;
    h.reason_case = VMM__VP__HALTED__REASON_STOP;
    h.stop = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_not_null(out->halted->stop);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_cancel)
{
    Vmm__Vp__Cancelled r = VMM__VP__CANCELLED__INIT;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 4;
    h.reason_case = VMM__VP__HALTED__REASON_CANCEL;
    h.cancel = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_not_null(out->halted->cancel);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_power_off)
{
    Vmm__Vp__PowerOff r = VMM__VP__POWER_OFF__INIT;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 5;
    h.reason_case = VMM__VP__HALTED__REASON_POWER_OFF;
    h.power_off = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_assert_not_null(out->halted->power_off);
    cr_expect_eq(out->halted->power_off->opt_exit_code_case,
                 VMM__VP__POWER_OFF__OPT_EXIT_CODE__NOT_SET);
    S_FREE_EVENT(out);

    /* An exit code of 0 is still a code: it must survive as present. */
    r.opt_exit_code_case = VMM__VP__POWER_OFF__OPT_EXIT_CODE_EXIT_CODE;
    r.exit_code = 0;
    out = s_halted(&h);
    cr_expect_eq(out->halted->power_off->opt_exit_code_case,
                 VMM__VP__POWER_OFF__OPT_EXIT_CODE_EXIT_CODE);
    cr_expect_eq(out->halted->power_off->exit_code, 0);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_reset)
{
    Vmm__Vp__Reset r = VMM__VP__RESET__INIT;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 6;
    h.reason_case = VMM__VP__HALTED__REASON_RESET;
    h.reset = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_not_null(out->halted->reset);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_triple_fault)
{
    Vmm__Vp__TripleFault r = VMM__VP__TRIPLE_FAULT__INIT;
    r.vtl = VMM__VTL__VTL2;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 7;
    h.reason_case = VMM__VP__HALTED__REASON_TRIPLE_FAULT;
    h.triple_fault = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_eq(out->halted->triple_fault->vtl, VMM__VTL__VTL2);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_invalid_vm_state)
{
    Vmm__Vp__InvalidVmState r = VMM__VP__INVALID_VM_STATE__INIT;
    r.text = "KVM_RUN: invalid guest state (CR0.PG without CR0.PE)";
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 8;
    h.reason_case = VMM__VP__HALTED__REASON_INVALID_VM_STATE;
    h.invalid_vm_state = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_str_eq(out->halted->invalid_vm_state->text, "KVM_RUN: invalid guest state (CR0.PG without CR0.PE)");
    S_FREE_EVENT(out);
}

Test(vp_event, halted_emulation_failure)
{
    static const uint8_t insn[] = {0x0f, 0x0b}; /* ud2 */
    Vmm__Vp__EmulationFailure r = VMM__VP__EMULATION_FAILURE__INIT;
    r.text = "unsupported instruction";
    r.rip = 0xffffffff81234567ull;
    r.instruction = (ProtobufCBinaryData){sizeof(insn), (uint8_t *)insn};
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 9;
    h.reason_case = VMM__VP__HALTED__REASON_EMULATION_FAILURE;
    h.emulation_failure = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    Vmm__Vp__EmulationFailure *o = out->halted->emulation_failure;
    cr_expect_str_eq(o->text, "unsupported instruction");
    cr_expect_eq(o->rip, 0xffffffff81234567ull);
    cr_assert_eq(o->instruction.len, sizeof(insn));
    cr_expect_arr_eq(o->instruction.data, insn, sizeof(insn));
    S_FREE_EVENT(out);
}

Test(vp_event, halted_hypervisor)
{
    Vmm__Vp__HypervisorFailure r = VMM__VP__HYPERVISOR_FAILURE__INIT;
    r.os_error = 14; /* EFAULT */
    r.text = "KVM_RUN failed";
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 10;
    h.reason_case = VMM__VP__HALTED__REASON_HYPERVISOR;
    h.hypervisor = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_eq(out->halted->hypervisor->os_error, 14);
    cr_expect_str_eq(out->halted->hypervisor->text, "KVM_RUN failed");
    S_FREE_EVENT(out);
}

Test(vp_event, halted_single_step)
{
    Vmm__Vp__SingleStep r = VMM__VP__SINGLE_STEP__INIT;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 11;
    h.reason_case = VMM__VP__HALTED__REASON_SINGLE_STEP;
    h.single_step = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_expect_not_null(out->halted->single_step);
    S_FREE_EVENT(out);
}

Test(vp_event, halted_hw_break)
{
    Vmm__Vp__HardwareBreakpoint bp = VMM__VP__HARDWARE_BREAKPOINT__INIT;
    bp.address = 0x601000;
    bp.type = VMM__VP__BREAKPOINT_TYPE__WRITE;
    bp.size = VMM__VP__BREAKPOINT_SIZE__SIZE_4;
    Vmm__Vp__HwBreak r = VMM__VP__HW_BREAK__INIT;
    r.breakpoint = &bp;
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 12;
    h.reason_case = VMM__VP__HALTED__REASON_HW_BREAK;
    h.hw_break = &r;
    Vmm__Vp__Event *out = s_halted(&h);
    cr_assert_not_null(out->halted->hw_break->breakpoint);
    cr_expect_eq(out->halted->hw_break->breakpoint->address, 0x601000);
    cr_expect_eq(out->halted->hw_break->breakpoint->type, VMM__VP__BREAKPOINT_TYPE__WRITE);
    cr_expect_eq(out->halted->hw_break->breakpoint->size, VMM__VP__BREAKPOINT_SIZE__SIZE_4);
    S_FREE_EVENT(out);
}

/* ------------------------------------------------------------------------ */
/* Bad input. */

/* An empty buffer is a valid proto3 encoding of "no op": it decodes, but to
 * NOT_SET, which the VP actor must answer with INVALID_ARGUMENT. */
Test(vp_bad_input, empty_buffer_is_not_set)
{
    proto_check_empty_decodes_unset(&vmm__vp__request__descriptor);
}

/* Every strict prefix of a one-op request cuts its only field short. */
Test(vp_bad_input, truncated_buffers_fail)
{
    Vmm__Vp__SetState op = VMM__VP__SET_STATE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.state = s_full_state();
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &op;
    proto_check_prefixes_fail(&req.base);
}

Test(vp_bad_input, garbage_fails)
{
    proto_check_garbage_fails(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

/* Flipping bytes of a valid event either fails to decode or decodes to a
 * message that round-trips; never a crash or a leak (ASan). */
Test(vp_bad_input, mutated_bytes_are_safe)
{
    static const uint8_t insn[] = {0xf3, 0x0f, 0x1e, 0xfa};
    Vmm__Vp__EmulationFailure r = VMM__VP__EMULATION_FAILURE__INIT;
    r.text = "x";
    r.rip = 0x1000;
    r.instruction = (ProtobufCBinaryData){sizeof(insn), (uint8_t *)insn};
    Vmm__Vp__Halted h = VMM__VP__HALTED__INIT;
    h.vp_index = 1;
    h.reason_case = VMM__VP__HALTED__REASON_EMULATION_FAILURE;
    h.emulation_failure = &r;
    Vmm__Vp__Event ev = VMM__VP__EVENT__INIT;
    ev.event_case = VMM__VP__EVENT__EVENT_HALTED;
    ev.halted = &h;
    proto_check_mutations_safe(&ev.base);
}
