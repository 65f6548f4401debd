/*
 * Hyper-V for test guests, as the TLFS describes it: the synthetic MSRs,
 * the hypercall page, and the SynIC's message and event flag pages. Plain
 * constants and inline helpers for CPL 0 code.
 */
#ifndef VMM_GUEST_HV_H
#define VMM_GUEST_HV_H

#include <stdint.h>

#define HV_MSR_GUEST_OS_ID 0x40000000u
#define HV_MSR_HYPERCALL 0x40000001u
#define HV_MSR_VP_INDEX 0x40000002u
#define HV_MSR_TIME_REF_COUNT 0x40000020u
#define HV_MSR_REFERENCE_TSC 0x40000021u
#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SVERSION 0x40000081u
#define HV_MSR_SIEFP 0x40000082u
#define HV_MSR_SIMP 0x40000083u
#define HV_MSR_EOM 0x40000084u
#define HV_MSR_SINT0 0x40000090u
#define HV_MSR_STIMER0_CONFIG 0x400000b0u
#define HV_MSR_STIMER0_COUNT 0x400000b1u

#define HV_SINT_MASKED (1ull << 16)

#define HV_CALL_POST_MESSAGE 0x005cu
#define HV_CALL_SIGNAL_EVENT 0x005du
#define HV_CALL_FAST (1ull << 16)

#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INVALID_CONNECTION_ID 0x12

/* One message slot of the SIMP page (HV_MESSAGE). */
struct hv_message {
    uint32_t type;
    uint8_t payload_size;
    uint8_t flags; /* bit 0: another message is pending */
    uint16_t reserved;
    uint64_t origin;
    uint64_t payload[30];
};

static inline uint64_t hv_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void hv_wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
                     : "memory");
}

/* A call through the hypercall page (x64 convention: RCX control, RDX and
 * R8 the inputs; RAX the result). */
static inline uint64_t hv_hypercall(void *page, uint64_t control, uint64_t input,
                                    uint64_t output)
{
    uint64_t result;
    register uint64_t r8 __asm__("r8") = output;
    __asm__ volatile("call *%[page]"
                     : "=a"(result), "+c"(control), "+d"(input), "+r"(r8)
                     : [page] "r"(page)
                     : "cc", "memory", "r9", "r10", "r11");
    return result;
}

#endif
