/*
 * The guest of devhost_bench's MSI rows (bench/msi_guest.h): it enables
 * its local APIC, tells the benchmark device where its box lies (a port
 * write), and then only waits, halted, counting in the box each MSI the
 * device raises on its own; it powers off when the box says stop. The
 * device times each MSI from raising it until the count moves.
 */
#include "guest/guest.h"

/* bench/msi_guest.h has the same numbers. */
#define BENCH_MSI_PORT 0x5c0
#define BENCH_MSI_VECTOR 0x55

static volatile struct {
    uint32_t acks, stop;
} s_box __attribute__((aligned(8)));

static void s_on_msi(struct guest_frame *frame)
{
    (void)frame;
    s_box.acks++;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp != 0)
        guest_halt_forever();
    guest_set_handler(BENCH_MSI_VECTOR, s_on_msi);
    guest_apic_enable();
    guest_cli();
    outl(BENCH_MSI_PORT, (uint32_t)(uintptr_t)&s_box);
    while (!s_box.stop) {
        guest_sti_hlt();
        guest_cli();
    }
    guest_power_off();
}
