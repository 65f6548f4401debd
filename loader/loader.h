/*
 * The guest loader: turns a static ELF64 x86-64 executable into what a VMM
 * copies into guest RAM, plus each VP's initial register state for a start
 * directly in 64-bit long mode (as the Linux KVM selftests do). It only
 * prepares bytes and values: no KVM calls.
 *
 * The memory layout (GDT, page tables, TSSs, I/O bitmap, stacks) is in
 * loader/layout.h. Every VP starts at the ELF entry at CPL 0 with
 * RDI = its index, RSP = the top of its own 16 KiB stack, RFLAGS = 0x2
 * (interrupts off), no IDT (the guest loads its own), and its own busy TSS
 * whose RSP0 is that same stack top and whose I/O bitmap allows every port,
 * so that code at CPL 3 may use port I/O (IOPL is not used).
 */
#ifndef VMM_LOADER_H
#define VMM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "loader/layout.h"

typedef struct loader_image_s loader_image_t;

/* Guest RAM, [start, end). */
typedef struct {
    uint64_t start, end;
} loader_range_t;

#define LOADER_MAX_RAM 2   /* below the 32-bit MMIO gap, and above 4 GiB */
#define LOADER_DESCRIPTION 1024

/* Bytes to copy into guest RAM at gpa. */
typedef struct {
    uint64_t gpa;
    const uint8_t *bytes;
    size_t len;
} loader_chunk_t;

/* A segment register, field for field what struct kvm_segment holds. */
typedef struct {
    uint64_t base;
    uint32_t limit; /* in bytes (KVM's unit), not in 4 KiB pages */
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl, unusable;
} loader_segment_t;

/* A descriptor table register (struct kvm_dtable). */
typedef struct {
    uint64_t base;
    uint16_t limit;
} loader_dtable_t;

/* One VP's initial state: kvm_regs (rip, rsp, rax, rbx, rsi, rdi, rflags;
 * the rest 0) and kvm_sregs (the rest; cr2, cr8, apic_base and the
 * interrupt bitmap are left to the VMM). */
typedef struct {
    uint64_t rip, rsp, rax, rbx, rsi, rdi, rflags;
    uint64_t cr0, cr3, cr4, efer;
    loader_segment_t cs, ds, es, fs, gs, ss, tr, ldt;
    loader_dtable_t gdt, idt;
} loader_vp_state_t;

/*
 * Validates the ELF in elf[0..len) (the caller keeps it; nothing refers to
 * it afterwards) against a guest of mem_size bytes of RAM and n_vps VPs,
 * and builds the boot image.
 *
 * mem_size: a multiple of 2 MiB, 4 MiB .. 3 GiB. n_vps: 1 .. LOADER_MAX_VPS.
 * Every PT_LOAD is loaded at its physical address, which must equal its
 * virtual one; that includes the one ld puts below the code for the ELF
 * headers (at 0xff000 for a guest linked at 1 MiB). The entry must lie in
 * the file bytes of an executable one.
 * Returns the image (the caller owns it: loader_image_destroy), or NULL with
 * errno set and a one-line reason in err (errlen bytes, may be 0):
 *   EINVAL   mem_size or n_vps out of range;
 *   ENOEXEC  not a well-formed static ELF64 x86-64 executable;
 *   ERANGE   a segment outside guest RAM, over the loader's reserved area or
 *            the stacks, or over another segment;
 *   ENOMEM   out of memory.
 */
loader_image_t *loader_image_new(const uint8_t *elf, size_t len, uint64_t mem_size,
                                 uint32_t n_vps, char *err, size_t errlen);

void loader_image_destroy(loader_image_t **image);

/* The chunks to copy, *n of them, lent until the image is destroyed. They
 * do not overlap; what they leave out of RAM is expected to be zero. */
const loader_chunk_t *loader_image_chunks(const loader_image_t *image, size_t *n);

/* VP vp's initial state, lent until the image is destroyed; NULL when vp is
 * not below the image's n_vps, or does not start at once: a kernel's
 * other VPs wait for INIT/SIPI from the boot VP, as on a PC. */
const loader_vp_state_t *loader_image_vp(const loader_image_t *image, uint32_t vp);

uint64_t loader_image_entry(const loader_image_t *image);

/* The guest RAM the image was made for, *n ranges, sorted; lent. */
const loader_range_t *loader_image_ram(const loader_image_t *image, size_t *n);

/* What was loaded where, one line per item, for `vmm run --verbose`. */
const char *loader_image_describe(const loader_image_t *image);

#endif
