/* Prints "line 0" to "line 299" on COM1, reading COM1's line status 300
 * times between lines (a few seconds when COM1 is in a device host), then
 * powers off: long enough to kill COM1's host in the middle. */
#include "guest/guest.h"

#define S_COM1_LSR 0x3fd

void guest_main(uint32_t vp)
{
    (void)vp;
    for (uint32_t i = 0; i < 300; i++) {
        guest_printf("line %u\n", i);
        for (int k = 0; k < 300; k++)
            (void)inb(S_COM1_LSR);
    }
    guest_power_off();
}
