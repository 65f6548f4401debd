/* The Hyper-V interface from a guest: CPUID, the VP index and reference
 * counter MSRs, a hypercall page and its calls. Reports each finding. */
#include "guest/guest.h"
#include "guest/hv.h"

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));

static void s_cpuid(uint32_t leaf, uint32_t regs[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3])
                     : "a"(leaf), "c"(0));
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    uint32_t r[4];
    s_cpuid(0x40000000, r);
    guest_sync(1, r[1], r[2], r[3]); /* "Micr" "osof" "t Hv" */
    s_cpuid(0x40000003, r);
    guest_sync(2, r[0], r[1], r[3]); /* privileges and features */

    guest_sync(3, (uint32_t)hv_rdmsr(HV_MSR_VP_INDEX));
    hv_wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull);
    uint64_t t0 = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    for (volatile int i = 0; i < 100; i++)
        ;
    uint64_t t1 = hv_rdmsr(HV_MSR_TIME_REF_COUNT);
    guest_sync(4, (uint32_t)(hv_rdmsr(HV_MSR_GUEST_OS_ID) >> 32), t1 > t0);

    hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);
    guest_sync(5, s_hypercall_page[0], s_hypercall_page[1], s_hypercall_page[2]);
    /* HvSignalEvent, fast, to connection 7 flag 3; then an unknown call. */
    uint64_t signal = hv_hypercall(s_hypercall_page, HV_CALL_SIGNAL_EVENT | HV_CALL_FAST,
                                   7 | 3ull << 32, 0);
    uint64_t unknown = hv_hypercall(s_hypercall_page, 0x7777, 0, 0);
    guest_sync(6, (uint32_t)signal, (uint32_t)unknown);
    guest_halt_forever();
}
