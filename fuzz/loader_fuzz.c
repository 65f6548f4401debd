/*
 * The loaders on any bytes: the first byte picks the ELF64 guest loader or
 * the kernel loader (a multiboot image, else a bzImage), and the VP count;
 * the rest is the file. Each must refuse what is malformed with a reason,
 * never read past the file or write outside the image.
 */
#include <stdlib.h>
#include <string.h>

#include "loader/kernel.h"
#include "loader/loader.h"

#define S_MEM (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    uint8_t how = data[0];
    /* A copy of its own: what lies past it is not the file's. */
    uint8_t *file = malloc(size - 1 ? size - 1 : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, size - 1);
    char err[512] = "";
    uint32_t n_vps = 1 + (how >> 1) % 4;
    loader_image_t *image;
    if (how & 1) {
        loader_kernel_config_t cfg = {.kernel = file, .kernel_len = size - 1,
                                      .kernel_name = "fuzz", .append = "console=ttyS0",
                                      .mem_size = S_MEM, .n_vps = n_vps};
        image = loader_kernel_new(&cfg, err, sizeof err);
    } else {
        image = loader_image_new(file, size - 1, S_MEM, n_vps, err, sizeof err);
    }
    if (image) {
        size_t n;
        const loader_chunk_t *chunks = loader_image_chunks(image, &n);
        uint8_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            const loader_chunk_t *c = &chunks[i];
            if (c->gpa + c->len > S_MEM || c->gpa + c->len < c->gpa)
                abort(); /* a chunk outside guest RAM */
            for (size_t k = 0; k < c->len; k++)
                sum += c->bytes[k]; /* each byte readable (ASan) */
        }
        __asm__ volatile("" : : "r"(sum)); /* kept */
        loader_image_destroy(&image);
    } else if (!err[0]) {
        abort(); /* refused without a reason */
    }
    free(file);
    return 0;
}
