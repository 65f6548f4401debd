#include "actors/devices/virtio_rng.h"

#include <stdlib.h>

#include "actors/devices/virtio_mmio.h"

/* What one entropy request takes at most: a big buffer is filled in
 * pieces. */
#define S_PIECE 4096u

typedef struct {
    uint64_t bytes; /* handed to the guest */
} s_rng_t;

/* Fills buffer b, a piece at a time. 0, or -1 where it cannot. */
static int s_fill(device_t *dev, const virtq_buf_t *b)
{
    uint8_t piece[S_PIECE];
    for (uint32_t done = 0; done < b->len;) {
        uint32_t n = b->len - done < S_PIECE ? b->len - done : S_PIECE;
        if (device_entropy(dev, piece, n) || device_guest_write(dev, b->gpa + done, piece, n))
            return -1;
        done += n;
    }
    return 0;
}

static void s_notify(void *state, virtio_mmio_t *m, uint16_t qi)
{
    s_rng_t *r = state;
    virtq_t *q = virtio_mmio_queue(m, qi);
    device_t *dev = virtio_mmio_device(m);
    virtq_chain_t c;
    const char *why = "";
    int rc = 0;
    unsigned taken = 0;
    while (taken < VIRTIO_MMIO_BATCH && (rc = virtq_pop(q, dev, &c, &why)) == 1) {
        taken++;
        if (c.readable) {
            virtio_mmio_needs_reset(m, "an entropy request with a device-readable buffer");
            return;
        }
        for (uint16_t i = 0; i < c.n; i++)
            if (s_fill(dev, &c.buf[i])) {
                virtio_mmio_needs_reset(m, "an entropy buffer outside guest RAM");
                return;
            }
        r->bytes += c.writable;
        if (virtq_push(q, dev, c.head, (uint32_t)c.writable)) {
            virtio_mmio_needs_reset(m, "the used ring is not in guest RAM");
            return;
        }
    }
    if (rc < 0)
        virtio_mmio_needs_reset(m, why);
    virtio_mmio_used(m, qi);
    if (taken == VIRTIO_MMIO_BATCH)
        virtio_mmio_again(m, qi);
}

static const virtio_type_t s_type = {
    .device_id = VIRTIO_ID_RNG,
    .n_queues = 1,
    .notify = s_notify,
    .destroy = free,
};

device_t *dev_virtio_rng_new(const void *config, device_env_t *env)
{
    const dev_virtio_rng_config_t *cfg = config;
    s_rng_t *r = cfg ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return NULL;
    virtio_mmio_config_t mmio = {.name = cfg->name ? cfg->name : "virtio-rng",
                                 .base = cfg->base, .irq = cfg->irq, .type = &s_type,
                                 .state = r};
    device_t *dev = dev_virtio_mmio_new(&mmio, env);
    if (!dev)
        free(r);
    return dev;
}
