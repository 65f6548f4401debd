/*
 * A trace file is anything a user hands `vmm trace`: the reader over any
 * bytes (records cut short, lengths that lie, records and envelopes that do
 * not decode, nesting too deep for the stack), every record described and
 * its envelope decoded as `vmm trace dump` does, then the whole file
 * exported to Perfetto as `vmm trace export` does. Each must refuse what is
 * malformed with a reason and never read past the file.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/trace.h"
#include "vmm/trace_export.h"

#define S_MAX_RECORDS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64], out[64];
    if (fd < 0) {
        fd = memfd_create("trace", 0);
        int out_fd = memfd_create("perfetto", 0);
        if (fd < 0 || out_fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        snprintf(out, sizeof out, "/proc/self/fd/%d", out_fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char err[512];
    rt_trace_reader_t *r = rt_trace_open(path, err, sizeof err);
    if (!r)
        return 0;
    const Vmm__Trace__Header *h = rt_trace_header(r);
    const Vmm__Trace__Record *rec;
    char text[1024];
    for (int n = 0; n < S_MAX_RECORDS && rt_trace_next(r, &rec, err, sizeof err) == 1; n++) {
        rt_trace_describe(h, rec, text, sizeof text);
        if (rec->record_case != VMM__TRACE__RECORD__RECORD_MESSAGE)
            continue;
        Vmm__Envelope *env = rt_trace_envelope(rec->message);
        if (env) {
            rt_trace_kind(env, text, sizeof text);
            vmm__envelope__free_unpacked(env, NULL);
        }
    }
    rt_trace_close(&r);
    const char *files[] = {path};
    trace_export(files, 1, out, NULL, err, sizeof err);
    return 0;
}
