/*
 * What the benchmarks share: their options, the spinning process that keeps
 * the other core busy, medians and figure rows.
 */
#ifndef VMM_BENCH_H
#define VMM_BENCH_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_MAX_REPEAT 15

typedef struct {
    long iterations; /* in [min, max] given to bench_parse() */
    int repeat;      /* measurements per figure, 1 to BENCH_MAX_REPEAT */
    bool busy, idle; /* which passes run */
    bool strict;     /* exit 1 when a target is missed */
} bench_opts_t;

/* Parses --iterations N, --repeat N, --busy-only, --idle-only, --strict and
 * --help into *o (which holds the defaults). Returns -1 to go on, or the
 * status to exit with: 0 after --help (usage printed to stdout), 2 for a bad
 * option (one line, or the usage, on stderr). */
int bench_parse(int argc, char **argv, const char *name, long min_iterations,
                long max_iterations, void (*usage)(FILE *f), bench_opts_t *o);

/* A child spinning on the other core, which dies with the benchmark however
 * that ends; stopped (and *pid zeroed) by bench_load_stop(). */
pid_t bench_load_start(void);
void bench_load_stop(pid_t *pid);

/* Prints "<name>: <what>" (the name bench_parse() was given) and exits 1;
 * the load process dies with the benchmark. */
void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The median of v[0..n), which it sorts. */
double bench_median(double *v, int n);

/* Prints a figure row: what, ns and base_ns in µs, their ratio, "ok" when
 * the ratio is at most target or else "MISS" (counted), and target_text. */
void bench_row(const char *what, double ns, double base_ns, double target,
               const char *target_text);

/* The same for rates (operations or bytes per second, in unit), where more
 * is better: ok when rate / base_rate is at least target. */
void bench_rate_row(const char *what, double rate, double base_rate, const char *unit,
                    double target, const char *target_text);

/* QEMU for side-by-side rows: $VMM_BENCH_QEMU ("none": not at all), else
 * qemu-system-x86_64 on $PATH. Returns whether there is one (its path in
 * path). */
bool bench_find_qemu(char *path, size_t size);

/* Runs argv (argv[0] a path) with stdin, stdout and stderr on /dev/null,
 * its relative paths taken from the working directory (not `bazel run`'s);
 * killed after timeout_s. Returns its wait status, or -1 when it could not
 * be started or was killed. */
int bench_spawn(const char *const *argv, int timeout_s);

/* A whole file's text, NUL-terminated, into out (size bytes at most). */
void bench_read_file(const char *path, char *out, size_t size);

/* The rows that missed their target so far. */
int bench_misses(void);

#endif
