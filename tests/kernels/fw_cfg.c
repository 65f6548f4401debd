/*
 * QEMU's fw_cfg as kvm-unit-tests and firmware read it: the signature, the
 * interface, the CPUs, the RAM size, a key with no item, and the file
 * directory, whose "etc/e820" must say what the multiboot memory map says.
 */
#include "guest/mb/mb.h"

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t s_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Compares the "etc/e820" item at key with the multiboot memory map. */
static void s_e820(uint16_t key, uint32_t size, const mb_info_t *info)
{
    static uint8_t file[20 * 16];
    MB_CHECK(size % 20 == 0 && size <= sizeof file, "etc/e820 holds %u bytes", size);
    if (size > sizeof file)
        return;
    mb_fw_cfg_read(key, file, size);
    uint32_t n = size / 20, same = 0, i = 0;
    for (uint32_t at = info->mmap_addr; at < info->mmap_addr + info->mmap_length && i < n; i++) {
        const mb_mmap_t *e = (const mb_mmap_t *)at;
        uint64_t addr, len;
        uint32_t type;
        memcpy(&addr, file + 20 * i, 8);
        memcpy(&len, file + 20 * i + 8, 8);
        memcpy(&type, file + 20 * i + 16, 4);
        same += addr == e->addr && len == e->len && type == e->type;
        at += e->size + 4;
    }
    MB_CHECK(same == n && n == info->mmap_length / 24,
             "etc/e820's %u entries match the multiboot memory map's %u", same,
             info->mmap_length / 24);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic;
    char sig[5] = {0};
    mb_fw_cfg_read(0x00, sig, 4);
    MB_CHECK(!strcmp(sig, "QEMU"), "signature \"%s\"", sig);
    uint32_t id = 0;
    mb_fw_cfg_read(0x01, &id, 4);
    MB_CHECK(id == 1, "interface id %u: the port interface, no DMA", id);
    uint16_t cpus = 0, max_cpus = 0;
    mb_fw_cfg_read(0x05, &cpus, 2);
    mb_fw_cfg_read(0x0f, &max_cpus, 2);
    mb_printf("cpus=%u max_cpus=%u\n", cpus, max_cpus);
    mb_printf("ram_size=%llu\n", mb_fw_cfg_u64(0x03));
    MB_CHECK(mb_fw_cfg_u64(0x11) == 0, "key 0x11 has no item: it reads zeros");
    /* Selecting again starts the item over. */
    mb_fw_cfg_read(0x00, sig, 2);
    mb_fw_cfg_read(0x00, sig, 4);
    MB_CHECK(!strcmp(sig, "QEMU"), "a second select reads from the start");

    uint8_t count[4];
    mb_fw_cfg_read(0x19, count, 4);
    uint32_t n = s_be32(count);
    mb_printf("files=%u\n", n);
    bool e820 = false;
    for (uint32_t i = 0; i < n && i < 32; i++) {
        uint8_t entry[64];
        for (uint32_t b = 0; b < sizeof entry; b++)
            entry[b] = inb(MB_FW_CFG_DATA);
        const char *name = (const char *)entry + 8;
        mb_printf("file: %s size=%u key=0x%x\n", name, s_be32(entry), s_be16(entry + 4));
        if (!strcmp(name, "etc/e820")) {
            e820 = true;
            s_e820(s_be16(entry + 4), s_be32(entry), info);
            /* The directory's read went on where it was: select it again
             * and skip what was read. */
            mb_fw_cfg_read(0x19, count, 4);
            for (uint32_t skip = 0; skip < (i + 1) * sizeof entry; skip++)
                (void)inb(MB_FW_CFG_DATA);
        }
    }
    MB_CHECK(e820, "the directory lists etc/e820");
}
