/*
 * The PM-timer benchmark's guest (bench/pm_timer_bench.c), a multiboot
 * kernel that runs the same under this VMM, a bare KVM_RUN loop and QEMU:
 * it times, with rdtsc, a loop of `inl` from the ACPI PM timer (port
 * 0x608), after a warm-up of a tenth as many, and prints the cycles on
 * COM1. The command line's "iterations=N" says how many (default 2000).
 */
#include "guest/mb/mb.h"

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

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic;
    uint32_t n = s_iterations(info);
    uint32_t first = mb_pm_timer(), last = first;
    for (uint32_t i = 0; i < n / 10 + 1; i++)
        last = mb_pm_timer();
    uint64_t t0 = mb_rdtsc();
    for (uint32_t i = 0; i < n; i++)
        last = mb_pm_timer();
    uint64_t t1 = mb_rdtsc();
    MB_CHECK(last != first, "the PM timer counts");
    mb_printf("pm_read: iterations=%u cycles=%llu\n", n, t1 - t0);
}
