/* Two VPs, one of them stuck behind a slow device: VP 0 reads the probe (a
 * device host makes each access take 300 ms) until VP 1 is done, then
 * reports how many reads it made. VP 1, once VP 0 is reading, waits for the
 * MSI the test requests, then goes ROUNDS times through the synic (an MSR
 * read and a hypercall) and the test device, reporting each round.
 * tests/devhost_paths_test.c has the same numbers. */
#include "guest/guest.h"
#include "guest/hv.h"

#define PROBE 0xd0002000ul
#define VECTOR_MSI 0x46
#define ROUNDS 20
#define NOBODYS_CONNECTION 99

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static volatile uint32_t s_reading, s_done, s_msis;

static void s_on_msi(struct guest_frame *frame)
{
    (void)frame;
    s_msis++;
    guest_apic_eoi();
}

static void s_vp0(void)
{
    guest_sync(1);
    s_reading = 1;
    uint32_t reads = 0;
    while (!s_done) {
        (void)*(volatile uint32_t *)PROBE;
        reads++;
    }
    guest_sync(3, reads);
}

static void s_vp1(void)
{
    guest_set_handler(VECTOR_MSI, s_on_msi);
    guest_apic_enable();
    hv_wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull);
    hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);
    while (!s_reading)
        guest_pause();
    guest_sync(1);
    while (!s_msis)
        guest_sti_hlt();
    guest_cli();
    for (uint32_t round = 1; round <= ROUNDS; round++) {
        uint32_t index = (uint32_t)hv_rdmsr(HV_MSR_VP_INDEX);
        uint32_t status = (uint32_t)hv_hypercall(
            s_hypercall_page, HV_CALL_SIGNAL_EVENT | HV_CALL_FAST, NOBODYS_CONNECTION, 0);
        guest_sync(2, round, index, status, s_msis);
    }
    s_done = 1;
}

void guest_main(uint32_t vp)
{
    if (vp == 0)
        s_vp0();
    else if (vp == 1)
        s_vp1();
    guest_halt_forever();
}
