#include "actors/devices/testing/virtio_driver.h"

#include <criterion/criterion.h>
#include <string.h>

#include "actors/devices/virtio_mmio.h"

uint32_t virtio_driver_rd(virtio_driver_t *d, uint32_t offset)
{
    uint64_t v;
    cr_assert_eq(fake_env_read(d->f, true, d->base + offset, 4, &v), 0);
    return (uint32_t)v;
}

void virtio_driver_wr(virtio_driver_t *d, uint32_t offset, uint32_t value)
{
    cr_assert_eq(fake_env_write(d->f, true, d->base + offset, 4, value), 0);
}

static void s_put16(virtio_driver_t *d, uint32_t gpa, uint16_t v)
{
    memcpy(d->f->ram + gpa, &v, 2);
}

static uint16_t s_get16(virtio_driver_t *d, uint32_t gpa)
{
    uint16_t v;
    memcpy(&v, d->f->ram + gpa, 2);
    return v;
}

void virtio_driver_init(virtio_driver_t *d, uint64_t features)
{
    const uint32_t ack = VIRTIO_STATUS_ACKNOWLEDGE, drv = VIRTIO_STATUS_DRIVER;
    virtio_driver_wr(d, VIRTIO_MMIO_STATUS, 0);
    virtio_driver_wr(d, VIRTIO_MMIO_STATUS, ack);
    virtio_driver_wr(d, VIRTIO_MMIO_STATUS, ack | drv);
    for (uint32_t sel = 0; sel < 2; sel++) {
        virtio_driver_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
        virtio_driver_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> (32 * sel)));
    }
    virtio_driver_wr(d, VIRTIO_MMIO_STATUS, ack | drv | VIRTIO_STATUS_FEATURES_OK);
    for (uint16_t q = 0; q < (d->n_queues ? d->n_queues : 1); q++) {
        uint32_t at = q * VIRTIO_DRIVER_STRIDE;
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_SEL, q);
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_NUM, d->size);
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_DRIVER_DESC + at);
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_DRIVER_AVAIL + at);
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_DRIVER_USED + at);
        virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    virtio_driver_wr(d, VIRTIO_MMIO_STATUS,
                     virtio_driver_rd(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

void virtio_driver_desc(virtio_driver_t *d, uint16_t i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
    uint8_t *p = d->f->ram + VIRTIO_DRIVER_DESC + d->q * VIRTIO_DRIVER_STRIDE + 16 * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

void virtio_driver_add(virtio_driver_t *d, uint16_t head)
{
    uint32_t avail = VIRTIO_DRIVER_AVAIL + d->q * VIRTIO_DRIVER_STRIDE;
    uint16_t idx = s_get16(d, avail + 2);
    s_put16(d, avail + 4 + 2 * (idx % d->size), head);
    s_put16(d, avail + 2, (uint16_t)(idx + 1));
}

void virtio_driver_kick(virtio_driver_t *d)
{
    virtio_driver_wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, d->q);
}

void virtio_driver_offer(virtio_driver_t *d, uint16_t head)
{
    virtio_driver_add(d, head);
    virtio_driver_kick(d);
}

uint16_t virtio_driver_used_idx(virtio_driver_t *d)
{
    return s_get16(d, VIRTIO_DRIVER_USED + d->q * VIRTIO_DRIVER_STRIDE + 2);
}

void virtio_driver_used(virtio_driver_t *d, uint16_t i, uint32_t *id, uint32_t *len)
{
    const uint8_t *e =
        d->f->ram + VIRTIO_DRIVER_USED + d->q * VIRTIO_DRIVER_STRIDE + 4 + 8 * (i % d->size);
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
}
