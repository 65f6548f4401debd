/*
 * Bad input, sent by a raw ZeroMQ peer over tcp:// as another host could:
 * each kind gets an error reply where a reply is possible, is counted, and
 * leaves the actor answering.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_LIMIT 4096

static rt_t *s_rt;
static void *s_zctx, *s_peer;

/* Starts an echo actor on tcp under cfg, and connects the raw peer to it
 * (its receive queue rcvhwm messages long, 0 for ZeroMQ's default). */
static void s_start(const rt_config_t *cfg, int rcvhwm)
{
    s_rt = rt_new(cfg);
    cr_assert_not_null(s_rt);
    rt_executor_t *ex = rt_executor_new(s_rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .endpoint = "tcp://127.0.0.1:*"};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    /* Reached through echo's endpoint: it shares echo's executor. */
    rt_actor_spec_t neighbour = {.name = "neighbour", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &neighbour), 0);
    /* Not reached so: on another executor. */
    rt_actor_spec_t apart = {.name = "apart", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(rt_executor_new(s_rt, "ex1"), &apart), 0);
    char endpoint[256];
    cr_assert_eq(rt_endpoint_of(s_rt, "echo", endpoint, sizeof endpoint), 0);
    s_peer = echo_raw_dealer(s_zctx, 5000);
    cr_assert_not_null(s_peer);
    if (rcvhwm)
        zmq_setsockopt(s_peer, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    cr_assert_eq(zmq_connect(s_peer, endpoint), 0);
}

/* For a test that needs another configuration than the suite's. */
static void s_restart(const rt_config_t *cfg, int rcvhwm)
{
    zmq_close(s_peer);
    rt_destroy(&s_rt);
    s_start(cfg, rcvhwm);
}

static void s_setup(void)
{
    s_zctx = zmq_ctx_new();
    rt_config_t cfg = {.max_message_bytes = S_LIMIT};
    s_start(&cfg, 0);
}

static void s_teardown(void)
{
    zmq_close(s_peer);
    zmq_ctx_term(s_zctx);
    rt_destroy(&s_rt);
}

TestSuite(badinput, .init = s_setup, .fini = s_teardown);

/* Packs a Ping envelope from "peer" into buf; returns its length. */
static size_t s_pack(uint8_t *buf, size_t size, const char *receiver, uint64_t request_id,
                     uint64_t reply_to, size_t payload_len)
{
    static uint8_t payload[8192];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    ping.payload.data = payload;
    ping.payload.len = payload_len;
    env.sender = "peer";
    env.receiver = (char *)receiver;
    env.request_id = request_id;
    env.reply_to = reply_to;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    size_t len = vmm__envelope__get_packed_size(&env);
    cr_assert_leq(len, size);
    return vmm__envelope__pack(&env, buf);
}

static void s_send(const void *bytes, size_t len, int flags)
{
    cr_assert_eq(zmq_send(s_peer, bytes, len, flags), (int)len);
}

/* Receives the reply to the raw peer, passing over the acknowledgements
 * random frames that look like link frames earn (rt_send()'s links); the
 * caller frees it. */
static Vmm__Envelope *s_recv(void)
{
    uint8_t buf[16384];
    int n;
    do
        n = zmq_recv(s_peer, buf, sizeof buf, 0);
    while (n == 17 && buf[0] == 0x02);
    cr_assert_geq(n, 0, "no reply: %s", zmq_strerror(errno));
    Vmm__Envelope *env = vmm__envelope__unpack(NULL, (size_t)n, buf);
    cr_assert_not_null(env);
    return env;
}

static void s_expect_error(uint64_t reply_to, Vmm__ErrorCode code, const char *words)
{
    Vmm__Envelope *env = s_recv();
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(env->reply_to, reply_to);
    cr_expect_eq(env->error->code, code, "code %d: %s", env->error->code, env->error->text);
    cr_expect(strstr(env->error->text, words) != NULL, "\"%s\" lacks \"%s\"", env->error->text,
              words);
    cr_expect_str_eq(env->sender, "echo");
    vmm__envelope__free_unpacked(env, NULL);
}

/* The actor still answers a good request from the same peer. */
static void s_expect_alive(uint64_t id)
{
    uint8_t buf[256];
    s_send(buf, s_pack(buf, sizeof buf, "echo", id, 0, 3), 0);
    Vmm__Envelope *env = s_recv();
    cr_expect_eq(env->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(env->reply_to, id);
    vmm__envelope__free_unpacked(env, NULL);
}

static rt_stats_t s_stats(void)
{
    rt_stats_t stats;
    rt_stats(s_rt, &stats);
    return stats;
}

Test(badinput, garbage_bytes)
{
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    s_send(junk, sizeof junk, 0);
    s_expect_error(0, VMM__ERROR_CODE__INVALID_ARGUMENT, "does not decode");
    cr_expect_eq(s_stats().rx_malformed, 1);
    s_expect_alive(1);
}

Test(badinput, truncated_envelope_is_answered_to_its_request)
{
    uint8_t buf[256];
    size_t len = s_pack(buf, sizeof buf, "echo", 7, 0, 40);
    s_send(buf, len - 5, 0);
    s_expect_error(7, VMM__ERROR_CODE__INVALID_ARGUMENT, "does not decode");
    cr_expect_eq(s_stats().rx_malformed, 1);
    s_expect_alive(8);
}

Test(badinput, oversized)
{
    uint8_t buf[8300];
    size_t len = s_pack(buf, sizeof buf, "echo", 9, 0, S_LIMIT + 1);
    s_send(buf, len, 0);
    s_expect_error(9, VMM__ERROR_CODE__INVALID_ARGUMENT, "over the limit");
    cr_expect_eq(s_stats().rx_oversized, 1);
    s_expect_alive(10);

    /* Nor may an actor send one. */
    rt_client_t *c = rt_client_new(s_rt, "test");
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    ping.payload.data = buf;
    ping.payload.len = S_LIMIT;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    rt_msg_t reply;
    cr_expect_eq(rt_call(rt_client_actor(c), "echo", &env, &reply, 1000), -EMSGSIZE);
    cr_expect_eq(s_stats().tx_refused, 1);
}

/* Far over the limit (4 times it, and at least 256 KiB: ZMQ_MAXMSGSIZE),
 * a frame is not even taken in: ZeroMQ drops the connection once the
 * frame's length has arrived. The peer connects again and is served. */
Test(badinput, a_frame_far_over_the_limit_drops_the_connection)
{
    cr_assert_eq(zmq_socket_monitor(s_peer, "inproc://badinput-monitor", ZMQ_EVENT_DISCONNECTED),
                 0);
    void *monitor = zmq_socket(s_zctx, ZMQ_PAIR);
    int timeout = 5000;
    zmq_setsockopt(monitor, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_connect(monitor, "inproc://badinput-monitor"), 0);
    s_expect_alive(11); /* connected */
    size_t len = 300 * 1024;
    uint8_t *big = calloc(1, len);
    cr_assert_not_null(big);
    s_send(big, len, 0);
    free(big);
    uint8_t event[6];
    cr_assert_eq(zmq_recv(monitor, event, sizeof event, 0), (int)sizeof event,
                 "no disconnection: %s", zmq_strerror(errno));
    uint16_t kind;
    memcpy(&kind, event, sizeof kind);
    cr_expect_eq(kind, ZMQ_EVENT_DISCONNECTED);
    rt_stats_t stats = s_stats();
    cr_expect_eq(stats.rx_malformed + stats.rx_oversized, 0, "nothing of it reached the actor");
    s_expect_alive(12);
    zmq_socket_monitor(s_peer, NULL, 0);
    zmq_close(monitor);
}

Test(badinput, unknown_body_kind_from_a_newer_protocol)
{
    uint8_t buf[256];
    size_t len = s_pack(buf, sizeof buf, "echo", 11, 0, 0);
    /* Replace the Ping body (field 13, 2 bytes at the end) by field 99. */
    len -= 2;
    buf[len++] = (uint8_t)((99 << 3 | 2) & 0x7f) | 0x80;
    buf[len++] = (99 << 3 | 2) >> 7;
    buf[len++] = 1;
    buf[len++] = 0;
    s_send(buf, len, 0);
    s_expect_error(11, VMM__ERROR_CODE__NOT_SUPPORTED, "unknown body kind (field 99)");
    cr_expect_eq(s_stats().rx_unknown_kind, 1);
    s_expect_alive(12);
}

Test(badinput, body_kind_the_actor_does_not_handle)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    env.sender = "peer";
    env.receiver = "echo";
    env.request_id = 13;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    uint8_t buf[256];
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    s_expect_error(13, VMM__ERROR_CODE__NOT_SUPPORTED, "does not handle body kind");
    cr_expect_eq(s_stats().rx_unknown_kind, 1);

    /* As an event it is counted, and nothing is sent back. */
    env.request_id = 0;
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    s_expect_alive(14);
    cr_expect_eq(s_stats().rx_unknown_kind, 2);
}

Test(badinput, misaddressed)
{
    uint8_t buf[256];
    s_send(buf, s_pack(buf, sizeof buf, "vm1/vp/0", 15, 0, 0), 0);
    s_expect_error(15, VMM__ERROR_CODE__NOT_FOUND, "misaddressed");
    cr_expect_eq(s_stats().rx_misaddressed, 1);
    s_expect_alive(16);
}

/* A peer in another process reaches the actors of the executor whose
 * endpoint it knows, and no others; the reply comes back the same way. */
Test(badinput, an_endpoint_is_the_gateway_to_its_executors_actors)
{
    uint8_t buf[256];
    s_send(buf, s_pack(buf, sizeof buf, "neighbour", 21, 0, 2), 0);
    Vmm__Envelope *env = s_recv();
    cr_expect_eq(env->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(env->reply_to, 21);
    cr_expect_str_eq(env->sender, "neighbour");
    vmm__envelope__free_unpacked(env, NULL);
    s_send(buf, s_pack(buf, sizeof buf, "apart", 22, 0, 0), 0);
    s_expect_error(22, VMM__ERROR_CODE__NOT_FOUND, "misaddressed");
    cr_expect_eq(s_stats().rx_misaddressed, 1);
    s_expect_alive(23);
}

Test(badinput, invalid_ids_and_empty_body)
{
    uint8_t buf[256];
    s_send(buf, s_pack(buf, sizeof buf, "echo", 17, 3, 0), 0);
    s_expect_error(17, VMM__ERROR_CODE__INVALID_ARGUMENT, "both request_id and reply_to");

    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.sender = "peer";
    env.receiver = "echo";
    env.request_id = 18;
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    s_expect_error(18, VMM__ERROR_CODE__INVALID_ARGUMENT, "no body");
    cr_expect_eq(s_stats().rx_malformed, 2);

    /* A reply nobody asked for is dropped and counted. */
    s_send(buf, s_pack(buf, sizeof buf, "echo", 0, 99, 0), 0);
    s_expect_alive(19);
    cr_expect_eq(s_stats().rx_stale_reply, 1);
}

Test(badinput, extra_frames)
{
    uint8_t buf[256];
    size_t len = s_pack(buf, sizeof buf, "echo", 20, 0, 0);
    s_send(buf, len, ZMQ_SNDMORE);
    s_send("junk", 4, 0);
    s_expect_error(20, VMM__ERROR_CODE__INVALID_ARGUMENT, "extra frames");
    cr_expect_eq(s_stats().rx_malformed, 1);
    s_expect_alive(21);
}

Test(badinput, a_flood_of_garbage_loses_nothing_that_follows)
{
    const uint8_t junk[] = {0x0a, 0x7f};
    for (int i = 0; i < 1000; i++)
        s_send(junk, sizeof junk, 0);
    uint8_t buf[256];
    for (uint64_t id = 100; id < 110; id++)
        s_send(buf, s_pack(buf, sizeof buf, "echo", id, 0, 1), 0);
    int errors = 0;
    uint64_t next = 100;
    for (int i = 0; i < 1010; i++) {
        Vmm__Envelope *env = s_recv();
        if (env->body_case == VMM__ENVELOPE__BODY_ERROR)
            errors++;
        else {
            cr_expect_eq(env->body_case, VMM__ENVELOPE__BODY_PONG);
            cr_expect_eq(env->reply_to, next++, "in order");
        }
        vmm__envelope__free_unpacked(env, NULL);
    }
    cr_expect_eq(errors, 1000);
    cr_expect_eq(next, 110);
    rt_stats_t stats = s_stats();
    cr_expect_eq(stats.rx_malformed, 1000);
    cr_expect_eq(stats.errors_sent, 1000);
    cr_expect_eq(stats.rx, 10);
}

Test(badinput, batch_frames_are_checked_envelope_by_envelope)
{
    /* A batch: a good event, a garbage element, a good request, then a
     * length that runs past the end. */
    uint8_t frame[512], env[256];
    size_t n = 0;
    frame[n++] = 0x00;
    size_t len = s_pack(env, sizeof env, "echo", 0, 0, 2);
    frame[n++] = (uint8_t)len;
    memcpy(frame + n, env, len);
    n += len;
    frame[n++] = 2;
    frame[n++] = 0xff;
    frame[n++] = 0xff;
    len = s_pack(env, sizeof env, "echo", 30, 0, 2);
    frame[n++] = (uint8_t)len;
    memcpy(frame + n, env, len);
    n += len;
    frame[n++] = 100;
    frame[n++] = 0x0a;
    s_send(frame, n, 0);

    s_expect_error(0, VMM__ERROR_CODE__INVALID_ARGUMENT, "does not decode");
    Vmm__Envelope *pong = s_recv();
    cr_expect_eq(pong->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(pong->reply_to, 30);
    vmm__envelope__free_unpacked(pong, NULL);
    s_expect_error(0, VMM__ERROR_CODE__INVALID_ARGUMENT, "runs past the end");
    rt_stats_t stats = s_stats();
    cr_expect_eq(stats.rx_malformed, 2);
    cr_expect_eq(stats.rx, 2, "the event and the request");
    s_expect_alive(31);
}

/* Prepends a length-delimited field to the bytes that end at *p. */
static uint8_t *s_wrap(uint8_t *p, const uint8_t *end, uint8_t tag0, int tag1)
{
    size_t inner = (size_t)(end - p);
    uint8_t v[10];
    int k = 0;
    do {
        v[k++] = (uint8_t)((inner & 0x7f) | (inner > 0x7f ? 0x80 : 0));
        inner >>= 7;
    } while (inner);
    p -= k;
    memcpy(p, v, (size_t)k);
    if (tag1 >= 0)
        *--p = (uint8_t)tag1;
    *--p = tag0;
    return p;
}

Test(badinput, nesting_too_deep_for_the_stack)
{
    /* An InspectNode inside an InspectNode, 100000 deep: protobuf-c alone
     * would recurse until the stack overflows. */
    enum { DEPTH = 100000 };
    rt_config_t cfg = {.max_message_bytes = 1 << 20}; /* a limit the message fits under */
    s_restart(&cfg, 0);

    size_t cap = DEPTH * 6 + 64;
    uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
    for (int i = 0; i < DEPTH; i++)
        p = s_wrap(p, end, 0x1a, -1);            /* InspectNode.children */
    p = s_wrap(p, end, 0x82, 0x01);              /* Envelope.inspect_reply (16) */
    *--p = 40;                                   /* request_id 40 */
    *--p = 0x18;
    s_send(p, (size_t)(end - p), 0);
    free(buf);
    s_expect_error(40, VMM__ERROR_CODE__INVALID_ARGUMENT, "does not decode");
    cr_expect_eq(s_stats().rx_malformed, 1);
    s_expect_alive(41);
}

Test(badinput, terminate_from_another_process_is_refused)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    env.sender = "peer";
    env.receiver = "echo";
    env.request_id = 50;
    env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    env.terminate = &term;
    uint8_t buf[64];
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    s_expect_error(50, VMM__ERROR_CODE__PERMISSION_DENIED, "only from its own process");
    env.request_id = 0; /* nor as an event */
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    s_expect_alive(51);
    cr_expect_eq(s_stats().rx_denied, 2);
}

/* A peer may not sign as an actor of the process it sends to: actors trust
 * their own process's by name (a partition its VPs, say). */
Test(badinput, a_peer_signing_as_a_local_actor_is_refused)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    env.receiver = "echo";
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    uint8_t buf[64];
    const char *const local[] = {"echo", "neighbour", "apart"};
    for (int i = 0; i < 3; i++) {
        env.sender = (char *)local[i];
        env.request_id = 60 + (uint64_t)i;
        s_send(buf, vmm__envelope__pack(&env, buf), 0);
        s_expect_error(60 + i, VMM__ERROR_CODE__PERMISSION_DENIED, "an actor of this one");
    }
    env.sender = "vm0/dev/elsewhere"; /* not of this process: taken */
    env.request_id = 63;
    s_send(buf, vmm__envelope__pack(&env, buf), 0);
    Vmm__Envelope *reply = s_recv();
    cr_expect_eq(reply->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(reply->reply_to, 63);
    vmm__envelope__free_unpacked(reply, NULL);
    cr_expect_eq(s_stats().rx_denied, 3);
}

/* Random bytes and bit-flipped envelopes (plain, and in batch frames), from
 * a fixed seed; the actor must keep answering and count what it refused. */
Test(badinput, random_and_mutated_frames)
{
    uint8_t seeds[3][128];
    size_t seed_len[3];
    for (int k = 0; k < 3; k++)
        seed_len[k] = s_pack(seeds[k], sizeof seeds[k], "echo", (uint64_t)k + 1, 0,
                             (size_t)k * 3);
    unsigned seed = 12345;
    uint8_t buf[256], reply[8192];
    for (int i = 0; i < 20000; i++) {
        size_t len;
        int kind = rand_r(&seed) % 3;
        if (kind == 0) {
            len = (size_t)(rand_r(&seed) % 48);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)rand_r(&seed);
        } else {
            int k = rand_r(&seed) % 3;
            len = seed_len[k] + 2;
            memcpy(buf + 2, seeds[k], seed_len[k]);
            for (int f = 1 + rand_r(&seed) % 3; f > 0; f--)
                buf[2 + rand_r(&seed) % seed_len[k]] ^= (uint8_t)(1 << rand_r(&seed) % 8);
            buf[0] = 0; /* a batch of one, its length off by -1, 0 or +1 */
            buf[1] = (uint8_t)(seed_len[k] - 1 + (size_t)(rand_r(&seed) % 3));
        }
        const uint8_t *frame = kind == 1 ? buf + 2 : buf;
        s_send(frame, kind == 1 ? len - 2 : len, 0);
        while (zmq_recv(s_peer, reply, sizeof reply, ZMQ_DONTWAIT) >= 0)
            ;
    }
    /* Replies come back in order: once the answer to this request is in,
     * every frame before it has been handled. */
    s_send(buf, s_pack(buf, sizeof buf, "echo", 99999, 0, 1), 0);
    for (;;) {
        Vmm__Envelope *env = s_recv();
        bool last = env->reply_to == 99999 && env->body_case == VMM__ENVELOPE__BODY_PONG;
        vmm__envelope__free_unpacked(env, NULL);
        if (last)
            break;
    }
    rt_stats_t stats = s_stats();
    cr_expect_gt(stats.rx_malformed, 1000, "%llu", (unsigned long long)stats.rx_malformed);
    /* A batch frame whose length is off counts once or twice. */
    cr_expect_geq(stats.rx_denied + stats.rx_misaddressed + stats.rx_unknown_kind +
                      stats.rx_malformed + stats.rx_oversized + stats.rx_stale_reply +
                      stats.rx_duplicate + stats.rx,
                  20001, "every frame handled or counted");
    s_expect_alive(100000);
}

/* A peer that sends requests and never reads the replies fills its queue
 * (short here, and the replies big, so that the kernel's socket buffers
 * fill too); the actor drops the replies it cannot deliver, counts them,
 * and serves others. */
Test(badinput, a_peer_that_never_reads_does_not_stall_the_actor)
{
    rt_config_t cfg = {.max_message_bytes = S_LIMIT, .queue_messages = 50};
    s_restart(&cfg, 50);

    static uint8_t buf[S_LIMIT];
    size_t len = s_pack(buf, sizeof buf, "echo", 1, 0, S_LIMIT - 64);
    for (int i = 0; i < 5000; i++)
        s_send(buf, len, 0); /* one request, 5000 times: 20 MB of replies */
    rt_client_t *c = rt_client_new(s_rt, "other");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "still there", 11);
    rt_msg_t reply;
    /* All 5000 are taken before this call; before replies stopped waiting,
     * each one past the full queue held the actor for send_timeout_ms. */
    cr_assert_eq(rt_call(rt_client_actor(c), "echo", &env, &reply, 3000), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    rt_msg_release(&reply);
    cr_expect_gt(s_stats().tx_refused, 0, "undelivered replies are counted");
}
