/*
 * protobuf-c messages as text, for people: a trace's dump, a replay's
 * report of where two messages differ. Generic over descriptors, so that
 * every protocol of the project reads the same way. And packed whole, for
 * what keeps a message as bytes (a trace's recipes, a device's state).
 */
#ifndef VMM_RT_PBTEXT_H
#define VMM_RT_PBTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Writes the fields msg has set as "{name: value, sub: {...}, list: [a, b]}"
 * into buf (always terminated; cut short with "..." when it does not fit).
 * Scalars at their default are left out; bytes show their first 16 bytes
 * in hex and how many there are; enums their names; msg NULL is "{}".
 */
void rt_pb_text(const ProtobufCMessage *msg, char *buf, size_t size);

/*
 * Where expected and got, messages of one type (NULL: not there), first
 * differ, in field order: returns true with the field's path
 * ("write_io.value", "ranges[1].start") in path, and each side's value as
 * text ("(not set)" for a oneof member or message that is absent, "N
 * values" for lists of different lengths) in want and have. Returns false
 * when they are equal; unknown fields are not compared.
 */
bool rt_pb_diff(const ProtobufCMessage *expected, const ProtobufCMessage *got, char *path,
                size_t path_size, char *want, size_t want_size, char *have, size_t have_size);

/* Packs msg into out->data, malloc'ed and then the caller's. Returns 0 or
 * -ENOMEM. */
int rt_pb_pack(const ProtobufCMessage *msg, ProtobufCBinaryData *out);

#endif
