/*
 * Actors: sending, calling, replying, dispatching to handlers, and turning
 * bad input into counted error replies.
 *
 * Every place where an envelope leaves an actor (s_emit(), s_send_reply(),
 * rt_route_batch()) or reaches one (the receive functions below, and the
 * nested call) hands it to rt_tap(): the one point a trace records from.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "runtime/rt_internal.h"

const char *rt_actor_name(const rt_actor_t *self)
{
    return self->name;
}

rt_executor_t *rt_actor_executor(const rt_actor_t *self)
{
    return self->ex;
}

rt_t *rt_actor_rt(const rt_actor_t *self)
{
    return self->rt;
}

void *rt_actor_state(const rt_actor_t *self)
{
    return self->state;
}

void rt_actor_set_state(rt_actor_t *self, void *state)
{
    self->state = state;
}

bool rt_actor_replaying(const rt_actor_t *self)
{
    return self->ex->replay != NULL;
}

/* Fills the routing fields. */
static int s_prepare(rt_actor_t *self, const char *to, Vmm__Envelope *env,
                     uint64_t request_id)
{
    if (!to || !env || env->body_case == VMM__ENVELOPE__BODY__NOT_SET)
        return -EINVAL;
    env->sender = self->name;
    env->receiver = (char *)to;
    env->request_id = request_id;
    env->reply_to = 0;
    return 0;
}

/* The packed size of env, or -EMSGSIZE (counted) over the limit. The size
 * limit applies to every envelope that is packed: those that cross a socket
 * or wait in a queue. */
static ssize_t s_measure(rt_actor_t *self, const Vmm__Envelope *env, rt_wire_size_t *sizes)
{
    size_t len = rt_wire_measure(env, sizes);
    if (len > self->rt->cfg.max_message_bytes) {
        rt_count(&self->ex->stats.tx_refused);
        rt_log(self->rt, self, RT_LOG_WARN, "refused to send %zu bytes to %s (limit %zu)",
               len, env->receiver, self->rt->cfg.max_message_bytes);
        return -EMSGSIZE;
    }
    return (ssize_t)len;
}

static rt_qitem_t *s_qitem(rt_actor_t *to, const Vmm__Envelope *env, size_t len,
                           const rt_wire_size_t *sizes)
{
    rt_qitem_t *item = malloc(sizeof *item + len);
    if (!item)
        return NULL;
    item->to = to;
    item->len = len;
    rt_wire_pack(env, sizes, item->bytes);
    return item;
}

static void s_count_tx(rt_actor_t *self, const Vmm__Envelope *env)
{
    rt_count(&self->ex->stats.tx);
    self->counts.tx++;
    if (env->body_case == VMM__ENVELOPE__BODY_ERROR)
        rt_count(&self->ex->stats.errors_sent);
}

/* Counts env as sent by `as` on self's thread: `as` is self, or an actor
 * of another executor whose shared handler runs here. */
static void s_count_tx_as(rt_actor_t *self, rt_actor_t *as, const Vmm__Envelope *env)
{
    if (as == self) {
        s_count_tx(self, env);
        return;
    }
    rt_count(&self->ex->stats.tx);
    atomic_fetch_add_explicit(&as->shared_tx, 1, memory_order_relaxed);
    if (env->body_case == VMM__ENVELOPE__BODY_ERROR)
        rt_count(&self->ex->stats.errors_sent);
}

/* Packs env, already prepared, and sends it on a route of self's executor
 * (queued for a local actor, coalesced for another executor when one-way),
 * as sent by `as` (see s_count_tx_as()). */
static int s_emit_as(rt_actor_t *self, rt_actor_t *as, rt_route_t *route,
                     const Vmm__Envelope *env)
{
    rt_t *rt = self->rt;
    rt_wire_size_t sizes;
    ssize_t len = s_measure(self, env, &sizes);
    if (len < 0)
        return (int)len;
    /* A client's events leave at once, but on the link when there is one. */
    if (!route->local && (!self->ex->manual || route->link) && !env->request_id &&
        !env->reply_to) {
        int rc = rt_route_batch(self, as, route, env, (size_t)len, &sizes);
        if (!rc)
            s_count_tx_as(self, as, env);
        if (!rc && self->ex->manual)
            rt_route_flush(self->ex, route);
        return rc;
    }
    if (route->dealer)
        rt_route_flush(self->ex, route); /* what was sent before goes first */
    /* Counted before it leaves, so that whoever holds the reply also sees
     * the request counted. */
    s_count_tx_as(self, as, env);
    if (route->local) {
        rt_qitem_t *item = s_qitem(route->local, env, (size_t)len, &sizes);
        if (!item)
            return -ENOMEM;
        rt_tap(rt, RT_TAP_TX, as, env, item->bytes, item->len);
        rt_executor_enqueue(self->ex, item);
    } else {
        zmq_msg_t frame;
        if (zmq_msg_init_size(&frame, (size_t)len))
            return -ENOMEM;
        uint8_t *bytes = zmq_msg_data(&frame);
        rt_wire_pack(env, &sizes, bytes);
        rt_tap(rt, RT_TAP_TX, as, env, bytes, (size_t)len);
        int rc = rt_route_send(self->ex, route, &frame);
        rt_executor_mark_sent(self->ex, route->dealer);
        if (rc) {
            zmq_msg_close(&frame);
            rt_count(&self->ex->stats.tx_refused);
            rt_log(rt, self, rc == -ENOENT ? RT_LOG_INFO : RT_LOG_WARN, "send to %s failed: %s",
                   env->receiver, rc == -ENOENT ? "it has gone" : strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int s_emit(rt_actor_t *self, rt_route_t *route, const Vmm__Envelope *env)
{
    return s_emit_as(self, self, route, env);
}

/* Prepares env and finds its route; an unknown name is counted. */
static int s_address(rt_actor_t *self, const char *to, Vmm__Envelope *env,
                     uint64_t request_id, rt_route_t **route)
{
    int rc = s_prepare(self, to, env, request_id);
    if (!rc)
        rc = rt_executor_route(self->ex, to, route);
    if (rc == -ENOENT) {
        rt_count(&self->ex->stats.tx_refused);
        rt_log(self->rt, self, RT_LOG_INFO, "no route to %s", to);
    }
    return rc;
}

/* ---- Shared handlers ------------------------------------------------------ */

/* The requests of shared handlers running on this thread, innermost first
 * (rt_reply() finds them here: the actor's own stack is its thread's). */
static _Thread_local rt_ctx_t *tl_shared;

static rt_handler_fn s_shared_fn(const rt_actor_ops_t *ops, Vmm__Envelope__BodyCase body)
{
    for (size_t i = 0; i < ops->n_shared_handlers; i++)
        if (ops->shared_handlers[i].body == body)
            return ops->shared_handlers[i].fn;
    return NULL;
}

/* Records a request a shared handler took, once: before its reply. */
static void s_shared_tap(rt_ctx_t *ctx, rt_actor_t *target)
{
    if (!ctx->shared_untapped)
        return;
    ctx->shared_untapped = false;
    rt_tap_nested(target->rt, ctx->as, target, ctx->req);
    s_count_tx_as(ctx->caller, ctx->as, ctx->req);
    rt_count(&ctx->caller->ex->stats.rx);
    atomic_fetch_add_explicit(&target->shared_rx, 1, memory_order_relaxed);
}

/* Runs env, prepared for the route's actor, through its shared handler on
 * this thread (self's) when it has one for the kind and takes it; else
 * returns RT_NOT_SHARED for the usual path. A call's reply reaches ctx.
 * `as` sent it (see s_count_tx_as()). */
static int s_try_shared_as(rt_actor_t *self, rt_actor_t *as, rt_route_t *route,
                           Vmm__Envelope *env, rt_ctx_t *ctx)
{
    rt_actor_t *target = route->shared;
    /* From the route: target may be leaving, until the lock is held. */
    rt_handler_fn fn = target ? s_shared_fn(route->shared_ops, env->body_case) : NULL;
    if (!fn)
        return RT_NOT_SHARED;
    rt_t *rt = self->rt;
    int rc = RT_NOT_SHARED;
    pthread_rwlock_rdlock(&rt->shared_lock);
    /* No actor has left since this executor checked the route: target is
     * alive, and cannot leave while the lock is held. */
    if (atomic_load(&rt->removals) == self->ex->removals_seen && target->shared_open) {
        if (route->batch_count)
            rt_route_flush(self->ex, route); /* what self sent before leaves first */
        ctx->kind = RT_CTX_NESTED;
        ctx->caller = self;
        ctx->as = as;
        ctx->to = target;
        ctx->shared = true;
        ctx->shared_untapped = true;
        ctx->req = env;
        ctx->replied = false;
        ctx->reply_rc = -EPIPE; /* until a reply is delivered */
        ctx->prev = tl_shared;
        tl_shared = ctx;
        rc = fn(target, env);
        tl_shared = ctx->prev;
        if (rc != RT_NOT_SHARED || ctx->replied) {
            s_shared_tap(ctx, target);
            if (env->request_id && !ctx->replied)
                rt_reply_error(target, env, rc < 0 ? rt_error_code(rc) : VMM__ERROR_CODE__INTERNAL,
                               "%s: %s", target->name,
                               rc < 0 ? strerror(-rc) : "a shared handler returned without replying");
            rc = env->request_id ? ctx->reply_rc : 0;
        }
    }
    pthread_rwlock_unlock(&rt->shared_lock);
    return rc;
}

static int s_try_shared(rt_actor_t *self, rt_route_t *route, Vmm__Envelope *env, rt_ctx_t *ctx)
{
    return s_try_shared_as(self, self, route, env, ctx);
}

/* The shared handler of self running on this thread, if any: what self
 * sends from it leaves by the thread's own executor (its caller's). */
static rt_ctx_t *s_shared_running(const rt_actor_t *self)
{
    for (rt_ctx_t *ctx = tl_shared; ctx; ctx = ctx->prev)
        if (ctx->to == self)
            return ctx;
    return NULL;
}

/* A one-way send from self's shared handler, on its caller's executor. */
static int s_send_from_shared(rt_actor_t *self, rt_actor_t *via, const char *to,
                              Vmm__Envelope *env)
{
    rt_route_t *route;
    int rc = s_prepare(self, to, env, 0);
    if (!rc)
        rc = rt_executor_route(via->ex, to, &route);
    if (rc) {
        rt_count(&via->ex->stats.tx_refused);
        return rc;
    }
    if (route->shared) {
        rt_ctx_t ctx;
        rt_ctx_init(&ctx, RT_CTX_NESTED);
        rc = s_try_shared_as(via, self, route, env, &ctx);
        if (rc != RT_NOT_SHARED)
            return rc;
    }
    return s_emit_as(via, self, route, env);
}

/* Under a replay: env, prepared, is compared with the trace, not sent. */
static int s_replayed(rt_actor_t *self, const Vmm__Envelope *env, uint64_t *recorded_id)
{
    s_count_tx(self, env);
    return rt_replay_emit(self, env, recorded_id);
}

static int s_send(rt_actor_t *self, const char *to, Vmm__Envelope *env)
{
    if (rt_fault_drops(self->rt, self->name, to)) {
        rt_count(&self->ex->stats.tx_refused);
        return -EPIPE;
    }
    rt_ctx_t *shared = tl_shared ? s_shared_running(self) : NULL;
    if (shared)
        return s_send_from_shared(self, shared->caller, to, env);
    rt_route_t *route;
    int rc = s_address(self, to, env, 0, &route);
    if (rc)
        return rc;
    if (route->shared) {
        rt_ctx_t ctx;
        rt_ctx_init(&ctx, RT_CTX_NESTED);
        rc = s_try_shared(self, route, env, &ctx);
        if (rc != RT_NOT_SHARED)
            return rc;
    }
    return s_emit(self, route, env);
}

int rt_send(rt_actor_t *self, const char *to, Vmm__Envelope *env)
{
    if (self->ex->replay) {
        int rc = s_prepare(self, to, env, 0);
        return rc ? rc : s_replayed(self, env, NULL);
    }
    int rc = s_send(self, to, env);
    if (rc && to)
        rt_note_lost(self->rt, to, 0, 1);
    return rc;
}

int rt_note_sent(rt_actor_t *self, const char *to, Vmm__Envelope *env)
{
    int rc = s_prepare(self, to, env, 0);
    if (rc)
        return rc;
    if (self->ex->replay)
        return s_replayed(self, env, NULL);
    s_count_tx(self, env);
    rt_tap(self->rt, RT_TAP_TX, self, env, NULL, 0);
    return 0;
}

int rt_note_received(rt_actor_t *self, const char *from, Vmm__Envelope *env)
{
    if (!from || !env || env->body_case == VMM__ENVELOPE__BODY__NOT_SET || self->terminated)
        return -EINVAL;
    env->sender = (char *)from;
    env->receiver = self->name;
    env->request_id = 0;
    env->reply_to = 0;
    rt_tap(self->rt, RT_TAP_RX, self, env, NULL, 0);
    rt_ctx_t ctx;
    rt_ctx_init(&ctx, RT_CTX_LOCAL);
    rt_actor_dispatch(self, env, &ctx);
    return 0;
}

void rt_notice_arrivals(rt_actor_t *self)
{
    rt_executor_mark_mailboxes(self->ex);
}

void rt_flush(rt_actor_t *self)
{
    /* Actors of this executor that are not on the stack get theirs now:
     * an actor about to block would otherwise hold them until kicked. */
    rt_executor_drain_local_for(self->ex, NULL);
    rt_executor_flush(self->ex);
    /* What the sends may have hidden from the watcher: the blocking actor
     * is kicked for it as for a message, so that it does not block. */
    rt_actor_t *blocking = self->ex->blocking;
    if (blocking && blocking->ops->kick && atomic_load(&self->ex->in_run) &&
        rt_executor_input_waits(self->ex)) {
        atomic_store(&self->ex->kick_pending, 1);
        blocking->ops->kick(blocking);
    }
}

int rt_request(rt_actor_t *self, const char *to, Vmm__Envelope *env, int timeout_ms,
               uint64_t *id)
{
    rt_route_t *route;
    uint64_t rid = self->ex->next_id++;
    if (self->ex->replay) {
        int rc = s_prepare(self, to, env, rid);
        if (rc)
            return rc;
        s_count_tx(self, env);
        rc = rt_replay_request(self, env, rid);
        if (!rc && id)
            *id = rid;
        return rc;
    }
    int rc = s_address(self, to, env, rid, &route);
    if (!rc)
        rc = rt_executor_pending_add(self->ex, self, rid, route->serial, timeout_ms);
    if (rc)
        return rc;
    rc = s_emit(self, route, env);
    if (rc) {
        rt_executor_pending_take(self->ex, rid);
        return rc;
    }
    if (id)
        *id = rid;
    return 0;
}

/* ---- Synchronous calls --------------------------------------------------- */

/* Hands the reply of a nested call to its caller: lent to fn, or copied
 * into the caller's message. */
static int s_deliver(rt_ctx_t *ctx, const Vmm__Envelope *reply)
{
    if (ctx->fn)
        return ctx->fn(ctx->fn_arg, reply);
    rt_wire_size_t sizes;
    size_t len = rt_wire_measure(reply, &sizes);
    uint8_t small[512], *buf = len <= sizeof small ? small : malloc(len);
    if (!buf)
        return -ENOMEM;
    rt_wire_pack(reply, &sizes, buf);
    int rc = rt_msg_unpack(ctx->owned, buf, len);
    if (buf != small)
        free(buf);
    return rc;
}

/* A call into an actor on the same executor: its handler runs here, on the
 * caller's envelope, and its reply goes straight to the caller. */
static int s_call_nested(rt_actor_t *self, rt_actor_t *target, Vmm__Envelope *env,
                         rt_ctx_t *ctx)
{
    rt_t *rt = self->rt;
    if (target->depth)
        return -EDEADLK;
    if (target->terminated)
        return -ENOENT;
    /* What self queued for target earlier must arrive first. */
    rt_executor_drain_local_for(self->ex, target);
    rt_tap_nested(rt, self, target, env);
    s_count_tx(self, env);
    ctx->kind = RT_CTX_NESTED;
    ctx->caller = self;
    ctx->reply_rc = -EPIPE; /* until a reply is delivered */
    rt_actor_dispatch(target, env, ctx);
    return ctx->reply_rc;
}

/* Waits on a dealer for the reply to `id`; sets aside other replies. */
static int s_wait_reply(rt_actor_t *self, rt_route_t *route, uint64_t id, int timeout_ms,
                        rt_ctx_t *ctx)
{
    void *dealer = route->dealer;
    rt_t *rt = self->rt;
    int64_t now = rt_now_us();
    int64_t deadline = now + (int64_t)timeout_ms * 1000;
    /* Without a spin ahead, block at once: a blocking receive takes a
     * reply that is already there as cheaply as a non-blocking one. */
    bool spin = rt_spin_enabled(rt, &self->ex->spin);
    bool spun = !spin, block = !spin;
    /* The receiver, if in this process, is looked for every slice. */
    bool gone = false;
    if (!spin)
        rt_spin_begin(rt, &self->ex->spin); /* counts this wait as skipped */
    for (;;) {
        int flags = ZMQ_DONTWAIT;
        if (block) {
            /* Block in the receive itself: cheaper than zmq_poll(). */
            int ms = (int)((deadline - now + 999) / 1000);
            if (route->serial && ms > RT_GONE_SLICE_MS)
                ms = RT_GONE_SLICE_MS;
            if (ms != route->rcvtimeo_ms) {
                zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &ms, sizeof ms);
                route->rcvtimeo_ms = ms;
            }
            flags = 0;
        }
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, dealer, flags) >= 0) {
            rt_tsan_received();
            const uint8_t *bytes = zmq_msg_data(&frame);
            size_t len = zmq_msg_size(&frame);
            rt_msg_t lent, *msg = ctx->fn ? &lent : ctx->owned;
            rt_actor_t *who = NULL;
            int matched = rt_actor_match_reply(self->ex, bytes, len, id, msg, &who);
            if (matched == 1) {
                rt_tap(rt, RT_TAP_RX, self, msg->env, bytes, len);
                int rc = 0;
                if (ctx->fn) {
                    rc = ctx->fn(ctx->fn_arg, msg->env);
                    rt_msg_release(msg);
                }
                zmq_msg_close(&frame);
                return rc;
            }
            if (matched == 0) /* someone else's: handled by the loop later */
                rt_executor_set_aside(self->ex, bytes, len);
            zmq_msg_close(&frame);
            now = rt_now_us();
            continue;
        }
        int err = errno;
        zmq_msg_close(&frame);
        if (err != EAGAIN && err != EINTR)
            return -err;
        if (gone)
            return -ENOENT; /* and its reply, if it sent one, is taken */
        now = rt_now_us();
        if (now >= deadline)
            return -ETIMEDOUT;
        if (block && rt_serial_gone(rt, route->serial)) {
            gone = true;
            block = false; /* one last look, without waiting */
            continue;
        }
        if (spun || err == EINTR) {
            block = true;
            continue;
        }
        /* Spin on the descriptor, not on receives: an empty receive
         * touches the pipe the other side is writing to. */
        spun = true;
        int spin_us = rt_spin_begin(rt, &self->ex->spin);
        int fd;
        size_t fd_len = sizeof fd;
        zmq_getsockopt(dealer, ZMQ_FD, &fd, &fd_len);
        block = !rt_spin_fd(fd, spin_us); /* readable: take it at once */
        rt_spin_end(&self->ex->spin);
        now = rt_now_us();
    }
}

static int s_call(rt_actor_t *self, const char *to, Vmm__Envelope *env, int timeout_ms,
                  rt_ctx_t *ctx)
{
    if (tl_shared && s_shared_running(self))
        return -EDEADLK; /* a shared handler sends; it cannot wait */
    rt_route_t *route;
    uint64_t id = self->ex->next_id++;
    if (self->ex->replay) {
        int rc = s_prepare(self, to, env, id);
        if (rc)
            return rc;
        s_count_tx(self, env);
        return rt_replay_call(self, env, ctx);
    }
    int rc = s_address(self, to, env, id, &route);
    if (rc)
        return rc;
    if (route->local)
        return s_call_nested(self, route->local, env, ctx);
    if (route->shared && (rc = s_try_shared(self, route, env, ctx)) != RT_NOT_SHARED)
        return rc;
    rc = s_emit(self, route, env);
    if (rc)
        return rc;
    self->depth++; /* a call back into self must not run it re-entrantly */
    rc = s_wait_reply(self, route, id, timeout_ms, ctx);
    self->depth--;
    if (rc == -ETIMEDOUT)
        rt_log(self->rt, self, RT_LOG_INFO, "no reply from %s within %d ms", to, timeout_ms);
    return rc;
}

int rt_call(rt_actor_t *self, const char *to, Vmm__Envelope *env, rt_msg_t *reply,
            int timeout_ms)
{
    rt_ctx_t ctx;
    rt_ctx_init(&ctx, RT_CTX_NESTED);
    ctx.owned = reply;
    return s_call(self, to, env, timeout_ms, &ctx);
}

int rt_call_expect(rt_actor_t *self, const char *to, Vmm__Envelope *env, int want,
                   rt_msg_t *reply, int timeout_ms, char *why, size_t whylen)
{
    rt_msg_t local;
    rt_msg_t *r = reply ? reply : &local;
    int rc = rt_call(self, to, env, r, timeout_ms);
    if (rc) {
        if (why)
            snprintf(why, whylen, "%s did not answer: %s", to, strerror(-rc));
        return rc;
    }
    int body = r->env->body_case;
    if (body == VMM__ENVELOPE__BODY_ERROR) {
        rc = rt_errno_of(r->env->error->code);
        if (why)
            snprintf(why, whylen, "%s: %s", to, r->env->error->text);
    } else if (body != want) {
        rc = -EIO;
        if (why)
            snprintf(why, whylen, "%s answered with body kind %d", to, body);
    }
    if (rc || !reply)
        rt_msg_release(r);
    return rc;
}

int rt_call_with(rt_actor_t *self, const char *to, Vmm__Envelope *env, int timeout_ms,
                 rt_reply_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    rt_ctx_t ctx;
    rt_ctx_init(&ctx, RT_CTX_NESTED);
    ctx.fn = fn;
    ctx.fn_arg = arg;
    return s_call(self, to, env, timeout_ms, &ctx);
}

/* ---- Replies ------------------------------------------------------------ */

/* Sends a reply on the path the request came by. */
static int s_send_reply(rt_actor_t *self, rt_ctx_t *ctx, const char *receiver,
                        uint64_t reply_to, Vmm__Envelope *body)
{
    rt_t *rt = self->rt;
    body->sender = self->name;
    body->receiver = (char *)(receiver ? receiver : "");
    body->request_id = 0;
    body->reply_to = reply_to;

    if (ctx->kind == RT_CTX_NESTED && self->ex->replay)
        return s_replayed(self, body, NULL);
    if (ctx->kind == RT_CTX_NESTED && ctx->shared) {
        s_shared_tap(ctx, self);
        rt_tap_nested(rt, self, ctx->as, body);
        rt_count(&ctx->caller->ex->stats.tx);
        atomic_fetch_add_explicit(&self->shared_tx, 1, memory_order_relaxed);
        ctx->reply_rc = s_deliver(ctx, body);
        return 0;
    }
    if (ctx->kind == RT_CTX_NESTED) {
        rt_tap_nested(rt, self, ctx->caller, body);
        s_count_tx(self, body);
        ctx->reply_rc = s_deliver(ctx, body);
        return 0;
    }

    rt_wire_size_t sizes;
    ssize_t len = s_measure(self, body, &sizes);
    Vmm__Error too_big = VMM__ERROR__INIT;
    if (len < 0) {
        too_big.code = VMM__ERROR_CODE__INTERNAL;
        too_big.text = "the reply was over the message size limit";
        body->body_case = VMM__ENVELOPE__BODY_ERROR;
        body->error = &too_big;
        len = (ssize_t)rt_wire_measure(body, &sizes);
    }

    if (self->ex->replay)
        return s_replayed(self, body, NULL);
    s_count_tx(self, body); /* before it leaves: see s_emit() */
    if (ctx->kind == RT_CTX_LOCAL) {
        rt_route_t *route;
        int rc = rt_executor_route(self->ex, body->receiver, &route);
        if (rc || !route->local) {
            rt_count(&self->ex->stats.tx_refused);
            return rc ? rc : -ENOENT;
        }
        rt_qitem_t *item = s_qitem(route->local, body, (size_t)len, &sizes);
        if (!item)
            return -ENOMEM;
        rt_tap(rt, RT_TAP_TX, self, body, item->bytes, item->len);
        rt_executor_enqueue(self->ex, item);
    } else {
        zmq_msg_t ident, frame;
        if (zmq_msg_init_size(&frame, (size_t)len))
            return -ENOMEM;
        uint8_t *bytes = zmq_msg_data(&frame);
        rt_wire_pack(body, &sizes, bytes);
        rt_tap(rt, RT_TAP_TX, self, body, bytes, (size_t)len);
        zmq_msg_init_size(&ident, ctx->ident_len);
        memcpy(zmq_msg_data(&ident), ctx->ident, ctx->ident_len);
        /* A peer that does not read its replies loses them (counted); it
         * must not hold up the actor. */
        void *via = ctx->via ? ctx->via : self->mailbox;
        int rc = rt_send_frame(via, &ident, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (!rc)
            rc = rt_send_frame(via, &frame, ZMQ_DONTWAIT);
        else
            zmq_msg_close(&ident);
        /* The send may have taken the signal of an envelope that arrived
         * meanwhile (loop.c): without this it waited for the next one. */
        rt_executor_mark_sent(self->ex, via);
        if (rc) {
            zmq_msg_close(&frame);
            rt_count(&self->ex->stats.tx_refused);
            rt_log(rt, self, RT_LOG_INFO, "reply to %s undeliverable: %s", body->receiver,
                   strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static rt_ctx_t *s_find_ctx(rt_actor_t *self, const Vmm__Envelope *req)
{
    for (rt_ctx_t *ctx = tl_shared; ctx; ctx = ctx->prev)
        if (ctx->req == req)
            return ctx;
    for (rt_ctx_t *ctx = self->ctx; ctx; ctx = ctx->prev)
        if (ctx->req == req)
            return ctx;
    return NULL;
}

int rt_reply(rt_actor_t *self, const Vmm__Envelope *req, Vmm__Envelope *body)
{
    rt_ctx_t *ctx = s_find_ctx(self, req);
    if (!ctx || !req->request_id || !body || body->body_case == VMM__ENVELOPE__BODY__NOT_SET)
        return -EINVAL; /* not a request being handled, or an event */
    if (ctx->replied)
        return -EALREADY;
    ctx->replied = true;
    return s_send_reply(self, ctx, req->sender, req->request_id, body);
}

struct rt_deferred_s {
    rt_ctx_t ctx; /* how the request came: how its reply leaves */
    char *receiver;
    uint64_t reply_to;
};

rt_deferred_t *rt_defer(rt_actor_t *self, const Vmm__Envelope *req)
{
    rt_ctx_t *ctx = s_find_ctx(self, req);
    if (!ctx || !req->request_id || ctx->replied || ctx->kind == RT_CTX_NESTED)
        return NULL;
    rt_deferred_t *d = malloc(sizeof *d);
    if (!d || !(d->receiver = strdup(req->sender))) {
        free(d);
        return NULL;
    }
    d->ctx = *ctx;
    d->ctx.req = NULL;
    d->ctx.prev = NULL;
    d->reply_to = req->request_id;
    ctx->replied = true; /* the handler's return owes nothing now */
    return d;
}

int rt_reply_deferred(rt_actor_t *self, rt_deferred_t **d, Vmm__Envelope *body)
{
    if (!*d)
        return -EINVAL;
    int rc = body && body->body_case != VMM__ENVELOPE__BODY__NOT_SET
                 ? s_send_reply(self, &(*d)->ctx, (*d)->receiver, (*d)->reply_to, body)
                 : -EINVAL;
    free((*d)->receiver);
    free(*d);
    *d = NULL;
    return rc;
}

/* Builds an Error body; text is formatted into buf. */
static void s_error_body(Vmm__Envelope *env, Vmm__Error *err, Vmm__ErrorCode code,
                         char *buf, size_t size, const char *fmt, va_list ap)
{
    vsnprintf(buf, size, fmt, ap);
    err->code = code;
    err->text = buf;
    env->body_case = VMM__ENVELOPE__BODY_ERROR;
    env->error = err;
}

int rt_reply_error(rt_actor_t *self, const Vmm__Envelope *req, Vmm__ErrorCode code,
                   const char *fmt, ...)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Error err = VMM__ERROR__INIT;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    s_error_body(&env, &err, code, text, sizeof text, fmt, ap);
    va_end(ap);
    return rt_reply(self, req, &env);
}

int rt_reply_ack(rt_actor_t *self, const Vmm__Envelope *req)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Ack ack = VMM__ACK__INIT;
    env.body_case = VMM__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    return rt_reply(self, req, &env);
}

/* Answers input refused before it could be handled. receiver may be NULL
 * when the envelope could not be decoded. Nothing is sent for events. */
static void s_vrefuse(rt_actor_t *self, rt_ctx_t *ctx, rt_log_level_t level,
                      const char *receiver, uint64_t request_id, Vmm__ErrorCode code,
                      const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    rt_log(self->rt, self, level, "refused: %s", text);
    self->counts.bad++;
    if (!request_id && receiver)
        return; /* a decoded event: nobody waits for an answer */
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Error err = VMM__ERROR__INIT;
    err.code = code;
    err.text = text;
    env.body_case = VMM__ENVELOPE__BODY_ERROR;
    env.error = &err;
    s_send_reply(self, ctx, receiver, request_id, &env);
}

/* Bad input is normal input: logged at INFO. */
static void s_refuse(rt_actor_t *self, rt_ctx_t *ctx, const char *receiver,
                     uint64_t request_id, Vmm__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void s_refuse(rt_actor_t *self, rt_ctx_t *ctx, const char *receiver,
                     uint64_t request_id, Vmm__ErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vrefuse(self, ctx, RT_LOG_INFO, receiver, request_id, code, fmt, ap);
    va_end(ap);
}

/* An authenticated peer overstepping its scope is worth a WARN. */
static void s_deny(rt_actor_t *self, rt_ctx_t *ctx, const Vmm__Envelope *env,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void s_deny(rt_actor_t *self, rt_ctx_t *ctx, const Vmm__Envelope *env,
                   const char *fmt, ...)
{
    rt_count(&self->ex->stats.rx_denied);
    va_list ap;
    va_start(ap, fmt);
    s_vrefuse(self, ctx, RT_LOG_WARN, env->sender, env->request_id,
              VMM__ERROR_CODE__PERMISSION_DENIED, fmt, ap);
    va_end(ap);
}

/* ---- Dispatch --------------------------------------------------------------- */

static int s_on_terminate(rt_actor_t *self, const Vmm__Envelope *msg, rt_ctx_t *ctx)
{
    if (ctx->remote) {
        /* Whoever runs the actors stops them; a peer over ipc:// or tcp://
         * is not that. */
        rt_count(&self->ex->stats.rx_denied);
        self->counts.bad++;
        rt_log(self->rt, self, RT_LOG_INFO, "refused Terminate from %s in another process",
               msg->sender);
        return msg->request_id ? rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                                                "%s takes Terminate only from its own process",
                                                self->name)
                               : 0;
    }
    rt_actor_share(self, false);
    if (self->ops->fini)
        self->ops->fini(self);
    self->terminated = true; /* the executor removes it once off the stack */
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

static int s_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (!msg->request_id)
        return 0;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Pong pong = VMM__RT__PONG__INIT;
    pong.payload = msg->ping->payload;
    env.body_case = VMM__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    return rt_reply(self, msg, &env);
}

static int s_on_inspect(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (!msg->request_id)
        return 0;
    Vmm__Rt__InspectNode *root = calloc(1, sizeof *root);
    if (!root)
        return -ENOMEM;
    vmm__rt__inspect_node__init(root);
    root->name = strdup(self->name);
    root->value = strdup(self->ops->kind ? self->ops->kind : "");
    rt_inspect_add(root, "executor", "%s", self->ex->name);
    rt_inspect_add(root, "rx", "%llu",
                   (unsigned long long)(self->counts.rx + atomic_load(&self->shared_rx)));
    rt_inspect_add(root, "tx", "%llu",
                   (unsigned long long)(self->counts.tx + atomic_load(&self->shared_tx)));
    rt_inspect_add(root, "refused", "%llu", (unsigned long long)self->counts.bad);
    /* Only once there were some: a replay compares Inspect replies with the
     * recorded run's, which had none. */
    uint64_t suppressed = rt_log_suppressed(self);
    if (suppressed)
        rt_inspect_add(root, "logs_suppressed", "%llu", (unsigned long long)suppressed);
    if (self->ops->inspect)
        self->ops->inspect(self, root);
    int rc = -ENOMEM;
    if (root->name && root->value) {
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_INSPECT_REPLY;
        env.inspect_reply = root;
        rc = rt_reply(self, msg, &env);
    }
    vmm__rt__inspect_node__free_unpacked(root, NULL);
    return rc;
}

void rt_actor_dispatch(rt_actor_t *actor, const Vmm__Envelope *env, rt_ctx_t *ctx)
{
    rt_count(&actor->ex->stats.rx);
    actor->counts.rx++;
    if (actor->ops->run)
        actor->run_again = true; /* a message may give run work again */
    ctx->req = env;
    ctx->replied = false;
    ctx->prev = actor->ctx;
    actor->ctx = ctx;
    actor->depth++;

    int rc = 0;
    size_t body = (size_t)env->body_case;
    rt_handler_fn fn = body < actor->table_len ? actor->table[body] : NULL;
    if (actor->ops->forward && strcmp(env->receiver, actor->name))
        rc = actor->ops->forward(actor, env); /* s_accept let only a peer's through */
    else if (env->body_case == VMM__ENVELOPE__BODY_TERMINATE)
        rc = s_on_terminate(actor, env, ctx);
    else if (fn)
        rc = fn(actor, env);
    else if (env->body_case == VMM__ENVELOPE__BODY_PING)
        rc = s_on_ping(actor, env);
    else if (env->body_case == VMM__ENVELOPE__BODY_INSPECT)
        rc = s_on_inspect(actor, env);
    else {
        rt_count(&actor->ex->stats.rx_unknown_kind);
        ctx->replied = true; /* s_refuse answers it */
        s_refuse(actor, ctx, env->sender, env->request_id, VMM__ERROR_CODE__NOT_SUPPORTED,
                 "actor %s (%s) does not handle body kind %d from %s", actor->name,
                 actor->ops->kind ? actor->ops->kind : "?", env->body_case, env->sender);
    }
    if (env->request_id && !ctx->replied) {
        if (rc < 0)
            rt_reply_error(actor, env, rt_error_code(rc), "%s", strerror(-rc));
        else
            rt_reply_error(actor, env, VMM__ERROR_CODE__INTERNAL,
                           "%s returned without replying", actor->name);
    }
    actor->depth--;
    actor->ctx = ctx->prev;
}

const char *rt_peer_key(const rt_actor_t *self)
{
    const rt_ctx_t *ctx = self->ctx;
    return ctx && ctx->kind == RT_CTX_MAILBOX && ctx->remote && ctx->peer[0] ? ctx->peer : NULL;
}

bool rt_peer_remote(const rt_actor_t *self)
{
    const rt_ctx_t *ctx = self->ctx;
    return ctx && ctx->kind == RT_CTX_MAILBOX && ctx->remote;
}

/* ---- Receiving ------------------------------------------------------------ */

static int s_recv_frame(void *socket, zmq_msg_t *frame, int flags)
{
    zmq_msg_init(frame);
    if (zmq_msg_recv(frame, socket, flags) >= 0 && (rt_tsan_received(), true))
        return 0;
    int rc = -errno;
    zmq_msg_close(frame);
    return rc;
}

/* The rest of a multipart message is already there: no waiting. */
static int s_recv_next(void *socket, zmq_msg_t *frame)
{
    int rc;
    while ((rc = s_recv_frame(socket, frame, ZMQ_DONTWAIT)) == -EINTR)
        ;
    return rc;
}

/* Checks a decoded envelope that arrived at actor's mailbox. Returns true
 * if it may be dispatched; otherwise it has been refused and counted. */
/* An actor of actor's executor named receiver: a peer in another process
 * may reach it through actor's endpoint (a device host knows its VM by
 * the partition's endpoint alone, and asks the synic there too). Others
 * are not reachable so: a reply must leave by the mailbox the request came
 * to, and only this thread may use it. */
static rt_actor_t *s_gateway_to(rt_actor_t *actor, const char *receiver)
{
    for (size_t i = 0; i < actor->ex->n_actors; i++) {
        rt_actor_t *other = actor->ex->actors[i];
        if (!other->terminated && !strcmp(other->name, receiver))
            return other;
    }
    return NULL;
}

/* Whether an actor of this process bears the name. */
static bool s_names_local(rt_t *rt, const char *name)
{
    pthread_mutex_lock(&rt->lock);
    bool local = rt_map_get(rt->actors, name) != NULL;
    pthread_mutex_unlock(&rt->lock);
    return local;
}

static bool s_accept(rt_actor_t *actor, rt_ctx_t *ctx, const Vmm__Envelope *env)
{
    rt_t *rt = actor->rt;
    if (env->request_id && env->reply_to) {
        rt_count(&actor->ex->stats.rx_malformed);
        s_refuse(actor, ctx, env->sender, env->request_id, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "malformed envelope: both request_id and reply_to are set");
        return false;
    }
    if (env->reply_to) {
        /* Replies come back on the socket the request left by, never here. */
        rt_count(&actor->ex->stats.rx_stale_reply);
        actor->counts.bad++;
        rt_log(rt, actor, RT_LOG_INFO, "dropped a reply to %llu from %s at the mailbox",
               (unsigned long long)env->reply_to, env->sender);
        return false;
    }
    if (env->body_case == VMM__ENVELOPE__BODY__NOT_SET && env->base.n_unknown_fields) {
        /* A body kind from a newer protocol: not ours to decode. */
        rt_count(&actor->ex->stats.rx_unknown_kind);
        s_refuse(actor, ctx, env->sender, env->request_id, VMM__ERROR_CODE__NOT_SUPPORTED,
                 "unknown body kind (field %u) from %s", env->base.unknown_fields[0].tag,
                 env->sender);
        return false;
    }
    if (env->body_case == VMM__ENVELOPE__BODY__NOT_SET) {
        rt_count(&actor->ex->stats.rx_malformed);
        s_refuse(actor, ctx, env->sender, env->request_id, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "malformed envelope from %s: no body", env->sender);
        return false;
    }
    bool proxied = strcmp(env->receiver, actor->name) != 0 && !ctx->to;
    if (proxied && !(actor->ops->forward && ctx->remote)) {
        rt_count(&actor->ex->stats.rx_misaddressed);
        s_refuse(actor, ctx, env->sender, env->request_id, VMM__ERROR_CODE__NOT_FOUND,
                 "misaddressed: sent to \"%s\" but this mailbox is \"%s\"", env->receiver,
                 actor->name);
        return false;
    }
    if (ctx->remote && env->sender && s_names_local(rt, env->sender)) {
        /* Actors trust their own process's actors by name: a peer may not
         * speak for one of them. */
        s_deny(actor, ctx, env, "a peer in another process signed as %s, an actor of this one",
               env->sender);
        return false;
    }
    if (actor->curve && ctx->remote) {
        /* Checked per envelope: a scope changed by rt_peer_allow() holds
         * for connections already open. */
        int rc = rt_auth_permits(rt, ctx->peer, proxied ? actor->name : env->receiver);
        if (rc) {
            s_deny(actor, ctx, env, "%s (CURVE key %s) may not address %s: %s", env->sender,
                   *ctx->peer ? ctx->peer : "none", env->receiver,
                   rc == -EACCES ? "outside its scope" : "not an admitted key");
            return false;
        }
    }
    return true;
}

void rt_actor_refuse_extra(rt_actor_t *actor, rt_ctx_t *ctx, const uint8_t *bytes, size_t len,
                           uint32_t extra)
{
    rt_tap_rx_extra(actor->rt, actor, bytes, len, extra);
    rt_count(&actor->ex->stats.rx_malformed);
    s_refuse(actor, ctx, NULL, rt_peek_request_id(bytes, len), VMM__ERROR_CODE__INVALID_ARGUMENT,
             "malformed message: %u extra frames after the envelope", extra);
}

int rt_actor_take(rt_actor_t *actor, rt_msg_t *msg, rt_ctx_t *ctx, const uint8_t *bytes,
                  size_t len)
{
    rt_t *rt = actor->rt;
    if (len > rt->cfg.max_message_bytes) {
        rt_tap(rt, RT_TAP_RX, actor, NULL, bytes, len);
        rt_count(&actor->ex->stats.rx_oversized);
        s_refuse(actor, ctx, NULL, rt_peek_request_id(bytes, len),
                 VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "message of %zu bytes is over the limit of %zu", len,
                 rt->cfg.max_message_bytes);
        return 0;
    }
    if (rt_msg_unpack(msg, bytes, len)) {
        rt_tap(rt, RT_TAP_RX, actor, NULL, bytes, len);
        rt_count(&actor->ex->stats.rx_malformed);
        s_refuse(actor, ctx, NULL, rt_peek_request_id(bytes, len),
                 VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "malformed envelope of %zu bytes: it does not decode", len);
        return 0;
    }
    /* Recorded as the input of the actor that takes it: a neighbour
     * reached through this mailbox, the gateway, takes its own. */
    const char *receiver = msg->env->receiver;
    if (ctx->remote && receiver && strcmp(receiver, actor->name))
        ctx->to = s_gateway_to(actor, receiver);
    rt_tap(rt, RT_TAP_RX, ctx->to ? ctx->to : actor, msg->env, bytes, len);
    if (!s_accept(actor, ctx, msg->env)) {
        rt_msg_release(msg);
        return 0;
    }
    return 1;
}

/* Takes the next envelope out of the batch frame being read. */
static int s_take_batched(rt_actor_t *actor, rt_msg_t *msg, rt_ctx_t *ctx)
{
    const uint8_t *start = zmq_msg_data(&actor->batch);
    const uint8_t *end = start + zmq_msg_size(&actor->batch);
    const uint8_t *p = start + actor->batch_pos;
    memcpy(ctx->ident, actor->batch_ident, actor->batch_ident_len);
    ctx->ident_len = actor->batch_ident_len;
    ctx->via = actor->mailbox;
    ctx->remote = actor->batch_remote;
    if (actor->curve)
        memcpy(ctx->peer, actor->batch_peer, sizeof ctx->peer);
    uint64_t len;
    int rc = 0;
    if (rt_wire_get_varint(&p, end, &len) || len > (uint64_t)(end - p)) {
        rt_count(&actor->ex->stats.rx_malformed);
        s_refuse(actor, ctx, NULL, 0, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "malformed batch: a length runs past the end of the frame");
        p = end;
    } else {
        rc = rt_actor_take(actor, msg, ctx, p, (size_t)len);
        p += len;
    }
    actor->batch_pos = (size_t)(p - start);
    if (p == end) {
        zmq_msg_close(&actor->batch);
        actor->in_batch = false;
    }
    return rc;
}

int rt_actor_receive_mailbox(rt_actor_t *actor, rt_msg_t *msg, rt_ctx_t *ctx, int flags)
{
    if (actor->in_batch)
        return s_take_batched(actor, msg, ctx);
    zmq_msg_t ident, frame;
    int rc = s_recv_frame(actor->mailbox, &ident, flags);
    if (rc)
        return rc;
    size_t ident_len = zmq_msg_size(&ident);
    ctx->via = actor->mailbox;
    ctx->ident_len = ident_len < sizeof ctx->ident ? ident_len : 0;
    memcpy(ctx->ident, zmq_msg_data(&ident), ctx->ident_len);
    /* Only connections over ipc:// and tcp:// carry ZMTP metadata. */
    ctx->remote = zmq_msg_gets(&ident, "Socket-Type") != NULL;
    if (actor->curve && ctx->remote) {
        /* The peer's key, as the ZAP handler tagged its connection. */
        const char *peer = zmq_msg_gets(&ident, "User-Id");
        if (peer) {
            size_t len = strnlen(peer, RT_Z85_KEY_LEN);
            memcpy(ctx->peer, peer, len);
            ctx->peer[len] = '\0';
        }
    }
    bool more = zmq_msg_more(&ident);
    zmq_msg_close(&ident);
    if (!more || s_recv_next(actor->mailbox, &frame)) {
        rt_count(&actor->ex->stats.rx_malformed);
        actor->counts.bad++;
        return 0; /* a routing id with no message: nothing to answer */
    }
    int extra = 0;
    while (zmq_msg_more(&frame)) { /* an envelope is one frame: drop the rest */
        zmq_msg_t rest;
        if (s_recv_next(actor->mailbox, &rest))
            break;
        more = zmq_msg_more(&rest);
        zmq_msg_close(&rest);
        extra++;
        if (!more)
            break;
    }
    const uint8_t *bytes = zmq_msg_data(&frame);
    size_t len = zmq_msg_size(&frame);
    size_t skip = 0; /* a link's header */
    if (!extra && len > 0 && bytes[0] == RT_LINK_MARKER) {
        int taken = rt_link_take(actor, ctx, bytes, len);
        if (taken != 1) {
            if (taken < 0) {
                rt_count(&actor->ex->stats.rx_malformed);
                actor->counts.bad++;
            }
            zmq_msg_close(&frame);
            return 0;
        }
        skip = RT_LINK_HEADER;
        bytes += skip;
        len -= skip;
    }
    if (extra) {
        rt_actor_refuse_extra(actor, ctx, bytes, len, (uint32_t)extra);
    } else if (len > 1 && bytes[0] == RT_BATCH_MARKER) {
        zmq_msg_init(&actor->batch);
        zmq_msg_move(&actor->batch, &frame);
        actor->in_batch = true;
        actor->batch_pos = skip + 1;
        memcpy(actor->batch_ident, ctx->ident, ctx->ident_len);
        actor->batch_ident_len = ctx->ident_len;
        actor->batch_remote = ctx->remote;
        if (actor->curve)
            memcpy(actor->batch_peer, ctx->peer, sizeof actor->batch_peer);
        rc = s_take_batched(actor, msg, ctx);
    } else {
        rc = rt_actor_take(actor, msg, ctx, bytes, len);
    }
    zmq_msg_close(&frame);
    return rc;
}

int rt_actor_match_reply(rt_executor_t *ex, const uint8_t *bytes, size_t len, uint64_t want,
                         rt_msg_t *msg, rt_actor_t **who)
{
    rt_t *rt = ex->rt;
    if (rt_link_take_ack(ex, bytes, len))
        return -EALREADY;
    if (len > rt->cfg.max_message_bytes) {
        rt_count(&ex->stats.rx_oversized);
        rt_log(rt, NULL, RT_LOG_INFO, "dropped an oversized reply (%zu bytes)", len);
        return -EMSGSIZE;
    }
    if (rt_msg_unpack(msg, bytes, len)) {
        rt_count(&ex->stats.rx_malformed);
        rt_log(rt, NULL, RT_LOG_INFO, "dropped a reply that does not decode (%zu bytes)", len);
        return -EBADMSG;
    }
    uint64_t id = msg->env->reply_to;
    if (want && id == want) {
        rt_count(&ex->stats.rx);
        return 1;
    }
    if (want) {
        rt_msg_release(msg);
        return 0; /* not this caller's: the executor matches it later */
    }
    rt_actor_t *actor = id ? rt_executor_pending_take(ex, id) : NULL;
    if (!actor) {
        rt_count(&ex->stats.rx_stale_reply);
        rt_log(rt, NULL, RT_LOG_INFO, "dropped a reply to %llu from %s: nobody waits for it",
               (unsigned long long)id, msg->env->sender);
        if (msg->env->body_case == VMM__ENVELOPE__BODY_ERROR)
            rt_log(rt, NULL, RT_LOG_INFO, "  it said: %s", msg->env->error->text);
        rt_msg_release(msg);
        return -ENOENT;
    }
    rt_count(&ex->stats.rx);
    *who = actor;
    return 1;
}

void rt_actor_receive_reply(rt_executor_t *ex, const uint8_t *bytes, size_t len)
{
    rt_msg_t msg;
    rt_actor_t *actor = NULL;
    if (rt_actor_match_reply(ex, bytes, len, 0, &msg, &actor) != 1)
        return;
    rt_tap(ex->rt, RT_TAP_RX, actor, msg.env, bytes, len);
    actor->counts.rx++;
    if (actor->ops->on_reply && !actor->terminated) {
        actor->depth++;
        actor->ops->on_reply(actor, msg.env);
        actor->depth--;
    }
    rt_msg_release(&msg);
}

void rt_actor_receive_local(rt_executor_t *ex, rt_qitem_t *item)
{
    if (!item->to || rt_peek_reply_to(item->bytes, item->len)) {
        rt_actor_receive_reply(ex, item->bytes, item->len);
        return;
    }
    rt_msg_t msg;
    if (rt_msg_unpack(&msg, item->bytes, item->len))
        return; /* packed by this process: only out of memory gets here */
    rt_tap(ex->rt, RT_TAP_RX, item->to, msg.env, item->bytes, item->len);
    rt_ctx_t ctx;
    rt_ctx_init(&ctx, RT_CTX_LOCAL);
    if (!item->to->terminated)
        rt_actor_dispatch(item->to, msg.env, &ctx);
    rt_msg_release(&msg);
}

void rt_timeout_reply(Vmm__Envelope *env, Vmm__Error *err, char *receiver, uint64_t id,
                      bool gone)
{
    vmm__envelope__init(env);
    vmm__error__init(err);
    err->code = gone ? VMM__ERROR_CODE__NOT_FOUND : VMM__ERROR_CODE__TIMEOUT;
    err->text = gone ? "the receiver left without answering"
                     : "no reply within the request's deadline";
    env->body_case = VMM__ENVELOPE__BODY_ERROR;
    env->error = err;
    env->receiver = receiver;
    env->reply_to = id;
}

void rt_actor_expire(rt_executor_t *ex, rt_actor_t *actor, const rt_pending_t *p)
{
    Vmm__Envelope env;
    Vmm__Error err;
    rt_timeout_reply(&env, &err, actor->name, p->id, p->gone);
    rt_log(ex->rt, actor, RT_LOG_INFO, "request %llu %s", (unsigned long long)p->id,
           p->gone ? "went unanswered: its receiver left" : "timed out");
    rt_tap(ex->rt, RT_TAP_RX, actor, &env, NULL, 0); /* a replay gives it back */
    if (actor->ops->on_reply && !actor->terminated) {
        actor->depth++;
        actor->ops->on_reply(actor, &env);
        actor->depth--;
    }
}
