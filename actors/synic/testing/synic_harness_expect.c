/* The synic harness's Criterion side: a harness that fails the test when
 * it cannot start, and the guest's checked steps (synic_harness.h). */
#include <criterion/criterion.h>

#include "actors/synic/testing/synic_harness.h"

#define S_EXPECT_TIMEOUT_MS 2000

harness_t *harness_new(uint32_t vp_count, uint32_t queue_limit)
{
    harness_t *h = harness_start(vp_count, queue_limit);
    cr_assert_not_null(h, "the synic harness did not start (%u VPs)", vp_count);
    return h;
}

/* ---- The guest's side ------------------------------------------------------------ */

void harness_wrmsr_ok(harness_t *h, uint32_t vp, uint32_t index, uint64_t value)
{
    int rc = harness_wrmsr(h, vp, index, value);
    cr_assert_eq(rc, 0, "VP %u WRMSR 0x%x = 0x%llx: %d (%s)", vp, index,
                 (unsigned long long)value, rc, rc == 1 ? "#GP" : h->last_error);
}

uint64_t harness_rdmsr_ok(harness_t *h, uint32_t vp, uint32_t index)
{
    uint64_t value = 0;
    int rc = harness_rdmsr(h, vp, index, &value);
    cr_assert_eq(rc, 0, "VP %u RDMSR 0x%x: %d (%s)", vp, index, rc,
                 rc == 1 ? "#GP" : h->last_error);
    return value;
}

void harness_enable_synic(harness_t *h, uint32_t vp)
{
    harness_wrmsr_ok(h, vp, SYNIC_MSR_SIMP, HARNESS_SIMP(vp) | SYNIC_ENABLE);
    harness_wrmsr_ok(h, vp, SYNIC_MSR_SIEFP, HARNESS_SIEFP(vp) | SYNIC_ENABLE);
    harness_wrmsr_ok(h, vp, SYNIC_MSR_SCONTROL, SYNIC_ENABLE);
}

void harness_unmask(harness_t *h, uint32_t vp, uint32_t sint, uint32_t vector)
{
    harness_wrmsr_ok(h, vp, SYNIC_MSR_SINT0 + sint, vector);
}

void harness_read_slot(harness_t *h, uint32_t vp, uint32_t sint, uint8_t slot[256])
{
    cr_assert_eq(fake_partition_read(h->partition, HARNESS_SIMP(vp) + 256u * sint, slot, 256),
                 0);
}

bool harness_free_slot(harness_t *h, uint32_t vp, uint32_t sint)
{
    uint64_t gpa = HARNESS_SIMP(vp) + 256u * sint;
    static const uint8_t none[4];
    cr_assert_eq(fake_partition_write(h->partition, gpa, none, sizeof none), 0);
    uint8_t flags;
    cr_assert_eq(fake_partition_read(h->partition, gpa + SYNIC_MESSAGE_FLAGS_OFFSET, &flags, 1),
                 0);
    bool pending = flags & SYNIC_MESSAGE_PENDING;
    if (pending)
        harness_wrmsr_ok(h, vp, SYNIC_MSR_EOM, 0);
    return pending;
}

void harness_expect_msi(harness_t *h, uint32_t vp, uint32_t vector)
{
    fake_msi_t msi;
    cr_assert_eq(fake_partition_next_msi(h->partition, S_EXPECT_TIMEOUT_MS, &msi), 0,
                 "no MSI for VP %u vector 0x%x", vp, vector);
    cr_assert_eq(msi.address, 0xfee00000u | (uint64_t)vp << 12,
                 "MSI address 0x%llx, not VP %u's", (unsigned long long)msi.address, vp);
    cr_assert_eq(msi.data, vector, "MSI vector 0x%x, not 0x%x", msi.data, vector);
}

void harness_expect_no_msi(harness_t *h, int ms)
{
    fake_msi_t msi;
    int rc = fake_partition_next_msi(h->partition, ms, &msi);
    cr_assert_neq(rc, 0, "an unexpected MSI: address 0x%llx vector 0x%x",
                  (unsigned long long)msi.address, msi.data);
}

