/*
 * Snapshot benchmark: writing a snapshot of a running VM and restoring it,
 * for 64 MiB and 1 GiB of guest RAM, against booting the same VM fresh in
 * the same run. The guest (tests/guests/ctl_count) counts in guest memory.
 *
 * Rows: the time to write a snapshot (VPs stopped, every actor's state and
 * the sparse RAM file) and its size on disk; the time from asking for a VM
 * restored from it to its VPs running (vm_new() restoring, vm_start()),
 * with guest RAM filled on demand behind the guest (and how long that fill
 * took) and with it read back first, against a fresh boot of the same
 * machine; and the targets: a 1 GiB guest restores as fast as a 64 MiB
 * one, and within 20 ms. Filled RAM is read back and compared after each
 * restore. And the command line's: `vmm run --restore` of a snapshot `vmm
 * ctl` took of tests/guests/ticks, from the exec to the first byte the
 * continued guest writes to COM1, without the Hyper-V interface and with
 * it (whose MSR filter KVM takes a while to set).
 *
 *   bazel run //bench:snapshot_bench -- [--repeat N] [--strict]
 *
 * It runs on the idle machine only (--busy-only does nothing).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "runtime/testing/echo.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define S_GUEST "tests/guests/ctl_count"
#define S_VMM "vmm/vmm"
#define S_TICKS "tests/guests/ticks"
#define S_SIZES 2

static const uint64_t s_sizes[S_SIZES] = {64ull << 20, 1ull << 30};
static uint8_t *s_elf;
static size_t s_elf_len;

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: snapshot_bench [--repeat N] [--strict]\n");
}

static void s_read_guest(void)
{
    FILE *f = fopen(S_GUEST, "rb");
    if (!f)
        bench_die("%s: %s", S_GUEST, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    s_elf = malloc((size_t)len);
    if (!s_elf || fread(s_elf, 1, (size_t)len, f) != (size_t)len)
        bench_die("%s: cannot read it", S_GUEST);
    s_elf_len = (size_t)len;
    fclose(f);
}

static vm_config_t s_config(uint64_t mem, Vmm__Snapshot__Machine *m)
{
    vmm__snapshot__machine__init(m);
    m->mem_size = mem;
    m->n_vps = 1;
    m->guest = (ProtobufCBinaryData){s_elf_len, s_elf};
    return (vm_config_t){.elf = s_elf, .elf_len = s_elf_len, .mem_size = mem, .n_vps = 1,
                         .serial_out = -1, .serial_in = -1, .machine = m};
}

static void s_stop_vps(vm_t *vm)
{
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_STOP;
    req.stop = &stop;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    rt_msg_t reply;
    if (rt_call(vm_client(vm), "vm0/vp/0", &env, &reply, 5000))
        bench_die("vm0/vp/0 did not stop");
    rt_msg_release(&reply);
}

/* A fresh boot: vm_new() and vm_start(), in ns. */
static double s_boot(uint64_t mem)
{
    Vmm__Snapshot__Machine m;
    vm_config_t cfg = s_config(mem, &m);
    char err[4400];
    double t0 = s_now_ns();
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    if (!vm || vm_start(vm))
        bench_die("boot: %s", err);
    double t = s_now_ns() - t0;
    vm_destroy(&vm);
    return t;
}

typedef struct {
    double write_ns, restore_ns, fill_ms, copy_ns, boot_ns;
    double disk_mib;
} s_figures_t;

/* The partition's "ram_fill" state ("filling", "done", "none"), and its
 * last fill's ms. */
static void s_fill_state(vm_t *vm, char *state, size_t size, double *ms)
{
    char last[32];
    if (echo_inspect_text(vm_client(vm), VM_PARTITION, "ram_fill", state, size))
        bench_die("the partition's inspect has no ram_fill");
    if (!echo_inspect_text(vm_client(vm), VM_PARTITION, "ram_fill/last_ms", last, sizeof last))
        *ms = strtod(last, NULL);
}

/* Writes a pattern into guest RAM from 16 MiB up (the guest's image lies
 * below), as a guest that used its memory would leave it. */
static uint8_t s_chunk[65536];

static void s_fill(vm_t *vm, uint64_t mem)
{
    uint8_t *chunk = s_chunk;
    for (size_t i = 0; i < sizeof s_chunk; i++)
        chunk[i] = (uint8_t)(i * 7 + 1);
    for (uint64_t gpa = 16ull << 20; gpa < mem; gpa += sizeof s_chunk) {
        Vmm__Devices__WriteGuestMemory w = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
        w.gpa = gpa;
        w.data = (ProtobufCBinaryData){sizeof s_chunk, chunk};
        Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &w;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
        env.device_request = &req;
        rt_msg_t reply;
        if (rt_call(vm_client(vm), VM_PARTITION, &env, &reply, 5000))
            bench_die("filling guest RAM");
        rt_msg_release(&reply);
    }
}

/* The pattern s_fill() wrote, read back at a few places of a restored VM. */
static void s_check(vm_t *vm, uint64_t mem)
{
    for (uint64_t gpa = 16ull << 20; gpa < mem; gpa += mem / 8) {
        Vmm__Devices__ReadGuestMemory r = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
        r.gpa = gpa;
        r.length = sizeof s_chunk;
        Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
        req.read_guest_memory = &r;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
        env.device_request = &req;
        rt_msg_t reply;
        if (rt_call(vm_client(vm), VM_PARTITION, &env, &reply, 5000) ||
            reply.env->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY)
            bench_die("reading guest RAM back");
        const ProtobufCBinaryData *d = &reply.env->device_reply->read_guest_memory->data;
        if (d->len != sizeof s_chunk || memcmp(d->data, s_chunk, sizeof s_chunk))
            bench_die("the restored guest RAM at 0x%llx is not what was saved",
                      (unsigned long long)gpa);
        rt_msg_release(&reply);
    }
}

/* Restores dir, its RAM filled on demand or copied: the time to the VPs
 * running; on demand, also how long the fill behind them took. */
static double s_restore(vm_config_t *cfg, const char *dir, uint64_t mem, bool fill, bool copy,
                        double *fill_ms)
{
    char err[4400];
    double t0 = s_now_ns();
    Vmm__Snapshot__Snapshot *snap;
    if (snapshot_read(dir, &snap, err, sizeof err))
        bench_die("%s", err);
    cfg->restore = snap;
    cfg->restore_dir = dir;
    cfg->restore_copy = copy;
    vm_t *vm = vm_new(cfg, err, sizeof err);
    if (!vm || vm_start(vm))
        bench_die("restore: %s", err);
    double t = s_now_ns() - t0;
    char state[32] = "filling";
    for (int i = 0; !copy && i < 60000 && !strcmp(state, "filling"); i++) {
        struct timespec tick = {0, 1000000};
        nanosleep(&tick, NULL);
        s_fill_state(vm, state, sizeof state, fill_ms);
    }
    if (!copy && strcmp(state, "done"))
        bench_die("guest RAM was not filled on demand (the fill is \"%s\")", state);
    if (fill)
        s_check(vm, mem);
    vm_destroy(&vm);
    vmm__snapshot__snapshot__free_unpacked(snap, NULL);
    cfg->restore = NULL;
    return t;
}

static s_figures_t s_measure(uint64_t mem, bool fill, const char *dir)
{
    s_figures_t f = {0};
    Vmm__Snapshot__Machine m;
    vm_config_t cfg = s_config(mem, &m);
    char err[4400];
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    if (!vm || vm_start(vm))
        bench_die("the VM: %s", err);
    struct timespec run = {0, 100 * 1000000}; /* the guest counts a while */
    nanosleep(&run, NULL);
    s_stop_vps(vm);
    if (fill)
        s_fill(vm, mem);
    double t0 = s_now_ns();
    if (snapshot_write(vm_client(vm), VM_PARTITION, "vm0", 1, &m, dir, err, sizeof err))
        bench_die("snapshot: %s", err);
    f.write_ns = s_now_ns() - t0;
    vm_destroy(&vm);
    char ram[4200];
    snprintf(ram, sizeof ram, "%s/%s", dir, SNAPSHOT_RAM);
    struct stat st;
    if (stat(ram, &st) < 0)
        bench_die("%s: %s", ram, strerror(errno));
    f.disk_mib = (double)st.st_blocks * 512 / (1 << 20);

    f.restore_ns = s_restore(&cfg, dir, mem, fill, false, &f.fill_ms);
    f.copy_ns = s_restore(&cfg, dir, mem, fill, true, NULL);
    snapshot_remove(dir);
    f.boot_ns = s_boot(mem);
    return f;
}

static pid_t s_child(const char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* Else vmm takes its paths as relative to where bazel ran. */
        unsetenv("BUILD_WORKING_DIRECTORY");
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    return pid;
}

static void s_end_child(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* The command line's restore: `vmm run --restore` of a snapshot of the
 * ticks guest (mem bytes of RAM, as it leaves them) that `vmm ctl` took,
 * from the exec to the first byte the continued guest writes to COM1, in
 * ns: the first guest instructions, seen from outside. */
static double s_cli(uint64_t mem, bool hyperv, const char *base)
{
    char control[128], where[128], snap[128], fifo[128], mem_arg[32];
    snprintf(control, sizeof control, "ipc://%s/c", base);
    snprintf(where, sizeof where, "%s/c", base);
    snprintf(snap, sizeof snap, "%s/cli", base);
    snprintf(fifo, sizeof fifo, "%s/com1", base);
    snprintf(mem_arg, sizeof mem_arg, "%lluM", (unsigned long long)(mem >> 20));
    const char *run[] = {S_VMM,     "run",     "--guest",    S_TICKS, "--mem", mem_arg,
                         "--serial", "/dev/null", "--control", control,
                         hyperv ? "--hyperv" : NULL, NULL};
    pid_t vm = s_child(run);
    for (int i = 0; i < 1000 && access(where, F_OK); i++)
        usleep(10000);
    usleep(100000); /* it ticks a while */
    const char *take[] = {S_VMM, "ctl", control, "snapshot", snap, "--paused", NULL};
    const char *off[] = {S_VMM, "ctl", control, "poweroff", "0", NULL};
    if (bench_spawn(take, 60) != 0 || bench_spawn(off, 10) != 0)
        bench_die("vmm ctl %s snapshot %s failed", control, snap);
    waitpid(vm, NULL, 0);
    if (mkfifo(fifo, 0600) < 0)
        bench_die("%s: %s", fifo, strerror(errno));
    const char *restore[] = {S_VMM, "run", "--restore", snap, "--serial", fifo,
                             "--control", "none", NULL};
    double t0 = s_now_ns();
    pid_t again = s_child(restore);
    int fd = open(fifo, O_RDONLY); /* until vmm opens it */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char byte;
    if (fd < 0 || poll(&p, 1, 20000) != 1 || read(fd, &byte, 1) != 1)
        bench_die("the restored guest wrote nothing to COM1 within 20 s");
    double t = s_now_ns() - t0;
    close(fd);
    s_end_child(again);
    unlink(fifo);
    snapshot_remove(snap);
    return t;
}

int main(int argc, char **argv)
{
    bench_opts_t o = {.iterations = 1, .repeat = 3, .busy = false, .idle = true};
    int rc = bench_parse(argc, argv, "snapshot_bench", 1, 1, s_usage, &o);
    if (rc >= 0)
        return rc;
    if (access("/dev/kvm", R_OK | W_OK))
        bench_die("no usable /dev/kvm");
    s_read_guest();
    char base[] = "/tmp/snapshot-bench-XXXXXX", dir[64];
    if (!mkdtemp(base))
        bench_die("a folder: %s", strerror(errno));
    snprintf(dir, sizeof dir, "%s/snap", base);
    /* [size][filled]: RAM as the guest left it (barely used), and filled
     * from 16 MiB up, as a guest that used its memory leaves it. */
    double write_ns[S_SIZES][2][BENCH_MAX_REPEAT], restore_ns[S_SIZES][2][BENCH_MAX_REPEAT];
    double fill_ms[S_SIZES][2][BENCH_MAX_REPEAT], copy_ns[S_SIZES][2][BENCH_MAX_REPEAT];
    double boot_ns[S_SIZES][2][BENCH_MAX_REPEAT], disk[S_SIZES][2] = {{0}};
    for (int r = 0; r < o.repeat; r++)
        for (int i = 0; i < S_SIZES; i++)
            for (int full = 0; full < 2; full++) {
                s_figures_t f = s_measure(s_sizes[i], full, dir);
                write_ns[i][full][r] = f.write_ns;
                restore_ns[i][full][r] = f.restore_ns;
                fill_ms[i][full][r] = f.fill_ms;
                copy_ns[i][full][r] = f.copy_ns;
                boot_ns[i][full][r] = f.boot_ns;
                disk[i][full] = f.disk_mib;
            }
    /* 64 MiB, 1 GiB, and 1 GiB with the Hyper-V interface. */
    double cli_ns[3][BENCH_MAX_REPEAT], cli[3];
    for (int r = 0; r < o.repeat; r++)
        for (int i = 0; i < 3; i++)
            cli_ns[i][r] = s_cli(s_sizes[i ? 1 : 0], i == 2, base);
    rmdir(base);
    for (int i = 0; i < 3; i++)
        cli[i] = bench_median(cli_ns[i], o.repeat);
    double rs[S_SIZES][2], cp[S_SIZES][2], b[S_SIZES][2];
    printf("snapshot_bench: medians of %d, idle; ctl_count, 1 VP; restore: from vm_new() to "
           "the VPs running, in this process, guest RAM filled on demand (the fill behind "
           "the guest: its own column) or read back first (copied)\n",
           o.repeat);
    for (int i = 0; i < S_SIZES; i++)
        for (int full = 0; full < 2; full++) {
            rs[i][full] = bench_median(restore_ns[i][full], o.repeat);
            cp[i][full] = bench_median(copy_ns[i][full], o.repeat);
            b[i][full] = bench_median(boot_ns[i][full], o.repeat);
            printf("  %-6s %-6s  write %8.2f ms  on disk %7.2f MiB  restore %7.2f ms  "
                   "(fill behind %5.0f ms)  copied %8.2f ms  fresh boot %6.2f ms\n",
                   i ? "1 GiB" : "64 MiB", full ? "filled" : "idle",
                   bench_median(write_ns[i][full], o.repeat) / 1e6, disk[i][full],
                   rs[i][full] / 1e6, bench_median(fill_ms[i][full], o.repeat), cp[i][full] / 1e6,
                   b[i][full] / 1e6);
        }
    printf("  vmm run --restore, from the exec to the first byte on COM1 (ticks, as it left "
           "RAM): 64 MiB %.2f ms, 1 GiB %.2f ms, 1 GiB --hyperv %.2f ms\n",
           cli[0] / 1e6, cli[1] / 1e6, cli[2] / 1e6);
    bench_row("restore 1 GiB against 64 MiB, idle RAM", rs[1][0], rs[0][0], 1.25,
              "<= 1.25x (as fast)");
    bench_row("restore 1 GiB against 64 MiB, filled RAM", rs[1][1], rs[0][1], 1.25,
              "<= 1.25x (as fast)");
    bench_row("restore 1 GiB, idle RAM, against 20 ms", rs[1][0], 20e6, 1.0, "<= 1.0x");
    bench_row("restore 1 GiB, filled RAM, against 20 ms", rs[1][1], 20e6, 1.0, "<= 1.0x");
    bench_row("vmm run --restore 1 GiB against 20 ms", cli[1], 20e6, 1.0, "<= 1.0x");
    bench_row("restore 1 GiB filled, on demand against copied", rs[1][1], cp[1][1], 1.0,
              "< 1.0x");
    bench_row("restore 64 MiB against a fresh boot", rs[0][0], b[0][0], 2.0, "<= 2.0x");
    return o.strict && bench_misses() ? 1 : 0;
}
