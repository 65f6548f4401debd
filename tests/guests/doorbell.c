/* VP 0 rings two doorbells three times each (no exit: KVM signals an
 * eventfd), the second with 1, 2 and 3 for a test of value matching, then
 * reports. */
#include "guest/guest.h"

#define DOORBELL 0xd0000000ul

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    for (uint32_t i = 1; i <= 3; i++) {
        *(volatile uint32_t *)DOORBELL = i;
        *(volatile uint32_t *)(DOORBELL + 0x10) = i;
    }
    guest_sync(2);
    guest_halt_forever();
}
