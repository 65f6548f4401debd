/* The SynIC from a guest: enables it as the TLFS describes, then takes
 * ten messages on SINT 2 (reporting each, freeing the slot and writing
 * EOM) and one event flag on SINT 3. */
#include "guest/guest.h"
#include "guest/hv.h"

#define VECTOR_MESSAGE 0x50
#define VECTOR_EVENT 0x51

static uint8_t s_simp[4096] __attribute__((aligned(4096)));
static uint8_t s_siefp[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_vector;

static void s_on_sint(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

static void s_wait(void)
{
    while (!s_vector)
        guest_sti_hlt();
    guest_cli();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(VECTOR_MESSAGE, s_on_sint);
    guest_set_handler(VECTOR_EVENT, s_on_sint);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp | 1);
    hv_wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)s_siefp | 1);
    hv_wrmsr(HV_MSR_SINT0 + 2, VECTOR_MESSAGE);
    hv_wrmsr(HV_MSR_SINT0 + 3, VECTOR_EVENT);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
    guest_sync(1);

    volatile struct hv_message *slot = (volatile struct hv_message *)(s_simp + 2 * 256);
    for (int n = 0; n < 10; n++) {
        s_wait();
        s_vector = 0;
        guest_sync(2, slot->type, slot->payload_size, (uint32_t)slot->payload[0], slot->flags);
        slot->type = 0; /* the slot is free again */
        hv_wrmsr(HV_MSR_EOM, 0);
    }

    s_wait();
    uint32_t vector = s_vector;
    s_vector = 0;
    volatile uint32_t *flags = (volatile uint32_t *)(s_siefp + 3 * 256);
    guest_sync(3, vector, flags[0]);
    guest_halt_forever();
}
