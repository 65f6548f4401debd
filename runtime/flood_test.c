/*
 * A peer in another process flooding a mailbox bound for it: its queue
 * fills to the mailbox's high-water mark and then it waits, so that what
 * it makes this process hold stays bounded, and the actor takes every
 * frame that was let in once it can. The peer is a forked child with a raw
 * ZeroMQ socket over ipc://, holding at most one frame of its own; this
 * process's RSS is watched while it floods.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
static size_t s_pack(uint8_t *buf, uint64_t request_id, size_t payload_len)
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
    return vmm__envelope__pack(&env, buf);
}

/* The child: once the socket is there, a request that keeps the actor
 * busy, then the flood; writes how many frames were let in to `report`,
 * then holds its socket open (what it let in may still be on its way)
 * until `done` closes. */
static void s_flood(const char *path, const char *endpoint, int report, int done)
{
    for (int i = 0; i < 1000 && access(path, F_OK); i++)
        usleep(10 * 1000);
    void *zctx = zmq_ctx_new(), *peer = zmq_socket(zctx, ZMQ_DEALER);
    int one = 1, zero = 0;
    zmq_setsockopt(peer, ZMQ_SNDHWM, &one, sizeof one);
    zmq_setsockopt(peer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(peer, endpoint))
        _exit(1);
    uint8_t *buf = malloc(S_PAYLOAD + 256);
    size_t len = s_pack(buf, 1, 4);
    if (zmq_send(peer, buf, len, 0) != (int)len)
        _exit(1);
    usleep(100 * 1000);
    len = s_pack(buf, 0, S_PAYLOAD);
    int let_in = 0, refused = 0;
    for (int i = 0; i < S_ATTEMPTS && refused < 200; i++) {
        if (zmq_send(peer, buf, len, ZMQ_DONTWAIT) == (int)len) {
            let_in++;
            refused = 0;
        } else {
            refused++;
            usleep(5 * 1000); /* the queue is full: ZeroMQ moves what it can */
        }
    }
    if (write(report, &let_in, sizeof let_in) != sizeof let_in)
        _exit(1);
    char byte;
    while (read(done, &byte, 1) > 0)
        ;
    _exit(0);
}

Test(flood, a_flooding_peer_is_held_at_the_high_water_mark_and_loses_nothing_let_in)
{
    char dir[] = "/tmp/flood-XXXXXX", path[64], endpoint[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/echo", dir);
    snprintf(endpoint, sizeof endpoint, "ipc://%s", path);
    int report[2], done[2];
    cr_assert_eq(pipe(report), 0);
    cr_assert_eq(pipe(done), 0);
    fflush(NULL);
    pid_t child = fork(); /* before any thread of the runtime */
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(report[0]);
        close(done[1]);
        s_flood(path, endpoint, report[1], done[0]);
    }
    close(report[1]);
    close(done[0]);

    echo_config_t slow = {.delay_ms = S_BUSY_MS};
    rt_t *rt = rt_new(NULL);
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .arg = &slow, .endpoint = endpoint};
    cr_assert_eq(rt_actor_start(rt_executor_new(rt, "ex0"), &echo), 0);
    long before = s_rss_kib(), most = before;
    int let_in = -1;
    struct pollfd pfd = {.fd = report[0], .events = POLLIN};
    for (int i = 0; i < 6000 && let_in < 0; i++) {
        if (poll(&pfd, 1, 5) == 1 && read(report[0], &let_in, sizeof let_in) != sizeof let_in)
            break;
        long now = s_rss_kib();
        most = now > most ? now : most;
    }
    cr_assert_geq(let_in, 0, "the flooding child reported nothing");
    long grown_mib = (most - before) / 1024;
    printf("flood: let in %d frames of %d KiB, the process grew by %ld MiB\n", let_in,
           S_PAYLOAD / 1024, grown_mib);
    cr_expect_lt(let_in, 100, "let in %d frames of %d KiB before the peer had to wait", let_in,
                 S_PAYLOAD / 1024);
    cr_expect_lt(grown_mib, 200, "the process grew by %ld MiB under the flood", grown_mib);

    /* Once free, the actor takes every frame it let in. */
    rt_client_t *c = rt_client_new(rt, "test");
    long long events = 0;
    for (int i = 0; i < 1000 && events < let_in; i++) {
        usleep(10 * 1000);
        events = echo_inspect_number(rt_client_actor(c), "echo", "events");
    }
    cr_expect_eq(events, let_in, "every frame let in is taken: %lld of %d", events, let_in);
    close(done[1]);
    int status;
    waitpid(child, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status 0x%x", status);
    close(report[0]);
    rt_destroy(&rt);
    rmdir(dir);
}
