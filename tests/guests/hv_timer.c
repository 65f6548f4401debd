/* SynIC timers from a guest: a periodic timer posting expiry messages to
 * SINT 0, a one-shot timer posting one, then a one-shot timer in direct
 * mode raising its own vector. */
#include "guest/guest.h"
#include "guest/hv.h"

#define VECTOR_SINT0 0x52
#define VECTOR_DIRECT 0x53
#define HVMSG_TIMER_EXPIRED 0x80000010u

#define STIMER_ENABLE (1ull << 0)
#define STIMER_PERIODIC (1ull << 1)
#define STIMER_DIRECT (1ull << 12)

static uint8_t s_simp[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_vector;

static void s_on_interrupt(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

static uint32_t s_wait(void)
{
    while (!s_vector)
        guest_sti_hlt();
    guest_cli();
    uint32_t vector = s_vector;
    s_vector = 0;
    return vector;
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(VECTOR_SINT0, s_on_interrupt);
    guest_set_handler(VECTOR_DIRECT, s_on_interrupt);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp | 1);
    hv_wrmsr(HV_MSR_SINT0, VECTOR_SINT0);
    hv_wrmsr(HV_MSR_SCONTROL, 1);

    /* Every 2 ms, to SINT 0 (SINTx is bits 19:16 of the config). */
    hv_wrmsr(HV_MSR_STIMER0_COUNT, 20000);
    hv_wrmsr(HV_MSR_STIMER0_CONFIG, STIMER_ENABLE | STIMER_PERIODIC);
    volatile struct hv_message *slot = (volatile struct hv_message *)s_simp;
    uint64_t last = 0;
    for (int n = 0; n < 3; n++) {
        uint32_t vector = s_wait();
        uint32_t timer = (uint32_t)slot->payload[0];
        uint64_t expiration = slot->payload[1], delivery = slot->payload[2];
        guest_sync(1, vector, slot->type, timer, delivery >= expiration, expiration > last);
        last = expiration;
        slot->type = 0;
        hv_wrmsr(HV_MSR_EOM, 0);
    }
    hv_wrmsr(HV_MSR_STIMER0_CONFIG, 0);
    hv_wrmsr(HV_MSR_STIMER0_COUNT, 0); /* stopped; an expiry on its way is skipped below */

    /* Once, 2 ms from now (an absolute reference time), to SINT 0. */
    uint64_t start = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    hv_wrmsr(HV_MSR_STIMER0_CONFIG + 4, STIMER_ENABLE);
    hv_wrmsr(HV_MSR_STIMER0_COUNT + 4, start + 20000);
    for (;;) {
        s_wait();
        uint32_t timer = (uint32_t)slot->payload[0];
        uint64_t expiration = slot->payload[1];
        slot->type = 0;
        hv_wrmsr(HV_MSR_EOM, 0);
        if (timer == 2) {
            guest_sync(3, timer, expiration == start + 20000,
                       hv_rdmsr(HV_MSR_STIMER0_CONFIG + 4) & STIMER_ENABLE);
            break;
        }
    }

    /* Once, 2 ms from now, straight to a vector of its own. */
    uint64_t now = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    hv_wrmsr(HV_MSR_STIMER0_CONFIG + 2, STIMER_DIRECT | (uint64_t)VECTOR_DIRECT << 4);
    hv_wrmsr(HV_MSR_STIMER0_COUNT + 2, now + 20000);
    hv_wrmsr(HV_MSR_STIMER0_CONFIG + 2,
             STIMER_ENABLE | STIMER_DIRECT | (uint64_t)VECTOR_DIRECT << 4);
    /* An expiry of the periodic timer may still have been on its way:
     * take and free any such message. */
    uint32_t vector;
    while ((vector = s_wait()) == VECTOR_SINT0) {
        slot->type = 0;
        hv_wrmsr(HV_MSR_EOM, 0);
    }
    uint64_t after = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    guest_sync(2, vector, after >= now + 20000);
    guest_halt_forever();
}
