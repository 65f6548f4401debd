/* VP 0 writes and reads a device's MMIO registers and reports what it read. */
#include "guest/guest.h"

#define REGS 0xd0001000ul

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    *(volatile uint32_t *)REGS = 0x12345678;
    uint64_t v = *(volatile uint64_t *)(REGS + 8);
    guest_sync(3, (uint32_t)v, (uint32_t)(v >> 32));
    guest_halt_forever();
}
