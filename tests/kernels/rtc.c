/*
 * The CMOS/RTC as a PC kernel reads it: the date and time once UIP is
 * clear (printed for the host to compare with its clock), BCD and binary,
 * the memory-size and CPU bytes a PC BIOS leaves, and the periodic
 * interrupt on IRQ 8 through the IO-APIC.
 */
#include "guest/mb/mb.h"

#define VECTOR 0x58

static volatile uint32_t s_ticks;

static uint8_t s_cmos(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static void s_cmos_set(uint8_t reg, uint8_t v)
{
    outb(0x70, reg);
    outb(0x71, v);
}

static uint32_t s_bcd(uint8_t v)
{
    return (v >> 4) * 10u + (v & 0xf);
}

/* Waits (bounded) for UIP to clear: the time registers are stable then. */
static bool s_wait_uip(void)
{
    for (uint32_t i = 0; i < 100000; i++)
        if (!(s_cmos(0x0a) & 0x80))
            return true;
    return false;
}

static void s_on_rtc(uint32_t vector)
{
    (void)vector;
    if (s_cmos(0x0c) & 0x40) /* PF; reading C lowers the line */
        s_ticks++;
    mb_apic_eoi();
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    MB_CHECK(s_cmos(0x0d) == 0x80, "status D: VRT");
    uint8_t b = s_cmos(0x0b);
    MB_CHECK((b & 0x06) == 0x02, "status B: 24 hours, BCD (0x%x)", b);
    MB_CHECK(s_wait_uip(), "UIP clears");
    uint32_t sec = s_bcd(s_cmos(0x00)), min = s_bcd(s_cmos(0x02)), hour = s_bcd(s_cmos(0x04));
    uint32_t day = s_bcd(s_cmos(0x07)), mon = s_bcd(s_cmos(0x08)), year = s_bcd(s_cmos(0x09));
    uint32_t century = s_bcd(s_cmos(0x32));
    mb_printf("rtc=%u%02u-%02u-%02u %02u:%02u:%02u\n", century, year, mon, day, hour, min, sec);
    MB_CHECK(sec < 60 && min < 60 && hour < 24 && day >= 1 && day <= 31 && mon >= 1 &&
                 mon <= 12,
             "a valid BCD date and time");

    s_cmos_set(0x0b, b | 0x04); /* binary */
    MB_CHECK(s_wait_uip(), "UIP clears");
    uint32_t bin_min = s_cmos(0x02), bin_year = s_cmos(0x09);
    MB_CHECK(bin_year == year && (bin_min == min || bin_min == (min + 1) % 60),
             "binary mode: year %u, minute %u", bin_year, bin_min);
    s_cmos_set(0x0b, b);

    mb_printf("cmos: base=%u ext=%u ext2=%u above16m=%u above4g=%u cpus=%u\n",
              s_cmos(0x15) | s_cmos(0x16) << 8, s_cmos(0x17) | s_cmos(0x18) << 8,
              s_cmos(0x30) | s_cmos(0x31) << 8, s_cmos(0x34) | s_cmos(0x35) << 8,
              s_cmos(0x5b) | s_cmos(0x5c) << 8 | s_cmos(0x5d) << 16, s_cmos(0x5f) + 1u);

    /* The periodic interrupt at 1024 Hz, through IO-APIC input 8. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    mb_apic_enable();
    mb_set_handler(VECTOR, s_on_rtc);
    mb_ioapic_route(8, VECTOR, false);
    (void)s_cmos(0x0c);
    s_cmos_set(0x0a, (s_cmos(0x0a) & 0xf0) | 6);
    s_cmos_set(0x0b, b | 0x40); /* PIE */
    /* Halted with interrupts on: an emulated CPL 0 loop takes interrupts
     * late (platform.md), a halted VP at once. A lost one would stop the
     * ticks: the host's timeout says so. */
    uint32_t start = mb_pm_timer();
    while (s_ticks < 20)
        mb_sti_hlt_cli();
    uint32_t ms = (uint32_t)(mb_pm_timer() - start) / (MB_PM_TIMER_HZ / 1000);
    s_cmos_set(0x0b, b);
    mb_ioapic_mask(8);
    mb_printf("periodic: %u ticks in %u ms\n", s_ticks, ms);
    MB_CHECK(ms >= 17 && ms <= 1000, "20 periodic interrupts at 1024 Hz on IRQ 8 in %u ms", ms);
}
