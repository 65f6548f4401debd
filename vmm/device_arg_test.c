/* The --device syntax of `vmm run` and `vmm devhost`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/device_arg.h"

Test(device_arg, kinds_hosts_and_required)
{
    device_arg_t d;
    char err[128], text[64];
    cr_assert_eq(device_arg_parse("serial", true, &d, err, sizeof err), 0, "%s", err);
    cr_expect_eq(d.kind, DEVICE_ARG_SERIAL);
    cr_expect_eq(d.host, DEVICE_ARG_IN_VM);
    cr_expect_not(d.required);
    cr_expect_str_eq(device_arg_name(d.kind), "com1");
    cr_expect_str_eq(device_arg_actor(d.kind), "vm0/dev/com1");

    cr_assert_eq(device_arg_parse("testdev,host=tcp,required", true, &d, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(d.kind, DEVICE_ARG_TESTDEV);
    cr_expect_eq(d.host, DEVICE_ARG_TCP);
    cr_expect(d.required);
    device_arg_format(&d, text, sizeof text);
    cr_expect_str_eq(text, "testdev,required");

    cr_assert_eq(device_arg_parse("serial,required,host=remote", true, &d, err, sizeof err), 0);
    cr_expect_eq(d.host, DEVICE_ARG_REMOTE);
    cr_assert_eq(device_arg_parse("serial,host=ipc", true, &d, err, sizeof err), 0);
    cr_expect_eq(d.host, DEVICE_ARG_IPC);
    cr_expect_eq(device_arg_parse("serial,required", true, &d, err, sizeof err), -EINVAL,
                 "required needs a device host");
    cr_assert_eq(device_arg_parse("serial,required", false, &d, err, sizeof err), 0,
                 "in a device host itself");
    cr_expect(d.required);
}

Test(device_arg, anything_else_is_refused_with_the_reason)
{
    static const char *const bad[] = {
        "",           "uart",          "serial,",         "serial,host=",
        "serial,host=udp", "serial,host=ipc,host=tcp", "serial,required,required",
        "serial,fast", "serialx",      "serial,host=ipcx",
    };
    device_arg_t d;
    char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        cr_expect_eq(device_arg_parse(bad[i], true, &d, err, sizeof err), -EINVAL, "%s", bad[i]);
        cr_expect_neq(err[0], 0, "no reason for %s", bad[i]);
    }
    cr_expect_eq(device_arg_parse("serial,host=ipc", false, &d, err, sizeof err), -EINVAL,
                 "a device host takes no host=");
}
