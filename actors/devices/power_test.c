/* dev_power: SLP_EN in PM1a control powers off; the rest reads back. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/power.h"
#include "actors/devices/testing/fake_env.h"

#define OFF VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF

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
    cr_assert_eq(fake_env_read(f, false, port, size, &value), 0);
    return value;
}

Test(power, claims_port_0x604_for_two_bytes)
{
    fake_env_t *f = s_new();
    cr_expect_str_eq(f->dev->spec.name, "pm1a");
    cr_expect_eq(f->dev->spec.n_ranges, 1);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0x604);
    cr_expect_eq(f->dev->spec.ranges[0].len, 2);
    cr_expect_not(f->dev->spec.posted_writes, "a power off must leave before the VP goes on");
    fake_env_destroy(&f);
}

Test(power, slp_en_powers_off_without_an_exit_code)
{
    fake_env_t *f = s_new();
    cr_assert_eq(fake_env_write(f, false, 0x604, 2, 0x3c00), 0);
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, OFF);
    cr_expect_eq(f->power_exit_code, -1);
    cr_expect_eq(s_read(f, 0x604, 2), 0x1c00, "SLP_EN does not read back");
    fake_env_destroy(&f);
}

Test(power, other_values_read_back_and_do_nothing)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_read(f, 0x604, 2), 0);
    cr_assert_eq(fake_env_write(f, false, 0x604, 2, 0x1401), 0);
    cr_expect_eq(s_read(f, 0x604, 2), 0x1401);
    cr_expect_eq(f->power_requests, 0);
    fake_env_destroy(&f);
}

Test(power, byte_accesses_reach_either_half)
{
    fake_env_t *f = s_new();
    cr_assert_eq(fake_env_write(f, false, 0x604, 1, 0x01), 0);
    cr_assert_eq(fake_env_write(f, false, 0x605, 1, 0x14), 0);
    cr_expect_eq(s_read(f, 0x604, 2), 0x1401);
    cr_expect_eq(f->power_requests, 0);
    cr_assert_eq(fake_env_write(f, false, 0x605, 1, 0x20), 0, "SLP_EN in the high byte");
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(s_read(f, 0x605, 1), 0x00);
    cr_expect_eq(s_read(f, 0x604, 1), 0x01, "the low byte kept");
    fake_env_destroy(&f);
}

Test(power, reset_clears_and_a_saved_state_restores)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new();
    cr_assert_eq(fake_env_write(f, false, 0x604, 2, 0x1401), 0);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(s_read(g, 0x604, 2), 0x1401);
    f->dev->ops->reset(f->dev);
    cr_expect_eq(s_read(f, 0x604, 2), 0);
    static const uint8_t slp_en[] = {0x08, 0x80, 0x40}; /* pm1_cnt = 0x2000 */
    cr_expect_eq(g->dev->ops->restore(g->dev, slp_en, sizeof slp_en), -EINVAL);
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(g->dev->ops->restore(g->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(s_read(g, 0x604, 2), 0x1401, "a refused state changes nothing");
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
