/*
 * What a guest gives the synic, and what devices do beside it: synthetic
 * MSR writes and reads of any value, hypercalls with any control word and
 * input page, guest RAM written anywhere (the SIMP, SIEFP, monitor and
 * hypercall input pages included), messages posted, guest event ports
 * made, signalled and dropped, monitors registered and the monitor page
 * set. The synic runs in its actor behind a fake partition
 * (actors/synic/testing), a new one for each input; it must answer every
 * request and still answer a read of VP_INDEX at the end.
 *
 * Input: steps of [op][vp][9 bytes][n][n bytes]; the 9 bytes are an MSR
 * or control word and a value or address, n bytes are RAM or a payload.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/synic/synic_tlfs.h"
#include "actors/synic/testing/synic_harness.h"

#define S_VPS 2
#define S_MAX_STEPS 64

static const uint32_t s_msrs[] = {
    SYNIC_MSR_GUEST_OS_ID,     SYNIC_MSR_HYPERCALL,       SYNIC_MSR_VP_INDEX,
    SYNIC_MSR_TIME_REF_COUNT,  SYNIC_MSR_REFERENCE_TSC,   SYNIC_MSR_SCONTROL,
    SYNIC_MSR_SVERSION,        SYNIC_MSR_SIEFP,           SYNIC_MSR_SIMP,
    SYNIC_MSR_EOM,             SYNIC_MSR_SINT0,           SYNIC_MSR_SINT0 + 2,
    SYNIC_MSR_SINT0 + 15,      SYNIC_MSR_STIMER0_CONFIG,  SYNIC_MSR_STIMER0_COUNT,
    SYNIC_MSR_STIMER0_CONFIG + 6,
};

static uint64_t s_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_t *h = harness_start(S_VPS, 4);
    if (!h)
        abort();
    uint64_t ports[8] = {0}, monitors[4] = {0};
    size_t n_ports = 0, n_monitors = 0;
    int steps = 0;
    for (size_t at = 0; at + 12 <= size && steps < S_MAX_STEPS; steps++) {
        uint8_t op = data[at] % 10, which = data[at + 2];
        uint32_t vp = data[at + 1] % S_VPS;
        uint64_t value = s_u64(data + at + 3);
        size_t n = data[at + 11];
        at += 12;
        if (n > size - at)
            n = size - at;
        const uint8_t *bytes = data + at;
        at += n;
        uint32_t msr = which & 0x80 ? SYNIC_MSR_FIRST + which : s_msrs[which % 16];
        uint64_t out;
        switch (op) {
        case 0:
            harness_wrmsr(h, vp, msr, value);
            break;
        case 1:
            harness_rdmsr(h, vp, msr, &out);
            break;
        case 2: /* the input page's address in the bytes, if any */
            harness_hypercall(h, vp, value, n >= 8 ? s_u64(bytes) : 0x20000, &out);
            break;
        case 3: /* guest RAM, inside it (which picks the page) */
            fake_partition_write(h->partition, ((uint64_t)which << 12) + (value & 0xfff) % 4096,
                                 bytes, n);
            break;
        case 4:
            harness_post(h, h->device, vp, which % 16, (uint32_t)value, bytes, n);
            break;
        case 5:
            if (n_ports < 8 &&
                !harness_new_guest_port(h, h->device, vp, which % 16, (uint32_t)value % 4096,
                                        &ports[n_ports]))
                n_ports++;
            break;
        case 6:
            if (n_ports)
                harness_signal_guest_port(h, which & 1 ? h->stranger : h->device,
                                          ports[which % n_ports]);
            break;
        case 7:
            if (n_ports)
                harness_retarget_guest_port(h, h->device, ports[which % n_ports], vp,
                                            (int)(value % 17) - 1);
            break;
        case 8:
            if (n_monitors < 4 &&
                !harness_register_monitor(h, h->device, which, (uint32_t)value,
                                          &monitors[n_monitors]))
                n_monitors++;
            break;
        default:
            harness_set_monitor_page(h, h->device, which & 1, value % (HARNESS_RAM_SIZE + 8192));
            break;
        }
    }
    uint64_t index = ~0ull;
    if (harness_rdmsr(h, 1, SYNIC_MSR_VP_INDEX, &index) || index != 1)
        abort(); /* the synic no longer answers, or answers wrong */
    harness_destroy(&h);
    return 0;
}
