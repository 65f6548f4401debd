/*
 * Scale benchmark: VMs of 1, 64 and 256 VPs of actors beside the same
 * vCPUs run by bare threads with no actors (the cheapest a VMM can be),
 * each VM in a process of its own so that its peak RSS is its own:
 *
 *   - build: vm_new() (partition, VPs, devices, the guest loaded); bare:
 *     the VM, its vCPUs and their threads made;
 *   - first report: from the start (Run to every VP) until every VP's first
 *     guest call (guest/bench_scale.c) has reached the owner;
 *   - stop-all: Stop sent one-way to every VP until every VP's Halted came
 *     back (bare: immediate_exit and a signal to every thread until each
 *     has left KVM_RUN), then start-all: Run to every VP until each has
 *     acknowledged (bare: every thread back on its way into KVM_RUN); the
 *     medians and maxima over --cycles rounds;
 *   - peak RSS (getrusage()'s ru_maxrss) of the process.
 *
 * Every round checks that each VP halted exactly once; any other outcome
 * ends the benchmark with status 1. The guest's VPs are halted while
 * stopped and started, as idle VPs are. The target: stop-all of 64 VPs in
 * 2 ms at most.
 *
 *   bazel run //bench:scale_bench -- [--vps N[,N...]] [--cycles N] [--mem MiB]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/testdev_abi.h"
#include "bench/bench.h"
#include "bench/raw_kvm.h"
#include "loader/loader.h"
#include "vmm/vm.h"

/* The guest image (//guest:bench_scale_embedded). */
extern const unsigned char guest_bench_scale_elf[];
extern const unsigned long guest_bench_scale_elf_len;

#define S_MAX_VPS 256
#define S_MAX_CYCLES 100000
#define S_WAIT_MS 30000 /* for any one thing the VM owes, before giving up */
#define S_TARGET_STOP_NS 2e6
#define S_TARGET_VPS 64

static uint32_t s_vps[8] = {1, 64, 256};
static size_t s_n_vps = 3;
static long s_cycles = 20;
static uint64_t s_mem = 256ull << 20;

/* What one process measured, sent up a pipe. */
typedef struct {
    double build_ns, first_ns;
    double stop_med_ns, stop_max_ns, start_med_ns, start_max_ns;
    long rss_kib;
    char err[200];
} s_figures_t;

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- VPs of actors ------------------------------------------------------------ */

/* Waits for one event per VP of the kind asked: a sync call (stop false)
 * or a Halted for Stop. Each VP once; anything else is a failure. */
static int s_each_vp_once(vm_t *vm, uint32_t n, bool stop, char *err, size_t errlen)
{
    static bool seen[S_MAX_VPS];
    memset(seen, 0, sizeof seen);
    for (uint32_t got = 0; got < n;) {
        vm_event_t ev;
        int rc = vm_next_event(vm, &ev, S_WAIT_MS);
        if (rc) {
            snprintf(err, errlen, "%u of %u VPs %s within %d s", got, n,
                     stop ? "halted" : "reported", S_WAIT_MS / 1000);
            return rc;
        }
        bool want = stop ? ev.kind == VM_EVENT_HALT && ev.reason == VMM__VP__HALTED__REASON_STOP
                         : ev.kind == VM_EVENT_GUEST_CALL && ev.call == TESTDEV_CALL_SYNC;
        if (!want || ev.vp >= n || seen[ev.vp]) {
            snprintf(err, errlen, "vp %u: %s", ev.vp,
                     !want ? (ev.kind == VM_EVENT_HALT ? ev.text : "an unexpected guest call")
                           : "twice");
            return -EPROTO;
        }
        seen[ev.vp] = true;
        got++;
    }
    return 0;
}

static void s_actors_vm(uint32_t n, s_figures_t *f, double *stops, double *starts)
{
    vm_config_t cfg = {.elf = guest_bench_scale_elf, .elf_len = guest_bench_scale_elf_len,
                       .mem_size = s_mem, .n_vps = n, .serial_out = -1, .serial_in = -1};
    double t0 = s_now_ns();
    vm_t *vm = vm_new(&cfg, f->err, sizeof f->err);
    if (!vm)
        return;
    f->build_ns = s_now_ns() - t0;
    t0 = s_now_ns();
    int rc = vm_start(vm);
    if (rc) {
        snprintf(f->err, sizeof f->err, "start: %s", strerror(-rc));
        goto out;
    }
    if (s_each_vp_once(vm, n, false, f->err, sizeof f->err))
        goto out;
    f->first_ns = s_now_ns() - t0;
    for (long c = 0; c < s_cycles; c++) {
        t0 = s_now_ns();
        if ((rc = vm_stop(vm))) {
            snprintf(f->err, sizeof f->err, "round %ld: Stop: %s", c, strerror(-rc));
            goto out;
        }
        if (s_each_vp_once(vm, n, true, f->err, sizeof f->err))
            goto out;
        stops[c] = s_now_ns() - t0;
        t0 = s_now_ns();
        if ((rc = vm_start(vm))) {
            snprintf(f->err, sizeof f->err, "round %ld: Run: %s", c, strerror(-rc));
            goto out;
        }
        starts[c] = s_now_ns() - t0;
    }
out:
    vm_destroy(&vm);
}

/* ---- Bare threads ------------------------------------------------------------- */

typedef struct {
    raw_kvm_vcpu_t vcpu;
    uint32_t n; /* vCPUs in the VM */
    pthread_t thread;
    bool started;
} s_bare_vp_t;

/* The threads wait on run_cond, the main thread on main_cond, so that no
 * count wakes more than the one thread that waits for it. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t run_cond, main_cond;
    uint64_t stop_gen, run_gen;
    uint32_t reported, stopped, running;
    bool go, quit; /* go: the start, as Run to every VP */
    char err[200];
} s_bare = {.lock = PTHREAD_MUTEX_INITIALIZER,
            .run_cond = PTHREAD_COND_INITIALIZER,
            .main_cond = PTHREAD_COND_INITIALIZER};

static void s_on_kick(int sig)
{
    (void)sig;
}

/* Counts one more; the main thread waits until a count reaches n. */
static void s_bare_count_locked(uint32_t *what, uint32_t n)
{
    if (++*what == n)
        pthread_cond_signal(&s_bare.main_cond);
}

static void *s_bare_main(void *arg)
{
    s_bare_vp_t *v = arg;
    struct kvm_run *run = v->vcpu.run;
    uint64_t stops_seen = 0;
    bool reported = false;
    pthread_mutex_lock(&s_bare.lock);
    while (!s_bare.go && !s_bare.quit)
        pthread_cond_wait(&s_bare.run_cond, &s_bare.lock);
    pthread_mutex_unlock(&s_bare.lock);
    for (;;) {
        pthread_mutex_lock(&s_bare.lock);
        if (s_bare.stop_gen != stops_seen) {
            stops_seen = s_bare.stop_gen;
            s_bare_count_locked(&s_bare.stopped, v->n);
            uint64_t gen = s_bare.run_gen;
            while (s_bare.run_gen == gen && !s_bare.quit)
                pthread_cond_wait(&s_bare.run_cond, &s_bare.lock);
            run->immediate_exit = 0;
            s_bare_count_locked(&s_bare.running, v->n);
        }
        bool quit = s_bare.quit;
        pthread_mutex_unlock(&s_bare.lock);
        if (quit)
            return NULL;
        if (ioctl(v->vcpu.fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(s_bare.err, sizeof s_bare.err, "KVM_RUN: %s", strerror(errno));
            return NULL;
        }
        /* The sync call; anything else (none expected) is let be. */
        if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
            run->io.port == TESTDEV_PORT_CALL && !reported) {
            reported = true;
            pthread_mutex_lock(&s_bare.lock);
            s_bare_count_locked(&s_bare.reported, v->n);
            pthread_mutex_unlock(&s_bare.lock);
        }
    }
}

/* Waits until *what reaches n, up to S_WAIT_MS. */
static int s_bare_wait(uint32_t *what, uint32_t n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += S_WAIT_MS / 1000;
    int rc = 0;
    pthread_mutex_lock(&s_bare.lock);
    while (*what < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s_bare.main_cond, &s_bare.lock, &until);
    rc = *what < n ? -ETIMEDOUT : 0;
    pthread_mutex_unlock(&s_bare.lock);
    return rc;
}

static void s_bare_vm(uint32_t n, s_figures_t *f, double *stops, double *starts)
{
    struct sigaction sa = {.sa_handler = s_on_kick};
    sigaction(SIGUSR1, &sa, NULL);
    s_bare_vp_t *vps = calloc(n, sizeof *vps);
    raw_kvm_t k = {.kvm = -1, .vm = -1, .vcpu = -1};
    double t0 = s_now_ns();
    loader_image_t *image = loader_image_new(guest_bench_scale_elf, guest_bench_scale_elf_len,
                                             s_mem, n, f->err, sizeof f->err);
    if (!vps || !image || raw_kvm_open_image(&k, image, f->err, sizeof f->err))
        goto out;
    vps[0].vcpu = (raw_kvm_vcpu_t){.fd = k.vcpu, .run = k.run};
    for (uint32_t i = 1; i < n; i++) {
        int rc = raw_kvm_add_vcpu(&k, image, i, &vps[i].vcpu);
        if (rc) {
            snprintf(f->err, sizeof f->err, "vCPU %u: %s", i, strerror(-rc));
            goto out;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        vps[i].n = n;
        if (pthread_create(&vps[i].thread, NULL, s_bare_main, &vps[i])) {
            snprintf(f->err, sizeof f->err, "thread %u: %s", i, strerror(errno));
            goto out;
        }
        vps[i].started = true;
    }
    f->build_ns = s_now_ns() - t0;
    t0 = s_now_ns();
    pthread_mutex_lock(&s_bare.lock);
    s_bare.go = true;
    pthread_cond_broadcast(&s_bare.run_cond);
    pthread_mutex_unlock(&s_bare.lock);
    if (s_bare_wait(&s_bare.reported, n)) {
        snprintf(f->err, sizeof f->err, "%u of %u vCPUs reported", s_bare.reported, n);
        goto out;
    }
    f->first_ns = s_now_ns() - t0;
    for (long c = 0; c < s_cycles; c++) {
        t0 = s_now_ns();
        pthread_mutex_lock(&s_bare.lock);
        s_bare.stop_gen++;
        s_bare.stopped = 0;
        pthread_mutex_unlock(&s_bare.lock);
        for (uint32_t i = 0; i < n; i++) {
            vps[i].vcpu.run->immediate_exit = 1;
            pthread_kill(vps[i].thread, SIGUSR1);
        }
        if (s_bare_wait(&s_bare.stopped, n)) {
            snprintf(f->err, sizeof f->err, "round %ld: %u of %u vCPUs stopped", c,
                     s_bare.stopped, n);
            goto out;
        }
        stops[c] = s_now_ns() - t0;
        t0 = s_now_ns();
        pthread_mutex_lock(&s_bare.lock);
        s_bare.running = 0;
        s_bare.run_gen++;
        pthread_cond_broadcast(&s_bare.run_cond);
        pthread_mutex_unlock(&s_bare.lock);
        if (s_bare_wait(&s_bare.running, n)) {
            snprintf(f->err, sizeof f->err, "round %ld: %u of %u vCPUs ran", c, s_bare.running,
                     n);
            goto out;
        }
        starts[c] = s_now_ns() - t0;
    }
out:
    pthread_mutex_lock(&s_bare.lock);
    s_bare.quit = true;
    pthread_cond_broadcast(&s_bare.run_cond);
    pthread_mutex_unlock(&s_bare.lock);
    for (uint32_t i = 0; vps && i < n; i++) {
        if (vps[i].started) {
            vps[i].vcpu.run->immediate_exit = 1;
            pthread_kill(vps[i].thread, SIGUSR1);
            pthread_join(vps[i].thread, NULL);
        }
        if (i)
            raw_kvm_close_vcpu(&vps[i].vcpu);
    }
    if (!f->err[0] && s_bare.err[0])
        snprintf(f->err, sizeof f->err, "%s", s_bare.err);
    raw_kvm_close(&k);
    loader_image_destroy(&image);
    free(vps);
}

/* ---- Processes ---------------------------------------------------------------- */

/* Runs one VM (bare or of actors) of n VPs in a child; its figures in *f. */
static void s_measure(bool bare, uint32_t n, s_figures_t *f)
{
    memset(f, 0, sizeof *f);
    int fds[2];
    if (pipe(fds))
        bench_die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        double *stops = calloc((size_t)s_cycles, sizeof *stops);
        double *starts = calloc((size_t)s_cycles, sizeof *starts);
        if (!stops || !starts)
            snprintf(f->err, sizeof f->err, "out of memory");
        else if (bare)
            s_bare_vm(n, f, stops, starts);
        else
            s_actors_vm(n, f, stops, starts);
        if (!f->err[0]) { /* bench_median() sorts: the maximum is last */
            f->stop_med_ns = bench_median(stops, (int)s_cycles);
            f->start_med_ns = bench_median(starts, (int)s_cycles);
            f->stop_max_ns = stops[s_cycles - 1];
            f->start_max_ns = starts[s_cycles - 1];
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        f->rss_kib = ru.ru_maxrss;
        _exit(write(fds[1], f, sizeof *f) == (ssize_t)sizeof *f ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], f, sizeof *f);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof *f)
        snprintf(f->err, sizeof f->err, "the measuring process died (status 0x%x)", status);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: scale_bench [--vps N[,N...]] [--cycles N] [--mem MiB]\n"
                "  --vps     VM sizes, 1 to %d VPs each, up to 8 (default 1,64,256)\n"
                "  --cycles  stop-all/start-all rounds per VM, 1 to %d (default 20)\n"
                "  --mem     guest RAM in MiB, 16 to 4096 (default 256)\n",
            S_MAX_VPS, S_MAX_CYCLES);
}

static int s_parse(int argc, char **argv)
{
    static const struct option opts[] = {{"vps", required_argument, NULL, 'v'},
                                         {"cycles", required_argument, NULL, 'c'},
                                         {"mem", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (opt) {
        case 'v':
            s_n_vps = 0;
            for (char *p = optarg; *p; p = *end ? end + 1 : end) {
                v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > S_MAX_VPS || (*end && *end != ',') ||
                    s_n_vps == sizeof s_vps / sizeof *s_vps) {
                    fprintf(stderr, "scale_bench: --vps %s: up to 8 sizes, 1 to %d each\n",
                            optarg, S_MAX_VPS);
                    return 2;
                }
                s_vps[s_n_vps++] = (uint32_t)v;
            }
            if (!s_n_vps) {
                fprintf(stderr, "scale_bench: --vps: at least one size\n");
                return 2;
            }
            break;
        case 'c':
            v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > S_MAX_CYCLES) {
                fprintf(stderr, "scale_bench: --cycles %s: 1 to %d\n", optarg, S_MAX_CYCLES);
                return 2;
            }
            s_cycles = v;
            break;
        case 'm':
            v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 16 || v > 4096) {
                fprintf(stderr, "scale_bench: --mem %s: 16 to 4096 (MiB)\n", optarg);
                return 2;
            }
            s_mem = (uint64_t)v << 20;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scale_bench: unexpected '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    int status = s_parse(argc, argv);
    if (status >= 0)
        return status;
    if (access("/dev/kvm", R_OK | W_OK)) {
        printf("scale_bench: skipped: /dev/kvm is not usable here (%s)\n", strerror(errno));
        return 0;
    }
    printf("scale_bench: %ld stop-all/start-all rounds per VM, %llu MiB of guest RAM; VPs of "
           "actors beside bare vCPU threads\n",
           s_cycles, (unsigned long long)(s_mem >> 20));
    printf("  %-44s %12s %12s %8s\n", "", "actors", "bare", "ratio");
    for (size_t i = 0; i < s_n_vps; i++) {
        uint32_t n = s_vps[i];
        s_figures_t vmm, bare;
        s_measure(true, n, &bare);
        s_measure(false, n, &vmm);
        if (bare.err[0])
            bench_die("%u bare vCPUs: %s", n, bare.err);
        if (vmm.err[0])
            bench_die("%u VPs: %s", n, vmm.err);
        printf("%u VP%s\n", n, n == 1 ? "" : "s");
        bench_row("build", vmm.build_ns, bare.build_ns, 1e9, "(no target)");
        bench_row("start to every VP's first report", vmm.first_ns, bare.first_ns, 1e9,
                  "(no target)");
        bool target = n == S_TARGET_VPS;
        bench_row("stop-all, median", vmm.stop_med_ns, bare.stop_med_ns, 1e9, "(no target)");
        bench_row("stop-all, max", vmm.stop_max_ns, bare.stop_max_ns, 1e9, "(no target)");
        bench_row("start-all, median", vmm.start_med_ns, bare.start_med_ns, 1e9, "(no target)");
        bench_row("start-all, max", vmm.start_max_ns, bare.start_max_ns, 1e9, "(no target)");
        printf("  %-44s %9.1f MiB %9.1f MiB %7.2fx\n", "peak RSS", vmm.rss_kib / 1024.0,
               bare.rss_kib / 1024.0, (double)vmm.rss_kib / (double)bare.rss_kib);
        if (target)
            bench_row("stop-all, median, against 2 ms", vmm.stop_med_ns, S_TARGET_STOP_NS, 1.0,
                      "target: at most 2 ms");
    }
    printf("scale_bench: %d target%s missed\n", bench_misses(), bench_misses() == 1 ? "" : "s");
    return 0;
}
