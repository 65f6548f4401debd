/*
 * virtio benchmark: a guest (guest/bench_virtio.c) drives virtio-blk and
 * virtio-console from CPL 3, polling the used rings, and times each
 * workload with rdtsc: 4 KiB random reads at queue depth 1 and 32, 64 KiB
 * sequential reads and writes, 4 KiB console writes. The same guest runs
 * with the devices
 *   - in the VMM's process, on VP 0's executor and on an executor of their
 *     own;
 *   - in a `vmm devhost` over ipc:// (its data path by descriptors: the
 *     doorbells' eventfds, a line's irqfd, guest RAM mapped), and over
 *     tcp:// with CURVE on this machine (the same data path);
 *   - in a `vmm devhost --by-message` over tcp://, as from another machine:
 *     doorbells, the line and guest memory by message;
 * beside the host's own pread/pwrite of the same image (the floor: the page
 * cache, no VM). Rows print operations per second or MB/s and the ratio to
 * the devices on VP 0's executor; the target is the device host over
 * ipc:// at 0.9x the better of the two placements in the VMM, or better.
 *
 * Then, where QEMU is installed ($PATH, or $VMM_BENCH_QEMU; "none": not at
 * all), the same virtio-blk workloads as a multiboot kernel
 * (bench/kernels/virtio_rw.c, at CPL 0) under QEMU's microvm with a
 * virtio-blk-device on the same image, and under `vmm run --kernel` with
 * the disk in process and in a device host: targets 1.0x QEMU in process,
 * 0.9x from the device host.
 *
 *   bazel run //bench:virtio_bench -- [--iterations N] [--repeat N]
 *                                      [--idle-only|--busy-only] [--strict]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "bench/bench.h"
#include "vmm/keys.h"
#include "vmm/vm.h"

#define S_GUEST "guest/bench_virtio"
#define S_VMM "vmm/vmm"
#define S_IMAGE_BYTES (64u << 20)
#define S_SPAN (32u << 20) /* guest/bench_virtio.c's */
#define S_PHASES 5      /* guest/virtio_bench.h's four, and the console */
#define S_DISK_PHASES 4 /* the disk's, which the multiboot kernel runs */
#define S_TIMEOUT_MS 60000

typedef enum { S_WITH_VP0, S_APART, S_IPC, S_TCP, S_TCP_MESSAGES, S_PLACES } s_place_t;

static const char *const s_place_names[S_PLACES] = {
    "in the VMM, VP 0's executor",
    "in the VMM, its own executor",
    "device host, ipc://",
    "device host, tcp:// + CURVE",
    "device host, tcp://, by message",
};

static const struct {
    const char *what;
    bool mb; /* MB/s, else operations per second */
} s_phase[S_PHASES] = {
    {"4 KiB random reads, QD 1", false},
    {"4 KiB random reads, QD 32", false},
    {"64 KiB sequential reads", true},
    {"64 KiB sequential writes", true},
    {"virtio-console 4 KiB writes", true},
};

static uint32_t s_iterations = 2000;
static int s_repeat = 3;
static double s_tsc_hz;
static char s_dir[] = "/tmp/vmm-virtio-bench-XXXXXX";
static char s_image[128];

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The TSC's rate (the guest's runs at the host's), over 200 ms. */
static void s_calibrate(void)
{
    double t0 = s_now();
    uint64_t c0 = __rdtsc();
    struct timespec pause = {0, 200 * 1000000};
    nanosleep(&pause, NULL);
    s_tsc_hz = (double)(__rdtsc() - c0) / (s_now() - t0);
}

/* A 64 MiB image of random bytes, sector 0 holding the guest's n. */
static void s_make_image(void)
{
    snprintf(s_image, sizeof s_image, "%s/disk.img", s_dir);
    int fd = open(s_image, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        bench_die("%s: %s", s_image, strerror(errno));
    static uint8_t chunk[1 << 20];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i * 2654435761u >> 13);
    memcpy(chunk, &s_iterations, sizeof s_iterations);
    for (size_t done = 0; done < S_IMAGE_BYTES; done += sizeof chunk)
        if (pwrite(fd, chunk, sizeof chunk, (off_t)done) != (ssize_t)sizeof chunk)
            bench_die("writing %s: %s", s_image, strerror(errno));
    close(fd);
}

/* The floor: the same workloads as preads and pwrites of the image;
 * rate[phase] as the guest's rows have it (the console: none). */
static void s_floor(double *rate)
{
    int fd = open(s_image, O_RDWR);
    static uint8_t buf[65536];
    if (fd < 0)
        bench_die("%s: %s", s_image, strerror(errno));
    uint32_t x = 12345, n = s_iterations;
    double t0 = s_now();
    for (uint32_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        if (pread(fd, buf, 4096, (off_t)((x >> 8) % (S_SPAN / 4096)) * 4096) != 4096)
            bench_die("pread: %s", strerror(errno));
    }
    rate[0] = rate[1] = n / (s_now() - t0);
    t0 = s_now();
    for (uint32_t i = 0; i < n / 4; i++)
        if (pread(fd, buf, 65536, (off_t)i * 65536 % S_SPAN) != 65536)
            bench_die("pread: %s", strerror(errno));
    rate[2] = n / 4 * 65536.0 / (s_now() - t0) / 1e6;
    t0 = s_now();
    for (uint32_t i = 0; i < n / 4; i++)
        if (pwrite(fd, buf, 65536, (1 << 20) + (off_t)i * 65536 % (S_SPAN - (1 << 20))) != 65536)
            bench_die("pwrite: %s", strerror(errno));
    rate[3] = n / 4 * 65536.0 / (s_now() - t0) / 1e6;
    rate[4] = 0;
    close(fd);
}

/* `vmm devhost` for the VM at endpoint with the two devices; tcp: the key
 * files in s_dir; by_message: --by-message. */
static pid_t s_devhost(const char *endpoint, bool tcp, bool by_message)
{
    char blk[256], key[128], vm_key[128];
    snprintf(blk, sizeof blk, "virtio-blk,file=%s", s_image);
    snprintf(key, sizeof key, "%s/devhost.key", s_dir);
    snprintf(vm_key, sizeof vm_key, "%s/vm.pub", s_dir);
    const char *argv[20] = {S_VMM, "devhost", "--vm", endpoint, "--device", blk, "--device",
                            "virtio-console,file=/dev/null"};
    size_t n = 8;
    if (tcp) {
        const char *more[] = {"--listen", "127.0.0.1", "--key", key, "--vm-key", vm_key};
        for (size_t i = 0; i < 6; i++)
            argv[n++] = more[i];
    } else {
        argv[n++] = "--dir";
        argv[n++] = s_dir;
    }
    if (by_message)
        argv[n++] = "--by-message";
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* It dies with the benchmark, however that ends. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        execv(S_VMM, (char *const *)argv);
        _exit(126);
    }
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    return pid;
}

/* One run of the guest with the devices placed so: rate[phase]. */
static void s_measure(s_place_t place, double *rate)
{
    char args[256], endpoint[4200] = "", err[256] = "", key_prefix[128];
    char vm_pub[KEYS_Z85_LEN + 1], vm_sec[KEYS_Z85_LEN + 1], host_pub[KEYS_Z85_LEN + 1];
    bool in_vmm = place == S_WITH_VP0 || place == S_APART, tcp = place >= S_TCP;
    snprintf(args, sizeof args, "base=0xd0000000,irq=5,file=%s", s_image);
    vm_console_t console = {.out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC), .in_fd = -1};
    const vm_device_t devs[] = {
        {.name = "vm0/dev/virtio-blk0", .new_model = dev_virtio_blk_new, .model_args = args},
        {.name = "vm0/dev/virtio-console0", .new_model = dev_virtio_console_new,
         .model_args = "base=0xd0001000,irq=6", .console = &console},
    };
    rt_config_t rcfg = {0};
    if (tcp) {
        snprintf(key_prefix, sizeof key_prefix, "%s/vm", s_dir);
        if (keys_generate(key_prefix, true, vm_pub, err, sizeof err))
            bench_die("%s", err);
        snprintf(key_prefix, sizeof key_prefix, "%s/vm.key", s_dir);
        if (keys_read(key_prefix, true, vm_sec, err, sizeof err))
            bench_die("%s", err);
        snprintf(key_prefix, sizeof key_prefix, "%s/devhost", s_dir);
        if (keys_generate(key_prefix, true, host_pub, err, sizeof err))
            bench_die("%s", err);
        rcfg.curve_public_key = vm_pub;
        rcfg.curve_secret_key = vm_sec;
        snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:*");
    } else if (!in_vmm) {
        snprintf(endpoint, sizeof endpoint, "ipc://%s/partition", s_dir);
    }
    FILE *f = fopen(S_GUEST, "rb");
    static uint8_t elf[4 << 20];
    size_t len = f ? fread(elf, 1, sizeof elf, f) : 0;
    if (f)
        fclose(f);
    if (!len)
        bench_die("%s: cannot read it", S_GUEST);
    vm_config_t cfg = {.n_vps = 1, .mem_size = 32u << 20, .serial_out = -1, .serial_in = -1,
                       .elf = elf, .elf_len = len, .rt = &rcfg,
                       .placement = place == S_APART ? VM_DEVICES_APART : VM_DEVICES_WITH_VP0,
                       .devices = in_vmm ? devs : NULL, .n_devices = in_vmm ? 2 : 0,
                       .partition_endpoint = in_vmm ? NULL : endpoint};
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    if (!vm)
        bench_die("%s: %s", s_place_names[place], err);
    pid_t host = 0;
    if (!in_vmm) {
        if (tcp && (rt_peer_allow(vm_rt(vm), host_pub, "vm0/") ||
                    rt_endpoint_of(vm_rt(vm), VM_PARTITION, endpoint, sizeof endpoint)))
            bench_die("%s: the partition's tcp:// endpoint", s_place_names[place]);
        host = s_devhost(endpoint, tcp, place == S_TCP_MESSAGES);
        if (vm_wait_device(vm, "virtio-blk0", 10000) ||
            vm_wait_device(vm, "virtio-console0", 10000))
            bench_die("%s: the device host did not register", s_place_names[place]);
    }
    if (vm_start(vm))
        bench_die("%s: the VM did not start", s_place_names[place]);
    for (int p = 0; p < S_PHASES; p++) {
        vm_event_t ev;
        if (vm_next_event(vm, &ev, S_TIMEOUT_MS) || ev.kind != VM_EVENT_GUEST_CALL ||
            ev.n_args != 5 || ev.args[0] != (uint32_t)p + 1)
            bench_die("%s: phase %d did not report (%s)", s_place_names[place], p + 1,
                      ev.kind == VM_EVENT_HALT ? ev.text : "a guest call");
        double s = ((uint64_t)ev.args[2] << 32 | ev.args[1]) / s_tsc_hz;
        rate[p] = s_phase[p].mb ? ev.args[3] * (double)ev.args[4] / s / 1e6 : ev.args[3] / s;
    }
    vm_event_t done;
    if (vm_next_event(vm, &done, S_TIMEOUT_MS) || done.kind != VM_EVENT_GUEST_CALL ||
        done.args[0] != 100)
        bench_die("%s: the guest did not finish", s_place_names[place]);
    if (done.args[1])
        bench_die("%s: %u requests failed or got no answer in time", s_place_names[place],
                  done.args[1]);
    vm_destroy(&vm);
    if (host) {
        kill(host, SIGTERM);
        waitpid(host, NULL, 0);
    }
    close(console.out_fd);
}

static void s_run(const char *title)
{
    double rate[S_PLACES][S_PHASES], floor[S_PHASES];
    for (s_place_t pl = 0; pl < S_PLACES; pl++) {
        double runs[S_PHASES][BENCH_MAX_REPEAT];
        for (int r = 0; r < s_repeat; r++) {
            double one[S_PHASES];
            s_measure(pl, one);
            for (int p = 0; p < S_PHASES; p++)
                runs[p][r] = one[p];
        }
        for (int p = 0; p < S_PHASES; p++)
            rate[pl][p] = bench_median(runs[p], s_repeat);
    }
    s_floor(floor);
    printf("\n%s (median of %d, n = %u)\n", title, s_repeat, s_iterations);
    for (int p = 0; p < S_PHASES; p++) {
        const char *unit = s_phase[p].mb ? "MB/s" : "IOPS";
        printf("\n  %s\n", s_phase[p].what);
        for (s_place_t pl = 0; pl < S_PLACES; pl++)
            printf("    %-34s %10.1f %-4s  %5.2fx\n", s_place_names[pl], rate[pl][p], unit,
                   rate[pl][p] / rate[S_WITH_VP0][p]);
        if (floor[p] > 0)
            printf("    %-34s %10.1f %-4s  %5.2fx\n", "host pread/pwrite (the floor)", floor[p],
                   unit, floor[p] / rate[S_WITH_VP0][p]);
        double best = rate[S_WITH_VP0][p] > rate[S_APART][p] ? rate[S_WITH_VP0][p]
                                                              : rate[S_APART][p];
        bench_rate_row("target: device host ipc:// vs in the VMM", rate[S_IPC][p], best, unit,
                       0.9, ">= 0.9x the better placement in the VMM");
    }
}

/* ---- The multiboot kernel, against QEMU ------------------------------------------ */

#define S_KERNEL "bench/kernels/virtio_rw"
#define S_KERNEL_TIMEOUT_S 300

typedef enum { S_QEMU, S_K_APART, S_K_WITH_VP0, S_K_IPC, S_K_ROWS } s_krow_t;

static const char *const s_krow_names[S_K_ROWS] = {
    "QEMU -M microvm, virtio-blk-device",
    "this VMM, in process, its own executor",
    "this VMM, in process, VP 0's executor",
    "this VMM, device host over ipc://",
};

static char s_qemu[4096];

/* bench/kernels/virtio_rw under QEMU or this VMM: rate[phase] as the guest
 * rows have them. */
static void s_kernel_run(s_krow_t row, double *rate)
{
    char com1[128], file[160], append[32], device[256], drive[256];
    snprintf(com1, sizeof com1, "%s/com1.txt", s_dir);
    snprintf(file, sizeof file, "file:%s", com1);
    snprintf(append, sizeof append, "iterations=%u", s_iterations);
    snprintf(device, sizeof device, "virtio-blk,file=%s%s", s_image,
             row == S_K_IPC ? ",host=ipc" : "");
    snprintf(drive, sizeof drive, "id=d0,file=%s,format=raw,if=none", s_image);
    const char *qemu[] = {s_qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "qemu64,-pni",
                          "-m", "64", "-nodefaults", "-no-reboot", "-display", "none",
                          "-serial", file, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                          "-global", "virtio-mmio.force-legacy=false", "-drive", drive,
                          "-device", "virtio-blk-device,drive=d0", "-kernel", S_KERNEL,
                          "-append", append, NULL};
    const char *vmm[] = {S_VMM, "run", "--kernel", S_KERNEL, "--append", append, "--mem", "64M",
                         "--serial", com1, "--device", device, "--devices",
                         row == S_K_APART ? "apart" : "with-vp0", NULL};
    /* A run that fails before the guest prints must not find the last
     * run's output: vmm's own failure and the guest's mb_exit(0) both end
     * in status 1. */
    unlink(com1);
    int status = bench_spawn(row == S_QEMU ? qemu : vmm, S_KERNEL_TIMEOUT_S);
    static char out[8192];
    bench_read_file(com1, out, sizeof out);
    int got = 0;
    for (const char *at = out; (at = strstr(at, "virtio_rw: phase=")); at++) {
        unsigned phase, ops, bytes;
        unsigned long long cycles;
        if (sscanf(at, "virtio_rw: phase=%u ops=%u bytes=%u cycles=%llu", &phase, &ops, &bytes,
                   &cycles) != 4 || phase < 1 || phase > S_DISK_PHASES || !cycles)
            continue;
        double sec = cycles / s_tsc_hz;
        rate[phase - 1] = s_phase[phase - 1].mb ? ops * (double)bytes / sec / 1e6 : ops / sec;
        got++;
    }
    /* mb_exit(0): isa-debug-exit's (0 << 1) | 1. */
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
        got != S_DISK_PHASES || strstr(out, "FAIL"))
        bench_die("%s: status 0x%x, COM1:\n%s", s_krow_names[row], status, out);
}

static void s_run_kernel(const char *title)
{
    double rate[S_K_ROWS][S_DISK_PHASES];
    for (s_krow_t row = 0; row < S_K_ROWS; row++) {
        double runs[S_DISK_PHASES][BENCH_MAX_REPEAT];
        for (int r = 0; r < s_repeat; r++) {
            double one[S_DISK_PHASES];
            s_kernel_run(row, one);
            for (int p = 0; p < S_DISK_PHASES; p++)
                runs[p][r] = one[p];
        }
        for (int p = 0; p < S_DISK_PHASES; p++)
            rate[row][p] = bench_median(runs[p], s_repeat);
    }
    printf("\n%s: the multiboot kernel at CPL 0 against QEMU (median of %d, n = %u)\n", title,
           s_repeat, s_iterations);
    for (int p = 0; p < S_DISK_PHASES; p++) {
        const char *unit = s_phase[p].mb ? "MB/s" : "IOPS";
        printf("\n  %s\n", s_phase[p].what);
        for (s_krow_t row = 0; row < S_K_ROWS; row++)
            printf("    %-38s %10.1f %-4s  %5.2fx QEMU\n", s_krow_names[row], rate[row][p], unit,
                   rate[row][p] / rate[S_QEMU][p]);
        double best = rate[S_K_APART][p] > rate[S_K_WITH_VP0][p] ? rate[S_K_APART][p]
                                                                  : rate[S_K_WITH_VP0][p];
        bench_rate_row("target: in process vs QEMU", best, rate[S_QEMU][p], unit, 1.0,
                       ">= 1.0x QEMU (the better placement)");
        bench_rate_row("target: device host ipc:// vs QEMU", rate[S_K_IPC][p], rate[S_QEMU][p],
                       unit, 0.9, ">= 0.9x QEMU");
    }
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: virtio_bench [--iterations N] [--repeat N] [--idle-only|--busy-only]\n"
               "                    [--strict]\n"
               "\n"
               "virtio-blk and virtio-console from a polling guest at CPL 3, with the\n"
               "devices in the VMM, in a device host over ipc:// and tcp://, and by\n"
               "message; beside the host's pread/pwrite of the same image. Then the\n"
               "same disk workloads from a multiboot kernel under QEMU's microvm and\n"
               "this VMM, where QEMU is installed ($VMM_BENCH_QEMU=none: not).\n"
               "  --iterations N  operations per workload (default 2000; 64 KiB and\n"
               "                  console: N/4)\n"
               "  --repeat N      runs per figure, the median kept (default 3)\n"
               "  --busy-only     only the run with the other core kept busy\n"
               "  --idle-only     only the idle run\n"
               "  --strict        exit with status 1 when a target is missed\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_opts_t o = {.iterations = s_iterations, .repeat = s_repeat};
    int status = bench_parse(argc, argv, "virtio_bench", 8, 1000000, s_usage, &o);
    if (status >= 0)
        return status;
    s_iterations = (uint32_t)o.iterations;
    s_repeat = o.repeat;
    if (access("/dev/kvm", R_OK | W_OK))
        bench_die("/dev/kvm: %s; this benchmark needs KVM", strerror(errno));
    if (!mkdtemp(s_dir))
        bench_die("%s: %s", s_dir, strerror(errno));
    s_calibrate();
    s_make_image();
    bool qemu = bench_find_qemu(s_qemu, sizeof s_qemu);
    if (o.busy) {
        pid_t load = bench_load_start();
        s_run("Other core busy (a spinning process)");
        if (qemu)
            s_run_kernel("Other core busy");
        bench_load_stop(&load);
    }
    if (o.idle) {
        s_run("Idle machine");
        if (qemu)
            s_run_kernel("Idle machine");
    }
    if (!qemu)
        printf("\nQEMU: no qemu-system-x86_64 on $PATH (or VMM_BENCH_QEMU=none): its rows "
               "are left out (apt-get install qemu-system-x86 adds it).\n");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system(cmd))
        fprintf(stderr, "virtio_bench: could not remove %s\n", s_dir);
    printf("\n%s\n", bench_misses() ? "Some targets were missed." : "All targets met.");
    return o.strict && bench_misses() ? 1 : 0;
}
