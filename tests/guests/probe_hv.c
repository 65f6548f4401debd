/* VP 0 and the probe, a device in a device host, meet through the SynIC:
 * the guest signals connection 7 with flag 3 (HvSignalEvent) and posts
 * "ping" to connection 8 (HvPostMessage), ports the probe registered, and
 * reports both statuses; then has the probe signal its guest event port
 * (SINT 3, flag 5) and post a message carrying the scratch register to
 * SINT 2, and reports what arrived. tests/devhost_paths_test.c has the
 * same numbers. */
#include "guest/guest.h"
#include "guest/hv.h"

#define PROBE 0xd0002000ul
#define PROBE_SCRATCH PROBE
#define PROBE_COMMAND (PROBE + 0x8)
#define PROBE_CMD_EVENT 2
#define PROBE_CMD_MESSAGE 3
#define VECTOR_MESSAGE 0x50
#define VECTOR_EVENT 0x51

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static uint8_t s_input[4096] __attribute__((aligned(4096)));
static uint8_t s_simp[4096] __attribute__((aligned(4096)));
static uint8_t s_siefp[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_vector;

static void s_on_sint(struct guest_frame *frame)
{
    s_vector = (uint32_t)frame->vector;
    guest_apic_eoi();
}

/* Has the probe run a command and returns the vector of the SINT it
 * raised. */
static uint32_t s_command(uint32_t command)
{
    *(volatile uint32_t *)PROBE_COMMAND = command;
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
    guest_set_handler(VECTOR_MESSAGE, s_on_sint);
    guest_set_handler(VECTOR_EVENT, s_on_sint);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp | 1);
    hv_wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)s_siefp | 1);
    hv_wrmsr(HV_MSR_SINT0 + 2, VECTOR_MESSAGE);
    hv_wrmsr(HV_MSR_SINT0 + 3, VECTOR_EVENT);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
    hv_wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull);
    hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);

    uint64_t signal = hv_hypercall(s_hypercall_page, HV_CALL_SIGNAL_EVENT | HV_CALL_FAST,
                                   7 | 3ull << 32, 0);
    volatile uint32_t *in = (volatile uint32_t *)s_input;
    in[0] = 8; /* connection id, reserved, message type, payload size */
    in[1] = 0;
    in[2] = 1;
    in[3] = 4;
    s_input[16] = 'p', s_input[17] = 'i', s_input[18] = 'n', s_input[19] = 'g';
    uint64_t post = hv_hypercall(s_hypercall_page, HV_CALL_POST_MESSAGE,
                                 (uint64_t)(uintptr_t)s_input, 0);
    guest_sync(1, (uint32_t)signal, (uint32_t)post);

    uint32_t vector = s_command(PROBE_CMD_EVENT);
    guest_sync(2, vector, ((volatile uint32_t *)(s_siefp + 3 * 256))[0]);

    *(volatile uint64_t *)PROBE_SCRATCH = 0xfeedface;
    vector = s_command(PROBE_CMD_MESSAGE);
    volatile struct hv_message *slot = (volatile struct hv_message *)(s_simp + 2 * 256);
    guest_sync(3, vector, slot->type, slot->payload_size, (uint32_t)slot->payload[0]);
    guest_halt_forever();
}
