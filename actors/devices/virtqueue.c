#include "actors/devices/virtqueue.h"

#include <errno.h>
#include <string.h>

/* The rings' layout (virtio 1.x 2.7): a descriptor is {le64 addr, le32
 * len, le16 flags, le16 next}; the available ring {le16 flags, le16 idx,
 * le16 ring[size], le16 used_event}; the used ring {le16 flags, le16 idx,
 * {le32 id, le32 len}[size], le16 avail_event}. */
#define S_DESC_SIZE 16
#define S_AVAIL_RING(q, i) ((q)->avail + 4 + 2 * (uint64_t)((i) % (q)->size))
#define S_USED_EVENT(q) ((q)->avail + 4 + 2 * (uint64_t)(q)->size)
#define S_USED_ELEM(q, i) ((q)->used + 4 + 8 * (uint64_t)((i) % (q)->size))
#define S_AVAIL_EVENT(q) ((q)->used + 4 + 8 * (uint64_t)(q)->size)

static uint16_t s_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int s_read16(device_t *dev, uint64_t gpa, uint16_t *v)
{
    uint8_t b[2];
    int rc = device_guest_read(dev, gpa, b, sizeof b);
    if (!rc)
        *v = s_le16(b);
    return rc;
}

static int s_write16(device_t *dev, uint64_t gpa, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return device_guest_write(dev, gpa, b, sizeof b);
}

int virtq_check(const virtq_t *q, uint16_t max)
{
    if (!q->size || q->size > max || (q->size & (q->size - 1)))
        return -EINVAL;
    if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
        return -EINVAL;
    return 0;
}

int virtq_resume(virtq_t *q, device_t *dev)
{
    uint16_t used;
    if (s_read16(dev, q->used + 2, &used))
        return -EFAULT;
    q->last_avail = q->used_idx = used;
    /* The driver may not have been told of the last ones: tell it. */
    q->signalled = (uint16_t)(used - 1);
    return 0;
}

void virtq_reset(virtq_t *q)
{
    uint64_t popped = q->counts.popped, pushed = q->counts.pushed, bad = q->counts.bad;
    memset(q, 0, sizeof *q);
    q->counts.popped = popped;
    q->counts.pushed = pushed;
    q->counts.bad = bad;
}

static int s_bad(virtq_t *q, const char **why, const char *text, int rc)
{
    q->counts.bad++;
    *why = text;
    return rc;
}

int virtq_pop(virtq_t *q, device_t *dev, virtq_chain_t *c, const char **why)
{
    *why = "";
    uint16_t avail_idx;
    if (s_read16(dev, q->avail + 2, &avail_idx))
        return s_bad(q, why, "the available ring is not in guest RAM", -EFAULT);
    if (avail_idx == q->last_avail)
        return 0;
    if ((uint16_t)(avail_idx - q->last_avail) > q->size)
        return s_bad(q, why, "the driver made more available than the queue holds", -EINVAL);
    /* The entries and descriptors are read after the index that shows
     * them. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t head;
    if (s_read16(dev, S_AVAIL_RING(q, q->last_avail), &head))
        return s_bad(q, why, "the available ring is not in guest RAM", -EFAULT);
    if (head >= q->size)
        return s_bad(q, why, "a chain's head is past the descriptor table", -EINVAL);
    q->last_avail++;
    q->counts.popped++;
    *c = (virtq_chain_t){.head = head};
    uint16_t i = head;
    for (uint32_t walked = 0;; walked++) {
        if (walked >= q->size)
            return s_bad(q, why, "a chain longer than the queue (a loop)", -ELOOP);
        if (c->n == VIRTQ_CHAIN_MAX)
            return s_bad(q, why, "a chain of more buffers than the device takes", -EINVAL);
        uint8_t d[S_DESC_SIZE];
        if (device_guest_read(dev, q->desc + (uint64_t)i * S_DESC_SIZE, d, sizeof d))
            return s_bad(q, why, "the descriptor table is not in guest RAM", -EFAULT);
        uint64_t addr = (uint64_t)s_le32(d) | (uint64_t)s_le32(d + 4) << 32;
        uint32_t len = s_le32(d + 8);
        uint16_t flags = s_le16(d + 12), next = s_le16(d + 14);
        if (flags & VIRTQ_DESC_F_INDIRECT)
            return s_bad(q, why, "an indirect descriptor, which was not offered", -EINVAL);
        bool write = flags & VIRTQ_DESC_F_WRITE;
        if (!write && c->writable)
            return s_bad(q, why, "a device-readable buffer after a writable one", -EINVAL);
        if (addr + len < addr)
            return s_bad(q, why, "a buffer that wraps the address space", -EFAULT);
        c->buf[c->n++] = (virtq_buf_t){.gpa = addr, .len = len, .write = write};
        if (write)
            c->writable += len;
        else
            c->readable += len;
        if (!(flags & VIRTQ_DESC_F_NEXT))
            return 1;
        if (next >= q->size)
            return s_bad(q, why, "a descriptor's next is past the table", -EINVAL);
        i = next;
    }
}

/* Copies between buf and the buffers of one kind, from stream offset on. */
static int s_chain_copy(device_t *dev, const virtq_chain_t *c, bool write, uint64_t offset,
                        uint8_t *buf, size_t len)
{
    if (offset > (write ? c->writable : c->readable) ||
        len > (write ? c->writable : c->readable) - offset)
        return -EINVAL;
    for (uint16_t i = 0; i < c->n && len; i++) {
        const virtq_buf_t *b = &c->buf[i];
        if (b->write != write)
            continue;
        if (offset >= b->len) {
            offset -= b->len;
            continue;
        }
        size_t n = b->len - offset < len ? (size_t)(b->len - offset) : len;
        int rc = write ? device_guest_write(dev, b->gpa + offset, buf, n)
                       : device_guest_read(dev, b->gpa + offset, buf, n);
        if (rc)
            return rc;
        buf += n;
        len -= n;
        offset = 0;
    }
    return 0;
}

int virtq_chain_read(device_t *dev, const virtq_chain_t *c, uint64_t offset, void *buf,
                     size_t len)
{
    return s_chain_copy(dev, c, false, offset, buf, len);
}

int virtq_chain_write(device_t *dev, const virtq_chain_t *c, uint64_t offset, const void *buf,
                      size_t len)
{
    return s_chain_copy(dev, c, true, offset, (uint8_t *)buf, len);
}

int virtq_push(virtq_t *q, device_t *dev, uint16_t head, uint32_t written)
{
    uint8_t e[8];
    for (int k = 0; k < 4; k++) {
        e[k] = (uint8_t)((uint32_t)head >> (8 * k));
        e[4 + k] = (uint8_t)(written >> (8 * k));
    }
    if (device_guest_write(dev, S_USED_ELEM(q, q->used_idx), e, sizeof e))
        return -EFAULT;
    /* The element is in place before the index that shows it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->used_idx++;
    if (s_write16(dev, q->used + 2, q->used_idx))
        return -EFAULT;
    q->counts.pushed++;
    return 0;
}

bool virtq_should_interrupt(virtq_t *q, device_t *dev)
{
    uint16_t old = q->signalled, now = q->used_idx;
    if (old == now)
        return false;
    /* The driver's flags or event index are read after the used index is
     * written (virtio 1.x 2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool want;
    if (q->event_idx) {
        uint16_t event;
        want = s_read16(dev, S_USED_EVENT(q), &event) ||
               (uint16_t)(now - event - 1) < (uint16_t)(now - old);
    } else {
        uint16_t flags;
        want = s_read16(dev, q->avail, &flags) || !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (want)
        q->signalled = now;
    return want;
}

void virtq_want_kicks(virtq_t *q, device_t *dev)
{
    if (q->event_idx)
        s_write16(dev, S_AVAIL_EVENT(q), q->last_avail);
}
