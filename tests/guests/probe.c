/* VP 0 works the probe, an MMIO device a device host serves: writes its
 * 8-byte scratch register and reads it back whole, as its high half and as
 * one byte; rings its doorbell (no exit: the partition tells the device);
 * then has it assert IO-APIC input 5, which the test routes to VECTOR_IRQ.
 * Reports each. tests/devhost_paths_test.c has the same numbers. */
#include "guest/guest.h"

#define PROBE 0xd0002000ul
#define PROBE_SCRATCH PROBE
#define PROBE_COMMAND (PROBE + 0x8)
#define PROBE_DOORBELL (PROBE + 0x100)
#define PROBE_CMD_IRQ 1
#define VECTOR_IRQ 0x45

static volatile uint32_t s_vector;

static void s_on_irq(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(VECTOR_IRQ, s_on_irq);
    guest_apic_enable();

    *(volatile uint64_t *)PROBE_SCRATCH = 0x1122334455667788ull;
    uint64_t whole = *(volatile uint64_t *)PROBE_SCRATCH;
    uint32_t high = *(volatile uint32_t *)(PROBE_SCRATCH + 4);
    uint8_t byte = *(volatile uint8_t *)(PROBE_SCRATCH + 1);
    guest_sync(1, (uint32_t)whole, (uint32_t)(whole >> 32), high, byte);

    *(volatile uint32_t *)PROBE_DOORBELL = 1;
    guest_sync(2);

    *(volatile uint32_t *)PROBE_COMMAND = PROBE_CMD_IRQ;
    while (!s_vector)
        guest_sti_hlt();
    guest_cli();
    guest_sync(3, s_vector);
    guest_halt_forever();
}
