#include <criterion/criterion.h>

#include "proto/devices.pb-c.h"
#include "proto/testing/proto_check.h"

/* A Request / Reply / Event with one oneof member set, round-tripped: the copy
 * must pack to the same bytes and have the same member set. */
#define S_REQ(member, CASE, op)                                                                            \
    PROTO_CHECK_ONEOF(Vmm__Devices__Request, &vmm__devices__request__descriptor, op_case,                   \
                      VMM__DEVICES__REQUEST__OP_##CASE, member, op)
#define S_REPLY(member, CASE, res)                                                                         \
    PROTO_CHECK_ONEOF(Vmm__Devices__Reply, &vmm__devices__reply__descriptor, result_case,                   \
                      VMM__DEVICES__REPLY__RESULT_##CASE, member, res)
#define S_EVENT(member, CASE, ev)                                                                          \
    PROTO_CHECK_ONEOF(Vmm__Devices__Event, &vmm__devices__event__descriptor, event_case,                    \
                      VMM__DEVICES__EVENT__EVENT_##CASE, member, ev)

#define S_FREE_REQ(m) vmm__devices__request__free_unpacked((m), NULL)
#define S_FREE_REPLY(m) vmm__devices__reply__free_unpacked((m), NULL)
#define S_FREE_EVENT(m) vmm__devices__event__free_unpacked((m), NULL)

/* The three bodies the device protocol sends. */
static const ProtobufCMessageDescriptor *const s_bodies[] = {
    &vmm__devices__request__descriptor,
    &vmm__devices__reply__descriptor,
    &vmm__devices__event__descriptor,
};

/* ------------------------------------------------------------------------ */
/* Defaults. */

/* Each body starts with its oneof NOT_SET and packs to nothing. */
Test(devices_defaults, bodies_are_empty)
{
    proto_check_defaults_empty(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

Test(devices_defaults, ops_start_zero_and_unset)
{
    Vmm__Devices__WriteIo wio = VMM__DEVICES__WRITE_IO__INIT;
    cr_expect_eq(wio.port, 0);
    cr_expect_eq(wio.data.len, 0);
    cr_expect_not(wio.posted);

    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    cr_expect_str_empty(reg.name);
    cr_expect_eq(reg.n_ports, 0);
    cr_expect_eq(reg.n_mmio, 0);
    cr_expect_eq(reg.n_irq_lines, 0);
    cr_expect_eq(reg.msi_count, 0);
    cr_expect_eq(reg.n_doorbells, 0);
    cr_expect_not(reg.required);

    Vmm__Devices__DoorbellRequest db = VMM__DEVICES__DOORBELL_REQUEST__INIT;
    cr_expect_eq(db.opt_value_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_VALUE__NOT_SET);
    cr_expect_eq(db.opt_length_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH__NOT_SET);

}

/* Fails when an op, result or event is added or removed: add its round-trip
 * test below, then update the count. */
Test(devices_defaults, every_member_has_a_test)
{
    cr_expect_eq(vmm__devices__request__descriptor.n_fields, 16);
    cr_expect_eq(vmm__devices__reply__descriptor.n_fields, 10);
    cr_expect_eq(vmm__devices__event__descriptor.n_fields, 9);
}

/* ------------------------------------------------------------------------ */
/* Requests: CpuIo. */

Test(devices_request, read_io)
{
    Vmm__Devices__ReadIo op = VMM__DEVICES__READ_IO__INIT;
    op.vp_index = 2;
    op.port = 0x3f8;
    op.size = 1;
    Vmm__Devices__Request *out = S_REQ(read_io, READ_IO, &op);
    cr_expect_eq(out->read_io->vp_index, 2);
    cr_expect_eq(out->read_io->port, 0x3f8);
    cr_expect_eq(out->read_io->size, 1);
    S_FREE_REQ(out);
}

Test(devices_request, write_io)
{
    static uint8_t data[] = {0x78, 0x56, 0x34, 0x12};
    Vmm__Devices__WriteIo op = VMM__DEVICES__WRITE_IO__INIT;
    op.vp_index = 1;
    op.port = 0xcfc;
    op.data = (ProtobufCBinaryData){sizeof(data), data};
    op.posted = true;
    Vmm__Devices__Request *out = S_REQ(write_io, WRITE_IO, &op);
    cr_expect_eq(out->write_io->vp_index, 1);
    cr_expect_eq(out->write_io->port, 0xcfc);
    cr_assert_eq(out->write_io->data.len, 4);
    cr_expect_arr_eq(out->write_io->data.data, data, 4);
    cr_expect(out->write_io->posted);
    S_FREE_REQ(out);
}

Test(devices_request, read_mmio)
{
    Vmm__Devices__ReadMmio op = VMM__DEVICES__READ_MMIO__INIT;
    op.vp_index = 3;
    op.address = 0xfebf0010;
    op.size = 8;
    Vmm__Devices__Request *out = S_REQ(read_mmio, READ_MMIO, &op);
    cr_expect_eq(out->read_mmio->vp_index, 3);
    cr_expect_eq(out->read_mmio->address, 0xfebf0010);
    cr_expect_eq(out->read_mmio->size, 8);
    S_FREE_REQ(out);
}

Test(devices_request, write_mmio)
{
    static uint8_t data[] = {1, 2, 3, 4, 5, 6, 7, 8};
    Vmm__Devices__WriteMmio op = VMM__DEVICES__WRITE_MMIO__INIT;
    op.vp_index = 4;
    op.address = 0xfebf0020;
    op.data = (ProtobufCBinaryData){sizeof(data), data};
    op.posted = false;
    Vmm__Devices__Request *out = S_REQ(write_mmio, WRITE_MMIO, &op);
    cr_expect_eq(out->write_mmio->vp_index, 4);
    cr_expect_eq(out->write_mmio->address, 0xfebf0020);
    cr_assert_eq(out->write_mmio->data.len, 8);
    cr_expect_arr_eq(out->write_mmio->data.data, data, 8);
    cr_expect_not(out->write_mmio->posted);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Requests: registration and guest memory. */

Test(devices_request, register_device)
{
    Vmm__Devices__PortRange com1 = VMM__DEVICES__PORT_RANGE__INIT;
    com1.start = 0x3f8;
    com1.len = 8;
    Vmm__Devices__PortRange *ports[] = {&com1};
    Vmm__MemoryRange bar = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0xfebf0000, 0xfebf1000};
    Vmm__MemoryRange *mmio[] = {&bar};
    uint32_t irqs[] = {4, 0};
    Vmm__Devices__DoorbellRequest d0 = VMM__DEVICES__DOORBELL_REQUEST__INIT;
    d0.guest_address = 0xfebf0050;
    d0.opt_value_case = VMM__DEVICES__DOORBELL_REQUEST__OPT_VALUE_VALUE;
    d0.value = 0;
    Vmm__Devices__DoorbellRequest d1 = VMM__DEVICES__DOORBELL_REQUEST__INIT;
    d1.guest_address = 0xfebf0054;
    d1.opt_length_case = VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH_LENGTH;
    d1.length = 2;
    Vmm__Devices__DoorbellRequest *dbs[] = {&d0, &d1};

    Vmm__Devices__RegisterDevice op = VMM__DEVICES__REGISTER_DEVICE__INIT;
    op.name = "com1";
    op.n_ports = 1;
    op.ports = ports;
    op.n_mmio = 1;
    op.mmio = mmio;
    op.n_irq_lines = 2;
    op.irq_lines = irqs;
    op.msi_count = 3;
    op.n_doorbells = 2;
    op.doorbells = dbs;
    op.required = true;
    op.posted_writes = true;
    op.endpoint = "ipc:///run/vmm/vm0/com1";
    Vmm__Devices__Request *out = S_REQ(register_device, REGISTER_DEVICE, &op);
    Vmm__Devices__RegisterDevice *o = out->register_device;
    cr_expect(o->posted_writes);
    cr_expect_str_eq(o->endpoint, "ipc:///run/vmm/vm0/com1");
    cr_expect_str_eq(o->name, "com1");
    cr_assert_eq(o->n_ports, 1);
    cr_expect_eq(o->ports[0]->start, 0x3f8);
    cr_expect_eq(o->ports[0]->len, 8);
    cr_assert_eq(o->n_mmio, 1);
    cr_expect_eq(o->mmio[0]->start, 0xfebf0000);
    cr_expect_eq(o->mmio[0]->end, 0xfebf1000);
    cr_assert_eq(o->n_irq_lines, 2);
    cr_expect_arr_eq(o->irq_lines, irqs, sizeof(irqs));
    cr_expect_eq(o->msi_count, 3);
    cr_assert_eq(o->n_doorbells, 2);
    cr_expect_eq(o->doorbells[0]->guest_address, 0xfebf0050);
    cr_expect_eq(o->doorbells[0]->opt_value_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_VALUE_VALUE);
    cr_expect_eq(o->doorbells[0]->value, 0);
    cr_expect_eq(o->doorbells[0]->opt_length_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH__NOT_SET);
    cr_expect_eq(o->doorbells[1]->opt_value_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_VALUE__NOT_SET);
    cr_expect_eq(o->doorbells[1]->opt_length_case, VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH_LENGTH);
    cr_expect_eq(o->doorbells[1]->length, 2);
    cr_expect(o->required);
    S_FREE_REQ(out);
}

Test(devices_request, unregister_device)
{
    Vmm__Devices__UnregisterDevice op = VMM__DEVICES__UNREGISTER_DEVICE__INIT;
    op.handle = 77;
    Vmm__Devices__Request *out = S_REQ(unregister_device, UNREGISTER_DEVICE, &op);
    cr_expect_eq(out->unregister_device->handle, 77);
    S_FREE_REQ(out);
}

Test(devices_request, read_guest_memory)
{
    Vmm__Devices__ReadGuestMemory op = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    op.gpa = 0x7ffff000;
    op.length = 65536;
    Vmm__Devices__Request *out = S_REQ(read_guest_memory, READ_GUEST_MEMORY, &op);
    cr_expect_eq(out->read_guest_memory->gpa, 0x7ffff000);
    cr_expect_eq(out->read_guest_memory->length, 65536);
    S_FREE_REQ(out);
}

Test(devices_request, write_guest_memory)
{
    /* The largest write allowed, with a pattern so that a shifted byte shows. */
    static uint8_t data[65536];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + (i >> 8));
    Vmm__Devices__WriteGuestMemory op = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    op.gpa = 0x100000;
    op.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Request *out = S_REQ(write_guest_memory, WRITE_GUEST_MEMORY, &op);
    cr_expect_eq(out->write_guest_memory->gpa, 0x100000);
    cr_assert_eq(out->write_guest_memory->data.len, sizeof(data));
    cr_expect_arr_eq(out->write_guest_memory->data.data, data, sizeof(data));
    S_FREE_REQ(out);
}

Test(devices_request, update_guest_memory)
{
    Vmm__Devices__UpdateGuestMemory op = VMM__DEVICES__UPDATE_GUEST_MEMORY__INIT;
    op.gpa = 0x7ff8;
    op.size = 8;
    op.and_mask = ~0x10ull;
    op.or_mask = 0x8000000000000001ull;
    Vmm__Devices__Request *out = S_REQ(update_guest_memory, UPDATE_GUEST_MEMORY, &op);
    cr_expect_eq(out->update_guest_memory->gpa, 0x7ff8);
    cr_expect_eq(out->update_guest_memory->size, 8);
    cr_expect_eq(out->update_guest_memory->and_mask, ~0x10ull);
    cr_expect_eq(out->update_guest_memory->or_mask, 0x8000000000000001ull);
    S_FREE_REQ(out);
}

Test(devices_request, map_guest_memory)
{
    Vmm__Devices__MapGuestMemory op = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    Vmm__Devices__Request *out = S_REQ(map_guest_memory, MAP_GUEST_MEMORY, &op);
    cr_expect_not_null(out->map_guest_memory);
    S_FREE_REQ(out);
}

Test(devices_request, get_msi_irqfd)
{
    Vmm__Devices__GetMsiIrqfd op = VMM__DEVICES__GET_MSI_IRQFD__INIT;
    op.address = 0xfee0f000ull;
    op.data = 0x4041;
    Vmm__Devices__Request *out = S_REQ(get_msi_irqfd, GET_MSI_IRQFD, &op);
    cr_expect_eq(out->get_msi_irqfd->address, 0xfee0f000ull);
    cr_expect_eq(out->get_msi_irqfd->data, 0x4041);
    S_FREE_REQ(out);
}

Test(devices_request, get_doorbell_fd)
{
    Vmm__Devices__GetDoorbellFd op = VMM__DEVICES__GET_DOORBELL_FD__INIT;
    op.handle = 0x123456789ull;
    Vmm__Devices__Request *out = S_REQ(get_doorbell_fd, GET_DOORBELL_FD, &op);
    cr_expect_eq(out->get_doorbell_fd->handle, 0x123456789ull);
    S_FREE_REQ(out);
}

Test(devices_request, get_line_irqfd)
{
    Vmm__Devices__GetLineIrqfd op = VMM__DEVICES__GET_LINE_IRQFD__INIT;
    op.line = 23;
    Vmm__Devices__Request *out = S_REQ(get_line_irqfd, GET_LINE_IRQFD, &op);
    cr_expect_eq(out->get_line_irqfd->line, 23);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Replies. */

Test(devices_reply, host_fds)
{
    Vmm__Devices__HostFds res = VMM__DEVICES__HOST_FDS__INIT;
    res.pid = 77;
    res.fd = 12;
    res.ram_fd = 9;
    res.resample_fd = -1;
    Vmm__Devices__Reply *out = S_REPLY(host_fds, HOST_FDS, &res);
    cr_expect_eq(out->host_fds->pid, 77);
    cr_expect_eq(out->host_fds->fd, 12);
    cr_expect_eq(out->host_fds->ram_fd, 9);
    cr_expect_eq(out->host_fds->resample_fd, -1);
    S_FREE_REPLY(out);
}

Test(devices_reply, msi_irqfd)
{
    Vmm__Devices__MsiIrqfd res = VMM__DEVICES__MSI_IRQFD__INIT;
    res.pid = 4194304;
    res.fd = 1023;
    res.ram_fd = 7;
    Vmm__Devices__Reply *out = S_REPLY(msi_irqfd, MSI_IRQFD, &res);
    cr_expect_eq(out->msi_irqfd->pid, 4194304);
    cr_expect_eq(out->msi_irqfd->fd, 1023);
    cr_expect_eq(out->msi_irqfd->ram_fd, 7);
    S_FREE_REPLY(out);
}

Test(devices_reply, read_io)
{
    static uint8_t data[] = {0x60};
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Reply *out = S_REPLY(read_io, READ_IO, &res);
    cr_assert_eq(out->read_io->data.len, 1);
    cr_expect_eq(out->read_io->data.data[0], 0x60);
    S_FREE_REPLY(out);
}

Test(devices_reply, read_mmio)
{
    static uint8_t data[] = {0xef, 0xbe, 0xad, 0xde};
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Reply *out = S_REPLY(read_mmio, READ_MMIO, &res);
    cr_assert_eq(out->read_mmio->data.len, 4);
    cr_expect_arr_eq(out->read_mmio->data.data, data, 4);
    S_FREE_REPLY(out);
}

/* A read of zeros must still come back with its length: a zero-filled
 * result is not an absent one. */
Test(devices_reply, read_mmio_zeros)
{
    static uint8_t data[8];
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Reply *out = S_REPLY(read_mmio, READ_MMIO, &res);
    cr_expect_eq(out->read_mmio->data.len, 8);
    S_FREE_REPLY(out);
}

Test(devices_reply, registration)
{
    Vmm__Devices__PortRange p = VMM__DEVICES__PORT_RANGE__INIT;
    p.start = 0x2f8;
    p.len = 8;
    Vmm__Devices__PortRange *ports[] = {&p};
    Vmm__MemoryRange m = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0xfe000000, 0xfe001000};
    Vmm__MemoryRange *mmio[] = {&m};
    uint32_t irqs[] = {3};
    uint64_t dbs[] = {41, 0};
    Vmm__Devices__DeviceRegistration res = VMM__DEVICES__DEVICE_REGISTRATION__INIT;
    res.handle = 40;
    res.n_ports = 1;
    res.ports = ports;
    res.n_mmio = 1;
    res.mmio = mmio;
    res.n_irq_lines = 1;
    res.irq_lines = irqs;
    res.msi_count = 2;
    res.n_doorbells = 2;
    res.doorbells = dbs;
    Vmm__Devices__Reply *out = S_REPLY(registration, REGISTRATION, &res);
    Vmm__Devices__DeviceRegistration *o = out->registration;
    cr_expect_eq(o->handle, 40);
    cr_assert_eq(o->n_ports, 1);
    cr_expect_eq(o->ports[0]->start, 0x2f8);
    cr_assert_eq(o->n_mmio, 1);
    cr_expect_eq(o->mmio[0]->end, 0xfe001000);
    cr_assert_eq(o->n_irq_lines, 1);
    cr_expect_eq(o->irq_lines[0], 3);
    cr_expect_eq(o->msi_count, 2);
    /* A refused doorbell keeps its place as 0. */
    cr_assert_eq(o->n_doorbells, 2);
    cr_expect_arr_eq(o->doorbells, dbs, sizeof(dbs));
    S_FREE_REPLY(out);
}

Test(devices_reply, read_guest_memory)
{
    static uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Reply *out = S_REPLY(read_guest_memory, READ_GUEST_MEMORY, &res);
    cr_assert_eq(out->read_guest_memory->data.len, sizeof(data));
    cr_expect_arr_eq(out->read_guest_memory->data.data, data, sizeof(data));
    S_FREE_REPLY(out);
}

Test(devices_request, reset_save_and_restore_device)
{
    Vmm__Devices__ResetDevice reset = VMM__DEVICES__RESET_DEVICE__INIT;
    Vmm__Devices__Request *out = S_REQ(reset_device, RESET_DEVICE, &reset);
    cr_expect_not_null(out->reset_device, "an empty request is still that request");
    S_FREE_REQ(out);
    Vmm__Devices__SaveDevice save = VMM__DEVICES__SAVE_DEVICE__INIT;
    out = S_REQ(save_device, SAVE_DEVICE, &save);
    cr_expect_not_null(out->save_device);
    S_FREE_REQ(out);
    static uint8_t bytes[] = {0x08, 0x2a};
    Vmm__Devices__DeviceState state = VMM__DEVICES__DEVICE_STATE__INIT;
    state.kind = "serial";
    state.state = (ProtobufCBinaryData){sizeof bytes, bytes};
    Vmm__Devices__RestoreDevice restore = VMM__DEVICES__RESTORE_DEVICE__INIT;
    restore.state = &state;
    out = S_REQ(restore_device, RESTORE_DEVICE, &restore);
    cr_assert_not_null(out->restore_device->state);
    cr_expect_str_eq(out->restore_device->state->kind, "serial");
    cr_assert_eq(out->restore_device->state->state.len, 2);
    cr_expect_arr_eq(out->restore_device->state->state.data, bytes, 2);
    S_FREE_REQ(out);
}

Test(devices_reply, deferred_and_device_state)
{
    Vmm__Devices__IoDeferred d = VMM__DEVICES__IO_DEFERRED__INIT;
    d.token = 0x1234567890ull;
    Vmm__Devices__Reply *out = S_REPLY(deferred, DEFERRED, &d);
    cr_expect_eq(out->deferred->token, 0x1234567890ull);
    S_FREE_REPLY(out);
    static uint8_t bytes[] = {1, 2, 3};
    Vmm__Devices__DeviceState st = VMM__DEVICES__DEVICE_STATE__INIT;
    st.kind = "i8042";
    st.state = (ProtobufCBinaryData){sizeof bytes, bytes};
    out = S_REPLY(device_state, DEVICE_STATE, &st);
    cr_expect_str_eq(out->device_state->kind, "i8042");
    cr_expect_eq(out->device_state->state.len, 3);
    S_FREE_REPLY(out);
}

Test(devices_reply, update_guest_memory)
{
    uint8_t old[4] = {0x01, 0x02, 0x03, 0x04};
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){sizeof old, old};
    Vmm__Devices__Reply *out = S_REPLY(update_guest_memory, UPDATE_GUEST_MEMORY, &res);
    cr_assert_eq(out->update_guest_memory->data.len, sizeof old);
    cr_expect_arr_eq(out->update_guest_memory->data.data, old, sizeof old);
    S_FREE_REPLY(out);
}

Test(devices_reply, guest_memory_map)
{
    Vmm__Devices__GuestRamRange low = VMM__DEVICES__GUEST_RAM_RANGE__INIT;
    Vmm__Devices__GuestRamRange high = VMM__DEVICES__GUEST_RAM_RANGE__INIT;
    low.size = 0xc0000000;
    high.gpa = 0x100000000;
    high.size = 0x40000000;
    high.offset = 0xc0000000;
    Vmm__Devices__GuestRamRange *ranges[] = {&low, &high};
    Vmm__Devices__GuestMemoryMap map = VMM__DEVICES__GUEST_MEMORY_MAP__INIT;
    map.n_ranges = 2;
    map.ranges = ranges;
    map.path = "/proc/4242/fd/7";
    map.link = "/memfd:vmm-ram-0123456789abcdef (deleted)";
    Vmm__Devices__Reply *out = S_REPLY(guest_memory_map, GUEST_MEMORY_MAP, &map);
    cr_assert_eq(out->guest_memory_map->n_ranges, 2);
    cr_expect_eq(out->guest_memory_map->ranges[0]->size, 0xc0000000);
    cr_expect_eq(out->guest_memory_map->ranges[1]->gpa, 0x100000000);
    cr_expect_eq(out->guest_memory_map->ranges[1]->offset, 0xc0000000);
    cr_expect_str_eq(out->guest_memory_map->path, "/proc/4242/fd/7");
    cr_expect_str_eq(out->guest_memory_map->link, map.link);
    S_FREE_REPLY(out);
}

/* ------------------------------------------------------------------------ */
/* Events. */

Test(devices_event, irq_line_changed)
{
    Vmm__Devices__IrqLineChanged lc = VMM__DEVICES__IRQ_LINE_CHANGED__INIT;
    lc.irq = 11;
    lc.high = true;
    Vmm__Devices__Event *out = S_EVENT(irq_line_changed, IRQ_LINE_CHANGED, &lc);
    cr_expect_eq(out->irq_line_changed->irq, 11);
    cr_expect(out->irq_line_changed->high);
    S_FREE_EVENT(out);

    /* A line going low is an event too: it must not vanish as a default. */
    lc.high = false;
    out = S_EVENT(irq_line_changed, IRQ_LINE_CHANGED, &lc);
    cr_expect_eq(out->irq_line_changed->irq, 11);
    cr_expect_not(out->irq_line_changed->high);
    S_FREE_EVENT(out);
}

Test(devices_event, power_request)
{
    Vmm__Devices__PowerRequest pr = VMM__DEVICES__POWER_REQUEST__INIT;
    pr.action = VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET;
    Vmm__Devices__Event *out = S_EVENT(power_request, POWER_REQUEST, &pr);
    cr_expect_eq(out->power_request->action, VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET);
    cr_expect_eq(out->power_request->opt_exit_code_case,
                 VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE__NOT_SET);
    S_FREE_EVENT(out);

    pr.action = VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF;
    pr.opt_exit_code_case = VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE_EXIT_CODE;
    pr.exit_code = 7;
    out = S_EVENT(power_request, POWER_REQUEST, &pr);
    cr_expect_eq(out->power_request->action, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF);
    cr_expect_eq(out->power_request->exit_code, 7);
    S_FREE_EVENT(out);
}

Test(devices_event, io_completed_with_data_or_an_error)
{
    static uint8_t data[] = {0x34, 0x12};
    Vmm__Devices__IoCompleted done = VMM__DEVICES__IO_COMPLETED__INIT;
    done.token = 7;
    done.data = (ProtobufCBinaryData){sizeof data, data};
    Vmm__Devices__Event *out = S_EVENT(io_completed, IO_COMPLETED, &done);
    cr_expect_eq(out->io_completed->token, 7);
    cr_expect_eq(out->io_completed->data.len, 2);
    cr_expect_null(out->io_completed->error);
    S_FREE_EVENT(out);
    Vmm__Error err = VMM__ERROR__INIT;
    err.code = VMM__ERROR_CODE__TIMEOUT;
    err.text = "the disk did not answer";
    done.data = (ProtobufCBinaryData){0, NULL};
    done.error = &err;
    out = S_EVENT(io_completed, IO_COMPLETED, &done);
    cr_assert_not_null(out->io_completed->error);
    cr_expect_eq(out->io_completed->error->code, VMM__ERROR_CODE__TIMEOUT);
    S_FREE_EVENT(out);
}

Test(devices_event, registered)
{
    Vmm__Devices__DeviceRegistered r = VMM__DEVICES__DEVICE_REGISTERED__INIT;
    r.name = "com1";
    r.handle = 3;
    Vmm__Devices__Event *out = S_EVENT(registered, REGISTERED, &r);
    cr_expect_str_eq(out->registered->name, "com1");
    cr_expect_eq(out->registered->handle, 3);
    cr_expect_null(out->registered->error);
    S_FREE_EVENT(out);
}

Test(devices_event, the_console_line)
{
    static uint8_t text[] = "hello\n";
    Vmm__Devices__ConsoleOutput o = VMM__DEVICES__CONSOLE_OUTPUT__INIT;
    o.data = (ProtobufCBinaryData){6, text};
    Vmm__Devices__Event *out = S_EVENT(console_output, CONSOLE_OUTPUT, &o);
    cr_expect_eq(out->console_output->data.len, 6);
    S_FREE_EVENT(out);
    Vmm__Devices__ConsoleWritten w = VMM__DEVICES__CONSOLE_WRITTEN__INIT;
    w.total = 1ull << 40;
    out = S_EVENT(console_written, CONSOLE_WRITTEN, &w);
    cr_expect_eq(out->console_written->total, 1ull << 40);
    S_FREE_EVENT(out);
    Vmm__Devices__ConsoleWant want = VMM__DEVICES__CONSOLE_WANT__INIT;
    want.total = 16;
    out = S_EVENT(console_want, CONSOLE_WANT, &want);
    cr_expect_eq(out->console_want->total, 16);
    S_FREE_EVENT(out);
    Vmm__Devices__ConsoleInput in = VMM__DEVICES__CONSOLE_INPUT__INIT;
    in.data = (ProtobufCBinaryData){5, text};
    out = S_EVENT(console_input, CONSOLE_INPUT, &in);
    cr_expect_eq(out->console_input->data.len, 5);
    S_FREE_EVENT(out);
}

Test(devices_event, guest_call)
{
    uint32_t args[] = {0, 0xffffffffu, 42};
    Vmm__Devices__GuestCall gc = VMM__DEVICES__GUEST_CALL__INIT;
    gc.vp_index = 1;
    gc.kind = 2;
    gc.n_args = 3;
    gc.args = args;
    Vmm__Devices__Event *out = S_EVENT(guest_call, GUEST_CALL, &gc);
    cr_expect_eq(out->guest_call->vp_index, 1);
    cr_expect_eq(out->guest_call->kind, 2);
    cr_assert_eq(out->guest_call->n_args, 3);
    cr_expect_eq(out->guest_call->args[0], 0);
    cr_expect_eq(out->guest_call->args[1], 0xffffffffu);
    cr_expect_eq(out->guest_call->args[2], 42);
    S_FREE_EVENT(out);
}

/* ------------------------------------------------------------------------ */
/* Bad input. */

/* An empty buffer is a valid proto3 encoding of "no op": it decodes, but to
 * NOT_SET, which device actors must answer with INVALID_ARGUMENT. */
Test(devices_bad_input, empty_buffer_is_not_set)
{
    proto_check_empty_decodes_unset(&vmm__devices__request__descriptor);
}

/* Every strict prefix of a one-op request cuts its only field short. */
Test(devices_bad_input, truncated_buffers_fail)
{
    static uint8_t data[] = {0xaa, 0xbb, 0xcc, 0xdd};
    Vmm__Devices__WriteMmio op = VMM__DEVICES__WRITE_MMIO__INIT;
    op.vp_index = 1;
    op.address = 0xfebf0000;
    op.data = (ProtobufCBinaryData){sizeof(data), data};
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_MMIO;
    req.write_mmio = &op;
    proto_check_prefixes_fail(&req.base);
}

Test(devices_bad_input, garbage_fails)
{
    proto_check_garbage_fails(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

/* Flipping bytes of a valid request either fails to decode or decodes to a
 * message that round-trips; never a crash or a leak (ASan). */
Test(devices_bad_input, mutated_bytes_are_safe)
{
    Vmm__Devices__PortRange p = VMM__DEVICES__PORT_RANGE__INIT;
    p.start = 0x60;
    p.len = 1;
    Vmm__Devices__PortRange *ports[] = {&p};
    uint32_t irqs[] = {1, 12};
    Vmm__Devices__RegisterDevice op = VMM__DEVICES__REGISTER_DEVICE__INIT;
    op.name = "i8042";
    op.n_ports = 1;
    op.ports = ports;
    op.n_irq_lines = 2;
    op.irq_lines = irqs;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &op;
    proto_check_mutations_safe(&req.base);
}
