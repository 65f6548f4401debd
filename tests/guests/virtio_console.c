/* virtio-console from the guest's side (guest/virtio.h), at 0xd0001000:
 * gives a receive buffer, sends a greeting, waits for a line of input and
 * sends it back after "echo: ". Reports {init step that failed or 0,
 * whether the greeting was used, the input's length, the echo's length
 * once used (0: never), the device status}; then says on COM1 how it
 * went and powers off, or exits with 1 (`vmm run`). */
#include "guest/guest.h"
#include "guest/virtio.h"

#define CON_BASE 0xd0001000ull
#define CON_ID 3
#define RX 0
#define TX 1

static guest_virtio_t s_con;
static char s_in[64];
static char s_out[96] = "echo: ";
static const char s_hello[] = "virtio-console: hello\n";

static guest_virtio_buf_t s_buf(const void *p, uint32_t len, bool write)
{
    return (guest_virtio_buf_t){.addr = (uint64_t)(uintptr_t)p, .len = len, .write = write};
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    uint32_t r[5] = {0};
    r[0] = (uint32_t)guest_virtio_init(&s_con, CON_BASE, CON_ID, 0, 2);
    if (!r[0]) {
        guest_virtio_buf_t in = s_buf(s_in, sizeof s_in, true);
        guest_virtio_submit(&s_con, RX, &in, 1);
        guest_virtio_buf_t hello = s_buf(s_hello, sizeof s_hello - 1, false);
        guest_virtio_submit(&s_con, TX, &hello, 1);
        uint32_t len;
        r[1] = guest_virtio_wait(&s_con, TX, &len) != GUEST_VIRTIO_NONE;
        guest_virtio_wait(&s_con, RX, &r[2]);
        uint32_t n = 6;
        for (uint32_t i = 0; i < r[2] && n < sizeof s_out; i++)
            s_out[n++] = s_in[i];
        guest_virtio_buf_t echo = s_buf(s_out, n, false);
        guest_virtio_submit(&s_con, TX, &echo, 1);
        r[3] = guest_virtio_wait(&s_con, TX, &len) != GUEST_VIRTIO_NONE ? n : 0;
        r[4] = guest_virtio_status(&s_con);
    }
    guest_sync(1, r[0], r[1], r[2], r[3], r[4]);
    bool ok = !r[0] && r[1] == 1 && r[2] && r[3] == 6 + r[2] && !(r[4] & 0x40);
    guest_printf("virtio-console: %s (init %u, input %u bytes, status 0x%x)\n",
                 ok ? "ok" : "FAILED", r[0], r[2], r[4]);
    if (ok)
        guest_power_off();
    guest_exit(1);
}
