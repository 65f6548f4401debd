/* The runtime: lifecycle, executors, request/reply across transports,
 * timeouts, blocking actors, introspection and the tap. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

static void s_ping(Vmm__Envelope *env, Vmm__Rt__Ping *ping, const char *payload)
{
    echo_ping(env, ping, payload, strlen(payload));
}

/* Calls `to` with a Ping and checks the Pong echoes the payload. */
static void s_expect_echo(rt_actor_t *self, const char *to, const char *payload)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, payload);
    rt_msg_t reply;
    int rc = rt_call(self, to, &env, &reply, 5000);
    cr_assert_eq(rc, 0, "call to %s: %s", to, strerror(-rc));
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG, "reply kind %d",
                 reply.env->body_case);
    cr_expect_eq(reply.env->pong->payload.len, strlen(payload));
    cr_expect_eq(memcmp(reply.env->pong->payload.data, payload, strlen(payload)), 0);
    cr_expect_str_eq(reply.env->sender, to);
    cr_expect_str_eq(reply.env->receiver, rt_actor_name(self));
    cr_expect_eq(reply.env->reply_to, env.request_id);
    rt_msg_release(&reply);
}

/* Starts an echo actor (cfg may be NULL) on an executor; returns a client. */
static rt_client_t *s_start_echo(rt_t **rt, echo_config_t *cfg)
{
    *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(*rt, "ex0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .arg = cfg};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    return rt_client_new(*rt, "test");
}

/* Starts an echo actor, and `other` on the same executor (placement 0) or
 * on an executor of its own (placement 1); returns a client. */
static rt_client_t *s_start_beside_echo(rt_t **rt, int placement, const rt_actor_ops_t *ops,
                                        const char *name)
{
    *rt = rt_new(NULL);
    rt_executor_t *ex0 = rt_executor_new(*rt, "ex0");
    rt_executor_t *ex1 = placement ? rt_executor_new(*rt, "ex1") : ex0;
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t other = {.name = name, .ops = ops};
    cr_assert_eq(rt_actor_start(ex0, &echo), 0);
    cr_assert_eq(rt_actor_start(ex1, &other), 0);
    return rt_client_new(*rt, "test");
}

/* ---- Lifecycle ------------------------------------------------------------ */

typedef struct {
    atomic_int inits, finis;
    int init_result;
} s_probe_t;

static int s_probe_init(rt_actor_t *self, void *arg)
{
    s_probe_t *probe = arg;
    atomic_fetch_add(&probe->inits, 1);
    rt_actor_set_state(self, probe);
    return probe->init_result;
}

static void s_probe_fini(rt_actor_t *self)
{
    s_probe_t *probe = rt_actor_state(self);
    atomic_fetch_add(&probe->finis, 1);
}

static const rt_actor_ops_t s_probe_ops = {
    .kind = "probe",
    .init = s_probe_init,
    .fini = s_probe_fini,
};

Test(lifecycle, start_blocks_until_init_has_run)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    cr_assert_not_null(ex);
    s_probe_t probe = {0};
    rt_actor_spec_t spec = {.name = "probe", .ops = &s_probe_ops, .arg = &probe};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    cr_expect_eq(atomic_load(&probe.inits), 1);
    cr_expect_eq(rt_actor_start(ex, &spec), -EEXIST, "a name is unique");
    rt_executor_destroy(&ex);
    cr_expect_null(ex);
    cr_expect_eq(atomic_load(&probe.finis), 1, "destroying the executor terminates its actors");
    rt_destroy(&rt);
    cr_expect_null(rt);
}

Test(lifecycle, failed_init_leaves_nothing)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    s_probe_t probe = {.init_result = -ENODEV};
    rt_actor_spec_t spec = {.name = "probe", .ops = &s_probe_ops, .arg = &probe};
    cr_expect_eq(rt_actor_start(ex, &spec), -ENODEV);
    probe.init_result = 0;
    cr_expect_eq(rt_actor_start(ex, &spec), 0, "the name was released");
    rt_destroy(&rt);
    cr_expect_eq(atomic_load(&probe.finis), 1);
}

Test(lifecycle, terminate_is_a_message_and_acknowledged)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    s_probe_t probe = {0};
    rt_actor_spec_t spec = {.name = "probe", .ops = &s_probe_ops, .arg = &probe};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");

    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    env.terminate = &term;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "probe", &env, &reply, 5000), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_expect_eq(atomic_load(&probe.finis), 1);

    /* The name is free again once the executor has removed the actor. */
    int rc = -EEXIST;
    for (int i = 0; i < 1000 && rc == -EEXIST; i++) {
        rc = rt_actor_start(ex, &spec);
        if (rc == -EEXIST)
            usleep(1000);
    }
    cr_expect_eq(rc, 0);
    s_expect_echo(rt_client_actor(c), "probe", "the runtime answers ping for any actor");
    rt_destroy(&rt);
    cr_expect_eq(atomic_load(&probe.finis), 2);
}

/* ---- Executors hosting several actors ------------------------------------ */

/* Forwards each Ping it is asked to its peer and returns the peer's Pong,
 * so that a call is made from inside a handler. */
static int s_relay_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const char *peer = rt_actor_state(self);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "");
    ping.payload = msg->ping->payload;
    rt_msg_t reply;
    int rc = rt_call(self, peer, &env, &reply, 5000);
    if (rc)
        return rc;
    rc = rt_reply(self, msg, reply.env);
    rt_msg_release(&reply);
    return rc;
}

static int s_relay_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

static const rt_handler_t s_relay_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_relay_on_ping}};
static const rt_actor_ops_t s_relay_ops = {
    .kind = "relay",
    .init = s_relay_init,
    .handlers = s_relay_handlers,
    .n_handlers = 1,
};

Test(executor, hosts_several_actors_that_call_each_other)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "shared");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t relay = {.name = "relay", .ops = &s_relay_ops, .arg = "echo"};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    cr_assert_eq(rt_actor_start(ex, &relay), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 10; i++)
        s_expect_echo(rt_client_actor(c), "relay", "through relay");
    cr_expect_eq(echo_inspect_number(rt_client_actor(c), "echo", "pings"), 10);
    rt_destroy(&rt);
}

Test(executor, relay_across_two_executors)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex0 = rt_executor_new(rt, "ex0");
    rt_executor_t *ex1 = rt_executor_new(rt, "ex1");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t relay = {.name = "relay", .ops = &s_relay_ops, .arg = "echo"};
    cr_assert_eq(rt_actor_start(ex0, &echo), 0);
    cr_assert_eq(rt_actor_start(ex1, &relay), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    s_expect_echo(rt_client_actor(c), "relay", "across executors");
    rt_destroy(&rt);
}

Test(executor, a_call_back_into_a_busy_actor_is_refused)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "shared");
    rt_actor_spec_t a = {.name = "a", .ops = &s_relay_ops, .arg = "b"};
    rt_actor_spec_t b = {.name = "b", .ops = &s_relay_ops, .arg = "a"};
    cr_assert_eq(rt_actor_start(ex, &a), 0);
    cr_assert_eq(rt_actor_start(ex, &b), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "loop");
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "a", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__INTERNAL);
    cr_expect(strstr(reply.env->error->text, "deadlock") != NULL, "text: %s",
              reply.env->error->text);
    rt_msg_release(&reply);
    rt_destroy(&rt);
}

Test(executor, one_way_events_arrive_in_order_before_a_later_call)
{
    rt_t *rt;
    rt_client_t *c = s_start_echo(&rt, NULL);
    for (int i = 0; i < 500; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "event");
        cr_assert_eq(rt_send(rt_client_actor(c), "echo", &env), 0);
    }
    cr_expect_eq(echo_inspect_number(rt_client_actor(c), "echo", "events"), 500);
    rt_destroy(&rt);
}

/* Sends events to its peer on the same executor, then calls it: the call
 * must find every event delivered first. */
static int s_burst_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    for (int i = 0; i < 20; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "posted");
        int rc = rt_send(self, "echo", &env);
        if (rc)
            return rc;
    }
    char text[32];
    snprintf(text, sizeof text, "%lld", echo_inspect_number(self, "echo", "events"));
    return echo_reply_text(self, msg, text);
}

/* Sends 3000 events to echo, more than one batch frame holds. */
static int s_fanout_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    for (int i = 0; i < 3000; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "a payload of some size, to fill batch frames sooner");
        int rc = rt_send(self, "echo", &env);
        if (rc)
            return rc;
    }
    return 0;
}

Test(executor, posted_events_stay_ordered_with_later_calls)
{
    /* On one executor events wait in the local queue; across executors
     * they are coalesced into one frame: either way a later call from the
     * same sender must find them all delivered. */
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_burst_on_ping}};
    static const rt_actor_ops_t burst_ops = {.kind = "burst", .handlers = handlers,
                                             .n_handlers = 1};
    for (int placement = 0; placement < 2; placement++) {
        rt_t *rt;
        rt_client_t *c = s_start_beside_echo(&rt, placement, &burst_ops, "burst");
        for (int round = 1; round <= 3; round++) {
            Vmm__Envelope env;
            Vmm__Rt__Ping ping;
            s_ping(&env, &ping, "go");
            rt_msg_t reply;
            cr_assert_eq(rt_call(rt_client_actor(c), "burst", &env, &reply, 5000), 0);
            cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
            char want[8];
            snprintf(want, sizeof want, "%d", 20 * round);
            cr_expect_eq(reply.env->pong->payload.len, strlen(want));
            cr_expect_eq(memcmp(reply.env->pong->payload.data, want, strlen(want)), 0,
                         "placement %d round %d", placement, round);
            rt_msg_release(&reply);
        }
        rt_destroy(&rt);
    }
}

Test(executor, coalesced_events_are_sent_when_the_turn_ends)
{
    /* No call follows these events: the executor must still send them
     * once the handler that produced them has returned. */
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_fanout_on_ping}};
    static const rt_actor_ops_t fanout_ops = {.kind = "fanout", .handlers = handlers,
                                              .n_handlers = 1};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex0 = rt_executor_new(rt, "ex0");
    rt_executor_t *ex1 = rt_executor_new(rt, "ex1");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t fanout = {.name = "fanout", .ops = &fanout_ops};
    cr_assert_eq(rt_actor_start(ex0, &echo), 0);
    cr_assert_eq(rt_actor_start(ex1, &fanout), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "go");
    cr_assert_eq(rt_send(rt_client_actor(c), "fanout", &env), 0);
    long long events = 0;
    for (int i = 0; i < 5000 && events != 3000; i++) {
        usleep(1000);
        events = echo_inspect_number(rt_client_actor(c), "echo", "events");
    }
    cr_expect_eq(events, 3000, "more than one batch frame's worth, all delivered");
    rt_destroy(&rt);
}

/* ---- Request/reply across transports ------------------------------------- */

static void s_echo_over(const char *endpoint)
{
    /* Two runtimes in one process reach each other only through the
     * endpoint, as two processes would. */
    rt_t *server = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(server, "server");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops, .endpoint = endpoint};
    cr_assert_eq(rt_actor_start(ex, &echo), 0, "bind %s", endpoint);
    char bound[256];
    cr_assert_eq(rt_endpoint_of(server, "echo", bound, sizeof bound), 0);

    rt_t *rt = rt_new(NULL);
    cr_assert_eq(rt_directory_set(rt, "echo", bound), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 20; i++)
        s_expect_echo(rt_client_actor(c), "echo", bound);
    rt_stats_t stats;
    rt_stats(rt, &stats);
    cr_expect_eq(stats.tx, 20);
    cr_expect_eq(stats.rx, 20);
    rt_destroy(&rt);
    rt_destroy(&server);
}

Test(transport, inproc)
{
    rt_t *rt;
    rt_client_t *c = s_start_echo(&rt, NULL);
    s_expect_echo(rt_client_actor(c), "echo", "inproc");
    cr_expect_eq(rt_call(rt_client_actor(c), "nobody", &(Vmm__Envelope)VMM__ENVELOPE__INIT,
                         &(rt_msg_t){0}, 100),
                 -EINVAL, "an envelope needs a body");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "x");
    rt_msg_t reply;
    cr_expect_eq(rt_call(rt_client_actor(c), "nobody", &env, &reply, 100), -ENOENT);
    rt_destroy(&rt);
}

Test(transport, ipc)
{
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/vmm-rt-test-%d.sock", getpid());
    s_echo_over(endpoint);
}

Test(transport, tcp)
{
    s_echo_over("tcp://127.0.0.1:*");
}

/* A receiver that makes no room costs a sender one wait of
 * send_timeout_ms, not one a request: once a wait was in vain, sends to it
 * fail at once. Here nobody listens at the endpoint: the first requests
 * fill the queue, then each fails. (Events go on a link, which keeps
 * them for the receiver.) */
Test(transport, a_full_queue_costs_one_wait_not_one_a_message)
{
    rt_config_t cfg = {.send_timeout_ms = 300, .queue_messages = 4};
    rt_t *rt = rt_new(&cfg);
    cr_assert_not_null(rt);
    char dir[] = "/tmp/rt-test-stall-XXXXXX", endpoint[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(endpoint, sizeof endpoint, "ipc://%s/nobody", dir);
    cr_assert_eq(rt_directory_set(rt, "ghost", endpoint), 0);
    rt_client_t *c = rt_client_new(rt, "sender");
    int sent = 0, refused = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 24; i++) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, "x", 1);
        uint64_t id;
        int rc = rt_request(rt_client_actor(c), "ghost", &env, 60000, &id);
        if (rc == 0)
            sent++;
        else
            cr_expect_eq(rc, -EAGAIN, "send %d: %s", i, strerror(-rc));
        refused += rc != 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect_geq(refused, 16, "%d sent, %d refused", sent, refused);
    /* One wait is 300 ms; one a refusal would be 4.8 s and more. */
    cr_expect_lt(ms, 2400, "%d refusals took %ld ms", refused, ms);
    rt_client_destroy(&c);
    rt_destroy(&rt);
    rmdir(dir);
}

/* ---- Timeouts -------------------------------------------------------------- */

Test(timeout, a_slow_reply_times_out_and_is_counted_stale)
{
    echo_config_t slow = {.delay_ms = 300};
    rt_t *rt;
    rt_client_t *c = s_start_echo(&rt, &slow);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "late");
    rt_msg_t reply;
    cr_expect_eq(rt_call(rt_client_actor(c), "echo", &env, &reply, 20), -ETIMEDOUT);
    /* The late reply arrives during the next call and is set aside, then
     * dropped as stale. */
    s_expect_echo(rt_client_actor(c), "echo", "next");
    cr_expect_eq(rt_client_recv(c, &reply, 50), -ETIMEDOUT);
    rt_stats_t stats;
    rt_stats(rt, &stats);
    cr_expect_eq(stats.rx_stale_reply, 1);
    rt_destroy(&rt);
}

Test(timeout, an_async_request_gets_its_reply_or_a_timeout_error)
{
    echo_config_t slow = {.delay_ms = 200};
    rt_t *rt;
    rt_client_t *c = s_start_echo(&rt, &slow);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "async");
    uint64_t quick, patient;
    cr_assert_eq(rt_request(rt_client_actor(c), "echo", &env, 10, &quick), 0);
    cr_assert_eq(rt_request(rt_client_actor(c), "echo", &env, 5000, &patient), 0);
    cr_expect_neq(quick, patient);

    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(c, &msg, 5000), 0);
    cr_expect_eq(msg.env->reply_to, quick);
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(msg.env->error->code, VMM__ERROR_CODE__TIMEOUT);
    rt_msg_release(&msg);
    cr_assert_eq(rt_client_recv(c, &msg, 5000), 0);
    cr_expect_eq(msg.env->reply_to, patient);
    cr_expect_eq(msg.env->body_case, VMM__ENVELOPE__BODY_PONG);
    rt_msg_release(&msg);
    rt_destroy(&rt);
}

/* An actor that makes an async request from a handler and reports the reply
 * it got to whoever asked. */
typedef struct {
    char asker[64];
    uint64_t asked_id, request_id;
    int replies;
} s_asker_t;

static int s_asker_init(rt_actor_t *self, void *arg)
{
    (void)arg;
    s_asker_t *st = calloc(1, sizeof *st);
    rt_actor_set_state(self, st);
    return st ? 0 : -ENOMEM;
}

static void s_asker_fini(rt_actor_t *self)
{
    free(rt_actor_state(self));
}

static int s_asker_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_asker_t *st = rt_actor_state(self);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "");
    ping.payload = msg->ping->payload;
    snprintf(st->asker, sizeof st->asker, "%s", msg->sender);
    int rc = rt_request(self, "echo", &env, 5000, &st->request_id);
    if (rc)
        return rc;
    return rt_reply_ack(self, msg);
}

static void s_asker_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_asker_t *st = rt_actor_state(self);
    if (reply->reply_to != st->request_id || reply->body_case != VMM__ENVELOPE__BODY_PONG)
        return;
    st->replies++;
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "");
    ping.payload = reply->pong->payload;
    rt_send(self, st->asker, &env);
}

Test(timeout, async_replies_reach_on_reply_on_the_same_and_other_executors)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_asker_on_ping}};
    static const rt_actor_ops_t asker_ops = {.kind = "asker", .init = s_asker_init,
                                             .fini = s_asker_fini, .handlers = handlers,
                                             .n_handlers = 1, .on_reply = s_asker_on_reply};
    for (int placement = 0; placement < 2; placement++) {
        rt_t *rt;
        rt_client_t *c = s_start_beside_echo(&rt, placement, &asker_ops, "asker");
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "round");
        rt_msg_t msg;
        cr_assert_eq(rt_call(rt_client_actor(c), "asker", &env, &msg, 5000), 0);
        cr_expect_eq(msg.env->body_case, VMM__ENVELOPE__BODY_ACK);
        rt_msg_release(&msg);
        cr_assert_eq(rt_client_recv(c, &msg, 5000), 0, "placement %d", placement);
        cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_PING);
        cr_expect_eq(msg.env->request_id, 0, "an event");
        cr_expect_str_eq(msg.env->sender, "asker");
        cr_expect_eq(msg.env->ping->payload.len, 5);
        rt_msg_release(&msg);
        rt_destroy(&rt);
    }
}

/* ---- Raw descriptors and blocking actors ----------------------------------- */

typedef struct {
    int efd;
    atomic_int runs, kicks;
    unsigned long long seen;
} s_blocker_t;

static void s_on_efd(rt_actor_t *self, int fd)
{
    s_blocker_t *b = rt_actor_state(self);
    uint64_t v;
    if (read(fd, &v, sizeof v) == sizeof v)
        b->seen += v;
}

static int s_blocker_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

/* Blocks for 10 s unless kicked, like a VP in KVM_RUN. A kick ends one
 * block only: the kick signal may end the wait first (EINTR), and what
 * the kick wrote must not end the next one too. */
static rt_run_t s_blocker_run(rt_actor_t *self)
{
    s_blocker_t *b = rt_actor_state(self);
    atomic_fetch_add(&b->runs, 1);
    struct pollfd pfd = {.fd = b->efd, .events = POLLIN};
    struct timespec ten = {10, 0};
    ppoll(&pfd, 1, &ten, NULL);
    uint64_t v;
    if (read(b->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        return RT_RUN_IDLE;
    return RT_RUN_AGAIN;
}

static void s_blocker_kick(rt_actor_t *self)
{
    s_blocker_t *b = rt_actor_state(self);
    uint64_t one = 1;
    atomic_fetch_add(&b->kicks, 1);
    if (write(b->efd, &one, sizeof one) < 0)
        abort();
}

static void s_blocker_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    s_blocker_t *b = rt_actor_state(self);
    rt_inspect_add(node, "seen", "%llu", b->seen);
}

Test(blocking, a_message_kicks_the_actor_out_of_its_block)
{
    static const rt_actor_ops_t blocker_ops = {.kind = "blocker", .init = s_blocker_init,
                                               .run = s_blocker_run, .kick = s_blocker_kick};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "blocker", .ops = &blocker_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    s_blocker_t b2 = {.efd = -1};
    rt_actor_spec_t second = {.name = "blocker2", .ops = &blocker_ops, .arg = &b2};
    cr_expect_eq(rt_actor_start(ex, &second), -EBUSY, "one thread blocks in one run");
    rt_actor_spec_t other = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &other), 0, "a device may share its VP's executor");

    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 5; i++) {
        while (atomic_load(&b.runs) <= i)
            usleep(100); /* it is inside run, blocked for 10 s */
        /* Each call is answered within its 5 s deadline, only because the
         * kick ends the 10 s block; a message for the executor's other
         * actor kicks it as well. */
        s_expect_echo(rt_client_actor(c), i % 2 ? "echo" : "blocker", "wake up");
    }
    cr_expect_geq(atomic_load(&b.kicks), 5);
    rt_destroy(&rt);
    close(b.efd);
}

/* More messages than one turn takes (256 a mailbox): the rest wait in a
 * pipe whose descriptor will not signal again, so the executor must take
 * them before it blocks, not sleep through them (here for 10 s). */
Test(blocking, a_burst_longer_than_one_turn_is_taken_before_it_blocks)
{
    static const rt_actor_ops_t blocker_ops = {.kind = "blocker", .init = s_blocker_init,
                                               .run = s_blocker_run, .kick = s_blocker_kick};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "blocker", .ops = &blocker_ops, .arg = &b};
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int round = 0; round < 3; round++) {
        while (atomic_load(&b.runs) <= round)
            usleep(100);
        for (int i = 0; i < 2000; i++) {
            Vmm__Envelope env;
            Vmm__Rt__Ping ping;
            s_ping(&env, &ping, "burst");
            cr_assert_eq(rt_send(rt_client_actor(c), "echo", &env), 0);
        }
        /* Answered within 5 s only if nothing was slept through. */
        cr_expect_eq(echo_inspect_number(rt_client_actor(c), "echo", "events"),
                     2000 * (round + 1));
    }
    rt_destroy(&rt);
    close(b.efd);
}

/* Runs once per wake-up, then has nothing to do. */
static rt_run_t s_idle_run(rt_actor_t *self)
{
    s_blocker_t *b = rt_actor_state(self);
    atomic_fetch_add(&b->runs, 1);
    return RT_RUN_IDLE;
}

Test(blocking, an_idle_actor_runs_again_after_a_message)
{
    static const rt_actor_ops_t idle_ops = {.kind = "idle", .init = s_blocker_init,
                                            .run = s_idle_run, .kick = s_blocker_kick};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "idle", .ops = &idle_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 1; i <= 3; i++) {
        for (int wait = 0; wait < 5000 && atomic_load(&b.runs) < i; wait++)
            usleep(1000);
        cr_expect_eq(atomic_load(&b.runs), i, "one run per message, and one at start");
        s_expect_echo(rt_client_actor(c), "idle", "more work");
    }
    rt_destroy(&rt);
    close(b.efd);
}

/* Sends one event to echo, flushes it, then blocks for 10 s: the event must
 * arrive while run is still blocked. */
static rt_run_t s_sender_run(rt_actor_t *self)
{
    s_blocker_t *b = rt_actor_state(self);
    if (!atomic_load(&b->runs)) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "from run");
        if (rt_send(self, "echo", &env))
            return RT_RUN_IDLE;
        rt_flush(self);
    }
    return s_blocker_run(self);
}

Test(blocking, events_sent_from_run_leave_on_flush)
{
    static const rt_actor_ops_t sender_ops = {.kind = "sender", .init = s_blocker_init,
                                              .run = s_sender_run, .kick = s_blocker_kick};
    rt_t *rt;
    rt_client_t *c = s_start_echo(&rt, NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "sender", .ops = &sender_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    long long events = 0;
    for (int i = 0; i < 2000 && events != 1; i++) {
        usleep(1000);
        events = echo_inspect_number(rt_client_actor(c), "echo", "events");
    }
    cr_expect_eq(events, 1);
    /* run counts itself just after its flush, and may not have yet. */
    for (int i = 0; i < 2000 && !atomic_load(&b.runs); i++)
        usleep(1000);
    cr_expect_eq(atomic_load(&b.runs), 1, "run has not returned: the event left on flush");
    rt_destroy(&rt);
    close(b.efd);
}

/* The same with the echo on the sender's own executor: delivered by the
 * flush, on this thread, while run has not returned. */
Test(blocking, events_from_run_to_a_neighbour_arrive_on_flush)
{
    static const rt_actor_ops_t sender_ops = {.kind = "sender", .init = s_blocker_init,
                                              .run = s_sender_run, .kick = s_blocker_kick};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "sender", .ops = &sender_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    while (!atomic_load(&b.runs))
        usleep(1000);
    /* Run is blocked now, having flushed: ask the echo (which kicks run). */
    rt_client_t *c = rt_client_new(rt, "test");
    cr_expect_eq(echo_inspect_number(rt_client_actor(c), "echo", "events"), 1);
    rt_destroy(&rt);
    close(b.efd);
}

static int s_watch_init(rt_actor_t *self, void *arg)
{
    s_blocker_t *b = arg;
    rt_actor_set_state(self, b);
    return rt_actor_watch_fd(self, b->efd, s_on_efd);
}

/* A Ping makes the actor stop watching its descriptor. */
static int s_watch_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_blocker_t *b = rt_actor_state(self);
    int rc = rt_actor_unwatch_fd(self, b->efd);
    return rc ? rc : rt_reply_ack(self, msg);
}

Test(blocking, a_watched_descriptor_runs_its_callback)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_watch_on_ping}};
    static const rt_actor_ops_t watch_ops = {.kind = "watch", .init = s_watch_init,
                                             .inspect = s_blocker_inspect,
                                             .handlers = handlers, .n_handlers = 1};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "watch", .ops = &watch_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    uint64_t three = 3;
    cr_assert_eq(write(b.efd, &three, sizeof three), sizeof three);

    rt_client_t *c = rt_client_new(rt, "test");
    long long seen = 0;
    for (int i = 0; i < 5000 && seen != 3; i++) {
        usleep(1000);
        seen = echo_inspect_number(rt_client_actor(c), "watch", "seen");
    }
    cr_expect_eq(seen, 3);

    /* Unwatched, a write is no longer seen: the loop handles the mailbox and
     * a ready descriptor in the same round, so two rounds would show it. */
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "unwatch");
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "watch", &env, &reply, 5000), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_assert_eq(write(b.efd, &three, sizeof three), sizeof three);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(echo_inspect_number(rt_client_actor(c), "watch", "seen"), 3);
    rt_destroy(&rt);
    close(b.efd);
}

/* ---- Timers ----------------------------------------------------------------- */

#define S_TIMER_FIRES 8

/* What a timer actor saw: which timer fired, in order, and when. */
typedef struct {
    atomic_int n;
    uint64_t ids[S_TIMER_FIRES];
    uint64_t at_ns[S_TIMER_FIRES];
    uint64_t start_ns;
    int repeats; /* timer 7 arms itself again this many times */
} s_timers_t;

static void s_on_timer(rt_actor_t *self, uint64_t id)
{
    s_timers_t *t = rt_actor_state(self);
    int n = atomic_load(&t->n);
    if (n < S_TIMER_FIRES) {
        t->ids[n] = id;
        t->at_ns[n] = rt_now_ns(self);
        atomic_store(&t->n, n + 1);
    }
    if (id == 7 && t->repeats-- > 0)
        rt_timer_set(self, 7, rt_now_ns(self) + 1000000, s_on_timer);
}

/* Arms 3 at +30 ms, 1 at +10 ms, 2 at +50 ms then moved to +20 ms, 4 at
 * +15 ms then cancelled, and 7 at +40 ms, which arms itself twice more. */
static int s_timers_init(rt_actor_t *self, void *arg)
{
    s_timers_t *t = arg;
    rt_actor_set_state(self, t);
    uint64_t now = t->start_ns = rt_now_ns(self);
    const uint64_t ms = 1000000;
    int rc = rt_timer_set(self, 3, now + 30 * ms, s_on_timer);
    rc = rc ? rc : rt_timer_set(self, 1, now + 10 * ms, s_on_timer);
    rc = rc ? rc : rt_timer_set(self, 2, now + 50 * ms, s_on_timer);
    rc = rc ? rc : rt_timer_set(self, 2, now + 20 * ms, s_on_timer);
    rc = rc ? rc : rt_timer_set(self, 4, now + 15 * ms, s_on_timer);
    rc = rc ? rc : rt_timer_cancel(self, 4);
    rc = rc ? rc : rt_timer_set(self, 7, now + 40 * ms, s_on_timer);
    if (!rc && rt_timer_cancel(self, 5) != -ENOENT)
        rc = -EPROTO;
    return rc;
}

static void s_expect_timers(s_timers_t *t)
{
    for (int i = 0; i < 5000 && atomic_load(&t->n) < 6; i++)
        usleep(1000);
    usleep(50000); /* nothing more may come */
    cr_assert_eq(atomic_load(&t->n), 6, "fired %d timers", atomic_load(&t->n));
    const uint64_t want[] = {1, 2, 3, 7, 7, 7}, not_before_ms[] = {10, 20, 30, 40, 41, 42};
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(t->ids[i], want[i], "fire %d was timer %llu", i,
                     (unsigned long long)t->ids[i]);
        cr_expect_geq(t->at_ns[i] - t->start_ns, not_before_ms[i] * 1000000,
                      "timer %llu fired early", (unsigned long long)t->ids[i]);
    }
}

Test(timers, fire_once_in_deadline_order_and_can_be_moved_or_cancelled)
{
    static const rt_actor_ops_t ops = {.kind = "timers", .init = s_timers_init};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex");
    s_timers_t t = {.repeats = 2};
    rt_actor_spec_t spec = {.name = "timers", .ops = &ops, .arg = &t};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    s_expect_timers(&t);
    rt_destroy(&rt);
}

/* A device's timer on a VP's executor fires while the VP blocks in run. */
Test(timers, a_timer_kicks_a_blocking_neighbour)
{
    static const rt_actor_ops_t ops = {.kind = "timers", .init = s_timers_init};
    static const rt_actor_ops_t blocker_ops = {.kind = "blocker", .init = s_blocker_init,
                                               .run = s_blocker_run, .kick = s_blocker_kick};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t blocker = {.name = "blocker", .ops = &blocker_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &blocker), 0);
    while (!atomic_load(&b.runs))
        usleep(1000);
    s_timers_t t = {.repeats = 2};
    rt_actor_spec_t spec = {.name = "timers", .ops = &ops, .arg = &t};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    s_expect_timers(&t); /* within 5 s, though run blocks 10 s unless kicked */
    rt_destroy(&rt);
    close(b.efd);
}

/* A neighbour that arms its first timer when a Ping reaches it. */
static atomic_int s_armed_fired;

static void s_on_armed(rt_actor_t *self, uint64_t id)
{
    (void)self;
    (void)id;
    atomic_store(&s_armed_fired, 1);
}

static int s_armer_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    return rt_timer_set(self, 1, rt_now_ns(self) + 20 * 1000000, s_on_armed);
}

/* The first timer of an executor, armed while its blocking actor is in
 * run (by a neighbour whose event run's flush delivered): the watcher must
 * poll the new timer at once, or nothing ends run's block to fire it. */
Test(timers, a_first_timer_armed_inside_run_kicks_it)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_armer_on_ping}};
    static const rt_actor_ops_t armer_ops = {.kind = "armer", .handlers = handlers,
                                             .n_handlers = 1};
    static const rt_actor_ops_t sender_ops = {.kind = "sender", .init = s_blocker_init,
                                              .run = s_sender_run, .kick = s_blocker_kick};
    atomic_store(&s_armed_fired, 0);
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "vp0");
    rt_actor_spec_t armer = {.name = "echo", .ops = &armer_ops};
    cr_assert_eq(rt_actor_start(ex, &armer), 0);
    s_blocker_t b = {.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    rt_actor_spec_t spec = {.name = "sender", .ops = &sender_ops, .arg = &b};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    for (int i = 0; i < 5000 && !atomic_load(&s_armed_fired); i++)
        usleep(1000);
    cr_expect(atomic_load(&s_armed_fired), "the timer fired though run blocks for 10 s");
    /* The kick comes before the timer fires; run's next turn may not have
     * begun yet, so count kicks, not runs. */
    cr_expect_geq(atomic_load(&b.kicks), 1, "run was kicked for the timer");
    rt_destroy(&rt);
    close(b.efd);
}

/* ---- Introspection, tap, logging ------------------------------------------- */

static void s_collect(void *arg, const char *name, const char *kind)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s=%s;", name, kind);
}

/* rt_call_expect(): the reply of the kind asked for, or an errno and a
 * reason for an Error, another kind, or no answer. */
Test(calls, a_call_expecting_a_kind_says_why_it_failed)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    cr_assert_eq(rt_actor_start(ex, &(rt_actor_spec_t){.name = "echo", .ops = &echo_ops}), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "hi", 2);
    char why[128] = "";
    rt_msg_t reply;
    cr_assert_eq(rt_call_expect(rt_client_actor(c), "echo", &env, VMM__ENVELOPE__BODY_PONG,
                                &reply, 5000, why, sizeof why),
                 0);
    cr_expect_eq(reply.env->pong->payload.len, 2, "the reply is the caller's");
    rt_msg_release(&reply);
    cr_expect_eq(rt_call_expect(rt_client_actor(c), "echo", &env, VMM__ENVELOPE__BODY_ACK, NULL,
                                5000, why, sizeof why),
                 -EIO);
    cr_expect(strstr(why, "echo answered with body kind"), "%s", why);
    Vmm__Envelope bad = VMM__ENVELOPE__INIT;
    Vmm__Vp__Request vreq = VMM__VP__REQUEST__INIT;
    bad.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    bad.vp_request = &vreq;
    cr_expect_eq(rt_call_expect(rt_client_actor(c), "echo", &bad, VMM__ENVELOPE__BODY_ACK, NULL,
                                5000, why, sizeof why),
                 -ENOTSUP, "an Error reply's code as an errno");
    cr_expect(!strncmp(why, "echo: ", 6), "%s", why);
    cr_expect_eq(rt_call_expect(rt_client_actor(c), "nobody", &env, VMM__ENVELOPE__BODY_PONG,
                                NULL, 200, why, sizeof why),
                 -ENOENT);
    cr_expect(strstr(why, "nobody did not answer"), "%s", why);
    rt_destroy(&rt);
}

Test(observe, the_actors_of_a_process_can_be_listed)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    cr_assert_eq(rt_actor_start(ex, &(rt_actor_spec_t){.name = "vm0/echo", .ops = &echo_ops}), 0);
    rt_client_t *c = rt_client_new(rt, "vm0/main");
    char seen[256] = "";
    cr_expect_eq(rt_actors_each(rt, s_collect, seen), 2);
    cr_expect(strstr(seen, "vm0/echo=echo;") && strstr(seen, "vm0/main=client;"), "%s", seen);
    rt_client_destroy(&c);
    seen[0] = '\0';
    cr_expect_eq(rt_actors_each(rt, s_collect, seen), 1, "%s", seen);
    rt_destroy(&rt);
}

Test(observe, inspect_returns_the_actor_state_as_a_tree)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "vm0/dev/echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    s_expect_echo(rt_client_actor(c), "vm0/dev/echo", "one");

    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "vm0/dev/echo", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_INSPECT_REPLY);
    Vmm__Rt__InspectNode *root = reply.env->inspect_reply;
    cr_expect_str_eq(root->name, "vm0/dev/echo");
    cr_expect_str_eq(root->value, "echo");
    int found = 0;
    for (size_t i = 0; i < root->n_children; i++) {
        if (!strcmp(root->children[i]->name, "executor"))
            found += !strcmp(root->children[i]->value, "ex0");
        if (!strcmp(root->children[i]->name, "pings"))
            found += !strcmp(root->children[i]->value, "1");
        if (!strcmp(root->children[i]->name, "last_sender"))
            found += !strcmp(root->children[i]->value, "test");
    }
    cr_expect_eq(found, 3);
    rt_msg_release(&reply);
    rt_destroy(&rt);
}

typedef struct {
    atomic_int tx, rx;
    atomic_size_t bytes;
} s_tap_counts_t;

static void s_tap(void *arg, rt_tap_dir_t dir, const char *actor, const uint8_t *bytes,
                  size_t len)
{
    s_tap_counts_t *t = arg;
    Vmm__Envelope *env = vmm__envelope__unpack(NULL, len, bytes);
    if (env && (!strcmp(actor, "echo") || !strcmp(actor, "relay") || !strcmp(actor, "test") ||
                !strcmp(actor, "sharer"))) {
        atomic_fetch_add(dir == RT_TAP_TX ? &t->tx : &t->rx, 1);
        atomic_fetch_add(&t->bytes, len);
    }
    vmm__envelope__free_unpacked(env, NULL);
}

Test(observe, the_tap_sees_every_envelope_on_every_path)
{
    rt_t *rt = rt_new(NULL);
    s_tap_counts_t t = {0};
    rt_set_tap(rt, s_tap, &t);
    rt_executor_t *ex = rt_executor_new(rt, "shared");
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t relay = {.name = "relay", .ops = &s_relay_ops, .arg = "echo"};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    cr_assert_eq(rt_actor_start(ex, &relay), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    s_expect_echo(rt_client_actor(c), "relay", "tapped");
    /* test -> relay (mailbox), relay -> echo (nested), and both replies:
     * four envelopes, each sent once and received once. */
    cr_expect_eq(atomic_load(&t.tx), 4);
    cr_expect_eq(atomic_load(&t.rx), 4);
    rt_destroy(&rt);
}

Test(observe, logging_is_quiet_by_default_and_tagged, .init = cr_redirect_stderr)
{
    unsetenv("VMM_LOG");
    rt_t *rt = rt_new(NULL);
    rt_log(rt, NULL, RT_LOG_INFO, "not shown");
    rt_log(rt, NULL, RT_LOG_WARN, "shown");
    rt_destroy(&rt);

    rt_config_t cfg = {.log_level = RT_LOG_DEBUG, .log_level_set = true};
    rt = rt_new(&cfg);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_spec_t echo = {.name = "vm0/dev/com1", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);
    rt_destroy(&rt);
    fflush(stderr);

    FILE *f = cr_get_redirected_stderr();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    cr_expect(strstr(buf, "not shown") == NULL, "%s", buf);
    cr_expect(strstr(buf, "warn  rt: shown") != NULL, "%s", buf);
    cr_expect(strstr(buf, "debug vm0/dev/com1: started (echo) on ex0") != NULL, "%s", buf);
}

/* An actor that keeps a pointer to itself where its arg says, to log as. */
static int s_self_init(rt_actor_t *self, void *arg)
{
    *(rt_actor_t **)arg = self;
    return 0;
}

static double s_seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* One actor's flood of log lines (a peer's bad input, each refused and
 * logged) is cut to a burst and a rate and counted in its Inspect; another
 * actor's line still goes out; the flooder's next line says how many it
 * lost. */
Test(observe, a_flood_of_log_lines_is_cut_to_a_burst_and_counted, .init = cr_redirect_stderr)
{
    static const rt_actor_ops_t self_ops = {.kind = "self", .init = s_self_init};
    unsetenv("VMM_LOG");
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    rt_actor_t *flooder = NULL;
    rt_actor_spec_t spec = {.name = "flooder", .ops = &self_ops, .arg = &flooder};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    cr_assert_not_null(flooder);
    rt_client_t *c = rt_client_new(rt, "test");
    cr_assert_not_null(c);

    enum { N = 1000 };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        rt_log(rt, flooder, RT_LOG_WARN, "flood %d", i);
    double took = s_seconds_since(&t0);
    rt_log(rt, rt_client_actor(c), RT_LOG_WARN, "a line of its own");
    long long suppressed = echo_inspect_number(rt_client_actor(c), "flooder", "logs_suppressed");
    usleep(2 * 1000000 / RT_LOG_PER_S);
    rt_log(rt, flooder, RT_LOG_WARN, "after the flood");
    rt_destroy(&rt);
    fflush(stderr);

    FILE *f = cr_get_redirected_stderr();
    long long written = 0;
    bool own = false, told = false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        written += strstr(line, "warn  flooder: flood ") != NULL;
        own |= strstr(line, "warn  test: a line of its own") != NULL;
        if (strstr(line, "flooder: after the flood")) {
            char want[96];
            snprintf(want, sizeof want, "(%lld lines before this not logged: too many)",
                     suppressed);
            told = strstr(line, want) != NULL;
        }
    }
    /* The burst at once, then one a 1/RT_LOG_PER_S s the loop lasted. */
    long long most = RT_LOG_BURST + (long long)(took * RT_LOG_PER_S) + 1;
    cr_expect(written >= RT_LOG_BURST && written <= most, "%lld lines written in %.3f s", written,
              took);
    cr_expect_eq(written + suppressed, N, "%lld written, %lld counted", written, suppressed);
    cr_expect(own, "another actor's line was cut too");
    cr_expect(told, "the next line does not say that %lld were not logged", suppressed);
}

/* ---- Lent replies ------------------------------------------------------------ */

typedef struct {
    int calls;
    size_t payload_len;
} s_lent_t;

static int s_on_lent(void *arg, const Vmm__Envelope *reply)
{
    s_lent_t *lent = arg;
    lent->calls++;
    if (reply->body_case != VMM__ENVELOPE__BODY_PONG)
        return -EPROTO;
    lent->payload_len = reply->pong->payload.len;
    return 42;
}

/* Calls echo with rt_call_with from inside a handler and answers with what
 * the callback saw. */
static int s_lender_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_lent_t lent = {0};
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = msg->ping;
    int rc = rt_call_with(self, "echo", &env, 5000, s_on_lent, &lent);
    return rt_reply_error(self, msg, VMM__ERROR_CODE__ERROR_CODE_UNSPECIFIED,
                          "rc=%d calls=%d len=%zu", rc, lent.calls, lent.payload_len);
}

Test(lend, the_reply_is_lent_to_the_callback_once_on_every_path)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_lender_on_ping}};
    static const rt_actor_ops_t lender_ops = {.kind = "lender", .handlers = handlers,
                                              .n_handlers = 1};
    for (int placement = 0; placement < 2; placement++) {
        rt_t *rt;
        rt_client_t *c = s_start_beside_echo(&rt, placement, &lender_ops, "lender");
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "seven b");
        rt_msg_t reply;
        cr_assert_eq(rt_call(rt_client_actor(c), "lender", &env, &reply, 5000), 0);
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
        cr_expect_str_eq(reply.env->error->text, "rc=42 calls=1 len=7", "placement %d",
                         placement);
        rt_msg_release(&reply);

        /* A call that fails never reaches the callback. */
        s_lent_t lent = {0};
        cr_expect_eq(rt_call_with(rt_client_actor(c), "nobody", &env, 100, s_on_lent, &lent),
                     -ENOENT);
        cr_expect_eq(lent.calls, 0);
        rt_destroy(&rt);
    }
}

/* A client that releases a request unanswered: its next receive answers it
 * with an error, from copies (the request is gone), and an event released
 * the same way owes nothing. */
Test(client, a_request_left_unanswered_is_answered_for_it)
{
    rt_t *rt = rt_new(NULL);
    rt_client_t *a = rt_client_new(rt, "a"), *b = rt_client_new(rt, "b");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "event");
    cr_assert_eq(rt_send(rt_client_actor(a), "b", &env), 0);
    rt_flush(rt_client_actor(a));
    s_ping(&env, &ping, "request");
    uint64_t id;
    cr_assert_eq(rt_request(rt_client_actor(a), "b", &env, 5000, &id), 0);

    rt_msg_t msg;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(rt_client_recv(b, &msg, 5000), 0);
        cr_expect_eq(msg.env->request_id != 0, i == 1);
        rt_msg_release(&msg); /* neither is answered */
    }
    cr_expect_eq(rt_client_recv(b, &msg, 10), -ETIMEDOUT);

    cr_assert_eq(rt_client_recv(a, &msg, 5000), 0);
    cr_expect_eq(msg.env->reply_to, id);
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(msg.env->error->code, VMM__ERROR_CODE__INTERNAL);
    cr_expect(strstr(msg.env->error->text, "did not answer") != NULL);
    rt_msg_release(&msg);
    cr_expect_eq(rt_client_recv(a, &msg, 10), -ETIMEDOUT, "the event owed nothing");
    rt_destroy(&rt);
}

/* A receive with no time to wait still takes what has arrived. */
Test(client, a_zero_timeout_takes_what_is_there)
{
    rt_t *rt = rt_new(NULL);
    rt_client_t *a = rt_client_new(rt, "a"), *b = rt_client_new(rt, "b");
    rt_msg_t msg;
    cr_expect_eq(rt_client_recv(b, &msg, 0), -ETIMEDOUT, "nothing yet");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "here");
    cr_assert_eq(rt_send(rt_client_actor(a), "b", &env), 0);
    rt_flush(rt_client_actor(a));
    int rc = -ETIMEDOUT;
    for (int i = 0; i < 1000 && rc; i++) {
        rc = rt_client_recv(b, &msg, 0);
        if (rc)
            usleep(1000); /* inproc delivery takes a moment */
    }
    cr_assert_eq(rc, 0);
    cr_expect_eq(msg.env->body_case, VMM__ENVELOPE__BODY_PING);
    rt_msg_release(&msg);
    rt_destroy(&rt);
}

/* An event that cannot be delivered is counted as lost to its receiver, so
 * that an owner waiting for events knows one will not come. */
Test(client, what_could_not_be_delivered_is_counted_lost_to_the_receiver)
{
    rt_t *rt = rt_new(NULL);
    rt_client_t *a = rt_client_new(rt, "a"), *b = rt_client_new(rt, "b");
    rt_client_t *c = rt_client_new(rt, "c");
    cr_assert_eq(rt_fault_drop(rt, "a", "b"), 0);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "lost");
    cr_expect_eq(rt_send(rt_client_actor(a), "b", &env), -EPIPE);
    cr_expect_eq(rt_send(rt_client_actor(a), "b", &env), -EPIPE);
    cr_expect_eq(rt_send(rt_client_actor(c), "b", &env), 0, "only a to b is broken");
    cr_expect_eq(rt_send(rt_client_actor(a), "c", &env), 0);
    cr_expect_eq(rt_send(rt_client_actor(a), "nobody", &env), -ENOENT);
    rt_flush(rt_client_actor(a));
    rt_flush(rt_client_actor(c));
    cr_expect_eq(rt_client_lost(b), 2);
    cr_expect_eq(rt_client_lost(c), 0);
    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(b, &msg, 2000), 0, "c's event");
    cr_expect_str_eq(msg.env->sender, "c");
    rt_msg_release(&msg);
    cr_expect_eq(rt_client_recv(b, &msg, 100), -ETIMEDOUT, "nothing of a's");
    rt_stats_t stats;
    rt_stats(rt, &stats);
    cr_expect_eq(stats.tx_refused, 3, "two dropped, one unroutable");
    rt_destroy(&rt);
}

/* ---- Actors starting actors ------------------------------------------------- */

/* On a Ping, starts an echo on its own executor, then calls it. */
static int s_parent_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    rt_actor_spec_t child = {.name = "child", .ops = &echo_ops};
    int rc = rt_actor_start(rt_actor_executor(self), &child);
    if (rc)
        return rc;
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "hello child");
    rt_msg_t reply;
    rc = rt_call(self, "child", &env, &reply, 5000);
    if (rc)
        return rc;
    rc = reply.env->body_case == VMM__ENVELOPE__BODY_PONG ? rt_reply_ack(self, msg) : -EIO;
    rt_msg_release(&reply);
    return rc;
}

Test(actors, an_actor_starts_another_on_its_own_executor)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_parent_on_ping}};
    static const rt_actor_ops_t parent_ops = {.kind = "parent", .handlers = handlers,
                                              .n_handlers = 1};
    rt_t *rt = rt_new(NULL);
    rt_actor_spec_t spec = {.name = "parent", .ops = &parent_ops};
    cr_assert_eq(rt_actor_start(rt_executor_new(rt, "ex0"), &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "start it");
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "parent", &env, &reply, 5000), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK, "started, and it answered");
    rt_msg_release(&reply);
    s_expect_echo(rt_client_actor(c), "child", "from outside too");
    rt_destroy(&rt);
}

/* ---- Terminating loses nothing --------------------------------------------------- */

static int s_count_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    atomic_fetch_add((atomic_int *)rt_actor_state(self), 1);
    return 0;
}

static int s_count_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

Test(executor, what_reached_a_mailbox_before_terminate_is_handled)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_count_on_ping}};
    static const rt_actor_ops_t counter_ops = {.kind = "counter", .init = s_count_init,
                                               .handlers = handlers, .n_handlers = 1};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    atomic_int count = 0;
    rt_actor_spec_t spec = {.name = "counter", .ops = &counter_ops, .arg = &count};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "one of many");
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(rt_send(rt_client_actor(c), "counter", &env), 0);
        rt_flush(rt_client_actor(c)); /* one message each: too many to read in one turn */
    }
    rt_executor_destroy(&ex); /* at once: most are still in the mailbox */
    cr_expect_eq(atomic_load(&count), 5000);
    rt_destroy(&rt);
}

/* An actor whose fini takes a while: what reaches its mailbox then, after
 * the last turn and before it leaves the runtime, nobody reads. Its fini
 * waits for the asker's request to be out, then a little more. */
static atomic_int s_slow_fini_entered, s_asked, s_asker_code = -1;

static void s_slow_fini(rt_actor_t *self)
{
    (void)self;
    atomic_store(&s_slow_fini_entered, 1);
    for (int i = 0; i < 5000 && !atomic_load(&s_asked); i++)
        usleep(1000);
    usleep(500 * 1000);
}

/* Asks "leaving" on a Ping, from an executor's loop (rt_request()), and
 * keeps the answer's error code. */
static int s_leaving_asker_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    Vmm__Envelope env = *msg;
    env.request_id = 0;
    int rc = rt_request(self, "leaving", &env, 10000, NULL);
    atomic_store(&s_asked, 1);
    return rc;
}

static void s_leaving_asker_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    (void)self;
    atomic_store(&s_asker_code, reply->body_case == VMM__ENVELOPE__BODY_ERROR
                                    ? (int)reply->error->code
                                    : 0);
}

static void *s_destroy_executor(void *arg)
{
    rt_executor_destroy((rt_executor_t **)arg);
    return NULL;
}

Test(executor, a_request_to_an_actor_that_leaves_unread_ends_when_it_leaves)
{
    static const rt_handler_t handlers[] = {{VMM__ENVELOPE__BODY_PING, s_count_on_ping}};
    static const rt_actor_ops_t ops = {.kind = "leaving", .init = s_count_init,
                                       .fini = s_slow_fini, .handlers = handlers,
                                       .n_handlers = 1};
    static const rt_handler_t leaving_asker_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_leaving_asker_on_ping}};
    static const rt_actor_ops_t asker_ops = {.kind = "asker", .handlers = leaving_asker_handlers,
                                             .n_handlers = 1, .on_reply = s_leaving_asker_on_reply};
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0"), *ex1 = rt_executor_new(rt, "ex1");
    atomic_int count = 0;
    rt_actor_spec_t spec = {.name = "leaving", .ops = &ops, .arg = &count};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    rt_actor_spec_t asker = {.name = "asker", .ops = &asker_ops};
    cr_assert_eq(rt_actor_start(ex1, &asker), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, s_destroy_executor, &ex), 0);
    while (!atomic_load(&s_slow_fini_entered))
        usleep(1000);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "unread");
    cr_assert_eq(rt_send(rt_client_actor(c), "asker", &env), 0);
    rt_flush(rt_client_actor(c));
    while (!atomic_load(&s_asked))
        usleep(1000);
    uint64_t id;
    cr_assert_eq(rt_request(rt_client_actor(c), "leaving", &env, 10000, &id), 0);
    rt_msg_t reply;
    /* Without looking, each would last its whole 10 s and time out. */
    cr_expect_eq(rt_call(rt_client_actor(c), "leaving", &env, &reply, 10000), -ENOENT);
    cr_assert_eq(rt_client_recv(c, &reply, 10000), 0);
    cr_expect_eq(reply.env->reply_to, id);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__NOT_FOUND, "%s",
                 reply.env->error->text);
    rt_msg_release(&reply);
    pthread_join(t, NULL);
    for (int i = 0; i < 2000 && atomic_load(&s_asker_code) < 0; i++)
        usleep(1000);
    cr_expect_eq(atomic_load(&s_asker_code), VMM__ERROR_CODE__NOT_FOUND,
                 "the asker's request ended when its receiver left");
    cr_expect_eq(atomic_load(&count), 0, "nobody read them");
    rt_executor_destroy(&ex1);
    rt_destroy(&rt);
}

/* ---- Deferred replies ------------------------------------------------------ */

/* Answers each Ping with the Pong its peer gives an async request of its
 * own: the reply waits, deferred, until on_reply. A caller on its own
 * thread cannot wait so; then it answers at once. */
typedef struct {
    const char *peer;
    rt_deferred_t *owed;
    uint64_t request_id;
    int answered_now;
} s_later_t;

static int s_later_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_later_t *st = rt_actor_state(self);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "");
    ping.payload = msg->ping->payload;
    if (!(st->owed = rt_defer(self, msg))) {
        st->answered_now++;
        return echo_reply_text(self, msg, "now");
    }
    cr_expect_eq(rt_defer(self, msg), NULL, "deferred once only");
    return rt_request(self, st->peer, &env, 5000, &st->request_id);
}

static void s_later_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_later_t *st = rt_actor_state(self);
    if (reply->reply_to != st->request_id || !st->owed)
        return;
    Vmm__Envelope env = *reply;
    cr_expect_eq(rt_reply_deferred(self, &st->owed, &env), 0);
    cr_expect_null(st->owed);
}

static int s_later_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

static const rt_handler_t s_later_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_later_on_ping}};
static const rt_actor_ops_t s_later_ops = {
    .kind = "later",
    .init = s_later_init,
    .handlers = s_later_handlers,
    .n_handlers = 1,
    .on_reply = s_later_on_reply,
};

Test(defer, a_reply_can_wait_for_the_handlers_own_request)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex0 = rt_executor_new(rt, "ex0"), *ex1 = rt_executor_new(rt, "ex1");
    s_later_t later = {.peer = "echo"};
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    rt_actor_spec_t spec = {.name = "later", .ops = &s_later_ops, .arg = &later};
    cr_assert_eq(rt_actor_start(ex0, &echo), 0);
    cr_assert_eq(rt_actor_start(ex1, &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    for (int i = 0; i < 5; i++)
        s_expect_echo(rt_client_actor(c), "later", "the echo's pong, passed on later");
    cr_expect_eq(later.answered_now, 0);
    /* A caller on the same executor waits in rt_call() on its own stack. */
    rt_actor_spec_t relay = {.name = "relay", .ops = &s_relay_ops, .arg = "later"};
    cr_assert_eq(rt_actor_start(ex1, &relay), 0);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "");
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "relay", &env, &reply, 5000), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    rt_msg_release(&reply);
    cr_expect_eq(later.answered_now, 1);
    rt_destroy(&rt);
}

/* ---- Shared handlers ---------------------------------------------------- */

/* An actor whose Pings with a payload starting "shared" are handled on the
 * sender's thread; others reach its executor as usual. */
typedef struct {
    atomic_int shared_events, usual_events;
    _Atomic pthread_t last_thread; /* where the last handler ran */
    atomic_int call_rc;            /* of the call a forward tried */
} s_sharer_t;

static bool s_is_shared(const Vmm__Envelope *msg)
{
    return msg->ping->payload.len >= 6 && !memcmp(msg->ping->payload.data, "shared", 6);
}

static int s_sharer_handle(rt_actor_t *self, const Vmm__Envelope *msg, bool shared)
{
    s_sharer_t *st = rt_actor_state(self);
    atomic_store(&st->last_thread, pthread_self());
    if (!msg->request_id) {
        atomic_fetch_add(shared ? &st->shared_events : &st->usual_events, 1);
        return 0;
    }
    return echo_reply_text(self, msg, shared ? "on the sender's thread" : "on my executor");
}

static int s_sharer_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    return s_sharer_handle(self, msg, false);
}

/* "shared-forward": passes a Ping on to echo, one-way, and tries a call
 * (refused: a shared handler cannot wait). */
static int s_sharer_forward(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_sharer_t *st = rt_actor_state(self);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "forwarded");
    if (rt_send(self, "probe", &env))
        return -EIO;
    rt_msg_t reply;
    s_ping(&env, &ping, "a call");
    atomic_store(&st->call_rc, rt_call(self, "echo", &env, &reply, 1000));
    return echo_reply_text(self, msg, "forwarded");
}

static int s_sharer_on_shared_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (msg->ping->payload.len == 14 && !memcmp(msg->ping->payload.data, "shared-forward", 14))
        return s_sharer_forward(self, msg);
    return s_is_shared(msg) ? s_sharer_handle(self, msg, true) : RT_NOT_SHARED;
}

static int s_sharer_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

static const rt_handler_t s_sharer_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_sharer_on_ping}};
static const rt_handler_t s_sharer_shared[] = {
    {VMM__ENVELOPE__BODY_PING, s_sharer_on_shared_ping}};
static const rt_actor_ops_t s_sharer_ops = {
    .kind = "sharer",
    .init = s_sharer_init,
    .handlers = s_sharer_handlers,
    .n_handlers = 1,
    .shared_handlers = s_sharer_shared,
    .n_shared_handlers = 1,
};

/* Calls the sharer with payload and returns the reply's text. */
static void s_call_sharer(rt_actor_t *self, const char *payload, const char *want)
{
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, payload);
    rt_msg_t reply;
    cr_assert_eq(rt_call(self, "sharer", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(reply.env->pong->payload.len, strlen(want));
    cr_expect_eq(memcmp(reply.env->pong->payload.data, want, strlen(want)), 0, "%.*s",
                 (int)reply.env->pong->payload.len, reply.env->pong->payload.data);
    cr_expect_str_eq(reply.env->sender, "sharer");
    rt_msg_release(&reply);
}

Test(shared, a_shared_kind_runs_on_the_senders_thread_and_declined_ones_do_not)
{
    rt_t *rt = rt_new(NULL);
    s_tap_counts_t t = {0};
    rt_set_tap(rt, s_tap, &t);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    s_sharer_t st = {0};
    rt_actor_spec_t spec = {.name = "sharer", .ops = &s_sharer_ops, .arg = &st};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    rt_actor_t *self = rt_client_actor(c);

    s_call_sharer(self, "shared call", "on the sender's thread");
    cr_expect(pthread_equal(atomic_load(&st.last_thread), pthread_self()));
    s_call_sharer(self, "usual call", "on my executor");
    cr_expect(!pthread_equal(atomic_load(&st.last_thread), pthread_self()));

    /* One-way: taken before rt_send returns, with nothing to wait for. */
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    for (int i = 0; i < 100; i++) {
        s_ping(&env, &ping, "shared event");
        cr_assert_eq(rt_send(self, "sharer", &env), 0);
        cr_assert_eq(atomic_load(&st.shared_events), i + 1);
    }
    s_ping(&env, &ping, "usual event");
    cr_assert_eq(rt_send(self, "sharer", &env), 0);
    /* The usual one is in order before a later call. */
    s_call_sharer(self, "usual call", "on my executor");
    cr_expect_eq(atomic_load(&st.usual_events), 1);

    /* Counted and tapped like any other: 2 + 100 + 1 + 1 from the test and
     * the inspect, with 4 replies; each envelope once each way. */
    cr_expect_eq(echo_inspect_number(self, "sharer", "rx"), 105);
    cr_expect_eq(atomic_load(&t.tx), 109);
    cr_expect_eq(atomic_load(&t.rx), 109);
    rt_destroy(&rt);
}

Test(shared, from_the_actors_own_executor_the_usual_handler_runs)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(rt, "ex0");
    s_sharer_t st = {0};
    rt_actor_spec_t spec = {.name = "sharer", .ops = &s_sharer_ops, .arg = &st};
    rt_actor_spec_t relay = {.name = "relay", .ops = &s_relay_ops, .arg = "sharer"};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    cr_assert_eq(rt_actor_start(ex, &relay), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    /* The relay's call to its neighbour is a direct call on ex0. */
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    s_ping(&env, &ping, "shared, but from a neighbour");
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(c), "relay", &env, &reply, 5000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    cr_expect_eq(memcmp(reply.env->pong->payload.data, "on my executor", 14), 0);
    rt_msg_release(&reply);
    rt_destroy(&rt);
}

/* A shared handler's one-way send leaves from the sender's thread, as
 * the shared actor's own: its receiver sees it from that actor. */
Test(shared, a_shared_handler_sends_as_its_actor_and_cannot_call)
{
    rt_t *rt = rt_new(NULL);
    rt_executor_t *ex0 = rt_executor_new(rt, "ex0");
    s_sharer_t st = {0};
    rt_actor_spec_t spec = {.name = "sharer", .ops = &s_sharer_ops, .arg = &st};
    rt_actor_spec_t echo = {.name = "echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex0, &spec), 0);
    cr_assert_eq(rt_actor_start(ex0, &echo), 0);
    rt_client_t *c = rt_client_new(rt, "test");
    rt_client_t *probe = rt_client_new(rt, "probe");
    s_call_sharer(rt_client_actor(c), "shared-forward", "forwarded");
    cr_expect_eq(atomic_load(&st.call_rc), -EDEADLK);
    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(probe, &msg, 5000), 0, "the forward did not arrive");
    cr_expect_str_eq(msg.env->sender, "sharer");
    cr_expect_eq(msg.env->request_id, 0, "one-way");
    rt_msg_release(&msg);
    cr_expect_eq(echo_inspect_number(rt_client_actor(c), "sharer", "tx"), 2, "the forward and "
                 "the reply");
    rt_destroy(&rt);
}

typedef struct {
    rt_t *rt;
    atomic_bool stop;
    atomic_int sent, refused;
} s_hammer_t;

static void *s_hammer(void *arg)
{
    s_hammer_t *h = arg;
    rt_client_t *c = rt_client_new(h->rt, "hammer");
    while (!atomic_load(&h->stop)) {
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        s_ping(&env, &ping, "shared hammer");
        if (rt_send(rt_client_actor(c), "sharer", &env))
            atomic_fetch_add(&h->refused, 1);
        else
            atomic_fetch_add(&h->sent, 1);
    }
    rt_client_destroy(&c);
    return NULL;
}

/* A sender in the shared handler while the actor terminates: the
 * terminate waits for it, and later sends find no route. ASan would see a
 * handler run on freed state. */
Test(shared, an_actor_leaves_safely_under_a_stream_of_shared_sends)
{
    /* A send that meets the mailbox closing waits for it at most this. */
    rt_config_t cfg = {.send_timeout_ms = 100};
    for (int round = 0; round < 20; round++) {
        rt_t *rt = rt_new(&cfg);
        rt_executor_t *ex = rt_executor_new(rt, "ex0");
        s_sharer_t *st = calloc(1, sizeof *st);
        rt_actor_spec_t spec = {.name = "sharer", .ops = &s_sharer_ops, .arg = st};
        cr_assert_eq(rt_actor_start(ex, &spec), 0);
        s_hammer_t h = {.rt = rt};
        pthread_t thread;
        cr_assert_eq(pthread_create(&thread, NULL, s_hammer, &h), 0);
        while (atomic_load(&h.sent) < 50)
            sched_yield();
        rt_executor_destroy(&ex);
        int refused_before = atomic_load(&h.refused);
        while (atomic_load(&h.refused) == refused_before)
            sched_yield(); /* a send after the actor left */
        atomic_store(&h.stop, true);
        pthread_join(thread, NULL);
        /* Sends that met the actor closing went to its mailbox, too late
         * for it: none was handled twice, and most on the hammer's thread. */
        cr_expect_leq(atomic_load(&st->shared_events) + atomic_load(&st->usual_events),
                      atomic_load(&h.sent));
        cr_expect_geq(atomic_load(&st->shared_events), 50);
        free(st);
        rt_destroy(&rt);
    }
}
