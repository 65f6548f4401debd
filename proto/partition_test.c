#include <criterion/criterion.h>

#include "proto/partition.pb-c.h"
#include "proto/testing/proto_check.h"

/* A Request / Reply / Event with one oneof member set, round-tripped: the copy
 * must pack to the same bytes and have the same member set. */
#define S_REQ(member, CASE, op)                                                                            \
    PROTO_CHECK_ONEOF(Vmm__Partition__Request, &vmm__partition__request__descriptor, op_case,               \
                      VMM__PARTITION__REQUEST__OP_##CASE, member, op)
#define S_REPLY(member, CASE, res)                                                                         \
    PROTO_CHECK_ONEOF(Vmm__Partition__Reply, &vmm__partition__reply__descriptor, result_case,               \
                      VMM__PARTITION__REPLY__RESULT_##CASE, member, res)
#define S_EVENT(member, CASE, ev)                                                                          \
    PROTO_CHECK_ONEOF(Vmm__Partition__Event, &vmm__partition__event__descriptor, event_case,                \
                      VMM__PARTITION__EVENT__EVENT_##CASE, member, ev)

#define S_FREE_REQ(m) vmm__partition__request__free_unpacked((m), NULL)
#define S_FREE_REPLY(m) vmm__partition__reply__free_unpacked((m), NULL)
#define S_FREE_EVENT(m) vmm__partition__event__free_unpacked((m), NULL)

/* The three bodies the partition protocol sends. */
static const ProtobufCMessageDescriptor *const s_bodies[] = {
    &vmm__partition__request__descriptor,
    &vmm__partition__reply__descriptor,
    &vmm__partition__event__descriptor,
};

/* ------------------------------------------------------------------------ */
/* Defaults and fixed numbers. */

/* Each body starts with its oneof NOT_SET and packs to nothing. */
Test(partition_defaults, bodies_are_empty)
{
    proto_check_defaults_empty(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

Test(partition_defaults, ops_start_zero_and_unset)
{
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    cr_expect_null(np.processor_topology);
    cr_expect_null(np.hv_config);
    cr_expect_not(np.user_mode_apic);
    cr_expect_eq(np.isolation, VMM__PARTITION__ISOLATION_TYPE__NONE);

    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    cr_expect_eq(db.minimum_vtl, VMM__VTL__VTL0);
    cr_expect_eq(db.guest_address, 0);
    cr_expect_eq(db.opt_value_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE__NOT_SET);
    cr_expect_eq(db.opt_length_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH__NOT_SET);
    cr_expect_str_empty(db.owner);

    Vmm__Partition__Build b = VMM__PARTITION__BUILD__INIT;
    cr_expect_null(b.mem_layout);
    cr_expect_eq(b.n_cpuid, 0);
    cr_expect_eq(b.opt_vtl0_alias_map_case, VMM__PARTITION__BUILD__OPT_VTL0_ALIAS_MAP__NOT_SET);

    Vmm__Partition__CpuidLeaf leaf = VMM__PARTITION__CPUID_LEAF__INIT;
    cr_expect_eq(leaf.opt_index_case, VMM__PARTITION__CPUID_LEAF__OPT_INDEX__NOT_SET);
    cr_expect_null(leaf.mask);

    Vmm__Partition__LateMapVtl0MemoryConfig late = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__INIT;
    cr_expect_eq(late.allowed_ranges_case,
                 VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__ALLOWED_RANGES__NOT_SET);
    cr_expect_eq(late.policy, VMM__PARTITION__LATE_MAP_VTL0_MEMORY_POLICY__HALT);

    Vmm__Partition__PartitionCapabilities caps = VMM__PARTITION__PARTITION_CAPABILITIES__INIT;
    cr_expect_eq(caps.arch_case, VMM__PARTITION__PARTITION_CAPABILITIES__ARCH__NOT_SET);
}

/* IsolationType::from_hv / to_hv are the identity only if these hold. */
Test(partition_defaults, isolation_numbers_are_hvdef)
{
    cr_expect_eq(VMM__PARTITION__ISOLATION_TYPE__NONE, 0);
    cr_expect_eq(VMM__PARTITION__ISOLATION_TYPE__VBS, 1);
    cr_expect_eq(VMM__PARTITION__ISOLATION_TYPE__SNP, 2);
    cr_expect_eq(VMM__PARTITION__ISOLATION_TYPE__TDX, 3);
}

/* ModifyVtlPageSetting.flags is the raw HvMapGpaFlags only if these hold. */
Test(partition_defaults, map_gpa_flags_are_tlfs_bits)
{
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_READABLE, 0x1);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_WRITABLE, 0x2);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_KERNEL_EXECUTABLE, 0x4);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_USER_EXECUTABLE, 0x8);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_SUPERVISOR_SHADOW_STACK, 0x10);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_PAGING_WRITABILITY, 0x20);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_VERIFY_PAGING_WRITABILITY, 0x40);
    cr_expect_eq(VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_ADJUSTABLE, 0x8000);
}

/* Fails when an op, result or event is added or removed: add its round-trip
 * test below, then update the count. */
Test(partition_defaults, every_member_has_a_test)
{
    cr_expect_eq(vmm__partition__request__descriptor.n_fields, 42);
    cr_expect_eq(vmm__partition__reply__descriptor.n_fields, 15);
    cr_expect_eq(vmm__partition__event__descriptor.n_fields, 1);
}

/* ------------------------------------------------------------------------ */
/* Requests: hypervisor and prototype partition. */

Test(partition_request, is_available)
{
    Vmm__Partition__IsAvailable op = VMM__PARTITION__IS_AVAILABLE__INIT;
    Vmm__Partition__Request *out = S_REQ(is_available, IS_AVAILABLE, &op);
    cr_expect_not_null(out->is_available);
    S_FREE_REQ(out);
}

Test(partition_request, new_partition)
{
    Vmm__Partition__VpInfo vp0 = VMM__PARTITION__VP_INFO__INIT;
    Vmm__Partition__VpInfo vp1 = VMM__PARTITION__VP_INFO__INIT;
    vp0.vp_index = 0;
    vp0.apic_id = 0;
    vp1.vp_index = 1;
    vp1.apic_id = 2;
    vp1.vnode = 1;
    Vmm__Partition__VpInfo *vps[] = {&vp0, &vp1};
    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = 2;
    topo.n_vps = 2;
    topo.vps = vps;
    topo.apic_mode = VMM__PARTITION__APIC_MODE__X2APIC_ENABLED;

    Vmm__MemoryRange r = VMM__MEMORY_RANGE__INIT;
    r.start = 0x1000000;
    r.end = 0x2000000;
    Vmm__MemoryRange *rs[] = {&r};
    Vmm__Partition__RangeList list = VMM__PARTITION__RANGE_LIST__INIT;
    list.n_ranges = 1;
    list.ranges = rs;
    Vmm__Partition__LateMapVtl0MemoryConfig late = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__INIT;
    late.allowed_ranges_case = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__ALLOWED_RANGES_RANGES;
    late.ranges = &list;
    late.policy = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_POLICY__INJECT_EXCEPTION;
    Vmm__Partition__Vtl2Config vtl2 = VMM__PARTITION__VTL2_CONFIG__INIT;
    vtl2.late_map_vtl0_memory = &late;
    Vmm__Partition__HvConfig hv = VMM__PARTITION__HV_CONFIG__INIT;
    hv.offload_enlightenments = true;
    hv.allow_device_assignment = true;
    hv.vtl2 = &vtl2;

    Vmm__Partition__NewPartition op = VMM__PARTITION__NEW_PARTITION__INIT;
    op.processor_topology = &topo;
    op.hv_config = &hv;
    op.user_mode_apic = true;
    op.isolation = VMM__PARTITION__ISOLATION_TYPE__SNP;

    Vmm__Partition__Request *out = S_REQ(new_partition, NEW_PARTITION, &op);
    Vmm__Partition__NewPartition *o = out->new_partition;
    cr_assert_not_null(o->processor_topology);
    cr_expect_eq(o->processor_topology->vp_count, 2);
    cr_assert_eq(o->processor_topology->n_vps, 2);
    cr_expect_eq(o->processor_topology->vps[1]->vp_index, 1);
    cr_expect_eq(o->processor_topology->vps[1]->apic_id, 2);
    cr_expect_eq(o->processor_topology->vps[1]->vnode, 1);
    cr_expect_eq(o->processor_topology->apic_mode, VMM__PARTITION__APIC_MODE__X2APIC_ENABLED);
    cr_assert_not_null(o->hv_config);
    cr_expect(o->hv_config->offload_enlightenments);
    cr_expect(o->hv_config->allow_device_assignment);
    cr_assert_not_null(o->hv_config->vtl2);
    Vmm__Partition__LateMapVtl0MemoryConfig *ol = o->hv_config->vtl2->late_map_vtl0_memory;
    cr_assert_not_null(ol);
    cr_assert_eq(ol->allowed_ranges_case,
                 VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__ALLOWED_RANGES_RANGES);
    cr_assert_eq(ol->ranges->n_ranges, 1);
    cr_expect_eq(ol->ranges->ranges[0]->start, 0x1000000);
    cr_expect_eq(ol->ranges->ranges[0]->end, 0x2000000);
    cr_expect_eq(ol->policy, VMM__PARTITION__LATE_MAP_VTL0_MEMORY_POLICY__INJECT_EXCEPTION);
    cr_expect(o->user_mode_apic);
    cr_expect_eq(o->isolation, VMM__PARTITION__ISOLATION_TYPE__SNP);
    S_FREE_REQ(out);
}

/* The data-less LateMapVtl0AllowedRanges::MemoryLayout variant must survive
 * as an empty message, and an absent Vtl2Config / late map must stay absent. */
Test(partition_request, new_partition_memory_layout_variant)
{
    Vmm__Partition__FromMemoryLayout from = VMM__PARTITION__FROM_MEMORY_LAYOUT__INIT;
    Vmm__Partition__LateMapVtl0MemoryConfig late = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__INIT;
    late.allowed_ranges_case = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__ALLOWED_RANGES_MEMORY_LAYOUT;
    late.memory_layout = &from;
    late.policy = VMM__PARTITION__LATE_MAP_VTL0_MEMORY_POLICY__LOG;
    Vmm__Partition__Vtl2Config vtl2 = VMM__PARTITION__VTL2_CONFIG__INIT;
    vtl2.late_map_vtl0_memory = &late;
    Vmm__Partition__HvConfig hv = VMM__PARTITION__HV_CONFIG__INIT;
    hv.vtl2 = &vtl2;
    Vmm__Partition__NewPartition op = VMM__PARTITION__NEW_PARTITION__INIT;
    op.hv_config = &hv;

    Vmm__Partition__Request *out = S_REQ(new_partition, NEW_PARTITION, &op);
    cr_expect_null(out->new_partition->processor_topology);
    cr_assert_not_null(out->new_partition->hv_config);
    cr_assert_not_null(out->new_partition->hv_config->vtl2);
    Vmm__Partition__LateMapVtl0MemoryConfig *ol = out->new_partition->hv_config->vtl2->late_map_vtl0_memory;
    cr_assert_not_null(ol);
    cr_expect_eq(ol->allowed_ranges_case,
                 VMM__PARTITION__LATE_MAP_VTL0_MEMORY_CONFIG__ALLOWED_RANGES_MEMORY_LAYOUT);
    cr_expect_eq(ol->policy, VMM__PARTITION__LATE_MAP_VTL0_MEMORY_POLICY__LOG);
    S_FREE_REQ(out);

    hv.vtl2 = NULL;
    out = S_REQ(new_partition, NEW_PARTITION, &op);
    cr_assert_not_null(out->new_partition->hv_config);
    cr_expect_null(out->new_partition->hv_config->vtl2);
    S_FREE_REQ(out);
}

Test(partition_request, get_cpuid)
{
    Vmm__Partition__GetCpuid op = VMM__PARTITION__GET_CPUID__INIT;
    op.eax = 0x40000001;
    op.ecx = 7;
    Vmm__Partition__Request *out = S_REQ(get_cpuid, GET_CPUID, &op);
    cr_expect_eq(out->get_cpuid->eax, 0x40000001);
    cr_expect_eq(out->get_cpuid->ecx, 7);
    S_FREE_REQ(out);
}

Test(partition_request, get_max_physical_address_size)
{
    Vmm__Partition__GetMaxPhysicalAddressSize op = VMM__PARTITION__GET_MAX_PHYSICAL_ADDRESS_SIZE__INIT;
    Vmm__Partition__Request *out = S_REQ(get_max_physical_address_size, GET_MAX_PHYSICAL_ADDRESS_SIZE, &op);
    cr_expect_not_null(out->get_max_physical_address_size);
    S_FREE_REQ(out);
}

Test(partition_request, build)
{
    Vmm__MemoryRange low = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0, 0xc0000000};
    Vmm__MemoryRange gap = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0xc0000000, 0x100000000};
    Vmm__MemoryRange vtl2 = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0x200000000, 0x201000000};
    Vmm__Partition__RamRange ram = VMM__PARTITION__RAM_RANGE__INIT;
    ram.range = &low;
    ram.vnode = 3;
    Vmm__Partition__RamRange *rams[] = {&ram};
    Vmm__MemoryRange *gaps[] = {&gap};
    Vmm__Partition__MemoryLayout layout = VMM__PARTITION__MEMORY_LAYOUT__INIT;
    layout.n_ram = 1;
    layout.ram = rams;
    layout.n_mmio = 1;
    layout.mmio = gaps;
    layout.vtl2_range = &vtl2;

    Vmm__Partition__CpuidRegisters res = VMM__PARTITION__CPUID_REGISTERS__INIT;
    res.eax = 1;
    res.ebx = 2;
    res.ecx = 3;
    res.edx = 4;
    Vmm__Partition__CpuidRegisters mask = VMM__PARTITION__CPUID_REGISTERS__INIT;
    mask.ecx = 0x80000000;
    Vmm__Partition__CpuidLeaf masked = VMM__PARTITION__CPUID_LEAF__INIT;
    masked.function = 1;
    masked.result = &res;
    masked.mask = &mask;
    Vmm__Partition__CpuidLeaf indexed = VMM__PARTITION__CPUID_LEAF__INIT;
    indexed.function = 7;
    indexed.opt_index_case = VMM__PARTITION__CPUID_LEAF__OPT_INDEX_INDEX;
    indexed.index = 0;
    indexed.result = &res;
    Vmm__Partition__CpuidLeaf *leaves[] = {&masked, &indexed};

    Vmm__Partition__Build op = VMM__PARTITION__BUILD__INIT;
    op.mem_layout = &layout;
    op.guest_memory = "vm0/ram";
    op.n_cpuid = 2;
    op.cpuid = leaves;
    op.opt_vtl0_alias_map_case = VMM__PARTITION__BUILD__OPT_VTL0_ALIAS_MAP_VTL0_ALIAS_MAP;
    op.vtl0_alias_map = 1ull << 46;

    Vmm__Partition__Request *out = S_REQ(build, BUILD, &op);
    Vmm__Partition__Build *o = out->build;
    cr_assert_not_null(o->mem_layout);
    cr_assert_eq(o->mem_layout->n_ram, 1);
    cr_expect_eq(o->mem_layout->ram[0]->range->end, 0xc0000000);
    cr_expect_eq(o->mem_layout->ram[0]->vnode, 3);
    cr_assert_eq(o->mem_layout->n_mmio, 1);
    cr_expect_eq(o->mem_layout->mmio[0]->start, 0xc0000000);
    cr_assert_not_null(o->mem_layout->vtl2_range);
    cr_expect_eq(o->mem_layout->vtl2_range->start, 0x200000000);
    cr_expect_str_eq(o->guest_memory, "vm0/ram");
    cr_assert_eq(o->n_cpuid, 2);
    cr_expect_eq(o->cpuid[0]->function, 1);
    cr_expect_eq(o->cpuid[0]->opt_index_case, VMM__PARTITION__CPUID_LEAF__OPT_INDEX__NOT_SET);
    cr_assert_not_null(o->cpuid[0]->mask);
    cr_expect_eq(o->cpuid[0]->mask->ecx, 0x80000000);
    cr_expect_eq(o->cpuid[0]->result->edx, 4);
    /* Subleaf 0 is present, not "any subleaf". */
    cr_expect_eq(o->cpuid[1]->opt_index_case, VMM__PARTITION__CPUID_LEAF__OPT_INDEX_INDEX);
    cr_expect_eq(o->cpuid[1]->index, 0);
    cr_expect_null(o->cpuid[1]->mask);
    cr_expect_eq(o->opt_vtl0_alias_map_case, VMM__PARTITION__BUILD__OPT_VTL0_ALIAS_MAP_VTL0_ALIAS_MAP);
    cr_expect_eq(o->vtl0_alias_map, 1ull << 46);
    S_FREE_REQ(out);
}

Test(partition_request, get_isolation)
{
    Vmm__Partition__GetIsolation op = VMM__PARTITION__GET_ISOLATION__INIT;
    Vmm__Partition__Request *out = S_REQ(get_isolation, GET_ISOLATION, &op);
    cr_expect_not_null(out->get_isolation);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Requests: the partition. */

Test(partition_request, query_features)
{
    Vmm__Partition__QueryFeatures op = VMM__PARTITION__QUERY_FEATURES__INIT;
    op.vtl = VMM__VTL__VTL1;
    Vmm__Partition__Request *out = S_REQ(query_features, QUERY_FEATURES, &op);
    cr_expect_eq(out->query_features->vtl, VMM__VTL__VTL1);
    S_FREE_REQ(out);
}

Test(partition_request, get_caps)
{
    Vmm__Partition__GetCaps op = VMM__PARTITION__GET_CAPS__INIT;
    Vmm__Partition__Request *out = S_REQ(get_caps, GET_CAPS, &op);
    cr_expect_not_null(out->get_caps);
    S_FREE_REQ(out);
}

Test(partition_request, accept_initial_pages)
{
    Vmm__MemoryRange r0 = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0x0, 0x1000};
    Vmm__MemoryRange r1 = {PROTOBUF_C_MESSAGE_INIT(&vmm__memory_range__descriptor), 0x1000, 0x3000};
    Vmm__Partition__PageAcceptance p0 = VMM__PARTITION__PAGE_ACCEPTANCE__INIT;
    Vmm__Partition__PageAcceptance p1 = VMM__PARTITION__PAGE_ACCEPTANCE__INIT;
    p0.range = &r0;
    p0.visibility = VMM__PARTITION__PAGE_VISIBILITY__EXCLUSIVE;
    p1.range = &r1;
    p1.visibility = VMM__PARTITION__PAGE_VISIBILITY__SHARED;
    Vmm__Partition__PageAcceptance *pages[] = {&p0, &p1};
    Vmm__Partition__AcceptInitialPages op = VMM__PARTITION__ACCEPT_INITIAL_PAGES__INIT;
    op.n_pages = 2;
    op.pages = pages;
    Vmm__Partition__Request *out = S_REQ(accept_initial_pages, ACCEPT_INITIAL_PAGES, &op);
    cr_assert_eq(out->accept_initial_pages->n_pages, 2);
    cr_expect_eq(out->accept_initial_pages->pages[0]->visibility, VMM__PARTITION__PAGE_VISIBILITY__EXCLUSIVE);
    cr_expect_eq(out->accept_initial_pages->pages[1]->visibility, VMM__PARTITION__PAGE_VISIBILITY__SHARED);
    cr_expect_eq(out->accept_initial_pages->pages[1]->range->end, 0x3000);
    S_FREE_REQ(out);
}

Test(partition_request, reset)
{
    Vmm__Partition__Reset op = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request *out = S_REQ(reset, RESET, &op);
    cr_expect_not_null(out->reset);
    S_FREE_REQ(out);
}

Test(partition_request, scrub_vtl)
{
    Vmm__Partition__ScrubVtl op = VMM__PARTITION__SCRUB_VTL__INIT;
    op.vtl = VMM__VTL__VTL2;
    Vmm__Partition__Request *out = S_REQ(scrub_vtl, SCRUB_VTL, &op);
    cr_expect_eq(out->scrub_vtl->vtl, VMM__VTL__VTL2);
    S_FREE_REQ(out);
}

Test(partition_request, register_doorbell)
{
    Vmm__Partition__RegisterDoorbell op = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    op.minimum_vtl = VMM__VTL__VTL1;
    op.guest_address = 0xfe001000;
    op.opt_value_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE;
    op.value = 0x1234;
    op.opt_length_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH_LENGTH;
    op.length = 4;
    op.owner = "vm0/dev/virtio-net0";
    Vmm__Partition__Request *out = S_REQ(register_doorbell, REGISTER_DOORBELL, &op);
    Vmm__Partition__RegisterDoorbell *o = out->register_doorbell;
    cr_expect_eq(o->minimum_vtl, VMM__VTL__VTL1);
    cr_expect_eq(o->guest_address, 0xfe001000);
    cr_expect_eq(o->opt_value_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE);
    cr_expect_eq(o->value, 0x1234);
    cr_expect_eq(o->opt_length_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH_LENGTH);
    cr_expect_eq(o->length, 4);
    cr_expect_str_eq(o->owner, "vm0/dev/virtio-net0");
    S_FREE_REQ(out);
}

/* Some(0) and None must stay apart: datamatch on zero is common. */
Test(partition_request, register_doorbell_optional_zero_is_not_absent)
{
    Vmm__Partition__RegisterDoorbell op = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    op.opt_value_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE;
    op.value = 0;
    Vmm__Partition__Request *out = S_REQ(register_doorbell, REGISTER_DOORBELL, &op);
    cr_expect_eq(out->register_doorbell->opt_value_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE);
    cr_expect_eq(out->register_doorbell->value, 0);
    cr_expect_eq(out->register_doorbell->opt_length_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH__NOT_SET);
    S_FREE_REQ(out);

    op.opt_value_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE__NOT_SET;
    out = S_REQ(register_doorbell, REGISTER_DOORBELL, &op);
    cr_expect_eq(out->register_doorbell->opt_value_case, VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE__NOT_SET);
    S_FREE_REQ(out);
}

Test(partition_request, unregister_doorbell)
{
    Vmm__Partition__UnregisterDoorbell op = VMM__PARTITION__UNREGISTER_DOORBELL__INIT;
    op.handle = 0xdeadbeefcafe;
    Vmm__Partition__Request *out = S_REQ(unregister_doorbell, UNREGISTER_DOORBELL, &op);
    cr_expect_eq(out->unregister_doorbell->handle, 0xdeadbeefcafe);
    S_FREE_REQ(out);
}

Test(partition_request, request_msi)
{
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = 0xfee01000;
    msi.data = 0x4031;
    Vmm__Partition__RequestMsi op = VMM__PARTITION__REQUEST_MSI__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.request = &msi;
    Vmm__Partition__Request *out = S_REQ(request_msi, REQUEST_MSI, &op);
    cr_expect_eq(out->request_msi->vtl, VMM__VTL__VTL1);
    cr_assert_not_null(out->request_msi->request);
    cr_expect_eq(out->request_msi->request->address, 0xfee01000);
    cr_expect_eq(out->request_msi->request->data, 0x4031);
    S_FREE_REQ(out);
}

Test(partition_request, new_msi_target)
{
    Vmm__Partition__NewMsiTarget op = VMM__PARTITION__NEW_MSI_TARGET__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.device = 17;
    Vmm__Partition__Request *out = S_REQ(new_msi_target, NEW_MSI_TARGET, &op);
    cr_expect_eq(out->new_msi_target->vtl, VMM__VTL__VTL2);
    cr_expect_eq(out->new_msi_target->device, 17);
    S_FREE_REQ(out);
}

Test(partition_request, drop_msi_target)
{
    Vmm__Partition__DropMsiTarget op = VMM__PARTITION__DROP_MSI_TARGET__INIT;
    op.handle = 5;
    Vmm__Partition__Request *out = S_REQ(drop_msi_target, DROP_MSI_TARGET, &op);
    cr_expect_eq(out->drop_msi_target->handle, 5);
    S_FREE_REQ(out);
}

Test(partition_request, new_msi_interrupt)
{
    Vmm__Partition__NewMsiInterrupt op = VMM__PARTITION__NEW_MSI_INTERRUPT__INIT;
    op.target = 6;
    Vmm__Partition__Request *out = S_REQ(new_msi_interrupt, NEW_MSI_INTERRUPT, &op);
    cr_expect_eq(out->new_msi_interrupt->target, 6);
    S_FREE_REQ(out);
}

Test(partition_request, enable_msi_interrupt)
{
    Vmm__Partition__EnableMsiInterrupt op = VMM__PARTITION__ENABLE_MSI_INTERRUPT__INIT;
    op.interrupt = 7;
    op.address = 0xfee00000;
    op.data = 0x41;
    Vmm__Partition__Request *out = S_REQ(enable_msi_interrupt, ENABLE_MSI_INTERRUPT, &op);
    cr_expect_eq(out->enable_msi_interrupt->interrupt, 7);
    cr_expect_eq(out->enable_msi_interrupt->address, 0xfee00000);
    cr_expect_eq(out->enable_msi_interrupt->data, 0x41);
    S_FREE_REQ(out);
}

Test(partition_request, disable_msi_interrupt)
{
    Vmm__Partition__DisableMsiInterrupt op = VMM__PARTITION__DISABLE_MSI_INTERRUPT__INIT;
    op.interrupt = 8;
    Vmm__Partition__Request *out = S_REQ(disable_msi_interrupt, DISABLE_MSI_INTERRUPT, &op);
    cr_expect_eq(out->disable_msi_interrupt->interrupt, 8);
    S_FREE_REQ(out);
}

Test(partition_request, signal_msi_interrupt)
{
    Vmm__Partition__SignalMsiInterrupt op = VMM__PARTITION__SIGNAL_MSI_INTERRUPT__INIT;
    op.interrupt = 9;
    op.address = 0xfee02000;
    op.data = 0x52;
    Vmm__Partition__Request *out = S_REQ(signal_msi_interrupt, SIGNAL_MSI_INTERRUPT, &op);
    cr_expect_eq(out->signal_msi_interrupt->interrupt, 9);
    cr_expect_eq(out->signal_msi_interrupt->address, 0xfee02000);
    cr_expect_eq(out->signal_msi_interrupt->data, 0x52);
    S_FREE_REQ(out);
}

Test(partition_request, drop_msi_interrupt)
{
    Vmm__Partition__DropMsiInterrupt op = VMM__PARTITION__DROP_MSI_INTERRUPT__INIT;
    op.interrupt = 10;
    Vmm__Partition__Request *out = S_REQ(drop_msi_interrupt, DROP_MSI_INTERRUPT, &op);
    cr_expect_eq(out->drop_msi_interrupt->interrupt, 10);
    S_FREE_REQ(out);
}

Test(partition_request, request_yield)
{
    Vmm__Partition__RequestYield op = VMM__PARTITION__REQUEST_YIELD__INIT;
    op.vp_index = 63;
    Vmm__Partition__Request *out = S_REQ(request_yield, REQUEST_YIELD, &op);
    cr_expect_eq(out->request_yield->vp_index, 63);
    S_FREE_REQ(out);
}

Test(partition_request, get_vm_state)
{
    Vmm__Partition__GetVmState op = VMM__PARTITION__GET_VM_STATE__INIT;
    op.vtl = VMM__VTL__VTL1;
    Vmm__Partition__Request *out = S_REQ(get_vm_state, GET_VM_STATE, &op);
    cr_expect_eq(out->get_vm_state->vtl, VMM__VTL__VTL1);
    S_FREE_REQ(out);
}

Test(partition_request, set_vm_state)
{
    /* Only the hypercall element is set; the others must stay absent. */
    Vmm__Partition__HypercallMsrs hc = VMM__PARTITION__HYPERCALL_MSRS__INIT;
    hc.guest_os_id = 0x8100000000000000ull;
    hc.hypercall = 0x1001;
    Vmm__Partition__VmState state = VMM__PARTITION__VM_STATE__INIT;
    state.hypercall = &hc;
    Vmm__Partition__SetVmState op = VMM__PARTITION__SET_VM_STATE__INIT;
    op.vtl = VMM__VTL__VTL0;
    op.state = &state;
    Vmm__Partition__Request *out = S_REQ(set_vm_state, SET_VM_STATE, &op);
    cr_assert_not_null(out->set_vm_state->state);
    cr_assert_not_null(out->set_vm_state->state->hypercall);
    cr_expect_eq(out->set_vm_state->state->hypercall->guest_os_id, 0x8100000000000000ull);
    cr_expect_eq(out->set_vm_state->state->hypercall->hypercall, 0x1001);
    cr_expect_null(out->set_vm_state->state->reftime);
    cr_expect_null(out->set_vm_state->state->reference_tsc_page);
    S_FREE_REQ(out);
}

Test(partition_request, modify_vtl_page_setting)
{
    Vmm__Partition__ModifyVtlPageSetting op = VMM__PARTITION__MODIFY_VTL_PAGE_SETTING__INIT;
    op.pfn = 0xabcde;
    op.flags = VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_READABLE | VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_USER_EXECUTABLE |
               VMM__PARTITION__MAP_GPA_FLAG__MAP_GPA_ADJUSTABLE;
    Vmm__Partition__Request *out = S_REQ(modify_vtl_page_setting, MODIFY_VTL_PAGE_SETTING, &op);
    cr_expect_eq(out->modify_vtl_page_setting->pfn, 0xabcde);
    cr_expect_eq(out->modify_vtl_page_setting->flags, 0x8009);
    S_FREE_REQ(out);
}

Test(partition_request, map_memory)
{
    Vmm__Partition__MapMemory op = VMM__PARTITION__MAP_MEMORY__INIT;
    op.vtl = VMM__VTL__VTL0;
    op.gpa = 0x100000000;
    op.size = 0x40000000;
    op.writable = true;
    op.executable = true;
    op.memory_object = "vm0/ram";
    op.offset = 0xc0000000;
    Vmm__Partition__Request *out = S_REQ(map_memory, MAP_MEMORY, &op);
    Vmm__Partition__MapMemory *o = out->map_memory;
    cr_expect_eq(o->gpa, 0x100000000);
    cr_expect_eq(o->size, 0x40000000);
    cr_expect(o->writable);
    cr_expect(o->executable);
    cr_expect_str_eq(o->memory_object, "vm0/ram");
    cr_expect_eq(o->offset, 0xc0000000);
    S_FREE_REQ(out);
}

Test(partition_request, unmap_memory)
{
    Vmm__Partition__UnmapMemory op = VMM__PARTITION__UNMAP_MEMORY__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.gpa = 0x2000;
    op.size = 0x3000;
    Vmm__Partition__Request *out = S_REQ(unmap_memory, UNMAP_MEMORY, &op);
    cr_expect_eq(out->unmap_memory->vtl, VMM__VTL__VTL2);
    cr_expect_eq(out->unmap_memory->gpa, 0x2000);
    cr_expect_eq(out->unmap_memory->size, 0x3000);
    S_FREE_REQ(out);
}

Test(partition_request, prefetch_memory)
{
    Vmm__Partition__PrefetchMemory op = VMM__PARTITION__PREFETCH_MEMORY__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.gpa = 0x4000;
    op.size = 0x5000;
    Vmm__Partition__Request *out = S_REQ(prefetch_memory, PREFETCH_MEMORY, &op);
    cr_expect_eq(out->prefetch_memory->vtl, VMM__VTL__VTL1);
    cr_expect_eq(out->prefetch_memory->gpa, 0x4000);
    cr_expect_eq(out->prefetch_memory->size, 0x5000);
    S_FREE_REQ(out);
}

Test(partition_request, pin_memory)
{
    Vmm__Partition__PinMemory op = VMM__PARTITION__PIN_MEMORY__INIT;
    op.vtl = VMM__VTL__VTL1;
    op.gpa = 0x6000;
    op.size = 0x7000;
    Vmm__Partition__Request *out = S_REQ(pin_memory, PIN_MEMORY, &op);
    cr_expect_eq(out->pin_memory->vtl, VMM__VTL__VTL1);
    cr_expect_eq(out->pin_memory->gpa, 0x6000);
    cr_expect_eq(out->pin_memory->size, 0x7000);
    S_FREE_REQ(out);
}

Test(partition_request, get_reference_time)
{
    Vmm__Partition__GetReferenceTime op = VMM__PARTITION__GET_REFERENCE_TIME__INIT;
    Vmm__Partition__Request *out = S_REQ(get_reference_time, GET_REFERENCE_TIME, &op);
    cr_expect_not_null(out->get_reference_time);
    S_FREE_REQ(out);
}

Test(partition_request, new_virtual_device)
{
    Vmm__Partition__NewVirtualDevice op = VMM__PARTITION__NEW_VIRTUAL_DEVICE__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.device_id = 0x1122334455667788ull;
    Vmm__Partition__Request *out = S_REQ(new_virtual_device, NEW_VIRTUAL_DEVICE, &op);
    cr_expect_eq(out->new_virtual_device->vtl, VMM__VTL__VTL2);
    cr_expect_eq(out->new_virtual_device->device_id, 0x1122334455667788ull);
    S_FREE_REQ(out);
}

Test(partition_request, drop_virtual_device)
{
    Vmm__Partition__DropVirtualDevice op = VMM__PARTITION__DROP_VIRTUAL_DEVICE__INIT;
    op.device = 11;
    Vmm__Partition__Request *out = S_REQ(drop_virtual_device, DROP_VIRTUAL_DEVICE, &op);
    cr_expect_eq(out->drop_virtual_device->device, 11);
    S_FREE_REQ(out);
}

Test(partition_request, register_vpci_interrupt)
{
    uint32_t targets[] = {0, 3, 5};
    Vmm__Partition__VpciInterruptParameters params = VMM__PARTITION__VPCI_INTERRUPT_PARAMETERS__INIT;
    params.vector = 0x30;
    params.multicast = true;
    params.n_target_processors = 3;
    params.target_processors = targets;
    Vmm__Partition__RegisterVpciInterrupt op = VMM__PARTITION__REGISTER_VPCI_INTERRUPT__INIT;
    op.device = 12;
    op.vector_count = 4;
    op.params = &params;
    Vmm__Partition__Request *out = S_REQ(register_vpci_interrupt, REGISTER_VPCI_INTERRUPT, &op);
    Vmm__Partition__RegisterVpciInterrupt *o = out->register_vpci_interrupt;
    cr_expect_eq(o->device, 12);
    cr_expect_eq(o->vector_count, 4);
    cr_assert_not_null(o->params);
    cr_expect_eq(o->params->vector, 0x30);
    cr_expect(o->params->multicast);
    cr_assert_eq(o->params->n_target_processors, 3);
    cr_expect_arr_eq(o->params->target_processors, targets, sizeof(targets));
    S_FREE_REQ(out);
}

Test(partition_request, unregister_vpci_interrupt)
{
    Vmm__Partition__UnregisterVpciInterrupt op = VMM__PARTITION__UNREGISTER_VPCI_INTERRUPT__INIT;
    op.device = 12;
    op.address = 0xfee03000;
    op.data = 0x33;
    Vmm__Partition__Request *out = S_REQ(unregister_vpci_interrupt, UNREGISTER_VPCI_INTERRUPT, &op);
    cr_expect_eq(out->unregister_vpci_interrupt->device, 12);
    cr_expect_eq(out->unregister_vpci_interrupt->address, 0xfee03000);
    cr_expect_eq(out->unregister_vpci_interrupt->data, 0x33);
    S_FREE_REQ(out);
}

Test(partition_request, set_irq_route)
{
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = 0xfee00000;
    msi.data = 0x8031;
    Vmm__Partition__SetIrqRoute op = VMM__PARTITION__SET_IRQ_ROUTE__INIT;
    op.irq = 23;
    op.request = &msi;
    Vmm__Partition__Request *out = S_REQ(set_irq_route, SET_IRQ_ROUTE, &op);
    cr_expect_eq(out->set_irq_route->irq, 23);
    cr_assert_not_null(out->set_irq_route->request);
    cr_expect_eq(out->set_irq_route->request->data, 0x8031);
    S_FREE_REQ(out);

    /* None = masked: the route must come back absent. */
    op.request = NULL;
    out = S_REQ(set_irq_route, SET_IRQ_ROUTE, &op);
    cr_expect_null(out->set_irq_route->request);
    S_FREE_REQ(out);
}

Test(partition_request, assert_irq)
{
    Vmm__Partition__AssertIrq op = VMM__PARTITION__ASSERT_IRQ__INIT;
    op.irq = 4;
    Vmm__Partition__Request *out = S_REQ(assert_irq, ASSERT_IRQ, &op);
    cr_expect_eq(out->assert_irq->irq, 4);
    S_FREE_REQ(out);
}

Test(partition_request, pulse_lint)
{
    Vmm__Partition__PulseLint op = VMM__PARTITION__PULSE_LINT__INIT;
    op.vp_index = 2;
    op.vtl = VMM__VTL__VTL1;
    op.lint = 1;
    Vmm__Partition__Request *out = S_REQ(pulse_lint, PULSE_LINT, &op);
    cr_expect_eq(out->pulse_lint->vp_index, 2);
    cr_expect_eq(out->pulse_lint->vtl, VMM__VTL__VTL1);
    cr_expect_eq(out->pulse_lint->lint, 1);
    S_FREE_REQ(out);
}

Test(partition_request, set_spi_irq)
{
    Vmm__Partition__SetSpiIrq op = VMM__PARTITION__SET_SPI_IRQ__INIT;
    op.vtl = VMM__VTL__VTL2;
    op.irq = 40;
    op.high = true;
    Vmm__Partition__Request *out = S_REQ(set_spi_irq, SET_SPI_IRQ, &op);
    cr_expect_eq(out->set_spi_irq->vtl, VMM__VTL__VTL2);
    cr_expect_eq(out->set_spi_irq->irq, 40);
    cr_expect(out->set_spi_irq->high);
    S_FREE_REQ(out);
}

/* ------------------------------------------------------------------------ */
/* Replies. */

Test(partition_reply, availability)
{
    Vmm__Partition__Availability res = VMM__PARTITION__AVAILABILITY__INIT;
    res.available = false;
    res.missing = "/dev/kvm: permission denied";
    Vmm__Partition__Reply *out = S_REPLY(availability, AVAILABILITY, &res);
    cr_expect_not(out->availability->available);
    cr_expect_str_eq(out->availability->missing, "/dev/kvm: permission denied");
    S_FREE_REPLY(out);
}

Test(partition_reply, cpuid)
{
    Vmm__Partition__CpuidRegisters regs = VMM__PARTITION__CPUID_REGISTERS__INIT;
    regs.eax = 0xd;
    regs.ebx = 0x756e6547;
    regs.ecx = 0x6c65746e;
    regs.edx = 0x49656e69;
    Vmm__Partition__CpuidResult res = VMM__PARTITION__CPUID_RESULT__INIT;
    res.result = &regs;
    Vmm__Partition__Reply *out = S_REPLY(cpuid, CPUID, &res);
    cr_assert_not_null(out->cpuid->result);
    cr_expect_eq(out->cpuid->result->eax, 0xd);
    cr_expect_eq(out->cpuid->result->ebx, 0x756e6547);
    cr_expect_eq(out->cpuid->result->ecx, 0x6c65746e);
    cr_expect_eq(out->cpuid->result->edx, 0x49656e69);
    S_FREE_REPLY(out);
}

Test(partition_reply, max_physical_address_size)
{
    Vmm__Partition__PhysicalAddressSize res = VMM__PARTITION__PHYSICAL_ADDRESS_SIZE__INIT;
    res.bits = 46;
    Vmm__Partition__Reply *out = S_REPLY(max_physical_address_size, MAX_PHYSICAL_ADDRESS_SIZE, &res);
    cr_expect_eq(out->max_physical_address_size->bits, 46);
    S_FREE_REPLY(out);
}

Test(partition_reply, build)
{
    char *vps[] = {"vm0/vp/0", "vm0/vp/1"};
    Vmm__Partition__BuildResult res = VMM__PARTITION__BUILD_RESULT__INIT;
    res.partition = "vm0/partition";
    res.n_vps = 2;
    res.vps = vps;
    res.synic = "vm0/synic";
    Vmm__Partition__Reply *out = S_REPLY(build, BUILD, &res);
    cr_expect_str_eq(out->build->partition, "vm0/partition");
    cr_assert_eq(out->build->n_vps, 2);
    cr_expect_str_eq(out->build->vps[0], "vm0/vp/0");
    cr_expect_str_eq(out->build->vps[1], "vm0/vp/1");
    cr_expect_str_eq(out->build->synic, "vm0/synic");
    S_FREE_REPLY(out);
}

Test(partition_reply, isolation)
{
    Vmm__Partition__IsolationInfo res = VMM__PARTITION__ISOLATION_INFO__INIT;
    res.isolation = VMM__PARTITION__ISOLATION_TYPE__TDX;
    res.is_isolated = true;
    res.is_hardware_isolated = true;
    Vmm__Partition__Reply *out = S_REPLY(isolation, ISOLATION, &res);
    cr_expect_eq(out->isolation->isolation, VMM__PARTITION__ISOLATION_TYPE__TDX);
    cr_expect(out->isolation->is_isolated);
    cr_expect(out->isolation->is_hardware_isolated);
    S_FREE_REPLY(out);
}

Test(partition_reply, features)
{
    Vmm__Partition__Features res = VMM__PARTITION__FEATURES__INIT;
    res.reset = true;
    res.doorbells = true;
    res.msi_interrupt_target = true;
    res.reference_time = true;
    Vmm__Partition__Reply *out = S_REPLY(features, FEATURES, &res);
    cr_expect_not(out->features->initial_accept_pages);
    cr_expect(out->features->reset);
    cr_expect_not(out->features->vtl_scrub);
    cr_expect(out->features->doorbells);
    cr_expect(out->features->msi_interrupt_target);
    cr_expect(out->features->reference_time);
    cr_expect_not(out->features->virtual_devices);
    S_FREE_REPLY(out);
}

Test(partition_reply, caps_x86)
{
    Vmm__Partition__XsaveCapabilities xsave = VMM__PARTITION__XSAVE_CAPABILITIES__INIT;
    xsave.features = 0x2e7;
    xsave.supervisor_features = 0x1800;
    xsave.standard_len = 2696;
    xsave.compact_len = 2440;
    Vmm__Partition__X86Capabilities x86 = VMM__PARTITION__X86_CAPABILITIES__INIT;
    x86.vendor = (ProtobufCBinaryData){12, (uint8_t *)"GenuineIntel"};
    x86.hv1 = true;
    x86.hv1_reference_tsc_page = true;
    x86.xsave = &xsave;
    x86.x2apic = true;
    x86.reset_rdx = 0x806f8;
    x86.tsc_aux = true;
    x86.opt_vtom_case = VMM__PARTITION__X86_CAPABILITIES__OPT_VTOM_VTOM;
    x86.vtom = 1ull << 47;
    x86.physical_address_width = 46;
    x86.nxe_forced_on = true;
    Vmm__Partition__PartitionCapabilities caps = VMM__PARTITION__PARTITION_CAPABILITIES__INIT;
    caps.arch_case = VMM__PARTITION__PARTITION_CAPABILITIES__ARCH_X86;
    caps.x86 = &x86;
    Vmm__Partition__Reply *out = S_REPLY(caps, CAPS, &caps);
    cr_assert_eq(out->caps->arch_case, VMM__PARTITION__PARTITION_CAPABILITIES__ARCH_X86);
    Vmm__Partition__X86Capabilities *o = out->caps->x86;
    cr_assert_eq(o->vendor.len, 12);
    cr_expect_arr_eq(o->vendor.data, "GenuineIntel", 12);
    cr_expect(o->hv1);
    cr_expect(o->hv1_reference_tsc_page);
    cr_assert_not_null(o->xsave);
    cr_expect_eq(o->xsave->features, 0x2e7);
    cr_expect_eq(o->xsave->supervisor_features, 0x1800);
    cr_expect_eq(o->xsave->standard_len, 2696);
    cr_expect_eq(o->xsave->compact_len, 2440);
    cr_expect(o->x2apic);
    cr_expect_not(o->x2apic_enabled);
    cr_expect_eq(o->reset_rdx, 0x806f8);
    cr_expect(o->tsc_aux);
    cr_expect_eq(o->opt_vtom_case, VMM__PARTITION__X86_CAPABILITIES__OPT_VTOM_VTOM);
    cr_expect_eq(o->vtom, 1ull << 47);
    cr_expect_eq(o->physical_address_width, 46);
    cr_expect(o->nxe_forced_on);
    S_FREE_REPLY(out);
}

Test(partition_reply, caps_aarch64)
{
    Vmm__Partition__Aarch64Capabilities arm = VMM__PARTITION__AARCH64_CAPABILITIES__INIT;
    arm.vendor = 0x41;
    Vmm__Partition__PartitionCapabilities caps = VMM__PARTITION__PARTITION_CAPABILITIES__INIT;
    caps.arch_case = VMM__PARTITION__PARTITION_CAPABILITIES__ARCH_AARCH64;
    caps.aarch64 = &arm;
    Vmm__Partition__Reply *out = S_REPLY(caps, CAPS, &caps);
    cr_assert_eq(out->caps->arch_case, VMM__PARTITION__PARTITION_CAPABILITIES__ARCH_AARCH64);
    cr_expect_eq(out->caps->aarch64->vendor, 0x41);
    S_FREE_REPLY(out);
}

Test(partition_reply, doorbell)
{
    Vmm__Partition__DoorbellHandle res = VMM__PARTITION__DOORBELL_HANDLE__INIT;
    res.handle = 0x100000001ull;
    Vmm__Partition__Reply *out = S_REPLY(doorbell, DOORBELL, &res);
    cr_expect_eq(out->doorbell->handle, 0x100000001ull);
    S_FREE_REPLY(out);
}

Test(partition_reply, msi_target)
{
    Vmm__Partition__MsiTargetHandle res = VMM__PARTITION__MSI_TARGET_HANDLE__INIT;
    res.handle = 21;
    Vmm__Partition__Reply *out = S_REPLY(msi_target, MSI_TARGET, &res);
    cr_expect_eq(out->msi_target->handle, 21);
    S_FREE_REPLY(out);
}

Test(partition_reply, msi_interrupt)
{
    Vmm__Partition__MsiInterruptHandle res = VMM__PARTITION__MSI_INTERRUPT_HANDLE__INIT;
    res.handle = 22;
    Vmm__Partition__Reply *out = S_REPLY(msi_interrupt, MSI_INTERRUPT, &res);
    cr_expect_eq(out->msi_interrupt->handle, 22);
    S_FREE_REPLY(out);
}

Test(partition_reply, vm_state)
{
    Vmm__Partition__HypercallMsrs hc = VMM__PARTITION__HYPERCALL_MSRS__INIT;
    hc.guest_os_id = 0x1;
    hc.hypercall = 0x2001;
    Vmm__Partition__ReferenceTimeCounter rt = VMM__PARTITION__REFERENCE_TIME_COUNTER__INIT;
    rt.value = 123456789;
    Vmm__Partition__ReferenceTscPage tsc = VMM__PARTITION__REFERENCE_TSC_PAGE__INIT;
    tsc.value = 0x3001;
    Vmm__Partition__VmState res = VMM__PARTITION__VM_STATE__INIT;
    res.hypercall = &hc;
    res.reftime = &rt;
    res.reference_tsc_page = &tsc;
    Vmm__Partition__Reply *out = S_REPLY(vm_state, VM_STATE, &res);
    cr_assert_not_null(out->vm_state->hypercall);
    cr_assert_not_null(out->vm_state->reftime);
    cr_assert_not_null(out->vm_state->reference_tsc_page);
    cr_expect_eq(out->vm_state->hypercall->hypercall, 0x2001);
    cr_expect_eq(out->vm_state->reftime->value, 123456789);
    cr_expect_eq(out->vm_state->reference_tsc_page->value, 0x3001);
    S_FREE_REPLY(out);
}

Test(partition_reply, reference_time)
{
    Vmm__Partition__ReferenceTscInfo tsc = VMM__PARTITION__REFERENCE_TSC_INFO__INIT;
    tsc.sequence = 3;
    tsc.scale = 0x00a0000000000000ull;
    tsc.offset = -5000;
    Vmm__Partition__ReferenceTime res = VMM__PARTITION__REFERENCE_TIME__INIT;
    res.ref_time = 987654321;
    res.opt_system_time_case = VMM__PARTITION__REFERENCE_TIME__OPT_SYSTEM_TIME_SYSTEM_TIME_NS;
    res.system_time_ns = 1700000000123456789ll;
    res.tsc = &tsc;
    Vmm__Partition__Reply *out = S_REPLY(reference_time, REFERENCE_TIME, &res);
    Vmm__Partition__ReferenceTime *o = out->reference_time;
    cr_expect_eq(o->ref_time, 987654321);
    cr_expect_eq(o->opt_system_time_case, VMM__PARTITION__REFERENCE_TIME__OPT_SYSTEM_TIME_SYSTEM_TIME_NS);
    cr_expect_eq(o->system_time_ns, 1700000000123456789ll);
    cr_assert_not_null(o->tsc);
    cr_expect_eq(o->tsc->sequence, 3);
    cr_expect_eq(o->tsc->scale, 0x00a0000000000000ull);
    cr_expect_eq(o->tsc->offset, -5000);
    S_FREE_REPLY(out);
}

Test(partition_reply, virtual_device)
{
    Vmm__Partition__VirtualDeviceHandle res = VMM__PARTITION__VIRTUAL_DEVICE_HANDLE__INIT;
    res.handle = 23;
    Vmm__Partition__Reply *out = S_REPLY(virtual_device, VIRTUAL_DEVICE, &res);
    cr_expect_eq(out->virtual_device->handle, 23);
    S_FREE_REPLY(out);
}

Test(partition_request, save_and_restore_state)
{
    Vmm__Partition__SaveState save = VMM__PARTITION__SAVE_STATE__INIT;
    Vmm__Partition__Request *out = S_REQ(save_state, SAVE_STATE, &save);
    cr_expect_not_null(out->save_state);
    S_FREE_REQ(out);

    uint8_t pit[16] = {1, 2, 3};
    uint32_t high[2] = {4, 23};
    Vmm__Partition__SavedIrqRoute route = VMM__PARTITION__SAVED_IRQ_ROUTE__INIT;
    route.irq = 5;
    route.address = 0xfee01000;
    route.data = 0x41;
    Vmm__Partition__SavedIrqRoute *routes[1] = {&route};
    Vmm__Partition__VmState vm = VMM__PARTITION__VM_STATE__INIT;
    Vmm__Partition__SavedState st = VMM__PARTITION__SAVED_STATE__INIT;
    st.pit = (ProtobufCBinaryData){sizeof pit, pit};
    st.clock_ns = 123456789;
    st.irq_routes = routes;
    st.n_irq_routes = 1;
    st.lines_high = high;
    st.n_lines_high = 2;
    st.vm_state = &vm;
    Vmm__Partition__RestoreState restore = VMM__PARTITION__RESTORE_STATE__INIT;
    restore.state = &st;
    out = S_REQ(restore_state, RESTORE_STATE, &restore);
    const Vmm__Partition__SavedState *got = out->restore_state->state;
    cr_expect_eq(got->pit.len, sizeof pit);
    cr_expect_eq(got->clock_ns, 123456789);
    cr_expect_eq(got->n_irq_routes, 1);
    cr_expect_eq(got->irq_routes[0]->data, 0x41);
    cr_expect_eq(got->n_lines_high, 2);
    cr_expect_eq(got->lines_high[1], 23);
    cr_expect_not_null(got->vm_state);
    S_FREE_REQ(out);
}

Test(partition_request, save_and_load_memory)
{
    Vmm__Partition__SaveMemory save = VMM__PARTITION__SAVE_MEMORY__INIT;
    save.path = "/tmp/snap/ram";
    Vmm__Partition__Request *out = S_REQ(save_memory, SAVE_MEMORY, &save);
    cr_expect_str_eq(out->save_memory->path, "/tmp/snap/ram");
    S_FREE_REQ(out);
    Vmm__Partition__LoadMemory load = VMM__PARTITION__LOAD_MEMORY__INIT;
    load.path = "/tmp/snap/ram";
    out = S_REQ(load_memory, LOAD_MEMORY, &load);
    cr_expect_str_eq(out->load_memory->path, "/tmp/snap/ram");
    S_FREE_REQ(out);
}

Test(partition_reply, saved_state)
{
    Vmm__Partition__SavedState res = VMM__PARTITION__SAVED_STATE__INIT;
    res.clock_ns = 42;
    Vmm__Partition__Reply *out = S_REPLY(saved_state, SAVED_STATE, &res);
    cr_expect_eq(out->saved_state->clock_ns, 42);
    S_FREE_REPLY(out);
}

Test(partition_reply, vpci_interrupt)
{
    Vmm__Partition__MsiAddressData res = VMM__PARTITION__MSI_ADDRESS_DATA__INIT;
    res.address = 0xfee04000;
    res.data = 0x4044;
    Vmm__Partition__Reply *out = S_REPLY(vpci_interrupt, VPCI_INTERRUPT, &res);
    cr_expect_eq(out->vpci_interrupt->address, 0xfee04000);
    cr_expect_eq(out->vpci_interrupt->data, 0x4044);
    S_FREE_REPLY(out);
}

/* ------------------------------------------------------------------------ */
/* Events. */

Test(partition_event, doorbell_signalled)
{
    Vmm__Partition__DoorbellSignalled ds = VMM__PARTITION__DOORBELL_SIGNALLED__INIT;
    ds.handle = 24;
    ds.guest_address = 0xfe002000;
    Vmm__Partition__Event *out = S_EVENT(doorbell_signalled, DOORBELL_SIGNALLED, &ds);
    cr_expect_eq(out->doorbell_signalled->handle, 24);
    cr_expect_eq(out->doorbell_signalled->guest_address, 0xfe002000);
    S_FREE_EVENT(out);
}

/* ------------------------------------------------------------------------ */
/* Bad input. */

/* An empty buffer is a valid proto3 encoding of "no op": it decodes, but to
 * NOT_SET, which the partition actor must answer with INVALID_ARGUMENT. */
Test(partition_bad_input, empty_buffer_is_not_set)
{
    proto_check_empty_decodes_unset(&vmm__partition__request__descriptor);
}

/* Every strict prefix of a one-op request cuts its only field short. */
Test(partition_bad_input, truncated_buffers_fail)
{
    Vmm__Partition__RegisterDoorbell op = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    op.guest_address = 0xfe001000;
    op.opt_value_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE;
    op.value = 1;
    op.owner = "vm0/dev/x";
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL;
    req.register_doorbell = &op;
    proto_check_prefixes_fail(&req.base);
}

Test(partition_bad_input, garbage_fails)
{
    proto_check_garbage_fails(s_bodies, PROTO_CHECK_LEN(s_bodies));
}

/* Flipping bytes of a valid request either fails to decode or decodes to a
 * message that round-trips; never a crash or a leak (ASan). */
Test(partition_bad_input, mutated_bytes_are_safe)
{
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = 0xfee00000;
    msi.data = 0x31;
    Vmm__Partition__SetIrqRoute op = VMM__PARTITION__SET_IRQ_ROUTE__INIT;
    op.irq = 9;
    op.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE;
    req.set_irq_route = &op;
    proto_check_mutations_safe(&req.base);
}
