/* Reading traces: runtime/trace.h. */
#include "runtime/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

#define S_PREFIX 4

struct rt_trace_reader_s {
    const uint8_t *map;
    size_t size;
    size_t at, last;
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

uint64_t rt_trace_offset(const rt_trace_reader_t *r)
{
    return r->last;
}

Vmm__Envelope *rt_trace_envelope(const Vmm__Trace__Message *m)
{
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
