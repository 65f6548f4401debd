/*
 * The guest of //bench:virtio_bench: virtio-blk at 0xd0000000 and
 * virtio-console at 0xd0001000 driven from a loop at CPL 3 that polls the
 * used rings (no interrupts), so that the emulated CPL 0 does not dominate.
 * Sector 0 of the disk holds n, the operations per phase (a 32-bit word);
 * each phase is timed with rdtsc and reported as guest_sync(phase, cycles
 * low, cycles high, operations, bytes each); then it powers off.
 *
 *   1  4 KiB reads at random 4 KiB offsets, one in flight     n
 *   2  the same, 32 in flight                                 n
 *   3  64 KiB sequential reads, one in flight                 n / 4
 *   4  64 KiB sequential writes, one in flight (from 1 MiB)   n / 4
 *   5  4 KiB console writes, 8 in flight                      n / 4
 *
 * Offsets stay below 32 MiB: the benchmark's image is at least that.
 */
#include "guest/guest.h"
#include "guest/virtio.h"

/* bench/virtio_bench.c has the same numbers. */
#define BLK_BASE 0xd0000000ull
#define CON_BASE 0xd0001000ull
#define SPAN (32u << 20)
#define DEPTH 32
#define CON_DEPTH 8
#define T_IN 0
#define T_OUT 1
#define AVAIL_NO_INTERRUPT 1

static guest_virtio_t s_blk, s_con;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} s_hdr[DEPTH];
static volatile uint8_t s_status[DEPTH];
static uint8_t s_small[DEPTH][4096] __attribute__((aligned(4096)));
static uint8_t s_big[65536] __attribute__((aligned(4096)));
static uint8_t s_user_stack[16384] __attribute__((aligned(16)));
static uint32_t s_n, s_failed;
/* The slot of the request whose chain starts at each descriptor. */
static uint8_t s_slot_of[GUEST_VIRTIO_QSIZE];

static inline uint64_t s_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static guest_virtio_buf_t s_buf(const volatile void *p, uint32_t len, bool write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

/* Adds request slot (no kick). */
static void s_add(int slot, uint32_t type, uint64_t offset, void *data, uint32_t len)
{
    s_hdr[slot].type = type;
    s_hdr[slot].sector = offset / 512;
    guest_virtio_buf_t b[3] = {s_buf(&s_hdr[slot], 16, false),
                               s_buf(data, len, type == T_IN), s_buf(&s_status[slot], 1, true)};
    s_slot_of[guest_virtio_add(&s_blk, 0, b, 3)] = (uint8_t)slot;
}

/* The next used request's slot, or -1 when none came. */
static int s_reap(void)
{
    uint32_t len;
    uint16_t head = guest_virtio_wait(&s_blk, 0, &len);
    if (head == GUEST_VIRTIO_NONE)
        return -1;
    int slot = s_slot_of[head % GUEST_VIRTIO_QSIZE];
    s_failed += s_status[slot] != 0;
    return slot;
}

static uint32_t s_random(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static void s_report(uint32_t phase, uint64_t cycles, uint32_t ops, uint32_t bytes)
{
    guest_sync(phase, (uint32_t)cycles, (uint32_t)(cycles >> 32), ops, bytes);
}

/* Requests of one size one after another: phase 1, 3 or 4. */
static void s_one_at_a_time(uint32_t phase, uint32_t type, uint32_t size, uint32_t ops,
                            bool random)
{
    uint32_t x = 12345;
    uint64_t base = type == T_OUT ? 1u << 20 : 0;
    void *data = size == 4096 ? (void *)s_small[0] : (void *)s_big;
    uint64_t t0 = s_rdtsc();
    for (uint32_t i = 0; i < ops; i++) {
        uint64_t off = random ? (uint64_t)(s_random(&x) % (SPAN / size)) * size
                              : base + (uint64_t)i * size % (SPAN - base);
        s_add(0, type, off, data, size);
        guest_virtio_kick(&s_blk, 0);
        if (s_reap() < 0)
            break;
    }
    s_report(phase, s_rdtsc() - t0, ops, size);
}

/* 4 KiB random reads, DEPTH in flight: as each batch is used, as many are
 * made again with one kick. */
static void s_deep(uint32_t ops)
{
    uint32_t x = 777, issued = 0, done = 0;
    uint64_t t0 = s_rdtsc();
    for (int slot = 0; slot < DEPTH && issued < ops; slot++, issued++)
        s_add(slot, T_IN, (uint64_t)(s_random(&x) % (SPAN / 4096)) * 4096, s_small[slot], 4096);
    guest_virtio_kick(&s_blk, 0);
    while (done < ops) {
        int slot = s_reap();
        if (slot < 0)
            break;
        done++;
        int again = 0;
        for (;;) {
            if (issued < ops) {
                s_add(slot, T_IN, (uint64_t)(s_random(&x) % (SPAN / 4096)) * 4096,
                      s_small[slot], 4096);
                issued++;
                again++;
            }
            if (*(volatile uint16_t *)&s_blk.q[0].used.idx == s_blk.q[0].last_used)
                break;
            if ((slot = s_reap()) < 0)
                break;
            done++;
        }
        if (again)
            guest_virtio_kick(&s_blk, 0);
    }
    s_report(2, s_rdtsc() - t0, ops, 4096);
}

/* 4 KiB console writes, CON_DEPTH in flight. */
static void s_console(uint32_t ops)
{
    uint32_t issued = 0, done = 0, len;
    for (int i = 0; i < 4096; i++)
        s_small[0][i] = (uint8_t)('a' + i % 26);
    uint64_t t0 = s_rdtsc();
    for (; issued < CON_DEPTH && issued < ops; issued++) {
        guest_virtio_buf_t b = s_buf(s_small[0], 4096, false);
        guest_virtio_add(&s_con, 1, &b, 1);
    }
    guest_virtio_kick(&s_con, 1);
    while (done < ops) {
        if (guest_virtio_wait(&s_con, 1, &len) == GUEST_VIRTIO_NONE)
            break;
        done++;
        if (issued < ops) {
            guest_virtio_buf_t b = s_buf(s_small[0], 4096, false);
            guest_virtio_submit(&s_con, 1, &b, 1);
            issued++;
        }
    }
    s_report(5, s_rdtsc() - t0, ops, 4096);
}

static void s_measure(void *arg)
{
    (void)arg;
    uint32_t n = s_n;
    s_one_at_a_time(1, T_IN, 4096, n, true);
    s_deep(n);
    s_one_at_a_time(3, T_IN, 65536, n / 4, false);
    s_one_at_a_time(4, T_OUT, 65536, n / 4, false);
    s_console(n / 4);
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
    s_blk.q[0].avail.flags = AVAIL_NO_INTERRUPT;
    s_con.q[1].avail.flags = AVAIL_NO_INTERRUPT;
    s_add(0, T_IN, 0, s_small[0], 4096);
    guest_virtio_kick(&s_blk, 0);
    s_reap();
    s_n = *(volatile uint32_t *)s_small[0];
    guest_run_user(s_measure, NULL, s_user_stack + sizeof s_user_stack);
    guest_sync(100, s_failed);
    guest_power_off();
}
