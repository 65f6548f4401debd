/* Reading traces: runtime/trace.h. */
#include "runtime/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/pbtext.h"
#include "runtime/rt_internal.h"

#define S_PREFIX 4

struct rt_trace_reader_s {
    const uint8_t *map;
    size_t size;
    size_t at, last;
    uint64_t count; /* records read, the header too */
    Vmm__Trace__Record *header;
    Vmm__Trace__Record *record; /* the one last handed out */
};

void rt_trace_close(rt_trace_reader_t **r)
{
    if (!*r)
        return;
    if ((*r)->map && (*r)->map != MAP_FAILED)
        munmap((void *)(*r)->map, (*r)->size);
    if ((*r)->header)
        vmm__trace__record__free_unpacked((*r)->header, NULL);
    if ((*r)->record)
        vmm__trace__record__free_unpacked((*r)->record, NULL);
    free(*r);
    *r = NULL;
}

/* Reads the record at r->at: 1 with *out (the caller's), 0 at the end,
 * -EBADMSG with err. */
static int s_read(rt_trace_reader_t *r, Vmm__Trace__Record **out, char *err, size_t errlen)
{
    size_t left = r->size - r->at;
    const uint8_t *p = r->map + r->at;
    if (!left || !p[0])
        return 0; /* the end, or where the writer has not written yet */
    if (left < S_PREFIX) {
        snprintf(err, errlen, "the record at byte %zu is cut short: %zu bytes of its length",
                 r->at, left);
        return -EBADMSG;
    }
    if (!(p[0] & 0x80) || !(p[1] & 0x80) || !(p[2] & 0x80) || (p[3] & 0x80)) {
        snprintf(err, errlen, "the record at byte %zu has no length of the trace format "
                              "(bytes %02x %02x %02x %02x)",
                 r->at, p[0], p[1], p[2], p[3]);
        return -EBADMSG;
    }
    size_t len = (size_t)(p[0] & 0x7f) | (size_t)(p[1] & 0x7f) << 7 |
                 (size_t)(p[2] & 0x7f) << 14 | (size_t)p[3] << 21;
    if (len > left - S_PREFIX) {
        snprintf(err, errlen, "the record at byte %zu is cut short: %zu of its %zu bytes", r->at,
                 left - S_PREFIX, len);
        return -EBADMSG;
    }
    Vmm__Trace__Record *rec = vmm__trace__record__unpack(NULL, len, p + S_PREFIX);
    if (!rec || rec->record_case == VMM__TRACE__RECORD__RECORD__NOT_SET) {
        snprintf(err, errlen, "the record at byte %zu (%zu bytes) does not decode", r->at, len);
        if (rec)
            vmm__trace__record__free_unpacked(rec, NULL);
        return -EBADMSG;
    }
    r->last = r->at;
    r->at += S_PREFIX + len;
    r->count++;
    *out = rec;
    return 1;
}

rt_trace_reader_t *rt_trace_open(const char *path, char *err, size_t errlen)
{
    rt_trace_reader_t *r = calloc(1, sizeof *r);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (!r || fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(r ? errno : ENOMEM));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        snprintf(err, errlen, "%s: %s", path, st.st_size == 0 ? "empty: not a vmm trace"
                                                              : "not a file");
        goto fail;
    }
    r->size = (size_t)st.st_size;
    r->map = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (r->map == MAP_FAILED) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    char why[200] = "it is empty";
    int rc = s_read(r, &r->header, why, sizeof why);
    if (rc != 1 || r->header->record_case != VMM__TRACE__RECORD__RECORD_HEADER ||
        strcmp(r->header->header->magic, RT_TRACE_MAGIC)) {
        snprintf(err, errlen, "%s: not a vmm trace (%s)", path,
                 rc == 1 ? "its first record is no trace header" : why);
        goto fail;
    }
    if (r->header->header->version > RT_TRACE_VERSION) {
        snprintf(err, errlen, "%s: a trace of version %u; this vmm reads version %d and older",
                 path, r->header->header->version, RT_TRACE_VERSION);
        goto fail;
    }
    return r;
fail:
    if (fd >= 0)
        close(fd);
    rt_trace_close(&r);
    return NULL;
}

const Vmm__Trace__Header *rt_trace_header(const rt_trace_reader_t *r)
{
    return r->header->header;
}

int rt_trace_next(rt_trace_reader_t *r, const Vmm__Trace__Record **rec, char *err,
                  size_t errlen)
{
    if (r->record)
        vmm__trace__record__free_unpacked(r->record, NULL);
    r->record = NULL;
    int rc = s_read(r, &r->record, err, errlen);
    *rec = rc == 1 ? r->record : NULL;
    return rc;
}

int rt_trace_take(rt_trace_reader_t *r, Vmm__Trace__Record **rec, char *err, size_t errlen)
{
    *rec = NULL;
    return s_read(r, rec, err, errlen);
}

uint64_t rt_trace_offset(const rt_trace_reader_t *r)
{
    return r->last;
}

uint64_t rt_trace_index(const rt_trace_reader_t *r)
{
    return r->count - 1;
}

Vmm__Envelope *rt_trace_envelope(const Vmm__Trace__Message *m)
{
    /* protobuf-c recurses once per level: a crafted trace must not take
     * the stack of the tool that reads it. */
    if (!rt_wire_depth_ok(m->envelope.data, m->envelope.len))
        return NULL;
    return vmm__envelope__unpack(NULL, m->envelope.len, m->envelope.data);
}

/* The name of the oneof member msg has set, or NULL. */
static const char *s_member(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        uint32_t set = *(const uint32_t *)((const char *)msg + f->quantifier_offset);
        if (set == f->id)
            return f->name;
    }
    return NULL;
}

void rt_trace_kind(const Vmm__Envelope *env, char *buf, size_t size)
{
    if (!env) {
        snprintf(buf, size, "?");
        return;
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&vmm__envelope__descriptor, env->body_case);
    if (!f) {
        snprintf(buf, size, "none");
        return;
    }
    const char *member = NULL;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *body =
            *(const ProtobufCMessage *const *)((const char *)env + f->offset);
        if (body)
            member = s_member(body);
    }
    snprintf(buf, size, "%s%s%s", f->name, member ? "." : "", member ? member : "");
}

const ProtobufCMessage *rt_trace_body(const Vmm__Envelope *env)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&vmm__envelope__descriptor, env->body_case);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    const ProtobufCMessage *body =
        *(const ProtobufCMessage *const *)((const char *)env + f->offset);
    if (!body)
        return NULL;
    const ProtobufCMessageDescriptor *d = body->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
            *(const uint32_t *)((const char *)body + fd->quantifier_offset) == fd->id)
            return *(const ProtobufCMessage *const *)((const char *)body + fd->offset);
    }
    return body;
}

static double s_seconds(const Vmm__Trace__Header *h, uint64_t t_ns)
{
    uint64_t start = h ? h->start_monotonic_ns : 0;
    return t_ns >= start ? (double)(t_ns - start) / 1e9 : -(double)(start - t_ns) / 1e9;
}

/* Appends to buf at *len (bounded). */
static void s_add(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_add(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n < size - *len ? *len + (size_t)n : size - 1;
}

static void s_add_bytes(char *buf, size_t size, size_t *len, const Vmm__Trace__Bytes *b)
{
    s_add(buf, size, len, "%zu bytes of kind %u at 0x%" PRIx64 ": ", b->data.len, b->kind,
          b->address);
    for (size_t i = 0; i < b->data.len && i < 16; i++)
        s_add(buf, size, len, "%02x", b->data.data[i]);
    if (b->data.len > 16)
        s_add(buf, size, len, "...");
}

void rt_trace_describe(const Vmm__Trace__Header *h, const Vmm__Trace__Record *rec, char *buf,
                       size_t size)
{
    static const char *const dirs[] = {"?", "tx", "rx", "nested"};
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    switch (rec->record_case) {
    case VMM__TRACE__RECORD__RECORD_MESSAGE: {
        const Vmm__Trace__Message *m = rec->message;
        s_add(buf, size, &len, "%12.6f %-6s ", s_seconds(h, m->t_ns),
              m->dir < 4 ? dirs[m->dir] : "?");
        Vmm__Envelope *env = rt_trace_envelope(m);
        if (!env) {
            s_add(buf, size, &len, "%s: %zu bytes that are no envelope", m->actor,
                  m->envelope.len);
            break;
        }
        char kind[96];
        rt_trace_kind(env, kind, sizeof kind);
        s_add(buf, size, &len, "%s -> %s %s", env->sender, env->receiver, kind);
        if (env->request_id)
            s_add(buf, size, &len, " req %" PRIu64, env->request_id);
        if (env->reply_to)
            s_add(buf, size, &len, " re %" PRIu64, env->reply_to);
        if (m->extra_frames)
            s_add(buf, size, &len, " (+%u frames)", m->extra_frames);
        if (len + 2 < size) {
            buf[len++] = ' ';
            rt_pb_text(rt_trace_body(env), buf + len, size - len);
        }
        vmm__envelope__free_unpacked(env, NULL);
        break;
    }
    case VMM__TRACE__RECORD__RECORD_INPUT: {
        const Vmm__Trace__Input *in = rec->input;
        s_add(buf, size, &len, "%12.6f input  %s ", s_seconds(h, in->t_ns), in->actor);
        if (in->input_case == VMM__TRACE__INPUT__INPUT_CLOCK_NS)
            s_add(buf, size, &len, "clock %.9f", s_seconds(h, in->clock_ns));
        else if (in->input_case == VMM__TRACE__INPUT__INPUT_TIMER)
            s_add(buf, size, &len, "timer %" PRIu64 " fired", in->timer);
        else if (in->input_case == VMM__TRACE__INPUT__INPUT_BYTES)
            s_add_bytes(buf, size, &len, in->bytes);
        else
            s_add(buf, size, &len, "of a kind this vmm does not know");
        break;
    }
    case VMM__TRACE__RECORD__RECORD_OUTPUT: {
        const Vmm__Trace__Output *out = rec->output;
        s_add(buf, size, &len, "%12.6f output %s ", s_seconds(h, out->t_ns), out->actor);
        if (out->bytes)
            s_add_bytes(buf, size, &len, out->bytes);
        break;
    }
    case VMM__TRACE__RECORD__RECORD_LOST:
        s_add(buf, size, &len, "%12.6f lost   %s: a record of %" PRIu64
              " bytes, too large to be written", s_seconds(h, rec->lost->t_ns),
              rec->lost->actor, rec->lost->length);
        break;
    case VMM__TRACE__RECORD__RECORD_ACTOR:
        s_add(buf, size, &len, "%12s %-6s %s (%s) on %s%s", "", "actor", rec->actor->name,
              rec->actor->kind, rec->actor->executor,
              rec->actor->stopped ? ": stopped" : "");
        break;
    case VMM__TRACE__RECORD__RECORD_HEADER:
        s_add(buf, size, &len, "%12s %-6s %s (pid %u) on %s", "", "header",
              rec->header->process, rec->header->pid, rec->header->host);
        break;
    default:
        s_add(buf, size, &len, "a record of a kind this vmm does not know");
    }
}

int rt_trace_find_actor(const char *path, const char *name, Vmm__Trace__Actor **actor,
                        char *err, size_t errlen)
{
    *actor = NULL;
    rt_trace_reader_t *r = rt_trace_open(path, err, errlen);
    if (!r)
        return -EBADMSG;
    Vmm__Trace__Record *rec;
    char names[1024] = "", why[300];
    size_t n = 0;
    int rc;
    while ((rc = rt_trace_take(r, &rec, why, sizeof why)) == 1) {
        Vmm__Trace__Actor *a = rec->record_case == VMM__TRACE__RECORD__RECORD_ACTOR
                                   ? rec->actor
                                   : NULL;
        if (a && !a->stopped && !strcmp(a->name, name)) {
            *actor = a;
            rec->record_case = VMM__TRACE__RECORD__RECORD__NOT_SET; /* a is kept */
            vmm__trace__record__free_unpacked(rec, NULL);
            rt_trace_close(&r);
            return 0;
        }
        if (a && !a->stopped && n < sizeof names)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s %s", n ? "," : "", a->name);
        vmm__trace__record__free_unpacked(rec, NULL);
    }
    rt_trace_close(&r);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -EBADMSG;
    }
    snprintf(err, errlen, "%s: no actor %s in it; it has%s", path, name, n ? names : " none");
    return -ENOENT;
}
