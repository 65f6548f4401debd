/* Which loader a kernel image is for. */
#include "loader/kernel.h"

#include <errno.h>

#include "loader/pc.h"

loader_image_t *loader_kernel_new(const loader_kernel_config_t *cfg, char *err, size_t errlen)
{
    long header = loader_multiboot_find(cfg->kernel, cfg->kernel_len);
    if (header >= 0)
        return loader_multiboot_load(cfg, (size_t)header, err, errlen);
    if (loader_linux_is_bzimage(cfg->kernel, cfg->kernel_len))
        return loader_linux_load(cfg, err, errlen);
    errno = -loader_error(err, errlen, ENOEXEC,
                          "neither a multiboot kernel (no valid multiboot header in the first "
                          "8 KiB) nor a Linux bzImage (no \"HdrS\" at 0x202)");
    return NULL;
}
