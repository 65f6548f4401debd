/* dev_hyperv_testdev: QEMU's encoding, each control's SynIC call on a fake
 * environment, echoes and events, refusals, save and restore. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "actors/devices/device_models.h"
#include "actors/devices/hyperv_testdev.h"
#include "actors/devices/testing/fake_env.h"

#define PORT 0x3000

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_hyperv_testdev_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

/* A control as kvm-unit-tests' synic_ctl() writes it. */
static void s_ctl(fake_env_t *f, uint32_t ctl, uint32_t vp, uint32_t sint, uint32_t conn)
{
    cr_assert_eq(fake_env_write(f, false, PORT, 4, conn << 24 | ctl << 16 | vp << 8 | sint), 0);
}

static const fake_synic_call_t *s_last(fake_env_t *f)
{
    cr_assert_gt(f->n_synic, 0, "no SynIC call");
    return &f->synic[f->n_synic - 1];
}

Test(hyperv_testdev, claims_the_4_byte_port_at_0x3000)
{
    fake_env_t *f = s_new();
    cr_expect_str_eq(f->dev->spec.name, "hyperv-testdev");
    cr_expect_eq(device_model_find("hyperv-testdev"), dev_hyperv_testdev_new);
    cr_assert_eq(f->dev->spec.n_ranges, 1);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0x3000);
    cr_expect_eq(f->dev->spec.ranges[0].len, 4);
    uint64_t v = 1;
    cr_expect_eq(fake_env_read(f, false, PORT, 4, &v), 0);
    cr_expect_eq(v, 0, "reads return 0");
    cr_expect_lt(fake_env_read(f, false, PORT, 1, &v), 0, "only 4-byte accesses");
    cr_expect_lt(fake_env_write(f, false, PORT, 2, 0x10000), 0);
    cr_expect_eq(f->n_synic, 0);
    fake_env_destroy(&f);
}

Test(hyperv_testdev, set_sint_asserts_the_sint_of_a_route)
{
    fake_env_t *f = s_new();
    s_ctl(f, 3, 1, 5, 0);
    cr_expect_eq(f->n_synic, 0, "no route yet: refused");
    cr_expect_eq(fake_env_inspect(f, "refused"), 1);
    s_ctl(f, 1, 1, 5, 0);
    cr_expect_eq(fake_env_inspect(f, "routes"), 1);
    s_ctl(f, 3, 1, 5, 0);
    const fake_synic_call_t *c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_ASSERT);
    cr_expect_eq(c->vp, 1);
    cr_expect_eq(c->sint, 5);
    s_ctl(f, 2, 1, 5, 0);
    cr_expect_eq(fake_env_inspect(f, "routes"), 0);
    s_ctl(f, 2, 1, 5, 0);
    cr_expect_eq(fake_env_inspect(f, "refused"), 2, "destroying what is not there");
    fake_env_destroy(&f);
}

Test(hyperv_testdev, a_message_connection_echoes_what_the_guest_posts)
{
    fake_env_t *f = s_new();
    s_ctl(f, 4, 2, 3, 0x7f);
    const fake_synic_call_t *c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_CONNECT);
    cr_expect(c->message);
    cr_expect_eq(c->connection_id, 0x7f);
    const uint8_t payload[] = {1, 2, 3, 4, 5};
    f->dev->ops->synic_message(f->dev, 0x7f, 0x1234, payload, sizeof payload);
    c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_POST);
    cr_expect_eq(c->vp, 2);
    cr_expect_eq(c->sint, 3);
    cr_expect_eq(c->type, 0x1234, "the same type");
    cr_assert_eq(c->len, sizeof payload);
    cr_expect_eq(memcmp(c->payload, payload, sizeof payload), 0, "the same payload");
    cr_expect_eq(fake_env_inspect(f, "echoed"), 1);
    s_ctl(f, 4, 2, 3, 0x7f);
    cr_expect_eq(fake_env_inspect(f, "refused"), 1, "the id is taken");
    s_ctl(f, 5, 0, 0, 0x7f);
    c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_DISCONNECT);
    cr_expect_eq(c->connection_id, 0x7f);
    size_t before = f->n_synic;
    f->dev->ops->synic_message(f->dev, 0x7f, 1, payload, 1);
    cr_expect_eq(f->n_synic, before, "no echo once destroyed");
    cr_expect_eq(fake_env_inspect(f, "lost"), 1);
    fake_env_destroy(&f);
}

Test(hyperv_testdev, an_event_connection_sets_the_flag_of_its_id)
{
    fake_env_t *f = s_new();
    s_ctl(f, 6, 1, 9, 42);
    const fake_synic_call_t *c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_CONNECT);
    cr_expect_not(c->message);
    cr_expect_eq(c->connection_id, 42);
    f->dev->ops->synic_event(f->dev, 42, 0);
    c = s_last(f);
    cr_expect_eq(c->op, FAKE_SYNIC_SIGNAL);
    cr_expect_eq(c->vp, 1);
    cr_expect_eq(c->sint, 9);
    cr_expect_eq(c->flag, 42, "flag number = the connection id, as QEMU");
    s_ctl(f, 7, 0, 0, 42);
    cr_expect_eq(s_last(f)->op, FAKE_SYNIC_DISCONNECT);
    cr_expect_eq(fake_env_inspect(f, "event_connections"), 0);
    fake_env_destroy(&f);
}

Test(hyperv_testdev, a_synic_that_refuses_is_logged_and_counted)
{
    fake_env_t *f = s_new();
    f->synic_result = -ENODEV;
    s_ctl(f, 4, 0, 2, 1);
    cr_expect_eq(fake_env_inspect(f, "message_connections"), 0);
    cr_expect_eq(fake_env_inspect(f, "refused"), 1);
    cr_expect_gt(f->logs, 0);
    s_ctl(f, 99, 0, 0, 0);
    cr_expect_eq(fake_env_inspect(f, "ignored"), 1, "unknown controls are ignored");
    fake_env_destroy(&f);
}

Test(hyperv_testdev, save_and_restore_make_the_connections_again)
{
    fake_env_t *f = s_new();
    s_ctl(f, 1, 0, 4, 0);
    s_ctl(f, 4, 0, 4, 10);
    s_ctl(f, 6, 1, 5, 11);
    fake_env_t *g = s_new();
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(fake_env_inspect(g, "routes"), 1);
    cr_expect_eq(fake_env_inspect(g, "message_connections"), 1);
    cr_expect_eq(fake_env_inspect(g, "event_connections"), 1);
    cr_assert_eq(g->n_synic, 2, "both connections made with the synic");
    cr_expect(g->synic[0].op == FAKE_SYNIC_CONNECT && g->synic[0].message &&
              g->synic[0].connection_id == 10);
    cr_expect(g->synic[1].op == FAKE_SYNIC_CONNECT && !g->synic[1].message &&
              g->synic[1].connection_id == 11);
    const uint8_t bad[] = {0xff, 0xff};
    cr_expect_eq(g->dev->ops->restore(g->dev, bad, sizeof bad), -EINVAL);
    cr_expect_eq(fake_env_inspect(g, "message_connections"), 1, "unchanged");
    g->dev->ops->reset(g->dev);
    cr_expect_eq(fake_env_inspect(g, "message_connections"), 0);
    cr_expect_eq(fake_env_inspect(g, "routes"), 0);
    cr_expect_eq(s_last(g)->op, FAKE_SYNIC_DISCONNECT, "reset disconnects");
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}
