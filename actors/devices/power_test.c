/* dev_power: SLP_EN in PM1a control powers off; the rest reads back. */
#include <criterion/criterion.h>

#include "actors/devices/power.h"
#include "actors/devices/testing/fake_vm.h"

#define DEV "vm0/dev/pm1a"
#define OFF VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF

static fake_vm_t *s_start(void)
{
    fake_vm_t *vm = fake_vm_new();
    cr_assert_not_null(vm);
    dev_power_config_t cfg = {.partition = FAKE_VM_PARTITION};
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_power_ops, .arg = &cfg};
    cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
    return vm;
}

static uint32_t s_read16(fake_vm_t *vm)
{
    uint32_t value;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x604, 2, &value), 0, "%s", vm->last_error);
    return value;
}

Test(power, slp_en_powers_off_without_an_exit_code)
{
    fake_vm_t *vm = s_start();
    cr_assert_eq(fake_vm_write(vm, DEV, 0x604, 2, 0x3c00), 0, "%s", vm->last_error);
    fake_vm_expect_power(vm, vm->partition, OFF, false, 0);
    cr_expect_eq(s_read16(vm), 0x1c00, "SLP_EN does not read back");
    cr_expect_eq(fake_vm_inspect(vm, DEV, "power_offs"), 1);
    fake_vm_destroy(&vm);
}

Test(power, other_values_read_back_and_do_nothing)
{
    fake_vm_t *vm = s_start();
    cr_expect_eq(s_read16(vm), 0);
    cr_assert_eq(fake_vm_write(vm, DEV, 0x604, 2, 0x1401), 0);
    cr_expect_eq(s_read16(vm), 0x1401);
    fake_vm_expect_quiet(vm, vm->partition, 50);
    fake_vm_destroy(&vm);
}

Test(power, byte_accesses_reach_either_half)
{
    fake_vm_t *vm = s_start();
    cr_assert_eq(fake_vm_write(vm, DEV, 0x604, 1, 0x01), 0);
    cr_assert_eq(fake_vm_write(vm, DEV, 0x605, 1, 0x14), 0);
    cr_expect_eq(s_read16(vm), 0x1401);
    fake_vm_expect_quiet(vm, vm->partition, 20);
    cr_assert_eq(fake_vm_write(vm, DEV, 0x605, 1, 0x20), 0, "SLP_EN in the high byte");
    fake_vm_expect_power(vm, vm->partition, OFF, false, 0);
    uint32_t value;
    cr_assert_eq(fake_vm_read(vm, DEV, 0x605, 1, &value), 0);
    cr_expect_eq(value, 0x00);
    cr_assert_eq(fake_vm_read(vm, DEV, 0x604, 1, &value), 0);
    cr_expect_eq(value, 0x01, "the low byte kept");
    cr_expect_eq(fake_vm_write(vm, DEV, 0x604, 4, 0), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "the register has 16 bits");
    fake_vm_destroy(&vm);
}
