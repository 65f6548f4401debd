/* Every VP reports a sync point with its index, then halts: secondary VPs
 * start in the state the loader gives them and run. */
#include "guest/guest.h"

void guest_main(uint32_t vp)
{
    guest_sync(1, vp);
    guest_halt_forever();
}
