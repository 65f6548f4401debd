#include "guest/virtio_bench.h"

#define DEPTH 32
#define T_IN 0
#define T_OUT 1
#define AVAIL_NO_INTERRUPT 1

static struct {
    uint32_t type, reserved;
    uint64_t sector;
} s_hdr[DEPTH];
static volatile uint8_t s_status[DEPTH];
static uint8_t s_small[DEPTH][4096] __attribute__((aligned(4096)));
static uint8_t s_big[65536] __attribute__((aligned(4096)));
/* The slot of the request whose chain starts at each descriptor. */
static uint8_t s_slot_of[GUEST_VIRTIO_QSIZE];
static guest_virtio_t *s_blk;
static uint32_t *s_failed;

static inline uint64_t s_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static guest_virtio_buf_t s_buf(const volatile void *p, uint32_t len, int write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

/* Adds request slot (no kick). */
static void s_add(int slot, uint32_t type, uint64_t offset, void *data, uint32_t len)
{
    s_hdr[slot].type = type;
    s_hdr[slot].sector = offset / 512;
    s_status[slot] = 0xff;
    guest_virtio_buf_t b[3] = {s_buf(&s_hdr[slot], 16, 0), s_buf(data, len, type == T_IN),
                               s_buf(&s_status[slot], 1, 1)};
    s_slot_of[guest_virtio_add(s_blk, 0, b, 3)] = (uint8_t)slot;
}

/* The next used request's slot, or -1 when none came. */
static int s_reap(void)
{
    uint32_t len;
    uint16_t head = guest_virtio_wait(s_blk, 0, &len);
    if (head == GUEST_VIRTIO_NONE) {
        (*s_failed)++;
        return -1;
    }
    int slot = s_slot_of[head % GUEST_VIRTIO_QSIZE];
    *s_failed += s_status[slot] != 0;
    return slot;
}

/* A 32-bit LCG: the next random number below 2^24. */
static uint32_t s_random(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static void s_one_at_a_time(virtio_bench_report_fn report, uint32_t phase, uint32_t type,
                            uint32_t size, uint32_t ops, int random)
{
    uint32_t x = 12345;
    uint32_t base = type == T_OUT ? 1u << 20 : 0;
    void *data = size == 4096 ? (void *)s_small[0] : (void *)s_big;
    uint64_t t0 = s_rdtsc();
    for (uint32_t i = 0; i < ops; i++) {
        uint32_t off = random ? s_random(&x) % (VIRTIO_BENCH_SPAN / size) * size
                              : base + i * size % (VIRTIO_BENCH_SPAN - base);
        s_add(0, type, off, data, size);
        guest_virtio_kick(s_blk, 0);
        if (s_reap() < 0)
            break;
    }
    report(phase, s_rdtsc() - t0, ops, size);
}

/* DEPTH in flight: as each batch is used, as many are made again with one
 * kick. */
static void s_deep(virtio_bench_report_fn report, uint32_t ops)
{
    uint32_t x = 777, issued = 0, done = 0;
    const uint32_t blocks = VIRTIO_BENCH_SPAN / 4096;
    uint64_t t0 = s_rdtsc();
    for (int slot = 0; slot < DEPTH && issued < ops; slot++, issued++)
        s_add(slot, T_IN, (uint64_t)(s_random(&x) % blocks) * 4096, s_small[slot], 4096);
    guest_virtio_kick(s_blk, 0);
    while (done < ops) {
        int slot = s_reap();
        if (slot < 0)
            break;
        done++;
        int again = 0;
        for (;;) {
            if (issued < ops) {
                s_add(slot, T_IN, (uint64_t)(s_random(&x) % blocks) * 4096, s_small[slot],
                      4096);
                issued++;
                again++;
            }
            if (*(volatile uint16_t *)&s_blk->q[0].used.idx == s_blk->q[0].last_used)
                break;
            if ((slot = s_reap()) < 0)
                break;
            done++;
        }
        if (again)
            guest_virtio_kick(s_blk, 0);
    }
    report(2, s_rdtsc() - t0, ops, 4096);
}

uint32_t virtio_bench_first_word(guest_virtio_t *blk)
{
    uint32_t failed = 0;
    s_blk = blk;
    s_failed = &failed;
    blk->q[0].avail.flags = AVAIL_NO_INTERRUPT;
    s_add(0, T_IN, 0, s_small[0], 4096);
    guest_virtio_kick(blk, 0);
    return s_reap() < 0 ? 0 : *(volatile uint32_t *)s_small[0];
}

void virtio_bench_blk(guest_virtio_t *blk, uint32_t n, virtio_bench_report_fn report,
                      uint32_t *failed)
{
    s_blk = blk;
    s_failed = failed;
    blk->q[0].avail.flags = AVAIL_NO_INTERRUPT;
    s_one_at_a_time(report, 1, T_IN, 4096, n, 1);
    s_deep(report, n);
    s_one_at_a_time(report, 3, T_IN, 65536, n / 4, 0);
    s_one_at_a_time(report, 4, T_OUT, 65536, n / 4, 0);
}
