/*
 * Per VP state of the synic actor: the synthetic MSRs, message delivery
 * into the SIM page with its queues, event flags in the SIEF page, the
 * SynIC timers; and the partition-wide MSRs (guest OS id, hypercall page,
 * reference counter and TSC page). Guest memory is the partition's,
 * mapped (device_guest.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <x86intrin.h>

#include "actors/synic/synic_internal.h"

/* How long a guest memory access may wait for the partition. On its
 * executor (the usual placement) the call is direct and never waits. */
#define S_GUEST_MEMORY_TIMEOUT_MS 2000

#define S_MSI_ADDRESS 0xfee00000u

/* Reserved bits: a write with any of them set is a #GP. */
#define S_HYPERCALL_RESERVED 0xffcull
#define S_PAGE_RESERVED 0xffeull
#define S_SCONTROL_RESERVED (~SYNIC_ENABLE)
#define S_SINT_RESERVED (0xff00ull | ~((1ull << 19) - 1))
#define S_STIMER_RESERVED (0xe000ull | ~((1ull << 20) - 1))

/* `in eax, SYNIC_HYPERCALL_PORT; ret` */
static const uint8_t s_hypercall_code[] = {0xe5, SYNIC_HYPERCALL_PORT, 0xc3};

/* ---- Reference time -------------------------------------------------------- */

int synic_time_init(synic_t *s, const synic_config_t *cfg)
{
    /* 10^4 reference ticks (100 ns) per ms, tsc_khz TSC ticks per ms: the
     * scale is 2^64 * 10^4 / tsc_khz, below 2^64 only above 10 MHz. */
    if (cfg->tsc_khz <= 10000)
        return -EINVAL;
    s->tsc_khz = cfg->tsc_khz;
    s->tsc_offset = cfg->tsc_offset;
    s->tsc_scale = (uint64_t)(((unsigned __int128)10000 << 64) / cfg->tsc_khz);
    s->ref_offset =
        -(int64_t)(uint64_t)(((unsigned __int128)cfg->tsc_at_zero * s->tsc_scale) >> 64);
    return 0;
}

static void s_write_tsc_page(synic_t *s, uint64_t gpa);
static void s_timers_arm(synic_t *s);

void synic_time_rebase(synic_t *s, uint64_t ref_time, uint64_t guest_tsc)
{
    s->ref_offset =
        (int64_t)(ref_time - (uint64_t)(((unsigned __int128)guest_tsc * s->tsc_scale) >> 64));
    if (s->reference_tsc & SYNIC_ENABLE && s->role != SYNIC_VP) /* the page is central's */
        s_write_tsc_page(s, s->reference_tsc & SYNIC_GPA_MASK);
    s_timers_arm(s); /* due times are reference times: the host's deadline moved */
}

static uint64_t s_ref_at(const synic_t *s, uint64_t guest_tsc)
{
    return (uint64_t)(((unsigned __int128)guest_tsc * s->tsc_scale) >> 64) +
           (uint64_t)s->ref_offset;
}

uint64_t synic_ref_time(const synic_t *s)
{
    uint64_t tsc = __rdtsc();
    rt_actor_input(s->self, SYNIC_INPUT_TSC, 0, &tsc, sizeof tsc);
    return s_ref_at(s, tsc + (uint64_t)s->tsc_offset);
}

/* ---- The partition: guest memory and MSIs ---------------------------------- */

/* Counts and logs a guest memory access that failed. */
static int s_memory_error(synic_t *s, int rc, const char *what, uint64_t gpa, size_t len)
{
    if (!rc)
        return 0;
    s->counts.memory_errors++;
    rt_log(rt_actor_rt(s->self), s->self, RT_LOG_INFO, "cannot %s guest memory 0x%llx+%zu: %s",
           what, (unsigned long long)gpa, len, strerror(-rc));
    return rc;
}

int synic_guest_read(synic_t *s, uint64_t gpa, void *buf, size_t len)
{
    int rc = device_guest_io(&s->guest, s->self, s->partition, gpa, buf, NULL, len);
    return s_memory_error(s, rc, "read", gpa, len);
}

int synic_guest_write(synic_t *s, uint64_t gpa, const void *buf, size_t len)
{
    int rc = device_guest_io(&s->guest, s->self, s->partition, gpa, NULL, buf, len);
    return s_memory_error(s, rc, "write", gpa, len);
}

int synic_guest_update(synic_t *s, uint64_t gpa, uint32_t size, uint64_t and_mask,
                       uint64_t or_mask, uint64_t *old)
{
    int rc = device_guest_update(&s->guest, s->self, s->partition, gpa, size, and_mask, or_mask,
                                 old);
    return s_memory_error(s, rc, "update", gpa, size);
}

void synic_send_msi(synic_t *s, uint32_t vp, uint32_t vector)
{
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = S_MSI_ADDRESS | (uint64_t)vp << 12;
    msi.data = vector;
    Vmm__Partition__RequestMsi request_msi = VMM__PARTITION__REQUEST_MSI__INIT;
    request_msi.vtl = VMM__VTL__VTL0;
    request_msi.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &request_msi;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    s->counts.msis++;
    synic_vp_at(s, vp)->counts.msis++;
    int rc = rt_send(s->self, s->partition, &env);
    if (rc) {
        s->counts.unsent++;
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_WARN, "MSI 0x%x to VP %u: %s", vector,
               vp, strerror(-rc));
    }
}

/* ---- Raising SINTs ------------------------------------------------------------ */

/* Interrupts the guest for (vp, sint) now or, when it cannot take it,
 * once it can (unmasked, SCONTROL enabled). */
static void s_raise(synic_t *s, uint32_t vpi, uint32_t sint)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    uint64_t reg = vp->sint[sint];
    if (!(vp->scontrol & SYNIC_ENABLE) || (reg & SYNIC_SINT_MASKED)) {
        vp->raise_pending |= (uint16_t)(1u << sint);
        return;
    }
    vp->raise_pending &= (uint16_t)~(1u << sint);
    if (reg & SYNIC_SINT_POLLING) /* the guest polls: no interrupt */
        return;
    synic_send_msi(s, vpi, (uint32_t)(reg & SYNIC_SINT_VECTOR_MASK));
}

static void s_raise_pending(synic_t *s, uint32_t vpi)
{
    for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++)
        if (synic_vp_at(s, vpi)->raise_pending & (1u << sint))
            s_raise(s, vpi, sint);
}

/* ---- Messages -------------------------------------------------------------------- */

static bool s_messages_deliverable(const synic_vp_t *vp)
{
    return (vp->scontrol & SYNIC_ENABLE) && (vp->simp & SYNIC_ENABLE);
}

static void s_queue_push(synic_queue_t *q, synic_msg_t *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->count++;
}

static synic_msg_t *s_queue_pop(synic_queue_t *q)
{
    synic_msg_t *m = q->head;
    q->head = m->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    return m;
}

static void s_queue_unpop(synic_queue_t *q, synic_msg_t *m)
{
    m->next = q->head;
    q->head = m;
    if (!q->tail)
        q->tail = m;
    q->count++;
}

/* Writes the queue's first message into the free slot at gpa and raises
 * the SINT. The type goes last, in its own write: a guest polling the slot
 * must not see a type before the rest. */
static void s_write_slot(synic_t *s, uint32_t vpi, uint32_t sint, uint64_t gpa)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    synic_queue_t *q = &vp->queues[sint];
    synic_msg_t *m = s_queue_pop(q);
    if (m->timer >= 0)
        synic_put64(m->payload + 16, synic_ref_time(s)); /* the delivery time */
    uint8_t slot[SYNIC_MESSAGE_SIZE] = {0};
    synic_put32(slot, m->type);
    slot[4] = (uint8_t)m->size;
    /* More wait: the guest writes EOM once it has freed the slot. */
    slot[SYNIC_MESSAGE_FLAGS_OFFSET] = q->count ? SYNIC_MESSAGE_PENDING : 0;
    memcpy(slot + SYNIC_MESSAGE_PAYLOAD_OFFSET, m->payload, m->size);
    if (synic_guest_write(s, gpa + 4, slot + 4, SYNIC_MESSAGE_PAYLOAD_OFFSET - 4 + m->size) ||
        synic_guest_write(s, gpa, slot, 4)) {
        s_queue_unpop(q, m); /* kept for the next EOM or SIMP write */
        return;
    }
    if (m->timer >= 0)
        vp->timers[m->timer].queued = false;
    free(m);
    vp->counts.delivered++;
    s->counts.delivered++;
    s_raise(s, vpi, sint);
}

/* Delivers the first waiting message of (vp, sint) if its slot is free;
 * else marks the slot's message pending so that the guest writes EOM. */
static void s_drain(synic_t *s, uint32_t vpi, uint32_t sint)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    if (!vp->queues[sint].head || !s_messages_deliverable(vp))
        return;
    uint64_t gpa = (vp->simp & SYNIC_GPA_MASK) + sint * SYNIC_MESSAGE_SIZE;
    /* The guest frees a slot (type 0) and then reads the pending flag; we
     * set the flag and then read the type again: one of us sees the other,
     * so no message waits for an EOM that will not come. */
    for (int look = 0; look < 2; look++) {
        uint8_t header[SYNIC_MESSAGE_PAYLOAD_OFFSET];
        if (synic_guest_read(s, gpa, header, sizeof header))
            return;
        if (synic_get32(header) == SYNIC_HVMSG_NONE) {
            s_write_slot(s, vpi, sint, gpa);
            return;
        }
        uint64_t old;
        if (header[SYNIC_MESSAGE_FLAGS_OFFSET] & SYNIC_MESSAGE_PENDING ||
            synic_guest_update(s, gpa + SYNIC_MESSAGE_FLAGS_OFFSET, 1, 0xff,
                               SYNIC_MESSAGE_PENDING, &old) ||
            (old & SYNIC_MESSAGE_PENDING))
            return;
    }
}

static void s_drain_all(synic_t *s, uint32_t vpi)
{
    for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++)
        s_drain(s, vpi, sint);
}

static synic_msg_t *s_msg_new(uint32_t type, const uint8_t *payload, uint32_t size, int timer)
{
    synic_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->type = type;
    m->size = size;
    m->timer = timer;
    if (size)
        memcpy(m->payload, payload, size);
    return m;
}

int synic_post(synic_t *s, uint32_t vpi, uint32_t sint, uint32_t type, const uint8_t *payload,
               uint32_t size)
{
    synic_queue_t *q = &synic_vp_at(s, vpi)->queues[sint];
    if (q->count >= s->queue_limit) {
        s->counts.busy++;
        return -EBUSY;
    }
    synic_msg_t *m = s_msg_new(type, payload, size, -1);
    if (!m)
        return -ENOMEM;
    s_queue_push(q, m);
    s->counts.posted++;
    s_drain(s, vpi, sint);
    return 0;
}

/* ---- Event flags -------------------------------------------------------------- */

static bool s_events_deliverable(const synic_vp_t *vp)
{
    return (vp->scontrol & SYNIC_ENABLE) && (vp->siefp & SYNIC_ENABLE);
}

static uint64_t s_flags_gpa(const synic_vp_t *vp, uint32_t sint)
{
    return (vp->siefp & SYNIC_GPA_MASK) + sint * SYNIC_EVENT_FLAGS_BYTES;
}

/* Keeps a flag for when SCONTROL and SIEFP are both enabled. */
static void s_defer_flag(synic_t *s, synic_vp_t *vp, uint32_t sint, uint32_t flag)
{
    if (!vp->deferred_flags)
        vp->deferred_flags = calloc(SYNIC_SINTS, SYNIC_EVENT_FLAGS_BYTES);
    if (!vp->deferred_flags) {
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_ERROR,
               "no memory to keep event flag %u of SINT %u", flag, sint);
        return;
    }
    vp->deferred_flags[sint * SYNIC_EVENT_FLAGS_BYTES + flag / 8] |= (uint8_t)(1u << (flag % 8));
    s->counts.events_deferred++;
}

void synic_signal_flag(synic_t *s, uint32_t vpi, uint32_t sint, uint32_t flag)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    if (!s_events_deliverable(vp)) {
        s_defer_flag(s, vp, sint, flag);
        return;
    }
    uint64_t gpa = s_flags_gpa(vp, sint) + flag / 8, old;
    uint8_t bit = (uint8_t)(1u << (flag % 8));
    /* At once: the guest clears flags with locked instructions meanwhile. */
    if (synic_guest_update(s, gpa, 1, 0xff, bit, &old))
        return;
    if (old & bit) { /* not yet seen by the guest: one interrupt serves both */
        s->counts.events_coalesced++;
        return;
    }
    s->counts.events_signalled++;
    s_raise(s, vpi, sint);
}

void synic_assert_sint(synic_t *s, uint32_t vpi, uint32_t sint)
{
    s->counts.sints_asserted++;
    s_raise(s, vpi, sint);
}

/* Sets the flags kept while the page could not take them, byte by byte
 * and each at once, so as not to undo flags the guest clears. */
static void s_flush_flags(synic_t *s, uint32_t vpi)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    if (!vp->deferred_flags || !s_events_deliverable(vp))
        return;
    for (uint32_t sint = 0; sint < SYNIC_SINTS; sint++) {
        uint8_t *want = vp->deferred_flags + sint * SYNIC_EVENT_FLAGS_BYTES;
        uint8_t any = 0;
        for (uint32_t i = 0; i < SYNIC_EVENT_FLAGS_BYTES; i++)
            any |= want[i];
        if (!any)
            continue;
        uint64_t gpa = s_flags_gpa(vp, sint), old;
        bool fresh = false;
        for (uint32_t i = 0; i < SYNIC_EVENT_FLAGS_BYTES; i++) {
            if (!want[i])
                continue;
            if (synic_guest_update(s, gpa + i, 1, 0xff, want[i], &old))
                return;
            fresh |= (want[i] & ~old) != 0;
        }
        memset(want, 0, SYNIC_EVENT_FLAGS_BYTES);
        if (fresh) {
            s->counts.events_signalled++;
            s_raise(s, vpi, sint);
        }
    }
}

/* ---- Timers ----------------------------------------------------------------------- */

/* Arms the runtime timer for the earliest armed timer of any VP. */
static void s_timers_arm(synic_t *s)
{
    bool any = false;
    uint64_t next = 0;
    for (uint32_t v = 0; v < s->n_owned; v++)
        for (int i = 0; i < SYNIC_TIMERS; i++) {
            const synic_timer_t *t = &s->vps[v].timers[i];
            if (t->armed && (!any || t->due < next)) {
                next = t->due;
                any = true;
            }
        }
    if (!any) {
        rt_timer_cancel(s->self, SYNIC_RT_TIMER);
        return;
    }
    uint64_t now = synic_ref_time(s);
    /* Capped at a day, then looked at again. */
    uint64_t ticks = next > now ? next - now : 0;
    if (ticks > 864000000000ull)
        ticks = 864000000000ull;
    int rc = rt_timer_set(s->self, SYNIC_RT_TIMER, rt_now_ns(s->self) + ticks * 100,
                          synic_on_timer);
    if (rc)
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_ERROR, "arming the timer: %s",
               strerror(-rc));
}

/* Re-evaluates timer i of vp after a write to its registers. */
static void s_timer_update(synic_t *s, synic_vp_t *vp, int i)
{
    synic_timer_t *t = &vp->timers[i];
    t->armed = (t->config & SYNIC_STIMER_ENABLE) && t->count;
    if (t->armed) /* a period starts when the timer is enabled */
        t->due = (t->config & SYNIC_STIMER_PERIODIC) ? synic_ref_time(s) + t->count : t->count;
    s_timers_arm(s);
}

/* Posts timer i's HVMSG_TIMER_EXPIRED through the SINT's queue. At most
 * one waits per timer: an expiry while one waits is missed. */
static void s_timer_message(synic_t *s, uint32_t vpi, int i, uint64_t expiration)
{
    synic_vp_t *vp = synic_vp_at(s, vpi);
    synic_timer_t *t = &vp->timers[i];
    uint32_t sint = (uint32_t)(t->config >> SYNIC_STIMER_SINT_SHIFT) & 0xf;
    synic_queue_t *q = &vp->queues[sint];
    uint8_t payload[SYNIC_TIMER_PAYLOAD_SIZE] = {0};
    synic_put32(payload, (uint32_t)i);
    synic_put64(payload + 8, expiration);
    synic_msg_t *m = NULL;
    if (!t->queued && q->count < s->queue_limit)
        m = s_msg_new(SYNIC_HVMSG_TIMER_EXPIRED, payload, sizeof payload, i);
    if (!m) {
        s->counts.timer_missed++;
        return;
    }
    t->queued = true;
    s_queue_push(q, m);
    s_drain(s, vpi, sint);
}

static void s_timer_expire(synic_t *s, uint32_t vpi, int i, uint64_t now)
{
    synic_timer_t *t = &synic_vp_at(s, vpi)->timers[i];
    uint64_t expiration = t->due;
    s->counts.timer_expiries++;
    if (t->config & SYNIC_STIMER_DIRECT_MODE)
        synic_send_msi(s, vpi, (uint32_t)(t->config >> SYNIC_STIMER_VECTOR_SHIFT) & 0xff);
    else
        s_timer_message(s, vpi, i, expiration);
    if (t->config & SYNIC_STIMER_PERIODIC) {
        /* Periods missed (a late wake-up) are skipped, not caught up: the
         * next expiry is the first one after now. */
        t->due += ((now - t->due) / t->count + 1) * t->count;
    } else {
        t->armed = false;
        t->config &= ~SYNIC_STIMER_ENABLE;
    }
}

void synic_on_timer(rt_actor_t *self, uint64_t id)
{
    (void)id;
    synic_t *s = rt_actor_state(self);
    pthread_mutex_lock(&s->lock);
    uint64_t now = synic_ref_time(s);
    for (uint32_t v = 0; v < s->n_owned; v++)
        for (int i = 0; i < SYNIC_TIMERS; i++) {
            const synic_timer_t *t = &s->vps[v].timers[i];
            if (t->armed && t->due <= now)
                s_timer_expire(s, s->vp_first + v, i, now);
        }
    s_timers_arm(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- MSRs --------------------------------------------------------------------------- */

/* Rewrites the reference TSC page with the current parameters. */
static void s_write_tsc_page(synic_t *s, uint64_t gpa)
{
    if (++s->tsc_sequence == 0 || s->tsc_sequence == UINT32_MAX)
        s->tsc_sequence = 1; /* 0 means invalid */
    uint8_t page[24] = {0};
    synic_put32(page + SYNIC_TSC_PAGE_SEQUENCE_OFFSET, s->tsc_sequence);
    synic_put64(page + SYNIC_TSC_PAGE_SCALE_OFFSET, s->tsc_scale);
    synic_put64(page + SYNIC_TSC_PAGE_OFFSET_OFFSET, (uint64_t)s->ref_offset);
    synic_guest_write(s, gpa, page, sizeof page);
}

/* Overlay pages (SIMP, SIEFP) start zeroed when enabled or moved. */
static void s_zero_page(synic_t *s, uint64_t gpa)
{
    static const uint8_t zeros[SYNIC_PAGE_SIZE];
    synic_guest_write(s, gpa, zeros, sizeof zeros);
}

static bool s_page_newly_enabled(uint64_t old, uint64_t value)
{
    return (value & SYNIC_ENABLE) &&
           (!(old & SYNIC_ENABLE) || (old & SYNIC_GPA_MASK) != (value & SYNIC_GPA_MASK));
}

static int s_write_hypercall(synic_t *s, uint64_t value)
{
    if (value & S_HYPERCALL_RESERVED)
        return -EPERM;
    if (s->hypercall & SYNIC_HYPERCALL_LOCKED)
        return value == s->hypercall ? 0 : -EPERM;
    /* TLFS: the page cannot be enabled before the guest OS id is set. */
    if (!s->guest_os_id)
        value &= ~SYNIC_HYPERCALL_ENABLE;
    /* TLFS: a page outside the GPA space is a #GP. */
    if ((value & SYNIC_HYPERCALL_ENABLE) &&
        synic_guest_write(s, value & SYNIC_GPA_MASK, s_hypercall_code, sizeof s_hypercall_code))
        return -EPERM;
    s->hypercall = value;
    return 0;
}

static int s_write_sint(synic_t *s, uint32_t vpi, uint32_t sint, uint64_t value)
{
    if ((value & S_SINT_RESERVED) ||
        (!(value & SYNIC_SINT_MASKED) &&
         (value & SYNIC_SINT_VECTOR_MASK) < SYNIC_FIRST_VALID_VECTOR))
        return -EPERM;
    synic_vp_t *vp = synic_vp_at(s, vpi);
    vp->sint[sint] = value;
    if (!(value & SYNIC_SINT_MASKED) && (vp->raise_pending & (1u << sint)))
        s_raise(s, vpi, sint);
    return 0;
}

static int s_write_timer(synic_t *s, synic_vp_t *vp, uint32_t reg, uint64_t value)
{
    int i = (int)(reg / 2);
    synic_timer_t *t = &vp->timers[i];
    if (reg % 2 == 0) {
        if (value & S_STIMER_RESERVED)
            return -EPERM;
        /* TLFS: "SINTx cannot be set to zero for an enabled timer"; such a
         * write disables it. As KVM reads it, a timer being enabled may
         * name SINT 0. */
        bool to_sint0 = !(value & SYNIC_STIMER_DIRECT_MODE) &&
                        !((value >> SYNIC_STIMER_SINT_SHIFT) & 0xf);
        if ((t->config & SYNIC_STIMER_ENABLE) && to_sint0)
            value &= ~SYNIC_STIMER_ENABLE;
        t->config = value;
    } else {
        t->count = value;
        if (!value) /* TLFS: a zero count stops the timer, auto-enable or not */
            t->config &= ~SYNIC_STIMER_ENABLE;
        else if (t->config & SYNIC_STIMER_AUTO_ENABLE)
            t->config |= SYNIC_STIMER_ENABLE;
    }
    s_timer_update(s, vp, i);
    return 0;
}

int synic_msr_read(synic_t *s, uint32_t vpi, uint32_t index, uint64_t *value)
{
    if (synic_partition_wide_msr(index) && s->role == SYNIC_VP)
        return synic_central_msr(s, vpi, index, false, 0, value);
    switch (index) {
    case SYNIC_MSR_GUEST_OS_ID:
        *value = s->guest_os_id;
        return 0;
    case SYNIC_MSR_HYPERCALL:
        *value = s->hypercall;
        return 0;
    case SYNIC_MSR_REFERENCE_TSC:
        *value = s->reference_tsc;
        return 0;
    default:
        break;
    }
    const synic_vp_t *vp = synic_vp_at(s, vpi);
    switch (index) {
    case SYNIC_MSR_VP_INDEX:
        *value = vpi;
        return 0;
    case SYNIC_MSR_TIME_REF_COUNT:
        *value = synic_ref_time(s);
        return 0;
    case SYNIC_MSR_SCONTROL:
        *value = vp->scontrol;
        return 0;
    case SYNIC_MSR_SVERSION:
        *value = SYNIC_VERSION;
        return 0;
    case SYNIC_MSR_SIEFP:
        *value = vp->siefp;
        return 0;
    case SYNIC_MSR_SIMP:
        *value = vp->simp;
        return 0;
    case SYNIC_MSR_EOM:
        *value = 0;
        return 0;
    default:
        break;
    }
    if (index - SYNIC_MSR_SINT0 < SYNIC_SINTS) {
        *value = vp->sint[index - SYNIC_MSR_SINT0];
        return 0;
    }
    if (index - SYNIC_MSR_STIMER0_CONFIG < 2 * SYNIC_TIMERS) {
        uint32_t reg = index - SYNIC_MSR_STIMER0_CONFIG;
        const synic_timer_t *t = &vp->timers[reg / 2];
        *value = reg % 2 ? t->count : t->config;
        return 0;
    }
    return -EPERM;
}

int synic_msr_write(synic_t *s, uint32_t vpi, uint32_t index, uint64_t value)
{
    if (synic_partition_wide_msr(index) && s->role == SYNIC_VP)
        return synic_central_msr(s, vpi, index, true, value, NULL);
    uint64_t old;
    switch (index) {
    case SYNIC_MSR_GUEST_OS_ID:
        s->guest_os_id = value;
        /* TLFS: zeroing the id disables the hypercall page (unless locked). */
        if (!value && !(s->hypercall & SYNIC_HYPERCALL_LOCKED))
            s->hypercall &= ~SYNIC_HYPERCALL_ENABLE;
        return 0;
    case SYNIC_MSR_HYPERCALL:
        return s_write_hypercall(s, value);
    case SYNIC_MSR_REFERENCE_TSC:
        if (value & S_PAGE_RESERVED)
            return -EPERM;
        s->reference_tsc = value;
        if (value & SYNIC_ENABLE)
            s_write_tsc_page(s, value & SYNIC_GPA_MASK);
        return 0;
    default:
        break;
    }
    synic_vp_t *vp = synic_vp_at(s, vpi);
    switch (index) {
    case SYNIC_MSR_SCONTROL:
        if (value & S_SCONTROL_RESERVED)
            return -EPERM;
        old = vp->scontrol;
        vp->scontrol = value;
        if (!(old & SYNIC_ENABLE) && (value & SYNIC_ENABLE)) {
            s_drain_all(s, vpi);
            s_flush_flags(s, vpi);
            s_raise_pending(s, vpi);
        }
        return 0;
    case SYNIC_MSR_SIEFP:
        if (value & S_PAGE_RESERVED)
            return -EPERM;
        old = vp->siefp;
        vp->siefp = value;
        if (s_page_newly_enabled(old, value))
            s_zero_page(s, value & SYNIC_GPA_MASK);
        s_flush_flags(s, vpi);
        return 0;
    case SYNIC_MSR_SIMP:
        if (value & S_PAGE_RESERVED)
            return -EPERM;
        old = vp->simp;
        vp->simp = value;
        if (s_page_newly_enabled(old, value))
            s_zero_page(s, value & SYNIC_GPA_MASK);
        s_drain_all(s, vpi);
        return 0;
    case SYNIC_MSR_EOM:
        vp->counts.eoms++;
        s->counts.eoms++;
        s_drain_all(s, vpi);
        return 0;
    case SYNIC_MSR_VP_INDEX:
    case SYNIC_MSR_TIME_REF_COUNT:
    case SYNIC_MSR_SVERSION:
        return -EPERM; /* read-only */
    default:
        break;
    }
    if (index - SYNIC_MSR_SINT0 < SYNIC_SINTS)
        return s_write_sint(s, vpi, index - SYNIC_MSR_SINT0, value);
    if (index - SYNIC_MSR_STIMER0_CONFIG < 2 * SYNIC_TIMERS)
        return s_write_timer(s, vp, index - SYNIC_MSR_STIMER0_CONFIG, value);
    return -EPERM;
}

/* ---- Teardown and introspection ---------------------------------------------------- */

void synic_vps_free(synic_t *s)
{
    if (!s->vps)
        return;
    for (uint32_t v = 0; v < s->n_owned; v++) {
        synic_vp_t *vp = &s->vps[v];
        for (int sint = 0; sint < SYNIC_SINTS; sint++)
            while (vp->queues[sint].head)
                free(s_queue_pop(&vp->queues[sint]));
        free(vp->deferred_flags);
    }
    free(s->vps);
    s->vps = NULL;
}

void synic_vps_inspect(const synic_t *s, Vmm__Rt__InspectNode *node)
{
    for (uint32_t v = 0; v < s->n_owned; v++) {
        const synic_vp_t *vp = &s->vps[v];
        char name[32];
        snprintf(name, sizeof name, "vp%u", s->vp_first + v);
        Vmm__Rt__InspectNode *n = rt_inspect_add(node, name, "%u", s->vp_first + v);
        if (!n)
            return;
        rt_inspect_add(n, "scontrol", "0x%llx", (unsigned long long)vp->scontrol);
        rt_inspect_add(n, "simp", "0x%llx", (unsigned long long)vp->simp);
        rt_inspect_add(n, "siefp", "0x%llx", (unsigned long long)vp->siefp);
        uint32_t queued = 0;
        for (int sint = 0; sint < SYNIC_SINTS; sint++) {
            char reg[32];
            snprintf(reg, sizeof reg, "sint%d", sint);
            rt_inspect_add(n, reg, "0x%llx", (unsigned long long)vp->sint[sint]);
            queued += vp->queues[sint].count;
        }
        for (int i = 0; i < SYNIC_TIMERS; i++) {
            char reg[32];
            snprintf(reg, sizeof reg, "stimer%d_config", i);
            rt_inspect_add(n, reg, "0x%llx", (unsigned long long)vp->timers[i].config);
            snprintf(reg, sizeof reg, "stimer%d_count", i);
            rt_inspect_add(n, reg, "%llu", (unsigned long long)vp->timers[i].count);
        }
        rt_inspect_add(n, "queued", "%u", queued);
        rt_inspect_add(n, "raise_pending", "0x%x", vp->raise_pending);
        rt_inspect_add(n, "delivered", "%llu", (unsigned long long)vp->counts.delivered);
        rt_inspect_add(n, "eoms", "%llu", (unsigned long long)vp->counts.eoms);
        rt_inspect_add(n, "msis", "%llu", (unsigned long long)vp->counts.msis);
    }
}

/* ---- Snapshots ------------------------------------------------------------------- */

/* One VP's state, malloc'ed whole (vmm__synic__saved_vp__free_unpacked()
 * frees it). */
static Vmm__Synic__SavedVp *s_save_vp(const synic_t *s, uint32_t v)
{
    const synic_vp_t *vp = &s->vps[v];
    Vmm__Synic__SavedVp *out = calloc(1, sizeof *out);
    if (!out)
        return NULL;
    vmm__synic__saved_vp__init(out);
    out->vp = s->vp_first + v;
    out->scontrol = vp->scontrol;
    out->simp = vp->simp;
    out->siefp = vp->siefp;
    out->raise_pending = vp->raise_pending;
    out->sints = malloc(SYNIC_SINTS * sizeof *out->sints);
    out->timers = calloc(SYNIC_TIMERS, sizeof *out->timers);
    out->queues = calloc(SYNIC_SINTS, sizeof *out->queues);
    bool ok = out->sints && out->timers && out->queues;
    if (ok && vp->deferred_flags) {
        out->deferred_flags.data = malloc(SYNIC_SINTS * 256);
        ok = out->deferred_flags.data;
        if (ok) {
            memcpy(out->deferred_flags.data, vp->deferred_flags, SYNIC_SINTS * 256);
            out->deferred_flags.len = SYNIC_SINTS * 256;
        }
    }
    for (int i = 0; ok && i < SYNIC_SINTS; i++)
        out->sints[out->n_sints++] = vp->sint[i];
    for (int i = 0; ok && i < SYNIC_TIMERS; i++) {
        Vmm__Synic__SavedTimer *t = out->timers[i] = malloc(sizeof *t);
        if (!(ok = t))
            break;
        out->n_timers++;
        vmm__synic__saved_timer__init(t);
        t->config = vp->timers[i].config;
        t->count = vp->timers[i].count;
        t->due = vp->timers[i].due;
        t->armed = vp->timers[i].armed;
        t->queued = vp->timers[i].queued;
    }
    for (uint32_t sint = 0; ok && sint < SYNIC_SINTS; sint++) {
        const synic_queue_t *q = &vp->queues[sint];
        if (!q->count)
            continue;
        Vmm__Synic__SavedQueue *sq = out->queues[out->n_queues] = malloc(sizeof *sq);
        if (!(ok = sq))
            break;
        out->n_queues++;
        vmm__synic__saved_queue__init(sq);
        sq->sint = sint;
        sq->messages = calloc(q->count, sizeof *sq->messages);
        ok = sq->messages;
        for (const synic_msg_t *m = q->head; ok && m; m = m->next) {
            Vmm__Synic__SavedMessage *sm = sq->messages[sq->n_messages] = malloc(sizeof *sm);
            if (!(ok = sm))
                break;
            sq->n_messages++;
            vmm__synic__saved_message__init(sm);
            sm->message_type = m->type;
            sm->timer = m->timer;
            sm->payload.data = malloc(m->size ? m->size : 1);
            if (!(ok = sm->payload.data))
                break;
            memcpy(sm->payload.data, m->payload, m->size);
            sm->payload.len = m->size;
        }
    }
    if (!ok) {
        vmm__synic__saved_vp__free_unpacked(out, NULL);
        return NULL;
    }
    return out;
}

int synic_vps_save(const synic_t *s, Vmm__Synic__SavedVp ***vps, size_t *n)
{
    *n = 0;
    *vps = calloc(s->n_owned ? s->n_owned : 1, sizeof **vps);
    if (!*vps)
        return -ENOMEM;
    for (uint32_t v = 0; v < s->n_owned; v++) {
        if (!((*vps)[v] = s_save_vp(s, v))) {
            synic_saved_vps_free(*vps, *n);
            *vps = NULL;
            *n = 0;
            return -ENOMEM;
        }
        (*n)++;
    }
    return 0;
}

void synic_saved_vps_free(Vmm__Synic__SavedVp **vps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vmm__synic__saved_vp__free_unpacked(vps[i], NULL);
    free(vps);
}

int synic_vp_restore(synic_t *s, const Vmm__Synic__SavedVp *in, char *why, size_t n)
{
    if (!synic_owns(s, in->vp)) {
        snprintf(why, n, "VP %u is not this actor's", in->vp);
        return -EINVAL;
    }
    if (in->n_sints != SYNIC_SINTS || in->n_timers != SYNIC_TIMERS ||
        (in->deferred_flags.len && in->deferred_flags.len != SYNIC_SINTS * 256)) {
        snprintf(why, n, "VP %u: %d SINTs, %d timers and the SIEF page's bytes", in->vp,
                 SYNIC_SINTS, SYNIC_TIMERS);
        return -EINVAL;
    }
    for (size_t i = 0; i < in->n_queues; i++) {
        const Vmm__Synic__SavedQueue *q = in->queues[i];
        if (q->sint >= SYNIC_SINTS || q->n_messages > s->queue_limit) {
            snprintf(why, n, "VP %u: a queue of SINT %u with %zu messages", in->vp, q->sint,
                     q->n_messages);
            return -EINVAL;
        }
        for (size_t m = 0; m < q->n_messages; m++)
            if (q->messages[m]->payload.len > SYNIC_PAYLOAD_MAX ||
                q->messages[m]->timer < -1 || q->messages[m]->timer >= SYNIC_TIMERS) {
                snprintf(why, n, "VP %u: a message over %u bytes or of no timer", in->vp,
                         SYNIC_PAYLOAD_MAX);
                return -EINVAL;
            }
    }
    synic_vp_t *vp = synic_vp_at(s, in->vp);
    uint8_t *flags = NULL;
    if (in->deferred_flags.len && !(flags = malloc(SYNIC_SINTS * 256)))
        return -ENOMEM;
    /* What was queued goes; the saved queues take its place. */
    for (int sint = 0; sint < SYNIC_SINTS; sint++)
        while (vp->queues[sint].head)
            free(s_queue_pop(&vp->queues[sint]));
    for (size_t i = 0; i < in->n_queues; i++) {
        const Vmm__Synic__SavedQueue *q = in->queues[i];
        for (size_t j = 0; j < q->n_messages; j++) {
            synic_msg_t *m = calloc(1, sizeof *m);
            if (!m) {
                free(flags);
                return -ENOMEM;
            }
            m->type = q->messages[j]->message_type;
            m->size = (uint32_t)q->messages[j]->payload.len;
            m->timer = q->messages[j]->timer;
            memcpy(m->payload, q->messages[j]->payload.data, m->size);
            s_queue_push(&vp->queues[q->sint], m);
        }
    }
    vp->scontrol = in->scontrol;
    vp->simp = in->simp;
    vp->siefp = in->siefp;
    vp->raise_pending = (uint16_t)in->raise_pending;
    memcpy(vp->sint, in->sints, sizeof vp->sint);
    free(vp->deferred_flags);
    vp->deferred_flags = flags;
    if (flags)
        memcpy(flags, in->deferred_flags.data, SYNIC_SINTS * 256);
    for (int i = 0; i < SYNIC_TIMERS; i++) {
        const Vmm__Synic__SavedTimer *t = in->timers[i];
        vp->timers[i] = (synic_timer_t){.config = t->config, .count = t->count, .due = t->due,
                                        .armed = t->armed, .queued = t->queued};
    }
    s_timers_arm(s); /* due times are reference times */
    return 0;
}
