/* The monitor page and the reference counter. The guest tells the test
 * where its monitor page and a go flag are, waits for the go, then (go 1)
 * sets monitor id 3's bit twice, each time waiting until the synic has
 * taken it. Then two reference counter readings around a pause the test
 * times (ended by go 2). */
#include "guest/guest.h"
#include "guest/hv.h"

static uint8_t s_monitor[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_go;

static void s_wait_go(uint32_t value)
{
    while (s_go != value)
        guest_pause();
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_sync(1, (uint32_t)(uintptr_t)s_monitor, (uint32_t)(uintptr_t)&s_go);
    while (!s_go)
        guest_pause();
    /* Go 1: the monitor part first; go 3: only the reference counter. */
    volatile uint32_t *pending = (volatile uint32_t *)(s_monitor + 8); /* group 0 */
    for (int round = 0; s_go == 1 && round < 2; round++) {
        __atomic_or_fetch(pending, 1u << 3, __ATOMIC_SEQ_CST);
        while (*pending & (1u << 3))
            guest_pause();
    }
    uint64_t t0 = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    guest_sync(2, (uint32_t)t0, (uint32_t)(t0 >> 32));
    s_wait_go(2);
    uint64_t t1 = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    guest_sync(3, (uint32_t)t1, (uint32_t)(t1 >> 32));
    guest_halt_forever();
}
