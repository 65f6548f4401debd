/* The loader: the demo guest, every validation error, the page tables, the
 * GDT and TSSs against the VP state, and the machine's limits. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "loader/testing/peek.h"

#define MIB (1024ull * 1024)
#define MEM (64 * MIB)
#define CODE_GPA 0x200000ull

/* ---- helpers ---------------------------------------------------------- */

/* A small valid image: the ELF header, one program header and 16 bytes of
 * code loaded at CODE_GPA, with a 4 KiB bss. */
typedef struct {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[3];
    uint8_t code[16];
} tiny_elf_t;

static void s_tiny(tiny_elf_t *t)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->eh.e_ident, ELFMAG, SELFMAG);
    t->eh.e_ident[EI_CLASS] = ELFCLASS64;
    t->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    t->eh.e_ident[EI_VERSION] = EV_CURRENT;
    t->eh.e_type = ET_EXEC;
    t->eh.e_machine = EM_X86_64;
    t->eh.e_version = EV_CURRENT;
    t->eh.e_entry = CODE_GPA + 4;
    t->eh.e_phoff = offsetof(tiny_elf_t, ph);
    t->eh.e_ehsize = sizeof(Elf64_Ehdr);
    t->eh.e_phentsize = sizeof(Elf64_Phdr);
    t->eh.e_phnum = 1;
    t->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                            .p_flags = PF_R | PF_X,
                            .p_offset = offsetof(tiny_elf_t, code),
                            .p_vaddr = CODE_GPA,
                            .p_paddr = CODE_GPA,
                            .p_filesz = sizeof(t->code),
                            .p_memsz = 0x1000,
                            .p_align = 0x1000};
    for (size_t i = 0; i < sizeof(t->code); i++)
        t->code[i] = (uint8_t)(0xa0 + i);
}

/* Expects the tiny ELF (len bytes of it) to be refused with code and a
 * message containing text. */
static void s_expect_refused(const tiny_elf_t *t, size_t len, uint64_t mem, uint32_t n_vps,
                             int code, const char *text)
{
    char err[256] = "";
    errno = 0;
    loader_image_t *img = loader_image_new((const uint8_t *)t, len, mem, n_vps, err, sizeof(err));
    cr_assert_null(img, "accepted; expected \"%s\"", text);
    cr_expect_eq(errno, code, "errno %d (%s), expected %d; message: %s", errno, strerror(errno),
                 code, err);
    cr_expect_not_null(strstr(err, text), "message \"%s\" lacks \"%s\"", err, text);
}

/* Checks that the GDT entry for seg's selector says what seg says. */
static void s_expect_descriptor(const loader_image_t *img, const loader_vp_state_t *vp,
                                const loader_segment_t *seg, const char *name)
{
    uint64_t at = vp->gdt.base + (seg->selector & ~7u);
    cr_assert_leq((seg->selector & ~7u) + (seg->s ? 7u : 15u), vp->gdt.limit, "%s beyond GDT",
                  name);
    loader_segment_t d = peek_decode(peek_u64(img, at), seg->s ? 0 : peek_u64(img, at + 8));
    cr_expect_eq(d.base, seg->base, "%s base", name);
    cr_expect_eq(d.limit, seg->limit, "%s limit 0x%x vs 0x%x", name, d.limit, seg->limit);
    cr_expect_eq(d.type, seg->type, "%s type", name);
    cr_expect_eq(d.s, seg->s, "%s s", name);
    cr_expect_eq(d.dpl, seg->dpl, "%s dpl", name);
    cr_expect_eq(d.present, seg->present, "%s present", name);
    cr_expect_eq(d.avl, seg->avl, "%s avl", name);
    cr_expect_eq(d.l, seg->l, "%s l", name);
    cr_expect_eq(d.db, seg->db, "%s db", name);
    cr_expect_eq(d.g, seg->g, "%s g", name);
}

/* ---- the demo guest --------------------------------------------------- */

Test(loader, demo_guest_loads_with_its_entry_and_segments)
{
    size_t len;
    uint8_t *elf = peek_read_file("guest/demo", &len);
    char err[256] = "";
    loader_image_t *img = loader_image_new(elf, len, MEM, 2, err, sizeof(err));
    cr_assert_not_null(img, "%s", err);

    Elf64_Ehdr eh;
    memcpy(&eh, elf, sizeof(eh));
    cr_expect_eq(loader_image_entry(img), eh.e_entry);
    cr_expect_geq(eh.e_entry, 0x100000, "entry 0x%llx below 1 MiB",
                  (unsigned long long)eh.e_entry);
    for (uint32_t vp = 0; vp < 2; vp++)
        cr_expect_eq(loader_image_vp(img, vp)->rip, eh.e_entry);

    /* Every loadable segment, the headers' one below the code included, is
     * a chunk holding the file's bytes and zeros up to its memory size. */
    size_t n_chunks;
    const loader_chunk_t *chunks = loader_image_chunks(img, &n_chunks);
    size_t n_load = 0;
    bool below_code = false;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        cr_expect(ph.p_type != PT_DYNAMIC && ph.p_type != PT_INTERP, "not static");
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        n_load++;
        below_code |= ph.p_paddr < 0x100000;
        const loader_chunk_t *c = NULL;
        for (size_t j = 0; j < n_chunks; j++) {
            if (chunks[j].gpa == ph.p_paddr)
                c = &chunks[j];
        }
        cr_assert_not_null(c, "no chunk at 0x%llx", (unsigned long long)ph.p_paddr);
        cr_assert_eq(c->len, ph.p_memsz);
        cr_expect_eq(memcmp(c->bytes, elf + ph.p_offset, ph.p_filesz), 0);
        for (size_t k = ph.p_filesz; k < ph.p_memsz; k++)
            cr_assert_eq(c->bytes[k], 0, "bss byte %zu of segment %d", k, i);
    }
    cr_expect_geq(n_load, 2);
    cr_expect(below_code, "the linker's header segment below the code was expected");
    cr_expect_eq(n_chunks, 1 + n_load, "the reserved structures plus the segments");
    loader_image_destroy(&img);
    cr_expect_null(img);
    free(elf);
}

/* ---- validation ------------------------------------------------------- */

Test(loader, tiny_elf_loads_with_bss_zeroed)
{
    tiny_elf_t t;
    s_tiny(&t);
    char err[256] = "";
    loader_image_t *img =
        loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 1, err, sizeof(err));
    cr_assert_not_null(img, "%s", err);
    cr_expect_eq(loader_image_entry(img), CODE_GPA + 4);
    cr_expect_eq(memcmp(peek_at(img, CODE_GPA, 16), t.code, 16), 0);
    for (uint64_t a = CODE_GPA + 16; a < CODE_GPA + 0x1000; a++)
        cr_assert_eq(*peek_at(img, a, 1), 0);
    loader_image_destroy(&img);
}

Test(loader, truncated_files_are_refused)
{
    tiny_elf_t t;
    s_tiny(&t);
    s_expect_refused(&t, 10, MEM, 1, ENOEXEC, "truncated");
    s_expect_refused(&t, sizeof(Elf64_Ehdr) + 20, MEM, 1, ENOEXEC, "truncated");
    s_expect_refused(&t, offsetof(tiny_elf_t, code) + 8, MEM, 1, ENOEXEC, "beyond the file");
}

Test(loader, bad_headers_are_refused)
{
    tiny_elf_t t;
    s_tiny(&t);
    t.eh.e_ident[1] = 'X';
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "bad magic");
    s_tiny(&t);
    t.eh.e_ident[EI_CLASS] = ELFCLASS32;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "not a 64-bit ELF");
    s_tiny(&t);
    t.eh.e_ident[EI_DATA] = ELFDATA2MSB;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "little-endian");
    s_tiny(&t);
    t.eh.e_machine = EM_AARCH64;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "not for x86-64");
    s_tiny(&t);
    t.eh.e_type = ET_DYN;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "not a static executable");
    s_tiny(&t);
    t.eh.e_version = 2;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "version");
    s_tiny(&t);
    t.eh.e_phentsize = 32;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "header sizes");
    s_tiny(&t);
    t.eh.e_phnum = 0;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "program headers");
    s_tiny(&t);
    t.eh.e_phoff = UINT64_MAX - 8;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "truncated");
}

Test(loader, bad_segments_are_refused)
{
    tiny_elf_t t;
    s_tiny(&t);
    t.ph[0].p_filesz = 0x2000;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "over memory size");
    s_tiny(&t);
    t.ph[0].p_offset = UINT64_MAX - 4; /* offset + size wraps */
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "beyond the file");
    s_tiny(&t);
    t.ph[0].p_vaddr += 0x1000;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "identity-mapped");
    s_tiny(&t);
    t.ph[0].p_type = PT_INTERP;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "dynamic linking");
    s_tiny(&t);
    t.ph[0].p_type = PT_NOTE;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "no loadable segment");
    s_tiny(&t);
    t.eh.e_entry = CODE_GPA + 16; /* in the bss, not in the file's bytes */
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "not in an executable segment");
    s_tiny(&t);
    t.ph[0].p_flags = PF_R | PF_W;
    s_expect_refused(&t, sizeof(t), MEM, 1, ENOEXEC, "not in an executable segment");
}

Test(loader, segments_outside_the_free_memory_are_refused)
{
    tiny_elf_t t;
    s_tiny(&t);
    t.ph[0].p_vaddr = t.ph[0].p_paddr = MEM - 0x800;
    t.eh.e_entry = t.ph[0].p_vaddr;
    s_expect_refused(&t, sizeof(t), MEM, 1, ERANGE,
                     "segment 0 at 0x3fff800 ends beyond guest RAM (64 MiB)");
    s_tiny(&t);
    t.ph[0].p_vaddr = t.ph[0].p_paddr = UINT64_MAX - 0x800; /* gpa + size wraps */
    t.eh.e_entry = t.ph[0].p_vaddr;
    s_expect_refused(&t, sizeof(t), MEM, 1, ERANGE, "ends beyond guest RAM");
    s_tiny(&t);
    t.ph[0].p_vaddr = t.ph[0].p_paddr = LOADER_RESERVED_END - 0x800;
    t.eh.e_entry = t.ph[0].p_vaddr;
    s_expect_refused(&t, sizeof(t), MEM, 1, ERANGE, "reserved area");
    s_tiny(&t);
    t.ph[0].p_vaddr = t.ph[0].p_paddr = 0;
    t.eh.e_entry = 0;
    s_expect_refused(&t, sizeof(t), MEM, 1, ERANGE, "reserved area");
    s_tiny(&t);
    /* Two VPs' stacks take the top 32 KiB. */
    t.ph[0].p_vaddr = t.ph[0].p_paddr = MEM - 2 * LOADER_STACK_SIZE - 0x800;
    t.eh.e_entry = t.ph[0].p_vaddr;
    s_expect_refused(&t, sizeof(t), MEM, 2, ERANGE, "VP stacks");
    s_tiny(&t);
    t.eh.e_phnum = 2;
    t.ph[1] = t.ph[0];
    t.ph[1].p_vaddr = t.ph[1].p_paddr = CODE_GPA + 0x800;
    s_expect_refused(&t, sizeof(t), MEM, 1, ERANGE, "segment 1 at 0x200800 overlaps segment 0");
}

Test(loader, bad_machines_are_refused)
{
    tiny_elf_t t;
    s_tiny(&t);
    s_expect_refused(&t, sizeof(t), MEM + 0x1000, 1, EINVAL, "multiple of 2 MiB");
    s_expect_refused(&t, sizeof(t), 2 * MIB, 1, EINVAL, "multiple of 2 MiB");
    s_expect_refused(&t, sizeof(t), 4096 * MIB, 1, EINVAL, "multiple of 2 MiB");
    s_expect_refused(&t, sizeof(t), MEM, 0, EINVAL, "VPs");
    s_expect_refused(&t, sizeof(t), MEM, LOADER_MAX_VPS + 1, EINVAL, "VPs");
    s_expect_refused(&t, sizeof(t), 4 * MIB, LOADER_MAX_VPS, EINVAL, "stacks");
}

Test(loader, error_buffer_is_optional)
{
    tiny_elf_t t;
    s_tiny(&t);
    t.eh.e_machine = EM_386;
    errno = 0;
    cr_expect_null(loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 1, NULL, 0));
    cr_expect_eq(errno, ENOEXEC);
    char tiny[8];
    cr_expect_null(loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 1, tiny, sizeof(tiny)));
    cr_expect_eq(strlen(tiny), sizeof(tiny) - 1, "the message is cut to the buffer");
}

/* ---- the machine state ------------------------------------------------ */

Test(loader, page_tables_identity_map_4_gib_for_user_and_writes)
{
    tiny_elf_t t;
    s_tiny(&t);
    loader_image_t *img = loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 1, NULL, 0);
    cr_assert_not_null(img);
    uint64_t cr3 = loader_image_vp(img, 0)->cr3;
    const uint64_t addrs[] = {0, 0x200000, 0x123456, MEM - 1, 0xfee00000, 0xfec00000, 0xffffffff};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        uint64_t leaf;
        cr_expect_eq(peek_walk(img, cr3, addrs[i], &leaf), addrs[i]);
        bool uncached = (leaf & 0x18) == 0x18;
        cr_expect_eq(uncached, addrs[i] >= 3072 * MIB, "caching of 0x%llx",
                     (unsigned long long)addrs[i]);
    }
    loader_image_destroy(&img);
}

Test(loader, control_registers_start_long_mode)
{
    tiny_elf_t t;
    s_tiny(&t);
    loader_image_t *img = loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 3, NULL, 0);
    cr_assert_not_null(img);
    const loader_vp_state_t *vp = loader_image_vp(img, 2);
    cr_assert_not_null(vp);
    cr_expect_null(loader_image_vp(img, 3));
    cr_expect_eq(vp->cr0, 0x80010033ull, "PE MP ET NE WP PG: 0x%llx", (unsigned long long)vp->cr0);
    cr_expect_eq(vp->cr4 & 0x20, 0x20, "PAE");
    cr_expect_eq(vp->efer & 0x501, 0x501, "SCE LME LMA");
    cr_expect_eq(vp->rflags, 0x2);
    cr_expect_eq(vp->rdi, 2);
    cr_expect_eq(vp->rsp % 16, 0);
    cr_expect_eq(vp->cs.l, 1);
    cr_expect_eq(vp->cs.db, 0);
    cr_expect_eq(vp->cs.dpl, 0);
    cr_expect_eq(vp->ss.selector, LOADER_SEL_KERNEL_DATA);
    cr_expect_eq(vp->ldt.unusable, 1);
    cr_expect_eq(vp->idt.limit, 0);
    cr_expect_eq(vp->gdt.limit, LOADER_SEL_TSS0 + 3 * 16 - 1);
    cr_expect_eq(vp->tr.type, 11, "busy 64-bit TSS");
    loader_image_destroy(&img);
}

Test(loader, gdt_and_tss_match_the_vp_state)
{
    tiny_elf_t t;
    s_tiny(&t);
    loader_image_t *img = loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 2, NULL, 0);
    cr_assert_not_null(img);
    for (uint32_t i = 0; i < 2; i++) {
        const loader_vp_state_t *vp = loader_image_vp(img, i);
        s_expect_descriptor(img, vp, &vp->cs, "cs");
        s_expect_descriptor(img, vp, &vp->ds, "ds");
        s_expect_descriptor(img, vp, &vp->ss, "ss");
        s_expect_descriptor(img, vp, &vp->tr, "tr");

        /* SYSRET's order: user data at STAR base + 8, user code at + 16. */
        uint64_t star_base = vp->gdt.base + LOADER_SEL_KERNEL_DATA;
        loader_segment_t udata = peek_decode(peek_u64(img, star_base + 8), 0);
        loader_segment_t ucode = peek_decode(peek_u64(img, star_base + 16), 0);
        cr_expect_eq(LOADER_SEL_USER_DATA & ~3, LOADER_SEL_KERNEL_DATA + 8);
        cr_expect_eq(LOADER_SEL_USER_CODE & ~3, LOADER_SEL_KERNEL_DATA + 16);
        cr_expect(udata.dpl == 3 && udata.present && udata.s && !(udata.type & 8) && udata.db);
        cr_expect(ucode.dpl == 3 && ucode.present && ucode.s && (ucode.type & 8) && ucode.l &&
                  !ucode.db);

        /* The TSS: RSP0 is the VP's stack top; its I/O bitmap allows every
         * port and ends with 0xff, inside the TSS's limit. */
        uint64_t tss = vp->tr.base;
        uint64_t rsp0;
        memcpy(&rsp0, peek_at(img, tss + 4, 8), 8);
        cr_expect_eq(rsp0, vp->rsp);
        uint16_t iopb;
        memcpy(&iopb, peek_at(img, tss + 102, 2), 2);
        cr_expect_geq(iopb, 104);
        const uint8_t *bitmap = peek_at(img, tss + iopb, 8193);
        for (size_t b = 0; b < 8192; b++)
            cr_assert_eq(bitmap[b], 0, "port 0x%zx is refused", b * 8);
        cr_expect_eq(bitmap[8192], 0xff);
        cr_expect_eq(vp->tr.limit, iopb + 8192u, "the limit covers the bitmap's last byte");
    }
    loader_image_destroy(&img);
}

Test(loader, vps_get_their_own_stacks_and_tss)
{
    tiny_elf_t t;
    s_tiny(&t);
    loader_image_t *img = loader_image_new((const uint8_t *)&t, sizeof(t), MEM, 2, NULL, 0);
    cr_assert_not_null(img);
    const loader_vp_state_t *a = loader_image_vp(img, 0), *b = loader_image_vp(img, 1);
    cr_expect_eq(a->rsp, MEM, "VP 0's stack at the top of RAM");
    cr_expect_eq(a->rsp - b->rsp, LOADER_STACK_SIZE);
    cr_expect_eq(a->rdi, 0);
    cr_expect_eq(b->rdi, 1);
    cr_expect_neq(a->tr.selector, b->tr.selector);
    cr_expect_geq(b->tr.base, a->tr.base + LOADER_TSS_SIZE, "the TSSs must not overlap");
    cr_expect_eq(a->rip, b->rip);
    cr_expect_eq(a->cr3, b->cr3);
    cr_expect_eq(a->gdt.base, b->gdt.base);
    loader_image_destroy(&img);
}
