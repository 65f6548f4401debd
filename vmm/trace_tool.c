/*
 * `vmm trace`: looking at traces (docs/trace-format.md).
 *
 *   vmm trace dump FILE [--actor PREFIX]... [--kind KIND]...
 *   vmm trace stats FILE [--actor PREFIX]... [--kind KIND]...
 *   vmm trace replay FILE --actor NAME
 *   vmm trace export FILE [FILE]... -o OUT
 */
#include "vmm/trace_tool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "actors/registry/registry.h"
#include "actors/synic/synic.h"
#include "runtime/replay.h"
#include "runtime/trace.h"
#include "vmm/trace_export.h"

#define S_EXIT_FAILED 1
#define S_EXIT_USAGE 2
#define S_MAX_FILTERS 16
#define S_MAX_FILES 64

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: vmm trace dump FILE [--actor PREFIX]... [--kind KIND]...\n"
            "       vmm trace stats FILE [--actor PREFIX]... [--kind KIND]...\n"
            "       vmm trace replay FILE --actor NAME\n"
            "       vmm trace export FILE [FILE]... -o OUT\n"
            "\n"
            "Looks at a trace that vmm run --trace (or vmm devhost --trace) recorded.\n"
            "\n"
            "  dump    one line per record: the time since the trace began, how the\n"
            "          envelope went (tx: it left its actor; rx: it reached its actor;\n"
            "          nested: handed over on one thread), sender -> receiver, its kind,\n"
            "          and its fields; actors as they started, and what each consumed\n"
            "          that is no message (the clock, timers, bytes)\n"
            "  stats   per sender, receiver and kind: how many, and for requests the\n"
            "          time to their reply, in percentiles\n"
            "  replay  starts the actor NAME (a device, the synic, the device registry)\n"
            "          again, alone, and\n"
            "          drives it with what it received and consumed in the trace, in\n"
            "          the recorded order, with no KVM and no other actor; compares\n"
            "          every message it sends with the recorded one. Exits 0 when all\n"
            "          match; else 1, with where it diverged: the record, the message\n"
            "          kind, the field, expected and got, and the message that caused\n"
            "          it\n"
            "  export  writes the traces of one VM's processes as one Perfetto trace\n"
            "          (ui.perfetto.dev opens it): a track per host, process and\n"
            "          actor; a slice per message or timer an actor handled; flows\n"
            "          from each message's sending to its handling and its reply. With\n"
            "          one FILE, its device hosts' FILE.devhostN beside it are read\n"
            "          too\n"
            "\n"
            "  --actor PREFIX  only envelopes whose sender or receiver (records of\n"
            "                  actors and inputs: whose actor) starts with PREFIX\n"
            "  --kind KIND     only envelopes of this kind: a body (device_request), an\n"
            "                  op (write_io) or both (device_request.write_io)\n"
            "  -o, --output OUT  where export writes (made or emptied)\n");
}

typedef struct {
    const char *file; /* the first of files */
    const char *files[S_MAX_FILES];
    size_t n_files;
    const char *actors[S_MAX_FILTERS], *kinds[S_MAX_FILTERS];
    size_t n_actors, n_kinds;
    const char *out;
} s_args_t;

static int s_parse(int argc, char **argv, const char *verb, s_args_t *a)
{
    static const struct option opts[] = {
        {"actor", required_argument, NULL, 'a'},
        {"kind", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case 'a':
        case 'k': {
            const char **list = c == 'a' ? a->actors : a->kinds;
            size_t *n = c == 'a' ? &a->n_actors : &a->n_kinds;
            if (*n == S_MAX_FILTERS) {
                fprintf(stderr, "vmm trace %s: at most %d --%s\n", verb, S_MAX_FILTERS,
                        c == 'a' ? "actor" : "kind");
                return S_EXIT_USAGE;
            }
            list[(*n)++] = optarg;
            break;
        }
        case 'h':
            s_usage(stdout);
            return -1;
        default:
            fprintf(stderr, "vmm trace %s: %s '%s'; see `vmm trace --help`\n", verb,
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return S_EXIT_USAGE;
        }
    }
    bool export = !strcmp(verb, "export");
    for (; optind < argc && a->n_files < S_MAX_FILES; optind++)
        a->files[a->n_files++] = argv[optind];
    const char *why = optind < argc                   ? "too many trace files"
                      : !a->n_files                   ? "a trace file, please"
                      : !export && a->n_files > 1     ? "one trace file, please"
                      : export && !a->out             ? "-o OUT, please"
                      : !export && a->out             ? "-o is export's"
                      : export && (a->n_actors || a->n_kinds) ? "export takes no filters"
                                                              : NULL;
    if (why) {
        fprintf(stderr, "vmm trace %s: %s; see `vmm trace --help`\n", verb, why);
        return S_EXIT_USAGE;
    }
    a->file = a->files[0];
    return 0;
}

/* ---- Filters ------------------------------------------------------------------ */

static bool s_prefixed(const s_args_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_actors; i++)
        if (name && !strncmp(name, a->actors[i], strlen(a->actors[i])))
            return true;
    return !a->n_actors;
}

/* Whether kind ("body.op") is one the filters name. */
static bool s_kind_wanted(const s_args_t *a, const char *kind)
{
    if (!a->n_kinds)
        return true;
    const char *dot = strchr(kind, '.');
    size_t body = dot ? (size_t)(dot - kind) : strlen(kind);
    for (size_t i = 0; i < a->n_kinds; i++) {
        const char *k = a->kinds[i];
        if (!strcmp(k, kind) || (strlen(k) == body && !strncmp(k, kind, body)) ||
            (dot && !strcmp(k, dot + 1)))
            return true;
    }
    return false;
}

static bool s_message_wanted(const s_args_t *a, const Vmm__Trace__Message *m,
                             const Vmm__Envelope *env, const char *kind)
{
    bool actor = env ? s_prefixed(a, env->sender) || s_prefixed(a, env->receiver)
                     : s_prefixed(a, m->actor);
    return actor && s_kind_wanted(a, kind);
}

/* ---- dump ------------------------------------------------------------------------- */

/* Whether the filters let a record through. */
static bool s_record_wanted(const s_args_t *a, const Vmm__Trace__Record *rec)
{
    switch (rec->record_case) {
    case VMM__TRACE__RECORD__RECORD_MESSAGE: {
        Vmm__Envelope *env = rt_trace_envelope(rec->message);
        char kind[96];
        rt_trace_kind(env, kind, sizeof kind);
        bool wanted = s_message_wanted(a, rec->message, env, kind);
        if (env)
            vmm__envelope__free_unpacked(env, NULL);
        return wanted;
    }
    case VMM__TRACE__RECORD__RECORD_INPUT:
        return !a->n_kinds && s_prefixed(a, rec->input->actor);
    case VMM__TRACE__RECORD__RECORD_OUTPUT:
        return !a->n_kinds && s_prefixed(a, rec->output->actor);
    case VMM__TRACE__RECORD__RECORD_LOST:
        return !a->n_kinds && s_prefixed(a, rec->lost->actor);
    case VMM__TRACE__RECORD__RECORD_ACTOR:
        return !a->n_kinds && s_prefixed(a, rec->actor->name);
    default:
        return false; /* a second header: nothing to show */
    }
}

static int s_dump(const s_args_t *a)
{
    char err[300];
    rt_trace_reader_t *r = rt_trace_open(a->file, err, sizeof err);
    if (!r) {
        fprintf(stderr, "vmm trace dump: %s\n", err);
        return S_EXIT_FAILED;
    }
    const Vmm__Trace__Header *h = rt_trace_header(r);
    printf("# %s, version %u: %s (pid %u) on %s\n", a->file, h->version, h->process, h->pid,
           h->host);
    printf("# record, seconds since the trace began, what\n");
    const Vmm__Trace__Record *rec;
    int rc;
    char line[8192];
    while ((rc = rt_trace_next(r, &rec, err, sizeof err)) == 1) {
        if (!s_record_wanted(a, rec))
            continue;
        rt_trace_describe(h, rec, line, sizeof line);
        printf("%8" PRIu64 " %s\n", rt_trace_index(r), line);
    }
    rt_trace_close(&r);
    if (rc < 0) {
        fflush(stdout);
        fprintf(stderr, "vmm trace dump: %s: %s\n", a->file, err);
        return S_EXIT_FAILED;
    }
    return 0;
}

/* ---- stats ------------------------------------------------------------------------ */

/* One (sender, receiver, kind) and its latencies (µs, for requests). */
typedef struct {
    char *sender, *receiver, *kind;
    uint64_t count, answered;
    double *latencies;
    size_t n_lat, cap_lat;
} s_row_t;

/* A request waiting for its reply: who asked, its id, when, which row. */
typedef struct {
    char *sender;
    uint64_t id, t_ns;
    size_t row;
} s_open_t;

typedef struct {
    s_row_t *rows;
    size_t n_rows;
    s_open_t *open;
    size_t n_open;
} s_stats_t;

static size_t s_row(s_stats_t *s, const char *sender, const char *receiver, const char *kind)
{
    for (size_t i = 0; i < s->n_rows; i++)
        if (!strcmp(s->rows[i].sender, sender) && !strcmp(s->rows[i].receiver, receiver) &&
            !strcmp(s->rows[i].kind, kind))
            return i;
    s_row_t *grown = realloc(s->rows, (s->n_rows + 1) * sizeof *grown);
    if (!grown)
        return SIZE_MAX;
    s->rows = grown;
    s->rows[s->n_rows] = (s_row_t){.sender = strdup(sender), .receiver = strdup(receiver),
                                   .kind = strdup(kind)};
    return s->n_rows++;
}

static void s_add_latency(s_row_t *row, double us)
{
    if (row->n_lat == row->cap_lat) {
        size_t cap = row->cap_lat ? row->cap_lat * 2 : 64;
        double *grown = realloc(row->latencies, cap * sizeof *grown);
        if (!grown)
            return;
        row->latencies = grown;
        row->cap_lat = cap;
    }
    row->latencies[row->n_lat++] = us;
    row->answered++;
}

/* A message seen where it left its sender (tx, nested): counted once. */
static void s_stats_message(const s_args_t *a, s_stats_t *s, const Vmm__Trace__Message *m)
{
    if (m->dir != VMM__TRACE__DIR__TX && m->dir != VMM__TRACE__DIR__NESTED)
        return;
    Vmm__Envelope *env = rt_trace_envelope(m);
    if (!env)
        return;
    char kind[96];
    rt_trace_kind(env, kind, sizeof kind);
    if (env->reply_to) {
        /* The reply to an open request of the receiver's. */
        for (size_t i = 0; i < s->n_open; i++)
            if (s->open[i].id == env->reply_to && !strcmp(s->open[i].sender, env->receiver)) {
                s_add_latency(&s->rows[s->open[i].row],
                              (double)(m->t_ns - s->open[i].t_ns) / 1e3);
                free(s->open[i].sender);
                s->open[i] = s->open[--s->n_open];
                break;
            }
    } else if (s_message_wanted(a, m, env, kind)) {
        size_t row = s_row(s, env->sender, env->receiver, kind);
        if (row != SIZE_MAX) {
            s->rows[row].count++;
            s_open_t *grown = env->request_id ? realloc(s->open, (s->n_open + 1) * sizeof *grown)
                                              : NULL;
            if (grown) {
                s->open = grown;
                s->open[s->n_open++] = (s_open_t){.sender = strdup(env->sender),
                                                  .id = env->request_id, .t_ns = m->t_ns,
                                                  .row = row};
            }
        }
    }
    vmm__envelope__free_unpacked(env, NULL);
}

static int s_compare(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double s_percentile(const s_row_t *row, double p)
{
    size_t i = (size_t)(p * (double)(row->n_lat - 1) + 0.5);
    return row->latencies[i];
}

static int s_stats(const s_args_t *a)
{
    char err[300];
    rt_trace_reader_t *r = rt_trace_open(a->file, err, sizeof err);
    if (!r) {
        fprintf(stderr, "vmm trace stats: %s\n", err);
        return S_EXIT_FAILED;
    }
    s_stats_t s = {0};
    const Vmm__Trace__Record *rec;
    int rc;
    while ((rc = rt_trace_next(r, &rec, err, sizeof err)) == 1)
        if (rec->record_case == VMM__TRACE__RECORD__RECORD_MESSAGE)
            s_stats_message(a, &s, rec->message);
    rt_trace_close(&r);
    printf("%-22s %-22s %-36s %8s %9s %9s %9s %9s\n", "sender", "receiver", "kind", "count",
           "p50 us", "p90 us", "p99 us", "max us");
    for (size_t i = 0; i < s.n_rows; i++) {
        s_row_t *row = &s.rows[i];
        printf("%-22s %-22s %-36s %8" PRIu64, row->sender, row->receiver, row->kind, row->count);
        if (row->n_lat) {
            qsort(row->latencies, row->n_lat, sizeof *row->latencies, s_compare);
            printf(" %9.2f %9.2f %9.2f %9.2f", s_percentile(row, 0.5), s_percentile(row, 0.9),
                   s_percentile(row, 0.99), row->latencies[row->n_lat - 1]);
        }
        if (row->answered < row->count && row->n_lat)
            printf(" (%" PRIu64 " unanswered)", row->count - row->answered);
        printf("\n");
        free(row->sender);
        free(row->receiver);
        free(row->kind);
        free(row->latencies);
    }
    for (size_t i = 0; i < s.n_open; i++)
        free(s.open[i].sender);
    free(s.open);
    free(s.rows);
    if (rc < 0) {
        fflush(stdout);
        fprintf(stderr, "vmm trace stats: %s: %s (the figures above are up to there)\n", a->file,
                err);
        return S_EXIT_FAILED;
    }
    return 0;
}

/* ---- replay ----------------------------------------------------------------------- */

static int s_replay(const s_args_t *a)
{
    if (a->n_actors != 1 || a->n_kinds) {
        fprintf(stderr, "vmm trace replay: one --actor NAME, and no --kind; see `vmm trace "
                        "--help`\n");
        return S_EXIT_USAGE;
    }
    const char *name = a->actors[0];
    char err[1200];
    Vmm__Trace__Actor *actor;
    int rc = rt_trace_find_actor(a->file, name, &actor, err, sizeof err);
    if (rc) {
        fprintf(stderr, "vmm trace replay: %s\n", err);
        return S_EXIT_FAILED;
    }
    rt_replay_result_t res;
    if (!strcmp(actor->kind, "device")) {
        rc = device_actor_replay(a->file, name, NULL, NULL, &res, err, sizeof err);
    } else if (!strcmp(actor->kind, "synic")) {
        rc = synic_replay(a->file, name, &res, err, sizeof err);
    } else if (!strcmp(actor->kind, "registry")) {
        rc = registry_replay(a->file, name, &res, err, sizeof err);
    } else {
        snprintf(err, sizeof err,
                 "%s is a %s actor; a replay drives devices, the synic and the device "
                 "registry (a VP needs KVM)",
                 name, actor->kind);
        rc = -ENOTSUP;
    }
    vmm__trace__actor__free_unpacked(actor, NULL);
    if (rc) {
        fprintf(stderr, "vmm trace replay: %s\n", err);
        return S_EXIT_FAILED;
    }
    fputs(res.report, res.matched ? stdout : stderr);
    return res.matched ? 0 : S_EXIT_FAILED;
}

/* ---- export ------------------------------------------------------------------------ */

static int s_export(s_args_t *a)
{
    /* One file: its device hosts' files beside it as well. */
    char names[S_MAX_FILES][4200];
    for (size_t i = 0; a->n_files == 1 && i + 1 < S_MAX_FILES; i++) {
        snprintf(names[i], sizeof names[i], "%s.devhost%zu", a->file, i);
        if (access(names[i], F_OK))
            break;
        a->files[1 + i] = names[i];
        if (i + 2 > a->n_files)
            a->n_files = i + 2;
    }
    char err[4400];
    trace_export_stats_t st;
    if (trace_export(a->files, a->n_files, a->out, &st, err, sizeof err)) {
        fprintf(stderr, "vmm trace export: %s\n", err);
        return S_EXIT_FAILED;
    }
    printf("%s: %zu trace files, %" PRIu64 " tracks, %" PRIu64 " slices, %" PRIu64
           " instants, %" PRIu64 " flows\n",
           a->out, a->n_files, st.tracks, st.slices, st.instants, st.flows);
    return 0;
}

int trace_opts_take(trace_opts_t *o, int c, const char *arg, const char *prog)
{
    if (c == TRACE_OPT_FILE) {
        o->path = arg;
        return 0;
    }
    const char **list = c == TRACE_OPT_ACTOR ? o->actors : o->kinds;
    size_t *n = c == TRACE_OPT_ACTOR ? &o->n_actors : &o->n_kinds;
    if (*n == TRACE_OPTS_MAX) {
        fprintf(stderr, "%s: at most %d --%s\n", prog, TRACE_OPTS_MAX,
                c == TRACE_OPT_ACTOR ? "trace-actor" : "trace-kind");
        return S_EXIT_USAGE;
    }
    list[(*n)++] = arg;
    return 0;
}

const rt_trace_config_t *trace_opts_config(const trace_opts_t *o, const char *process,
                                           rt_trace_config_t *out)
{
    if (!o->path)
        return NULL;
    *out = (rt_trace_config_t){.path = o->path, .process = process, .actors = o->actors,
                               .n_actors = o->n_actors, .kinds = o->kinds,
                               .n_kinds = o->n_kinds};
    return out;
}

int trace_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? S_EXIT_USAGE : 0;
    }
    const char *verb = argv[1];
    bool dump = !strcmp(verb, "dump"), stats = !strcmp(verb, "stats");
    bool replay = !strcmp(verb, "replay"), export = !strcmp(verb, "export");
    if (!dump && !stats && !replay && !export) {
        fprintf(stderr, "vmm trace: no command \"%s\"; see `vmm trace --help`\n", verb);
        return S_EXIT_USAGE;
    }
    s_args_t a = {0};
    int status = s_parse(argc - 1, argv + 1, verb, &a);
    if (status)
        return status < 0 ? 0 : status;
    return dump ? s_dump(&a) : stats ? s_stats(&a) : replay ? s_replay(&a) : s_export(&a);
}
