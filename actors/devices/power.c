#include "actors/devices/power.h"

#include <errno.h>
#include <stdlib.h>

#include "proto/device_state.pb-c.h"

#define S_PORTS 12
#define S_NS_PER_S 1000000000ull

/* Register offsets from the base. */
enum {
    S_PM1_STS = 0,
    S_PM1_EN = 2,
    S_PM1_CNT = 4,
    S_PM_TMR = 8,
};

#define S_TMR 0x0001    /* TMR_STS and TMR_EN */
#define S_SLP_EN 0x2000 /* in PM1_CNT */
/* The status bits ACPI defines (TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK),
 * and those of them that raise the SCI with their enable bit. */
#define S_STS_BITS 0x8731
#define S_SCI_BITS 0x0721

#define S_TIMER 0 /* the model's timer: the next change of the PM timer's bit 31 */

typedef struct {
    device_t dev;
    uint16_t base;
    uint16_t pm1_sts, pm1_en;
    uint16_t pm1_cnt; /* without SLP_EN */
    /* The PM timer's count (of the runtime clock) when TMR_STS was last
     * brought up to date: bit 31 changing since sets it. */
    uint64_t tmr_checked;
    bool sci;         /* the line as last set */
    bool timer_armed; /* S_TIMER */
    struct {
        uint64_t power_offs, scis, bad_accesses, ignored_writes;
    } counts;
} power_t;

static power_t *s_of(device_t *dev)
{
    return (power_t *)dev;
}

/* The PM timer's count at ns of the runtime clock, whole: split at the
 * second so that nothing overflows. */
static uint64_t s_ticks(uint64_t ns)
{
    return ns / S_NS_PER_S * DEV_POWER_TIMER_HZ + ns % S_NS_PER_S * DEV_POWER_TIMER_HZ / S_NS_PER_S;
}

/* The first time of the runtime clock at which the count is ticks. */
static uint64_t s_ns_of(uint64_t ticks)
{
    uint64_t rem = ticks % DEV_POWER_TIMER_HZ;
    return ticks / DEV_POWER_TIMER_HZ * S_NS_PER_S +
           (rem * S_NS_PER_S + DEV_POWER_TIMER_HZ - 1) / DEV_POWER_TIMER_HZ;
}

/* Sets TMR_STS if bit 31 of the count changed since last checked. */
static void s_catch_up(power_t *p)
{
    uint64_t now = s_ticks(device_now_ns(&p->dev));
    if (now >> 31 != p->tmr_checked >> 31)
        p->pm1_sts |= S_TMR;
    p->tmr_checked = now;
}

/* The SCI's level from status and enables, and the timer armed for the
 * next bit-31 change while only it can raise the SCI. */
static void s_update(power_t *p)
{
    bool sci = (p->pm1_sts & p->pm1_en & S_SCI_BITS) != 0;
    if (sci != p->sci) {
        p->sci = sci;
        p->counts.scis += sci;
        device_irq_set(&p->dev, DEV_POWER_SCI, sci);
    }
    bool want = (p->pm1_en & S_TMR) && !(p->pm1_sts & S_TMR);
    if (want) {
        uint64_t next = ((p->tmr_checked >> 31) + 1) << 31;
        want = !device_timer_set(&p->dev, S_TIMER, s_ns_of(next));
        if (!want)
            device_log(&p->dev, RT_LOG_WARN, "no timer for the PM timer's overflow: no SCI");
    } else if (p->timer_armed) {
        device_timer_cancel(&p->dev, S_TIMER);
    }
    p->timer_armed = want;
}

/* Whether an access is one QEMU takes: the register's own width, at its
 * start. Logs and counts one that is not. */
static bool s_valid(power_t *p, const device_io_t *io, const char *what)
{
    unsigned offset = (unsigned)(io->address - p->base);
    uint32_t width = offset == S_PM_TMR ? 4 : 2;
    if ((offset == S_PM1_STS || offset == S_PM1_EN || offset == S_PM1_CNT ||
         offset == S_PM_TMR) &&
        io->size == width)
        return true;
    p->counts.bad_accesses++;
    device_log(&p->dev, RT_LOG_INFO, "a %u-byte %s at base+%u: no register of that width there",
               io->size, what, offset);
    return false;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    power_t *p = s_of(dev);
    if (!s_valid(p, io, "read"))
        return -EINVAL;
    switch (io->address - p->base) {
    case S_PM1_STS:
        s_catch_up(p);
        s_update(p);
        *value = p->pm1_sts;
        break;
    case S_PM1_EN:
        *value = p->pm1_en;
        break;
    case S_PM1_CNT:
        *value = p->pm1_cnt;
        break;
    default:
        *value = (uint32_t)s_ticks(device_now_ns(dev));
        break;
    }
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    power_t *p = s_of(dev);
    if (!s_valid(p, io, "write"))
        return -EINVAL;
    switch (io->address - p->base) {
    case S_PM1_STS:
        s_catch_up(p); /* a change due by now is cleared too */
        p->pm1_sts &= (uint16_t)~value;
        break;
    case S_PM1_EN:
        s_catch_up(p);
        p->pm1_en = (uint16_t)value;
        break;
    case S_PM1_CNT:
        if (value & S_SLP_EN) {
            p->counts.power_offs++;
            device_power(dev, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF, -1);
        }
        p->pm1_cnt = (uint16_t)(value & ~S_SLP_EN);
        return 0;
    default:
        p->counts.ignored_writes++;
        return 0;
    }
    s_update(p);
    return 0;
}

static void s_timer(device_t *dev, uint32_t id)
{
    power_t *p = s_of(dev);
    if (id != S_TIMER)
        return;
    p->timer_armed = false;
    s_catch_up(p);
    s_update(p);
}

static void s_reset(device_t *dev)
{
    power_t *p = s_of(dev);
    p->pm1_sts = p->pm1_en = p->pm1_cnt = 0;
    p->tmr_checked = s_ticks(device_now_ns(dev));
    s_update(p);
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    power_t *p = s_of(dev);
    rt_inspect_add(node, "base", "0x%04x", p->base);
    rt_inspect_add(node, "pm1_sts", "0x%04x", p->pm1_sts);
    rt_inspect_add(node, "pm1_en", "0x%04x", p->pm1_en);
    rt_inspect_add(node, "pm1_cnt", "0x%04x", p->pm1_cnt);
    rt_inspect_add(node, "pm_tmr", "0x%08x", (uint32_t)s_ticks(device_now_ns(dev)));
    rt_inspect_add(node, "sci", "%d", p->sci);
    rt_inspect_add(node, "timer_armed", "%d", p->timer_armed);
    device_inspect_count(node, "power_offs", p->counts.power_offs);
    device_inspect_count(node, "scis", p->counts.scis);
    device_inspect_count(node, "bad_accesses", p->counts.bad_accesses);
    device_inspect_count(node, "ignored_writes", p->counts.ignored_writes);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    power_t *p = s_of(dev);
    s_catch_up(p);
    Vmm__DeviceState__Pm1a st = VMM__DEVICE_STATE__PM1A__INIT;
    st.pm1_cnt = p->pm1_cnt;
    st.pm1_sts = p->pm1_sts;
    st.pm1_en = p->pm1_en;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    power_t *p = s_of(dev);
    Vmm__DeviceState__Pm1a *st = vmm__device_state__pm1a__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->pm1_cnt > 0xffff || (st->pm1_cnt & S_SLP_EN) || st->pm1_en > 0xffff ||
                     (st->pm1_sts & ~(uint32_t)S_STS_BITS)
                 ? -EINVAL
                 : 0;
    if (!rc) {
        p->pm1_cnt = (uint16_t)st->pm1_cnt;
        p->pm1_sts = (uint16_t)st->pm1_sts;
        p->pm1_en = (uint16_t)st->pm1_en;
        /* The count follows this host's clock: a change is due from here. */
        p->tmr_checked = s_ticks(device_now_ns(dev));
        s_update(p);
    }
    vmm__device_state__pm1a__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "pm1a",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .timer = s_timer,
    .destroy = s_destroy,
};

device_t *dev_power_new(const void *config, device_env_t *env)
{
    const dev_power_config_t *cfg = config;
    uint16_t base = cfg && cfg->base ? cfg->base : 0x600;
    if (base % 4 || base > 0x10000 - S_PORTS) {
        errno = EINVAL;
        return NULL;
    }
    power_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->dev = (device_t){.ops = &s_ops, .env = env};
    p->dev.spec = (device_spec_t){
        .name = "pm1a",
        .n_ranges = 1,
        .ranges = {{.start = base, .len = S_PORTS}},
        .n_irq_lines = 1,
        .irq_lines = {DEV_POWER_SCI},
    };
    p->tmr_checked = s_ticks(device_now_ns(&p->dev));
    return &p->dev;
}
