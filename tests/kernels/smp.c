/*
 * SMP as on a PC: only the boot VP runs at entry; it starts the others by
 * INIT and SIPI through a real-mode trampoline, and each writes down its
 * APIC ID. The count comes from fw_cfg, as QEMU's firmware reads it.
 */
#include "guest/mb/mb.h"

static volatile uint32_t s_seen[MB_MAX_APS + 1];

static void s_ap(uint32_t apic_id)
{
    if (apic_id <= MB_MAX_APS)
        s_seen[apic_id] = 1;
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    uint16_t cpus = 0;
    mb_fw_cfg_read(0x05, &cpus, 2);
    MB_CHECK(mb_apic_id() == 0, "the boot VP has APIC ID 0");
    MB_CHECK(cpus >= 1 && cpus <= MB_MAX_APS + 1, "%u CPUs", cpus);
    uint32_t started = mb_start_aps(s_ap, cpus - 1u, 5000);
    mb_printf("aps=%u\n", started);
    MB_CHECK(started == cpus - 1u, "%u of %u other VPs started by INIT/SIPI", started,
             cpus - 1u);
    uint32_t seen = 0;
    for (uint32_t id = 1; id < cpus; id++)
        seen += s_seen[id];
    MB_CHECK(seen == cpus - 1u, "each other VP ran with its own APIC ID (%u)", seen);
    MB_CHECK(!s_seen[0], "no AP claims the boot VP's APIC ID");
}
