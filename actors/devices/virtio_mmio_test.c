/* The virtio-mmio transport and its split virtqueues, around a device type
 * of the test's that copies what a chain's readable buffers hold into its
 * writable ones; and each kind of bad driver input. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/devices/testing/fake_env.h"
#include "actors/devices/testing/virtio_driver.h"
#include "actors/devices/virtio_mmio.h"

#define BASE 0xd0000000ull
#define IRQ 5
#define RAM (1u << 20)
#define QSIZE 8
#define DESC VIRTIO_DRIVER_DESC
#define AVAIL VIRTIO_DRIVER_AVAIL
#define USED VIRTIO_DRIVER_USED
#define DATA VIRTIO_DRIVER_DATA

/* ---- The test's device type: a copier -------------------------------------- */

typedef struct {
    unsigned notifies, chains, resets;
    uint8_t config[8];
} s_copier_t;

static void s_copier_config(void *state, uint8_t *config)
{
    memcpy(config, ((s_copier_t *)state)->config, 8);
}

/* Copies each chain's readable bytes into its writable ones. */
static void s_copier_notify(void *state, virtio_mmio_t *m, uint16_t qi)
{
    s_copier_t *c = state;
    c->notifies++;
    virtq_t *q = virtio_mmio_queue(m, qi);
    device_t *dev = virtio_mmio_device(m);
    virtq_chain_t chain;
    const char *why;
    int rc;
    while ((rc = virtq_pop(q, dev, &chain, &why)) == 1) {
        uint8_t bytes[256];
        uint32_t got = 0, put = 0;
        for (uint16_t i = 0; i < chain.n && rc == 1; i++) {
            const virtq_buf_t *b = &chain.buf[i];
            if (!b->write && got + b->len <= sizeof bytes) {
                if (device_guest_read(dev, b->gpa, bytes + got, b->len))
                    rc = -1, why = "a readable buffer outside guest RAM";
                got += b->len;
            } else if (b->write) {
                uint32_t n = got - put < b->len ? got - put : b->len;
                if (device_guest_write(dev, b->gpa, bytes + put, n))
                    rc = -1, why = "a writable buffer outside guest RAM";
                put += n;
            }
        }
        if (rc != 1)
            break;
        c->chains++;
        virtq_push(q, dev, chain.head, put);
    }
    if (rc < 0)
        virtio_mmio_needs_reset(m, why);
    virtio_mmio_used(m, qi);
}

static void s_copier_reset(void *state)
{
    ((s_copier_t *)state)->resets++;
}

static const virtio_type_t s_copier = {
    .device_id = 42,
    .features = 1ull << 5,
    .n_queues = 1,
    .config_size = 8,
    .config = s_copier_config,
    .notify = s_copier_notify,
    .reset = s_copier_reset,
};

/* ---- The driver's side --------------------------------------------------------- */

static fake_env_t *s_f;
static virtio_driver_t s_d;
static s_copier_t s_c;

static void s_start(void)
{
    memset(&s_c, 0, sizeof s_c);
    memcpy(s_c.config, "CONFIG!!", 8);
    s_f = fake_env_new(RAM);
    cr_assert_not_null(s_f);
    virtio_mmio_config_t cfg = {.name = "virtio-copier", .base = BASE, .irq = IRQ,
                                .type = &s_copier, .state = &s_c};
    s_f->dev = dev_virtio_mmio_new(&cfg, &s_f->env);
    cr_assert_not_null(s_f->dev);
    s_d = (virtio_driver_t){.f = s_f, .base = BASE, .size = QSIZE};
}

static void s_stop(void)
{
    fake_env_destroy(&s_f);
}

static uint32_t s_rd(uint32_t offset)
{
    return virtio_driver_rd(&s_d, offset);
}

static void s_wr(uint32_t offset, uint32_t value)
{
    virtio_driver_wr(&s_d, offset, value);
}

static void s_put16(uint32_t gpa, uint16_t v)
{
    memcpy(s_f->ram + gpa, &v, 2);
}

static uint16_t s_get16(uint32_t gpa)
{
    uint16_t v;
    memcpy(&v, s_f->ram + gpa, 2);
    return v;
}

static void s_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    virtio_driver_desc(&s_d, i, addr, len, flags, next);
}

static void s_offer(uint16_t head)
{
    virtio_driver_offer(&s_d, head);
}

static void s_init(uint64_t features, uint16_t size)
{
    s_d.size = size;
    virtio_driver_init(&s_d, features);
}

static const uint64_t s_v1 = 1ull << VIRTIO_F_VERSION_1;

TestSuite(virtio_mmio, .init = s_start, .fini = s_stop);

Test(virtio_mmio, says_what_it_is_and_claims_its_block_and_line)
{
    cr_expect_eq(s_rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    cr_expect_eq(s_rd(VIRTIO_MMIO_VERSION), 2);
    cr_expect_eq(s_rd(VIRTIO_MMIO_DEVICE_ID), 42);
    cr_expect_eq(s_rd(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    s_wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    cr_expect_eq(s_rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "one queue only");
    const device_spec_t *spec = &s_f->dev->spec;
    cr_expect(spec->ranges[0].mmio);
    cr_expect_eq(spec->ranges[0].start, BASE);
    cr_expect_eq(spec->ranges[0].len, 0x200);
    cr_expect_eq(spec->irq_lines[0], IRQ);
    uint64_t v;
    cr_assert_eq(fake_env_read(s_f, true, BASE + 0x100, 8, &v), 0);
    cr_expect_eq(memcmp(&v, "CONFIG!!", 8), 0, "the type's configuration space");
}

Test(virtio_mmio, offers_version_1_and_event_idx_and_takes_only_what_it_offered)
{
    s_wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_expect_eq(s_rd(VIRTIO_MMIO_DEVICE_FEATURES), 1u << 5 | 1u << VIRTIO_RING_F_EVENT_IDX);
    s_wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    cr_expect_eq(s_rd(VIRTIO_MMIO_DEVICE_FEATURES), 1, "VIRTIO_F_VERSION_1");
    s_init(s_v1 | 1ull << 5, QSIZE);
    cr_expect(s_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    /* A legacy driver, and one asking for more than was offered. */
    s_init(1ull << 5, QSIZE);
    cr_expect_not(s_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, "no VERSION_1");
    s_init(s_v1 | 1ull << 7, QSIZE);
    cr_expect_not(s_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, "bit 7 not offered");
}

Test(virtio_mmio, a_chain_goes_round_and_the_line_follows_the_interrupt_status)
{
    s_init(s_v1, QSIZE);
    memcpy(s_f->ram + DATA, "hello", 5);
    s_desc(0, DATA, 5, VIRTQ_DESC_F_NEXT, 1);
    s_desc(1, DATA + 0x100, 16, VIRTQ_DESC_F_WRITE, 0);
    s_offer(0);
    cr_expect_eq(s_c.chains, 1);
    cr_expect_eq(memcmp(s_f->ram + DATA + 0x100, "hello", 5), 0, "copied");
    cr_expect_eq(s_get16(USED + 2), 1, "the used index");
    uint32_t elem[2];
    memcpy(elem, s_f->ram + USED + 4, 8);
    cr_expect_eq(elem[0], 0, "the head");
    cr_expect_eq(elem[1], 5, "the bytes written");
    cr_expect_eq(s_rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    cr_expect(s_f->irq[IRQ], "the line is high");
    s_wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    cr_expect_not(s_f->irq[IRQ], "low once acknowledged");
}

Test(virtio_mmio, event_idx_interrupts_only_when_the_driver_asked)
{
    s_init(s_v1 | 1ull << VIRTIO_RING_F_EVENT_IDX, QSIZE);
    s_put16(AVAIL + 4 + 2 * QSIZE, 1); /* used_event: after the second */
    for (uint16_t i = 0; i < 2; i++) {
        s_desc(i, DATA, 4, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 4));
        s_desc((uint16_t)(i + 4), DATA + 0x100, 4, VIRTQ_DESC_F_WRITE, 0);
    }
    s_offer(0);
    cr_expect_eq(s_rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0, "used_event 1 not reached");
    cr_expect_eq(s_get16(USED + 4 + 8 * QSIZE), 1, "avail_event: kick at the next one");
    s_offer(1);
    cr_expect_eq(s_rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
}

Test(virtio_mmio, a_reset_forgets_the_queues_and_tells_the_type)
{
    s_init(s_v1, QSIZE);
    s_wr(VIRTIO_MMIO_STATUS, 0);
    cr_expect_eq(s_rd(VIRTIO_MMIO_STATUS), 0);
    cr_expect_eq(s_rd(VIRTIO_MMIO_QUEUE_READY), 0);
    cr_expect_geq(s_c.resets, 2);
}

/* ---- Bad driver input: refused, counted, the device marked for a reset --------- */

static void s_expect_needs_reset(const char *what)
{
    cr_expect(s_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, "%s", what);
    cr_expect(s_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
              "a configuration-change interrupt for %s", what);
    cr_expect(s_f->irq[IRQ]);
}

Test(virtio_mmio, a_queue_size_that_is_not_a_power_of_two)
{
    s_init(s_v1, 6);
    cr_expect_eq(s_rd(VIRTIO_MMIO_QUEUE_READY), 0);
    s_expect_needs_reset("queue size 6");
}

Test(virtio_mmio, a_descriptor_loop)
{
    s_init(s_v1, QSIZE);
    s_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
    s_desc(1, DATA, 4, VIRTQ_DESC_F_NEXT, 0);
    s_offer(0);
    s_expect_needs_reset("a loop");
    cr_expect_eq(s_c.chains, 0);
}

Test(virtio_mmio, a_chain_past_the_queue_size)
{
    s_init(s_v1, QSIZE);
    s_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, QSIZE);
    s_offer(0);
    s_expect_needs_reset("next past the table");
}

Test(virtio_mmio, a_head_past_the_table)
{
    s_init(s_v1, QSIZE);
    s_offer(QSIZE + 3);
    s_expect_needs_reset("a head past the table");
}

Test(virtio_mmio, buffers_outside_guest_ram)
{
    s_init(s_v1, QSIZE);
    s_desc(0, RAM - 2, 4, VIRTQ_DESC_F_NEXT, 1);
    s_desc(1, DATA + 0x100, 4, VIRTQ_DESC_F_WRITE, 0);
    s_offer(0);
    s_expect_needs_reset("a buffer across the end of RAM");
    cr_expect_eq(s_c.chains, 0);
}

Test(virtio_mmio, a_readable_buffer_after_a_writable_one)
{
    s_init(s_v1, QSIZE);
    s_desc(0, DATA + 0x100, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    s_desc(1, DATA, 4, 0, 0);
    s_offer(0);
    s_expect_needs_reset("readable after writable");
}

Test(virtio_mmio, notifies_before_driver_ok_are_refused)
{
    s_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    s_desc(0, DATA, 4, 0, 0);
    s_put16(AVAIL + 4, 0);
    s_put16(AVAIL + 2, 1);
    s_wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    cr_expect_eq(s_c.notifies, 0, "the type never heard of it");
    cr_expect_gt(s_f->logs, 0, "refused, and said so");
}

Test(virtio_mmio, rings_outside_guest_ram)
{
    s_wr(VIRTIO_MMIO_STATUS, 0);
    s_init(s_v1, QSIZE);
    s_wr(VIRTIO_MMIO_STATUS, 0);
    s_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    s_wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    s_wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
    s_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                 VIRTIO_STATUS_FEATURES_OK);
    s_wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    s_wr(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
    s_wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0);
    s_wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0x10); /* far past the 1 MiB of RAM */
    s_wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
    s_wr(VIRTIO_MMIO_QUEUE_READY, 1);
    s_wr(VIRTIO_MMIO_STATUS, s_rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    s_wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    s_expect_needs_reset("an available ring outside RAM");
}

Test(virtio_mmio, each_queue_notify_is_a_doorbell_matched_by_the_queue)
{
    const device_spec_t *spec = &s_f->dev->spec;
    cr_assert_eq(spec->n_doorbells, 1, "one queue, one doorbell");
    cr_expect_eq(spec->doorbells[0].address, BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
    cr_expect_eq(spec->doorbells[0].length, 4);
    cr_expect(spec->doorbells[0].has_value);
    cr_expect_eq(spec->doorbells[0].value, 0);
    s_f->dev->ops->doorbell(s_f->dev, 0);
    cr_expect_eq(s_c.notifies, 0, "a doorbell before DRIVER_OK is refused as the write is");
    s_init(s_v1, QSIZE);
    memcpy(s_f->ram + DATA, "bell", 4);
    s_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
    s_desc(1, DATA + 0x100, 16, VIRTQ_DESC_F_WRITE, 0);
    virtio_driver_add(&s_d, 0);
    s_f->dev->ops->doorbell(s_f->dev, 0);
    cr_expect_eq(s_c.chains, 1);
    cr_expect_eq(memcmp(s_f->ram + DATA + 0x100, "bell", 4), 0);
}
