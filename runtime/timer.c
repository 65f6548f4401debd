/*
 * The runtime's clock and its actors' timers. An executor keeps its
 * actors' timers in one small table and one timerfd armed for the
 * earliest deadline; the timerfd is an input of its loop, so a blocking
 * actor's watcher kicks it when a timer is due.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

uint64_t rt_now_ns(rt_actor_t *self)
{
    if (self && self->ex->replay)
        return rt_replay_clock(self);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (self && atomic_load_explicit(&self->rt->trace, memory_order_relaxed))
        rt_trace_input(self->rt, self, RT_TRACE_CLOCK, now); /* what the actor saw */
    return now;
}

/* Arms the timerfd for the earliest deadline, or disarms it. */
static int s_rearm(rt_executor_t *ex)
{
    if (ex->timer_fd < 0)
        return 0;
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < ex->n_timers; i++)
        if (ex->timers[i].deadline_ns < first)
            first = ex->timers[i].deadline_ns;
    struct itimerspec its = {0};
    if (first != UINT64_MAX) {
        if (!first)
            first = 1; /* 0 would disarm it */
        its.it_value.tv_sec = (time_t)(first / 1000000000u);
        its.it_value.tv_nsec = (long)(first % 1000000000u);
    }
    return timerfd_settime(ex->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) ? -errno : 0;
}

static rt_timer_t *s_find(rt_executor_t *ex, rt_actor_t *actor, uint64_t id)
{
    for (size_t i = 0; i < ex->n_timers; i++)
        if (ex->timers[i].actor == actor && ex->timers[i].id == id)
            return &ex->timers[i];
    return NULL;
}

int rt_timer_set(rt_actor_t *self, uint64_t id, uint64_t deadline_ns, rt_timer_fn fn)
{
    rt_executor_t *ex = self->ex;
    if (!fn)
        return -EINVAL;
    if (ex->timer_fd < 0 && !ex->replay) { /* a replay fires them as the trace says */
        ex->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (ex->timer_fd < 0)
            return -errno;
        rt_executor_new_input(ex, ex->timer_fd);
    }
    rt_timer_t *t = s_find(ex, self, id);
    if (!t) {
        rt_timer_t *grown = realloc(ex->timers, (ex->n_timers + 1) * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        ex->timers = grown;
        t = &ex->timers[ex->n_timers++];
    }
    *t = (rt_timer_t){.actor = self, .id = id, .deadline_ns = deadline_ns, .fn = fn};
    return s_rearm(ex);
}

int rt_timer_cancel(rt_actor_t *self, uint64_t id)
{
    rt_executor_t *ex = self->ex;
    rt_timer_t *t = s_find(ex, self, id);
    if (!t)
        return -ENOENT;
    *t = ex->timers[--ex->n_timers];
    s_rearm(ex);
    return 0;
}

void rt_executor_drop_timers(rt_executor_t *ex, rt_actor_t *actor)
{
    for (size_t i = 0; i < ex->n_timers;)
        if (ex->timers[i].actor == actor)
            ex->timers[i] = ex->timers[--ex->n_timers];
        else
            i++;
    s_rearm(ex);
}

void rt_executor_fire_timers(rt_executor_t *ex)
{
    uint64_t expirations;
    if (read(ex->timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        rt_log(ex->rt, NULL, RT_LOG_WARN, "reading the timerfd: %m");
    uint64_t now = rt_now_ns(NULL);
    /* A callback may arm or cancel timers: take one due timer at a time,
     * forgotten before it runs, so that it may arm itself again. */
    for (size_t i = 0; i < ex->n_timers;) {
        rt_timer_t t = ex->timers[i];
        if (t.deadline_ns > now || t.actor->terminated) {
            i++;
            continue;
        }
        ex->timers[i] = ex->timers[--ex->n_timers];
        rt_trace_input(ex->rt, t.actor, RT_TRACE_TIMER, t.id);
        t.actor->depth++;
        t.fn(t.actor, t.id);
        t.actor->depth--;
        i = 0;
    }
    s_rearm(ex);
}
