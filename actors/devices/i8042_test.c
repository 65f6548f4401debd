/* dev_i8042: reset through the controller, an empty status, ignored commands. */
#include <criterion/criterion.h>

#include "actors/devices/i8042.h"
#include "actors/devices/testing/fake_vm.h"

#define DEV "vm0/dev/i8042"

static fake_vm_t *s_start(void)
{
    fake_vm_t *vm = fake_vm_new();
    cr_assert_not_null(vm);
    dev_i8042_config_t cfg = {.partition = FAKE_VM_PARTITION};
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_i8042_ops, .arg = &cfg};
    cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
    return vm;
}

Test(i8042, command_fe_resets_the_vm)
{
    fake_vm_t *vm = s_start();
    cr_assert_eq(fake_vm_write(vm, DEV, 0x64, 1, 0xfe), 0, "%s", vm->last_error);
    fake_vm_expect_power(vm, vm->partition, VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET, false,
                         0);
    cr_expect_eq(fake_vm_inspect(vm, DEV, "resets"), 1);
    fake_vm_destroy(&vm);
}

Test(i8042, status_and_data_read_zero)
{
    fake_vm_t *vm = s_start();
    uint32_t value = 0xff;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x64, 1, &value), 0);
    cr_expect_eq(value, 0, "no output, input buffer empty");
    value = 0xff;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x60, 1, &value), 0);
    cr_expect_eq(value, 0);
    fake_vm_destroy(&vm);
}

Test(i8042, other_commands_and_data_are_counted_and_ignored)
{
    fake_vm_t *vm = s_start();
    cr_assert_eq(fake_vm_write(vm, DEV, 0x64, 1, 0xaa), 0); /* self test */
    cr_assert_eq(fake_vm_write(vm, DEV, 0x64, 1, 0x20), 0); /* read CTR */
    cr_assert_eq(fake_vm_write(vm, DEV, 0x60, 1, 0xfe), 0); /* data, not a command */
    cr_expect_eq(fake_vm_inspect(vm, DEV, "ignored_commands"), 2);
    cr_expect_eq(fake_vm_inspect(vm, DEV, "ignored_data"), 1);
    cr_expect_eq(fake_vm_inspect(vm, DEV, "resets"), 0);
    fake_vm_expect_quiet(vm, vm->partition, 50);
    uint32_t value = 0xff;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x64, 1, &value), 0);
    cr_expect_eq(value, 0, "still nothing to read: a probe gives up");
    fake_vm_destroy(&vm);
}
