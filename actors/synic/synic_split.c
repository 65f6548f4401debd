/*
 * The split synic's messages between its actors: "<vm>/synic" (central)
 * pushes its port tables to each VP's actor, a VP's actor asks central for
 * the partition-wide MSRs and for connections its table does not hold yet,
 * and either hands on what belongs to the other (synic.h, synic.proto).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/synic/synic_internal.h"

/* How long a request handed on, or a question to central, may take. */
#define S_PASS_TIMEOUT_MS 5000

int synic_vp_actor(char *buf, size_t size, const char *synic, uint32_t vp)
{
    int n = snprintf(buf, size, "%s/vp/%u", synic, vp);
    return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

bool synic_partition_wide_msr(uint32_t index)
{
    return index == SYNIC_MSR_GUEST_OS_ID || index == SYNIC_MSR_HYPERCALL ||
           index == SYNIC_MSR_REFERENCE_TSC;
}

/* ---- Handing on ------------------------------------------------------------------ */

/* Relays a reply that came for a request handed on. */
static int s_relay(void *arg, const Vmm__Envelope *reply)
{
    const struct {
        synic_t *s;
        const Vmm__Envelope *req;
    } *call = arg;
    Vmm__Envelope body = *reply; /* its routing fields are the reply's own */
    return rt_reply(call->s->self, call->req, &body);
}

int synic_pass(synic_t *s, const Vmm__Envelope *msg, const char *to,
               synic_pass_nested_t nested)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = msg->synic_request;
    s->counts.passed_on++;
    if (!msg->request_id) {
        int rc = rt_send(s->self, to, &env);
        if (rc) {
            s->counts.unsent++;
            rt_log(rt_actor_rt(s->self), s->self, RT_LOG_WARN, "handing on to %s: %s", to,
                   strerror(-rc));
        }
        return 0;
    }
    rt_deferred_t *owed = rt_defer(s->self, msg);
    if (!owed && nested == SYNIC_PASS_ACK) {
        int rc = rt_send(s->self, to, &env);
        return rc ? rt_reply_error(s->self, msg, rt_error_code(rc), "%s: %s", to, strerror(-rc))
                  : rt_reply_ack(s->self, msg);
    }
    if (!owed && nested == SYNIC_PASS_CALL) {
        struct {
            synic_t *s;
            const Vmm__Envelope *req;
        } call = {s, msg};
        int rc = rt_call_with(s->self, to, &env, S_PASS_TIMEOUT_MS, s_relay, &call);
        return rc ? rt_reply_error(s->self, msg, rt_error_code(rc), "%s: %s", to, strerror(-rc))
                  : 0;
    }
    if (!owed)
        return rt_reply_error(s->self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "%s: this request is %s's to serve: send it there",
                              rt_actor_name(s->self), to);
    synic_pass_t *grown = realloc(s->passes, (s->n_passes + 1) * sizeof *grown);
    uint64_t id = 0;
    int rc = grown ? rt_request(s->self, to, &env, S_PASS_TIMEOUT_MS, &id) : -ENOMEM;
    if (grown)
        s->passes = grown;
    if (rc) {
        Vmm__Envelope err = VMM__ENVELOPE__INIT;
        Vmm__Error e = VMM__ERROR__INIT;
        char text[160];
        snprintf(text, sizeof text, "%s: handing on to %s: %s", rt_actor_name(s->self), to,
                 strerror(-rc));
        e.code = rt_error_code(rc);
        e.text = text;
        err.body_case = VMM__ENVELOPE__BODY_ERROR;
        err.error = &e;
        rt_reply_deferred(s->self, &owed, &err);
        return 0;
    }
    s->passes[s->n_passes++] = (synic_pass_t){.id = id, .owed = owed};
    return 0;
}

void synic_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    synic_t *s = rt_actor_state(self);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_passes; i++) {
        if (s->passes[i].id != reply->reply_to)
            continue;
        rt_deferred_t *owed = s->passes[i].owed;
        s->passes[i] = s->passes[--s->n_passes];
        pthread_mutex_unlock(&s->lock);
        Vmm__Envelope body = *reply;
        rt_reply_deferred(self, &owed, &body);
        return;
    }
    pthread_mutex_unlock(&s->lock);
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "a reply from %s nobody waits for",
           reply->sender ? reply->sender : "?");
}

void synic_passes_free(synic_t *s)
{
    Vmm__Envelope err = VMM__ENVELOPE__INIT;
    Vmm__Error e = VMM__ERROR__INIT;
    e.code = VMM__ERROR_CODE__INTERNAL;
    e.text = "the synic actor stopped";
    err.body_case = VMM__ENVELOPE__BODY_ERROR;
    err.error = &e;
    for (size_t i = 0; i < s->n_passes; i++)
        rt_reply_deferred(s->self, &s->passes[i].owed, &err);
    free(s->passes);
    s->passes = NULL;
    s->n_passes = 0;
}

/* ---- Port tables ----------------------------------------------------------------- */

void synic_push_ports(synic_t *s)
{
    Vmm__Synic__HostPortEntry *hosts = calloc(s->n_host_ports + 1, sizeof *hosts);
    Vmm__Synic__HostPortEntry **host_ptrs = calloc(s->n_host_ports + 1, sizeof *host_ptrs);
    Vmm__Synic__GuestPortEntry *guests = calloc(s->n_guest_ports + 1, sizeof *guests);
    Vmm__Synic__GuestPortEntry **guest_ptrs = calloc(s->n_guest_ports + 1, sizeof *guest_ptrs);
    if (!hosts || !host_ptrs || !guests || !guest_ptrs) {
        /* The VPs keep asking central for what they do not know. */
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_ERROR, "no memory for the port table");
        goto out;
    }
    for (size_t i = 0; i < s->n_host_ports; i++) {
        const synic_host_port_t *p = &s->host_ports[i];
        vmm__synic__host_port_entry__init(&hosts[i]);
        hosts[i].handle = p->handle;
        hosts[i].message = p->message;
        hosts[i].connection_id = p->connection_id;
        hosts[i].minimum_vtl = (Vmm__Vtl)p->minimum_vtl;
        hosts[i].target = p->target;
        host_ptrs[i] = &hosts[i];
    }
    for (size_t i = 0; i < s->n_guest_ports; i++) {
        const synic_guest_port_t *p = &s->guest_ports[i];
        vmm__synic__guest_port_entry__init(&guests[i]);
        guests[i].handle = p->handle;
        guests[i].vp = p->vp;
        guests[i].sint = p->sint;
        guests[i].flag = p->flag;
        guest_ptrs[i] = &guests[i];
    }
    Vmm__Synic__PortTable table = VMM__SYNIC__PORT_TABLE__INIT;
    table.generation = ++s->ports_generation;
    table.n_host_ports = s->n_host_ports;
    table.host_ports = host_ptrs;
    table.n_guest_ports = s->n_guest_ports;
    table.guest_ports = guest_ptrs;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_PORT_TABLE;
    req.port_table = &table;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = &req;
    for (uint32_t vp = 0; vp < s->vp_count; vp++) {
        char to[256];
        if (synic_vp_actor(to, sizeof to, rt_actor_name(s->self), vp) ||
            rt_send(s->self, to, &env)) {
            s->counts.unsent++;
            rt_log(rt_actor_rt(s->self), s->self, RT_LOG_WARN, "the port table for VP %u: unsent",
                   vp);
        }
    }
    s->counts.tables_pushed++;
out:
    free(hosts);
    free(host_ptrs);
    free(guests);
    free(guest_ptrs);
}

void synic_ports_clear(synic_t *s)
{
    for (size_t i = 0; i < s->n_host_ports; i++) {
        free(s->host_ports[i].target);
        free(s->host_ports[i].owner);
    }
    free(s->host_ports);
    s->host_ports = NULL;
    s->n_host_ports = 0;
    for (size_t i = 0; i < s->n_guest_ports; i++)
        free(s->guest_ports[i].owner);
    free(s->guest_ports);
    s->guest_ports = NULL;
    s->n_guest_ports = 0;
}

int synic_take_ports(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__PortTable *t)
{
    rt_t *rt = rt_actor_rt(s->self);
    if (s->role != SYNIC_VP || !msg->sender || strcmp(msg->sender, s->central)) {
        s->counts.bad_requests++;
        rt_log(rt, s->self, RT_LOG_INFO, "refused a port table from %s: only %s sends them",
               msg->sender ? msg->sender : "?", s->role == SYNIC_VP ? s->central : "nobody");
        return msg->request_id ? rt_reply_error(s->self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                                                "port tables come from the synic's central actor")
                               : 0;
    }
    if (t->generation <= s->ports_generation)
        return 0; /* an older one, overtaken */
    synic_host_port_t *hosts = calloc(t->n_host_ports + 1, sizeof *hosts);
    synic_guest_port_t *guests = calloc(t->n_guest_ports + 1, sizeof *guests);
    bool ok = hosts && guests;
    for (size_t i = 0; ok && i < t->n_host_ports; i++) {
        const Vmm__Synic__HostPortEntry *e = t->host_ports[i];
        hosts[i] = (synic_host_port_t){.handle = e->handle, .message = e->message,
                                       .connection_id = e->connection_id,
                                       .minimum_vtl = (uint32_t)e->minimum_vtl,
                                       .target = strdup(e->target), .owner = strdup(s->central)};
        ok = hosts[i].target && hosts[i].owner;
    }
    for (size_t i = 0; ok && i < t->n_guest_ports; i++) {
        const Vmm__Synic__GuestPortEntry *e = t->guest_ports[i];
        ok = e->vp < s->vp_count && e->sint < SYNIC_SINTS && e->flag < SYNIC_EVENT_FLAGS;
        guests[i] = (synic_guest_port_t){.handle = e->handle, .vp = e->vp, .sint = e->sint,
                                         .flag = e->flag, .owner = strdup(s->central)};
        ok = ok && guests[i].owner;
    }
    if (!ok) {
        for (size_t i = 0; hosts && i < t->n_host_ports; i++) {
            free(hosts[i].target);
            free(hosts[i].owner);
        }
        for (size_t i = 0; guests && i < t->n_guest_ports; i++)
            free(guests[i].owner);
        free(hosts);
        free(guests);
        s->counts.bad_requests++;
        rt_log(rt, s->self, RT_LOG_ERROR, "cannot take port table %llu (no memory, or out of "
                                          "range); asking central meanwhile",
               (unsigned long long)t->generation);
        return 0;
    }
    synic_ports_clear(s);
    s->host_ports = hosts;
    s->n_host_ports = t->n_host_ports;
    s->guest_ports = guests;
    s->n_guest_ports = t->n_guest_ports;
    s->ports_generation = t->generation;
    s->counts.tables_taken++;
    return 0;
}

/* ---- Asking central ---------------------------------------------------------------- */

/* Takes a reply of case want from central into *out (copied). */
typedef struct {
    Vmm__Synic__Reply__ResultCase want;
    uint64_t value;
    bool gp;
    uint32_t status;
} s_answer_t;

static int s_take_answer(void *arg, const Vmm__Envelope *reply)
{
    s_answer_t *a = arg;
    const Vmm__Synic__Reply *r =
        reply->body_case == VMM__ENVELOPE__BODY_SYNIC_REPLY ? reply->synic_reply : NULL;
    if (!r || r->result_case != a->want)
        return -EPROTO;
    if (a->want == VMM__SYNIC__REPLY__RESULT_MSR_RESULT) {
        a->value = r->msr_result->value;
        a->gp = r->msr_result->gp;
    } else {
        a->status = r->hypercall_status->hv_status;
    }
    return 0;
}

static int s_ask_central(synic_t *s, Vmm__Synic__Request *req, s_answer_t *a)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    int rc = rt_call_with(s->self, s->central, &env, S_PASS_TIMEOUT_MS, s_take_answer, a);
    if (rc) {
        s->counts.unsent++;
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_WARN, "asking %s: %s", s->central,
               strerror(-rc));
    }
    return rc;
}

int synic_central_msr(synic_t *s, uint32_t vp, uint32_t index, bool write, uint64_t value,
                      uint64_t *out)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = vp;
    op.index = index;
    op.write = write;
    op.value = value;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &op;
    s_answer_t a = {.want = VMM__SYNIC__REPLY__RESULT_MSR_RESULT};
    if (s_ask_central(s, &req, &a) || a.gp)
        return -EPERM;
    if (out)
        *out = a.value;
    return 0;
}

uint32_t synic_central_route(synic_t *s, uint32_t vtl, uint32_t connection_id, uint32_t flag,
                             const uint8_t *message, uint32_t type, uint32_t size)
{
    Vmm__Synic__SignalEvent signal = VMM__SYNIC__SIGNAL_EVENT__INIT;
    Vmm__Synic__HandlePostMessage post = VMM__SYNIC__HANDLE_POST_MESSAGE__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    if (message) {
        post.vtl = (Vmm__Vtl)vtl;
        post.connection_id = connection_id;
        post.message_type = type;
        post.payload = (ProtobufCBinaryData){size, (uint8_t *)message};
        req.op_case = VMM__SYNIC__REQUEST__OP_HANDLE_POST_MESSAGE;
        req.handle_post_message = &post;
    } else {
        signal.vtl = (Vmm__Vtl)vtl;
        signal.connection_id = connection_id;
        signal.flag = flag;
        req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_EVENT;
        req.signal_event = &signal;
    }
    s_answer_t a = {.want = VMM__SYNIC__REPLY__RESULT_HYPERCALL_STATUS};
    if (s_ask_central(s, &req, &a))
        return SYNIC_HV_STATUS_INSUFFICIENT_BUFFERS;
    return a.status;
}
