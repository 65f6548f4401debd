/*
 * Kernels people have, on a PC: a multiboot v1 image (ELF32, or any image
 * with the a.out kludge) or a Linux bzImage (boot protocol 2.06 and later,
 * entered at its 64-bit entry point), with a command line and an initrd,
 * in a PC's memory: RAM below the 32-bit MMIO gap at 3 GiB and the rest
 * above 4 GiB, the BIOS's real-mode vector table and data area, an e820
 * memory map, and ACPI tables (RSDP in the BIOS area, RSDT, XSDT, FADT,
 * FACS, MADT, DSDT). As elsewhere in loader/, this only prepares bytes and
 * register values; the VMM copies them and programs the interrupt
 * controllers as a BIOS leaves them.
 *
 * Guest physical memory below 1 MiB:
 *
 *   0x00000 .. 0x003ff  real-mode interrupt vector table: every vector at
 *                       F000:FF53, an IRET, as a PC BIOS leaves it
 *   0x00400 .. 0x004ff  BIOS data area (COM1's port, the EBDA segment, the
 *                       base memory size)
 *   0x00500 .. 0x0052f  GDT: null, 0x08 flat 32-bit code, 0x10 64-bit
 *                       code, 0x18 flat data, 0x20 the boot TSS
 *   0x00580 .. 0x005e7  the boot TSS (loaded in TR, unused)
 *   0x01000 .. 0x06fff  Linux: page tables identity-mapping 0 .. 4 GiB
 *   0x07000 .. 0x07fff  Linux: the zero page; multiboot: the information
 *                       structure, memory map, module list, loader name
 *                       and module string
 *   0x08000 .. 0x0ffff  the boot VP's stack (RSP = 0x10000 at entry)
 *   0x10000 .. 0x1ffff  the command line
 *   0x9fc00 .. 0x9ffff  extended BIOS data area (reserved)
 *   0xe0000 .. 0xfffff  BIOS area (reserved): ACPI tables from 0xe0000,
 *                       the IRET at 0xfff53
 *
 * Everything in 0 .. 0x1ffff is the boot area: a kernel or initrd there is
 * refused, as is one in a reserved range of the memory map.
 */
#ifndef VMM_LOADER_KERNEL_H
#define VMM_LOADER_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

#define LOADER_E820_RAM 1
#define LOADER_E820_RESERVED 2
#define LOADER_MAX_E820 8

/* Where RAM stops below 4 GiB: the rest goes above 4 GiB. */
#define LOADER_PC_LOW_RAM_MAX (3ull << 30)
#define LOADER_PC_HIGH_RAM_START (4ull << 30)
#define LOADER_PC_MEM_MIN (4ull << 20)
#define LOADER_PC_MEM_MAX (1ull << 40)
/* xAPIC IDs: 255 is the broadcast ID. */
#define LOADER_PC_MAX_VPS 255
#define LOADER_PC_BOOT_AREA_END 0x20000
#define LOADER_PC_CMDLINE_GPA 0x10000
#define LOADER_PC_CMDLINE_MAX (LOADER_PC_BOOT_AREA_END - LOADER_PC_CMDLINE_GPA)

#define LOADER_MULTIBOOT_MAGIC 0x2badb002 /* in EAX at a multiboot entry */

/* One e820 entry, as the BIOS's int 15h E820 reports it. */
typedef struct {
    uint64_t addr, len;
    uint32_t type;
} loader_e820_t;

/* The PC a kernel image was made for. */
typedef struct {
    uint64_t mem_size, below_4g, above_4g;
    uint32_t n_vps;
    loader_e820_t e820[LOADER_MAX_E820];
    size_t n_e820;
    uint64_t rsdp; /* the ACPI RSDP's address */
} loader_pc_t;

typedef struct {
    const uint8_t *kernel; /* read by loader_kernel_new() only */
    size_t kernel_len;
    /* The kernel's file name: a multiboot command line starts with it, as
     * QEMU writes it ("NAME APPEND"). */
    const char *kernel_name;
    const char *append;    /* the kernel's command line; NULL: none */
    const uint8_t *initrd; /* NULL: none; read by loader_kernel_new() only */
    size_t initrd_len;
    const char *initrd_name; /* a multiboot module's string */
    uint64_t mem_size;       /* a multiple of 2 MiB, LOADER_PC_MEM_MIN .. _MAX */
    uint32_t n_vps;          /* 1 .. LOADER_PC_MAX_VPS */
} loader_kernel_config_t;

/*
 * Recognises the kernel (a multiboot header in its first 8 KiB, else a
 * bzImage's "HdrS") and builds the boot image: the kernel and initrd, the
 * boot information, the BIOS's tables and ACPI. Only VP 0 starts at once
 * (loader_image_vp() is NULL for the others, which wait for INIT/SIPI).
 * Returns the image (the caller's: loader_image_destroy), or NULL with
 * errno set and a one-line reason in err:
 *   EINVAL   mem_size or n_vps out of range, a command line too long;
 *   ENOEXEC  neither kind of kernel, or a malformed or truncated one;
 *   EFBIG    the kernel or initrd does not fit in guest RAM;
 *   ERANGE   a part of it outside usable RAM, over the boot area or BIOS
 *            area, or over another part (the initrd over the kernel);
 *   ENOMEM   out of memory.
 */
loader_image_t *loader_kernel_new(const loader_kernel_config_t *cfg, char *err, size_t errlen);

/* The PC of an image loader_kernel_new() made; NULL for an ELF64 one. */
const loader_pc_t *loader_image_pc(const loader_image_t *image);

/* The memory map as QEMU's fw_cfg file "etc/e820" holds it: packed
 * little-endian {u64 address, u64 length, u32 type} entries. Writes at
 * most size bytes to out and returns the length the whole map takes. */
size_t loader_pc_e820_file(const loader_pc_t *pc, uint8_t *out, size_t size);

#endif
