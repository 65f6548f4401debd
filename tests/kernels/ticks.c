/*
 * The ticks guest as a multiboot kernel, for snapshots of a VM booted from
 * a kernel on the PC (run with --hyperv): says where its quit flag lies,
 * prints numbered ticks with the reference time until an operator writes a
 * status there, and exits with it through isa-debug-exit.
 */
#include "guest/mb/mb.h"

#define HV_TIME_REF_COUNT 0x40000020u

volatile uint32_t ticks_quit;

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    mb_printf("ticks: quit %p\n", (void *)&ticks_quit);
    for (uint32_t n = 0; !ticks_quit; n++)
        mb_printf("tick %u ref %llu\n", n, (unsigned long long)mb_rdmsr(HV_TIME_REF_COUNT));
    mb_exit(ticks_quit);
}
