/*
 * Links (rt_send() to another process), seen from the receiver: a raw
 * ZeroMQ peer plays the sending runtime and writes link frames by hand, so
 * that duplicates, gaps and a receiver's restart can be made exactly.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_ID 0x1122334455667788ull

static char s_dir[64], s_record[128], s_endpoint[128];

static void s_setup(void)
{
    strcpy(s_dir, "/tmp/vmm-link-test-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_record, sizeof s_record, "%s/echo.record", s_dir);
    snprintf(s_endpoint, sizeof s_endpoint, "ipc://%s/echo", s_dir);
}

static void s_teardown(void)
{
    unlink(s_record);
    char path[160];
    snprintf(path, sizeof path, "%s/echo", s_dir);
    unlink(path);
    rmdir(s_dir);
}

TestSuite(link, .init = s_setup, .fini = s_teardown);

typedef struct {
    rt_t *rt;
    rt_client_t *client;
    void *zctx, *peer;
} s_receiver_t;

/* An echo bound to s_endpoint, with the delivery record or without, and
 * a raw peer connected to it. */
static void s_start(s_receiver_t *r, const char *record)
{
    r->rt = rt_new(NULL);
    cr_assert_not_null(r->rt);
    rt_executor_t *ex = rt_executor_new(r->rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .endpoint = s_endpoint,
                            .delivery_record = record};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    r->client = rt_client_new(r->rt, "test");
    r->zctx = zmq_ctx_new();
    r->peer = zmq_socket(r->zctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(r->peer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(r->peer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_connect(r->peer, s_endpoint), 0);
}

static void s_stop(s_receiver_t *r)
{
    zmq_close(r->peer);
    zmq_ctx_term(r->zctx);
    rt_destroy(&r->rt);
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Sends frame seq of link S_ID: a one-way Ping from "peer" to "echo". */
static void s_send(s_receiver_t *r, uint64_t seq)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "x", 1);
    env.sender = "peer";
    env.receiver = "echo";
    uint8_t buf[256];
    buf[0] = 0x01; /* a link frame */
    s_put64(buf + 1, S_ID);
    s_put64(buf + 9, seq);
    size_t len = 17 + vmm__envelope__pack(&env, buf + 17);
    cr_assert_eq(zmq_send(r->peer, buf, len, 0), (int)len);
}

/* The echo's count of one-way Pings, once the frames sent before were
 * handled (a request from the client, on another connection, does not
 * order them: so it waits until the count holds still at want). */
static void s_expect_events(s_receiver_t *r, long long want)
{
    long long got = -1;
    for (int i = 0; i < 200 && got != want; i++) {
        got = echo_inspect_number(rt_client_actor(r->client), "echo", "events");
        if (got != want)
            usleep(5000);
    }
    cr_expect_eq(got, want, "events %lld, want %lld", got, want);
}

static uint64_t s_duplicates(s_receiver_t *r)
{
    rt_stats_t s;
    rt_stats(r->rt, &s);
    return s.rx_duplicate;
}

Test(link, each_frame_is_taken_once_in_order_and_acknowledged)
{
    s_receiver_t r;
    s_start(&r, NULL);
    s_send(&r, 1);
    s_send(&r, 2);
    s_send(&r, 2); /* again: dropped */
    s_send(&r, 4); /* after a gap: dropped, the sender fills it */
    s_send(&r, 3);
    s_expect_events(&r, 3);
    cr_expect_eq(s_duplicates(&r), 2);
    /* The acknowledgement comes within a few ms: the last frame taken. */
    uint8_t ack[64];
    int n = zmq_recv(r.peer, ack, sizeof ack, 0);
    cr_assert_eq(n, 17, "no acknowledgement: %s", zmq_strerror(zmq_errno()));
    cr_expect_eq(ack[0], 0x02);
    uint8_t want[8];
    s_put64(want, S_ID);
    cr_expect_eq(memcmp(ack + 1, want, 8), 0, "the link's id");
    cr_expect_eq(ack[9], 3, "the last frame taken");
    s_send(&r, 4);
    s_expect_events(&r, 4);
    s_stop(&r);
}

/* A receiver restarted with its record neither takes again what its
 * predecessor took nor skips what it did not. */
Test(link, a_restarted_receiver_goes_on_from_its_record)
{
    s_receiver_t r;
    s_start(&r, s_record);
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_send(&r, seq);
    s_expect_events(&r, 3);
    s_stop(&r);

    s_start(&r, s_record);
    for (uint64_t seq = 2; seq <= 5; seq++) /* what an unacknowledging sender resends */
        s_send(&r, seq);
    s_expect_events(&r, 2); /* 4 and 5 */
    cr_expect_eq(s_duplicates(&r), 2);
    s_stop(&r);

    /* Without the record a successor cannot tell: it takes what comes. */
    s_start(&r, NULL);
    s_send(&r, 3);
    s_expect_events(&r, 1);
    s_stop(&r);
}

Test(link, a_file_that_is_no_record_is_refused)
{
    int fd = open(s_record, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not a record\n", 13), 13);
    close(fd);
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .delivery_record = s_record};
    cr_expect_eq(rt_actor_start(ex, &echo), -EINVAL);
    rt_destroy(&rt);
}
