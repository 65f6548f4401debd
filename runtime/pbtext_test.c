/* Messages as text, and where two differ: nested messages, lists, oneof
 * members, bytes as text or hex. */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/envelope.pb-c.h"
#include "runtime/pbtext.h"

static Vmm__Rt__InspectNode s_node(const char *name, const char *value)
{
    Vmm__Rt__InspectNode n = VMM__RT__INSPECT_NODE__INIT;
    n.name = (char *)name;
    n.value = (char *)value;
    return n;
}

Test(pbtext, shows_the_fields_that_are_set)
{
    Vmm__Rt__InspectNode a = s_node("a", "1"), b = s_node("b", ""), root = s_node("root", "");
    Vmm__Rt__InspectNode *children[] = {&a, &b};
    root.children = children;
    root.n_children = 2;
    char buf[256];
    rt_pb_text(&root.base, buf, sizeof buf);
    cr_expect_str_eq(buf, "{name: \"root\", children: [{name: \"a\", value: \"1\"}, "
                          "{name: \"b\"}]}");

    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    uint8_t bin[20] = {1, 2, 0xff};
    ping.payload = (ProtobufCBinaryData){sizeof bin, bin};
    rt_pb_text(&ping.base, buf, sizeof buf);
    cr_expect_str_eq(buf, "{payload: 0102ff00000000000000000000000000...(20 bytes)}");
    ping.payload = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
    rt_pb_text(&ping.base, buf, sizeof buf);
    cr_expect_str_eq(buf, "{payload: \"hello\"}");

    /* Cut short where it does not fit, and said so. */
    rt_pb_text(&root.base, buf, 16);
    cr_expect_eq(strlen(buf), 15);
    cr_expect_str_eq(buf + 12, "...");
}

Test(pbtext, finds_the_first_difference_and_its_path)
{
    Vmm__Rt__InspectNode a = s_node("a", "1"), b = s_node("b", "2"), x = s_node("root", "");
    Vmm__Rt__InspectNode a2 = s_node("a", "1"), b2 = s_node("b", "3"), y = s_node("root", "");
    Vmm__Rt__InspectNode *xs[] = {&a, &b}, *ys[] = {&a2, &b2};
    x.children = xs;
    x.n_children = 2;
    y.children = ys;
    y.n_children = 2;
    char path[64], want[64], have[64];
    cr_assert(rt_pb_diff(&x.base, &y.base, path, sizeof path, want, sizeof want, have,
                         sizeof have));
    cr_expect_str_eq(path, "children[1].value");
    cr_expect_str_eq(want, "\"2\"");
    cr_expect_str_eq(have, "\"3\"");

    y.n_children = 1;
    cr_assert(rt_pb_diff(&x.base, &y.base, path, sizeof path, want, sizeof want, have,
                         sizeof have));
    cr_expect_str_eq(path, "children");
    cr_expect_str_eq(want, "2 values");
    cr_expect_str_eq(have, "1 values");
    cr_expect_not(rt_pb_diff(&x.base, &x.base, path, sizeof path, want, sizeof want, have,
                             sizeof have));

    /* Another oneof member: the one expected, and what came instead. */
    Vmm__Envelope e = VMM__ENVELOPE__INIT, f = VMM__ENVELOPE__INIT;
    Vmm__Ack ack = VMM__ACK__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    e.body_case = VMM__ENVELOPE__BODY_ACK;
    e.ack = &ack;
    f.body_case = VMM__ENVELOPE__BODY_PING;
    f.ping = &ping;
    cr_assert(rt_pb_diff(&e.base, &f.base, path, sizeof path, want, sizeof want, have,
                         sizeof have));
    cr_expect_str_eq(path, "ack");
    cr_expect_str_eq(want, "{}");
    cr_expect_str_eq(have, "(not set)");

    /* Long bytes: shown from a little before the first difference. */
    Vmm__Rt__Ping p1 = VMM__RT__PING__INIT, p2 = VMM__RT__PING__INIT;
    char t1[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char t2[] = "0123456789abcdefghijklmNopqrstuvwxyz";
    p1.payload = (ProtobufCBinaryData){36, (uint8_t *)t1};
    p2.payload = (ProtobufCBinaryData){36, (uint8_t *)t2};
    char w[128], h[128];
    cr_assert(rt_pb_diff(&p1.base, &p2.base, path, sizeof path, w, sizeof w, h, sizeof h));
    cr_expect_str_eq(path, "payload");
    cr_expect_str_eq(w, "from byte 15: \"fghijklmnopqrstuvwxyz\"...(36 bytes)");
    cr_expect_str_eq(h, "from byte 15: \"fghijklmNopqrstuvwxyz\"...(36 bytes)");
}
