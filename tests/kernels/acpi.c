/*
 * ACPI as an OS finds it: the RSDP by the scan of the EBDA's first KiB and
 * of 0xe0000 .. 0xfffff, every table's checksum through the RSDT and the
 * XSDT, the FADT's PM blocks, the MADT's processors and IO-APIC, the DSDT's
 * \_S5_, and the FACS.
 */
#include "guest/mb/mb.h"

static uint8_t s_sum(const uint8_t *p, uint32_t len)
{
    uint8_t sum = 0;
    while (len--)
        sum = (uint8_t)(sum + *p++);
    return sum;
}

static const uint8_t *s_scan(uint32_t from, uint32_t to)
{
    for (uint32_t a = from; a + 20 <= to; a += 16) {
        const uint8_t *p = (const uint8_t *)a;
        if (!memcmp(p, "RSD PTR ", 8) && !s_sum(p, 20))
            return p;
    }
    return 0;
}

static uint32_t s_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static bool s_table_ok(const uint8_t *t, const char *sig)
{
    return !memcmp(t, sig, 4) && !s_sum(t, s_u32(t + 4));
}

static void s_madt(const uint8_t *t)
{
    uint32_t lapics = 0, ioapic = 0;
    for (uint32_t at = 44; at + 2 <= s_u32(t + 4) && t[at + 1]; at += t[at + 1]) {
        const uint8_t *e = t + at;
        if (e[0] == 0 && (s_u32(e + 4) & 1))
            lapics++;
        if (e[0] == 1)
            ioapic = s_u32(e + 4);
    }
    uint16_t cpus = 0;
    mb_fw_cfg_read(0x05, &cpus, 2);
    MB_CHECK(lapics == cpus, "the MADT lists %u enabled processors, fw_cfg %u", lapics, cpus);
    MB_CHECK(ioapic == MB_IOAPIC_BASE, "the IO-APIC at 0x%x", ioapic);
    MB_CHECK(s_u32(t + 36) == MB_APIC_BASE, "local APICs at 0x%x", s_u32(t + 36));
    mb_printf("lapics=%u\n", lapics);
}

static void s_fadt(const uint8_t *t)
{
    mb_printf("pm1a_evt=0x%x pm1a_cnt=0x%x pm_tmr=0x%x sci=%u\n", s_u32(t + 56), s_u32(t + 64),
              s_u32(t + 76), t[46] | t[47] << 8);
    MB_CHECK(s_u32(t + 76) == MB_PM_TIMER, "the PM timer at 0x%x", s_u32(t + 76));
    const uint8_t *dsdt = (const uint8_t *)s_u32(t + 40);
    MB_CHECK(s_table_ok(dsdt, "DSDT"), "the DSDT and its checksum");
    bool s5 = false;
    for (uint32_t i = 36; i + 4 <= s_u32(dsdt + 4); i++)
        s5 |= !memcmp(dsdt + i, "_S5_", 4);
    MB_CHECK(s5, "the DSDT names \\_S5_");
    const uint8_t *facs = (const uint8_t *)s_u32(t + 36);
    MB_CHECK(!memcmp(facs, "FACS", 4) && s_u32(facs + 4) >= 64, "the FACS");
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    uint32_t ebda = (uint32_t)*(const uint16_t *)mb_phys(0x40e) << 4;
    const uint8_t *rsdp = s_scan(ebda, ebda + 1024);
    if (!rsdp)
        rsdp = s_scan(0xe0000, 0x100000);
    MB_CHECK(rsdp != 0, "the RSDP found by the BIOS-area scan");
    if (!rsdp)
        return;
    mb_printf("rsdp=0x%x revision=%u\n", (uint32_t)rsdp, rsdp[15]);
    MB_CHECK(rsdp[15] < 2 || !s_sum(rsdp, 36), "the RSDP's extended checksum");
    const uint8_t *rsdt = (const uint8_t *)s_u32(rsdp + 16);
    MB_CHECK(s_table_ok(rsdt, "RSDT"), "the RSDT and its checksum");
    uint32_t n = (s_u32(rsdt + 4) - 36) / 4;
    const uint8_t *xsdt = (const uint8_t *)s_u32(rsdp + 24);
    MB_CHECK(s_table_ok(xsdt, "XSDT"), "the XSDT and its checksum");
    bool fadt = false, madt = false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *t = (const uint8_t *)s_u32(rsdt + 36 + 4 * i);
        char sig[5] = {0};
        memcpy(sig, t, 4);
        MB_CHECK(s_table_ok(t, sig), "%s: length %u, checksum", sig, s_u32(t + 4));
        MB_CHECK(s_u32(xsdt + 36 + 8 * i) == (uint32_t)t && !s_u32(xsdt + 40 + 8 * i),
                 "the XSDT points at %s too", sig);
        if (!memcmp(sig, "FACP", 4))
            fadt = true, s_fadt(t);
        if (!memcmp(sig, "APIC", 4))
            madt = true, s_madt(t);
    }
    MB_CHECK(fadt && madt, "an FADT and a MADT");
}
