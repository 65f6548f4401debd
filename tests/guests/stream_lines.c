/* Prints "line 0", "line 1", ... on COM1, reading COM1's line status
 * between lines (a round trip to COM1's device host each), until an
 * operator writes a nonzero status into stream_quit (vmm ctl mem write);
 * then says how many lines it printed and powers off. For killing COM1's
 * host over and over while the guest streams. */
#include "guest/guest.h"

#define S_COM1_LSR 0x3fd

volatile uint32_t stream_quit;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_printf("stream: quit at %p\n", (void *)&stream_quit);
    uint32_t n = 0;
    while (!stream_quit) {
        guest_printf("line %u\n", n++);
        for (int k = 0; k < 100; k++)
            (void)inb(S_COM1_LSR);
    }
    guest_printf("stream: %u lines\n", n);
    guest_power_off();
}
