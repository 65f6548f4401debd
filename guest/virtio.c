#include "guest/virtio.h"

/* Freestanding, and 32-bit clean: multiboot kernels (guest/mb) use it too. */
static inline void s_pause(void)
{
    __asm__ volatile("pause" : : : "memory");
}

/* Register offsets and status bits (virtio 1.x 4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_VERSION_1 (1ull << 32)
#define D_NEXT 1
#define D_WRITE 2

static uint32_t s_rd(guest_virtio_t *v, uint32_t offset)
{
    return v->regs[offset / 4];
}

static void s_wr(guest_virtio_t *v, uint32_t offset, uint32_t value)
{
    v->regs[offset / 4] = value;
}

static void s_wr64(guest_virtio_t *v, uint32_t low, const void *p)
{
    uint64_t a = (uint64_t)(uintptr_t)p;
    s_wr(v, low, (uint32_t)a);
    s_wr(v, low + 4, (uint32_t)(a >> 32));
}

int guest_virtio_init(guest_virtio_t *v, uint64_t base, uint32_t device_id, uint64_t features,
                      uint16_t n_queues)
{
    v->regs = (volatile uint32_t *)(uintptr_t)base;
    v->n_queues = n_queues;
    if (s_rd(v, R_MAGIC) != 0x74726976 || s_rd(v, R_VERSION) != 2)
        return 1;
    if (s_rd(v, R_DEVICE_ID) != device_id)
        return 2;
    s_wr(v, R_STATUS, 0);
    s_wr(v, R_STATUS, S_ACKNOWLEDGE);
    s_wr(v, R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    features |= F_VERSION_1;
    for (uint32_t sel = 0; sel < 2; sel++) {
        s_wr(v, R_DRIVER_FEATURES_SEL, sel);
        s_wr(v, R_DRIVER_FEATURES, (uint32_t)(features >> (32 * sel)));
    }
    s_wr(v, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(s_rd(v, R_STATUS) & S_FEATURES_OK))
        return 3;
    for (uint16_t i = 0; i < n_queues && i < GUEST_VIRTIO_QUEUES; i++) {
        guest_virtio_queue_t *q = &v->q[i];
        s_wr(v, R_QUEUE_SEL, i);
        if (s_rd(v, R_QUEUE_NUM_MAX) < GUEST_VIRTIO_QSIZE)
            return 4;
        s_wr(v, R_QUEUE_NUM, GUEST_VIRTIO_QSIZE);
        q->avail.flags = q->avail.idx = q->used.idx = 0;
        q->next_desc = q->last_used = 0;
        s_wr64(v, R_QUEUE_DESC_LOW, q->desc);
        s_wr64(v, R_QUEUE_DRIVER_LOW, &q->avail);
        s_wr64(v, R_QUEUE_DEVICE_LOW, &q->used);
        s_wr(v, R_QUEUE_READY, 1);
    }
    s_wr(v, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return 0;
}

uint16_t guest_virtio_add(guest_virtio_t *v, uint16_t qi, const guest_virtio_buf_t *bufs,
                          uint16_t n)
{
    guest_virtio_queue_t *q = &v->q[qi];
    uint16_t head = q->next_desc;
    for (uint16_t i = 0; i < n; i++) {
        uint16_t d = (uint16_t)((head + i) % GUEST_VIRTIO_QSIZE);
        q->desc[d].addr = bufs[i].addr;
        q->desc[d].len = bufs[i].len;
        q->desc[d].flags = (uint16_t)((bufs[i].write ? D_WRITE : 0) | (i + 1 < n ? D_NEXT : 0));
        q->desc[d].next = (uint16_t)((d + 1) % GUEST_VIRTIO_QSIZE);
    }
    q->next_desc = (uint16_t)((head + n) % GUEST_VIRTIO_QSIZE);
    q->avail.ring[q->avail.idx % GUEST_VIRTIO_QSIZE] = head;
    /* The descriptors and the entry before the index that shows them. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->avail.idx++;
    return head;
}

void guest_virtio_kick(guest_virtio_t *v, uint16_t q)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    s_wr(v, R_QUEUE_NOTIFY, q);
}

uint16_t guest_virtio_submit(guest_virtio_t *v, uint16_t q, const guest_virtio_buf_t *bufs,
                             uint16_t n)
{
    uint16_t head = guest_virtio_add(v, q, bufs, n);
    guest_virtio_kick(v, q);
    return head;
}

uint16_t guest_virtio_wait(guest_virtio_t *v, uint16_t qi, uint32_t *len)
{
    guest_virtio_queue_t *q = &v->q[qi];
    /* Bounded by time, not looks: a look costs a hundred times more at the
     * emulated CPL 0 than at CPL 3, and a device by message is slow. */
    uint64_t start = __builtin_ia32_rdtsc();
    while (*(volatile uint16_t *)&q->used.idx == q->last_used) {
        if (__builtin_ia32_rdtsc() - start > GUEST_VIRTIO_WAIT_CYCLES) {
            *len = 0;
            return GUEST_VIRTIO_NONE;
        }
        s_pause();
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t i = q->last_used++ % GUEST_VIRTIO_QSIZE;
    *len = q->used.ring[i].len;
    return (uint16_t)q->used.ring[i].id;
}

uint32_t guest_virtio_status(guest_virtio_t *v)
{
    return s_rd(v, R_STATUS);
}

uint32_t guest_virtio_ack(guest_virtio_t *v)
{
    uint32_t status = s_rd(v, R_INTERRUPT_STATUS);
    s_wr(v, R_INTERRUPT_ACK, status);
    return status;
}
