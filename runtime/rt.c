/* The runtime object: configuration, names, counters, tap, logging and the
 * arena that received messages are decoded into. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/rt_internal.h"

#define S_DEFAULT_MAX_MESSAGE (1u << 20)
#define S_DEFAULT_SPIN_US 50
#define S_DEFAULT_SEND_TIMEOUT_MS 5000
#define S_DEFAULT_LINK_IDLE_MS 30000
#define S_DEFAULT_QUEUE_MESSAGES 100000

static const char *s_level_names[] = {"error", "warn", "info", "debug", "trace"};

static void s_kick_handler(int sig)
{
    (void)sig; /* only there so that blocking system calls return EINTR */
}

int rt_kick_signal(void)
{
    return SIGRTMIN;
}

static int s_install_kick_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_kick_handler;
    sigemptyset(&sa.sa_mask);
    return sigaction(rt_kick_signal(), &sa, NULL) ? -errno : 0;
}

static rt_log_level_t s_level_from_env(rt_log_level_t fallback)
{
    const char *v = getenv("VMM_LOG");
    if (!v)
        return fallback;
    for (size_t i = 0; i < sizeof s_level_names / sizeof *s_level_names; i++)
        if (strcasecmp(v, s_level_names[i]) == 0)
            return (rt_log_level_t)i;
    return fallback;
}

/* ZeroMQ's context allows 1023 sockets unless told more, and a VM of 256
 * VPs needs more (each executor has a mailbox and a dealer for each actor
 * it calls): as many as half the open-file limit allows (each socket takes
 * a descriptor for its signaler), up to ZeroMQ's own limit. */
static void s_room_for_sockets(rt_t *rt)
{
    struct rlimit rl;
    int most = zmq_ctx_get(rt->zctx, ZMQ_SOCKET_LIMIT);
    if (getrlimit(RLIMIT_NOFILE, &rl) || most <= 0)
        return;
    long want = rl.rlim_cur == RLIM_INFINITY ? most : (long)(rl.rlim_cur / 2);
    if (want > most)
        want = most;
    if (want > zmq_ctx_get(rt->zctx, ZMQ_MAX_SOCKETS))
        zmq_ctx_set(rt->zctx, ZMQ_MAX_SOCKETS, (int)want);
}

rt_t *rt_new(const rt_config_t *cfg)
{
    rt_t *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    if (cfg)
        rt->cfg = *cfg;
    if (!rt->cfg.max_message_bytes)
        rt->cfg.max_message_bytes = S_DEFAULT_MAX_MESSAGE;
    if (!rt->cfg.spin_us)
        rt->cfg.spin_us = S_DEFAULT_SPIN_US;
    if (!rt->cfg.send_timeout_ms)
        rt->cfg.send_timeout_ms = S_DEFAULT_SEND_TIMEOUT_MS;
    if (rt->cfg.queue_messages <= 0)
        rt->cfg.queue_messages = S_DEFAULT_QUEUE_MESSAGES;
    if (rt->cfg.link_idle_ms <= 0)
        rt->cfg.link_idle_ms = S_DEFAULT_LINK_IDLE_MS;
    if (!rt->cfg.log_level_set)
        rt->cfg.log_level = RT_LOG_WARN;
    rt->cfg.log_level = s_level_from_env(rt->cfg.log_level);

    if (s_install_kick_handler())
        goto fail_free;
    if (pthread_mutex_init(&rt->lock, NULL))
        goto fail_free;
    if (pthread_rwlock_init(&rt->shared_lock, NULL)) {
        pthread_mutex_destroy(&rt->lock);
        goto fail_free;
    }
    rt->actors = rt_map_new();
    if (!rt->actors)
        goto fail_lock;
    rt->directory = rt_map_new();
    if (!rt->directory)
        goto fail_actors;
    rt->zctx = zmq_ctx_new();
    if (!rt->zctx)
        goto fail_directory;
    s_room_for_sockets(rt);
    int rc = rt_auth_start(rt, rt->cfg.curve_public_key, rt->cfg.curve_secret_key);
    /* Copied into rt->auth; the caller's strings may go. */
    rt->cfg.curve_public_key = rt->cfg.curve_secret_key = NULL;
    if (rc) {
        if (rc == -EINVAL)
            rt_log(rt, NULL, RT_LOG_ERROR,
                   "the CURVE key pair is malformed, or its public key is not the secret key's");
        errno = -rc;
        goto fail_zctx;
    }
    atomic_init(&rt->next_actor_serial, 1);
    return rt;

fail_zctx:
    zmq_ctx_term(rt->zctx);
fail_directory:
    rt_map_destroy(&rt->directory);
fail_actors:
    rt_map_destroy(&rt->actors);
fail_lock:
    pthread_rwlock_destroy(&rt->shared_lock);
    pthread_mutex_destroy(&rt->lock);
fail_free:
    free(rt);
    return NULL;
}

static void s_free_value(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

void rt_destroy(rt_t **rtp)
{
    if (!rtp || !*rtp)
        return;
    rt_t *rt = *rtp;
    /* Oldest first: an actor may have started executors of its own (a
     * partition, its VPs' threads), which it stops as it terminates. */
    while (rt->n_executors) {
        rt_executor_t *ex = rt->executors[0];
        rt_executor_destroy(&ex);
    }
    while (rt->n_clients) {
        rt_client_t *c = rt->clients[rt->n_clients - 1];
        rt_client_destroy(&c);
    }
    free(rt->executors);
    free(rt->clients);
    rt_trace_stop(rt); /* its writers, the executors, are gone */
    rt_auth_stop(rt); /* the mailboxes it watched are closed by now */
    free(rt->replay_key);
    for (size_t i = 0; i < rt->n_drops; i++)
        free(rt->drops[i]);
    free(rt->drops);
    zmq_ctx_term(rt->zctx);
    rt_map_each(rt->directory, s_free_value, NULL);
    rt_map_destroy(&rt->directory);
    rt_map_destroy(&rt->actors);
    pthread_rwlock_destroy(&rt->shared_lock);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    *rtp = NULL;
}

#if defined(__SANITIZE_THREAD__)
char rt_tsan_key;

/* ThreadSanitizer's suppressions, the same for every program. libzmq is
 * not built with TSan, so the hand-offs between its I/O threads and the
 * threads that call it (its lock-free queues, its own atomics) are
 * invisible to TSan: its allocations, copies and compares look racy, and
 * so do libsodium's (CURVE), which its I/O threads call. What the runtime
 * passes through it is ordered by rt_tsan_sent() and rt_tsan_received(). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:libzmq.so.5\ncalled_from_lib:libsodium.so.23\n";
}
#endif

int rt_fault_drop(rt_t *rt, const char *from, const char *to)
{
    size_t lf = strlen(from) + 1, lt = strlen(to) + 1;
    char *pair = malloc(lf + lt);
    if (!pair)
        return -ENOMEM;
    memcpy(pair, from, lf);
    memcpy(pair + lf, to, lt);
    pthread_mutex_lock(&rt->lock);
    size_t n = atomic_load(&rt->n_drops);
    char **grown = realloc(rt->drops, (n + 1) * sizeof *grown);
    if (grown) {
        rt->drops = grown;
        rt->drops[n] = pair;
        atomic_store(&rt->n_drops, n + 1);
    }
    pthread_mutex_unlock(&rt->lock);
    if (!grown) {
        free(pair);
        return -ENOMEM;
    }
    return 0;
}

bool rt_fault_drops(rt_t *rt, const char *from, const char *to)
{
    if (!atomic_load_explicit(&rt->n_drops, memory_order_relaxed))
        return false;
    bool drop = false;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->n_drops && !drop; i++)
        drop = !strcmp(rt->drops[i], from) &&
               !strcmp(rt->drops[i] + strlen(rt->drops[i]) + 1, to);
    pthread_mutex_unlock(&rt->lock);
    return drop;
}

int rt_directory_set(rt_t *rt, const char *name, const char *endpoint)
{
    return rt_directory_set_key(rt, name, endpoint, NULL);
}

int rt_directory_set_key(rt_t *rt, const char *name, const char *endpoint,
                         const char *server_public_key_z85)
{
    if (!name || !*name || !endpoint ||
        (strncmp(endpoint, "ipc://", 6) && strncmp(endpoint, "tcp://", 6) &&
         strncmp(endpoint, "inproc://", 9)))
        return -EINVAL;
    /* Under a key pair tcp:// is CURVE or nothing, and a key means CURVE,
     * which only tcp:// mailboxes serve. */
    bool tcp = strncmp(endpoint, "tcp://", 6) == 0;
    if (server_public_key_z85 ? !rt->auth || !tcp || !rt_z85_key_valid(server_public_key_z85)
                              : rt->auth && tcp)
        return -EINVAL;
    size_t len = strlen(endpoint);
    rt_dir_entry_t *entry = malloc(sizeof *entry + len + 1);
    if (!entry)
        return -ENOMEM;
    strcpy(entry->server_key, server_public_key_z85 ? server_public_key_z85 : "");
    memcpy(entry->endpoint, endpoint, len + 1);
    pthread_mutex_lock(&rt->lock);
    rt_dir_entry_t *old = rt_map_get(rt->directory, name);
    int rc = rt_map_put(rt->directory, name, entry);
    pthread_mutex_unlock(&rt->lock);
    if (rc) {
        free(entry);
        return rc;
    }
    free(old);
    atomic_fetch_add(&rt->removals, 1); /* executors re-resolve the name */
    return 0;
}

int rt_endpoint_of(rt_t *rt, const char *name, char *buf, size_t size)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&rt->lock);
    rt_actor_t *actor = rt_map_get(rt->actors, name);
    if (actor && actor->extra_endpoint)
        rc = snprintf(buf, size, "%s", actor->extra_endpoint) < (int)size ? 0 : -ENOSPC;
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

typedef struct {
    void (*fn)(void *arg, const char *name, const char *kind);
    void *arg;
} s_each_t;

static void s_each_actor(void *arg, const char *name, void *value)
{
    const s_each_t *each = arg;
    const rt_actor_t *actor = value;
    each->fn(each->arg, name, actor->ops->kind ? actor->ops->kind : "");
}

size_t rt_actors_each(rt_t *rt, void (*fn)(void *arg, const char *name, const char *kind),
                      void *arg)
{
    s_each_t each = {fn, arg};
    pthread_mutex_lock(&rt->lock);
    size_t n = rt_map_size(rt->actors);
    if (fn)
        rt_map_each(rt->actors, s_each_actor, &each);
    pthread_mutex_unlock(&rt->lock);
    return n;
}

int rt_register_actor(rt_t *rt, rt_actor_t *actor)
{
    int rc = 0;
    pthread_mutex_lock(&rt->lock);
    if (rt_map_get(rt->actors, actor->name))
        rc = -EEXIST;
    else
        rc = rt_map_put(rt->actors, actor->name, actor);
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

void rt_unregister_actor(rt_t *rt, rt_actor_t *actor)
{
    /* No sender may be in its shared handlers, or about to enter them on
     * a route checked before this removal counts. */
    bool shared = actor->ops->n_shared_handlers;
    if (shared)
        pthread_rwlock_wrlock(&rt->shared_lock);
    pthread_mutex_lock(&rt->lock);
    if (rt_map_get(rt->actors, actor->name) == actor)
        rt_map_remove(rt->actors, actor->name);
    pthread_mutex_unlock(&rt->lock);
    atomic_fetch_add(&rt->removals, 1);
    if (shared)
        pthread_rwlock_unlock(&rt->shared_lock);
}

void rt_actor_share(rt_actor_t *actor, bool open)
{
    if (!actor->ops->n_shared_handlers || actor->shared_open == open)
        return;
    pthread_rwlock_wrlock(&actor->rt->shared_lock);
    actor->shared_open = open;
    pthread_rwlock_unlock(&actor->rt->shared_lock);
}

static void s_add_counters(rt_stats_t *out, const rt_counters_t *c)
{
    out->rx += atomic_load_explicit(&c->rx, memory_order_relaxed);
    out->tx += atomic_load_explicit(&c->tx, memory_order_relaxed);
    out->rx_malformed += atomic_load_explicit(&c->rx_malformed, memory_order_relaxed);
    out->rx_oversized += atomic_load_explicit(&c->rx_oversized, memory_order_relaxed);
    out->rx_unknown_kind += atomic_load_explicit(&c->rx_unknown_kind, memory_order_relaxed);
    out->rx_misaddressed += atomic_load_explicit(&c->rx_misaddressed, memory_order_relaxed);
    out->rx_stale_reply += atomic_load_explicit(&c->rx_stale_reply, memory_order_relaxed);
    out->rx_denied += atomic_load_explicit(&c->rx_denied, memory_order_relaxed);
    out->tx_refused += atomic_load_explicit(&c->tx_refused, memory_order_relaxed);
    out->errors_sent += atomic_load_explicit(&c->errors_sent, memory_order_relaxed);
    out->tx_resent += atomic_load_explicit(&c->tx_resent, memory_order_relaxed);
    out->rx_duplicate += atomic_load_explicit(&c->rx_duplicate, memory_order_relaxed);
}

void rt_retire_stats_locked(rt_t *rt, rt_executor_t *ex)
{
    s_add_counters(&rt->retired, &ex->stats);
}

void rt_stats(rt_t *rt, rt_stats_t *out)
{
    pthread_mutex_lock(&rt->lock);
    *out = rt->retired;
    for (size_t i = 0; i < rt->n_executors; i++)
        s_add_counters(out, &rt->executors[i]->stats);
    for (size_t i = 0; i < rt->n_clients; i++)
        s_add_counters(out, &rt->clients[i]->ex->stats);
    pthread_mutex_unlock(&rt->lock);
    if (rt->auth)
        rt_auth_add_stats(rt, out);
}

void rt_set_tap(rt_t *rt, rt_tap_fn fn, void *arg)
{
    atomic_store(&rt->tap_arg, arg);
    atomic_store(&rt->tap, fn);
}

/* env packed, when bytes is NULL: into *owned, to be freed. */
static const uint8_t *s_packed(const Vmm__Envelope *env, const uint8_t *bytes, size_t *len,
                               uint8_t **owned)
{
    *owned = NULL;
    if (bytes)
        return bytes;
    rt_wire_size_t sizes;
    *len = rt_wire_measure(env, &sizes);
    if (!(*owned = malloc(*len ? *len : 1)))
        return NULL;
    rt_wire_pack(env, &sizes, *owned);
    return *owned;
}

/* The tap, which wants env packed. */
static void s_tap_fn(rt_t *rt, rt_tap_dir_t dir, const rt_actor_t *actor,
                     const Vmm__Envelope *env, const uint8_t *bytes, size_t len)
{
    rt_tap_fn fn = atomic_load_explicit(&rt->tap, memory_order_acquire);
    if (!fn)
        return;
    uint8_t *owned;
    if ((bytes = s_packed(env, bytes, &len, &owned)))
        fn(atomic_load(&rt->tap_arg), dir, actor->name, bytes, len);
    free(owned);
}

void rt_tap_slow(rt_t *rt, rt_tap_dir_t dir, const rt_actor_t *actor, const Vmm__Envelope *env,
                 const uint8_t *bytes, size_t len)
{
    s_tap_fn(rt, dir, actor, env, bytes, len);
    rt_trace_message(rt, dir == RT_TAP_TX ? RT_TRACE_TX : RT_TRACE_RX, actor, NULL, env, bytes,
                     len);
}

void rt_tap_rx_extra(rt_t *rt, const rt_actor_t *actor, const uint8_t *bytes, size_t len,
                     uint32_t extra_frames)
{
    s_tap_fn(rt, RT_TAP_RX, actor, NULL, bytes, len);
    rt_trace_rx_extra(rt, actor, bytes, len, extra_frames);
}

void rt_tap_nested_slow(rt_t *rt, const rt_actor_t *from, const rt_actor_t *to,
                        const Vmm__Envelope *env)
{
    s_tap_fn(rt, RT_TAP_TX, from, env, NULL, 0);
    s_tap_fn(rt, RT_TAP_RX, to, env, NULL, 0);
    rt_trace_message(rt, RT_TRACE_NESTED, from, to, env, NULL, 0);
}

#define S_LOG_INTERVAL_US (1000000 / RT_LOG_PER_S)

/* Whether a line may be written now; if so, *held is how many were not
 * since the last one. */
static bool s_log_allowed(rt_log_limit_t *l, uint64_t *held)
{
    int64_t now = rt_now_us();
    int64_t next = atomic_load(&l->next_us);
    for (;;) {
        int64_t from = next > now ? next : now;
        if (from - now > (int64_t)S_LOG_INTERVAL_US * (RT_LOG_BURST - 1)) {
            atomic_fetch_add(&l->held, 1);
            atomic_fetch_add(&l->total, 1);
            return false;
        }
        if (atomic_compare_exchange_weak(&l->next_us, &next, from + S_LOG_INTERVAL_US))
            break;
    }
    *held = atomic_exchange(&l->held, 0);
    return true;
}

uint64_t rt_log_suppressed(const rt_actor_t *self)
{
    return atomic_load(&self->log_limit.total);
}

void rt_log(rt_t *rt, const rt_actor_t *self, rt_log_level_t level, const char *fmt, ...)
{
    if (level > rt->cfg.log_level)
        return;
    /* The limit's counters are the only part of an actor a log line changes. */
    rt_log_limit_t *limit = self ? (rt_log_limit_t *)&self->log_limit : &rt->log_limit;
    uint64_t held;
    if (!s_log_allowed(limit, &held))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char more[64] = "";
    if (held)
        snprintf(more, sizeof more, " (%llu lines before this not logged: too many)",
                 (unsigned long long)held);
    fprintf(stderr, "%02d:%02d:%02d.%06ld %-5s %s: %s%s\n", tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000, s_level_names[level],
            self ? self->name : "rt", text, more);
}

int64_t rt_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t s_thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool rt_spin_enabled(const rt_t *rt, const rt_spin_t *spin)
{
    return rt->cfg.spin_us > 0 && !spin->skip;
}

int rt_spin_begin(rt_t *rt, rt_spin_t *spin)
{
    if (rt->cfg.spin_us <= 0)
        return 0;
    if (spin->skip) {
        spin->skip--;
        return 0;
    }
    spin->wall0 = rt_now_us();
    spin->cpu0 = s_thread_cpu_us();
    return rt->cfg.spin_us;
}

int rt_spin_poll(struct pollfd *pfds, size_t n, int spin_us)
{
    int64_t spin_until = rt_now_us() + spin_us;
    int rc;
    while ((rc = poll(pfds, n, 0)) == 0 && rt_now_us() < spin_until)
        sched_yield(); /* do not starve the thread that will send */
    return rc;
}

bool rt_spin_fd(int fd, int spin_us)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return rt_spin_poll(&pfd, 1, spin_us) > 0;
}

void rt_spin_end(rt_spin_t *spin)
{
    if (!spin->wall0)
        return;
    int64_t wall = rt_now_us() - spin->wall0;
    int64_t cpu = s_thread_cpu_us() - spin->cpu0;
    spin->wall0 = 0;
    if (wall >= 4 && cpu * 2 < wall) {
        spin->backoff = spin->backoff ? (spin->backoff < 4096 ? spin->backoff * 2 : 4096) : 16;
        spin->skip = spin->backoff;
    } else {
        spin->backoff = 0;
    }
}

Vmm__ErrorCode rt_error_code(int err)
{
    switch (err < 0 ? -err : err) {
    case ENOTSUP:
        return VMM__ERROR_CODE__NOT_SUPPORTED;
    case EINVAL:
    case ERANGE:
    case EMSGSIZE:
    case E2BIG:
        return VMM__ERROR_CODE__INVALID_ARGUMENT;
    case ENOENT:
    case ENODEV:
        return VMM__ERROR_CODE__NOT_FOUND;
    case EBUSY:
    case EAGAIN:
    case ENOSPC:
        return VMM__ERROR_CODE__BUSY;
    case ETIMEDOUT:
        return VMM__ERROR_CODE__TIMEOUT;
    case EPERM:
    case EACCES:
        return VMM__ERROR_CODE__PERMISSION_DENIED;
    default:
        return VMM__ERROR_CODE__INTERNAL;
    }
}

int rt_errno_of(Vmm__ErrorCode code)
{
    switch (code) {
    case VMM__ERROR_CODE__NOT_SUPPORTED:
        return -ENOTSUP;
    case VMM__ERROR_CODE__INVALID_ARGUMENT:
        return -EINVAL;
    case VMM__ERROR_CODE__NOT_FOUND:
        return -ENOENT;
    case VMM__ERROR_CODE__BUSY:
        return -EBUSY;
    case VMM__ERROR_CODE__TIMEOUT:
        return -ETIMEDOUT;
    case VMM__ERROR_CODE__PERMISSION_DENIED:
        return -EPERM;
    default:
        return -EIO;
    }
}

/* ---- The arena behind rt_msg_t ---------------------------------------- */

struct rt_arena_chunk_s {
    rt_arena_chunk_t *next;
    _Alignas(16) unsigned char data[];
};

static void *s_arena_alloc(void *data, size_t size)
{
    rt_msg_t *msg = data;
    size = (size + 15) & ~(size_t)15;
#ifndef __SANITIZE_ADDRESS__
    /* Under ASan every allocation goes to the heap so that the sanitizer
     * sees each object's bounds. */
    if (size <= sizeof msg->inline_buf - msg->used) {
        void *p = msg->inline_buf + msg->used;
        msg->used += size;
        return p;
    }
#endif
    rt_arena_chunk_t *chunk = malloc(sizeof *chunk + size);
    if (!chunk)
        return NULL;
    chunk->next = msg->chunks;
    msg->chunks = chunk;
    return chunk->data;
}

static void s_arena_free(void *data, void *ptr)
{
    (void)data; /* everything goes at once in rt_msg_release() */
    (void)ptr;
}

int rt_msg_unpack(rt_msg_t *msg, const uint8_t *bytes, size_t len)
{
    msg->used = 0;
    msg->chunks = NULL;
    ProtobufCAllocator alloc = {
        .alloc = s_arena_alloc,
        .free = s_arena_free,
        .allocator_data = msg,
    };
    int rc = rt_wire_unpack(&alloc, bytes, len, &msg->env);
    if (rc)
        rt_msg_release(msg);
    return rc;
}

void rt_msg_release(rt_msg_t *msg)
{
    if (!msg)
        return;
    while (msg->chunks) {
        rt_arena_chunk_t *next = msg->chunks->next;
        free(msg->chunks);
        msg->chunks = next;
    }
    msg->used = 0;
    msg->env = NULL;
}

/* ---- Introspection ------------------------------------------------------ */

Vmm__Rt__InspectNode *rt_inspect_add(Vmm__Rt__InspectNode *node, const char *name,
                                     const char *fmt, ...)
{
    Vmm__Rt__InspectNode **children =
        realloc(node->children, (node->n_children + 1) * sizeof *children);
    if (!children)
        return NULL;
    node->children = children;
    Vmm__Rt__InspectNode *child = malloc(sizeof *child);
    if (!child)
        return NULL;
    vmm__rt__inspect_node__init(child);
    child->name = strdup(name);
    char text[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
    }
    child->value = strdup(text);
    if (!child->name || !child->value) {
        free(child->name);
        free(child->value);
        free(child);
        return NULL;
    }
    children[node->n_children++] = child;
    return child;
}
