/*
 * Multiboot v1 (the Multiboot Specification 0.6.96): an ELF32 image loaded
 * by its program headers, or any image by the header's a.out kludge
 * addresses, entered in 32-bit protected mode with paging off, EAX =
 * 0x2BADB002 and EBX = the information structure. As QEMU does, the kludge
 * wins over ELF headers when its flag is set, and the command line starts
 * with the kernel's name.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loader/pc.h"

#define S_HEADER_MAGIC 0x1badb002u
#define S_SEARCH 8192 /* the header lies in the image's first 8 KiB */
#define S_FLAG_PAGE_ALIGN (1u << 0)
#define S_FLAG_MEMORY (1u << 1)
#define S_FLAG_VIDEO (1u << 2)
#define S_FLAG_AOUT (1u << 16)
/* Bits 0-15 ask for what a loader must provide or refuse the image. */
#define S_FLAGS_REQUIRED 0xffffu
#define S_FLAGS_KNOWN (S_FLAG_PAGE_ALIGN | S_FLAG_MEMORY | S_FLAG_VIDEO)
#define S_MAX_PHDRS 64
#define S_MAX_PIECES 64

/* The information structure and what it points to, in the boot area. */
#define S_INFO_MEMORY (1u << 0)
#define S_INFO_CMDLINE (1u << 2)
#define S_INFO_MODS (1u << 3)
#define S_INFO_MMAP (1u << 6)
#define S_INFO_LOADER_NAME (1u << 9)
#define S_MMAP_GPA (PC_INFO_GPA + 0x100)
#define S_MODS_GPA (PC_INFO_GPA + 0x300)
#define S_NAME_GPA (PC_INFO_GPA + 0x380)
#define S_MODSTR_GPA (PC_INFO_GPA + 0x400)
#define S_MODSTR_MAX 0xc00

/* A piece of the file loaded at gpa: filesz bytes from offset, then zeroes
 * up to memsz. */
typedef struct {
    uint64_t gpa, memsz;
    size_t offset, filesz;
} s_piece_t;

typedef struct {
    s_piece_t pieces[S_MAX_PIECES];
    size_t n;
    uint64_t entry;
    bool aout;
} s_kernel_t;

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

long loader_multiboot_find(const uint8_t *kernel, size_t len)
{
    for (size_t at = 0; at < S_SEARCH && len >= 12 && at <= len - 12; at += 4) {
        uint32_t magic = s_get32(kernel + at);
        if (magic == S_HEADER_MAGIC &&
            (uint32_t)(magic + s_get32(kernel + at + 4) + s_get32(kernel + at + 8)) == 0)
            return (long)at;
    }
    return -1;
}

static int s_aout(const uint8_t *k, size_t len, size_t at, s_kernel_t *out, char *err,
                  size_t errlen)
{
    if (len < at + 32)
        return loader_error(err, errlen, ENOEXEC,
                            "truncated: the multiboot header at 0x%zx asks for the a.out kludge "
                            "but its addresses lie beyond the file's end",
                            at);
    uint32_t header_addr = s_get32(k + at + 12), load_addr = s_get32(k + at + 16);
    uint32_t load_end = s_get32(k + at + 20), bss_end = s_get32(k + at + 24);
    if (header_addr < load_addr || header_addr - load_addr > at)
        return loader_error(err, errlen, ENOEXEC,
                            "multiboot header_addr 0x%x and load_addr 0x%x put the load before "
                            "the file's start",
                            header_addr, load_addr);
    size_t offset = at - (header_addr - load_addr);
    if (load_end && load_end < load_addr)
        return loader_error(err, errlen, ENOEXEC,
                            "multiboot load_end_addr 0x%x lies below load_addr 0x%x", load_end,
                            load_addr);
    uint64_t size = load_end ? (uint64_t)load_end - load_addr : len - offset;
    if (size > len - offset)
        return loader_error(err, errlen, ENOEXEC,
                            "truncated: the a.out kludge loads 0x%llx bytes from offset 0x%zx, "
                            "the file has 0x%zx",
                            (unsigned long long)size, offset, len);
    if (bss_end && bss_end < load_addr + size)
        return loader_error(err, errlen, ENOEXEC,
                            "multiboot bss_end_addr 0x%x lies below the load's end 0x%llx",
                            bss_end, (unsigned long long)(load_addr + size));
    out->pieces[0] = (s_piece_t){.gpa = load_addr,
                                 .memsz = bss_end ? bss_end - load_addr : size,
                                 .offset = offset,
                                 .filesz = (size_t)size};
    out->n = 1;
    out->entry = s_get32(k + at + 28);
    out->aout = true;
    return 0;
}

static int s_elf_header(const uint8_t *k, size_t len, Elf32_Ehdr *eh, char *err, size_t errlen)
{
    if (len < sizeof *eh || memcmp(k, ELFMAG, SELFMAG))
        return loader_error(err, errlen, ENOEXEC,
                            "a multiboot kernel that is not ELF needs the a.out kludge (header "
                            "flag bit 16)");
    memcpy(eh, k, sizeof *eh);
    if (eh->e_ident[EI_CLASS] != ELFCLASS32)
        return loader_error(err, errlen, ENOEXEC,
                            "a multiboot ELF kernel must be ELF32 (class %u), as QEMU also asks",
                            eh->e_ident[EI_CLASS]);
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_386)
        return loader_error(err, errlen, ENOEXEC, "not a little-endian i386 ELF (machine %u)",
                            eh->e_machine);
    if (eh->e_type != ET_EXEC)
        return loader_error(err, errlen, ENOEXEC, "not an executable ELF (type %u)", eh->e_type);
    if (eh->e_phentsize != sizeof(Elf32_Phdr) || eh->e_phnum == 0 || eh->e_phnum > S_MAX_PHDRS)
        return loader_error(err, errlen, ENOEXEC,
                            "%u program headers of %u bytes: must be 1 to %d of %zu", eh->e_phnum,
                            eh->e_phentsize, S_MAX_PHDRS, sizeof(Elf32_Phdr));
    if (eh->e_phoff > len || (size_t)eh->e_phnum * sizeof(Elf32_Phdr) > len - eh->e_phoff)
        return loader_error(err, errlen, ENOEXEC,
                            "truncated: program headers at 0x%x lie beyond the file (0x%zx)",
                            eh->e_phoff, len);
    return 0;
}

static int s_elf(const uint8_t *k, size_t len, s_kernel_t *out, char *err, size_t errlen)
{
    Elf32_Ehdr eh;
    int rc = s_elf_header(k, len, &eh, err, errlen);
    if (rc)
        return rc;
    out->entry = eh.e_entry;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf32_Phdr ph;
        memcpy(&ph, k + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz)
            return loader_error(err, errlen, ENOEXEC,
                                "segment %zu: file size 0x%x over memory size 0x%x", i,
                                ph.p_filesz, ph.p_memsz);
        if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            return loader_error(err, errlen, ENOEXEC,
                                "truncated: segment %zu's 0x%x bytes at offset 0x%x lie beyond "
                                "the file (0x%zx)",
                                i, ph.p_filesz, ph.p_offset, len);
        /* A kernel linked high names its entry virtually. */
        if (ph.p_vaddr != ph.p_paddr && eh.e_entry >= ph.p_vaddr &&
            eh.e_entry - ph.p_vaddr < ph.p_memsz)
            out->entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
        out->pieces[out->n++] = (s_piece_t){.gpa = ph.p_paddr, .memsz = ph.p_memsz,
                                            .offset = ph.p_offset, .filesz = ph.p_filesz};
    }
    if (!out->n)
        return loader_error(err, errlen, ENOEXEC, "no loadable segment");
    return 0;
}

static int s_parse(const uint8_t *k, size_t len, size_t at, s_kernel_t *out, char *err,
                   size_t errlen)
{
    uint32_t flags = s_get32(k + at + 4);
    uint32_t unknown = flags & S_FLAGS_REQUIRED & ~S_FLAGS_KNOWN;
    if (unknown)
        return loader_error(err, errlen, ENOEXEC,
                            "the multiboot header's flags 0x%x ask for what this loader lacks "
                            "(bits 0x%x)",
                            flags, unknown);
    int rc = flags & S_FLAG_AOUT ? s_aout(k, len, at, out, err, errlen)
                                 : s_elf(k, len, out, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < out->n; i++)
        if (out->entry >= out->pieces[i].gpa &&
            out->entry - out->pieces[i].gpa < out->pieces[i].filesz)
            return 0;
    return loader_error(err, errlen, ENOEXEC, "entry 0x%llx is not in the loaded kernel",
                        (unsigned long long)out->entry);
}

/* Loads the pieces; returns where the last one ends, 0 on failure. */
static uint64_t s_load(loader_image_t *img, const uint8_t *k, const s_kernel_t *kern, char *err,
                       size_t errlen)
{
    uint64_t end = 0;
    for (size_t i = 0; i < kern->n; i++) {
        const s_piece_t *p = &kern->pieces[i];
        char what[48];
        if (kern->aout)
            snprintf(what, sizeof what, "the kernel");
        else
            snprintf(what, sizeof what, "segment %zu of the kernel", i);
        uint8_t *bytes = pc_add(img, p->gpa, p->memsz, what, err, errlen);
        if (!bytes)
            return 0;
        memcpy(bytes, k + p->offset, p->filesz);
        loader_image_note(img, "%s: 0x%llx..0x%llx\n", what, (unsigned long long)p->gpa,
                          (unsigned long long)(p->gpa + p->memsz));
        if (p->gpa + p->memsz > end)
            end = p->gpa + p->memsz;
    }
    return end;
}

/* The information structure and what it points to, in the boot area. */
static int s_info(loader_image_t *img, uint8_t *boot, const loader_kernel_config_t *cfg,
                  uint64_t initrd, char *err, size_t errlen)
{
    const loader_pc_t *pc = loader_image_pc(img);
    char *cmdline = (char *)boot + LOADER_PC_CMDLINE_GPA;
    int n = snprintf(cmdline, LOADER_PC_CMDLINE_MAX, "%s %s", cfg->kernel_name,
                     cfg->append ? cfg->append : "");
    if (n < 0 || n >= LOADER_PC_CMDLINE_MAX)
        return loader_error(err, errlen, EINVAL, "the command line takes %d bytes, at most %d", n,
                            LOADER_PC_CMDLINE_MAX - 1);
    uint8_t *info = boot + PC_INFO_GPA;
    uint32_t flags = S_INFO_MEMORY | S_INFO_CMDLINE | S_INFO_MODS | S_INFO_MMAP |
                     S_INFO_LOADER_NAME;
    loader_put32(info + 0, flags);
    loader_put32(info + 4, (uint32_t)(pc->e820[0].len / 1024));
    loader_put32(info + 8, (uint32_t)((pc->below_4g - 0x100000) / 1024));
    loader_put32(info + 16, LOADER_PC_CMDLINE_GPA);
    if (cfg->initrd) {
        const char *name = cfg->initrd_name ? cfg->initrd_name : "";
        if (strlen(name) >= S_MODSTR_MAX)
            return loader_error(err, errlen, EINVAL, "the initrd's name takes %zu bytes, at most %d",
                                strlen(name), S_MODSTR_MAX - 1);
        memcpy(boot + S_MODSTR_GPA, name, strlen(name));
        uint8_t *mod = boot + S_MODS_GPA;
        loader_put32(mod + 0, (uint32_t)initrd);
        loader_put32(mod + 4, (uint32_t)(initrd + cfg->initrd_len));
        loader_put32(mod + 8, S_MODSTR_GPA);
        loader_put32(info + 20, 1);
    }
    loader_put32(info + 24, S_MODS_GPA);
    uint8_t *map = boot + S_MMAP_GPA;
    for (size_t i = 0; i < pc->n_e820; i++, map += 24) {
        loader_put32(map, 20); /* the entry's size, less this field */
        loader_put64(map + 4, pc->e820[i].addr);
        loader_put64(map + 12, pc->e820[i].len);
        loader_put32(map + 20, pc->e820[i].type);
    }
    loader_put32(info + 44, (uint32_t)(pc->n_e820 * 24));
    loader_put32(info + 48, S_MMAP_GPA);
    memcpy(boot + S_NAME_GPA, "vmm", 4);
    loader_put32(info + 64, S_NAME_GPA);
    loader_image_note(img, "command line: \"%s\"\n", cmdline);
    return 0;
}

loader_image_t *loader_multiboot_load(const loader_kernel_config_t *cfg, size_t header,
                                      char *err, size_t errlen)
{
    s_kernel_t kern = {0};
    uint8_t *boot = NULL;
    loader_image_t *img = NULL;
    int rc = s_parse(cfg->kernel, cfg->kernel_len, header, &kern, err, errlen);
    if (rc)
        goto fail;
    if (!(img = pc_image_new(cfg->mem_size, cfg->n_vps, false, &boot, err, errlen)))
        goto fail_errno;
    uint64_t end = s_load(img, cfg->kernel, &kern, err, errlen);
    if (!end)
        goto fail_errno;
    uint64_t initrd = (end + 0xfff) & ~0xfffull;
    if (cfg->initrd) {
        uint8_t *bytes = pc_add(img, initrd, cfg->initrd_len, "the initrd (module 0)", err,
                                errlen);
        if (!bytes)
            goto fail_errno;
        memcpy(bytes, cfg->initrd, cfg->initrd_len);
        loader_image_note(img, "initrd (module 0): 0x%llx..0x%llx\n",
                          (unsigned long long)initrd,
                          (unsigned long long)(initrd + cfg->initrd_len));
    }
    if ((rc = s_info(img, boot, cfg, initrd, err, errlen)))
        goto fail;
    loader_vp_state_t *st = loader_image_start_vp(img, 0);
    pc_boot_segments(st, PC_SEL_CODE32, false);
    st->rip = kern.entry;
    st->rax = LOADER_MULTIBOOT_MAGIC;
    st->rbx = PC_INFO_GPA;
    st->cr0 = CR0_PE | CR0_ET;
    img->entry = kern.entry;
    uint32_t flags = s_get32(cfg->kernel + header + 4);
    loader_image_note(img, "multiboot kernel (%s), header at 0x%zx, entry 0x%llx in 32-bit "
                           "protected mode%s\n",
                      kern.aout ? "a.out kludge" : "ELF32", header,
                      (unsigned long long)kern.entry,
                      flags & S_FLAG_VIDEO ? "; it asks for a video mode: none is set" : "");
    return img;

fail_errno:
    rc = -errno;
fail:
    loader_image_destroy(&img);
    errno = -rc;
    return NULL;
}
