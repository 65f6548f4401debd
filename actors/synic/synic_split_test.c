/* The split synic: what its central actor and its VPs' actors say to each
 * other, and what each refuses. The other synic tests run split too (their
 * _split targets); these are about the split itself. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/synic/testing/synic_harness.h"

#define S_VP0 HARNESS_SYNIC "/vp/0"
#define S_VP1 HARNESS_SYNIC "/vp/1"
#define S_CONNECTION 0x42

static harness_t *s_h;

static void s_start(void)
{
    setenv("SYNIC_HARNESS_SPLIT", "1", 1);
    s_h = harness_new(2, 0);
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

static long long s_inspect(const char *actor, const char *name)
{
    char value[64];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(s_h->device), actor, &env, &reply, 2000), 0);
    long long n = -1;
    const Vmm__Rt__InspectNode *root = reply.env->inspect_reply;
    for (size_t i = 0; root && i < root->n_children; i++)
        if (!strcmp(root->children[i]->name, name)) {
            snprintf(value, sizeof value, "%s", root->children[i]->value);
            n = strtoll(value, NULL, 0);
        }
    rt_msg_release(&reply);
    return n;
}

/* A synic request from the device client to `to`: 0, or the Error's code
 * with its text in s_h->last_error. */
static int s_request(const char *to, Vmm__Synic__Request *req)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(s_h->device), to, &env, &reply, 2000), 0);
    int rc = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        snprintf(s_h->last_error, sizeof s_h->last_error, "%s", reply.env->error->text);
        rc = (int)reply.env->error->code;
    }
    rt_msg_release(&reply);
    return rc;
}

static int s_post(const char *to, uint32_t vp)
{
    uint64_t payload = 7;
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vp = vp;
    op.sint = 2;
    op.message_type = 0x100;
    op.payload = (ProtobufCBinaryData){sizeof payload, (uint8_t *)&payload};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    return s_request(to, &req);
}

static int s_signal(const char *to, uint64_t handle)
{
    Vmm__Synic__SignalGuestEventPort op = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    op.handle = handle;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &op;
    return s_request(to, &req);
}

Test(split, each_vp_actor_gets_the_port_tables_sent_before_the_reply, .init = s_start,
     .fini = s_stop)
{
    uint64_t port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, S_CONNECTION,
                                            VMM__VTL__VTL0, HARNESS_TARGET, &port),
                 0, "%s", s_h->last_error);
    uint64_t guest;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 1, 3, 9, &guest), 0);
    /* Both tables left central before either reply, and the harness waits
     * for the VPs' actors to take them. */
    cr_expect_eq(s_inspect(HARNESS_SYNIC, "tables_pushed"), 2);
    cr_expect_eq(s_inspect(S_VP0, "host_ports"), 1);
    cr_expect_eq(s_inspect(S_VP1, "guest_ports"), 1);
    cr_expect_eq(s_inspect(S_VP1, "tables_taken"), 2);
}

Test(split, a_guest_port_handle_names_its_vps_actor, .init = s_start, .fini = s_stop)
{
    Vmm__Synic__NewGuestEventPort op = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    op.vp = 1;
    op.sint = 4;
    op.flag = 1;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &op;
    rt_msg_t reply;
    cr_assert_eq(harness_request(s_h, s_h->device, &req, &reply), 0);
    cr_expect_str_eq(reply.env->synic_reply->guest_event_port->signal_to, S_VP1);
    rt_msg_release(&reply);
}

/* A guest event port of VP 1 signalled at VP 0's actor: passed on, the
 * flag lands in VP 1's page and VP 1 is interrupted. */
Test(split, a_signal_for_another_vp_is_passed_to_it, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 1);
    harness_unmask(s_h, 1, 3, 0x63);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 1, 3, 9, &port), 0);
    cr_assert_eq(s_signal(S_VP0, port), 0, "%s", s_h->last_error);
    harness_expect_msi(s_h, 1, 0x63);
    uint8_t byte;
    fake_partition_read(s_h->partition, HARNESS_SIEFP(1) + 256 * 3 + 1, &byte, 1);
    cr_expect_eq(byte, 1 << 1, "flag 9: byte 1, bit 1");
    cr_expect_eq(s_inspect(S_VP0, "passed_on"), 1);
    cr_expect_eq(s_inspect(S_VP1, "events_signalled"), 1);
}

Test(split, a_vp_actor_serves_its_own_vp_only, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 1);
    cr_expect_eq(s_post(S_VP0, 1), VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_neq(strstr(s_h->last_error, S_VP1), NULL, "names VP 1's actor: %s",
                  s_h->last_error);
    cr_expect_eq(s_post(S_VP1, 1), 0, "%s", s_h->last_error);
    /* Through central, handed on and answered by VP 1's actor. */
    cr_expect_eq(s_post(HARNESS_SYNIC, 1), 0, "%s", s_h->last_error);
    cr_expect_eq(s_inspect(S_VP1, "posted"), 2);
    cr_expect_eq(s_inspect(HARNESS_SYNIC, "passed_on"), 1);
    cr_expect_eq(s_inspect(S_VP0, "bad_requests"), 1);
}

Test(split, ports_and_monitors_are_centrals, .init = s_start, .fini = s_stop)
{
    Vmm__Synic__RegisterMonitor op = VMM__SYNIC__REGISTER_MONITOR__INIT;
    op.monitor_id = 1;
    op.connection_id = 2;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR;
    req.register_monitor = &op;
    cr_expect_eq(s_request(S_VP1, &req), VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_neq(strstr(s_h->last_error, "send op"), NULL, "%s", s_h->last_error);
    cr_expect_eq(s_request(HARNESS_SYNIC, &req), 0, "%s", s_h->last_error);
}

/* Only central sends port tables: one from a device would let it point a
 * VP's hypercalls anywhere. */
Test(split, a_port_table_from_anyone_else_is_refused, .init = s_start, .fini = s_stop)
{
    Vmm__Synic__HostPortEntry host = VMM__SYNIC__HOST_PORT_ENTRY__INIT;
    host.handle = 1;
    host.connection_id = S_CONNECTION;
    host.target = HARNESS_TARGET;
    Vmm__Synic__HostPortEntry *hosts[] = {&host};
    Vmm__Synic__PortTable table = VMM__SYNIC__PORT_TABLE__INIT;
    table.generation = 1000;
    table.n_host_ports = 1;
    table.host_ports = hosts;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_PORT_TABLE;
    req.port_table = &table;
    cr_expect_eq(s_request(S_VP0, &req), VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_eq(s_request(HARNESS_SYNIC, &req), VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_eq(s_inspect(S_VP0, "host_ports"), 0);
    cr_expect_eq(s_inspect(S_VP0, "bad_requests"), 1);
}

/* GUEST_OS_ID, HYPERCALL and REFERENCE_TSC are the partition's: written on
 * one VP, read on the other; the hypercall page is written once. */
Test(split, partition_wide_msrs_are_one_for_all_vps, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 0x1234);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_GUEST_OS_ID), 0x1234);
    harness_wrmsr_ok(s_h, 1, SYNIC_MSR_HYPERCALL, 0x20000 | SYNIC_HYPERCALL_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL),
                 0x20000 | SYNIC_HYPERCALL_ENABLE);
    uint8_t code[3];
    fake_partition_read(s_h->partition, 0x20000, code, sizeof code);
    cr_expect_eq(code[0], 0xe5);
    cr_expect_eq(code[1], SYNIC_HYPERCALL_PORT);
    cr_expect_eq(code[2], 0xc3);
    /* Per VP: VP 1's SCONTROL is not VP 0's. */
    harness_wrmsr_ok(s_h, 1, SYNIC_MSR_SCONTROL, SYNIC_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SCONTROL), 0);
    cr_expect_eq(s_inspect(HARNESS_SYNIC, "msr_writes"), 2);
}

/* A connection registered before VP 0's actor could hear of it: the
 * hypercall asks central, and the signal still reaches the target. */
Test(split, a_hypercall_to_a_connection_the_vp_does_not_know_asks_central)
{
    setenv("SYNIC_HARNESS_SPLIT", "1", 1);
    s_h = harness_new(1, 0);
    /* Take VP 0's actor's table away: a newer, empty one from central
     * cannot be forged, so stop the actor and start it again, late. */
    rt_executor_destroy(&s_h->vp_ex[0]);
    uint64_t port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, S_CONNECTION,
                                            VMM__VTL__VTL0, HARNESS_TARGET, &port),
                 0, "%s", s_h->last_error);
    synic_config_t cfg = s_h->cfg;
    cfg.role = SYNIC_VP;
    cfg.vp = 0;
    cfg.central = HARNESS_SYNIC;
    s_h->vp_ex[0] = rt_executor_new(s_h->rt, S_VP0);
    rt_actor_spec_t spec = {.name = S_VP0, .ops = &synic_ops, .arg = &cfg};
    cr_assert_eq(rt_actor_start(s_h->vp_ex[0], &spec), 0);
    cr_assert_eq(s_inspect(S_VP0, "host_ports"), 0);

    uint64_t rax;
    cr_assert_eq(harness_hypercall(s_h, 0, SYNIC_HVCALL_SIGNAL_EVENT | SYNIC_HYPERCALL_FAST,
                                   S_CONNECTION | 3ull << 32, &rax),
                 0);
    cr_expect_eq(rax, SYNIC_HV_STATUS_SUCCESS);
    const Vmm__Envelope *env = harness_recv(s_h, s_h->target, 2000);
    cr_assert_not_null(env);
    cr_expect_str_eq(env->sender, HARNESS_SYNIC, "central routed it");
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
    cr_expect_eq(env->synic_event->host_event_signalled->flag, 3);
    /* And an unknown one is unknown to central too. */
    cr_assert_eq(harness_hypercall(s_h, 0, SYNIC_HVCALL_SIGNAL_EVENT | SYNIC_HYPERCALL_FAST,
                                   S_CONNECTION + 1, &rax),
                 0);
    cr_expect_eq(rax, SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    harness_destroy(&s_h);
}
