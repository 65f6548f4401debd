/* The synic's synthetic MSRs: values, read-only and reserved bits (#GP),
 * the hypercall page, the reference counter and TSC page. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "actors/synic/testing/synic_harness.h"

static harness_t *s_h;

static void s_start(void)
{
    s_h = harness_new(2, 0);
}

static void s_stop(void)
{
    harness_destroy(&s_h);
}

static void s_expect_gp_read(uint32_t vp, uint32_t index)
{
    uint64_t value;
    cr_expect_eq(harness_rdmsr(s_h, vp, index, &value), 1, "RDMSR 0x%x: a #GP", index);
}

static void s_expect_gp_write(uint32_t vp, uint32_t index, uint64_t value)
{
    cr_expect_eq(harness_wrmsr(s_h, vp, index, value), 1, "WRMSR 0x%x = 0x%llx: a #GP", index,
                 (unsigned long long)value);
}

Test(msr, unknown_synthetic_msrs_are_gp, .init = s_start, .fini = s_stop)
{
    static const uint32_t unknown[] = {0x40000003, 0x40000010, 0x40000022, 0x40000085,
                                       0x4000008f, 0x400000a0, 0x400000b8, 0x400000ff};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        s_expect_gp_read(0, unknown[i]);
        s_expect_gp_write(0, unknown[i], 0);
    }
    cr_expect_eq(harness_inspect(s_h, "msr_gp"), 16);
}

Test(msr, guest_os_id_is_partition_wide, .init = s_start, .fini = s_stop)
{
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID), 0);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 0x8100123456789abcull);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_GUEST_OS_ID), 0x8100123456789abcull);
}

Test(msr, hypercall_page_stays_disabled_without_a_guest_os_id, .init = s_start,
     .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL, 0x5000 | SYNIC_HYPERCALL_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL), 0x5000);
    uint8_t code[3];
    fake_partition_read(s_h->partition, 0x5000, code, sizeof code);
    cr_expect_eq(code[0], 0, "nothing written");
}

Test(msr, enabling_the_hypercall_page_writes_its_code, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 1);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL, 0x5000 | SYNIC_HYPERCALL_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_HYPERCALL), 0x5000 | SYNIC_HYPERCALL_ENABLE,
                 "partition-wide");
    uint8_t code[4];
    fake_partition_read(s_h->partition, 0x5000, code, sizeof code);
    cr_expect_eq(code[0], 0xe5, "in eax, imm8");
    cr_expect_eq(code[1], SYNIC_HYPERCALL_PORT);
    cr_expect_eq(code[2], 0xc3, "ret");
    cr_expect_eq(code[3], 0);
}

Test(msr, hypercall_reserved_bits_and_a_page_outside_ram_are_gp, .init = s_start,
     .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 1);
    s_expect_gp_write(0, SYNIC_MSR_HYPERCALL, 0x5000 | SYNIC_HYPERCALL_ENABLE | 0x4);
    s_expect_gp_write(0, SYNIC_MSR_HYPERCALL, 0x5000 | 0x800);
    s_expect_gp_write(0, SYNIC_MSR_HYPERCALL, 0x100000000ull | SYNIC_HYPERCALL_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL), 0, "unchanged");
}

Test(msr, a_locked_hypercall_msr_is_immutable, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 1);
    uint64_t locked = 0x6000 | SYNIC_HYPERCALL_ENABLE | SYNIC_HYPERCALL_LOCKED;
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL, locked);
    s_expect_gp_write(1, SYNIC_MSR_HYPERCALL, 0x7000 | SYNIC_HYPERCALL_ENABLE);
    s_expect_gp_write(0, SYNIC_MSR_HYPERCALL, 0);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL, locked);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL), locked);
}

Test(msr, zeroing_the_guest_os_id_disables_the_hypercall_page, .init = s_start,
     .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_GUEST_OS_ID, 1);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL, 0x5000 | SYNIC_HYPERCALL_ENABLE);
    harness_wrmsr_ok(s_h, 1, SYNIC_MSR_GUEST_OS_ID, 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_HYPERCALL), 0x5000);
}

Test(msr, vp_index_is_the_vp_and_read_only, .init = s_start, .fini = s_stop)
{
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_VP_INDEX), 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_VP_INDEX), 1);
    s_expect_gp_write(1, SYNIC_MSR_VP_INDEX, 1);
}

Test(msr, sversion_is_one_and_read_only, .init = s_start, .fini = s_stop)
{
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SVERSION), 1);
    s_expect_gp_write(0, SYNIC_MSR_SVERSION, 1);
}

Test(msr, eom_reads_zero_and_takes_any_write, .init = s_start, .fini = s_stop)
{
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_EOM), 0);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_EOM, 0x1234);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_EOM), 0);
    cr_expect_eq(harness_inspect(s_h, "vp0/eoms"), 1);
}

Test(msr, the_reference_counter_is_read_only, .init = s_start, .fini = s_stop)
{
    s_expect_gp_write(0, SYNIC_MSR_TIME_REF_COUNT, 0);
}

Test(msr, scontrol_simp_siefp_are_per_vp_with_reserved_bits_gp, .init = s_start,
     .fini = s_stop)
{
    for (uint32_t vp = 0; vp < 2; vp++) {
        cr_expect_eq(harness_rdmsr_ok(s_h, vp, SYNIC_MSR_SCONTROL), 0, "reset value");
        cr_expect_eq(harness_rdmsr_ok(s_h, vp, SYNIC_MSR_SIMP), 0);
        cr_expect_eq(harness_rdmsr_ok(s_h, vp, SYNIC_MSR_SIEFP), 0);
    }
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SCONTROL, SYNIC_ENABLE);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIMP, 0x20000 | SYNIC_ENABLE);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIEFP, 0x21000);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SCONTROL), SYNIC_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SIMP), 0x20000 | SYNIC_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SIEFP), 0x21000);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_SIMP), 0, "VP 1 has its own");
    s_expect_gp_write(1, SYNIC_MSR_SCONTROL, 0x2);
    s_expect_gp_write(1, SYNIC_MSR_SIMP, 0x20000 | SYNIC_ENABLE | 0x10);
    s_expect_gp_write(1, SYNIC_MSR_SIEFP, 0x21000 | 0x800);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_SCONTROL), 0, "unchanged");
    cr_expect_eq(harness_inspect(s_h, "vp0/simp"), 0x20001);
}

Test(msr, enabling_simp_or_siefp_zeroes_the_page, .init = s_start, .fini = s_stop)
{
    uint8_t junk[SYNIC_PAGE_SIZE], page[SYNIC_PAGE_SIZE], zeros[SYNIC_PAGE_SIZE] = {0};
    memset(junk, 0xa5, sizeof junk);
    fake_partition_write(s_h->partition, 0x20000, junk, sizeof junk);
    fake_partition_write(s_h->partition, 0x21000, junk, sizeof junk);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIMP, 0x20000 | SYNIC_ENABLE);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIEFP, 0x21000 | SYNIC_ENABLE);
    fake_partition_read(s_h->partition, 0x20000, page, sizeof page);
    cr_expect_arr_eq(page, zeros, sizeof page, "the SIM page starts empty");
    fake_partition_read(s_h->partition, 0x21000, page, sizeof page);
    cr_expect_arr_eq(page, zeros, sizeof page, "the SIEF page starts clear");
    /* Writing the same value again keeps what the page holds. */
    fake_partition_write(s_h->partition, 0x20000, junk, 8);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SIMP, 0x20000 | SYNIC_ENABLE);
    fake_partition_read(s_h->partition, 0x20000, page, 8);
    cr_expect_arr_eq(page, junk, 8);
}

Test(msr, sints_start_masked_and_check_their_vector, .init = s_start, .fini = s_stop)
{
    for (uint32_t vp = 0; vp < 2; vp++)
        for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++)
            cr_expect_eq(harness_rdmsr_ok(s_h, vp, SYNIC_MSR_SINT0 + sint), SYNIC_SINT_MASKED,
                         "VP %u SINT %u starts masked", vp, sint);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 15, 0x20);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 15), 0x20);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_SINT0 + 15), SYNIC_SINT_MASKED);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 1, SYNIC_SINT_MASKED | 5);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 2,
                     0xfe | SYNIC_SINT_AUTO_EOI | SYNIC_SINT_POLLING);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 2),
                 0xfe | SYNIC_SINT_AUTO_EOI | SYNIC_SINT_POLLING);
    s_expect_gp_write(0, SYNIC_MSR_SINT0 + 3, 15); /* vectors 0 to 15 are invalid */
    s_expect_gp_write(0, SYNIC_MSR_SINT0 + 3, 0x20 | 0x100);
    s_expect_gp_write(0, SYNIC_MSR_SINT0 + 3, 0x20 | (1ull << 19));
    s_expect_gp_write(0, SYNIC_MSR_SINT0 + 3, 0x20 | (1ull << 40));
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_SINT0 + 3), SYNIC_SINT_MASKED);
}

Test(msr, stimer_registers, .init = s_start, .fini = s_stop)
{
    for (uint32_t i = 0; i < 2 * SYNIC_TIMERS; i++)
        cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_STIMER0_CONFIG + i), 0);
    uint32_t config = SYNIC_MSR_STIMER0_CONFIG + 2 * 3, count = config + 1;
    s_expect_gp_write(1, config, 1ull << 13);
    s_expect_gp_write(1, config, 1ull << 20);
    /* Far in the future: armed, never fires here. */
    harness_wrmsr_ok(s_h, 1, count, 1ull << 62);
    uint64_t value = SYNIC_STIMER_ENABLE | SYNIC_STIMER_LAZY | 5ull << SYNIC_STIMER_SINT_SHIFT;
    harness_wrmsr_ok(s_h, 1, config, value);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), value);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, count), 1ull << 62);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, config), 0, "VP 0 has its own timers");
    /* A zero count stops the timer. */
    harness_wrmsr_ok(s_h, 1, count, 0);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), value & ~SYNIC_STIMER_ENABLE);
    /* An enabled timer's SINTx cannot become 0: that disables it (a timer
     * being enabled may name SINT 0; direct mode has no SINT). */
    harness_wrmsr_ok(s_h, 1, count, 1ull << 62);
    harness_wrmsr_ok(s_h, 1, config, SYNIC_STIMER_ENABLE | 5ull << SYNIC_STIMER_SINT_SHIFT);
    harness_wrmsr_ok(s_h, 1, config, SYNIC_STIMER_ENABLE | SYNIC_STIMER_PERIODIC);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), SYNIC_STIMER_PERIODIC);
    harness_wrmsr_ok(s_h, 1, config, SYNIC_STIMER_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), SYNIC_STIMER_ENABLE, "enabled on SINT 0");
    value = SYNIC_STIMER_ENABLE | SYNIC_STIMER_DIRECT_MODE | 0x40ull << SYNIC_STIMER_VECTOR_SHIFT;
    harness_wrmsr_ok(s_h, 1, config, value);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), value);
    /* Auto-enable: a non-zero count sets enable. */
    value = SYNIC_STIMER_AUTO_ENABLE | 2ull << SYNIC_STIMER_SINT_SHIFT;
    harness_wrmsr_ok(s_h, 1, config, value);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), value);
    harness_wrmsr_ok(s_h, 1, count, 1ull << 62);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, config), value | SYNIC_STIMER_ENABLE);
    cr_expect_eq(harness_inspect(s_h, "vp1/stimer3_config"), (long long)(value | 1));
}

Test(msr, a_vp_out_of_range_is_refused, .init = s_start, .fini = s_stop)
{
    uint64_t value;
    cr_expect_eq(harness_rdmsr(s_h, 2, SYNIC_MSR_VP_INDEX, &value),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(s_h->last_error, "VP 2 out of range"), "%s", s_h->last_error);
    cr_expect_eq(harness_wrmsr(s_h, 7, SYNIC_MSR_SCONTROL, 1), VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(harness_inspect(s_h, "bad_requests"), 2);
    cr_expect_eq(harness_inspect(s_h, "msr_gp"), 0);
}

/* ---- Reference time ----------------------------------------------------------------- */

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(time, the_reference_counter_advances_at_10_mhz, .init = s_start, .fini = s_stop)
{
    uint64_t t0 = s_mono_ns();
    uint64_t r0 = harness_rdmsr_ok(s_h, 0, SYNIC_MSR_TIME_REF_COUNT);
    uint64_t t1 = s_mono_ns();
    struct timespec nap = {0, 50000000};
    nanosleep(&nap, NULL);
    uint64_t t2 = s_mono_ns();
    uint64_t r1 = harness_rdmsr_ok(s_h, 1, SYNIC_MSR_TIME_REF_COUNT);
    uint64_t t3 = s_mono_ns();
    cr_assert_gt(r1, r0);
    /* The two reads happened within [t0, t1] and [t2, t3]; 1% for the
     * measured TSC frequency. */
    double ref_ns = (double)(r1 - r0) * 100.0;
    cr_expect_geq(ref_ns, (double)(t2 - t1) * 0.99, "%.0f ns of reference time in %llu ns",
                  ref_ns, (unsigned long long)(t2 - t1));
    cr_expect_leq(ref_ns, (double)(t3 - t0) * 1.01, "%.0f ns of reference time in %llu ns",
                  ref_ns, (unsigned long long)(t3 - t0));
}

Test(time, the_tsc_page_gives_the_reference_counter, .init = s_start, .fini = s_stop)
{
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_REFERENCE_TSC, 0x9000 | SYNIC_ENABLE);
    cr_expect_eq(harness_rdmsr_ok(s_h, 1, SYNIC_MSR_REFERENCE_TSC), 0x9000 | SYNIC_ENABLE,
                 "partition-wide");
    uint8_t page[24];
    fake_partition_read(s_h->partition, 0x9000, page, sizeof page);
    uint32_t sequence;
    uint64_t scale;
    int64_t offset;
    memcpy(&sequence, page, 4);
    memcpy(&scale, page + 8, 8);
    memcpy(&offset, page + 16, 8);
    cr_assert_neq(sequence, 0, "a valid page");
    /* The guest TSC is the host's here (tsc_offset 0). */
    uint64_t before = (uint64_t)(((unsigned __int128)__rdtsc() * scale) >> 64) + (uint64_t)offset;
    uint64_t msr = harness_rdmsr_ok(s_h, 0, SYNIC_MSR_TIME_REF_COUNT);
    uint64_t after = (uint64_t)(((unsigned __int128)__rdtsc() * scale) >> 64) + (uint64_t)offset;
    cr_expect_leq(before, msr, "page %llu, then MSR %llu", (unsigned long long)before,
                  (unsigned long long)msr);
    cr_expect_leq(msr, after, "MSR %llu, then page %llu", (unsigned long long)msr,
                  (unsigned long long)after);
    /* The page started at 0 when the harness began, a moment ago. */
    cr_expect_lt(before, 600000000ull, "under a minute of reference time");
    /* Re-enabling writes a new sequence. */
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_REFERENCE_TSC, 0x9000 | SYNIC_ENABLE);
    uint32_t sequence2;
    fake_partition_read(s_h->partition, 0x9000, &sequence2, 4);
    cr_expect(sequence2 != 0 && sequence2 != sequence);
}

Test(time, reference_tsc_reserved_bits_are_gp, .init = s_start, .fini = s_stop)
{
    s_expect_gp_write(0, SYNIC_MSR_REFERENCE_TSC, 0x9000 | SYNIC_ENABLE | 0x2);
    harness_wrmsr_ok(s_h, 0, SYNIC_MSR_REFERENCE_TSC, 0x9000);
    cr_expect_eq(harness_rdmsr_ok(s_h, 0, SYNIC_MSR_REFERENCE_TSC), 0x9000);
    uint32_t sequence;
    fake_partition_read(s_h->partition, 0x9000, &sequence, 4);
    cr_expect_eq(sequence, 0, "a disabled page is not written");
}
