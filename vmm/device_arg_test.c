/* The --device syntax of `vmm run` and `vmm devhost`, and how virtio
 * devices are named and placed. */
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
    cr_assert_eq(device_arg_place(&d, 1, err, sizeof err), 0);
    cr_expect_str_eq(d.name, "com1");
    cr_expect_str_eq(d.actor, "vm0/dev/com1");

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

Test(device_arg, virtio_devices_are_named_and_placed_in_order)
{
    static const char *const args[] = {
        "virtio-blk,file=/a.img,readonly,host=ipc",
        "virtio-rng",
        "virtio-blk,file=/b.img",
        "virtio-console,file=out.txt,name=con,irq=20",
    };
    device_arg_t d[4];
    char err[128], text[256];
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(device_arg_parse(args[i], true, &d[i], err, sizeof err), 0, "%s: %s",
                     args[i], err);
    cr_assert_eq(device_arg_place(d, 4, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(d[0].name, "virtio-blk0");
    cr_expect_str_eq(d[0].actor, "vm0/dev/virtio-blk0");
    cr_expect_eq(d[0].base, 0xd0000000ull);
    cr_expect_eq(d[0].irq, 5);
    cr_expect_str_eq(d[1].name, "virtio-rng0");
    cr_expect_eq(d[1].base, 0xd0001000ull);
    cr_expect_eq(d[1].irq, 6);
    cr_expect_str_eq(d[2].name, "virtio-blk1");
    cr_expect_eq(d[2].base, 0xd0002000ull);
    cr_expect_eq(d[2].irq, 7);
    cr_expect_str_eq(d[3].name, "con");
    cr_expect_eq(d[3].base, 0xd0003000ull);
    cr_expect_eq(d[3].irq, 20, "as given");
    cr_expect_str_eq(d[3].file, "out.txt");

    device_arg_format(&d[0], text, sizeof text);
    cr_expect_str_eq(text, "virtio-blk,name=virtio-blk0,base=0xd0000000,irq=5,file=/a.img,"
                           "readonly");
    device_arg_model_args(&d[0], text, sizeof text);
    cr_expect_str_eq(text, "name=virtio-blk0,base=0xd0000000,irq=5,file=/a.img,readonly");
    device_arg_model_args(&d[3], text, sizeof text);
    cr_expect_str_eq(text, "name=con,base=0xd0003000,irq=20", "the console's file is not "
                                                               "the model's");
    device_arg_linux(&d[1], text, sizeof text);
    cr_expect_str_eq(text, "virtio_mmio.device=4K@0xd0001000:6");

    /* What a device host is given parses back to the same device. */
    device_arg_t again;
    device_arg_format(&d[2], text, sizeof text);
    cr_assert_eq(device_arg_parse(text, false, &again, err, sizeof err), 0, "%s", err);
    cr_assert_eq(device_arg_place(&again, 1, err, sizeof err), 0);
    cr_expect_str_eq(again.name, "virtio-blk1");
    cr_expect_eq(again.base, d[2].base);
    cr_expect_eq(again.irq, d[2].irq);
    cr_expect_str_eq(again.file, "/b.img");
}

Test(device_arg, clashes_are_refused)
{
    device_arg_t d[6];
    char err[128];
    cr_assert_eq(device_arg_parse("virtio-rng,base=0xd0001000", true, &d[0], err, sizeof err), 0);
    cr_assert_eq(device_arg_parse("virtio-rng", true, &d[1], err, sizeof err), 0);
    cr_expect_eq(device_arg_place(d, 2, err, sizeof err), -EINVAL, "one block, twice");
    cr_expect_str_eq(err, "virtio-rng0 and virtio-rng1 share a register block");

    cr_assert_eq(device_arg_parse("serial", true, &d[0], err, sizeof err), 0);
    cr_assert_eq(device_arg_parse("serial,host=ipc", true, &d[1], err, sizeof err), 0);
    cr_expect_eq(device_arg_place(d, 2, err, sizeof err), -EINVAL, "COM1 twice");

    for (int i = 0; i < 6; i++)
        cr_assert_eq(device_arg_parse("virtio-rng", true, &d[i], err, sizeof err), 0);
    cr_expect_eq(device_arg_place(d, 6, err, sizeof err), -EINVAL, "five places only");
}

Test(device_arg, anything_else_is_refused_with_the_reason)
{
    static const char *const bad[] = {
        "",           "uart",          "serial,",         "serial,host=",
        "serial,host=udp", "serial,host=ipc,host=tcp", "serial,required,required",
        "serial,fast", "serialx",      "serial,host=ipcx",
        "virtio-blk", "virtio-blk,file=", "virtio-blk,file=a,file=b", "virtio-rng,file=a",
        "virtio-rng,readonly", "virtio-console,readonly", "virtio-rng,irq=24",
        "virtio-rng,irq=-1", "virtio-rng,base=0xd0000800", "virtio-rng,base=x",
        "serial,name=x", "virtio-rng,name=", "virtio-blk,file=a,readonly,readonly",
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
