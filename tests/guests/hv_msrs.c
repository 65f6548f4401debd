/* Synthetic MSRs that must fault, and some that must not: each access is
 * made with a #GP handler that notes the fault and skips the 2-byte
 * rdmsr/wrmsr. */
#include "guest/guest.h"
#include "guest/hv.h"

static volatile uint32_t s_faults;

static void s_on_gp(struct guest_frame *frame)
{
    s_faults++;
    frame->rip += 2;
}

/* 1 when the access faulted, 0 when it did not. */
static uint32_t s_read_faults(uint32_t msr, uint64_t *value)
{
    uint32_t before = s_faults;
    *value = hv_rdmsr(msr);
    return s_faults - before;
}

static uint32_t s_write_faults(uint32_t msr, uint64_t value)
{
    uint32_t before = s_faults;
    hv_wrmsr(msr, value);
    return s_faults - before;
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_set_handler(13, s_on_gp);
    uint64_t v;
    uint32_t unknown = s_read_faults(0x400000ff, &v);
    uint32_t vp_index_ro = s_write_faults(HV_MSR_VP_INDEX, 5);
    uint32_t sversion_ro = s_write_faults(HV_MSR_SVERSION, 2);
    uint32_t low_vector = s_write_faults(HV_MSR_SINT0, 15); /* vectors start at 16 */
    guest_sync(1, unknown, vp_index_ro, sversion_ro, low_vector);

    uint64_t sversion, sint0, scontrol;
    uint32_t sversion_faults = s_read_faults(HV_MSR_SVERSION, &sversion);
    uint32_t sint_faults = s_read_faults(HV_MSR_SINT0, &sint0);
    uint32_t write_faults = s_write_faults(HV_MSR_SCONTROL, 1);
    uint32_t back_faults = s_read_faults(HV_MSR_SCONTROL, &scontrol);
    guest_sync(2, sversion_faults + sint_faults + write_faults + back_faults, (uint32_t)sversion,
               (uint32_t)(sint0 >> 16), (uint32_t)scontrol);
    guest_halt_forever();
}
