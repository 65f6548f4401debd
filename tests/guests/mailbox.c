/* VP 0 rings the mailbox device's doorbell three times, each time waiting
 * until the device has added its step to a counter in guest RAM, then
 * reports the counter and its address (tests/testing/mailbox.h). */
#include "guest/guest.h"

#define REGS 0xd0002000ul

static volatile uint64_t s_counter;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    *(volatile uint64_t *)(REGS + 8) = (uint64_t)(uintptr_t)&s_counter;
    for (uint32_t i = 1; i <= 3; i++) {
        uint64_t before = s_counter;
        *(volatile uint32_t *)REGS = i; /* the doorbell: no exit */
        while (s_counter == before)
            guest_pause();
    }
    guest_sync(4, (uint32_t)s_counter, (uint32_t)(uintptr_t)&s_counter);
    guest_halt_forever();
}
