/*
 * The ACPI PM timer against the Hyper-V reference counter (run with the
 * Hyper-V interface): each PM timer reading is bracketed by two counter
 * readings, so that the timer's advance over about 200 ms must lie between
 * 3.579545 MHz times the inner interval and times the outer one, 1% either
 * way. A slow guest cannot fail this, only a timer at the wrong rate. Also
 * the PM1a event registers.
 */
#include "guest/mb/mb.h"

#define HV_TIME_REF_COUNT 0x40000020u /* 100 ns units */

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    uint32_t r[4];
    mb_cpuid(0x40000000, 0, r);
    MB_CHECK(r[1] == 0x7263694d, "the Hyper-V interface is there (\"Micr\": 0x%x)", r[1]);
    uint64_t a = mb_rdmsr(HV_TIME_REF_COUNT);
    uint32_t pm1 = mb_pm_timer();
    uint64_t b = mb_rdmsr(HV_TIME_REF_COUNT);
    while ((uint32_t)(mb_pm_timer() - pm1) < MB_PM_TIMER_HZ / 5)
        ;
    uint64_t c = mb_rdmsr(HV_TIME_REF_COUNT);
    uint32_t pm2 = mb_pm_timer();
    uint64_t d = mb_rdmsr(HV_TIME_REF_COUNT);
    uint64_t ticks = (uint32_t)(pm2 - pm1), inner = c - b, outer = d - a;
    mb_printf("pm_ticks=%llu ref_inner=%llu ref_outer=%llu\n", ticks, inner, outer);
    /* ticks / 3579545 s within [0.99 inner, 1.01 outer] x 100 ns. */
    uint64_t lhs = ticks * 10000000ull * 100;
    MB_CHECK(lhs >= inner * MB_PM_TIMER_HZ * 99 && lhs <= outer * MB_PM_TIMER_HZ * 101,
             "the PM timer runs at 3.579545 MHz by the reference counter");

    MB_CHECK(inw(0x602) == 0, "PM1_EN starts 0");
    outw(0x602, 0x0001);
    MB_CHECK(inw(0x602) == 0x0001, "PM1_EN takes TMR_EN");
    outw(0x602, 0);
    MB_CHECK((inw(0x604) & ~1u) == 0, "PM1a_CNT reads 0 but SCI_EN");
}
