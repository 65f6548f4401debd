/* Waits for a COM2 that the test starts while the guest runs: writes its
 * scratch register until it reads back (an unregistered port reads all
 * ones), then powers off. */
#include "guest/guest.h"

#define S_COM2_SCRATCH 0x2ff
#define S_MARK 0x5a

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_sync(1);
    do
        outb(S_COM2_SCRATCH, S_MARK);
    while (inb(S_COM2_SCRATCH) != S_MARK);
    guest_sync(2);
    guest_power_off();
}
