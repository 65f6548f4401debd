/*
 * A peer in another process flooding a mailbox bound for it: its queue
 * fills to the mailbox's high-water mark and then it waits, so that what
 * it makes this process hold stays bounded, and the actor takes every
 * frame that was let in once it can. The peer is a raw ZeroMQ socket over
 * ipc:// holding at most one frame of its own.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_PAYLOAD (900 * 1024) /* under the default 1 MiB limit */
#define S_ATTEMPTS 600         /* 527 MiB, were every one let in */
#define S_BUSY_MS 3000         /* how long the actor is busy while it floods */

static long s_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* A Ping envelope from "peer" to "echo" with payload_len bytes. */
static size_t s_pack(uint8_t *buf, size_t size, uint64_t request_id, size_t payload_len)
{
    static uint8_t payload[S_PAYLOAD];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    ping.payload = (ProtobufCBinaryData){payload_len, payload};
    env.sender = "peer";
    env.receiver = "echo";
    env.request_id = request_id;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    size_t len = vmm__envelope__get_packed_size(&env);
    cr_assert_leq(len, size);
    return vmm__envelope__pack(&env, buf);
}

Test(flood, a_flooding_peer_is_held_at_the_high_water_mark_and_loses_nothing_let_in)
{
    char dir[] = "/tmp/flood-XXXXXX", endpoint[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(endpoint, sizeof endpoint, "ipc://%s/echo", dir);
    echo_config_t slow = {.delay_ms = S_BUSY_MS};
    rt_t *rt = rt_new(NULL);
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .arg = &slow, .endpoint = endpoint};
    cr_assert_eq(rt_actor_start(rt_executor_new(rt, "ex0"), &echo), 0);

    void *zctx = zmq_ctx_new(), *peer = zmq_socket(zctx, ZMQ_DEALER);
    int one = 1, zero = 0, timeout = S_BUSY_MS + 5000;
    zmq_setsockopt(peer, ZMQ_SNDHWM, &one, sizeof one);
    zmq_setsockopt(peer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(peer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_connect(peer, endpoint), 0);
    uint8_t *buf = malloc(S_PAYLOAD + 256);
    /* A request that keeps the actor busy for S_BUSY_MS. */
    size_t len = s_pack(buf, S_PAYLOAD + 256, 1, 4);
    cr_assert_eq(zmq_send(peer, buf, len, 0), (int)len);
    usleep(100 * 1000);

    long before = s_rss_kib(), most = before;
    len = s_pack(buf, S_PAYLOAD + 256, 0, S_PAYLOAD);
    int let_in = 0, refused = 0;
    for (int i = 0; i < S_ATTEMPTS && refused < 200; i++) {
        if (zmq_send(peer, buf, len, ZMQ_DONTWAIT) == (int)len) {
            let_in++;
            refused = 0;
        } else {
            refused++;
            usleep(5 * 1000); /* the queue is full: ZeroMQ moves what it can */
        }
        long now = s_rss_kib();
        most = now > most ? now : most;
    }
    long grown_mib = (most - before) / 1024;
    printf("flood: let in %d frames of %d KiB, the process grew by %ld MiB\n", let_in,
           S_PAYLOAD / 1024, grown_mib);
    cr_expect_lt(let_in, 100, "let in %d frames of %d KiB before the peer had to wait", let_in,
                 S_PAYLOAD / 1024);
    cr_expect_lt(grown_mib, 200, "the process grew by %ld MiB under the flood", grown_mib);

    /* Once free, the actor answers the request and takes every frame. */
    char reply[64];
    zmq_recv(peer, reply, sizeof reply, 0);
    rt_client_t *c = rt_client_new(rt, "test");
    long long events = 0;
    for (int i = 0; i < 1000 && events < let_in; i++) {
        usleep(10 * 1000);
        events = echo_inspect_number(rt_client_actor(c), "echo", "events");
    }
    cr_expect_eq(events, let_in, "every frame let in is taken: %lld of %d", events, let_in);
    free(buf);
    zmq_close(peer);
    zmq_ctx_term(zctx);
    rt_destroy(&rt);
    rmdir(dir);
}
