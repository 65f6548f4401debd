/*
 * For snapshots: VP 0 says where its quit flag lies, then prints numbered
 * ticks with the reference time (TIME_REF_COUNT, with --hyperv; else the
 * TSC) until an operator writes a status into ticks_quit, and exits with
 * it. A snapshot taken meanwhile and continued elsewhere must go on with
 * the next tick, the time never going back.
 */
#include <stdbool.h>

#include "guest/guest.h"
#include "guest/hv.h"

volatile uint32_t ticks_quit;

static bool s_hyperv(void)
{
    uint32_t a = 0x40000000, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return b == 0x7263694d; /* "Micr" */
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    bool hv = s_hyperv();
    guest_printf("ticks: quit %p\n", (void *)&ticks_quit);
    for (uint32_t n = 0; !ticks_quit; n++)
        guest_printf("tick %u ref %lu\n", n,
                     (unsigned long)(hv ? hv_rdmsr(HV_MSR_TIME_REF_COUNT) : guest_rdtsc()));
    guest_exit((uint8_t)ticks_quit);
}
