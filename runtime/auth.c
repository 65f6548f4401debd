/*
 * ZeroMQ CURVE for tcp:// (rt_config_t.curve_*): the runtime's key pair,
 * the peers it admits, and a thread that answers ZeroMQ's authentication
 * requests (ZAP, RFC 27) for the runtime's context and watches the
 * handshakes of its CURVE mailboxes through their socket monitors.
 *
 * Each refused connection is counted once: the ZAP handler counts the keys
 * it refuses (auth_denied); the monitors count every other failed
 * handshake (auth_failed) and leave out ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
 * which is the ZAP refusal seen again.
 */
#define _GNU_SOURCE /* explicit_bzero */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

/* Where libzmq sends a context's ZAP requests (RFC 27). */
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN "rt"
/* version, request id, domain, address, routing id, mechanism, key */
#define S_ZAP_FRAMES 7
#define S_CURVE_KEY_BYTES 32
/* How long rt_destroy() waits for the closed mailboxes' monitors to stop. */
#define S_STOP_WAIT_US (2 * 1000 * 1000)

#define S_MONITOR_EVENTS                                                                     \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |         \
     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |          \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_MONITOR_STOPPED)

/* One CURVE mailbox's monitor, read by the thread. */
typedef struct {
    void *pair; /* connected to the monitor */
    char *actor;
    /* Connections accepted whose handshake has not ended, oldest first. */
    int *open;
    size_t n_open, cap_open;
    bool failed;  /* a failure was counted: its connection's disconnect is next */
    bool stopped; /* the mailbox is closed */
} s_watch_t;

struct rt_auth_s {
    char public_key[RT_Z85_KEY_LEN + 1];
    char secret_key[RT_Z85_KEY_LEN + 1];
    rt_map_t *peers; /* admitted key -> scope; guarded by rt->lock */
    _Atomic uint64_t denied, failed; /* written by the thread only */
    pthread_t thread;
    void *zap;        /* REP: the thread's */
    void *pipe;       /* commands: the owner end, under pipe_lock */
    void *pipe_inner; /* the thread's end */
    pthread_mutex_t pipe_lock;
    s_watch_t *watches;    /* the thread's */
    zmq_pollitem_t *items; /* 2 + cap_watches: the pipe, ZAP, the watches */
    size_t n_watches, cap_watches;
};

typedef enum { S_CMD_WATCH, S_CMD_STOP } s_cmd_op_t;

typedef struct {
    s_cmd_op_t op;
    void *pair;        /* S_CMD_WATCH: handed over to the thread */
    const char *actor; /* S_CMD_WATCH: copied */
} s_cmd_t;

bool rt_z85_key_valid(const char *key)
{
    uint8_t bytes[S_CURVE_KEY_BYTES];
    return key && strlen(key) == RT_Z85_KEY_LEN && zmq_z85_decode(bytes, key);
}

/* ---- The thread: ZAP -------------------------------------------------------- */

static bool s_frame_is(zmq_msg_t *frame, const char *text)
{
    size_t len = strlen(text);
    return zmq_msg_size(frame) == len && memcmp(zmq_msg_data(frame), text, len) == 0;
}

static void s_send_text(void *socket, const char *text, int flags)
{
    rt_tsan_sent();
    zmq_send(socket, text, strlen(text), flags);
}

/* Answers one ZAP request: an admitted key gets 200 and itself as the
 * User-Id; anything else 400, counted and logged. */
static void s_zap(rt_t *rt)
{
    rt_auth_t *auth = rt->auth;
    zmq_msg_t f[S_ZAP_FRAMES + 1]; /* the last: any frame beyond, dropped */
    size_t n = 0;
    for (bool more = true; more;) {
        zmq_msg_t *frame = &f[n];
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, auth->zap, ZMQ_DONTWAIT) >= 0) {
            rt_tsan_received();
        } else {
            zmq_msg_close(frame);
            if (!n)
                return; /* nothing there after all */
            break;
        }
        more = zmq_msg_more(frame);
        if (n < S_ZAP_FRAMES)
            n++;
        else
            zmq_msg_close(frame);
    }

    char key[RT_Z85_KEY_LEN + 1] = "";
    bool curve = n == S_ZAP_FRAMES && s_frame_is(&f[0], "1.0") && s_frame_is(&f[5], "CURVE") &&
                 zmq_msg_size(&f[6]) == S_CURVE_KEY_BYTES;
    if (curve)
        zmq_z85_encode(key, zmq_msg_data(&f[6]), S_CURVE_KEY_BYTES);
    pthread_mutex_lock(&rt->lock);
    bool admitted = curve && rt_map_get(auth->peers, key);
    pthread_mutex_unlock(&rt->lock);
    if (!admitted) {
        rt_count(&auth->denied);
        if (curve)
            rt_log(rt, NULL, RT_LOG_WARN, "refused CURVE key %s from %.*s: not admitted", key,
                   (int)zmq_msg_size(&f[3]), (const char *)zmq_msg_data(&f[3]));
        else
            rt_log(rt, NULL, RT_LOG_WARN, "refused a ZAP request that is not for a CURVE key");
    }

    s_send_text(auth->zap, "1.0", ZMQ_SNDMORE);
    zmq_send(auth->zap, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0,
             ZMQ_SNDMORE); /* the request id */
    s_send_text(auth->zap, admitted ? "200" : "400", ZMQ_SNDMORE);
    s_send_text(auth->zap, admitted ? "OK" : "not admitted", ZMQ_SNDMORE);
    s_send_text(auth->zap, admitted ? key : "", ZMQ_SNDMORE);
    s_send_text(auth->zap, "", 0); /* no metadata */
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* ---- The thread: monitors ---------------------------------------------------- */

static void s_protocol_error(char *buf, size_t size, uint32_t code)
{
    const char *what = code == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                           ? "it does not speak CURVE"
                       : code == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
                           ? "its cryptography failed, a wrong server key?"
                           : "a protocol error";
    snprintf(buf, size, "%s (ZMTP error %#x)", what, code);
}

/* Refused clients retry every 100 ms or so: the log takes the first few
 * failures, then only those whose count is a power of two. */
static void s_failed(rt_t *rt, s_watch_t *w, const char *where, const char *why)
{
    rt_count(&rt->auth->failed);
    uint64_t n = atomic_load_explicit(&rt->auth->failed, memory_order_relaxed);
    if (n <= 8 || !(n & (n - 1)))
        rt_log(rt, NULL, RT_LOG_WARN,
               "%s: a tcp:// peer failed the CURVE handshake at %s: %s (%llu so far)",
               w->actor, where, why, (unsigned long long)n);
}

/* Whether fd was open, now forgotten. */
static bool s_forget(s_watch_t *w, int fd)
{
    for (size_t i = 0; i < w->n_open; i++)
        if (w->open[i] == fd) {
            memmove(&w->open[i], &w->open[i + 1], (w->n_open - i - 1) * sizeof *w->open);
            w->n_open--;
            return true;
        }
    return false;
}

/*
 * Events carry a descriptor only on accept and disconnect, and libzmq
 * drops some peers without any handshake event (bytes that are not ZMTP 3,
 * say): those are the connections that close while still open here. A
 * failure event and its connection's disconnect come from one call on the
 * context's one I/O thread, so nothing comes between them; a success or a
 * ZAP refusal does not say which connection it ended, and ends the oldest.
 */
static void s_event(rt_t *rt, s_watch_t *w, uint16_t event, uint32_t value, const char *where)
{
    char why[128];
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        if (w->n_open == w->cap_open) {
            size_t cap = w->cap_open ? w->cap_open * 2 : 8;
            int *grown = realloc(w->open, cap * sizeof *grown);
            if (!grown)
                return; /* its end then goes uncounted */
            w->open = grown;
            w->cap_open = cap;
        }
        w->open[w->n_open++] = (int)value;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: /* counted by s_zap() */
        if (w->n_open)
            s_forget(w, w->open[0]);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        s_failed(rt, w, where, strerror((int)value));
        w->failed = true;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        s_protocol_error(why, sizeof why, value);
        s_failed(rt, w, where, why);
        w->failed = true;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (s_forget(w, (int)value) && !w->failed)
            s_failed(rt, w, where, "it closed before its handshake ended (not ZeroMQ 3?)");
        w->failed = false;
        break;
    case ZMQ_EVENT_MONITOR_STOPPED:
        w->stopped = true;
        break;
    }
}

/* Handles the events waiting on a monitor: two frames each. */
static void s_monitor(rt_t *rt, s_watch_t *w)
{
    for (;;) {
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, w->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            return;
        }
        rt_tsan_received();
        zmq_msg_init(&addr);
        uint16_t event;
        uint32_t value;
        char where[256];
        if (zmq_msg_more(&head) && zmq_msg_recv(&addr, w->pair, ZMQ_DONTWAIT) >= 0 &&
            zmq_msg_size(&head) == sizeof event + sizeof value) {
            memcpy(&event, zmq_msg_data(&head), sizeof event);
            memcpy(&value, (uint8_t *)zmq_msg_data(&head) + sizeof event, sizeof value);
            snprintf(where, sizeof where, "%.*s", (int)zmq_msg_size(&addr),
                     (const char *)zmq_msg_data(&addr));
            s_event(rt, w, event, value, where);
        }
        zmq_msg_close(&addr);
        zmq_msg_close(&head);
    }
}

static void s_watch_close(s_watch_t *w)
{
    zmq_close(w->pair);
    free(w->actor);
    free(w->open);
}

/* ---- The thread ------------------------------------------------------------------ */

static int s_watch_add(rt_auth_t *auth, void *pair, const char *actor)
{
    if (auth->n_watches == auth->cap_watches) {
        size_t cap = auth->cap_watches ? auth->cap_watches * 2 : 8;
        s_watch_t *watches = realloc(auth->watches, cap * sizeof *watches);
        if (!watches)
            return -ENOMEM;
        auth->watches = watches;
        zmq_pollitem_t *items = realloc(auth->items, (2 + cap) * sizeof *items);
        if (!items)
            return -ENOMEM;
        auth->items = items;
        auth->cap_watches = cap;
    }
    char *name = strdup(actor);
    if (!name)
        return -ENOMEM;
    auth->watches[auth->n_watches++] = (s_watch_t){.pair = pair, .actor = name};
    return 0;
}

/* Runs the commands on the pipe. Returns true once told to stop. */
static bool s_commands(rt_auth_t *auth)
{
    bool stop = false;
    s_cmd_t cmd;
    while (zmq_recv(auth->pipe_inner, &cmd, sizeof cmd, ZMQ_DONTWAIT) == sizeof cmd) {
        rt_tsan_received();
        int rc = 0;
        if (cmd.op == S_CMD_WATCH)
            rc = s_watch_add(auth, cmd.pair, cmd.actor);
        else
            stop = true;
        rt_tsan_sent();
        zmq_send(auth->pipe_inner, &rc, sizeof rc, 0);
    }
    return stop;
}

static void *s_main(void *arg)
{
    rt_t *rt = arg;
    rt_auth_t *auth = rt->auth;
    /* Once stopping, until the monitors of the mailboxes (closed by then,
     * reaped by ZeroMQ in its own time) have stopped: a monitor whose peer
     * is gone blocks the thread that sends it an event. */
    int64_t deadline = 0;
    while (!deadline || (auth->n_watches && rt_now_us() < deadline)) {
        size_t n = auth->n_watches;
        zmq_pollitem_t *items = auth->items;
        items[0] = (zmq_pollitem_t){.socket = auth->pipe_inner, .events = ZMQ_POLLIN};
        items[1] = (zmq_pollitem_t){.socket = auth->zap, .events = ZMQ_POLLIN};
        for (size_t i = 0; i < n; i++)
            items[2 + i] = (zmq_pollitem_t){.socket = auth->watches[i].pair, .events = ZMQ_POLLIN};
        long timeout = deadline ? (long)((deadline - rt_now_us()) / 1000 + 1) : -1;
        if (zmq_poll(items, (int)(2 + n), timeout) < 0) {
            if (errno == EINTR)
                continue;
            rt_log(rt, NULL, RT_LOG_ERROR, "the CURVE thread cannot poll: %s",
                   zmq_strerror(errno));
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (items[2 + i].revents & ZMQ_POLLIN)
                s_monitor(rt, &auth->watches[i]);
        if (items[1].revents & ZMQ_POLLIN)
            s_zap(rt);
        if ((items[0].revents & ZMQ_POLLIN) && s_commands(auth) && !deadline)
            deadline = rt_now_us() + S_STOP_WAIT_US;
        for (size_t i = 0; i < auth->n_watches;)
            if (auth->watches[i].stopped) {
                s_watch_close(&auth->watches[i]);
                auth->watches[i] = auth->watches[--auth->n_watches];
            } else {
                i++;
            }
    }
    if (auth->n_watches)
        rt_log(rt, NULL, RT_LOG_WARN, "%zu CURVE mailbox monitors did not stop in time",
               auth->n_watches);
    while (auth->n_watches)
        s_watch_close(&auth->watches[--auth->n_watches]);
    zmq_close(auth->zap);
    zmq_close(auth->pipe_inner);
    return NULL;
}

/* Sends a command to the thread and waits for its answer. */
static int s_command(rt_auth_t *auth, s_cmd_op_t op, void *pair, const char *actor)
{
    s_cmd_t cmd = {.op = op, .pair = pair, .actor = actor};
    int rc = -EIO, value, n;
    pthread_mutex_lock(&auth->pipe_lock);
    rt_tsan_sent();
    if (zmq_send(auth->pipe, &cmd, sizeof cmd, 0) == sizeof cmd) {
        /* An executor's thread gets kick signals. */
        while ((n = zmq_recv(auth->pipe, &value, sizeof value, 0)) < 0 && errno == EINTR)
            ;
        if (n == sizeof value) {
            rt_tsan_received();
            rc = value;
        }
    }
    pthread_mutex_unlock(&auth->pipe_lock);
    return rc;
}

/* ---- Start and stop ------------------------------------------------------------ */

static void *s_socket(rt_t *rt, int type)
{
    void *s = zmq_socket(rt->zctx, type);
    int zero = 0;
    if (s)
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

static void s_free_value(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

static void s_free(rt_auth_t *auth)
{
    rt_map_each(auth->peers, s_free_value, NULL);
    rt_map_destroy(&auth->peers);
    free(auth->watches);
    free(auth->items);
    explicit_bzero(auth->secret_key, sizeof auth->secret_key);
    free(auth);
}

int rt_auth_start(rt_t *rt, const char *public_key, const char *secret_key)
{
    if (!public_key && !secret_key)
        return 0;
    if (!rt_z85_key_valid(public_key) || !rt_z85_key_valid(secret_key))
        return -EINVAL;
    char derived[RT_Z85_KEY_LEN + 1];
    if (zmq_curve_public(derived, secret_key))
        return -errno; /* ENOTSUP: libzmq without CURVE */
    if (strcmp(derived, public_key))
        return -EINVAL; /* not the pair's public key */

    int rc = -ENOMEM;
    rt_auth_t *auth = calloc(1, sizeof *auth);
    if (!auth)
        return -ENOMEM;
    strcpy(auth->public_key, public_key);
    strcpy(auth->secret_key, secret_key);
    auth->peers = rt_map_new();
    auth->items = malloc(2 * sizeof *auth->items);
    if (!auth->peers || !auth->items)
        goto fail_free;
    rc = -pthread_mutex_init(&auth->pipe_lock, NULL);
    if (rc)
        goto fail_free;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://rt-auth-%p", (void *)auth);
    auth->zap = s_socket(rt, ZMQ_REP);
    auth->pipe = s_socket(rt, ZMQ_PAIR);
    auth->pipe_inner = s_socket(rt, ZMQ_PAIR);
    /* Bound before any mailbox exists, so that no handshake misses it. */
    if (!auth->zap || !auth->pipe || !auth->pipe_inner || zmq_bind(auth->zap, S_ZAP_ENDPOINT) ||
        zmq_bind(auth->pipe_inner, endpoint) || zmq_connect(auth->pipe, endpoint)) {
        rc = -errno;
        goto fail_sockets;
    }
    rt->auth = auth;
    rc = -pthread_create(&auth->thread, NULL, s_main, rt);
    if (rc)
        goto fail_thread;
    return 0;

fail_thread:
    rt->auth = NULL;
fail_sockets:
    if (auth->pipe_inner)
        zmq_close(auth->pipe_inner);
    if (auth->pipe)
        zmq_close(auth->pipe);
    if (auth->zap)
        zmq_close(auth->zap);
    pthread_mutex_destroy(&auth->pipe_lock);
fail_free:
    s_free(auth);
    return rc;
}

void rt_auth_stop(rt_t *rt)
{
    rt_auth_t *auth = rt->auth;
    if (!auth)
        return;
    s_command(auth, S_CMD_STOP, NULL, NULL);
    pthread_join(auth->thread, NULL);
    zmq_close(auth->pipe);
    pthread_mutex_destroy(&auth->pipe_lock);
    s_free(auth);
    rt->auth = NULL;
}

/* ---- Used by the rest of the runtime ---------------------------------------- */

int rt_auth_serve(rt_actor_t *actor)
{
    rt_t *rt = actor->rt;
    rt_auth_t *auth = rt->auth;
    void *mailbox = actor->mailbox;
    int one = 1;
    if (zmq_setsockopt(mailbox, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(mailbox, ZMQ_CURVE_SECRETKEY, auth->secret_key, RT_Z85_KEY_LEN) ||
        zmq_setsockopt(mailbox, ZMQ_ZAP_DOMAIN, S_ZAP_DOMAIN, strlen(S_ZAP_DOMAIN)))
        return -errno;

    /* The thread's end connects first (inproc allows it): a monitor
     * without a peer would block ZeroMQ's I/O thread on its first event.
     * Its queue is unbounded for the same reason. */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://rt-monitor-%llu",
             (unsigned long long)actor->serial);
    void *pair = s_socket(rt, ZMQ_PAIR);
    if (!pair)
        return -errno;
    int zero = 0, rc = 0;
    if (zmq_setsockopt(pair, ZMQ_RCVHWM, &zero, sizeof zero) || zmq_connect(pair, endpoint) ||
        zmq_socket_monitor(mailbox, endpoint, S_MONITOR_EVENTS)) {
        rc = -errno;
        goto fail_pair;
    }
    rc = s_command(auth, S_CMD_WATCH, pair, actor->name);
    if (rc)
        goto fail_monitor;
    actor->curve = true;
    return 0;

fail_monitor:
    zmq_socket_monitor(mailbox, NULL, 0); /* its last event goes to pair, still there */
fail_pair:
    zmq_close(pair);
    return rc;
}

int rt_auth_client(rt_t *rt, void *socket, const char *server_key)
{
    rt_auth_t *auth = rt->auth;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, RT_Z85_KEY_LEN) ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, auth->public_key, RT_Z85_KEY_LEN) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, auth->secret_key, RT_Z85_KEY_LEN))
        return -errno;
    return 0;
}

int rt_auth_permits(rt_t *rt, const char *peer, const char *receiver)
{
    pthread_mutex_lock(&rt->lock);
    const char *scope = rt_map_get(rt->auth->peers, peer);
    int rc = !scope ? -ENOENT : strncmp(receiver, scope, strlen(scope)) ? -EACCES : 0;
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

void rt_auth_add_stats(rt_t *rt, rt_stats_t *out)
{
    out->auth_denied += atomic_load_explicit(&rt->auth->denied, memory_order_relaxed);
    out->auth_failed += atomic_load_explicit(&rt->auth->failed, memory_order_relaxed);
}

int rt_curve_public_key(rt_t *rt, char *buf, size_t size)
{
    const char *key = rt->auth ? rt->auth->public_key : rt->replay_key;
    if (!key)
        return -ENOENT;
    if (size < RT_Z85_KEY_LEN + 1)
        return -ENOSPC;
    memcpy(buf, key, RT_Z85_KEY_LEN + 1);
    return 0;
}

int rt_peer_allow(rt_t *rt, const char *public_key_z85, const char *scope)
{
    rt_auth_t *auth = rt ? rt->auth : NULL;
    if (!auth || !rt_z85_key_valid(public_key_z85) || !scope)
        return -EINVAL;
    char *copy = strdup(scope);
    if (!copy)
        return -ENOMEM;
    pthread_mutex_lock(&rt->lock);
    char *old = rt_map_get(auth->peers, public_key_z85);
    int rc = rt_map_put(auth->peers, public_key_z85, copy);
    pthread_mutex_unlock(&rt->lock);
    if (rc) {
        free(copy);
        return rc;
    }
    free(old); /* read only under the lock */
    return 0;
}
