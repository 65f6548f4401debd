/*
 * Checks that every protocol's tests make, written once against protobuf-c's
 * generic API: they reach a message's fields through its descriptor, so one
 * copy serves Request, Reply and Event of every protocol. A test file keeps
 * only what is its own: which messages it builds and which values it expects.
 *
 * Failures are Criterion assertions in the calling test; proto_check_*
 * functions that return a message return it only once it passed.
 */
#ifndef VMM_PROTO_TESTING_PROTO_CHECK_H
#define VMM_PROTO_TESTING_PROTO_CHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Packs m, unpacks a copy and checks that the copy packs to the same bytes,
 * so that no field was lost or changed on the way. The caller frees the copy
 * with protobuf_c_message_free_unpacked. */
ProtobufCMessage *proto_check_roundtrip(const ProtobufCMessage *m);

/* Checks that got is the same kind of message as want and that each of its
 * oneofs holds the same member (the same case) as in want. */
void proto_check_same_cases(const ProtobufCMessage *got, const ProtobufCMessage *want);

/* proto_check_roundtrip, then proto_check_same_cases on the copy: a body
 * sent with one member of its oneof set must arrive with that member set. */
ProtobufCMessage *proto_check_roundtrip_cases(const ProtobufCMessage *m);

/* A Type (a Request, Reply or Event) whose oneof case_field is CASE and whose
 * member is val, round-tripped with proto_check_roundtrip_cases; evaluates to
 * the copy as a Type *. Each test file names its types once, in S_REQ etc. */
#define PROTO_CHECK_ONEOF(Type, desc, case_field, CASE, member, val)                                    \
    ((Type *)proto_check_roundtrip_cases(                                                               \
        &((Type){.base = PROTOBUF_C_MESSAGE_INIT(desc), .case_field = (CASE), .member = (val)}).base))

/* The number of elements of array a, e.g. of a table of descriptors. */
#define PROTO_CHECK_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* m has every oneof NOT_SET and packs to no bytes at all. */
void proto_check_empty(const ProtobufCMessage *m);

/* proto_check_empty on a message of each of the n kinds, as its generated
 * INIT makes it (protobuf_c_message_init copies that value). */
void proto_check_defaults_empty(const ProtobufCMessageDescriptor *const *descs, size_t n);

/* Zero bytes are a valid proto3 encoding (every field at its default): they
 * must decode as desc, with every oneof NOT_SET. */
void proto_check_empty_decodes_unset(const ProtobufCMessageDescriptor *desc);

/* Packs m and checks that no strict prefix of its bytes decodes: every one
 * cuts a field short. Meant for a message whose fields are all nested in one
 * length-delimited field, such as a Request with one op. */
void proto_check_prefixes_fail(const ProtobufCMessage *m);

/* Checks that none of a shared table of malformed encodings (bad tags, wire
 * types, lengths) decodes as any of the n kinds of message. */
void proto_check_garbage_fails(const ProtobufCMessageDescriptor *const *descs, size_t n);

/* Packs m, flips bits of each byte in turn and decodes the result as m's
 * kind: it must either fail or give a message that round-trips; never a
 * crash or a leak (which ASan catches). */
void proto_check_mutations_safe(const ProtobufCMessage *m);

#endif
