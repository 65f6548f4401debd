/* Reads the SynIC's version MSR forever: each read is a call from the VP
 * to the synic, on the partition's thread, so the VP is nearly always
 * waiting on it. Sync point 1 comes after the first read. */
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
