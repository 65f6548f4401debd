/*
 * PM-timer benchmark: what a guest sees an `inl` from the ACPI PM timer
 * (port 0x608) cost, measured in the same run, first with the other core
 * kept busy by a spinning child process, then on the idle machine.
 *
 * One multiboot kernel (bench/kernels/pm_read.c) times a loop of reads
 * with rdtsc and prints the cycles on COM1; it runs unchanged under
 *   - a bare KVM_RUN loop that answers the read inline from the host's
 *     clock (the raw exit: the cheapest a VMM can be);
 *   - this VMM (`vmm run --kernel`), with the PM block on VP 0's executor
 *     and on an executor of its own;
 *   - QEMU (qemu-system-x86_64 -M pc -accel kvm, the same memory and one
 *     VP) where it is installed, its own PIIX4 PM timer answering.
 *
 *   bazel run //bench:pm_timer_bench -- [--iterations N] [--repeat N]
 *                                       [--idle-only|--busy-only] [--strict]
 *
 * QEMU is looked for on $PATH, or where $VMM_BENCH_QEMU says ("none": not
 * at all).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/raw_kvm.h"
#include "loader/kernel.h"
#include "vmm/vm.h"

#define S_KERNEL "bench/kernels/pm_read"
#define S_MEM (64ull << 20)
#define S_PM_TIMER 0x608
#define S_DEBUG_EXIT 0xf4
#define S_PM_HZ 3579545ull
#define S_QEMU_TIMEOUT_S 120
#define S_OUT 8192

static uint32_t s_iterations = 2000;
static int s_repeat = 5;
static uint32_t s_tsc_khz;
static uint8_t *s_kernel;
static size_t s_kernel_len;
static char s_append[64];
static char s_qemu[4096]; /* "" when there is none */

/* The cycles the guest printed ("pm_read: iterations=N cycles=C"), or 0. */
static uint64_t s_cycles(const char *out)
{
    const char *at = strstr(out, "pm_read: iterations=");
    unsigned long n = 0;
    unsigned long long cycles = 0;
    if (!at || sscanf(at, "pm_read: iterations=%lu cycles=%llu", &n, &cycles) != 2 ||
        n != s_iterations || strstr(out, "FAIL"))
        return 0;
    return cycles;
}

static double s_ns(uint64_t cycles)
{
    return (double)cycles * 1e6 / s_tsc_khz / s_iterations;
}

static loader_kernel_config_t s_config(void)
{
    return (loader_kernel_config_t){.kernel = s_kernel, .kernel_len = s_kernel_len,
                                    .kernel_name = S_KERNEL, .append = s_append,
                                    .mem_size = S_MEM, .n_vps = 1};
}

/* ---- The raw exit --------------------------------------------------------------- */

typedef struct {
    char out[S_OUT];
    size_t len;
} s_text_t;

static void s_com1(void *arg, uint8_t byte)
{
    s_text_t *t = arg;
    if (t->len + 1 < sizeof t->out)
        t->out[t->len++] = (char)byte;
}

/* The PM timer read answered as the PM block answers it, from the clock;
 * the debug exit ends the run. */
static int s_raw_port(void *arg, raw_kvm_t *k, bool out, uint16_t port, uint32_t size,
                      uint8_t *data, char *err, size_t errlen)
{
    (void)arg, (void)k, (void)err, (void)errlen;
    if (!out && port == S_PM_TIMER && size == 4) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        uint32_t ticks = (uint32_t)(ns / 1000000000ull * S_PM_HZ +
                                    ns % 1000000000ull * S_PM_HZ / 1000000000ull);
        memcpy(data, &ticks, 4);
        return 0;
    }
    return out && port == S_DEBUG_EXIT ? 1 : -ENOENT;
}

static uint64_t s_raw(void)
{
    char err[256] = "";
    loader_kernel_config_t cfg = s_config();
    loader_image_t *image = loader_kernel_new(&cfg, err, sizeof err);
    if (!image)
        bench_die("the kernel cannot be loaded: %s", err);
    raw_kvm_t k;
    int rc = raw_kvm_open_image(&k, image, err, sizeof err);
    loader_image_destroy(&image);
    s_text_t text = {.len = 0};
    raw_kvm_guest_t g = {.port = s_raw_port, .com1 = s_com1, .arg = &text};
    if (!rc)
        rc = raw_kvm_run(&k, &g, err, sizeof err);
    s_tsc_khz = k.tsc_khz;
    raw_kvm_close(&k);
    if (rc)
        bench_die("the raw loop: %s", err);
    uint64_t cycles = s_cycles(text.out);
    if (!cycles)
        bench_die("the raw loop: the guest printed no figure:\n%s", text.out);
    return cycles;
}

/* ---- This VMM ------------------------------------------------------------------- */

/* A whole file's text, NUL-terminated, into out. */
static void s_read_all(int fd, char *out, size_t size)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, size - 1);
    out[n > 0 ? n : 0] = 0;
}

static uint64_t s_vmm(vm_placement_t placement)
{
    FILE *f = tmpfile();
    if (!f)
        bench_die("tmpfile: %s", strerror(errno));
    loader_kernel_config_t kernel = s_config();
    vm_config_t cfg = {.kernel = &kernel, .mem_size = S_MEM, .n_vps = 1,
                       .serial_out = fileno(f), .serial_in = -1, .placement = placement};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    if (!vm)
        bench_die("vm_new: %s", err);
    int status = vm_run(vm, err, sizeof err);
    vm_destroy(&vm);
    static char out[S_OUT];
    s_read_all(fileno(f), out, sizeof out);
    fclose(f);
    uint64_t cycles = s_cycles(out);
    if (status != 1 || !cycles)
        bench_die("the VMM: status %d (%s), output:\n%s", status, err, out);
    return cycles;
}

/* ---- QEMU ---------------------------------------------------------------------- */

/* Runs the kernel under QEMU's pc machine (SeaBIOS, its multiboot loader,
 * the PIIX4 PM timer), COM1 to a file; killed after S_QEMU_TIMEOUT_S. */
static uint64_t s_qemu_run(void)
{
    char serial[] = "/tmp/pm_timer_bench-qemu-XXXXXX";
    int fd = mkstemp(serial);
    if (fd < 0)
        bench_die("mkstemp: %s", strerror(errno));
    close(fd);
    char mem[32], file[sizeof serial + 8];
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)(S_MEM >> 20));
    snprintf(file, sizeof file, "file:%s", serial);
    const char *argv[] = {s_qemu, "-M", "pc", "-accel", "kvm", "-cpu", "qemu64", "-m", mem,
                          "-smp", "1", "-display", "none", "-nodefaults", "-no-reboot",
                          "-serial", file, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                          "-kernel", S_KERNEL, "-append", s_append, NULL};
    int status = bench_spawn(argv, S_QEMU_TIMEOUT_S);
    static char out[S_OUT];
    bench_read_file(serial, out, sizeof out);
    unlink(serial);
    uint64_t cycles = s_cycles(out);
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 1 || !cycles)
        bench_die("QEMU (%s): status 0x%x, COM1:\n%s", s_qemu, status, out);
    return cycles;
}

/* ---- Report ------------------------------------------------------------------- */

static void s_run(const char *title)
{
    printf("\n%s (%u reads per loop, median of %d)\n", title, s_iterations, s_repeat);
    double raw[BENCH_MAX_REPEAT], with_vp[BENCH_MAX_REPEAT], apart[BENCH_MAX_REPEAT];
    double qemu[BENCH_MAX_REPEAT];
    for (int i = 0; i < s_repeat; i++) {
        raw[i] = s_ns(s_raw());
        with_vp[i] = s_ns(s_vmm(VM_DEVICES_WITH_VP0));
        apart[i] = s_ns(s_vmm(VM_DEVICES_APART));
        if (s_qemu[0])
            qemu[i] = s_ns(s_qemu_run());
    }
    double r = bench_median(raw, s_repeat), v = bench_median(with_vp, s_repeat);
    double a = bench_median(apart, s_repeat);
    printf("  %-44s %12s %12s %8s\n", "guest-visible cost of a PM timer read", "vmm", "raw exit",
           "ratio");
    bench_row("PM block on the VP's executor", v, r, 1.1, "<= 1.1x the raw exit");
    bench_row("PM block on another executor", a, r, 1e9, "(no target: two thread hops)");
    if (!s_qemu[0]) {
        printf("  QEMU: no qemu-system-x86_64 on $PATH (or VMM_BENCH_QEMU=none): not "
               "compared\n");
        return;
    }
    double q = bench_median(qemu, s_repeat);
    printf("  %-44s %12s %12s %8s\n", "against QEMU -M pc (its PIIX4 PM timer)", "vmm", "qemu",
           "ratio");
    bench_row("PM block on the VP's executor", v, q, 0.7, "<= 0.7x QEMU's");
    bench_row("raw exit (for scale)", r, q, 1e9, "(no target)");
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: pm_timer_bench [--iterations N] [--repeat N] [--busy-only | --idle-only]\n"
            "                      [--strict]\n"
            "Measures, inside a multiboot guest, what a read of the ACPI PM timer costs\n"
            "with the PM block on the VP's executor and on another, beside a bare\n"
            "KVM_RUN loop that answers it itself, and under QEMU where it is installed\n"
            "(qemu-system-x86_64 on $PATH, or $VMM_BENCH_QEMU; none: skip it). Needs\n"
            "/dev/kvm.\n"
            "  --iterations N  reads per timed guest loop (default 2000)\n"
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
    int status = bench_parse(argc, argv, "pm_timer_bench", 1, 1000000, s_usage, &o);
    if (status >= 0)
        return status;
    s_iterations = (uint32_t)o.iterations;
    s_repeat = o.repeat;
    snprintf(s_append, sizeof s_append, "iterations=%u", s_iterations);
    if (access("/dev/kvm", R_OK | W_OK))
        bench_die("/dev/kvm: %s; this benchmark needs KVM", strerror(errno));
    FILE *f = fopen(S_KERNEL, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !(s_kernel = malloc((size_t)st.st_size)) ||
        fread(s_kernel, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        bench_die("%s: cannot read it (%s)", S_KERNEL, strerror(errno));
    fclose(f);
    s_kernel_len = (size_t)st.st_size;
    bench_find_qemu(s_qemu, sizeof s_qemu);
    if (o.busy) {
        pid_t load = bench_load_start();
        s_run("Other core busy (a spinning process)");
        bench_load_stop(&load);
    }
    if (o.idle)
        s_run("Idle machine");
    free(s_kernel);
    printf("\n%s\n", bench_misses() ? "Some targets were missed." : "All targets met.");
    return o.strict && bench_misses() ? 1 : 0;
}
