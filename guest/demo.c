/*
 * The demo guest: VP 0 greets over COM1, asks the test device for an MSI to
 * itself, waits for it, and powers the VM off; any other VP says it is up
 * and halts.
 */
#include "guest/guest.h"

#define DEMO_VECTOR 0x40

static volatile uint32_t s_msi_vector;

static void s_on_msi(struct guest_frame *frame)
{
    s_msi_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp != 0) {
        guest_printf("vp %u is up\n", vp);
        guest_halt_forever();
    }
    guest_printf("Hello from the demo guest on vp %u\n", vp);
    guest_set_handler(DEMO_VECTOR, s_on_msi);
    guest_apic_enable();
    guest_request_msi(guest_apic_id(), DEMO_VECTOR);
    /* Interrupts are off while the flag is checked: sti; hlt cannot miss
     * the MSI. */
    while (s_msi_vector == 0)
        guest_sti_hlt();
    guest_cli();
    guest_printf("MSI received on vector 0x%x\n", s_msi_vector);
    guest_power_off();
}
