/*
 * Traces to Perfetto (`vmm trace export`): the records of one or more trace
 * files, the processes of one VM (its own and its device hosts'), written
 * as one Perfetto protobuf trace (proto/perfetto.proto) that
 * ui.perfetto.dev and trace_processor open:
 *
 *   - a track per host, per process below its host, per actor below its
 *     process;
 *   - on an actor's track, a slice for the handling of each message or
 *     timer that reached it, from its arrival to the actor's last record
 *     before the next one, named by the message's kind, with its sender and
 *     fields as arguments; an instant for each message it sent, and for
 *     each reply it took;
 *   - flows: a request's from its sending, through its handling and its
 *     reply, to the reply's arrival; a one-way message's from its sending
 *     to its handling. A VP's exit thus leads to the device's handling of
 *     its request, what that device sent in turn (an interrupt), and the
 *     reply, across processes when both sides were traced.
 *
 * Times are each process's CLOCK_MONOTONIC: files from one host share it;
 * a file from another host is shifted by the difference of the two hosts'
 * realtime clocks at the start of their traces.
 */
#ifndef VMM_TRACE_EXPORT_H
#define VMM_TRACE_EXPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t tracks, slices, instants, flows;
} trace_export_stats_t;

/* Writes the n trace files into a Perfetto trace at out (made or emptied).
 * Returns 0 with counts in *stats (may be NULL), or a negative errno with
 * the reason in err: a file that cannot be read or is no trace (-EBADMSG),
 * out that cannot be written. */
int trace_export(const char *const *files, size_t n, const char *out,
                 trace_export_stats_t *stats, char *err, size_t errlen);

#endif
