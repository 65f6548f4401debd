/*
 * For the loader's tests: a runfile's bytes, and what an image puts at a
 * guest physical address (Criterion assertions fail the test when no
 * chunk holds it), its descriptors and page tables decoded.
 */
#ifndef VMM_LOADER_PEEK_H
#define VMM_LOADER_PEEK_H

#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

/* A runfile's bytes (malloc'ed, the caller's) and length. */
uint8_t *peek_read_file(const char *path, size_t *len);

/* The bytes at gpa .. gpa + len, which one chunk must hold. */
const uint8_t *peek_at(const loader_image_t *img, uint64_t gpa, size_t len);
uint16_t peek_u16(const loader_image_t *img, uint64_t gpa);
uint32_t peek_u32(const loader_image_t *img, uint64_t gpa);
uint64_t peek_u64(const loader_image_t *img, uint64_t gpa);

/* Decodes an 8-byte code/data descriptor (with high: a system one's
 * second half), limit in bytes. */
loader_segment_t peek_decode(uint64_t d, uint64_t high);

/* Walks 4-level page tables from cr3 for va: the physical address, and
 * checks present, writable and user at each level and a 2 MiB leaf. */
uint64_t peek_walk(const loader_image_t *img, uint64_t cr3, uint64_t va, uint64_t *leaf);

#endif
