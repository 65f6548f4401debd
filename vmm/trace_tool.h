/* `vmm trace`: dump and stats of a trace file (trace_tool.c). */
#ifndef VMM_TRACE_TOOL_H
#define VMM_TRACE_TOOL_H

#include <stddef.h>

#include "runtime/rt.h"

/* argv[0] is "trace". Returns the exit status. */
int trace_main(int argc, char **argv);

/* The recording options vmm run and vmm devhost share: --trace FILE,
 * --trace-actor PREFIX and --trace-kind KIND (those two repeated). */
#define TRACE_OPTS_MAX 16
typedef struct {
    const char *path;
    const char *actors[TRACE_OPTS_MAX], *kinds[TRACE_OPTS_MAX];
    size_t n_actors, n_kinds;
} trace_opts_t;

/* getopt_long's entries for them, with codes no letter option has. */
#define TRACE_OPT_FILE 0x1001
#define TRACE_OPT_ACTOR 0x1002
#define TRACE_OPT_KIND 0x1003
#define TRACE_OPTS_LONG                                                                       \
    {"trace", required_argument, NULL, TRACE_OPT_FILE},                                      \
        {"trace-actor", required_argument, NULL, TRACE_OPT_ACTOR},                           \
        {"trace-kind", required_argument, NULL, TRACE_OPT_KIND}

/* Takes option c's argument. Returns 0, or 2 (a usage error) after saying
 * why on stderr, prog its first word. */
int trace_opts_take(trace_opts_t *o, int c, const char *arg, const char *prog);

/* Their text for --help. */
#define TRACE_OPTS_HELP                                                                       \
    "  --trace FILE     record every message of this process's actors, and what\n"          \
    "                   else they consume, into FILE (docs/trace-format.md; see\n"          \
    "                   vmm trace --help)\n"                                                 \
    "  --trace-actor P  record only actors whose names start with P (repeated)\n"           \
    "  --trace-kind K   record only messages of kind K, e.g. device_request\n"              \
    "                   (repeated)\n"

/* The runtime's trace configuration from them; NULL without --trace. */
const rt_trace_config_t *trace_opts_config(const trace_opts_t *o, const char *process,
                                           rt_trace_config_t *out);

#endif
