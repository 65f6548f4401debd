/*
 * Every VP posts to every other VP's SINT 2 and signals an event flag on
 * its SINT 3, at once, through a relay actor of the test: HvPostMessage to
 * connection STORM_POST with {to, from, seq}, which the relay posts into
 * VP `to`'s SINT 2 in order; HvSignalEvent to connection STORM_SIGNAL +
 * from with flag `to`, which the relay turns into a signal of VP `to`'s
 * guest event port for flag `from` on SINT 3. After its ROUNDS, a VP posts
 * {to, from, STORM_DONE} to each other VP.
 *
 * Each VP checks what reaches it: from each sender, messages with
 * sequence numbers 0, 1, 2, ... and nothing else (nothing lost, nothing
 * twice, in order per (VP, SINT)); and when a sender's DONE arrives, that
 * sender's flag has been seen and is clear (its last signal reached the
 * page before the DONE, whose post left the relay after it, and raised an
 * interrupt: no signal lost). It reports {vp, messages in order, errors,
 * senders whose events checked out}.
 *
 * VP 0 reports first the address where the test writes the VP count
 * (sync 1 {vp, address}); each VP waits for it.
 */
#include "guest/guest.h"
#include "guest/hv.h"

#define MAX_VPS 4
#define ROUNDS 1000
#define STORM_POST 0x300
#define STORM_SIGNAL 0x310
#define STORM_DONE 0xffffu
#define VECTOR_MESSAGE 0x50
#define VECTOR_EVENT 0x51
#define SINT_MESSAGE 2
#define SINT_EVENT 3

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static uint8_t s_simp[MAX_VPS][4096] __attribute__((aligned(4096)));
static uint8_t s_siefp[MAX_VPS][4096] __attribute__((aligned(4096)));
static uint8_t s_input[MAX_VPS][4096] __attribute__((aligned(4096)));

static volatile uint32_t s_n_vps; /* written by the test */
static volatile uint32_t s_next[MAX_VPS][MAX_VPS];  /* [to][from]: next sequence due */
static volatile uint32_t s_seen[MAX_VPS][MAX_VPS];  /* [to][from]: flag observations */
static volatile uint32_t s_done[MAX_VPS];           /* DONEs taken */
static volatile uint32_t s_events_ok[MAX_VPS];      /* senders whose events checked out */
static volatile uint32_t s_in_order[MAX_VPS];
static volatile uint32_t s_errors[MAX_VPS];

static uint8_t *s_event_flags(uint32_t vp)
{
    return s_siefp[vp] + SINT_EVENT * 256;
}

static void s_on_event(struct guest_frame *frame)
{
    (void)frame;
    uint32_t vp = guest_apic_id();
    uint8_t got = __atomic_exchange_n(s_event_flags(vp), 0, __ATOMIC_SEQ_CST);
    for (uint32_t from = 0; from < MAX_VPS; from++)
        if (got & (1u << from))
            s_seen[vp][from]++;
    guest_apic_eoi();
}

static void s_on_message(struct guest_frame *frame)
{
    (void)frame;
    uint32_t vp = guest_apic_id();
    volatile struct hv_message *slot =
        (volatile struct hv_message *)(s_simp[vp] + SINT_MESSAGE * 256);
    if (slot->type == STORM_POST) {
        uint64_t word = slot->payload[0];
        uint32_t to = (uint32_t)word & 0xffff, from = (uint32_t)(word >> 16) & 0xffff;
        uint32_t seq = (uint32_t)(word >> 32);
        if (to != vp || from >= MAX_VPS || from == vp) {
            s_errors[vp]++;
        } else if (seq == STORM_DONE) {
            s_done[vp]++;
            /* The sender's last signal came before: seen, and cleared. */
            if (s_next[vp][from] == ROUNDS && s_seen[vp][from] &&
                !(*(volatile uint8_t *)s_event_flags(vp) & (1u << from)))
                s_events_ok[vp]++;
            else
                s_errors[vp]++;
        } else if (seq == s_next[vp][from]) {
            s_next[vp][from]++;
            s_in_order[vp]++;
        } else {
            s_errors[vp]++;
        }
    } else if (slot->type) {
        s_errors[vp]++;
    }
    slot->type = 0;
    hv_wrmsr(HV_MSR_EOM, 0);
    guest_apic_eoi();
}

/* HvPostMessage {to, from, seq} to the relay; a status other than success
 * counts as an error. */
static void s_post(uint32_t vp, uint32_t to, uint32_t seq)
{
    volatile uint32_t *in = (volatile uint32_t *)s_input[vp];
    in[0] = STORM_POST;
    in[1] = 0;
    in[2] = 1; /* the message type */
    in[3] = 8;
    *(volatile uint64_t *)(s_input[vp] + 16) = (uint64_t)seq << 32 | vp << 16 | to;
    if (hv_hypercall(s_hypercall_page, HV_CALL_POST_MESSAGE, (uint64_t)(uintptr_t)s_input[vp],
                     0) != HV_STATUS_SUCCESS)
        s_errors[vp]++;
}

static void s_signal(uint32_t vp, uint32_t to)
{
    uint64_t input = (STORM_SIGNAL + vp) | (uint64_t)to << 32;
    if (hv_hypercall(s_hypercall_page, HV_CALL_SIGNAL_EVENT | HV_CALL_FAST, input, 0) !=
        HV_STATUS_SUCCESS)
        s_errors[vp]++;
}

void guest_main(uint32_t vp)
{
    if (vp >= MAX_VPS)
        guest_halt_forever();
    guest_set_handler(VECTOR_MESSAGE, s_on_message);
    guest_set_handler(VECTOR_EVENT, s_on_event);
    guest_apic_enable();
    if (vp == 0) {
        hv_wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull);
        hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);
        guest_sync(1, vp, (uint32_t)(uintptr_t)&s_n_vps);
    }
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp[vp] | 1);
    hv_wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)s_siefp[vp] | 1);
    hv_wrmsr(HV_MSR_SINT0 + SINT_MESSAGE, VECTOR_MESSAGE);
    hv_wrmsr(HV_MSR_SINT0 + SINT_EVENT, VECTOR_EVENT);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
    while (!s_n_vps)
        guest_pause();
    uint32_t n = s_n_vps < MAX_VPS ? s_n_vps : MAX_VPS;
    for (uint32_t round = 0; round < ROUNDS; round++)
        for (uint32_t to = 0; to < n; to++)
            if (to != vp) {
                s_post(vp, to, round);
                s_signal(vp, to);
            }
    for (uint32_t to = 0; to < n; to++)
        if (to != vp)
            s_post(vp, to, STORM_DONE);
    guest_cli();
    while (s_done[vp] < n - 1) {
        guest_sti_hlt();
        guest_cli();
    }
    guest_sync(2, vp, s_in_order[vp], s_errors[vp], s_events_ok[vp]);
    guest_halt_forever();
}
