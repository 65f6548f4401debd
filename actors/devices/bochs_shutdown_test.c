/* dev_bochs_shutdown: "Shutdown" at port 0x8900 powers off; nothing else. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/bochs_shutdown.h"
#include "actors/devices/device_models.h"
#include "actors/devices/testing/fake_env.h"
#include "proto/device_state.pb-c.h"

#define OFF VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_bochs_shutdown_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static void s_outs(fake_env_t *f, const char *bytes)
{
    for (size_t i = 0; bytes[i]; i++)
        cr_assert_eq(fake_env_write(f, false, 0x8900, 1, (uint8_t)bytes[i]), 0);
}

Test(bochs_shutdown, claims_port_0x8900_alone)
{
    fake_env_t *f = s_new();
    const device_spec_t *spec = &f->dev->spec;
    cr_expect_str_eq(spec->name, "bochs-shutdown");
    cr_expect_str_eq(f->dev->ops->kind, "bochs-shutdown");
    cr_expect_eq(device_model_find("bochs-shutdown"), dev_bochs_shutdown_new,
                 "in the table of kinds");
    cr_expect_str_eq(device_model_kind(dev_bochs_shutdown_new), "bochs-shutdown");
    cr_assert_eq(spec->n_ranges, 1);
    cr_expect_not(spec->ranges[0].mmio);
    cr_expect_eq(spec->ranges[0].start, 0x8900);
    cr_expect_eq(spec->ranges[0].len, 1);
    cr_expect_eq(spec->n_irq_lines, 0);
    cr_expect_not(spec->posted_writes, "a power off must leave before the VP goes on");
    fake_env_destroy(&f);
}

Test(bochs_shutdown, the_whole_word_powers_off_without_an_exit_code)
{
    fake_env_t *f = s_new();
    s_outs(f, "Shutdow");
    cr_expect_eq(f->power_requests, 0, "seven letters are not enough");
    cr_expect_eq(fake_env_inspect(f, "matched"), 7);
    s_outs(f, "n");
    cr_expect_eq(f->power_requests, 1);
    cr_expect_eq(f->power_action, OFF);
    cr_expect_eq(f->power_exit_code, -1);
    cr_expect_eq(fake_env_inspect(f, "matched"), 0, "the match starts again");
    cr_expect_eq(fake_env_inspect(f, "power_offs"), 1);
    s_outs(f, "Shutdown");
    cr_expect_eq(f->power_requests, 2, "and powers off again");
    fake_env_destroy(&f);
}

Test(bochs_shutdown, a_broken_word_does_nothing)
{
    fake_env_t *f = s_new();
    s_outs(f, "Shutdoxn");
    s_outs(f, "shutdown");
    s_outs(f, "SHUTDOWN");
    s_outs(f, "Shut down");
    cr_expect_eq(f->power_requests, 0);
    cr_expect_eq(fake_env_inspect(f, "matched"), 0);
    cr_expect_eq(fake_env_inspect(f, "broken"), 3, "x, H and the space broke a match");
    cr_expect_eq(fake_env_inspect(f, "bytes"), 33);
    cr_expect_eq(f->logs, 0, "every byte is the guest's to write");
    fake_env_destroy(&f);
}

Test(bochs_shutdown, a_wrong_byte_restarts_and_an_s_is_the_first_letter)
{
    fake_env_t *f = s_new();
    s_outs(f, "ShutShutdown");
    cr_expect_eq(f->power_requests, 1, "the second S starts the word again");
    s_outs(f, "SShutdown");
    cr_expect_eq(f->power_requests, 2);
    s_outs(f, "Shutdo");
    cr_assert_eq(fake_env_write(f, false, 0x8900, 1, 0), 0);
    cr_expect_eq(fake_env_inspect(f, "matched"), 0);
    s_outs(f, "wn");
    cr_expect_eq(f->power_requests, 2, "a zero byte between breaks it");
    s_outs(f, "Shutdown");
    cr_expect_eq(f->power_requests, 3);
    fake_env_destroy(&f);
}

/* As in Bochs and QEMU, where nothing reads the port. */
Test(bochs_shutdown, reads_return_all_ones_and_leave_the_match_alone)
{
    fake_env_t *f = s_new();
    s_outs(f, "Shut");
    uint64_t value = 0;
    cr_expect_eq(fake_env_read(f, false, 0x8900, 1, &value), 0);
    cr_expect_eq(value & 0xff, 0xff);
    s_outs(f, "down");
    cr_expect_eq(f->power_requests, 1);
    fake_env_destroy(&f);
}

static int s_restore_matched(fake_env_t *f, uint32_t matched)
{
    Vmm__DeviceState__BochsShutdown st = VMM__DEVICE_STATE__BOCHS_SHUTDOWN__INIT;
    st.matched = matched;
    ProtobufCBinaryData bytes;
    cr_assert_eq(device_pack_state(&st.base, &bytes), 0);
    int rc = f->dev->ops->restore(f->dev, bytes.data, bytes.len);
    free(bytes.data);
    return rc;
}

Test(bochs_shutdown, a_saved_match_restores_and_reset_forgets_it)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new();
    s_outs(f, "Shutd");
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(fake_env_inspect(g, "matched"), 5);
    s_outs(g, "own");
    cr_expect_eq(g->power_requests, 1, "the restored device goes on matching");

    cr_expect_eq(s_restore_matched(g, 8), -EINVAL, "a whole word is never kept");
    cr_expect_eq(s_restore_matched(g, 1000), -EINVAL);
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(g->dev->ops->restore(g->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(fake_env_inspect(g, "matched"), 0, "a refused state changes nothing");
    cr_expect_eq(s_restore_matched(g, 7), 0);
    s_outs(g, "n");
    cr_expect_eq(g->power_requests, 2);

    f->dev->ops->reset(f->dev);
    cr_expect_eq(fake_env_inspect(f, "matched"), 0);
    s_outs(f, "own");
    cr_expect_eq(f->power_requests, 0);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
