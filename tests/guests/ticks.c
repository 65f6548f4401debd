/*
 * For snapshots: VP 0 says where its quit flag lies, then prints numbered
 * ticks with the reference time (TIME_REF_COUNT; run with --hyperv) until
 * an operator writes a status into ticks_quit, and exits with it. A
 * snapshot taken meanwhile and continued elsewhere must go on with the
 * next tick, the reference time never going back.
 */
#include "guest/guest.h"
#include "guest/hv.h"

volatile uint32_t ticks_quit;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_printf("ticks: quit %p\n", (void *)&ticks_quit);
    for (uint32_t n = 0; !ticks_quit; n++)
        guest_printf("tick %u ref %lu\n", n, (unsigned long)hv_rdmsr(HV_MSR_TIME_REF_COUNT));
    guest_exit((uint8_t)ticks_quit);
}
