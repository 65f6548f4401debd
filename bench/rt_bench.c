/*
 * Runtime benchmark: request/reply between two actors and one-way
 * throughput, each beside a raw ZeroMQ baseline of the same message size
 * measured in the same run, first on an idle machine, then with the other
 * core kept busy by a spinning child process.
 *
 *   bazel run //bench:rt_bench -- [--iterations N] [--idle-only|--busy-only]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/bench.h"
#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_PAYLOAD 32 /* bytes of Ping payload; the raw baseline sends the
                        same number of bytes as the packed envelope */


static int s_iterations = 20000;
static int s_repeat = 3;
static bool s_one_way_only; /* --one-way-only: the load run of a million */

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void s_die(const char *what)
{
    fprintf(stderr, "rt_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The packed size of the envelope the runtime sends for one Ping. */
static size_t s_envelope_size(void)
{
    static uint8_t payload[S_PAYLOAD];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    ping.payload.data = payload;
    ping.payload.len = S_PAYLOAD;
    env.sender = "driver";
    env.receiver = "echo";
    env.request_id = 12345;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    return vmm__envelope__get_packed_size(&env);
}

/* ---- Raw ZeroMQ baselines ------------------------------------------------- */

static void *s_socket(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

/* ns per round trip of two inproc PAIR sockets driven by one thread. */
static double s_raw_same_thread(size_t size, int n)
{
    void *ctx = zmq_ctx_new();
    void *a = s_socket(ctx, ZMQ_PAIR), *b = s_socket(ctx, ZMQ_PAIR);
    zmq_bind(a, "inproc://raw-same");
    zmq_connect(b, "inproc://raw-same");
    char buf[1024];
    memset(buf, 1, sizeof buf);
    double t0 = s_now_ns();
    for (int i = 0; i < n; i++) {
        zmq_send(a, buf, size, 0);
        zmq_recv(b, buf, sizeof buf, 0);
        zmq_send(b, buf, size, 0);
        zmq_recv(a, buf, sizeof buf, 0);
    }
    double ns = (s_now_ns() - t0) / n;
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
    return ns;
}

typedef struct {
    void *ctx;
    const char *endpoint;
    int n;         /* messages to answer (round trips) or to count */
    bool answer;   /* echo each message back, or only count them */
    char bound[256]; /* the endpoint bound (a wildcard port resolved) */
    _Atomic int ready;
} s_raw_server_t;

/* A ROUTER thread: answers or counts n messages. When counting, it answers
 * the first (connection set up) and one final message after the n, so that
 * the sender knows all arrived. */
static void *s_raw_server(void *arg)
{
    s_raw_server_t *srv = arg;
    void *router = s_socket(srv->ctx, ZMQ_ROUTER);
    if (zmq_bind(router, srv->endpoint))
        s_die(srv->endpoint);
    size_t len = sizeof srv->bound;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, srv->bound, &len);
    atomic_store(&srv->ready, 1);
    char id[256], buf[1024];
    int total = srv->answer ? srv->n : srv->n + 1;
    for (int i = 0; i < total; i++) {
        int idlen = zmq_recv(router, id, sizeof id, 0);
        int len = zmq_recv(router, buf, sizeof buf, 0);
        if (srv->answer || i == 0 || i == srv->n) {
            zmq_send(router, id, (size_t)idlen, ZMQ_SNDMORE);
            zmq_send(router, buf, (size_t)len, 0);
        }
    }
    zmq_close(router);
    return NULL;
}

/* ns per round trip (answer) or per one-way message (!answer) between a
 * DEALER on this thread and a ROUTER thread, as the runtime's sockets are.
 * Over ipc:// and tcp:// each end has a context (and I/O thread) of its
 * own, as two runtimes or two processes have. */
static double s_raw_two_threads(const char *endpoint, size_t size, int n, bool answer)
{
    bool inproc = !strncmp(endpoint, "inproc://", 9);
    s_raw_server_t srv = {.ctx = zmq_ctx_new(), .endpoint = endpoint, .n = n,
                          .answer = answer};
    void *ctx = inproc ? srv.ctx : zmq_ctx_new();
    pthread_t thread;
    pthread_create(&thread, NULL, s_raw_server, &srv);
    while (!atomic_load(&srv.ready))
        usleep(100);
    void *dealer = s_socket(ctx, ZMQ_DEALER);
    zmq_connect(dealer, srv.bound);
    char buf[1024];
    memset(buf, 1, sizeof buf);
    /* The first exchange pays for the connection: leave it out. */
    double t0 = 0;
    for (int i = 0; i < n; i++) {
        if (i == 1)
            t0 = s_now_ns();
        zmq_send(dealer, buf, size, 0);
        if (answer || i == 0)
            zmq_recv(dealer, buf, sizeof buf, 0);
    }
    if (!answer) {
        zmq_send(dealer, buf, size, 0);
        zmq_recv(dealer, buf, sizeof buf, 0);
    }
    double ns = (s_now_ns() - t0) / (n - 1);
    pthread_join(thread, NULL);
    zmq_close(dealer);
    if (ctx != srv.ctx)
        zmq_ctx_term(ctx);
    zmq_ctx_term(srv.ctx);
    return ns;
}

/* ---- The runtime ------------------------------------------------------------ */

static int s_check_pong(void *arg, const Vmm__Envelope *reply)
{
    (void)arg;
    return reply->body_case == VMM__ENVELOPE__BODY_PONG ? 0 : -EIO;
}

/* Runs a measurement loop inside an actor, when asked by a Ping whose
 * payload is "lend" (rt_call_with), "copy" (rt_call) or "send" (rt_send),
 * and answers with the ns per operation. */
static int s_driver_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    static uint8_t payload[S_PAYLOAD];
    const char *what = (const char *)msg->ping->payload.data;
    bool lend = !memcmp(what, "lend", 4), copy = !memcmp(what, "copy", 4);
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, payload, S_PAYLOAD);
    rt_msg_t reply;
    /* The first exchange pays for the connection: leave it out. */
    if (rt_call(self, "echo", &env, &reply, 5000))
        return -EIO;
    rt_msg_release(&reply);
    double t0 = s_now_ns();
    for (int i = 0; i < s_iterations; i++) {
        int rc;
        if (lend)
            rc = rt_call_with(self, "echo", &env, 5000, s_check_pong, NULL);
        else if (copy) {
            rc = rt_call(self, "echo", &env, &reply, 5000);
            if (!rc)
                rt_msg_release(&reply);
        } else
            rc = rt_send(self, "echo", &env);
        if (rc)
            return rc;
    }
    if (!lend && !copy && echo_inspect_number(self, "echo", "events") != s_iterations)
        return -EIO; /* the call waits until every event has arrived */
    char text[64];
    snprintf(text, sizeof text, "%f", (s_now_ns() - t0) / s_iterations);
    return echo_reply_text(self, msg, text);
}

static const rt_handler_t s_driver_handlers[] = {{VMM__ENVELOPE__BODY_PING, s_driver_on_ping}};
static const rt_actor_ops_t s_driver_ops = {
    .kind = "bench-driver",
    .handlers = s_driver_handlers,
    .n_handlers = 1,
};

/* An echo that spends its idle time blocked in run (as a VP in KVM_RUN
 * does), so that every request has to kick it out first. */
static int s_sleeper_init(rt_actor_t *self, void *arg)
{
    (void)arg;
    int *efd = malloc(sizeof *efd);
    if (!efd)
        return -ENOMEM;
    *efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rt_actor_set_state(self, efd);
    return *efd < 0 ? -errno : 0;
}

static void s_sleeper_fini(rt_actor_t *self)
{
    int *efd = rt_actor_state(self);
    close(*efd);
    free(efd);
}

static rt_run_t s_sleeper_run(rt_actor_t *self)
{
    int *efd = rt_actor_state(self);
    struct pollfd pfd = {.fd = *efd, .events = POLLIN};
    uint64_t v;
    if (poll(&pfd, 1, 1000) > 0 && read(*efd, &v, sizeof v) < 0)
        return RT_RUN_IDLE;
    return RT_RUN_AGAIN;
}

static void s_sleeper_kick(rt_actor_t *self)
{
    int *efd = rt_actor_state(self);
    uint64_t one = 1;
    if (write(*efd, &one, sizeof one) < 0)
        abort();
}

static const rt_actor_ops_t s_sleeper_ops = {
    .kind = "bench-sleeper",
    .init = s_sleeper_init,
    .fini = s_sleeper_fini,
    .run = s_sleeper_run, /* Ping is answered by the runtime */
    .kick = s_sleeper_kick,
};

typedef enum { S_SHARED, S_TWO_EXECUTORS, S_BLOCKED, S_IPC, S_TCP } s_placement_t;

/* ns per call ("lend", "copy") or per one-way event ("send") from a
 * driver actor to an echo actor placed as asked. */
static double s_runtime(s_placement_t placement, const char *what)
{
    rt_t *server = rt_new(NULL);
    rt_t *rt = placement >= S_IPC ? rt_new(NULL) : server;
    rt_executor_t *ex_echo = rt_executor_new(server, "echo-ex");
    rt_executor_t *ex_driver = placement == S_SHARED ? ex_echo : rt_executor_new(rt, "driver-ex");
    char ipc[128];
    snprintf(ipc, sizeof ipc, "ipc:///tmp/vmm-bench-%d.sock", getpid());
    rt_actor_spec_t echo = {
        .name = "echo",
        .ops = placement == S_BLOCKED ? &s_sleeper_ops : &echo_ops,
        .endpoint = placement == S_IPC ? ipc : placement == S_TCP ? "tcp://127.0.0.1:*" : NULL,
    };
    if (rt_actor_start(ex_echo, &echo))
        s_die("start echo");
    if (placement >= S_IPC) {
        char endpoint[256];
        rt_endpoint_of(server, "echo", endpoint, sizeof endpoint);
        rt_directory_set(rt, "echo", endpoint);
    }
    rt_actor_spec_t driver = {.name = "driver", .ops = &s_driver_ops};
    if (rt_actor_start(ex_driver, &driver))
        s_die("start driver");

    rt_client_t *c = rt_client_new(rt, "bench");
    Vmm__Envelope env;
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, what, strlen(what));
    rt_msg_t reply;
    double ns = -1;
    if (rt_call(rt_client_actor(c), "driver", &env, &reply, 600000) == 0) {
        if (reply.env->body_case == VMM__ENVELOPE__BODY_PONG) {
            char text[64] = "";
            memcpy(text, reply.env->pong->payload.data,
                   reply.env->pong->payload.len < 63 ? reply.env->pong->payload.len : 63);
            ns = atof(text);
        }
        rt_msg_release(&reply);
    }
    if (rt != server)
        rt_destroy(&rt);
    rt_destroy(&server);
    if (ns < 0)
        s_die("measurement failed");
    return ns;
}

/* ---- Report ---------------------------------------------------------------- */

static int s_misses;

static void s_row(const char *what, double rt_ns, double raw_ns, double target,
                  const char *target_text)
{
    double ratio = rt_ns / raw_ns;
    bool ok = ratio <= target;
    s_misses += !ok;
    printf("  %-34s %10.2f us %10.2f us %7.2fx   %s %s\n", what, rt_ns / 1000, raw_ns / 1000,
           ratio, ok ? "ok  " : "MISS", target_text);
}

static void s_throughput_row(const char *what, double rt_ns, double raw_ns)
{
    double share = raw_ns / rt_ns; /* runtime throughput / raw throughput */
    bool ok = share >= 0.70;
    s_misses += !ok;
    printf("  %-34s %8.0f k/s %8.0f k/s %7.0f%%    %s >= 70%% of raw\n", what, 1e6 / rt_ns,
           1e6 / raw_ns, share * 100, ok ? "ok  " : "MISS");
}

typedef struct {
    double shared, two_ex, ipc, tcp;
} s_rtt_t;

/* What a measurement runs: the runtime in a placement, or a raw baseline
 * (endpoint NULL: one thread; otherwise two threads over endpoint). */
typedef struct {
    s_placement_t placement;
    const char *what; /* "lend", "copy" or "send" */
    const char *raw_endpoint;
    bool raw_answer;
} s_case_t;

/* Measures the runtime and its baseline s_repeat times each, alternating
 * so that drift in the machine's load touches both alike; gives the
 * medians. */
static void s_compare(const s_case_t *c, size_t size, double *rt_ns, double *raw_ns)
{
    double rt[BENCH_MAX_REPEAT], raw[BENCH_MAX_REPEAT];
    for (int i = 0; i < s_repeat; i++) {
        raw[i] = c->raw_endpoint
                     ? s_raw_two_threads(c->raw_endpoint, size, s_iterations, c->raw_answer)
                     : s_raw_same_thread(size, s_iterations);
        rt[i] = s_runtime(c->placement, c->what);
    }
    *rt_ns = bench_median(rt, s_repeat);
    *raw_ns = bench_median(raw, s_repeat);
}

static s_rtt_t s_run(const char *title, bool is_busy, const s_rtt_t *busy)
{
    size_t size = s_envelope_size();
    char ipc[128];
    snprintf(ipc, sizeof ipc, "ipc:///tmp/vmm-bench-raw-%d.sock", getpid());
    printf("\n%s (%d iterations, median of %d, %zu-byte envelopes)\n", title, s_iterations,
           s_repeat, size);
    if (!s_one_way_only)
        printf("  %-34s %13s %13s %8s\n", "request/reply round trip", "runtime", "raw zmq",
               "ratio");

    const double remote_target = is_busy ? 1.10 : 1e9;
    const char *remote_text = is_busy ? "<= 1.10x raw" : "(no target when idle)";
    const struct {
        const char *label;
        s_case_t c;
        double target;
        const char *target_text;
        double *keep;
    } rows[] = {
        {"inproc, one shared executor", {S_SHARED, "lend", NULL, true}, 2.0,
         "<= 2x raw same-thread", NULL},
        {"  the same, reply copied (rt_call)", {S_SHARED, "copy", NULL, true}, 1e9,
         "(no target)", NULL},
        {"inproc, two executors", {S_TWO_EXECUTORS, "lend", "inproc://raw-two", true},
         remote_target, remote_text, NULL},
        {"  the echo blocked in run, kicked", {S_BLOCKED, "lend", "inproc://raw-two", true},
         1e9, "(no target: the kick's cost)", NULL},
        {"ipc, two runtimes", {S_IPC, "lend", ipc, true}, remote_target, remote_text, NULL},
        {"tcp, two runtimes", {S_TCP, "lend", "tcp://127.0.0.1:*", true}, remote_target,
         remote_text, NULL},
    };
    s_rtt_t r = {0};
    double *keep[] = {&r.shared, NULL, &r.two_ex, NULL, &r.ipc, &r.tcp};
    for (size_t i = 0; i < sizeof rows / sizeof *rows && !s_one_way_only; i++) {
        double rt_ns, raw_ns;
        s_compare(&rows[i].c, size, &rt_ns, &raw_ns);
        s_row(rows[i].label, rt_ns, raw_ns, rows[i].target, rows[i].target_text);
        if (keep[i])
            *keep[i] = rt_ns;
    }

    if (busy && !s_one_way_only) {
        printf("  %-34s %13s %13s %8s\n", "idle against busy (runtime)", "idle", "busy", "ratio");
        s_row("inproc, two executors", r.two_ex, busy->two_ex, 2.0, "<= 2x busy");
        s_row("ipc, two runtimes", r.ipc, busy->ipc, 2.0, "<= 2x busy");
        s_row("tcp, two runtimes", r.tcp, busy->tcp, 2.0, "<= 2x busy");
    }

    printf("  %-34s %13s %13s %8s\n", "one-way throughput", "runtime", "raw zmq", "share");
    const struct {
        const char *label;
        s_case_t c;
    } flows[] = {
        {"inproc, two executors", {S_TWO_EXECUTORS, "send", "inproc://raw-tput", false}},
        {"ipc, two runtimes", {S_IPC, "send", ipc, false}},
        {"tcp, two runtimes", {S_TCP, "send", "tcp://127.0.0.1:*", false}},
    };
    for (size_t i = 0; i < sizeof flows / sizeof *flows; i++) {
        double rt_ns, raw_ns;
        s_compare(&flows[i].c, size, &rt_ns, &raw_ns);
        s_throughput_row(flows[i].label, rt_ns, raw_ns);
    }
    return r;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: rt_bench [--iterations N] [--repeat N] [--busy-only | --idle-only]\n"
            "                [--one-way-only] [--strict]\n"
            "Measures the runtime's request/reply round trip and one-way throughput\n"
            "beside raw ZeroMQ, on an idle machine and with the other core busy.\n"
            "  --iterations N  operations per measurement (default 20000)\n"
            "  --repeat N      measurements per figure, the median is shown\n"
            "                  (default 3, at most 15)\n"
            "  --busy-only     only the run with the other core busy\n"
            "  --idle-only     only the idle run\n"
            "  --one-way-only  only the one-way rows (each checks that the receiver\n"
            "                  counted every event sent: the load run is\n"
            "                  --iterations 1000000 --repeat 1 --one-way-only)\n"
            "  --strict        exit with status 1 when a target is missed\n"
            "Exit status 0 once every figure is measured (with --strict: and every\n"
            "target met); 2 for a bad option.\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_opts_t o = {.iterations = s_iterations, .repeat = s_repeat};
    /* Its own option, taken out before the shared ones are parsed. */
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        if (i && !strcmp(argv[i], "--one-way-only"))
            s_one_way_only = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    int status = bench_parse(argc, argv, "rt_bench", 2, 100000000, s_usage, &o);
    if (status >= 0)
        return status;
    s_iterations = (int)o.iterations;
    s_repeat = o.repeat;
    s_rtt_t busy_rtt;
    if (o.busy) {
        pid_t load = bench_load_start();
        busy_rtt = s_run("Other core busy (a spinning process)", true, NULL);
        bench_load_stop(&load);
    }
    if (o.idle)
        s_run("Idle machine", false, o.busy ? &busy_rtt : NULL);
    /* ZeroMQ leaves ipc:// socket files behind. */
    char path[128];
    snprintf(path, sizeof path, "/tmp/vmm-bench-%d.sock", getpid());
    unlink(path);
    snprintf(path, sizeof path, "/tmp/vmm-bench-raw-%d.sock", getpid());
    unlink(path);
    printf("\n%s\n", s_misses ? "Some targets were missed." : "All targets met.");
    return o.strict && s_misses ? 1 : 0;
}
