/*
 * The control actor (control.h): a proxy for operators, and the control
 * protocol's few requests that need several actors.
 */
#include "actors/control/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t id; /* of the request passed on */
    rt_deferred_t *reply;
} s_pending_t;

typedef struct {
    char *vm, *owner, *partition;
    uint32_t n_vps;
    bool *paused; /* by Pause, until Resume, a reset or a power off */
    char **keys;
    size_t n_keys;
    s_pending_t *pending;
    size_t n_pending, cap_pending, max_pending;
    struct {
        uint64_t passed, refused, own, timed_out, busy;
    } stats;
} control_t;

/* ---- The operator's scope ------------------------------------------------- */

static bool s_vp_op(int op)
{
    switch (op) {
    case VMM__VP__REQUEST__OP_STOP:
    case VMM__VP__REQUEST__OP_YIELD:
    case VMM__VP__REQUEST__OP_GET_STATE:
    case VMM__VP__REQUEST__OP_SET_STATE:
    case VMM__VP__REQUEST__OP_SET_DEBUG_STATE:
    case VMM__VP__REQUEST__OP_IS_VTL_INSPECTABLE:
    case VMM__VP__REQUEST__OP_FLUSH_ASYNC_REQUESTS:
        return true;
    default:
        return false;
    }
}

static bool s_partition_op(int op)
{
    switch (op) {
    case VMM__PARTITION__REQUEST__OP_IS_AVAILABLE:
    case VMM__PARTITION__REQUEST__OP_GET_CPUID:
    case VMM__PARTITION__REQUEST__OP_GET_MAX_PHYSICAL_ADDRESS_SIZE:
    case VMM__PARTITION__REQUEST__OP_GET_ISOLATION:
    case VMM__PARTITION__REQUEST__OP_QUERY_FEATURES:
    case VMM__PARTITION__REQUEST__OP_GET_CAPS:
    case VMM__PARTITION__REQUEST__OP_REQUEST_MSI:
    case VMM__PARTITION__REQUEST__OP_REQUEST_YIELD:
    case VMM__PARTITION__REQUEST__OP_GET_VM_STATE:
    case VMM__PARTITION__REQUEST__OP_GET_REFERENCE_TIME:
        return true;
    default:
        return false;
    }
}

static bool s_synic_op(int op)
{
    switch (op) {
    case VMM__SYNIC__REQUEST__OP_POST_MESSAGE:
    case VMM__SYNIC__REQUEST__OP_ASSERT_SINT:
    case VMM__SYNIC__REQUEST__OP_SIGNAL_EVENT:
    case VMM__SYNIC__REQUEST__OP_GET_PREFER_OS_EVENTS:
    case VMM__SYNIC__REQUEST__OP_GET_MONITOR_SUPPORT:
    case VMM__SYNIC__REQUEST__OP_PORT_TABLE:
        return true;
    default:
        return false;
    }
}

/* Guest memory is the partition's; registers are the devices'. */
static bool s_device_op(int op, bool to_partition)
{
    switch (op) {
    case VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY:
    case VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY:
        return to_partition;
    case VMM__DEVICES__REQUEST__OP_READ_IO:
    case VMM__DEVICES__REQUEST__OP_WRITE_IO:
    case VMM__DEVICES__REQUEST__OP_READ_MMIO:
    case VMM__DEVICES__REQUEST__OP_WRITE_MMIO:
        return !to_partition;
    default:
        return false;
    }
}

/* The body's field name, and its operation's: "vp_request run". */
static const char *s_what(const Vmm__Envelope *env, char *buf, size_t size)
{
    const ProtobufCFieldDescriptor *body =
        protobuf_c_message_descriptor_get_field(&vmm__envelope__descriptor, env->body_case);
    const char *op = "";
    if (body && body->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *m = *(const ProtobufCMessage *const *)((const char *)env +
                                                                        body->offset);
        const ProtobufCMessageDescriptor *d = body->descriptor;
        /* A protocol's Request has one oneof; its case is the field number. */
        if (m && d->n_fields && d->fields[0].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + d->fields[0].quantifier_offset);
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, which);
            op = f ? f->name : "";
        }
    }
    snprintf(buf, size, "%s%s%s", body ? body->name : "an unknown body", *op ? " " : "", op);
    return buf;
}

const char *control_refusal(const char *vm, const Vmm__Envelope *env, char *buf, size_t size)
{
    const char *to = env->receiver ? env->receiver : "";
    size_t vm_len = strlen(vm);
    if (strncmp(to, vm, vm_len) || to[vm_len] != '/') {
        snprintf(buf, size, "\"%s\" is not an actor of %s", to, vm);
        return buf;
    }
    const char *local = to + vm_len + 1;
    bool allowed = false;
    int op = 0;
    switch (env->body_case) {
    case VMM__ENVELOPE__BODY_INSPECT:
    case VMM__ENVELOPE__BODY_PING:
        allowed = true;
        break;
    case VMM__ENVELOPE__BODY_VP_REQUEST:
        op = env->vp_request->op_case;
        allowed = !strncmp(local, "vp/", 3) && s_vp_op(op);
        break;
    case VMM__ENVELOPE__BODY_PARTITION_REQUEST:
        op = env->partition_request->op_case;
        allowed = !strcmp(local, "partition") && s_partition_op(op);
        break;
    case VMM__ENVELOPE__BODY_SYNIC_REQUEST:
        op = env->synic_request->op_case;
        allowed = !strncmp(local, "synic", 5) && s_synic_op(op);
        break;
    case VMM__ENVELOPE__BODY_DEVICE_REQUEST:
        op = env->device_request->op_case;
        allowed = s_device_op(op, !strcmp(local, "partition"));
        break;
    default:
        break;
    }
    bool one_way_ok = env->body_case == VMM__ENVELOPE__BODY_VP_REQUEST &&
                      (op == VMM__VP__REQUEST__OP_STOP || op == VMM__VP__REQUEST__OP_YIELD);
    if (allowed && !env->request_id && !one_way_ok) {
        snprintf(buf, size, "an operator sends requests (only Stop and Yield may go one-way)");
        return buf;
    }
    if (allowed)
        return NULL;
    char what[96];
    snprintf(buf, size, "%s to %s is outside an operator's scope", s_what(env, what, sizeof what),
             to);
    return buf;
}

/* ---- Refusals ---------------------------------------------------------------- */

/* Counts and logs a refusal, answering a request. Returns 0. */
static int s_refuse(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
                    const char *why)
{
    control_t *c = rt_actor_state(self);
    c->stats.refused++;
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "refused %s: %s", msg->sender, why);
    return msg->request_id ? rt_reply_error(self, msg, code, "%s", why) : 0;
}

/* Over tcp://, only an operator's key: the runtime admits device hosts'
 * keys to the VM's actors, this one among them. */
static bool s_operator(rt_actor_t *self, const Vmm__Envelope *msg)
{
    control_t *c = rt_actor_state(self);
    const char *key = rt_peer_key(self);
    if (!key)
        return true;
    for (size_t i = 0; i < c->n_keys; i++)
        if (!strcmp(c->keys[i], key))
            return true;
    char why[128];
    snprintf(why, sizeof why, "CURVE key %s is not an operator's", key);
    s_refuse(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED, why);
    return false;
}

/* ---- Passing requests on ------------------------------------------------------ */

static int s_remember(control_t *c, uint64_t id, rt_deferred_t *reply)
{
    if (c->n_pending == c->cap_pending) {
        size_t cap = c->cap_pending ? 2 * c->cap_pending : 8;
        s_pending_t *p = realloc(c->pending, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        c->pending = p;
        c->cap_pending = cap;
    }
    c->pending[c->n_pending++] = (s_pending_t){id, reply};
    return 0;
}

static int s_forward(rt_actor_t *self, const Vmm__Envelope *msg)
{
    control_t *c = rt_actor_state(self);
    if (!s_operator(self, msg))
        return 0;
    char why[192];
    if (control_refusal(c->vm, msg, why, sizeof why))
        return s_refuse(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED, why);
    Vmm__Envelope env = *msg;
    env.request_id = 0;
    env.reply_to = 0;
    if (msg->request_id && c->n_pending >= c->max_pending) {
        /* Not a refusal of the operator's: not counted as denied, and
         * logged within rt_log()'s limit. */
        c->stats.busy++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN,
               "%s: %zu requests wait for their actors already: busy", msg->sender,
               c->n_pending);
        return rt_reply_error(self, msg, VMM__ERROR_CODE__BUSY,
                              "%zu requests wait for the VM's actors already; try again",
                              c->n_pending);
    }
    c->stats.passed++;
    if (!msg->request_id)
        return rt_send(self, msg->receiver, &env);
    rt_deferred_t *reply = rt_defer(self, msg);
    if (!reply)
        return -ENOMEM;
    uint64_t id;
    int rc = rt_request(self, msg->receiver, &env, CONTROL_TIMEOUT_MS, &id);
    if (!rc && !(rc = s_remember(c, id, reply)))
        return 0;
    Vmm__Envelope body = VMM__ENVELOPE__INIT;
    Vmm__Error err = VMM__ERROR__INIT;
    char text[160];
    snprintf(text, sizeof text, "cannot pass the request on to %s: %s", msg->receiver,
             strerror(-rc));
    err.code = rt_error_code(rc);
    err.text = text;
    body.body_case = VMM__ENVELOPE__BODY_ERROR;
    body.error = &err;
    rt_reply_deferred(self, &reply, &body);
    return 0;
}

static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    control_t *c = rt_actor_state(self);
    for (size_t i = 0; i < c->n_pending; i++) {
        if (c->pending[i].id != reply->reply_to)
            continue;
        rt_deferred_t *d = c->pending[i].reply;
        c->pending[i] = c->pending[--c->n_pending];
        if (reply->body_case == VMM__ENVELOPE__BODY_ERROR &&
            reply->error->code == VMM__ERROR_CODE__TIMEOUT)
            c->stats.timed_out++;
        Vmm__Envelope body = *reply;
        body.reply_to = 0;
        rt_reply_deferred(self, &d, &body);
        return;
    }
}

/* ---- The control protocol ------------------------------------------------------- */

/* Calls a VP with req; Ack is 0, an Error its errno with its text in why. */
static int s_call_vp(rt_actor_t *self, uint32_t vp, Vmm__Vp__Request *req, char *why, size_t n)
{
    control_t *c = rt_actor_state(self);
    char name[64];
    snprintf(name, sizeof name, "%s/vp/%u", c->vm, vp);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = req;
    return rt_call_expect(self, name, &env, VMM__ENVELOPE__BODY_ACK, NULL, CONTROL_TIMEOUT_MS,
                          why, n);
}

/* Stops (or runs again, reporting to the owner) every VP, or one; only
 * those this actor paused when only_paused. */
static int s_each_vp(rt_actor_t *self, bool run, bool has_index, uint32_t index,
                     bool only_paused, char *why, size_t n)
{
    control_t *c = rt_actor_state(self);
    if (has_index && index >= c->n_vps) {
        snprintf(why, n, "vp %u: the VM has %u VPs", index, c->n_vps);
        return -EINVAL;
    }
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    Vmm__Vp__Run run_op = VMM__VP__RUN__INIT;
    Vmm__Vp__Stop stop_op = VMM__VP__STOP__INIT;
    if (run) {
        run_op.report_to = c->owner;
        req.op_case = VMM__VP__REQUEST__OP_RUN;
        req.run = &run_op;
    } else {
        req.op_case = VMM__VP__REQUEST__OP_STOP;
        req.stop = &stop_op;
    }
    for (uint32_t vp = has_index ? index : 0; vp < (has_index ? index + 1 : c->n_vps); vp++) {
        if (only_paused && !c->paused[vp])
            continue;
        int rc = s_call_vp(self, vp, &req, why, n);
        if (rc && !(run && rc == -EBUSY)) /* BUSY: it runs already */
            return rc;
        c->paused[vp] = !run;
    }
    return 0;
}

/* What the guest's own reset or power off would do: running VPs halt with
 * it, and those paused run again only to halt with it at once. */
static int s_power(rt_actor_t *self, Vmm__Devices__PowerAction action, uint32_t exit_code,
                   char *why, size_t n)
{
    control_t *c = rt_actor_state(self);
    Vmm__Devices__PowerRequest power = VMM__DEVICES__POWER_REQUEST__INIT;
    power.action = action;
    if (action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF) {
        power.opt_exit_code_case = VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE_EXIT_CODE;
        power.exit_code = exit_code;
    }
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_POWER_REQUEST;
    ev.power_request = &power;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = &ev;
    int rc = rt_call_expect(self, c->partition, &env, VMM__ENVELOPE__BODY_ACK, NULL,
                            CONTROL_TIMEOUT_MS, why, n);
    if (!rc)
        rc = s_each_vp(self, true, false, 0, true, why, n);
    /* Powered off, the VM may go before a paused VP hears it may run: one
     * with no route any more went with it. */
    if (rc == -ENOENT && action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF) {
        rc = 0;
        *why = 0;
    }
    return rc;
}

/* Pauses every VP, has the VM's owner write the snapshot, and runs again
 * what it paused unless asked not to. */
static int s_snapshot(rt_actor_t *self, const Vmm__Control__Snapshot *op, char *why, size_t n)
{
    control_t *c = rt_actor_state(self);
    if (!op->dir || !*op->dir) {
        snprintf(why, n, "a snapshot needs a folder");
        return -EINVAL;
    }
    bool *was = malloc(c->n_vps ? c->n_vps : 1);
    if (!was)
        return -ENOMEM;
    memcpy(was, c->paused, c->n_vps);
    int rc = s_each_vp(self, false, false, 0, false, why, n);
    if (!rc) {
        Vmm__Control__Request req = VMM__CONTROL__REQUEST__INIT;
        req.op_case = VMM__CONTROL__REQUEST__OP_SNAPSHOT;
        req.snapshot = (Vmm__Control__Snapshot *)op;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_CONTROL_REQUEST;
        env.control_request = &req;
        rc = rt_call_expect(self, c->owner, &env, VMM__ENVELOPE__BODY_ACK, NULL,
                            CONTROL_SNAPSHOT_TIMEOUT_MS, why, n);
    }
    /* Runs again what it paused itself, snapshot or not. */
    char again[256];
    for (uint32_t vp = 0; vp < c->n_vps; vp++)
        if (!was[vp] && c->paused[vp] && (rc || !op->stay_paused))
            s_each_vp(self, true, true, vp, false, again, sizeof again);
    free(was);
    return rc;
}

typedef struct {
    const char *prefix;
    Vmm__Control__Actor *actors;
    size_t n, cap;
} s_list_t;

static void s_list_add(s_list_t *l, const char *name, const char *kind, bool elsewhere)
{
    if (l->n == l->cap)
        return;
    Vmm__Control__Actor *a = &l->actors[l->n];
    vmm__control__actor__init(a);
    a->name = strdup(name);
    a->kind = strdup(kind);
    a->elsewhere = elsewhere;
    if (a->name && a->kind)
        l->n++;
    else {
        free(a->name);
        free(a->kind);
    }
}

static void s_list_local(void *arg, const char *name, const char *kind)
{
    s_list_t *l = arg;
    if (!strncmp(name, l->prefix, strlen(l->prefix)) && strcmp(kind, "client"))
        s_list_add(l, name, kind, false);
}

static bool s_listed(const s_list_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->actors[i].name, name))
            return true;
    return false;
}

/* The process's actors of the VM, and the devices registered from
 * elsewhere (the partition's Inspect lists every registered device). */
static int s_list_actors(rt_actor_t *self, const Vmm__Envelope *msg)
{
    control_t *c = rt_actor_state(self);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/", c->vm);
    s_list_t l = {.prefix = prefix};
    size_t local = rt_actors_each(rt_actor_rt(self), NULL, NULL);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t tree;
    int rc = rt_call(self, c->partition, &env, &tree, CONTROL_TIMEOUT_MS);
    const Vmm__Rt__InspectNode *devices = NULL;
    const Vmm__Rt__InspectNode *root = !rc ? tree.env->inspect_reply : NULL;
    for (size_t i = 0; root && i < root->n_children; i++)
        if (!strcmp(root->children[i]->name, "devices"))
            devices = root->children[i];
    l.cap = local + 16 + (devices ? devices->n_children : 0);
    l.actors = calloc(l.cap, sizeof *l.actors);
    if (l.actors) {
        rt_actors_each(rt_actor_rt(self), s_list_local, &l);
        for (size_t i = 0; devices && i < devices->n_children; i++)
            if (!s_listed(&l, devices->children[i]->value))
                s_list_add(&l, devices->children[i]->value, "device", true);
    }
    if (!rc)
        rt_msg_release(&tree);
    if (!l.actors)
        return -ENOMEM;
    Vmm__Control__Actor **ptrs = calloc(l.n ? l.n : 1, sizeof *ptrs);
    rc = ptrs ? 0 : -ENOMEM;
    if (ptrs) {
        for (size_t i = 0; i < l.n; i++)
            ptrs[i] = &l.actors[i];
        Vmm__Control__Actors actors = VMM__CONTROL__ACTORS__INIT;
        actors.actors = ptrs;
        actors.n_actors = l.n;
        Vmm__Control__Reply result = VMM__CONTROL__REPLY__INIT;
        result.result_case = VMM__CONTROL__REPLY__RESULT_ACTORS;
        result.actors = &actors;
        Vmm__Envelope out = VMM__ENVELOPE__INIT;
        out.body_case = VMM__ENVELOPE__BODY_CONTROL_REPLY;
        out.control_reply = &result;
        rc = rt_reply(self, msg, &out);
    }
    for (size_t i = 0; i < l.n; i++) {
        free(l.actors[i].name);
        free(l.actors[i].kind);
    }
    free(ptrs);
    free(l.actors);
    return rc;
}

static int s_on_control(rt_actor_t *self, const Vmm__Envelope *msg)
{
    control_t *c = rt_actor_state(self);
    if (!s_operator(self, msg))
        return 0;
    if (!msg->request_id)
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "control requests are requests, not one-way");
    const Vmm__Control__Request *req = msg->control_request;
    char why[256] = "";
    int rc;
    c->stats.own++;
    switch (req->op_case) {
    case VMM__CONTROL__REQUEST__OP_PAUSE:
        rc = s_each_vp(self, false, req->pause->opt_vp_index_case, req->pause->vp_index, false,
                       why, sizeof why);
        break;
    case VMM__CONTROL__REQUEST__OP_RESUME:
        rc = s_each_vp(self, true, req->resume->opt_vp_index_case, req->resume->vp_index, false,
                       why, sizeof why);
        break;
    case VMM__CONTROL__REQUEST__OP_RESET:
        rc = s_power(self, VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET, 0, why, sizeof why);
        break;
    case VMM__CONTROL__REQUEST__OP_POWER_OFF:
        rc = s_power(self, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF,
                     req->power_off->exit_code, why, sizeof why);
        break;
    case VMM__CONTROL__REQUEST__OP_LIST_ACTORS:
        return s_list_actors(self, msg);
    case VMM__CONTROL__REQUEST__OP_SNAPSHOT:
        rc = s_snapshot(self, req->snapshot, why, sizeof why);
        break;
    default:
        c->stats.own--;
        return s_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "an unknown control request");
    }
    if (rc)
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", why);
    return rt_reply_ack(self, msg);
}

/* ---- The actor ------------------------------------------------------------------ */

static void s_free(control_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_keys; i++)
        free(c->keys[i]);
    free(c->keys);
    free(c->vm);
    free(c->owner);
    free(c->partition);
    free(c->pending);
    free(c->paused);
    free(c);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const control_config_t *cfg = arg;
    control_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->vm = strdup(cfg->vm);
    c->owner = strdup(cfg->owner);
    c->partition = malloc(strlen(cfg->vm) + sizeof "/partition");
    c->keys = calloc(cfg->n_operator_keys ? cfg->n_operator_keys : 1, sizeof *c->keys);
    c->n_vps = cfg->n_vps;
    c->max_pending = cfg->max_pending ? cfg->max_pending : CONTROL_MAX_PENDING;
    c->paused = calloc(cfg->n_vps ? cfg->n_vps : 1, sizeof *c->paused);
    int rc = c->vm && c->owner && c->partition && c->keys && c->paused ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < cfg->n_operator_keys; i++, c->n_keys++)
        if (!(c->keys[i] = strdup(cfg->operator_keys[i])))
            rc = -ENOMEM;
    if (rc) {
        s_free(c);
        return rc;
    }
    sprintf(c->partition, "%s/partition", cfg->vm);
    rt_actor_set_state(self, c);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    control_t *c = rt_actor_state(self);
    /* Requests still out are answered: their callers wait no longer. */
    for (size_t i = 0; i < c->n_pending; i++) {
        Vmm__Envelope body = VMM__ENVELOPE__INIT;
        Vmm__Error err = VMM__ERROR__INIT;
        err.code = VMM__ERROR_CODE__INTERNAL;
        err.text = "the VM's control endpoint closed";
        body.body_case = VMM__ENVELOPE__BODY_ERROR;
        body.error = &err;
        rt_reply_deferred(self, &c->pending[i].reply, &body);
    }
    s_free(c);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    control_t *c = rt_actor_state(self);
    rt_inspect_add(node, "passed_on", "%llu", (unsigned long long)c->stats.passed);
    rt_inspect_add(node, "own_requests", "%llu", (unsigned long long)c->stats.own);
    rt_inspect_add(node, "denied", "%llu", (unsigned long long)c->stats.refused);
    rt_inspect_add(node, "timed_out", "%llu", (unsigned long long)c->stats.timed_out);
    rt_inspect_add(node, "pending", "%zu", c->n_pending);
    rt_inspect_add(node, "busy", "%llu", (unsigned long long)c->stats.busy);
    uint32_t paused = 0;
    for (uint32_t i = 0; i < c->n_vps; i++)
        paused += c->paused[i];
    rt_inspect_add(node, "paused_vps", "%u", paused);
    rt_inspect_add(node, "operator_keys", "%zu", c->n_keys);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_CONTROL_REQUEST, s_on_control},
};

const rt_actor_ops_t control_ops = {
    .kind = "control",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof s_handlers[0],
    .on_reply = s_on_reply,
    .inspect = s_inspect,
    .forward = s_forward,
};
