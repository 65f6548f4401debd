/* dev_rtc: the time in BCD and binary, 12 and 24 hours, across rollovers;
 * setting it; UIP; periodic, update-ended and alarm interrupts and status
 * C; the memory-size bytes; save, restore, reset; bad widths. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "actors/devices/rtc.h"
#include "actors/devices/testing/fake_env.h"
#include "proto/device_state.pb-c.h"

#define NS 1000000000ull
#define MS 1000000ull
#define US 1000ull
#define IRQ DEV_RTC_IRQ
#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

/* Seconds since the epoch of dates the tests start from (UTC). */
#define FRI_2024_03_15_134530 1710510330ull
#define SUN_2023_12_31_235959 1704067199ull
#define WED_2024_02_28_235959 1709164799ull
#define THU_2099_12_31_235959 4102444799ull

enum { A = 0x0a, B = 0x0b, C = 0x0c, D = 0x0d };

static fake_env_t *s_new_at(uint64_t wall_s, const dev_rtc_config_t *cfg)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->wall_ns = wall_s * NS;
    f->dev = dev_rtc_new(cfg, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static fake_env_t *s_new(void)
{
    return s_new_at(FRI_2024_03_15_134530, NULL);
}

static uint8_t s_get(fake_env_t *f, uint8_t index)
{
    uint64_t value;
    cr_assert_eq(fake_env_write(f, false, 0x70, 1, index), 0);
    cr_assert_eq(fake_env_read(f, false, 0x71, 1, &value), 0);
    cr_assert_leq(value, 0xff);
    return (uint8_t)value;
}

static void s_set(fake_env_t *f, uint8_t index, uint8_t value)
{
    cr_assert_eq(fake_env_write(f, false, 0x70, 1, index), 0);
    cr_assert_eq(fake_env_write(f, false, 0x71, 1, value), 0);
}

/* The time registers: seconds, minutes, hours, day of the week, day,
 * month, year, century. */
static void s_expect_time(fake_env_t *f, const char *when, const uint8_t want[8])
{
    static const uint8_t regs[8] = {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32};
    for (int i = 0; i < 8; i++) {
        uint8_t got = s_get(f, regs[i]);
        cr_expect_eq(got, want[i], "%s: register 0x%02x is 0x%02x, not 0x%02x", when, regs[i],
                     got, want[i]);
    }
}

/* Reads C whenever the line is high (as a guest's handler would) while
 * the clock moves by `total` in steps of `step`; returns the rises. C must
 * read want_c, but for UF where `any_uf` (set each second as time goes). */
static unsigned s_rises_acked(fake_env_t *f, uint64_t total, uint64_t step, uint8_t want_c,
                              bool any_uf)
{
    unsigned before = f->irq_rises[IRQ];
    for (uint64_t t = 0; t < total; t += step) {
        fake_env_advance(f, step);
        if (f->irq[IRQ]) {
            uint8_t c = s_get(f, C), mask = any_uf ? 0xef : 0xff;
            cr_expect_eq(c & mask, want_c, "C is 0x%02x, not 0x%02x", c, want_c);
            cr_expect_not(f->irq[IRQ], "reading C lowers the line");
        }
    }
    return f->irq_rises[IRQ] - before;
}

/* ---- What it claims, and power on --------------------------------------------------- */

Test(rtc, claims_ports_0x70_and_0x71_and_irq_8)
{
    fake_env_t *f = s_new();
    cr_expect_str_eq(f->dev->spec.name, "rtc");
    cr_expect_str_eq(f->dev->ops->kind, "rtc");
    cr_assert_eq(f->dev->spec.n_ranges, 1);
    cr_expect_eq(f->dev->spec.ranges[0].start, 0x70);
    cr_expect_eq(f->dev->spec.ranges[0].len, 2);
    cr_expect_not(f->dev->spec.ranges[0].mmio);
    cr_assert_eq(f->dev->spec.n_irq_lines, 1);
    cr_expect_eq(f->dev->spec.irq_lines[0], 8);
    cr_expect_eq(f->wall_reads, 1, "the wall clock is read once");
    fake_env_destroy(&f);
}

Test(rtc, powers_on_with_the_status_registers_qemu_gives)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_get(f, A), 0x26);
    cr_expect_eq(s_get(f, B), 0x02);
    cr_expect_eq(s_get(f, C), 0x00);
    cr_expect_eq(s_get(f, D), 0x80);
    cr_expect_eq(f->irq_rises[IRQ], 0);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 0, "no interrupt enabled");
    fake_env_destroy(&f);
}

/* ---- The time --------------------------------------------------------------------- */

Test(rtc, shows_the_host_s_date_in_bcd_and_24_hours)
{
    fake_env_t *f = s_new();
    s_expect_time(f, "BCD", (const uint8_t[]){0x30, 0x45, 0x13, 0x06, 0x15, 0x03, 0x24, 0x20});
    fake_env_advance(f, 2 * NS + 500 * MS);
    s_expect_time(f, "2.5 s on", (const uint8_t[]){0x32, 0x45, 0x13, 0x06, 0x15, 0x03, 0x24, 0x20});
    cr_expect_eq(f->wall_reads, 1, "the runtime clock moves it, not the wall clock");
    fake_env_destroy(&f);
}

Test(rtc, shows_it_in_binary_with_dm)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x06);
    s_expect_time(f, "binary", (const uint8_t[]){30, 45, 13, 6, 15, 3, 24, 20});
    fake_env_destroy(&f);
}

Test(rtc, shows_12_hours_with_pm_in_bit_7)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x00); /* BCD, 12 hours */
    cr_expect_eq(s_get(f, 0x04), 0x81, "13h: 1 PM");
    s_set(f, B, 0x04); /* binary, 12 hours */
    cr_expect_eq(s_get(f, 0x04), 0x81);
    fake_env_advance(f, (10 * 3600 + 14 * 60 + 30) * NS); /* midnight */
    cr_expect_eq(s_get(f, 0x04), 12, "12 AM");
    s_set(f, B, 0x00);
    cr_expect_eq(s_get(f, 0x04), 0x12);
    fake_env_advance(f, 12 * 3600 * NS);
    cr_expect_eq(s_get(f, 0x04), 0x92, "12 PM");
    fake_env_advance(f, 11 * 3600 * NS);
    cr_expect_eq(s_get(f, 0x04), 0x91, "23h: 11 PM");
    s_set(f, B, 0x04);
    cr_expect_eq(s_get(f, 0x04), 0x8b);
    fake_env_destroy(&f);
}

Test(rtc, rolls_over_a_minute_hour_day_month_and_year)
{
    fake_env_t *f = s_new_at(SUN_2023_12_31_235959, NULL);
    s_expect_time(f, "before", (const uint8_t[]){0x59, 0x59, 0x23, 0x01, 0x31, 0x12, 0x23, 0x20});
    fake_env_advance(f, NS - 1);
    cr_expect_eq(s_get(f, 0x00), 0x59, "not yet");
    fake_env_advance(f, 1);
    s_expect_time(f, "after", (const uint8_t[]){0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x24, 0x20});
    fake_env_destroy(&f);
}

Test(rtc, knows_leap_days)
{
    fake_env_t *f = s_new_at(WED_2024_02_28_235959, NULL);
    fake_env_advance(f, NS);
    s_expect_time(f, "Feb 29", (const uint8_t[]){0x00, 0x00, 0x00, 0x05, 0x29, 0x02, 0x24, 0x20});
    fake_env_advance(f, 86400 * NS);
    s_expect_time(f, "Mar 1", (const uint8_t[]){0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20});
    fake_env_destroy(&f);
}

Test(rtc, rolls_over_a_century_into_a_year_without_a_leap_day)
{
    fake_env_t *f = s_new_at(THU_2099_12_31_235959, NULL);
    fake_env_advance(f, NS);
    s_expect_time(f, "2100", (const uint8_t[]){0x00, 0x00, 0x00, 0x06, 0x01, 0x01, 0x00, 0x21});
    fake_env_advance(f, 58 * 86400 * NS); /* Feb 28 */
    fake_env_advance(f, 86400 * NS);
    s_expect_time(f, "2100-03-01",
                  (const uint8_t[]){0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x00, 0x21});
    fake_env_destroy(&f);
}

/* ---- Setting it -------------------------------------------------------------------- */

Test(rtc, a_time_before_1970_runs_into_it)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x82);
    const uint8_t regs[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
    const uint8_t values[7] = {0x58, 0x59, 0x23, 0x31, 0x12, 0x69, 0x19};
    for (int i = 0; i < 7; i++)
        s_set(f, regs[i], values[i]);
    s_set(f, B, 0x02);
    s_expect_time(f, "1969", (const uint8_t[]){0x58, 0x59, 0x23, 0x04, 0x31, 0x12, 0x69, 0x19});
    fake_env_advance(f, 2 * NS);
    s_expect_time(f, "1970", (const uint8_t[]){0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x70, 0x19});
    fake_env_destroy(&f);
}

Test(rtc, a_guest_sets_the_time_under_set)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x82);
    const uint8_t regs[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
    const uint8_t values[7] = {0x50, 0x59, 0x23, 0x31, 0x12, 0x99, 0x19};
    for (int i = 0; i < 7; i++)
        s_set(f, regs[i], values[i]);
    fake_env_advance(f, 5 * NS);
    cr_expect_eq(s_get(f, 0x00), 0x50, "stands still under SET");
    cr_expect_eq(s_get(f, 0x09), 0x99);
    cr_expect_eq(s_get(f, A), 0x26);
    s_set(f, B, 0x02);
    cr_expect_eq(s_get(f, 0x00), 0x50, "counts from when SET is cleared");
    fake_env_advance(f, 10 * NS);
    s_expect_time(f, "2000", (const uint8_t[]){0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20});
    cr_expect_eq(fake_env_inspect(f, "time_sets"), 1);
    cr_expect_eq(fake_env_inspect(f, "time"), 2000);
    fake_env_destroy(&f);
}

Test(rtc, a_write_while_it_runs_moves_it_at_once)
{
    fake_env_t *f = s_new();
    fake_env_advance(f, 300 * MS);
    s_set(f, 0x02, 0x10);
    cr_expect_eq(s_get(f, 0x02), 0x10);
    fake_env_advance(f, 699 * MS);
    cr_expect_eq(s_get(f, 0x00), 0x30, "the second goes on in its phase");
    fake_env_advance(f, 1 * MS);
    s_expect_time(f, "moved", (const uint8_t[]){0x31, 0x10, 0x13, 0x06, 0x15, 0x03, 0x24, 0x20});
    s_set(f, 0x08, 0x13); /* month 13: January of the next year */
    s_expect_time(f, "carried", (const uint8_t[]){0x31, 0x10, 0x13, 0x04, 0x15, 0x01, 0x25, 0x20});
    fake_env_destroy(&f);
}

Test(rtc, writes_are_taken_in_binary_and_12_hours_too)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x84); /* SET, binary, 12 hours: every field written anew */
    const uint8_t regs[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
    const uint8_t values[7] = {7, 5, 0x80 | 11, 15, 3, 24, 20};
    for (int i = 0; i < 7; i++)
        s_set(f, regs[i], values[i]);
    s_set(f, B, 0x04);
    cr_expect_eq(s_get(f, 0x04), 0x8b, "11 PM");
    s_set(f, B, 0x02);
    s_expect_time(f, "BCD", (const uint8_t[]){0x07, 0x05, 0x23, 0x06, 0x15, 0x03, 0x24, 0x20});
    fake_env_destroy(&f);
}

Test(rtc, a_divider_reset_holds_it_and_the_first_update_comes_half_a_second_later)
{
    fake_env_t *f = s_new();
    s_set(f, A, 0x66);
    fake_env_advance(f, 3 * NS + 100 * MS);
    cr_expect_eq(s_get(f, 0x00), 0x30, "held");
    s_set(f, A, 0x26);
    fake_env_advance(f, 499 * MS);
    cr_expect_eq(s_get(f, 0x00), 0x30);
    fake_env_advance(f, 1 * MS);
    cr_expect_eq(s_get(f, 0x00), 0x31);
    fake_env_destroy(&f);
}

/* ---- UIP ------------------------------------------------------------------------------ */

Test(rtc, uip_is_set_for_the_244_us_before_each_update)
{
    fake_env_t *f = s_new();
    fake_env_advance(f, NS - 244140 - 1);
    cr_expect_eq(s_get(f, A), 0x26);
    fake_env_advance(f, 1);
    cr_expect_eq(s_get(f, A), 0xa6);
    cr_expect_eq(s_get(f, 0x00), 0x30, "the update has not come");
    fake_env_advance(f, 244140 - 1);
    cr_expect_eq(s_get(f, A), 0xa6);
    fake_env_advance(f, 1);
    cr_expect_eq(s_get(f, A), 0x26);
    cr_expect_eq(s_get(f, 0x00), 0x31);

    s_set(f, B, 0x82);
    fake_env_advance(f, NS - 100 * US);
    cr_expect_eq(s_get(f, A), 0x26, "no updates under SET");
    s_set(f, A, 0xa6);
    s_set(f, B, 0x02);
    cr_expect_eq(s_get(f, A), 0xa6, "UIP is read-only and derived");
    fake_env_destroy(&f);
}

/* The way a guest waits for an update (Linux's mach_get_cmos_time): poll
 * until UIP is set, then until it clears. It ends, as the clock moves. */
Test(rtc, a_guest_s_poll_of_uip_ends)
{
    fake_env_t *f = s_new();
    fake_env_advance(f, 123 * MS);
    int polls = 0;
    while (!(s_get(f, A) & 0x80) && polls < 200000) {
        fake_env_advance(f, 10 * US);
        polls++;
    }
    cr_assert_lt(polls, 200000, "UIP was set");
    while (s_get(f, A) & 0x80 && polls < 200000) {
        fake_env_advance(f, 10 * US);
        polls++;
    }
    cr_assert_lt(polls, 200000, "UIP cleared");
    cr_expect_eq(s_get(f, 0x00), 0x31);
    cr_expect_eq(polls, 87700, "877 ms to the update, in steps of 10 us");
    fake_env_destroy(&f);
}

/* ---- Interrupts and C ------------------------------------------------------------------ */

Test(rtc, periodic_interrupts_come_at_the_rate_selected)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_get(f, C), 0x00);
    s_set(f, B, 0x42); /* PIE; A's rate 6 is 1024 Hz */
    cr_expect_eq(s_rises_acked(f, NS, 100 * US, 0xc0, true), 1024);
    s_set(f, A, 0x23); /* 8192 Hz */
    cr_expect_eq(s_rises_acked(f, NS, 100 * US, 0xc0, true), 8192);
    s_set(f, A, 0x2f); /* 2 Hz */
    cr_expect_eq(s_rises_acked(f, 3 * NS, MS, 0xc0, true), 6);
    s_set(f, A, 0x21); /* rate 1: 256 Hz, as rate 8 */
    cr_expect_eq(s_rises_acked(f, NS, 100 * US, 0xc0, true), 256);
    s_set(f, A, 0x20); /* none */
    cr_expect_eq(s_rises_acked(f, NS, MS, 0xc0, true), 0);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 0);
    cr_expect_eq(fake_env_inspect(f, "irqs"), 1024 + 8192 + 6 + 256);
    fake_env_destroy(&f);
}

Test(rtc, the_periodic_flag_is_set_without_pie_and_raises_nothing)
{
    fake_env_t *f = s_new();
    fake_env_advance(f, 2 * MS);
    cr_expect_eq(s_get(f, C), 0x40);
    cr_expect_eq(s_get(f, C), 0x00, "cleared by the read");
    cr_expect_eq(f->irq_rises[IRQ], 0);
    s_set(f, A, 0x66); /* the divider held: no ticks */
    fake_env_advance(f, 2 * MS);
    cr_expect_eq(s_get(f, C), 0x00);
    fake_env_destroy(&f);
}

Test(rtc, update_ended_interrupts_come_each_second)
{
    fake_env_t *f = s_new();
    s_set(f, A, 0x20); /* no periodic flag in C */
    s_set(f, B, 0x12);
    fake_env_advance(f, NS - 1);
    cr_expect_not(f->irq[IRQ]);
    fake_env_advance(f, 1);
    cr_expect(f->irq[IRQ], "at the update");
    cr_expect_eq(s_get(f, C), 0x90);
    cr_expect_eq(s_rises_acked(f, 5 * NS, 10 * MS, 0x90, false), 5);
    s_set(f, B, 0x92);
    cr_expect_eq(s_get(f, B), 0x82, "setting SET clears UIE");
    fake_env_destroy(&f);
}

Test(rtc, the_alarm_interrupts_at_its_time)
{
    fake_env_t *f = s_new();
    s_set(f, A, 0x20);
    s_set(f, 0x01, 0x40);
    s_set(f, 0x03, 0x45);
    s_set(f, 0x05, 0x13);
    s_set(f, B, 0x22);
    fake_env_advance(f, 10 * NS - 1);
    cr_expect_not(f->irq[IRQ]);
    fake_env_advance(f, 1);
    cr_expect(f->irq[IRQ], "at 13:45:40");
    cr_expect_eq(s_get(f, C), 0xb0, "IRQF, AF, and UF (not enabled)");
    cr_expect_eq(s_rises_acked(f, 120 * NS, 100 * MS, 0xb0, false), 0, "once a day");
    fake_env_destroy(&f);
}

Test(rtc, alarm_values_from_0xc0_match_any)
{
    fake_env_t *f = s_new();
    s_set(f, A, 0x20);
    s_set(f, 0x01, 0x00);
    s_set(f, 0x03, 0xc0);
    s_set(f, 0x05, 0xff);
    s_set(f, B, 0x22);
    cr_expect_eq(s_rises_acked(f, 140 * NS, 100 * MS, 0xb0, false), 2,
                 "at 13:46:00 and 13:47:00");
    s_set(f, 0x01, 0xc5);
    cr_expect_eq(s_rises_acked(f, 5 * NS, 100 * MS, 0xb0, false), 5, "every second");
    s_set(f, 0x03, 0x59); /* hh:59:ss */
    cr_expect_eq(s_rises_acked(f, 5 * NS, 100 * MS, 0xb0, false), 0);
    fake_env_destroy(&f);
}

Test(rtc, an_alarm_in_12_hours_matches_the_pm_hour)
{
    fake_env_t *f = s_new();
    s_set(f, A, 0x20);
    s_set(f, B, 0x00); /* BCD, 12 hours */
    s_set(f, 0x01, 0x31);
    s_set(f, 0x03, 0x45);
    s_set(f, 0x05, 0x81); /* 1 PM */
    s_set(f, B, 0x20);
    cr_expect_eq(s_rises_acked(f, 2 * NS, 10 * MS, 0xb0, false), 1);
    fake_env_destroy(&f);
}

Test(rtc, reading_c_clears_it_and_lowers_the_line)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x42);
    fake_env_advance(f, MS);
    cr_assert(f->irq[IRQ]);
    fake_env_advance(f, 10 * MS);
    cr_expect_eq(f->irq_rises[IRQ], 1, "held high: no new edge until C is read");
    s_set(f, C, 0x00);
    s_set(f, D, 0x00);
    cr_expect_eq(fake_env_inspect(f, "ignored_writes"), 2);
    cr_expect(f->irq[IRQ], "C is not written");
    cr_expect_eq(s_get(f, D), 0x80);
    cr_expect_eq(s_get(f, C), 0xc0);
    cr_expect_not(f->irq[IRQ]);
    cr_expect_eq(s_get(f, C), 0x00);
    fake_env_advance(f, MS);
    cr_expect_eq(f->irq_rises[IRQ], 2, "the next tick");
    fake_env_destroy(&f);
}

Test(rtc, enabling_an_interrupt_whose_flag_is_set_raises_the_line_at_once)
{
    fake_env_t *f = s_new();
    fake_env_advance(f, 10 * MS);
    s_set(f, B, 0x42);
    cr_expect(f->irq[IRQ]);
    s_set(f, B, 0x02);
    cr_expect_not(f->irq[IRQ], "disabled: IRQF falls");
    cr_expect_eq(s_get(f, C), 0x40);
    fake_env_destroy(&f);
}

/* ---- CMOS memory --------------------------------------------------------------------- */

static void s_expect_bytes(fake_env_t *f, uint8_t at, const uint8_t *want, int n)
{
    for (int i = 0; i < n; i++)
        cr_expect_eq(s_get(f, (uint8_t)(at + i)), want[i], "CMOS 0x%02x", at + i);
}

Test(rtc, memory_bytes_for_64_mib)
{
    const dev_rtc_config_t cfg = {.ram_below_4g = 64 * MIB, .n_cpus = 2};
    fake_env_t *f = s_new_at(FRI_2024_03_15_134530, &cfg);
    s_expect_bytes(f, 0x15, (const uint8_t[]){0x80, 0x02}, 2);       /* 640 KiB */
    s_expect_bytes(f, 0x17, (const uint8_t[]){0x00, 0xfc}, 2);       /* 63 MiB in KiB */
    s_expect_bytes(f, 0x30, (const uint8_t[]){0x00, 0xfc}, 2);
    s_expect_bytes(f, 0x34, (const uint8_t[]){0x00, 0x03}, 2);       /* 48 MiB in 64 KiB */
    s_expect_bytes(f, 0x5b, (const uint8_t[]){0x00, 0x00, 0x00}, 3);
    cr_expect_eq(s_get(f, 0x5f), 1);
    cr_expect_eq(s_get(f, 0x14), 0x06, "an FPU and a PS/2 mouse port");
    cr_expect_eq(s_get(f, 0x10), 0x00, "no floppy drives");
    cr_expect_eq(s_get(f, 0x12), 0x00, "no IDE disks");
    fake_env_destroy(&f);
}

Test(rtc, memory_bytes_for_3_gib)
{
    const dev_rtc_config_t cfg = {.ram_below_4g = 3 * GIB, .n_cpus = 4};
    fake_env_t *f = s_new_at(FRI_2024_03_15_134530, &cfg);
    s_expect_bytes(f, 0x15, (const uint8_t[]){0x80, 0x02}, 2);
    s_expect_bytes(f, 0x17, (const uint8_t[]){0xff, 0xff}, 2); /* capped */
    s_expect_bytes(f, 0x30, (const uint8_t[]){0xff, 0xff}, 2);
    s_expect_bytes(f, 0x34, (const uint8_t[]){0x00, 0xbf}, 2); /* 3056 MiB in 64 KiB */
    s_expect_bytes(f, 0x5b, (const uint8_t[]){0x00, 0x00, 0x00}, 3);
    cr_expect_eq(s_get(f, 0x5f), 3);
    fake_env_destroy(&f);
}

Test(rtc, memory_bytes_for_5_gib)
{
    const dev_rtc_config_t cfg = {.ram_below_4g = 3 * GIB, .ram_above_4g = 2 * GIB, .n_cpus = 1};
    fake_env_t *f = s_new_at(FRI_2024_03_15_134530, &cfg);
    s_expect_bytes(f, 0x34, (const uint8_t[]){0x00, 0xbf}, 2);
    s_expect_bytes(f, 0x5b, (const uint8_t[]){0x00, 0x80, 0x00}, 3); /* 2 GiB in 64 KiB */
    cr_expect_eq(s_get(f, 0x5f), 0);
    fake_env_destroy(&f);
}

Test(rtc, a_bad_configuration_is_refused)
{
    const dev_rtc_config_t no_cpus = {.ram_below_4g = 64 * MIB};
    const dev_rtc_config_t too_low = {.ram_below_4g = 5 * GIB, .n_cpus = 1};
    const dev_rtc_config_t many = {.n_cpus = 300};
    errno = 0;
    cr_expect_null(dev_rtc_new(&no_cpus, NULL));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(dev_rtc_new(&too_low, NULL));
    cr_expect_eq(errno, EINVAL);
    fake_env_t *f = s_new_at(FRI_2024_03_15_134530, &many);
    cr_expect_eq(s_get(f, 0x5f), 0, "more CPUs than a byte says: 0, as QEMU");
    fake_env_destroy(&f);
}

Test(rtc, the_rest_is_plain_memory_and_the_nmi_mask_changes_nothing)
{
    fake_env_t *f = s_new();
    for (unsigned i = 0x40; i < 0x80; i++)
        s_set(f, (uint8_t)i, (uint8_t)(i ^ 0xa5));
    s_set(f, 0x0f, 0xfe);
    for (unsigned i = 0x40; i < 0x80; i++)
        cr_expect_eq(s_get(f, (uint8_t)(0x80 | i)), i ^ 0xa5, "0x%02x through the NMI mask", i);
    cr_expect_eq(s_get(f, 0x0f), 0xfe);
    cr_expect_eq(s_get(f, 0x80 | B), 0x02);
    cr_expect_eq(fake_env_inspect(f, "index"), 0x8b);
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, 0x70, 1, &value), 0);
    cr_expect_eq(value, 0xff, "the index port reads 0xff, as QEMU's");
    fake_env_destroy(&f);
}

/* ---- Save, restore, reset, bad accesses ----------------------------------------------- */

Test(rtc, a_restore_keeps_the_guest_s_time_and_its_bytes)
{
    fake_env_t *f = s_new();
    s_set(f, B, 0x82);
    s_set(f, 0x00, 0x50);
    s_set(f, 0x02, 0x59);
    s_set(f, 0x04, 0x23);
    s_set(f, 0x07, 0x31);
    s_set(f, 0x08, 0x12);
    s_set(f, 0x09, 0x99);
    s_set(f, 0x32, 0x19);
    s_set(f, B, 0x42); /* running again, with PIE */
    s_set(f, 0x40, 0x5a);
    fake_env_advance(f, 5 * MS);
    cr_assert(f->irq[IRQ]);
    cr_assert_eq(fake_env_write(f, false, 0x70, 1, 0x0e), 0); /* the index left there */

    /* Another host, whose wall clock is 100 s on: so is the guest's. */
    fake_env_t *g = fake_env_new(0);
    cr_assert_not_null(g);
    g->wall_ns = f->wall_ns + 100 * NS;
    g->dev = dev_rtc_new(NULL, &g->env);
    cr_assert_not_null(g->dev);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect(g->irq[IRQ], "the pending periodic interrupt");
    cr_expect_eq(fake_env_inspect(g, "index"), 0x0e);
    s_expect_time(g, "restored", (const uint8_t[]){0x30, 0x01, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20});
    cr_expect_eq(s_get(g, 0x40), 0x5a);
    cr_expect_eq(s_get(g, B), 0x42);
    cr_expect_eq(s_get(g, C), 0xc0);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

Test(rtc, a_state_saved_under_set_keeps_its_registers)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new_at(THU_2099_12_31_235959, NULL);
    s_set(f, B, 0x82);
    s_set(f, 0x02, 0x00);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    fake_env_advance(g, 3 * NS);
    cr_expect_eq(s_get(g, 0x02), 0x00);
    cr_expect_eq(s_get(g, 0x09), 0x24);
    s_set(g, B, 0x02);
    fake_env_advance(g, NS);
    s_expect_time(g, "on", (const uint8_t[]){0x31, 0x00, 0x13, 0x06, 0x15, 0x03, 0x24, 0x20});
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

/* Packs f's state with one change made by `edit`. */
static void s_edited_state(fake_env_t *f, void (*edit)(Vmm__DeviceState__Rtc *),
                           ProtobufCBinaryData *out)
{
    ProtobufCBinaryData saved = {0};
    cr_assert_eq(f->dev->ops->save(f->dev, &saved), 0);
    Vmm__DeviceState__Rtc *st = vmm__device_state__rtc__unpack(NULL, saved.len, saved.data);
    cr_assert_not_null(st);
    edit(st);
    out->len = vmm__device_state__rtc__get_packed_size(st);
    out->data = malloc(out->len ? out->len : 1);
    cr_assert_not_null(out->data);
    vmm__device_state__rtc__pack(st, out->data);
    vmm__device_state__rtc__free_unpacked(st, NULL);
    free(saved.data);
}

static void s_short_cmos(Vmm__DeviceState__Rtc *st)
{
    st->cmos.len = 127;
}

static void s_no_vrt(Vmm__DeviceState__Rtc *st)
{
    st->cmos.data[D] = 0x00;
}

static void s_c_low_bits(Vmm__DeviceState__Rtc *st)
{
    st->cmos.data[C] = 0x01;
}

static void s_uip(Vmm__DeviceState__Rtc *st)
{
    st->cmos.data[A] |= 0x80;
}

static void s_ns_overflow(Vmm__DeviceState__Rtc *st)
{
    st->offset_ns = 1000000000;
}

static void s_far_offset(Vmm__DeviceState__Rtc *st)
{
    st->offset_s = -2000000000000ll;
}

static void s_big_index(Vmm__DeviceState__Rtc *st)
{
    st->index = 0x100;
}

Test(rtc, a_restore_refuses_bad_values_and_changes_nothing)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new();
    s_set(g, 0x40, 0x33);
    s_set(g, 0x02, 0x10);
    void (*edits[])(Vmm__DeviceState__Rtc *) = {s_short_cmos, s_no_vrt,      s_c_low_bits,
                                                s_uip,        s_ns_overflow, s_far_offset,
                                                s_big_index};
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        ProtobufCBinaryData bad;
        s_edited_state(f, edits[i], &bad);
        cr_expect_eq(g->dev->ops->restore(g->dev, bad.data, bad.len), -EINVAL, "edit %zu", i);
        free(bad.data);
    }
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(g->dev->ops->restore(g->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(s_get(g, 0x40), 0x33, "unchanged");
    cr_expect_eq(s_get(g, 0x02), 0x10);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

Test(rtc, reset_returns_to_power_on_with_the_host_s_time)
{
    const dev_rtc_config_t cfg = {.ram_below_4g = 64 * MIB, .n_cpus = 2};
    fake_env_t *f = s_new_at(FRI_2024_03_15_134530, &cfg);
    s_set(f, 0x02, 0x00);
    s_set(f, B, 0x46);
    s_set(f, A, 0x23);
    s_set(f, 0x40, 0x55);
    s_set(f, 0x18, 0x00);
    fake_env_advance(f, MS);
    cr_assert(f->irq[IRQ]);
    f->wall_ns = SUN_2023_12_31_235959 * NS;
    f->dev->ops->reset(f->dev);
    cr_expect_not(f->irq[IRQ]);
    cr_expect_eq(fake_env_inspect(f, "timer_armed"), 0);
    cr_expect_eq(f->wall_reads, 2);
    cr_expect_eq(s_get(f, A), 0x26);
    cr_expect_eq(s_get(f, B), 0x02);
    cr_expect_eq(s_get(f, C), 0x00);
    cr_expect_eq(s_get(f, 0x40), 0x00);
    cr_expect_eq(s_get(f, 0x18), 0xfc, "the configuration's bytes again");
    s_expect_time(f, "reset", (const uint8_t[]){0x59, 0x59, 0x23, 0x01, 0x31, 0x12, 0x23, 0x20});
    fake_env_destroy(&f);
}

Test(rtc, accesses_of_other_widths_are_refused_logged_and_counted)
{
    fake_env_t *f = s_new();
    cr_assert_eq(fake_env_write(f, false, 0x70, 1, 0x40), 0);
    uint64_t value;
    cr_expect_eq(fake_env_read(f, false, 0x70, 2, &value), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, 0x71, 4, &value), -EINVAL);
    cr_expect_eq(fake_env_write(f, false, 0x70, 2, 0x5a0b), -EINVAL);
    cr_expect_eq(fake_env_write(f, false, 0x71, 4, 0x12345678), -EINVAL);
    cr_expect_eq(fake_env_inspect(f, "bad_accesses"), 4);
    cr_expect_eq(f->logs, 4);
    cr_expect_eq(fake_env_inspect(f, "index"), 0x40, "nothing written");
    cr_expect_eq(s_get(f, 0x40), 0x00);
    cr_expect_eq(s_get(f, B), 0x02);
    fake_env_destroy(&f);
}
