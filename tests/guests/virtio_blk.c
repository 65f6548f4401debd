/* virtio-blk from the guest's side (guest/virtio.h), at 0xd0000000: GET_ID,
 * 32 writes of 4 KiB in flight (sectors 8i..8i+7, pattern virtio_blk_byte()),
 * a flush, the 32 read back in flight and compared. Reports {init step
 * that failed or 0, writes answered OK, the flush's status, reads answered
 * OK and matching, the first 4 bytes of the id, the device status}; then
 * says on COM1 how it went and powers off, or exits with 1 (`vmm run`). */
#include "guest/guest.h"
#include "guest/virtio.h"
#include "tests/guests/virtio_blk_pattern.h"

#define BLK_BASE 0xd0000000ull
#define BLK_ID 2
#define F_FLUSH (1ull << 9)
#define N_REQ 32
#define REQ_BYTES 4096
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8

static guest_virtio_t s_blk;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} s_hdr[N_REQ];
static volatile uint8_t s_status[N_REQ];
static uint8_t s_data[N_REQ][REQ_BYTES];
static uint8_t s_id[20];

static guest_virtio_buf_t s_buf(const volatile void *p, uint32_t len, bool write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

/* Sends request i (type, sector, data of len bytes or none) without a kick. */
static void s_add(int i, uint32_t type, uint64_t sector, void *data, uint32_t len, bool write)
{
    s_hdr[i].type = type;
    s_hdr[i].sector = sector;
    s_status[i] = 0xff;
    guest_virtio_buf_t b[3] = {s_buf(&s_hdr[i], 16, false), s_buf(data, len, write),
                               s_buf(&s_status[i], 1, true)};
    if (len)
        guest_virtio_add(&s_blk, 0, b, 3);
    else
        guest_virtio_add(&s_blk, 0, (guest_virtio_buf_t[]){b[0], b[2]}, 2);
}

/* Waits for n requests; returns how many came back with status OK. */
static uint32_t s_wait(uint32_t n)
{
    uint32_t ok = 0, len;
    for (uint32_t k = 0; k < n; k++) {
        uint16_t head = guest_virtio_wait(&s_blk, 0, &len);
        if (head == GUEST_VIRTIO_NONE)
            break;
        ok += 1;
    }
    return ok;
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    uint32_t r[6] = {0};
    r[0] = (uint32_t)guest_virtio_init(&s_blk, BLK_BASE, BLK_ID, F_FLUSH, 1);
    if (!r[0]) {
        s_add(0, T_GET_ID, 0, s_id, sizeof s_id, true);
        guest_virtio_kick(&s_blk, 0);
        s_wait(1);
        r[4] = (uint32_t)s_id[0] | (uint32_t)s_id[1] << 8 | (uint32_t)s_id[2] << 16 |
               (uint32_t)s_id[3] << 24;

        for (int i = 0; i < N_REQ; i++) {
            for (int j = 0; j < REQ_BYTES; j++)
                s_data[i][j] = virtio_blk_byte((uint32_t)(i * REQ_BYTES + j));
            s_add(i, T_OUT, (uint64_t)i * (REQ_BYTES / 512), s_data[i], REQ_BYTES, false);
        }
        guest_virtio_kick(&s_blk, 0);
        s_wait(N_REQ);
        for (int i = 0; i < N_REQ; i++)
            r[1] += s_status[i] == 0;

        s_add(0, T_FLUSH, 0, 0, 0, false);
        guest_virtio_kick(&s_blk, 0);
        s_wait(1);
        r[2] = s_status[0];

        for (int i = 0; i < N_REQ; i++) {
            for (int j = 0; j < REQ_BYTES; j++)
                s_data[i][j] = 0;
            s_add(i, T_IN, (uint64_t)i * (REQ_BYTES / 512), s_data[i], REQ_BYTES, true);
        }
        guest_virtio_kick(&s_blk, 0);
        s_wait(N_REQ);
        for (int i = 0; i < N_REQ; i++) {
            bool same = s_status[i] == 0;
            for (int j = 0; same && j < REQ_BYTES; j++)
                same = s_data[i][j] == virtio_blk_byte((uint32_t)(i * REQ_BYTES + j));
            r[3] += same;
        }
        r[5] = guest_virtio_status(&s_blk);
    }
    guest_sync(1, r[0], r[1], r[2], r[3], r[4], r[5]);
    bool ok = !r[0] && r[1] == N_REQ && !r[2] && r[3] == N_REQ && !(r[5] & 0x40);
    guest_printf("virtio-blk: %s (init %u, writes %u, flush %u, reads %u, status 0x%x)\n",
                 ok ? "ok" : "FAILED", r[0], r[1], r[2], r[3], r[5]);
    if (ok)
        guest_power_off();
    guest_exit(1);
}
