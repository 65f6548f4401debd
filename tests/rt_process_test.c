/*
 * The runtime across real process boundaries, through its public API only.
 *
 * Each test starts children that host one actor each on a runtime of their
 * own, bound to an ipc:// or tcp:// endpoint: this program again, run with
 * --child and what to host (its own main() below), so that a child starts
 * from a fresh process rather than a fork of a parent with threads, which
 * ThreadSanitizer cannot follow. A child tells the parent on a socketpair
 * once its actor has started and where it is bound, then runs until the
 * parent closes its end (or dies). Nothing waits by sleeping: the only
 * waits are for that line, for replies and for the children's exit.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h> /* zmq_curve_keypair() */

#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_CALL_TIMEOUT_MS 5000
#define S_READY_TIMEOUT_MS 30000
#define S_TEST_TIMEOUT_S 45

/* ---- Messages -------------------------------------------------------------- */

/* Writes the i-th payload into buf (at least 4 KiB): distinct for every i
 * and of varied length, some over a message's inline buffer. */
#define S_PAYLOAD_MAX 4096
static size_t s_payload(char *buf, int i)
{
    int n = snprintf(buf, S_PAYLOAD_MAX, "ping %d:", i);
    size_t len = 16 + (size_t)i * 37 % 3000;
    for (size_t k = (size_t)n; k < len; k++)
        buf[k] = (char)('a' + (k + (size_t)i) % 26);
    return len;
}

/* Calls `to` with the i-th payload and checks that the Pong echoes it and
 * is addressed as a reply to this very request. */
static void s_expect_echo(rt_actor_t *self, const char *to, int i, int timeout_ms)
{
    char payload[S_PAYLOAD_MAX];
    size_t len = s_payload(payload, i);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, payload, len);
    rt_msg_t reply;
    int rc = rt_call(self, to, &env, &reply, timeout_ms);
    cr_assert_eq(rc, 0, "call %d to %s: %s", i, to, strerror(-rc));
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG, "call %d: reply kind %d%s%s",
                 i, reply.env->body_case,
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? ": " : "",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "");
    cr_expect_eq(reply.env->pong->payload.len, len, "call %d: payload length", i);
    cr_expect_eq(memcmp(reply.env->pong->payload.data, payload, len), 0, "call %d: payload", i);
    cr_expect_str_eq(reply.env->sender, to);
    cr_expect_str_eq(reply.env->receiver, rt_actor_name(self));
    cr_expect_neq(env.request_id, 0);
    cr_expect_eq(reply.env->reply_to, env.request_id);
    cr_expect_eq(reply.env->request_id, 0, "a reply is no request");
    rt_msg_release(&reply);
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Checks the counters that must be zero when nothing went wrong. */
static void s_expect_clean_stats(const rt_stats_t *s)
{
    cr_expect_eq(s->rx_malformed, 0);
    cr_expect_eq(s->rx_oversized, 0);
    cr_expect_eq(s->rx_unknown_kind, 0);
    cr_expect_eq(s->rx_misaddressed, 0);
    cr_expect_eq(s->tx_refused, 0);
    cr_expect_eq(s->errors_sent, 0);
}

/* ---- A private directory for ipc:// endpoints --------------------------- */

static void s_tmpdir_new(char *dir, size_t size)
{
    cr_assert(snprintf(dir, size, "/tmp/vmm-rt-proc-XXXXXX") < (int)size);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void s_ipc_endpoint(char *buf, size_t size, const char *dir, const char *file)
{
    cr_assert(snprintf(buf, size, "ipc://%s/%s", dir, file) < (int)size);
}

/* Removes the directory and the sockets a killed child left in it. */
static void s_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            cr_expect_eq(unlinkat(dirfd(d), e->d_name, 0), 0, "unlink %s/%s: %s", dir,
                         e->d_name, strerror(errno));
    closedir(d);
    cr_expect_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
}

/* ---- Children -------------------------------------------------------------- */

/* What a child hosts: one actor (with a delivery record, optionally), and
 * optionally a directory entry for an actor of the parent, a CURVE key
 * pair and a peer key it admits. */
typedef struct {
    const char *name;
    const char *delivery_record;
    const rt_actor_ops_t *ops;
    void *arg;
    const char *endpoint;
    const char *peer, *peer_endpoint;
    const char *public_key, *secret_key;
    const char *admit, *admit_scope;
} s_child_spec_t;

typedef struct {
    pid_t pid;
    int fd;             /* the parent's end of the socketpair */
    char endpoint[256]; /* what the child's actor is bound to */
} s_child_t;

static void s_write_all(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

/* The child's whole life; returns its exit status. Runs in the child
 * only (s_child_exec()), so it must not use Criterion's assertions. */
static int s_child_main(int fd, const s_child_spec_t *spec)
{
    rt_config_t cfg = {.curve_public_key = spec->public_key, .curve_secret_key = spec->secret_key};
    rt_t *rt = rt_new(&cfg);
    if (!rt)
        return 10;
    int rc = 0;
    if (spec->peer)
        rc = rt_directory_set(rt, spec->peer, spec->peer_endpoint);
    if (!rc && spec->admit)
        rc = rt_peer_allow(rt, spec->admit, spec->admit_scope);
    rt_executor_t *ex = NULL;
    if (!rc && !(ex = rt_executor_new(rt, "child")))
        rc = -ENOMEM;
    if (!rc) {
        rt_actor_spec_t actor = {.name = spec->name, .ops = spec->ops, .arg = spec->arg,
                                 .endpoint = spec->endpoint,
                                 .delivery_record = spec->delivery_record};
        rc = rt_actor_start(ex, &actor);
    }
    char bound[256], line[320];
    if (!rc)
        rc = rt_endpoint_of(rt, spec->name, bound, sizeof bound);
    if (rc)
        snprintf(line, sizeof line, "!%s: %s\n", spec->name, strerror(-rc));
    else
        snprintf(line, sizeof line, "%s\n", bound);
    s_write_all(fd, line);

    /* Serves until the parent closes its end or dies. */
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    rt_destroy(&rt);
    return rc ? 11 : 0;
}

/* Reads the child's one line (its endpoint, or "!" and an error). */
static void s_read_line(int fd, char *buf, size_t size)
{
    size_t used = 0;
    int64_t deadline = s_now_ms() + S_READY_TIMEOUT_MS;
    for (;;) {
        int left = (int)(deadline - s_now_ms());
        cr_assert_gt(left, 0, "the child did not report within %d ms", S_READY_TIMEOUT_MS);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        cr_assert_geq(rc, 0, "poll: %s", strerror(errno));
        if (!rc)
            continue;
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        cr_assert_gt(n, 0, "the child closed its end before reporting");
        used += (size_t)n;
        buf[used] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl) {
            *nl = '\0';
            return;
        }
        cr_assert_lt(used, size - 1, "the child's line is too long");
    }
}

/* Shared with the children, in a memory file they inherit: what each
 * counter took. */
typedef struct {
    _Atomic long taken[2]; /* by the first child and by its successor */
    _Atomic long next;     /* the number the next event should carry */
    _Atomic long disorder; /* events that came out of order, or again */
} s_tally_t;

typedef struct {
    s_tally_t *tally;
    int tally_fd; /* a memory file holding it, inherited by the children */
    int incarnation;
} s_counter_arg_t;

/* The child's end of the socketpair, where exec finds it. */
#define S_CHILD_FD 100

static const rt_actor_ops_t s_counter_ops, s_relay_ops;

/* spec's actor kind and argument as the child's command line says them. */
static void s_child_kind(const s_child_spec_t *spec, const char **kind, char *arg, size_t size)
{
    if (spec->ops == &s_counter_ops) {
        const s_counter_arg_t *a = spec->arg;
        *kind = "counter";
        snprintf(arg, size, "%d:%d", a->incarnation, a->tally_fd);
    } else if (spec->ops == &s_relay_ops) {
        *kind = "relay";
        snprintf(arg, size, "%s", (const char *)spec->arg);
    } else {
        cr_assert_eq(spec->ops, &echo_ops, "a child hosts an echo, a counter or a relay");
        *kind = "echo";
        snprintf(arg, size, "-");
    }
}

/* Starts a child hosting spec's actor and returns once it is started. */
static void s_child_start(s_child_t *child, const s_child_spec_t *spec)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %s",
                 strerror(errno));
    const char *kind;
    char arg[128], fd[16];
    s_child_kind(spec, &kind, arg, sizeof arg);
    snprintf(fd, sizeof fd, "%d", S_CHILD_FD);
#define S_OR_DASH(x) ((x) ? (x) : "-")
    char *argv[] = {"rt_process_test", "--child", fd, (char *)spec->name, (char *)kind, arg,
                    (char *)S_OR_DASH(spec->delivery_record), (char *)S_OR_DASH(spec->endpoint),
                    (char *)S_OR_DASH(spec->peer), (char *)S_OR_DASH(spec->peer_endpoint),
                    (char *)S_OR_DASH(spec->public_key), (char *)S_OR_DASH(spec->secret_key),
                    (char *)S_OR_DASH(spec->admit), (char *)S_OR_DASH(spec->admit_scope), NULL};
#undef S_OR_DASH
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Dies with the test, should the test fail before it stops us. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || dup2(sv[1], S_CHILD_FD) < 0)
            _exit(12);
        /* Not a sandbox of Criterion's: BoxFort would take it for one. */
        unsetenv("BXFI_MAP");
        execv("/proc/self/exe", argv);
        _exit(13);
    }
    close(sv[1]);
    child->pid = pid;
    child->fd = sv[0];
    char line[320];
    s_read_line(child->fd, line, sizeof line);
    cr_assert_neq(line[0], '!', "the child failed: %s", line + 1);
    cr_assert_lt(strlen(line), sizeof child->endpoint);
    strcpy(child->endpoint, line);
}

static int s_waitpid(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
    return status;
}

/* Asks the child to stop and checks it exited cleanly. */
static void s_child_stop(s_child_t *child)
{
    close(child->fd);
    int status = s_waitpid(child->pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status 0x%x",
              (int)child->pid, status);
    child->pid = -1;
    child->fd = -1;
}

/* Kills the child without warning. */
static void s_child_kill(s_child_t *child)
{
    cr_assert_eq(kill(child->pid, SIGKILL), 0);
    int status = s_waitpid(child->pid);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child %d: status 0x%x",
              (int)child->pid, status);
    close(child->fd);
    child->pid = -1;
    child->fd = -1;
}

/* A runtime with a client, and a directory entry for the child's actor. */
static rt_client_t *s_parent_new(rt_t **rt, const char *peer, const char *endpoint)
{
    *rt = rt_new(NULL);
    cr_assert_not_null(*rt);
    cr_assert_eq(rt_directory_set(*rt, peer, endpoint), 0, "directory %s -> %s", peer, endpoint);
    rt_client_t *c = rt_client_new(*rt, "parent/client");
    cr_assert_not_null(c);
    return c;
}

/* ---- Request/reply with an echo in a child -------------------------------- */

#define S_CALLS 200

/* Starts an echo in a child bound to `bind`, calls it S_CALLS times and
 * checks both sides' counts. Returns where the child was bound. */
static void s_calls_across(const char *bind, char *bound, size_t size)
{
    s_child_spec_t spec = {.name = "child/echo", .ops = &echo_ops, .endpoint = bind};
    s_child_t child;
    s_child_start(&child, &spec);
    snprintf(bound, size, "%s", child.endpoint);

    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/echo", child.endpoint);
    rt_actor_t *self = rt_client_actor(c);
    for (int i = 0; i < S_CALLS; i++)
        s_expect_echo(self, "child/echo", i, S_CALL_TIMEOUT_MS);
    cr_expect_eq(echo_inspect_number(self, "child/echo", "pings"), S_CALLS);
    cr_expect_eq(echo_inspect_number(self, "child/echo", "events"), 0);

    rt_stats_t s;
    rt_stats(rt, &s);
    cr_expect_eq(s.tx, S_CALLS + 2, "tx %llu", (unsigned long long)s.tx);
    cr_expect_eq(s.rx, S_CALLS + 2, "rx %llu", (unsigned long long)s.rx);
    cr_expect_eq(s.rx_stale_reply, 0);
    s_expect_clean_stats(&s);
    rt_destroy(&rt);
    cr_expect_null(rt);
    s_child_stop(&child);
}

Test(process, calls_over_ipc, .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], endpoint[128], bound[256];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(endpoint, sizeof endpoint, dir, "echo.sock");
    s_calls_across(endpoint, bound, sizeof bound);
    cr_expect_str_eq(bound, endpoint, "an ipc:// endpoint is reported as bound");
    s_tmpdir_remove(dir);
}

Test(process, calls_over_tcp_with_a_resolved_wildcard_port, .timeout = S_TEST_TIMEOUT_S)
{
    char bound[256];
    s_calls_across("tcp://127.0.0.1:*", bound, sizeof bound);
    const char *prefix = "tcp://127.0.0.1:";
    cr_assert_eq(strncmp(bound, prefix, strlen(prefix)), 0, "bound to %s", bound);
    char *end;
    long port = strtol(bound + strlen(prefix), &end, 10);
    cr_expect(*end == '\0' && port > 0 && port < 65536, "bound to %s", bound);
}

/* The same with CURVE: the child admits the parent's key for its own
 * actors only. */
Test(process, calls_over_tcp_with_curve_keys, .timeout = S_TEST_TIMEOUT_S)
{
    char child_pub[41], child_sec[41], parent_pub[41], parent_sec[41];
    cr_assert_eq(zmq_curve_keypair(child_pub, child_sec), 0);
    cr_assert_eq(zmq_curve_keypair(parent_pub, parent_sec), 0);
    s_child_spec_t spec = {.name = "child/echo",
                           .ops = &echo_ops,
                           .endpoint = "tcp://127.0.0.1:*",
                           .public_key = child_pub,
                           .secret_key = child_sec,
                           .admit = parent_pub,
                           .admit_scope = "child/"};
    s_child_t child;
    s_child_start(&child, &spec);

    rt_config_t cfg = {.curve_public_key = parent_pub, .curve_secret_key = parent_sec};
    rt_t *rt = rt_new(&cfg);
    cr_assert_not_null(rt);
    cr_expect_eq(rt_directory_set(rt, "child/echo", child.endpoint), -EINVAL,
                 "tcp:// without the server's key");
    cr_assert_eq(rt_directory_set_key(rt, "child/echo", child.endpoint, child_pub), 0);
    rt_client_t *c = rt_client_new(rt, "parent/client");
    cr_assert_not_null(c);
    rt_actor_t *self = rt_client_actor(c);
    for (int i = 0; i < S_CALLS; i++)
        s_expect_echo(self, "child/echo", i, S_CALL_TIMEOUT_MS);
    cr_expect_eq(echo_inspect_number(self, "child/echo", "pings"), S_CALLS);

    rt_stats_t s;
    rt_stats(rt, &s);
    cr_expect_eq(s.tx, S_CALLS + 1, "tx %llu", (unsigned long long)s.tx);
    cr_expect_eq(s.rx, S_CALLS + 1, "rx %llu", (unsigned long long)s.rx);
    s_expect_clean_stats(&s);
    rt_destroy(&rt);
    s_child_stop(&child);
}

/* ---- One-way events --------------------------------------------------------- */

#define S_EVENTS 1000

static void s_events_across(const char *bind)
{
    s_child_spec_t spec = {.name = "child/echo", .ops = &echo_ops, .endpoint = bind};
    s_child_t child;
    s_child_start(&child, &spec);
    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/echo", child.endpoint);
    rt_actor_t *self = rt_client_actor(c);
    for (int i = 0; i < S_EVENTS; i++) {
        char payload[S_PAYLOAD_MAX];
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, payload, s_payload(payload, i));
        cr_assert_eq(rt_send(self, "child/echo", &env), 0, "event %d", i);
        cr_expect_eq(env.request_id, 0, "an event is no request");
    }
    /* The inspection travels the same connection as the events, after
     * them, so every event has been handled when it is answered. */
    cr_expect_eq(echo_inspect_number(self, "child/echo", "events"), S_EVENTS);
    cr_expect_eq(echo_inspect_number(self, "child/echo", "pings"), 0);

    rt_stats_t s;
    rt_stats(rt, &s);
    cr_expect_eq(s.tx, S_EVENTS + 2, "tx %llu", (unsigned long long)s.tx);
    cr_expect_eq(s.rx, 2, "only the two inspections are answered: rx %llu",
                 (unsigned long long)s.rx);
    cr_expect_eq(s.rx_stale_reply, 0);
    s_expect_clean_stats(&s);
    rt_destroy(&rt);
    s_child_stop(&child);
}

Test(process, events_over_ipc_all_arrive_before_a_later_call, .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], endpoint[128];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(endpoint, sizeof endpoint, dir, "echo.sock");
    s_events_across(endpoint);
    s_tmpdir_remove(dir);
}

Test(process, events_over_tcp_all_arrive_before_a_later_call, .timeout = S_TEST_TIMEOUT_S)
{
    s_events_across("tcp://127.0.0.1:*");
}

/* An actor's one-way sends to another executor are coalesced into batch
 * frames, sent when its turn ends, before a request on the same route, or
 * when a batch is full. This one is asked, by a Ping whose payload is a
 * number n, to send n events to its peer (its state, a name); asked by a
 * request, it then inspects the peer's event count and answers with it. */
static int s_burst_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const char *peer = rt_actor_state(self);
    char text[32];
    size_t len = msg->ping->payload.len < sizeof text ? msg->ping->payload.len : sizeof text - 1;
    memcpy(text, msg->ping->payload.data, len);
    text[len] = '\0';
    int n = atoi(text);
    for (int i = 0; i < n; i++) {
        char payload[S_PAYLOAD_MAX];
        Vmm__Envelope env;
        Vmm__Rt__Ping ping;
        echo_ping(&env, &ping, payload, s_payload(payload, i));
        int rc = rt_send(self, peer, &env);
        if (rc)
            return rc;
    }
    if (!msg->request_id)
        return 0;
    snprintf(text, sizeof text, "%lld", echo_inspect_number(self, peer, "events"));
    return echo_reply_text(self, msg, text);
}

static int s_state_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

static const rt_handler_t s_burst_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_burst_on_ping}};
static const rt_actor_ops_t s_burst_ops = {
    .kind = "burst",
    .init = s_state_init,
    .handlers = s_burst_handlers,
    .n_handlers = sizeof s_burst_handlers / sizeof *s_burst_handlers,
};

static void s_ping_text(Vmm__Envelope *env, Vmm__Rt__Ping *ping, const char *text)
{
    echo_ping(env, ping, text, strlen(text));
}

#define S_BURST 1000     /* events per burst: far over one batch */
#define S_LAST_BURST 500 /* events in a turn that ends without a request */
#define S_TOTAL_EVENTS (2 * S_BURST + S_LAST_BURST)

Test(process, events_an_actor_coalesces_all_arrive, .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], endpoint[128];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(endpoint, sizeof endpoint, dir, "echo.sock");
    s_child_spec_t spec = {.name = "child/echo", .ops = &echo_ops, .endpoint = endpoint};
    s_child_t child;
    s_child_start(&child, &spec);

    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/echo", child.endpoint);
    rt_actor_t *self = rt_client_actor(c);
    rt_executor_t *ex = rt_executor_new(rt, "parent");
    cr_assert_not_null(ex);
    rt_actor_spec_t burst = {.name = "parent/burst", .ops = &s_burst_ops, .arg = "child/echo"};
    cr_assert_eq(rt_actor_start(ex, &burst), 0);

    char count[32];
    snprintf(count, sizeof count, "%d", S_BURST);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    /* A burst in a turn that makes no request, then one followed by a
     * request on the same route: that request finds both delivered. */
    s_ping_text(&env, &ping, count);
    cr_assert_eq(rt_send(self, "parent/burst", &env), 0);
    s_ping_text(&env, &ping, count);
    rt_msg_t reply;
    int rc = rt_call(self, "parent/burst", &env, &reply, 2 * S_CALL_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "call: %s", strerror(-rc));
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PONG);
    snprintf(count, sizeof count, "%d", 2 * S_BURST);
    cr_expect_eq(reply.env->pong->payload.len, strlen(count));
    cr_expect_eq(memcmp(reply.env->pong->payload.data, count, strlen(count)), 0,
                 "the child counted %.*s events, not %s", (int)reply.env->pong->payload.len,
                 (const char *)reply.env->pong->payload.data, count);
    rt_msg_release(&reply);

    /* A last burst that nothing follows on its route must go out when the
     * turn ends: the client, on a connection of its own, sees it arrive. */
    snprintf(count, sizeof count, "%d", S_LAST_BURST);
    s_ping_text(&env, &ping, count);
    cr_assert_eq(rt_send(self, "parent/burst", &env), 0);
    int inspections = 0;
    long long events = -1;
    for (int64_t deadline = s_now_ms() + 2 * S_CALL_TIMEOUT_MS;;) {
        events = echo_inspect_number(self, "child/echo", "events");
        inspections++;
        cr_assert(events >= 2 * S_BURST && events <= S_TOTAL_EVENTS, "events %lld", events);
        if (events == S_TOTAL_EVENTS || s_now_ms() >= deadline)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    cr_expect_eq(events, S_TOTAL_EVENTS, "the last burst never left the parent");
    cr_expect_eq(echo_inspect_number(self, "child/echo", "pings"), 0);
    inspections++;

    rt_executor_destroy(&ex); /* its counts are final once its thread is joined */
    rt_stats_t s;
    rt_stats(rt, &s);
    /* The client: two events, a call and its inspections, and the
     * replies; the burst actor: its events, an inspection and a reply, and
     * what the client sent it plus the inspection's reply. */
    cr_expect_eq(s.tx, 3 + inspections + S_TOTAL_EVENTS + 2, "tx %llu",
                 (unsigned long long)s.tx);
    cr_expect_eq(s.rx, 1 + inspections + 3 + 1, "rx %llu", (unsigned long long)s.rx);
    cr_expect_eq(s.rx_stale_reply, 0);
    s_expect_clean_stats(&s);
    rt_destroy(&rt);
    s_child_stop(&child);
    s_tmpdir_remove(dir);
}

/* ---- A child that dies, and its successor ----------------------------------- */

#define S_DEAD_TIMEOUT_MS 300
#define S_BEFORE 50 /* calls answered by the first child */
#define S_AFTER 50  /* calls answered by its successor */
#define S_LOCAL 10  /* calls to the parent's own echo meanwhile */

Test(process, a_killed_child_times_out_and_a_restarted_one_answers_again,
     .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], endpoint[128];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(endpoint, sizeof endpoint, dir, "echo.sock");
    s_child_spec_t spec = {.name = "child/echo", .ops = &echo_ops, .endpoint = endpoint};
    s_child_t child;
    s_child_start(&child, &spec);

    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/echo", endpoint);
    rt_actor_t *self = rt_client_actor(c);
    rt_executor_t *ex = rt_executor_new(rt, "parent");
    cr_assert_not_null(ex);
    rt_actor_spec_t local = {.name = "parent/echo", .ops = &echo_ops};
    cr_assert_eq(rt_actor_start(ex, &local), 0);

    int i = 0;
    for (; i < S_BEFORE; i++)
        s_expect_echo(self, "child/echo", i, S_CALL_TIMEOUT_MS);

    s_child_kill(&child);

    /* A call to the dead child fails within its timeout. */
    char payload[S_PAYLOAD_MAX];
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, payload, s_payload(payload, i++));
    rt_msg_t reply;
    int64_t t0 = s_now_ms();
    int rc = rt_call(self, "child/echo", &env, &reply, S_DEAD_TIMEOUT_MS);
    int64_t took = s_now_ms() - t0;
    cr_assert_eq(rc, -ETIMEDOUT, "a call to a dead child: %s", strerror(-rc));
    cr_expect_geq(took, S_DEAD_TIMEOUT_MS - 1, "gave up after %lld ms", (long long)took);
    cr_expect_lt(took, S_DEAD_TIMEOUT_MS + 2000, "gave up after %lld ms", (long long)took);

    /* The parent keeps working meanwhile. */
    for (int k = 0; k < S_LOCAL; k++)
        s_expect_echo(self, "parent/echo", i++, S_CALL_TIMEOUT_MS);

    /* A successor on the same endpoint: ZeroMQ reconnects by itself. The
     * first call waits for that, so it gets a generous timeout. */
    s_child_start(&child, &spec);
    cr_expect_str_eq(child.endpoint, endpoint);
    s_expect_echo(self, "child/echo", i++, 2 * S_CALL_TIMEOUT_MS);
    for (int k = 1; k < S_AFTER; k++)
        s_expect_echo(self, "child/echo", i++, S_CALL_TIMEOUT_MS);

    /* ZeroMQ may have kept the request that timed out queued while the
     * child was gone and delivered it to the successor; whose reply then
     * came before ours on the same connection and was set aside. */
    long long pings = echo_inspect_number(self, "child/echo", "pings");
    cr_expect(pings == S_AFTER || pings == S_AFTER + 1, "the successor answered %lld pings",
              pings);
    cr_log_info("the request that timed out %s the successor",
                pings > S_AFTER ? "was delivered to" : "was lost before");
    cr_expect_eq(echo_inspect_number(self, "parent/echo", "pings"), S_LOCAL);
    cr_expect_eq(rt_client_recv(c, &reply, 0), -ETIMEDOUT, "nothing is addressed to us");

    /* An executor counts a reply after sending it, so its last one may not
     * be counted yet when the caller has it; its thread joined, all are. */
    rt_executor_destroy(&ex);
    rt_stats_t s;
    rt_stats(rt, &s);
    /* The client sent every call, answered or not, and both inspections;
     * the local echo received and answered its pings and one inspection. */
    unsigned long long calls = S_BEFORE + 1 + S_LOCAL + S_AFTER + 2;
    unsigned long long answered = S_BEFORE + S_LOCAL + S_AFTER + 2;
    cr_expect_eq(s.tx, calls + S_LOCAL + 1, "tx %llu", (unsigned long long)s.tx);
    cr_expect_eq(s.rx, answered + S_LOCAL + 1, "rx %llu", (unsigned long long)s.rx);
    cr_expect_eq(s.rx_stale_reply, (unsigned long long)(pings - S_AFTER),
                 "stale replies %llu, late pings %lld", (unsigned long long)s.rx_stale_reply,
                 pings - S_AFTER);
    s_expect_clean_stats(&s);

    rt_destroy(&rt);
    s_child_stop(&child);
    s_tmpdir_remove(dir);
}

/* ---- Events to a child that dies, and to its successor ------------------------ */

#define S_TAKEN_FIRST 40 /* events the first child takes before it hangs */
#define S_QUEUED 60      /* events sent to it while it hangs, then dies */
#define S_LATER 50       /* events sent once its successor is there */


/* Counts one-way Pings, each carrying its number as text, and answers a
 * Ping request (a sync point). The first child hangs in the handler of
 * its S_TAKEN_FIRST-th event, as a process stuck before it is killed. */
static int s_counter_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const s_counter_arg_t *a = rt_actor_state(self);
    if (msg->request_id)
        return echo_reply_text(self, msg, "synced");
    long n = strtol((const char *)msg->ping->payload.data, NULL, 10);
    if (n != atomic_load(&a->tally->next))
        atomic_fetch_add(&a->tally->disorder, 1);
    atomic_store(&a->tally->next, n + 1);
    long taken = atomic_fetch_add(&a->tally->taken[a->incarnation], 1) + 1;
    if (a->incarnation == 0 && taken == S_TAKEN_FIRST)
        for (;;)
            pause();
    return 0;
}

static int s_counter_init(rt_actor_t *self, void *arg)
{
    rt_actor_set_state(self, arg);
    return 0;
}

static const rt_handler_t s_counter_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_counter_on_ping}};
static const rt_actor_ops_t s_counter_ops = {
    .kind = "counter",
    .init = s_counter_init,
    .handlers = s_counter_handlers,
    .n_handlers = 1,
};

static void s_send_numbered(rt_actor_t *self, long n)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%ld", n);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, text, (size_t)len + 1);
    cr_assert_eq(rt_send(self, "child/counter", &env), 0);
}

/* The first child takes some events and hangs; more are sent to it, and it
 * is killed with them unread. Its successor, on the same endpoint and
 * delivery record, announced as a restarted device host is (its directory
 * entry set again), gets those and the later ones: each event is taken
 * once, in order, by one of the two. */
Test(process, events_to_a_killed_child_reach_its_successor_once, .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], endpoint[128], record[128];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(endpoint, sizeof endpoint, dir, "counter.sock");
    snprintf(record, sizeof record, "%s/counter.record", dir);
    int tally_fd = memfd_create("tally", 0); /* inherited: no MFD_CLOEXEC */
    cr_assert_geq(tally_fd, 0);
    cr_assert_eq(ftruncate(tally_fd, sizeof(s_tally_t)), 0);
    s_tally_t *tally = mmap(NULL, sizeof *tally, PROT_READ | PROT_WRITE, MAP_SHARED, tally_fd, 0);
    cr_assert_neq(tally, MAP_FAILED);
    s_counter_arg_t first = {.tally = tally, .tally_fd = tally_fd, .incarnation = 0};
    s_counter_arg_t second = {.tally = tally, .tally_fd = tally_fd, .incarnation = 1};
    s_child_spec_t spec = {.name = "child/counter", .ops = &s_counter_ops, .arg = &first,
                           .endpoint = endpoint, .delivery_record = record};
    s_child_t child;
    s_child_start(&child, &spec);
    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/counter", endpoint);
    rt_actor_t *self = rt_client_actor(c);

    long n = 0;
    for (; n < S_TAKEN_FIRST; n++)
        s_send_numbered(self, n);
    for (int ms = 0; atomic_load(&tally->taken[0]) < S_TAKEN_FIRST && ms < 10000; ms++)
        usleep(1000);
    cr_assert_eq(atomic_load(&tally->taken[0]), S_TAKEN_FIRST, "the first child is not stuck");
    for (; n < S_TAKEN_FIRST + S_QUEUED; n++)
        s_send_numbered(self, n);
    s_child_kill(&child);

    spec.arg = &second;
    s_child_start(&child, &spec);
    cr_assert_eq(rt_directory_set(rt, "child/counter", child.endpoint), 0);
    for (; n < S_TAKEN_FIRST + S_QUEUED + S_LATER; n++)
        s_send_numbered(self, n);
    /* A request on the same link's route comes after every event. */
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "sync", 5);
    rt_msg_t reply;
    cr_assert_eq(rt_call(self, "child/counter", &env, &reply, S_CALL_TIMEOUT_MS), 0);
    rt_msg_release(&reply);

    cr_expect_eq(atomic_load(&tally->taken[0]), S_TAKEN_FIRST);
    cr_expect_eq(atomic_load(&tally->taken[1]), S_QUEUED + S_LATER,
                 "the successor took %ld", atomic_load(&tally->taken[1]));
    cr_expect_eq(atomic_load(&tally->disorder), 0, "events out of order or taken twice");
    rt_stats_t s;
    rt_stats(rt, &s);
    cr_expect_geq(s.tx_resent, S_QUEUED, "resent %llu", (unsigned long long)s.tx_resent);
    cr_log_info("%llu frames were sent again", (unsigned long long)s.tx_resent);
    rt_destroy(&rt);
    s_child_stop(&child);
    munmap(tally, sizeof *tally);
    close(tally_fd);
    s_tmpdir_remove(dir);
}

/* ---- A child that calls back into the parent ------------------------------ */

/* Forwards each Ping to its peer (its state, a name) with a call from the
 * handler, checks the peer's reply, and answers with it. */
static int s_relay_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const char *peer = rt_actor_state(self);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, msg->ping->payload.data, msg->ping->payload.len);
    rt_msg_t reply;
    int rc = rt_call(self, peer, &env, &reply, S_CALL_TIMEOUT_MS);
    if (rc)
        return rc; /* the runtime answers with an Error made from it */
    const Vmm__Envelope *r = reply.env;
    if (r->body_case != VMM__ENVELOPE__BODY_PONG || strcmp(r->sender, peer) ||
        strcmp(r->receiver, rt_actor_name(self)) || r->reply_to != env.request_id ||
        r->pong->payload.len != msg->ping->payload.len ||
        memcmp(r->pong->payload.data, msg->ping->payload.data, r->pong->payload.len))
        rc = rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL,
                            "%s answered kind %d from %s to %s, reply to %llu", peer,
                            r->body_case, r->sender, r->receiver,
                            (unsigned long long)r->reply_to);
    else
        rc = rt_reply(self, msg, reply.env);
    rt_msg_release(&reply);
    return rc;
}

static const rt_handler_t s_relay_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_relay_on_ping}};
static const rt_actor_ops_t s_relay_ops = {
    .kind = "relay",
    .init = s_state_init,
    .handlers = s_relay_handlers,
    .n_handlers = sizeof s_relay_handlers / sizeof *s_relay_handlers,
};

#define S_RELAYED 100

Test(process, a_child_actor_calls_back_into_the_parent, .timeout = S_TEST_TIMEOUT_S)
{
    char dir[64], parent_ep[128], relay_ep[128];
    s_tmpdir_new(dir, sizeof dir);
    s_ipc_endpoint(parent_ep, sizeof parent_ep, dir, "parent.sock");
    s_ipc_endpoint(relay_ep, sizeof relay_ep, dir, "relay.sock");

    /* The child knows the parent's echo by name; it first calls it once
     * asked to, by when the parent has bound it. */
    s_child_spec_t spec = {.name = "child/relay",
                           .ops = &s_relay_ops,
                           .arg = "parent/echo",
                           .endpoint = relay_ep,
                           .peer = "parent/echo",
                           .peer_endpoint = parent_ep};
    s_child_t child;
    s_child_start(&child, &spec);

    rt_t *rt;
    rt_client_t *c = s_parent_new(&rt, "child/relay", child.endpoint);
    rt_actor_t *self = rt_client_actor(c);
    rt_executor_t *ex = rt_executor_new(rt, "parent");
    cr_assert_not_null(ex);
    rt_actor_spec_t echo = {.name = "parent/echo", .ops = &echo_ops, .endpoint = parent_ep};
    cr_assert_eq(rt_actor_start(ex, &echo), 0);

    for (int i = 0; i < S_RELAYED; i++)
        s_expect_echo(self, "child/relay", i, S_CALL_TIMEOUT_MS);
    cr_expect_eq(echo_inspect_number(self, "parent/echo", "pings"), S_RELAYED,
                 "each relayed call reached the parent's echo once");

    rt_executor_destroy(&ex); /* its counts are final once its thread is joined */
    rt_stats_t s;
    rt_stats(rt, &s);
    /* The client: its calls and the inspection, and their replies; the
     * echo: the relayed pings and the inspection, and its replies. */
    cr_expect_eq(s.tx, 2 * (S_RELAYED + 1), "tx %llu", (unsigned long long)s.tx);
    cr_expect_eq(s.rx, 2 * (S_RELAYED + 1), "rx %llu", (unsigned long long)s.rx);
    cr_expect_eq(s.rx_stale_reply, 0);
    s_expect_clean_stats(&s);

    rt_destroy(&rt);
    s_child_stop(&child);
    s_tmpdir_remove(dir);
}

/* ---- A child's own main ----------------------------------------------------------- */

/* rt_process_test --child FD NAME KIND ARG RECORD ENDPOINT PEER PEER_ENDPOINT
 * PUBLIC SECRET ADMIT SCOPE ("-" for none): hosts the actor s_child_start()
 * described, telling the parent on descriptor FD. */
static int s_child_exec(int argc, char **argv)
{
    if (argc != 14)
        return 14;
    const char *a[14];
    for (int i = 0; i < argc; i++)
        a[i] = strcmp(argv[i], "-") ? argv[i] : NULL;
    s_child_spec_t spec = {.name = a[3], .delivery_record = a[6], .endpoint = a[7],
                           .peer = a[8], .peer_endpoint = a[9], .public_key = a[10],
                           .secret_key = a[11], .admit = a[12], .admit_scope = a[13]};
    s_counter_arg_t counter = {0};
    if (!strcmp(a[4], "counter")) {
        if (!a[5] || sscanf(a[5], "%d:%d", &counter.incarnation, &counter.tally_fd) != 2)
            return 15;
        counter.tally = mmap(NULL, sizeof *counter.tally, PROT_READ | PROT_WRITE, MAP_SHARED,
                             counter.tally_fd, 0);
        if (counter.tally == MAP_FAILED)
            return 16;
        spec.ops = &s_counter_ops;
        spec.arg = &counter;
    } else if (!strcmp(a[4], "relay")) {
        spec.ops = &s_relay_ops;
        spec.arg = (void *)a[5];
    } else {
        spec.ops = &echo_ops;
    }
    return s_child_main(atoi(a[2]), &spec);
}

/* Criterion's runner, or a child (s_child_start()). */
int main(int argc, char *argv[])
{
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return s_child_exec(argc, argv);
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
