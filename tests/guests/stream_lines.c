/* Prints "line 0", "line 1", ... on COM1, reading COM1's line status
 * between lines (a round trip to COM1's device host each), until an
 * operator writes a nonzero status into stream_quit (vmm ctl mem write);
 * then says how many lines it printed and what COM1's scratch register
 * holds (written once at the start), and powers off. For killing COM1's
 * host over and over while the guest streams: each new host must carry on
 * with its predecessor's registers. */
#include "guest/guest.h"

#define S_COM1_LSR 0x3fd
#define S_COM1_SCR 0x3ff
#define S_SCRATCH 0x5a

volatile uint32_t stream_quit;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    outb(S_COM1_SCR, S_SCRATCH);
    guest_printf("stream: quit at %p\n", (void *)&stream_quit);
    uint32_t n = 0;
    while (!stream_quit) {
        guest_printf("line %u\n", n++);
        for (int k = 0; k < 100; k++)
            (void)inb(S_COM1_LSR);
    }
    guest_printf("stream: %u lines, scratch 0x%x\n", n, inb(S_COM1_SCR));
    guest_power_off();
}
