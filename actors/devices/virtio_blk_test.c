/* virtio-blk on a fake environment: its configuration, reads, writes,
 * flushes and GET_ID against the fake's disk, 32 requests at one kick, and
 * each request a driver gets wrong. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/testing/fake_env.h"
#include "actors/devices/testing/virtio_driver.h"
#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_mmio.h"

#define BASE 0xd0000000ull
#define IRQ 5
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define DATA VIRTIO_DRIVER_DATA
#define DISK (64u * 1024u) /* 128 sectors */
#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT

static fake_env_t *s_f;
static virtio_driver_t s_d;

/* A disk on a fresh environment (the suite's first is dropped: a test's
 * own .init does not replace the suite's). */
static void s_make(bool readonly, const char *serial)
{
    fake_env_destroy(&s_f);
    s_f = fake_env_new(1u << 20);
    cr_assert_not_null(s_f);
    s_f->disk = malloc(DISK);
    cr_assert_not_null(s_f->disk);
    for (size_t i = 0; i < DISK; i++)
        s_f->disk[i] = (uint8_t)(i / VIRTIO_BLK_SECTOR);
    s_f->disk_size = DISK;
    dev_virtio_blk_config_t cfg = {.base = BASE, .irq = IRQ, .path = "/images/disk.raw",
                                   .readonly = readonly, .serial = serial};
    s_f->dev = dev_virtio_blk_new(&cfg, &s_f->env);
    cr_assert_not_null(s_f->dev);
    s_d = (virtio_driver_t){.f = s_f, .base = BASE, .size = 128};
    virtio_driver_init(&s_d, V1 | 1ull << VIRTIO_BLK_F_FLUSH);
}

static void s_start(void)
{
    s_make(false, NULL);
}

static void s_stop(void)
{
    fake_env_destroy(&s_f);
}

/* A header at gpa: type and sector. */
static void s_header(uint64_t gpa, uint32_t type, uint64_t sector)
{
    memset(s_f->ram + gpa, 0, 16);
    memcpy(s_f->ram + gpa, &type, 4);
    memcpy(s_f->ram + gpa + 8, &sector, 8);
}

/* A request of three descriptors from desc: the header (16 bytes at hdr),
 * data (len bytes at data, device-writable when data_write), the status
 * byte at status. */
static void s_request3(uint16_t desc, uint64_t hdr, uint64_t data, uint32_t len,
                       bool data_write, uint64_t status)
{
    virtio_driver_desc(&s_d, desc, hdr, 16, N, (uint16_t)(desc + 1));
    virtio_driver_desc(&s_d, (uint16_t)(desc + 1), data, len, (uint16_t)(N | (data_write ? W : 0)),
                       (uint16_t)(desc + 2));
    virtio_driver_desc(&s_d, (uint16_t)(desc + 2), status, 1, W, 0);
    s_f->ram[status] = 0xff;
}

/* Sends one request (type, sector, len bytes of data at DATA + 0x1000) and
 * returns its status; *used gets the used length. */
static uint8_t s_do(uint32_t type, uint64_t sector, uint32_t len, bool data_write,
                    uint32_t *used)
{
    uint16_t before = virtio_driver_used_idx(&s_d);
    s_header(DATA, type, sector);
    s_request3(0, DATA, DATA + 0x1000, len, data_write, DATA + 0x100);
    virtio_driver_offer(&s_d, 0);
    cr_assert_eq(virtio_driver_used_idx(&s_d), (uint16_t)(before + 1), "the request is used");
    uint32_t id;
    virtio_driver_used(&s_d, before, &id, used);
    cr_assert_eq(id, 0);
    return s_f->ram[DATA + 0x100];
}

static uint32_t s_config32(uint32_t offset)
{
    return virtio_driver_rd(&s_d, VIRTIO_MMIO_CONFIG + offset);
}

TestSuite(virtio_blk, .init = s_start, .fini = s_stop);

Test(virtio_blk, presents_the_disk)
{
    cr_expect_eq(virtio_driver_rd(&s_d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
    cr_expect_str_eq(s_f->disk_path, "/images/disk.raw");
    cr_expect_not(s_f->disk_readonly);
    cr_expect_eq(s_config32(0), DISK / 512, "capacity in sectors");
    cr_expect_eq(s_config32(4), 0);
    cr_expect_eq(s_config32(12), VIRTIO_BLK_SEG_MAX);
    cr_expect_eq(s_config32(20), 512);
    virtio_driver_wr(&s_d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t f = virtio_driver_rd(&s_d, VIRTIO_MMIO_DEVICE_FEATURES);
    cr_expect(f & 1u << VIRTIO_BLK_F_FLUSH);
    cr_expect(f & 1u << VIRTIO_BLK_F_SEG_MAX);
    cr_expect(f & 1u << VIRTIO_BLK_F_BLK_SIZE);
    cr_expect_not(f & 1u << VIRTIO_BLK_F_RO);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

Test(virtio_blk, reads_sectors_into_guest_ram)
{
    uint32_t used;
    cr_assert_eq(s_do(VIRTIO_BLK_T_IN, 3, 1024, true, &used), VIRTIO_BLK_S_OK);
    cr_expect_eq(used, 1025, "the data and the status");
    cr_expect_eq(s_f->ram[DATA + 0x1000], 3);
    cr_expect_eq(s_f->ram[DATA + 0x1000 + 1023], 4);
    cr_expect(s_f->irq[IRQ], "the used-buffer interrupt");
}

Test(virtio_blk, writes_reach_the_disk_and_a_flush_makes_them_durable)
{
    memset(s_f->ram + DATA + 0x1000, 0xab, 2048);
    uint32_t used;
    cr_assert_eq(s_do(VIRTIO_BLK_T_OUT, 10, 2048, false, &used), VIRTIO_BLK_S_OK);
    cr_expect_eq(used, 1);
    cr_expect_eq(s_f->disk[10 * 512], 0xab);
    cr_expect_eq(s_f->disk[14 * 512 - 1], 0xab);
    cr_expect_eq(s_f->disk[14 * 512], 14, "nothing past the request");
    cr_expect_eq(s_f->unflushed, 1);
    cr_assert_eq(s_do(VIRTIO_BLK_T_FLUSH, 0, 0, false, &used), VIRTIO_BLK_S_OK);
    cr_expect_eq(s_f->disk_flushes, 1);
    cr_expect_eq(s_f->unflushed, 0);
    cr_expect_eq(fake_env_inspect(s_f, "written_bytes"), 2048);
}

Test(virtio_blk, a_flush_without_data_takes_two_descriptors)
{
    s_header(DATA, VIRTIO_BLK_T_FLUSH, 0);
    virtio_driver_desc(&s_d, 0, DATA, 16, N, 1);
    virtio_driver_desc(&s_d, 1, DATA + 0x100, 1, W, 0);
    virtio_driver_offer(&s_d, 0);
    cr_assert_eq(virtio_driver_used_idx(&s_d), 1);
    cr_expect_eq(s_f->ram[DATA + 0x100], VIRTIO_BLK_S_OK);
    cr_expect_eq(s_f->disk_flushes, 1);
}

Test(virtio_blk, get_id_answers_the_images_name)
{
    uint32_t used;
    cr_assert_eq(s_do(VIRTIO_BLK_T_GET_ID, 0, 20, true, &used), VIRTIO_BLK_S_OK);
    cr_expect_eq(used, 21);
    cr_expect_str_eq((char *)s_f->ram + DATA + 0x1000, "disk.raw");
}

Test(virtio_blk, get_id_of_twenty_bytes_has_no_terminator)
{
    s_make(false, "abcdefghijklmnopqrstuvwxyz");
    uint32_t used;
    memset(s_f->ram + DATA + 0x1000, 0xee, 32);
    cr_assert_eq(s_do(VIRTIO_BLK_T_GET_ID, 0, 32, true, &used), VIRTIO_BLK_S_OK);
    cr_expect_eq(used, 21);
    cr_expect_eq(memcmp(s_f->ram + DATA + 0x1000, "abcdefghijklmnopqrst", 20), 0);
    cr_expect_eq(s_f->ram[DATA + 0x1000 + 20], 0xee);
}

Test(virtio_blk, thirty_two_requests_at_one_kick)
{
    /* 32 reads of one sector each, every third split over two buffers. */
    for (uint16_t r = 0; r < 32; r++) {
        uint64_t hdr = DATA + 0x100u * r, data = DATA + 0x10000 + 512u * r;
        s_header(hdr, VIRTIO_BLK_T_IN, r);
        uint16_t d0 = (uint16_t)(r * 2);
        virtio_driver_desc(&s_d, d0, hdr, 16, N, (uint16_t)(d0 + 1));
        if (r % 3) {
            virtio_driver_desc(&s_d, (uint16_t)(d0 + 1), data, 513, W, 0);
        } else {
            virtio_driver_desc(&s_d, (uint16_t)(d0 + 1), data, 512, N | W, (uint16_t)(64 + r));
            virtio_driver_desc(&s_d, (uint16_t)(64 + r), DATA + 0x8000 + r, 1, W, 0);
        }
        virtio_driver_add(&s_d, d0);
    }
    virtio_driver_kick(&s_d);
    cr_assert_eq(virtio_driver_used_idx(&s_d), 32);
    for (uint16_t r = 0; r < 32; r++) {
        uint32_t id, len;
        virtio_driver_used(&s_d, r, &id, &len);
        cr_expect_eq(id, r * 2u, "in the order made available");
        cr_expect_eq(len, 513);
        cr_expect_eq(s_f->ram[DATA + 0x10000 + 512u * r], r);
    }
    cr_expect_eq(fake_env_inspect(s_f, "read_requests"), 32);
}

Test(virtio_blk, a_read_only_disk_refuses_writes)
{
    s_make(true, NULL);
    cr_expect(s_f->disk_readonly);
    virtio_driver_wr(&s_d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_DEVICE_FEATURES) & 1u << VIRTIO_BLK_F_RO);
    uint32_t used;
    cr_expect_eq(s_do(VIRTIO_BLK_T_OUT, 0, 512, false, &used), VIRTIO_BLK_S_IOERR);
    cr_expect_eq(s_f->disk_writes, 0);
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, requests_a_driver_gets_wrong_fail_and_are_counted)
{
    uint32_t used;
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, DISK / 512, 512, true, &used), VIRTIO_BLK_S_IOERR,
                 "past the end");
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, DISK / 512 - 1, 1024, true, &used), VIRTIO_BLK_S_IOERR,
                 "running past the end");
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, &used), VIRTIO_BLK_S_IOERR,
                 "a sector that overflows");
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 0, 100, true, &used), VIRTIO_BLK_S_IOERR,
                 "not whole sectors");
    cr_expect_eq(s_do(VIRTIO_BLK_T_OUT, 0, 512, true, &used), VIRTIO_BLK_S_IOERR,
                 "a writable buffer where the device reads");
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 0, 512, false, &used), VIRTIO_BLK_S_IOERR,
                 "a readable buffer where the device writes");
    cr_expect_eq(s_f->disk_writes, 0);
    cr_expect_eq(fake_env_inspect(s_f, "failed"), 6);
    cr_expect_eq(s_do(99, 0, 512, true, &used), VIRTIO_BLK_S_UNSUPP);
    cr_expect_eq(fake_env_inspect(s_f, "unsupported"), 1);
    cr_expect_not(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
                  "each was answered; the device goes on");
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 1, 512, true, &used), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, a_short_header_fails)
{
    s_header(DATA, VIRTIO_BLK_T_IN, 0);
    virtio_driver_desc(&s_d, 0, DATA, 8, N, 1);
    virtio_driver_desc(&s_d, 1, DATA + 0x100, 1, W, 0);
    virtio_driver_offer(&s_d, 0);
    cr_assert_eq(virtio_driver_used_idx(&s_d), 1);
    cr_expect_eq(s_f->ram[DATA + 0x100], VIRTIO_BLK_S_IOERR);
}

Test(virtio_blk, data_outside_guest_ram_fails_and_touches_nothing)
{
    s_header(DATA, VIRTIO_BLK_T_IN, 0);
    s_request3(0, DATA, (1u << 20) - 256, 512, true, DATA + 0x100);
    virtio_driver_offer(&s_d, 0);
    cr_assert_eq(virtio_driver_used_idx(&s_d), 1);
    cr_expect_eq(s_f->ram[DATA + 0x100], VIRTIO_BLK_S_IOERR);
    cr_expect_eq(s_f->ram[(1u << 20) - 256], 0, "nothing of it written");
}

Test(virtio_blk, a_request_without_a_status_byte_needs_a_reset)
{
    s_header(DATA, VIRTIO_BLK_T_IN, 0);
    virtio_driver_desc(&s_d, 0, DATA, 16, 0, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect_eq(virtio_driver_used_idx(&s_d), 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
}

Test(virtio_blk, a_descriptor_loop_needs_a_reset)
{
    s_header(DATA, VIRTIO_BLK_T_IN, 0);
    virtio_driver_desc(&s_d, 0, DATA, 16, N, 1);
    virtio_driver_desc(&s_d, 1, DATA + 0x1000, 512, N | W, 0);
    virtio_driver_offer(&s_d, 0);
    cr_expect_eq(virtio_driver_used_idx(&s_d), 0);
    cr_expect(virtio_driver_rd(&s_d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

Test(virtio_blk, a_disk_error_fails_the_request)
{
    uint32_t used;
    s_f->storage_error = -EIO;
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_IOERR);
    s_f->storage_error = -EIO;
    cr_expect_eq(s_do(VIRTIO_BLK_T_FLUSH, 0, 0, false, &used), VIRTIO_BLK_S_IOERR);
    cr_expect_eq(s_do(VIRTIO_BLK_T_IN, 0, 512, true, &used), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, an_image_it_cannot_open_makes_no_device)
{
    fake_env_t *f = fake_env_new(4096);
    cr_assert_not_null(f);
    dev_virtio_blk_config_t cfg = {.base = BASE, .irq = IRQ, .path = "/nonexistent"};
    errno = 0;
    cr_expect_null(dev_virtio_blk_new(&cfg, &f->env));
    cr_expect_eq(errno, ENOENT);
    f->disk = calloc(1, 100);
    f->disk_size = 100;
    cr_expect_null(dev_virtio_blk_new(&cfg, &f->env), "smaller than a sector");
    cr_expect_eq(errno, EINVAL);
    fake_env_destroy(&f);
}

Test(virtio_blk, a_full_queue_is_taken_in_batches_between_other_work)
{
    s_make(false, NULL);
    s_d.size = 256;
    virtio_driver_init(&s_d, V1);
    for (uint16_t r = 0; r < 100; r++) {
        s_header(DATA + 0x20u * r, VIRTIO_BLK_T_FLUSH, 0);
        virtio_driver_desc(&s_d, (uint16_t)(2 * r), DATA + 0x20u * r, 16, N, (uint16_t)(2 * r + 1));
        virtio_driver_desc(&s_d, (uint16_t)(2 * r + 1), DATA + 0x8000 + r, 1, W, 0);
        virtio_driver_add(&s_d, (uint16_t)(2 * r));
    }
    virtio_driver_kick(&s_d);
    cr_expect_eq(virtio_driver_used_idx(&s_d), VIRTIO_MMIO_BATCH, "one batch at the kick");
    cr_expect_eq(s_f->disk_flushes, VIRTIO_MMIO_BATCH);
    fake_env_advance(s_f, 0);
    cr_expect_eq(virtio_driver_used_idx(&s_d), 100, "the rest from the timer");
    cr_expect_eq(s_f->disk_flushes, 100);
    cr_expect_eq(fake_env_inspect(s_f, "batches_deferred"), 1);
}
