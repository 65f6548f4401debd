/*
 * The synic actor's state, shared by its two files: synic.c (the actor,
 * its requests, hypercalls, host ports, guest event ports, the monitor
 * page) and synic_vp.c (per VP: the synthetic MSRs, message queues, event
 * flags and timers, and the partition's guest memory and MSIs they use).
 */
#ifndef VMM_SYNIC_INTERNAL_H
#define VMM_SYNIC_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device_guest.h"
#include "actors/synic/synic.h"
#include "actors/synic/synic_tlfs.h"

/* MSI destinations are 8-bit APIC ids (VP i has APIC id i). */
#define SYNIC_MAX_VPS 256u

/* A message waiting for its slot. */
typedef struct synic_msg_s synic_msg_t;
struct synic_msg_s {
    synic_msg_t *next;
    uint32_t type;
    uint32_t size;
    int timer; /* the timer whose expiry it reports (its delivery time is
                  filled in when it reaches the slot); -1 for others */
    uint8_t payload[SYNIC_PAYLOAD_MAX];
};

/* The FIFO of one (VP, SINT). */
typedef struct {
    synic_msg_t *head, *tail;
    uint32_t count;
} synic_queue_t;

typedef struct {
    uint64_t config, count;
    uint64_t due; /* reference time of the next expiry, when armed */
    bool armed;
    bool queued; /* a message of this timer waits in a queue */
} synic_timer_t;

typedef struct {
    uint64_t scontrol, simp, siefp;
    uint64_t sint[SYNIC_SINTS];
    synic_queue_t queues[SYNIC_SINTS];
    /* SINTs that have something new for the guest but could not interrupt
     * (masked, or SCONTROL disabled): interrupted when that changes. */
    uint16_t raise_pending;
    /* Event flags signalled while SCONTROL or SIEFP was disabled, set in
     * the page when both are enabled: SYNIC_SINTS x 256 bytes laid out as
     * the SIEF page, allocated on first use. */
    uint8_t *deferred_flags;
    synic_timer_t timers[SYNIC_TIMERS];
    struct {
        uint64_t delivered, eoms, msis;
    } counts;
} synic_vp_t;

/* A host port: a connection the guest signals or posts to. */
typedef struct {
    uint64_t handle;
    bool message; /* a message port; else an event port */
    uint32_t connection_id;
    uint32_t minimum_vtl;
    char *target; /* owned */
    char *owner;  /* owned: the registering actor */
} synic_host_port_t;

typedef struct {
    uint64_t handle;
    uint32_t vp, sint, flag;
    char *owner; /* owned */
} synic_guest_port_t;

typedef struct {
    uint64_t handle;
    uint32_t monitor_id, connection_id;
    char *owner; /* owned */
} synic_monitor_t;

typedef struct {
    uint64_t msr_reads, msr_writes, msr_gp;
    uint64_t hypercalls, hypercall_errors; /* errors: a status other than success */
    uint64_t posted, busy;                 /* messages queued; refused: queue full */
    uint64_t delivered, eoms;
    uint64_t events_signalled, events_coalesced, events_deferred, sints_asserted;
    uint64_t msis, unsent;
    uint64_t host_events, host_messages; /* sent to host port targets */
    uint64_t timer_expiries, timer_missed;
    uint64_t monitor_polls, monitor_signals, monitor_unrouted;
    uint64_t memory_errors; /* guest memory the partition would not access */
    uint64_t bad_requests, unsupported;
    uint64_t passed_on;      /* handed to another actor of the synic */
    uint64_t tables_pushed;  /* SYNIC_CENTRAL: port tables sent to the VPs */
    uint64_t tables_taken;   /* SYNIC_VP: port tables taken */
} synic_counters_t;

/* A request handed on whose reply is owed to its sender. */
typedef struct {
    uint64_t id;
    rt_deferred_t *owed;
} synic_pass_t;

typedef struct {
    rt_actor_t *self;
    char *partition; /* owned */
    uint32_t vp_count, queue_limit;
    synic_role_t role;
    /* The VPs whose state it holds: vps[i] is VP vp_first + i, for i below
     * n_owned (every VP when whole, one for a VP's actor, none central). */
    uint32_t vp_first, n_owned;
    char *central;   /* owned: "<vm>/synic" (itself when central or whole) */
    uint64_t ports_generation; /* of the table pushed or taken last */
    synic_pass_t *passes;      /* requests handed on, replies owed */
    size_t n_passes;
    device_guest_t guest;
    /* Held by every handler and timer: a VP's actor also takes event
     * signals and SINT assertions on their senders' threads (its shared
     * handler), which only try it. */
    pthread_mutex_t lock;
    uint64_t tsc_khz;
    int64_t tsc_offset;
    /* The reference TSC page's parameters, also behind TIME_REF_COUNT. */
    uint64_t tsc_scale;
    int64_t ref_offset;
    uint32_t tsc_sequence;

    uint64_t guest_os_id, hypercall, reference_tsc;
    synic_vp_t *vps;

    synic_host_port_t *host_ports;
    size_t n_host_ports;
    synic_guest_port_t *guest_ports;
    size_t n_guest_ports;
    synic_monitor_t *monitors;
    size_t n_monitors;
    uint32_t monitor_mask[SYNIC_MONITOR_GROUPS]; /* registered monitor ids */
    bool monitor_page_set;
    uint64_t monitor_gpa;
    long monitor_poll_ns; /* that interval: the least latency asked for */
    uint64_t next_handle;

    synic_counters_t counts;
} synic_t;

/* Whether the actor holds VP vp's state. */
static inline bool synic_owns(const synic_t *s, uint32_t vp)
{
    return vp - s->vp_first < s->n_owned;
}

/* VP vp's state, which the actor holds (synic_owns()). */
static inline synic_vp_t *synic_vp_at(synic_t *s, uint32_t vp)
{
    assert(synic_owns(s, vp));
    return &s->vps[vp - s->vp_first];
}

/* ---- synic_split.c: the split synic's messages between its actors -------- */

/* GUEST_OS_ID, HYPERCALL and REFERENCE_TSC: the partition's, not a VP's. */
bool synic_partition_wide_msr(uint32_t index);

/* What synic_pass() does with a request whose caller waits on this very
 * thread (it cannot be answered later). */
typedef enum {
    SYNIC_PASS_REFUSE, /* refused, naming the actor to send it to */
    SYNIC_PASS_CALL,   /* called at once: the call flows from a VP's thread
                          to the partition's, never back */
    SYNIC_PASS_ACK,    /* sent one-way and acknowledged (an event signal,
                          whose port the receiver has) */
} synic_pass_nested_t;

/*
 * Hands a request or event on to another actor of the synic: one-way as
 * it came, or a request whose reply goes back to its sender when it
 * comes (synic_on_reply()), or as nested says when that cannot be.
 * Returns 0.
 */
int synic_pass(synic_t *s, const Vmm__Envelope *msg, const char *to,
               synic_pass_nested_t nested);
/* Replies to requests handed on (rt_actor_ops_t.on_reply). */
void synic_on_reply(rt_actor_t *self, const Vmm__Envelope *reply);
/* Answers what is still owed (the actor ends). */
void synic_passes_free(synic_t *s);

/* Frees the host and guest ports (the actor ends, or a table replaces
 * them). */
void synic_ports_clear(synic_t *s);
/* SYNIC_CENTRAL: sends every VP's actor the port tables. */
void synic_push_ports(synic_t *s);
/* SYNIC_VP: takes the port tables central sent. Returns 0. */
int synic_take_ports(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__PortTable *t);

/* SYNIC_VP: a partition-wide MSR, asked of central: 0, or -EPERM for a
 * #GP (also when central did not answer, logged). */
int synic_central_msr(synic_t *s, uint32_t vp, uint32_t index, bool write, uint64_t value,
                      uint64_t *out);
/* SYNIC_VP: a guest's signal (message NULL) or message to a connection
 * this actor's table does not hold, asked of central: its HV status. */
uint32_t synic_central_route(synic_t *s, uint32_t vtl, uint32_t connection_id, uint32_t flag,
                             const uint8_t *message, uint32_t type, uint32_t size);

/* ---- synic_vp.c ---------------------------------------------------------- */

/* Sets up the reference time from the configuration; -EINVAL if the TSC
 * frequency is 10 MHz or less (the scale would not fit 64 bits). */
int synic_time_init(synic_t *s, const synic_config_t *cfg);
/* The reference time now, in 100 ns units: from the host TSC, which the
 * runtime records and a replay gives back. */
uint64_t synic_ref_time(const synic_t *s);
/* Moves the reference time: ref_time where the guest TSC reads guest_tsc
 * (synic.proto SetTimeBase). */
void synic_time_rebase(synic_t *s, uint64_t ref_time, uint64_t guest_tsc);

/* Snapshots (synic.proto SaveState, RestoreState): the VPs this actor
 * holds, malloc'ed whole into *vps (free with synic_saved_vps_free()). */
int synic_vps_save(const synic_t *s, Vmm__Synic__SavedVp ***vps, size_t *n);
void synic_saved_vps_free(Vmm__Synic__SavedVp **vps, size_t n);
/* Sets VP in->vp's state (one this actor holds) as saved: nothing goes to
 * guest memory. Returns 0, or a negative errno with why. */
int synic_vp_restore(synic_t *s, const Vmm__Synic__SavedVp *in, char *why, size_t n);

/* Guest memory through the partition: 0, or a negative errno (counted as a
 * memory error and logged). */
int synic_guest_read(synic_t *s, uint64_t gpa, void *buf, size_t len);
int synic_guest_write(synic_t *s, uint64_t gpa, const void *buf, size_t len);
/* new = (old & and_mask) | or_mask on size bytes (1, 2, 4 or 8, aligned)
 * at gpa, atomically against the guest's locked instructions; *old gets
 * what was there. For bits the guest changes too. */
int synic_guest_update(synic_t *s, uint64_t gpa, uint32_t size, uint64_t and_mask,
                       uint64_t or_mask, uint64_t *old);
/* A fixed-delivery MSI to VP vp's local APIC, one-way to the partition. */
void synic_send_msi(synic_t *s, uint32_t vp, uint32_t vector);

/* A guest RDMSR / WRMSR of VP vp (below vp_count): 0, or -EPERM for a #GP. */
int synic_msr_read(synic_t *s, uint32_t vp, uint32_t index, uint64_t *value);
int synic_msr_write(synic_t *s, uint32_t vp, uint32_t index, uint64_t value);

/* Queues a message for (vp, sint) and delivers what the slot can take.
 * Returns 0, -EBUSY when queue_limit messages wait already, -ENOMEM. */
int synic_post(synic_t *s, uint32_t vp, uint32_t sint, uint32_t type, const uint8_t *payload,
               uint32_t size);
/* Sets an event flag of (vp, sint) and interrupts if it was clear. */
void synic_signal_flag(synic_t *s, uint32_t vp, uint32_t sint, uint32_t flag);
/* Interrupts VP vp through SINT sint alone (no message, no flag); held
 * until the SINT is unmasked and the SynIC enabled, as any raise. */
void synic_assert_sint(synic_t *s, uint32_t vp, uint32_t sint);

/* The actor's runtime timers: the earliest SynIC timer of any VP, and the
 * monitor page's poll while monitors are watched. */
#define SYNIC_RT_TIMER 1
#define SYNIC_RT_MONITOR 2
/* What the synic reads outside messages (rt_actor_input()): the host TSC,
 * behind the reference time (beside device_guest.h's kinds for guest
 * RAM). */
#define SYNIC_INPUT_TSC 3

/* SYNIC_RT_TIMER's callback: expires what is due, arms the next. */
void synic_on_timer(rt_actor_t *self, uint64_t id);

/* Frees what the VPs hold. */
void synic_vps_free(synic_t *s);
/* Adds one node per VP with its registers and counters. */
void synic_vps_inspect(const synic_t *s, Vmm__Rt__InspectNode *node);

/* ---- Little-endian fields of guest pages ---------------------------------- */

static inline uint32_t synic_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t synic_get64(const uint8_t *p)
{
    return (uint64_t)synic_get32(p) | (uint64_t)synic_get32(p + 4) << 32;
}

static inline void synic_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void synic_put64(uint8_t *p, uint64_t v)
{
    synic_put32(p, (uint32_t)v);
    synic_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
