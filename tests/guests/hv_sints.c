/* Every SINT on every VP: each VP enables its SynIC with SINT i on vector
 * 0x60 + i, reports itself ready, and reports once a message has arrived
 * on all 16, each with the type the test chose for it (0x200 + i). */
#include "guest/guest.h"
#include "guest/hv.h"

#define MAX_VPS 2

static uint8_t s_simp[MAX_VPS][4096] __attribute__((aligned(4096)));
static volatile uint32_t s_seen[MAX_VPS];

static void s_on_sint(struct guest_frame *frame)
{
    s_seen[guest_apic_id()] |= 1u << (frame->vector - 0x60);
    guest_apic_eoi();
}

void guest_main(uint32_t vp)
{
    if (vp >= MAX_VPS)
        guest_halt_forever();
    if (vp == 0)
        for (int i = 0; i < 16; i++)
            guest_set_handler((uint8_t)(0x60 + i), s_on_sint);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp[vp] | 1);
    for (uint32_t i = 0; i < 16; i++)
        hv_wrmsr(HV_MSR_SINT0 + i, 0x60 + i);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
    guest_sync(1, vp);
    while (s_seen[vp] != 0xffff)
        guest_sti_hlt();
    guest_cli();
    uint32_t right = 0;
    for (uint32_t i = 0; i < 16; i++)
        right += ((volatile struct hv_message *)(s_simp[vp] + i * 256))->type == 0x200 + i;
    guest_sync(2, vp, right);
    guest_halt_forever();
}
