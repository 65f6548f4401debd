#include <criterion/criterion.h>

#include "proto/synic.pb-c.h"
#include "proto/testing/proto_check.h"

/* A Request / Reply / Event with one oneof member set, round-tripped: the copy
 * must pack to the same bytes and have the same member set. */
#define S_REQ(member, CASE, op)                                                                            \
    PROTO_CHECK_ONEOF(Vmm__Synic__Request, &vmm__synic__request__descriptor, op_case,                       \
                      VMM__SYNIC__REQUEST__OP_##CASE, member, op)
#define S_REPLY(member, CASE, res)                                                                         \
    PROTO_CHECK_ONEOF(Vmm__Synic__Reply, &vmm__synic__reply__descriptor, result_case,                       \
                      VMM__SYNIC__REPLY__RESULT_##CASE, member, res)
#define S_EVENT(member, CASE, ev)                                                                          \
    PROTO_CHECK_ONEOF(Vmm__Synic__Event, &vmm__synic__event__descriptor, event_case,                        \
                      VMM__SYNIC__EVENT__EVENT_##CASE, member, ev)

#define S_FREE_REQ(m) vmm__synic__request__free_unpacked((m), NULL)
#define S_FREE_REPLY(m) vmm__synic__reply__free_unpacked((m), NULL)
#define S_FREE_EVENT(m) vmm__synic__event__free_unpacked((m), NULL)

/* The three bodies the synic protocol sends. */
static const ProtobufCMessageDescriptor *const s_bodies[] = {
    &vmm__synic__request__descriptor,
    &vmm__synic__reply__descriptor,
    &vmm__synic__event__descriptor,
};

/* The largest payload a synic message carries (HV_MESSAGE_SIZE less its
 * header); filled with a pattern so that a shifted byte shows. */
static uint8_t s_payload[240];

static ProtobufCBinaryData s_full_payload(void)
{
    for (size_t i = 0; i < sizeof(s_payload); i++)
        s_payload[i] = (uint8_t)(255 - i);
    return (ProtobufCBinaryData){sizeof(s_payload), s_payload};
}

/* ------------------------------------------------------------------------ */
/* Defaults. */

/* Each body starts with its oneof NOT_SET and packs to nothing. */
Test(synic_defaults, bodies_are_empty)
{
    proto_check_defaults_empty(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

Test(synic_defaults, ops_start_zero_and_unset)
{
    Vmm__Synic__RegisterHostEventPort hep = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    cr_expect_eq(hep.connection_id, 0);
    cr_expect_eq(hep.minimum_vtl, VMM__VTL__VTL0);
    cr_expect_str_empty(hep.target);

    Vmm__Synic__PostMessage pm = VMM__SYNIC__POST_MESSAGE__INIT;
    cr_expect_eq(pm.payload.len, 0);
    cr_expect_eq(pm.message_type, 0);

    Vmm__Synic__RetargetGuestEventPort rt = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__INIT;
    cr_expect_eq(rt.opt_sint_case, VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT__NOT_SET);

    Vmm__Synic__SetMonitorPage smp = VMM__SYNIC__SET_MONITOR_PAGE__INIT;
    cr_expect_eq(smp.opt_gpa_case, VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA__NOT_SET);

    Vmm__Synic__HostMessage hm = VMM__SYNIC__HOST_MESSAGE__INIT;
    cr_expect_not(hm.trusted);
}

/* Fails when an op, result or event is added or removed: add its round-trip
 * test below, then update the count. */
Test(synic_defaults, every_member_has_a_test)
{
    cr_expect_eq(vmm__synic__request__descriptor.n_fields, 23);
    cr_expect_eq(vmm__synic__reply__descriptor.n_fields, 10);
    cr_expect_eq(vmm__synic__event__descriptor.n_fields, 2);
}

/* ------------------------------------------------------------------------ */
/* Requests. */

Test(synic_request, register_host_event_port)
{
    Vmm__Synic__RegisterHostEventPort op = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    op.connection_id = 0x2001;
    op.minimum_vtl = VMM__VTL__VTL2;
    op.target = "vm0/dev/vmbus";
    Vmm__Synic__Request *out = S_REQ(register_host_event_port, REGISTER_HOST_EVENT_PORT, &op);
    cr_expect_eq(out->register_host_event_port->connection_id, 0x2001);
    cr_expect_eq(out->register_host_event_port->minimum_vtl, VMM__VTL__VTL2);
    cr_expect_str_eq(out->register_host_event_port->target, "vm0/dev/vmbus");
    S_FREE_REQ(out);
}

Test(synic_request, unregister_host_event_port)
{
    Vmm__Synic__UnregisterHostEventPort op = VMM__SYNIC__UNREGISTER_HOST_EVENT_PORT__INIT;
    op.handle = 0xabc;
    Vmm__Synic__Request *out = S_REQ(unregister_host_event_port, UNREGISTER_HOST_EVENT_PORT, &op);
    cr_expect_eq(out->unregister_host_event_port->handle, 0xabc);
    S_FREE_REQ(out);
}

Test(synic_request, register_host_message_port)
{
    Vmm__Synic__RegisterHostMessagePort op = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    op.connection_id = 1;
    op.minimum_vtl = VMM__VTL__VTL1;
    op.target = "vm0/dev/vmbus";
    Vmm__Synic__Request *out = S_REQ(register_host_message_port, REGISTER_HOST_MESSAGE_PORT, &op);
    cr_expect_eq(out->register_host_message_port->connection_id, 1);
    cr_expect_eq(out->register_host_message_port->minimum_vtl, VMM__VTL__VTL1);
    cr_expect_str_eq(out->register_host_message_port->target, "vm0/dev/vmbus");
    S_FREE_REQ(out);
}

Test(synic_request, unregister_host_message_port)
{
    Vmm__Synic__UnregisterHostMessagePort op = VMM__SYNIC__UNREGISTER_HOST_MESSAGE_PORT__INIT;
    op.handle = 0xabd;
    Vmm__Synic__Request *out = S_REQ(unregister_host_message_port, UNREGISTER_HOST_MESSAGE_PORT, &op);
    cr_expect_eq(out->unregister_host_message_port->handle, 0xabd);
    S_FREE_REQ(out);
}

Test(synic_request, signal_event)
{
    Vmm__Synic__SignalEvent op = VMM__SYNIC__SIGNAL_EVENT__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.connection_id = 0x2002;
    op.flag = 2047;
    Vmm__Synic__Request *out = S_REQ(signal_event, SIGNAL_EVENT, &op);
    cr_expect_eq(out->signal_event->vtl, VMM__VTL__VTL1);
    cr_expect_eq(out->signal_event->connection_id, 0x2002);
    cr_expect_eq(out->signal_event->flag, 2047);
    S_FREE_REQ(out);
}

Test(synic_request, handle_post_message)
{
    Vmm__Synic__HandlePostMessage op = VMM__SYNIC__HANDLE_POST_MESSAGE__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.connection_id = 4;
    op.secure = true;
    op.message_type = 1;
    op.payload = s_full_payload();
    Vmm__Synic__Request *out = S_REQ(handle_post_message, HANDLE_POST_MESSAGE, &op);
    Vmm__Synic__HandlePostMessage *o = out->handle_post_message;
    cr_expect_eq(o->vtl, VMM__VTL__VTL2);
    cr_expect_eq(o->connection_id, 4);
    cr_expect(o->secure);
    cr_expect_eq(o->message_type, 1);
    cr_assert_eq(o->payload.len, 240);
    cr_expect_arr_eq(o->payload.data, s_payload, 240);
    S_FREE_REQ(out);
}

Test(synic_request, post_message)
{
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.vp = 31;
    op.sint = 15;
    op.message_type = 0x80000001;
    op.payload = s_full_payload();
    Vmm__Synic__Request *out = S_REQ(post_message, POST_MESSAGE, &op);
    Vmm__Synic__PostMessage *o = out->post_message;
    cr_expect_eq(o->vtl, VMM__VTL__VTL1);
    cr_expect_eq(o->vp, 31);
    cr_expect_eq(o->sint, 15);
    cr_expect_eq(o->message_type, 0x80000001);
    cr_assert_eq(o->payload.len, 240);
    cr_expect_arr_eq(o->payload.data, s_payload, 240);
    S_FREE_REQ(out);
}

Test(synic_request, new_guest_event_port)
{
    Vmm__Synic__NewGuestEventPort op = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.vp = 7;
    op.sint = 2;
    op.flag = 100;
    Vmm__Synic__Request *out = S_REQ(new_guest_event_port, NEW_GUEST_EVENT_PORT, &op);
    cr_expect_eq(out->new_guest_event_port->vtl, VMM__VTL__VTL2);
    cr_expect_eq(out->new_guest_event_port->vp, 7);
    cr_expect_eq(out->new_guest_event_port->sint, 2);
    cr_expect_eq(out->new_guest_event_port->flag, 100);
    S_FREE_REQ(out);
}

Test(synic_request, signal_guest_event_port)
{
    Vmm__Synic__SignalGuestEventPort op = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    op.handle = 0xabe;
    Vmm__Synic__Request *out = S_REQ(signal_guest_event_port, SIGNAL_GUEST_EVENT_PORT, &op);
    cr_expect_eq(out->signal_guest_event_port->handle, 0xabe);
    S_FREE_REQ(out);
}

Test(synic_request, retarget_guest_event_port)
{
    Vmm__Synic__RetargetGuestEventPort op = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__INIT;
    op.handle = 0xabf;
    op.vp = 3;
    op.opt_sint_case = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT_SINT;
    op.sint = 0; /* Some(0): SINT 0 is a real SINT */
    Vmm__Synic__Request *out = S_REQ(retarget_guest_event_port, RETARGET_GUEST_EVENT_PORT, &op);
    cr_expect_eq(out->retarget_guest_event_port->handle, 0xabf);
    cr_expect_eq(out->retarget_guest_event_port->vp, 3);
    cr_expect_eq(out->retarget_guest_event_port->opt_sint_case, VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT_SINT);
    cr_expect_eq(out->retarget_guest_event_port->sint, 0);
    S_FREE_REQ(out);

    op.opt_sint_case = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT__NOT_SET;
    out = S_REQ(retarget_guest_event_port, RETARGET_GUEST_EVENT_PORT, &op);
    cr_expect_eq(out->retarget_guest_event_port->opt_sint_case,
                 VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT__NOT_SET);
    S_FREE_REQ(out);
}

Test(synic_request, unregister_guest_event_port)
{
    Vmm__Synic__UnregisterGuestEventPort op = VMM__SYNIC__UNREGISTER_GUEST_EVENT_PORT__INIT;
    op.handle = 0xac0;
    Vmm__Synic__Request *out = S_REQ(unregister_guest_event_port, UNREGISTER_GUEST_EVENT_PORT, &op);
    cr_expect_eq(out->unregister_guest_event_port->handle, 0xac0);
    S_FREE_REQ(out);
}

Test(synic_request, get_prefer_os_events)
{
    Vmm__Synic__GetPreferOsEvents op = VMM__SYNIC__GET_PREFER_OS_EVENTS__INIT;
    Vmm__Synic__Request *out = S_REQ(get_prefer_os_events, GET_PREFER_OS_EVENTS, &op);
    cr_expect_not_null(out->get_prefer_os_events);
    S_FREE_REQ(out);
}

Test(synic_request, get_monitor_support)
{
    Vmm__Synic__GetMonitorSupport op = VMM__SYNIC__GET_MONITOR_SUPPORT__INIT;
    Vmm__Synic__Request *out = S_REQ(get_monitor_support, GET_MONITOR_SUPPORT, &op);
    cr_expect_not_null(out->get_monitor_support);
    S_FREE_REQ(out);
}

Test(synic_request, register_monitor)
{
    Vmm__Synic__RegisterMonitor op = VMM__SYNIC__REGISTER_MONITOR__INIT;
    op.monitor_id = 127;
    op.connection_id = 0x2003;
    Vmm__Synic__Request *out = S_REQ(register_monitor, REGISTER_MONITOR, &op);
    cr_expect_eq(out->register_monitor->monitor_id, 127);
    cr_expect_eq(out->register_monitor->connection_id, 0x2003);
    S_FREE_REQ(out);
}

Test(synic_request, unregister_monitor)
{
    Vmm__Synic__UnregisterMonitor op = VMM__SYNIC__UNREGISTER_MONITOR__INIT;
    op.handle = 0xac1;
    Vmm__Synic__Request *out = S_REQ(unregister_monitor, UNREGISTER_MONITOR, &op);
    cr_expect_eq(out->unregister_monitor->handle, 0xac1);
    S_FREE_REQ(out);
}

Test(synic_request, set_monitor_page)
{
    Vmm__Synic__SetMonitorPage op = VMM__SYNIC__SET_MONITOR_PAGE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.opt_gpa_case = VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA_GPA;
    op.gpa = 0xf0000000;
    Vmm__Synic__Request *out = S_REQ(set_monitor_page, SET_MONITOR_PAGE, &op);
    cr_expect_eq(out->set_monitor_page->vtl, VMM__VTL__VTL1);
    cr_expect_eq(out->set_monitor_page->opt_gpa_case, VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA_GPA);
    cr_expect_eq(out->set_monitor_page->gpa, 0xf0000000);
    S_FREE_REQ(out);

    /* None (no page in use) must not come back as Some(0). */
    op.opt_gpa_case = VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA__NOT_SET;
    out = S_REQ(set_monitor_page, SET_MONITOR_PAGE, &op);
    cr_expect_eq(out->set_monitor_page->opt_gpa_case, VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA__NOT_SET);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Replies. */

Test(synic_request, access_msr)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = 3;
    op.index = 0x40000083; /* SIMP */
    op.write = true;
    op.value = 0xfffff001ull;
    Vmm__Synic__Request *out = S_REQ(access_msr, ACCESS_MSR, &op);
    cr_expect_eq(out->access_msr->vp, 3);
    cr_expect_eq(out->access_msr->index, 0x40000083);
    cr_expect(out->access_msr->write);
    cr_expect_eq(out->access_msr->value, 0xfffff001ull);
    S_FREE_REQ(out);
}

Test(synic_request, assert_sint)
{
    Vmm__Synic__AssertSint op = VMM__SYNIC__ASSERT_SINT__INIT;
    op.vtl = VMM__VTL__VTL0;
    op.vp = 7;
    op.sint = 15;
    Vmm__Synic__Request *out = S_REQ(assert_sint, ASSERT_SINT, &op);
    cr_expect_eq(out->assert_sint->vp, 7);
    cr_expect_eq(out->assert_sint->sint, 15);
    S_FREE_REQ(out);
}

Test(synic_request, set_time_base)
{
    Vmm__Synic__SetTimeBase op = VMM__SYNIC__SET_TIME_BASE__INIT;
    op.ref_time = 10000000000ull;
    op.guest_tsc = UINT64_MAX;
    Vmm__Synic__Request *out = S_REQ(set_time_base, SET_TIME_BASE, &op);
    cr_expect_eq(out->set_time_base->ref_time, 10000000000ull);
    cr_expect_eq(out->set_time_base->guest_tsc, UINT64_MAX);
    S_FREE_REQ(out);
}

Test(synic_request, save_and_restore_state)
{
    Vmm__Synic__SaveState save = VMM__SYNIC__SAVE_STATE__INIT;
    Vmm__Synic__Request *out = S_REQ(save_state, SAVE_STATE, &save);
    cr_expect_not_null(out->save_state);
    S_FREE_REQ(out);

    uint8_t payload[3] = {7, 8, 9};
    Vmm__Synic__SavedMessage m = VMM__SYNIC__SAVED_MESSAGE__INIT;
    m.message_type = 0x80000010;
    m.payload = (ProtobufCBinaryData){sizeof payload, payload};
    m.timer = -1;
    Vmm__Synic__SavedMessage *ms[1] = {&m};
    Vmm__Synic__SavedQueue q = VMM__SYNIC__SAVED_QUEUE__INIT;
    q.sint = 2;
    q.messages = ms;
    q.n_messages = 1;
    Vmm__Synic__SavedQueue *qs[1] = {&q};
    uint64_t sints[16] = {[2] = 0x50};
    Vmm__Synic__SavedVp vp = VMM__SYNIC__SAVED_VP__INIT;
    vp.vp = 1;
    vp.sints = sints;
    vp.n_sints = 16;
    vp.queues = qs;
    vp.n_queues = 1;
    Vmm__Synic__SavedVp *vps[1] = {&vp};
    Vmm__Synic__SavedState st = VMM__SYNIC__SAVED_STATE__INIT;
    st.guest_os_id = 0x8100000000000000ull;
    st.vps = vps;
    st.n_vps = 1;
    Vmm__Synic__RestoreState restore = VMM__SYNIC__RESTORE_STATE__INIT;
    restore.state = &st;
    out = S_REQ(restore_state, RESTORE_STATE, &restore);
    const Vmm__Synic__SavedState *got = out->restore_state->state;
    cr_expect_eq(got->guest_os_id, 0x8100000000000000ull);
    cr_assert_eq(got->n_vps, 1);
    cr_expect_eq(got->vps[0]->sints[2], 0x50);
    cr_assert_eq(got->vps[0]->n_queues, 1);
    cr_expect_eq(got->vps[0]->queues[0]->messages[0]->timer, -1);
    cr_expect_eq(got->vps[0]->queues[0]->messages[0]->payload.len, 3);
    S_FREE_REQ(out);
}

Test(synic_request, port_table)
{
    Vmm__Synic__HostPortEntry host = VMM__SYNIC__HOST_PORT_ENTRY__INIT;
    host.handle = 4;
    host.message = true;
    host.connection_id = 0xffffff;
    host.minimum_vtl = VMM__VTL__VTL2;
    host.target = "vm0/dev/vmbus";
    Vmm__Synic__HostPortEntry *hosts[] = {&host};
    Vmm__Synic__GuestPortEntry guest = VMM__SYNIC__GUEST_PORT_ENTRY__INIT;
    guest.handle = 5;
    guest.vp = 255;
    guest.sint = 15;
    guest.flag = 2047;
    Vmm__Synic__GuestPortEntry *guests[] = {&guest, &guest};
    Vmm__Synic__PortTable op = VMM__SYNIC__PORT_TABLE__INIT;
    op.generation = UINT64_MAX;
    op.n_host_ports = 1;
    op.host_ports = hosts;
    op.n_guest_ports = 2;
    op.guest_ports = guests;
    Vmm__Synic__Request *out = S_REQ(port_table, PORT_TABLE, &op);
    const Vmm__Synic__PortTable *t = out->port_table;
    cr_expect_eq(t->generation, UINT64_MAX);
    cr_assert_eq(t->n_host_ports, 1);
    cr_expect_eq(t->host_ports[0]->handle, 4);
    cr_expect(t->host_ports[0]->message);
    cr_expect_eq(t->host_ports[0]->connection_id, 0xffffff);
    cr_expect_eq(t->host_ports[0]->minimum_vtl, VMM__VTL__VTL2);
    cr_expect_str_eq(t->host_ports[0]->target, "vm0/dev/vmbus");
    cr_assert_eq(t->n_guest_ports, 2);
    cr_expect_eq(t->guest_ports[1]->vp, 255);
    cr_expect_eq(t->guest_ports[1]->sint, 15);
    cr_expect_eq(t->guest_ports[1]->flag, 2047);
    S_FREE_REQ(out);
}

Test(synic_request, hypercall)
{
    Vmm__Synic__Hypercall op = VMM__SYNIC__HYPERCALL__INIT;
    op.vp = 1;
    op.control = 0x1005d; /* HvSignalEvent, fast */
    op.input = 0x0000000500000001ull;
    op.output = 0xffffffffffffffffull;
    Vmm__Synic__Request *out = S_REQ(hypercall, HYPERCALL, &op);
    cr_expect_eq(out->hypercall->vp, 1);
    cr_expect_eq(out->hypercall->control, 0x1005d);
    cr_expect_eq(out->hypercall->input, 0x0000000500000001ull);
    cr_expect_eq(out->hypercall->output, 0xffffffffffffffffull);
    S_FREE_REQ(out);
}

Test(synic_reply, msr_result)
{
    Vmm__Synic__MsrResult res = VMM__SYNIC__MSR_RESULT__INIT;
    res.value = 0x8000000000000001ull;
    Vmm__Synic__Reply *out = S_REPLY(msr_result, MSR_RESULT, &res);
    cr_expect_eq(out->msr_result->value, 0x8000000000000001ull);
    cr_expect_not(out->msr_result->gp);
    S_FREE_REPLY(out);
    res.value = 0;
    res.gp = true;
    out = S_REPLY(msr_result, MSR_RESULT, &res);
    cr_expect(out->msr_result->gp);
    S_FREE_REPLY(out);
}

Test(synic_reply, hypercall_result)
{
    Vmm__Synic__HypercallResult res = VMM__SYNIC__HYPERCALL_RESULT__INIT;
    res.rax = 0x0000000100000012ull;
    Vmm__Synic__Reply *out = S_REPLY(hypercall_result, HYPERCALL_RESULT, &res);
    cr_expect_eq(out->hypercall_result->rax, 0x0000000100000012ull);
    S_FREE_REPLY(out);
}

Test(synic_reply, host_event_port)
{
    Vmm__Synic__HostEventPortHandle res = VMM__SYNIC__HOST_EVENT_PORT_HANDLE__INIT;
    res.handle = 1;
    Vmm__Synic__Reply *out = S_REPLY(host_event_port, HOST_EVENT_PORT, &res);
    cr_expect_eq(out->host_event_port->handle, 1);
    S_FREE_REPLY(out);
}

Test(synic_reply, host_message_port)
{
    Vmm__Synic__HostMessagePortHandle res = VMM__SYNIC__HOST_MESSAGE_PORT_HANDLE__INIT;
    res.handle = 2;
    Vmm__Synic__Reply *out = S_REPLY(host_message_port, HOST_MESSAGE_PORT, &res);
    cr_expect_eq(out->host_message_port->handle, 2);
    S_FREE_REPLY(out);
}

Test(synic_reply, hypercall_status)
{
    Vmm__Synic__HypercallStatus res = VMM__SYNIC__HYPERCALL_STATUS__INIT;
    res.hv_status = 0x12;
    Vmm__Synic__Reply *out = S_REPLY(hypercall_status, HYPERCALL_STATUS, &res);
    cr_expect_eq(out->hypercall_status->hv_status, 0x12);
    S_FREE_REPLY(out);
}

Test(synic_reply, guest_event_port)
{
    Vmm__Synic__GuestEventPortHandle res = VMM__SYNIC__GUEST_EVENT_PORT_HANDLE__INIT;
    res.handle = 3;
    res.signal_to = "vm0/synic/vp/2";
    Vmm__Synic__Reply *out = S_REPLY(guest_event_port, GUEST_EVENT_PORT, &res);
    cr_expect_eq(out->guest_event_port->handle, 3);
    cr_expect_str_eq(out->guest_event_port->signal_to, "vm0/synic/vp/2");
    S_FREE_REPLY(out);
}

Test(synic_reply, prefer_os_events)
{
    Vmm__Synic__PreferOsEvents res = VMM__SYNIC__PREFER_OS_EVENTS__INIT;
    res.prefer = true;
    Vmm__Synic__Reply *out = S_REPLY(prefer_os_events, PREFER_OS_EVENTS, &res);
    cr_expect(out->prefer_os_events->prefer);
    S_FREE_REPLY(out);
}

Test(synic_reply, monitor_support)
{
    Vmm__Synic__MonitorSupport res = VMM__SYNIC__MONITOR_SUPPORT__INIT;
    res.supported = true;
    Vmm__Synic__Reply *out = S_REPLY(monitor_support, MONITOR_SUPPORT, &res);
    cr_expect(out->monitor_support->supported);
    S_FREE_REPLY(out);
}

Test(synic_reply, monitor)
{
    Vmm__Synic__MonitorHandle res = VMM__SYNIC__MONITOR_HANDLE__INIT;
    res.handle = 0xffffffffffffffffull;
    Vmm__Synic__Reply *out = S_REPLY(monitor, MONITOR, &res);
    cr_expect_eq(out->monitor->handle, 0xffffffffffffffffull);
    S_FREE_REPLY(out);
}

/* ------------------------------------------------------------------------ */
/* Events. */

Test(synic_event, host_event_signalled)
{
    Vmm__Synic__HostEventSignalled ev = VMM__SYNIC__HOST_EVENT_SIGNALLED__INIT;
    ev.handle = 5;
    ev.connection_id = 0x2001;
    ev.flag = 9;
    Vmm__Synic__Event *out = S_EVENT(host_event_signalled, HOST_EVENT_SIGNALLED, &ev);
    cr_expect_eq(out->host_event_signalled->handle, 5);
    cr_expect_eq(out->host_event_signalled->connection_id, 0x2001);
    cr_expect_eq(out->host_event_signalled->flag, 9);
    S_FREE_EVENT(out);
}

Test(synic_event, host_message)
{
    Vmm__Synic__HostMessage ev = VMM__SYNIC__HOST_MESSAGE__INIT;
    ev.handle = 6;
    ev.connection_id = 1;
    ev.message_type = 1;
    ev.payload = s_full_payload();
    ev.trusted = true;
    Vmm__Synic__Event *out = S_EVENT(host_message, HOST_MESSAGE, &ev);
    Vmm__Synic__HostMessage *o = out->host_message;
    cr_expect_eq(o->handle, 6);
    cr_expect_eq(o->connection_id, 1);
    cr_expect_eq(o->message_type, 1);
    cr_assert_eq(o->payload.len, 240);
    cr_expect_arr_eq(o->payload.data, s_payload, 240);
    cr_expect(o->trusted);
    S_FREE_EVENT(out);
}

/* ------------------------------------------------------------------------ */
/* Bad input. */

/* An empty buffer is a valid proto3 encoding of "no op": it decodes, but to
 * NOT_SET, which the synic actor must answer with INVALID_ARGUMENT. */
Test(synic_bad_input, empty_buffer_is_not_set)
{
    proto_check_empty_decodes_unset(&vmm__synic__request__descriptor);
}

/* Every strict prefix of a one-op request cuts its only field short. */
Test(synic_bad_input, truncated_buffers_fail)
{
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vp = 1;
    op.sint = 2;
    op.message_type = 3;
    op.payload = s_full_payload();
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    proto_check_prefixes_fail(&req.base);
}

Test(synic_bad_input, garbage_fails)
{
    proto_check_garbage_fails(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

/* Flipping bytes of a valid request either fails to decode or decodes to a
 * message that round-trips; never a crash or a leak (ASan). */
Test(synic_bad_input, mutated_bytes_are_safe)
{
    static uint8_t payload[] = {1, 2, 3, 4};
    Vmm__Synic__HandlePostMessage op = VMM__SYNIC__HANDLE_POST_MESSAGE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.connection_id = 0x2001;
    op.message_type = 5;
    op.payload = (ProtobufCBinaryData){sizeof(payload), payload};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_HANDLE_POST_MESSAGE;
    req.handle_post_message = &op;
    proto_check_mutations_safe(&req.base);
}
