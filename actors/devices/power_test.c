/* dev_power: the PM1a event and control registers and the ACPI PM timer:
 * SLP_EN powers off, the timer's rate and wrap, TMR_STS and the SCI, the
 * widths QEMU takes, save, restore and reset. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/power.h"
#include "actors/devices/testing/fake_env.h"

#define OFF VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF
#define STS 0x600
#define EN 0x602
#define CNT 0x604
#define TMR 0x608
#define SCI DEV_POWER_SCI

/* When the count reaches 2^31, 2^32, 2^32 + 5 and 3 * 2^31 (ns, rounded
 * up): 2^31 * 1e9 / 3579545 and so on. */
#define BIT31_NS 599932015941ull
#define WRAP_NS 1199864031882ull
#define WRAP5_NS 1199864033278ull
#define BIT31_AGAIN_NS 1799796047822ull

static fake_env_t *s_new_at(uint16_t base)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    dev_power_config_t cfg = {.base = base};
    f->dev = dev_power_new(&cfg, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_power_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static uint64_t s_read(fake_env_t *f, uint64_t port, uint32_t size)
{
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, port, size, &value), 0, "a %u-byte read at 0x%llx",
                 size, (unsigned long long)port);
    return value;
}

static void s_write(fake_env_t *f, uint64_t port, uint32_t size, uint64_t value)
{
    cr_assert_eq(fake_env_write(f, false, port, size, value), 0, "a %u-byte write at 0x%llx",
                 size, (unsigned long long)port);
}

/* Moves the fake clock to ns (not back). */
static void s_advance_to(fake_env_t *f, uint64_t ns)
{
    cr_assert_geq(ns, f->now_ns);
    fake_env_advance(f, ns - f->now_ns);
}

Test(power, claims_twelve_ports_from_0x600_and_the_sci)
{
    fake_env_t *f = s_new();
    cr_expect_str_eq(f->dev->spec.name, "pm1a");
    cr_expect_str_eq(f->dev->ops->kind, "pm1a");
    cr_assert_eq(f->dev->spec.n_ranges, 1);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0x600);
    cr_expect_eq(f->dev->spec.ranges[0].len, 12);
    cr_assert_eq(f->dev->spec.n_irq_lines, 1);
    cr_expect_eq(f->dev->spec.irq_lines[0], 9);
    cr_expect_not(f->dev->spec.posted_writes, "a power off must leave before the VP goes on");
    fake_env_destroy(&f);
}

Test(power, its_base_is_configurable_and_checked)
{
    fake_env_t *f = s_new_at(0xb000);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0xb000);
    s_write(f, 0xb004, 2, 0x0001);
    cr_expect_eq(s_read(f, 0xb004, 2), 0x0001);
    fake_env_destroy(&f);
    const dev_power_config_t unaligned = {.base = 0x602}, beyond = {.base = 0xfff8};
    errno = 0;
    cr_expect_null(dev_power_new(&unaligned, NULL));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(dev_power_new(&beyond, NULL));
    cr_expect_eq(errno, EINVAL);
}

Test(power, slp_en_powers_off_without_an_exit_code)
{
    fake_env_t *f = s_new();
    s_write(f, CNT, 2, 0x3c00);
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, OFF);
    cr_expect_eq(f->power_exit_code, -1);
    cr_expect_eq(s_read(f, CNT, 2), 0x1c00, "SLP_EN does not read back");
    cr_expect_eq(fake_env_inspect(f, "power_offs"), 1);
    fake_env_destroy(&f);
}

Test(power, sci_en_and_the_rest_of_control_read_back_and_do_nothing)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_read(f, CNT, 2), 0);
    s_write(f, CNT, 2, 0x1401);
    cr_expect_eq(s_read(f, CNT, 2), 0x1401);
    cr_expect_eq(f->power_requests, 0);
    cr_expect_not(f->irq[SCI]);
    fake_env_destroy(&f);
}

Test(power, the_timer_counts_3579545_a_second_from_the_runtime_clock)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_read(f, TMR, 4), 0);
    fake_env_advance(f, 1000000000ull);
    cr_expect_eq(s_read(f, TMR, 4), 3579545);
    fake_env_advance(f, 1000);
    cr_expect_eq(s_read(f, TMR, 4), 3579548, "3.58 ticks a us, rounded down");
    fake_env_advance(f, 9000);
    cr_expect_eq(s_read(f, TMR, 4), 3579580);
    fake_env_destroy(&f);
}

Test(power, the_timer_wraps_at_32_bits)
{
    fake_env_t *f = s_new();
    s_advance_to(f, WRAP_NS - 1);
    cr_expect_eq(s_read(f, TMR, 4), 0xffffffffu);
    s_advance_to(f, WRAP_NS);
    cr_expect_eq(s_read(f, TMR, 4), 0);
    s_advance_to(f, WRAP5_NS);
    cr_expect_eq(s_read(f, TMR, 4), 5);
    fake_env_destroy(&f);
}

Test(power, tmr_sts_is_set_as_bit_31_changes_and_cleared_by_writing_1)
{
    fake_env_t *f = s_new();
    s_advance_to(f, BIT31_NS - 1);
    cr_expect_eq(s_read(f, TMR, 4), 0x7fffffffu);
    cr_expect_eq(s_read(f, STS, 2), 0);
    s_advance_to(f, BIT31_NS);
    cr_expect_eq(s_read(f, TMR, 4), 0x80000000u);
    cr_expect_eq(s_read(f, STS, 2), 0x0001);
    s_write(f, STS, 2, 0xfffe);
    cr_expect_eq(s_read(f, STS, 2), 0x0001, "writing 0 keeps it");
    s_write(f, STS, 2, 0x0001);
    cr_expect_eq(s_read(f, STS, 2), 0);
    s_advance_to(f, WRAP_NS - 1);
    cr_expect_eq(s_read(f, STS, 2), 0);
    s_advance_to(f, WRAP_NS);
    cr_expect_eq(s_read(f, STS, 2), 0x0001, "the change back to 0 at the wrap too");
    cr_expect_not(f->irq[SCI], "TMR_EN is not set");
    cr_expect_eq(f->irq_rises[SCI], 0);
    fake_env_destroy(&f);
}

Test(power, with_tmr_en_the_sci_rises_at_each_change_until_cleared)
{
    fake_env_t *f = s_new();
    s_write(f, EN, 2, 0x0001);
    cr_expect_eq(s_read(f, EN, 2), 0x0001);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 1);
    fake_env_advance(f, BIT31_NS - 1);
    cr_expect_not(f->irq[SCI]);
    fake_env_advance(f, 1); /* the timer fires at the change, without a read */
    cr_expect(f->irq[SCI]);
    cr_expect_eq(f->irq_rises[SCI], 1);
    fake_env_advance(f, 10000000000ull);
    cr_expect(f->irq[SCI], "a level: high until the guest clears the status");
    s_write(f, STS, 2, 0x0001);
    cr_expect_not(f->irq[SCI]);
    s_advance_to(f, WRAP_NS - 1);
    cr_expect_not(f->irq[SCI]);
    s_advance_to(f, WRAP_NS);
    cr_expect(f->irq[SCI], "the next change");
    cr_expect_eq(f->irq_rises[SCI], 2);
    s_write(f, EN, 2, 0x0000);
    cr_expect_not(f->irq[SCI], "disabled: the status stays, the line falls");
    cr_expect_eq(s_read(f, STS, 2), 0x0001);
    s_write(f, STS, 2, 0x0001);
    s_advance_to(f, BIT31_AGAIN_NS);
    cr_expect_eq(f->irq_rises[SCI], 2);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 0);
    cr_expect_eq(fake_env_inspect(f, "scis"), 2);
    fake_env_destroy(&f);
}

Test(power, enables_read_back_and_a_pending_status_raises_the_sci_when_enabled)
{
    fake_env_t *f = s_new();
    s_write(f, EN, 2, 0x0520);
    cr_expect_eq(s_read(f, EN, 2), 0x0520);
    s_advance_to(f, BIT31_NS);
    cr_expect_not(f->irq[SCI], "TMR_EN is not among them");
    s_write(f, EN, 2, 0x0521);
    cr_expect(f->irq[SCI]);
    fake_env_destroy(&f);
}

Test(power, accesses_of_other_widths_or_places_are_refused_and_counted)
{
    fake_env_t *f = s_new();
    uint64_t value;
    cr_expect_eq(fake_env_write(f, false, CNT, 1, 0x00), -EINVAL, "PM1_CNT is 16 bits");
    cr_expect_eq(fake_env_write(f, false, CNT + 1, 1, 0x20), -EINVAL, "SLP_EN by a byte");
    cr_expect_eq(f->power_requests, 0);
    cr_expect_eq(fake_env_read(f, false, STS, 4, &value), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, EN, 1, &value), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, TMR, 2, &value), -EINVAL, "PM_TMR is 32 bits");
    cr_expect_eq(fake_env_read(f, false, TMR + 2, 2, &value), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, 0x606, 2, &value), -EINVAL, "nothing at base+6");
    cr_expect_eq(fake_env_inspect(f, "bad_accesses"), 7);
    cr_expect_eq(f->logs, 7);
    s_write(f, TMR, 4, 0x12345678);
    cr_expect_eq(fake_env_inspect(f, "ignored_writes"), 1, "QEMU ignores it");
    cr_expect_eq(s_read(f, TMR, 4), 0, "the count is not written");
    fake_env_destroy(&f);
}

Test(power, a_saved_state_restores_and_reset_clears)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new();
    s_write(f, CNT, 2, 0x1401);
    s_write(f, EN, 2, 0x0501);
    s_advance_to(f, BIT31_NS);
    cr_assert(f->irq[SCI]);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(s_read(g, CNT, 2), 0x1401);
    cr_expect_eq(s_read(g, EN, 2), 0x0501);
    cr_expect_eq(s_read(g, STS, 2), 0x0001);
    cr_expect(g->irq[SCI], "the restored status raises the line");

    f->dev->ops->reset(f->dev);
    cr_expect_eq(s_read(f, CNT, 2), 0);
    cr_expect_eq(s_read(f, EN, 2), 0);
    cr_expect_eq(s_read(f, STS, 2), 0);
    cr_expect_not(f->irq[SCI]);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 0);

    static const uint8_t slp_en[] = {0x08, 0x80, 0x40};          /* pm1_cnt = 0x2000 */
    static const uint8_t big_en[] = {0x18, 0x80, 0x80, 0x04};    /* pm1_en = 0x10000 */
    static const uint8_t odd_sts[] = {0x10, 0x02};               /* pm1_sts = 0x0002 */
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(g->dev->ops->restore(g->dev, slp_en, sizeof slp_en), -EINVAL);
    cr_expect_eq(g->dev->ops->restore(g->dev, big_en, sizeof big_en), -EINVAL);
    cr_expect_eq(g->dev->ops->restore(g->dev, odd_sts, sizeof odd_sts), -EINVAL);
    cr_expect_eq(g->dev->ops->restore(g->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(s_read(g, CNT, 2), 0x1401, "a refused state changes nothing");
    cr_expect_eq(s_read(g, EN, 2), 0x0501);
    cr_expect_eq(s_read(g, STS, 2), 0x0001);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

/* A state saved before the event registers existed restores: fields only
 * grow. */
Test(power, an_older_state_restores)
{
    fake_env_t *f = s_new();
    static const uint8_t old[] = {0x08, 0x81, 0x28}; /* pm1_cnt = 0x1401 */
    cr_expect_eq(f->dev->ops->restore(f->dev, old, sizeof old), 0);
    cr_expect_eq(s_read(f, CNT, 2), 0x1401);
    cr_expect_eq(s_read(f, EN, 2), 0);
    fake_env_destroy(&f);
}
