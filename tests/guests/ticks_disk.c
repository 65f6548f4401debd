/*
 * For snapshots of a VM with devices in a device host: as the ticks guest
 * (run with --hyperv), and before printing tick n it writes sector n of the
 * virtio-blk disk at 0xd0000000 (of 16 MiB: sector n % 32768), each 32-bit
 * word n, and waits for that
 * write alone to be used. A snapshot continued elsewhere must go on with the
 * next tick and the next write: the disk then holds every tick's sector.
 * A write the device fails, loses or answers twice ends the guest with
 * status 3 after saying which.
 */
#include "guest/guest.h"
#include "guest/hv.h"
#include "guest/virtio.h"

#define BLK_BASE 0xd0000000ull
#define T_OUT 1
#define SECTORS 32768

volatile uint32_t ticks_quit;
static guest_virtio_t s_blk;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} s_hdr;
static uint32_t s_data[128];
static volatile uint8_t s_status;

static guest_virtio_buf_t s_buf(const volatile void *p, uint32_t len, bool write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    int init = guest_virtio_init(&s_blk, BLK_BASE, 2, 0, 1);
    if (init) {
        guest_printf("ticks: virtio-blk init failed at step %d\n", init);
        guest_exit(3);
    }
    guest_printf("ticks: quit %p\n", (void *)&ticks_quit);
    for (uint32_t n = 0; !ticks_quit; n++) {
        s_hdr = (typeof(s_hdr)){.type = T_OUT, .sector = n % SECTORS};
        for (int w = 0; w < 128; w++)
            s_data[w] = n;
        s_status = 0xff;
        guest_virtio_buf_t b[3] = {s_buf(&s_hdr, 16, false), s_buf(s_data, 512, false),
                                   s_buf(&s_status, 1, true)};
        uint16_t head = guest_virtio_submit(&s_blk, 0, b, 3);
        uint32_t len;
        uint16_t used = guest_virtio_wait(&s_blk, 0, &len);
        if (used != head || s_status) {
            guest_printf("ticks: write %u: used %u (head %u), status %u\n", n, used, head,
                         s_status);
            guest_exit(3);
        }
        guest_printf("tick %u ref %lu\n", n, (unsigned long)hv_rdmsr(HV_MSR_TIME_REF_COUNT));
    }
    guest_exit((uint8_t)ticks_quit);
}
