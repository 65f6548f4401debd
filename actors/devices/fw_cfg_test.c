/* dev_fw_cfg: every item's bytes, the directory, keys, widths, state. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/device_models.h"
#include "actors/devices/fw_cfg.h"
#include "actors/devices/testing/fake_env.h"
#include "proto/device_state.pb-c.h"

static const uint8_t s_boot_fail_wait[] = {0xff, 0xff, 0xff, 0xff};
static const uint8_t s_bootorder[] = "/pci@i0cf8/ide@1,1/drive@0/disk@0";
static const uint8_t s_opt[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

/* Given out of order: the directory sorts them, and their keys follow. */
static const dev_fw_cfg_file_t s_files[] = {
    {"opt/org.example/blob", s_opt, sizeof s_opt},
    {"etc/boot-fail-wait", s_boot_fail_wait, sizeof s_boot_fail_wait},
    {"bootorder", s_bootorder, sizeof s_bootorder},
};

static const dev_fw_cfg_config_t s_config = {
    .n_cpus = 3,
    .max_cpus = 8,
    .ram_size = 0x123456789aull,
    .files = s_files,
    .n_files = 3,
};

static fake_env_t *s_new(const dev_fw_cfg_config_t *cfg)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_fw_cfg_new(cfg, &f->env);
    cr_assert_not_null(f->dev);
    return f;
}

static void s_select(fake_env_t *f, uint16_t key)
{
    cr_assert_eq(fake_env_write(f, false, 0x510, 2, key), 0, "select 0x%x", key);
}

/* n bytes from the data port. */
static void s_data(fake_env_t *f, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t value = 0xaa;
        cr_assert_eq(fake_env_read(f, false, 0x511, 1, &value), 0);
        cr_assert_leq(value, 0xff);
        out[i] = (uint8_t)value;
    }
}

/* Selects key and expects its first n bytes to be want's, then zeros. */
static void s_expect_item(fake_env_t *f, uint16_t key, const void *want, size_t n)
{
    uint8_t got[4200];
    cr_assert_leq(n + 8, sizeof got);
    s_select(f, key);
    s_data(f, got, n + 8);
    cr_expect_arr_eq(got, want, n, "key 0x%x", key);
    for (size_t i = n; i < n + 8; i++)
        cr_expect_eq(got[i], 0, "key 0x%x: byte %zu past its end reads %u", key, i, got[i]);
}

static void s_state(uint32_t key, uint32_t offset, ProtobufCBinaryData *out)
{
    Vmm__DeviceState__FwCfg st = VMM__DEVICE_STATE__FW_CFG__INIT;
    st.key = key;
    st.offset = offset;
    cr_assert_eq(device_pack_state(&st.base, out), 0);
}

Test(fw_cfg, claims_the_two_ports_and_posts_writes)
{
    fake_env_t *f = s_new(&s_config);
    const device_spec_t *spec = &f->dev->spec;
    cr_expect_str_eq(spec->name, "fw-cfg");
    cr_expect_str_eq(f->dev->ops->kind, "fw-cfg");
    cr_expect_eq(device_model_find("fw-cfg"), dev_fw_cfg_new, "in the table of kinds");
    cr_expect_str_eq(device_model_kind(dev_fw_cfg_new), "fw-cfg");
    cr_assert_eq(spec->n_ranges, 1);
    cr_expect_not(spec->ranges[0].mmio);
    cr_expect_eq(spec->ranges[0].start, 0x510);
    cr_expect_eq(spec->ranges[0].len, 2);
    cr_expect_eq(spec->n_irq_lines, 0);
    cr_expect(spec->posted_writes, "a select affects the device's next access only");
    fake_env_destroy(&f);
}

Test(fw_cfg, the_signature_is_selected_at_power_on)
{
    fake_env_t *f = s_new(&s_config);
    uint8_t got[5];
    s_data(f, got, 5);
    cr_expect_arr_eq(got, "QEMU", 4);
    cr_expect_eq(got[4], 0);
    s_expect_item(f, 0x0000, "QEMU", 4);
    fake_env_destroy(&f);
}

Test(fw_cfg, the_id_says_the_traditional_interface_only)
{
    fake_env_t *f = s_new(&s_config);
    static const uint8_t id[] = {0x01, 0x00, 0x00, 0x00};
    s_expect_item(f, 0x0001, id, sizeof id);
    fake_env_destroy(&f);
}

Test(fw_cfg, ram_size_cpus_and_max_cpus_are_little_endian)
{
    fake_env_t *f = s_new(&s_config);
    static const uint8_t ram[] = {0x9a, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00};
    static const uint8_t cpus[] = {0x03, 0x00}, max_cpus[] = {0x08, 0x00};
    s_expect_item(f, 0x0003, ram, sizeof ram);
    s_expect_item(f, 0x0005, cpus, sizeof cpus);
    s_expect_item(f, 0x000f, max_cpus, sizeof max_cpus);
    fake_env_destroy(&f);

    dev_fw_cfg_config_t cfg = {.n_cpus = 0x0102, .ram_size = UINT64_MAX};
    f = s_new(&cfg);
    static const uint8_t all_ones[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t n[] = {0x02, 0x01};
    s_expect_item(f, 0x0003, all_ones, sizeof all_ones);
    s_expect_item(f, 0x0005, n, sizeof n);
    s_expect_item(f, 0x000f, n, sizeof n); /* max_cpus 0: as many as n_cpus */
    fake_env_destroy(&f);
}

/* Fills one 64-byte directory entry as the spec lays it out. */
static void s_entry(uint8_t *e, uint32_t size, uint16_t key, const char *name)
{
    memset(e, 0, 64);
    e[0] = (uint8_t)(size >> 24);
    e[1] = (uint8_t)(size >> 16);
    e[2] = (uint8_t)(size >> 8);
    e[3] = (uint8_t)size;
    e[4] = (uint8_t)(key >> 8);
    e[5] = (uint8_t)key;
    memcpy(e + 8, name, strlen(name));
}

Test(fw_cfg, the_directory_lists_the_files_sorted_by_name_with_their_keys)
{
    fake_env_t *f = s_new(&s_config);
    uint8_t want[4 + 3 * 64] = {0x00, 0x00, 0x00, 0x03};
    s_entry(want + 4, sizeof s_bootorder, 0x0020, "bootorder");
    s_entry(want + 4 + 64, 4, 0x0021, "etc/boot-fail-wait");
    s_entry(want + 4 + 128, 10, 0x0022, "opt/org.example/blob");
    cr_expect_eq(want[4 + 3], 34, "the size of bootorder, with its NUL");
    s_expect_item(f, 0x0019, want, sizeof want);
    fake_env_destroy(&f);
}

Test(fw_cfg, each_file_reads_at_its_key)
{
    fake_env_t *f = s_new(&s_config);
    s_expect_item(f, 0x0020, s_bootorder, sizeof s_bootorder);
    s_expect_item(f, 0x0021, s_boot_fail_wait, sizeof s_boot_fail_wait);
    s_expect_item(f, 0x0022, s_opt, sizeof s_opt);
    s_expect_item(f, 0x0023, "", 0);
    fake_env_destroy(&f);
}

Test(fw_cfg, the_model_keeps_its_own_copy_of_the_files)
{
    uint8_t *bytes = malloc(3);
    char *name = strdup("opt/x");
    cr_assert(bytes && name);
    memcpy(bytes, "abc", 3);
    dev_fw_cfg_file_t file = {name, bytes, 3};
    dev_fw_cfg_config_t cfg = {.n_cpus = 1, .files = &file, .n_files = 1};
    fake_env_t *f = s_new(&cfg);
    memset(bytes, 'z', 3);
    name[0] = 'z';
    free(bytes);
    free(name);
    s_expect_item(f, 0x0020, "abc", 3);
    uint8_t dir[4 + 64];
    s_select(f, 0x0019);
    s_data(f, dir, sizeof dir);
    cr_expect_arr_eq(dir + 12, "opt/x", 6);
    fake_env_destroy(&f);
}

Test(fw_cfg, keys_without_an_item_read_zeros)
{
    fake_env_t *f = s_new(&s_config);
    static const uint16_t absent[] = {0x0002, 0x0004, 0x0006, 0x000e, 0x0018, 0x001f,
                                      0x0023, 0x003f, 0x0040, 0x3fff, 0x8000, 0x8003,
                                      0xc019, 0xffff};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        s_expect_item(f, absent[i], "", 0);
    cr_expect_eq(fake_env_inspect(f, "offset"), 0, "nothing read moves the offset");
    fake_env_destroy(&f);
}

Test(fw_cfg, bit_14_is_not_part_of_the_index_and_bit_15_selects_arch_items)
{
    fake_env_t *f = s_new(&s_config);
    s_expect_item(f, 0x4000, "QEMU", 4);
    s_expect_item(f, 0x4020, s_bootorder, sizeof s_bootorder);
    s_expect_item(f, 0x8000, "", 0);
    s_expect_item(f, 0xc000, "", 0);
    cr_expect_eq(fake_env_inspect(f, "key"), 0xc000, "the key is kept as written");
    fake_env_destroy(&f);
}

Test(fw_cfg, reading_past_the_end_gives_zeros_and_keeps_the_offset)
{
    fake_env_t *f = s_new(&s_config);
    uint8_t got[12];
    s_select(f, 0x0001);
    s_data(f, got, sizeof got);
    cr_expect_eq(got[0], 1);
    for (size_t i = 1; i < sizeof got; i++)
        cr_expect_eq(got[i], 0);
    cr_expect_eq(fake_env_inspect(f, "offset"), 4);
    cr_expect_eq(fake_env_inspect(f, "item_len"), 4);
    fake_env_destroy(&f);
}

Test(fw_cfg, selecting_again_restarts_the_item)
{
    fake_env_t *f = s_new(&s_config);
    uint8_t got[4];
    s_select(f, 0x0000);
    s_data(f, got, 2);
    cr_expect_arr_eq(got, "QE", 2);
    s_select(f, 0x0000);
    s_data(f, got, 4);
    cr_expect_arr_eq(got, "QEMU", 4);
    s_select(f, 0x0021);
    s_data(f, got, 1);
    s_select(f, 0x0000);
    s_data(f, got, 1);
    cr_expect_eq(got[0], 'Q');
    cr_expect_eq(fake_env_inspect(f, "selects"), 4);
    cr_expect_eq(fake_env_inspect(f, "data_reads"), 8);
    fake_env_destroy(&f);
}

/* QEMU's port region takes byte accesses at either port and 16-bit writes. */
Test(fw_cfg, widths_as_qemu_takes_them)
{
    fake_env_t *f = s_new(&s_config);
    uint64_t value = 0;
    s_select(f, 0x0000);
    cr_expect_eq(fake_env_read(f, false, 0x510, 1, &value), 0, "a byte read at 0x510 is data");
    cr_expect_eq(value, 'Q');
    cr_expect_eq(fake_env_write(f, false, 0x510, 1, 0x01), 0, "a byte write selects nothing");
    cr_expect_eq(fake_env_write(f, false, 0x511, 1, 0x41), 0, "data writes are ignored");
    cr_expect_eq(fake_env_read(f, false, 0x511, 1, &value), 0);
    cr_expect_eq(value, 'E', "the key and offset are as they were");
    cr_expect_eq(fake_env_inspect(f, "ignored_writes"), 2);
    cr_expect_eq(f->logs, 0);

    value = 0;
    cr_expect_eq(fake_env_read(f, false, 0x510, 2, &value), -EINVAL, "QEMU refuses it too");
    cr_expect_eq(f->logs, 1);
    cr_expect(strstr(f->last_log, "2-byte read") != NULL, "%s", f->last_log);
    cr_expect_eq(fake_env_inspect(f, "refused"), 1);
    cr_expect_eq(fake_env_read(f, false, 0x511, 1, &value), 0);
    cr_expect_eq(value, 'M', "a refused read takes no byte");
    fake_env_destroy(&f);
}

Test(fw_cfg, no_configuration_is_one_cpu_and_no_files)
{
    fake_env_t *f = s_new(NULL);
    static const uint8_t one[] = {1, 0}, none[] = {0, 0, 0, 0};
    s_expect_item(f, 0x0005, one, sizeof one);
    s_expect_item(f, 0x000f, one, sizeof one);
    s_expect_item(f, 0x0003, "", 0);
    s_expect_item(f, 0x0019, none, sizeof none);
    s_expect_item(f, 0x0020, "", 0);
    fake_env_destroy(&f);
}

static void s_refused(const dev_fw_cfg_config_t *cfg, const char *why)
{
    errno = 0;
    device_t *dev = dev_fw_cfg_new(cfg, NULL);
    cr_expect_null(dev, "%s", why);
    cr_expect_eq(errno, EINVAL, "%s", why);
    device_destroy(&dev);
}

Test(fw_cfg, bad_configurations_are_refused)
{
    char longest[DEV_FW_CFG_NAME_MAX + 1], too_long[DEV_FW_CFG_NAME_MAX + 2];
    memset(longest, 'z', sizeof longest - 1); /* sorts last */
    longest[sizeof longest - 1] = 0;
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = 0;
    dev_fw_cfg_file_t files[DEV_FW_CFG_MAX_FILES + 1];
    char names[DEV_FW_CFG_MAX_FILES + 1][16];
    for (int i = 0; i <= DEV_FW_CFG_MAX_FILES; i++) {
        snprintf(names[i], sizeof names[i], "f%02d", i);
        files[i] = (dev_fw_cfg_file_t){names[i], s_opt, 1};
    }

    s_refused(&(dev_fw_cfg_config_t){.n_cpus = 0}, "no CPU");
    s_refused(&(dev_fw_cfg_config_t){.n_cpus = 4, .max_cpus = 3}, "fewer maximum CPUs");
    dev_fw_cfg_config_t cfg = {.n_cpus = 1, .files = files, .n_files = DEV_FW_CFG_MAX_FILES + 1};
    s_refused(&cfg, "33 files");
    cfg.files = NULL;
    cfg.n_files = 1;
    s_refused(&cfg, "files without their array");
    cfg.files = files;
    files[1].name = "f00";
    cfg.n_files = 2;
    s_refused(&cfg, "a name twice");
    files[1].name = too_long;
    s_refused(&cfg, "a name of 56 bytes leaves no room for its NUL");
    files[1].name = "";
    s_refused(&cfg, "an empty name");
    files[1].name = NULL;
    s_refused(&cfg, "no name");
    files[1] = (dev_fw_cfg_file_t){"f01", NULL, 1};
    s_refused(&cfg, "bytes missing");

    files[1] = (dev_fw_cfg_file_t){longest, NULL, 0};
    cfg.n_files = DEV_FW_CFG_MAX_FILES;
    fake_env_t *f = s_new(&cfg);
    uint8_t dir[4 + 64 * DEV_FW_CFG_MAX_FILES];
    s_select(f, 0x0019);
    s_data(f, dir, sizeof dir);
    cr_expect_eq(dir[3], DEV_FW_CFG_MAX_FILES);
    const uint8_t *last = dir + 4 + 64 * (DEV_FW_CFG_MAX_FILES - 1);
    cr_expect_arr_eq(last + 8, longest, DEV_FW_CFG_NAME_MAX + 1, "sorted last, NUL-ended");
    cr_expect_eq(last[5], 0x3f, "the last key");
    cr_expect_eq(last[3], 0, "an empty file");
    s_expect_item(f, 0x003f, "", 0);
    s_expect_item(f, 0x0020, s_opt, 1);
    fake_env_destroy(&f);
}

Test(fw_cfg, a_saved_selection_restores_and_reset_selects_the_signature)
{
    fake_env_t *f = s_new(&s_config);
    fake_env_t *g = s_new(&s_config);
    uint8_t got[4];
    s_select(f, 0x0020);
    s_data(f, got, 3);
    cr_assert_eq(fake_env_save_restore(f->dev, g->dev), 0);
    cr_expect_eq(fake_env_inspect(g, "key"), 0x20);
    cr_expect_eq(fake_env_inspect(g, "offset"), 3);
    s_data(g, got, 4);
    cr_expect_arr_eq(got, s_bootorder + 3, 4, "reading goes on where it was");

    f->dev->ops->reset(f->dev);
    s_data(f, got, 4);
    cr_expect_arr_eq(got, "QEMU", 4);
    fake_env_destroy(&f);
    fake_env_destroy(&g);
}

Test(fw_cfg, restore_refuses_a_key_or_offset_out_of_range)
{
    fake_env_t *f = s_new(&s_config);
    s_select(f, 0x0021);
    uint8_t got[2];
    s_data(f, got, 1);
    struct {
        uint32_t key, offset;
        int rc;
    } cases[] = {
        {0x10000, 0, -EINVAL}, {0x0000, 5, -EINVAL},  {0x0002, 1, -EINVAL},
        {0x8000, 1, -EINVAL},  {0x0021, 5, -EINVAL},  {0x0019, 4 + 3 * 64 + 1, -EINVAL},
        {0x0000, 4, 0},        {0x0019, 4 + 3 * 64, 0}, {0xffff, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ProtobufCBinaryData st;
        s_state(cases[i].key, cases[i].offset, &st);
        cr_expect_eq(f->dev->ops->restore(f->dev, st.data, st.len), cases[i].rc,
                     "key 0x%x offset %u", cases[i].key, cases[i].offset);
        free(st.data);
        if (!cases[i].rc) {
            cr_expect_eq(fake_env_inspect(f, "key"), cases[i].key);
            cr_expect_eq(fake_env_inspect(f, "offset"), cases[i].offset);
            ProtobufCBinaryData back;
            s_state(0x0021, 1, &back);
            cr_assert_eq(f->dev->ops->restore(f->dev, back.data, back.len), 0);
            free(back.data);
        }
    }
    static const uint8_t garbage[] = {0xff, 0xff};
    cr_expect_eq(f->dev->ops->restore(f->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(fake_env_inspect(f, "key"), 0x21, "a refused state changes nothing");
    s_data(f, got, 2);
    cr_expect_eq(got[0], 0xff);
    cr_expect_eq(got[1], 0xff);
    fake_env_destroy(&f);
}
