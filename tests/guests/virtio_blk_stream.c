/* A stream of writes to virtio-blk at 0xd0000000 while the test kills its
 * device host and starts it again: VIRTIO_BLK_STREAM_WRITES writes of one
 * sector, up to 8 in flight, write i to sector i % 1024 holding i in each
 * 32-bit word. Each used element must be a request in flight (else it is
 * counted as a duplicate); a wait outlasts a restart. Reports {init step
 * that failed or 0, writes completed, duplicates, writes failed, the
 * device status}. */
#include "guest/guest.h"
#include "guest/virtio.h"
#include "tests/guests/virtio_blk_pattern.h"

#define BLK_BASE 0xd0000000ull
#define DEPTH 8
#define T_OUT 1
/* How many bounded waits one completion may take: seconds each. */
#define WAITS 60

static guest_virtio_t s_blk;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} s_hdr[DEPTH];
static volatile uint8_t s_status[DEPTH];
static uint32_t s_data[DEPTH][128];
static bool s_busy[DEPTH];
static uint16_t s_head[DEPTH];

static guest_virtio_buf_t s_buf(const volatile void *p, uint32_t len, bool write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

static void s_submit(int slot, uint32_t i)
{
    s_hdr[slot].type = T_OUT;
    s_hdr[slot].sector = i % VIRTIO_BLK_STREAM_SECTORS;
    for (int w = 0; w < 128; w++)
        s_data[slot][w] = i;
    s_status[slot] = 0xff;
    guest_virtio_buf_t b[3] = {s_buf(&s_hdr[slot], 16, false), s_buf(s_data[slot], 512, false),
                               s_buf(&s_status[slot], 1, true)};
    s_head[slot] = guest_virtio_submit(&s_blk, 0, b, 3);
    s_busy[slot] = true;
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    uint32_t r[5] = {0};
    r[0] = (uint32_t)guest_virtio_init(&s_blk, BLK_BASE, 2, 0, 1);
    uint32_t next = 0, done = 0;
    for (int slot = 0; !r[0] && slot < DEPTH && next < VIRTIO_BLK_STREAM_WRITES; slot++)
        s_submit(slot, next++);
    while (!r[0] && done + r[2] < VIRTIO_BLK_STREAM_WRITES) {
        uint32_t len;
        uint16_t head = GUEST_VIRTIO_NONE;
        for (int k = 0; k < WAITS && head == GUEST_VIRTIO_NONE; k++)
            head = guest_virtio_wait(&s_blk, 0, &len);
        if (head == GUEST_VIRTIO_NONE)
            break; /* the device never came back */
        int slot = 0;
        while (slot < DEPTH && !(s_busy[slot] && s_head[slot] == head))
            slot++;
        if (slot == DEPTH) {
            r[2]++; /* used twice, or never made */
            continue;
        }
        s_busy[slot] = false;
        if (s_status[slot])
            r[3]++;
        done++;
        if (next < VIRTIO_BLK_STREAM_WRITES)
            s_submit(slot, next++);
    }
    r[1] = done;
    r[4] = r[0] ? 0 : guest_virtio_status(&s_blk);
    guest_sync(1, r[0], r[1], r[2], r[3], r[4]);
    guest_halt_forever();
}
