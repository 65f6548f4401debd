/* The boot image every loader builds: named chunks, RAM, VP states. */
#include "loader/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)
#define S_MMIO_START (3ull << 30) /* uncached in the page tables */

int loader_error(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -code;
}

uint64_t loader_descriptor(const loader_segment_t *seg)
{
    uint32_t limit = seg->g ? seg->limit >> 12 : seg->limit;
    uint64_t access = seg->type | seg->s << 4 | seg->dpl << 5 | seg->present << 7;
    uint64_t flags = seg->avl | seg->l << 1 | seg->db << 2 | seg->g << 3;
    return (limit & 0xffffull) | (seg->base & 0xffffffull) << 16 | access << 40 |
           (uint64_t)(limit >> 16 & 0xf) << 48 | flags << 52 | (seg->base >> 24 & 0xff) << 56;
}

loader_segment_t loader_flat(uint16_t selector, uint8_t type, uint8_t dpl, int bits)
{
    bool long_code = type == SEG_TYPE_CODE_RX && bits == 64;
    return (loader_segment_t){.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
                              .present = 1, .dpl = dpl, .db = !long_code, .s = 1,
                              .l = long_code, .g = 1};
}

void loader_identity_map(uint8_t *at, uint64_t gpa)
{
    uint8_t *pml4 = at, *pdpt = at + 0x1000, *pd = at + 0x2000;
    uint64_t table = PTE_P | PTE_RW | PTE_US;
    loader_put64(pml4, (gpa + 0x1000) | table);
    for (uint64_t i = 0; i < 4; i++)
        loader_put64(pdpt + 8 * i, (gpa + 0x2000 + 0x1000 * i) | table);
    for (uint64_t i = 0; i < 4 * 512; i++) {
        uint64_t page = i << 21;
        uint64_t cache = page >= S_MMIO_START ? PTE_PCD | PTE_PWT : 0;
        loader_put64(pd + 8 * i, page | table | PTE_PS | cache);
    }
}

loader_image_t *loader_image_alloc(uint32_t n_vps, uint64_t mem_size)
{
    loader_image_t *img = calloc(1, sizeof *img);
    if (!img)
        return NULL;
    img->n_vps = n_vps;
    img->vps = calloc(n_vps, sizeof *img->vps);
    img->started = calloc(n_vps, sizeof *img->started);
    if (!img->vps || !img->started) {
        loader_image_destroy(&img);
        return NULL;
    }
    img->ram[0] = (loader_range_t){0, mem_size};
    img->n_ram = 1;
    return img;
}

/* Whether [gpa, gpa + len) lies in one RAM range. */
static bool s_in_ram(const loader_image_t *img, uint64_t gpa, uint64_t len)
{
    for (size_t i = 0; i < img->n_ram; i++)
        if (gpa >= img->ram[i].start && gpa <= img->ram[i].end &&
            len <= img->ram[i].end - gpa)
            return true;
    return false;
}

uint8_t *loader_image_add(loader_image_t *img, uint64_t gpa, size_t len, const char *what,
                          char *err, size_t errlen)
{
    int rc = 0;
    if (!s_in_ram(img, gpa, len))
        rc = loader_error(err, errlen, ERANGE,
                          "%s at 0x%llx..0x%llx lies outside guest RAM", what,
                          (unsigned long long)gpa, (unsigned long long)(gpa + len));
    for (size_t i = 0; !rc && i < img->n_chunks; i++) {
        const loader_chunk_t *c = &img->chunks[i];
        if (loader_overlaps(gpa, gpa + len, c->gpa, c->gpa + c->len))
            rc = loader_error(err, errlen, ERANGE,
                              "%s at 0x%llx..0x%llx overlaps %s at 0x%llx..0x%llx", what,
                              (unsigned long long)gpa, (unsigned long long)(gpa + len),
                              img->names[i], (unsigned long long)c->gpa,
                              (unsigned long long)(c->gpa + c->len));
    }
    if (!rc && img->n_chunks == LOADER_MAX_CHUNKS)
        rc = loader_error(err, errlen, ENOSPC, "more than %d pieces to load",
                          LOADER_MAX_CHUNKS);
    uint8_t *bytes = NULL;
    if (!rc && !(bytes = calloc(1, len ? len : 1)))
        rc = loader_error(err, errlen, ENOMEM, "out of memory for %s (%zu bytes)", what, len);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    snprintf(img->names[img->n_chunks], LOADER_CHUNK_NAME, "%s", what);
    img->chunks[img->n_chunks++] = (loader_chunk_t){.gpa = gpa, .bytes = bytes, .len = len};
    return bytes;
}

loader_vp_state_t *loader_image_start_vp(loader_image_t *img, uint32_t vp)
{
    img->started[vp] = true;
    return &img->vps[vp];
}

void loader_image_note(loader_image_t *img, const char *fmt, ...)
{
    size_t used = strlen(img->description);
    if (used + 1 >= sizeof img->description)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(img->description + used, sizeof img->description - used, fmt, ap);
    va_end(ap);
}

void loader_image_destroy(loader_image_t **image)
{
    loader_image_t *img = *image;
    if (!img)
        return;
    for (size_t i = 0; i < img->n_chunks; i++)
        free((void *)img->chunks[i].bytes);
    free(img->vps);
    free(img->started);
    free(img);
    *image = NULL;
}

const loader_chunk_t *loader_image_chunks(const loader_image_t *image, size_t *n)
{
    *n = image->n_chunks;
    return image->chunks;
}

const loader_vp_state_t *loader_image_vp(const loader_image_t *image, uint32_t vp)
{
    return vp < image->n_vps && image->started[vp] ? &image->vps[vp] : NULL;
}

uint64_t loader_image_entry(const loader_image_t *image)
{
    return image->entry;
}

const loader_range_t *loader_image_ram(const loader_image_t *image, size_t *n)
{
    *n = image->n_ram;
    return image->ram;
}

const char *loader_image_describe(const loader_image_t *image)
{
    return image->description;
}

const loader_pc_t *loader_image_pc(const loader_image_t *image)
{
    return image->has_pc ? &image->pc : NULL;
}
