/*
 * Links (rt_send() to another process). Seen from the receiver, a raw
 * ZeroMQ peer plays the sending runtime and writes link frames by hand, so
 * that duplicates, gaps and a receiver's restart can be made exactly; seen
 * from the sender, a raw peer plays the receiver and acknowledges by hand.
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

/* An echo bound to s_endpoint, with the delivery record or without, that
 * takes delay_ms over each request, in a runtime configured by cfg (NULL:
 * the defaults), and a raw peer connected to it. */
static void s_start_with(s_receiver_t *r, const char *record, const rt_config_t *cfg,
                         int delay_ms)
{
    r->rt = rt_new(cfg);
    cr_assert_not_null(r->rt);
    rt_executor_t *ex = rt_executor_new(r->rt, "ex0");
    echo_config_t slow = {.delay_ms = delay_ms};
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .arg = &slow,
                            .endpoint = s_endpoint, .delivery_record = record};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    r->client = rt_client_new(r->rt, "test");
    r->zctx = zmq_ctx_new();
    r->peer = echo_raw_dealer(r->zctx, 5000);
    cr_assert_not_null(r->peer);
    cr_assert_eq(zmq_connect(r->peer, s_endpoint), 0);
}

static void s_start(s_receiver_t *r, const char *record)
{
    s_start_with(r, record, NULL, 0);
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

/* Sends frame seq of link id: a one-way Ping from "peer" to "echo". */
static void s_send_on(s_receiver_t *r, uint64_t id, uint64_t seq)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "x", 1);
    env.sender = "peer";
    env.receiver = "echo";
    uint8_t buf[256];
    buf[0] = 0x01; /* a link frame */
    s_put64(buf + 1, id);
    s_put64(buf + 9, seq);
    size_t len = 17 + vmm__envelope__pack(&env, buf + 17);
    cr_assert_eq(zmq_send(r->peer, buf, len, 0), (int)len);
}

static void s_send(s_receiver_t *r, uint64_t seq)
{
    s_send_on(r, S_ID, seq);
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

/* Receives what the receiver sends the peer: an acknowledgement (marker
 * 0x02) or a gap report (0x03) of link S_ID, naming the last frame taken. */
static void s_expect_ack(s_receiver_t *r, uint8_t marker, uint8_t last)
{
    uint8_t ack[64];
    int n = zmq_recv(r->peer, ack, sizeof ack, 0);
    cr_assert_eq(n, 17, "no acknowledgement: %s", zmq_strerror(zmq_errno()));
    cr_expect_eq(ack[0], marker, "marker 0x%02x, want 0x%02x", ack[0], marker);
    uint8_t want[8];
    s_put64(want, S_ID);
    cr_expect_eq(memcmp(ack + 1, want, 8), 0, "the link's id");
    cr_expect_eq(ack[9], last, "the last frame taken: %u, want %u", ack[9], last);
}

Test(link, each_frame_is_taken_once_in_order_and_acknowledged)
{
    s_receiver_t r;
    s_start(&r, NULL);
    s_send(&r, 1);
    s_send(&r, 2);
    s_send(&r, 2); /* again: dropped */
    s_send(&r, 4); /* after a gap: dropped and reported, the sender fills it */
    s_send(&r, 5); /* the same gap: dropped, not reported again */
    s_send(&r, 3);
    s_expect_events(&r, 3);
    cr_expect_eq(s_duplicates(&r), 3);
    /* The gap report at once; the acknowledgement within a few ms, of the
     * last frame taken. */
    s_expect_ack(&r, 0x03, 2);
    s_expect_ack(&r, 0x02, 3);
    s_send(&r, 4);
    s_send(&r, 5);
    s_expect_events(&r, 5);
    s_expect_ack(&r, 0x02, 5);
    s_stop(&r);
}

/* A request of id from "peer" to "echo", without a link. */
static void s_request(s_receiver_t *r, uint64_t id)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "x", 1);
    env.sender = "peer";
    env.receiver = "echo";
    env.request_id = id;
    uint8_t buf[256];
    size_t len = vmm__envelope__pack(&env, buf);
    cr_assert_eq(zmq_send(r->peer, buf, len, 0), (int)len);
}

/* A receiver whose turn goes on with long work (here requests of 20 ms
 * each, all queued at once) acknowledges a frame as soon as it is due,
 * not when the turn ends: a sender waiting a second for it would send it
 * again. What the peer gets, in the order sent: each reply, and the
 * acknowledgement of frames 1 and 2 right after the first request's. */
Test(link, a_receiver_in_long_work_acknowledges_when_due)
{
    s_receiver_t r;
    s_start_with(&r, NULL, NULL, 20);
    s_send(&r, 1);
    for (uint64_t id = 1; id <= 4; id++) {
        s_request(&r, id);
        s_send(&r, id + 1);
    }
    int replies = 0, acks_after = -1;
    uint8_t buf[256];
    for (int got = 0; got < 6 && acks_after < 0; got++) {
        int n = zmq_recv(r.peer, buf, sizeof buf, 0);
        cr_assert_gt(n, 0, "%d replies and no acknowledgement: %s", replies,
                     zmq_strerror(zmq_errno()));
        if (n == 17 && buf[0] == 0x02)
            acks_after = replies;
        else
            replies++;
    }
    /* 0 too when the receiver found its mailbox empty after frame 1 (the
     * peer was slow to send the rest): then its turn ended in time. */
    cr_expect_leq(acks_after, 1, "the first acknowledgement came after %d of 4 replies",
                  acks_after);
    s_expect_events(&r, 5);
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

/* A peer inventing links cannot push a busy one out of the receiver's
 * table, which would make that link's frames sent again be taken twice: a
 * new link's frames are dropped (the sender sends them again) until a link
 * kept has been quiet for link_idle_ms. */
Test(link, invented_links_cannot_push_out_a_busy_one)
{
    enum { KEPT = 32, IDLE_MS = 2000 }; /* a receiver without a record keeps 32 */
    s_receiver_t r;
    s_start_with(&r, NULL, &(rt_config_t){.link_idle_ms = IDLE_MS}, 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_send(&r, seq);
    /* Each invented link takes more frames than S_ID's: the least used. */
    for (uint64_t k = 0; k < KEPT; k++)
        for (uint64_t seq = 1; seq <= 5; seq++)
            s_send_on(&r, 0x1000 + k, seq);
    s_expect_events(&r, 3 + (KEPT - 1) * 5);
    cr_expect_eq(s_duplicates(&r), 5, "the last invented link's frames were dropped");
    s_send(&r, 2); /* S_ID's, sent again: still known, so dropped */
    s_send(&r, 3);
    s_send(&r, 4);
    s_expect_events(&r, 3 + (KEPT - 1) * 5 + 1);
    cr_expect_eq(s_duplicates(&r), 7);

    usleep((IDLE_MS + 300) * 1000);
    s_send_on(&r, 0x1000 + KEPT - 1, 1); /* room now, in place of a quiet link */
    s_expect_events(&r, 3 + (KEPT - 1) * 5 + 2);
    s_stop(&r);
}

/* ---- Seen from the sender -------------------------------------------------- */

/* Sends one-way Pings to "far" for each Ping it is asked, as many as the
 * request's payload says in decimal (one for none), each in a link frame
 * of its own. */
static int s_sender_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (!msg->request_id)
        return 0;
    char count[16] = "";
    size_t len = msg->ping->payload.len < sizeof count - 1 ? msg->ping->payload.len
                                                           : sizeof count - 1;
    memcpy(count, msg->ping->payload.data, len);
    unsigned long n = strtoul(count, NULL, 10);
    int rc = 0;
    for (unsigned long i = 0; !rc && i < (n ? n : 1); i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, "e", 1);
        if (!(rc = rt_send(self, "far", &env)))
            rt_flush(self);
    }
    return echo_reply_text(self, msg, rc ? "not sent" : "sent");
}

static const rt_handler_t s_sender_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_sender_on_ping}};
static const rt_actor_ops_t s_sender_ops = {
    .kind = "sender", .handlers = s_sender_handlers, .n_handlers = 1};

/* The next link frame the raw receiver gets within timeout_ms: its
 * sequence number, or 0 for none; the sender's routing id into ident. */
static uint64_t s_far_next(void *far, uint8_t *ident, int *ident_len, int timeout_ms)
{
    zmq_setsockopt(far, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    int n = zmq_recv(far, ident, 255, 0);
    if (n < 0)
        return 0;
    *ident_len = n;
    uint8_t frame[256];
    n = zmq_recv(far, frame, sizeof frame, 0);
    cr_assert_geq(n, 17, "a link frame");
    cr_assert_eq(frame[0], 0x01, "a link frame");
    uint64_t seq = 0;
    for (int i = 7; i >= 0; i--)
        seq = seq << 8 | frame[9 + i];
    return seq;
}

/* What the raw receiver tells the sender: marker, the link's id (from
 * frame 1), the last frame taken. */
static void s_far_tell(void *far, const uint8_t *ident, int ident_len, uint8_t marker,
                       uint64_t id, uint64_t last)
{
    uint8_t ack[17];
    ack[0] = marker;
    s_put64(ack + 1, id);
    s_put64(ack + 9, last);
    cr_assert_eq(zmq_send(far, ident, (size_t)ident_len, ZMQ_SNDMORE), ident_len);
    cr_assert_eq(zmq_send(far, ack, sizeof ack, 0), (int)sizeof ack);
}

/* A receiver bound at s_endpoint that reads nothing, and a runtime with
 * the sender actor and a client to ask it. */
typedef struct {
    void *zctx, *far;
    rt_t *rt;
    rt_actor_t *self;
} s_sender_t;

static void s_sender_start(s_sender_t *t)
{
    t->zctx = zmq_ctx_new();
    t->far = zmq_socket(t->zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(t->far, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_bind(t->far, s_endpoint), 0);
    t->rt = rt_new(NULL);
    cr_assert_not_null(t->rt);
    cr_assert_eq(rt_directory_set(t->rt, "far", s_endpoint), 0);
    rt_executor_t *ex = rt_executor_new(t->rt, "ex0");
    rt_actor_spec_t spec = {.name = "sender", .ops = &s_sender_ops};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    t->self = rt_client_actor(rt_client_new(t->rt, "test"));
}

static void s_sender_stop(s_sender_t *t)
{
    rt_destroy(&t->rt);
    zmq_close(t->far);
    zmq_ctx_term(t->zctx);
}

/* Has the sender send what count says (s_sender_on_ping()). */
static void s_sender_send(s_sender_t *t, const char *count)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, count, strlen(count));
    rt_msg_t reply;
    cr_assert_eq(rt_call(t->self, "sender", &env, &reply, 60000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_assert_eq(reply.env->pong->payload.len, 4, "the frames were not sent");
    rt_msg_release(&reply);
}

/* A receiver that acknowledges nothing costs its sender at most 65 536
 * frames kept for sending again: beyond, the oldest are given up,
 * counted in tx_refused. */
Test(link, frames_kept_unacknowledged_are_capped)
{
    enum { CAP = 65536, MORE = 10 };
    s_sender_t t;
    s_sender_start(&t);
    char count[16];
    snprintf(count, sizeof count, "%d", CAP + MORE);
    s_sender_send(&t, count);
    rt_stats_t st;
    rt_stats(t.rt, &st);
    cr_expect_eq(st.tx_refused, MORE, "given up: %llu", (unsigned long long)st.tx_refused);
    /* They were sent all the same: the first arrives. */
    uint8_t ident[256];
    int ident_len = 0;
    cr_expect_eq(s_far_next(t.far, ident, &ident_len, 5000), 1);
    s_sender_stop(&t);
}

/* A receiver that acknowledges nothing gets only the oldest frame again,
 * not all of them: one busy in a long turn has the rest queued. A gap it
 * reports has every frame after it sent again at once, once. */
Test(link, a_quiet_receiver_gets_the_oldest_again_a_gap_all_after_it)
{
    s_sender_t t;
    s_sender_start(&t);
    void *far = t.far;
    uint8_t ident[256];
    int ident_len = 0;
    uint64_t id = 0;
    for (uint64_t seq = 1; seq <= 5; seq++) {
        s_sender_send(&t, "1");
        cr_assert_eq(s_far_next(far, ident, &ident_len, 5000), seq);
    }
    /* The frames' id, from the raw bytes of the first frame sent again. */
    uint8_t frame[256];
    int timeout = 5000;
    zmq_setsockopt(far, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_gt(zmq_recv(far, ident, sizeof ident, 0), 0, "frame 1 again after a second");
    cr_assert_geq(zmq_recv(far, frame, sizeof frame, 0), 17);
    for (int i = 7; i >= 0; i--)
        id = id << 8 | frame[1 + i];
    cr_expect_eq(frame[9], 1, "the oldest again: %u", frame[9]);
    /* The next one goes two seconds later: nothing else now. */
    cr_expect_eq(s_far_next(far, ident, &ident_len, 500), 0, "more than the oldest again");

    s_far_tell(far, ident, ident_len, 0x03, id, 2); /* took 2, then a gap */
    for (uint64_t seq = 3; seq <= 5; seq++)
        cr_expect_eq(s_far_next(far, ident, &ident_len, 3000), seq);
    /* The same report again is no new gap; then all is acknowledged. */
    s_far_tell(far, ident, ident_len, 0x03, id, 2);
    s_far_tell(far, ident, ident_len, 0x02, id, 5);
    cr_expect_eq(s_far_next(far, ident, &ident_len, 2500), 0, "sent again for nothing");
    rt_stats_t st;
    rt_stats(t.rt, &st);
    cr_expect_eq(st.tx_resent, 4, "sent again: %llu", (unsigned long long)st.tx_resent);
    s_sender_stop(&t);
}
