/* Reports each boot, then asks the i8042 for a reset. */
#include "guest/guest.h"

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_sync(1);
    outb(0x64, 0xfe);
    guest_halt_forever();
}
