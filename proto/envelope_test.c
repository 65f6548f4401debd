#include <criterion/criterion.h>
#include <string.h>

#include "proto/envelope.pb-c.h"

Test(envelope, defaults_are_empty)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    cr_expect_eq(env.request_id, 0);
    cr_expect_eq(env.reply_to, 0);
    cr_expect_eq(env.body_case, VMM__ENVELOPE__BODY__NOT_SET);
    cr_expect_str_empty(env.sender);
    cr_expect_eq(vmm__envelope__get_packed_size(&env), 0);
}
