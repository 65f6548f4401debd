/* The recording environment's clocks: the wall clock starts at its
 * documented date, moves with the clock as timers fire, and takes what a
 * test sets. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "actors/devices/testing/fake_env.h"

/* A model that reads both clocks when its timer 0 fires. */
typedef struct {
    device_t dev;
    uint64_t wall_at_timer, now_at_timer;
} clocks_t;

static void s_timer(device_t *dev, uint32_t id)
{
    clocks_t *c = (clocks_t *)dev;
    if (id == 0) {
        c->wall_at_timer = device_wall_ns(dev);
        c->now_at_timer = device_now_ns(dev);
    }
}

static void s_destroy(device_t *dev)
{
    free(dev);
}

static const device_ops_t s_ops = {.kind = "clocks", .timer = s_timer, .destroy = s_destroy};

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    clocks_t *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->dev = (device_t){.ops = &s_ops, .env = &f->env};
    f->dev = &c->dev;
    return f;
}

Test(fake_env, the_wall_clock_starts_on_2024_01_01)
{
    fake_env_t *f = s_new();
    cr_expect_eq(device_wall_ns(f->dev), 1704067200ull * 1000000000ull);
    cr_expect_eq(device_now_ns(f->dev), 0);
    cr_expect_eq(f->wall_reads, 1);
    fake_env_destroy(&f);
}

Test(fake_env, the_wall_clock_moves_with_the_clock_and_takes_what_is_set)
{
    fake_env_t *f = s_new();
    clocks_t *c = (clocks_t *)f->dev;
    cr_assert_eq(device_timer_set(f->dev, 0, 250), 0);
    fake_env_advance(f, 1000);
    cr_expect_eq(c->now_at_timer, 250);
    cr_expect_eq(c->wall_at_timer, FAKE_ENV_WALL_NS + 250, "at the timer's deadline");
    cr_expect_eq(device_wall_ns(f->dev), FAKE_ENV_WALL_NS + 1000);
    f->wall_ns = 5000000000ull; /* the host's clock stepped */
    fake_env_advance(f, 7);
    cr_expect_eq(device_wall_ns(f->dev), 5000000007ull);
    cr_expect_eq(device_now_ns(f->dev), 1007, "the clock did not step");
    cr_expect_eq(f->wall_reads, 3);
    fake_env_destroy(&f);
}
