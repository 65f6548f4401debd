/* dev_testdev: guest calls, MSIs, the slow register, the line. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/testdev.h"
#include "actors/devices/testing/fake_env.h"

#define MS 1000000ull

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_testdev_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static void s_outl(fake_env_t *f, uint32_t vp, uint16_t port, uint32_t value)
{
    device_io_t io = {.address = port, .size = 4, .vp_index = vp};
    cr_assert_eq(f->dev->ops->write(f->dev, &io, value), 0, "outl 0x%x to 0x%x", value, port);
}

static uint32_t s_inl(fake_env_t *f, uint16_t port)
{
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, port, 4, &value), 0);
    return (uint32_t)value;
}

Test(testdev, claims_its_ports_its_line_and_one_msi)
{
    fake_env_t *f = s_new();
    const device_spec_t *spec = &f->dev->spec;
    cr_expect_eq(spec->ranges[0].start, TESTDEV_PORT_BASE);
    cr_expect_eq(spec->ranges[0].len, TESTDEV_PORT_COUNT);
    cr_expect_eq(spec->n_irq_lines, 1);
    cr_expect_eq(spec->irq_lines[0], TESTDEV_IRQ);
    cr_expect_eq(spec->msi_count, 1);
    cr_expect_not(spec->posted_writes, "a sync point must be seen before the guest goes on");
    fake_env_destroy(&f);
}

Test(testdev, a_call_reports_its_vp_kind_and_arguments_in_order)
{
    fake_env_t *f = s_new();
    s_outl(f, 3, TESTDEV_PORT_ARG, 7);
    s_outl(f, 3, TESTDEV_PORT_ARG, 0xdeadbeef);
    s_outl(f, 3, TESTDEV_PORT_CALL, TESTDEV_CALL_SYNC);
    s_outl(f, 1, TESTDEV_PORT_CALL, 99); /* a kind the ABI does not name */
    cr_assert_eq(f->n_calls, 2);
    cr_expect_eq(f->calls[0].vp, 3);
    cr_expect_eq(f->calls[0].kind, TESTDEV_CALL_SYNC);
    cr_assert_eq(f->calls[0].n_args, 2);
    cr_expect_eq(f->calls[0].args[0], 7);
    cr_expect_eq(f->calls[0].args[1], 0xdeadbeef);
    cr_expect_eq(f->calls[1].vp, 1);
    cr_expect_eq(f->calls[1].kind, 99);
    cr_expect_eq(f->calls[1].n_args, 0, "a call forgets its arguments");
    fake_env_destroy(&f);
}

Test(testdev, arguments_beyond_the_limit_are_dropped)
{
    fake_env_t *f = s_new();
    for (uint32_t i = 0; i < TESTDEV_MAX_ARGS + 3; i++)
        s_outl(f, 0, TESTDEV_PORT_ARG, i);
    s_outl(f, 0, TESTDEV_PORT_CALL, TESTDEV_CALL_DONE);
    cr_assert_eq(f->n_calls, 1);
    cr_assert_eq(f->calls[0].n_args, TESTDEV_MAX_ARGS);
    cr_expect_eq(f->calls[0].args[TESTDEV_MAX_ARGS - 1], TESTDEV_MAX_ARGS - 1);
    fake_env_destroy(&f);
}

Test(testdev, msi_writes_raise_the_msi)
{
    fake_env_t *f = s_new();
    s_outl(f, 0, TESTDEV_PORT_MSI, 0x0240);
    cr_assert_eq(f->n_msis, 1);
    cr_expect_eq(f->msis[0].address, 0xfee02000);
    cr_expect_eq(f->msis[0].data, 0x40);
    cr_expect_eq(fake_env_write(f, false, TESTDEV_PORT_MSI, 4, 0x10040), -EINVAL,
                 "an APIC id over 8 bits");
    cr_expect_eq(f->n_msis, 1);
    fake_env_destroy(&f);
}

Test(testdev, registers_take_32_bit_accesses_only)
{
    fake_env_t *f = s_new();
    uint64_t value;
    cr_expect_eq(fake_env_write(f, false, TESTDEV_PORT_ARG, 2, 1), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, TESTDEV_PORT_ARG, 1, &value), -EINVAL);
    cr_expect_eq(fake_env_write(f, false, TESTDEV_PORT_BASE + 1, 4, 1), -EINVAL,
                 "inside no register");
    cr_expect_eq(f->logs, 3, "each refusal says why");
    cr_expect_eq(s_inl(f, TESTDEV_PORT_ARG), UINT32_MAX, "other reads are all ones");
    fake_env_destroy(&f);
}

Test(testdev, a_read_of_delay_is_answered_that_much_later)
{
    fake_env_t *f = s_new();
    s_outl(f, 0, TESTDEV_PORT_DELAY, 30);
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, TESTDEV_PORT_DELAY, 4, &value), DEVICE_IO_DEFERRED);
    s_outl(f, 0, TESTDEV_PORT_DELAY, 10);
    cr_assert_eq(fake_env_read(f, false, TESTDEV_PORT_DELAY, 4, &value), DEVICE_IO_DEFERRED);
    cr_assert_eq(f->n_tokens, 2);
    fake_env_advance(f, 9 * MS);
    cr_expect_not(f->tokens[1].completed, "not before its 10 ms");
    fake_env_advance(f, 1 * MS);
    cr_expect(f->tokens[1].completed);
    cr_expect_eq(f->tokens[1].value, 10);
    cr_expect_not(f->tokens[0].completed, "the 30 ms read waits on");
    fake_env_advance(f, 20 * MS);
    cr_expect(f->tokens[0].completed);
    cr_expect_eq(f->tokens[0].status, 0);
    cr_expect_eq(f->tokens[0].value, 30);
    cr_expect_eq(f->bad_completions, 0);
    fake_env_destroy(&f);
}

Test(testdev, slow_reads_are_bounded_and_a_reset_fails_them)
{
    fake_env_t *f = s_new();
    s_outl(f, 0, TESTDEV_PORT_DELAY, 1000);
    uint64_t value;
    for (int i = 0; i < TESTDEV_MAX_DEFERRED; i++)
        cr_assert_eq(fake_env_read(f, false, TESTDEV_PORT_DELAY, 4, &value), DEVICE_IO_DEFERRED);
    cr_expect_eq(fake_env_read(f, false, TESTDEV_PORT_DELAY, 4, &value), -EBUSY);
    cr_expect_eq(fake_env_write(f, false, TESTDEV_PORT_DELAY, 4, TESTDEV_MAX_DELAY_MS + 1),
                 -EINVAL);
    f->dev->ops->reset(f->dev);
    for (int i = 0; i < TESTDEV_MAX_DEFERRED; i++) {
        cr_expect(f->tokens[i].completed);
        cr_expect_eq(f->tokens[i].status, -ECANCELED);
    }
    fake_env_advance(f, 2000 * MS);
    cr_expect_eq(f->bad_completions, 0, "no timer completes them again");
    fake_env_destroy(&f);
}

Test(testdev, the_line_follows_its_register)
{
    fake_env_t *f = s_new();
    s_outl(f, 0, TESTDEV_PORT_LINE, 1);
    cr_expect(f->irq[TESTDEV_IRQ]);
    cr_expect_eq(s_inl(f, TESTDEV_PORT_LINE), 1);
    s_outl(f, 0, TESTDEV_PORT_LINE, 0);
    cr_expect_not(f->irq[TESTDEV_IRQ]);
    s_outl(f, 0, TESTDEV_PORT_LINE, 1);
    cr_expect_eq(f->irq_rises[TESTDEV_IRQ], 2);
    cr_expect_eq(fake_env_write(f, false, TESTDEV_PORT_LINE, 4, 2), -EINVAL);
    f->dev->ops->reset(f->dev);
    cr_expect_not(f->irq[TESTDEV_IRQ], "a reset lowers it");
    fake_env_destroy(&f);
}

Test(testdev, its_state_saves_and_restores)
{
    fake_env_t *f = s_new(), *g = s_new();
    s_outl(f, 0, TESTDEV_PORT_ARG, 5);
    s_outl(f, 0, TESTDEV_PORT_DELAY, 12);
    s_outl(f, 0, TESTDEV_PORT_LINE, 1);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect(g->irq[TESTDEV_IRQ], "the line comes back high");
    s_outl(g, 2, TESTDEV_PORT_CALL, TESTDEV_CALL_SYNC);
    cr_assert_eq(g->n_calls, 1);
    cr_assert_eq(g->calls[0].n_args, 1);
    cr_expect_eq(g->calls[0].args[0], 5);
    uint64_t value;
    cr_assert_eq(fake_env_read(g, false, TESTDEV_PORT_DELAY, 4, &value), DEVICE_IO_DEFERRED);
    fake_env_advance(g, 12 * MS);
    cr_expect_eq(g->tokens[0].value, 12);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
