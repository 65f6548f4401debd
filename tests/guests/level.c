/*
 * A level-triggered line through the IO-APIC: VP 0 routes the test
 * device's line to a vector as level-triggered, has the device raise it,
 * and ends each interrupt with an EOI. While the line is high every EOI
 * brings the interrupt again; the third time the handler has the device
 * lower the line before its EOI, and the IO-APIC sends no more: only what
 * the local APIC held already may still come (this KVM keeps the vector
 * pending in IRR while it is in service: the handler notes whether it
 * was, and the test counts it).
 *
 * The device's level reaches the in-kernel IO-APIC by a message, and the
 * EOI is the guest's: so before its EOI the handler waits until the
 * lowering has landed. It asks the device for an MSI, which follows the
 * lowering through the same partition, and waits for that MSI to show in
 * its local APIC's IRR.
 */
#include "guest/guest.h"

#define S_VECTOR_LINE 0x45
#define S_VECTOR_FENCE 0x46
#define S_IOAPIC 0xfec00000ul
#define S_APIC_IRR 0x200

static volatile uint32_t s_lines, s_fences, s_held;

static volatile uint32_t *s_reg(uintptr_t base, uint32_t offset)
{
    return (volatile uint32_t *)(base + offset);
}

/* Redirection entry of an IO-APIC input: vector, fixed, physical
 * destination apic_id, active high, level-triggered, unmasked. */
static void s_route_level(uint32_t input, uint8_t vector, uint32_t apic_id)
{
    *s_reg(S_IOAPIC, 0x00) = 0x10 + 2 * input + 1;
    *s_reg(S_IOAPIC, 0x10) = apic_id << 24;
    *s_reg(S_IOAPIC, 0x00) = 0x10 + 2 * input;
    *s_reg(S_IOAPIC, 0x10) = vector | 1u << 15;
}

static uint32_t s_pending(uint8_t vector)
{
    return (*s_reg(GUEST_APIC_BASE, S_APIC_IRR + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}

/* The IO-APIC input's remote IRR: set from delivery to EOI. */
static uint32_t s_remote_irr(uint32_t input)
{
    *s_reg(S_IOAPIC, 0x00) = 0x10 + 2 * input;
    return (*s_reg(S_IOAPIC, 0x10) >> 14) & 1;
}

static void s_on_line(struct guest_frame *frame)
{
    (void)frame;
    if (++s_lines == 3) {
        outl(TESTDEV_PORT_LINE, 0);
        guest_request_msi(guest_apic_id(), S_VECTOR_FENCE);
        while (!s_pending(S_VECTOR_FENCE))
            guest_pause();
        s_held = s_pending(S_VECTOR_LINE);
    }
    guest_apic_eoi();
}

static void s_on_fence(struct guest_frame *frame)
{
    (void)frame;
    s_fences++;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(S_VECTOR_LINE, s_on_line);
    guest_set_handler(S_VECTOR_FENCE, s_on_fence);
    guest_apic_enable();
    s_route_level(TESTDEV_IRQ, S_VECTOR_LINE, guest_apic_id());
    guest_sync(1);
    outl(TESTDEV_PORT_LINE, 1);
    while (!s_fences)
        guest_sti_hlt();
    /* A while with interrupts on: an interrupt the line still owed would
     * come now. */
    guest_sti();
    for (int i = 0; i < 2000; i++)
        guest_pause();
    guest_cli();
    guest_sync(2, s_lines, s_held, s_fences, inl(TESTDEV_PORT_LINE), s_remote_irr(TESTDEV_IRQ));
    guest_power_off();
}
