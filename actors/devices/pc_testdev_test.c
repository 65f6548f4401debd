/* dev_pc_testdev: the latch, flush-page, the 24 lines, the MMIO window, state. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/device_models.h"
#include "actors/devices/pc_testdev.h"
#include "actors/devices/testing/fake_env.h"
#include "proto/device_state.pb-c.h"

#define RAM (64 * 1024)
#define IOMEM 0xff000000ull

static fake_env_t *s_new(void)
{
    fake_env_t *f = fake_env_new(RAM);
    cr_assert_not_null(f);
    f->dev = dev_pc_testdev_new(NULL, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static uint64_t s_in(fake_env_t *f, bool mmio, uint64_t address, uint32_t size)
{
    uint64_t value = 0xdeadbeef;
    cr_assert_eq(fake_env_read(f, mmio, address, size, &value), 0, "read %u at 0x%llx", size,
                 (unsigned long long)address);
    return value;
}

static void s_out(fake_env_t *f, bool mmio, uint64_t address, uint32_t size, uint64_t value)
{
    cr_assert_eq(fake_env_write(f, mmio, address, size, value), 0, "write %u at 0x%llx", size,
                 (unsigned long long)address);
}

static bool s_claims(const device_spec_t *spec, bool mmio, uint64_t address)
{
    for (size_t i = 0; i < spec->n_ranges; i++)
        if (spec->ranges[i].mmio == mmio && address >= spec->ranges[i].start &&
            address - spec->ranges[i].start < spec->ranges[i].len)
            return true;
    return false;
}

Test(pc_testdev, claims_its_ports_window_and_24_lines)
{
    fake_env_t *f = s_new();
    const device_spec_t *spec = &f->dev->spec;
    cr_expect_str_eq(spec->name, "pc-testdev");
    cr_expect_str_eq(f->dev->ops->kind, "pc-testdev");
    cr_expect_eq(device_model_find("pc-testdev"), dev_pc_testdev_new, "in the table of kinds");
    cr_expect_str_eq(device_model_kind(dev_pc_testdev_new), "pc-testdev");
    cr_assert_eq(spec->n_ranges, 3);
    cr_expect(!spec->ranges[0].mmio && spec->ranges[0].start == 0xe0 && spec->ranges[0].len == 12);
    cr_expect(!spec->ranges[1].mmio && spec->ranges[1].start == 0x2000 &&
              spec->ranges[1].len == 24);
    cr_expect(spec->ranges[2].mmio && spec->ranges[2].start == IOMEM &&
              spec->ranges[2].len == 0x10000);
    cr_assert_eq(spec->n_irq_lines, 24);
    for (uint32_t i = 0; i < 24; i++)
        cr_expect_eq(spec->irq_lines[i], i);
    cr_expect(s_claims(spec, false, 0x2017));
    cr_expect_not(s_claims(spec, false, 0x2018), "no line 24");
    cr_expect_not(s_claims(spec, false, 0xdf));
    cr_expect_not(s_claims(spec, false, 0xec));
    cr_expect_not(s_claims(spec, true, IOMEM + 0x10000));
    cr_expect_not(spec->posted_writes, "an interrupt is raised before the VP goes on");
    fake_env_destroy(&f);
}

Test(pc_testdev, the_latch_at_0xe0_takes_every_width_at_its_offset)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0);
    s_out(f, false, 0xe0, 4, 0x12345678);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0x12345678);
    cr_expect_eq(s_in(f, false, 0xe0, 1), 0x78);
    cr_expect_eq(s_in(f, false, 0xe1, 1), 0x56);
    cr_expect_eq(s_in(f, false, 0xe2, 1), 0x34);
    cr_expect_eq(s_in(f, false, 0xe3, 1), 0x12);
    cr_expect_eq(s_in(f, false, 0xe0, 2), 0x5678);
    cr_expect_eq(s_in(f, false, 0xe2, 2), 0x1234);
    s_out(f, false, 0xe1, 1, 0xab);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0x1234ab78);
    s_out(f, false, 0xe2, 2, 0xcdef);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0xcdefab78);
    s_out(f, false, 0xe0, 2, 0x0102);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0xcdef0102);
    cr_expect_eq(fake_env_inspect(f, "latch"), 0xcdef0102);
    fake_env_destroy(&f);
}

Test(pc_testdev, the_byte_latch_at_0xe8_is_the_same_latch)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe8, 4, 0xa1b2c3d4);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0xa1b2c3d4);
    cr_expect_eq(s_in(f, false, 0xe8, 4), 0xa1b2c3d4);
    cr_expect_eq(s_in(f, false, 0xe9, 1), 0xc3);
    cr_expect_eq(s_in(f, false, 0xea, 2), 0xa1b2);
    s_out(f, false, 0xeb, 1, 0x5e);
    cr_expect_eq(s_in(f, false, 0xe3, 1), 0x5e);
    s_out(f, false, 0xe0, 4, 0x11223344);
    cr_expect_eq(s_in(f, false, 0xe8, 4), 0x11223344);
    fake_env_destroy(&f);
}

/* QEMU cuts an unaligned access into aligned pieces, region by region. */
Test(pc_testdev, unaligned_accesses_are_cut_as_qemu_cuts_them)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe0, 4, 0x44332211);
    s_out(f, false, 0xe1, 2, 0xbbaa);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0x44bbaa11);
    cr_expect_eq(s_in(f, false, 0xe1, 2), 0xbbaa);
    cr_expect_eq(f->logs, 0);

    /* Its last byte reaches the flush port: refused there, the rest done. */
    s_out(f, false, 0xe1, 4, 0x99887766);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0x88776611);
    cr_expect_eq(f->logs, 1);
    cr_expect(strstr(f->last_log, "1 of its bytes") != NULL, "%s", f->last_log);
    cr_expect_eq(s_in(f, false, 0xe2, 4), 0x8877, "the flush port's half reads 0");
    cr_expect_eq(s_in(f, false, 0xe6, 4), 0x66110000, "the flush port's half, then 0xe8's");
    cr_expect_eq(fake_env_inspect(f, "refused"), 3);
    cr_expect_eq(fake_env_inspect(f, "flushes"), 0);
    fake_env_destroy(&f);
}

Test(pc_testdev, a_flush_of_a_ram_page_is_counted)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe4, 4, 0x2345);
    s_out(f, false, 0xe4, 4, RAM - 1); /* the last page */
    cr_expect_eq(fake_env_inspect(f, "flushes"), 2);
    cr_expect_eq(fake_env_inspect(f, "bad_flushes"), 0);
    cr_expect_eq(f->logs, 0);
    cr_expect_eq(s_in(f, false, 0xe4, 4), 0, "flush-page reads 0");
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0, "the latch is apart");
    fake_env_destroy(&f);
}

Test(pc_testdev, a_flush_outside_ram_is_logged_and_counted)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe4, 4, RAM);
    s_out(f, false, 0xe4, 4, 0xfee00000);
    cr_expect_eq(fake_env_inspect(f, "flushes"), 0);
    cr_expect_eq(fake_env_inspect(f, "bad_flushes"), 2);
    cr_expect_eq(f->logs, 2);
    cr_expect(strstr(f->last_log, "0xfee00000") != NULL, "%s", f->last_log);
    fake_env_destroy(&f);
}

Test(pc_testdev, the_flush_port_refuses_narrow_accesses)
{
    fake_env_t *f = s_new();
    uint64_t value = 0;
    cr_expect_eq(fake_env_write(f, false, 0xe4, 1, 0x10), -EINVAL);
    cr_expect_eq(fake_env_write(f, false, 0xe4, 2, 0x1000), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, 0xe4, 2, &value), -EINVAL);
    cr_expect_eq(fake_env_read(f, false, 0xe7, 1, &value), -EINVAL);
    cr_expect_eq(fake_env_write(f, false, 0xe5, 2, 0x1000), -EINVAL);
    cr_expect_eq(fake_env_inspect(f, "flushes"), 0);
    cr_expect_eq(fake_env_inspect(f, "refused"), 5);
    cr_expect_eq(f->logs, 5);
    cr_expect(strstr(f->last_log, "flush port") != NULL, "%s", f->last_log);
    fake_env_destroy(&f);
}

Test(pc_testdev, a_byte_sets_its_line_to_a_level)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0x2000, 1, 1);
    cr_expect(f->irq[0]);
    cr_expect_eq(f->irq_rises[0], 1);
    s_out(f, false, 0x2000, 1, 0x80);
    cr_expect(f->irq[0], "!!byte: still high");
    cr_expect_eq(f->irq_rises[0], 1, "no new edge");
    s_out(f, false, 0x2000, 1, 0);
    cr_expect_not(f->irq[0]);
    s_out(f, false, 0x2017, 1, 0xff);
    cr_expect(f->irq[23]);
    cr_expect_eq(f->irq_rises[23], 1);
    cr_expect_eq(fake_env_inspect(f, "irq_levels"), 0x800000);
    cr_expect_eq(s_in(f, false, 0x2017, 1), 0, "lines read 0");
    s_out(f, false, 0x2017, 1, 0);
    cr_expect_not(f->irq[23]);
    s_out(f, false, 0x2000, 1, 2);
    cr_expect_eq(f->irq_rises[0], 2);
    for (int i = 1; i < 23; i++)
        cr_expect_eq(f->irq_rises[i], 0, "line %d untouched", i);
    cr_expect_eq(fake_env_inspect(f, "irq_writes"), 6);
    fake_env_destroy(&f);
}

/* The lines take bytes: QEMU gives each byte of a wider write its line. */
Test(pc_testdev, a_wider_write_sets_a_line_per_byte)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0x2005, 2, 0x0100);
    cr_expect_not(f->irq[5]);
    cr_expect(f->irq[6]);
    s_out(f, false, 0x2014, 4, 0x01000200);
    cr_expect_eq(f->irq[20], false, "the low byte, 0x00");
    cr_expect_eq(f->irq[21], true, "0x02");
    cr_expect_eq(f->irq[22], false);
    cr_expect_eq(f->irq[23], true, "the high byte, 0x01");
    cr_expect_eq(s_in(f, false, 0x2014, 4), 0);
    cr_expect_eq(fake_env_inspect(f, "irq_levels"), 0xa00040);
    fake_env_destroy(&f);
}

Test(pc_testdev, the_window_reads_back_every_width)
{
    fake_env_t *f = s_new();
    cr_expect_eq(s_in(f, true, IOMEM, 8), 0);
    s_out(f, true, IOMEM, 8, 0x0807060504030201ull);
    cr_expect_eq(s_in(f, true, IOMEM, 8), 0x0807060504030201ull);
    cr_expect_eq(s_in(f, true, IOMEM + 4, 4), 0x08070605);
    cr_expect_eq(s_in(f, true, IOMEM + 2, 2), 0x0403);
    cr_expect_eq(s_in(f, true, IOMEM + 7, 1), 0x08);
    s_out(f, true, IOMEM + 3, 2, 0xbbaa);
    cr_expect_eq(s_in(f, true, IOMEM, 8), 0x080706bbaa030201ull, "unaligned too");
    s_out(f, true, IOMEM + 0x1235, 4, 0xcafef00d);
    cr_expect_eq(s_in(f, true, IOMEM + 0x1235, 4), 0xcafef00d);
    cr_expect_eq(s_in(f, true, IOMEM + 0x1236, 1), 0xf0);
    s_out(f, true, IOMEM + 0x101, 1, 0x5a);
    cr_expect_eq(s_in(f, true, IOMEM + 0x100, 2), 0x5a00);
    fake_env_destroy(&f);
}

Test(pc_testdev, the_window_ends_at_64_kib)
{
    fake_env_t *f = s_new();
    s_out(f, true, IOMEM + 0xfff8, 8, 0x1122334455667788ull);
    cr_expect_eq(s_in(f, true, IOMEM + 0xfff8, 8), 0x1122334455667788ull);
    cr_expect_eq(s_in(f, true, IOMEM + 0xfffc, 4), 0x11223344);
    cr_expect_eq(s_in(f, true, IOMEM + 0xfffe, 2), 0x1122);
    cr_expect_eq(s_in(f, true, IOMEM + 0xffff, 1), 0x11);
    s_out(f, true, IOMEM + 0xffff, 1, 0xee);
    cr_expect_eq(s_in(f, true, IOMEM + 0xfff8, 8), 0xee22334455667788ull);
    cr_expect_eq(s_in(f, true, IOMEM + 0xfff0, 8), 0, "the rest untouched");
    fake_env_destroy(&f);
}

static int s_restore(fake_env_t *f, uint32_t latch, size_t iomem_len, uint32_t levels)
{
    uint8_t *iomem = calloc(1, iomem_len + 1);
    cr_assert_not_null(iomem);
    Vmm__DeviceState__PcTestdev st = VMM__DEVICE_STATE__PC_TESTDEV__INIT;
    st.latch = latch;
    st.iomem = (ProtobufCBinaryData){iomem_len, iomem};
    st.irq_levels = levels;
    ProtobufCBinaryData bytes;
    cr_assert_eq(device_pack_state(&st.base, &bytes), 0);
    int rc = f->dev->ops->restore(f->dev, bytes.data, bytes.len);
    free(bytes.data);
    free(iomem);
    return rc;
}

Test(pc_testdev, a_saved_state_restores_and_drives_its_lines)
{
    fake_env_t *f = s_new();
    fake_env_t *g = s_new();
    s_out(f, false, 0xe0, 4, 0xfeedface);
    s_out(f, true, IOMEM + 0x10, 8, 0x0123456789abcdefull);
    s_out(f, true, IOMEM + 0xffff, 1, 0x77);
    s_out(f, false, 0x2007, 1, 1);
    s_out(f, false, 0x2016, 1, 1);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(s_in(g, false, 0xe8, 4), 0xfeedface);
    cr_expect_eq(s_in(g, true, IOMEM + 0x10, 8), 0x0123456789abcdefull);
    cr_expect_eq(s_in(g, true, IOMEM + 0xffff, 1), 0x77);
    cr_expect(g->irq[7], "a restored line is driven again");
    cr_expect(g->irq[22]);
    cr_expect_not(g->irq[8]);
    cr_expect_eq(fake_env_inspect(g, "irq_levels"), 0x400080);

    cr_expect_eq(s_restore(g, 1, 0x10000, 0x1), 0);
    cr_expect(g->irq[0]);
    cr_expect_not(g->irq[7], "a line high before and low in the state goes low");
    cr_expect_not(g->irq[22]);
    cr_expect_eq(s_in(g, false, 0xe0, 4), 1);
    cr_expect_eq(s_in(g, true, IOMEM + 0x10, 8), 0);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

Test(pc_testdev, restore_refuses_a_bad_window_or_lines)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe0, 4, 0x600d);
    s_out(f, true, IOMEM, 1, 0x42);
    cr_expect_eq(s_restore(f, 1, 0xffff, 0), -EINVAL, "a byte short");
    cr_expect_eq(s_restore(f, 1, 0x10001, 0), -EINVAL, "a byte more");
    cr_expect_eq(s_restore(f, 1, 0, 0), -EINVAL, "no window");
    cr_expect_eq(s_restore(f, 1, 0x10000, 1u << 24), -EINVAL, "line 24");
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(f->dev->ops->restore(f->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0x600d, "a refused state changes nothing");
    cr_expect_eq(s_in(f, true, IOMEM, 1), 0x42);
    cr_expect_eq(f->irq_rises[0], 0);
    fake_env_destroy(&f);
}

Test(pc_testdev, reset_clears_the_latch_the_window_and_lowers_the_lines)
{
    fake_env_t *f = s_new();
    s_out(f, false, 0xe0, 4, 0x12345678);
    s_out(f, true, IOMEM + 0x8000, 4, 0xffffffff);
    s_out(f, false, 0x2003, 1, 1);
    s_out(f, false, 0x2017, 1, 1);
    f->dev->ops->reset(f->dev);
    cr_expect_eq(s_in(f, false, 0xe0, 4), 0);
    cr_expect_eq(s_in(f, true, IOMEM + 0x8000, 4), 0);
    cr_expect_not(f->irq[3]);
    cr_expect_not(f->irq[23]);
    cr_expect_eq(fake_env_inspect(f, "irq_levels"), 0);
    fake_env_destroy(&f);
}
