/* dev_debug_exit: exit codes as QEMU's isa-debug-exit gives them. */
#include <criterion/criterion.h>
#include <errno.h>

#include "actors/devices/debug_exit.h"
#include "actors/devices/testing/fake_vm.h"

#define DEV "vm0/dev/debug-exit"

static fake_vm_t *s_start(dev_debug_exit_config_t *cfg)
{
    fake_vm_t *vm = fake_vm_new();
    cr_assert_not_null(vm);
    cfg->partition = FAKE_VM_PARTITION;
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_debug_exit_ops, .arg = cfg};
    cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
    return vm;
}

Test(debug_exit, a_write_of_v_exits_with_2v_plus_1)
{
    dev_debug_exit_config_t cfg = {0};
    fake_vm_t *vm = s_start(&cfg);
    cr_assert_eq(fake_vm_write(vm, DEV, 0xf4, 1, 0), 0, "%s", vm->last_error);
    fake_vm_expect_power(vm, vm->partition, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                         true, 1);
    cr_assert_eq(fake_vm_write(vm, DEV, 0xf4, 1, 5), 0, "%s", vm->last_error);
    fake_vm_expect_power(vm, vm->partition, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                         true, 11);
    cr_assert_eq(fake_vm_write(vm, DEV, 0xf4, 1, 0xff), 0);
    fake_vm_expect_power(vm, vm->partition, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                         true, 0x1ff);
    cr_expect_eq(fake_vm_inspect(vm, DEV, "last_value"), 0xff);
    fake_vm_destroy(&vm);
}

Test(debug_exit, reads_return_all_ones)
{
    dev_debug_exit_config_t cfg = {0};
    fake_vm_t *vm = s_start(&cfg);
    uint32_t value = 0;
    cr_assert_eq(fake_vm_read(vm, DEV, 0xf4, 1, &value), 0);
    cr_expect_eq(value, 0xff);
    fake_vm_expect_quiet(vm, vm->partition, 20);
    fake_vm_destroy(&vm);
}

Test(debug_exit, port_and_size_are_configurable)
{
    dev_debug_exit_config_t cfg = {.port = 0x501, .size = 4};
    fake_vm_t *vm = s_start(&cfg);
    cr_assert_eq(fake_vm_write(vm, DEV, 0x501, 4, 0x1234), 0, "%s", vm->last_error);
    fake_vm_expect_power(vm, vm->partition, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                         true, 0x2469);
    uint32_t value = 0;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x503, 2, &value), 0);
    cr_expect_eq(value, 0xffff);
    cr_expect_eq(fake_vm_write(vm, DEV, 0xf4, 1, 0), VMM__ERROR_CODE__INVALID_ARGUMENT);
    fake_vm_destroy(&vm);
}

Test(debug_exit, a_size_that_is_no_access_width_fails_start)
{
    fake_vm_t *vm = fake_vm_new();
    dev_debug_exit_config_t cfg = {.size = 3};
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_debug_exit_ops, .arg = &cfg};
    cr_expect_eq(fake_vm_start(vm, &spec, 0, NULL), -EINVAL);
    fake_vm_destroy(&vm);
}
