/*
 * How the loaders (ELF64, multiboot, Linux) build a loader_image_t: the
 * image's insides, shared by this package only (not exported).
 *
 * An image is a list of named chunks of guest memory, the RAM they must
 * lie in, and the state of each VP that starts at once. Every chunk added
 * is checked against the RAM and against the chunks already there, so a
 * loader's refusals name both parties ("the initrd overlaps segment 1").
 */
#ifndef VMM_LOADER_IMAGE_H
#define VMM_LOADER_IMAGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loader/kernel.h"
#include "loader/loader.h"

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

#define SEG_TYPE_DATA_RW 3  /* read/write, accessed */
#define SEG_TYPE_CODE_RX 11 /* execute/read, accessed */
#define SEG_TYPE_LDT 2
#define SEG_TYPE_TSS_BUSY 11

/* Identity-mapped page tables for 0 .. 4 GiB: PML4, PDPT, four PDs. */
#define LOADER_IDENTITY_MAP_SIZE 0x6000

#define LOADER_MAX_CHUNKS 80
#define LOADER_CHUNK_NAME 48

struct loader_image_s {
    uint64_t entry;
    uint32_t n_vps;
    loader_chunk_t chunks[LOADER_MAX_CHUNKS];
    char names[LOADER_MAX_CHUNKS][LOADER_CHUNK_NAME];
    size_t n_chunks;
    loader_range_t ram[LOADER_MAX_RAM];
    size_t n_ram;
    loader_vp_state_t *vps;
    bool *started;
    bool has_pc;
    loader_pc_t pc;
    char description[LOADER_DESCRIPTION];
};

/* An empty image for n_vps VPs (none started yet) in RAM [0, mem_size):
 * NULL when out of memory. */
loader_image_t *loader_image_alloc(uint32_t n_vps, uint64_t mem_size);

/*
 * Adds a zeroed chunk of len bytes at gpa, named `what` for messages, and
 * returns its bytes (the image's). NULL with a reason in err and errno:
 * ERANGE when it leaves guest RAM or overlaps another chunk, ENOSPC past
 * LOADER_MAX_CHUNKS, ENOMEM.
 */
uint8_t *loader_image_add(loader_image_t *img, uint64_t gpa, size_t len, const char *what,
                          char *err, size_t errlen);

/* VP vp's state, marked as starting at once; the rest wait for INIT/SIPI. */
loader_vp_state_t *loader_image_start_vp(loader_image_t *img, uint32_t vp);

/* Appends to the image's description, printf-style. */
void loader_image_note(loader_image_t *img, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes the reason to err (errlen may be 0) and returns -code. */
int loader_error(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void loader_put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, sizeof v);
}

static inline void loader_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

static inline void loader_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

/* The 8-byte descriptor of a code or data segment; and the first half of a
 * system (TSS) descriptor, whose second half holds base bits 63:32. */
uint64_t loader_descriptor(const loader_segment_t *seg);

/* A flat 4 GiB segment: code of `bits` 32 or 64, or data (bits 32). */
loader_segment_t loader_flat(uint16_t selector, uint8_t type, uint8_t dpl, int bits);

/* Writes LOADER_IDENTITY_MAP_SIZE bytes of page tables to `at` (which the
 * guest sees at gpa): 0 .. 4 GiB identity-mapped with 2 MiB pages,
 * present, writable and user, the MMIO gap from 3 GiB uncached. */
void loader_identity_map(uint8_t *at, uint64_t gpa);

/* Whether [a, a_end) and [b, b_end) share a byte. */
static inline bool loader_overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
    return a < b_end && b < a_end;
}

#endif
