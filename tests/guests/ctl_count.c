/*
 * For vmm ctl: VP 0 says where its counters lie, then counts with
 * interrupts on until an operator writes a status into ctl_quit (vmm ctl
 * mem write), and exits through isa-debug-exit with it. MSIs at vector
 * 0x40 (vmm ctl msi 0xfee00000 0x40) count in ctl_msis.
 */
#include "guest/guest.h"

volatile uint64_t ctl_counter;
volatile uint32_t ctl_quit;
volatile uint32_t ctl_msis;

static void s_on_msi(struct guest_frame *frame)
{
    (void)frame;
    ctl_msis++;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(0x40, s_on_msi);
    guest_apic_enable();
    guest_printf("ctl: counter %p quit %p msis %p\n", (void *)&ctl_counter, (void *)&ctl_quit,
                 (void *)&ctl_msis);
    guest_sti();
    while (!ctl_quit)
        ctl_counter++;
    guest_cli();
    guest_printf("ctl: quit %u after %u MSIs\n", ctl_quit, ctl_msis);
    guest_exit((uint8_t)ctl_quit);
}
