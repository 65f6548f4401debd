/* dev_debug_exit: a write of v exits with 2v + 1; reads are all ones. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/debug_exit.h"
#include "actors/devices/testing/fake_env.h"

#define OFF VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF

static fake_env_t *s_new(const dev_debug_exit_config_t *cfg)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_debug_exit_new(cfg, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

Test(debug_exit, a_write_of_v_exits_with_2v_plus_1)
{
    fake_env_t *f = s_new(NULL);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0xf4);
    cr_expect_eq(f->dev->spec.ranges[0].len, 1);
    cr_assert_eq(fake_env_write(f, false, 0xf4, 1, 5), 0);
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, OFF);
    cr_expect_eq(f->power_exit_code, 11);
    cr_assert_eq(fake_env_write(f, false, 0xf4, 1, 0), 0);
    cr_expect_eq(f->power_exit_code, 1, "0 exits with 1, as in QEMU");
    fake_env_destroy(&f);
}

Test(debug_exit, reads_return_all_ones)
{
    fake_env_t *f = s_new(NULL);
    uint64_t value = 0;
    cr_assert_eq(fake_env_read(f, false, 0xf4, 1, &value), 0);
    cr_expect_eq(value & 0xff, 0xff);
    cr_expect_eq(f->power_requests, 0);
    fake_env_destroy(&f);
}

Test(debug_exit, port_and_size_are_configurable)
{
    dev_debug_exit_config_t cfg = {.port = 0x501, .size = 2};
    fake_env_t *f = s_new(&cfg);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0x501);
    cr_expect_eq(f->dev->spec.ranges[0].len, 2);
    cr_assert_eq(fake_env_write(f, false, 0x501, 2, 0x102), 0);
    cr_expect_eq(f->power_exit_code, 0x205, "the value as written, whatever its width");
    fake_env_destroy(&f);
}

Test(debug_exit, a_size_that_is_no_access_width_is_refused)
{
    fake_env_t *f = fake_env_new(0);
    dev_debug_exit_config_t cfg = {.size = 3};
    errno = 0;
    cr_expect_null(dev_debug_exit_new(&cfg, &f->env));
    cr_expect_eq(errno, EINVAL);
    fake_env_destroy(&f);
}

Test(debug_exit, its_state_saves_and_restores)
{
    fake_env_t *f = s_new(NULL), *g = s_new(NULL);
    cr_expect_eq(fake_env_save_restore(f->dev, g->dev), 0);
    static const uint8_t garbage[] = {0x0a, 0x05};
    cr_expect_eq(g->dev->ops->restore(g->dev, garbage, sizeof garbage), -EINVAL);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
