/*
 * The executor's loop: what it waits on (mailboxes, sockets to other
 * actors, raw descriptors, the control pipe), how it drains them, the local
 * queue between actors of one executor, and pending requests' deadlines.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

/* How many messages one mailbox may hand over before the others get a turn. */
#define S_BATCH 256

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

void rt_executor_set_aside(rt_executor_t *ex, const uint8_t *bytes, size_t len)
{
    rt_qitem_t *item = malloc(sizeof *item + len);
    if (!item)
        return;
    item->to = NULL;
    item->len = len;
    memcpy(item->bytes, bytes, len);
    rt_executor_enqueue(ex, item);
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
                            uint64_t serial, int timeout_ms)
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
        .serial = serial,
    };
    return 0;
}

int rt_executor_pending_watch(rt_executor_t *ex)
{
    uint64_t removals = atomic_load(&ex->rt->removals);
    bool look = removals != ex->pending_removals_seen;
    ex->pending_removals_seen = removals;
    int next = -1;
    for (size_t i = 0; i < ex->n_pending; i++) {
        rt_pending_t *p = &ex->pending[i];
        if (!p->serial || p->gone)
            continue;
        if (look && rt_serial_gone(ex->rt, p->serial)) {
            p->gone = true;
            p->deadline_us = 0;
        } else {
            next = RT_GONE_SLICE_MS;
        }
    }
    return next;
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
    rt_executor_pending_watch(ex);
    int64_t now = rt_now_us();
    for (size_t i = 0; i < ex->n_pending;) {
        if (ex->pending[i].deadline_us > now) {
            i++;
            continue;
        }
        rt_pending_t p = ex->pending[i];
        ex->pending[i] = ex->pending[--ex->n_pending];
        rt_actor_expire(ex, p.actor, &p);
        i = 0; /* the callback may have changed the table */
    }
}

/* Milliseconds until the next pending deadline, or -1 for none. */
static int s_next_timeout(rt_executor_t *ex)
{
    int watch = rt_executor_pending_watch(ex);
    int64_t first = rt_link_next_us(ex); /* acknowledgements, resends */
    for (size_t i = 0; i < ex->n_pending; i++)
        if (ex->pending[i].deadline_us < first)
            first = ex->pending[i].deadline_us;
    if (first == INT64_MAX)
        return watch;
    int64_t ms = (first - rt_now_us() + 999) / 1000;
    if (ms < 0)
        ms = 0;
    return watch >= 0 && watch < ms ? watch : (int)ms;
}

/* ---- Raw descriptors ---------------------------------------------------- */

void rt_executor_new_input(rt_executor_t *ex, int fd)
{
    ex->items_dirty = true;
    if (!ex->watcher_running)
        return;
    /* The blocking actor may be in its run, which the rebuild waits for
     * (a handler drained by rt_flush() there armed a first timer): the
     * watcher polls the descriptor from now on, so that it kicks run. */
    pthread_mutex_lock(&ex->watch_lock);
    int *grown = realloc(ex->watch_fds, (ex->n_watch_fds + 1) * sizeof *grown);
    if (grown) {
        grown[ex->n_watch_fds++] = fd;
        ex->watch_fds = grown;
    }
    pthread_mutex_unlock(&ex->watch_lock);
    uint64_t one = 1;
    if (!grown || write(ex->watcher_refresh_fd, &one, sizeof one) < 0)
        rt_log(ex->rt, NULL, RT_LOG_ERROR, "watcher refresh: %m");
}

int rt_actor_watch_fd(rt_actor_t *self, int fd, rt_fd_fn fn)
{
    rt_executor_t *ex = self->ex;
    if (fd < 0 || !fn)
        return -EINVAL;
    if (ex->replay) {
        rt_log(self->rt, self, RT_LOG_WARN, "a replay cannot drive a descriptor of its own");
        return -ENOTSUP;
    }
    for (size_t i = 0; i < ex->n_watches; i++)
        if (ex->watches[i].fd == fd)
            return -EEXIST;
    rt_watch_t *w = realloc(ex->watches, (ex->n_watches + 1) * sizeof *w);
    if (!w)
        return -ENOMEM;
    ex->watches = w;
    ex->watches[ex->n_watches++] = (rt_watch_t){.fd = fd, .actor = self, .fn = fn};
    rt_executor_new_input(ex, fd);
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
int rt_executor_rebuild_inputs(rt_executor_t *ex)
{
    size_t n = (ex->pipe_inner ? 1 : 0) + ex->n_actors + ex->n_dealers + ex->n_watches +
               (ex->timer_fd >= 0 ? 1 : 0);
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
    if (ex->timer_fd >= 0)
        inputs[k++] = (rt_input_t){.kind = RT_IN_TIMERS, .fd = ex->timer_fd};
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
        uint64_t one = 1;
        if (write(ex->watcher_refresh_fd, &one, sizeof one) < 0)
            rt_log(ex->rt, NULL, RT_LOG_ERROR, "watcher refresh: %m");
    }
    return 0;
}

void rt_executor_mark_sent(rt_executor_t *ex, void *socket)
{
    for (size_t i = 0; i < ex->n_inputs; i++)
        if (ex->inputs[i].socket == socket)
            ex->inputs[i].drain = true;
}

void rt_executor_mark_mailboxes(rt_executor_t *ex)
{
    for (size_t i = 0; i < ex->n_inputs; i++)
        if (ex->inputs[i].kind == RT_IN_MAILBOX)
            ex->inputs[i].drain = true;
}

bool rt_executor_input_waits(rt_executor_t *ex)
{
    if (ex->q_head)
        return true;
    for (size_t i = 0; i < ex->n_inputs; i++) {
        rt_input_t *in = &ex->inputs[i];
        if (!in->drain || !in->socket)
            continue;
        int events = 0;
        size_t len = sizeof events;
        if (zmq_getsockopt(in->socket, ZMQ_EVENTS, &events, &len) || (events & ZMQ_POLLIN))
            return true;
        /* Found empty, its pipes wait for their next message to signal
         * ZMQ_FD again: nothing is hidden any more. */
        in->drain = false;
    }
    return false;
}

/* Each returns true when the socket was read until EAGAIN. */
static bool s_drain_mailbox(rt_actor_t *actor)
{
    for (int i = 0; i < S_BATCH && !actor->terminated; i++) {
        rt_msg_t msg;
        rt_ctx_t ctx;
        rt_ctx_init(&ctx, RT_CTX_MAILBOX);
        int rc = rt_actor_receive_mailbox(actor, &msg, &ctx, ZMQ_DONTWAIT);
        if (rc < 0)
            return rc != -EINTR;
        if (rc == 1) {
            rt_actor_dispatch(ctx.to ? ctx.to : actor, msg.env, &ctx);
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
        rt_tsan_received();
        rt_actor_receive_reply(ex, zmq_msg_data(&frame), zmq_msg_size(&frame));
        zmq_msg_close(&frame);
    }
    return false;
}

/* Waits for input up to timeout_ms (polling first for spin_us), and marks
 * what became ready. */
static void s_wait_inputs(rt_executor_t *ex, int timeout_ms)
{
    int rc = 0;
    int spin_us = timeout_ms != 0 ? rt_spin_begin(ex->rt, &ex->spin) : 0;
    if (spin_us) {
        rc = rt_spin_poll(ex->pfds, ex->n_inputs, spin_us);
        rt_spin_end(&ex->spin);
    }
    if (rc == 0)
        rc = poll(ex->pfds, ex->n_inputs, timeout_ms);
    if (rc <= 0)
        return;
    for (size_t i = 0; i < ex->n_inputs; i++) {
        ex->inputs[i].ready = ex->pfds[i].revents != 0;
        if (ex->inputs[i].ready && ex->inputs[i].socket)
            ex->inputs[i].drain = true;
    }
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
        ex->n_watches || ex->n_timers || ex->n_pending || ex->q_head || ex->items_dirty ||
        ex->stop || atomic_load(&ex->pipe_pending) || rt_link_next_us(ex) != INT64_MAX)
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
        rt_ctx_t ctx;
        rt_ctx_init(&ctx, RT_CTX_MAILBOX);
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
            rt_actor_dispatch(ctx.to ? ctx.to : actor, msg.env, &ctx);
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
    if (ex->items_dirty && rt_executor_rebuild_inputs(ex))
        return -ENOMEM;
    if (s_may_park(ex, timeout_ms)) {
        s_park(ex);
        s_drain_local(ex, NULL);
        rt_executor_reap(ex);
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
                in->drain = !rt_executor_drain_pipe(ex);
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
        case RT_IN_TIMERS:
            if (in->ready)
                rt_executor_fire_timers(ex);
            break;
        }
    }
    s_drain_local(ex, NULL);
    s_expire_pending(ex);
    rt_executor_reap(ex);
    return 0;
}


/* At most this many rounds when draining at terminate: a peer that never
 * stops sending must not keep the executor from ending. */
#define S_FINAL_ROUNDS 256

void rt_executor_drain_inputs(rt_executor_t *ex)
{
    for (int round = 0; round < S_FINAL_ROUNDS; round++) {
        rt_executor_poll_inputs(ex, 0);
        bool more = ex->q_head != NULL;
        for (size_t i = 0; i < ex->n_inputs && !more; i++)
            more = ex->inputs[i].drain && ex->inputs[i].kind == RT_IN_MAILBOX;
        if (!more)
            return;
    }
}
