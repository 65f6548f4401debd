#include "actors/synic/testing/synic_harness.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define S_CALL_TIMEOUT_MS 5000

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A TSC reading and the monotonic time it was taken at: the narrowest of a
 * few brackets, so that a preemption does not skew it. */
static void s_clock_pair(uint64_t *ns, uint64_t *tsc)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t before = s_mono_ns(), t = __rdtsc(), after = s_mono_ns();
        if (after - before < best) {
            best = after - before;
            *ns = before + best / 2;
            *tsc = t;
        }
    }
}

uint64_t harness_tsc_khz(void)
{
    static uint64_t khz;
    if (khz)
        return khz;
    uint64_t t0, c0, t1, c1;
    s_clock_pair(&t0, &c0);
    struct timespec nap = {0, 30000000};
    while (nanosleep(&nap, &nap) && errno == EINTR)
        ;
    s_clock_pair(&t1, &c1);
    khz = (uint64_t)((unsigned __int128)(c1 - c0) * 1000000u / (t1 - t0));
    return khz;
}

harness_t *harness_start(uint32_t vp_count, uint32_t queue_limit)
{
    const char *split = getenv("SYNIC_HARNESS_SPLIT");
    bool split_on = split && !strcmp(split, "1");
    if (split_on && vp_count > HARNESS_MAX_VPS)
        return NULL;
    harness_t *h = calloc(1, sizeof *h);
    if (!h || !(h->rt = rt_new(NULL)))
        goto fail;
    h->partition = fake_partition_new(h->rt, HARNESS_PARTITION, HARNESS_RAM_SIZE);
    h->ex = rt_executor_new(h->rt, "synic");
    h->vp = rt_client_new(h->rt, HARNESS_VP);
    h->device = rt_client_new(h->rt, HARNESS_DEVICE);
    h->stranger = rt_client_new(h->rt, HARNESS_STRANGER);
    h->target = rt_client_new(h->rt, HARNESS_TARGET);
    if (!h->partition || !h->ex || !h->vp || !h->device || !h->stranger || !h->target)
        goto fail;
    h->cfg = (synic_config_t){.partition = HARNESS_PARTITION, .vp_count = vp_count,
                              .tsc_khz = harness_tsc_khz(), .tsc_offset = 0,
                              .tsc_at_zero = __rdtsc(), .queue_limit = queue_limit};
    h->split = split_on;
    if (h->split)
        h->cfg.role = SYNIC_CENTRAL;
    rt_actor_spec_t spec = {.name = HARNESS_SYNIC, .ops = &synic_ops, .arg = &h->cfg};
    if (rt_actor_start(h->ex, &spec))
        goto fail;
    for (uint32_t vp = 0; h->split && vp < vp_count; vp++) {
        char name[64];
        synic_config_t cfg = h->cfg;
        cfg.role = SYNIC_VP;
        cfg.vp = vp;
        cfg.central = HARNESS_SYNIC;
        synic_vp_actor(name, sizeof name, HARNESS_SYNIC, vp);
        h->vp_ex[vp] = rt_executor_new(h->rt, name);
        rt_actor_spec_t vp_spec = {.name = name, .ops = &synic_ops, .arg = &cfg};
        if (!h->vp_ex[vp] || rt_actor_start(h->vp_ex[vp], &vp_spec))
            goto fail;
    }
    return h;
fail:
    harness_destroy(&h);
    return NULL;
}

void harness_destroy(harness_t **hp)
{
    if (!hp || !*hp)
        return;
    harness_t *h = *hp;
    /* The synic first: it may be calling the partition; its VPs before
     * its central actor, which they call. */
    for (size_t vp = 0; vp < HARNESS_MAX_VPS; vp++)
        rt_executor_destroy(&h->vp_ex[vp]);
    rt_executor_destroy(&h->ex);
    fake_partition_destroy(&h->partition);
    for (size_t i = 0; i < h->n_inboxes; i++)
        if (h->inboxes[i].held)
            rt_msg_release(&h->inboxes[i].msg);
    rt_destroy(&h->rt); /* the clients with it */
    free(h);
    *hp = NULL;
}

/* ---- Requests ------------------------------------------------------------------ */

static void s_envelope(Vmm__Envelope *env, Vmm__Synic__Request *req)
{
    vmm__envelope__init(env);
    env->body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env->synic_request = req;
}

/* Where a VP's own requests go: its actor when split. */
static const char *s_vp_synic(harness_t *h, uint32_t vp, char *buf, size_t size)
{
    if (!h->split || vp >= h->cfg.vp_count || synic_vp_actor(buf, size, HARNESS_SYNIC, vp))
        return HARNESS_SYNIC;
    return buf;
}

static int s_request_to(harness_t *h, rt_client_t *c, const char *to, Vmm__Synic__Request *req,
                        rt_msg_t *reply)
{
    Vmm__Envelope env;
    s_envelope(&env, req);
    rt_msg_t local;
    rt_msg_t *msg = reply ? reply : &local;
    h->last_error[0] = 0;
    int rc = rt_call(rt_client_actor(c), to, &env, msg, S_CALL_TIMEOUT_MS);
    if (rc)
        return rc;
    if (msg->env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        snprintf(h->last_error, sizeof h->last_error, "%s", msg->env->error->text);
        rc = msg->env->error->code ? (int)msg->env->error->code : -EPROTO;
        rt_msg_release(msg);
        return rc;
    }
    if (!reply)
        rt_msg_release(&local);
    return 0;
}

int harness_request(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req, rt_msg_t *reply)
{
    return s_request_to(h, c, HARNESS_SYNIC, req, reply);
}

int harness_send(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req)
{
    (void)h;
    Vmm__Envelope env;
    s_envelope(&env, req);
    return rt_send(rt_client_actor(c), HARNESS_SYNIC, &env);
}

/* A request whose success is a Reply of the given kind, left in *reply. */
static int s_request_reply(harness_t *h, rt_client_t *c, const char *to, Vmm__Synic__Request *req,
                           Vmm__Synic__Reply__ResultCase kind, rt_msg_t *reply)
{
    int rc = s_request_to(h, c, to, req, reply);
    if (rc)
        return rc;
    const Vmm__Envelope *env = reply->env;
    if (env->body_case != VMM__ENVELOPE__BODY_SYNIC_REPLY ||
        env->synic_reply->result_case != kind) {
        rt_msg_release(reply);
        return -EPROTO;
    }
    return 0;
}

/* A request answered by an Ack. */
static int s_request_ack(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req)
{
    rt_msg_t reply;
    int rc = harness_request(h, c, req, &reply);
    if (rc)
        return rc;
    rc = reply.env->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -EPROTO;
    rt_msg_release(&reply);
    return rc;
}

static int s_access_msr(harness_t *h, uint32_t vp, uint32_t index, bool write, uint64_t *value)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = vp;
    op.index = index;
    op.write = write;
    op.value = write ? *value : 0;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &op;
    rt_msg_t reply;
    char to[64];
    int rc = s_request_reply(h, h->vp, s_vp_synic(h, vp, to, sizeof to), &req,
                             VMM__SYNIC__REPLY__RESULT_MSR_RESULT, &reply);
    if (rc)
        return rc;
    const Vmm__Synic__MsrResult *result = reply.env->synic_reply->msr_result;
    rc = result->gp ? 1 : 0;
    if (!write && !rc)
        *value = result->value;
    rt_msg_release(&reply);
    return rc;
}

int harness_rdmsr(harness_t *h, uint32_t vp, uint32_t index, uint64_t *value)
{
    return s_access_msr(h, vp, index, false, value);
}

int harness_wrmsr(harness_t *h, uint32_t vp, uint32_t index, uint64_t value)
{
    return s_access_msr(h, vp, index, true, &value);
}

int harness_hypercall(harness_t *h, uint32_t vp, uint64_t control, uint64_t input,
                      uint64_t *rax)
{
    Vmm__Synic__Hypercall op = VMM__SYNIC__HYPERCALL__INIT;
    op.vp = vp;
    op.control = control;
    op.input = input;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_HYPERCALL;
    req.hypercall = &op;
    rt_msg_t reply;
    char to[64];
    int rc = s_request_reply(h, h->vp, s_vp_synic(h, vp, to, sizeof to), &req,
                             VMM__SYNIC__REPLY__RESULT_HYPERCALL_RESULT, &reply);
    if (rc)
        return rc;
    *rax = reply.env->synic_reply->hypercall_result->rax;
    rt_msg_release(&reply);
    return 0;
}

int harness_post(harness_t *h, rt_client_t *c, uint32_t vp, uint32_t sint, uint32_t type,
                 const void *payload, size_t len)
{
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vp = vp;
    op.sint = sint;
    op.message_type = type;
    op.payload.data = (uint8_t *)payload;
    op.payload.len = len;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    return s_request_ack(h, c, &req);
}

static long long s_inspect_at(harness_t *h, const char *actor, const char *path);

/* Split, waits (at most 2 s a VP) until each VP's actor has taken every
 * table central sent: they leave before central's reply, but may reach a
 * VP's actor after what the test sends it next over another connection.
 * A VP's actor that is not there is not waited for. */
static void s_settle(harness_t *h)
{
    if (!h->split)
        return;
    long long pushed = s_inspect_at(h, HARNESS_SYNIC, "tables_pushed");
    for (uint32_t vp = 0; pushed > 0 && vp < h->cfg.vp_count; vp++) {
        char actor[64];
        s_vp_synic(h, vp, actor, sizeof actor);
        for (int i = 0; i < 2000; i++) {
            long long taken = s_inspect_at(h, actor, "tables_taken");
            if (taken < 0 || taken >= pushed)
                break;
            usleep(1000);
        }
    }
}

/* A port change answered by an Ack, once the VPs have it. */
static int s_port_change_ack(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req)
{
    int rc = s_request_ack(h, c, req);
    if (!rc)
        s_settle(h);
    return rc;
}

/* A registration answered by a reply whose member has a handle, once the
 * VPs have it. */
static int s_request_handle(harness_t *h, rt_client_t *c, Vmm__Synic__Request *req,
                            Vmm__Synic__Reply__ResultCase kind, uint64_t *handle)
{
    rt_msg_t reply;
    int rc = s_request_reply(h, c, HARNESS_SYNIC, req, kind, &reply);
    if (rc)
        return rc;
    const Vmm__Synic__Reply *r = reply.env->synic_reply;
    switch (kind) {
    case VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT:
        *handle = r->host_event_port->handle;
        break;
    case VMM__SYNIC__REPLY__RESULT_HOST_MESSAGE_PORT:
        *handle = r->host_message_port->handle;
        break;
    case VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT:
        *handle = r->guest_event_port->handle;
        break;
    default:
        *handle = r->monitor->handle;
        break;
    }
    rt_msg_release(&reply);
    s_settle(h);
    return 0;
}

int harness_new_guest_port(harness_t *h, rt_client_t *c, uint32_t vp, uint32_t sint,
                           uint32_t flag, uint64_t *handle)
{
    Vmm__Synic__NewGuestEventPort op = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    op.vp = vp;
    op.sint = sint;
    op.flag = flag;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &op;
    return s_request_handle(h, c, &req, VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT, handle);
}

int harness_signal_guest_port(harness_t *h, rt_client_t *c, uint64_t handle)
{
    Vmm__Synic__SignalGuestEventPort op = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    op.handle = handle;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &op;
    return s_request_ack(h, c, &req);
}

int harness_retarget_guest_port(harness_t *h, rt_client_t *c, uint64_t handle, uint32_t vp,
                                int sint)
{
    Vmm__Synic__RetargetGuestEventPort op = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__INIT;
    op.handle = handle;
    op.vp = vp;
    if (sint >= 0) {
        op.opt_sint_case = VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT_SINT;
        op.sint = (uint32_t)sint;
    }
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_RETARGET_GUEST_EVENT_PORT;
    req.retarget_guest_event_port = &op;
    return s_port_change_ack(h, c, &req);
}

int harness_unregister_guest_port(harness_t *h, rt_client_t *c, uint64_t handle)
{
    Vmm__Synic__UnregisterGuestEventPort op = VMM__SYNIC__UNREGISTER_GUEST_EVENT_PORT__INIT;
    op.handle = handle;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_GUEST_EVENT_PORT;
    req.unregister_guest_event_port = &op;
    return s_port_change_ack(h, c, &req);
}

int harness_register_host_port(harness_t *h, rt_client_t *c, bool message,
                               uint32_t connection_id, Vmm__Vtl minimum_vtl, const char *target,
                               uint64_t *handle)
{
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    Vmm__Synic__RegisterHostEventPort event = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    Vmm__Synic__RegisterHostMessagePort msg = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    if (message) {
        msg.connection_id = connection_id;
        msg.minimum_vtl = minimum_vtl;
        msg.target = (char *)target;
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT;
        req.register_host_message_port = &msg;
    } else {
        event.connection_id = connection_id;
        event.minimum_vtl = minimum_vtl;
        event.target = (char *)target;
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
        req.register_host_event_port = &event;
    }
    return s_request_handle(h, c, &req,
                            message ? VMM__SYNIC__REPLY__RESULT_HOST_MESSAGE_PORT
                                    : VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT,
                            handle);
}

int harness_unregister_host_port(harness_t *h, rt_client_t *c, bool message, uint64_t handle)
{
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    Vmm__Synic__UnregisterHostEventPort event = VMM__SYNIC__UNREGISTER_HOST_EVENT_PORT__INIT;
    Vmm__Synic__UnregisterHostMessagePort msg = VMM__SYNIC__UNREGISTER_HOST_MESSAGE_PORT__INIT;
    if (message) {
        msg.handle = handle;
        req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_MESSAGE_PORT;
        req.unregister_host_message_port = &msg;
    } else {
        event.handle = handle;
        req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_EVENT_PORT;
        req.unregister_host_event_port = &event;
    }
    return s_port_change_ack(h, c, &req);
}

int harness_register_monitor(harness_t *h, rt_client_t *c, uint32_t monitor_id,
                             uint32_t connection_id, uint64_t *handle)
{
    Vmm__Synic__RegisterMonitor op = VMM__SYNIC__REGISTER_MONITOR__INIT;
    op.monitor_id = monitor_id;
    op.connection_id = connection_id;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR;
    req.register_monitor = &op;
    return s_request_handle(h, c, &req, VMM__SYNIC__REPLY__RESULT_MONITOR, handle);
}

int harness_unregister_monitor(harness_t *h, rt_client_t *c, uint64_t handle)
{
    Vmm__Synic__UnregisterMonitor op = VMM__SYNIC__UNREGISTER_MONITOR__INIT;
    op.handle = handle;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_MONITOR;
    req.unregister_monitor = &op;
    return s_request_ack(h, c, &req);
}

int harness_set_monitor_page(harness_t *h, rt_client_t *c, bool set, uint64_t gpa)
{
    Vmm__Synic__SetMonitorPage op = VMM__SYNIC__SET_MONITOR_PAGE__INIT;
    if (set) {
        op.opt_gpa_case = VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA_GPA;
        op.gpa = gpa;
    }
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE;
    req.set_monitor_page = &op;
    return s_request_ack(h, c, &req);
}

int harness_status_request(harness_t *h, Vmm__Synic__Request *req, uint32_t *status)
{
    rt_msg_t reply;
    int rc = s_request_reply(h, h->vp, HARNESS_SYNIC, req,
                             VMM__SYNIC__REPLY__RESULT_HYPERCALL_STATUS, &reply);
    if (rc)
        return rc;
    *status = reply.env->synic_reply->hypercall_status->hv_status;
    rt_msg_release(&reply);
    return 0;
}

/* ---- Receiving and introspection --------------------------------------------------- */

static harness_inbox_t *s_inbox(harness_t *h, rt_client_t *c)
{
    for (size_t i = 0; i < h->n_inboxes; i++)
        if (h->inboxes[i].client == c)
            return &h->inboxes[i];
    assert(h->n_inboxes < HARNESS_INBOXES); /* one a client: there are four */
    harness_inbox_t *inbox = &h->inboxes[h->n_inboxes++];
    inbox->client = c;
    return inbox;
}

const Vmm__Envelope *harness_recv(harness_t *h, rt_client_t *c, int timeout_ms)
{
    harness_inbox_t *inbox = s_inbox(h, c);
    if (inbox->held)
        rt_msg_release(&inbox->msg);
    inbox->held = rt_client_recv(c, &inbox->msg, timeout_ms) == 0;
    return inbox->held ? inbox->msg.env : NULL;
}

static const Vmm__Rt__InspectNode *s_child(const Vmm__Rt__InspectNode *node, const char *name,
                                           size_t len)
{
    for (size_t i = 0; i < node->n_children; i++)
        if (strlen(node->children[i]->name) == len &&
            memcmp(node->children[i]->name, name, len) == 0)
            return node->children[i];
    return NULL;
}

/* One actor's value at path, or -1. */
static long long s_inspect_at(harness_t *h, const char *actor, const char *path)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    if (rt_call(rt_client_actor(h->device), actor, &env, &reply, S_CALL_TIMEOUT_MS))
        return -1;
    long long value = -1;
    const Vmm__Rt__InspectNode *node =
        reply.env->body_case == VMM__ENVELOPE__BODY_INSPECT_REPLY ? reply.env->inspect_reply
                                                                   : NULL;
    const char *part = path;
    while (node && *part) {
        const char *slash = strchr(part, '/');
        size_t len = slash ? (size_t)(slash - part) : strlen(part);
        node = s_child(node, part, len);
        part += len + (slash ? 1 : 0);
    }
    if (node && node->value)
        value = strtoll(node->value, NULL, 0);
    rt_msg_release(&reply);
    return value;
}

long long harness_inspect(harness_t *h, const char *path)
{
    if (!h->split)
        return s_inspect_at(h, HARNESS_SYNIC, path);
    char actor[64];
    unsigned vp;
    if (sscanf(path, "vp%u/", &vp) == 1)
        return s_inspect_at(h, s_vp_synic(h, vp, actor, sizeof actor), path);
    static const char *const central[] = {"host_ports", "guest_ports", "monitors",
                                          "monitor_page", "monitor_poll_us"};
    for (size_t i = 0; i < sizeof central / sizeof *central; i++)
        if (!strcmp(path, central[i]))
            return s_inspect_at(h, HARNESS_SYNIC, path);
    long long sum = s_inspect_at(h, HARNESS_SYNIC, path);
    for (uint32_t v = 0; sum >= 0 && v < h->cfg.vp_count; v++) {
        long long n = s_inspect_at(h, s_vp_synic(h, v, actor, sizeof actor), path);
        sum = n < 0 ? -1 : sum + n;
    }
    return sum;
}
