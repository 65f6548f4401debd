/* virtio-console on a fake environment: output through the console, held
 * while it has no room; input asked for as far as it can be held, and put
 * into receive buffers as the driver gives them; refusals. */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/devices/testing/fake_env.h"
#include "actors/devices/testing/virtio_driver.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_mmio.h"

#define BASE 0xd0000000ull
#define IRQ 7
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define DATA VIRTIO_DRIVER_DATA

static fake_env_t *s_f;
static virtio_driver_t s_d;

static void s_start(void)
{
    s_f = fake_env_new(1u << 20);
    cr_assert_not_null(s_f);
    dev_virtio_console_config_t cfg = {.base = BASE, .irq = IRQ};
    s_f->dev = dev_virtio_console_new(&cfg, &s_f->env);
    cr_assert_not_null(s_f->dev);
    s_d = (virtio_driver_t){.f = s_f, .base = BASE, .size = 8, .n_queues = 2};
    virtio_driver_init(&s_d, V1);
}

static void s_stop(void)
{
    fake_env_destroy(&s_f);
}

/* Sends text on transmitq as one buffer at gpa, descriptor desc. */
static void s_send(uint16_t desc, uint64_t gpa, const char *text)
{
    s_d.q = VIRTIO_CONSOLE_TX;
    memcpy(s_f->ram + gpa, text, strlen(text));
    virtio_driver_desc(&s_d, desc, gpa, (uint32_t)strlen(text), 0, 0);
    virtio_driver_offer(&s_d, desc);
}

/* Gives a receive buffer of len bytes at gpa. */
static void s_give(uint16_t desc, uint64_t gpa, uint32_t len)
{
    s_d.q = VIRTIO_CONSOLE_RX;
    virtio_driver_desc(&s_d, desc, gpa, len, VIRTQ_DESC_F_WRITE, 0);
    virtio_driver_offer(&s_d, desc);
}

TestSuite(virtio_console, .init = s_start, .fini = s_stop);

Test(virtio_console, is_device_3_with_two_queues)
{
    cr_expect_eq(virtio_driver_rd(&s_d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
    virtio_driver_wr(&s_d, VIRTIO_MMIO_QUEUE_SEL, 2);
    cr_expect_eq(virtio_driver_rd(&s_d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "no third queue");
}

Test(virtio_console, transmits_to_the_console)
{
    s_send(0, DATA, "hello, ");
    s_send(1, DATA + 0x100, "world\n");
    s_d.q = VIRTIO_CONSOLE_TX;
    cr_assert_eq(virtio_driver_used_idx(&s_d), 2);
    cr_expect_eq(s_f->console_len, 13);
    cr_expect_eq(memcmp(s_f->console_out, "hello, world\n", 13), 0);
    cr_expect(s_f->irq[IRQ]);
}

Test(virtio_console, output_waits_for_room_and_is_used_once_out)
{
    s_f->console_room = 4;
    s_send(0, DATA, "0123456789");
    s_d.q = VIRTIO_CONSOLE_TX;
    cr_expect_eq(virtio_driver_used_idx(&s_d), 0, "held while the console is full");
    cr_expect_eq(s_f->console_len, 4);
    s_send(1, DATA + 0x100, "ab");
    cr_expect_eq(s_f->console_len, 4, "nothing overtakes the held chain");
    s_f->console_room = 100;
    s_f->dev->ops->console_ready(s_f->dev);
    s_d.q = VIRTIO_CONSOLE_TX;
    cr_assert_eq(virtio_driver_used_idx(&s_d), 2);
    cr_expect_eq(s_f->console_len, 12);
    cr_expect_eq(memcmp(s_f->console_out, "0123456789ab", 12), 0);
}

Test(virtio_console, input_goes_into_receive_buffers)
{
    s_give(0, DATA, 4);
    cr_expect_eq(s_f->console_want, VIRTIO_CONSOLE_IN_BUF, "asks for what it can hold");
    s_f->dev->ops->console_input(s_f->dev, (const uint8_t *)"abcdef", 6);
    s_d.q = VIRTIO_CONSOLE_RX;
    cr_assert_eq(virtio_driver_used_idx(&s_d), 1);
    uint32_t id, len;
    virtio_driver_used(&s_d, 0, &id, &len);
    cr_expect_eq(len, 4);
    cr_expect_eq(memcmp(s_f->ram + DATA, "abcd", 4), 0);
    cr_expect_eq(fake_env_inspect(s_f, "in_held"), 2, "the rest waits for a buffer");
    cr_expect_eq(s_f->console_want, VIRTIO_CONSOLE_IN_BUF - 2);
    s_give(1, DATA + 0x100, 64);
    s_d.q = VIRTIO_CONSOLE_RX;
    cr_assert_eq(virtio_driver_used_idx(&s_d), 2);
    virtio_driver_used(&s_d, 1, &id, &len);
    cr_expect_eq(len, 2);
    cr_expect_eq(memcmp(s_f->ram + DATA + 0x100, "ef", 2), 0);
    cr_expect(s_f->irq[IRQ]);
}

Test(virtio_console, a_writable_transmit_buffer_needs_a_reset)
{
    s_d.q = VIRTIO_CONSOLE_TX;
    virtio_driver_desc(&s_d, 0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_expect_eq(s_f->console_len, 0);
}

Test(virtio_console, a_readable_receive_buffer_needs_a_reset)
{
    s_d.q = VIRTIO_CONSOLE_RX;
    virtio_driver_desc(&s_d, 0, DATA, 8, 0, 0);
    virtio_driver_offer(&s_d, 0);
    s_f->dev->ops->console_input(s_f->dev, (const uint8_t *)"x", 1);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

Test(virtio_console, a_transmit_buffer_outside_ram_needs_a_reset)
{
    s_d.q = VIRTIO_CONSOLE_TX;
    virtio_driver_desc(&s_d, 0, (1u << 20) - 2, 8, 0, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_expect_eq(s_f->console_len, 0);
}
