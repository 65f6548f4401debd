#include "actors/devices/fw_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

#define S_SELECTOR_PORT 0x510

/* QEMU's keys (its hw/nvram/fw_cfg.h). */
enum {
    S_KEY_SIGNATURE = 0x00,
    S_KEY_ID = 0x01,
    S_KEY_RAM_SIZE = 0x03,
    S_KEY_NB_CPUS = 0x05,
    S_KEY_MAX_CPUS = 0x0f,
    S_KEY_FILE_DIR = 0x19,
    S_KEY_FILE_FIRST = 0x20,
};
#define S_KEY_ARCH_LOCAL 0x8000
#define S_KEY_INDEX 0x3fff /* without the write channel and arch-local bits */
#define S_ITEMS (S_KEY_FILE_FIRST + DEV_FW_CFG_MAX_FILES)

#define S_ID_TRADITIONAL 1 /* the port interface; DMA would add 2 */
#define S_DIR_ENTRY 64     /* size, key, reserved, name */
#define S_DIR_NAME 56

typedef struct {
    uint8_t *bytes; /* NULL when len is 0 */
    uint32_t len;
} s_item_t;

typedef struct {
    device_t dev;
    s_item_t items[S_ITEMS]; /* by key index; a key with no item has len 0 */
    size_t n_files;
    uint16_t key; /* as written */
    uint32_t offset;
    struct {
        uint64_t selects, data_reads, ignored_writes, refused;
    } counts;
} fw_cfg_t;

static fw_cfg_t *s_of(device_t *dev)
{
    return (fw_cfg_t *)dev;
}

/* The item a key selects: QEMU ignores bits 14 and 15 but for choosing
 * the architecture's items, of which this device has none. */
static uint32_t s_item_len(const fw_cfg_t *f, uint16_t key)
{
    uint16_t index = key & S_KEY_INDEX;
    return !(key & S_KEY_ARCH_LOCAL) && index < S_ITEMS ? f->items[index].len : 0;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    fw_cfg_t *f = s_of(dev);
    if (io->size != 1) {
        f->counts.refused++;
        device_log(dev, RT_LOG_INFO,
                   "a %u-byte read at port 0x%llx: the selector is write-only and data "
                   "comes a byte at a time (QEMU refuses it too)",
                   io->size, (unsigned long long)io->address);
        return -EINVAL;
    }
    /* Either port reads data: in QEMU they are one region. */
    f->counts.data_reads++;
    *value = 0;
    if (f->offset < s_item_len(f, f->key))
        *value = f->items[f->key & S_KEY_INDEX].bytes[f->offset++];
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    fw_cfg_t *f = s_of(dev);
    if (io->size == 1) { /* data, at either port: ignored since QEMU 2.4 */
        f->counts.ignored_writes++;
        return 0;
    }
    /* Only 0x510 has room for two bytes in the device's two ports. */
    f->key = (uint16_t)value;
    f->offset = 0;
    f->counts.selects++;
    return 0;
}

static void s_reset(device_t *dev)
{
    fw_cfg_t *f = s_of(dev);
    f->key = S_KEY_SIGNATURE; /* as QEMU's reset selects it */
    f->offset = 0;
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    fw_cfg_t *f = s_of(dev);
    rt_inspect_add(node, "key", "0x%04x", f->key);
    device_inspect_count(node, "offset", f->offset);
    device_inspect_count(node, "item_len", s_item_len(f, f->key));
    device_inspect_count(node, "files", f->n_files);
    device_inspect_count(node, "selects", f->counts.selects);
    device_inspect_count(node, "data_reads", f->counts.data_reads);
    device_inspect_count(node, "ignored_writes", f->counts.ignored_writes);
    device_inspect_count(node, "refused", f->counts.refused);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    fw_cfg_t *f = s_of(dev);
    Vmm__DeviceState__FwCfg st = VMM__DEVICE_STATE__FW_CFG__INIT;
    st.key = f->key;
    st.offset = f->offset;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    fw_cfg_t *f = s_of(dev);
    Vmm__DeviceState__FwCfg *st = vmm__device_state__fw_cfg__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->key > 0xffff || st->offset > s_item_len(f, (uint16_t)st->key) ? -EINVAL : 0;
    if (!rc) {
        f->key = (uint16_t)st->key;
        f->offset = st->offset;
    }
    vmm__device_state__fw_cfg__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    fw_cfg_t *f = s_of(dev);
    for (size_t i = 0; i < S_ITEMS; i++)
        free(f->items[i].bytes);
    free(f);
}

static const device_ops_t s_ops = {
    .kind = "fw-cfg",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

/* ---- Building the items ------------------------------------------------------ */

static void s_le(uint8_t *out, uint64_t value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(value >> (8 * i));
}

static void s_be(uint8_t *out, uint64_t value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(value >> (8 * (n - 1 - i)));
}

/* Gives key index `index` a copy of bytes. Returns 0 or -ENOMEM. */
static int s_put(fw_cfg_t *f, uint16_t index, const void *bytes, size_t len)
{
    if (!len)
        return 0;
    if (!(f->items[index].bytes = malloc(len)))
        return -ENOMEM;
    memcpy(f->items[index].bytes, bytes, len);
    f->items[index].len = (uint32_t)len;
    return 0;
}

static bool s_files_valid(const dev_fw_cfg_config_t *cfg)
{
    if (cfg->n_files > DEV_FW_CFG_MAX_FILES || (cfg->n_files && !cfg->files))
        return false;
    for (size_t i = 0; i < cfg->n_files; i++) {
        const dev_fw_cfg_file_t *file = &cfg->files[i];
        if (!file->name || !*file->name || strlen(file->name) > DEV_FW_CFG_NAME_MAX ||
            (file->len && !file->bytes) || file->len >= UINT32_MAX)
            return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(file->name, cfg->files[j].name))
                return false;
    }
    return true;
}

/* The files' order in the directory, which is also their keys' order:
 * QEMU inserts each file at its place by name and renumbers those after. */
static void s_sort(const dev_fw_cfg_config_t *cfg, size_t *order)
{
    for (size_t i = 0; i < cfg->n_files; i++) {
        size_t at = i;
        for (; at > 0 && strcmp(cfg->files[i].name, cfg->files[order[at - 1]].name) < 0; at--)
            order[at] = order[at - 1];
        order[at] = i;
    }
}

static int s_add_files(fw_cfg_t *f, const dev_fw_cfg_config_t *cfg)
{
    size_t order[DEV_FW_CFG_MAX_FILES];
    s_sort(cfg, order);
    size_t dir_len = 4 + S_DIR_ENTRY * cfg->n_files;
    uint8_t *dir = calloc(1, dir_len);
    if (!dir)
        return -ENOMEM;
    s_be(dir, cfg->n_files, 4);
    int rc = 0;
    for (size_t i = 0; i < cfg->n_files && !rc; i++) {
        const dev_fw_cfg_file_t *file = &cfg->files[order[i]];
        uint8_t *entry = dir + 4 + S_DIR_ENTRY * i;
        uint16_t key = (uint16_t)(S_KEY_FILE_FIRST + i);
        s_be(entry, file->len, 4);
        s_be(entry + 4, key, 2);
        memcpy(entry + 8, file->name, strlen(file->name)); /* the rest stays NUL */
        rc = s_put(f, key, file->bytes, file->len);
    }
    if (!rc)
        rc = s_put(f, S_KEY_FILE_DIR, dir, dir_len);
    free(dir);
    f->n_files = cfg->n_files;
    return rc;
}

static int s_add_items(fw_cfg_t *f, const dev_fw_cfg_config_t *cfg)
{
    uint8_t id[4], ram[8], cpus[2], max_cpus[2];
    s_le(id, S_ID_TRADITIONAL, sizeof id);
    s_le(ram, cfg->ram_size, sizeof ram);
    s_le(cpus, cfg->n_cpus, sizeof cpus);
    s_le(max_cpus, cfg->max_cpus ? cfg->max_cpus : cfg->n_cpus, sizeof max_cpus);
    int rc = s_put(f, S_KEY_SIGNATURE, "QEMU", 4);
    if (!rc)
        rc = s_put(f, S_KEY_ID, id, sizeof id);
    if (!rc)
        rc = s_put(f, S_KEY_RAM_SIZE, ram, sizeof ram);
    if (!rc)
        rc = s_put(f, S_KEY_NB_CPUS, cpus, sizeof cpus);
    if (!rc)
        rc = s_put(f, S_KEY_MAX_CPUS, max_cpus, sizeof max_cpus);
    return rc ? rc : s_add_files(f, cfg);
}

device_t *dev_fw_cfg_new(const void *config, device_env_t *env)
{
    static const dev_fw_cfg_config_t defaults = {.n_cpus = 1};
    const dev_fw_cfg_config_t *cfg = config ? config : &defaults;
    if (!cfg->n_cpus || (cfg->max_cpus && cfg->max_cpus < cfg->n_cpus) ||
        !s_files_valid(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    fw_cfg_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->dev = (device_t){.ops = &s_ops, .env = env};
    f->dev.spec = (device_spec_t){
        .name = "fw-cfg",
        .n_ranges = 1,
        .ranges = {{.start = S_SELECTOR_PORT, .len = 2}},
        .posted_writes = true,
    };
    if (s_add_items(f, cfg)) {
        s_destroy(&f->dev);
        errno = ENOMEM;
        return NULL;
    }
    s_reset(&f->dev);
    return &f->dev;
}
