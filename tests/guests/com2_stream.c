/* Streams numbered bytes to a port device in a device host (0x2f8, writes
 * posted) and, every 64 writes, reads 0x2f9: all ones while the device is
 * lost, something else while it serves. Sync point 1 comes once after the
 * first read the device served; then the guest streams until stopped. */
#include "guest/guest.h"

#define S_PORT 0x2f8

void guest_main(uint32_t vp)
{
    (void)vp;
    for (uint32_t i = 0, synced = 0;; i++) {
        outb(S_PORT, (uint8_t)i);
        if (i % 64 == 63 && inb(S_PORT + 1) != 0xff && !synced) {
            guest_sync(1);
            synced = 1;
        }
    }
}
