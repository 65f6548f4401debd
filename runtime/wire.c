/*
 * The envelope on the wire, fast. protobuf-c packs and unpacks by walking
 * every field of a descriptor, and the envelope's body oneof has a member
 * per body kind, so its generic code spends most of its time on members
 * that are not there. The envelope is small and fixed: this file encodes
 * its four routing fields by hand and hands only the body to protobuf-c.
 *
 * Each protocol's body (Request, Reply, Event) is itself one oneof and
 * nothing else, with a member per operation: it is encoded here too, and
 * protobuf-c packs only the member that is set.
 *
 * The bytes are exactly those vmm__envelope__pack() produces (fields in
 * number order, proto3 defaults left out; wire_test checks it). Decoding
 * takes the fast path only for canonical input and otherwise falls back to
 * protobuf-c, which stays the authority on what decodes (but for nesting
 * deeper than S_MAX_DEPTH, refused here first).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "runtime/rt_internal.h"

size_t rt_wire_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

uint8_t *rt_wire_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The body, whichever member of the oneof is set: every member is a
 * message pointer in the same union. */
static ProtobufCMessage *s_body(const Vmm__Envelope *env)
{
    ProtobufCMessage *body;
    memcpy(&body, &env->error, sizeof body);
    return env->body_case == VMM__ENVELOPE__BODY__NOT_SET ? NULL : body;
}

static size_t s_string_size(uint32_t field, size_t len)
{
    return len ? rt_wire_varint_size(field << 3 | 2) + rt_wire_varint_size(len) + len : 0;
}

static size_t s_varint_field_size(uint32_t field, uint64_t v)
{
    return v ? rt_wire_varint_size(field << 3) + rt_wire_varint_size(v) : 0;
}

/* Which body kinds are one oneof of messages and nothing else, by body
 * case: their member is found by its case, not by a walk of every field. */
#define S_BODIES 64
static bool s_oneof_body[S_BODIES];
static pthread_once_t s_bodies_once = PTHREAD_ONCE_INIT;

static void s_find_oneof_bodies(void)
{
    const ProtobufCMessageDescriptor *env = &vmm__envelope__descriptor;
    for (unsigned i = 0; i < env->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &env->fields[i];
        const ProtobufCMessageDescriptor *d = f->descriptor;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->id >= S_BODIES || !d->n_fields)
            continue;
        bool oneof = true;
        for (unsigned k = 0; k < d->n_fields && oneof; k++)
            oneof = (d->fields[k].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    d->fields[k].type == PROTOBUF_C_TYPE_MESSAGE &&
                    d->fields[k].quantifier_offset == d->fields[0].quantifier_offset &&
                    d->fields[k].offset == d->fields[0].offset;
        s_oneof_body[f->id] = oneof;
    }
}

/* A body of one oneof: its member and the member's field, or NULL when
 * none is set or the body is packed the generic way (unknown fields). */
static const ProtobufCMessage *s_member(const Vmm__Envelope *env, const ProtobufCMessage *body,
                                        const ProtobufCFieldDescriptor **field)
{
    if ((unsigned)env->body_case >= S_BODIES || !s_oneof_body[env->body_case] ||
        body->n_unknown_fields)
        return NULL;
    const ProtobufCMessageDescriptor *d = body->descriptor;
    uint32_t which = *(const uint32_t *)((const char *)body + d->fields[0].quantifier_offset);
    const ProtobufCMessage *member =
        *(const ProtobufCMessage *const *)((const char *)body + d->fields[0].offset);
    if (!which || !member)
        return NULL;
    *field = protobuf_c_message_descriptor_get_field(d, which);
    return *field ? member : NULL;
}

size_t rt_wire_measure(const Vmm__Envelope *env, rt_wire_size_t *sizes)
{
    sizes->whole = env->base.n_unknown_fields != 0; /* protobuf-c keeps those */
    if (sizes->whole)
        return vmm__envelope__get_packed_size(env);
    sizes->sender = env->sender ? strlen(env->sender) : 0;
    sizes->receiver = env->receiver ? strlen(env->receiver) : 0;
    size_t n = s_string_size(1, sizes->sender) + s_string_size(2, sizes->receiver) +
               s_varint_field_size(3, env->request_id) + s_varint_field_size(4, env->reply_to);
    ProtobufCMessage *body = s_body(env);
    sizes->body = 0;
    sizes->member = 0;
    if (body) {
        pthread_once(&s_bodies_once, s_find_oneof_bodies);
        const ProtobufCFieldDescriptor *field;
        const ProtobufCMessage *member = s_member(env, body, &field);
        if (member) {
            sizes->member = protobuf_c_message_get_packed_size(member);
            sizes->body = rt_wire_varint_size(field->id << 3 | 2) +
                          rt_wire_varint_size(sizes->member) + sizes->member;
        } else {
            sizes->body = protobuf_c_message_get_packed_size(body);
        }
        n += rt_wire_varint_size((uint32_t)env->body_case << 3 | 2) +
             rt_wire_varint_size(sizes->body) + sizes->body;
    }
    return n;
}

static uint8_t *s_put_string(uint8_t *p, uint32_t field, const char *s, size_t len)
{
    if (!len)
        return p;
    p = rt_wire_put_varint(p, field << 3 | 2);
    p = rt_wire_put_varint(p, len);
    memcpy(p, s, len);
    return p + len;
}

static uint8_t *s_put_varint_field(uint8_t *p, uint32_t field, uint64_t v)
{
    return v ? rt_wire_put_varint(rt_wire_put_varint(p, field << 3), v) : p;
}

void rt_wire_pack(const Vmm__Envelope *env, const rt_wire_size_t *sizes, uint8_t *out)
{
    if (sizes->whole) {
        vmm__envelope__pack(env, out);
        return;
    }
    uint8_t *p = s_put_string(out, 1, env->sender, sizes->sender);
    p = s_put_string(p, 2, env->receiver, sizes->receiver);
    p = s_put_varint_field(p, 3, env->request_id);
    p = s_put_varint_field(p, 4, env->reply_to);
    ProtobufCMessage *body = s_body(env);
    if (!body)
        return;
    p = rt_wire_put_varint(p, (uint32_t)env->body_case << 3 | 2);
    p = rt_wire_put_varint(p, sizes->body);
    const ProtobufCFieldDescriptor *field;
    const ProtobufCMessage *member = s_member(env, body, &field);
    if (!member) {
        protobuf_c_message_pack(body, p);
        return;
    }
    p = rt_wire_put_varint(p, field->id << 3 | 2);
    p = rt_wire_put_varint(p, sizes->member);
    protobuf_c_message_pack(member, p);
}

/* ---- Decoding ------------------------------------------------------------- */

int rt_wire_get_varint_long(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* A field's key, as protobuf-c reads one: 5 bytes at most. A longer
 * encoding (of a small number, padded with 0x80s), which protobuf-c
 * refuses, fails here too. */
static int s_get_key(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *start = *p;
    return rt_wire_get_varint(p, end, out) || *p - start > 5 ? -1 : 0;
}

/* A length prefix, as protobuf-c reads one: 5 bytes at most, at most
 * INT_MAX, and within what is left. */
static int s_get_len(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *start = *p;
    return rt_wire_get_varint(p, end, out) || *p - start > 5 || *out > INT_MAX ||
                   *out > (uint64_t)(end - *p)
               ? -1
               : 0;
}

/* Copies a name into the arena as protobuf-c does: the bytes as they are
 * (it checks no UTF-8), NUL-terminated. */
static char *s_get_name(ProtobufCAllocator *alloc, const uint8_t *s, size_t len)
{
    char *copy = alloc->alloc(alloc->allocator_data, len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = 0;
    }
    return copy;
}

/* The deepest nesting of messages accepted (see s_depth_ok()). */
#define S_MAX_DEPTH 32

/*
 * protobuf-c decodes nested messages by recursion, with no limit, and
 * InspectNode nests itself: a few hundred KiB of nested headers would
 * overflow the stack. So before protobuf-c sees bytes, this walks the
 * message fields (and only those) to a bounded depth.
 */
static bool s_depth_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                       int depth)
{
    if (depth > S_MAX_DEPTH)
        return false;
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, v;
        if (s_get_key(&p, end, &key))
            return true; /* malformed: protobuf-c refuses it */
        switch (key & 7) {
        case 0:
            if (rt_wire_get_varint(&p, end, &v))
                return true;
            break;
        case 1:
            p += (end - p) < 8 ? (end - p) : 8;
            break;
        case 5:
            p += (end - p) < 4 ? (end - p) : 4;
            break;
        case 2: {
            if (s_get_len(&p, end, &v))
                return true;
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !s_depth_ok(fd->descriptor, p, (size_t)v, depth + 1))
                return false;
            p += v;
            break;
        }
        default:
            return true;
        }
    }
    return true;
}

/*
 * A lean decoder for bodies, walking the descriptor as protobuf-c does but
 * without its general machinery (scan tables, sorting, merging): fields in
 * ascending order, each once, of scalar, string, bytes or message type.
 * Anything else (repeated fields, unknown fields, a second member of a
 * oneof, wire types that do not match) returns 1, and protobuf-c decodes
 * the whole body instead.
 */
static int s_lean_message(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
                          const uint8_t *p, size_t len, int depth, ProtobufCMessage **out);

static int s_lean_field(const ProtobufCFieldDescriptor *f, ProtobufCAllocator *alloc,
                        uint32_t type, const uint8_t **pp, const uint8_t *end, int depth,
                        void *member)
{
    const uint8_t *p = *pp;
    uint64_t v;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_BOOL:
        if (type != 0 || rt_wire_get_varint(&p, end, &v))
            return 1;
        if (f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_ENUM ||
            f->type == PROTOBUF_C_TYPE_UINT32)
            *(uint32_t *)member = (uint32_t)v;
        else if (f->type == PROTOBUF_C_TYPE_SINT32)
            *(int32_t *)member = (int32_t)(((uint32_t)v >> 1) ^ -((uint32_t)v & 1));
        else if (f->type == PROTOBUF_C_TYPE_SINT64)
            *(int64_t *)member = (int64_t)((v >> 1) ^ -(v & 1));
        else if (f->type == PROTOBUF_C_TYPE_BOOL)
            *(protobuf_c_boolean *)member = v != 0;
        else
            *(uint64_t *)member = v;
        break;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        if (type != 5 || end - p < 4)
            return 1;
        memcpy(member, p, 4);
        p += 4;
        break;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (type != 1 || end - p < 8)
            return 1;
        memcpy(member, p, 8);
        p += 8;
        break;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (type != 2 || s_get_len(&p, end, &v))
            return 1;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            int rc = s_lean_message(f->descriptor, alloc, p, (size_t)v, depth + 1, member);
            if (rc)
                return rc;
        } else {
            uint8_t *copy = alloc->alloc(alloc->allocator_data, (size_t)v + 1);
            if (!copy)
                return -ENOMEM;
            memcpy(copy, p, (size_t)v);
            copy[v] = 0;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                *(char **)member = (char *)copy;
            } else {
                ProtobufCBinaryData *bd = member;
                bd->len = (size_t)v;
                bd->data = v ? copy : NULL;
            }
        }
        p += v;
        break;
    }
    default:
        return 1;
    }
    *pp = p;
    return 0;
}

static int s_lean_message(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
                          const uint8_t *p, size_t len, int depth, ProtobufCMessage **out)
{
    if (depth > S_MAX_DEPTH)
        return -EBADMSG;
    ProtobufCMessage *msg = alloc->alloc(alloc->allocator_data, desc->sizeof_message);
    if (!msg)
        return -ENOMEM;
    desc->message_init(msg);
    const uint8_t *end = p + len;
    unsigned i = 0;
    while (p < end) {
        uint64_t key;
        if (s_get_key(&p, end, &key))
            return 1;
        uint32_t id = (uint32_t)(key >> 3);
        while (i < desc->n_fields && desc->fields[i].id < id)
            i++; /* fields are sorted by number, and canonical input too */
        if (i == desc->n_fields || desc->fields[i].id != id)
            return 1;
        const ProtobufCFieldDescriptor *f = &desc->fields[i++];
        if (f->label == PROTOBUF_C_LABEL_REPEATED || f->label == PROTOBUF_C_LABEL_REQUIRED)
            return 1;
        uint32_t *quantifier = (uint32_t *)((char *)msg + f->quantifier_offset);
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *quantifier)
            return 1; /* a second member of one oneof */
        int rc = s_lean_field(f, alloc, key & 7, &p, end, depth, (char *)msg + f->offset);
        if (rc)
            return rc;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *quantifier = id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                 f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)quantifier = 1;
    }
    *out = msg;
    return 0;
}

/* Returns 0 on success, 1 when the input is not canonical (use the
 * fallback), or -EBADMSG when it does not decode. */
static int s_fast_unpack(ProtobufCAllocator *alloc, const uint8_t *bytes, size_t len,
                         Vmm__Envelope **out)
{
    Vmm__Envelope *env = alloc->alloc(alloc->allocator_data, sizeof *env);
    if (!env)
        return -ENOMEM;
    *env = (Vmm__Envelope)VMM__ENVELOPE__INIT;
    const uint8_t *p = bytes, *end = bytes + len;
    uint32_t last = 0; /* canonical order: each field once, ascending */
    while (p < end) {
        uint64_t key, v;
        if (s_get_key(&p, end, &key))
            return 1;
        uint32_t field = (uint32_t)(key >> 3), type = key & 7;
        if (field <= last)
            return 1;
        last = field;
        if (field == 3 || field == 4) {
            if (type != 0 || rt_wire_get_varint(&p, end, &v))
                return 1;
            *(field == 3 ? &env->request_id : &env->reply_to) = v;
            continue;
        }
        if (type != 2 || s_get_len(&p, end, &v))
            return 1;
        if (field == 1 || field == 2) {
            char *name = s_get_name(alloc, p, v);
            if (!name)
                return -ENOMEM;
            *(field == 1 ? &env->sender : &env->receiver) = name;
        } else {
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(&vmm__envelope__descriptor, field);
            if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE)
                return 1; /* unknown fields are the fallback's to keep */
            ProtobufCMessage *body = NULL;
            int rc = s_lean_message(fd->descriptor, alloc, p, (size_t)v, 1, &body);
            if (rc < 0)
                return rc;
            if (rc) {
                if (v > 2 * S_MAX_DEPTH && !s_depth_ok(fd->descriptor, p, v, 1))
                    return -EBADMSG; /* (each level takes 2 bytes at least) */
                body = protobuf_c_message_unpack(fd->descriptor, alloc, v, p);
                if (!body)
                    return -EBADMSG;
            }
            env->body_case = (Vmm__Envelope__BodyCase)field;
            memcpy(&env->error, &body, sizeof body);
        }
        p += v;
    }
    *out = env;
    return 0;
}

int rt_wire_unpack(ProtobufCAllocator *alloc, const uint8_t *bytes, size_t len,
                   Vmm__Envelope **out)
{
    if (!bytes) /* no bytes at all (a trace record's empty envelope): as "" */
        bytes = (const uint8_t *)"";
    int rc = s_fast_unpack(alloc, bytes, len, out);
    if (rc <= 0)
        return rc;
    /* What the fast path left behind stays in the arena until release. */
    if (!s_depth_ok(&vmm__envelope__descriptor, bytes, len, 0))
        return -EBADMSG;
    *out = vmm__envelope__unpack(alloc, len, bytes);
    return *out ? 0 : -EBADMSG;
}

bool rt_wire_depth_ok(const uint8_t *bytes, size_t len)
{
    /* (protobuf-c leaves an empty bytes field's data NULL) */
    return !len || s_depth_ok(&vmm__envelope__descriptor, bytes, len, 0);
}

/* ---- Peeking ---------------------------------------------------------------- */

static uint64_t s_peek_varint_field(const uint8_t *bytes, size_t len, uint64_t field)
{
    const uint8_t *p = bytes, *end = bytes + len;
    while (p < end) {
        uint64_t key, v;
        if (rt_wire_get_varint(&p, end, &key))
            return 0;
        switch (key & 7) {
        case 0: /* varint */
            if (rt_wire_get_varint(&p, end, &v))
                return 0;
            if (key >> 3 == field)
                return v;
            break;
        case 1: /* 64-bit */
            if (end - p < 8)
                return 0;
            p += 8;
            break;
        case 2: /* length-delimited */
            if (rt_wire_get_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return 0;
            p += v;
            break;
        case 5: /* 32-bit */
            if (end - p < 4)
                return 0;
            p += 4;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

uint64_t rt_peek_request_id(const uint8_t *bytes, size_t len)
{
    return s_peek_varint_field(bytes, len, 3);
}

uint64_t rt_peek_body(const uint8_t *bytes, size_t len)
{
    const uint8_t *p = bytes, *end = bytes + len;
    while (p < end) {
        uint64_t key, v;
        if (rt_wire_get_varint(&p, end, &key))
            return 0;
        if ((key & 7) == 2 && key >> 3 >= 10)
            return key >> 3;
        switch (key & 7) {
        case 0:
            if (rt_wire_get_varint(&p, end, &v))
                return 0;
            break;
        case 2:
            if (rt_wire_get_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return 0;
            p += v;
            break;
        default:
            return 0; /* the envelope has no other wire types */
        }
    }
    return 0;
}

uint64_t rt_peek_reply_to(const uint8_t *bytes, size_t len)
{
    return s_peek_varint_field(bytes, len, 4);
}
