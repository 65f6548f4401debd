/* Exits through isa-debug-exit: the VMM's status is 2 * 5 + 1. */
#include "guest/guest.h"

void guest_main(uint32_t vp)
{
    (void)vp;
    guest_exit(5);
}
