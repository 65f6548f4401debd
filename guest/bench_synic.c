/*
 * The synic_bench guest (bench/synic_bench.c): measures with rdtsc at CPL 0
 * what reaching it costs through the SynIC, and through a bare MSI, and
 * reports the cycles as sync points {part, cycles low, cycles high}.
 *
 * VP 0 reads the iterations n and the parts to run (a bit each) from the
 * benchmark's ports, enables the SynIC as the TLFS describes when a part
 * needs it, and runs each part asked for:
 *   1. messages: asks the bench actor for n messages on SINT 2 (a port
 *      write) and takes them in its handler (reads the slot, frees it,
 *      writes EOM): the cycles from the ask until the last one arrived;
 *   2. event signals: n rounds of an HvSignalEvent (fast, through the
 *      hypercall page) to the bench actor's connection, which signals a
 *      guest event port back to SINT 3: the sum of the cycles from just
 *      before the hypercall until the SINT's handler runs;
 *   3. MSIs: n rounds of a port write asking for an MSI (the test device's
 *      ABI; the benchmark's bare KVM harness sends it with KVM_SIGNAL_MSI
 *      as it answers the exit): the sum of the cycles from just before the
 *      write until the handler runs;
 *   4. MSR reads: n reads of SCONTROL, a synthetic MSR that exits to user
 *      space: the cycles of all n.
 * Each is preceded by a warm-up of n / 10 + 1. Then it powers off; other
 * VPs halt. Rounds of 2 and 3 wait the same way (interrupts off, then sti;
 * hlt until the handler has run) and take the same handler, so that what
 * differs is the path the interrupt comes by. Instructions at CPL 0 are
 * emulated on some hosts (about 1 us each): the loops are kept short.
 */
#include "guest/guest.h"
#include "guest/hv.h"

/* The benchmark's ports and numbers: bench/synic_bench.c has the same. */
#define BENCH_PORT_CONFIG 0x5d0 /* inl: n, the iterations per timed part */
#define BENCH_PORT_POST 0x5d4   /* outl: the bench actor posts that many messages */
#define BENCH_PORT_PARTS 0x5d8  /* inl: bit part - 1 set for each part to run */
#define BENCH_PART_MESSAGES 1
#define BENCH_PART_EVENT 2
#define BENCH_PART_MSI 3
#define BENCH_PART_MSR 4
#define BENCH_SINT_MESSAGE 2
#define BENCH_SINT_EVENT 3
#define BENCH_VECTOR_MESSAGE 0x50
#define BENCH_VECTOR_EVENT 0x51
#define BENCH_VECTOR_MSI 0x52
#define BENCH_CONNECTION 0x5b /* the bench actor's host event port */
#define BENCH_FLAG 9          /* the flag of its guest event port */

#define HV_GUEST_OS_ID 0x8100000000000000ull /* an open-source OS, as Linux's */

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static uint8_t s_simp[4096] __attribute__((aligned(4096)));
static uint8_t s_siefp[4096] __attribute__((aligned(4096)));

static volatile uint32_t s_messages; /* taken since the batch was asked for */
static volatile uint64_t s_signalled; /* the TSC when the handler ran; 0: not yet */

static inline uint64_t s_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static void s_on_signal(struct guest_frame *frame)
{
    (void)frame;
    s_signalled = s_rdtsc();
    guest_apic_eoi();
}

/* EOM unconditionally, not only when the slot's pending flag is set: the
 * benchmark keeps the queue full, so the flag is nearly always set, and
 * testing it correctly would need a full barrier between freeing the slot
 * and reading the flag. */
static void s_on_message(struct guest_frame *frame)
{
    (void)frame;
    volatile struct hv_message *slot =
        (volatile struct hv_message *)(s_simp + BENCH_SINT_MESSAGE * 256);
    if (slot->type)
        s_messages++;
    slot->type = 0;
    hv_wrmsr(HV_MSR_EOM, 0);
    guest_apic_eoi();
}

static void s_synic_enable(void)
{
    hv_wrmsr(HV_MSR_GUEST_OS_ID, HV_GUEST_OS_ID);
    hv_wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)s_hypercall_page | 1);
    hv_wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)s_simp | 1);
    hv_wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)s_siefp | 1);
    hv_wrmsr(HV_MSR_SINT0 + BENCH_SINT_MESSAGE, BENCH_VECTOR_MESSAGE);
    hv_wrmsr(HV_MSR_SINT0 + BENCH_SINT_EVENT, BENCH_VECTOR_EVENT);
    hv_wrmsr(HV_MSR_SCONTROL, 1);
}

/* Cycles from asking for n messages until all n were taken. */
static uint64_t s_messages_batch(uint32_t n)
{
    s_messages = 0;
    uint64_t t0 = s_rdtsc();
    outl(BENCH_PORT_POST, n);
    while (s_messages < n) {
        guest_sti_hlt();
        guest_cli();
    }
    return s_rdtsc() - t0;
}

/* The summed cycles of n rounds: trigger, then wait for the handler. An
 * event round clears its flag in the SIEF page for the next one (a locked
 * and, as the synic may set other flags of the byte meanwhile). */
static uint64_t s_rounds(uint32_t n, int event)
{
    volatile uint8_t *flags = s_siefp + BENCH_SINT_EVENT * 256 + BENCH_FLAG / 8;
    const uint64_t signal = BENCH_CONNECTION | (uint64_t)BENCH_FLAG << 32;
    uint64_t sum = 0, status = 0;
    for (uint32_t i = 0; i < n; i++) {
        s_signalled = 0;
        uint64_t t0 = s_rdtsc();
        if (event)
            status |= hv_hypercall(s_hypercall_page, HV_CALL_SIGNAL_EVENT | HV_CALL_FAST,
                                   signal, 0);
        else
            outl(TESTDEV_PORT_MSI, BENCH_VECTOR_MSI); /* to APIC id 0 */
        while (!s_signalled) {
            guest_sti_hlt();
            guest_cli();
        }
        sum += s_signalled - t0;
        if (event)
            __atomic_and_fetch(flags, (uint8_t)~(1u << BENCH_FLAG % 8), __ATOMIC_SEQ_CST);
    }
    GUEST_ASSERT((status & 0xffff) == HV_STATUS_SUCCESS);
    return sum;
}

/* The cycles of n reads of SCONTROL. */
static uint64_t s_msr_reads(uint32_t n)
{
    uint64_t t0 = s_rdtsc();
    for (uint32_t i = 0; i < n; i++)
        (void)hv_rdmsr(HV_MSR_SCONTROL);
    return s_rdtsc() - t0;
}

static void s_report(uint32_t part, uint64_t cycles)
{
    guest_sync(part, (uint32_t)cycles, (uint32_t)(cycles >> 32));
}

static int s_asked(uint32_t parts, uint32_t part)
{
    return parts & 1u << (part - 1);
}

void guest_main(uint32_t vp)
{
    if (vp != 0)
        guest_halt_forever();
    uint32_t n = inl(BENCH_PORT_CONFIG);
    GUEST_ASSERT(n > 0 && n != UINT32_MAX);
    uint32_t parts = inl(BENCH_PORT_PARTS);
    uint32_t warm_up = n / 10 + 1;
    guest_set_handler(BENCH_VECTOR_MESSAGE, s_on_message);
    guest_set_handler(BENCH_VECTOR_EVENT, s_on_signal);
    guest_set_handler(BENCH_VECTOR_MSI, s_on_signal);
    guest_apic_enable();
    if (s_asked(parts, BENCH_PART_MESSAGES) || s_asked(parts, BENCH_PART_EVENT))
        s_synic_enable();
    if (s_asked(parts, BENCH_PART_MESSAGES)) {
        s_messages_batch(warm_up);
        s_report(BENCH_PART_MESSAGES, s_messages_batch(n));
    }
    if (s_asked(parts, BENCH_PART_EVENT)) {
        s_rounds(warm_up, 1);
        s_report(BENCH_PART_EVENT, s_rounds(n, 1));
    }
    if (s_asked(parts, BENCH_PART_MSI)) {
        s_rounds(warm_up, 0);
        s_report(BENCH_PART_MSI, s_rounds(n, 0));
    }
    if (s_asked(parts, BENCH_PART_MSR)) {
        s_msr_reads(warm_up);
        s_report(BENCH_PART_MSR, s_msr_reads(n));
    }
    guest_power_off();
}
