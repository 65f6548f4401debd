/* protobuf-c messages as text: runtime/pbtext.h. */
#include "runtime/pbtext.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes fields show this many bytes in hex, or characters of text, then
 * how many there are. */
#define S_SHOWN_BYTES 16
#define S_SHOWN_TEXT 48
/* Lists show this many values. */
#define S_SHOWN_VALUES 8
/* Messages nested deeper than this show as {...}. */
#define S_MAX_DEPTH 6

/* Text appended to a fixed buffer; what does not fit is dropped and the
 * end marked "...". */
typedef struct {
    char *p;
    size_t size, len;
} s_out_t;

static void s_put(s_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_put(s_out_t *o, const char *fmt, ...)
{
    if (!o->size || o->len + 1 >= o->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < o->size - o->len) {
        o->len += (size_t)n;
        return;
    }
    o->len = o->size - 1;
    if (o->size > 4)
        memcpy(o->p + o->size - 4, "...", 4);
}

/* The size of one value of a field's type, as protobuf-c stores it. */
static size_t s_type_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static void s_text(s_out_t *o, const ProtobufCMessage *msg, int depth);

/* Bytes from byte `from` on: as text in quotes when they all print, else
 * in hex; how many there are when not all are shown. */
static void s_bytes(s_out_t *o, const ProtobufCBinaryData *b, size_t from)
{
    bool text = b->len > 0;
    for (size_t i = 0; i < b->len && text; i++)
        text = b->data[i] >= 0x20 && b->data[i] < 0x7f && b->data[i] != '"';
    size_t shown = text ? S_SHOWN_TEXT : S_SHOWN_BYTES;
    if (from)
        s_put(o, "from byte %zu: ", from);
    if (text)
        s_put(o, "\"%.*s\"", (int)(b->len - from < shown ? b->len - from : shown),
              (const char *)b->data + from);
    for (size_t i = from; !text && i < b->len && i < from + shown; i++)
        s_put(o, "%02x", b->data[i]);
    if (b->len - from > shown || from)
        s_put(o, "...(%zu bytes)", b->len);
    else if (!b->len)
        s_put(o, "''");
}

static void s_value(s_out_t *o, const ProtobufCFieldDescriptor *fd, const void *p, int depth)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_BOOL:
        s_put(o, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        s_put(o, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        s_put(o, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        s_put(o, v > 0xffff ? "0x%" PRIx64 : "%" PRIu64, v);
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        s_put(o, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        s_put(o, "%g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        s_put(o, "%g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(fd->descriptor, *(const int *)p);
        if (v)
            s_put(o, "%s", v->name);
        else
            s_put(o, "%d", *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        s_put(o, "\"%s\"", s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        s_bytes(o, p, 0);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        s_text(o, *(const ProtobufCMessage *const *)p, depth + 1);
        break;
    }
}

/* Whether a field of msg is there to show: a oneof member that is set, a
 * list with values, anything else not at its default. */
static bool s_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    const char *base = (const char *)msg;
    const void *p = base + fd->offset;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + fd->quantifier_offset) != 0;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(const void *const *)p != NULL;
    if (fd->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(const char *const *)p;
        return s && *s;
    }
    if (fd->type == PROTOBUF_C_TYPE_BYTES)
        return ((const ProtobufCBinaryData *)p)->len != 0;
    static const uint64_t zero = 0;
    return memcmp(p, &zero, s_type_size(fd->type)) != 0;
}

static void s_field(s_out_t *o, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd,
                    int depth)
{
    const char *base = (const char *)msg;
    if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
        s_value(o, fd, base + fd->offset, depth);
        return;
    }
    size_t n = *(const size_t *)(base + fd->quantifier_offset);
    size_t size = s_type_size(fd->type);
    const char *array = *(const char *const *)(base + fd->offset);
    s_put(o, "[");
    for (size_t k = 0; k < n && k < S_SHOWN_VALUES; k++) {
        s_put(o, "%s", k ? ", " : "");
        s_value(o, fd, array + k * size, depth);
    }
    s_put(o, n > S_SHOWN_VALUES ? ", ...(%zu values)]" : "]", n);
}

static void s_text(s_out_t *o, const ProtobufCMessage *msg, int depth)
{
    if (!msg) {
        s_put(o, "{}");
        return;
    }
    if (depth > S_MAX_DEPTH) {
        s_put(o, "{...}");
        return;
    }
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    bool first = true;
    s_put(o, "{");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (!s_present(msg, fd))
            continue;
        s_put(o, "%s%s: ", first ? "" : ", ", fd->name);
        first = false;
        s_field(o, msg, fd, depth);
    }
    s_put(o, "}");
}

void rt_pb_text(const ProtobufCMessage *msg, char *buf, size_t size)
{
    s_out_t o = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    s_text(&o, msg, 0);
}

/* ---- Differences ----------------------------------------------------------- */

typedef struct {
    s_out_t path, want, have;
} s_diff_t;

static bool s_diff(s_diff_t *d, const ProtobufCMessage *a, const ProtobufCMessage *b);

/* Whether one value (of fd's type, at pa and pb) differs; a message is
 * compared field by field, its path extended. */
static bool s_value_differs(s_diff_t *d, const ProtobufCFieldDescriptor *fd, const void *pa,
                            const void *pb)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *x = *(const char *const *)pa, *y = *(const char *const *)pb;
        return strcmp(x ? x : "", y ? y : "") != 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = pa, *y = pb;
        return x->len != y->len || (x->len && memcmp(x->data, y->data, x->len));
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *x = *(const ProtobufCMessage *const *)pa;
        const ProtobufCMessage *y = *(const ProtobufCMessage *const *)pb;
        if (!x || !y)
            return x != y;
        size_t at = d->path.len;
        s_put(&d->path, ".");
        if (s_diff(d, x, y))
            return true;
        d->path.len = at;
        d->path.p[at] = '\0';
        return false;
    }
    default:
        return memcmp(pa, pb, s_type_size(fd->type)) != 0;
    }
}

/* Where two bytes values differ first, shown from a little before. */
static size_t s_bytes_from(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    size_t k = 0;
    while (k < a->len && k < b->len && a->data[k] == b->data[k])
        k++;
    return k > 8 ? k - 8 : 0;
}

/* Says what one side holds at a field found to differ (other: the other
 * side's value, for bytes). */
static void s_side(s_out_t *o, const ProtobufCFieldDescriptor *fd, const void *p, bool there,
                   const void *other)
{
    if (!there) {
        s_put(o, "(not set)");
        return;
    }
    if (fd->type == PROTOBUF_C_TYPE_BYTES && other) {
        const ProtobufCBinaryData *b = p;
        size_t from = s_bytes_from(b, other);
        s_bytes(o, b, from <= b->len ? from : 0);
        return;
    }
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !*(const void *const *)p) {
        s_put(o, "(not set)");
        return;
    }
    s_value(o, fd, p, 0);
}

static bool s_diff(s_diff_t *d, const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    const ProtobufCMessageDescriptor *desc = a->descriptor;
    const char *ba = (const char *)a, *bb = (const char *)b;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[i];
        const void *pa = ba + fd->offset, *pb = bb + fd->offset;
        size_t at = d->path.len;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = *(const size_t *)(ba + fd->quantifier_offset);
            size_t nb = *(const size_t *)(bb + fd->quantifier_offset);
            const char *xa = *(const char *const *)pa, *xb = *(const char *const *)pb;
            size_t size = s_type_size(fd->type);
            for (size_t k = 0; k < na && k < nb; k++) {
                s_put(&d->path, "%s[%zu]", fd->name, k);
                bool nested = fd->type == PROTOBUF_C_TYPE_MESSAGE;
                if (s_value_differs(d, fd, xa + k * size, xb + k * size)) {
                    if (!nested || d->want.len == 0) {
                        s_side(&d->want, fd, xa + k * size, true, xb + k * size);
                        s_side(&d->have, fd, xb + k * size, true, xa + k * size);
                    }
                    return true;
                }
                d->path.len = at;
                d->path.p[at] = '\0';
            }
            if (na != nb) {
                s_put(&d->path, "%s", fd->name);
                s_put(&d->want, "%zu values", na);
                s_put(&d->have, "%zu values", nb);
                return true;
            }
            continue;
        }
        bool oneof = fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
        bool sa = !oneof || *(const uint32_t *)(ba + fd->quantifier_offset) == fd->id;
        bool sb = !oneof || *(const uint32_t *)(bb + fd->quantifier_offset) == fd->id;
        if (!sa && !sb)
            continue;
        s_put(&d->path, "%s", fd->name);
        bool nested = fd->type == PROTOBUF_C_TYPE_MESSAGE;
        if (sa != sb || s_value_differs(d, fd, pa, pb)) {
            /* A nested difference has said its own values already. */
            if (!nested || d->want.len == 0) {
                s_side(&d->want, fd, pa, sa, sb ? pb : NULL);
                s_side(&d->have, fd, pb, sb, sa ? pa : NULL);
            }
            return true;
        }
        d->path.len = at;
        d->path.p[at] = '\0';
    }
    return false;
}

bool rt_pb_diff(const ProtobufCMessage *expected, const ProtobufCMessage *got, char *path,
                size_t path_size, char *want, size_t want_size, char *have, size_t have_size)
{
    s_diff_t d = {{path, path_size, 0}, {want, want_size, 0}, {have, have_size, 0}};
    if (path_size)
        path[0] = '\0';
    if (want_size)
        want[0] = '\0';
    if (have_size)
        have[0] = '\0';
    if (!expected || !got) {
        if (expected == got)
            return false;
        s_put(&d.want, "%s", expected ? "(a message)" : "(not set)");
        s_put(&d.have, "%s", got ? "(a message)" : "(not set)");
        return true;
    }
    if (expected->descriptor != got->descriptor) {
        s_put(&d.want, "a %s", expected->descriptor->name);
        s_put(&d.have, "a %s", got->descriptor->name);
        return true;
    }
    return s_diff(&d, expected, got);
}

int rt_pb_pack(const ProtobufCMessage *msg, ProtobufCBinaryData *out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    out->data = malloc(len ? len : 1);
    if (!out->data)
        return -ENOMEM;
    out->len = protobuf_c_message_pack(msg, out->data);
    return 0;
}
