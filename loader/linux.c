/*
 * Linux's x86 boot protocol (Documentation/arch/x86/boot.rst) for a
 * bzImage of protocol 2.06 or later: the protected-mode kernel loaded at
 * 1 MiB, the zero page (boot_params) with the setup header, the e820 map,
 * the command line and the initrd, then the 64-bit entry (load address +
 * 0x200) in long mode with identity-mapped page tables, or for a kernel
 * without XLF_KERNEL_64 (before protocol 2.12) the 32-bit entry in
 * protected mode with paging off.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loader/pc.h"

/* The setup header, at its offsets in the file and in the zero page. */
#define S_SETUP_SECTS 0x1f1
#define S_VID_MODE 0x1fa
#define S_BOOT_FLAG 0x1fe
#define S_JUMP 0x200
#define S_HEADER 0x202
#define S_VERSION 0x206
#define S_TYPE_OF_LOADER 0x210
#define S_LOADFLAGS 0x211
#define S_CODE32_START 0x214
#define S_RAMDISK_IMAGE 0x218
#define S_RAMDISK_SIZE 0x21c
#define S_CMD_LINE_PTR 0x228
#define S_INITRD_ADDR_MAX 0x22c
#define S_XLOADFLAGS 0x236
#define S_CMDLINE_SIZE 0x238
#define S_INIT_SIZE 0x260
/* boot_params outside the setup header. */
#define S_ACPI_RSDP_ADDR 0x070
#define S_E820_ENTRIES 0x1e8
#define S_E820_TABLE 0x2d0
#define S_E820_MAX 128

#define S_LOADED_HIGH 0x01
#define S_XLF_KERNEL_64 0x01
#define S_LOAD_GPA 0x100000ull
#define S_MIN_LEN 0x264 /* through init_size */

static uint16_t s_get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

bool loader_linux_is_bzimage(const uint8_t *kernel, size_t len)
{
    return len >= S_HEADER + 4 && !memcmp(kernel + S_HEADER, "HdrS", 4);
}

typedef struct {
    uint16_t version;
    size_t setup_len; /* the real-mode part: (setup_sects + 1) sectors */
    size_t header_end;
    bool entry64;
    uint32_t code32_start, initrd_addr_max, cmdline_size;
    uint64_t init_size; /* what the kernel needs from its load address */
} s_bzimage_t;

static int s_parse(const uint8_t *k, size_t len, s_bzimage_t *b, char *err, size_t errlen)
{
    if (len < S_MIN_LEN)
        return loader_error(err, errlen, ENOEXEC,
                            "truncated: a bzImage's setup header takes 0x%x bytes, the file has "
                            "0x%zx",
                            S_MIN_LEN, len);
    if (s_get16(k + S_BOOT_FLAG) != 0xaa55)
        return loader_error(err, errlen, ENOEXEC, "not a bzImage: boot flag 0x%04x, not 0xaa55",
                            s_get16(k + S_BOOT_FLAG));
    b->version = s_get16(k + S_VERSION);
    if (b->version < 0x206)
        return loader_error(err, errlen, ENOEXEC,
                            "Linux boot protocol %u.%02u: 2.06 or later is needed",
                            b->version >> 8, b->version & 0xff);
    if (!(k[S_LOADFLAGS] & S_LOADED_HIGH))
        return loader_error(err, errlen, ENOEXEC,
                            "a zImage (loaded low): only a bzImage can be loaded");
    b->header_end = S_HEADER + k[S_JUMP + 1];
    size_t sects = k[S_SETUP_SECTS] ? k[S_SETUP_SECTS] : 4;
    b->setup_len = (sects + 1) * 512;
    if (b->setup_len >= len)
        return loader_error(err, errlen, ENOEXEC,
                            "truncated: %zu setup sectors and no protected-mode kernel after them",
                            sects);
    b->entry64 = b->version >= 0x20c && (k[S_XLOADFLAGS] & S_XLF_KERNEL_64);
    b->code32_start = s_get32(k + S_CODE32_START);
    b->initrd_addr_max = s_get32(k + S_INITRD_ADDR_MAX);
    b->cmdline_size = s_get32(k + S_CMDLINE_SIZE);
    uint64_t pm_len = len - b->setup_len;
    b->init_size = b->version >= 0x20a ? s_get32(k + S_INIT_SIZE) : 0;
    if (b->init_size < pm_len)
        b->init_size = pm_len;
    return 0;
}

/* Places the initrd as high below initrd_addr_max and the end of RAM below
 * 4 GiB as it fits, page-aligned, above the kernel. */
static int s_initrd(loader_image_t *img, const loader_kernel_config_t *cfg,
                    const s_bzimage_t *b, uint8_t *zero, char *err, size_t errlen)
{
    const loader_pc_t *pc = loader_image_pc(img);
    uint64_t top = (uint64_t)b->initrd_addr_max + 1;
    if (top > pc->below_4g)
        top = pc->below_4g;
    uint64_t kernel_end = S_LOAD_GPA + b->init_size;
    if (cfg->initrd_len > top)
        return loader_error(err, errlen, EFBIG,
                            "the initrd (%zu bytes) does not fit below 0x%llx (RAM below 4 GiB and "
                            "the kernel's initrd_addr_max)",
                            cfg->initrd_len, (unsigned long long)top);
    uint64_t at = (top - cfg->initrd_len) & ~0xfffull;
    if (at < kernel_end)
        return loader_error(err, errlen, ERANGE,
                            "the initrd (%zu bytes) below 0x%llx would overlap the kernel at "
                            "0x%llx..0x%llx: give the guest more RAM",
                            cfg->initrd_len, (unsigned long long)top,
                            (unsigned long long)S_LOAD_GPA, (unsigned long long)kernel_end);
    uint8_t *bytes = pc_add(img, at, cfg->initrd_len, "the initrd", err, errlen);
    if (!bytes)
        return -errno;
    memcpy(bytes, cfg->initrd, cfg->initrd_len);
    loader_put32(zero + S_RAMDISK_IMAGE, (uint32_t)at);
    loader_put32(zero + S_RAMDISK_SIZE, (uint32_t)cfg->initrd_len);
    loader_image_note(img, "initrd: 0x%llx..0x%llx\n", (unsigned long long)at,
                      (unsigned long long)(at + cfg->initrd_len));
    return 0;
}

/* The zero page: the setup header from the file, then what a loader
 * fills. */
static int s_zero_page(loader_image_t *img, uint8_t *boot, const loader_kernel_config_t *cfg,
                       const s_bzimage_t *b, char *err, size_t errlen)
{
    const loader_pc_t *pc = loader_image_pc(img);
    uint8_t *zero = boot + PC_INFO_GPA;
    memcpy(zero + S_SETUP_SECTS, cfg->kernel + S_SETUP_SECTS, b->header_end - S_SETUP_SECTS);
    loader_put16(zero + S_VID_MODE, 0xffff); /* "normal" */
    zero[S_TYPE_OF_LOADER] = 0xff;           /* a loader without an assigned ID */
    const char *append = cfg->append ? cfg->append : "";
    size_t n = strlen(append);
    uint32_t max = b->cmdline_size < LOADER_PC_CMDLINE_MAX - 1 ? b->cmdline_size
                                                                : LOADER_PC_CMDLINE_MAX - 1;
    if (n > max)
        return loader_error(err, errlen, EINVAL,
                            "the command line takes %zu bytes; this kernel takes at most %u", n,
                            max);
    memcpy(boot + LOADER_PC_CMDLINE_GPA, append, n);
    loader_put32(zero + S_CMD_LINE_PTR, LOADER_PC_CMDLINE_GPA);
    zero[S_E820_ENTRIES] = (uint8_t)pc->n_e820;
    loader_pc_e820_file(pc, zero + S_E820_TABLE, 20 * S_E820_MAX);
    if (b->version >= 0x20e)
        loader_put64(zero + S_ACPI_RSDP_ADDR, pc->rsdp);
    loader_image_note(img, "command line: \"%s\"\n", append);
    return cfg->initrd ? s_initrd(img, cfg, b, zero, err, errlen) : 0;
}

loader_image_t *loader_linux_load(const loader_kernel_config_t *cfg, char *err, size_t errlen)
{
    s_bzimage_t b = {0};
    uint8_t *boot = NULL;
    loader_image_t *img = NULL;
    int rc = s_parse(cfg->kernel, cfg->kernel_len, &b, err, errlen);
    if (rc)
        goto fail;
    if (!(img = pc_image_new(cfg->mem_size, cfg->n_vps, b.entry64, &boot, err, errlen)))
        goto fail_errno;
    if ((rc = pc_check_usable(&img->pc, S_LOAD_GPA, b.init_size,
                              "the kernel (with the room it decompresses into)", err, errlen)))
        goto fail;
    size_t pm_len = cfg->kernel_len - b.setup_len;
    uint8_t *bytes = pc_add(img, S_LOAD_GPA, pm_len, "the kernel", err, errlen);
    if (!bytes)
        goto fail_errno;
    memcpy(bytes, cfg->kernel + b.setup_len, pm_len);
    if ((rc = s_zero_page(img, boot, cfg, &b, err, errlen)))
        goto fail;
    loader_vp_state_t *st = loader_image_start_vp(img, 0);
    pc_boot_segments(st, PC_SEL_CODE, b.entry64);
    st->rsi = PC_INFO_GPA;
    if (b.entry64) {
        loader_identity_map(boot + PC_PAGE_TABLES_GPA, PC_PAGE_TABLES_GPA);
        st->rip = S_LOAD_GPA + 0x200;
        st->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
        st->cr3 = PC_PAGE_TABLES_GPA;
        st->cr4 = CR4_PAE;
        st->efer = EFER_LME | EFER_LMA;
    } else {
        st->rip = b.code32_start;
        st->cr0 = CR0_PE | CR0_ET;
    }
    img->entry = st->rip;
    loader_image_note(img, "Linux bzImage, boot protocol %u.%02u: kernel 0x%llx..0x%llx (0x%llx "
                           "with its decompression room), %s entry at 0x%llx\n",
                      b.version >> 8, b.version & 0xff, S_LOAD_GPA, S_LOAD_GPA + pm_len,
                      S_LOAD_GPA + b.init_size, b.entry64 ? "64-bit" : "32-bit",
                      (unsigned long long)st->rip);
    return img;

fail_errno:
    rc = -errno;
fail:
    loader_image_destroy(&img);
    errno = -rc;
    return NULL;
}
