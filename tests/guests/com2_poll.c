/* Polls COM2's scratch register, which a device host serves: writes a
 * value, reads it back, reports sync point 1, then reads until the value
 * is gone (a lost device reads as all ones) and exits with 7 (status 15).
 * Had the VM to halt instead, the guest never gets there. */
#include "guest/guest.h"

#define S_COM2_SCRATCH 0x2ff
#define S_MARK 0x5a

void guest_main(uint32_t vp)
{
    (void)vp;
    outb(S_COM2_SCRATCH, S_MARK);
    GUEST_ASSERT(inb(S_COM2_SCRATCH) == S_MARK);
    guest_sync(1);
    while (inb(S_COM2_SCRATCH) == S_MARK)
        ;
    guest_exit(7);
}
