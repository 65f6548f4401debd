#include <criterion/criterion.h>

#include "proto/envelope.pb-c.h"
#include "proto/testing/proto_check.h"

Test(envelope, defaults_are_empty)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    cr_expect_eq(env.request_id, 0);
    cr_expect_eq(env.reply_to, 0);
    cr_expect_str_empty(env.sender);
    /* body_case NOT_SET, and no bytes on the wire. */
    proto_check_empty(&env.base);
}
