/*
 * The guest of //bench:scale_bench: every VP says it runs with one port
 * write, a sync call with no arguments (the device collects arguments
 * from one VP at a time, so this takes no lock that hundreds of VPs would
 * spin on), then halts with interrupts off for good.
 */
#include "actors/devices/testdev_abi.h"
#include "guest/guest.h"
#include "guest/port_io.h"

void guest_main(uint32_t vp)
{
    (void)vp; /* the call carries the VP's index */
    outl(TESTDEV_PORT_CALL, TESTDEV_CALL_SYNC);
    guest_halt_forever();
}
