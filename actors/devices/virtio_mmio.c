#include "actors/devices/virtio_mmio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

struct virtio_mmio_s {
    device_t dev;
    const virtio_type_t *type;
    char *name;        /* spec.name's, owned */
    uint64_t features; /* the type's and this device's */
    void *state;
    uint64_t base;
    uint32_t irq;
    uint32_t status;
    uint32_t device_features_sel, driver_features_sel;
    uint64_t driver_features;
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t config_generation;
    virtq_t queues[VIRTIO_MMIO_QUEUES_MAX];
    struct {
        uint64_t notifies, interrupts, needs_reset, bad_accesses, batches;
    } counts;
};

static virtio_mmio_t *s_of(device_t *dev)
{
    return (virtio_mmio_t *)dev;
}

static uint64_t s_offered(const virtio_mmio_t *m)
{
    return m->features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX;
}

/* The interrupt line follows the interrupt status. */
static void s_line(virtio_mmio_t *m)
{
    device_irq_set(&m->dev, m->irq, m->interrupt_status != 0);
}

static void s_interrupt(virtio_mmio_t *m, uint32_t bits)
{
    m->interrupt_status |= bits;
    m->counts.interrupts++;
    s_line(m);
}

/* A refused access: counted and logged. Returns 0 (the access completes;
 * a read sees 0). */
static int s_refuse(virtio_mmio_t *m, const char *what)
{
    m->counts.bad_accesses++;
    device_log(&m->dev, RT_LOG_INFO, "refused: %s", what);
    return 0;
}

static void s_reset(virtio_mmio_t *m)
{
    if (m->type->reset)
        m->type->reset(m->state);
    for (int i = 0; i < VIRTIO_MMIO_QUEUES_MAX; i++)
        virtq_reset(&m->queues[i]);
    m->status = 0;
    m->device_features_sel = m->driver_features_sel = 0;
    m->driver_features = 0;
    m->queue_sel = 0;
    m->interrupt_status = 0;
    s_line(m);
}

static virtq_t *s_selected(virtio_mmio_t *m)
{
    return m->queue_sel < m->type->n_queues ? &m->queues[m->queue_sel] : NULL;
}

device_t *virtio_mmio_device(virtio_mmio_t *m)
{
    return &m->dev;
}

virtq_t *virtio_mmio_queue(virtio_mmio_t *m, uint16_t q)
{
    return q < m->type->n_queues && m->queues[q].ready ? &m->queues[q] : NULL;
}

void virtio_mmio_used(virtio_mmio_t *m, uint16_t q)
{
    virtq_t *vq = virtio_mmio_queue(m, q);
    if (vq && virtq_should_interrupt(vq, &m->dev))
        s_interrupt(m, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_again(virtio_mmio_t *m, uint16_t q)
{
    /* Timer q: queue q's; an armed one is moved, not doubled. */
    if (device_timer_set(&m->dev, q, device_now_ns(&m->dev)))
        device_log(&m->dev, RT_LOG_WARN, "queue %u: no timer to go on with", q);
    else
        m->counts.batches++;
}

void virtio_mmio_needs_reset(virtio_mmio_t *m, const char *why)
{
    m->counts.needs_reset++;
    device_log(&m->dev, RT_LOG_WARN, "needs a reset: %s", why);
    if (m->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    m->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    s_interrupt(m, VIRTIO_MMIO_INT_CONFIG);
}

/* ---- Registers ---------------------------------------------------------------- */

static int s_config_read(virtio_mmio_t *m, uint32_t offset, uint32_t size, uint64_t *value)
{
    uint8_t config[VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG] = {0};
    if (offset + size > m->type->config_size)
        return s_refuse(m, "a read past the configuration space");
    if (m->type->config)
        m->type->config(m->state, config);
    *value = 0;
    for (uint32_t i = 0; i < size; i++)
        *value |= (uint64_t)config[offset + i] << (8 * i);
    return 0;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    virtio_mmio_t *m = s_of(dev);
    uint32_t offset = (uint32_t)(io->address - m->base);
    *value = 0;
    if (offset >= VIRTIO_MMIO_CONFIG)
        return s_config_read(m, offset - VIRTIO_MMIO_CONFIG, io->size, value);
    if (io->size != 4 || (offset & 3))
        return s_refuse(m, "a register read that is not 32 bits and aligned");
    virtq_t *q = s_selected(m);
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        *value = VIRTIO_MMIO_MAGIC;
        break;
    case VIRTIO_MMIO_VERSION:
        *value = 2;
        break;
    case VIRTIO_MMIO_DEVICE_ID:
        *value = m->type->device_id;
        break;
    case VIRTIO_MMIO_VENDOR_ID:
        *value = 0;
        break;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        *value = m->device_features_sel < 2
                     ? (uint32_t)(s_offered(m) >> (32 * m->device_features_sel))
                     : 0;
        break;
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        *value = q ? VIRTQ_MAX_SIZE : 0;
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        *value = q && q->ready;
        break;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        *value = m->interrupt_status;
        break;
    case VIRTIO_MMIO_STATUS:
        *value = m->status;
        break;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        *value = m->config_generation;
        break;
    default:
        return s_refuse(m, "a read of a register that is not there or write-only");
    }
    return 0;
}

/* FEATURES_OK only for a driver that took nothing never offered, and
 * VERSION_1 (a legacy driver has no place on version 2). */
static void s_features_ok(virtio_mmio_t *m, uint32_t *status)
{
    if ((m->driver_features & ~s_offered(m)) ||
        !(m->driver_features & 1ull << VIRTIO_F_VERSION_1)) {
        *status &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
        s_refuse(m, "features the device did not offer, or not VIRTIO_F_VERSION_1");
        return;
    }
    bool event_idx = m->driver_features & 1ull << VIRTIO_RING_F_EVENT_IDX;
    for (int i = 0; i < VIRTIO_MMIO_QUEUES_MAX; i++)
        m->queues[i].event_idx = event_idx;
}

static int s_write_status(virtio_mmio_t *m, uint32_t value)
{
    if (!value) {
        s_reset(m);
        return 0;
    }
    if (value & ~m->status & VIRTIO_STATUS_FEATURES_OK)
        s_features_ok(m, &value);
    /* Bits are set, not cleared, except by a reset (2.1.1); the device's
     * NEEDS_RESET stays until then. */
    m->status |= value & (uint32_t)~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    return 0;
}

static int s_write_queue_ready(virtio_mmio_t *m, virtq_t *q, uint64_t value)
{
    if (!value) {
        q->ready = false;
        return 0;
    }
    if (virtq_check(q, VIRTQ_MAX_SIZE)) {
        virtio_mmio_needs_reset(m, "a queue made ready with a size that is not a power of "
                                   "two or rings that are not aligned");
        return 0;
    }
    q->ready = true;
    return 0;
}

/* The low or high half of a ring's address, while its queue is not ready. */
static int s_write_ring(virtio_mmio_t *m, virtq_t *q, uint64_t *ring, bool high, uint64_t v)
{
    if (q->ready)
        return s_refuse(m, "a ring address written while the queue is ready");
    *ring = high ? (*ring & 0xffffffffull) | v << 32 : (*ring & ~0xffffffffull) | v;
    return 0;
}

static int s_notify(virtio_mmio_t *m, uint64_t value)
{
    if (!(m->status & VIRTIO_STATUS_DRIVER_OK) || (m->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
        return s_refuse(m, "a queue notified before DRIVER_OK, or while the device needs a "
                           "reset");
    if (value >= m->type->n_queues || !m->queues[value].ready)
        return s_refuse(m, "a notify for a queue that is not ready");
    m->counts.notifies++;
    m->type->notify(m->state, m, (uint16_t)value);
    /* With event indexes: the next kick once the driver goes past what
     * the type took. */
    virtq_want_kicks(&m->queues[value], &m->dev);
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    virtio_mmio_t *m = s_of(dev);
    uint32_t offset = (uint32_t)(io->address - m->base);
    if (offset >= VIRTIO_MMIO_CONFIG) {
        uint32_t at = offset - VIRTIO_MMIO_CONFIG;
        uint8_t bytes[8];
        for (uint32_t i = 0; i < io->size && i < sizeof bytes; i++)
            bytes[i] = (uint8_t)(value >> (8 * i));
        if (at + io->size > m->type->config_size || !m->type->config_write ||
            m->type->config_write(m->state, at, bytes, io->size))
            return s_refuse(m, "a configuration write the device does not take");
        return 0;
    }
    if (io->size != 4 || (offset & 3))
        return s_refuse(m, "a register write that is not 32 bits and aligned");
    virtq_t *q = s_selected(m);
    bool setting_up = (m->status & VIRTIO_STATUS_DRIVER) &&
                      !(m->status & VIRTIO_STATUS_FEATURES_OK);
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        m->device_features_sel = (uint32_t)value;
        return 0;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        m->driver_features_sel = (uint32_t)value;
        return 0;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (!setting_up || m->driver_features_sel > 1)
            return s_refuse(m, "driver features written outside negotiation");
        m->driver_features = (m->driver_features & ~(0xffffffffull << (32 * m->driver_features_sel))) |
                             value << (32 * m->driver_features_sel);
        return 0;
    case VIRTIO_MMIO_QUEUE_SEL:
        m->queue_sel = (uint32_t)value;
        return 0;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (!q || q->ready)
            return s_refuse(m, "a queue size for no queue, or a ready one");
        q->size = (uint16_t)(value > VIRTQ_MAX_SIZE ? 0 : value);
        return 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return q ? s_write_queue_ready(m, q, value) : s_refuse(m, "no queue selected");
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        return s_notify(m, value);
    case VIRTIO_MMIO_INTERRUPT_ACK:
        m->interrupt_status &= ~(uint32_t)value;
        s_line(m);
        return 0;
    case VIRTIO_MMIO_STATUS:
        return s_write_status(m, (uint32_t)value);
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        return q ? s_write_ring(m, q, &q->desc, offset == VIRTIO_MMIO_QUEUE_DESC_HIGH, value)
                 : s_refuse(m, "no queue selected");
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        return q ? s_write_ring(m, q, &q->avail, offset == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, value)
                 : s_refuse(m, "no queue selected");
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        return q ? s_write_ring(m, q, &q->used, offset == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, value)
                 : s_refuse(m, "no queue selected");
    default:
        return s_refuse(m, "a write to a register that is not there or read-only");
    }
}

/* ---- The model ----------------------------------------------------------------- */

static void s_dev_reset(device_t *dev)
{
    s_reset(s_of(dev));
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    virtio_mmio_t *m = s_of(dev);
    rt_inspect_add(node, "device_id", "%u", m->type->device_id);
    rt_inspect_add(node, "status", "0x%x", m->status);
    rt_inspect_add(node, "driver_features", "0x%llx", (unsigned long long)m->driver_features);
    rt_inspect_add(node, "interrupt_status", "0x%x", m->interrupt_status);
    device_inspect_count(node, "notifies", m->counts.notifies);
    device_inspect_count(node, "interrupts", m->counts.interrupts);
    device_inspect_count(node, "needs_reset", m->counts.needs_reset);
    device_inspect_count(node, "bad_accesses", m->counts.bad_accesses);
    device_inspect_count(node, "batches_deferred", m->counts.batches);
    if (m->type->inspect)
        m->type->inspect(m->state, node);
    for (uint16_t i = 0; i < m->type->n_queues; i++) {
        char name[16];
        const virtq_t *q = &m->queues[i];
        snprintf(name, sizeof name, "queue%u", i);
        Vmm__Rt__InspectNode *n = rt_inspect_add(node, name, "%s", q->ready ? "ready" : "off");
        if (!n)
            continue;
        rt_inspect_add(n, "size", "%u", q->size);
        device_inspect_count(n, "popped", q->counts.popped);
        device_inspect_count(n, "pushed", q->counts.pushed);
        device_inspect_count(n, "bad_chains", q->counts.bad);
    }
}

/* A queue a type stopped on (virtio_mmio_again()): on with it, if it is
 * still ready. */
static void s_timer(device_t *dev, uint32_t id)
{
    virtio_mmio_t *m = s_of(dev);
    if (id < m->type->n_queues && m->queues[id].ready &&
        (m->status & VIRTIO_STATUS_DRIVER_OK) &&
        !(m->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
        s_notify(m, id);
}

/* A queue's doorbell (its QueueNotify write, without an exit to the VMM):
 * the same checks as the register's. */
static void s_doorbell(device_t *dev, size_t index)
{
    s_notify(s_of(dev), index);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    virtio_mmio_t *m = s_of(dev);
    Vmm__DeviceState__Virtqueue qs[VIRTIO_MMIO_QUEUES_MAX], *qp[VIRTIO_MMIO_QUEUES_MAX];
    Vmm__DeviceState__VirtioMmio st = VMM__DEVICE_STATE__VIRTIO_MMIO__INIT;
    st.device_id = m->type->device_id;
    st.status = m->status;
    st.device_features_sel = m->device_features_sel;
    st.driver_features_sel = m->driver_features_sel;
    st.driver_features = m->driver_features;
    st.queue_sel = m->queue_sel;
    st.interrupt_status = m->interrupt_status;
    st.config_generation = m->config_generation;
    st.n_queues = m->type->n_queues;
    st.queues = qp;
    for (uint16_t i = 0; i < m->type->n_queues; i++) {
        const virtq_t *q = &m->queues[i];
        vmm__device_state__virtqueue__init(&qs[i]);
        qs[i].size = q->size;
        qs[i].desc = q->desc;
        qs[i].avail = q->avail;
        qs[i].used = q->used;
        qs[i].ready = q->ready;
        qs[i].last_avail = q->last_avail;
        qs[i].used_idx = q->used_idx;
        qs[i].signalled = q->signalled;
        qp[i] = &qs[i];
    }
    return device_pack_state(&st.base, out);
}

/* Whether a saved queue is one a driver could have made. */
static bool s_queue_valid(const Vmm__DeviceState__Virtqueue *s)
{
    virtq_t q = {.size = (uint16_t)s->size, .desc = s->desc, .avail = s->avail, .used = s->used};
    return s->size <= VIRTQ_MAX_SIZE && s->last_avail <= 0xffff && s->used_idx <= 0xffff &&
           s->signalled <= 0xffff && (!s->ready || !virtq_check(&q, VIRTQ_MAX_SIZE));
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    virtio_mmio_t *m = s_of(dev);
    Vmm__DeviceState__VirtioMmio *st = vmm__device_state__virtio_mmio__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    bool ok = st->device_id == m->type->device_id && st->n_queues == m->type->n_queues &&
              st->status <= 0xff && !(st->interrupt_status & ~3u);
    for (size_t i = 0; ok && i < st->n_queues; i++)
        ok = s_queue_valid(st->queues[i]);
    if (ok) {
        m->status = st->status;
        m->device_features_sel = st->device_features_sel;
        m->driver_features_sel = st->driver_features_sel;
        m->driver_features = st->driver_features & s_offered(m);
        m->queue_sel = st->queue_sel;
        m->interrupt_status = st->interrupt_status;
        m->config_generation = st->config_generation;
        bool event_idx = m->driver_features & 1ull << VIRTIO_RING_F_EVENT_IDX;
        for (size_t i = 0; i < st->n_queues; i++) {
            const Vmm__DeviceState__Virtqueue *s = st->queues[i];
            m->queues[i] = (virtq_t){.size = (uint16_t)s->size, .desc = s->desc,
                                     .avail = s->avail, .used = s->used, .ready = s->ready,
                                     .event_idx = event_idx,
                                     .last_avail = (uint16_t)s->last_avail,
                                     .used_idx = (uint16_t)s->used_idx,
                                     .signalled = (uint16_t)s->signalled,
                                     .counts = m->queues[i].counts};
        }
        s_line(m);
    }
    vmm__device_state__virtio_mmio__free_unpacked(st, NULL);
    return ok ? 0 : -EINVAL;
}

/* After a restart: each ready queue goes on from the used index in guest
 * RAM, the last the old host wrote; what it took and never used is taken
 * again. */
static void s_resume(device_t *dev)
{
    virtio_mmio_t *m = s_of(dev);
    if (m->type->reset)
        m->type->reset(m->state); /* what it held in flight died with it */
    for (uint16_t i = 0; i < m->type->n_queues; i++) {
        virtq_t *q = &m->queues[i];
        if (q->ready && virtq_resume(q, dev))
            virtio_mmio_needs_reset(m, "the used ring is not in guest RAM");
    }
    device_log(dev, RT_LOG_INFO, "resumed with status 0x%x", m->status);
    for (uint16_t i = 0; i < m->type->n_queues; i++)
        if (m->queues[i].ready && (m->status & VIRTIO_STATUS_DRIVER_OK))
            s_notify(m, i);
}

static void s_console_input(device_t *dev, const uint8_t *bytes, size_t len)
{
    virtio_mmio_t *m = s_of(dev);
    if (m->type->console_input)
        m->type->console_input(m->state, m, bytes, len);
}

static void s_console_ready(device_t *dev)
{
    virtio_mmio_t *m = s_of(dev);
    if (m->type->console_ready)
        m->type->console_ready(m->state, m);
}

static void s_destroy(device_t *dev)
{
    virtio_mmio_t *m = s_of(dev);
    if (m->type->destroy)
        m->type->destroy(m->state);
    free(m->name);
    free(m);
}

static const device_ops_t s_ops = {
    .kind = "virtio-mmio",
    .read = s_read,
    .write = s_write,
    .reset = s_dev_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .resume = s_resume,
    .timer = s_timer,
    .doorbell = s_doorbell,
    .console_input = s_console_input,
    .console_ready = s_console_ready,
    .destroy = s_destroy,
};

device_t *dev_virtio_mmio_new(const void *config, device_env_t *env)
{
    const virtio_mmio_config_t *cfg = config;
    if (!cfg || !cfg->type || !cfg->type->notify || !cfg->type->n_queues ||
        cfg->type->n_queues > VIRTIO_MMIO_QUEUES_MAX ||
        cfg->type->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG)
        return NULL;
    virtio_mmio_t *m = calloc(1, sizeof *m);
    if (m && !(m->name = strdup(cfg->name ? cfg->name : "virtio"))) {
        free(m);
        m = NULL;
    }
    if (!m)
        return NULL;
    m->type = cfg->type;
    m->features = cfg->type->features | cfg->features;
    m->state = cfg->state;
    m->base = cfg->base;
    m->irq = cfg->irq;
    m->dev = (device_t){.ops = &s_ops, .env = env};
    m->dev.spec = (device_spec_t){
        .name = m->name,
        .n_ranges = 1,
        .ranges = {{.mmio = true, .start = cfg->base, .len = VIRTIO_MMIO_SIZE}},
        .n_irq_lines = 1,
        .irq_lines = {cfg->irq},
    };
    /* A doorbell per queue, matched by the queue's index, for as many
     * queues as a device may have doorbells; the others exit. */
    for (uint16_t q = 0; q < cfg->type->n_queues && q < DEVICE_MAX_DOORBELLS; q++)
        m->dev.spec.doorbells[m->dev.spec.n_doorbells++] = (device_doorbell_t){
            .address = cfg->base + VIRTIO_MMIO_QUEUE_NOTIFY, .length = 4, .has_value = true,
            .value = q};
    return &m->dev;
}
