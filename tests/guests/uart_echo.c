/* VP 0 asks on COM1 for a line, reads it from COM1's receiver (polling
 * LSR's data-ready bit), answers with it and powers off. */
#include "guest/guest.h"

#define S_LSR_DATA_READY 0x01

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_printf("type a line:\n");
    char line[64];
    uint32_t n = 0;
    for (;;) {
        while (!(inb(GUEST_COM1 + 5) & S_LSR_DATA_READY))
            guest_pause();
        char c = (char)inb(GUEST_COM1);
        if (c == '\n' || n == sizeof line - 1)
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    guest_printf("you typed: %s\n", line);
}
