/*
 * A kernel that drops to real mode, as some do, finds what a PC BIOS
 * leaves: every vector of the table at F000:FF53, where an IRET is, and
 * the PICs at vector bases 0x08 and 0x70 with VP 0's local APIC in
 * virtual-wire mode, so that a line pc-testdev raises interrupts it
 * through the vector table (realmode.S).
 */
#include "guest/mb/mb.h"

#define RM_BASE 0x1000

extern const uint8_t rm_blob[], rm_blob_end[], rm_hits[], rm_isr6[], rm_tries[];
void rm_call(void);

/* What the blob left at its copy. */
static uint32_t s_low(const uint8_t *sym, uint32_t size)
{
    const uint8_t *at = (const uint8_t *)RM_BASE + (sym - rm_blob);
    return size == 1 ? *at : (uint32_t)(at[0] | at[1] << 8);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic;
    MB_CHECK((uintptr_t)info >= RM_BASE + 0x1000 || (uintptr_t)info + sizeof *info <= RM_BASE,
             "the boot information lies outside the page the blob takes");
    const uint16_t *ivt = mb_phys(0);
    uint32_t bios = 0;
    for (int v = 0; v < 256; v++)
        bios += ivt[2 * v] == 0xff53 && ivt[2 * v + 1] == 0xf000;
    MB_CHECK(bios == 256, "%u of 256 vectors at F000:FF53", bios);
    MB_CHECK(*(const uint8_t *)0xfff53 == 0xcf, "an IRET at F000:FF53");
    outb(0x20, 0x0b);
    MB_CHECK(inb(0x21) == 0xfb, "the master PIC masks all but the cascade: 0x%x", inb(0x21));
    MB_CHECK(inb(0xa1) == 0xff, "the slave PIC masks all: 0x%x", inb(0xa1));
    memcpy((void *)RM_BASE, rm_blob, (size_t)(rm_blob_end - rm_blob));
    rm_call();
    mb_printf("back in protected mode\n");
    MB_CHECK(s_low(rm_isr6, 1) & 0x40, "IRQ 6 through the BIOS's vector: in service (0x%x)",
             s_low(rm_isr6, 1));
    MB_CHECK(s_low(rm_hits, 2) == 1, "IRQ 5 through our vector 0x0d: %u interrupts",
             s_low(rm_hits, 2));
    mb_printf("tries left: %u\n", s_low(rm_tries, 2));
    MB_CHECK(inb(0x21) == 0xfb, "the PIC's mask restored: 0x%x", inb(0x21));
}
