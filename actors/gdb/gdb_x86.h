/*
 * What gdb needs to know of an x86-64 VP: the target description it reads
 * (qXfer:features:read:target.xml), the registers in its order ('g', 'p'),
 * and guest virtual addresses translated by the VP's page tables ('m',
 * 'M', 'X' name virtual addresses). Plain functions on the VP protocol's
 * messages; guest memory through a function the caller gives.
 */
#ifndef VMM_GDB_X86_H
#define VMM_GDB_X86_H

#include <stddef.h>
#include <stdint.h>

#include "proto/vp.pb-c.h"

/* The description: the i386 core (general, segment and x87 registers) and
 * SSE features of a 64-bit processor, registers numbered as gdb's amd64. */
extern const char gdb_x86_target_xml[];

#define GDB_X86_NUM_REGS 57
#define GDB_X86_REG_RIP 16
#define GDB_X86_REG_EFLAGS 17
/* The bytes of all registers in order ('g'). */
#define GDB_X86_REGS_BYTES 536

/* Register n's offset and size in the 'g' bytes. Returns 0, or -1 for a
 * register there is not. */
int gdb_x86_reg(unsigned n, size_t *offset, size_t *size);

/* Packs st's general registers, segment selectors and XSAVE area (FPU and
 * SSE) into out (GDB_X86_REGS_BYTES, little-endian); what st lacks is
 * zeros. */
void gdb_x86_pack(const Vmm__Vp__VpState *st, uint8_t *out);

/* Sets register n, given as gdb sends it (little-endian, its size), in
 * regs. Only the general registers, rip and eflags can be set: others are
 * -ENOTSUP. Returns 0, -EINVAL for a wrong size, or -ENOTSUP. */
int gdb_x86_set(Vmm__Vp__GeneralRegisters *regs, unsigned n, const uint8_t *value, size_t len);

/* Reads guest physical memory for the page walk; 0 or a negative errno. */
typedef int (*gdb_read_fn)(void *arg, uint64_t gpa, void *buf, size_t len);

/*
 * Translates gva as the VP's MMU would (paging off; 32-bit with 4 MiB
 * pages; PAE; 4- and 5-level long mode, with large pages), reading the
 * page tables through read. *gpa is the physical address, *left how many
 * bytes from it lie in the same page. Returns 0, -EFAULT for an address
 * not mapped (or not canonical), or read's error.
 */
int gdb_x86_translate(const Vmm__Vp__ControlRegisters *cr, uint64_t gva, gdb_read_fn read,
                      void *arg, uint64_t *gpa, uint64_t *left);

#endif
