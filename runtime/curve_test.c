/*
 * ZeroMQ CURVE on tcp://: a server runtime with a key pair hosts echo
 * actors on tcp://127.0.0.1:*, and client runtimes in the same process
 * (each with its own ZeroMQ context, so with its own ZAP handler when it
 * has keys) reach it with a listed key, an unlisted one or none; raw
 * ZeroMQ sockets and plain TCP bytes try the rest. Whether anything
 * reached an actor is asked of it over inproc:// by a client of the
 * server's runtime.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_REFUSED_MS 300 /* a call that must get no answer */
#define S_ANSWER_MS 5000 /* a call that must get one: returns when it does */
#define S_COUNT_MS 5000  /* for a counter the server's ZAP thread sets */

typedef struct {
    char pub[41], sec[41];
} s_keys_t;

static s_keys_t s_keys(void)
{
    s_keys_t k;
    cr_assert_eq(zmq_curve_keypair(k.pub, k.sec), 0, "zmq_curve_keypair: %s",
                 zmq_strerror(errno));
    return k;
}

/* A runtime with the key pair k, or a plain one for NULL. */
static rt_t *s_rt(const s_keys_t *k)
{
    rt_config_t cfg = {0};
    if (k) {
        cfg.curve_public_key = k->pub;
        cfg.curve_secret_key = k->sec;
    }
    rt_t *rt = rt_new(&cfg);
    cr_assert_not_null(rt);
    return rt;
}

/* ---- The server ------------------------------------------------------------ */

typedef struct {
    s_keys_t keys;
    rt_t *rt;
    rt_executor_t *ex;
    rt_client_t *probe; /* asks the actors what reached them, over inproc:// */
} s_server_t;

static void s_server_start(s_server_t *s)
{
    s->keys = s_keys();
    s->rt = s_rt(&s->keys);
    s->ex = rt_executor_new(s->rt, "server");
    cr_assert_not_null(s->ex);
    s->probe = rt_client_new(s->rt, "server/probe");
    cr_assert_not_null(s->probe);
}

/* Starts an echo named name on tcp://127.0.0.1:* and returns where. */
static void s_serve(s_server_t *s, const char *name, char *endpoint, size_t size)
{
    rt_actor_spec_t spec = {.name = name, .ops = &echo_ops, .endpoint = "tcp://127.0.0.1:*"};
    cr_assert_eq(rt_actor_start(s->ex, &spec), 0, "start %s", name);
    cr_assert_eq(rt_endpoint_of(s->rt, name, endpoint, size), 0);
}

static long long s_pings(s_server_t *s, const char *name)
{
    return echo_inspect_number(rt_client_actor(s->probe), name, "pings");
}

static rt_stats_t s_stats(rt_t *rt)
{
    rt_stats_t stats;
    rt_stats(rt, &stats);
    return stats;
}

/* Waits until the counter at offset reaches want; returns its value. */
static uint64_t s_wait_count(rt_t *rt, size_t offset, uint64_t want)
{
    struct timespec ms = {0, 1000000};
    for (int waited_ms = 0;; waited_ms++) {
        rt_stats_t stats = s_stats(rt);
        uint64_t value = *(uint64_t *)((char *)&stats + offset);
        if (value >= want || waited_ms >= S_COUNT_MS)
            return value;
        nanosleep(&ms, NULL);
    }
}

#define S_WAIT_COUNT(rt, field, want) s_wait_count(rt, offsetof(rt_stats_t, field), want)

/* ---- Clients ---------------------------------------------------------------- */

/* A client runtime (keys NULL: a plain one) whose directory has name at
 * endpoint, with the server key server_key (NULL: none). */
static rt_client_t *s_client(rt_t **rt, const s_keys_t *keys, const char *name,
                             const char *endpoint, const char *server_key)
{
    *rt = s_rt(keys);
    cr_assert_eq(rt_directory_set_key(*rt, name, endpoint, server_key), 0, "directory %s", name);
    rt_client_t *c = rt_client_new(*rt, "vm0/client");
    cr_assert_not_null(c);
    return c;
}

static int s_call(rt_client_t *c, const char *to, int timeout_ms, rt_msg_t *reply)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "curve", 5);
    return rt_call(rt_client_actor(c), to, &env, reply, timeout_ms);
}

static void s_expect_pong(rt_client_t *c, const char *to)
{
    rt_msg_t reply;
    int rc = s_call(c, to, S_ANSWER_MS, &reply);
    cr_assert_eq(rc, 0, "call %s: %s", to, strerror(-rc));
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG, "%s: %s", to,
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "not a Pong");
    rt_msg_release(&reply);
}

static void s_expect_no_answer(rt_client_t *c, const char *to)
{
    rt_msg_t reply;
    cr_expect_eq(s_call(c, to, S_REFUSED_MS, &reply), -ETIMEDOUT, "a call to %s", to);
}

static void s_expect_denied(rt_client_t *c, const char *to)
{
    rt_msg_t reply;
    int rc = s_call(c, to, S_ANSWER_MS, &reply);
    cr_assert_eq(rc, 0, "call %s: %s", to, strerror(-rc));
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR, "%s answered", to);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__PERMISSION_DENIED, "%s: %s", to,
                 reply.env->error->text);
    rt_msg_release(&reply);
}

/* ---- Keys admitted, and not ------------------------------------------------- */

#define S_BURST 100

/* Sends S_BURST events to vm0/echo, which leave coalesced in batch frames
 * as an actor's events do, then asks it on the same route how many it
 * got, and answers with that. */
static int s_burst_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    for (int i = 0; i < S_BURST; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, "event", 5);
        int rc = rt_send(self, "vm0/echo", &env);
        if (rc)
            return rc;
    }
    char text[32];
    snprintf(text, sizeof text, "%lld", echo_inspect_number(self, "vm0/echo", "events"));
    return echo_reply_text(self, msg, text);
}

static const rt_handler_t s_burst_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_burst_on_ping}};
static const rt_actor_ops_t s_burst_ops = {
    .kind = "burst",
    .handlers = s_burst_handlers,
    .n_handlers = 1,
};

Test(curve, a_listed_key_calls_an_actor_over_tcp)
{
    s_server_t s;
    s_server_start(&s);
    char ep[256];
    s_serve(&s, "vm0/echo", ep, sizeof ep);
    s_keys_t ck = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, ""), 0);

    /* Both runtimes have keys, so both run a ZAP handler on the same
     * inproc:// name: one per ZeroMQ context. */
    rt_t *rt;
    rt_client_t *c = s_client(&rt, &ck, "vm0/echo", ep, s.keys.pub);
    for (int i = 0; i < 20; i++)
        s_expect_pong(c, "vm0/echo");
    cr_expect_eq(s_pings(&s, "vm0/echo"), 20);
    rt_stats_t cs = s_stats(rt);
    cr_expect_eq(cs.tx, 20);
    cr_expect_eq(cs.rx, 20);

    /* Batch frames carry the key too. */
    rt_executor_t *ex = rt_executor_new(rt, "vm0");
    cr_assert_not_null(ex);
    cr_assert_eq(rt_actor_start(ex, &(rt_actor_spec_t){.name = "vm0/burst", .ops = &s_burst_ops}),
                 0);
    rt_msg_t reply;
    cr_assert_eq(s_call(c, "vm0/burst", S_ANSWER_MS, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    char want[32];
    snprintf(want, sizeof want, "%d", S_BURST);
    cr_expect(reply.env->pong->payload.len == strlen(want) &&
                  memcmp(reply.env->pong->payload.data, want, strlen(want)) == 0,
              "vm0/echo got %.*s events", (int)reply.env->pong->payload.len,
              (const char *)reply.env->pong->payload.data);
    rt_msg_release(&reply);

    rt_stats_t ss = s_stats(s.rt);
    cr_expect_eq(ss.auth_denied, 0);
    cr_expect_eq(ss.auth_failed, 0);
    cr_expect_eq(ss.rx_denied, 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

Test(curve, an_unlisted_key_gets_no_answer_and_is_counted_denied)
{
    s_server_t s;
    s_server_start(&s);
    char ep[256];
    s_serve(&s, "vm0/echo", ep, sizeof ep);
    s_keys_t listed = s_keys(), unlisted = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, listed.pub, ""), 0);

    rt_t *rt;
    rt_client_t *c = s_client(&rt, &unlisted, "vm0/echo", ep, s.keys.pub);
    s_expect_no_answer(c, "vm0/echo");
    cr_expect_geq(S_WAIT_COUNT(s.rt, auth_denied, 1), 1);
    cr_expect_eq(s_stats(s.rt).auth_failed, 0, "a denial is not counted twice");
    cr_expect_eq(s_pings(&s, "vm0/echo"), 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

Test(curve, a_plain_runtime_is_refused_and_counted_failed)
{
    s_server_t s;
    s_server_start(&s);
    char ep[256];
    s_serve(&s, "vm0/echo", ep, sizeof ep);

    rt_t *rt;
    rt_client_t *c = s_client(&rt, NULL, "vm0/echo", ep, NULL);
    s_expect_no_answer(c, "vm0/echo");
    cr_expect_geq(S_WAIT_COUNT(s.rt, auth_failed, 1), 1);
    cr_expect_eq(s_stats(s.rt).auth_denied, 0);
    cr_expect_eq(s_pings(&s, "vm0/echo"), 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

Test(curve, a_wrong_server_key_is_refused_and_counted_failed)
{
    s_server_t s;
    s_server_start(&s);
    char ep[256];
    s_serve(&s, "vm0/echo", ep, sizeof ep);
    s_keys_t ck = s_keys(), other = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, ""), 0);

    rt_t *rt;
    rt_client_t *c = s_client(&rt, &ck, "vm0/echo", ep, other.pub);
    s_expect_no_answer(c, "vm0/echo");
    cr_expect_geq(S_WAIT_COUNT(s.rt, auth_failed, 1), 1);
    cr_expect_eq(s_stats(s.rt).auth_denied, 0);
    cr_expect_eq(s_pings(&s, "vm0/echo"), 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

/* ---- Peers that are not CURVE at all ---------------------------------------- */

/* Writes bytes to the endpoint's TCP port from a plain socket and waits
 * for the server to hang up. */
static void s_tcp_garbage(const char *endpoint, const void *bytes, size_t len)
{
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {.tv_sec = S_COUNT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0, "connect: %s",
                 strerror(errno));
    cr_assert_eq(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    char buf[256];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        ; /* ZeroMQ's greeting, then the end */
    cr_expect(n == 0 || errno == ECONNRESET, "the server did not hang up: %s", strerror(errno));
    close(fd);
}

/* A ZeroMQ DEALER without CURVE sends a well-formed request. */
static void s_raw_dealer(const char *endpoint)
{
    void *zctx = zmq_ctx_new();
    void *d = echo_raw_dealer(zctx, S_REFUSED_MS);
    cr_assert_not_null(d);
    cr_assert_eq(zmq_connect(d, endpoint), 0);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "raw", 3);
    env.sender = "raw";
    env.receiver = "vm0/echo";
    env.request_id = 1;
    uint8_t buf[256];
    size_t len = vmm__envelope__pack(&env, buf);
    cr_assert_eq(zmq_send(d, buf, len, 0), (int)len);
    cr_expect_lt(zmq_recv(d, buf, sizeof buf, 0), 0, "a plain ZeroMQ peer got an answer");
    zmq_close(d);
    zmq_ctx_term(zctx);
}

Test(curve, raw_zeromq_and_garbage_bytes_do_not_reach_the_actor)
{
    s_server_t s;
    s_server_start(&s);
    char ep[256];
    s_serve(&s, "vm0/echo", ep, sizeof ep);
    s_keys_t ck = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, ""), 0);

    /* Not ZMTP 3: libzmq drops it without a handshake event. */
    static const char http[] = "GET / HTTP/1.0\r\n\r\n";
    s_tcp_garbage(ep, http, sizeof http - 1);
    cr_expect_eq(S_WAIT_COUNT(s.rt, auth_failed, 1), 1);
    /* A ZMTP signature and then nonsense: a protocol error. */
    uint8_t ff[64];
    memset(ff, 0xff, sizeof ff);
    s_tcp_garbage(ep, ff, sizeof ff);
    cr_expect_eq(S_WAIT_COUNT(s.rt, auth_failed, 2), 2);
    /* Plain ZeroMQ (it may reconnect and be refused again). */
    s_raw_dealer(ep);
    cr_expect_geq(S_WAIT_COUNT(s.rt, auth_failed, 3), 3);

    /* The actor got none of it, and answers a listed key as before. */
    rt_t *rt;
    rt_client_t *c = s_client(&rt, &ck, "vm0/echo", ep, s.keys.pub);
    s_expect_pong(c, "vm0/echo");
    cr_expect_eq(s_pings(&s, "vm0/echo"), 1);
    rt_stats_t ss = s_stats(s.rt);
    cr_expect_eq(ss.auth_denied, 0);
    cr_expect_eq(ss.rx_malformed, 0, "nothing reached the mailbox");
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

/* ---- Scopes ------------------------------------------------------------------- */

Test(curve, a_peer_reaches_only_actors_in_its_scope)
{
    s_server_t s;
    s_server_start(&s);
    char ep0[256], ep1[256];
    s_serve(&s, "vm0/echo", ep0, sizeof ep0);
    s_serve(&s, "vm1/echo", ep1, sizeof ep1);
    s_keys_t ck = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, "vm0/"), 0);

    rt_t *rt;
    rt_client_t *c = s_client(&rt, &ck, "vm0/echo", ep0, s.keys.pub);
    cr_assert_eq(rt_directory_set_key(rt, "vm1/echo", ep1, s.keys.pub), 0);
    s_expect_pong(c, "vm0/echo");
    s_expect_denied(c, "vm1/echo");
    cr_expect_eq(s_stats(s.rt).rx_denied, 1, "counted before the answer left");
    /* An event to another VM is refused too, without an answer. */
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "event", 5);
    cr_assert_eq(rt_send(rt_client_actor(c), "vm1/echo", &env), 0);
    cr_expect_eq(S_WAIT_COUNT(s.rt, rx_denied, 2), 2);
    cr_expect_eq(s_pings(&s, "vm1/echo"), 0);
    cr_expect_eq(echo_inspect_number(rt_client_actor(s.probe), "vm1/echo", "events"), 0);

    /* A new scope holds for the connections already open. */
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, "vm1/"), 0);
    s_expect_pong(c, "vm1/echo");
    s_expect_denied(c, "vm0/echo");
    cr_expect_eq(s_pings(&s, "vm0/echo"), 1);
    cr_expect_eq(s_pings(&s, "vm1/echo"), 1);
    rt_stats_t ss = s_stats(s.rt);
    cr_expect_eq(ss.rx_denied, 3);
    cr_expect_eq(ss.auth_denied, 0);
    cr_expect_eq(ss.auth_failed, 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

/* ---- A proxy ------------------------------------------------------------------- */

/* Passes each request on to its receiver and answers with the reply,
 * keeping the key of the last peer it served. */
static char s_proxy_key[41];

static int s_proxy_forward(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const char *key = rt_peer_key(self);
    snprintf(s_proxy_key, sizeof s_proxy_key, "%s", key ? key : "");
    Vmm__Envelope env = *msg;
    env.request_id = 0;
    rt_msg_t reply;
    int rc = rt_call(self, msg->receiver, &env, &reply, S_ANSWER_MS);
    if (rc)
        return rc;
    Vmm__Envelope body = *reply.env;
    rc = rt_reply(self, msg, &body);
    rt_msg_release(&reply);
    return rc;
}

static const rt_actor_ops_t s_proxy_ops = {.kind = "proxy", .forward = s_proxy_forward};

Test(curve, a_proxy_passes_on_what_its_scope_lets_through)
{
    s_server_t s;
    s_server_start(&s);
    rt_executor_t *other = rt_executor_new(s.rt, "other");
    cr_assert_eq(rt_actor_start(other, &(rt_actor_spec_t){.name = "vm0/echo", .ops = &echo_ops}),
                 0);
    rt_actor_spec_t proxy = {.name = "vm0/proxy", .ops = &s_proxy_ops,
                             .endpoint = "tcp://127.0.0.1:*"};
    cr_assert_eq(rt_actor_start(s.ex, &proxy), 0);
    char ep[256];
    cr_assert_eq(rt_endpoint_of(s.rt, "vm0/proxy", ep, sizeof ep), 0);
    /* Admitted to the proxy alone: its scope is the proxy's name, and the
     * echo behind it is reached only through it. */
    s_keys_t ck = s_keys();
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, "vm0/proxy"), 0);

    rt_t *rt;
    rt_client_t *c = s_client(&rt, &ck, "vm0/echo", ep, s.keys.pub);
    s_expect_pong(c, "vm0/echo");
    cr_expect_str_eq(s_proxy_key, ck.pub, "the proxy knows who asked");
    cr_expect_eq(s_pings(&s, "vm0/echo"), 1);

    /* The same key at the echo's own mailbox is outside its scope. */
    rt_actor_spec_t open = {.name = "vm0/open", .ops = &echo_ops, .endpoint = "tcp://127.0.0.1:*"};
    cr_assert_eq(rt_actor_start(other, &open), 0);
    char ep_open[256];
    cr_assert_eq(rt_endpoint_of(s.rt, "vm0/open", ep_open, sizeof ep_open), 0);
    cr_assert_eq(rt_directory_set_key(rt, "vm0/open", ep_open, s.keys.pub), 0);
    s_expect_denied(c, "vm0/open");
    cr_expect_eq(s_stats(s.rt).rx_denied, 1);

    /* An actor that is no proxy still refuses what is not addressed to it. */
    cr_assert_eq(rt_peer_allow(s.rt, ck.pub, "vm0/"), 0);
    cr_assert_eq(rt_directory_set_key(rt, "vm0/elsewhere", ep_open, s.keys.pub), 0);
    rt_msg_t reply;
    cr_assert_eq(s_call(c, "vm0/elsewhere", S_ANSWER_MS, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__NOT_FOUND, "%s", reply.env->error->text);
    rt_msg_release(&reply);
    cr_expect_eq(s_stats(s.rt).rx_misaddressed, 1);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
}

/* ---- Configuration ------------------------------------------------------------ */

static void s_expect_rt_refused(const char *pub, const char *sec, const char *what)
{
    rt_config_t cfg = {.curve_public_key = pub, .curve_secret_key = sec};
    errno = 0;
    rt_t *rt = rt_new(&cfg);
    cr_expect_null(rt, "rt_new took %s", what);
    cr_expect_eq(errno, EINVAL, "%s: errno %d", what, errno);
    rt_destroy(&rt);
}

Test(curve, rt_new_refuses_malformed_keys)
{
    s_keys_t a = s_keys(), b = s_keys();
    s_expect_rt_refused(a.pub, NULL, "a public key alone");
    s_expect_rt_refused(NULL, a.sec, "a secret key alone");
    s_expect_rt_refused(a.pub, b.sec, "keys of two pairs");
    char bad[41];
    memcpy(bad, a.sec, sizeof bad);
    bad[39] = '\0';
    s_expect_rt_refused(a.pub, bad, "a secret key of 39 characters");
    memcpy(bad, a.sec, sizeof bad);
    bad[7] = '~'; /* not a Z85 character */
    s_expect_rt_refused(a.pub, bad, "a secret key that is not Z85");
    memcpy(bad, a.pub, sizeof bad);
    bad[0] = ' ';
    s_expect_rt_refused(bad, a.sec, "a public key that is not Z85");
    rt_t *rt = s_rt(&a);
    char key[41];
    cr_expect_eq(rt_curve_public_key(rt, key, 40), -ENOSPC);
    cr_assert_eq(rt_curve_public_key(rt, key, sizeof key), 0);
    cr_expect_str_eq(key, a.pub, "peers name it as their server key");
    rt_destroy(&rt);
    rt = s_rt(NULL);
    cr_expect_eq(rt_curve_public_key(rt, key, sizeof key), -ENOENT);
    rt_destroy(&rt);
}

Test(curve, tcp_needs_a_server_key_exactly_when_the_runtime_has_keys)
{
    s_keys_t k = s_keys(), server = s_keys();
    const char *tcp = "tcp://127.0.0.1:5555", *ipc = "ipc:///tmp/vmm-curve-test.sock";
    rt_t *rt = s_rt(&k);
    cr_expect_eq(rt_directory_set(rt, "a", tcp), -EINVAL, "secure by default");
    cr_expect_eq(rt_directory_set_key(rt, "a", tcp, NULL), -EINVAL);
    cr_expect_eq(rt_directory_set_key(rt, "a", tcp, "not a key"), -EINVAL);
    cr_expect_eq(rt_directory_set_key(rt, "a", ipc, server.pub), -EINVAL, "CURVE is tcp only");
    cr_expect_eq(rt_directory_set_key(rt, "a", tcp, server.pub), 0);
    cr_expect_eq(rt_directory_set(rt, "b", ipc), 0, "ipc:// stays plain");
    cr_expect_eq(rt_peer_allow(rt, "not a key", ""), -EINVAL);
    cr_expect_eq(rt_peer_allow(rt, server.pub, NULL), -EINVAL);
    cr_expect_eq(rt_peer_allow(rt, server.pub, "vm0/"), 0);
    rt_destroy(&rt);

    rt = s_rt(NULL);
    cr_expect_eq(rt_directory_set_key(rt, "a", tcp, server.pub), -EINVAL, "no key pair");
    cr_expect_eq(rt_directory_set(rt, "a", tcp), 0, "plain tcp:// without keys");
    cr_expect_eq(rt_peer_allow(rt, server.pub, ""), -EINVAL, "no key pair");
    rt_destroy(&rt);
}

Test(curve, ipc_stays_plain_under_keys)
{
    s_server_t s;
    s_server_start(&s);
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/vmm-curve-test-%d.sock", getpid());
    rt_actor_spec_t spec = {.name = "vm0/echo", .ops = &echo_ops, .endpoint = ep};
    cr_assert_eq(rt_actor_start(s.ex, &spec), 0);
    rt_t *rt;
    rt_client_t *c = s_client(&rt, NULL, "vm0/echo", ep, NULL);
    s_expect_pong(c, "vm0/echo");
    rt_stats_t ss = s_stats(s.rt);
    cr_expect_eq(ss.auth_failed + ss.auth_denied + ss.rx_denied, 0);
    rt_destroy(&rt);
    rt_destroy(&s.rt);
    unlink(ep + strlen("ipc://"));
}
