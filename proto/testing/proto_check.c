#include "proto/testing/proto_check.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* protobuf-c keeps no list of a message's oneofs: each member field carries
 * PROTOBUF_C_FIELD_FLAG_ONEOF and the offset of its oneof's case, shared by
 * all members. So a oneof is the first member field with a given offset. */
static bool s_starts_oneof(const ProtobufCMessageDescriptor *d, unsigned i)
{
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return false;
    for (unsigned j = 0; j < i; j++)
        if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            d->fields[j].quantifier_offset == f->quantifier_offset)
            return false;
    return true;
}

/* The case of the oneof that f belongs to: the number of the member that is
 * set, or 0 (..._NOT_SET). protobuf-c stores it as a uint32_t-sized enum. */
static uint32_t s_oneof_case(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    uint32_t c;
    memcpy(&c, (const char *)m + f->quantifier_offset, sizeof(c));
    return c;
}

ProtobufCMessage *proto_check_roundtrip(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    /* + 1: malloc(0) may return NULL, and an empty message is valid. */
    uint8_t *buf = malloc(len + 1);
    uint8_t *again = malloc(len + 1);
    cr_assert(buf && again);
    cr_assert_eq(protobuf_c_message_pack(m, buf), len);
    ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    cr_assert_not_null(out, "%s did not unpack", m->descriptor->name);
    cr_assert_eq(protobuf_c_message_get_packed_size(out), len);
    protobuf_c_message_pack(out, again);
    cr_assert_arr_eq(again, buf, len);
    free(buf);
    free(again);
    return out;
}

void proto_check_same_cases(const ProtobufCMessage *got, const ProtobufCMessage *want)
{
    const ProtobufCMessageDescriptor *d = want->descriptor;
    cr_assert_eq(got->descriptor, d, "%s where %s was expected", got->descriptor->name, d->name);
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (!s_starts_oneof(d, i))
            continue;
        cr_assert_eq(s_oneof_case(got, &d->fields[i]), s_oneof_case(want, &d->fields[i]),
                     "%s: the oneof holding %s has case %u, not %u", d->name, d->fields[i].name,
                     s_oneof_case(got, &d->fields[i]), s_oneof_case(want, &d->fields[i]));
    }
}

ProtobufCMessage *proto_check_roundtrip_cases(const ProtobufCMessage *m)
{
    ProtobufCMessage *out = proto_check_roundtrip(m);
    proto_check_same_cases(out, m);
    return out;
}

void proto_check_empty(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (s_starts_oneof(d, i))
            cr_expect_eq(s_oneof_case(m, &d->fields[i]), 0, "%s: the oneof holding %s is set (case %u)", d->name,
                         d->fields[i].name, s_oneof_case(m, &d->fields[i]));
    }
    cr_expect_eq(protobuf_c_message_get_packed_size(m), 0, "%s packs to bytes", d->name);
}

void proto_check_defaults_empty(const ProtobufCMessageDescriptor *const *descs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ProtobufCMessage *m = malloc(descs[i]->sizeof_message);
        cr_assert_not_null(m);
        protobuf_c_message_init(descs[i], m);
        proto_check_empty(m);
        free(m); /* initialised, not unpacked: it owns nothing */
    }
}

void proto_check_empty_decodes_unset(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, 0, (const uint8_t *)"");
    cr_assert_not_null(m, "%s: the empty buffer did not decode", desc->name);
    proto_check_empty(m);
    protobuf_c_message_free_unpacked(m, NULL);
}

void proto_check_prefixes_fail(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(m, buf), len);
    /* Counted rather than asserted one by one, so that a long message that
     * regresses reports one line, not hundreds; a decoded prefix is freed. */
    size_t decoded = 0, shortest = 0;
    for (size_t n = 1; n < len; n++) {
        ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
        if (out) {
            if (!decoded++)
                shortest = n;
            protobuf_c_message_free_unpacked(out, NULL);
        }
    }
    cr_expect_eq(decoded, 0, "%s: %zu of %zu prefixes decoded, the shortest of %zu bytes", m->descriptor->name,
                 decoded, len - 1, shortest);
    free(buf);
}

/* The union of the malformed encodings the protocol tests have checked. */
static const struct {
    const char *what;
    size_t len;
    uint8_t bytes[12];
} s_garbage[] = {
    {"overlong varint tag", 11, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
    {"field number 0", 2, {0x00, 0x00}},
    {"wire type 7", 2, {0x0f, 0x00}},
    {"group start", 2, {0x0b, 0x0c}},
    {"op as varint", 2, {0x08, 0x01}},
    {"length past end", 3, {0x0a, 0x7f, 0x00}},
    {"garbage inside op", 4, {0x0a, 0x02, 0xff, 0xff}},
};

void proto_check_garbage_fails(const ProtobufCMessageDescriptor *const *descs, size_t n)
{
    for (size_t i = 0; i < sizeof(s_garbage) / sizeof(s_garbage[0]); i++) {
        for (size_t k = 0; k < n; k++) {
            ProtobufCMessage *m = protobuf_c_message_unpack(descs[k], NULL, s_garbage[i].len, s_garbage[i].bytes);
            cr_expect_null(m, "%s decoded as %s", s_garbage[i].what, descs[k]->name);
            if (m)
                protobuf_c_message_free_unpacked(m, NULL);
        }
    }
}

void proto_check_mutations_safe(const ProtobufCMessage *m)
{
    static const uint8_t flips[] = {0x01, 0x07, 0x80, 0xff};
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    uint8_t *mut = malloc(len + 1);
    cr_assert(buf && mut);
    cr_assert_eq(protobuf_c_message_pack(m, buf), len);
    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(mut, buf, len);
            mut[i] ^= flips[f];
            ProtobufCMessage *got = protobuf_c_message_unpack(m->descriptor, NULL, len, mut);
            if (got) {
                protobuf_c_message_free_unpacked(proto_check_roundtrip(got), NULL);
                protobuf_c_message_free_unpacked(got, NULL);
            }
        }
    }
    free(buf);
    free(mut);
}
