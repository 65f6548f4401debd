/*
 * Device-host benchmark: what a guest sees a port exit to a device in
 * another process cost, over ipc:// and over tcp://127.0.0.1, beside the
 * raw KVM exit and the raw ZeroMQ round trip between the same two
 * processes, measured in the same run, first with the other core kept busy
 * by a spinning child process, then on the idle machine.
 *
 * Before any thread exists the benchmark forks a device host, a child that
 * on command either
 *   - serves the bench devices (bench/io_guest.h) in a runtime of its own,
 *     bound to ipc:// in a private folder (mkdtemp, mode 0700) or to
 *     tcp://127.0.0.1 on a port the kernel picks, and registered with the
 *     VM's partition at the endpoint it is given; or
 *   - echoes raw ZeroMQ messages (a ROUTER, no runtime) to a DEALER here.
 * The bench_io guest runs, in every repeat and in turn:
 *   - on a bare KVM_RUN loop that answers port writes inline: the raw exit;
 *   - in the VMM with the bench devices in process, on VP 0's executor and
 *     on another, for reference;
 *   - in the VMM with the bench devices in the device host, per transport:
 *     acknowledged port writes (the VP waits for the device's Ack, a whole
 *     round trip as a read is), posted writes (one-way) and doorbell writes
 *     (an ioeventfd; the partition tells the remote owner).
 * And MSIs a device raises on its own to a halted guest (bench/msi_guest.h),
 * timed by the device from raising one until the guest's handler counted
 * it: from a thread of a bare KVM_RUN loop (KVM_SIGNAL_MSI), from the
 * device in process on an executor of its own (the partition takes the MSI
 * on the device's thread), and from the device host over ipc:// (its
 * irqfd).
 *
 * Targets (the issue's): an acknowledged port write to the device host at
 * most 1.15 times (raw exit + raw ZeroMQ round trip) on each transport; a
 * posted write or a doorbell write to it no dearer than to the same device
 * in process on an executor of its own (its nearest placement in process:
 * off the VP's thread), within 10% for noise; an MSI from the device host
 * over ipc:// at most 1.2 times the bare loop's.
 *
 *   bazel run //bench:devhost_bench -- [--iterations N] [--repeat N]
 *                                      [--idle-only|--busy-only] [--strict]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/devices/device_actor.h"
#include "bench/bench.h"
#include "bench/io_guest.h"
#include "bench/msi_guest.h"
#include "runtime/rt.h"
#include "runtime/testing/echo.h"
#include "vmm/vm.h"

#define S_ENDPOINT_MAX 256
#define S_TIMEOUT_MS 10000 /* longest wait for a raw reply */

static uint32_t s_iterations = 5000;
static int s_repeat = 5;
static uint32_t s_tsc_khz; /* the guest's TSC, read from the raw vCPU */

/*
 * A transport between the VM and the device host. tcp:// is ZeroMQ CURVE,
 * as vmm runs it: the VM and the host each have a key pair (made in
 * main(), before the fork) and admit each other's key; the raw round trip
 * over it is CURVE too, so that like is compared with like.
 */
typedef struct {
    const char *name;
    bool tcp;
    rt_config_t vm_rt, host_rt;
} s_link_t;

enum { S_IPC, S_TCP, S_LINKS };
static s_link_t s_links[S_LINKS] = {
    [S_IPC] = {.name = "ipc"},
    [S_TCP] = {.name = "tcp", .tcp = true},
};
static char s_vm_pub[41], s_vm_sec[41], s_host_pub[41], s_host_sec[41];

static char s_dir[] = "/tmp/vmm-devhost-bench-XXXXXX"; /* the ipc:// endpoints' */
static io_guest_tally_t *s_tally; /* shared with the device host */
static msi_guest_tally_t *s_msi_tally; /* the same */
/* The device host's pid; -1 before the fork, 0 in the device host itself. */
static pid_t s_host = -1;
static int s_cmd_fd = -1, s_ack_fd = -1; /* to and from the device host */

/* Where something named name listens on the link: a socket file in the
 * private folder, or a port the kernel picks (the binder resolves it). */
static void s_endpoint(const s_link_t *l, const char *name, char *buf, size_t size)
{
    if (l->tcp)
        snprintf(buf, size, "tcp://127.0.0.1:*");
    else
        snprintf(buf, size, "ipc://%s/%s", s_dir, name);
}

/* A raw socket for the link: over tcp:// the echo's ROUTER is a CURVE
 * server with the host's key, the DEALER a client with the VM's. */
static void *s_raw_socket(void *ctx, const s_link_t *l, int type)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0, one = 1, timeout = S_TIMEOUT_MS;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout))
        bench_die("a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
    if (l->tcp && type == ZMQ_ROUTER &&
        (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_host_sec, 40)))
        bench_die("a CURVE server: %s", zmq_strerror(zmq_errno()));
    if (l->tcp && type == ZMQ_DEALER &&
        (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, s_host_pub, 40) ||
         zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, s_vm_pub, 40) ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_vm_sec, 40)))
        bench_die("a CURVE client: %s", zmq_strerror(zmq_errno()));
    return s;
}

/* ---- The device host ----------------------------------------------------------- */

typedef enum {
    S_CMD_DEVICES, /* serve the bench devices, registered with endpoint */
    S_CMD_STOP,    /* stop serving them */
    S_CMD_ECHO,    /* echo n raw messages */
    S_CMD_SINK,    /* take n raw messages, answering none */
    S_CMD_MSI,     /* serve the MSI bench device, registered with endpoint */
} s_op_t;

typedef struct {
    s_op_t op;
    int link;
    uint32_t iterations;           /* S_CMD_DEVICES: what the guest reads */
    long n;                        /* S_CMD_ECHO */
    char endpoint[S_ENDPOINT_MAX]; /* S_CMD_DEVICES: the partition's */
} s_cmd_t;

typedef struct {
    int rc;                        /* 0 or a negative errno */
    char endpoint[S_ENDPOINT_MAX]; /* S_CMD_ECHO: where the echo listens */
} s_ack_t;

/* Reads exactly size bytes. Returns 0, or -1 at the end of the pipe. */
static int s_read_full(int fd, void *buf, size_t size)
{
    for (size_t got = 0; got < size;) {
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static void s_host_ack(int ack_fd, const s_ack_t *ack)
{
    if (write(ack_fd, ack, sizeof *ack) != sizeof *ack)
        _exit(1);
}

/* Starts the bench devices in a runtime of the host's own; *rtp holds it
 * even on failure. */
static int s_host_devices(rt_t **rtp, const s_cmd_t *cmd)
{
    const s_link_t *l = &s_links[cmd->link];
    rt_t *rt = *rtp = rt_new(&l->host_rt);
    if (!rt)
        return -ENOMEM;
    int rc = l->tcp ? rt_peer_allow(rt, s_vm_pub, "") : 0;
    if (!rc)
        rc = rt_directory_set_key(rt, VM_PARTITION, cmd->endpoint, l->tcp ? s_vm_pub : NULL);
    io_guest_dev_config_t cfgs[] = {
        {.iterations = cmd->iterations, .tally = s_tally},
        {.posted = true, .iterations = cmd->iterations, .tally = s_tally},
    };
    const char *names[] = {IO_GUEST_DEV, IO_GUEST_DEV_POSTED};
    const char *files[] = {"bench", "bench-posted"};
    rt_client_t *owner = rc ? NULL : rt_client_new(rt, "bench-host");
    size_t started = 0;
    for (size_t i = 0; owner && !rc && i < sizeof cfgs / sizeof *cfgs; i++) {
        /* Each device on an executor of its own, as vmm devhost runs them:
         * one alone there waits for its next request in the receive. */
        rt_executor_t *ex = rt_executor_new(rt, files[i]);
        if (!ex)
            return -ENOMEM;
        char endpoint[S_ENDPOINT_MAX];
        s_endpoint(l, files[i], endpoint, sizeof endpoint);
        /* It registers with the partition, giving the endpoint the runtime
         * bound (a wildcard port resolved). */
        device_actor_config_t dev = {.new_model = io_guest_dev_new, .model_config = &cfgs[i],
                                     .partition = VM_PARTITION, .owner = "bench-host"};
        rt_actor_spec_t spec = {.name = names[i], .ops = &device_actor_ops, .arg = &dev,
                                .endpoint = endpoint};
        rc = rt_actor_start(ex, &spec);
        started += !rc;
    }
    char why[256];
    int wait_rc = owner ? device_actor_wait_registered(owner, started, 10000, why, sizeof why)
                        : -ENOMEM;
    return rc ? rc : wait_rc;
}

/* Starts the MSI bench device (its MSIs by irqfd) in a runtime of the
 * host's own, over ipc://; *rtp holds it even on failure. */
static int s_host_msi(rt_t **rtp, const s_cmd_t *cmd)
{
    rt_t *rt = *rtp = rt_new(NULL);
    if (!rt)
        return -ENOMEM;
    int rc = rt_directory_set(rt, VM_PARTITION, cmd->endpoint);
    rt_client_t *owner = rc ? NULL : rt_client_new(rt, "bench-host");
    rt_executor_t *ex = owner ? rt_executor_new(rt, MSI_GUEST_DEV_NAME) : NULL;
    if (!ex)
        return rc ? rc : -ENOMEM;
    char endpoint[S_ENDPOINT_MAX];
    s_endpoint(&s_links[S_IPC], MSI_GUEST_DEV_NAME, endpoint, sizeof endpoint);
    msi_guest_config_t model = {.rounds = cmd->iterations, .tally = s_msi_tally};
    device_actor_config_t dev = {.new_model = msi_guest_dev_new, .model_config = &model,
                                 .partition = VM_PARTITION, .owner = "bench-host",
                                 .msi_irqfd = true};
    rt_actor_spec_t spec = {.name = MSI_GUEST_DEV, .ops = &device_actor_ops, .arg = &dev,
                            .endpoint = endpoint};
    if ((rc = rt_actor_start(ex, &spec)))
        return rc;
    char why[256];
    return device_actor_wait_registered(owner, 1, 10000, why, sizeof why);
}

/* Binds a ROUTER, acknowledges with its endpoint, then echoes n messages
 * (or takes them, for S_CMD_SINK). */
static void s_host_echo(const s_cmd_t *cmd, int ack_fd)
{
    s_ack_t ack = {0};
    void *ctx = zmq_ctx_new();
    void *router = s_raw_socket(ctx, &s_links[cmd->link], ZMQ_ROUTER);
    char endpoint[S_ENDPOINT_MAX];
    s_endpoint(&s_links[cmd->link], "echo", endpoint, sizeof endpoint);
    size_t len = sizeof ack.endpoint;
    if (zmq_bind(router, endpoint) ||
        zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ack.endpoint, &len))
        ack.rc = -zmq_errno();
    s_host_ack(ack_fd, &ack);
    char id[256], buf[1024];
    for (long i = 0; !ack.rc && i < cmd->n; i++) {
        int idlen = zmq_recv(router, id, sizeof id, 0);
        int n = idlen < 0 ? -1 : zmq_recv(router, buf, sizeof buf, 0);
        if (n < 0 || (cmd->op == S_CMD_ECHO && (zmq_send(router, id, (size_t)idlen,
                                                         ZMQ_SNDMORE) < 0 ||
                                                zmq_send(router, buf, (size_t)n, 0) < 0)))
            break; /* the benchmark sees the missing reply */
    }
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* The device host's loop: one command at a time, until the pipe ends. */
static void __attribute__((noreturn)) s_host_main(int cmd_fd, int ack_fd)
{
    rt_t *rt = NULL;
    for (s_cmd_t cmd; !s_read_full(cmd_fd, &cmd, sizeof cmd);) {
        s_ack_t ack = {0};
        switch (cmd.op) {
        case S_CMD_DEVICES:
            ack.rc = s_host_devices(&rt, &cmd);
            break;
        case S_CMD_MSI:
            ack.rc = s_host_msi(&rt, &cmd);
            break;
        case S_CMD_STOP:
            rt_destroy(&rt);
            break;
        case S_CMD_ECHO:
        case S_CMD_SINK:
            s_host_echo(&cmd, ack_fd);
            continue; /* it acknowledged before echoing */
        }
        s_host_ack(ack_fd, &ack);
    }
    rt_destroy(&rt);
    _exit(0);
}

/* Forks the device host; it dies with the benchmark however that ends. */
static void s_host_fork(void)
{
    int cmd[2], ack[2];
    if (pipe2(cmd, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
        bench_die("pipe: %s", strerror(errno));
    pid_t parent = getpid();
    s_host = fork();
    if (s_host < 0)
        bench_die("fork: %s", strerror(errno));
    if (s_host == 0) {
        close(cmd[1]);
        close(ack[0]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        s_host_main(cmd[0], ack[1]);
    }
    close(cmd[0]);
    close(ack[1]);
    s_cmd_fd = cmd[1];
    s_ack_fd = ack[0];
}

/* Sends the device host a command and waits for its acknowledgement. */
static void s_host_do(const s_cmd_t *cmd, s_ack_t *ack)
{
    if (write(s_cmd_fd, cmd, sizeof *cmd) != sizeof *cmd ||
        s_read_full(s_ack_fd, ack, sizeof *ack))
        bench_die("the device host is gone");
}

/* Ends the device host and removes the private folder (at exit, so that a
 * failed measurement leaves nothing behind either). */
static void s_cleanup(void)
{
    if (!s_host)
        return; /* the device host: the folder is the benchmark's */
    if (s_host > 0) {
        kill(s_host, SIGKILL);
        waitpid(s_host, NULL, 0);
    }
    DIR *d = opendir(s_dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(s_dir);
}

/* ---- Measurements ------------------------------------------------------------- */

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The packed size of the envelope a VP sends for one port write: the raw
 * round trip carries as many bytes each way. */
static size_t s_request_size(void)
{
    uint8_t data[4] = {0};
    Vmm__Devices__WriteIo w = VMM__DEVICES__WRITE_IO__INIT;
    w.port = 0x5d4; /* the guest's acknowledged port (bench/io_guest.c) */
    w.data = (ProtobufCBinaryData){sizeof data, data};
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
    req.write_io = &w;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.sender = "vm0/vp/0";
    env.receiver = IO_GUEST_DEV;
    env.request_id = 12345;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    return vmm__envelope__get_packed_size(&env);
}

/* A raw DEALER connected to a raw echo (or sink) in the device host over
 * the link, which takes n messages. */
static void *s_raw_dealer(void *ctx, int link, s_op_t op, long n)
{
    s_cmd_t cmd = {.op = op, .link = link, .n = n};
    s_ack_t ack;
    s_host_do(&cmd, &ack);
    if (ack.rc)
        bench_die("the raw echo over %s: %s", s_links[link].name, zmq_strerror(-ack.rc));
    void *dealer = s_raw_socket(ctx, &s_links[link], ZMQ_DEALER);
    if (zmq_connect(dealer, ack.endpoint))
        bench_die("%s: %s", ack.endpoint, zmq_strerror(zmq_errno()));
    return dealer;
}

typedef struct {
    void *dealer;
    size_t size;
} s_trip_t;

/* One raw round trip of t->size bytes. */
static int s_trip(void *arg)
{
    const s_trip_t *t = arg;
    char buf[1024];
    memset(buf, 1, t->size);
    if (zmq_send(t->dealer, buf, t->size, 0) < 0 || zmq_recv(t->dealer, buf, sizeof buf, 0) < 0)
        return -zmq_errno();
    return 0;
}

/* Inside a raw exit: a round trip for an acknowledged write. */
static int s_trip_acknowledged(void *arg, bool posted)
{
    return posted ? 0 : s_trip(arg);
}

/* Inside a raw exit: a one-way send for a posted write. */
static int s_send_posted(void *arg, bool posted)
{
    const s_trip_t *t = arg;
    char buf[1024];
    memset(buf, 1, t->size);
    return posted && zmq_send(t->dealer, buf, t->size, 0) < 0 ? -zmq_errno() : 0;
}

/* ns per raw ZeroMQ round trip of size bytes between a DEALER here and the
 * device host's ROUTER echo over the link; the first exchange, which pays
 * for the connection, is left out. */
static double s_raw_zmq(int link, size_t size)
{
    void *ctx = zmq_ctx_new();
    s_trip_t t = {.dealer = s_raw_dealer(ctx, link, S_CMD_ECHO, (long)s_iterations + 1),
                  .size = size};
    double t0 = 0;
    for (uint32_t i = 0; i <= s_iterations; i++) {
        if (i == 1)
            t0 = s_now_ns();
        if (s_trip(&t))
            bench_die("the raw round trip over %s: %s", s_links[link].name,
                      zmq_strerror(zmq_errno()));
    }
    double ns = (s_now_ns() - t0) / s_iterations;
    zmq_close(t.dealer);
    zmq_ctx_term(ctx);
    return ns;
}

/* ns per acknowledged port write on the bare vCPU that makes a raw round
 * trip inside each exit: the floor of a device in another process. */
static double s_raw_composed(int link, size_t size)
{
    void *ctx = zmq_ctx_new();
    s_trip_t t = {.dealer = s_raw_dealer(ctx, link, S_CMD_ECHO, IO_GUEST_OPS((long)s_iterations)),
                  .size = size};
    io_guest_report_t r;
    char err[256];
    if (io_guest_raw(s_iterations, s_trip_acknowledged, &t, &r, &s_tsc_khz, err, sizeof err))
        bench_die("the raw exit with a round trip over %s: %s", s_links[link].name, err);
    zmq_close(t.dealer);
    zmq_ctx_term(ctx);
    return io_guest_ns_per_op(r.cycles[IO_GUEST_MODE_WRITE - 1], s_iterations, s_tsc_khz);
}

typedef struct {
    void *router;
    long n;
} s_sink_t;

static void *s_sink_main(void *arg)
{
    const s_sink_t *k = arg;
    char buf[1024];
    for (long i = 0; i < 2 * k->n; i++) /* routing id, message */
        if (zmq_recv(k->router, buf, sizeof buf, 0) < 0)
            break;
    return NULL;
}

/* ns per posted write on the bare vCPU that sends each one-way inside the
 * exit, to a raw sink: in the device host over the link, or (link < 0)
 * on a thread of this process over inproc://, the floor of a device on
 * another executor. */
static double s_raw_one_way(int link, size_t size)
{
    void *ctx = zmq_ctx_new();
    long n = IO_GUEST_OPS((long)s_iterations);
    s_trip_t t = {.size = size};
    s_sink_t sink = {.n = n};
    pthread_t thread;
    if (link >= 0) {
        t.dealer = s_raw_dealer(ctx, link, S_CMD_SINK, n);
    } else {
        sink.router = s_raw_socket(ctx, &s_links[S_IPC], ZMQ_ROUTER);
        t.dealer = s_raw_socket(ctx, &s_links[S_IPC], ZMQ_DEALER);
        if (zmq_bind(sink.router, "inproc://sink") || zmq_connect(t.dealer, "inproc://sink") ||
            pthread_create(&thread, NULL, s_sink_main, &sink))
            bench_die("the inproc sink: %s", zmq_strerror(zmq_errno()));
    }
    io_guest_report_t r;
    char err[256];
    if (io_guest_raw(s_iterations, s_send_posted, &t, &r, &s_tsc_khz, err, sizeof err))
        bench_die("the raw exit sending one-way: %s", err);
    if (link < 0) {
        pthread_join(thread, NULL);
        zmq_close(sink.router);
    }
    zmq_close(t.dealer);
    zmq_ctx_term(ctx);
    return io_guest_ns_per_op(r.cycles[IO_GUEST_MODE_POSTED - 1], s_iterations, s_tsc_khz);
}

/* Runs the guest in a VM whose bench devices the device host serves over
 * the link. */
static int s_remote(int link, io_guest_report_t *r, char *err, size_t errlen)
{
    const s_link_t *l = &s_links[link];
    char partition[S_ENDPOINT_MAX];
    s_endpoint(l, "partition", partition, sizeof partition);
    io_guest_vm_config_t cfg = {.iterations = s_iterations, .partition_endpoint = partition,
                                .rt = &l->vm_rt};
    vm_t *vm = io_guest_vm_new(&cfg, err, errlen);
    if (!vm)
        return -EIO;
    if (l->tcp && rt_peer_allow(vm_rt(vm), s_host_pub, "vm0/"))
        bench_die("cannot admit the device host's key");
    atomic_store(&s_tally->writes, 0);
    atomic_store(&s_tally->posted, 0);
    atomic_store(&s_tally->doorbells, 0);
    s_cmd_t cmd = {.op = S_CMD_DEVICES, .link = link, .iterations = s_iterations};
    s_ack_t ack = {0};
    int rc = rt_endpoint_of(vm_rt(vm), VM_PARTITION, cmd.endpoint, sizeof cmd.endpoint);
    if (rc) {
        snprintf(err, errlen, "the partition has no endpoint: %s", strerror(-rc));
        goto cleanup;
    }
    s_host_do(&cmd, &ack);
    if ((rc = ack.rc)) {
        snprintf(err, errlen, "the device host's devices did not register: %s",
                 strerror(-rc));
        goto cleanup;
    }
    rc = io_guest_vm_run(vm, s_iterations, s_tally, r, err, errlen);
cleanup:
    vm_destroy(&vm);
    /* Stopped whatever happened: its runtime may exist with no devices. */
    cmd.op = S_CMD_STOP;
    s_host_do(&cmd, &ack);
    return rc;
}

/* Yama's ptrace_scope, or 0 without Yama: the device host takes its irqfd
 * with pidfd_getfd(2), which needs the right to trace this process. */
static int s_ptrace_scope(void)
{
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    int scope = 0;
    if (f) {
        if (fscanf(f, "%d", &scope) != 1)
            scope = 0;
        fclose(f);
    }
    return scope;
}

/* MSIs from the device host over ipc://: *ns per MSI, and *by_irqfd 1
 * when the partition made it an irqfd (0: they went by message). */
static int s_remote_msi(double *ns, double *by_irqfd, char *err, size_t errlen)
{
    char partition[S_ENDPOINT_MAX];
    s_endpoint(&s_links[S_IPC], "partition", partition, sizeof partition);
    vm_t *vm = msi_guest_vm_new(s_iterations, NULL, VM_DEVICES_APART, partition, err, errlen);
    if (!vm)
        return -EIO;
    memset(s_msi_tally, 0, sizeof *s_msi_tally);
    s_cmd_t cmd = {.op = S_CMD_MSI, .link = S_IPC, .iterations = s_iterations};
    s_ack_t ack = {0};
    int rc = rt_endpoint_of(vm_rt(vm), VM_PARTITION, cmd.endpoint, sizeof cmd.endpoint);
    if (rc) {
        snprintf(err, errlen, "the partition has no endpoint: %s", strerror(-rc));
        goto cleanup;
    }
    if (s_ptrace_scope() == 1)
        prctl(PR_SET_PTRACER, (unsigned long)s_host);
    s_host_do(&cmd, &ack);
    if ((rc = ack.rc)) {
        snprintf(err, errlen, "the MSI device did not register: %s", strerror(-rc));
        goto cleanup;
    }
    rc = msi_guest_vm_run(vm, s_iterations, s_msi_tally, ns, err, errlen);
    *by_irqfd = echo_inspect_number(vm_client(vm), VM_PARTITION, "msi_irqfds") > 0;
cleanup:
    vm_destroy(&vm);
    cmd.op = S_CMD_STOP;
    s_host_do(&cmd, &ack);
    return rc;
}

/* MSIs from the device in process, on an executor of its own. */
static int s_apart_msi(double *ns, char *err, size_t errlen)
{
    msi_guest_tally_t tally = {0};
    vm_t *vm = msi_guest_vm_new(s_iterations, &tally, VM_DEVICES_APART, NULL, err, errlen);
    if (!vm)
        return -EIO;
    int rc = msi_guest_vm_run(vm, s_iterations, &tally, ns, err, errlen);
    vm_destroy(&vm);
    return rc;
}

/* ns per operation, as medians; only doubles (see s_medians()). */
typedef struct {
    double raw[IO_GUEST_MODES];              /* the bare KVM_RUN loop */
    double with_vp[IO_GUEST_MODES];          /* devices in process, VP 0's executor */
    double apart[IO_GUEST_MODES];            /* devices in process, their own executor */
    double remote[S_LINKS][IO_GUEST_MODES];  /* devices in the device host */
    double zmq[S_LINKS];                     /* raw ZeroMQ round trip */
    double composed[S_LINKS];                /* a raw exit making one inline */
    double one_way[S_LINKS], one_way_inproc; /* a raw exit sending one-way inline */
    double taken[S_LINKS], signals[S_LINKS]; /* io_guest_report_t's, remote */
    double msi_raw, msi_apart, msi_remote;   /* ns per MSI a device raised */
    double msi_by_irqfd;                     /* the remote MSIs went by irqfd */
} s_figures_t;

#define S_N_FIGURES (sizeof(s_figures_t) / sizeof(double))
_Static_assert(sizeof(s_figures_t) % sizeof(double) == 0, "s_figures_t holds only doubles");

static void s_take_modes(double *ns, const io_guest_report_t *r)
{
    for (int m = 0; m < IO_GUEST_MODES; m++)
        ns[m] = io_guest_ns_per_op(r->cycles[m], s_iterations, s_tsc_khz);
}

/* Each figure's median over n samples. */
static void s_medians(const s_figures_t *samples, int n, s_figures_t *f)
{
    for (size_t k = 0; k < S_N_FIGURES; k++) {
        double v[BENCH_MAX_REPEAT];
        for (int i = 0; i < n; i++)
            v[i] = ((const double *)&samples[i])[k];
        ((double *)f)[k] = bench_median(v, n);
    }
}

/* Measures everything s_repeat times, in turn, so that drift in the
 * machine's load touches all alike. */
static void s_measure(size_t size, s_figures_t *f)
{
    s_figures_t samples[BENCH_MAX_REPEAT];
    char err[256] = "";
    for (int i = 0; i < s_repeat; i++) {
        s_figures_t *s = &samples[i];
        io_guest_report_t r;
        if (io_guest_raw(s_iterations, NULL, NULL, &r, &s_tsc_khz, err, sizeof err))
            bench_die("the raw harness: %s", err);
        s_take_modes(s->raw, &r);
        if (io_guest_in_process(VM_DEVICES_WITH_VP0, s_iterations, NULL, &r, err, sizeof err))
            bench_die("the VMM, devices on VP 0's executor: %s", err);
        s_take_modes(s->with_vp, &r);
        if (io_guest_in_process(VM_DEVICES_APART, s_iterations, NULL, &r, err, sizeof err))
            bench_die("the VMM, devices on their own executor: %s", err);
        s_take_modes(s->apart, &r);
        s->one_way_inproc = s_raw_one_way(-1, size);
        for (int l = 0; l < S_LINKS; l++) {
            s->zmq[l] = s_raw_zmq(l, size);
            s->composed[l] = s_raw_composed(l, size);
            s->one_way[l] = s_raw_one_way(l, size);
            if (s_remote(l, &r, err, sizeof err))
                bench_die("the VMM, devices in the device host over %s: %s", s_links[l].name,
                          err);
            s_take_modes(s->remote[l], &r);
            s->taken[l] = r.posted_taken;
            s->signals[l] = r.doorbell_signals;
        }
        if (msi_guest_raw(s_iterations, &s->msi_raw, err, sizeof err))
            bench_die("the raw MSIs: %s", err);
        if (s_apart_msi(&s->msi_apart, err, sizeof err))
            bench_die("the VMM, MSIs from a device on its own executor: %s", err);
        if (s_remote_msi(&s->msi_remote, &s->msi_by_irqfd, err, sizeof err))
            bench_die("the VMM, MSIs from the device host over ipc: %s", err);
    }
    s_medians(samples, s_repeat, f);
}

/* ---- Report ---------------------------------------------------------------- */

static void s_run(const char *title, size_t size)
{
    printf("\n%s (%u iterations, median of %d, %zu-byte requests)\n", title, s_iterations,
           s_repeat, size);
    s_figures_t f;
    s_measure(size, &f);
    const int w = IO_GUEST_MODE_WRITE - 1, d = IO_GUEST_MODE_DOORBELL - 1,
              p = IO_GUEST_MODE_POSTED - 1;
    const double out = f.raw[w];
    char what[64];
    printf("  %-44s %12s %12s %8s\n", "port write (acknowledged)", "devhost", "exit + zmq",
           "ratio");
    for (int l = 0; l < S_LINKS; l++) {
        snprintf(what, sizeof what, "port write, device host over %s", s_links[l].name);
        bench_row(what, f.remote[l][w], out + f.zmq[l], 1.15,
                  "<= 1.15x (raw exit + raw zmq round trip)");
    }
    printf("  %-44s %12s %12s %8s\n", "one-way writes", "devhost", "in process", "ratio");
    const struct {
        const char *label;
        int mode;
    } one_way[] = {{"posted write", p}, {"doorbell write", d}};
    for (size_t k = 0; k < sizeof one_way / sizeof *one_way; k++)
        for (int l = 0; l < S_LINKS; l++) {
            int m = one_way[k].mode;
            snprintf(what, sizeof what, "%s, device host over %s", one_way[k].label,
                     s_links[l].name);
            bench_row(what, f.remote[l][m], f.apart[m], 1.1,
                      "<= 1.1x in process, another executor");
        }
    printf("  %-44s %12s %12s %8s\n", "MSI a device raises, to its handler", "VMM", "raw",
           "ratio");
    bench_row(f.msi_by_irqfd >= 1 ? "MSI from the device host over ipc (irqfd)"
                                  : "MSI from the device host over ipc (by message)",
              f.msi_remote, f.msi_raw, 1.2, "<= 1.2x KVM_SIGNAL_MSI from a thread");
    bench_row("MSI from a device on another executor", f.msi_apart, f.msi_raw, 1e9,
              "(no target)");
    printf("  %-44s %12s %12s %8s\n", "reference", "figure", "raw OUT", "ratio");
    for (int l = 0; l < S_LINKS; l++) {
        snprintf(what, sizeof what, "raw zmq round trip over %s, two processes",
                 s_links[l].name);
        bench_row(what, f.zmq[l], out, 1e9, "(no target)");
    }
    for (int l = 0; l < S_LINKS; l++) {
        snprintf(what, sizeof what, "raw exit with a raw round trip over %s", s_links[l].name);
        bench_row(what, f.composed[l], out + f.zmq[l], 1e9,
                  "(no target; against exit + zmq, the floor)");
    }
    bench_row("raw exit sending one-way over inproc", f.one_way_inproc, out, 1e9,
              "(no target; the floor in process)");
    for (int l = 0; l < S_LINKS; l++) {
        snprintf(what, sizeof what, "raw exit sending one-way over %s", s_links[l].name);
        bench_row(what, f.one_way[l], f.one_way_inproc, 1e9,
                  "(no target; against the same over inproc)");
    }
    bench_row("port write, device on the VP's executor", f.with_vp[w], out, 1e9, "(no target)");
    bench_row("port write, device on another executor", f.apart[w], out, 1e9, "(no target)");
    bench_row("posted write, device on the VP's executor", f.with_vp[p], out, 1e9,
              "(no target)");
    bench_row("doorbell write, owner on the VP's executor", f.with_vp[d], out, 1e9,
              "(no target)");
    printf("  (ipc / tcp) posted writes taken when their loop ended: %.0f%% / %.0f%%;\n"
           "  doorbell signals reaching the remote owner per write: %.2f / %.2f; "
           "the guest's TSC: %u kHz\n",
           f.taken[S_IPC] * 100, f.taken[S_TCP] * 100, f.signals[S_IPC], f.signals[S_TCP],
           s_tsc_khz);
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: devhost_bench [--iterations N] [--repeat N] [--busy-only | --idle-only]\n"
            "                     [--strict]\n"
            "Measures, inside a guest, what a port write, a posted write and a doorbell\n"
            "write to a device in another process (a device host) cost over ipc:// and\n"
            "tcp://, beside the raw KVM exit, the raw ZeroMQ round trip between the two\n"
            "processes and the same device in process; and how fast an MSI the device\n"
            "host raises reaches a halted guest's handler, beside the same from a thread\n"
            "of a bare KVM_RUN loop; on an idle machine and with the other core busy.\n"
            "Needs /dev/kvm.\n"
            "  --iterations N  operations per timed guest loop and raw round trips\n"
            "                  (default 5000)\n"
            "  --repeat N      measurements per figure, the median is shown\n"
            "                  (default 5, at most 15)\n"
            "  --busy-only     only the run with the other core busy\n"
            "  --idle-only     only the idle run\n"
            "  --strict        exit with status 1 when a target is missed\n"
            "Exit status 0 once every figure is measured (with --strict: and every\n"
            "target met); 1 when a measurement fails; 2 for a bad option.\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_opts_t o = {.iterations = s_iterations, .repeat = s_repeat};
    int status = bench_parse(argc, argv, "devhost_bench", 1, 10000000, s_usage, &o);
    if (status >= 0)
        return status;
    s_iterations = (uint32_t)o.iterations;
    s_repeat = o.repeat;
    if (access("/dev/kvm", R_OK | W_OK))
        bench_die("/dev/kvm: %s; this benchmark needs KVM", strerror(errno));
    /* The tally lives in memory the device host shares; the host is forked
     * before any thread exists (a process with threads forks badly). */
    s_tally = mmap(NULL, sizeof *s_tally, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    s_msi_tally = mmap(NULL, sizeof *s_msi_tally, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s_tally == MAP_FAILED || s_msi_tally == MAP_FAILED)
        bench_die("mmap: %s", strerror(errno));
    if (!mkdtemp(s_dir)) /* mode 0700 */
        bench_die("mkdtemp %s: %s", s_dir, strerror(errno));
    atexit(s_cleanup);
    if (zmq_curve_keypair(s_vm_pub, s_vm_sec) || zmq_curve_keypair(s_host_pub, s_host_sec))
        bench_die("CURVE keys: %s", zmq_strerror(zmq_errno()));
    s_links[S_TCP].vm_rt = (rt_config_t){.curve_public_key = s_vm_pub,
                                         .curve_secret_key = s_vm_sec};
    s_links[S_TCP].host_rt = (rt_config_t){.curve_public_key = s_host_pub,
                                           .curve_secret_key = s_host_sec};
    s_host_fork();
    size_t size = s_request_size();
    if (o.busy) {
        pid_t load = bench_load_start();
        s_run("Other core busy (a spinning process)", size);
        bench_load_stop(&load);
    }
    if (o.idle)
        s_run("Idle machine", size);
    printf("\n%s\n", bench_misses() ? "Some targets were missed." : "All targets met.");
    return o.strict && bench_misses() ? 1 : 0;
}
