/*
 * Executors: a thread that hosts actors and polls their mailboxes, its own
 * sockets to other actors (for replies), raw descriptors and a control pipe
 * in one loop. Start and terminate follow CZMQ's zactor: the creator waits
 * on a pipe until the thread says it is ready, and terminate is a message on
 * the same pipe, acknowledged before the thread is joined.
 *
 * An executor with a blocking actor (ops->run) also has a watcher thread
 * that polls the same inputs and kicks that actor out of its block when one
 * becomes readable, whichever of the executor's actors it is for. The loop itself is in loop.c, routes in route.c.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

typedef enum { S_CMD_ADD, S_CMD_TERM } s_cmd_op_t;

typedef struct {
    s_cmd_op_t op;
    const rt_actor_spec_t *spec;
} s_cmd_t;

/* What one peer's frames queued at a mailbox with an endpoint may take,
 * at most, and the fewest frames its queue holds whatever their size. */
#define S_PEER_QUEUE_BYTES (128ll << 20)
#define S_PEER_QUEUE_MIN 16

void *rt_socket(rt_t *rt, int type)
{
    void *s = zmq_socket(rt->zctx, type);
    if (!s)
        return NULL;
    int zero = 0, hwm = rt->cfg.queue_messages, timeout = rt->cfg.send_timeout_ms;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    return s;
}

static rt_executor_t *s_core_new(rt_t *rt, const char *name)
{
    rt_executor_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->rt = rt;
    ex->name = strdup(name);
    ex->routes = rt_map_new();
    ex->watcher_stop_fd = -1;
    ex->watcher_rearm_fd = -1;
    ex->watcher_refresh_fd = -1;
    ex->timer_fd = -1;
    ex->next_id = 1;
    ex->items_dirty = true;
    if (!ex->name || !ex->routes || pthread_mutex_init(&ex->watch_lock, NULL) ||
        pthread_mutex_init(&ex->pipe_lock, NULL)) {
        rt_map_destroy(&ex->routes);
        free(ex->name);
        free(ex);
        return NULL;
    }
    return ex;
}

/* Frees what s_core_new and the loop allocated; actors are gone by now. */
void rt_executor_free_core(rt_executor_t *ex)
{
    while (ex->q_head) {
        rt_qitem_t *next = ex->q_head->next;
        free(ex->q_head);
        ex->q_head = next;
    }
    rt_executor_flush(ex);
    rt_map_each(ex->routes, rt_route_close, ex);
    rt_map_destroy(&ex->routes);
    rt_link_free_all(ex);
    free(ex->batched);
    free(ex->dealers);
    free(ex->actors);
    free(ex->pending);
    free(ex->watches);
    free(ex->timers);
    if (ex->timer_fd >= 0)
        close(ex->timer_fd);
    free(ex->inputs);
    free(ex->pfds);
    free(ex->watch_fds);
    pthread_mutex_destroy(&ex->watch_lock);
    pthread_mutex_destroy(&ex->pipe_lock);
    free(ex->name);
    free(ex);
}

/* ---- Actors on this executor ------------------------------------------- */

static int s_build_table(rt_actor_t *actor)
{
    const rt_actor_ops_t *ops = actor->ops;
    size_t len = 0;
    for (size_t i = 0; i < ops->n_handlers; i++)
        if ((size_t)ops->handlers[i].body + 1 > len)
            len = (size_t)ops->handlers[i].body + 1;
    if (!len)
        return 0;
    actor->table = calloc(len, sizeof *actor->table);
    if (!actor->table)
        return -ENOMEM;
    actor->table_len = len;
    for (size_t i = 0; i < ops->n_handlers; i++)
        actor->table[ops->handlers[i].body] = ops->handlers[i].fn;
    return 0;
}

static void s_free_actor(rt_actor_t *actor)
{
    if (actor->in_batch)
        zmq_msg_close(&actor->batch);
    if (actor->mailbox) {
        /* Closing releases endpoints later, on ZeroMQ's own thread: unbind
         * now so that a restarted actor can bind them again at once. */
        if (actor->bound)
            zmq_unbind(actor->mailbox, actor->endpoint);
        if (actor->extra_endpoint && actor->extra_bound)
            zmq_unbind(actor->mailbox, actor->extra_endpoint);
        zmq_close(actor->mailbox);
    }
    rt_link_record_close(&actor->record);
    free(actor->table);
    free(actor->extra_endpoint);
    free(actor->endpoint);
    free(actor->name);
    free(actor);
}

int rt_executor_add_actor(rt_executor_t *ex, const rt_actor_spec_t *spec)
{
    rt_t *rt = ex->rt;
    if (!spec || !spec->name || !*spec->name || !spec->ops)
        return -EINVAL;
    if (spec->ops->run && ex->blocking)
        return -EBUSY; /* one thread can block in only one run */

    int rc = -ENOMEM;
    rt_actor_t *actor = calloc(1, sizeof *actor);
    if (!actor)
        return -ENOMEM;
    actor->ex = ex;
    actor->rt = rt;
    actor->ops = spec->ops;
    actor->serial = atomic_fetch_add(&rt->next_actor_serial, 1);
    actor->name = strdup(spec->name);
    if (!actor->name || s_build_table(actor))
        goto fail;
    rc = asprintf(&actor->endpoint, "inproc://rt/%s", spec->name) < 0 ? -ENOMEM : 0;
    if (rc) {
        actor->endpoint = NULL;
        goto fail;
    }
    actor->mailbox = rt_socket(rt, ZMQ_ROUTER);
    if (!actor->mailbox) {
        rc = -errno;
        goto fail;
    }
    int one = 1;
    zmq_setsockopt(actor->mailbox, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    /* Messages a little over the limit get an error reply; a peer that
     * sends far more is disconnected before it is buffered in full. */
    int64_t hard_limit = (int64_t)rt->cfg.max_message_bytes * 4;
    if (hard_limit < 256 * 1024)
        hard_limit = 256 * 1024; /* batch frames (actor.c) must fit */
    zmq_setsockopt(actor->mailbox, ZMQ_MAXMSGSIZE, &hard_limit, sizeof hard_limit);
    /* A peer in another process that floods a mailbox bound for it fills
     * its queue to the high-water mark and then waits (its sends fail after
     * send_timeout_ms): a mark counted in frames of up to hard_limit bytes
     * each bounds what it makes this process hold. */
    if (spec->endpoint) {
        int64_t frames = S_PEER_QUEUE_BYTES / hard_limit;
        int hwm = frames < S_PEER_QUEUE_MIN ? S_PEER_QUEUE_MIN : (int)frames;
        if (hwm < rt->cfg.queue_messages)
            zmq_setsockopt(actor->mailbox, ZMQ_RCVHWM, &hwm, sizeof hwm);
    }
    /* Before anything can reach it: what it took before a restart. */
    if (spec->delivery_record && (rc = rt_link_record_open(actor, spec->delivery_record))) {
        rt_log(rt, actor, RT_LOG_ERROR, "cannot open the delivery record %s: %s",
               spec->delivery_record, strerror(-rc));
        goto fail;
    }
    rc = rt_register_actor(rt, actor);
    if (rc)
        goto fail;
    const char *failed = NULL;
    if (zmq_bind(actor->mailbox, actor->endpoint))
        failed = actor->endpoint;
    else
        actor->bound = true;
    bool replay_endpoint = spec->endpoint && ex->replay;
    if (replay_endpoint) {
        /* Named as in the run it replays, not bound: peers are the trace. */
        if (!(actor->extra_endpoint = strdup(spec->endpoint))) {
            rc = -ENOMEM;
            goto fail_registered;
        }
    } else if (!failed && spec->endpoint && rt->auth &&
               strncmp(spec->endpoint, "tcp://", 6) == 0) {
        /* Under a key pair, before the endpoint takes a connection. */
        rc = rt_auth_serve(actor);
        if (rc) {
            rt_log(rt, actor, RT_LOG_ERROR, "cannot serve %s with CURVE: %s", spec->endpoint,
                   strerror(-rc));
            goto fail_registered;
        }
    }
    if (!failed && spec->endpoint && !replay_endpoint) {
        actor->extra_endpoint = strdup(spec->endpoint);
        if (!actor->extra_endpoint || zmq_bind(actor->mailbox, spec->endpoint))
            failed = spec->endpoint;
        else
            actor->extra_bound = true;
    }
    if (actor->extra_bound) {
        /* What a wildcard such as tcp://127.0.0.1:* resolved to. */
        char resolved[256];
        size_t len = sizeof resolved;
        if (!zmq_getsockopt(actor->mailbox, ZMQ_LAST_ENDPOINT, resolved, &len)) {
            char *copy = strdup(resolved);
            if (copy) {
                free(actor->extra_endpoint);
                actor->extra_endpoint = copy;
            }
        }
    }
    if (failed) {
        rc = errno ? -errno : -ENOMEM;
        rt_log(rt, actor, RT_LOG_ERROR, "cannot bind %s: %s", failed, zmq_strerror(-rc));
        goto fail_registered;
    }
    rt_trace_actor(rt, actor, spec->arg); /* before what its init sends */
    if (spec->ops->init) {
        actor->depth++; /* init may call out; nothing may call into it yet */
        rc = spec->ops->init(actor, spec->arg);
        actor->depth--;
        if (rc)
            goto fail_registered;
    }
    /* After init, which may have started a neighbour here itself. */
    rt_actor_t **actors = realloc(ex->actors, (ex->n_actors + 1) * sizeof *actors);
    if (!actors) {
        if (spec->ops->fini)
            spec->ops->fini(actor);
        rc = -ENOMEM;
        goto fail_registered;
    }
    ex->actors = actors;
    ex->actors[ex->n_actors++] = actor;
    rt_actor_share(actor, true);
    if (spec->ops->run) {
        ex->blocking = actor;
        actor->run_again = true;
    }
    ex->items_dirty = true;
    rt_log(rt, actor, RT_LOG_DEBUG, "started (%s) on %s", spec->ops->kind, ex->name);
    return 0;

fail_registered:
    rt_unregister_actor(rt, actor);
fail:
    s_free_actor(actor);
    return rc;
}

void rt_executor_remove_actor(rt_executor_t *ex, rt_actor_t *actor)
{
    rt_trace_actor_stopped(ex->rt, actor);
    rt_unregister_actor(ex->rt, actor);
    rt_route_t *route = rt_map_remove(ex->routes, actor->name);
    if (route)
        rt_route_close(ex, NULL, route);
    for (size_t i = 0; i < ex->n_pending;)
        if (ex->pending[i].actor == actor)
            ex->pending[i] = ex->pending[--ex->n_pending];
        else
            i++;
    for (size_t i = 0; i < ex->n_watches;)
        if (ex->watches[i].actor == actor)
            ex->watches[i] = ex->watches[--ex->n_watches];
        else
            i++;
    rt_executor_drop_timers(ex, actor);
    rt_qitem_t **link = &ex->q_head;
    ex->q_tail = NULL;
    while (*link) {
        rt_qitem_t *item = *link;
        if (item->to == actor) {
            *link = item->next;
            free(item);
        } else {
            ex->q_tail = item;
            link = &item->next;
        }
    }
    for (size_t i = 0; i < ex->n_actors; i++)
        if (ex->actors[i] == actor) {
            memmove(&ex->actors[i], &ex->actors[i + 1],
                    (ex->n_actors - i - 1) * sizeof *ex->actors);
            ex->n_actors--;
            break;
        }
    if (ex->blocking == actor)
        ex->blocking = NULL;
    ex->items_dirty = true;
    rt_log(ex->rt, actor, RT_LOG_DEBUG, "terminated");
    s_free_actor(actor);
}

static void s_terminate_actor(rt_executor_t *ex, rt_actor_t *actor)
{
    rt_actor_share(actor, false);
    if (!actor->terminated && actor->ops->fini)
        actor->ops->fini(actor);
    rt_executor_remove_actor(ex, actor);
}

void rt_executor_reap(rt_executor_t *ex)
{
    for (size_t i = 0; i < ex->n_actors;)
        if (ex->actors[i]->terminated && !ex->actors[i]->depth)
            rt_executor_remove_actor(ex, ex->actors[i]);
        else
            i++;
}

static void s_reply_int(void *pipe, int value)
{
    rt_tsan_sent();
    zmq_send(pipe, &value, sizeof value, 0);
}

bool rt_executor_drain_pipe(rt_executor_t *ex)
{
    atomic_store(&ex->pipe_pending, 0); /* a command sent from now on sets it */
    for (;;) {
        s_cmd_t cmd;
        int n = zmq_recv(ex->pipe_inner, &cmd, sizeof cmd, ZMQ_DONTWAIT);
        if (n < 0)
            return errno != EINTR;
        rt_tsan_received();
        if (n != sizeof cmd)
            continue;
        switch (cmd.op) {
        case S_CMD_ADD:
            s_reply_int(ex->pipe_inner, rt_executor_add_actor(ex, cmd.spec));
            break;
        case S_CMD_TERM:
            ex->stop = true;
            break;
        }
    }
}

static void s_rearm_watcher(rt_executor_t *ex)
{
    uint64_t one = 1;
    if (write(ex->watcher_rearm_fd, &one, sizeof one) < 0)
        rt_log(ex->rt, NULL, RT_LOG_ERROR, "watcher rearm: %m");
}

static void *s_watcher_main(void *arg)
{
    rt_executor_t *ex = arg;
    struct pollfd *fds = NULL;
    for (;;) {
        pthread_mutex_lock(&ex->watch_lock);
        size_t n = ex->n_watch_fds;
        struct pollfd *grown = realloc(fds, (n + 2) * sizeof *fds);
        if (grown) {
            fds = grown;
            for (size_t i = 0; i < n; i++)
                fds[i + 2] = (struct pollfd){.fd = ex->watch_fds[i], .events = POLLIN};
        }
        pthread_mutex_unlock(&ex->watch_lock);
        if (!grown)
            break;
        fds[0] = (struct pollfd){.fd = ex->watcher_stop_fd, .events = POLLIN};
        /* The executor changed its descriptors while this one was polling
         * the old ones (an actor started, a timer armed): poll the new. */
        fds[1] = (struct pollfd){.fd = ex->watcher_refresh_fd, .events = POLLIN};
        if (poll(fds, n + 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        uint64_t count;
        if (fds[1].revents) {
            if (read(ex->watcher_refresh_fd, &count, sizeof count) < 0 && errno != EAGAIN)
                break;
            bool other = false;
            for (size_t i = 0; i < n && !other; i++)
                other = fds[i + 2].revents != 0;
            if (!other)
                continue;
        }
        atomic_store(&ex->kick_pending, 1);
        if (atomic_load(&ex->in_run)) {
            rt_actor_t *actor = ex->blocking;
            if (actor && actor->ops->kick)
                actor->ops->kick(actor);
            pthread_kill(ex->thread, rt_kick_signal());
        }
        /* Wait until the executor has drained what woke us. */
        struct pollfd rearm[2] = {
            {.fd = ex->watcher_stop_fd, .events = POLLIN},
            {.fd = ex->watcher_rearm_fd, .events = POLLIN},
        };
        if (poll(rearm, 2, -1) < 0 && errno != EINTR)
            break;
        if (rearm[0].revents)
            break;
        if (rearm[1].revents && read(ex->watcher_rearm_fd, &count, sizeof count) < 0)
            break;
    }
    free(fds);
    return NULL;
}

static int s_start_watcher(rt_executor_t *ex)
{
    ex->watcher_stop_fd = eventfd(0, EFD_CLOEXEC);
    ex->watcher_rearm_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ex->watcher_refresh_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ex->watcher_stop_fd < 0 || ex->watcher_rearm_fd < 0 || ex->watcher_refresh_fd < 0)
        return -errno;
    ex->watcher_running = true;
    ex->items_dirty = true;
    if (rt_executor_rebuild_inputs(ex)) {
        ex->watcher_running = false;
        return -ENOMEM;
    }
    int rc = pthread_create(&ex->watcher, NULL, s_watcher_main, ex);
    if (rc) {
        ex->watcher_running = false;
        return -rc;
    }
    return 0;
}

static void s_stop_watcher(rt_executor_t *ex)
{
    if (ex->watcher_running) {
        uint64_t one = 1;
        if (write(ex->watcher_stop_fd, &one, sizeof one) < 0)
            rt_log(ex->rt, NULL, RT_LOG_ERROR, "watcher stop: %m");
        pthread_join(ex->watcher, NULL);
        ex->watcher_running = false;
    }
    if (ex->watcher_stop_fd >= 0)
        close(ex->watcher_stop_fd);
    if (ex->watcher_rearm_fd >= 0)
        close(ex->watcher_rearm_fd);
    if (ex->watcher_refresh_fd >= 0)
        close(ex->watcher_refresh_fd);
    ex->watcher_stop_fd = ex->watcher_rearm_fd = ex->watcher_refresh_fd = -1;
}

/* One turn of a blocking actor: handle input, then run its blocking work
 * unless input arrived meanwhile (see s_watcher_main). */
static void s_blocking_turn(rt_executor_t *ex)
{
    rt_actor_t *actor = ex->blocking;
    atomic_store(&ex->kick_pending, 0);
    rt_executor_poll_inputs(ex, actor->run_again ? 0 : -1);
    if (ex->stop || ex->blocking != actor)
        return;
    /* The watcher must see a descriptor or timer added in this round (an
     * actor started here) before run blocks. */
    if (ex->items_dirty && rt_executor_rebuild_inputs(ex))
        return;
    s_rearm_watcher(ex);
    if (!actor->run_again)
        return;
    rt_executor_flush(ex);
    atomic_store(&ex->in_run, 1);
    /* A drain cut short, or a send that took ZMQ_FD's signal: the watcher
     * would not kick for what already waits, so take it first. */
    if (!atomic_load(&ex->kick_pending) && !rt_executor_input_waits(ex)) {
        actor->depth++;
        actor->run_again = actor->ops->run(actor) == RT_RUN_AGAIN;
        actor->depth--;
    }
    atomic_store(&ex->in_run, 0);
}

static void *s_executor_main(void *arg)
{
    rt_executor_t *ex = arg;
    /* Named for top -H, perf and gdb: the executor's name, as the kernel
     * keeps it (15 bytes). (ex->thread is its creator's to write.) */
    char name[16];
    snprintf(name, sizeof name, "%s", ex->name);
    pthread_setname_np(pthread_self(), name);
    s_reply_int(ex->pipe_inner, 0); /* ready */
    while (!ex->stop) {
        if (ex->blocking && !ex->watcher_running && s_start_watcher(ex))
            rt_log(ex->rt, ex->blocking, RT_LOG_ERROR, "cannot start the kick watcher");
        if (ex->blocking)
            s_blocking_turn(ex);
        else
            rt_executor_poll_inputs(ex, -1);
    }
    s_stop_watcher(ex);
    /* What reached the mailboxes before the terminate is handled, not lost
     * (a device's last posted writes when its VM powers off). */
    rt_executor_drain_inputs(ex);
    rt_executor_flush(ex);
    while (ex->n_actors)
        s_terminate_actor(ex, ex->actors[ex->n_actors - 1]);
    s_reply_int(ex->pipe_inner, 0); /* terminated */
    return NULL;
}

static int s_pipe_pair(rt_executor_t *ex)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://rt-pipe-%p", (void *)ex);
    ex->pipe = rt_socket(ex->rt, ZMQ_PAIR);
    ex->pipe_inner = rt_socket(ex->rt, ZMQ_PAIR);
    if (!ex->pipe || !ex->pipe_inner || zmq_bind(ex->pipe_inner, endpoint) ||
        zmq_connect(ex->pipe, endpoint))
        return -errno;
    int forever = -1, one_ms = 1;
    zmq_setsockopt(ex->pipe, ZMQ_SNDTIMEO, &forever, sizeof forever);
    zmq_setsockopt(ex->pipe_inner, ZMQ_SNDTIMEO, &forever, sizeof forever);
    zmq_setsockopt(ex->pipe, ZMQ_RCVTIMEO, &one_ms, sizeof one_ms);
    return 0;
}

static int s_pipe_wait(rt_executor_t *ex)
{
    int value;
    for (;;) {
        if (zmq_recv(ex->pipe, &value, sizeof value, 0) == sizeof value) {
            rt_tsan_received();
            return value;
        }
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
        /* A kick can land just before the executor blocks in its
         * mailbox and be lost: repeat it until the command is taken. */
        if (atomic_load(&ex->parked))
            pthread_kill(ex->thread, rt_kick_signal());
    }
}

/* Sends a command to the executor thread and waits for its answer. */
static int s_command(rt_executor_t *ex, s_cmd_op_t op, const rt_actor_spec_t *spec)
{
    s_cmd_t cmd = {.op = op, .spec = spec};
    pthread_mutex_lock(&ex->pipe_lock);
    int rc = -EIO;
    rt_tsan_sent();
    if (zmq_send(ex->pipe, &cmd, sizeof cmd, 0) == sizeof cmd) {
        atomic_store(&ex->pipe_pending, 1);
        if (atomic_load(&ex->parked))
            pthread_kill(ex->thread, rt_kick_signal());
        rc = s_pipe_wait(ex);
    }
    pthread_mutex_unlock(&ex->pipe_lock);
    return rc;
}

static int s_track(rt_t *rt, rt_executor_t *ex)
{
    pthread_mutex_lock(&rt->lock);
    rt_executor_t **list = realloc(rt->executors, (rt->n_executors + 1) * sizeof *list);
    if (list) {
        rt->executors = list;
        list[rt->n_executors++] = ex;
    }
    pthread_mutex_unlock(&rt->lock);
    return list ? 0 : -ENOMEM;
}

static void s_untrack(rt_t *rt, rt_executor_t *ex)
{
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->n_executors; i++)
        if (rt->executors[i] == ex) {
            /* Keep creation order: rt_destroy() relies on it. */
            memmove(&rt->executors[i], &rt->executors[i + 1],
                    (--rt->n_executors - i) * sizeof *rt->executors);
            rt_retire_stats_locked(rt, ex);
            break;
        }
    pthread_mutex_unlock(&rt->lock);
}

rt_executor_t *rt_executor_new(rt_t *rt, const char *name)
{
    rt_executor_t *ex = s_core_new(rt, name);
    if (!ex)
        return NULL;
    if (s_pipe_pair(ex) || s_track(rt, ex))
        goto fail;
    /* Written before the thread starts: it kicks itself by it. */
    if (pthread_create(&ex->thread, NULL, s_executor_main, ex)) {
        s_untrack(rt, ex);
        goto fail;
    }
    s_pipe_wait(ex);
    return ex;

fail:
    if (ex->pipe)
        zmq_close(ex->pipe);
    if (ex->pipe_inner)
        zmq_close(ex->pipe_inner);
    rt_executor_free_core(ex);
    return NULL;
}

rt_executor_t *rt_executor_new_manual(rt_t *rt, const char *name)
{
    rt_executor_t *ex = s_core_new(rt, name);
    if (ex) {
        ex->manual = true;
        ex->thread = pthread_self();
    }
    return ex;
}

rt_executor_t *rt_executor_new_replay(rt_t *rt, const char *name, rt_replay_t *replay)
{
    rt_executor_t *ex = rt_executor_new_manual(rt, name);
    if (ex)
        ex->replay = replay;
    return ex;
}

void rt_executor_destroy(rt_executor_t **exp)
{
    if (!exp || !*exp)
        return;
    rt_executor_t *ex = *exp;
    /* A blocking actor inside run is kicked out by its watcher, which sees
     * the command arrive like any other input. */
    s_command(ex, S_CMD_TERM, NULL);
    pthread_join(ex->thread, NULL);
    s_untrack(ex->rt, ex);
    zmq_close(ex->pipe);
    zmq_close(ex->pipe_inner);
    rt_executor_free_core(ex);
    *exp = NULL;
}

int rt_actor_start(rt_executor_t *ex, const rt_actor_spec_t *spec)
{
    if (!ex || ex->manual)
        return -EINVAL;
    /* From one of the executor's own handlers: the thread that would take
     * the command is this one. */
    if (pthread_equal(pthread_self(), ex->thread))
        return rt_executor_add_actor(ex, spec);
    return s_command(ex, S_CMD_ADD, spec);
}
