/* Kernels on a PC: the multiboot and Linux loaders field by field, the
 * BIOS's tables and ACPI, and every refusal. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/kernel.h"
#include "loader/testing/peek.h"

#define MIB (1ull << 20)
#define MEM (64 * MIB)
#define INFO_GPA 0x7000
#define CMDLINE_GPA 0x10000

/* ---- helpers ---------------------------------------------------------- */

static loader_kernel_config_t s_config(const uint8_t *kernel, size_t len)
{
    return (loader_kernel_config_t){.kernel = kernel, .kernel_len = len,
                                    .kernel_name = "/k/kernel.elf", .mem_size = MEM,
                                    .n_vps = 1};
}

static loader_image_t *s_load(const loader_kernel_config_t *cfg)
{
    char err[256] = "";
    loader_image_t *img = loader_kernel_new(cfg, err, sizeof err);
    cr_assert_not_null(img, "refused: %s", err);
    return img;
}

static void s_expect_refused(const loader_kernel_config_t *cfg, int code, const char *text)
{
    char err[256] = "";
    errno = 0;
    loader_image_t *img = loader_kernel_new(cfg, err, sizeof err);
    cr_assert_null(img, "accepted; expected \"%s\"", text);
    cr_expect_eq(errno, code, "errno %d (%s), expected %d; message: %s", errno, strerror(errno),
                 code, err);
    cr_expect_not_null(strstr(err, text), "message \"%s\" lacks \"%s\"", err, text);
}

/* A synthetic multiboot ELF32 kernel: one segment at 2 MiB of 16 bytes of
 * code and a 4 KiB bss, the multiboot header after the program headers. */
typedef struct {
    Elf32_Ehdr eh;
    Elf32_Phdr ph[2];
    uint32_t mb[8];
    uint8_t code[16];
} tiny_mb_t;

#define TINY_GPA 0x200000u

static void s_tiny(tiny_mb_t *t, uint32_t flags)
{
    memset(t, 0, sizeof *t);
    memcpy(t->eh.e_ident, ELFMAG, SELFMAG);
    t->eh.e_ident[EI_CLASS] = ELFCLASS32;
    t->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    t->eh.e_ident[EI_VERSION] = EV_CURRENT;
    t->eh.e_type = ET_EXEC;
    t->eh.e_machine = EM_386;
    t->eh.e_version = EV_CURRENT;
    t->eh.e_entry = TINY_GPA + 4;
    t->eh.e_phoff = offsetof(tiny_mb_t, ph);
    t->eh.e_ehsize = sizeof(Elf32_Ehdr);
    t->eh.e_phentsize = sizeof(Elf32_Phdr);
    t->eh.e_phnum = 1;
    t->ph[0] = (Elf32_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_X,
                            .p_offset = offsetof(tiny_mb_t, code), .p_vaddr = TINY_GPA,
                            .p_paddr = TINY_GPA, .p_filesz = sizeof t->code, .p_memsz = 0x1000};
    t->mb[0] = 0x1badb002;
    t->mb[1] = flags;
    t->mb[2] = -(t->mb[0] + flags);
    for (size_t i = 0; i < sizeof t->code; i++)
        t->code[i] = (uint8_t)(0x90 + i);
}

/* The a.out kludge's addresses for a tiny_mb_t loaded whole at load_addr. */
static void s_kludge(tiny_mb_t *t, uint32_t load_addr, uint32_t load_end, uint32_t bss_end)
{
    t->mb[3] = load_addr + offsetof(tiny_mb_t, mb);
    t->mb[4] = load_addr;
    t->mb[5] = load_end;
    t->mb[6] = bss_end;
    t->mb[7] = load_addr + offsetof(tiny_mb_t, code);
}

/* ---- multiboot ---------------------------------------------------------- */

Test(multiboot, elf_kernel_starts_in_flat_32_bit_protected_mode)
{
    size_t len;
    uint8_t *k = peek_read_file("tests/kernels/info", &len);
    loader_kernel_config_t cfg = s_config(k, len);
    cfg.n_vps = 2;
    loader_image_t *img = s_load(&cfg);
    Elf32_Ehdr eh;
    memcpy(&eh, k, sizeof eh);
    const loader_vp_state_t *st = loader_image_vp(img, 0);
    cr_assert_not_null(st);
    cr_expect_null(loader_image_vp(img, 1), "VP 1 waits for INIT/SIPI");
    cr_expect_eq(st->rip, eh.e_entry);
    cr_expect_eq(loader_image_entry(img), eh.e_entry);
    cr_expect_eq(st->rax, 0x2badb002);
    cr_expect_eq(st->rbx, INFO_GPA);
    cr_expect_eq(st->cr0, 0x11, "PE and ET only, paging off: 0x%llx", (unsigned long long)st->cr0);
    cr_expect_eq(st->cr4, 0);
    cr_expect_eq(st->efer, 0);
    cr_expect_eq(st->rflags, 0x2, "interrupts off");
    const loader_segment_t *segs[] = {&st->cs, &st->ds, &st->es, &st->ss};
    for (size_t i = 0; i < 4; i++) {
        loader_segment_t d = peek_decode(peek_u64(img, st->gdt.base + segs[i]->selector), 0);
        cr_expect_eq(d.base, 0);
        cr_expect_eq(d.limit, 0xffffffff, "flat: limit 0x%x", d.limit);
        cr_expect_eq(d.db, 1, "32-bit");
        cr_expect_eq(d.l, 0);
        cr_expect_eq(d.type, segs[i]->type);
        cr_expect_eq(segs[i]->limit, 0xffffffff);
        cr_expect_eq(segs[i]->db, 1);
    }
    cr_expect_eq(st->cs.type & 8, 8, "code");
    cr_expect_eq(st->ds.type & 8, 0, "data");
    cr_expect_eq(st->tr.type, 11, "a busy TSS");
    cr_expect_eq(st->ldt.unusable, 1);
    /* Every loadable segment is loaded with its bss zeroed. */
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf32_Phdr ph;
        memcpy(&ph, k + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || !ph.p_memsz)
            continue;
        const uint8_t *at = peek_at(img, ph.p_paddr, ph.p_memsz);
        cr_expect_eq(memcmp(at, k + ph.p_offset, ph.p_filesz), 0);
        for (size_t b = ph.p_filesz; b < ph.p_memsz; b++)
            cr_assert_eq(at[b], 0, "bss byte %zu of segment %d", b, i);
    }
    loader_image_destroy(&img);
    free(k);
}

Test(multiboot, information_structure_field_by_field)
{
    size_t len;
    uint8_t *k = peek_read_file("tests/kernels/info", &len);
    uint8_t initrd[5000];
    for (size_t i = 0; i < sizeof initrd; i++)
        initrd[i] = (uint8_t)(i * 7);
    loader_kernel_config_t cfg = s_config(k, len);
    cfg.append = "console=ttyS0 x=1";
    cfg.initrd = initrd;
    cfg.initrd_len = sizeof initrd;
    cfg.initrd_name = "/k/env.txt";
    loader_image_t *img = s_load(&cfg);
    cr_expect_eq(peek_u32(img, INFO_GPA), 0x24d, "MEMORY CMDLINE MODS MMAP LOADER_NAME");
    cr_expect_eq(peek_u32(img, INFO_GPA + 4), 639, "mem_lower: up to the EBDA");
    cr_expect_eq(peek_u32(img, INFO_GPA + 8), (MEM - MIB) / 1024, "mem_upper");
    uint32_t cmdline = peek_u32(img, INFO_GPA + 16);
    cr_expect_str_eq((const char *)peek_at(img, cmdline, 1), "/k/kernel.elf console=ttyS0 x=1");
    cr_expect_eq(peek_u32(img, INFO_GPA + 20), 1, "one module");
    uint32_t mods = peek_u32(img, INFO_GPA + 24);
    uint32_t start = peek_u32(img, mods), end = peek_u32(img, mods + 4);
    cr_expect_eq(start % 4096, 0, "page-aligned");
    cr_expect_eq(end - start, sizeof initrd);
    cr_expect_eq(memcmp(peek_at(img, start, sizeof initrd), initrd, sizeof initrd), 0);
    cr_expect_str_eq((const char *)peek_at(img, peek_u32(img, mods + 8), 1), "/k/env.txt");
    Elf32_Ehdr eh;
    memcpy(&eh, k, sizeof eh);
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf32_Phdr ph;
        memcpy(&ph, k + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_LOAD)
            cr_expect_geq(start, ph.p_paddr + ph.p_memsz, "the module lies after the kernel");
    }
    /* The memory map is the e820 map, 24-byte entries. */
    const loader_pc_t *pc = loader_image_pc(img);
    cr_assert_not_null(pc);
    cr_expect_eq(peek_u32(img, INFO_GPA + 44), pc->n_e820 * 24);
    uint32_t map = peek_u32(img, INFO_GPA + 48);
    for (size_t i = 0; i < pc->n_e820; i++) {
        cr_expect_eq(peek_u32(img, map + 24 * i), 20);
        cr_expect_eq(peek_u64(img, map + 24 * i + 4), pc->e820[i].addr);
        cr_expect_eq(peek_u64(img, map + 24 * i + 12), pc->e820[i].len);
        cr_expect_eq(peek_u32(img, map + 24 * i + 20), pc->e820[i].type);
    }
    cr_expect_str_eq((const char *)peek_at(img, peek_u32(img, INFO_GPA + 64), 1), "vmm");
    loader_image_destroy(&img);
    free(k);
}

Test(multiboot, without_append_the_command_line_is_the_name_and_a_space)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    loader_image_t *img = s_load(&cfg);
    cr_expect_str_eq((const char *)peek_at(img, CMDLINE_GPA, 1), "/k/kernel.elf ");
    cr_expect_eq(peek_u32(img, INFO_GPA + 20), 0, "no module");
    cr_expect_eq(memcmp(peek_at(img, TINY_GPA, 16), t.code, 16), 0);
    loader_image_destroy(&img);
}

Test(multiboot, the_aout_kludge_loads_a_flat_image)
{
    size_t len, elf_len;
    uint8_t *flat = peek_read_file("tests/kernels/info_aout.bin", &len);
    uint8_t *elf = peek_read_file("tests/kernels/info_aout", &elf_len);
    loader_kernel_config_t cfg = s_config(flat, len);
    loader_image_t *img = s_load(&cfg);
    Elf32_Ehdr eh;
    memcpy(&eh, elf, sizeof eh);
    cr_expect_eq(loader_image_vp(img, 0)->rip, eh.e_entry, "entry_addr is _start");
    cr_expect_eq(memcmp(peek_at(img, 0x100000, len), flat, len), 0, "the file at load_addr");
    cr_expect_not_null(strstr(loader_image_describe(img), "a.out kludge"));
    loader_image_destroy(&img);
    free(flat);
    free(elf);

    /* The kludge wins over ELF headers, as in QEMU, and zeroes the bss. */
    tiny_mb_t t;
    s_tiny(&t, 0x10003);
    s_kludge(&t, 0x300000, 0, 0x300000 + sizeof t + 0x2000);
    t.code[0] = 0xaa;
    cfg = s_config((const uint8_t *)&t, sizeof t);
    img = s_load(&cfg);
    cr_expect_eq(loader_image_vp(img, 0)->rip, 0x300000 + offsetof(tiny_mb_t, code));
    cr_expect_eq(*peek_at(img, 0x300000 + offsetof(tiny_mb_t, code), 1), 0xaa);
    for (uint64_t a = 0x300000 + sizeof t; a < 0x300000 + sizeof t + 0x2000; a++)
        cr_assert_eq(*peek_at(img, a, 1), 0);
    loader_image_destroy(&img);
}

Test(multiboot, ram_over_3_gib_goes_above_4_gib)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    cfg.mem_size = 5ull << 30;
    loader_image_t *img = s_load(&cfg);
    size_t n;
    const loader_range_t *ram = loader_image_ram(img, &n);
    cr_assert_eq(n, 2);
    cr_expect_eq(ram[0].start, 0);
    cr_expect_eq(ram[0].end, 3ull << 30);
    cr_expect_eq(ram[1].start, 4ull << 30);
    cr_expect_eq(ram[1].end, 6ull << 30);
    const loader_pc_t *pc = loader_image_pc(img);
    const loader_e820_t *last = &pc->e820[pc->n_e820 - 1];
    cr_expect_eq(last->addr, 4ull << 30);
    cr_expect_eq(last->len, 2ull << 30);
    cr_expect_eq(last->type, 1);
    cr_expect_eq(peek_u32(img, INFO_GPA + 8), ((3ull << 30) - MIB) / 1024);
    loader_image_destroy(&img);
}

Test(multiboot, bad_images_are_refused)
{
    tiny_mb_t t;
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    s_tiny(&t, 0x3);
    t.mb[2]++;
    s_expect_refused(&cfg, ENOEXEC, "neither a multiboot kernel");
    s_tiny(&t, 0x3 | 1u << 5);
    s_expect_refused(&cfg, ENOEXEC, "lacks (bits 0x20)");
    s_tiny(&t, 0x3);
    t.eh.e_ident[EI_CLASS] = ELFCLASS64;
    s_expect_refused(&cfg, ENOEXEC, "must be ELF32");
    s_tiny(&t, 0x3);
    t.eh.e_ident[0] = 0;
    s_expect_refused(&cfg, ENOEXEC, "needs the a.out kludge");
    s_tiny(&t, 0x3);
    t.eh.e_phnum = 60; /* a table running past the file's end */
    s_expect_refused(&cfg, ENOEXEC, "truncated: program headers");
    s_tiny(&t, 0x3);
    t.ph[0].p_filesz = 0x40;
    s_expect_refused(&cfg, ENOEXEC, "truncated: segment 0");
    s_tiny(&t, 0x3);
    t.ph[0].p_filesz = 0x2000;
    s_expect_refused(&cfg, ENOEXEC, "over memory size");
    s_tiny(&t, 0x3);
    t.ph[0].p_type = PT_NOTE;
    s_expect_refused(&cfg, ENOEXEC, "no loadable segment");
    s_tiny(&t, 0x3);
    t.eh.e_entry = TINY_GPA + 0x100; /* in the bss */
    s_expect_refused(&cfg, ENOEXEC, "not in the loaded kernel");
    s_tiny(&t, 0x10003);
    s_kludge(&t, 0x300000, 0x300000 + 0x10000, 0); /* more than the file holds */
    s_expect_refused(&cfg, ENOEXEC, "truncated: the a.out kludge");
    s_tiny(&t, 0x10003);
    s_kludge(&t, 0x300000, 0, 0x300000 + 8); /* bss_end before the load's end */
    s_expect_refused(&cfg, ENOEXEC, "bss_end_addr");
    s_tiny(&t, 0x10003);
    s_kludge(&t, 0x300000, 0, 0);
    t.mb[4] = 0x300000 - 0x10000; /* load_addr before the file's start */
    s_expect_refused(&cfg, ENOEXEC, "before the file's start");
    cfg.kernel_len = offsetof(tiny_mb_t, mb) + 16;
    s_expect_refused(&cfg, ENOEXEC, "truncated: the multiboot header");
    cfg.kernel_len = sizeof t;
}

Test(multiboot, segments_must_lie_in_usable_ram)
{
    tiny_mb_t t;
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    struct {
        uint32_t gpa, memsz;
        int code;
        const char *text;
    } cases[] = {
        {0x10000, 0x1000, ERANGE, "overlaps the boot area"},
        {0xa0000, 0x1000, ERANGE, "outside usable RAM"},
        {0xe0000, 0x1000, ERANGE, "outside usable RAM"},
        {0x9f000, 0x2000, EFBIG, "does not fit"},
        {MEM - 0x800, 0x1000, EFBIG, "does not fit in guest RAM (64 MiB"},
        {0xc0000000u, 0x1000, ERANGE, "outside usable RAM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s_tiny(&t, 0x3);
        t.ph[0].p_vaddr = t.ph[0].p_paddr = cases[i].gpa;
        t.ph[0].p_memsz = cases[i].memsz;
        t.eh.e_entry = cases[i].gpa;
        s_expect_refused(&cfg, cases[i].code, cases[i].text);
    }
    s_tiny(&t, 0x3);
    t.eh.e_phnum = 2;
    t.ph[1] = t.ph[0];
    t.ph[1].p_vaddr = t.ph[1].p_paddr = TINY_GPA + 0x800;
    s_expect_refused(&cfg, ERANGE, "segment 1 of the kernel at 0x200800..0x201800 overlaps "
                                   "segment 0 of the kernel");
}

Test(multiboot, an_initrd_that_does_not_fit_and_bad_machines_are_refused)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    cfg.mem_size = 4 * MIB;
    static uint8_t initrd[3 * MIB];
    cfg.initrd = initrd;
    cfg.initrd_len = sizeof initrd;
    s_expect_refused(&cfg, EFBIG, "the initrd (module 0)");
    cfg.initrd = NULL;
    cfg.initrd_len = 0;
    cfg.mem_size = 2 * MIB;
    s_expect_refused(&cfg, EINVAL, "4 MiB to 1 TiB");
    cfg.mem_size = MEM + 4096;
    s_expect_refused(&cfg, EINVAL, "multiple of 2 MiB");
    cfg.mem_size = MEM;
    cfg.n_vps = 256;
    s_expect_refused(&cfg, EINVAL, "1 to 255");
    cfg.n_vps = 0;
    s_expect_refused(&cfg, EINVAL, "1 to 255");
    cfg.n_vps = 1;
    static char append[70000];
    memset(append, 'a', sizeof append - 1);
    cfg.append = append;
    s_expect_refused(&cfg, EINVAL, "the command line takes");
}

/* ---- The BIOS's tables and ACPI ---------------------------------------- */

static uint8_t s_sum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    while (len--)
        sum = (uint8_t)(sum + *p++);
    return sum;
}

/* A table's bytes, checked: signature and checksum. */
static const uint8_t *s_table(const loader_image_t *img, uint64_t gpa, const char *sig)
{
    const uint8_t *t = peek_at(img, gpa, 36);
    cr_assert_eq(memcmp(t, sig, 4), 0, "%.4s at 0x%llx, expected %s", (const char *)t,
                 (unsigned long long)gpa, sig);
    uint32_t len;
    memcpy(&len, t + 4, 4);
    t = peek_at(img, gpa, len);
    cr_expect_eq(s_sum(t, len), 0, "%s's checksum", sig);
    return t;
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

Test(pc, acpi_tables_are_found_by_the_bios_area_scan_and_checksum)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    cfg.n_vps = 4;
    loader_image_t *img = s_load(&cfg);
    uint64_t rsdp = 0;
    for (uint64_t a = 0xe0000; a < 0x100000 && !rsdp; a += 16)
        if (!memcmp(peek_at(img, a, 8), "RSD PTR ", 8))
            rsdp = a;
    cr_assert_neq(rsdp, 0, "no RSDP in 0xe0000..0xfffff");
    cr_expect_eq(rsdp, loader_image_pc(img)->rsdp);
    const uint8_t *r = peek_at(img, rsdp, 36);
    cr_expect_eq(s_sum(r, 20), 0, "RSDP checksum");
    cr_expect_eq(s_sum(r, 36), 0, "RSDP extended checksum");
    cr_expect_eq(r[15], 2, "revision 2: an XSDT too");
    const uint8_t *rsdt = s_table(img, s_get32(r + 16), "RSDT");
    uint64_t xsdt_at;
    memcpy(&xsdt_at, r + 24, 8);
    const uint8_t *xsdt = s_table(img, xsdt_at, "XSDT");
    cr_assert_eq(s_get32(rsdt + 4), 36 + 2 * 4);
    cr_assert_eq(s_get32(xsdt + 4), 36 + 2 * 8);
    uint64_t x0, x1;
    memcpy(&x0, xsdt + 36, 8);
    memcpy(&x1, xsdt + 44, 8);
    cr_expect_eq(x0, s_get32(rsdt + 36));
    cr_expect_eq(x1, s_get32(rsdt + 40));

    const uint8_t *fadt = s_table(img, s_get32(rsdt + 36), "FACP");
    cr_expect_eq(s_get32(fadt + 4), 244);
    cr_expect_eq(fadt[46] | fadt[47] << 8, 9, "SCI on IRQ 9");
    cr_expect_eq(s_get32(fadt + 48), 0, "no SMI command port: ACPI mode from the start");
    cr_expect_eq(s_get32(fadt + 56), 0x600, "PM1a_EVT_BLK");
    cr_expect_eq(s_get32(fadt + 64), 0x604, "PM1a_CNT_BLK");
    cr_expect_eq(s_get32(fadt + 76), 0x608, "PM_TMR_BLK");
    cr_expect_eq(fadt[88], 4);
    cr_expect_eq(fadt[89], 2);
    cr_expect_eq(fadt[91], 4);
    cr_expect_eq(fadt[108], 0x32, "CMOS century");
    cr_expect_eq(fadt[109] & 3, 3, "legacy devices and an 8042");
    cr_expect_eq(s_get32(fadt + 112) & (1u << 8), 1u << 8, "TMR_VAL_EXT: 32 bits");
    cr_expect_eq(fadt[208], 1, "X_PM_TMR_BLK in I/O space");
    cr_expect_eq(fadt[209], 32);
    uint64_t x_tmr, x_dsdt;
    memcpy(&x_tmr, fadt + 212, 8);
    memcpy(&x_dsdt, fadt + 140, 8);
    cr_expect_eq(x_tmr, 0x608);
    cr_expect_eq(x_dsdt, s_get32(fadt + 40));
    const uint8_t *facs = peek_at(img, s_get32(fadt + 36), 64);
    cr_expect_eq(memcmp(facs, "FACS", 4), 0);
    cr_expect_eq(s_get32(fadt + 36) % 64, 0, "the FACS is 64-byte aligned");
    const uint8_t *dsdt = s_table(img, s_get32(fadt + 40), "DSDT");
    cr_expect_not_null(memmem(dsdt + 36, s_get32(dsdt + 4) - 36, "_S5_", 4));

    const uint8_t *madt = s_table(img, s_get32(rsdt + 40), "APIC");
    cr_expect_eq(s_get32(madt + 36), 0xfee00000);
    cr_expect_eq(s_get32(madt + 40) & 1, 1, "PCAT_COMPAT");
    uint32_t lapics = 0, ioapics = 0, sci = 0, nmis = 0;
    for (uint32_t at = 44; at < s_get32(madt + 4); at += madt[at + 1]) {
        const uint8_t *e = madt + at;
        cr_assert_geq(e[1], 2, "entry length");
        if (e[0] == 0) {
            cr_expect_eq(e[3], lapics, "APIC IDs in order");
            cr_expect_eq(s_get32(e + 4) & 1, 1, "enabled");
            lapics++;
        } else if (e[0] == 1) {
            cr_expect_eq(s_get32(e + 4), 0xfec00000);
            cr_expect_eq(s_get32(e + 8), 0, "GSI base 0");
            ioapics++;
        } else if (e[0] == 2) {
            cr_expect_eq(e[3], 9);
            cr_expect_eq(s_get32(e + 4), 9);
            cr_expect_eq(e[8] | e[9] << 8, 0x000d, "level, active high");
            sci++;
        } else if (e[0] == 4) {
            cr_expect_eq(e[5], 1, "LINT1");
            nmis++;
        }
    }
    cr_expect_eq(lapics, 4);
    cr_expect_eq(ioapics, 1);
    cr_expect_eq(sci, 1);
    cr_expect_eq(nmis, 1);
    loader_image_destroy(&img);
}

Test(pc, the_vector_table_and_bios_data_area_are_a_bios_s)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    loader_image_t *img = s_load(&cfg);
    for (uint32_t v = 0; v < 256; v++) {
        cr_assert_eq(peek_u16(img, 4 * v), 0xff53, "vector %u's offset", v);
        cr_assert_eq(peek_u16(img, 4 * v + 2), 0xf000, "vector %u's segment", v);
    }
    cr_expect_eq(*peek_at(img, 0xfff53, 1), 0xcf, "an IRET at F000:FF53");
    cr_expect_eq(peek_u16(img, 0x400), 0x3f8, "COM1");
    cr_expect_eq(peek_u16(img, 0x40e), 0x9fc0, "the EBDA's segment");
    cr_expect_eq(peek_u16(img, 0x413), 639, "base memory in KiB");
    loader_image_destroy(&img);
}

Test(pc, the_e820_file_is_qemu_s_layout)
{
    tiny_mb_t t;
    s_tiny(&t, 0x3);
    loader_kernel_config_t cfg = s_config((const uint8_t *)&t, sizeof t);
    loader_image_t *img = s_load(&cfg);
    const loader_pc_t *pc = loader_image_pc(img);
    uint8_t file[20 * LOADER_MAX_E820];
    size_t n = loader_pc_e820_file(pc, file, sizeof file);
    cr_assert_eq(n, 20 * pc->n_e820);
    uint64_t ram = 0;
    for (size_t i = 0; i < pc->n_e820; i++) {
        uint64_t addr, len;
        memcpy(&addr, file + 20 * i, 8);
        memcpy(&len, file + 20 * i + 8, 8);
        cr_expect_eq(addr, pc->e820[i].addr);
        cr_expect_eq(len, pc->e820[i].len);
        cr_expect_eq(s_get32(file + 20 * i + 16), pc->e820[i].type);
        if (pc->e820[i].type == 1)
            ram += len;
    }
    cr_expect_eq(ram, MEM - (0x100000 - 0x9fc00), "all RAM but 0x9fc00..0x100000 is usable");
    cr_expect_eq(loader_pc_e820_file(pc, file, 20), n, "the length needed, whatever fits");
    loader_image_destroy(&img);
}

/* ---- Linux ---------------------------------------------------------------- */

#define BZ_SETUP (5 * 512) /* setup_sects 4, and the boot sector */
#define BZ_PM 0x10000
#define BZ_INIT_SIZE 0x400000u

typedef struct {
    uint8_t bytes[BZ_SETUP + BZ_PM];
} bz_t;

static void s_put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* A synthetic bzImage of protocol `version` whose protected-mode part is a
 * counting pattern. */
static void s_bz(bz_t *b, uint16_t version)
{
    memset(b, 0, sizeof *b);
    uint8_t *k = b->bytes;
    k[0x1f1] = 4;
    s_put16(k + 0x1fe, 0xaa55);
    k[0x200] = 0xeb;
    k[0x201] = 0x66; /* the setup header ends at 0x268 */
    memcpy(k + 0x202, "HdrS", 4);
    s_put16(k + 0x206, version);
    k[0x211] = 0x01; /* LOADED_HIGH */
    s_put32(k + 0x214, 0x100000);
    s_put32(k + 0x22c, 0x37ffffff);
    s_put32(k + 0x238, 2047);
    k[0x236] = 0x01; /* XLF_KERNEL_64 */
    s_put32(k + 0x260, BZ_INIT_SIZE);
    for (size_t i = 0; i < BZ_PM; i++)
        k[BZ_SETUP + i] = (uint8_t)(i * 13 + 1);
}

Test(bzimage, a_bzimage_starts_at_its_64_bit_entry_with_the_zero_page)
{
    static bz_t b;
    s_bz(&b, 0x20f);
    static uint8_t initrd[3 * 4096 + 17];
    for (size_t i = 0; i < sizeof initrd; i++)
        initrd[i] = (uint8_t)(i ^ 0x5a);
    loader_kernel_config_t cfg = s_config(b.bytes, sizeof b.bytes);
    cfg.append = "earlyprintk=ttyS0 console=ttyS0";
    cfg.initrd = initrd;
    cfg.initrd_len = sizeof initrd;
    cfg.n_vps = 2;
    loader_image_t *img = s_load(&cfg);
    const loader_vp_state_t *st = loader_image_vp(img, 0);
    cr_assert_not_null(st);
    cr_expect_null(loader_image_vp(img, 1));
    cr_expect_eq(st->rip, 0x100200);
    cr_expect_eq(st->rsi, INFO_GPA);
    cr_expect_eq(st->cs.selector, 0x10, "__BOOT_CS");
    cr_expect_eq(st->cs.l, 1);
    cr_expect_eq(st->ds.selector, 0x18, "__BOOT_DS");
    cr_expect_eq(st->ss.selector, 0x18);
    cr_expect_eq(st->efer & 0x500, 0x500, "LME LMA");
    cr_expect_eq(st->cr0 & 0x80000001, 0x80000001, "PG PE");
    cr_expect_eq(st->cr4 & 0x20, 0x20, "PAE");
    cr_expect_eq(st->rflags, 0x2);
    loader_segment_t cs = peek_decode(peek_u64(img, st->gdt.base + 0x10), 0);
    cr_expect(cs.l && !cs.db && (cs.type & 8), "the GDT's 0x10 is 64-bit code");
    uint64_t leaf;
    const uint64_t mapped[] = {0x100000, INFO_GPA, CMDLINE_GPA, 0x3000000, 0xfee00000};
    for (size_t i = 0; i < sizeof mapped / sizeof *mapped; i++)
        cr_expect_eq(peek_walk(img, st->cr3, mapped[i], &leaf), mapped[i], "identity map");
    cr_expect_eq(memcmp(peek_at(img, 0x100000, BZ_PM), b.bytes + BZ_SETUP, BZ_PM), 0);

    /* The zero page: the setup header as the file has it, then the
     * loader's fields. */
    const uint8_t *zero = peek_at(img, INFO_GPA, 4096);
    cr_expect_eq(memcmp(zero + 0x202, "HdrS", 4), 0);
    cr_expect_eq(zero[0x1f1], 4);
    cr_expect_eq(s_get32(zero + 0x260), BZ_INIT_SIZE);
    cr_expect_eq(zero[0x210], 0xff, "type_of_loader");
    cr_expect_eq(zero[0x1fa] | zero[0x1fb] << 8, 0xffff, "vid_mode normal");
    cr_expect_str_eq((const char *)peek_at(img, s_get32(zero + 0x228), 1),
                     "earlyprintk=ttyS0 console=ttyS0");
    uint32_t rd = s_get32(zero + 0x218), rd_len = s_get32(zero + 0x21c);
    cr_expect_eq(rd_len, sizeof initrd);
    cr_expect_eq(rd % 4096, 0);
    cr_expect_geq(rd, 0x100000 + BZ_INIT_SIZE, "above the kernel's room");
    cr_expect_leq(rd + rd_len, MEM, "below the end of RAM");
    cr_expect_gt(rd + rd_len + 4096, MEM, "as high as it fits");
    cr_expect_eq(memcmp(peek_at(img, rd, sizeof initrd), initrd, sizeof initrd), 0);
    const loader_pc_t *pc = loader_image_pc(img);
    cr_expect_eq(zero[0x1e8], pc->n_e820);
    for (size_t i = 0; i < pc->n_e820; i++) {
        uint64_t addr;
        memcpy(&addr, zero + 0x2d0 + 20 * i, 8);
        cr_expect_eq(addr, pc->e820[i].addr);
        cr_expect_eq(s_get32(zero + 0x2d0 + 20 * i + 16), pc->e820[i].type);
    }
    uint64_t rsdp;
    memcpy(&rsdp, zero + 0x70, 8);
    cr_expect_eq(rsdp, pc->rsdp, "acpi_rsdp_addr (protocol 2.14)");
    loader_image_destroy(&img);
}

Test(bzimage, a_kernel_before_protocol_2_12_starts_at_its_32_bit_entry)
{
    static bz_t b;
    s_bz(&b, 0x20a);
    s_put32(b.bytes + 0x214, 0x100000);
    loader_kernel_config_t cfg = s_config(b.bytes, sizeof b.bytes);
    loader_image_t *img = s_load(&cfg);
    const loader_vp_state_t *st = loader_image_vp(img, 0);
    cr_expect_eq(st->rip, 0x100000, "code32_start");
    cr_expect_eq(st->cr0, 0x11, "paging off");
    cr_expect_eq(st->efer, 0);
    cr_expect_eq(st->cs.selector, 0x10);
    cr_expect_eq(st->cs.db, 1);
    cr_expect_eq(st->cs.l, 0);
    loader_segment_t cs = peek_decode(peek_u64(img, st->gdt.base + 0x10), 0);
    cr_expect(!cs.l && cs.db, "the GDT's 0x10 is 32-bit code");
    uint64_t rsdp;
    memcpy(&rsdp, peek_at(img, INFO_GPA + 0x70, 8), 8);
    cr_expect_eq(rsdp, 0, "no acpi_rsdp_addr before protocol 2.14");
    loader_image_destroy(&img);
}

Test(bzimage, bad_bzimages_are_refused)
{
    static bz_t b;
    loader_kernel_config_t cfg = s_config(b.bytes, sizeof b.bytes);
    s_bz(&b, 0x205);
    s_expect_refused(&cfg, ENOEXEC, "2.06 or later");
    s_bz(&b, 0x20f);
    b.bytes[0x211] = 0;
    s_expect_refused(&cfg, ENOEXEC, "zImage");
    s_bz(&b, 0x20f);
    s_put16(b.bytes + 0x1fe, 0x1234);
    s_expect_refused(&cfg, ENOEXEC, "boot flag");
    s_bz(&b, 0x20f);
    cfg.kernel_len = 0x250;
    s_expect_refused(&cfg, ENOEXEC, "truncated");
    cfg.kernel_len = BZ_SETUP;
    s_expect_refused(&cfg, ENOEXEC, "no protected-mode kernel");
    cfg.kernel_len = sizeof b.bytes;
    memcpy(b.bytes + 0x202, "HdrX", 4);
    s_expect_refused(&cfg, ENOEXEC, "nor a Linux bzImage");
    s_bz(&b, 0x20f);
    s_put32(b.bytes + 0x238, 16);
    cfg.append = "a command line longer than sixteen bytes";
    s_expect_refused(&cfg, EINVAL, "at most 16");
    cfg.append = NULL;
    s_bz(&b, 0x20f);
    s_put32(b.bytes + 0x260, 0x5000000); /* 80 MiB of room in 64 MiB */
    s_expect_refused(&cfg, EFBIG, "does not fit in guest RAM");
}

Test(bzimage, an_initrd_must_fit_above_the_kernel_and_below_its_limit)
{
    static bz_t b;
    s_bz(&b, 0x20f);
    static uint8_t initrd[6 * MIB];
    loader_kernel_config_t cfg = s_config(b.bytes, sizeof b.bytes);
    cfg.mem_size = 8 * MIB;
    cfg.initrd = initrd;
    cfg.initrd_len = 4 * MIB; /* from 4 MiB, over the kernel's 1..5 MiB */
    s_expect_refused(&cfg, ERANGE, "would overlap the kernel");
    cfg.mem_size = MEM;
    s_put32(b.bytes + 0x22c, 4 * MIB - 1); /* initrd_addr_max */
    cfg.initrd_len = sizeof initrd;
    s_expect_refused(&cfg, EFBIG, "does not fit below 0x400000");
}
