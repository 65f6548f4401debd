/* Reads the SynIC's version MSR forever, on every VP: each read is a call
 * from the VP to its synic actor, so the VP is nearly always in one. Sync
 * point 1 comes after each VP's first read. */
#include "guest/guest.h"
#include "guest/hv.h"

void guest_main(uint32_t vp)
{
    (void)vp;
    (void)hv_rdmsr(HV_MSR_SVERSION);
    guest_sync(1);
    for (;;)
        (void)hv_rdmsr(HV_MSR_SVERSION);
}
