/*
 * The PC a kernel boots on (loader/kernel.h): its RAM and memory map, and
 * what a PC BIOS leaves in memory. Shared by the multiboot and Linux
 * loaders of this package only.
 */
#ifndef VMM_LOADER_PC_H
#define VMM_LOADER_PC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/image.h"
#include "loader/kernel.h"

/* In the boot area (loader/kernel.h). */
#define PC_GDT_GPA 0x500
#define PC_TSS_GPA 0x580
#define PC_PAGE_TABLES_GPA 0x1000
#define PC_INFO_GPA 0x7000 /* the zero page, or the multiboot information */
#define PC_STACK_TOP 0x10000

#define PC_SEL_CODE32 0x08
#define PC_SEL_CODE 0x10 /* Linux's __BOOT_CS: 64-bit, or 32-bit code */
#define PC_SEL_DATA 0x18 /* Linux's __BOOT_DS */
#define PC_SEL_TSS 0x20

/*
 * An image for a PC of mem_size bytes and n_vps VPs: its RAM ranges and
 * memory map set, and the BIOS's part loaded (the boot area's vector table,
 * data area, GDT and TSS; the EBDA; the ACPI tables). code64 says what
 * PC_SEL_CODE is. *boot gets the boot area's bytes (gpa 0 at index 0) for
 * the loader to fill. NULL with errno and a reason in err.
 */
loader_image_t *pc_image_new(uint64_t mem_size, uint32_t n_vps, bool code64, uint8_t **boot,
                             char *err, size_t errlen);

/*
 * Checks that [gpa, gpa + len), the loader's `what`, lies in usable RAM
 * of the memory map: 0, or -EFBIG (it starts in RAM and runs past its
 * end) or -ERANGE (anywhere else) with the reason in err.
 */
int pc_check_usable(const loader_pc_t *pc, uint64_t gpa, uint64_t len, const char *what,
                    char *err, size_t errlen);

/* Where the usable RAM range holding gpa ends; 0 when none holds it. */
uint64_t pc_usable_end(const loader_pc_t *pc, uint64_t gpa);

/* The boot VP's segments, GDT and TSS, for an entry with code selector
 * cs (PC_SEL_CODE32 or PC_SEL_CODE) and interrupts off. */
void pc_boot_segments(loader_vp_state_t *st, uint16_t cs, bool code64);

/* Adds a piece the kernel brings (a segment, the initrd): checked against
 * the memory map, then against what is loaded already. */
uint8_t *pc_add(loader_image_t *img, uint64_t gpa, uint64_t len, const char *what, char *err,
                size_t errlen);

/* The multiboot loader: the offset of the image's multiboot header (one
 * whose checksum holds, in its first 8 KiB), or -1. */
long loader_multiboot_find(const uint8_t *kernel, size_t len);
loader_image_t *loader_multiboot_load(const loader_kernel_config_t *cfg, size_t header,
                                      char *err, size_t errlen);

/* The Linux loader: whether the image has a bzImage's setup header. */
bool loader_linux_is_bzimage(const uint8_t *kernel, size_t len);
loader_image_t *loader_linux_load(const loader_kernel_config_t *cfg, char *err, size_t errlen);

#endif
