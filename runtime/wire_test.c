/* The fast envelope encoding is byte for byte protobuf-c's, and decodes
 * whatever protobuf-c decodes to the same envelope. */
#include <criterion/criterion.h>
#include <string.h>

#include "runtime/rt_internal.h"

/* Packs env both ways and checks the bytes agree; returns the length. */
static size_t s_pack_both(const Vmm__Envelope *env, uint8_t *out)
{
    uint8_t theirs[1024];
    rt_wire_size_t sizes;
    size_t len = rt_wire_measure(env, &sizes);
    cr_assert_eq(len, vmm__envelope__get_packed_size(env));
    cr_assert_leq(len, sizeof theirs);
    rt_wire_pack(env, &sizes, out);
    vmm__envelope__pack(env, theirs);
    cr_assert_arr_eq(out, theirs, len);
    return len;
}

/* Decodes bytes both ways and checks the envelopes pack to the same bytes. */
static void s_unpack_both(const uint8_t *bytes, size_t len)
{
    rt_msg_t msg;
    int rc = rt_msg_unpack(&msg, bytes, len);
    Vmm__Envelope *theirs = vmm__envelope__unpack(NULL, len, bytes);
    cr_assert_eq(rc == 0, theirs != NULL, "fast %d, protobuf-c %p", rc, (void *)theirs);
    if (!theirs)
        return;
    cr_expect_str_eq(msg.env->sender, theirs->sender);
    cr_expect_str_eq(msg.env->receiver, theirs->receiver);
    cr_expect_eq(msg.env->request_id, theirs->request_id);
    cr_expect_eq(msg.env->reply_to, theirs->reply_to);
    cr_expect_eq(msg.env->body_case, theirs->body_case);
    uint8_t a[1024], b[1024];
    size_t la = vmm__envelope__pack(msg.env, a), lb = vmm__envelope__pack(theirs, b);
    cr_expect_eq(la, lb);
    cr_expect_arr_eq(a, b, la);
    vmm__envelope__free_unpacked(theirs, NULL);
    rt_msg_release(&msg);
}

Test(wire, same_bytes_as_protobuf_c_for_every_shape)
{
    uint8_t out[1024];
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    s_pack_both(&env, out); /* empty */

    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    s_pack_both(&env, out); /* an empty body is still present */

    ping.payload.data = (uint8_t *)"hello";
    ping.payload.len = 5;
    env.sender = "vm0/vp/3";
    env.receiver = "vm0/dev/com1";
    env.request_id = 1ull << 40;
    s_unpack_both(out, s_pack_both(&env, out));

    Vmm__Error err = VMM__ERROR__INIT;
    err.code = VMM__ERROR_CODE__BUSY;
    err.text = "queue full";
    env.request_id = 0;
    env.reply_to = 127;
    env.body_case = VMM__ENVELOPE__BODY_ERROR;
    env.error = &err;
    s_unpack_both(out, s_pack_both(&env, out));

    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    env.reply_to = 128; /* a two-byte varint */
    s_unpack_both(out, s_pack_both(&env, out));
}

Test(wire, non_canonical_input_decodes_as_protobuf_c_decodes_it)
{
    /* request_id twice (the last wins), fields out of order, an unknown
     * field, a non-ASCII name, a NUL in a name, truncation, two bodies. */
    const uint8_t dup_id[] = {0x18, 0x05, 0x18, 0x07, 0x6a, 0x00};
    const uint8_t reordered[] = {0x6a, 0x00, 0x12, 0x01, 'b', 0x0a, 0x01, 'a'};
    const uint8_t unknown[] = {0x0a, 0x01, 'a', 0x9a, 0x06, 0x01, 0x00};
    const uint8_t utf8[] = {0x0a, 0x02, 0xc3, 0xa9, 0x6a, 0x00};
    const uint8_t nul[] = {0x0a, 0x02, 'a', 0x00, 0x6a, 0x00};
    const uint8_t truncated[] = {0x0a, 0x05, 'a'};
    const uint8_t two_bodies[] = {0x6a, 0x02, 0x0a, 0x01, 0x72, 0x00};
    const uint8_t bad_body[] = {0x6a, 0x02, 0x0a, 0x05};
    s_unpack_both(dup_id, sizeof dup_id);
    s_unpack_both(reordered, sizeof reordered);
    s_unpack_both(unknown, sizeof unknown);
    s_unpack_both(utf8, sizeof utf8);
    s_unpack_both(nul, sizeof nul);
    s_unpack_both(truncated, sizeof truncated);
    s_unpack_both(two_bodies, sizeof two_bodies);
    s_unpack_both(bad_body, sizeof bad_body);
}

Test(wire, unknown_fields_survive_for_the_unknown_kind_check)
{
    const uint8_t unknown[] = {0x18, 0x09, 0x9a, 0x06, 0x01, 0x00};
    rt_msg_t msg;
    cr_assert_eq(rt_msg_unpack(&msg, unknown, sizeof unknown), 0);
    cr_expect_eq(msg.env->request_id, 9);
    cr_expect_eq(msg.env->body_case, VMM__ENVELOPE__BODY__NOT_SET);
    cr_assert_eq(msg.env->base.n_unknown_fields, 1);
    cr_expect_eq(msg.env->base.unknown_fields[0].tag, 99);
    rt_msg_release(&msg);
}
