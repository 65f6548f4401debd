/*
 * Clients: a named mailbox for a thread that is not an executor (a program's
 * main thread, a test). Its executor has no thread of its own; the owner
 * drives it through rt_call() and rt_client_recv().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

static const rt_actor_ops_t s_client_ops = {.kind = "client"};

rt_client_t *rt_client_new(rt_t *rt, const char *name)
{
    rt_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ex = rt_executor_new_manual(rt, name);
    if (!c->ex)
        goto fail;
    rt_actor_spec_t spec = {.name = name, .ops = &s_client_ops};
    if (rt_executor_add_actor(c->ex, &spec))
        goto fail_ex;
    c->actor = c->ex->actors[0];
    c->ctx.replied = true; /* nothing received yet */

    pthread_mutex_lock(&rt->lock);
    rt_client_t **list = realloc(rt->clients, (rt->n_clients + 1) * sizeof *list);
    if (list) {
        rt->clients = list;
        list[rt->n_clients++] = c;
    }
    pthread_mutex_unlock(&rt->lock);
    if (!list)
        goto fail_actor;
    return c;

fail_actor:
    rt_executor_remove_actor(c->ex, c->actor);
fail_ex:
    rt_executor_free_core(c->ex);
fail:
    free(c);
    return NULL;
}

void rt_client_destroy(rt_client_t **cp)
{
    if (!cp || !*cp)
        return;
    rt_client_t *c = *cp;
    rt_t *rt = c->ex->rt;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->n_clients; i++)
        if (rt->clients[i] == c) {
            rt->clients[i] = rt->clients[--rt->n_clients];
            rt_retire_stats_locked(rt, c->ex);
            break;
        }
    pthread_mutex_unlock(&rt->lock);
    rt_executor_remove_actor(c->ex, c->actor);
    rt_executor_free_core(c->ex);
    free(c->owed_to);
    free(c);
    *cp = NULL;
}

rt_actor_t *rt_client_actor(rt_client_t *c)
{
    return c->actor;
}

/* Answers a request the owner left unanswered, so that its sender is not
 * left waiting. It answers from the copies s_accepted() made: the request
 * itself may be released already. */
static void s_settle_last(rt_client_t *c)
{
    if (!c->ctx.replied && c->owed_to) {
        Vmm__Envelope req = VMM__ENVELOPE__INIT;
        req.sender = c->owed_to;
        req.request_id = c->owed_id;
        c->ctx.req = &req;
        rt_reply_error(c->actor, &req, VMM__ERROR_CODE__INTERNAL,
                       "%s received the request but did not answer it", c->actor->name);
    }
    free(c->owed_to);
    c->owed_to = NULL;
    c->actor->ctx = NULL;
    c->ctx.req = NULL;
    c->ctx.replied = true;
}

/* Takes the first reply set aside during an rt_call() wait, if any. */
static int s_take_queued(rt_client_t *c, rt_msg_t *msg)
{
    rt_executor_t *ex = c->ex;
    while (ex->q_head) {
        rt_qitem_t *item = ex->q_head;
        ex->q_head = item->next;
        if (!ex->q_head)
            ex->q_tail = NULL;
        rt_actor_t *who = NULL;
        int rc = rt_actor_match_reply(ex, item->bytes, item->len, 0, msg, &who);
        if (rc == 1)
            rt_tap(ex->rt, RT_TAP_RX, c->actor, msg->env, item->bytes, item->len);
        free(item);
        if (rc == 1)
            return 0;
    }
    return -EAGAIN;
}

/* Turns the earliest expired request into a TIMEOUT reply. */
static int s_take_expired(rt_client_t *c, rt_msg_t *msg)
{
    rt_executor_t *ex = c->ex;
    rt_executor_pending_watch(ex);
    int64_t now = rt_now_us();
    for (size_t i = 0; i < ex->n_pending; i++) {
        if (ex->pending[i].deadline_us > now)
            continue;
        rt_pending_t p = ex->pending[i];
        ex->pending[i] = ex->pending[--ex->n_pending];
        Vmm__Envelope env;
        Vmm__Error err;
        rt_timeout_reply(&env, &err, c->actor->name, p.id, p.gone);
        rt_wire_size_t sizes;
        size_t len = rt_wire_measure(&env, &sizes);
        uint8_t buf[256];
        rt_wire_pack(&env, &sizes, buf);
        return rt_msg_unpack(msg, buf, len);
    }
    return -EAGAIN;
}

/* msg is the client's to handle: answers go back by its context. */
static int s_accepted(rt_client_t *c, rt_msg_t *msg)
{
    rt_count(&c->ex->stats.rx);
    c->actor->counts.rx++;
    c->ctx.req = msg->env;
    c->actor->ctx = &c->ctx;
    if (!msg->env->request_id) {
        c->ctx.replied = true; /* an event owes no answer */
        return 0;
    }
    c->owed_to = strdup(msg->env->sender);
    c->owed_id = msg->env->request_id;
    return 0;
}

typedef struct {
    zmq_pollitem_t *items;
    size_t n;
    bool all; /* requests of its own await replies */
} s_dealers_t;

/* The dealers a receive watches: those of links (acknowledgements come
 * back on them) and, while async requests await replies, every one. The
 * others carry only replies to calls, which take them themselves (late
 * ones are dropped by the next call on the route). zmq_poll() costs
 * per socket: a client that ran hundreds of VPs would pay it for each
 * event otherwise. */
static void s_dealer_to_poll(void *arg, const char *key, void *value)
{
    (void)key;
    s_dealers_t *d = arg;
    const rt_route_t *route = value;
    if (route->dealer && (d->all || route->link))
        d->items[d->n++] = (zmq_pollitem_t){.socket = route->dealer, .events = ZMQ_POLLIN};
}

int rt_client_recv(rt_client_t *c, rt_msg_t *msg, int timeout_ms)
{
    rt_executor_t *ex = c->ex;
    rt_actor_t *actor = c->actor;
    s_settle_last(c);
    int64_t deadline = rt_now_us() + (int64_t)timeout_ms * 1000;
    /* Looks at the sockets at least once, so that a timeout of 0 takes
     * what is already there. */
    for (bool looked = false;; looked = true) {
        if (!s_take_queued(c, msg) || !s_take_expired(c, msg))
            return 0;
        int64_t now = rt_now_us();
        if (timeout_ms >= 0 && now >= deadline && looked)
            return -ETIMEDOUT;
        int ms = timeout_ms < 0 ? -1 : now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
        int watch = rt_executor_pending_watch(ex);
        if (watch >= 0 && (ms < 0 || watch < ms))
            ms = watch;
        for (size_t i = 0; i < ex->n_pending; i++) {
            int left = (int)((ex->pending[i].deadline_us - now + 999) / 1000);
            if (ms < 0 || left < ms)
                ms = left < 0 ? 0 : left;
        }
        if (actor->in_batch) { /* the rest of a batch frame is already here */
            rt_ctx_init(&c->ctx, RT_CTX_MAILBOX);
            if (rt_actor_receive_mailbox(actor, msg, &c->ctx, ZMQ_DONTWAIT) == 1)
                return s_accepted(c, msg);
            c->ctx.replied = true;
            continue;
        }
        zmq_pollitem_t items[1 + ex->n_dealers];
        items[0] = (zmq_pollitem_t){.socket = actor->mailbox, .events = ZMQ_POLLIN};
        s_dealers_t dealers = {items + 1, 0, ex->n_pending > 0};
        rt_map_each(ex->routes, s_dealer_to_poll, &dealers);
        size_t n = 1 + dealers.n;
        if (zmq_poll(items, (int)n, ms) < 0 && errno != EINTR)
            return -errno;
        if (items[0].revents & ZMQ_POLLIN) {
            rt_ctx_init(&c->ctx, RT_CTX_MAILBOX);
            int rc = rt_actor_receive_mailbox(actor, msg, &c->ctx, ZMQ_DONTWAIT);
            if (rc == 1)
                return s_accepted(c, msg);
            c->ctx.replied = true;
        }
        for (size_t i = 1; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t frame;
            zmq_msg_init(&frame);
            if (zmq_msg_recv(&frame, items[i].socket, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&frame);
                continue;
            }
            rt_tsan_received();
            rt_actor_t *who = NULL;
            const uint8_t *bytes = zmq_msg_data(&frame);
            size_t len = zmq_msg_size(&frame);
            int rc = rt_actor_match_reply(ex, bytes, len, 0, msg, &who);
            if (rc == 1)
                rt_tap(ex->rt, RT_TAP_RX, actor, msg->env, bytes, len);
            zmq_msg_close(&frame);
            if (rc == 1)
                return 0;
        }
    }
}

uint64_t rt_client_lost(const rt_client_t *c)
{
    return atomic_load(&c->actor->lost);
}
