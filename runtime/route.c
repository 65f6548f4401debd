/*
 * Routes: how an executor reaches an actor by name (a local actor, or a
 * DEALER socket to its mailbox), cached per executor and dropped when the
 * actor leaves; and the batches of one-way envelopes coalesced per route.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

/* zmq_connect, again when a signal interrupted it: a VP's thread is kicked
 * by one whenever a message waits for it, and it may be connecting. */
static int s_connect(void *socket, const char *endpoint)
{
    int rc, tries = 0;
    while ((rc = zmq_connect(socket, endpoint)) && errno == EINTR && ++tries < 100)
        ;
    return rc;
}

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
        rt_route_close(ex, NULL, route);
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
    char server_key[RT_Z85_KEY_LEN + 1] = "";
    route = calloc(1, sizeof *route);
    if (!route)
        return -ENOMEM;
    pthread_mutex_lock(&rt->lock);
    rt_actor_t *target = rt_map_get(rt->actors, to);
    rt_dir_entry_t *entry = target ? NULL : rt_map_get(rt->directory, to);
    if (target && target->ex == ex)
        route->local = target;
    else if (target) {
        endpoint = strdup(target->endpoint);
        route->serial = target->serial;
        if (target->ops->n_shared_handlers) {
            route->shared = target;
            route->shared_ops = target->ops;
        }
    } else if (entry) {
        endpoint = strdup(entry->endpoint);
        strcpy(server_key, entry->server_key);
    }
    pthread_mutex_unlock(&rt->lock);

    int rc = -ENOENT;
    if (!route->local) {
        if (!endpoint)
            goto fail;
        rc = -ENOMEM;
        /* Another process: one-way frames go on the name's link. */
        if (entry && !(route->link = rt_link_for(ex, to)))
            goto fail;
        void **dealers = realloc(ex->dealers, (ex->n_dealers + 1) * sizeof *dealers);
        if (!dealers)
            goto fail;
        ex->dealers = dealers;
        route->dealer = rt_socket(rt, ZMQ_DEALER);
        route->rcvtimeo_ms = -1; /* ZeroMQ's default */
        if (!route->dealer || (*server_key && rt_auth_client(rt, route->dealer, server_key)) ||
            s_connect(route->dealer, endpoint)) {
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
    /* A new route to a name whose link has frames unacknowledged: the
     * receiver may be a new process; they go first, in order. */
    if (route->link && route->link->n_unacked)
        rt_link_resend(ex, route->link, route->dealer);
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
int rt_send_frame(void *socket, zmq_msg_t *frame, int flags)
{
    rt_tsan_sent();
    for (;;) {
        if (zmq_msg_send(frame, socket, flags) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

typedef struct {
    uint64_t serial;
    rt_actor_t *actor;
} s_serial_find_t;

static void s_find_serial(void *arg, const char *key, void *value)
{
    (void)key;
    s_serial_find_t *f = arg;
    if (((rt_actor_t *)value)->serial == f->serial)
        f->actor = value;
}

/* The in-process actor of that serial, or NULL once it has gone; the
 * caller holds rt->lock. */
static rt_actor_t *s_actor_of_serial(rt_t *rt, uint64_t serial)
{
    s_serial_find_t f = {serial, NULL};
    rt_map_each(rt->actors, s_find_serial, &f);
    return f.actor;
}

/* Whether the in-process actor of that serial is still in the runtime. */
static bool s_serial_lives(rt_t *rt, uint64_t serial)
{
    pthread_mutex_lock(&rt->lock);
    bool lives = s_actor_of_serial(rt, serial) != NULL;
    pthread_mutex_unlock(&rt->lock);
    return lives;
}

void rt_note_lost(rt_t *rt, const char *to, uint64_t serial, unsigned n)
{
    pthread_mutex_lock(&rt->lock);
    rt_actor_t *actor = to ? rt_map_get(rt->actors, to) : s_actor_of_serial(rt, serial);
    if (actor)
        atomic_fetch_add(&actor->lost, n);
    pthread_mutex_unlock(&rt->lock);
}

bool rt_serial_gone(rt_t *rt, uint64_t serial)
{
    return serial && !s_serial_lives(rt, serial);
}

/* How long one wait for room lasts before the receiver is looked for again. */
#define S_SEND_SLICE_MS 50

/* A receiver that let send_timeout_ms pass without making room costs its
 * senders that wait once, not once a message: a partition pinging a
 * device host that vanished would otherwise stall on every ping. */
int rt_route_send(rt_executor_t *ex, rt_route_t *route, zmq_msg_t *frame)
{
    for (int waited = 0;; waited += S_SEND_SLICE_MS) {
        int rc = rt_send_frame(route->dealer, frame, ZMQ_DONTWAIT);
        if (rc != -EAGAIN) {
            route->stalled = false;
            return rc;
        }
        if (rt_serial_gone(ex->rt, route->serial))
            return -ENOENT; /* it left: nobody will read this */
        if (route->stalled)
            return rc;
        if (waited >= ex->rt->cfg.send_timeout_ms) {
            route->stalled = true;
            return rc;
        }
        zmq_pollitem_t item = {.socket = route->dealer, .events = ZMQ_POLLOUT};
        zmq_poll(&item, 1, S_SEND_SLICE_MS);
    }
}

/* Flushes and frees a route; arg is its executor (an rt_map_each()
 * callback). */
void rt_route_close(void *arg, const char *key, void *value)
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


/* ---- Coalescing ------------------------------------------------------------ */

/*
 * One-way envelopes to another executor are coalesced per route and sent
 * as one frame when the sending executor is about to wait (its turn is
 * over), before a request on the same route (so nothing is overtaken), or
 * when the batch is full: ZeroMQ's cost is per message, so many small
 * events cost the price of one. A batch of one is sent as a plain frame.
 */
#define S_BATCH_BYTES (32 * 1024)

void rt_route_flush(rt_executor_t *ex, rt_route_t *route)
{
    if (!route->batch_count)
        return;
    const uint8_t *data = route->batch;
    size_t len = route->batch_len;
    if (route->batch_count == 1) {
        uint64_t one;
        data++; /* the marker */
        rt_wire_get_varint(&data, route->batch + route->batch_len, &one);
        len = (size_t)one;
    }
    zmq_msg_t frame;
    int rc = 0;
    if (route->link) {
        rc = rt_link_send(ex, route, data, len);
    } else if (!(rc = zmq_msg_init_size(&frame, len) ? -ENOMEM : 0)) {
        memcpy(zmq_msg_data(&frame), data, len);
        rc = rt_route_send(ex, route, &frame);
        rt_executor_mark_sent(ex, route->dealer);
        if (rc)
            zmq_msg_close(&frame);
    }
    if (rc) {
        for (unsigned i = 0; i < route->batch_count; i++)
            rt_count(&ex->stats.tx_refused);
        if (route->serial)
            rt_note_lost(ex->rt, NULL, route->serial, route->batch_count);
        char to[256] = "its link";
        size_t n = sizeof to;
        if (route->dealer && zmq_getsockopt(route->dealer, ZMQ_LAST_ENDPOINT, to, &n))
            snprintf(to, sizeof to, "?");
        /* A receiver that left (a VM going down) is no fault of anyone's. */
        rt_log(ex->rt, NULL, rc == -ENOENT ? RT_LOG_INFO : RT_LOG_WARN,
               "%u envelopes could not be sent to %s: %s", route->batch_count, to,
               rc == -ENOENT ? "it has gone" : strerror(-rc));
    }
    route->batch_len = 0;
    route->batch_count = 0;
}

void rt_executor_flush(rt_executor_t *ex)
{
    rt_link_tick(ex);
    for (size_t i = 0; i < ex->n_batched; i++) {
        rt_route_flush(ex, ex->batched[i]);
        ex->batched[i]->batch_listed = false;
    }
    ex->n_batched = 0;
}

int rt_route_batch(rt_actor_t *self, const rt_actor_t *as, rt_route_t *route,
                   const Vmm__Envelope *env, size_t len, const rt_wire_size_t *sizes)
{
    rt_executor_t *ex = self->ex;
    size_t need = rt_wire_varint_size(len) + len + 1;
    if (route->batch_len + need > S_BATCH_BYTES)
        rt_route_flush(ex, route);
    if (route->batch_len + need > route->batch_cap) {
        size_t cap = route->batch_len + need > S_BATCH_BYTES ? route->batch_len + need
                                                             : S_BATCH_BYTES;
        uint8_t *grown = realloc(route->batch, cap);
        if (!grown)
            return -ENOMEM;
        route->batch = grown;
        route->batch_cap = cap;
    }
    if (!route->batch_listed) {
        if (ex->n_batched == ex->cap_batched) {
            size_t cap = ex->cap_batched ? ex->cap_batched * 2 : 8;
            rt_route_t **grown = realloc(ex->batched, cap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            ex->batched = grown;
            ex->cap_batched = cap;
        }
        ex->batched[ex->n_batched++] = route;
        route->batch_listed = true;
    }
    if (!route->batch_len)
        route->batch[route->batch_len++] = RT_BATCH_MARKER;
    uint8_t *p = rt_wire_put_varint(route->batch + route->batch_len, len);
    rt_wire_pack(env, sizes, p);
    rt_tap(self->rt, RT_TAP_TX, as, env, p, len);
    route->batch_len = (size_t)(p - route->batch) + len;
    route->batch_count++;
    return 0;
}

