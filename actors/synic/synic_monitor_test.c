/* The monitor page: a trigger bit the guest sets signals its connection's
 * host event port once per setting. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "actors/synic/testing/synic_harness.h"

#define MONITOR_PAGE 0x40000u
#define CONNECTION 11u

static harness_t *s_h;
static uint64_t s_port;

static void s_start(void)
{
    s_h = harness_new(1, 0);
    cr_assert_eq(harness_register_host_port(s_h, s_h->device, false, CONNECTION, VMM__VTL__VTL0,
                                            HARNESS_TARGET, &s_port),
                 0);
    cr_assert_eq(harness_set_monitor_page(s_h, s_h->device, true, MONITOR_PAGE), 0, "%s",
                 s_h->last_error);
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

static uint64_t s_pending_gpa(uint32_t id)
{
    return MONITOR_PAGE + SYNIC_MONITOR_PENDING_OFFSET(id / 32);
}

static uint32_t s_pending(uint32_t id)
{
    uint32_t word;
    fake_partition_read(s_h->partition, s_pending_gpa(id), &word, 4);
    return word;
}

/* The guest sets monitor id's trigger bit (keeping the group's others). */
static void s_trigger(uint32_t id)
{
    uint32_t word = s_pending(id) | 1u << (id % 32);
    fake_partition_write(s_h->partition, s_pending_gpa(id), &word, 4);
}

/* Waits up to two seconds for the synic to clear monitor id's bit. */
static bool s_cleared(uint32_t id)
{
    for (int i = 0; i < 400; i++) {
        if (!(s_pending(id) & 1u << (id % 32)))
            return true;
        struct timespec nap = {0, 5000000};
        nanosleep(&nap, NULL);
    }
    return false;
}

static void s_expect_signal(uint32_t connection_id)
{
    const Vmm__Envelope *env = harness_recv(s_h, s_h->target, 2000);
    cr_assert_not_null(env, "no signal");
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
    cr_assert_eq(env->synic_event->event_case, VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED);
    const Vmm__Synic__HostEventSignalled *ev = env->synic_event->host_event_signalled;
    cr_expect_eq(ev->connection_id, connection_id);
    cr_expect_eq(ev->handle, s_port);
    cr_expect_eq(ev->flag, 0);
}

static void s_expect_quiet(int ms)
{
    const Vmm__Envelope *env = harness_recv(s_h, s_h->target, ms);
    cr_expect_null(env, "an unexpected message, body kind %d", env ? (int)env->body_case : 0);
}

Test(monitor, a_set_bit_signals_once_per_setting, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 37, CONNECTION, &handle), 0, "%s",
                 s_h->last_error);
    s_expect_quiet(20);
    s_trigger(37);
    s_expect_signal(CONNECTION);
    cr_assert(s_cleared(37), "the synic clears the bit it saw");
    s_expect_quiet(30);
    s_trigger(37);
    s_expect_signal(CONNECTION);
    cr_assert(s_cleared(37));
    s_expect_quiet(30);
    cr_expect_eq(harness_inspect(s_h, "monitor_signals"), 2);
}

Test(monitor, bits_without_a_monitor_are_left_alone, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 37, CONNECTION, &handle), 0);
    s_trigger(38);
    s_trigger(36);
    s_expect_quiet(50);
    cr_expect_eq(s_pending(37), 1u << 4 | 1u << 6, "both still set");
    s_trigger(37);
    s_expect_signal(CONNECTION);
    cr_assert(s_cleared(37));
    cr_expect_eq(s_pending(37), 1u << 4 | 1u << 6, "only bit 37 cleared");
}

Test(monitor, every_group_and_several_bits_at_once, .init = s_start, .fini = s_stop)
{
    static const uint32_t ids[] = {0, 31, 32, 64, 100, 127};
    enum { N = sizeof ids / sizeof *ids };
    for (int i = 0; i < N; i++) {
        uint64_t handle;
        cr_assert_eq(harness_register_monitor(s_h, s_h->device, ids[i], CONNECTION, &handle), 0);
    }
    uint8_t groups[32];
    memset(groups, 0xff, sizeof groups);
    fake_partition_write(s_h->partition, MONITOR_PAGE + 8, groups, sizeof groups);
    for (int i = 0; i < N; i++)
        s_expect_signal(CONNECTION);
    for (int i = 0; i < N; i++)
        cr_expect(s_cleared(ids[i]), "id %u cleared", ids[i]);
    s_expect_quiet(30);
    cr_expect_eq(s_pending(1), 0x7ffffffe, "group 0 keeps ids 1 to 30");
    cr_expect_eq(harness_inspect(s_h, "monitor_signals"), N);
}

Test(monitor, unregistering_stops_signals, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 5, CONNECTION, &handle), 0);
    cr_expect_eq(harness_unregister_monitor(s_h, s_h->stranger, handle),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_eq(harness_unregister_monitor(s_h, s_h->device, handle), 0);
    cr_expect_eq(harness_unregister_monitor(s_h, s_h->device, handle), VMM__ERROR_CODE__NOT_FOUND);
    s_trigger(5);
    s_expect_quiet(50);
    cr_expect_eq(s_pending(5), 1u << 5);
    cr_expect_eq(harness_inspect(s_h, "monitors"), 0);
}

Test(monitor, no_page_no_polling, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 5, CONNECTION, &handle), 0);
    cr_assert_eq(harness_set_monitor_page(s_h, s_h->device, false, 0), 0);
    s_trigger(5);
    s_expect_quiet(50);
    long long polls = harness_inspect(s_h, "monitor_polls");
    s_expect_quiet(20);
    cr_expect_eq(harness_inspect(s_h, "monitor_polls"), polls, "the poll stopped");
    cr_assert_eq(harness_set_monitor_page(s_h, s_h->device, true, MONITOR_PAGE), 0);
    s_expect_signal(CONNECTION);
}

Test(monitor, a_monitor_without_a_port_is_counted, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 70, CONNECTION + 1, &handle), 0);
    s_trigger(70);
    cr_assert(s_cleared(70));
    s_expect_quiet(20);
    cr_expect_eq(harness_inspect(s_h, "monitor_unrouted"), 1);
}

Test(monitor, bad_monitor_requests_are_refused, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_expect_eq(harness_register_monitor(s_h, s_h->device, 128, CONNECTION, &handle),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "monitor id 128"), "%s", s_h->last_error);
    cr_expect_eq(harness_register_monitor(s_h, s_h->device, 1, 1u << 24, &handle),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 1, CONNECTION, &handle), 0);
    cr_expect_eq(harness_register_monitor(s_h, s_h->stranger, 1, CONNECTION, &handle),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "id 1 is taken");
    cr_expect_eq(harness_set_monitor_page(s_h, s_h->device, true, MONITOR_PAGE + 8),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    Vmm__Synic__SetMonitorPage op = VMM__SYNIC__SET_MONITOR_PAGE__INIT;
    op.vtl = VMM__VTL__VTL1;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE;
    req.set_monitor_page = &op;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__NOT_SUPPORTED);
    cr_expect_eq(harness_inspect(s_h, "monitors"), 1);
    cr_expect_eq(harness_inspect(s_h, "monitor_page"), MONITOR_PAGE, "unchanged");
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 4);
}

/* Sets the latency the guest asks for monitor 3, then waits up to two
 * seconds for the synic's poll interval to become want_us. */
static long long s_latency_gives(uint16_t latency, long long want_us)
{
    fake_partition_write(s_h->partition, MONITOR_PAGE + SYNIC_MONITOR_LATENCY_OFFSET(3),
                         &latency, 2);
    long long us = -1;
    for (int i = 0; i < 400 && us != want_us; i++) {
        us = harness_inspect(s_h, "monitor_poll_us");
        struct timespec nap = {0, 5000000};
        nanosleep(&nap, NULL);
    }
    return us;
}

/* The guest asks for 200 us on monitor 3: polls come that often; a
 * latency below the floor gets the floor; none, the default. */
Test(monitor, polling_follows_the_latency_the_guest_asks_for, .init = s_start, .fini = s_stop)
{
    uint64_t handle;
    cr_assert_eq(harness_register_monitor(s_h, s_h->device, 3, CONNECTION, &handle), 0);
    cr_expect_eq(harness_inspect(s_h, "monitor_poll_us"), 1000);
    cr_expect_eq(s_latency_gives(2000, 200), 200); /* 100 ns units */
    cr_expect_eq(s_latency_gives(1, 100), 100);
    cr_expect_eq(s_latency_gives(0, 1000), 1000);
    s_trigger(3);
    cr_expect(s_cleared(3), "still signalled after the changes");
}
