/*
 * VPs storming each other through the split synic (tests/guests/hv_storm):
 * every VP posts to every other VP's SINT 2 and signals an event flag on
 * its SINT 3 at once, through a relay actor here, for 2 and 4 VPs, with
 * the relay on VP 0's executor and on one of its own. Nothing may be lost,
 * repeated or reordered per (VP, SINT); the guest checks and reports.
 * Skips where /dev/kvm is absent.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/devices/testdev_abi.h"
#include "actors/synic/synic.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

/* As tests/guests/hv_storm.c has them. */
#define S_MAX_VPS 4
#define S_ROUNDS 1000
#define S_POST 0x300
#define S_SIGNAL 0x310
#define S_SINT_MESSAGE 2
#define S_SINT_EVENT 3

#define S_RELAY "vm0/test/relay"
#define S_TIMEOUT_MS 20000
#define S_CALL_MS 5000
#define S_RETRY_NS 200000 /* after BUSY */

/* What the relay did, read by the test once the VM is gone. */
typedef struct {
    atomic_uint_fast64_t posted, busy, signals, errors;
    char error[200];
} s_tally_t;

typedef struct {
    uint32_t n_vps;
    s_tally_t *tally;
} s_relay_config_t;

/* The posts waiting for one VP, in order; one at a time in flight. */
typedef struct {
    uint64_t *words;
    size_t head, tail, cap;
    uint64_t in_flight; /* the PostMessage request's id, or 0 */
} s_fifo_t;

typedef struct {
    s_relay_config_t cfg;
    uint64_t guest_port[S_MAX_VPS][S_MAX_VPS]; /* [from][to]: flag `from` of VP `to` */
    char signal_to[S_MAX_VPS][S_MAX_VPS][64];
    s_fifo_t fifo[S_MAX_VPS];
} s_relay_t;

static void __attribute__((format(printf, 2, 3))) s_fail(s_relay_t *r, const char *fmt, ...)
{
    if (atomic_fetch_add(&r->cfg.tally->errors, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->cfg.tally->error, sizeof r->cfg.tally->error, fmt, ap);
        va_end(ap);
    }
}

static int s_synic_call(rt_actor_t *self, Vmm__Synic__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    int rc = rt_call(self, "vm0/synic", &env, reply, S_CALL_MS);
    if (!rc && reply->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_msg_release(reply);
        return -EPROTO;
    }
    return rc;
}

/* The next post for VP `to`, when none is in flight. */
static void s_pump(rt_actor_t *self, s_relay_t *r, uint32_t to)
{
    s_fifo_t *f = &r->fifo[to];
    if (f->in_flight || f->head == f->tail)
        return;
    uint64_t word = f->words[f->head % f->cap];
    Vmm__Synic__PostMessage post = VMM__SYNIC__POST_MESSAGE__INIT;
    post.vp = to;
    post.sint = S_SINT_MESSAGE;
    post.message_type = S_POST;
    post.payload = (ProtobufCBinaryData){sizeof word, (uint8_t *)&word};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &post;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    char actor[64];
    synic_vp_actor(actor, sizeof actor, "vm0/synic", to);
    if (rt_request(self, actor, &env, S_CALL_MS, &f->in_flight))
        s_fail(r, "PostMessage to %s could not be sent", actor);
}

static void s_on_retry(rt_actor_t *self, uint64_t id)
{
    s_pump(self, rt_actor_state(self), (uint32_t)id);
}

static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_relay_t *r = rt_actor_state(self);
    for (uint32_t to = 0; to < r->cfg.n_vps; to++) {
        s_fifo_t *f = &r->fifo[to];
        if (f->in_flight != reply->reply_to)
            continue;
        f->in_flight = 0;
        if (reply->body_case == VMM__ENVELOPE__BODY_ACK) {
            f->head++;
            atomic_fetch_add(&r->cfg.tally->posted, 1);
            s_pump(self, r, to);
        } else if (reply->body_case == VMM__ENVELOPE__BODY_ERROR &&
                   reply->error->code == VMM__ERROR_CODE__BUSY) {
            atomic_fetch_add(&r->cfg.tally->busy, 1);
            rt_timer_set(self, to, rt_now_ns(self) + S_RETRY_NS, s_on_retry);
        } else {
            s_fail(r, "PostMessage to VP %u: %s", to,
                   reply->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->error->text : "?");
        }
        return;
    }
    s_fail(r, "a reply nobody waits for");
}

static void s_push(s_relay_t *r, uint32_t to, uint64_t word)
{
    s_fifo_t *f = &r->fifo[to];
    if (f->tail - f->head == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        uint64_t *words = malloc(cap * sizeof *words);
        for (size_t i = 0; words && i < f->tail - f->head; i++)
            words[i] = f->words[(f->head + i) % f->cap];
        if (!words) {
            s_fail(r, "no memory");
            return;
        }
        free(f->words);
        f->tail -= f->head;
        f->head = 0;
        f->words = words;
        f->cap = cap;
    }
    f->words[f->tail++ % f->cap] = word;
}

static int s_on_synic_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_relay_t *r = rt_actor_state(self);
    const Vmm__Synic__Event *ev = msg->synic_event;
    if (ev->event_case == VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE) {
        const Vmm__Synic__HostMessage *m = ev->host_message;
        uint64_t word = 0;
        if (m->connection_id != S_POST || m->payload.len != sizeof word) {
            s_fail(r, "a message to connection 0x%x of %zu bytes", m->connection_id,
                   m->payload.len);
            return 0;
        }
        memcpy(&word, m->payload.data, sizeof word);
        uint32_t to = (uint32_t)word & 0xffff;
        if (to >= r->cfg.n_vps) {
            s_fail(r, "a message for VP %u", to);
            return 0;
        }
        s_push(r, to, word);
        s_pump(self, r, to);
        return 0;
    }
    const Vmm__Synic__HostEventSignalled *s = ev->host_event_signalled;
    uint32_t from = s ? s->connection_id - S_SIGNAL : S_MAX_VPS, to = s ? s->flag : 0;
    if (from >= r->cfg.n_vps || to >= r->cfg.n_vps || from == to) {
        s_fail(r, "an unexpected synic event");
        return 0;
    }
    Vmm__Synic__SignalGuestEventPort sig = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    sig.handle = r->guest_port[from][to];
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &sig;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    if (rt_send(self, r->signal_to[from][to], &env))
        s_fail(r, "SignalGuestEventPort to %s", r->signal_to[from][to]);
    else
        atomic_fetch_add(&r->cfg.tally->signals, 1);
    return 0;
}

/* Its ports: the message port, an event port per sender, and a guest
 * event port per (sender, receiver). The VM (and its synic) exists. */
static int s_relay_init(rt_actor_t *self, void *arg)
{
    s_relay_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->cfg = *(const s_relay_config_t *)arg;
    rt_actor_set_state(self, r);
    rt_msg_t reply;
    Vmm__Synic__RegisterHostMessagePort mp = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    mp.connection_id = S_POST;
    mp.target = (char *)rt_actor_name(self);
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT;
    req.register_host_message_port = &mp;
    if (s_synic_call(self, &req, &reply))
        return -EPROTO;
    rt_msg_release(&reply);
    for (uint32_t from = 0; from < r->cfg.n_vps; from++) {
        Vmm__Synic__RegisterHostEventPort ep = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
        ep.connection_id = S_SIGNAL + from;
        ep.target = (char *)rt_actor_name(self);
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
        req.register_host_event_port = &ep;
        if (s_synic_call(self, &req, &reply))
            return -EPROTO;
        rt_msg_release(&reply);
        for (uint32_t to = 0; to < r->cfg.n_vps; to++) {
            if (to == from)
                continue;
            Vmm__Synic__NewGuestEventPort gp = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
            gp.vp = to;
            gp.sint = S_SINT_EVENT;
            gp.flag = from;
            req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
            req.new_guest_event_port = &gp;
            if (s_synic_call(self, &req, &reply))
                return -EPROTO;
            const Vmm__Synic__GuestEventPortHandle *h = reply.env->synic_reply->guest_event_port;
            r->guest_port[from][to] = h->handle;
            snprintf(r->signal_to[from][to], sizeof r->signal_to[from][to], "%s", h->signal_to);
            rt_msg_release(&reply);
        }
    }
    return 0;
}

static void s_relay_fini(rt_actor_t *self)
{
    s_relay_t *r = rt_actor_state(self);
    for (uint32_t i = 0; r && i < S_MAX_VPS; i++)
        free(r->fifo[i].words);
    free(r);
    rt_actor_set_state(self, NULL);
}

static const rt_handler_t s_relay_handlers[] = {
    {VMM__ENVELOPE__BODY_SYNIC_EVENT, s_on_synic_event},
};

static const rt_actor_ops_t s_relay_ops = {
    .kind = "storm-relay",
    .init = s_relay_init,
    .fini = s_relay_fini,
    .handlers = s_relay_handlers,
    .n_handlers = 1,
    .on_reply = s_on_reply,
};

/* Prints an actor's introspection tree, two levels, for a failure's
 * report. */
static void s_dump(vm_t *vm, const char *actor)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    if (rt_call(vm_client(vm), actor, &env, &reply, S_CALL_MS))
        return;
    const Vmm__Rt__InspectNode *root = reply.env->inspect_reply;
    printf("%s:", actor);
    for (size_t i = 0; root && i < root->n_children; i++) {
        const Vmm__Rt__InspectNode *c = root->children[i];
        printf(" %s=%s", c->name, c->value);
        for (size_t j = 0; j < c->n_children; j++)
            if (strcmp(c->children[j]->name, "stimer0_config") &&
                strncmp(c->children[j]->name, "stimer", 6) && strncmp(c->children[j]->name, "sint", 4))
                printf(" %s.%s=%s", c->name, c->children[j]->name, c->children[j]->value);
    }
    printf("\n");
    rt_msg_release(&reply);
}

static void s_next_sync(vm_t *vm, uint32_t point, uint32_t *args, size_t n)
{
    vm_event_t ev;
    int rc = vm_next_event(vm, &ev, S_TIMEOUT_MS);
    if (rc) {
        char actor[64];
        for (uint32_t vp = 0; vp < S_MAX_VPS; vp++) {
            synic_vp_actor(actor, sizeof actor, "vm0/synic", vp);
            s_dump(vm, actor);
            snprintf(actor, sizeof actor, "vm0/vp/%u", vp);
            s_dump(vm, actor);
        }
        s_dump(vm, "vm0/synic");
        s_dump(vm, S_RELAY);
    }
    cr_assert_eq(rc, 0, "no sync point %u", point);
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    cr_assert_eq(ev.call, TESTDEV_CALL_SYNC);
    cr_assert_eq(ev.n_args, n + 1);
    cr_assert_eq(ev.args[0], point);
    memcpy(args, ev.args + 1, n * sizeof *args);
}

static void s_storm(uint32_t n_vps, vm_placement_t placement)
{
    vm_harness_need_kvm();
    vm_harness_file_t file = vm_harness_read("tests/guests/hv_storm");
    s_tally_t tally = {0};
    s_relay_config_t relay = {.n_vps = n_vps, .tally = &tally};
    const rt_actor_spec_t actors[] = {{.name = S_RELAY, .ops = &s_relay_ops, .arg = &relay}};
    vm_config_t cfg = {.elf = file.elf, .elf_len = file.len, .n_vps = n_vps,
                       .mem_size = 16u << 20, .serial_out = 2, .serial_in = -1,
                       .placement = placement, .hyperv = true, .actors = actors,
                       .n_actors = 1};
    char err[256];
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    cr_assert_not_null(vm, "%s", err);
    cr_assert_eq(vm_start(vm), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t a[4];
    s_next_sync(vm, 1, a, 2);
    vm_harness_write_ram_from(vm_client(vm), a[1], &n_vps, sizeof n_vps);
    bool reported[S_MAX_VPS] = {false};
    for (uint32_t i = 0; i < n_vps; i++) {
        s_next_sync(vm, 2, a, 4);
        uint32_t vp = a[0];
        cr_assert_lt(vp, n_vps);
        cr_expect_not(reported[vp], "VP %u reported twice", vp);
        reported[vp] = true;
        cr_expect_eq(a[1], (n_vps - 1) * S_ROUNDS,
                     "VP %u: %u messages in order of %u: lost, repeated or reordered", vp, a[1],
                     (n_vps - 1) * S_ROUNDS);
        cr_expect_eq(a[2], 0, "VP %u saw %u wrong messages or lost signals", vp, a[2]);
        cr_expect_eq(a[3], n_vps - 1, "VP %u: the last signal of %u senders of %u reached it",
                     vp, a[3], n_vps - 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    vm_destroy(&vm);
    free(file.elf);
    cr_expect_eq(atomic_load(&tally.errors), 0, "the relay: %s", tally.error);
    uint64_t messages = (uint64_t)n_vps * (n_vps - 1) * (S_ROUNDS + 1);
    cr_expect_eq(atomic_load(&tally.posted), messages);
    cr_expect_eq(atomic_load(&tally.signals), (uint64_t)n_vps * (n_vps - 1) * S_ROUNDS);
    printf("%u VPs, relay %s: %llu messages and %llu signals in %.2f s, %llu BUSY retries\n",
           n_vps, placement == VM_DEVICES_WITH_VP0 ? "on VP 0's executor" : "apart",
           (unsigned long long)messages, (unsigned long long)atomic_load(&tally.signals),
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           (unsigned long long)atomic_load(&tally.busy));
}

Test(storm, two_vps_relay_with_vp0)
{
    s_storm(2, VM_DEVICES_WITH_VP0);
}

Test(storm, two_vps_relay_apart)
{
    s_storm(2, VM_DEVICES_APART);
}

Test(storm, four_vps_relay_with_vp0)
{
    s_storm(4, VM_DEVICES_WITH_VP0);
}

Test(storm, four_vps_relay_apart)
{
    s_storm(4, VM_DEVICES_APART);
}
