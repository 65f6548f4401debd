#include "loader/testing/peek.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *peek_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    cr_assert_gt(size, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)size);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

const uint8_t *peek_at(const loader_image_t *img, uint64_t gpa, size_t len)
{
    size_t n;
    const loader_chunk_t *c = loader_image_chunks(img, &n);
    for (size_t i = 0; i < n; i++) {
        if (gpa >= c[i].gpa && gpa - c[i].gpa + len <= c[i].len)
            return c[i].bytes + (gpa - c[i].gpa);
    }
    cr_assert_fail("no chunk covers 0x%llx..+%zu", (unsigned long long)gpa, len);
    return NULL;
}

uint16_t peek_u16(const loader_image_t *img, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, peek_at(img, gpa, sizeof v), sizeof v);
    return v;
}

uint32_t peek_u32(const loader_image_t *img, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, peek_at(img, gpa, sizeof v), sizeof v);
    return v;
}

uint64_t peek_u64(const loader_image_t *img, uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, peek_at(img, gpa, sizeof v), sizeof v);
    return v;
}

loader_segment_t peek_decode(uint64_t d, uint64_t high)
{
    loader_segment_t s = {0};
    s.limit = (uint32_t)((d & 0xffff) | (d >> 48 & 0xf) << 16);
    s.base = (d >> 16 & 0xffffff) | (d >> 56 & 0xff) << 24;
    s.type = d >> 40 & 0xf;
    s.s = d >> 44 & 1;
    s.dpl = d >> 45 & 3;
    s.present = d >> 47 & 1;
    s.avl = d >> 52 & 1;
    s.l = d >> 53 & 1;
    s.db = d >> 54 & 1;
    s.g = d >> 55 & 1;
    if (s.g)
        s.limit = s.limit << 12 | 0xfff;
    if (!s.s)
        s.base |= high << 32;
    return s;
}

uint64_t peek_walk(const loader_image_t *img, uint64_t cr3, uint64_t va, uint64_t *leaf)
{
    const uint64_t perms = 0x7; /* P, RW, US */
    uint64_t pml4e = peek_u64(img, (cr3 & ~0xfffull) + 8 * (va >> 39 & 511));
    cr_assert_eq(pml4e & perms, perms, "PML4E for 0x%llx: 0x%llx", (unsigned long long)va,
                 (unsigned long long)pml4e);
    uint64_t pdpte = peek_u64(img, (pml4e & 0xffffffffff000ull) + 8 * (va >> 30 & 511));
    cr_assert_eq(pdpte & perms, perms, "PDPTE for 0x%llx", (unsigned long long)va);
    cr_assert_eq(pdpte & 0x80, 0, "1 GiB page for 0x%llx", (unsigned long long)va);
    uint64_t pde = peek_u64(img, (pdpte & 0xffffffffff000ull) + 8 * (va >> 21 & 511));
    cr_assert_eq(pde & perms, perms, "PDE for 0x%llx: 0x%llx", (unsigned long long)va,
                 (unsigned long long)pde);
    cr_assert_eq(pde & 0x80, 0x80, "PDE for 0x%llx is not a 2 MiB page", (unsigned long long)va);
    *leaf = pde;
    return (pde & 0xfffffffe00000ull) | (va & 0x1fffff);
}
