/*
 * dev_rtc: the MC146818 and its CMOS RAM (rtc.h). Nothing runs while the
 * guest does not look: the flags of status C are brought up to date from
 * the clock whenever the guest reads or changes what they depend on, and
 * one timer wakes the model only for the next flag that would raise IRQ 8.
 */
#include "actors/devices/rtc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

#define S_INDEX_PORT 0x70
#define S_CMOS 128
#define S_NS 1000000000ll
#define S_DAY 86400
#define S_CRYSTAL_HZ 32768
/* UIP rises this long before each update: 8 periods of the crystal. */
#define S_UIP_NS (8 * S_NS / S_CRYSTAL_HZ)
/* Beyond this offset (some 31,700 years) lies no time a guest can set. */
#define S_MAX_OFFSET_S 1000000000000ll
#define S_TIMER 0
#define S_KIB 1024ull
#define S_MIB (1024 * S_KIB)

/* CMOS offsets. */
enum {
    S_SEC = 0x00,
    S_SEC_ALARM = 0x01,
    S_MIN = 0x02,
    S_MIN_ALARM = 0x03,
    S_HOUR = 0x04,
    S_HOUR_ALARM = 0x05,
    S_WDAY = 0x06,
    S_MDAY = 0x07,
    S_MONTH = 0x08,
    S_YEAR = 0x09,
    S_REG_A = 0x0a,
    S_REG_B = 0x0b,
    S_REG_C = 0x0c,
    S_REG_D = 0x0d,
    S_EQUIPMENT = 0x14,
    S_BASE_MEM = 0x15,  /* and 0x16 */
    S_EXT_MEM = 0x17,   /* and 0x18 */
    S_EXT_MEM_2 = 0x30, /* and 0x31 */
    S_CENTURY = 0x32,
    S_MEM_16M = 0x34,   /* and 0x35 */
    S_MEM_4G = 0x5b,    /* to 0x5d */
    S_CPUS = 0x5f,
};

#define S_A_UIP 0x80
#define S_A_DIVIDER 0x70
#define S_A_RATE 0x0f
#define S_B_SET 0x80
#define S_B_PIE 0x40
#define S_B_AIE 0x20
#define S_B_UIE 0x10
#define S_B_DM 0x04 /* binary, not BCD */
#define S_B_24H 0x02
#define S_C_IRQF 0x80
#define S_C_PF 0x40
#define S_C_AF 0x20
#define S_C_UF 0x10
#define S_C_FLAGS 0x70
#define S_D_VRT 0x80

/* A time of the guest's clock: seconds since the Unix epoch, and ns. */
typedef struct {
    int64_t s;
    uint32_t ns;
} rtc_time_t;

typedef struct {
    device_t dev;
    dev_rtc_config_t cfg;
    uint8_t cmos[S_CMOS];
    uint8_t index; /* with the NMI mask */
    /* The host's wall clock read at base_ns of the runtime clock; the
     * guest's time is it, advanced since, plus the offset. */
    uint64_t wall_base_ns, base_ns;
    int64_t offset_s;
    uint32_t offset_ns;
    uint64_t checked_ns; /* status C's flags are up to date until then */
    bool line;           /* IRQ 8 as last set */
    bool timer_armed;
    uint64_t timer_deadline;
    struct {
        uint64_t irqs, time_sets, bad_accesses, ignored_writes;
    } counts;
} rtc_t;

static rtc_t *s_of(device_t *dev)
{
    return (rtc_t *)dev;
}

/* ---- Dates ------------------------------------------------------------------------ */

/* Floor division and its remainder, for dates before the epoch. */
static int64_t s_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

static int64_t s_mod(int64_t a, int64_t b)
{
    return a - s_div(a, b) * b;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), with
 * years counted from March so that the leap day ends each one. */
static int64_t s_days(int64_t year, int64_t month, int64_t day)
{
    int64_t y = month <= 2 ? year - 1 : year;
    int64_t era = s_div(y, 400), of_era = y - era * 400;
    int64_t from_march = month > 2 ? month - 3 : month + 9;
    int64_t of_year = (153 * from_march + 2) / 5 + day - 1;
    int64_t of_era_days = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    return era * 146097 + of_era_days - 719468;
}

/* The date of a day since 1970-01-01: the inverse of s_days(). */
static void s_date(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = s_div(z, 146097), of_era = z - era * 146097;
    int64_t y = (of_era - of_era / 1460 + of_era / 36524 - of_era / 146096) / 365;
    int64_t of_year = of_era - (365 * y + y / 4 - y / 100);
    int64_t from_march = (5 * of_year + 2) / 153;
    *day = (int)(of_year - (153 * from_march + 2) / 5 + 1);
    *month = (int)(from_march < 10 ? from_march + 3 : from_march - 9);
    *year = y + era * 400 + (*month <= 2);
}

/* ---- The guest's clock ------------------------------------------------------------ */

static rtc_time_t s_guest(const rtc_t *r, uint64_t now)
{
    uint64_t wall = r->wall_base_ns + (now > r->base_ns ? now - r->base_ns : 0);
    uint64_t ns = wall % S_NS + r->offset_ns;
    return (rtc_time_t){.s = (int64_t)(wall / S_NS) + r->offset_s + (int64_t)(ns / S_NS),
                        .ns = (uint32_t)(ns % S_NS)};
}

/* Moves the offset so that the guest's clock reads t at now. */
static void s_set_guest(rtc_t *r, uint64_t now, rtc_time_t t)
{
    uint64_t wall = r->wall_base_ns + (now > r->base_ns ? now - r->base_ns : 0);
    uint32_t wall_ns = (uint32_t)(wall % S_NS);
    bool borrow = t.ns < wall_ns;
    r->offset_ns = (uint32_t)(t.ns + (borrow ? S_NS : 0) - wall_ns);
    r->offset_s = t.s - (int64_t)(wall / S_NS) - borrow;
}

/* The divider chain counts (A's divider neither held nor in a test mode,
 * as QEMU takes it): periodic flags and, without SET, updates. */
static bool s_divider_on(const rtc_t *r)
{
    return (r->cmos[S_REG_A] & S_A_DIVIDER) <= 0x20;
}

static bool s_running(const rtc_t *r)
{
    return s_divider_on(r) && !(r->cmos[S_REG_B] & S_B_SET);
}

static uint8_t s_to_reg(const rtc_t *r, int value)
{
    return (uint8_t)(r->cmos[S_REG_B] & S_B_DM ? value : (value / 10) << 4 | value % 10);
}

static int s_from_reg(const rtc_t *r, uint8_t reg)
{
    return r->cmos[S_REG_B] & S_B_DM ? reg : (reg >> 4) * 10 + (reg & 0x0f);
}

static uint8_t s_hour_to_reg(const rtc_t *r, int hour)
{
    if (r->cmos[S_REG_B] & S_B_24H)
        return s_to_reg(r, hour);
    return (uint8_t)(s_to_reg(r, hour % 12 ? hour % 12 : 12) | (hour >= 12 ? 0x80 : 0));
}

static int s_hour_from_reg(const rtc_t *r, uint8_t reg)
{
    int hour = s_from_reg(r, reg & 0x7f);
    if (r->cmos[S_REG_B] & S_B_24H)
        return hour;
    return hour % 12 + (reg & 0x80 ? 12 : 0);
}

/* Writes the time s into the time registers, in B's format. */
static void s_store_time(rtc_t *r, int64_t s)
{
    int64_t days = s_div(s, S_DAY), of_day = s - days * S_DAY, year;
    int month, day;
    s_date(days, &year, &month, &day);
    r->cmos[S_SEC] = s_to_reg(r, (int)(of_day % 60));
    r->cmos[S_MIN] = s_to_reg(r, (int)(of_day / 60 % 60));
    r->cmos[S_HOUR] = s_hour_to_reg(r, (int)(of_day / 3600));
    r->cmos[S_WDAY] = s_to_reg(r, (int)s_mod(days + 4, 7) + 1); /* 1970-01-01: a Thursday */
    r->cmos[S_MDAY] = s_to_reg(r, day);
    r->cmos[S_MONTH] = s_to_reg(r, month);
    r->cmos[S_YEAR] = s_to_reg(r, (int)s_mod(year, 100));
    r->cmos[S_CENTURY] = s_to_reg(r, (int)s_mod(s_div(year, 100), 100));
}

/* The time the registers say, in B's format. Values out of their range
 * carry over, as mktime's do (the 32nd of January is the 1st of February);
 * the day of the week is derived, not read. */
static int64_t s_regs_time(const rtc_t *r)
{
    const uint8_t *c = r->cmos;
    int64_t year = s_from_reg(r, c[S_YEAR]) + 100 * (int64_t)s_from_reg(r, c[S_CENTURY]);
    int64_t month = s_from_reg(r, c[S_MONTH]) - 1;
    year += s_div(month, 12);
    int64_t days = s_days(year, s_mod(month, 12) + 1, 1) + s_from_reg(r, c[S_MDAY]) - 1;
    return days * S_DAY + s_hour_from_reg(r, c[S_HOUR]) * 3600 + s_from_reg(r, c[S_MIN]) * 60 +
           s_from_reg(r, c[S_SEC]);
}

static bool s_uip(const rtc_t *r, uint64_t now)
{
    return s_running(r) && s_guest(r, now).ns >= S_NS - S_UIP_NS;
}

/* ---- Flags and the line ------------------------------------------------------------ */

/* The periodic interrupt's period in crystal cycles (0: none): rates 1
 * and 2 are 8 and 9, as with a 32.768 kHz crystal. */
static unsigned s_period(const rtc_t *r)
{
    unsigned rate = r->cmos[S_REG_A] & S_A_RATE;
    if (!rate || !s_divider_on(r))
        return 0;
    return 1u << ((rate <= 2 ? rate + 7 : rate) - 1);
}

/* Periodic ticks fall on the guest's clock, at whole multiples of the
 * period from each second, as the divider chain makes them: the count of
 * ticks up to t. */
static int64_t s_ticks(rtc_time_t t, unsigned period)
{
    return t.s * (S_CRYSTAL_HZ / period) + (int64_t)((uint64_t)t.ns * S_CRYSTAL_HZ / S_NS) / period;
}

/* The time of tick k. */
static rtc_time_t s_tick_time(int64_t k, unsigned period)
{
    int64_t per_s = S_CRYSTAL_HZ / period, s = s_div(k, per_s);
    uint64_t cycles = (uint64_t)(k - s * per_s) * period;
    return (rtc_time_t){s, (uint32_t)((cycles * S_NS + S_CRYSTAL_HZ - 1) / S_CRYSTAL_HZ)};
}

/* An alarm register's value (-1: any) in B's format. */
static int s_alarm_value(const rtc_t *r, uint8_t reg, bool hour)
{
    if ((reg & 0xc0) == 0xc0)
        return -1;
    return hour ? s_hour_from_reg(r, reg) : s_from_reg(r, reg);
}

/* The first second after `after` that the alarm matches, in *at; false
 * when no second does. */
static bool s_next_alarm(const rtc_t *r, int64_t after, int64_t *at)
{
    int want_s = s_alarm_value(r, r->cmos[S_SEC_ALARM], false);
    int want_m = s_alarm_value(r, r->cmos[S_MIN_ALARM], false);
    int want_h = s_alarm_value(r, r->cmos[S_HOUR_ALARM], true);
    if (want_s > 59 || want_m > 59 || want_h > 23)
        return false;
    int64_t day = s_div(after, S_DAY), of_day = after - day * S_DAY;
    int h0 = (int)(of_day / 3600), m0 = (int)(of_day / 60 % 60), s0 = (int)(of_day % 60);
    /* Hours from this one to the same one tomorrow, minutes in each. */
    for (int dh = 0; dh <= 24; dh++) {
        if (want_h >= 0 && (h0 + dh) % 24 != want_h)
            continue;
        for (int m = dh ? 0 : m0; m < 60; m++) {
            if (want_m >= 0 && m != want_m)
                continue;
            int from = !dh && m == m0 ? s0 + 1 : 0;
            int s = want_s >= 0 ? want_s : from;
            if (s < from || s > 59)
                continue;
            *at = day * S_DAY + (h0 + dh) * 3600 + m * 60 + s;
            return true;
        }
    }
    return false;
}

/* Sets the flags of what happened between checked_ns and now. */
static void s_catch_up(rtc_t *r, uint64_t now)
{
    if (now <= r->checked_ns)
        return;
    if (s_divider_on(r)) {
        rtc_time_t t0 = s_guest(r, r->checked_ns), t1 = s_guest(r, now);
        unsigned period = s_period(r);
        if (period && s_ticks(t1, period) > s_ticks(t0, period))
            r->cmos[S_REG_C] |= S_C_PF;
        int64_t alarm;
        if (!(r->cmos[S_REG_B] & S_B_SET) && t1.s > t0.s) {
            r->cmos[S_REG_C] |= S_C_UF;
            if (s_next_alarm(r, t0.s, &alarm) && alarm <= t1.s)
                r->cmos[S_REG_C] |= S_C_AF;
        }
    }
    r->checked_ns = now;
}

/* Keeps *deadline the earliest of itself and when the guest's clock, t at
 * now, reaches at. */
static void s_earliest(uint64_t *deadline, uint64_t now, rtc_time_t t, rtc_time_t at)
{
    uint64_t when = now + (uint64_t)((at.s - t.s) * S_NS + at.ns - t.ns);
    if (when < *deadline)
        *deadline = when;
}

/* Arms the timer for the first flag that would raise the line: none while
 * it is high, since nothing raises it again before C is read. */
static void s_arm(rtc_t *r, uint64_t now)
{
    uint64_t deadline = UINT64_MAX;
    uint8_t b = r->cmos[S_REG_B], c = r->cmos[S_REG_C];
    if (!r->line && s_divider_on(r)) {
        rtc_time_t t = s_guest(r, now);
        unsigned period = s_period(r);
        int64_t alarm;
        if ((b & S_B_PIE) && !(c & S_C_PF) && period)
            s_earliest(&deadline, now, t, s_tick_time(s_ticks(t, period) + 1, period));
        if (!(b & S_B_SET) && (b & S_B_UIE) && !(c & S_C_UF))
            s_earliest(&deadline, now, t, (rtc_time_t){t.s + 1, 0});
        if (!(b & S_B_SET) && (b & S_B_AIE) && !(c & S_C_AF) && s_next_alarm(r, t.s, &alarm))
            s_earliest(&deadline, now, t, (rtc_time_t){alarm, 0});
    }
    if (deadline == UINT64_MAX) {
        if (r->timer_armed)
            device_timer_cancel(&r->dev, S_TIMER);
        r->timer_armed = false;
        return;
    }
    r->timer_armed = !device_timer_set(&r->dev, S_TIMER, deadline);
    r->timer_deadline = deadline;
    if (!r->timer_armed)
        device_log(&r->dev, RT_LOG_WARN, "no timer for IRQ 8: its interrupts come late");
}

/* IRQF and the line from C's flags and B's enables; then the timer. */
static void s_update(rtc_t *r, uint64_t now)
{
    bool irqf = r->cmos[S_REG_C] & r->cmos[S_REG_B] & S_C_FLAGS;
    r->cmos[S_REG_C] = (uint8_t)((r->cmos[S_REG_C] & S_C_FLAGS) | (irqf ? S_C_IRQF : 0));
    if (irqf != r->line) {
        r->line = irqf;
        r->counts.irqs += irqf;
        device_irq_set(&r->dev, DEV_RTC_IRQ, irqf);
    }
    s_arm(r, now);
}

/* ---- Registers ----------------------------------------------------------------------- */

static bool s_time_reg(uint8_t i)
{
    return i <= S_YEAR ? i % 2 == 0 || i >= S_WDAY : i == S_CENTURY;
}

static bool s_alarm_reg(uint8_t i)
{
    return i == S_SEC_ALARM || i == S_MIN_ALARM || i == S_HOUR_ALARM;
}

static uint8_t s_read_reg(rtc_t *r, uint8_t i, uint64_t now)
{
    if (s_time_reg(i)) {
        if (s_running(r))
            s_store_time(r, s_guest(r, now).s);
        return r->cmos[i];
    }
    if (i == S_REG_A)
        return (uint8_t)(r->cmos[S_REG_A] | (s_uip(r, now) ? S_A_UIP : 0));
    if (i != S_REG_C)
        return r->cmos[i];
    s_catch_up(r, now);
    uint8_t c = r->cmos[S_REG_C] & S_C_FLAGS;
    if (c & r->cmos[S_REG_B])
        c |= S_C_IRQF;
    r->cmos[S_REG_C] = 0;
    s_update(r, now);
    return c;
}

/* A or B: the clock stops as SET is set or the divider leaves its counting
 * modes, its registers then holding the time; it starts again from them. */
static void s_write_control(rtc_t *r, uint8_t i, uint8_t value, uint64_t now)
{
    s_catch_up(r, now);
    bool was_running = s_running(r);
    bool was_held = (r->cmos[S_REG_A] & 0x60) == 0x60;
    rtc_time_t t = s_guest(r, now);
    if (was_running)
        s_store_time(r, t.s);
    if (i == S_REG_A)
        r->cmos[S_REG_A] = value & (uint8_t)~S_A_UIP;
    else
        r->cmos[S_REG_B] = value & S_B_SET ? value & (uint8_t)~S_B_UIE : value;
    if (!was_running && s_running(r)) {
        /* The first update comes half a second after the divider's reset
         * ends, as the data sheet says; after SET, in the same phase. */
        s_set_guest(r, now, (rtc_time_t){s_regs_time(r), was_held ? S_NS / 2 : t.ns});
        r->counts.time_sets++;
    }
    s_update(r, now);
}

static void s_write_reg(rtc_t *r, uint8_t i, uint8_t value, uint64_t now)
{
    if (s_time_reg(i) && s_running(r)) {
        /* The others as they are now, this one as written, from now on,
         * the second going on in its phase. */
        s_catch_up(r, now);
        rtc_time_t t = s_guest(r, now);
        s_store_time(r, t.s);
        r->cmos[i] = value;
        s_set_guest(r, now, (rtc_time_t){s_regs_time(r), t.ns});
        r->counts.time_sets++;
        s_update(r, now);
    } else if (s_alarm_reg(i)) {
        s_catch_up(r, now);
        r->cmos[i] = value;
        s_update(r, now);
    } else if (i == S_REG_A || i == S_REG_B) {
        s_write_control(r, i, value, now);
    } else if (i == S_REG_C || i == S_REG_D) {
        r->counts.ignored_writes++;
    } else {
        r->cmos[i] = value;
    }
}

/* Logs and counts an access other than a byte. */
static bool s_byte(rtc_t *r, const device_io_t *io, const char *what)
{
    if (io->size == 1)
        return true;
    r->counts.bad_accesses++;
    device_log(&r->dev, RT_LOG_INFO, "a %u-byte %s at port 0x%llx: its registers are bytes",
               io->size, what, (unsigned long long)io->address);
    return false;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    rtc_t *r = s_of(dev);
    if (!s_byte(r, io, "read"))
        return -EINVAL;
    *value = io->address == S_INDEX_PORT ? 0xff
                                         : s_read_reg(r, r->index & 0x7f, device_now_ns(dev));
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    rtc_t *r = s_of(dev);
    if (!s_byte(r, io, "write"))
        return -EINVAL;
    if (io->address == S_INDEX_PORT)
        r->index = (uint8_t)value;
    else
        s_write_reg(r, r->index & 0x7f, (uint8_t)value, device_now_ns(dev));
    return 0;
}

static void s_timer(device_t *dev, uint32_t id)
{
    rtc_t *r = s_of(dev);
    if (id != S_TIMER)
        return;
    uint64_t now = device_now_ns(dev);
    r->timer_armed = false;
    s_catch_up(r, now);
    s_update(r, now);
}

/* ---- Life ------------------------------------------------------------------------------ */

static void s_put(rtc_t *r, uint8_t at, uint64_t value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        r->cmos[at + i] = (uint8_t)(value >> (8 * i));
}

static uint64_t s_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* CMOS as a machine just powered on has it: the registers as QEMU's
 * realize leaves them, the configuration's bytes as its pc_cmos_init
 * writes them (no floppy drives, no IDE disks: 0x10 and 0x12 stay 0), and
 * the time the host's. */
static void s_power_on(rtc_t *r)
{
    const dev_rtc_config_t *cfg = &r->cfg;
    uint64_t below = cfg->ram_below_4g;
    memset(r->cmos, 0, sizeof r->cmos);
    r->cmos[S_REG_A] = 0x26; /* 32.768 kHz, 1024 Hz periodic rate */
    r->cmos[S_REG_B] = S_B_24H;
    r->cmos[S_REG_D] = S_D_VRT;
    r->cmos[S_EQUIPMENT] = 0x06; /* an FPU, a PS/2 mouse port */
    s_put(r, S_BASE_MEM, s_min(below / S_KIB, 640), 2);
    uint64_t extended = below > S_MIB ? s_min((below - S_MIB) / S_KIB, 0xffff) : 0;
    s_put(r, S_EXT_MEM, extended, 2);
    s_put(r, S_EXT_MEM_2, extended, 2);
    s_put(r, S_MEM_16M, below > 16 * S_MIB ? s_min((below - 16 * S_MIB) / (64 * S_KIB), 0xffff) : 0,
          2);
    s_put(r, S_MEM_4G, s_min(cfg->ram_above_4g / (64 * S_KIB), 0xffffff), 3);
    r->cmos[S_CPUS] = (uint8_t)(cfg->n_cpus <= 255 ? cfg->n_cpus - 1 : 0);
    r->index = 0;
    r->wall_base_ns = device_wall_ns(&r->dev);
    r->base_ns = r->checked_ns = device_now_ns(&r->dev);
    r->offset_s = 0;
    r->offset_ns = 0;
}

static void s_reset(device_t *dev)
{
    rtc_t *r = s_of(dev);
    s_power_on(r);
    s_update(r, r->base_ns);
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    rtc_t *r = s_of(dev);
    uint64_t now = device_now_ns(dev);
    int64_t s = s_running(r) ? s_guest(r, now).s : s_regs_time(r), days = s_div(s, S_DAY), year;
    int64_t of_day = s - days * S_DAY;
    int month, day;
    s_date(days, &year, &month, &day);
    rt_inspect_add(node, "time", "%04lld-%02d-%02d %02lld:%02lld:%02lld", (long long)year, month,
                   day, (long long)(of_day / 3600), (long long)(of_day / 60 % 60),
                   (long long)(of_day % 60));
    rt_inspect_add(node, "running", "%d", s_running(r));
    rt_inspect_add(node, "offset_s", "%lld", (long long)r->offset_s);
    rt_inspect_add(node, "index", "0x%02x", r->index);
    rt_inspect_add(node, "reg_a", "0x%02x", r->cmos[S_REG_A] | (s_uip(r, now) ? S_A_UIP : 0));
    rt_inspect_add(node, "reg_b", "0x%02x", r->cmos[S_REG_B]);
    rt_inspect_add(node, "reg_c", "0x%02x", r->cmos[S_REG_C]);
    rt_inspect_add(node, "reg_d", "0x%02x", r->cmos[S_REG_D]);
    rt_inspect_add(node, "line", "%d", r->line);
    rt_inspect_add(node, "timer_armed", "%d", r->timer_armed);
    if (r->timer_armed)
        rt_inspect_add(node, "timer_in_ns", "%lld", (long long)(r->timer_deadline - now));
    device_inspect_count(node, "irqs", r->counts.irqs);
    device_inspect_count(node, "time_sets", r->counts.time_sets);
    device_inspect_count(node, "bad_accesses", r->counts.bad_accesses);
    device_inspect_count(node, "ignored_writes", r->counts.ignored_writes);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    rtc_t *r = s_of(dev);
    uint64_t now = device_now_ns(dev);
    s_catch_up(r, now);
    s_update(r, now);
    if (s_running(r))
        s_store_time(r, s_guest(r, now).s);
    Vmm__DeviceState__Rtc st = VMM__DEVICE_STATE__RTC__INIT;
    st.cmos = (ProtobufCBinaryData){sizeof r->cmos, r->cmos};
    st.index = r->index;
    st.offset_s = r->offset_s;
    st.offset_ns = r->offset_ns;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    rtc_t *r = s_of(dev);
    Vmm__DeviceState__Rtc *st = vmm__device_state__rtc__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    const uint8_t *c = st->cmos.data;
    int rc = st->cmos.len != S_CMOS || st->index > 0xff || (c[S_REG_A] & S_A_UIP) ||
                     (c[S_REG_C] & ~(S_C_IRQF | S_C_FLAGS)) || c[S_REG_D] != S_D_VRT ||
                     st->offset_ns >= S_NS || st->offset_s > S_MAX_OFFSET_S ||
                     st->offset_s < -S_MAX_OFFSET_S
                 ? -EINVAL
                 : 0;
    if (!rc) {
        /* The guest's time is as far from this host's as it was from the
         * saving one's; the flags are as saved, and new ones count from
         * now. */
        uint64_t now = device_now_ns(dev);
        memcpy(r->cmos, c, S_CMOS);
        r->index = (uint8_t)st->index;
        r->offset_s = st->offset_s;
        r->offset_ns = st->offset_ns;
        r->checked_ns = now;
        s_update(r, now);
    }
    vmm__device_state__rtc__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "rtc",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .timer = s_timer,
    .destroy = s_destroy,
};

device_t *dev_rtc_new(const void *config, device_env_t *env)
{
    static const dev_rtc_config_t defaults = {.n_cpus = 1};
    const dev_rtc_config_t *cfg = config ? config : &defaults;
    if (!cfg->n_cpus || cfg->ram_below_4g > 4096 * S_MIB) {
        errno = EINVAL;
        return NULL;
    }
    rtc_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->dev = (device_t){.ops = &s_ops, .env = env};
    r->dev.spec = (device_spec_t){
        .name = "rtc",
        .n_ranges = 1,
        .ranges = {{.start = S_INDEX_PORT, .len = 2}},
        .n_irq_lines = 1,
        .irq_lines = {DEV_RTC_IRQ},
    };
    s_power_on(r);
    return &r->dev;
}
