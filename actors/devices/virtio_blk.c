#include "actors/devices/virtio_blk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/virtio_mmio.h"

#define S_HEADER 16u
/* What one read or write moves between the disk and guest RAM at a time. */
#define S_PIECE (64u * 1024u)

typedef struct {
    uint64_t sectors;
    bool readonly;
    char id[VIRTIO_BLK_ID_BYTES];
    uint8_t *piece; /* S_PIECE bytes */
    struct {
        uint64_t reads, writes, flushes, get_ids, unsupported, failed;
        uint64_t read_bytes, written_bytes;
    } counts;
    device_t *dev; /* for logging */
} s_blk_t;

static void s_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_config(void *state, uint8_t *config)
{
    const s_blk_t *b = state;
    s_le(config, b->sectors, 8);               /* capacity */
    s_le(config + 12, VIRTIO_BLK_SEG_MAX, 4);  /* seg_max */
    s_le(config + 20, VIRTIO_BLK_SECTOR, 4);   /* blk_size */
}

/* A request the driver got wrong: IOERR, counted, logged. */
static uint8_t s_fail(s_blk_t *b, const char *why)
{
    b->counts.failed++;
    device_log(b->dev, RT_LOG_INFO, "request failed: %s", why);
    return VIRTIO_BLK_S_IOERR;
}

/* Whether len bytes at sector lie on the disk, in whole sectors. */
static const char *s_range_error(const s_blk_t *b, uint64_t sector, uint64_t len)
{
    if (len % VIRTIO_BLK_SECTOR)
        return "a length that is not a multiple of 512";
    if (sector > b->sectors || len / VIRTIO_BLK_SECTOR > b->sectors - sector)
        return "sectors past the end of the disk";
    return NULL;
}

/* IN: the disk into the writable bytes before the status. */
static uint8_t s_read(s_blk_t *b, const virtq_chain_t *c, uint64_t sector, uint32_t *written)
{
    uint64_t len = c->writable - 1;
    const char *why = c->readable > S_HEADER ? "a device-readable buffer where it writes"
                                             : s_range_error(b, sector, len);
    if (why)
        return s_fail(b, why);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < S_PIECE ? (size_t)(len - done) : S_PIECE;
        if (device_storage_read(b->dev, sector * VIRTIO_BLK_SECTOR + done, b->piece, n))
            return s_fail(b, "the disk could not be read");
        if (virtq_chain_write(b->dev, c, done, b->piece, n))
            return s_fail(b, "a buffer outside guest RAM");
        done += n;
    }
    b->counts.reads++;
    b->counts.read_bytes += len;
    *written = (uint32_t)len;
    return VIRTIO_BLK_S_OK;
}

/* OUT: the readable bytes after the header onto the disk. */
static uint8_t s_write(s_blk_t *b, const virtq_chain_t *c, uint64_t sector)
{
    uint64_t len = c->readable - S_HEADER;
    const char *why = b->readonly       ? "a write to a read-only disk"
                      : c->writable > 1 ? "a device-writable buffer where it reads"
                                        : s_range_error(b, sector, len);
    if (why)
        return s_fail(b, why);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < S_PIECE ? (size_t)(len - done) : S_PIECE;
        if (virtq_chain_read(b->dev, c, S_HEADER + done, b->piece, n))
            return s_fail(b, "a buffer outside guest RAM");
        if (device_storage_write(b->dev, sector * VIRTIO_BLK_SECTOR + done, b->piece, n))
            return s_fail(b, "the disk could not be written");
        done += n;
    }
    b->counts.writes++;
    b->counts.written_bytes += len;
    return VIRTIO_BLK_S_OK;
}

static uint8_t s_get_id(s_blk_t *b, const virtq_chain_t *c, uint32_t *written)
{
    uint64_t room = c->writable - 1;
    uint32_t n = room < VIRTIO_BLK_ID_BYTES ? (uint32_t)room : VIRTIO_BLK_ID_BYTES;
    if (virtq_chain_write(b->dev, c, 0, b->id, n))
        return s_fail(b, "a buffer outside guest RAM");
    b->counts.get_ids++;
    *written = n;
    return VIRTIO_BLK_S_OK;
}

/* One request: its status, with the data bytes written before it in
 * *written. */
static uint8_t s_request(s_blk_t *b, const virtq_chain_t *c, uint32_t *written)
{
    uint8_t h[S_HEADER];
    *written = 0;
    if (c->readable < S_HEADER)
        return s_fail(b, "a header shorter than 16 bytes");
    if (virtq_chain_read(b->dev, c, 0, h, sizeof h))
        return s_fail(b, "a header outside guest RAM");
    uint32_t type = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                    (uint32_t)h[3] << 24;
    uint64_t sector = 0;
    for (int i = 7; i >= 0; i--)
        sector = sector << 8 | h[8 + i];
    switch (type) {
    case VIRTIO_BLK_T_IN:
        return s_read(b, c, sector, written);
    case VIRTIO_BLK_T_OUT:
        return s_write(b, c, sector);
    case VIRTIO_BLK_T_FLUSH:
        if (device_storage_flush(b->dev))
            return s_fail(b, "the disk could not be flushed");
        b->counts.flushes++;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID:
        return s_get_id(b, c, written);
    default:
        b->counts.unsupported++;
        device_log(b->dev, RT_LOG_INFO, "request type %u is not supported", type);
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* Whether the chain ends in a writable status byte, as every request
 * must. */
static bool s_has_status(const virtq_chain_t *c)
{
    return c->n && c->buf[c->n - 1].write && c->buf[c->n - 1].len;
}

static void s_notify(void *state, virtio_mmio_t *m, uint16_t qi)
{
    s_blk_t *b = state;
    virtq_t *q = virtio_mmio_queue(m, qi);
    device_t *dev = virtio_mmio_device(m);
    virtq_chain_t chain;
    const char *why = "";
    int rc = 0;
    unsigned taken = 0;
    while (taken < VIRTIO_MMIO_BATCH && (rc = virtq_pop(q, dev, &chain, &why)) == 1) {
        taken++;
        if (!s_has_status(&chain)) {
            virtio_mmio_needs_reset(m, "a request without a writable status byte at its end");
            return;
        }
        uint32_t written;
        uint8_t status = s_request(b, &chain, &written);
        if (virtq_chain_write(dev, &chain, chain.writable - 1, &status, 1) ||
            virtq_push(q, dev, chain.head, written + 1)) {
            virtio_mmio_needs_reset(m, "the status byte or the used ring is not in guest RAM");
            return;
        }
    }
    if (rc < 0)
        virtio_mmio_needs_reset(m, why);
    virtio_mmio_used(m, qi);
    if (taken == VIRTIO_MMIO_BATCH)
        virtio_mmio_again(m, qi);
}

static void s_inspect(void *state, Vmm__Rt__InspectNode *node)
{
    s_blk_t *b = state;
    rt_inspect_add(node, "sectors", "%llu", (unsigned long long)b->sectors);
    rt_inspect_add(node, "readonly", "%s", b->readonly ? "true" : "false");
    device_inspect_count(node, "read_requests", b->counts.reads);
    device_inspect_count(node, "write_requests", b->counts.writes);
    device_inspect_count(node, "flushes", b->counts.flushes);
    device_inspect_count(node, "get_ids", b->counts.get_ids);
    device_inspect_count(node, "read_bytes", b->counts.read_bytes);
    device_inspect_count(node, "written_bytes", b->counts.written_bytes);
    device_inspect_count(node, "failed", b->counts.failed);
    device_inspect_count(node, "unsupported", b->counts.unsupported);
}

static void s_destroy(void *state)
{
    s_blk_t *b = state;
    if (b)
        free(b->piece);
    free(b);
}

static const virtio_type_t s_type = {
    .device_id = VIRTIO_ID_BLOCK,
    .features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
                1ull << VIRTIO_BLK_F_FLUSH,
    .n_queues = 1,
    .config_size = 24,
    .config = s_config,
    .notify = s_notify,
    .inspect = s_inspect,
    .destroy = s_destroy,
};

device_t *dev_virtio_blk_new(const void *config, device_env_t *env)
{
    const dev_virtio_blk_config_t *cfg = config;
    if (!cfg || !cfg->path) {
        errno = EINVAL;
        return NULL;
    }
    s_blk_t *b = calloc(1, sizeof *b);
    if (!b || !(b->piece = malloc(S_PIECE))) {
        s_destroy(b);
        errno = ENOMEM;
        return NULL;
    }
    b->readonly = cfg->readonly;
    const char *id = cfg->serial;
    if (!id) {
        id = strrchr(cfg->path, '/');
        id = id ? id + 1 : cfg->path;
    }
    /* Not NUL-terminated at 20 bytes, as the spec has it. */
    size_t id_len = strlen(id);
    memcpy(b->id, id, id_len < sizeof b->id ? id_len : sizeof b->id);
    virtio_mmio_config_t mmio = {.name = cfg->name ? cfg->name : "virtio-blk",
                                 .base = cfg->base, .irq = cfg->irq, .type = &s_type,
                                 .features = cfg->readonly ? 1ull << VIRTIO_BLK_F_RO : 0,
                                 .state = b};
    device_t *dev = dev_virtio_mmio_new(&mmio, env);
    if (!dev) {
        s_destroy(b);
        errno = EINVAL;
        return NULL;
    }
    b->dev = dev;
    uint64_t size;
    int rc = device_storage_open(dev, cfg->path, cfg->readonly, &size);
    if (!rc && size < VIRTIO_BLK_SECTOR)
        rc = -EINVAL;
    if (rc) {
        device_log(dev, RT_LOG_WARN, "%s: %s", cfg->path,
                   rc == -EINVAL ? "smaller than a sector" : strerror(-rc));
        device_destroy(&dev);
        errno = -rc;
        return NULL;
    }
    b->sectors = size / VIRTIO_BLK_SECTOR;
    return dev;
}
