/*
 * The multiboot information structure, field by field, as the loader
 * filled it: the host test compares what this prints with what it asked
 * for (RAM, command line, initrd).
 */
#include "guest/mb/mb.h"

void mb_main(uint32_t magic, const mb_info_t *info)
{
    MB_CHECK(magic == MB_LOADER_MAGIC, "magic 0x%x", magic);
    uint32_t want = MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP;
    MB_CHECK((info->flags & want) == want, "flags 0x%x", info->flags);
    mb_printf("mem_lower=%u mem_upper=%u\n", info->mem_lower, info->mem_upper);
    mb_printf("cmdline=[%s]\n", (const char *)info->cmdline);
    if (info->flags & MB_INFO_LOADER_NAME)
        mb_printf("loader=[%s]\n", (const char *)info->boot_loader_name);
    MB_CHECK(info->mmap_length % 24 == 0 && info->mmap_length > 0, "mmap_length %u",
             info->mmap_length);
    uint64_t ram = 0;
    for (uint32_t at = info->mmap_addr; at < info->mmap_addr + info->mmap_length;) {
        const mb_mmap_t *e = (const mb_mmap_t *)at;
        mb_printf("mmap: 0x%llx 0x%llx %u\n", e->addr, e->len, e->type);
        if (e->type == 1)
            ram += e->len;
        at += e->size + 4;
    }
    mb_printf("ram=%llu\n", ram);
    mb_printf("mods=%u\n", info->mods_count);
    const mb_module_t *mods = (const mb_module_t *)info->mods_addr;
    for (uint32_t i = 0; i < info->mods_count; i++) {
        const uint8_t *bytes = (const uint8_t *)mods[i].start;
        uint32_t len = mods[i].end - mods[i].start, sum = 0;
        for (uint32_t k = 0; k < len; k++)
            sum = sum * 31 + bytes[k];
        mb_printf("mod%u: start=0x%x len=%u sum=%u aligned=%u string=[%s]\n", i, mods[i].start,
                  len, sum, (mods[i].start & 0xfff) == 0, (const char *)mods[i].string);
    }
    extern uint8_t mb_stack[];
    static uint8_t bss_probe[4096];
    uint32_t nonzero = 0;
    for (uint32_t i = 0; i < sizeof bss_probe; i++)
        nonzero += bss_probe[i] != 0;
    MB_CHECK(nonzero == 0, "the BSS is zeroed (%u bytes not)", nonzero);
    (void)mb_stack;
}
