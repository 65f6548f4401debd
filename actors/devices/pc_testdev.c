#include "actors/devices/pc_testdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

#define S_LINES 24
#define S_IOMEM_BASE 0xff000000ull
#define S_IOMEM_LEN 0x10000u
#define S_PAGE 4096u

/* QEMU's port regions, each with the widths it takes. */
typedef enum { S_LATCH, S_FLUSH, S_IRQ } s_kind_t;

typedef struct {
    uint16_t start, len;
    uint8_t min, max;
    s_kind_t kind;
} s_region_t;

static const s_region_t s_regions[] = {
    {0xe0, 4, 1, 4, S_LATCH},
    {0xe4, 4, 4, 4, S_FLUSH},
    {0xe8, 4, 1, 4, S_LATCH}, /* QEMU's byte implementation: the same bytes */
    {0x2000, S_LINES, 1, 1, S_IRQ},
};

typedef struct {
    device_t dev;
    uint32_t latch;
    uint32_t irq_levels; /* a bit per line */
    struct {
        uint64_t flushes, bad_flushes, irq_writes, refused;
    } counts;
    uint8_t iomem[S_IOMEM_LEN];
} pc_testdev_t;

static pc_testdev_t *s_of(device_t *dev)
{
    return (pc_testdev_t *)dev;
}

/* The bits of a port piece (at most 4 bytes). */
static uint64_t s_mask(uint32_t size)
{
    return (1ull << (8 * size)) - 1;
}

/* The device's port ranges hold nothing but these regions. */
static const s_region_t *s_region_of(uint64_t port)
{
    size_t i = 0;
    while (port < s_regions[i].start || port - s_regions[i].start >= s_regions[i].len)
        i++;
    return &s_regions[i];
}

/* The next piece of an access, as QEMU's memory core cuts it: inside the
 * region and no wider than it takes. (QEMU also cuts at the alignment of
 * the offset, which none of these regions can tell apart.) */
static uint32_t s_piece_size(const s_region_t *r, uint32_t offset, uint32_t left)
{
    uint32_t size = left < r->len - offset ? left : r->len - offset;
    return size < r->max ? size : r->max;
}

static void s_irq_set(pc_testdev_t *t, uint32_t line, bool high)
{
    t->irq_levels = (t->irq_levels & ~(1u << line)) | (uint32_t)high << line;
    device_irq_set(&t->dev, line, high);
}

/* QEMU would mprotect() the page; the model sees that it is guest RAM. */
static void s_flush(pc_testdev_t *t, uint32_t gpa)
{
    uint8_t page[S_PAGE];
    uint64_t start = gpa & ~(uint64_t)(S_PAGE - 1);
    int rc = device_guest_read(&t->dev, start, page, sizeof page);
    if (rc) {
        t->counts.bad_flushes++;
        device_log(&t->dev, RT_LOG_INFO, "flush of page 0x%llx (written 0x%x): %s",
                   (unsigned long long)start, gpa, strerror(-rc));
        return;
    }
    t->counts.flushes++;
}

/* One piece that its region takes: a read's value, or 0 for a write. */
static uint64_t s_piece(pc_testdev_t *t, const s_region_t *r, uint32_t offset, uint32_t size,
                        bool write, uint64_t value)
{
    switch (r->kind) {
    case S_LATCH: {
        unsigned shift = 8 * offset;
        uint32_t mask = (uint32_t)(s_mask(size) << shift);
        if (!write)
            return (t->latch & mask) >> shift;
        t->latch = (t->latch & ~mask) | ((uint32_t)(value << shift) & mask);
        return 0;
    }
    case S_FLUSH:
        if (write)
            s_flush(t, (uint32_t)value);
        return 0;
    default: /* S_IRQ, a byte a line */
        if (write) {
            t->counts.irq_writes++;
            s_irq_set(t, offset, value != 0);
        }
        return 0;
    }
}

static int s_port_access(pc_testdev_t *t, const device_io_t *io, bool write, uint64_t *value)
{
    uint64_t in = write ? *value : 0, out = 0;
    uint32_t refused = 0;
    for (uint32_t done = 0, size; done < io->size; done += size) {
        const s_region_t *r = s_region_of(io->address + done);
        uint32_t offset = (uint32_t)(io->address + done - r->start);
        size = s_piece_size(r, offset, io->size - done);
        if (size < r->min)
            refused += size;
        else
            out |= s_piece(t, r, offset, size, write, (in >> (8 * done)) & s_mask(size))
                   << (8 * done);
    }
    if (!write)
        *value = out;
    if (!refused)
        return 0;
    t->counts.refused++;
    device_log(&t->dev, RT_LOG_INFO,
               "a %u-byte %s at port 0x%llx: %u of its bytes reach the flush port, which takes "
               "4-byte accesses only (QEMU refuses them too)",
               io->size, write ? "write" : "read", (unsigned long long)io->address, refused);
    return refused == io->size ? -EINVAL : 0;
}

/* The window: bytes, whatever the width (QEMU's cuts are invisible). */
static void s_iomem_access(pc_testdev_t *t, const device_io_t *io, bool write, uint64_t *value)
{
    uint8_t *at = t->iomem + (io->address - S_IOMEM_BASE);
    uint64_t v = write ? *value : 0;
    for (uint32_t i = 0; i < io->size; i++)
        if (write)
            at[i] = (uint8_t)(v >> (8 * i));
        else
            v |= (uint64_t)at[i] << (8 * i);
    *value = v;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    pc_testdev_t *t = s_of(dev);
    if (io->mmio) {
        s_iomem_access(t, io, false, value);
        return 0;
    }
    return s_port_access(t, io, false, value);
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    pc_testdev_t *t = s_of(dev);
    if (io->mmio) {
        s_iomem_access(t, io, true, &value);
        return 0;
    }
    return s_port_access(t, io, true, &value);
}

/* Drives each line that is high, or was, to its level in levels. */
static void s_drive(pc_testdev_t *t, uint32_t levels)
{
    for (uint32_t line = 0; line < S_LINES; line++)
        if (((levels | t->irq_levels) >> line) & 1)
            s_irq_set(t, line, (levels >> line) & 1);
}

static void s_reset(device_t *dev)
{
    pc_testdev_t *t = s_of(dev);
    t->latch = 0;
    memset(t->iomem, 0, sizeof t->iomem);
    s_drive(t, 0);
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    pc_testdev_t *t = s_of(dev);
    rt_inspect_add(node, "latch", "0x%08x", t->latch);
    rt_inspect_add(node, "irq_levels", "0x%06x", t->irq_levels);
    device_inspect_count(node, "flushes", t->counts.flushes);
    device_inspect_count(node, "bad_flushes", t->counts.bad_flushes);
    device_inspect_count(node, "irq_writes", t->counts.irq_writes);
    device_inspect_count(node, "refused", t->counts.refused);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    pc_testdev_t *t = s_of(dev);
    Vmm__DeviceState__PcTestdev st = VMM__DEVICE_STATE__PC_TESTDEV__INIT;
    st.latch = t->latch;
    st.iomem = (ProtobufCBinaryData){sizeof t->iomem, t->iomem};
    st.irq_levels = t->irq_levels;
    return device_pack_state(&st.base, out);
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    pc_testdev_t *t = s_of(dev);
    Vmm__DeviceState__PcTestdev *st = vmm__device_state__pc_testdev__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    int rc = st->iomem.len != sizeof t->iomem || st->irq_levels >> S_LINES ? -EINVAL : 0;
    if (!rc) {
        t->latch = st->latch;
        memcpy(t->iomem, st->iomem.data, sizeof t->iomem);
        s_drive(t, st->irq_levels);
    }
    vmm__device_state__pc_testdev__free_unpacked(st, NULL);
    return rc;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "pc-testdev",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .destroy = s_destroy,
};

device_t *dev_pc_testdev_new(const void *config, device_env_t *env)
{
    (void)config;
    pc_testdev_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->dev = (device_t){.ops = &s_ops, .env = env};
    t->dev.spec = (device_spec_t){
        .name = "pc-testdev",
        .n_ranges = 3,
        .ranges = {{.start = 0xe0, .len = 12}, /* the latch, flush and byte latch */
                   {.start = 0x2000, .len = S_LINES},
                   {.mmio = true, .start = S_IOMEM_BASE, .len = S_IOMEM_LEN}},
        .n_irq_lines = S_LINES,
    };
    for (uint32_t line = 0; line < S_LINES; line++)
        t->dev.spec.irq_lines[line] = line;
    return &t->dev;
}
