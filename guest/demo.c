/*
 * The demo guest: every VP but 0 checks in and halts; VP 0 greets over
 * COM1, waits (a few seconds at most) for the others, says how many came,
 * asks the test device for an MSI to itself, waits for it, and powers the
 * VM off. Only VP 0 prints: hundreds of VPs spinning for the print lock in
 * emulated CPL 0 code would starve its holder.
 */
#include "guest/guest.h"

#define DEMO_VECTOR 0x40
/* About 6.5 s at this host's 2.6 GHz. */
#define DEMO_WAIT_CYCLES (1ull << 34)

static volatile uint32_t s_msi_vector;
static uint32_t s_up = 1; /* VP 0 */

static void s_on_msi(struct guest_frame *frame)
{
    s_msi_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp != 0) {
        __atomic_fetch_add(&s_up, 1, __ATOMIC_RELEASE);
        guest_halt_forever();
    }
    uint32_t n = guest_vp_count();
    guest_printf("Hello from the demo guest on vp 0 of %u\n", n);
    uint64_t until = guest_rdtsc() + DEMO_WAIT_CYCLES;
    while (__atomic_load_n(&s_up, __ATOMIC_ACQUIRE) < n && guest_rdtsc() < until)
        guest_pause();
    guest_printf("%u of %u VPs up\n", __atomic_load_n(&s_up, __ATOMIC_ACQUIRE), n);
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
