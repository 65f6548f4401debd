/* A read the test device answers only after a delay (it defers it): the
 * VP waits for it without running the guest, a Stop halts it meanwhile,
 * and a Run lets the read finish with the device's answer. */
#include "guest/guest.h"

#define S_DELAY_MS 3000

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    outl(TESTDEV_PORT_DELAY, S_DELAY_MS);
    guest_sync(1);
    uint32_t value = inl(TESTDEV_PORT_DELAY);
    guest_sync(2, value);
    guest_power_off();
}
