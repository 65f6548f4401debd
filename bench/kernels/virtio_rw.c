/*
 * virtio_bench's multiboot kernel: guest/virtio_bench.h's virtio-blk
 * workloads at CPL 0 with paging off, the same under this VMM (`vmm run
 * --kernel`, the disk at 0xd0000000) and under QEMU's microvm (its
 * virtio-mmio slots from 0xfeb00000, the first device in the top slot,
 * version 2 with virtio-mmio.force-legacy=false). It finds the disk by its
 * magic, version and device id, takes n from the command line
 * ("iterations=N", default 2000) and prints each workload on COM1:
 * "virtio_rw: phase=P ops=N bytes=B cycles=C".
 */
#include "guest/mb/mb.h"
#include "guest/virtio.h"
#include "guest/virtio_bench.h"

static guest_virtio_t s_blk;

static uint32_t s_iterations(const mb_info_t *info)
{
    const char *s = (info->flags & MB_INFO_CMDLINE) ? (const char *)info->cmdline : "";
    for (; *s; s++)
        if (!strncmp(s, "iterations=", 11)) {
            uint32_t n = 0;
            for (s += 11; *s >= '0' && *s <= '9'; s++)
                n = n * 10 + (uint32_t)(*s - '0');
            return n ? n : 1;
        }
    return 2000;
}

/* A virtio-mmio version 2 block device at base. */
static bool s_is_disk(uintptr_t base)
{
    return mb_read32(base) == 0x74726976 && mb_read32(base + 4) == 2 &&
           mb_read32(base + 8) == 2;
}

/* Where the disk is: this VMM's first virtio device, else QEMU microvm's
 * slots from the top. */
static uintptr_t s_find_disk(void)
{
    if (s_is_disk(0xd0000000u))
        return 0xd0000000u;
    for (int slot = 23; slot >= 0; slot--)
        if (s_is_disk(0xfeb00000u + 0x200u * (uint32_t)slot))
            return 0xfeb00000u + 0x200u * (uint32_t)slot;
    return 0;
}

static void s_report(uint32_t phase, uint64_t cycles, uint32_t ops, uint32_t bytes)
{
    mb_printf("virtio_rw: phase=%u ops=%u bytes=%u cycles=%llu\n", phase, ops, bytes,
              (unsigned long long)cycles);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic;
    uintptr_t base = s_find_disk();
    if (!MB_CHECK(base, "a virtio-blk device (version 2)"))
        return;
    int rc = guest_virtio_init(&s_blk, base, 2, 0, 1);
    if (!MB_CHECK(!rc, "the disk's initialization (step %d)", rc))
        return;
    uint32_t failed = 0;
    virtio_bench_blk(&s_blk, s_iterations(info), s_report, &failed);
    MB_CHECK(!failed, "%u requests failed", failed);
}
