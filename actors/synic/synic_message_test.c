/* Messages into the SIM page: slot contents, MSIs, queues across EOM,
 * masked SINTs, every SINT of two VPs. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/synic/testing/synic_harness.h"

static harness_t *s_h;

static void s_start(void)
{
    s_h = harness_new(2, 0);
}

static void s_start_limit_3(void)
{
    s_h = harness_new(1, 3);
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

/* A recognizable payload of len bytes for message number n. */
static void s_payload(uint8_t *buf, size_t len, unsigned n)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(n * 31 + i);
}

/* The slot must hold message n of type, len bytes, with the pending flag
 * as given. */
static void s_expect_slot(uint32_t vp, uint32_t sint, uint32_t type, size_t len, unsigned n,
                          bool pending)
{
    uint8_t slot[256], want[SYNIC_PAYLOAD_MAX];
    harness_read_slot(s_h, vp, sint, slot);
    uint32_t got_type;
    memcpy(&got_type, slot, 4);
    cr_assert_eq(got_type, type, "VP %u SINT %u: type 0x%x, not 0x%x", vp, sint, got_type, type);
    cr_expect_eq(slot[4], len, "payload size");
    cr_expect_eq(slot[5], pending ? SYNIC_MESSAGE_PENDING : 0, "flags 0x%x", slot[5]);
    static const uint8_t zeros[10];
    cr_expect_arr_eq(slot + 6, zeros, 10, "reserved and sender are 0");
    s_payload(want, len, n);
    cr_expect_arr_eq(slot + 16, want, len, "the payload");
}

Test(message, a_post_fills_the_free_slot_and_raises_the_sint, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 2, 0x30);
    uint8_t payload[100];
    s_payload(payload, sizeof payload, 1);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 2, 0x1234, payload, sizeof payload), 0, "%s",
                 s_h->last_error);
    harness_expect_msi(s_h, 0, 0x30);
    s_expect_slot(0, 2, 0x1234, sizeof payload, 1, false);
    uint8_t rest[256 - 16 - 100], zeros[sizeof rest] = {0};
    fake_partition_read(s_h->partition, HARNESS_SIMP(0) + 2 * 256 + 116, rest, sizeof rest);
    cr_expect_arr_eq(rest, zeros, sizeof rest, "nothing beyond the payload");
    uint8_t other[4];
    fake_partition_read(s_h->partition, HARNESS_SIMP(0) + 3 * 256, other, 4);
    cr_expect_eq(other[0], 0, "other slots untouched");
    cr_expect_eq(harness_inspect(s_h, "delivered"), 1);
}

Test(message, a_full_payload_and_an_empty_one, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 1);
    harness_unmask(s_h, 1, 0, 0x31);
    harness_unmask(s_h, 1, 1, 0x32);
    uint8_t payload[SYNIC_PAYLOAD_MAX];
    s_payload(payload, sizeof payload, 2);
    cr_assert_eq(harness_post(s_h, s_h->device, 1, 0, 7, payload, sizeof payload), 0);
    harness_expect_msi(s_h, 1, 0x31);
    s_expect_slot(1, 0, 7, sizeof payload, 2, false);
    cr_assert_eq(harness_post(s_h, s_h->device, 1, 1, 8, NULL, 0), 0);
    harness_expect_msi(s_h, 1, 0x32);
    s_expect_slot(1, 1, 8, 0, 0, false);
}

Test(message, a_burst_waits_in_order_and_arrives_across_eom, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 4, 0x44);
    enum { N = 10 };
    for (unsigned n = 0; n < N; n++) {
        uint8_t payload[16];
        s_payload(payload, sizeof payload, n);
        cr_assert_eq(harness_post(s_h, s_h->device, 0, 4, 0x100 + n, payload, sizeof payload), 0,
                     "message %u: %s", n, s_h->last_error);
    }
    cr_expect_eq(harness_inspect(s_h, "vp0/queued"), N - 1);
    for (unsigned n = 0; n < N; n++) {
        harness_expect_msi(s_h, 0, 0x44);
        bool more = n < N - 1;
        s_expect_slot(0, 4, 0x100 + n, 16, n, more);
        cr_expect_eq(harness_free_slot(s_h, 0, 4), more, "EOM written after message %u", n);
    }
    harness_expect_no_msi(s_h, 50);
    cr_expect_eq(harness_inspect(s_h, "vp0/queued"), 0);
    cr_expect_eq(harness_inspect(s_h, "delivered"), N);
    cr_expect_eq(harness_inspect(s_h, "eoms"), N - 1);
}

Test(message, a_slot_freed_without_eom_is_used_by_the_next_post, .init = s_start,
     .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 1, 0x21);
    for (unsigned n = 0; n < 2; n++)
        cr_assert_eq(harness_post(s_h, s_h->device, 0, 1, 0x10 + n, NULL, 0), 0);
    harness_expect_msi(s_h, 0, 0x21);
    s_expect_slot(0, 1, 0x10, 0, 0, true);
    /* The guest frees the slot but writes no EOM: the next post finds it
     * free and delivers the older message first. */
    static const uint8_t none[4];
    fake_partition_write(s_h->partition, HARNESS_SIMP(0) + 256, none, 4);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 1, 0x12, NULL, 0), 0);
    harness_expect_msi(s_h, 0, 0x21);
    s_expect_slot(0, 1, 0x11, 0, 0, true);
    cr_expect(harness_free_slot(s_h, 0, 1));
    harness_expect_msi(s_h, 0, 0x21);
    s_expect_slot(0, 1, 0x12, 0, 0, false);
}

Test(message, beyond_the_queue_limit_a_post_is_busy, .init = s_start_limit_3, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 0, 0x50);
    for (unsigned n = 0; n < 4; n++)
        cr_assert_eq(harness_post(s_h, s_h->device, 0, 0, 0x20 + n, NULL, 0), 0,
                     "message %u: %s", n, s_h->last_error);
    cr_expect_eq(harness_post(s_h, s_h->device, 0, 0, 0x99, NULL, 0), VMM__ERROR_CODE__BUSY);
    cr_expect(strstr(s_h->last_error, "3 messages wait"), "%s", s_h->last_error);
    cr_expect_eq(harness_inspect(s_h, "busy"), 1);
    cr_expect_eq(harness_inspect(s_h, "vp0/queued"), 3);
    for (unsigned n = 0; n < 4; n++) {
        harness_expect_msi(s_h, 0, 0x50);
        s_expect_slot(0, 0, 0x20 + n, 0, 0, n < 3);
        harness_free_slot(s_h, 0, 0);
    }
    cr_expect_eq(harness_post(s_h, s_h->device, 0, 0, 0x30, NULL, 0), 0, "room again");
    harness_expect_msi(s_h, 0, 0x50);
    s_expect_slot(0, 0, 0x30, 0, 0, false);
}

Test(message, a_masked_sint_gets_its_message_but_no_msi_until_unmasked, .init = s_start,
     .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 3, SYNIC_SINT_MASKED | 0x40);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 3, 0x77, NULL, 0), 0);
    s_expect_slot(0, 3, 0x77, 0, 0, false);
    harness_expect_no_msi(s_h, 100);
    cr_expect_eq(harness_inspect(s_h, "vp0/raise_pending"), 1 << 3);
    harness_unmask(s_h, 0, 3, 0x40);
    harness_expect_msi(s_h, 0, 0x40);
    cr_expect_eq(harness_inspect(s_h, "vp0/raise_pending"), 0);
    harness_unmask(s_h, 0, 3, 0x41);
    harness_expect_no_msi(s_h, 50);
}

Test(message, a_polling_sint_gets_messages_without_msis, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 6, SYNIC_SINT_POLLING | 0x40);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 6, 0x78, NULL, 0), 0);
    s_expect_slot(0, 6, 0x78, 0, 0, false);
    harness_expect_no_msi(s_h, 100);
}

Test(message, messages_wait_for_scontrol_and_simp, .init = s_start, .fini = s_stop)
{
    harness_unmask(s_h, 1, 9, 0x90);
    uint8_t payload[8];
    s_payload(payload, sizeof payload, 5);
    cr_assert_eq(harness_post(s_h, s_h->device, 1, 9, 0x55, payload, sizeof payload), 0);
    harness_wrmsr_ok(s_h, 1, SYNIC_MSR_SIMP, HARNESS_SIMP(1) | SYNIC_ENABLE);
    harness_expect_no_msi(s_h, 50);
    uint8_t type[4];
    fake_partition_read(s_h->partition, HARNESS_SIMP(1) + 9 * 256, type, 4);
    cr_expect_eq(type[0], 0, "not delivered while SCONTROL is disabled");
    harness_wrmsr_ok(s_h, 1, SYNIC_MSR_SCONTROL, SYNIC_ENABLE);
    harness_expect_msi(s_h, 1, 0x90);
    s_expect_slot(1, 9, 0x55, sizeof payload, 5, false);
}

Test(message, a_one_way_post_is_delivered, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 15, 0xfe);
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.sint = 15;
    op.message_type = 0x4242;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    cr_assert_eq(harness_send(s_h, s_h->device, &req), 0);
    harness_expect_msi(s_h, 0, 0xfe);
    s_expect_slot(0, 15, 0x4242, 0, 0, false);
}

Test(message, every_sint_of_two_vps, .init = s_start, .fini = s_stop)
{
    for (uint32_t vp = 0; vp < 2; vp++) {
        harness_enable_synic(s_h, vp);
        for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++)
            harness_unmask(s_h, vp, sint, 0x40 + 0x20 * vp + sint);
    }
    for (uint32_t vp = 0; vp < 2; vp++)
        for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++) {
            uint8_t payload[12];
            unsigned n = vp * SYNIC_SINTS + sint;
            s_payload(payload, sizeof payload, n);
            cr_assert_eq(
                harness_post(s_h, s_h->device, vp, sint, 0x1000 + n, payload, sizeof payload), 0);
            harness_expect_msi(s_h, vp, 0x40 + 0x20 * vp + sint);
        }
    for (uint32_t vp = 0; vp < 2; vp++)
        for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++) {
            unsigned n = vp * SYNIC_SINTS + sint;
            s_expect_slot(vp, sint, 0x1000 + n, 12, n, false);
        }
    cr_expect_eq(harness_inspect(s_h, "vp0/delivered"), 16);
    cr_expect_eq(harness_inspect(s_h, "vp1/delivered"), 16);
    cr_expect_eq(harness_inspect(s_h, "vp1/msis"), 16);
}

Test(message, an_eom_with_nothing_waiting_changes_nothing, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 2, 0x30);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 2, 0x1, NULL, 0), 0);
    harness_expect_msi(s_h, 0, 0x30);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_EOM, 0);
    harness_expect_no_msi(s_h, 50);
    s_expect_slot(0, 2, 0x1, 0, 0, false);
}

Test(message, bad_posts_are_refused_and_change_nothing, .init = s_start, .fini = s_stop)
{
    harness_enable_synic(s_h, 0);
    harness_unmask(s_h, 0, 2, 0x30);
    uint8_t big[SYNIC_PAYLOAD_MAX + 1] = {0};
    cr_expect_eq(harness_post(s_h, s_h->device, 0, 16, 1, NULL, 0),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "SINT 16 out of range"), "%s", s_h->last_error);
    cr_expect_eq(harness_post(s_h, s_h->device, 2, 0, 1, NULL, 0),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "VP 2 out of range"), "%s", s_h->last_error);
    cr_expect_eq(harness_post(s_h, s_h->device, 0, 2, 1, big, sizeof big),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "241 bytes"), "%s", s_h->last_error);
    cr_expect_eq(harness_post(s_h, s_h->device, 0, 2, SYNIC_HVMSG_NONE, NULL, 0),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);

    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.sint = 2;
    op.message_type = 1;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL), VMM__ERROR_CODE__NOT_SUPPORTED);
    cr_expect(strstr(s_h->last_error, "VTL1"), "%s", s_h->last_error);
    /* One-way: nobody to answer, only counted. */
    op.vtl = VMM__VTL__VTL0;
    op.sint = 99;
    cr_assert_eq(harness_send(s_h, s_h->device, &req), 0);

    harness_expect_no_msi(s_h, 50);
    cr_expect_eq(harness_inspect(s_h, "posted"), 0);
    cr_expect_eq(harness_inspect(s_h, "vp0/queued"), 0);
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 5);
    cr_expect_eq(harness_inspect(s_h, "unsupported"), 1);
    uint8_t type[4];
    fake_partition_read(s_h->partition, HARNESS_SIMP(0) + 2 * 256, type, 4);
    cr_expect_eq(type[0], 0);
}

Test(message, a_simp_outside_ram_keeps_messages_until_it_moves, .init = s_start,
     .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIMP, 0x200000000ull | SYNIC_ENABLE);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SCONTROL, SYNIC_ENABLE);
    harness_unmask(s_h, 0, 2, 0x30);
    cr_assert_eq(harness_post(s_h, s_h->device, 0, 2, 0x66, NULL, 0), 0);
    harness_expect_no_msi(s_h, 30);
    cr_expect_gt(harness_inspect(s_h, "memory_errors"), 0);
    cr_expect_eq(harness_inspect(s_h, "vp0/queued"), 1, "kept");
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIMP, HARNESS_SIMP(0) | SYNIC_ENABLE);
    harness_expect_msi(s_h, 0, 0x30);
    s_expect_slot(0, 2, 0x66, 0, 0, false);
}
