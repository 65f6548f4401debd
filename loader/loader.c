/* The guest loader: ELF validation, the boot image and each VP's state. */
#include "loader/loader.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "loader/image.h"

#define MIB (1024ull * 1024)
#define PAGE_2M (2 * MIB)
#define MEM_MIN (4 * MIB)
#define MEM_MAX (3072 * MIB)
#define MAX_PHDRS 64

/* The reserved structures, one chunk from the GDT to the bitmap's end. */
#define LOW_START LOADER_GDT_GPA
#define LOW_END (LOADER_IOPB_GPA + LOADER_IOPB_SIZE)

static int s_check_machine(uint64_t mem_size, uint32_t n_vps, char *err, size_t errlen)
{
    if (mem_size < MEM_MIN || mem_size > MEM_MAX || mem_size % PAGE_2M != 0)
        return loader_error(err, errlen, EINVAL,
                       "guest RAM of 0x%llx bytes: must be a multiple of 2 MiB, 4 MiB to 3 GiB",
                       (unsigned long long)mem_size);
    if (n_vps < 1 || n_vps > LOADER_MAX_VPS)
        return loader_error(err, errlen, EINVAL, "%u VPs: must be 1 to %u", n_vps, LOADER_MAX_VPS);
    if ((uint64_t)n_vps * LOADER_STACK_SIZE > mem_size - LOADER_RESERVED_END)
        return loader_error(err, errlen, EINVAL,
                       "%u VP stacks of %u KiB do not fit in %llu MiB of guest RAM", n_vps,
                       LOADER_STACK_SIZE / 1024, (unsigned long long)(mem_size / MIB));
    return 0;
}

/* Checks the ELF header and copies the program headers out (the buffer may
 * be unaligned) into phdrs; *n gets their count. */
static int s_read_headers(const uint8_t *elf, size_t len, Elf64_Ehdr *eh, Elf64_Phdr *phdrs,
                          size_t *n, char *err, size_t errlen)
{
    if (len < sizeof(*eh))
        return loader_error(err, errlen, ENOEXEC, "truncated: %zu bytes, an ELF64 header takes %zu",
                       len, sizeof(*eh));
    memcpy(eh, elf, sizeof(*eh));
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return loader_error(err, errlen, ENOEXEC, "not an ELF file (bad magic)");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        return loader_error(err, errlen, ENOEXEC, "not a 64-bit ELF (class %u)", eh->e_ident[EI_CLASS]);
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return loader_error(err, errlen, ENOEXEC, "not a little-endian ELF (data encoding %u)",
                       eh->e_ident[EI_DATA]);
    if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
        return loader_error(err, errlen, ENOEXEC, "unknown ELF version %u", eh->e_version);
    if (eh->e_machine != EM_X86_64)
        return loader_error(err, errlen, ENOEXEC, "not for x86-64 (machine %u)", eh->e_machine);
    if (eh->e_type != ET_EXEC)
        return loader_error(err, errlen, ENOEXEC,
                       "not a static executable (type %u; position-independent ones are refused)",
                       eh->e_type);
    if (eh->e_ehsize != sizeof(*eh) || eh->e_phentsize != sizeof(Elf64_Phdr))
        return loader_error(err, errlen, ENOEXEC, "unexpected header sizes (%u, program header %u)",
                       eh->e_ehsize, eh->e_phentsize);
    if (eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS)
        return loader_error(err, errlen, ENOEXEC, "%u program headers: must be 1 to %u", eh->e_phnum,
                       MAX_PHDRS);
    size_t table = (size_t)eh->e_phnum * sizeof(Elf64_Phdr);
    if (eh->e_phoff > len || table > len - eh->e_phoff)
        return loader_error(err, errlen, ENOEXEC,
                       "truncated: program headers at 0x%llx..0x%llx, file of 0x%zx bytes",
                       (unsigned long long)eh->e_phoff,
                       (unsigned long long)eh->e_phoff + table, len);
    memcpy(phdrs, elf + eh->e_phoff, table);
    *n = eh->e_phnum;
    return 0;
}

/* Checks loadable segment i against the file and guest memory. */
static int s_check_segment(const Elf64_Phdr *ph, size_t i, size_t len, uint64_t mem_size,
                           uint32_t n_vps, char *err, size_t errlen)
{
    unsigned long long gpa = ph->p_paddr;
    if (ph->p_filesz > ph->p_memsz)
        return loader_error(err, errlen, ENOEXEC,
                       "segment %zu: file size 0x%llx over memory size 0x%llx", i,
                       (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
    if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
        return loader_error(err, errlen, ENOEXEC,
                       "segment %zu: 0x%llx bytes at offset 0x%llx lie beyond the file (0x%zx)", i,
                       (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_offset, len);
    if (ph->p_vaddr != ph->p_paddr)
        return loader_error(err, errlen, ENOEXEC,
                       "segment %zu: virtual 0x%llx differs from physical 0x%llx (guests run "
                       "identity-mapped)",
                       i, (unsigned long long)ph->p_vaddr, gpa);
    if (ph->p_memsz > UINT64_MAX - gpa || gpa + ph->p_memsz > mem_size)
        return loader_error(err, errlen, ERANGE,
                       "segment %zu at 0x%llx ends beyond guest RAM (%llu MiB)", i, gpa,
                       (unsigned long long)(mem_size / MIB));
    uint64_t end = gpa + ph->p_memsz;
    if (loader_overlaps(gpa, end, 0, LOADER_RESERVED_END))
        return loader_error(err, errlen, ERANGE,
                       "segment %zu at 0x%llx overlaps the loader's reserved area (0x0..0x%x)", i,
                       gpa, LOADER_RESERVED_END);
    uint64_t stacks = mem_size - (uint64_t)n_vps * LOADER_STACK_SIZE;
    if (loader_overlaps(gpa, end, stacks, mem_size))
        return loader_error(err, errlen, ERANGE,
                       "segment %zu at 0x%llx overlaps the VP stacks (0x%llx..0x%llx)", i, gpa,
                       (unsigned long long)stacks, (unsigned long long)mem_size);
    return 0;
}

/* Checks every program header: returns the number of non-empty loadable
 * segments in *n_load. */
static int s_check_segments(const Elf64_Ehdr *eh, const Elf64_Phdr *phdrs, size_t n, size_t len,
                            uint64_t mem_size, uint32_t n_vps, size_t *n_load, char *err,
                            size_t errlen)
{
    bool entry_ok = false;
    *n_load = 0;
    for (size_t i = 0; i < n; i++) {
        const Elf64_Phdr *ph = &phdrs[i];
        if (ph->p_type == PT_DYNAMIC || ph->p_type == PT_INTERP)
            return loader_error(err, errlen, ENOEXEC, "segment %zu: dynamic linking is not supported",
                           i);
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
            continue;
        int rc = s_check_segment(ph, i, len, mem_size, n_vps, err, errlen);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            const Elf64_Phdr *o = &phdrs[j];
            if (o->p_type == PT_LOAD && o->p_memsz != 0 &&
                loader_overlaps(ph->p_paddr, ph->p_paddr + ph->p_memsz, o->p_paddr,
                           o->p_paddr + o->p_memsz))
                return loader_error(err, errlen, ERANGE, "segment %zu at 0x%llx overlaps segment %zu", i,
                               (unsigned long long)ph->p_paddr, j);
        }
        if ((ph->p_flags & PF_X) && eh->e_entry >= ph->p_vaddr &&
            eh->e_entry - ph->p_vaddr < ph->p_filesz)
            entry_ok = true;
        (*n_load)++;
    }
    if (*n_load == 0)
        return loader_error(err, errlen, ENOEXEC, "no loadable segment");
    if (!entry_ok)
        return loader_error(err, errlen, ENOEXEC, "entry 0x%llx is not in an executable segment",
                       (unsigned long long)eh->e_entry);
    return 0;
}

static uint64_t s_tss_gpa(uint32_t vp)
{
    return LOADER_TSS_GPA + (uint64_t)vp * LOADER_TSS_STRIDE;
}

static loader_segment_t s_tss_segment(uint32_t vp)
{
    uint64_t base = s_tss_gpa(vp);
    return (loader_segment_t){.base = base,
                              .limit = (uint32_t)(LOADER_IOPB_GPA + LOADER_IOPB_SIZE - 1 - base),
                              .selector = (uint16_t)(LOADER_SEL_TSS0 + 16 * vp),
                              .type = SEG_TYPE_TSS_BUSY,
                              .present = 1};
}

static uint64_t s_stack_top(uint64_t mem_size, uint32_t vp)
{
    return mem_size - (uint64_t)vp * LOADER_STACK_SIZE;
}

/* Fills the reserved structures; low covers LOW_START..LOW_END. */
static void s_build_low(uint8_t *low, uint64_t mem_size, uint32_t n_vps)
{
    uint8_t *gdt = low + (LOADER_GDT_GPA - LOW_START);
    loader_segment_t flat[] = {
        loader_flat(LOADER_SEL_KERNEL_CODE, SEG_TYPE_CODE_RX, 0, 64),
        loader_flat(LOADER_SEL_KERNEL_DATA, SEG_TYPE_DATA_RW, 0, 32),
        loader_flat(LOADER_SEL_USER_DATA, SEG_TYPE_DATA_RW, 3, 32),
        loader_flat(LOADER_SEL_USER_CODE, SEG_TYPE_CODE_RX, 3, 64),
    };
    for (size_t i = 0; i < sizeof(flat) / sizeof(flat[0]); i++)
        loader_put64(gdt + (flat[i].selector & ~7), loader_descriptor(&flat[i]));

    loader_identity_map(low + (LOADER_PAGE_TABLES_GPA - LOW_START), LOADER_PAGE_TABLES_GPA);

    for (uint32_t vp = 0; vp < n_vps; vp++) {
        loader_segment_t tr = s_tss_segment(vp);
        uint8_t *desc = gdt + (tr.selector & ~7);
        loader_put64(desc, loader_descriptor(&tr));
        loader_put64(desc + 8, tr.base >> 32);
        uint8_t *tss = low + (tr.base - LOW_START);
        loader_put64(tss + LOADER_TSS_RSP0, s_stack_top(mem_size, vp));
        uint16_t iopb = (uint16_t)(LOADER_IOPB_GPA - tr.base);
        memcpy(tss + LOADER_TSS_IOPB_OFFSET, &iopb, sizeof(iopb));
    }
    /* The bitmap's bits are all 0 (allowed); the CPU reads 2 bytes for a
     * port, so the byte past the last port's must be there, all ones. */
    low[LOW_END - 1 - LOW_START] = 0xff;
}

static void s_build_vp(loader_vp_state_t *st, uint64_t entry, uint64_t mem_size, uint32_t n_vps,
                       uint32_t vp)
{
    loader_segment_t data = loader_flat(LOADER_SEL_KERNEL_DATA, SEG_TYPE_DATA_RW, 0, 32);
    *st = (loader_vp_state_t){
        .rip = entry,
        .rsp = s_stack_top(mem_size, vp),
        .rdi = vp,
        .rsi = n_vps,
        .rflags = 0x2,
        .cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
        .cr3 = LOADER_PAGE_TABLES_GPA,
        .cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
        .efer = EFER_SCE | EFER_LME | EFER_LMA,
        .cs = loader_flat(LOADER_SEL_KERNEL_CODE, SEG_TYPE_CODE_RX, 0, 64),
        .ds = data,
        .es = data,
        .fs = data,
        .gs = data,
        .ss = data,
        .tr = s_tss_segment(vp),
        .ldt = {.type = SEG_TYPE_LDT, .unusable = 1},
        .gdt = {.base = LOADER_GDT_GPA, .limit = (uint16_t)(LOADER_SEL_TSS0 + 16 * n_vps - 1)},
        .idt = {.base = 0, .limit = 0},
    };
}

loader_image_t *loader_image_new(const uint8_t *elf, size_t len, uint64_t mem_size,
                                 uint32_t n_vps, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    Elf64_Phdr phdrs[MAX_PHDRS];
    size_t n_phdrs = 0, n_load = 0;
    loader_image_t *image = NULL;
    int rc = s_check_machine(mem_size, n_vps, err, errlen);
    if (rc == 0)
        rc = s_read_headers(elf, len, &eh, phdrs, &n_phdrs, err, errlen);
    if (rc == 0)
        rc = s_check_segments(&eh, phdrs, n_phdrs, len, mem_size, n_vps, &n_load, err, errlen);
    if (rc < 0)
        goto fail;
    rc = -ENOMEM;
    if (!(image = loader_image_alloc(n_vps, mem_size)))
        goto fail;
    image->entry = eh.e_entry;
    uint8_t *low = loader_image_add(image, LOW_START, LOW_END - LOW_START, "the loader's area",
                                    err, errlen);
    if (!low)
        goto fail_errno;
    s_build_low(low, mem_size, n_vps);
    for (size_t i = 0; i < n_phdrs; i++) {
        const Elf64_Phdr *ph = &phdrs[i];
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
            continue;
        char what[32];
        snprintf(what, sizeof what, "segment %zu", i);
        uint8_t *bytes = loader_image_add(image, ph->p_paddr, (size_t)ph->p_memsz, what, err,
                                          errlen);
        if (!bytes)
            goto fail_errno;
        memcpy(bytes, elf + ph->p_offset, ph->p_filesz);
        loader_image_note(image, "%s: 0x%llx..0x%llx\n", what, (unsigned long long)ph->p_paddr,
                          (unsigned long long)(ph->p_paddr + ph->p_memsz));
    }
    for (uint32_t vp = 0; vp < n_vps; vp++)
        s_build_vp(loader_image_start_vp(image, vp), eh.e_entry, mem_size, n_vps, vp);
    loader_image_note(image, "ELF64 guest, entry 0x%llx, %u VPs started in 64-bit mode\n",
                      (unsigned long long)eh.e_entry, n_vps);
    return image;

fail_errno:
    rc = -errno;
fail:
    if (rc == -ENOMEM)
        loader_error(err, errlen, ENOMEM, "out of memory");
    loader_image_destroy(&image);
    errno = -rc;
    return NULL;
}
