#include "bench/bench.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *s_name = "bench";
static int s_misses;

int bench_parse(int argc, char **argv, const char *name, long min_iterations,
                long max_iterations, void (*usage)(FILE *f), bench_opts_t *o)
{
    s_name = name;
    static const struct option opts[] = {
        {"iterations", required_argument, NULL, 'n'},
        {"repeat", required_argument, NULL, 'r'},
        {"busy-only", no_argument, NULL, 'b'},
        {"idle-only", no_argument, NULL, 'i'},
        {"strict", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    o->busy = o->idle = true;
    for (int c; (c = getopt_long(argc, argv, "n:r:bish", opts, NULL)) != -1;) {
        char *end;
        switch (c) {
        case 'n':
            o->iterations = strtol(optarg, &end, 10);
            if (*end || o->iterations < min_iterations || o->iterations > max_iterations) {
                fprintf(stderr, "%s: --iterations must be %ld to %ld\n", name, min_iterations,
                        max_iterations);
                return 2;
            }
            break;
        case 'r':
            o->repeat = (int)strtol(optarg, &end, 10);
            if (*end || o->repeat < 1 || o->repeat > BENCH_MAX_REPEAT) {
                fprintf(stderr, "%s: --repeat must be 1 to %d\n", name, BENCH_MAX_REPEAT);
                return 2;
            }
            break;
        case 'b':
            o->idle = false;
            break;
        case 'i':
            o->busy = false;
            break;
        case 's':
            o->strict = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

pid_t bench_load_start(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(0);
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    return pid;
}

void bench_load_stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int s_by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_by_value);
    return v[n / 2];
}

void bench_row(const char *what, double ns, double base_ns, double target,
               const char *target_text)
{
    double ratio = ns / base_ns;
    bool ok = ratio <= target;
    s_misses += !ok;
    printf("  %-44s %9.2f us %9.2f us %7.2fx   %s %s\n", what, ns / 1000, base_ns / 1000, ratio,
           ok ? "ok  " : "MISS", target_text);
}

void bench_rate_row(const char *what, double rate, double base_rate, const char *unit,
                    double target, const char *target_text)
{
    double ratio = rate / base_rate;
    bool ok = ratio >= target;
    s_misses += !ok;
    printf("  %-44s %10.1f %s %10.1f %s %7.2fx   %s %s\n", what, rate, unit, base_rate, unit,
           ratio, ok ? "ok  " : "MISS", target_text);
}

int bench_misses(void)
{
    return s_misses;
}

bool bench_find_qemu(char *path, size_t size)
{
    const char *given = getenv("VMM_BENCH_QEMU");
    if (given) {
        snprintf(path, size, "%s", strcmp(given, "none") ? given : "");
        return *path;
    }
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env ? env : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, size, "%s/qemu-system-x86_64", d);
        if (!access(path, X_OK))
            return true;
    }
    *path = 0;
    return false;
}

int bench_spawn(const char *const *argv, int timeout_s)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Under `bazel run`, vmm would take the runfiles paths it is given
         * as relative to where bazel ran, and fail. */
        unsetenv("BUILD_WORKING_DIRECTORY");
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0; waited <= timeout_s * 100; waited++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void bench_read_file(const char *path, char *out, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, out, size - 1) : 0;
    out[n > 0 ? n : 0] = 0;
    if (fd >= 0)
        close(fd);
}
