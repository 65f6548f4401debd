/* VP 0 rings a doorbell once and reports the address of a go flag (sync
 * 1); once the test sets the flag, it rings 9 times more and reports
 * (sync 2). The test holds its answer to the first signal in between. */
#include "guest/guest.h"

#define DOORBELL 0xd0000000ul

static volatile uint32_t s_go;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    *(volatile uint32_t *)DOORBELL = 1;
    guest_sync(1, (uint32_t)(uintptr_t)&s_go);
    while (!s_go)
        guest_pause();
    for (uint32_t i = 2; i <= 10; i++)
        *(volatile uint32_t *)DOORBELL = i;
    guest_sync(2);
    guest_halt_forever();
}
