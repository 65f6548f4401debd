/* Guest event ports (flags in the SIEF page), host ports and the guest's
 * HvSignalEvent / HvPostMessage hypercalls with their statuses, and bad
 * requests. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/synic/testing/synic_harness.h"

/* Guest pages for hypercall inputs. */
#define INPUT_PAGE 0x30000u

static harness_t *s_h;

static void s_start(void)
{
    s_h = harness_new(2, 0);
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

static uint8_t s_flag_byte(uint32_t vp, uint32_t sint, uint32_t flag)
{
    uint8_t byte;
    fake_partition_read(s_h->partition, HARNESS_SIEFP(vp) + 256 * sint + flag / 8, &byte, 1);
    return byte;
}

static void s_clear_flags(uint32_t vp, uint32_t sint)
{
    static const uint8_t zeros[256];
    fake_partition_write(s_h->partition, HARNESS_SIEFP(vp) + 256 * sint, zeros, sizeof zeros);
}

/* ---- Guest event ports ------------------------------------------------------------- */

Test(guest_port, a_signal_sets_the_flag_and_interrupts_once_per_new_bit, .init = s_start,
     .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 5, 0x50);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 5, 77, &port), 0, "%s",
                 s_h->last_error);
    cr_expect_neq(port, 0);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_msi(s_h, 0, 0x50);
    cr_expect_eq(s_flag_byte(0, 5, 77), 1 << (77 % 8), "flag 77: byte 9, bit 5");
    cr_expect_eq(s_flag_byte(0, 4, 77), 0, "only SINT 5's flags");
    /* Not yet seen by the guest: no second interrupt. */
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->stranger, port), 0);
    harness_expect_no_msi(s_h, 50);
    cr_expect_eq(harness_inspect(s_h, "events_coalesced"), 1);
    /* The guest takes the flag: the next signal interrupts again. */
    s_clear_flags(0, 5);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_msi(s_h, 0, 0x50);
    cr_expect_eq(harness_inspect(s_h, "events_signalled"), 2);
}

Test(guest_port, two_ports_share_a_sint_with_their_own_flags, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 1);
    harness_unmask(s_h, 1, 2, 0x22);
    uint64_t a, b;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 1, 2, 0, &a), 0);
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 1, 2, 2047, &b), 0);
    cr_expect_neq(a, b);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, a), 0);
    harness_expect_msi(s_h, 1, 0x22);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, b), 0);
    harness_expect_msi(s_h, 1, 0x22);
    cr_expect_eq(s_flag_byte(1, 2, 0), 0x01);
    cr_expect_eq(s_flag_byte(1, 2, 2047), 0x80);
}

Test(guest_port, retargeting_moves_later_signals, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_enable_synic(s_h, 1);
    harness_unmask(s_h, 0, 5, 0x50);
    harness_unmask(s_h, 0, 6, 0x56);
    harness_unmask(s_h, 1, 6, 0x66);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 5, 3, &port), 0);
    cr_assert_eq(harness_retarget_guest_port(s_h, s_h->device, port, 1, 6), 0, "%s",
                 s_h->last_error);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_msi(s_h, 1, 0x66);
    cr_expect_eq(s_flag_byte(1, 6, 3), 0x08);
    cr_expect_eq(s_flag_byte(0, 5, 3), 0, "not on the old VP");
    /* Without a SINT the port keeps its own. */
    cr_assert_eq(harness_retarget_guest_port(s_h, s_h->device, port, 0, -1), 0);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_msi(s_h, 0, 0x56);
    cr_expect_eq(s_flag_byte(0, 6, 3), 0x08, "SINT 6 kept");
}

Test(guest_port, only_its_owner_changes_a_port, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 5, 0x50);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 5, 1, &port), 0);
    cr_expect_eq(harness_unregister_guest_port(s_h, s_h->stranger, port),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect(strstr(s_h->last_error, HARNESS_DEVICE), "%s", s_h->last_error);
    cr_expect_eq(harness_retarget_guest_port(s_h, s_h->stranger, port, 1, 1),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_msi(s_h, 0, 0x50);
    cr_expect_eq(harness_unregister_guest_port(s_h, s_h->device, port), 0);
    cr_expect_eq(harness_signal_guest_port(s_h, s_h->device, port), VMM__ERROR_CODE__NOT_FOUND);
    cr_expect_eq(harness_unregister_guest_port(s_h, s_h->device, port),
                 VMM__ERROR_CODE__NOT_FOUND);
    cr_expect_eq(harness_inspect(s_h, "guest_ports"), 0);
}

Test(guest_port, bad_ports_are_refused, .init = s_start, .fini = s_stop)
{
    uint64_t port;
    cr_expect_eq(harness_new_guest_port(s_h, s_h->device, 0, 5, 2048, &port),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "event flag 2048"), "%s", s_h->last_error);
    cr_expect_eq(harness_new_guest_port(s_h, s_h->device, 0, 16, 0, &port),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_new_guest_port(s_h, s_h->device, 2, 0, 0, &port),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    Vmm__Synic__NewGuestEventPort op = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    op.vtl = VMM__VTL__VTL2;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &op;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__NOT_SUPPORTED);
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 5, 1, &port), 0);
    cr_expect_eq(harness_retarget_guest_port(s_h, s_h->device, port, 0, 16),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_retarget_guest_port(s_h, s_h->device, port, 5, 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_signal_guest_port(s_h, s_h->device, port + 100),
                 VMM__ERROR_CODE__NOT_FOUND);
    cr_expect_eq(harness_inspect(s_h, "guest_ports"), 1);
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 6);
    cr_expect_eq(harness_inspect(s_h, "unsupported"), 1);
}

Test(guest_port, flags_signalled_before_the_synic_is_enabled_arrive_with_it, .init = s_start,
     .fini = s_stop)
{
    harness_unmask(s_h, 0, 7, 0x77);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 7, 100, &port), 0);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    harness_expect_no_msi(s_h, 50);
    cr_expect_eq(harness_inspect(s_h, "events_deferred"), 1);
    harness_enable_synic(s_h, 0);
    harness_expect_msi(s_h, 0, 0x77);
    cr_expect_eq(s_flag_byte(0, 7, 100), 0x10);
}

Test(guest_port, a_masked_sint_interrupts_when_unmasked, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    uint64_t port;
    cr_assert_eq(harness_new_guest_port(s_h, s_h->device, 0, 8, 9, &port), 0);
    cr_assert_eq(harness_signal_guest_port(s_h, s_h->device, port), 0);
    cr_expect_eq(s_flag_byte(0, 8, 9), 0x02, "the flag is set");
    harness_expect_no_msi(s_h, 50);
    harness_unmask(s_h, 0, 8, 0x88);
    harness_expect_msi(s_h, 0, 0x88);
}

/* ---- Host ports and hypercalls ------------------------------------------------------- */

static uint64_t s_call(uint64_t control, uint64_t input)
{
    uint64_t rax = ~0ull;
    cr_assert_eq(harness_hypercall(s_h, 0, control, input, &rax), 0, "%s", s_h->last_error);
    return rax;
}

static uint64_t s_signal_fast(uint32_t connection_id, uint32_t flag)
{
    return s_call(SYNIC_HVCALL_SIGNAL_EVENT | SYNIC_HYPERCALL_FAST,
                  connection_id | (uint64_t)flag << 32);
}

/* Writes an HvPostMessage input at gpa and makes the call. */
static uint64_t s_post(uint64_t gpa, uint32_t connection_id, uint32_t type, uint32_t size,
                       const char *payload)
{
    uint8_t in[SYNIC_POST_MESSAGE_INPUT_SIZE] = {0};
    memcpy(in, &connection_id, 4);
    memcpy(in + 8, &type, 4);
    memcpy(in + 12, &size, 4);
    if (payload)
        memcpy(in + 16, payload, strlen(payload));
    size_t len = sizeof in;
    if (gpa + len > HARNESS_RAM_SIZE)
        len = gpa < HARNESS_RAM_SIZE ? HARNESS_RAM_SIZE - gpa : 0;
    fake_partition_write(s_h->partition, gpa, in, len);
    return s_call(SYNIC_HVCALL_POST_MESSAGE, gpa);
}

static const Vmm__Synic__Event *s_expect_event(Vmm__Synic__Event__EventCase kind)
{
    const Vmm__Envelope *env = harness_recv(s_h, s_h->target, 2000);
    cr_assert_not_null(env, "the target received nothing");
    cr_assert_eq(env->request_id, 0, "one-way");
    /* From the synic: split, from the actor of the VP that made the call. */
    cr_expect_eq(strncmp(env->sender, HARNESS_SYNIC, strlen(HARNESS_SYNIC)), 0, "from %s",
                 env->sender);
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
    cr_assert_eq(env->synic_event->event_case, kind);
    return env->synic_event;
}

static void s_expect_nothing(void)
{
    const Vmm__Envelope *env = harness_recv(s_h, s_h->target, 50);
    cr_expect_null(env, "the target received body kind %d", env ? (int)env->body_case : 0);
}

Test(host_port, hv_signal_event_reaches_the_event_port, .init = s_start, .fini = s_stop)
{
    uint64_t port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, 7, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &port),
                 0, "%s", s_h->last_error);
    cr_expect_eq(s_signal_fast(7, 3), SYNIC_HV_STATUS_SUCCESS);
    const Vmm__Synic__Event *ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED);
    cr_expect_eq(ev->host_event_signalled->handle, port);
    cr_expect_eq(ev->host_event_signalled->connection_id, 7);
    cr_expect_eq(ev->host_event_signalled->flag, 3);
    /* The memory form: 8 bytes at an aligned GPA. */
    uint64_t input = 7 | (uint64_t)2047 << 32;
    fake_partition_write(s_h->partition, INPUT_PAGE + 8, &input, 8);
    cr_expect_eq(s_call(SYNIC_HVCALL_SIGNAL_EVENT, INPUT_PAGE + 8), SYNIC_HV_STATUS_SUCCESS);
    ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED);
    cr_expect_eq(ev->host_event_signalled->flag, 2047);
    cr_expect_eq(harness_inspect(s_h, "host_events"), 2);
}

Test(host_port, hv_post_message_reaches_the_message_port, .init = s_start, .fini = s_stop)
{
    uint64_t port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, true, 9, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &port),
                 0, "%s", s_h->last_error);
    cr_expect_eq(s_post(INPUT_PAGE, 9, 0x42, 5, "abcdefgh"), SYNIC_HV_STATUS_SUCCESS);
    const Vmm__Synic__Event *ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE);
    const Vmm__Synic__HostMessage *m = ev->host_message;
    cr_expect_eq(m->handle, port);
    cr_expect_eq(m->connection_id, 9);
    cr_expect_eq(m->message_type, 0x42);
    cr_assert_eq(m->payload.len, 5, "only payload size bytes");
    cr_expect_arr_eq(m->payload.data, "abcde", 5);
    cr_expect(!m->trusted);
    /* A full payload, the input at the last place it fits in its page. */
    char full[SYNIC_PAYLOAD_MAX + 1];
    memset(full, 'x', SYNIC_PAYLOAD_MAX);
    full[SYNIC_PAYLOAD_MAX] = 0;
    cr_expect_eq(s_post(INPUT_PAGE + SYNIC_PAGE_SIZE - 256, 9, 0x7fffffff, SYNIC_PAYLOAD_MAX,
                        full),
                 SYNIC_HV_STATUS_SUCCESS);
    ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE);
    cr_expect_eq(ev->host_message->payload.len, SYNIC_PAYLOAD_MAX);
    cr_expect_eq(ev->host_message->message_type, 0x7fffffff);
}

Test(host_port, hypercall_errors_get_their_tlfs_status, .init = s_start, .fini = s_stop)
{
    uint64_t port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, 7, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &port),
                 0);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, true, 9, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &port),
                 0);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, 10, VMM__VTL__VTL1,
                                            HARNESS_TARGET, &port),
                 0);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, true, 11, VMM__VTL__VTL2,
                                            HARNESS_TARGET, &port),
                 0);
    /* Codes. */
    cr_expect_eq(s_call(0x0099, 0), SYNIC_HV_STATUS_INVALID_HYPERCALL_CODE);
    cr_expect_eq(s_call(0x0000 | SYNIC_HYPERCALL_FAST, 7), SYNIC_HV_STATUS_INVALID_HYPERCALL_CODE);
    /* Control bits. */
    uint64_t signal = SYNIC_HVCALL_SIGNAL_EVENT | SYNIC_HYPERCALL_FAST;
    cr_expect_eq(s_call(signal | 1ull << 32, 7), SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT,
                 "a rep count on a simple call");
    cr_expect_eq(s_call(signal | 1ull << 48, 7), SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT);
    cr_expect_eq(s_call(signal | 1ull << 17, 7), SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT);
    cr_expect_eq(s_call(signal | 1ull << 27, 7), SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT);
    cr_expect_eq(s_call(SYNIC_HVCALL_POST_MESSAGE | SYNIC_HYPERCALL_FAST, INPUT_PAGE),
                 SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT, "HvPostMessage is not fast");
    /* Connections. */
    cr_expect_eq(s_signal_fast(8, 0), SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    cr_expect_eq(s_post(INPUT_PAGE, 8, 1, 0, NULL), SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    cr_expect_eq(s_signal_fast(9, 0), SYNIC_HV_STATUS_INVALID_PORT_ID, "a message port");
    cr_expect_eq(s_post(INPUT_PAGE, 7, 1, 0, NULL), SYNIC_HV_STATUS_INVALID_PORT_ID,
                 "an event port");
    cr_expect_eq(s_signal_fast(10, 0), SYNIC_HV_STATUS_ACCESS_DENIED, "VTL1 and up");
    cr_expect_eq(s_post(INPUT_PAGE, 11, 1, 0, NULL), SYNIC_HV_STATUS_ACCESS_DENIED);
    /* Parameters. */
    cr_expect_eq(s_signal_fast(7, 2048), SYNIC_HV_STATUS_INVALID_PARAMETER);
    cr_expect_eq(s_call(signal, 7 | 1ull << 48), SYNIC_HV_STATUS_INVALID_PARAMETER, "RsvdZ");
    cr_expect_eq(s_post(INPUT_PAGE, 9, 1, 241, NULL), SYNIC_HV_STATUS_INVALID_PARAMETER);
    cr_expect_eq(s_post(INPUT_PAGE, 9, 0, 0, NULL), SYNIC_HV_STATUS_INVALID_PARAMETER);
    cr_expect_eq(s_post(INPUT_PAGE, 9, 0x80000001u, 0, NULL), SYNIC_HV_STATUS_INVALID_PARAMETER);
    /* Input pages. */
    cr_expect_eq(s_post(INPUT_PAGE + 4, 9, 1, 0, NULL), SYNIC_HV_STATUS_INVALID_ALIGNMENT);
    cr_expect_eq(s_post(INPUT_PAGE + SYNIC_PAGE_SIZE - 248, 9, 1, 0, NULL),
                 SYNIC_HV_STATUS_INVALID_ALIGNMENT, "across a page boundary");
    cr_expect_eq(s_post(HARNESS_RAM_SIZE, 9, 1, 0, NULL), SYNIC_HV_STATUS_INVALID_ALIGNMENT,
                 "outside guest RAM");
    cr_expect_eq(s_call(SYNIC_HVCALL_SIGNAL_EVENT, INPUT_PAGE + 2),
                 SYNIC_HV_STATUS_INVALID_ALIGNMENT);
    s_expect_nothing();
    cr_expect_eq(harness_inspect(s_h, "hypercalls"), 22);
    cr_expect_eq(harness_inspect(s_h, "hypercall_errors"), 22);
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 0, "guest errors are statuses");
}

Test(host_port, signal_event_and_handle_post_message_requests_route_the_same,
     .init = s_start, .fini = s_stop)
{
    uint64_t event_port, message_port;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, 3, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &event_port),
                 0);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, true, 4, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &message_port),
                 0);
    Vmm__Synic__SignalEvent signal = VMM__SYNIC__SIGNAL_EVENT__INIT;
    signal.connection_id = 3;
    signal.flag = 12;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_EVENT;
    req.signal_event = &signal;
    uint32_t status = ~0u;
    cr_assert_eq(harness_status_request(s_h, &req, &status), 0);
    cr_expect_eq(status, SYNIC_HV_STATUS_SUCCESS);
    const Vmm__Synic__Event *ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED);
    cr_expect_eq(ev->host_event_signalled->handle, event_port);
    cr_expect_eq(ev->host_event_signalled->flag, 12);
    signal.connection_id = 5;
    cr_assert_eq(harness_status_request(s_h, &req, &status), 0);
    cr_expect_eq(status, SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    signal.vtl = VMM__VTL__VTL1;
    cr_expect_eq(harness_status_request(s_h, &req, &status), VMM__ERROR_CODE__NOT_SUPPORTED);

    uint8_t payload[SYNIC_PAYLOAD_MAX + 1] = {1, 2, 3};
    Vmm__Synic__HandlePostMessage post = VMM__SYNIC__HANDLE_POST_MESSAGE__INIT;
    post.connection_id = 4;
    post.message_type = 0x10;
    post.payload.data = payload;
    post.payload.len = 3;
    req.op_case = VMM__SYNIC__REQUEST__OP_HANDLE_POST_MESSAGE;
    req.handle_post_message = &post;
    cr_assert_eq(harness_status_request(s_h, &req, &status), 0);
    cr_expect_eq(status, SYNIC_HV_STATUS_SUCCESS);
    ev = s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE);
    cr_expect_eq(ev->host_message->handle, message_port);
    cr_expect_eq(ev->host_message->payload.len, 3);
    post.payload.len = sizeof payload;
    cr_assert_eq(harness_status_request(s_h, &req, &status), 0);
    cr_expect_eq(status, SYNIC_HV_STATUS_INVALID_PARAMETER);
    s_expect_nothing();
}

Test(host_port, registration_rules, .init = s_start, .fini = s_stop)
{
    uint64_t event_port, message_port, other;
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, 7, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &event_port),
                 0);
    cr_expect_eq(harness_register_host_port(s_h, s_h->stranger, true, 7, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &other),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "one connection, one port");
    cr_expect(strstr(s_h->last_error, "connection id 7 is taken"), "%s", s_h->last_error);
    cr_expect_eq(harness_register_host_port(s_h, s_h->device, false, 1u << 24, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &other),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_register_host_port(s_h, s_h->device, false, 8, VMM__VTL__VTL0, "",
                                            &other),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(
        harness_register_host_port(s_h, s_h->device, false, 8, 5, HARNESS_TARGET, &other),
        VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, true, 8, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &message_port),
                 0);
    cr_expect_eq(harness_unregister_host_port(s_h, s_h->device, true, event_port),
                 VMM__ERROR_CODE__NOT_FOUND, "not a message port");
    cr_expect_eq(harness_unregister_host_port(s_h, s_h->stranger, false, event_port),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_eq(s_signal_fast(7, 0), SYNIC_HV_STATUS_SUCCESS, "still registered");
    s_expect_event(VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED);
    cr_expect_eq(harness_unregister_host_port(s_h, s_h->device, false, event_port), 0);
    cr_expect_eq(harness_unregister_host_port(s_h, s_h->device, true, message_port), 0);
    cr_expect_eq(s_signal_fast(7, 0), SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    cr_expect_eq(s_post(INPUT_PAGE, 8, 1, 0, NULL), SYNIC_HV_STATUS_INVALID_CONNECTION_ID);
    cr_expect_eq(harness_inspect(s_h, "host_ports"), 0);
    s_expect_nothing();
}

/* ---- Queries and malformed requests ------------------------------------------------------ */

Test(requests, prefer_os_events_is_false_and_monitors_are_supported, .init = s_start,
     .fini = s_stop)
{
    Vmm__Synic__GetPreferOsEvents prefer = VMM__SYNIC__GET_PREFER_OS_EVENTS__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_GET_PREFER_OS_EVENTS;
    req.get_prefer_os_events = &prefer;
    rt_msg_t reply;
    cr_assert_eq(harness_request(s_h, s_h->device, &req, &reply), 0);
    cr_assert_eq(reply.env->synic_reply->result_case, VMM__SYNIC__REPLY__RESULT_PREFER_OS_EVENTS);
    cr_expect(!reply.env->synic_reply->prefer_os_events->prefer);
    rt_msg_release(&reply);
    Vmm__Synic__GetMonitorSupport support = VMM__SYNIC__GET_MONITOR_SUPPORT__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_GET_MONITOR_SUPPORT;
    req.get_monitor_support = &support;
    cr_assert_eq(harness_request(s_h, s_h->device, &req, &reply), 0);
    cr_assert_eq(reply.env->synic_reply->result_case, VMM__SYNIC__REPLY__RESULT_MONITOR_SUPPORT);
    cr_expect(reply.env->synic_reply->monitor_support->supported);
    rt_msg_release(&reply);
}

Test(requests, malformed_requests_are_refused_and_counted, .init = s_start, .fini = s_stop)
{
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "no op");
    cr_expect(strstr(s_h->last_error, "no op"), "%s", s_h->last_error);
    /* A request that needs an answer, sent one-way: refused, counted. */
    Vmm__Synic__AccessMsr msr = VMM__SYNIC__ACCESS_MSR__INIT;
    msr.index = SYNIC_MSR_SCONTROL;
    msr.write = true;
    msr.value = SYNIC_ENABLE;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &msr;
    cr_assert_eq(harness_send(s_h, s_h->device, &req), 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SCONTROL), 0, "not written");
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 2);
    /* A hypercall from a VP that does not exist is no guest status. */
    uint64_t rax;
    cr_expect_eq(harness_hypercall(s_h, 9, SYNIC_HVCALL_SIGNAL_EVENT, 0, &rax),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 3);
    cr_expect_eq(harness_inspect(s_h, "hypercalls"), 0);
}

Test(assert_sint, interrupts_through_the_sint_alone_and_waits_for_its_unmasking, .init = s_start,
     .fini = s_stop)
{
    harness_enable_synic(s_h, 1);
    Vmm__Synic__AssertSint op = VMM__SYNIC__ASSERT_SINT__INIT;
    op.vp = 1;
    op.sint = 4;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ASSERT_SINT;
    req.assert_sint = &op;
    cr_assert_eq(harness_request(s_h, s_h->device, &req, NULL), 0, "%s", s_h->last_error);
    harness_expect_no_msi(s_h, 50); /* masked: held */
    harness_unmask(s_h, 1, 4, 0x64);
    harness_expect_msi(s_h, 1, 0x64);
    cr_assert_eq(harness_send(s_h, s_h->device, &req), 0, "may be sent one-way");
    harness_expect_msi(s_h, 1, 0x64);
    cr_expect_eq(harness_inspect(s_h, "sints_asserted"), 2);
    op.sint = 16;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT);
    op.sint = 4;
    op.vp = 2;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT);
}
