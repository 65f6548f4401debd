/*
 * The guest memory layout the loader prepares, shared by the loader (host)
 * and the test guests (guest/), which are built freestanding: plain
 * constants only.
 *
 * Guest physical memory, for RAM of mem_size bytes and n_vps VPs:
 *
 *   0x0000_0000 .. 0x0000_0fff  unused (never loaded, never mapped by us)
 *   0x0000_1000 .. 0x0000_2fff  GDT: null, kernel code, kernel data, user
 *                               data, user code, then one 16-byte TSS
 *                               descriptor per VP (limit 0x27 + 16 * n_vps)
 *   0x0000_3000 .. 0x0000_8fff  page tables: PML4, PDPT, four page
 *                               directories identity-mapping 0 .. 4 GiB with
 *                               2 MiB pages, present, writable and user
 *                               (the 3 .. 4 GiB MMIO range also uncached)
 *   0x0000_9000 .. 0x0001_0fff  TSSs, LOADER_TSS_STRIDE bytes apart, one
 *                               per VP (RSP0 = the VP's stack top)
 *   0x0001_1000 .. 0x0001_3000  the I/O permission bitmap every TSS points
 *                               to: all ports allowed, then the 0xff byte
 *                               that ends it. The CPU only reads it, so one
 *                               copy serves every VP; each TSS's limit
 *                               reaches its end.
 *   0x0001_4000 ..              free; guests are linked at 1 MiB
 *   mem_size - n_vps * 16 KiB .. mem_size
 *                               VP stacks, VP 0's at the top
 *
 * Everything below LOADER_RESERVED_END and the stacks is the loader's:
 * an ELF segment there is refused.
 */
#ifndef VMM_LOADER_LAYOUT_H
#define VMM_LOADER_LAYOUT_H

#define LOADER_GDT_GPA 0x1000
#define LOADER_PAGE_TABLES_GPA 0x3000 /* PML4; PDPT at +0x1000, PDs after it */
#define LOADER_TSS_GPA 0x9000
#define LOADER_TSS_STRIDE 128
#define LOADER_IOPB_GPA 0x11000
#define LOADER_IOPB_SIZE 0x2001 /* 65536 ports, one bit each, then 0xff */
#define LOADER_RESERVED_END 0x14000

#define LOADER_MAX_VPS 256
#define LOADER_STACK_SIZE 0x4000

/* GDT selectors. User data sits below user code as SYSRET wants it (STAR
 * bits 63:48 = LOADER_SEL_KERNEL_DATA), kernel data right after kernel code
 * as SYSCALL wants it. */
#define LOADER_SEL_KERNEL_CODE 0x08
#define LOADER_SEL_KERNEL_DATA 0x10
#define LOADER_SEL_USER_DATA 0x1b /* index 3, RPL 3 */
#define LOADER_SEL_USER_CODE 0x23 /* index 4, RPL 3 */
#define LOADER_SEL_TSS0 0x28      /* VP i's TSS: LOADER_SEL_TSS0 + 16 * i */

/* The 64-bit TSS: where RSP0 and the I/O bitmap offset live. */
#define LOADER_TSS_RSP0 4
#define LOADER_TSS_IOPB_OFFSET 102
#define LOADER_TSS_SIZE 104

#endif
