/* The embedded demo: the very bytes of //guest:demo, and a loadable image. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/demo_embedded.h"
#include "loader/loader.h"

Test(demo_embedded, holds_the_demo_elf_file)
{
    FILE *f = fopen("guest/demo", "rb");
    cr_assert_not_null(f, "open guest/demo: %s", strerror(errno));
    uint8_t *file = malloc(guest_demo_elf_len + 1);
    cr_assert_not_null(file);
    size_t n = fread(file, 1, guest_demo_elf_len + 1, f);
    fclose(f);
    cr_expect_eq(n, guest_demo_elf_len, "file %zu bytes, embedded %lu", n, guest_demo_elf_len);
    cr_expect_eq(memcmp(file, guest_demo_elf, n < guest_demo_elf_len ? n : guest_demo_elf_len), 0);
    free(file);
}

Test(demo_embedded, loads)
{
    char err[256] = "";
    loader_image_t *img =
        loader_image_new(guest_demo_elf, guest_demo_elf_len, 16 << 20, 1, err, sizeof(err));
    cr_assert_not_null(img, "%s", err);
    cr_expect_geq(loader_image_entry(img), 0x100000);
    loader_image_destroy(&img);
}
