/* VP 0 takes interrupts the test sends (an MSI interrupt, an IO-APIC line
 * routed to an MSI, an NMI on LINT1) and reports each vector. */
#include "guest/guest.h"

static volatile uint32_t s_vector;

static void s_on_interrupt(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    if (frame->vector != 2) /* an NMI needs no EOI */
        guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(2, s_on_interrupt);
    guest_set_handler(0x41, s_on_interrupt);
    guest_set_handler(0x42, s_on_interrupt);
    guest_apic_enable();
    guest_sync(1);
    for (;;) {
        while (!s_vector)
            guest_sti_hlt();
        guest_cli();
        uint32_t vector = s_vector;
        s_vector = 0;
        guest_sync(2, vector);
    }
}
