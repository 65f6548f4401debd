/*
 * SynIC benchmark: what reaching a guest through the synic actor costs,
 * as the guest sees it, beside a bare MSI injection measured in the same
 * run, first with the other core kept busy by a spinning child process,
 * then on the idle machine.
 *
 * One guest (guest/bench_synic.c) measures with rdtsc at CPL 0 the parts
 * it is asked for and reports the cycles as sync points. It runs
 *   - in the VMM (vmm/vm.h) with the Hyper-V interface, where a bench actor
 *     of this file (once on VP 0's executor, once on an executor of its
 *     own) serves the guest's ports and the synic's host side:
 *       1. messages: asked by a port write for n, it posts them to VP 0,
 *          SINT 2 (PostMessage requests, S_WINDOW unanswered, then, once
 *          the synic's queue is full and it answers BUSY, in bursts
 *          paced to the rate the guest takes them, BUSY ones posted
 *          again); the guest takes each in its SINT handler (reads the
 *          slot, frees it, writes EOM) and times the whole batch;
 *       2. event signals: the guest's HvSignalEvent to the actor's host
 *          event port reaches it as HostEventSignalled, and it signals a
 *          guest event port of VP 0, SINT 3 (SignalGuestEventPort); the
 *          guest times each round from just before the hypercall until its
 *          SINT handler runs;
 *       3. MSIs: the guest's port write asking for one reaches the test
 *          device (on VP 0's executor, or on its own), which raises it;
 *       4. MSR reads: the guest reads SCONTROL, served by VP 0's synic
 *          actor;
 *   - in the raw harness here: /dev/kvm, one vCPU, in-kernel irqchip, no
 *     actors, every exit answered inline:
 *       3. the port write asking for an MSI, with KVM_SIGNAL_MSI;
 *       4. the SCONTROL read, with a value;
 *       2. the event signal, by a SynIC of a few lines: the hypercall
 *          page, the SIEF page and SINT 3 as the guest set them, the flag
 *          set and KVM_SIGNAL_MSI as the hypercall's read is answered (the
 *          registers from the run area): the least any VMM can do for it.
 * Event rounds and MSI rounds wait and take the interrupt alike, so their
 * ratio is what the synic's path adds. Messages per second are printed
 * beside 1 / (raw MSI round trip), the rate of bare injections, for scale.
 *
 * Every run checks that the guest reported every part asked for, and that
 * the actor posted every message, echoed every signal and saw no error; a
 * failed run stops the benchmark (exit status 1).
 *
 *   bazel run //bench:synic_bench -- [--iterations N] [--repeat N]
 *                                    [--idle-only|--busy-only] [--strict]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/device.h"
#include "actors/devices/testdev_abi.h"
#include "actors/synic/synic.h"
#include "bench/bench.h"
#include "bench/raw_kvm.h"
#include "vmm/vm.h"

/* The guest's ports and numbers: guest/bench_synic.c has the same. */
#define S_PORT_CONFIG 0x5d0 /* inl: the iterations per timed part */
#define S_PORT_POST 0x5d4   /* outl: post that many messages */
#define S_PORT_PARTS 0x5d8  /* inl: bit part - 1 set for each part to run */
#define S_PART_MESSAGES 1
#define S_PART_EVENT 2
#define S_PART_MSI 3
#define S_PART_MSR 4
#define S_PARTS 4
#define S_BIT(part) (1u << ((part)-1))
/* What the raw harness runs, and the VMM. */
#define S_RAW_PARTS \
    (S_BIT(S_PART_MESSAGES) | S_BIT(S_PART_EVENT) | S_BIT(S_PART_MSI) | S_BIT(S_PART_MSR))
#define S_VMM_PARTS \
    (S_BIT(S_PART_MESSAGES) | S_BIT(S_PART_EVENT) | S_BIT(S_PART_MSI) | S_BIT(S_PART_MSR))
#define S_SINT_MESSAGE 2
#define S_SINT_EVENT 3
#define S_CONNECTION 0x5b
#define S_FLAG 9
/* What the guest does of each part in all: its warm-up of n / 10 + 1, then
 * n. */
#define S_OPS(n) ((n) / 10 + 1 + (n))

#define S_MSI_ADDRESS 0xfee00000u
#define S_MEM VM_DEFAULT_MEM
#define S_ACTOR "vm0/synic-bench"
#define S_DEVICE "vm0/dev/synic-bench"
#define S_SYNIC "vm0/synic"
/* VP 0's actor of the synic: posts to VP 0 go there (synic.proto). */
#define S_SYNIC_VP0 "vm0/synic/vp/0"
#define S_MESSAGE_TYPE 0x100

/* PostMessage requests the bench actor keeps unanswered until the synic
 * first answers BUSY (its queue for the SINT is full); from then on, to the
 * end of the batch, it paces: a burst of S_WINDOW posts every interval.
 * The interval grows by a quarter after a burst that met a BUSY and
 * shrinks by a sixteenth after one that did not, so that the bursts settle
 * at the rate the guest takes messages, with a BUSY answer or two in one
 * burst of four or five, and the queue never runs dry (a burst is a
 * quarter of the synic's default queue). */
#define S_WINDOW 16
#define S_INTERVAL_START_NS 200000
#define S_INTERVAL_MIN_NS 10000
#define S_INTERVAL_MAX_NS 20000000
#define S_CALL_TIMEOUT_MS 5000

/* The guest image (//guest:bench_synic_embedded). */
extern const unsigned char guest_bench_synic_elf[];
extern const unsigned long guest_bench_synic_elf_len;

static uint32_t s_iterations = 2000;
static int s_repeat = 5;
static uint32_t s_tsc_khz; /* the guest's TSC, read from the raw vCPU */
static int s_rate_misses;  /* rate rows below their target (bench_row() counts the rest) */


/* What one run of the guest reported. */
typedef struct {
    uint64_t cycles[S_PARTS]; /* per timed part, by part - 1 */
    unsigned seen;            /* S_BIT(part): reported */
    double busy;              /* under the VMM: BUSY answers per message posted */
} s_report_t;

/* Takes a sync point's arguments: part, cycles low, cycles high. */
static int s_take_sync(s_report_t *r, const uint32_t *args, size_t n_args)
{
    if (n_args < 3 || args[0] < 1 || args[0] > S_PARTS)
        return -EPROTO;
    r->cycles[args[0] - 1] = (uint64_t)args[2] << 32 | args[1];
    r->seen |= S_BIT(args[0]);
    return 0;
}

static double s_ns_per_op(uint64_t cycles)
{
    return (double)cycles * 1e6 / s_tsc_khz / s_iterations;
}

/* ---- The raw harness: one vCPU, no actors ---------------------------------- */

/* The MSI the guest asked for, at once: fixed delivery to the APIC id in
 * bits 15:8 of value, the vector in bits 7:0. */
static int s_raw_msi(raw_kvm_t *k, uint32_t value, char *err, size_t errlen)
{
    struct kvm_msi msi = {.address_lo = S_MSI_ADDRESS | (value >> 8 & 0xff) << 12,
                          .data = value & 0xff};
    int rc = ioctl(k->vm, KVM_SIGNAL_MSI, &msi);
    if (rc > 0)
        return 0;
    snprintf(err, errlen, "KVM_SIGNAL_MSI: %s", rc ? strerror(errno) : "the MSI was dropped");
    return -EPROTO;
}

/* The raw harness's SynIC: what the guest set, and the messages it asked
 * for that are still to come. */
typedef struct {
    s_report_t *report;
    uint64_t siefp, simp, scontrol;
    uint32_t event_vector, message_vector;
    uint32_t to_deliver;
    uint64_t sequence;
} s_raw_t;

#define S_MSR_HYPERCALL 0x40000001u
#define S_MSR_SCONTROL 0x40000080u
#define S_MSR_SIEFP 0x40000082u
#define S_MSR_SIMP 0x40000083u
#define S_MSR_EOM 0x40000084u
#define S_MSR_SINT0 0x40000090u

/* The next message into SINT 2's slot when it is free: header, payload,
 * the type last; then its MSI. */
static void s_raw_deliver(s_raw_t *raw, raw_kvm_t *k)
{
    uint64_t at = raw->simp + S_SINT_MESSAGE * 256;
    if (!raw->to_deliver || !raw->simp || at + 256 > k->mem_size)
        return;
    uint8_t *slot = (uint8_t *)k->mem + at;
    if (__atomic_load_n((uint32_t *)slot, __ATOMIC_ACQUIRE))
        return; /* the guest has not freed it: its EOM comes */
    slot[4] = sizeof raw->sequence;
    memcpy(slot + 16, &raw->sequence, sizeof raw->sequence);
    __atomic_store_n((uint32_t *)slot, S_MESSAGE_TYPE, __ATOMIC_RELEASE);
    raw->sequence++;
    raw->to_deliver--;
    char err[64];
    s_raw_msi(k, raw->message_vector, err, sizeof err);
}

static int s_raw_msr(void *arg, raw_kvm_t *k, bool write, uint32_t index, uint64_t *data)
{
    s_raw_t *raw = arg;
    static const uint8_t page[] = {0xe5, SYNIC_HYPERCALL_PORT, 0xc3}; /* in eax, imm8; ret */
    uint64_t gpa = *data & ~0xfffull;
    if (!write) {
        *data = index == S_MSR_SCONTROL ? raw->scontrol : 0;
        return 0;
    }
    if (index == S_MSR_HYPERCALL && (*data & 1) && gpa + sizeof page <= k->mem_size)
        memcpy((uint8_t *)k->mem + gpa, page, sizeof page);
    else if (index == S_MSR_SIEFP)
        raw->siefp = gpa;
    else if (index == S_MSR_SIMP)
        raw->simp = gpa;
    else if (index == S_MSR_EOM)
        s_raw_deliver(raw, k);
    else if (index == S_MSR_SINT0 + S_SINT_MESSAGE)
        raw->message_vector = (uint32_t)(*data & 0xff);
    else if (index == S_MSR_SCONTROL)
        raw->scontrol = *data;
    else if (index == S_MSR_SINT0 + S_SINT_EVENT)
        raw->event_vector = (uint32_t)(*data & 0xff);
    return 0;
}

/* HvSignalEvent, fast: the flag set in the SIEF page, the SINT raised when
 * it was clear; the read's value is the status. */
static int s_raw_signal(s_raw_t *raw, raw_kvm_t *k, uint8_t *data, char *err, size_t errlen)
{
    uint64_t input = k->run->s.regs.regs.rdx;
    uint32_t flag = (uint32_t)(input >> 32) & 0xffff;
    uint64_t at = raw->siefp + S_SINT_EVENT * 256 + flag / 8;
    uint32_t status = 0;
    if ((uint32_t)input != S_CONNECTION || at >= k->mem_size || !raw->event_vector) {
        status = 0x12; /* HV_STATUS_INVALID_CONNECTION_ID */
    } else {
        uint8_t bit = (uint8_t)(1u << flag % 8);
        uint8_t old = __atomic_fetch_or((uint8_t *)k->mem + at, bit, __ATOMIC_SEQ_CST);
        if (!(old & bit) && s_raw_msi(k, raw->event_vector, err, errlen))
            return -EPROTO;
    }
    memcpy(data, &status, sizeof status);
    return 0;
}

/* The bench ports, answered inline. */
static int s_raw_port(void *arg, raw_kvm_t *k, bool out, uint16_t port, uint32_t size,
                      uint8_t *data, char *err, size_t errlen)
{
    uint32_t value = 0;
    memcpy(&value, data, size <= 4 ? size : 4);
    if (out && port == TESTDEV_PORT_MSI)
        return s_raw_msi(k, value, err, errlen);
    if (!out && port == SYNIC_HYPERCALL_PORT && size == 4)
        return s_raw_signal(arg, k, data, err, errlen);
    if (out && port == S_PORT_POST && size == 4) {
        ((s_raw_t *)arg)->to_deliver += value;
        s_raw_deliver(arg, k);
        return 0;
    }
    if (!out && port == S_PORT_CONFIG && size == 4) {
        memcpy(data, &s_iterations, 4);
        return 0;
    }
    if (!out && port == S_PORT_PARTS && size == 4) {
        memcpy(data, &(const uint32_t){S_RAW_PARTS}, 4);
        return 0;
    }
    return -ENOENT;
}

static int s_raw_sync(void *arg, const uint32_t *args, size_t n)
{
    return s_take_sync(((s_raw_t *)arg)->report, args, n);
}

/* Runs the guest on the bare vCPU: its event, MSI and MSR rounds. */
static int s_raw(s_report_t *r, char *err, size_t errlen)
{
    raw_kvm_t k;
    memset(r, 0, sizeof *r);
    int rc = raw_kvm_open(&k, guest_bench_synic_elf, guest_bench_synic_elf_len, S_MEM, err,
                          errlen);
    s_tsc_khz = k.tsc_khz;
    if (!rc) /* the hypercall's RDX without an ioctl, as the VP reads it */
        k.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    s_raw_t raw = {.report = r};
    const raw_kvm_guest_t guest = {.port = s_raw_port, .sync = s_raw_sync, .msr = s_raw_msr,
                                   .arg = &raw};
    if (!rc)
        rc = raw_kvm_run(&k, &guest, err, errlen);
    raw_kvm_close(&k);
    return rc;
}

/* ---- The bench device and actor --------------------------------------------------- */

/*
 * The guest's ports are a device model's (the configuration it reads, the
 * count of messages it asks for); the bench actor beside it, on the same
 * executor, does what a device cannot: it registers a host event port and
 * a guest event port with the synic, posts messages and echoes events.
 * The model hands it each POST as a guest call.
 */
#define S_CALL_POST 0x100

/* What the bench actor did, read by the main thread. The error text is
 * written once, before errors first counts, and read after the VM is
 * gone. */
typedef struct {
    _Atomic uint64_t posted, busy, signals, errors;
    char error[192];
} s_tally_t;

typedef struct {
    uint32_t iterations;
    uint32_t parts; /* what the guest is to run: S_BIT(part) each */
    s_tally_t *tally;
} s_bench_config_t;

typedef struct {
    device_t dev;
    s_bench_config_t cfg;
} s_port_dev_t;

static int s_dev_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    const s_bench_config_t *cfg = &((s_port_dev_t *)dev)->cfg;
    if (io->size == 4 && io->address == S_PORT_CONFIG)
        *value = cfg->iterations;
    else if (io->size == 4 && io->address == S_PORT_PARTS)
        *value = cfg->parts;
    else
        return -EINVAL;
    return 0;
}

static int s_dev_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    if (io->size != 4 || io->address != S_PORT_POST)
        return -EINVAL;
    uint32_t n = (uint32_t)value;
    device_guest_call(dev, io->vp_index, S_CALL_POST, &n, 1);
    return 0;
}

static void s_dev_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    const s_bench_config_t *cfg = &((s_port_dev_t *)dev)->cfg;
    device_inspect_count(node, "iterations", cfg->iterations);
    rt_inspect_add(node, "parts", "0x%x", cfg->parts);
}

static void s_dev_destroy(device_t *dev)
{
    free(dev);
}

static const device_ops_t s_dev_ops = {
    .kind = "synic-bench",
    .read = s_dev_read,
    .write = s_dev_write,
    .reset = device_reset_none,
    .inspect = s_dev_inspect,
    .save = device_save_none,
    .restore = device_restore_none,
    .destroy = s_dev_destroy,
};

static device_t *s_dev_new(const void *config, device_env_t *env)
{
    s_port_dev_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = *(const s_bench_config_t *)config;
    d->dev = (device_t){.ops = &s_dev_ops, .env = env};
    d->dev.spec = (device_spec_t){.name = "synic-bench", .n_ranges = 1,
                                  .ranges = {{.start = S_PORT_CONFIG, .len = 12}}};
    return &d->dev;
}

typedef struct {
    s_bench_config_t cfg;
    uint64_t host_port, guest_port; /* the synic's handles */
    char signal_to[64];             /* the guest port's actor */
    uint32_t to_post, in_flight;
    uint64_t sequence;    /* of the next message, its payload */
    bool pacing;          /* the synic said BUSY: bursts on the timer */
    uint32_t burst;       /* posts of the last burst */
    bool burst_busy;      /* it met a BUSY */
    uint64_t interval_ns; /* between bursts, kept from batch to batch */
} s_bench_t;

static void __attribute__((format(printf, 2, 3))) s_fail(s_bench_t *b, const char *fmt, ...)
{
    if (atomic_load(&b->cfg.tally->errors) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->cfg.tally->error, sizeof b->cfg.tally->error, fmt, ap);
        va_end(ap);
    }
    atomic_fetch_add(&b->cfg.tally->errors, 1);
}

/* A synic request answered by a handle (and, for a guest event port, the
 * actor its signals go to, into signal_to); the reply's text goes to err. */
static int s_synic_handle(rt_actor_t *self, Vmm__Synic__Request *req,
                          Vmm__Synic__Reply__ResultCase want, uint64_t *handle,
                          char signal_to[64], char *err, size_t errlen)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    rt_msg_t reply;
    int rc = rt_call(self, S_SYNIC, &env, &reply, S_CALL_TIMEOUT_MS);
    if (rc) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    const Vmm__Envelope *e = reply.env;
    if (e->body_case == VMM__ENVELOPE__BODY_SYNIC_REPLY && e->synic_reply->result_case == want) {
        *handle = want == VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT
                      ? e->synic_reply->host_event_port->handle
                      : e->synic_reply->guest_event_port->handle;
        if (want == VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT)
            snprintf(signal_to, 64, "%s", e->synic_reply->guest_event_port->signal_to);
    } else {
        bool refused = e->body_case == VMM__ENVELOPE__BODY_ERROR;
        snprintf(err, errlen, "%s", refused ? e->error->text : "an unexpected reply");
        rc = -EPROTO;
    }
    rt_msg_release(&reply);
    return rc;
}

/* The actor's host event port and the guest event port it signals back:
 * the VM is built (the synic exists) before actors start. */
static int s_ports(rt_actor_t *self, s_bench_t *b)
{
    char err[128];
    Vmm__Synic__RegisterHostEventPort hp = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    hp.connection_id = S_CONNECTION;
    hp.target = (char *)rt_actor_name(self);
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
    req.register_host_event_port = &hp;
    if (s_synic_handle(self, &req, VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT, &b->host_port,
                       NULL, err, sizeof err)) {
        s_fail(b, "RegisterHostEventPort: %s", err);
        return -EPROTO;
    }
    Vmm__Synic__NewGuestEventPort gp = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    gp.vp = 0;
    gp.sint = S_SINT_EVENT;
    gp.flag = S_FLAG;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &gp;
    if (s_synic_handle(self, &req, VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT, &b->guest_port,
                       b->signal_to, err, sizeof err)) {
        s_fail(b, "NewGuestEventPort: %s", err);
        return -EPROTO;
    }
    return 0;
}

static int s_post_one(rt_actor_t *self, s_bench_t *b)
{
    Vmm__Synic__PostMessage post = VMM__SYNIC__POST_MESSAGE__INIT;
    post.vp = 0;
    post.sint = S_SINT_MESSAGE;
    post.message_type = S_MESSAGE_TYPE;
    post.payload = (ProtobufCBinaryData){sizeof b->sequence, (uint8_t *)&b->sequence};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &post;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    int rc = rt_request(self, S_SYNIC_VP0, &env, S_CALL_TIMEOUT_MS, NULL);
    if (!rc)
        b->sequence++;
    return rc;
}

/* Posts one message of those that wait. Returns false when it cannot. */
static bool s_post_next(rt_actor_t *self, s_bench_t *b)
{
    int rc = s_post_one(self, b);
    if (rc) {
        s_fail(b, "PostMessage: %s", strerror(-rc));
        return false;
    }
    b->to_post--;
    b->in_flight++;
    return true;
}

/* Before any BUSY: keeps S_WINDOW posts unanswered. */
static void s_fill(rt_actor_t *self, s_bench_t *b)
{
    while (!b->pacing && b->to_post && b->in_flight < S_WINDOW && s_post_next(self, b))
        ;
}

static void s_on_timer(rt_actor_t *self, uint64_t id);

static void s_arm(rt_actor_t *self, s_bench_t *b)
{
    int rc = rt_timer_set(self, 0, rt_now_ns(self) + b->interval_ns, s_on_timer);
    if (rc)
        s_fail(b, "rt_timer_set: %s", strerror(-rc));
}

/* While pacing: adapts the interval to the last burst, then posts the
 * next one; the batch's end (nothing waits, nothing unanswered) ends the
 * pacing. */
static void s_on_timer(rt_actor_t *self, uint64_t id)
{
    (void)id;
    s_bench_t *b = rt_actor_state(self);
    if (!b->pacing)
        return; /* a batch since */
    if (b->burst)
        b->interval_ns = b->burst_busy ? b->interval_ns * 5 / 4 : b->interval_ns * 15 / 16;
    if (b->interval_ns < S_INTERVAL_MIN_NS)
        b->interval_ns = S_INTERVAL_MIN_NS;
    if (b->interval_ns > S_INTERVAL_MAX_NS)
        b->interval_ns = S_INTERVAL_MAX_NS;
    b->burst = 0;
    b->burst_busy = false;
    if (!b->to_post && !b->in_flight) {
        b->pacing = false;
        return;
    }
    while (b->burst < S_WINDOW && b->to_post && s_post_next(self, b))
        b->burst++;
    s_arm(self, b);
}

/* A PostMessage's answer: accepted, BUSY (posted again later) or an
 * error. */
static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_bench_t *b = rt_actor_state(self);
    b->in_flight--;
    if (reply->body_case == VMM__ENVELOPE__BODY_ACK) {
        atomic_fetch_add(&b->cfg.tally->posted, 1);
        s_fill(self, b);
    } else if (reply->body_case == VMM__ENVELOPE__BODY_ERROR &&
               reply->error->code == VMM__ERROR_CODE__BUSY) {
        atomic_fetch_add(&b->cfg.tally->busy, 1);
        b->to_post++;
        b->burst_busy = true;
        if (!b->pacing) {
            /* The posts still unanswered belong to no burst. */
            b->pacing = true;
            b->burst = 0;
            s_arm(self, b);
        }
    } else {
        s_fail(b, "PostMessage answered: %s",
               reply->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->error->text
                                                              : "an unexpected reply");
    }
}

/* The guest asked for n messages (a POST, by the model's guest call). */
static int s_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_bench_t *b = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    if (ev->event_case != VMM__DEVICES__EVENT__EVENT_GUEST_CALL ||
        ev->guest_call->kind != S_CALL_POST || ev->guest_call->n_args != 1) {
        s_fail(b, "an unexpected device event (%d)", ev->event_case);
        return 0;
    }
    b->to_post += ev->guest_call->args[0];
    b->pacing = false; /* the queue is empty: the guest took the last batch */
    s_fill(self, b);
    return 0;
}

/* The guest signalled the host event port: signal its guest event port. */
static int s_on_synic_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_bench_t *b = rt_actor_state(self);
    const Vmm__Synic__Event *ev = msg->synic_event;
    if (ev->event_case != VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED ||
        ev->host_event_signalled->handle != b->host_port) {
        s_fail(b, "an unexpected synic event (%d)", ev->event_case);
        return 0;
    }
    atomic_fetch_add(&b->cfg.tally->signals, 1);
    Vmm__Synic__SignalGuestEventPort sig = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    sig.handle = b->guest_port;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &sig;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    int rc = rt_send(self, b->signal_to, &env);
    if (rc)
        s_fail(b, "SignalGuestEventPort: %s", strerror(-rc));
    return 0;
}

static int s_bench_init(rt_actor_t *self, void *arg)
{
    s_bench_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->cfg = *(const s_bench_config_t *)arg;
    b->interval_ns = S_INTERVAL_START_NS;
    rt_actor_set_state(self, b);
    return s_ports(self, b);
}

/* The synic's ports go with the VM: the actor ends only when the VM does. */
static void s_bench_fini(rt_actor_t *self)
{
    free(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

static const rt_handler_t s_bench_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_on_device_event},
    {VMM__ENVELOPE__BODY_SYNIC_EVENT, s_on_synic_event},
};

static const rt_actor_ops_t s_bench_ops = {
    .kind = "synic-bench",
    .init = s_bench_init,
    .fini = s_bench_fini,
    .handlers = s_bench_handlers,
    .n_handlers = sizeof s_bench_handlers / sizeof *s_bench_handlers,
    .on_reply = s_on_reply,
};

/* ---- The actor VMM ------------------------------------------------------------ */

/* Waits for the guest's sync points and its power off. */
static int s_actor_events(vm_t *vm, uint32_t parts, s_report_t *r, char *err, size_t errlen)
{
    int timeout_ms = 60000 + 5 * (int)S_OPS(s_iterations); /* 5 ms a message or round */
    bool off = false;
    for (;;) {
        vm_event_t ev;
        /* The halt and the last report come from different actors, and
         * may arrive in either order: after the halt, wait a little for
         * what is missing. */
        if (off && r->seen == parts)
            return 0;
        if (vm_next_event(vm, &ev, off ? 1000 : timeout_ms)) {
            if (off)
                return 0; /* the caller reports what is missing */
            snprintf(err, errlen, "the guest reported nothing for %d ms", timeout_ms);
            return -ETIMEDOUT;
        }
        if (ev.kind == VM_EVENT_HALT) {
            off = ev.reason == VMM__VP__HALTED__REASON_POWER_OFF;
            if (off)
                continue;
            snprintf(err, errlen, "%s", ev.text);
            return -EPROTO;
        }
        if (ev.call != TESTDEV_CALL_SYNC || s_take_sync(r, ev.args, ev.n_args)) {
            snprintf(err, errlen, "the guest made call %u (%zu args)", ev.call, ev.n_args);
            return -EPROTO;
        }
    }
}

/* Checks what the guest reported and the actor did, once the VM is gone. */
static int s_check_tally(s_tally_t *t, uint32_t parts, const s_report_t *r, char *err,
                         size_t errlen)
{
    uint64_t want = S_OPS(s_iterations);
    uint64_t want_posted = parts & S_BIT(S_PART_MESSAGES) ? want : 0;
    uint64_t want_signals = parts & S_BIT(S_PART_EVENT) ? want : 0;
    if (atomic_load(&t->errors)) {
        snprintf(err, errlen, "the bench actor failed %llu times, first: %s",
                 (unsigned long long)atomic_load(&t->errors), t->error);
        return -EPROTO;
    }
    if (r->seen != parts || atomic_load(&t->posted) != want_posted ||
        atomic_load(&t->signals) != want_signals) {
        snprintf(err, errlen, "the guest reported parts 0x%x of 0x%x; the actor posted %llu "
                              "messages of %llu and echoed %llu signals of %llu",
                 r->seen, parts, (unsigned long long)atomic_load(&t->posted),
                 (unsigned long long)want_posted, (unsigned long long)atomic_load(&t->signals),
                 (unsigned long long)want_signals);
        return -EPROTO;
    }
    return 0;
}

/* Runs the guest's parts in the VMM with the bench actor placed as asked. */
static int s_actors(vm_placement_t placement, uint32_t parts, s_report_t *r, char *err,
                    size_t errlen)
{
    memset(r, 0, sizeof *r);
    s_tally_t tally = {0};
    s_bench_config_t bench = {.iterations = s_iterations, .parts = parts, .tally = &tally};
    const rt_actor_spec_t actors[] = {{.name = S_ACTOR, .ops = &s_bench_ops, .arg = &bench}};
    const vm_device_t devices[] = {{.name = S_DEVICE, .new_model = s_dev_new,
                                    .model_config = &bench, .guest_calls = S_ACTOR}};
    vm_config_t cfg = {
        .elf = guest_bench_synic_elf,
        .elf_len = guest_bench_synic_elf_len,
        .serial_out = STDERR_FILENO, /* a failed guest assertion's text */
        .serial_in = -1,
        .placement = placement,
        .hyperv = true,
        .devices = devices,
        .n_devices = 1,
        .actors = actors,
        .n_actors = 1,
    };
    vm_t *vm = vm_new(&cfg, err, errlen);
    if (!vm)
        return -EIO;
    int rc = vm_start(vm);
    if (rc)
        snprintf(err, errlen, "the VPs did not start: %s", strerror(-rc));
    if (!rc)
        rc = s_actor_events(vm, parts, r, err, errlen);
    vm_destroy(&vm);
    if (!rc)
        rc = s_check_tally(&tally, parts, r, err, errlen);
    else if (atomic_load(&tally.errors))
        snprintf(err + strlen(err), errlen - strlen(err), "; the bench actor: %s", tally.error);
    uint64_t posted = atomic_load(&tally.posted);
    r->busy = posted ? (double)atomic_load(&tally.busy) / posted : 0;
    return rc;
}

/* ---- Report ---------------------------------------------------------------- */

static double s_median(double *v)
{
    return bench_median(v, s_repeat);
}

/* Medians, per placement of the bench actor and the test device (on VP
 * 0's executor [0], on their own [1]): ns per message, BUSY answers per
 * message, ns per event round, per device MSI round, per SCONTROL read;
 * and the raw harness's ns per MSI round, event round and MSR read. */
typedef struct {
    double message[2], busy[2], event[2], msi[2], msr[2];
    double raw_msi, raw_event, raw_msr, raw_message;
} s_figures_t;

/*
 * Measures the raw harness and both placements s_repeat times each, in
 * turn, so that drift in the machine's load touches all alike.
 */
static void s_measure(s_figures_t *f)
{
    double message[2][BENCH_MAX_REPEAT], busy[2][BENCH_MAX_REPEAT];
    double event[2][BENCH_MAX_REPEAT], msi[2][BENCH_MAX_REPEAT], msr[2][BENCH_MAX_REPEAT];
    double raw_msi[BENCH_MAX_REPEAT], raw_event[BENCH_MAX_REPEAT], raw_msr[BENCH_MAX_REPEAT];
    double raw_message[BENCH_MAX_REPEAT];
    static const vm_placement_t placements[2] = {VM_DEVICES_WITH_VP0, VM_DEVICES_APART};
    static const char *const where[2] = {"the bench actor on VP 0's executor",
                                         "the bench actor on its own executor"};
    char err[512] = "";
    for (int i = 0; i < s_repeat; i++) {
        s_report_t raw;
        if (s_raw(&raw, err, sizeof err))
            bench_die("the raw harness: %s", err);
        if (raw.seen != S_RAW_PARTS)
            bench_die("the guest reported parts 0x%x in the raw harness", raw.seen);
        raw_msi[i] = s_ns_per_op(raw.cycles[S_PART_MSI - 1]);
        raw_event[i] = s_ns_per_op(raw.cycles[S_PART_EVENT - 1]);
        raw_msr[i] = s_ns_per_op(raw.cycles[S_PART_MSR - 1]);
        raw_message[i] = s_ns_per_op(raw.cycles[S_PART_MESSAGES - 1]);
        for (int p = 0; p < 2; p++) {
            s_report_t r;
            if (s_actors(placements[p], S_VMM_PARTS, &r, err, sizeof err))
                bench_die("the VMM, %s: %s", where[p], err);
            message[p][i] = s_ns_per_op(r.cycles[S_PART_MESSAGES - 1]);
            busy[p][i] = r.busy;
            event[p][i] = s_ns_per_op(r.cycles[S_PART_EVENT - 1]);
            msi[p][i] = s_ns_per_op(r.cycles[S_PART_MSI - 1]);
            msr[p][i] = s_ns_per_op(r.cycles[S_PART_MSR - 1]);
        }
    }
    f->raw_msi = s_median(raw_msi);
    f->raw_event = s_median(raw_event);
    f->raw_msr = s_median(raw_msr);
    f->raw_message = s_median(raw_message);
    for (int p = 0; p < 2; p++) {
        f->event[p] = s_median(event[p]);
        f->message[p] = s_median(message[p]);
        f->busy[p] = s_median(busy[p]);
        f->msi[p] = s_median(msi[p]);
        f->msr[p] = s_median(msr[p]);
    }
}

/* Messages per second beside bare MSI round trips per second, and what a
 * message costs; "ok" when the rate is at least min_ratio of the bare one. */
static void s_rate_row(const char *what, double ns, double raw_ns, double min_ratio,
                       const char *target)
{
    double ratio = raw_ns / ns;
    bool ok = min_ratio <= 0 || ratio >= min_ratio;
    printf("  %-54s %10.0f/s %10.0f/s %7.3fx %-5s %s, %.2f us a message\n", what, 1e9 / ns,
           1e9 / raw_ns, ratio, min_ratio > 0 ? (ok ? "ok" : "MISS") : "", target, ns / 1000);
    if (!ok)
        s_rate_misses++;
}

static void s_run(const char *title)
{
    printf("\n%s (%u iterations, median of %d)\n", title, s_iterations, s_repeat);
    s_figures_t f;
    s_measure(&f);
    printf("  guest-visible latency, per round: actors against the raw harness\n");
    bench_row("event signal, echo actor on the VP's executor", f.event[0], f.raw_msi, 1.3,
              "<= 1.3x raw MSI");
    bench_row("event signal, echo actor on another executor", f.event[1], f.raw_msi, 2.0,
              "<= 2x raw MSI");
    bench_row("event signal, echo on the VP's executor", f.event[0], f.raw_event, 1e9,
              "(against the same signal answered inline)");
    bench_row("device MSI, device on the VP's executor", f.msi[0], f.raw_msi, 1.1,
              "<= 1.1x raw MSI");
    bench_row("device MSI, device on another executor", f.msi[1], f.raw_msi, 1e9, "(no target)");
    bench_row("synic MSR read (SCONTROL), VP's synic actor", f.msr[0], f.raw_msr, 1.1,
              "<= 1.1x raw MSR exit");
    bench_row("raw MSI round trip (port exit, KVM_SIGNAL_MSI)", f.raw_msi, f.raw_msi, 1e9,
              "(reference)");
    bench_row("raw event signal (answered inline)", f.raw_event, f.raw_msi, 1e9, "(reference)");
    bench_row("raw MSR exit (answered inline)", f.raw_msr, f.raw_msr, 1e9, "(reference)");
    printf("  %-54s %12s %12s\n", "messages into the guest (SINT 2)", "messages", "raw MSIs");
    s_rate_row("messages, poster on the VP's executor", f.message[0], f.raw_msi, 0.8,
               ">= 0.8x raw MSI rate");
    s_rate_row("messages, poster on another executor", f.message[1], f.raw_msi, 0,
               "(no target)");
    s_rate_row("messages answered inline (raw harness)", f.raw_message, f.raw_msi, 0,
               "(reference)");
    printf("  (VP's executor / another) BUSY answers per message posted: %.2f / %.2f; "
           "the guest's TSC: %u kHz\n",
           f.busy[0], f.busy[1], s_tsc_khz);
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: synic_bench [--iterations N] [--repeat N] [--busy-only | --idle-only]\n"
            "                   [--strict]\n"
            "Measures, inside a guest, what reaching it through the synic costs (an\n"
            "event signal echoed by an actor, messages posted into a SINT, a synthetic\n"
            "MSR read) and an MSI a device raises, beside the same exits answered\n"
            "inline by a bare KVM_RUN loop, on an idle machine and with the other core\n"
            "busy. Needs /dev/kvm.\n"
            "  --iterations N  messages, and event, MSI and MSR rounds, per timed part\n"
            "                  (default 2000)\n"
            "  --repeat N      measurements per figure, the median is shown\n"
            "                  (default 5, at most 15)\n"
            "  --busy-only     only the run with the other core busy\n"
            "  --idle-only     only the idle run\n"
            "  --strict        exit with status 1 when a target is missed\n"
            "Exit status 0 once every figure is measured (with --strict: and every\n"
            "target met); 1 when a measurement fails; 2 for a bad option.\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_opts_t o = {.iterations = s_iterations, .repeat = s_repeat};
    int status = bench_parse(argc, argv, "synic_bench", 1, 1000000, s_usage, &o);
    if (status >= 0)
        return status;
    s_iterations = (uint32_t)o.iterations;
    s_repeat = o.repeat;
    if (access("/dev/kvm", R_OK | W_OK))
        bench_die("/dev/kvm: %s; this benchmark needs KVM", strerror(errno));
    if (o.busy) {
        pid_t load = bench_load_start();
        s_run("Other core busy (a spinning process)");
        bench_load_stop(&load);
    }
    if (o.idle)
        s_run("Idle machine");
    int misses = bench_misses() + s_rate_misses;
    printf("\n%s\n", misses ? "Some targets were missed." : "All targets met.");
    return o.strict && misses ? 1 : 0;
}
