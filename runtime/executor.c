/*
 * Executors: a thread that hosts actors and polls their mailboxes, its own
 * sockets to other actors (for replies), raw descriptors and a control pipe
 * in one loop. Start and terminate follow CZMQ's zactor: the creator waits
 * on a pipe until the thread says it is ready, and terminate is a message on
 * the same pipe, acknowledged before the thread is joined.
 *
 * An executor whose actor blocks (ops->run) also has a watcher thread that
 * polls the same inputs and kicks the actor out of its block when one
 * becomes readable.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

/* How many messages one mailbox may hand over before the others get a turn. */
#define S_BATCH 256

typedef enum { S_CMD_ADD, S_CMD_TERM } s_cmd_op_t;

typedef struct {
    s_cmd_op_t op;
    const rt_actor_spec_t *spec;
} s_cmd_t;

static void *s_socket(rt_t *rt, int type)
{
    void *s = zmq_socket(rt->zctx, type);
    if (!s)
        return NULL;
    int zero = 0, hwm = 100000, timeout = rt->cfg.send_timeout_ms;
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

static void s_close_route(void *arg, const char *key, void *value)
{
    rt_executor_t *ex = arg;
    (void)key;
    rt_route_t *route = value;
    if (route->batch_listed) {
        rt_route_flush(ex, route);
        for (size_t i = 0; i < ex->n_batched; i++)
            if (ex->batched[i] == route) {
                ex->batched[i] = ex->batched[--ex->n_batched];
                break;
            }
    }
    if (route->dealer)
        zmq_close(route->dealer);
    free(route->batch);
    free(route);
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
    rt_map_each(ex->routes, s_close_route, ex);
    rt_map_destroy(&ex->routes);
    free(ex->batched);
    free(ex->dealers);
    free(ex->actors);
    free(ex->pending);
    free(ex->watches);
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
    if (ex->blocking || (spec->ops->run && ex->n_actors))
        return -EBUSY; /* a blocking actor needs its executor to itself */

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
    actor->mailbox = s_socket(rt, ZMQ_ROUTER);
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
    rc = rt_register_actor(rt, actor);
    if (rc)
        goto fail;
    const char *failed = NULL;
    if (zmq_bind(actor->mailbox, actor->endpoint))
        failed = actor->endpoint;
    else
        actor->bound = true;
    if (!failed && spec->endpoint) {
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
    rt_actor_t **actors = realloc(ex->actors, (ex->n_actors + 1) * sizeof *actors);
    if (!actors) {
        rc = -ENOMEM;
        goto fail_registered;
    }
    ex->actors = actors;
    if (spec->ops->init) {
        actor->depth++; /* init may call out; nothing may call into it yet */
        rc = spec->ops->init(actor, spec->arg);
        actor->depth--;
        if (rc)
            goto fail_registered;
    }
    ex->actors[ex->n_actors++] = actor;
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
    rt_unregister_actor(ex->rt, actor);
    rt_route_t *route = rt_map_remove(ex->routes, actor->name);
    if (route)
        s_close_route(ex, NULL, route);
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
    if (!actor->terminated && actor->ops->fini)
        actor->ops->fini(actor);
    rt_executor_remove_actor(ex, actor);
}

static void s_reap(rt_executor_t *ex)
{
    for (size_t i = 0; i < ex->n_actors;)
        if (ex->actors[i]->terminated && !ex->actors[i]->depth)
            rt_executor_remove_actor(ex, ex->actors[i]);
        else
            i++;
}

/* ---- Routes ------------------------------------------------------------ */

/* Drops cached routes whose in-process actor has gone, or whose directory
 * entry may have changed, after any actor left the runtime. */
static void s_revalidate(void *arg, const char *key, void *value)
{
    rt_executor_t *ex = arg;
    rt_route_t *route = value;
    rt_actor_t *now = rt_map_get(ex->rt->actors, key);
    bool stale = route->local ? now != route->local
                              : (route->serial ? !now || now->serial != route->serial
                                               : true);
    if (stale)
        route->serial = UINT64_MAX; /* marked; removed below */
}

typedef struct {
    char **keys;
    size_t n;
} s_keys_t;

static void s_collect_marked(void *arg, const char *key, void *value)
{
    s_keys_t *keys = arg;
    if (((rt_route_t *)value)->serial == UINT64_MAX) {
        char **grown = realloc(keys->keys, (keys->n + 1) * sizeof *grown);
        if (!grown)
            return;
        keys->keys = grown;
        keys->keys[keys->n++] = strdup(key);
    }
}

static void s_refresh_routes(rt_executor_t *ex)
{
    uint64_t removals = atomic_load(&ex->rt->removals);
    if (removals == ex->removals_seen)
        return;
    ex->removals_seen = removals;
    pthread_mutex_lock(&ex->rt->lock);
    rt_map_each(ex->routes, s_revalidate, ex);
    pthread_mutex_unlock(&ex->rt->lock);
    s_keys_t keys = {0};
    rt_map_each(ex->routes, s_collect_marked, &keys);
    for (size_t i = 0; i < keys.n; i++) {
        if (!keys.keys[i])
            continue;
        rt_route_t *route = rt_map_remove(ex->routes, keys.keys[i]);
        if (route && route->dealer) {
            for (size_t j = 0; j < ex->n_dealers; j++)
                if (ex->dealers[j] == route->dealer) {
                    ex->dealers[j] = ex->dealers[--ex->n_dealers];
                    break;
                }
            ex->items_dirty = true;
        }
        s_close_route(ex, NULL, route);
        free(keys.keys[i]);
    }
    free(keys.keys);
}

int rt_executor_route(rt_executor_t *ex, const char *to, rt_route_t **out)
{
    rt_t *rt = ex->rt;
    s_refresh_routes(ex);
    rt_route_t *route = rt_map_get(ex->routes, to);
    if (route) {
        *out = route;
        return 0;
    }

    char *endpoint = NULL;
    route = calloc(1, sizeof *route);
    if (!route)
        return -ENOMEM;
    pthread_mutex_lock(&rt->lock);
    rt_actor_t *target = rt_map_get(rt->actors, to);
    if (target && target->ex == ex)
        route->local = target;
    else if (target) {
        endpoint = strdup(target->endpoint);
        route->serial = target->serial;
    } else if (rt_map_get(rt->directory, to))
        endpoint = strdup(rt_map_get(rt->directory, to));
    pthread_mutex_unlock(&rt->lock);

    int rc = -ENOENT;
    if (!route->local) {
        if (!endpoint)
            goto fail;
        rc = -ENOMEM;
        void **dealers = realloc(ex->dealers, (ex->n_dealers + 1) * sizeof *dealers);
        if (!dealers)
            goto fail;
        ex->dealers = dealers;
        route->dealer = s_socket(rt, ZMQ_DEALER);
        route->rcvtimeo_ms = -1; /* ZeroMQ's default */
        if (!route->dealer || zmq_connect(route->dealer, endpoint)) {
            rc = -errno;
            rt_log(rt, NULL, RT_LOG_WARN, "cannot connect to %s at %s: %s", to, endpoint,
                   zmq_strerror(errno));
            goto fail;
        }
        ex->dealers[ex->n_dealers++] = route->dealer;
        ex->items_dirty = true;
    }
    rc = rt_map_put(ex->routes, to, route);
    if (rc)
        goto fail;
    free(endpoint);
    *out = route;
    return 0;

fail:
    if (route->dealer) {
        if (ex->n_dealers && ex->dealers[ex->n_dealers - 1] == route->dealer)
            ex->n_dealers--;
        zmq_close(route->dealer);
    }
    free(route);
    free(endpoint);
    return rc;
}

/* Sends one frame, retrying when a kick signal interrupts the call. */
int rt_executor_send_raw(rt_executor_t *ex, void *socket, zmq_msg_t *frame, int flags)
{
    (void)ex;
    for (;;) {
        if (zmq_msg_send(frame, socket, flags) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* ---- The local queue and pending requests ------------------------------- */

void rt_executor_enqueue(rt_executor_t *ex, rt_qitem_t *item)
{
    item->next = NULL;
    if (ex->q_tail)
        ex->q_tail->next = item;
    else
        ex->q_head = item;
    ex->q_tail = item;
}

/* Delivers the queued items for `only` (or for every actor not on the stack
 * when only is NULL), in order. */
static void s_drain_local(rt_executor_t *ex, rt_actor_t *only)
{
    rt_qitem_t **link = &ex->q_head, *prev = NULL;
    while (*link) {
        rt_qitem_t *item = *link;
        bool deliver = only ? item->to == only : (!item->to || !item->to->depth);
        if (!deliver) {
            prev = item;
            link = &item->next;
            continue;
        }
        *link = item->next;
        if (ex->q_tail == item)
            ex->q_tail = prev;
        rt_actor_receive_local(ex, item);
        free(item);
        /* The handler may have queued or removed items: start over from
         * the head, which keeps the order per receiver. */
        link = &ex->q_head;
        prev = NULL;
    }
}

void rt_executor_drain_local_for(rt_executor_t *ex, rt_actor_t *actor)
{
    s_drain_local(ex, actor);
}

int rt_executor_pending_add(rt_executor_t *ex, rt_actor_t *actor, uint64_t id,
                            int timeout_ms)
{
    if (ex->n_pending == ex->cap_pending) {
        size_t cap = ex->cap_pending ? ex->cap_pending * 2 : 16;
        rt_pending_t *p = realloc(ex->pending, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        ex->pending = p;
        ex->cap_pending = cap;
    }
    ex->pending[ex->n_pending++] = (rt_pending_t){
        .id = id,
        .actor = actor,
        .deadline_us = rt_now_us() + (int64_t)timeout_ms * 1000,
    };
    return 0;
}

rt_actor_t *rt_executor_pending_take(rt_executor_t *ex, uint64_t id)
{
    for (size_t i = 0; i < ex->n_pending; i++)
        if (ex->pending[i].id == id) {
            rt_actor_t *actor = ex->pending[i].actor;
            ex->pending[i] = ex->pending[--ex->n_pending];
            return actor;
        }
    return NULL;
}

static void s_expire_pending(rt_executor_t *ex)
{
    int64_t now = rt_now_us();
    for (size_t i = 0; i < ex->n_pending;) {
        if (ex->pending[i].deadline_us > now) {
            i++;
            continue;
        }
        rt_pending_t p = ex->pending[i];
        ex->pending[i] = ex->pending[--ex->n_pending];
        rt_actor_expire(ex, p.actor, p.id);
        i = 0; /* the callback may have changed the table */
    }
}

/* Milliseconds until the next pending deadline, or -1 for none. */
static int s_next_timeout(rt_executor_t *ex)
{
    if (!ex->n_pending)
        return -1;
    int64_t first = ex->pending[0].deadline_us;
    for (size_t i = 1; i < ex->n_pending; i++)
        if (ex->pending[i].deadline_us < first)
            first = ex->pending[i].deadline_us;
    int64_t ms = (first - rt_now_us() + 999) / 1000;
    return ms < 0 ? 0 : (int)ms;
}

/* ---- Raw descriptors ---------------------------------------------------- */

int rt_actor_watch_fd(rt_actor_t *self, int fd, rt_fd_fn fn)
{
    rt_executor_t *ex = self->ex;
    if (fd < 0 || !fn)
        return -EINVAL;
    for (size_t i = 0; i < ex->n_watches; i++)
        if (ex->watches[i].fd == fd)
            return -EEXIST;
    rt_watch_t *w = realloc(ex->watches, (ex->n_watches + 1) * sizeof *w);
    if (!w)
        return -ENOMEM;
    ex->watches = w;
    ex->watches[ex->n_watches++] = (rt_watch_t){.fd = fd, .actor = self, .fn = fn};
    ex->items_dirty = true;
    return 0;
}

int rt_actor_unwatch_fd(rt_actor_t *self, int fd)
{
    rt_executor_t *ex = self->ex;
    for (size_t i = 0; i < ex->n_watches; i++)
        if (ex->watches[i].fd == fd && ex->watches[i].actor == self) {
            ex->watches[i] = ex->watches[--ex->n_watches];
            ex->items_dirty = true;
            return 0;
        }
    return -ENOENT;
}

/* ---- The loop ------------------------------------------------------------ */

/*
 * The loop polls the descriptors behind its sockets (ZMQ_FD) itself, one
 * poll() for all inputs, instead of zmq_poll(), which costs several system
 * calls per socket. ZMQ_FD only says that something may have changed, and a
 * send on a socket may consume that signal: so a socket is drained (read
 * until EAGAIN) whenever its descriptor was readable, when a drain stopped
 * early, and after anything was sent on it (rt_executor_mark_sent()).
 */
static int s_rebuild_inputs(rt_executor_t *ex)
{
    size_t n = (ex->pipe_inner ? 1 : 0) + ex->n_actors + ex->n_dealers + ex->n_watches;
    rt_input_t *inputs = realloc(ex->inputs, (n ? n : 1) * sizeof *inputs);
    if (!inputs)
        return -ENOMEM;
    ex->inputs = inputs;
    struct pollfd *pfds = realloc(ex->pfds, (n ? n : 1) * sizeof *pfds);
    if (!pfds)
        return -ENOMEM;
    ex->pfds = pfds;
    size_t k = 0;
    if (ex->pipe_inner)
        inputs[k++] = (rt_input_t){.kind = RT_IN_PIPE, .socket = ex->pipe_inner};
    for (size_t i = 0; i < ex->n_actors; i++)
        inputs[k++] = (rt_input_t){.kind = RT_IN_MAILBOX, .socket = ex->actors[i]->mailbox,
                                   .actor = ex->actors[i]};
    for (size_t i = 0; i < ex->n_dealers; i++)
        inputs[k++] = (rt_input_t){.kind = RT_IN_DEALER, .socket = ex->dealers[i]};
    for (size_t i = 0; i < ex->n_watches; i++)
        inputs[k++] = (rt_input_t){.kind = RT_IN_FD, .fd = ex->watches[i].fd,
                                   .actor = ex->watches[i].actor, .fn = ex->watches[i].fn};
    for (size_t i = 0; i < n; i++) {
        if (inputs[i].socket) {
            size_t len = sizeof inputs[i].fd;
            zmq_getsockopt(inputs[i].socket, ZMQ_FD, &inputs[i].fd, &len);
            inputs[i].drain = true; /* what arrived before is not signalled again */
        }
        pfds[i] = (struct pollfd){.fd = inputs[i].fd, .events = POLLIN};
    }
    ex->n_inputs = n;
    ex->items_dirty = false;

    if (ex->watcher_running) {
        /* The watcher polls the same descriptors. */
        int *fds = malloc((n ? n : 1) * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            fds[i] = inputs[i].fd;
        pthread_mutex_lock(&ex->watch_lock);
        free(ex->watch_fds);
        ex->watch_fds = fds;
        ex->n_watch_fds = n;
        pthread_mutex_unlock(&ex->watch_lock);
    }
    return 0;
}

void rt_executor_mark_sent(rt_executor_t *ex, void *socket)
{
    for (size_t i = 0; i < ex->n_inputs; i++)
        if (ex->inputs[i].socket == socket)
            ex->inputs[i].drain = true;
}

/* Each returns true when the socket was read until EAGAIN. */
static bool s_drain_mailbox(rt_actor_t *actor)
{
    for (int i = 0; i < S_BATCH && !actor->terminated; i++) {
        rt_msg_t msg;
        rt_ctx_t ctx = {.kind = RT_CTX_MAILBOX};
        int rc = rt_actor_receive_mailbox(actor, &msg, &ctx, ZMQ_DONTWAIT);
        if (rc < 0)
            return rc != -EINTR;
        if (rc == 1) {
            rt_actor_dispatch(actor, msg.env, &ctx);
            rt_msg_release(&msg);
        }
    }
    return actor->terminated;
}

static bool s_drain_dealer(rt_executor_t *ex, void *dealer)
{
    for (int i = 0; i < S_BATCH; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return errno != EINTR;
        }
        rt_actor_receive_reply(ex, zmq_msg_data(&frame), zmq_msg_size(&frame));
        zmq_msg_close(&frame);
    }
    return false;
}

static bool s_drain_pipe(rt_executor_t *ex);

/* Waits for input up to timeout_ms (polling first for spin_us), and marks
 * what became ready. Returns true if anything did. */
static bool s_wait_inputs(rt_executor_t *ex, int timeout_ms)
{
    int rc = 0;
    int spin_us = timeout_ms != 0 ? rt_spin_begin(ex->rt, &ex->spin) : 0;
    if (spin_us) {
        int64_t spin_until = rt_now_us() + spin_us;
        while ((rc = poll(ex->pfds, ex->n_inputs, 0)) == 0 && rt_now_us() < spin_until)
            sched_yield(); /* do not starve the thread that will send */
        rt_spin_end(&ex->spin);
    }
    if (rc == 0)
        rc = poll(ex->pfds, ex->n_inputs, timeout_ms);
    if (rc <= 0)
        return false;
    for (size_t i = 0; i < ex->n_inputs; i++) {
        ex->inputs[i].ready = ex->pfds[i].revents != 0;
        if (ex->inputs[i].ready && ex->inputs[i].socket)
            ex->inputs[i].drain = true;
    }
    return true;
}

/*
 * An executor whose only input is one actor's mailbox serves it as a plain
 * ZeroMQ server would, blocking in the receive itself: one system call per
 * wake-up, where poll() and then a receive take three. It leaves when
 * anything else needs the loop; a command on the pipe gets there by
 * kicking the thread out of the receive (s_command()).
 */
static bool s_may_park(rt_executor_t *ex, int timeout_ms)
{
    if (timeout_ms >= 0 || ex->manual || ex->blocking || ex->n_actors != 1 ||
        ex->n_watches || ex->n_pending || ex->q_head || ex->items_dirty || ex->stop ||
        atomic_load(&ex->pipe_pending))
        return false;
    for (size_t i = 0; i < ex->n_inputs; i++)
        if (ex->inputs[i].drain && ex->inputs[i].kind != RT_IN_MAILBOX)
            return false;
    return true;
}

static void s_park(rt_executor_t *ex)
{
    rt_actor_t *actor = ex->actors[0];
    while (s_may_park(ex, -1) && !actor->terminated) {
        rt_msg_t msg;
        rt_ctx_t ctx = {.kind = RT_CTX_MAILBOX};
        /* Without a spin ahead, go straight to the blocking receive, which
         * takes what is already there as cheaply as a non-blocking one. */
        int rc = -EAGAIN;
        if (actor->in_batch || rt_spin_enabled(ex->rt, &ex->spin))
            rc = rt_actor_receive_mailbox(actor, &msg, &ctx, ZMQ_DONTWAIT);
        int spin_us = rc == -EAGAIN ? rt_spin_begin(ex->rt, &ex->spin) : 0;
        if (spin_us) {
            /* Spin on the descriptor, not on receives: an empty receive
             * touches the pipe the sender is writing to. */
            int fd;
            size_t len = sizeof fd;
            zmq_getsockopt(actor->mailbox, ZMQ_FD, &fd, &len);
            if (rt_spin_fd(fd, spin_us))
                rc = rt_actor_receive_mailbox(actor, &msg, &ctx, ZMQ_DONTWAIT);
            rt_spin_end(&ex->spin);
        }
        if (rc == -EAGAIN) {
            rt_executor_flush(ex);
            /* Parked only while blocked, so that handlers never see the
             * kick; then look at the pipe once more, as s_command()
             * looks at parked after announcing its command. */
            atomic_store(&ex->parked, 1);
            if (!atomic_load(&ex->pipe_pending))
                rc = rt_actor_receive_mailbox(actor, &msg, &ctx, 0);
            atomic_store(&ex->parked, 0);
        }
        if (rc == 1) {
            rt_actor_dispatch(actor, msg.env, &ctx);
            rt_msg_release(&msg);
        } else if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
            break;
        }
    }
    /* Left without reading to EAGAIN: look at everything again. */
    for (size_t i = 0; i < ex->n_inputs; i++)
        if (ex->inputs[i].socket)
            ex->inputs[i].drain = true;
}

/* One round: wait for input up to timeout_ms, then handle all of it. */
int rt_executor_poll_inputs(rt_executor_t *ex, int timeout_ms)
{
    rt_executor_flush(ex); /* the turn is over: send what it coalesced */
    if (ex->items_dirty && s_rebuild_inputs(ex))
        return -ENOMEM;
    if (s_may_park(ex, timeout_ms)) {
        s_park(ex);
        s_drain_local(ex, NULL);
        s_reap(ex);
        return 0;
    }
    int next = s_next_timeout(ex);
    if (next >= 0 && (timeout_ms < 0 || next < timeout_ms))
        timeout_ms = next;
    for (size_t i = 0; i < ex->n_inputs && timeout_ms; i++)
        if (ex->inputs[i].drain)
            timeout_ms = 0;
    if (ex->q_head)
        timeout_ms = 0;
    for (size_t i = 0; i < ex->n_inputs; i++)
        ex->inputs[i].ready = false;
    s_wait_inputs(ex, timeout_ms);

    /* Handlers may add or remove actors, dealers and descriptors: then the
     * inputs are rebuilt (every socket marked for draining) and this round
     * ends early. */
    for (size_t i = 0; i < ex->n_inputs && !ex->items_dirty; i++) {
        rt_input_t *in = &ex->inputs[i];
        switch (in->kind) {
        case RT_IN_PIPE:
            if (in->drain)
                in->drain = !s_drain_pipe(ex);
            break;
        case RT_IN_MAILBOX:
            if (in->drain)
                in->drain = !s_drain_mailbox(in->actor);
            break;
        case RT_IN_DEALER:
            if (in->drain)
                in->drain = !s_drain_dealer(ex, in->socket);
            break;
        case RT_IN_FD:
            if (in->ready)
                in->fn(in->actor, in->fd);
            break;
        }
    }
    s_drain_local(ex, NULL);
    s_expire_pending(ex);
    s_reap(ex);
    return 0;
}

static void s_reply_int(void *pipe, int value)
{
    zmq_send(pipe, &value, sizeof value, 0);
}

static bool s_drain_pipe(rt_executor_t *ex)
{
    atomic_store(&ex->pipe_pending, 0); /* a command sent from now on sets it */
    for (;;) {
        s_cmd_t cmd;
        int n = zmq_recv(ex->pipe_inner, &cmd, sizeof cmd, ZMQ_DONTWAIT);
        if (n < 0)
            return errno != EINTR;
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
        struct pollfd *grown = realloc(fds, (n + 1) * sizeof *fds);
        if (grown) {
            fds = grown;
            for (size_t i = 0; i < n; i++)
                fds[i + 1] = (struct pollfd){.fd = ex->watch_fds[i], .events = POLLIN};
        }
        pthread_mutex_unlock(&ex->watch_lock);
        if (!grown)
            break;
        fds[0] = (struct pollfd){.fd = ex->watcher_stop_fd, .events = POLLIN};
        if (poll(fds, n + 1, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
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
        uint64_t count;
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
    if (ex->watcher_stop_fd < 0 || ex->watcher_rearm_fd < 0)
        return -errno;
    ex->watcher_running = true;
    ex->items_dirty = true;
    if (s_rebuild_inputs(ex)) {
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
    ex->watcher_stop_fd = ex->watcher_rearm_fd = -1;
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
    s_rearm_watcher(ex);
    if (!actor->run_again)
        return;
    rt_executor_flush(ex);
    atomic_store(&ex->in_run, 1);
    if (!atomic_load(&ex->kick_pending)) {
        actor->depth++;
        actor->run_again = actor->ops->run(actor) == RT_RUN_AGAIN;
        actor->depth--;
    }
    atomic_store(&ex->in_run, 0);
}

static void *s_executor_main(void *arg)
{
    rt_executor_t *ex = arg;
    ex->thread = pthread_self();
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
    while (ex->n_actors)
        s_terminate_actor(ex, ex->actors[ex->n_actors - 1]);
    s_reply_int(ex->pipe_inner, 0); /* terminated */
    return NULL;
}

static int s_pipe_pair(rt_executor_t *ex)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://rt-pipe-%p", (void *)ex);
    ex->pipe = s_socket(ex->rt, ZMQ_PAIR);
    ex->pipe_inner = s_socket(ex->rt, ZMQ_PAIR);
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
        if (zmq_recv(ex->pipe, &value, sizeof value, 0) == sizeof value)
            return value;
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
            rt->executors[i] = rt->executors[--rt->n_executors];
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
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_executor_main, ex)) {
        s_untrack(rt, ex);
        goto fail;
    }
    ex->thread = thread;
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
    return s_command(ex, S_CMD_ADD, spec);
}
