/*
 * Reading traces (docs/trace-format.md; rt_trace_start() writes them).
 *
 * A reader checks the file's header (magic, version) on opening, then
 * hands out one record at a time. A file still being written reads up to
 * its last whole record; a file cut short, or bytes that are no trace,
 * give an error that says where and why, never a crash.
 */
#ifndef VMM_RT_TRACE_H
#define VMM_RT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/envelope.pb-c.h"
#include "proto/trace.pb-c.h"

typedef struct rt_trace_reader_s rt_trace_reader_t;

/* Opens a trace. NULL with the reason in err: the file cannot be read, is
 * no vmm trace, or is of a version newer than this reader's. */
rt_trace_reader_t *rt_trace_open(const char *path, char *err, size_t errlen);
void rt_trace_close(rt_trace_reader_t **r);

/* The header the file starts with; the reader's, valid until it closes. */
const Vmm__Trace__Header *rt_trace_header(const rt_trace_reader_t *r);

/*
 * The next record: returns 1 with *rec (the reader's, valid until the next
 * call), 0 at the end (of what was written so far, for a file being
 * written), or -EBADMSG with where and why in err (a record cut short, one
 * that does not decode).
 */
int rt_trace_next(rt_trace_reader_t *r, const Vmm__Trace__Record **rec, char *err,
                  size_t errlen);

/* Like rt_trace_next(), but *rec is the caller's, to free with
 * vmm__trace__record__free_unpacked(). */
int rt_trace_take(rt_trace_reader_t *r, Vmm__Trace__Record **rec, char *err, size_t errlen);

/* The byte offset of the record last returned (for messages), and its
 * index: the header is record 0, the next one 1, and so on. */
uint64_t rt_trace_offset(const rt_trace_reader_t *r);
uint64_t rt_trace_index(const rt_trace_reader_t *r);

/* The message an envelope's body holds: the body's own oneof member when
 * it has one set (the op: write_io), else the body; NULL for none. */
const ProtobufCMessage *rt_trace_body(const Vmm__Envelope *env);

/* The record an actor of this name started with (its kind, executor,
 * recipe), in the trace at path: 0 with *actor, the caller's to free with
 * vmm__trace__actor__free_unpacked(); -ENOENT (no such actor: err lists
 * those there are) or -EBADMSG (not a trace, or corrupt before it), each
 * with the reason in err. */
int rt_trace_find_actor(const char *path, const char *name, Vmm__Trace__Actor **actor,
                        char *err, size_t errlen);

/* One line for people about a record: the time since the trace began
 * (of header h), then what it is ("tx vm0/vp/0 -> vm0/dev/com1
 * device_request.write_io req 7 {port: 1016, ...}"). */
void rt_trace_describe(const Vmm__Trace__Header *h, const Vmm__Trace__Record *rec, char *buf,
                       size_t size);

/* The envelope a Message record carries, decoded (NULL when it does not
 * decode: recorded bad input); free with vmm__envelope__free_unpacked(). */
Vmm__Envelope *rt_trace_envelope(const Vmm__Trace__Message *m);

/* The envelope body's field name ("device_request"), and its own oneof
 * member's ("write_io") when the body has one set, as "device_request.
 * write_io", into buf. "?" for an envelope that did not decode. */
void rt_trace_kind(const Vmm__Envelope *env, char *buf, size_t size);

#endif
