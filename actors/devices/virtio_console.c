#include "actors/devices/virtio_console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/virtio_mmio.h"

/* What one transmit step copies out of guest RAM at a time. */
#define S_PIECE 4096u

typedef struct {
    virtio_mmio_t *m;
    /* The transmit chain being written out, and how far. */
    bool tx_busy;
    virtq_chain_t tx;
    uint64_t tx_done;
    /* Input taken from the console, not yet in a receive buffer. */
    uint8_t in[VIRTIO_CONSOLE_IN_BUF];
    size_t in_len;
    struct {
        uint64_t out_bytes, in_bytes, out_waits;
    } counts;
} s_console_t;

static device_t *s_dev(s_console_t *c)
{
    return virtio_mmio_device(c->m);
}

/* Whether the driver has set the device up (the console's effects are
 * for a running driver only). */
static bool s_running(s_console_t *c)
{
    return virtio_mmio_queue(c->m, VIRTIO_CONSOLE_RX) ||
           virtio_mmio_queue(c->m, VIRTIO_CONSOLE_TX);
}

/* Writes out the transmit chain in hand: true once all of it is out. */
static bool s_tx_out(s_console_t *c)
{
    device_t *dev = s_dev(c);
    uint8_t piece[S_PIECE];
    while (c->tx_done < c->tx.readable) {
        uint64_t left = c->tx.readable - c->tx_done;
        size_t n = left < sizeof piece ? (size_t)left : sizeof piece;
        size_t room = device_console_room(dev);
        if (!room) {
            c->counts.out_waits++;
            return false;
        }
        n = n < room ? n : room;
        if (virtq_chain_read(dev, &c->tx, c->tx_done, piece, n)) {
            virtio_mmio_needs_reset(c->m, "a transmit buffer outside guest RAM");
            return true;
        }
        size_t took = device_console_write(dev, piece, n);
        c->tx_done += took;
        c->counts.out_bytes += took;
        if (took < n) {
            c->counts.out_waits++;
            return false;
        }
    }
    return true;
}

static void s_transmit(s_console_t *c)
{
    virtq_t *q = virtio_mmio_queue(c->m, VIRTIO_CONSOLE_TX);
    device_t *dev = s_dev(c);
    const char *why = "";
    int rc = 0;
    unsigned taken = 0;
    while (q) {
        if (!c->tx_busy) {
            if (taken == VIRTIO_MMIO_BATCH) {
                virtio_mmio_again(c->m, VIRTIO_CONSOLE_TX);
                break;
            }
            if ((rc = virtq_pop(q, dev, &c->tx, &why)) != 1)
                break;
            taken++;
            if (c->tx.writable) {
                virtio_mmio_needs_reset(c->m, "a transmit buffer the device would write");
                return;
            }
            c->tx_busy = true;
            c->tx_done = 0;
        }
        if (!s_tx_out(c))
            return; /* console_ready() goes on */
        c->tx_busy = false;
        if (virtq_push(q, dev, c->tx.head, 0)) {
            virtio_mmio_needs_reset(c->m, "the used ring is not in guest RAM");
            return;
        }
    }
    if (rc < 0)
        virtio_mmio_needs_reset(c->m, why);
    virtio_mmio_used(c->m, VIRTIO_CONSOLE_TX);
}

/* Input held into receive buffers, while both last; then asks the console
 * for as much as there is room for. */
static void s_receive(s_console_t *c)
{
    virtq_t *q = virtio_mmio_queue(c->m, VIRTIO_CONSOLE_RX);
    device_t *dev = s_dev(c);
    bool used = false;
    while (q && c->in_len) {
        virtq_chain_t chain;
        const char *why = "";
        int rc = virtq_pop(q, dev, &chain, &why);
        if (rc < 0)
            virtio_mmio_needs_reset(c->m, why);
        if (rc != 1)
            break;
        if (chain.readable) {
            virtio_mmio_needs_reset(c->m, "a receive buffer the device would read");
            return;
        }
        size_t n = chain.writable < c->in_len ? (size_t)chain.writable : c->in_len;
        if (virtq_chain_write(dev, &chain, 0, c->in, n) ||
            virtq_push(q, dev, chain.head, (uint32_t)n)) {
            virtio_mmio_needs_reset(c->m, "a receive buffer or the used ring outside guest RAM");
            return;
        }
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        c->counts.in_bytes += n;
        used = true;
    }
    if (used)
        virtio_mmio_used(c->m, VIRTIO_CONSOLE_RX);
    if (q)
        device_console_want(dev, sizeof c->in - c->in_len);
}

static void s_notify(void *state, virtio_mmio_t *m, uint16_t q)
{
    (void)m;
    s_console_t *c = state;
    if (q == VIRTIO_CONSOLE_TX)
        s_transmit(c);
    else
        s_receive(c);
}

static void s_reset(void *state)
{
    s_console_t *c = state;
    c->tx_busy = false;
    c->in_len = 0; /* what the guest had not taken is gone with its driver */
}

static void s_inspect(void *state, Vmm__Rt__InspectNode *node)
{
    s_console_t *c = state;
    device_inspect_count(node, "out_bytes", c->counts.out_bytes);
    device_inspect_count(node, "in_bytes", c->counts.in_bytes);
    device_inspect_count(node, "out_waits", c->counts.out_waits);
    device_inspect_count(node, "in_held", c->in_len);
}

static void s_console_input(void *state, virtio_mmio_t *m, const uint8_t *bytes, size_t len)
{
    (void)m;
    s_console_t *c = state;
    size_t n = len < sizeof c->in - c->in_len ? len : sizeof c->in - c->in_len;
    memcpy(c->in + c->in_len, bytes, n); /* never more than asked for */
    c->in_len += n;
    if (s_running(c))
        s_receive(c);
}

static void s_console_ready(void *state, virtio_mmio_t *m)
{
    (void)m;
    s_console_t *c = state;
    if (c->tx_busy)
        s_transmit(c);
}

static const virtio_type_t s_type = {
    .device_id = VIRTIO_ID_CONSOLE,
    .n_queues = 2,
    .notify = s_notify,
    .reset = s_reset,
    .inspect = s_inspect,
    .console_input = s_console_input,
    .console_ready = s_console_ready,
    .destroy = free,
};

device_t *dev_virtio_console_new(const void *config, device_env_t *env)
{
    const dev_virtio_console_config_t *cfg = config;
    s_console_t *c = cfg ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        errno = cfg ? ENOMEM : EINVAL;
        return NULL;
    }
    virtio_mmio_config_t mmio = {.name = cfg->name ? cfg->name : "virtio-console",
                                 .base = cfg->base, .irq = cfg->irq, .type = &s_type,
                                 .state = c};
    device_t *dev = dev_virtio_mmio_new(&mmio, env);
    if (!dev) {
        free(c);
        errno = EINVAL;
        return NULL;
    }
    c->m = (virtio_mmio_t *)dev;
    return dev;
}
