/* SynIC timers: one-shot and periodic HVMSG_TIMER_EXPIRED messages with
 * their expiration and delivery times, auto-enable, direct mode. Times are
 * a few ms; assertions are on order and bounds, not on exact timing. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "actors/synic/testing/synic_harness.h"

#define SINT 3
#define VECTOR 0x33
/* Reference time units (100 ns). */
#define MS 10000ull
/* Delivery within this long of expiration: generous, for loaded machines. */
#define LATE (2000 * MS)

static harness_t *s_h;

static void s_start(void)
{
    s_h = harness_new(2, 0);
    for (uint32_t vp = 0; vp < 2; vp++) {
        harness_enable_synic(s_h, vp);
        harness_unmask(s_h, vp, SINT, VECTOR);
    }
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

static uint32_t s_config(unsigned i)
{
    return SYNIC_MSR_STIMER0_CONFIG + 2 * i;
}

static uint32_t s_count(unsigned i)
{
    return SYNIC_MSR_STIMER0_COUNT + 2 * i;
}

static uint64_t s_now(void)
{
    return harness_rdmsr_ok(s_h, 0, SYNIC_MSR_TIME_REF_COUNT);
}

typedef struct {
    uint32_t index;
    uint64_t expiration, delivery;
} s_expired_t;

/* Waits for the timer message's MSI, checks the slot holds an
 * HVMSG_TIMER_EXPIRED and frees it. */
static s_expired_t s_take_expiry_on(uint32_t vp, uint32_t sint, uint32_t vector)
{
    harness_expect_msi(s_h, vp, vector);
    uint8_t slot[256];
    harness_read_slot(s_h, vp, sint, slot);
    uint32_t type;
    memcpy(&type, slot, 4);
    cr_assert_eq(type, SYNIC_HVMSG_TIMER_EXPIRED, "type 0x%x", type);
    cr_assert_eq(slot[4], SYNIC_TIMER_PAYLOAD_SIZE);
    s_expired_t e;
    uint32_t reserved;
    memcpy(&e.index, slot + 16, 4);
    memcpy(&reserved, slot + 20, 4);
    memcpy(&e.expiration, slot + 24, 8);
    memcpy(&e.delivery, slot + 32, 8);
    cr_expect_eq(reserved, 0);
    cr_expect_geq(e.delivery, e.expiration, "delivered %llu before expiring %llu",
                  (unsigned long long)e.delivery, (unsigned long long)e.expiration);
    cr_expect_lt(e.delivery - e.expiration, LATE, "delivered %llu late",
                 (unsigned long long)(e.delivery - e.expiration));
    harness_free_slot(s_h, vp, sint);
    return e;
}

static s_expired_t s_take_expiry(uint32_t vp)
{
    return s_take_expiry_on(vp, SINT, VECTOR);
}

Test(timer, a_one_shot_timer_posts_its_expiry, .init = s_start, .fini = s_stop)
{
    uint64_t due = s_now() + 3 * MS;
    harness_wrmsr_ok(s_h, 0, s_count(0), due);
    harness_wrmsr_ok(s_h, 0, s_config(0),
                     SYNIC_STIMER_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    s_expired_t e = s_take_expiry(0);
    cr_expect_eq(e.index, 0);
    cr_expect_eq(e.expiration, due, "the programmed expiration");
    cr_expect_geq(s_now(), e.delivery, "delivered in the past");
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, s_config(0)),
                 (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT, "a one-shot timer disables itself");
    harness_expect_no_msi(s_h, 30);
    cr_expect_eq(harness_inspect(s_h, "timer_expiries"), 1);
}

Test(timer, a_one_shot_timer_in_the_past_expires_at_once, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 1, s_config(2),
                     SYNIC_STIMER_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    harness_wrmsr_ok(s_h, 1, s_count(2), 1); /* enabled already: armed now */
    s_expired_t e = s_take_expiry(1);
    cr_expect_eq(e.index, 2);
    cr_expect_eq(e.expiration, 1);
}

Test(timer, a_periodic_timer_rearms, .init = s_start, .fini = s_stop)
{
    uint64_t period = 2 * MS;
    uint64_t start = s_now();
    harness_wrmsr_ok(s_h, 0, s_count(1), period);
    harness_wrmsr_ok(s_h, 0, s_config(1),
                     SYNIC_STIMER_ENABLE | SYNIC_STIMER_PERIODIC |
                         (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    uint64_t last = 0;
    for (int n = 0; n < 5; n++) {
        s_expired_t e = s_take_expiry(0);
        cr_expect_eq(e.index, 1);
        cr_expect_gt(e.expiration, start + period - 1, "the first period starts at enable");
        if (n) {
            cr_expect_gt(e.expiration, last, "expiry %d after the one before", n);
            cr_expect_eq((e.expiration - last) % period, 0, "whole periods apart");
        }
        last = e.expiration;
    }
    cr_expect(harness_rdmsr_ok(s_h, 0, s_config(1)) & SYNIC_STIMER_ENABLE, "still enabled");
    harness_wrmsr_ok(s_h, 0, s_config(1), 0);
    /* One expiry may have been on its way; then nothing. */
    fake_msi_t msi;
    int late = 0;
    while (fake_partition_next_msi(s_h->partition, 50, &msi) == 0) {
        harness_free_slot(s_h, 0, SINT);
        late++;
    }
    cr_expect_leq(late, 2);
    harness_expect_no_msi(s_h, 30);
}

Test(timer, auto_enable_starts_on_a_count_write, .init = s_start, .fini = s_stop)
{
    uint64_t config = SYNIC_STIMER_AUTO_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT;
    harness_wrmsr_ok(s_h, 0, s_config(3), config);
    harness_expect_no_msi(s_h, 20);
    /* An hour away: still enabled when read back. */
    harness_wrmsr_ok(s_h, 0, s_count(3), s_now() + 3600000 * MS);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, s_config(3)), config | SYNIC_STIMER_ENABLE);
    uint64_t due = s_now() + 2 * MS;
    harness_wrmsr_ok(s_h, 0, s_count(3), due);
    s_expired_t e = s_take_expiry(0);
    cr_expect_eq(e.index, 3);
    cr_expect_eq(e.expiration, due);
}

Test(timer, a_zero_count_stops_a_timer, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, s_count(0), s_now() + 200 * MS);
    harness_wrmsr_ok(s_h, 0, s_config(0),
                     SYNIC_STIMER_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    harness_wrmsr_ok(s_h, 0, s_count(0), 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, s_config(0)),
                 (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT, "disabled");
    harness_expect_no_msi(s_h, 300);
    cr_expect_eq(harness_inspect(s_h, "timer_expiries"), 0);
}

Test(timer, a_direct_mode_timer_sends_its_apic_vector, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 1, s_count(0), s_now() + 2 * MS);
    harness_wrmsr_ok(s_h, 1, s_config(0),
                     SYNIC_STIMER_ENABLE | SYNIC_STIMER_DIRECT_MODE |
                         0x77ull << SYNIC_STIMER_VECTOR_SHIFT);
    harness_expect_msi(s_h, 1, 0x77);
    uint8_t type[4];
    fake_partition_read(s_h->partition, HARNESS_SIMP(1), type, 4);
    cr_expect_eq(type[0], 0, "no message");
    harness_expect_no_msi(s_h, 30);
    /* Periodic in direct mode too. */
    harness_wrmsr_ok(s_h, 1, s_count(1), 2 * MS);
    harness_wrmsr_ok(s_h, 1, s_config(1),
                     SYNIC_STIMER_ENABLE | SYNIC_STIMER_PERIODIC | SYNIC_STIMER_DIRECT_MODE |
                         0x78ull << SYNIC_STIMER_VECTOR_SHIFT);
    for (int n = 0; n < 3; n++)
        harness_expect_msi(s_h, 1, 0x78);
    harness_wrmsr_ok(s_h, 1, s_config(1), 0);
}

Test(timer, four_timers_expire_in_order_through_one_sint, .init = s_start, .fini = s_stop)
{
    uint64_t now = s_now();
    /* Programmed in reverse so that the order seen is the deadlines'. */
    for (int i = SYNIC_TIMERS - 1; i >= 0; i--) {
        harness_wrmsr_ok(s_h, 1, s_count((unsigned)i), now + (uint64_t)(i + 2) * 20 * MS);
        harness_wrmsr_ok(s_h, 1, s_config((unsigned)i),
                         SYNIC_STIMER_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    }
    uint64_t last = 0;
    for (uint32_t i = 0; i < SYNIC_TIMERS; i++) {
        s_expired_t e = s_take_expiry(1);
        cr_expect_eq(e.index, i, "timer %u expired as number %u", e.index, i);
        cr_expect_gt(e.expiration, last);
        last = e.expiration;
    }
}

Test(timer, an_expiry_waits_for_a_busy_slot, .init = s_start, .fini = s_stop)
{
    /* The guest has not taken a message from the SINT yet. */
    cr_assert_eq(harness_post(s_h, s_h->device, 0, SINT, 0x1, NULL, 0), 0);
    harness_expect_msi(s_h, 0, VECTOR);
    uint64_t due = s_now() + 2 * MS;
    harness_wrmsr_ok(s_h, 0, s_count(0), due);
    harness_wrmsr_ok(s_h, 0, s_config(0),
                     SYNIC_STIMER_ENABLE | (uint64_t)SINT << SYNIC_STIMER_SINT_SHIFT);
    /* Wait for the expiry to be queued behind the slot's message. */
    for (int i = 0; i < 200 && harness_inspect(s_h, "timer_expiries") < 1; i++) {
        struct timespec nap = {0, 5000000};
        nanosleep(&nap, NULL);
    }
    cr_assert_eq(harness_inspect(s_h, "vp0/queued"), 1);
    uint64_t freed = s_now();
    cr_expect(harness_free_slot(s_h, 0, SINT), "the pending flag asks for an EOM");
    s_expired_t e = s_take_expiry(0);
    cr_expect_eq(e.expiration, due);
    cr_expect_geq(e.delivery, freed, "the delivery time is when it reached the slot");
}

Test(timer, a_timer_enabled_on_sint_0_posts_there, .init = s_start, .fini = s_stop)
{
    harness_unmask(s_h, 0, 0, 0x20);
    uint64_t due = s_now() + 2 * MS;
    harness_wrmsr_ok(s_h, 0, s_count(1), due);
    harness_wrmsr_ok(s_h, 0, s_config(1), SYNIC_STIMER_ENABLE);
    s_expired_t e = s_take_expiry_on(0, 0, 0x20);
    cr_expect_eq(e.index, 1);
    cr_expect_eq(e.expiration, due);
}

/* Only the partition moves the reference time (synic.proto SetTimeBase);
 * anyone else is refused and the time stays. */
Test(timer, the_time_base_is_the_partitions_to_move, .init = s_start, .fini = s_stop)
{
    uint64_t before = s_now();
    Vmm__Synic__SetTimeBase base = VMM__SYNIC__SET_TIME_BASE__INIT;
    base.ref_time = before + 1000000 * MS;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SET_TIME_BASE;
    req.set_time_base = &base;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_lt(s_now(), before + 1000 * MS, "the reference time did not move");
}

/* Saving and restoring are the partition's too. */
Test(timer, saving_the_synic_is_the_partitions, .init = s_start, .fini = s_stop)
{
    Vmm__Synic__SaveState save = VMM__SYNIC__SAVE_STATE__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SAVE_STATE;
    req.save_state = &save;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
    Vmm__Synic__SavedState st = VMM__SYNIC__SAVED_STATE__INIT;
    Vmm__Synic__RestoreState restore = VMM__SYNIC__RESTORE_STATE__INIT;
    restore.state = &st;
    req.op_case = VMM__SYNIC__REQUEST__OP_RESTORE_STATE;
    req.restore_state = &restore;
    cr_expect_eq(harness_request(s_h, s_h->device, &req, NULL),
                 VMM__ERROR_CODE__PERMISSION_DENIED);
}
