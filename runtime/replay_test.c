/* Replays: an actor recorded in a real run (calls nested and across
 * executors, requests, events, timers, the clock, bytes in and out, bad
 * input, its stop) is driven again from the trace alone and matches; a
 * changed actor is caught at the field that changed; traces that cannot
 * be replayed say why. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/replay.h"
#include "runtime/rt.h"
#include "runtime/testing/echo.h"
#include "runtime/trace.h"

static char s_path[64];

static void s_setup(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/replay-test-XXXXXX");
    int fd = mkstemp(s_path);
    cr_assert_geq(fd, 0);
    close(fd);
}

static void s_teardown(void)
{
    unlink(s_path);
}

/* ---- The actor -------------------------------------------------------------------- */

/* A small device-like actor: every effect a replay must reproduce. A
 * variant answers one thing differently, as a changed model would. */
typedef struct {
    int variant;
    unsigned long long count, replies;
} s_counter_t;

static int s_event(rt_actor_t *self, const char *text)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, text, strlen(text));
    return rt_send(self, "observer", &env);
}

static void s_on_tick(rt_actor_t *self, uint64_t id)
{
    s_counter_t *c = rt_actor_state(self);
    char text[64];
    snprintf(text, sizeof text, "tick %llu of timer %llu", c->count, (unsigned long long)id);
    s_event(self, text);
}

static int s_init(rt_actor_t *self, void *arg)
{
    s_counter_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->variant = arg ? *(const int *)arg : 0;
    rt_actor_set_state(self, c);
    char text[64];
    snprintf(text, sizeof text, "started at %llu", (unsigned long long)rt_now_ns(self));
    return s_event(self, text);
}

static void s_fini(rt_actor_t *self)
{
    s_event(self, "bye");
    free(rt_actor_state(self));
}

/* A request: the clock, a call nested (echo, same executor) and one to
 * another executor (far), bytes read and written, a timer; answered with
 * all of it. An event: a request without waiting. */
static int s_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_counter_t *c = rt_actor_state(self);
    if (!msg->request_id) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, "async", 5);
        return rt_request(self, "far", &env, 5000, NULL);
    }
    c->count++;
    uint64_t now = rt_now_ns(self);
    char got[2][32] = {"", ""};
    const char *peers[] = {"echo", "far"};
    for (int i = 0; i < 2; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, peers[i], strlen(peers[i]));
        rt_msg_t reply;
        int rc = rt_call(self, peers[i], &env, &reply, 5000);
        if (rc)
            return rc;
        snprintf(got[i], sizeof got[i], "%.*s", (int)reply.env->pong->payload.len,
                 (const char *)reply.env->pong->payload.data);
        rt_msg_release(&reply);
    }
    uint8_t in[4] = {0};
    for (int i = 0; i < 4; i++)
        in[i] = (uint8_t)(c->count * 16 + (uint64_t)i); /* what a mapping holds */
    rt_actor_input(self, 1, 0x1000 + c->count, in, sizeof in);
    uint8_t out[4] = {in[3], in[2], in[1], (uint8_t)(in[0] + (c->variant == 2))};
    rt_actor_output(self, 1, 0x2000, out, sizeof out);
    rt_timer_set(self, c->count, now + 1000000, s_on_tick);
    char text[160];
    snprintf(text, sizeof text, "n=%llu t=%llu echo=%s far=%s in=%02x%02x", c->count,
             (unsigned long long)now, got[0], got[1], in[0], in[3]);
    if (c->variant == 1 && c->count == 2)
        text[2] = '9'; /* the model changed: its second answer differs */
    return echo_reply_text(self, msg, text);
}

static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_counter_t *c = rt_actor_state(self);
    c->replies++;
    char text[64];
    snprintf(text, sizeof text, "reply %llu: %s", c->replies,
             reply->body_case == VMM__ENVELOPE__BODY_PONG ? "pong" : "error");
    s_event(self, text);
}

static const rt_handler_t s_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_on_ping}};
static const rt_actor_ops_t s_counter_ops = {
    .kind = "counter",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = 1,
    .on_reply = s_on_reply,
};

/* ---- Recording ------------------------------------------------------------------ */

static void s_ping(rt_client_t *c, bool one_way)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "go", 2);
    if (one_way) {
        cr_assert_eq(rt_send(rt_client_actor(c), "counter", &env), 0);
        return;
    }
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "counter", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    rt_msg_release(&reply);
}

/* Waits until the observer has n events (those the counter sends). */
static void s_wait_events(rt_client_t *observer, int n)
{
    for (int i = 0; i < n; i++) {
        rt_msg_t msg;
        cr_assert_eq(rt_client_recv(observer, &msg, 5000), 0, "event %d of %d", i + 1, n);
        rt_msg_release(&msg);
    }
}

/* Records a run of the counter into s_path: three requests, an event and
 * its request's reply, timers, a request of a kind it has no handler for,
 * and a Terminate. */
static void s_record(const char *const *actors, size_t n_actors, const char *const *kinds,
                     size_t n_kinds)
{
    rt_t *rt = rt_new(NULL);
    rt_trace_config_t cfg = {.path = s_path, .process = "replay_test", .actors = actors,
                             .n_actors = n_actors, .kinds = kinds, .n_kinds = n_kinds};
    char err[256] = "";
    cr_assert_eq(rt_trace_start(rt, &cfg, err, sizeof err), 0, "%s", err);
    rt_client_t *observer = rt_client_new(rt, "observer");
    rt_client_t *c = rt_client_new(rt, "test");
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_executor_t *far = rt_executor_new(rt, "ex1");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t far_echo = {.name = "far", .ops = &echo_ops};
    rt_actor_spec_t counter = {.name = "counter", .ops = &s_counter_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    cr_assert_eq(rt_actor_start(far, &far_echo), 0);
    cr_assert_eq(rt_actor_start(ex, &counter), 0);
    s_wait_events(observer, 1); /* started */
    for (int i = 0; i < 3; i++) {
        s_ping(c, false);
        s_wait_events(observer, 1); /* its timer's tick */
    }
    s_ping(c, true);
    s_wait_events(observer, 1); /* the reply to its request */

    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "counter", &env, &reply, 5000), 0);
    rt_msg_release(&reply);
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &dreq;
    cr_assert_eq(rt_call(rt_client_actor(c), "counter", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR, "no handler: refused");
    rt_msg_release(&reply);

    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    env.terminate = &term;
    cr_assert_eq(rt_call(rt_client_actor(c), "counter", &env, &reply, 5000), 0);
    rt_msg_release(&reply);
    s_wait_events(observer, 1); /* bye */
    rt_destroy(&rt);
}

static int s_replay(int variant, rt_replay_result_t *res, char *err, size_t errlen)
{
    rt_replay_config_t cfg = {.trace = s_path, .actor = "counter", .ops = &s_counter_ops,
                              .arg = &variant};
    return rt_replay(&cfg, res, err, errlen);
}

/* ---- Tests ------------------------------------------------------------------------ */

Test(replay, the_recorded_actor_matches_its_trace, .init = s_setup, .fini = s_teardown)
{
    s_record(NULL, 0, NULL, 0);
    rt_replay_result_t res;
    char err[512] = "";
    cr_assert_eq(s_replay(0, &res, err, sizeof err), 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_not(res.unfinished, "%s", res.report);
    /* 3 requests, 1 event, 1 reply to its request, 3 timers, inspect,
     * the refused request, Terminate; 6 call replies. */
    cr_expect_eq(res.delivered, 17, "%s", res.report);
    /* started, 3 x (2 calls, output, pong, tick), request, reply event,
     * inspect reply, refusal, Terminate's ack, bye. */
    cr_expect_eq(res.compared, 1 + 3 * 5 + 6, "%s", res.report);
    cr_expect_eq(res.inputs, 1 + 3 * 2, "the clock at start and per request, the bytes");
    cr_expect_neq(strstr(res.report, "matched"), NULL, "%s", res.report);
}

Test(replay, a_changed_actor_is_caught_at_the_field_that_changed, .init = s_setup,
     .fini = s_teardown)
{
    s_record(NULL, 0, NULL, 0);
    rt_replay_result_t res;
    char err[512] = "";
    cr_assert_eq(s_replay(1, &res, err, sizeof err), 0, "%s", err);
    cr_assert_not(res.matched);
    cr_expect_str_eq(res.kind, "pong");
    cr_expect_str_eq(res.field, "pong.payload", "%s", res.report);
    cr_expect_eq(strncmp(res.expected, "\"n=2 t=", 7), 0, "%s", res.expected);
    cr_expect_eq(strncmp(res.got, "\"n=9 t=", 7), 0, "%s", res.got);
    cr_expect_neq(strstr(res.cause, "test -> counter ping"), NULL, "%s", res.cause);
    cr_expect_gt(res.index, res.cause_index);
    cr_expect_neq(strstr(res.report, "diverged at record"), NULL, "%s", res.report);

    /* Bytes written differently are caught too, at the byte. */
    cr_assert_eq(s_replay(2, &res, err, sizeof err), 0, "%s", err);
    cr_assert_not(res.matched);
    cr_expect_eq(strncmp(res.kind, "output of kind ", 15), 0, "%s", res.kind);
    cr_expect_str_eq(res.field, "byte 3", "%s", res.report);
}

Test(replay, a_trace_cut_short_replays_to_its_end, .init = s_setup, .fini = s_teardown)
{
    s_record(NULL, 0, NULL, 0);
    /* What a crash leaves: the records after some point never written. */
    char err[512] = "";
    rt_trace_reader_t *r = rt_trace_open(s_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    const Vmm__Trace__Record *rec;
    uint64_t cut = 0;
    int pongs = 0;
    while (rt_trace_next(r, &rec, err, sizeof err) == 1) {
        if (rec->record_case != VMM__TRACE__RECORD__RECORD_MESSAGE)
            continue;
        Vmm__Envelope *env = rt_trace_envelope(rec->message);
        bool pong = env && env->body_case == VMM__ENVELOPE__BODY_PONG &&
                    !strcmp(env->sender, "counter");
        if (env)
            vmm__envelope__free_unpacked(env, NULL);
        if (pong && ++pongs == 2) {
            cut = rt_trace_offset(r);
            break;
        }
    }
    rt_trace_close(&r);
    cr_assert_gt(cut, 0);
    int fd = open(s_path, O_RDWR);
    cr_assert_geq(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    char *zero = calloc(1, (size_t)(size - (off_t)cut));
    cr_assert_eq(pwrite(fd, zero, (size_t)(size - (off_t)cut), (off_t)cut),
                 (ssize_t)(size - (off_t)cut));
    free(zero);
    close(fd);

    rt_replay_result_t res;
    cr_assert_eq(s_replay(0, &res, err, sizeof err), 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect(res.unfinished, "%s", res.report);
}

Test(replay, traces_that_cannot_be_replayed_say_why, .init = s_setup, .fini = s_teardown)
{
    s_record(NULL, 0, NULL, 0);
    rt_replay_result_t res;
    char err[512] = "";
    rt_replay_config_t cfg = {.trace = s_path, .actor = "nobody", .ops = &s_counter_ops};
    cr_expect_eq(rt_replay(&cfg, &res, err, sizeof err), -ENOENT);
    cr_expect_neq(strstr(err, "no actor nobody"), NULL, "%s", err);
    cr_expect_neq(strstr(err, "counter"), NULL, "the actors it has: %s", err);

    /* Cut inside a record in the middle: an error, not a match. */
    int fd = open(s_path, O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    cr_assert_eq(ftruncate(fd, size / 2), 0);
    close(fd);
    cr_expect_eq(s_replay(0, &res, err, sizeof err), -EBADMSG);
    cr_expect_neq(strstr(err, "cut short"), NULL, "%s", err);

    cfg.trace = "/nonexistent/trace";
    cfg.actor = "counter";
    cr_expect_eq(rt_replay(&cfg, &res, err, sizeof err), -EBADMSG);
    cr_expect_neq(strstr(err, "No such file"), NULL, "%s", err);

    const char *kinds[] = {"pong"};
    s_record(NULL, 0, kinds, 1);
    cr_expect_eq(s_replay(0, &res, err, sizeof err), -ENOTSUP);
    cr_expect_neq(strstr(err, "kind filter"), NULL, "%s", err);
}

/* ---- Recorded bad input ----------------------------------------------------------- */

/* One frame (two when extra) from a raw peer: env packed, then tail. */
static void s_raw_send(void *peer, Vmm__Envelope *env, const char *tail, size_t tail_len,
                       bool extra)
{
    uint8_t buf[512];
    size_t len = vmm__envelope__pack(env, buf);
    memcpy(buf + len, tail, tail_len);
    len += tail_len;
    cr_assert_eq(zmq_send(peer, buf, len, extra ? ZMQ_SNDMORE : 0), (int)len);
    if (extra)
        cr_assert_eq(zmq_send(peer, "x", 1, 0), 1);
}

/* How many Error replies the counter sent, by the trace. */
static int s_errors_in_trace(void)
{
    char err[256];
    rt_trace_reader_t *r = rt_trace_open(s_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    const Vmm__Trace__Record *rec;
    int errors = 0;
    while (rt_trace_next(r, &rec, err, sizeof err) == 1) {
        if (rec->record_case != VMM__TRACE__RECORD__RECORD_MESSAGE)
            continue;
        Vmm__Envelope *env = rt_trace_envelope(rec->message);
        errors += env && env->body_case == VMM__ENVELOPE__BODY_ERROR && env->sender &&
                  !strcmp(env->sender, "counter");
        if (env)
            vmm__envelope__free_unpacked(env, NULL);
    }
    rt_trace_close(&r);
    return errors;
}

/* Bad input from a peer in another process, recorded as it came (bytes
 * that do not decode, both ids, no body, a body kind from a newer
 * protocol, another receiver, extra frames), each refused with an Error;
 * a replay feeds the same bytes through the same checks, so the same
 * refusals come out and compare equal. */
Test(replay, recorded_bad_input_is_refused_again, .init = s_setup, .fini = s_teardown)
{
    char dir[] = "/tmp/replay-bad-XXXXXX", endpoint[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(endpoint, sizeof endpoint, "ipc://%s/counter", dir);
    rt_t *rt = rt_new(NULL);
    rt_trace_config_t cfg = {.path = s_path, .process = "replay_test"};
    char err[512] = "";
    cr_assert_eq(rt_trace_start(rt, &cfg, err, sizeof err), 0, "%s", err);
    rt_client_t *observer = rt_client_new(rt, "observer");
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_executor_t *far = rt_executor_new(rt, "ex1");
    cr_assert_eq(rt_actor_start(ex, &(rt_actor_spec_t){.name = "echo", .ops = &echo_ops}), 0);
    cr_assert_eq(rt_actor_start(far, &(rt_actor_spec_t){.name = "far", .ops = &echo_ops}), 0);
    cr_assert_eq(rt_actor_start(ex, &(rt_actor_spec_t){.name = "counter", .ops = &s_counter_ops,
                                                        .endpoint = endpoint}),
                 0);
    s_wait_events(observer, 1); /* started */

    void *zctx = zmq_ctx_new();
    void *peer = echo_raw_dealer(zctx, 5000);
    cr_assert_not_null(peer);
    cr_assert_eq(zmq_connect(peer, endpoint), 0);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "go", 2);
    env.sender = "peer";
    env.receiver = "counter";
    env.request_id = 7;
    s_raw_send(peer, &env, "\xff", 1, false); /* a field number 0 at the end */
    env.reply_to = 3;
    s_raw_send(peer, &env, "", 0, false);
    env.reply_to = 0;
    env.body_case = VMM__ENVELOPE__BODY__NOT_SET;
    s_raw_send(peer, &env, "", 0, false);
    s_raw_send(peer, &env, "\xb8\x3e\x01", 3, false); /* field 999 = 1: a newer kind */
    echo_ping(&env, &ping, "go", 2);
    env.sender = "peer";
    env.request_id = 8;
    env.receiver = "someone";
    s_raw_send(peer, &env, "", 0, false);
    env.receiver = "counter";
    s_raw_send(peer, &env, "", 0, true);
    s_raw_send(peer, &env, "", 0, false); /* and a good one */
    int errors = 0, pongs = 0;
    for (int i = 0; i < 7; i++) {
        uint8_t buf[1024];
        int n = zmq_recv(peer, buf, sizeof buf, 0);
        cr_assert_gt(n, 0, "answer %d of 7: %s", i + 1, zmq_strerror(zmq_errno()));
        Vmm__Envelope *reply = vmm__envelope__unpack(NULL, (size_t)n, buf);
        cr_assert_not_null(reply);
        errors += reply->body_case == VMM__ENVELOPE__BODY_ERROR;
        pongs += reply->body_case == VMM__ENVELOPE__BODY_PONG;
        vmm__envelope__free_unpacked(reply, NULL);
    }
    cr_expect_eq(errors, 6);
    cr_expect_eq(pongs, 1);
    s_wait_events(observer, 1); /* the good request's tick */
    zmq_close(peer);
    zmq_ctx_term(zctx);
    rt_destroy(&rt);
    char path[96];
    snprintf(path, sizeof path, "%s/counter", dir);
    unlink(path);
    rmdir(dir);
    cr_assert_eq(s_errors_in_trace(), 6, "the refusals are in the trace");

    rt_replay_result_t res;
    cr_assert_eq(s_replay(0, &res, err, sizeof err), 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
}
