/*
 * A trace file handed to `vmm trace replay`: any bytes, replayed for each
 * actor the file starts that a replay drives (devices, the synic, the
 * device registry), at most S_MAX_ACTORS of them, as `vmm trace replay`
 * does for one. Each replay must end with a match, a divergence or an
 * error saying why, and never touch memory it does not own: recipes that
 * ask for what no model has, records that contradict each other, recorded
 * bad input, replies to nothing, timers never armed.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "actors/registry/registry.h"
#include "actors/synic/synic.h"
#include "runtime/replay.h"
#include "runtime/trace.h"

#define S_MAX_ACTORS 4
#define S_MAX_RECORDS 4096

/* The names of the actors of kinds a replay drives, at most S_MAX_ACTORS. */
static size_t s_actors(const char *path, char names[][128], char kinds[][16])
{
    char err[512];
    rt_trace_reader_t *r = rt_trace_open(path, err, sizeof err);
    if (!r)
        return 0;
    const Vmm__Trace__Record *rec;
    size_t n = 0;
    for (int i = 0; i < S_MAX_RECORDS && n < S_MAX_ACTORS &&
                    rt_trace_next(r, &rec, err, sizeof err) == 1;
         i++) {
        if (rec->record_case != VMM__TRACE__RECORD__RECORD_ACTOR || rec->actor->stopped)
            continue;
        const char *kind = rec->actor->kind;
        if (strcmp(kind, "device") && strcmp(kind, "synic") && strcmp(kind, "registry"))
            continue;
        if (strlen(rec->actor->name) >= sizeof names[0])
            continue;
        strcpy(names[n], rec->actor->name);
        snprintf(kinds[n], sizeof kinds[n], "%s", kind);
        n++;
    }
    rt_trace_close(&r);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("trace", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        setenv("VMM_LOG", "error", 1);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char names[S_MAX_ACTORS][128], kinds[S_MAX_ACTORS][16];
    size_t n = s_actors(path, names, kinds);
    for (size_t i = 0; i < n; i++) {
        rt_replay_result_t res;
        char err[1200];
        if (!strcmp(kinds[i], "device"))
            device_actor_replay(path, names[i], NULL, NULL, &res, err, sizeof err);
        else if (!strcmp(kinds[i], "synic"))
            synic_replay(path, names[i], &res, err, sizeof err);
        else
            registry_replay(path, names[i], &res, err, sizeof err);
    }
    return 0;
}
