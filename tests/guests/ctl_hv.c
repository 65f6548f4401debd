/*
 * For vmm ctl post-message: VP 0 enables the SynIC, says it is ready,
 * waits for a message on SINT 2, prints its type, size and first payload
 * byte, and exits through isa-debug-exit with its size.
 */
#include "guest/guest.h"
#include "guest/hv.h"

#define VECTOR_MESSAGE 0x50

static uint8_t s_simp[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_vector;

static void s_on_sint(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(VECTOR_MESSAGE, s_on_sint);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp | 1);
    hv_wrmsr(HV_MSR_SINT0 + 2, VECTOR_MESSAGE);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
    guest_printf("hv: ready\n");
    while (!s_vector)
        guest_sti_hlt();
    guest_cli();
    volatile struct hv_message *slot = (volatile struct hv_message *)(s_simp + 2 * 256);
    guest_printf("hv: message type 0x%x size %u first 0x%x\n", slot->type, slot->payload_size,
                 (uint32_t)(slot->payload[0] & 0xff));
    guest_exit((uint8_t)slot->payload_size);
}
