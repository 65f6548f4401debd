/*
 * Every VP prints S_LINES lines on COM1, each under the print lock (a line
 * is one guest_printf), while the others do the same, then reports that it
 * is done. Every line must come out whole: the VMM keeps the order of the
 * port writes the guest ordered by its lock.
 */
#include "guest/guest.h"

#define S_LINES 6

void guest_main(uint32_t vp)
{
    for (uint32_t i = 0; i < S_LINES; i++)
        guest_printf("vp %u line %u: the quick brown fox jumps over the lazy dog\n", vp, i);
    guest_sync(1);
    guest_halt_forever();
}
