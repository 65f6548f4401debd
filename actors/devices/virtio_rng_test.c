/* virtio-rng: writable buffers filled from the host's random source,
 * refusals of what a driver must not send. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/devices/testing/fake_env.h"
#include "actors/devices/testing/virtio_driver.h"
#include "actors/devices/virtio_mmio.h"
#include "actors/devices/virtio_rng.h"

#define BASE 0xd0000000ull
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define DATA VIRTIO_DRIVER_DATA

static fake_env_t *s_f;
static virtio_driver_t s_d;

static void s_start(void)
{
    s_f = fake_env_new(1u << 20);
    cr_assert_not_null(s_f);
    dev_virtio_rng_config_t cfg = {.base = BASE, .irq = 6};
    s_f->dev = dev_virtio_rng_new(&cfg, &s_f->env);
    cr_assert_not_null(s_f->dev);
    s_d = (virtio_driver_t){.f = s_f, .base = BASE, .size = 4};
    virtio_driver_init(&s_d, V1);
}

static void s_stop(void)
{
    fake_env_destroy(&s_f);
}

TestSuite(virtio_rng, .init = s_start, .fini = s_stop);

Test(virtio_rng, is_device_4)
{
    cr_expect_eq(virtio_driver_rd(&s_d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
    cr_expect_str_eq(s_f->dev->spec.name, "virtio-rng");
}

Test(virtio_rng, fills_each_writable_buffer_from_the_hosts_source)
{
    /* Two buffers in one chain, one of them larger than a piece. */
    virtio_driver_desc(&s_d, 0, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    virtio_driver_desc(&s_d, 1, DATA + 0x100, 5000, VIRTQ_DESC_F_WRITE, 0);
    virtio_driver_offer(&s_d, 0);
    cr_assert_eq(virtio_driver_used_idx(&s_d), 1);
    uint32_t id, len;
    virtio_driver_used(&s_d, 0, &id, &len);
    cr_expect_eq(id, 0);
    cr_expect_eq(len, 5016);
    cr_expect_eq(s_f->entropy_taken, 5016, "every byte from the source");
    for (int i = 0; i < 16; i++)
        cr_expect_eq(s_f->ram[DATA + i], (uint8_t)i);
    cr_expect_eq(s_f->ram[DATA + 0x100], 16);
    cr_expect_eq(s_f->ram[DATA + 0x100 + 4999], (uint8_t)(16 + 4999));
    cr_expect(s_f->irq[6], "the used-buffer interrupt on its line");
}

Test(virtio_rng, a_readable_buffer_is_refused)
{
    virtio_driver_desc(&s_d, 0, DATA, 16, 0, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect_eq(virtio_driver_used_idx(&s_d), 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_expect_eq(s_f->entropy_taken, 0);
}

Test(virtio_rng, a_buffer_past_guest_ram_is_refused)
{
    virtio_driver_desc(&s_d, 0, (1u << 20) - 8, 16, VIRTQ_DESC_F_WRITE, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect_eq(virtio_driver_used_idx(&s_d), 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}
