/*
 * The guest of //bench:virtio_bench: virtio-blk at 0xd0000000 and
 * virtio-console at 0xd0001000 driven from a loop at CPL 3 that polls the
 * used rings (no interrupts), so that the emulated CPL 0 does not dominate.
 * Sector 0 of the disk holds n, the operations per phase (a 32-bit word);
 * phases 1 to 4 are guest/virtio_bench.h's, phase 5 n / 4 console writes
 * of 4 KiB, 8 in flight; each is timed with rdtsc and reported as
 * guest_sync(phase, cycles low, cycles high, operations, bytes each); then
 * it powers off.
 */
#include "guest/guest.h"
#include "guest/virtio.h"
#include "guest/virtio_bench.h"

/* bench/virtio_bench.c has the same numbers. */
#define BLK_BASE 0xd0000000ull
#define CON_BASE 0xd0001000ull
#define CON_DEPTH 8
#define AVAIL_NO_INTERRUPT 1

static guest_virtio_t s_blk, s_con;
static uint8_t s_line[4096];
static uint8_t s_user_stack[16384] __attribute__((aligned(16)));
static uint32_t s_n, s_failed;

static inline uint64_t s_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static void s_report(uint32_t phase, uint64_t cycles, uint32_t ops, uint32_t bytes)
{
    guest_sync(phase, (uint32_t)cycles, (uint32_t)(cycles >> 32), ops, bytes);
}

/* 4 KiB console writes, CON_DEPTH in flight. */
static void s_console(uint32_t ops)
{
    uint32_t issued = 0, done = 0, len;
    for (int i = 0; i < 4096; i++)
        s_line[i] = (uint8_t)('a' + i % 26);
    uint64_t t0 = s_rdtsc();
    for (; issued < CON_DEPTH && issued < ops; issued++) {
        guest_virtio_buf_t b = {.addr = (uint64_t)(uintptr_t)s_line, .len = 4096};
        guest_virtio_add(&s_con, 1, &b, 1);
    }
    guest_virtio_kick(&s_con, 1);
    while (done < ops) {
        if (guest_virtio_wait(&s_con, 1, &len) == GUEST_VIRTIO_NONE)
            break;
        done++;
        if (issued < ops) {
            guest_virtio_buf_t b = {.addr = (uint64_t)(uintptr_t)s_line, .len = 4096};
            guest_virtio_submit(&s_con, 1, &b, 1);
            issued++;
        }
    }
    s_report(5, s_rdtsc() - t0, ops, 4096);
}

static void s_measure(void *arg)
{
    (void)arg;
    virtio_bench_blk(&s_blk, s_n, s_report, &s_failed);
    s_console(s_n / 4);
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    int rc = guest_virtio_init(&s_blk, BLK_BASE, 2, 0, 1);
    if (!rc)
        rc = guest_virtio_init(&s_con, CON_BASE, 3, 0, 2) ? 10 : 0;
    if (rc) {
        guest_sync(99, (uint32_t)rc);
        guest_exit(1);
    }
    /* Polled: no interrupts wanted. */
    s_con.q[1].avail.flags = AVAIL_NO_INTERRUPT;
    s_n = virtio_bench_first_word(&s_blk);
    guest_run_user(s_measure, NULL, s_user_stack + sizeof s_user_stack);
    guest_sync(100, s_failed);
    guest_power_off();
}
