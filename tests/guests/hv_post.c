/* HvPostMessage from a guest: to a host message port, to a connection
 * nobody registered, and with a payload over 240 bytes; reports each
 * status. The input page holds connection id, reserved, type, size and
 * the payload (TLFS HV_INPUT_POST_MESSAGE). */
#include "guest/guest.h"
#include "guest/hv.h"

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static uint8_t s_input[4096] __attribute__((aligned(4096)));

static uint32_t s_post(uint32_t connection, uint32_t size)
{
    volatile uint32_t *in = (volatile uint32_t *)s_input;
    in[0] = connection;
    in[1] = 0;
    in[2] = 1; /* the message type */
    in[3] = size;
    s_input[16] = 'p', s_input[17] = 'i', s_input[18] = 'n', s_input[19] = 'g';
    return (uint32_t)hv_hypercall(s_hypercall_page, HV_CALL_POST_MESSAGE,
                                  (uint64_t)(uintptr_t)s_input, 0);
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    hv_wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull);
    hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);
    guest_sync(1, s_post(8, 4), s_post(99, 4), s_post(8, 241));
    guest_halt_forever();
}
