/* dev_testdev: guest calls with their arguments, MSIs on request. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "actors/devices/testdev.h"
#include "actors/devices/testing/fake_vm.h"

#define DEV "vm0/dev/testdev"
#define REPORT "test/guest"

static fake_vm_t *s_vm;
static rt_client_t *s_report;

static void s_start(void)
{
    s_vm = fake_vm_new();
    cr_assert_not_null(s_vm);
    s_report = fake_vm_client(s_vm, REPORT);
    cr_assert_not_null(s_report);
    dev_testdev_config_t cfg = {.partition = FAKE_VM_PARTITION, .report_to = REPORT};
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_testdev_ops, .arg = &cfg};
    cr_assert_eq(fake_vm_start(s_vm, &spec, 0, NULL), 0);
}

static void s_stop(void)
{
    fake_vm_destroy(&s_vm); /* s_report with it */
}

/* An outl from VP vp_index, waiting for its Ack. */
static int s_outl(uint32_t vp_index, uint32_t port, uint32_t value)
{
    uint8_t bytes[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                        (uint8_t)(value >> 24)};
    Vmm__Devices__WriteIo write_io = VMM__DEVICES__WRITE_IO__INIT;
    write_io.vp_index = vp_index;
    write_io.port = port;
    write_io.data.data = bytes;
    write_io.data.len = 4;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_IO;
    req.write_io = &write_io;
    rt_msg_t reply;
    int rc = fake_vm_request(s_vm, DEV, &req, &reply);
    if (rc)
        return rc;
    rc = reply.env->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -EPROTO;
    rt_msg_release(&reply);
    return rc;
}

/* Takes the next GuestCall and checks it. */
static void s_expect_call(uint32_t vp_index, uint32_t kind,
                          const uint32_t *args, size_t n_args)
{
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_report, 2000);
    cr_assert_not_null(env, "no guest call");
    cr_assert_eq(env->request_id, 0, "one-way");
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_DEVICE_EVENT);
    cr_assert_eq(env->device_event->event_case, VMM__DEVICES__EVENT__EVENT_GUEST_CALL);
    const Vmm__Devices__GuestCall *call = env->device_event->guest_call;
    cr_expect_str_eq(env->sender, DEV);
    cr_expect_eq(call->vp_index, vp_index);
    cr_expect_eq(call->kind, kind);
    cr_assert_eq(call->n_args, n_args, "%zu args, not %zu", call->n_args, n_args);
    for (size_t i = 0; i < n_args; i++)
        cr_expect_eq(call->args[i], args[i], "arg %zu: 0x%x, not 0x%x", i, call->args[i],
                     args[i]);
}

Test(testdev, a_sync_call_reports_its_vp_and_arguments, .init = s_start, .fini = s_stop)
{
    cr_assert_eq(s_outl(2, TESTDEV_PORT_ARG, 7), 0, "%s", s_vm->last_error);
    cr_assert_eq(s_outl(2, TESTDEV_PORT_ARG, 0xdeadbeef), 0);
    cr_assert_eq(s_outl(2, TESTDEV_PORT_CALL, TESTDEV_CALL_SYNC), 0);
    s_expect_call(2, TESTDEV_CALL_SYNC, (uint32_t[]){7, 0xdeadbeef}, 2);
    cr_assert_eq(s_outl(0, TESTDEV_PORT_CALL, TESTDEV_CALL_DONE), 0);
    s_expect_call(0, TESTDEV_CALL_DONE, NULL, 0);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "calls"), 2);
}

Test(testdev, arguments_beyond_the_limit_are_dropped_and_counted, .init = s_start,
     .fini = s_stop)
{
    uint32_t args[TESTDEV_MAX_ARGS + 2];
    for (uint32_t i = 0; i < TESTDEV_MAX_ARGS + 2; i++) {
        args[i] = 100 + i;
        cr_assert_eq(s_outl(1, TESTDEV_PORT_ARG, args[i]), 0);
    }
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "args_dropped"), 2);
    cr_assert_eq(s_outl(1, TESTDEV_PORT_CALL, TESTDEV_CALL_ASSERT), 0);
    s_expect_call(1, TESTDEV_CALL_ASSERT, args, TESTDEV_MAX_ARGS);
    cr_assert_eq(s_outl(1, TESTDEV_PORT_CALL, TESTDEV_CALL_SYNC), 0);
    s_expect_call(1, TESTDEV_CALL_SYNC, NULL, 0); /* the call cleared them */
}

Test(testdev, an_unknown_kind_is_reported_all_the_same, .init = s_start, .fini = s_stop)
{
    cr_assert_eq(s_outl(0, TESTDEV_PORT_ARG, 1), 0);
    cr_assert_eq(s_outl(0, TESTDEV_PORT_CALL, 77), 0);
    s_expect_call(0, 77, (uint32_t[]){1}, 1);
}

Test(testdev, msi_writes_ask_the_partition_for_the_msi, .init = s_start, .fini = s_stop)
{
    cr_assert_eq(s_outl(0, TESTDEV_PORT_MSI, 3 << 8 | 0x41), 0, "%s", s_vm->last_error);
    fake_vm_expect_msi(s_vm, s_vm->partition, 0xfee03000, 0x41);
    cr_assert_eq(s_outl(0, TESTDEV_PORT_MSI, 0xff << 8 | 0xef), 0);
    fake_vm_expect_msi(s_vm, s_vm->partition, 0xfeeff000, 0xef);
    cr_expect_eq(s_outl(0, TESTDEV_PORT_MSI, 0x10041), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "an APIC id over 8 bits");
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "msis"), 2);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "bad_requests"), 1);
    fake_vm_expect_quiet(s_vm, s_vm->partition, 20);
}

Test(testdev, registers_take_32_bit_writes_only, .init = s_start, .fini = s_stop)
{
    cr_expect_eq(fake_vm_write(s_vm, DEV, TESTDEV_PORT_ARG, 2, 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_neq(strstr(s_vm->last_error, "32-bit"), NULL, "text: %s", s_vm->last_error);
    cr_expect_eq(fake_vm_write(s_vm, DEV, TESTDEV_PORT_CALL + 1, 1, 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(fake_vm_write(s_vm, DEV, TESTDEV_PORT_CALL + 2, 2, 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "bad_requests"), 3);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "writes"), 0, "none served");
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "args"), 0, "nothing pushed");
    uint32_t value = 0;
    cr_assert_eq(fake_vm_read(s_vm, DEV, TESTDEV_PORT_ARG, 4, &value), 0);
    cr_expect_eq(value, 0xffffffff);
}

Test(testdev, calls_without_a_receiver_are_counted)
{
    s_vm = fake_vm_new();
    dev_testdev_config_t cfg = {.partition = NULL, .report_to = NULL};
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_testdev_ops, .arg = &cfg};
    cr_assert_eq(fake_vm_start(s_vm, &spec, 0, NULL), 0);
    cr_assert_eq(s_outl(0, TESTDEV_PORT_CALL, TESTDEV_CALL_DONE), 0);
    cr_assert_eq(s_outl(0, TESTDEV_PORT_MSI, 0x30), 0);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "unsent"), 2);
    cr_expect_eq(fake_vm_inspect(s_vm, DEV, "handle"), 0, "not registered");
    fake_vm_expect_quiet(s_vm, s_vm->partition, 20);
    s_stop();
}
