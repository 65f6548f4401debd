/* virtio-rng from the guest's side (guest/virtio.h): two requests of 64
 * bytes; reports {init step that failed or 0, bytes in the first, in the
 * second, whether the two differ, whether the first is not all zero,
 * the device status, the interrupt status it acknowledged}; then says on
 * COM1 how it went and powers off, or exits with 1 (`vmm run`). */
#include "guest/guest.h"
#include "guest/virtio.h"

#define RNG_BASE 0xd0100000ull
#define RNG_ID 4

static guest_virtio_t s_rng;
static uint8_t s_buf[2][64];

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    int rc = guest_virtio_init(&s_rng, RNG_BASE, RNG_ID, 0, 1);
    uint32_t len[2] = {0, 0};
    for (int i = 0; !rc && i < 2; i++) {
        guest_virtio_buf_t b = {.addr = (uint64_t)(uintptr_t)s_buf[i], .len = 64, .write = true};
        guest_virtio_submit(&s_rng, 0, &b, 1);
        guest_virtio_wait(&s_rng, 0, &len[i]);
    }
    uint32_t differ = 0, nonzero = 0;
    for (int i = 0; i < 64; i++) {
        differ |= s_buf[0][i] != s_buf[1][i];
        nonzero |= s_buf[0][i] != 0;
    }
    uint32_t status = rc ? 0 : guest_virtio_status(&s_rng);
    guest_sync(1, (uint32_t)rc, len[0], len[1], differ, nonzero, status,
               rc ? 0 : guest_virtio_ack(&s_rng));
    bool ok = !rc && len[0] == 64 && len[1] == 64 && differ && nonzero && !(status & 0x40);
    guest_printf("virtio-rng: %s (init %d, %u and %u bytes, status 0x%x)\n",
                 ok ? "ok" : "FAILED", rc, len[0], len[1], status);
    if (ok)
        guest_power_off();
    guest_exit(1);
}
