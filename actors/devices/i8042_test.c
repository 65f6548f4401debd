/* dev_i8042: resets, the command byte, self-tests, the status register. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/i8042.h"
#include "actors/devices/testing/fake_env.h"

#define RESET VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_i8042_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static void s_out(fake_env_t *f, uint16_t port, uint8_t value)
{
    cr_assert_eq(fake_env_write(f, false, port, 1, value), 0);
}

static uint8_t s_in(fake_env_t *f, uint16_t port)
{
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, port, 1, &value), 0);
    return (uint8_t)value;
}

Test(i8042, command_fe_resets_the_vm)
{
    fake_env_t *f = s_new();
    s_out(f, 0x64, 0xfe);
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, RESET);
    fake_env_destroy(&f);
}

Test(i8042, the_output_port_reset_line_resets_the_vm)
{
    fake_env_t *f = s_new();
    s_out(f, 0x64, 0xd1);
    s_out(f, 0x60, 0x01); /* reset line high: nothing */
    cr_expect_eq(f->power_requests, 0);
    s_out(f, 0x64, 0xd1);
    s_out(f, 0x60, 0x00);
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, RESET);
    fake_env_destroy(&f);
}

Test(i8042, the_command_byte_reads_and_writes)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_in(f, 0x64) & 0x01, 0, "nothing to read at first");
    s_out(f, 0x64, 0x20);
    cr_expect_eq(s_in(f, 0x64) & 0x09, 0x09, "output full; last write a command");
    cr_expect_eq(s_in(f, 0x60), 0x45);
    cr_expect_eq(s_in(f, 0x64) & 0x01, 0, "taken");
    s_out(f, 0x64, 0x60);
    s_out(f, 0x60, 0x61);
    cr_expect_eq(s_in(f, 0x64) & 0x08, 0, "last write data");
    s_out(f, 0x64, 0xad);
    s_out(f, 0x64, 0x20);
    cr_expect_eq(s_in(f, 0x60), 0x71, "written, then the keyboard disabled");
    s_out(f, 0x64, 0xae);
    s_out(f, 0x64, 0x20);
    cr_expect_eq(s_in(f, 0x60), 0x61);
    fake_env_destroy(&f);
}

Test(i8042, self_tests_pass)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_in(f, 0x64) & 0x04, 0x04, "the system flag");
    s_out(f, 0x64, 0xaa);
    cr_expect_eq(s_in(f, 0x60), 0x55);
    s_out(f, 0x64, 0xab);
    cr_expect_eq(s_in(f, 0x60), 0x00);
    cr_expect_eq(f->power_requests, 0);
    fake_env_destroy(&f);
}

Test(i8042, other_commands_and_keyboard_bytes_are_counted_and_ignored)
{
    fake_env_t *f = s_new();
    s_out(f, 0x64, 0xa7);
    s_out(f, 0x60, 0xff); /* a reset for the absent keyboard */
    cr_expect_eq(s_in(f, 0x64) & 0x01, 0, "no answer comes");
    cr_expect_eq(f->power_requests, 0);
    cr_expect_eq(fake_env_write(f, false, 0x60, 2, 0), -EINVAL, "registers are bytes");
    cr_expect_eq(f->logs, 1, "the refusal says why");
    fake_env_destroy(&f);
}

Test(i8042, reset_and_restore_bring_back_its_state)
{
    fake_env_t *f = s_new(), *g = s_new();
    s_out(f, 0x64, 0x60);
    s_out(f, 0x60, 0x20);
    s_out(f, 0x64, 0x20); /* the answer waits */
    s_out(f, 0x64, 0x60); /* and a command waits for its data */
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(s_in(g, 0x64) & 0x09, 0x09);
    cr_expect_eq(s_in(g, 0x60), 0x20);
    s_out(g, 0x60, 0x33);
    s_out(g, 0x64, 0x20);
    cr_expect_eq(s_in(g, 0x60), 0x33, "the pending write came across");
    f->dev->ops->reset(f->dev);
    s_out(f, 0x64, 0x20);
    cr_expect_eq(s_in(f, 0x60), 0x45);
    static const uint8_t bad_pending[] = {0x20, 0xaa, 0x01}; /* pending 0xaa */
    cr_expect_eq(g->dev->ops->restore(g->dev, bad_pending, sizeof bad_pending), -EINVAL);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
