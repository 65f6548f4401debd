/* A failing assertion, reported to the VMM through the test device. */
#include "guest/guest.h"

void guest_main(uint32_t vp)
{
    GUEST_ASSERT(vp == 42);
}
