/* VP 0 rings a doorbell three times (no exit: KVM signals an eventfd),
 * then reports. */
#include "guest/guest.h"

#define DOORBELL 0xd0000000ul

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    for (uint32_t i = 1; i <= 3; i++)
        *(volatile uint32_t *)DOORBELL = i;
    guest_sync(2);
    guest_halt_forever();
}
