/*
 * The vm_bench guest (bench/vm_bench.c): times, with rdtsc at CPL 0, loops
 * of one guest-visible operation each and reports the cycles of every loop
 * as a sync point. The same image runs under the benchmark's bare KVM_RUN
 * loop and under the actor VMM, so the loops' own (emulated) instructions
 * cost the same on both sides.
 *
 * VP 0 reads the iterations per loop from the benchmark device, then for
 * each mode runs a warm-up loop and a timed one, and reports
 * guest_sync(mode, cycles low, cycles high); then it powers off. Other VPs
 * halt.
 */
#include "guest/guest.h"

/* The benchmark's ports, address and modes: bench/vm_bench.c has the same
 * numbers. */
#define BENCH_PORT_CONFIG 0x5d0 /* inl: the iterations per timed loop */
#define BENCH_PORT_WRITE 0x5d4  /* outl: a write the device acknowledges */
#define BENCH_PORT_POSTED 0x5d8 /* outl: a write sent one-way */
#define BENCH_DOORBELL 0xd0000000ul /* MMIO gap, uncached, an ioeventfd */

#define BENCH_MODE_WRITE 1
#define BENCH_MODE_DOORBELL 2
#define BENCH_MODE_POSTED 3

static inline uint64_t s_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

/* Cycles for n (> 0) operations of the mode. The loops are asm so that
 * they are three instructions whatever the compiler does. */
static uint64_t s_time(uint32_t mode, uint32_t n)
{
    uint64_t t0 = s_rdtsc();
    if (mode == BENCH_MODE_DOORBELL)
        __asm__ volatile("1: movl %%eax, (%%rdi)\n\t"
                         "dec %%ecx\n\t"
                         "jnz 1b"
                         : "+c"(n)
                         : "a"(0), "D"(BENCH_DOORBELL)
                         : "memory", "cc");
    else
        __asm__ volatile("1: outl %%eax, %%dx\n\t"
                         "dec %%ecx\n\t"
                         "jnz 1b"
                         : "+c"(n)
                         : "a"(0),
                           "d"(mode == BENCH_MODE_WRITE ? BENCH_PORT_WRITE : BENCH_PORT_POSTED)
                         : "memory", "cc");
    return s_rdtsc() - t0;
}

void guest_main(uint32_t vp)
{
    if (vp != 0)
        guest_halt_forever();
    uint32_t n = inl(BENCH_PORT_CONFIG);
    GUEST_ASSERT(n > 0 && n != UINT32_MAX);
    /* Posted writes last: those still on their way when their loop ends
     * must not be handled during another mode's loop. */
    static const uint32_t modes[] = {BENCH_MODE_WRITE, BENCH_MODE_DOORBELL, BENCH_MODE_POSTED};
    for (unsigned i = 0; i < sizeof modes / sizeof *modes; i++) {
        s_time(modes[i], n / 10 + 1);
        uint64_t cycles = s_time(modes[i], n);
        guest_sync(modes[i], (uint32_t)cycles, (uint32_t)(cycles >> 32));
    }
    /* The benchmark ends at the power off: no done call (vmm/vm.c's
     * vm_next_event() copies a call's arguments from a NULL array when it
     * has none, which UBSan stops). */
    guest_power_off();
}
