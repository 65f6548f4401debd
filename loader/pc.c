/* The PC under a kernel: RAM, the e820 map, BIOS tables and ACPI. */
#include "loader/pc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MIB (1ull << 20)
#define S_EBDA_GPA 0x9fc00
#define S_EBDA_END 0xa0000
#define S_BIOS_GPA 0xe0000
#define S_BIOS_END 0x100000
#define S_IRET_GPA 0xfff53 /* F000:FF53, where a PC BIOS keeps an IRET */
/* KVM's real-mode TSS and identity page (KVM_SET_TSS_ADDR) sit up to 4 GiB. */
#define S_KVM_PAGES_GPA 0xfffbc000ull
#define S_FOUR_GIB (4ull << 30)

#define S_IOAPIC_GPA 0xfec00000u
#define S_LAPIC_GPA 0xfee00000u
#define S_SCI_IRQ 9
#define S_PM_BASE 0x600 /* PM1a event block; control at +4, timer at +8 */
#define S_CMOS_CENTURY 0x32

/* ACPI: every table but the RSDP starts with this 36-byte header. */
#define S_ACPI_HEADER 36
#define S_ACPI_OEM "VMMRT "
#define S_ACPI_OEM_TABLE "VMMRTPC "

static void s_e820(loader_pc_t *pc, uint64_t addr, uint64_t len, uint32_t type)
{
    pc->e820[pc->n_e820++] = (loader_e820_t){addr, len, type};
}

static void s_layout(loader_image_t *img, uint64_t mem_size, uint32_t n_vps)
{
    loader_pc_t *pc = &img->pc;
    pc->mem_size = mem_size;
    pc->n_vps = n_vps;
    pc->below_4g = mem_size < LOADER_PC_LOW_RAM_MAX ? mem_size : LOADER_PC_LOW_RAM_MAX;
    pc->above_4g = mem_size - pc->below_4g;
    img->ram[0] = (loader_range_t){0, pc->below_4g};
    img->n_ram = 1;
    if (pc->above_4g)
        img->ram[img->n_ram++] = (loader_range_t){LOADER_PC_HIGH_RAM_START,
                                                  LOADER_PC_HIGH_RAM_START + pc->above_4g};
    s_e820(pc, 0, S_EBDA_GPA, LOADER_E820_RAM);
    s_e820(pc, S_EBDA_GPA, S_EBDA_END - S_EBDA_GPA, LOADER_E820_RESERVED);
    s_e820(pc, S_BIOS_GPA, S_BIOS_END - S_BIOS_GPA, LOADER_E820_RESERVED);
    s_e820(pc, S_BIOS_END, pc->below_4g - S_BIOS_END, LOADER_E820_RAM);
    s_e820(pc, S_KVM_PAGES_GPA, S_FOUR_GIB - S_KVM_PAGES_GPA, LOADER_E820_RESERVED);
    if (pc->above_4g)
        s_e820(pc, LOADER_PC_HIGH_RAM_START, pc->above_4g, LOADER_E820_RAM);
    img->has_pc = true;
}

/* ---- What a BIOS leaves below 1 MiB ------------------------------------------ */

static void s_real_mode(uint8_t *boot, uint8_t *ebda, uint8_t *bios)
{
    /* Every vector at F000:FF53: an interrupt nobody handles returns. */
    for (int v = 0; v < 256; v++) {
        loader_put16(boot + 4 * v, (uint16_t)(S_IRET_GPA - 0xf0000));
        loader_put16(boot + 4 * v + 2, 0xf000);
    }
    bios[S_IRET_GPA - S_BIOS_GPA] = 0xcf; /* IRET */
    loader_put16(boot + 0x400, 0x3f8);                     /* COM1 */
    loader_put16(boot + 0x40e, (uint16_t)(S_EBDA_GPA >> 4)); /* the EBDA's segment */
    loader_put16(boot + 0x410, 1u << 9);                   /* equipment: one serial port */
    loader_put16(boot + 0x413, S_EBDA_GPA / 1024);          /* base memory, KiB */
    ebda[0] = (S_EBDA_END - S_EBDA_GPA) / 1024;             /* the EBDA's size, KiB */
}

/* The TSS the boot VP's TR holds: a VM entry wants a busy one; the
 * kernel loads its own before it needs one. */
static loader_segment_t s_boot_tss(void)
{
    return (loader_segment_t){.base = PC_TSS_GPA, .limit = 0x67, .selector = PC_SEL_TSS,
                              .type = SEG_TYPE_TSS_BUSY, .present = 1};
}

static void s_gdt(uint8_t *boot, bool code64)
{
    uint8_t *gdt = boot + PC_GDT_GPA;
    loader_segment_t segs[] = {
        loader_flat(PC_SEL_CODE32, SEG_TYPE_CODE_RX, 0, 32),
        loader_flat(PC_SEL_CODE, SEG_TYPE_CODE_RX, 0, code64 ? 64 : 32),
        loader_flat(PC_SEL_DATA, SEG_TYPE_DATA_RW, 0, 32),
    };
    for (size_t i = 0; i < sizeof segs / sizeof *segs; i++)
        loader_put64(gdt + segs[i].selector, loader_descriptor(&segs[i]));
    loader_segment_t tr = s_boot_tss();
    loader_put64(gdt + PC_SEL_TSS, loader_descriptor(&tr));
}

/* ---- ACPI ----------------------------------------------------------------- */

static uint8_t s_sum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum;
}

/* Starts a table at t: its header, length and revision; the checksum is
 * s_acpi_end()'s. */
static void s_acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    loader_put32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, S_ACPI_OEM, 6);
    memcpy(t + 16, S_ACPI_OEM_TABLE, 8);
    loader_put32(t + 24, 1);
    memcpy(t + 28, "VMMR", 4);
    loader_put32(t + 32, 1);
}

static void s_acpi_end(uint8_t *t)
{
    uint32_t len;
    memcpy(&len, t + 4, 4);
    t[9] = (uint8_t)-s_sum(t, len);
}

/* An ACPI generic address structure in system I/O space. */
static void s_gas_io(uint8_t *p, uint8_t bits, uint64_t port)
{
    p[0] = 1;
    p[1] = bits;
    p[2] = 0;
    p[3] = bits == 32 ? 3 : 2; /* dword or word access */
    loader_put64(p + 4, port);
}

static uint32_t s_align(uint32_t v, uint32_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* The FADT (revision 3, ACPI 2.0's 244 bytes). */
static void s_fadt(uint8_t *t, uint32_t facs, uint32_t dsdt)
{
    s_acpi_header(t, "FACP", 244, 3);
    loader_put32(t + 36, facs);
    loader_put32(t + 40, dsdt);
    loader_put16(t + 46, S_SCI_IRQ);
    /* SMI_CMD 0: the machine is in ACPI mode from the start. */
    loader_put32(t + 56, S_PM_BASE);     /* PM1a_EVT_BLK */
    loader_put32(t + 64, S_PM_BASE + 4); /* PM1a_CNT_BLK */
    loader_put32(t + 76, S_PM_BASE + 8); /* PM_TMR_BLK */
    t[88] = 4;                           /* PM1_EVT_LEN */
    t[89] = 2;                           /* PM1_CNT_LEN */
    t[91] = 4;                           /* PM_TMR_LEN */
    loader_put16(t + 96, 0x0fff);        /* P_LVL2_LAT: no C2 */
    loader_put16(t + 98, 0xffff);        /* P_LVL3_LAT: no C3 */
    t[108] = S_CMOS_CENTURY;
    loader_put16(t + 109, 0x3); /* IAPC_BOOT_ARCH: legacy devices, an 8042 */
    /* WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (neither a fixed
     * feature), FIX_RTC, TMR_VAL_EXT (a 32-bit PM timer). */
    loader_put32(t + 112, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 8);
    loader_put64(t + 132, facs);
    loader_put64(t + 140, dsdt);
    s_gas_io(t + 148, 32, S_PM_BASE);
    s_gas_io(t + 172, 16, S_PM_BASE + 4);
    s_gas_io(t + 208, 32, S_PM_BASE + 8);
    s_acpi_end(t);
}

/* The MADT: a local APIC per VP, the IO-APIC, the SCI's level trigger,
 * every LINT1 an NMI. Returns its length. */
static uint32_t s_madt(uint8_t *t, uint32_t n_vps)
{
    uint8_t *p = t + 44;
    for (uint32_t vp = 0; vp < n_vps; vp++, p += 8) {
        p[0] = 0, p[1] = 8, p[2] = (uint8_t)vp, p[3] = (uint8_t)vp;
        loader_put32(p + 4, 1); /* enabled */
    }
    p[0] = 1, p[1] = 12, p[2] = 0; /* the IO-APIC's ID register reads 0 */
    loader_put32(p + 4, S_IOAPIC_GPA);
    loader_put32(p + 8, 0);
    p += 12;
    p[0] = 2, p[1] = 10, p[2] = 0, p[3] = S_SCI_IRQ;
    loader_put32(p + 4, S_SCI_IRQ);
    loader_put16(p + 8, 0x000d); /* active high, level-triggered */
    p += 10;
    p[0] = 4, p[1] = 6, p[2] = 0xff; /* every processor */
    loader_put16(p + 3, 0);
    p[5] = 1; /* LINT1 */
    p += 6;
    uint32_t len = (uint32_t)(p - t);
    s_acpi_header(t, "APIC", len, 3);
    loader_put32(t + 36, S_LAPIC_GPA);
    loader_put32(t + 40, 1); /* PCAT_COMPAT: there are 8259s too */
    s_acpi_end(t);
    return len;
}

/* A DSDT of one object: \_S5_, the package an OS reads the soft-off
 * sleep type from (the PM1a control register powers off whatever it is). */
static uint32_t s_dsdt(uint8_t *t)
{
    static const uint8_t aml[] = {
        0x08, '\\', '_', 'S', '5', '_', /* Name (\_S5_, */
        0x12, 0x06, 0x04,               /* Package (4) { */
        0x00, 0x00, 0x00, 0x00,         /* Zero, Zero, Zero, Zero }) */
    };
    uint32_t len = S_ACPI_HEADER + sizeof aml;
    s_acpi_header(t, "DSDT", len, 2);
    memcpy(t + S_ACPI_HEADER, aml, sizeof aml);
    s_acpi_end(t);
    return len;
}

/* The tables at bios (guest S_BIOS_GPA): RSDP first, where the scan of
 * 0xe0000 .. 0xfffff on 16-byte boundaries finds it. Returns the RSDP's
 * address. */
static uint64_t s_acpi(uint8_t *bios, uint32_t n_vps)
{
    const uint32_t rsdp = 0, rsdt = 0x40, xsdt = 0x80, fadt = 0x100;
    const uint32_t facs = s_align(fadt + 244, 64), madt = facs + 64;
    uint32_t madt_len = s_madt(bios + madt, n_vps);
    uint32_t dsdt = s_align(madt + madt_len, 16);
    s_dsdt(bios + dsdt);

    uint8_t *f = bios + facs;
    memcpy(f, "FACS", 4);
    loader_put32(f + 4, 64);
    f[32] = 2; /* version */

    s_fadt(bios + fadt, S_BIOS_GPA + facs, S_BIOS_GPA + dsdt);
    const uint32_t tables[] = {S_BIOS_GPA + fadt, S_BIOS_GPA + madt};
    const size_t n = sizeof tables / sizeof *tables;
    s_acpi_header(bios + rsdt, "RSDT", (uint32_t)(S_ACPI_HEADER + 4 * n), 1);
    s_acpi_header(bios + xsdt, "XSDT", (uint32_t)(S_ACPI_HEADER + 8 * n), 1);
    for (size_t i = 0; i < n; i++) {
        loader_put32(bios + rsdt + S_ACPI_HEADER + 4 * i, tables[i]);
        loader_put64(bios + xsdt + S_ACPI_HEADER + 8 * i, tables[i]);
    }
    s_acpi_end(bios + rsdt);
    s_acpi_end(bios + xsdt);

    uint8_t *r = bios + rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, S_ACPI_OEM, 6);
    r[15] = 2; /* ACPI 2.0 and later: the XSDT too */
    loader_put32(r + 16, S_BIOS_GPA + rsdt);
    loader_put32(r + 20, 36);
    loader_put64(r + 24, S_BIOS_GPA + xsdt);
    r[8] = (uint8_t)-s_sum(r, 20);
    r[32] = (uint8_t)-s_sum(r, 36);
    return S_BIOS_GPA + rsdp;
}

/* ---- The image ------------------------------------------------------------- */

loader_image_t *pc_image_new(uint64_t mem_size, uint32_t n_vps, bool code64, uint8_t **boot,
                             char *err, size_t errlen)
{
    int rc = 0;
    if (mem_size < LOADER_PC_MEM_MIN || mem_size > LOADER_PC_MEM_MAX || mem_size % (2 * MIB))
        rc = loader_error(err, errlen, EINVAL,
                          "guest RAM of 0x%llx bytes: must be a multiple of 2 MiB, 4 MiB to "
                          "1 TiB",
                          (unsigned long long)mem_size);
    else if (n_vps < 1 || n_vps > LOADER_PC_MAX_VPS)
        rc = loader_error(err, errlen, EINVAL,
                          "%u VPs: a PC kernel takes 1 to %u (xAPIC IDs; 255 is the broadcast)",
                          n_vps, LOADER_PC_MAX_VPS);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    loader_image_t *img = loader_image_alloc(n_vps, mem_size);
    if (!img) {
        errno = -loader_error(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    s_layout(img, mem_size, n_vps);
    uint8_t *ebda = NULL, *bios = NULL;
    *boot = loader_image_add(img, 0, LOADER_PC_BOOT_AREA_END, "the boot area", err, errlen);
    if (*boot)
        ebda = loader_image_add(img, S_EBDA_GPA, S_EBDA_END - S_EBDA_GPA,
                                "the extended BIOS data area", err, errlen);
    if (ebda)
        bios = loader_image_add(img, S_BIOS_GPA, S_BIOS_END - S_BIOS_GPA,
                                "the BIOS area (ACPI tables)", err, errlen);
    if (!bios) {
        int saved = errno;
        loader_image_destroy(&img);
        errno = saved;
        return NULL;
    }
    s_real_mode(*boot, ebda, bios);
    s_gdt(*boot, code64);
    img->pc.rsdp = s_acpi(bios, n_vps);
    loader_image_note(img, "memory: %llu MiB below 4 GiB, %llu MiB above; ACPI RSDP at 0x%llx; "
                           "%u VPs (VP 0 boots, the others wait for INIT/SIPI)\n",
                      (unsigned long long)(img->pc.below_4g / MIB),
                      (unsigned long long)(img->pc.above_4g / MIB),
                      (unsigned long long)img->pc.rsdp, n_vps);
    return img;
}

uint64_t pc_usable_end(const loader_pc_t *pc, uint64_t gpa)
{
    for (size_t i = 0; i < pc->n_e820; i++) {
        const loader_e820_t *e = &pc->e820[i];
        if (e->type == LOADER_E820_RAM && gpa >= e->addr && gpa - e->addr < e->len)
            return e->addr + e->len;
    }
    return 0;
}

int pc_check_usable(const loader_pc_t *pc, uint64_t gpa, uint64_t len, const char *what,
                    char *err, size_t errlen)
{
    uint64_t end = pc_usable_end(pc, gpa);
    if (end && len <= end - gpa)
        return 0;
    if (end)
        return loader_error(err, errlen, EFBIG,
                            "%s at 0x%llx..0x%llx does not fit in guest RAM (%llu MiB; RAM "
                            "there ends at 0x%llx)",
                            what, (unsigned long long)gpa, (unsigned long long)(gpa + len),
                            (unsigned long long)(pc->mem_size / MIB), (unsigned long long)end);
    return loader_error(err, errlen, ERANGE,
                        "%s at 0x%llx..0x%llx lies outside usable RAM (guest RAM: %llu MiB "
                        "below 4 GiB from 0, reserved 0x9fc00..0x100000; %llu MiB from 4 GiB)",
                        what, (unsigned long long)gpa, (unsigned long long)(gpa + len),
                        (unsigned long long)(pc->below_4g / MIB),
                        (unsigned long long)(pc->above_4g / MIB));
}

uint8_t *pc_add(loader_image_t *img, uint64_t gpa, uint64_t len, const char *what, char *err,
                size_t errlen)
{
    int rc = pc_check_usable(&img->pc, gpa, len, what, err, errlen);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    return loader_image_add(img, gpa, (size_t)len, what, err, errlen);
}

void pc_boot_segments(loader_vp_state_t *st, uint16_t cs, bool code64)
{
    loader_segment_t data = loader_flat(PC_SEL_DATA, SEG_TYPE_DATA_RW, 0, 32);
    st->cs = loader_flat(cs, SEG_TYPE_CODE_RX, 0, code64 ? 64 : 32);
    st->ds = st->es = st->fs = st->gs = st->ss = data;
    st->tr = s_boot_tss();
    st->ldt = (loader_segment_t){.type = SEG_TYPE_LDT, .unusable = 1};
    st->gdt = (loader_dtable_t){.base = PC_GDT_GPA, .limit = PC_SEL_TSS + 16 - 1};
    st->idt = (loader_dtable_t){0};
    st->rflags = 0x2;
    st->rsp = PC_STACK_TOP;
}

size_t loader_pc_e820_file(const loader_pc_t *pc, uint8_t *out, size_t size)
{
    const size_t entry = 20;
    for (size_t i = 0; i < pc->n_e820 && (i + 1) * entry <= size; i++) {
        loader_put64(out + i * entry, pc->e820[i].addr);
        loader_put64(out + i * entry + 8, pc->e820[i].len);
        loader_put32(out + i * entry + 16, pc->e820[i].type);
    }
    return pc->n_e820 * entry;
}
