/*
 * The partition actor's device side: devices' requests (registration,
 * unregistration, guest memory, power), what a device may do, the routes
 * VPs get, and the liveness of devices in other processes. What is
 * granted is kept by the device registry actor beside the partition
 * (actors/registry/registry.h), which the partition asks.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "actors/devices/device_guest.h"
#include "actors/partition/partition_internal.h"

/* ---- The device registry ------------------------------------------------------------ */

/* Asks the registry; *reply, released by the caller, holds its answer, of
 * case want (NOT_SET: an Ack). Returns 0, the refusal's errno with its
 * text in err (may be NULL), or the call's error. */
static int s_registry(rt_actor_t *self, Vmm__Registry__Request *req,
                      Vmm__Registry__Reply__ResultCase want, rt_msg_t *reply, char *err,
                      size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_REGISTRY_REQUEST;
    env.registry_request = req;
    int rc = rt_call(self, p->registry, &env, reply, PARTITION_REGISTRY_TIMEOUT_MS);
    if (rc) {
        if (err)
            snprintf(err, errlen, "the device registry did not answer: %s", strerror(-rc));
        return rc;
    }
    const Vmm__Envelope *r = reply->env;
    if (r->body_case == VMM__ENVELOPE__BODY_ERROR) {
        if (err)
            snprintf(err, errlen, "%s", r->error->text);
        rc = rt_errno_of(r->error->code);
    } else if (want == VMM__REGISTRY__REPLY__RESULT__NOT_SET
                   ? r->body_case != VMM__ENVELOPE__BODY_ACK
                   : r->body_case != VMM__ENVELOPE__BODY_REGISTRY_REPLY ||
                         r->registry_reply->result_case != want) {
        if (err)
            snprintf(err, errlen, "the device registry answered something else");
        rc = -EPROTO;
    }
    if (rc)
        rt_msg_release(reply);
    return rc;
}

static void s_grants_forget(partition_t *p)
{
    pthread_mutex_lock(&p->grants_lock);
    for (size_t i = 0; i < p->n_grants; i++)
        free(p->grants[i].actor);
    free(p->grants);
    p->grants = NULL;
    p->n_grants = 0;
    p->n_non_devices = 0;
    pthread_mutex_unlock(&p->grants_lock);
}

/* What actor may do as a device; NULL when the registry did not say.
 * Valid until the next call. */
static const partition_grants_t *s_grants(rt_actor_t *self, const char *actor)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_grants; i++)
        if (!strcmp(p->grants[i].actor, actor))
            return &p->grants[i];
    Vmm__Registry__GetGrants op = VMM__REGISTRY__GET_GRANTS__INIT;
    op.actor = (char *)actor;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_GET_GRANTS;
    req.get_grants = &op;
    rt_msg_t reply;
    if (s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_GRANTS, &reply, NULL, 0))
        return NULL;
    const Vmm__Registry__Grants *got = reply.env->registry_reply->grants;
    partition_grants_t g = {.device = got->device, .msi_count = got->msi_count};
    snprintf(g.origin, sizeof g.origin, "%s", got->origin);
    for (size_t i = 0; i < got->n_irq_lines; i++)
        if (got->irq_lines[i] < PARTITION_IRQ_LINES)
            g.irq_lines |= 1u << got->irq_lines[i];
    rt_msg_release(&reply);
    if (!g.device && p->n_non_devices >= PARTITION_MAX_NON_DEVICES_CACHED) {
        p->uncached = g;
        return &p->uncached;
    }
    g.actor = strdup(actor);
    pthread_mutex_lock(&p->grants_lock);
    partition_grants_t *grown = realloc(p->grants, (p->n_grants + 1) * sizeof *grown);
    if (grown)
        p->grants = grown;
    if (!g.actor || !grown) {
        pthread_mutex_unlock(&p->grants_lock);
        free(g.actor);
        return NULL;
    }
    p->grants[p->n_grants] = g;
    p->n_non_devices += !g.device;
    partition_grants_t *got_g = &p->grants[p->n_grants++];
    pthread_mutex_unlock(&p->grants_lock);
    return got_g;
}

/* A registration changed: what devices may do is asked again, for every
 * registered device at once, so that the shared handlers (which cannot ask
 * the registry) know every device. */
static void s_grants_refresh(rt_actor_t *self)
{
    partition_t *p = rt_actor_state(self);
    s_grants_forget(p);
    rt_msg_t listed;
    const Vmm__Registry__Devices *list;
    if (partition_registry_list(self, &listed, &list)) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR,
               "the device registry did not list its devices");
        return;
    }
    for (size_t i = 0; i < list->n_devices; i++)
        if (!s_grants(self, list->devices[i]->actor))
            rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "no grants for %s",
                   list->devices[i]->actor);
    rt_msg_release(&listed);
}

bool partition_grants_of(partition_t *p, const char *actor, partition_grants_t *out)
{
    bool found = false;
    pthread_mutex_lock(&p->grants_lock);
    for (size_t i = 0; i < p->n_grants && !found; i++)
        if (!strcmp(p->grants[i].actor, actor) && p->grants[i].device) {
            *out = p->grants[i];
            out->actor = NULL; /* not the caller's to keep */
            found = true;
        }
    pthread_mutex_unlock(&p->grants_lock);
    return found;
}

static bool s_has_irq(const partition_grants_t *g, uint32_t irq)
{
    return irq < PARTITION_IRQ_LINES && (g->irq_lines >> irq & 1);
}

/* Whether [address, address + length) lies in one of actor's MMIO
 * ranges. */
static bool s_owns(rt_actor_t *self, const char *actor, uint64_t address, uint64_t length)
{
    Vmm__Registry__Owns op = VMM__REGISTRY__OWNS__INIT;
    op.actor = (char *)actor;
    op.address = address;
    op.length = length;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_OWNS;
    req.owns = &op;
    rt_msg_t reply;
    if (s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_OWNED, &reply, NULL, 0))
        return false;
    bool owns = reply.env->registry_reply->owned->owns;
    rt_msg_release(&reply);
    return owns;
}

/* Where the envelope self handles came from, as the registry keeps it
 * (registry.proto Add.origin): a sender's name from another process is only
 * what that process wrote, and holds for what registered from there. */
static void s_origin(rt_actor_t *self, char *buf, size_t size)
{
    const char *key = rt_peer_key(self);
    snprintf(buf, size, "%s%s", rt_peer_remote(self) ? "peer:" : "", key ? key : "");
}

static int s_registry_add(rt_actor_t *self, const char *actor,
                          const Vmm__Devices__RegisterDevice *device, uint64_t *handle, char *err,
                          size_t errlen)
{
    char origin[PARTITION_ORIGIN_MAX];
    s_origin(self, origin, sizeof origin);
    Vmm__Registry__Add op = VMM__REGISTRY__ADD__INIT;
    op.actor = (char *)actor;
    op.origin = origin;
    op.device = (Vmm__Devices__RegisterDevice *)device; /* only read */
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_ADD;
    req.add = &op;
    rt_msg_t reply;
    int rc = s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_ADDED, &reply, err, errlen);
    if (rc)
        return rc;
    *handle = reply.env->registry_reply->added->handle;
    rt_msg_release(&reply);
    s_grants_refresh(self);
    return 0;
}

/* Returns 0, -EPERM (another actor's), -ENOENT or the call's error. */
static int s_registry_remove(rt_actor_t *self, uint64_t handle, const char *actor)
{
    Vmm__Registry__Remove op = VMM__REGISTRY__REMOVE__INIT;
    op.handle = handle;
    op.actor = (char *)actor;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_REMOVE;
    req.remove = &op;
    rt_msg_t reply;
    int rc = s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT__NOT_SET, &reply, NULL, 0);
    if (!rc)
        rt_msg_release(&reply);
    s_grants_refresh(self);
    return rc;
}

/* Returns 1 when the registration stays, marked lost; 0 when it went. */
static int s_registry_lose(rt_actor_t *self, uint64_t handle)
{
    Vmm__Registry__Lose op = VMM__REGISTRY__LOSE__INIT;
    op.handle = handle;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_LOSE;
    req.lose = &op;
    rt_msg_t reply;
    int rc = s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_LOST, &reply, NULL, 0);
    s_grants_refresh(self);
    if (rc)
        return rc;
    rc = reply.env->registry_reply->lost->kept ? 1 : 0;
    rt_msg_release(&reply);
    return rc;
}

/* The VPs' routing table, in *reply (released by the caller). */
static int s_registry_routes(rt_actor_t *self, rt_msg_t *reply,
                             const Vmm__Vp__SetIoRoutes **routes, char *err, size_t errlen)
{
    Vmm__Registry__GetRoutes op = VMM__REGISTRY__GET_ROUTES__INIT;
    op.posted_ok = partition_posts_ok(rt_actor_state(self));
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_GET_ROUTES;
    req.get_routes = &op;
    int rc = s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_ROUTES, reply, err, errlen);
    if (!rc)
        *routes = reply->env->registry_reply->routes;
    return rc;
}

int partition_registry_list(rt_actor_t *self, rt_msg_t *reply,
                            const Vmm__Registry__Devices **list)
{
    Vmm__Registry__List op = VMM__REGISTRY__LIST__INIT;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_LIST;
    req.list = &op;
    int rc = s_registry(self, &req, VMM__REGISTRY__REPLY__RESULT_DEVICES, reply, NULL, 0);
    if (!rc)
        *list = reply->env->registry_reply->devices;
    return rc;
}

/* ---- Permissions ---------------------------------------------------------------- */

/* Refuses an act outside what the sender may do: PERMISSION_DENIED,
 * counted, and logged. Returns 0. */
int partition_deny(rt_actor_t *self, const Vmm__Envelope *msg, const char *why)
{
    partition_t *p = rt_actor_state(self);
    p->stats.refused++;
    if (++p->stats.denied <= PARTITION_MAX_DENIALS_LOGGED)
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "refused %s: %s%s", msg->sender, why,
               p->stats.denied == PARTITION_MAX_DENIALS_LOGGED
                   ? " (further refusals are counted only)"
                   : "");
    return msg->request_id
               ? rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED, "%s", why)
               : 0;
}

/* Actors are named "<vm>/...": one of another VM may not act on this one.
 * Names without a VM are the host's own (the VMM, tests). */
static bool s_same_vm(const partition_t *p, const char *sender)
{
    const char *slash = strchr(sender, '/');
    return !slash || ((size_t)(slash - sender) == strlen(p->vm) &&
                      !strncmp(sender, p->vm, (size_t)(slash - sender)));
}

/* Why a registered device may not make this partition request, or NULL:
 * a device acts only within its registration (its IRQ lines, the MSIs it
 * was given, doorbells in its own ranges) and has no say over the VM's
 * configuration or its VPs. */
static const char *s_device_may_not(rt_actor_t *self, const partition_grants_t *g,
                                    const char *sender, const Vmm__Partition__Request *req,
                                    char *buf, size_t len)
{
    switch (req->op_case) {
    case VMM__PARTITION__REQUEST__OP_REQUEST_MSI:
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET:
    case VMM__PARTITION__REQUEST__OP_NEW_MSI_INTERRUPT:
        if (g->msi_count)
            return NULL;
        return "its registration was given no MSIs";
    case VMM__PARTITION__REQUEST__OP_ASSERT_IRQ:
        if (s_has_irq(g, req->assert_irq->irq))
            return NULL;
        snprintf(buf, len, "IRQ %u is not among its registered lines", req->assert_irq->irq);
        return buf;
    case VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL: {
        const Vmm__Partition__RegisterDoorbell *op = req->register_doorbell;
        if (*op->owner && strcmp(op->owner, sender))
            return "a device's doorbells signal the device itself";
        if (s_owns(self, sender, op->guest_address, op->opt_length_case ? op->length : 1))
            return NULL;
        snprintf(buf, len, "a doorbell at 0x%llx, outside its MMIO ranges",
                 (unsigned long long)op->guest_address);
        return buf;
    }
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_TARGET:
    case VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DISABLE_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_DROP_MSI_INTERRUPT:
    case VMM__PARTITION__REQUEST__OP_UNREGISTER_DOORBELL: /* owners are checked there */
    case VMM__PARTITION__REQUEST__OP_GET_REFERENCE_TIME:
    case VMM__PARTITION__REQUEST__OP_GET_CAPS:
    case VMM__PARTITION__REQUEST__OP_QUERY_FEATURES:
    case VMM__PARTITION__REQUEST__OP_GET_ISOLATION:
        return NULL;
    default:
        snprintf(buf, len, "partition operation %d is not a device's to make",
                 (int)req->op_case);
        return buf;
    }
}

/* Whether msg's sender may make its request or event; else answers for
 * it (partition_deny) and returns false. */
bool partition_permitted(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    char buf[160], origin[PARTITION_ORIGIN_MAX];
    const char *why = NULL;
    const partition_grants_t *g = NULL;
    bool registers = msg->body_case == VMM__ENVELOPE__BODY_DEVICE_REQUEST &&
                     msg->device_request->op_case == VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    s_origin(self, origin, sizeof origin);
    if (!s_same_vm(p, msg->sender)) {
        snprintf(buf, sizeof buf, "an actor of another VM may not act on %s", p->vm);
        why = buf;
    } else if (!(g = s_grants(self, msg->sender)) || !g->device) {
        /* Only this process's actors act for the VM itself. */
        if (*origin && !registers)
            why = "an actor of another process acts here only as a device it registered";
    } else if (strcmp(g->origin, origin)) {
        snprintf(buf, sizeof buf, "%s registered from %s, and this came from %s",
                 msg->sender, *g->origin ? g->origin : "this process",
                 *origin ? origin : "this process");
        why = buf;
    } else if (msg->body_case == VMM__ENVELOPE__BODY_PARTITION_REQUEST) {
        why = s_device_may_not(self, g, msg->sender, msg->partition_request, buf, sizeof buf);
    }
    if (!why)
        return true;
    partition_deny(self, msg, why);
    return false;
}

bool partition_permitted_shared(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    char buf[128];
    const char *why = NULL;
    partition_grants_t g;
    if (!s_same_vm(p, msg->sender)) {
        snprintf(buf, sizeof buf, "an actor of another VM may not act on %s", p->vm);
        why = buf;
    } else if (msg->body_case == VMM__ENVELOPE__BODY_PARTITION_REQUEST &&
               partition_grants_of(p, msg->sender, &g)) {
        why = s_device_may_not(self, &g, msg->sender, msg->partition_request, buf, sizeof buf);
    }
    if (!why)
        return true;
    partition_deny(self, msg, why);
    return false;
}

/* ---- Devices: registry, guest memory, power ------------------------------------- */

/* Sends every VP the routing table and, when wait, waits for each to take
 * it, so that a device's ranges work once its registration is answered.
 * Without waiting (a lost device), a VP caught in a call to the synic on
 * this executor cannot hold the partition up. */
int partition_push_routes(rt_actor_t *self, bool wait, char *err, size_t errlen)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return 0;
    rt_msg_t routes;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    int rc = s_registry_routes(self, &routes,
                               (const Vmm__Vp__SetIoRoutes **)&req.set_io_routes, err, errlen);
    if (rc)
        return rc;
    req.op_case = VMM__VP__REQUEST__OP_SET_IO_ROUTES;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    for (uint32_t i = 0; !rc && i < p->vp_count; i++) {
        if (!wait) {
            if ((rc = rt_send(self, p->vp_names[i], &env)))
                snprintf(err, errlen, "cannot send %s the new routes: %s", p->vp_names[i],
                         strerror(-rc));
            continue;
        }
        rt_msg_t reply;
        rc = rt_call(self, p->vp_names[i], &env, &reply, PARTITION_ROUTE_TIMEOUT_MS);
        if (!rc) {
            if (reply.env->body_case != VMM__ENVELOPE__BODY_ACK)
                rc = -EIO;
            rt_msg_release(&reply);
        }
        if (rc)
            snprintf(err, errlen, "%s did not take the new routes: %s", p->vp_names[i],
                     strerror(-rc));
    }
    rt_msg_release(&routes);
    return rc;
}

static void s_wait_free(partition_route_wait_t *w)
{
    free(w->ids);
    free(w->reply);
    free(w->actor);
}

static void s_unwatch_remote(partition_t *p, uint64_t handle);
static void s_remote_answered(partition_t *p, uint64_t handle);

/* Forgets registration handle of actor: its ranges, its liveness pings and
 * its doorbells. Returns the registry's refusal, -EPERM or -ENOENT (then
 * nothing else is done). */
static int s_forget(rt_actor_t *self, uint64_t handle, const char *actor)
{
    partition_t *p = rt_actor_state(self);
    int rc = s_registry_remove(self, handle, actor);
    if (!rc) {
        s_unwatch_remote(p, handle);
        partition_drop_doorbells_of(self, actor);
    }
    return rc;
}

/* Undoes registration handle (0: none) of actor and refuses the deferred
 * request with why. Returns 0. */
static int s_refuse_owed(rt_actor_t *self, rt_deferred_t **owed, uint64_t handle,
                         const char *actor, const char *why)
{
    partition_t *p = rt_actor_state(self);
    if (handle) {
        s_forget(self, handle, actor);
        char ignored[192];
        partition_push_routes(self, false, ignored, sizeof ignored);
    }
    p->stats.refused++;
    char text[192];
    snprintf(text, sizeof text, "%s", why);
    Vmm__Error err = VMM__ERROR__INIT;
    err.code = VMM__ERROR_CODE__TIMEOUT;
    err.text = text;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_ERROR;
    env.error = &err;
    if (rt_reply_deferred(self, owed, &env))
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "a deferred refusal could not be sent");
    return 0;
}

/* Every VP answered: the deferred reply goes, or, should one have failed,
 * the registration is undone and refused. */
static void s_wait_done(rt_actor_t *self, size_t i)
{
    partition_t *p = rt_actor_state(self);
    partition_route_wait_t w = p->waits[i];
    p->waits[i] = p->waits[--p->n_waits];
    if (*w.why) {
        s_refuse_owed(self, &w.owed, w.handle, w.actor, w.why);
        s_wait_free(&w);
        return;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Ack ack = VMM__ACK__INIT;
    Vmm__Devices__Reply *r = NULL;
    if (w.reply && (r = vmm__devices__reply__unpack(NULL, w.reply_len, w.reply))) {
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = r;
    } else {
        env.body_case = VMM__ENVELOPE__BODY_ACK;
        env.ack = &ack;
    }
    if (rt_reply_deferred(self, &w.owed, &env))
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "a deferred reply could not be sent");
    s_remote_answered(p, w.handle);
    if (r)
        vmm__devices__reply__free_unpacked(r, NULL);
    s_wait_free(&w);
}

/* A VP's answer to new routes; true when it was one. */
static bool s_wait_answer(rt_actor_t *self, const Vmm__Envelope *reply)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_waits; i++) {
        partition_route_wait_t *w = &p->waits[i];
        for (uint32_t v = 0; v < p->vp_count; v++) {
            if (w->ids[v] != reply->reply_to)
                continue;
            w->ids[v] = 0;
            if (reply->body_case != VMM__ENVELOPE__BODY_ACK && !*w->why)
                snprintf(w->why, sizeof w->why, "%s did not take the new routes: %s",
                         p->vp_names[v],
                         reply->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->error->text
                                                                       : "an odd answer");
            if (!--w->outstanding)
                s_wait_done(self, i);
            return true;
        }
    }
    return false;
}

/* Answers msg with reply (NULL: an Ack) once every VP has the routes;
 * should one not take them, undoes registration handle (0: none) of
 * msg's sender and refuses. Without VPs, or for a caller on this very
 * thread, it waits for them here. Returns 0 or a negative errno. */
static int s_reply_after_routes(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Devices__Reply *reply, uint64_t handle)
{
    partition_t *p = rt_actor_state(self);
    char err[192] = "";
    rt_deferred_t *owed = p->stage == PARTITION_BUILT && p->vp_count ? rt_defer(self, msg) : NULL;
    if (!owed) {
        int rc = partition_push_routes(self, true, err, sizeof err);
        if (rc && handle)
            s_forget(self, handle, msg->sender);
        if (rc)
            return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
        s_remote_answered(p, handle);
        if (!reply)
            return rt_reply_ack(self, msg);
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = (Vmm__Devices__Reply *)reply;
        return rt_reply(self, msg, &env);
    }
    partition_route_wait_t w = {.owed = owed, .handle = handle, .outstanding = p->vp_count};
    w.ids = calloc(p->vp_count, sizeof *w.ids);
    w.actor = strdup(msg->sender);
    if (reply) {
        w.reply_len = vmm__devices__reply__get_packed_size(reply);
        if ((w.reply = malloc(w.reply_len ? w.reply_len : 1)))
            vmm__devices__reply__pack(reply, w.reply);
    }
    partition_route_wait_t *grown = realloc(p->waits, (p->n_waits + 1) * sizeof *grown);
    if (grown)
        p->waits = grown;
    rt_msg_t routes;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    int rc = !w.ids || !w.actor || (reply && !w.reply) || !grown ? -ENOMEM : 0;
    bool made = !rc && !(rc = s_registry_routes(self, &routes,
                                                (const Vmm__Vp__SetIoRoutes **)&req.set_io_routes,
                                                NULL, 0));
    req.op_case = VMM__VP__REQUEST__OP_SET_IO_ROUTES;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    for (uint32_t i = 0; !rc && i < p->vp_count; i++)
        if ((rc = rt_request(self, p->vp_names[i], &env, PARTITION_ROUTE_TIMEOUT_MS, &w.ids[i])))
            snprintf(w.why, sizeof w.why, "cannot send %s the new routes: %s", p->vp_names[i],
                     strerror(-rc));
    if (made)
        rt_msg_release(&routes);
    if (rc && !*w.why)
        snprintf(w.why, sizeof w.why, "the new routes: %s", strerror(-rc));
    if (rc && !grown) { /* nowhere to keep it: answer and undo now */
        s_wait_free(&w);
        return s_refuse_owed(self, &owed, handle, msg->sender, "out of memory");
    }
    if (rc) {
        /* Requests already sent are answered to nobody: their ids are
         * forgotten with w. */
        p->waits[p->n_waits++] = w;
        s_wait_done(self, p->n_waits - 1);
        return 0;
    }
    p->waits[p->n_waits++] = w;
    return 0;
}

/* ---- Devices in other processes: liveness ------------------------------------------ */

static void s_liveness_arm(partition_t *p)
{
    long ns = p->n_remotes ? PARTITION_LIVENESS_PERIOD_MS * 1000000L : 0;
    struct itimerspec its = {.it_interval = {0, ns}, .it_value = {0, ns}};
    timerfd_settime(p->liveness_fd, 0, &its, NULL);
}

static void s_remote_free(partition_remote_t *r)
{
    free(r->actor);
    free(r->name);
}

/* The device host went away (or stopped answering): its ranges become
 * nobody's, so VPs treat accesses as to an unregistered address. */
static void s_remote_lost(rt_actor_t *self, size_t i, const char *why)
{
    partition_t *p = rt_actor_state(self);
    partition_remote_t r = p->remotes[i];
    p->remotes[i] = p->remotes[--p->n_remotes];
    p->stats.devices_lost++;
    bool kept = s_registry_lose(self, r.handle) == 1;
    if (!kept)
        partition_drop_doorbells_of(self, r.actor);
    rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "device %s (%s) is lost: %s; %s", r.name,
           r.actor, why,
           kept ? "the VM cannot do without it: a VP that touches it halts"
                : "its ranges are nobody's now");
    char err[192] = "";
    if (partition_push_routes(self, false, err, sizeof err))
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s", err);
    s_remote_free(&r);
    s_liveness_arm(p);
}

void partition_on_liveness_fd(rt_actor_t *self, int fd)
{
    partition_t *p = rt_actor_state(self);
    uint64_t ticks;
    if (read(fd, &ticks, sizeof ticks) < 0)
        return;
    for (size_t i = 0; i < p->n_remotes; i++) {
        if (p->remotes[i].ping || !p->remotes[i].answered)
            continue; /* a ping is answered or timed out by on_reply */
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
        env.body_case = VMM__ENVELOPE__BODY_PING;
        env.ping = &ping;
        if (rt_request(self, p->remotes[i].actor, &env, PARTITION_LIVENESS_TIMEOUT_MS,
                       &p->remotes[i].ping))
            p->remotes[i].ping = 0;
    }
}

/* A device in another process was heard from (on the partition's thread). */
static void s_heard(rt_actor_t *self, const char *actor)
{
    partition_t *p = rt_actor_state(self);
    for (size_t i = 0; i < p->n_remotes; i++)
        if (!strcmp(p->remotes[i].actor, actor))
            p->remotes[i].heard_ns = rt_now_ns(self);
}

/* A ping's, a route update's or a doorbell signal's answer, or the
 * TIMEOUT the runtime gives for its absence. */
void partition_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    partition_t *p = rt_actor_state(self);
    if (s_wait_answer(self, reply) || partition_doorbell_answered(self, reply))
        return;
    for (size_t i = 0; i < p->n_remotes; i++) {
        if (p->remotes[i].ping != reply->reply_to)
            continue;
        p->remotes[i].ping = 0;
        /* Its pong waits behind the work it is doing for the VM. */
        uint64_t quiet_ns = rt_now_ns(self) - p->remotes[i].heard_ns;
        if (reply->body_case == VMM__ENVELOPE__BODY_ERROR &&
            reply->error->code == VMM__ERROR_CODE__TIMEOUT &&
            quiet_ns < PARTITION_LIVENESS_TIMEOUT_MS * 1000000ull)
            return;
        if (reply->body_case != VMM__ENVELOPE__BODY_PONG)
            s_remote_lost(self, i, reply->body_case == VMM__ENVELOPE__BODY_ERROR
                                       ? reply->error->text
                                       : "it answered a ping with something else");
        return;
    }
}

/* The registration of a remote device was answered: pings may start. */
static void s_remote_answered(partition_t *p, uint64_t handle)
{
    for (size_t i = 0; i < p->n_remotes; i++)
        if (p->remotes[i].handle == handle)
            p->remotes[i].answered = true;
}

/* Stops pinging the device of registration handle, if it is remote. */
static void s_unwatch_remote(partition_t *p, uint64_t handle)
{
    for (size_t i = 0; i < p->n_remotes; i++)
        if (p->remotes[i].handle == handle) {
            s_remote_free(&p->remotes[i]);
            p->remotes[i] = p->remotes[--p->n_remotes];
            s_liveness_arm(p);
            return;
        }
}

static int s_watch_remote(partition_t *p, const char *actor, const char *name, uint64_t handle)
{
    partition_remote_t *grown = realloc(p->remotes, (p->n_remotes + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->remotes = grown;
    partition_remote_t r = {.actor = strdup(actor), .name = strdup(name), .handle = handle};
    if (!r.actor || !r.name) {
        s_remote_free(&r);
        return -ENOMEM;
    }
    p->remotes[p->n_remotes++] = r;
    s_liveness_arm(p);
    return 0;
}

/* Makes the doorbells a registration asks for, each in the device's own
 * MMIO ranges and signalling the device: handles[i] is the i-th one's, or
 * 0 where it could not be made (then, with required, nothing is granted:
 * returns the error). */
static int s_grant_doorbells(rt_actor_t *self, const Vmm__Envelope *msg,
                             const Vmm__Devices__RegisterDevice *op, uint64_t *handles,
                             char *err, size_t errlen)
{
    for (size_t i = 0; i < op->n_doorbells; i++) {
        const Vmm__Devices__DoorbellRequest *want = op->doorbells[i];
        Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
        db.guest_address = want->guest_address;
        db.opt_value_case = (Vmm__Partition__RegisterDoorbell__OptValueCase)want->opt_value_case;
        db.value = want->value;
        db.opt_length_case =
            (Vmm__Partition__RegisterDoorbell__OptLengthCase)want->opt_length_case;
        db.length = want->length;
        int rc = 0;
        if (!s_owns(self, msg->sender, want->guest_address,
                    want->opt_length_case ? want->length : 1)) {
            snprintf(err, errlen, "a doorbell at 0x%llx lies outside the device's MMIO ranges",
                     (unsigned long long)want->guest_address);
            rc = -EINVAL;
        } else {
            rc = partition_add_doorbell(self, &db, msg->sender, &handles[i], err, errlen);
        }
        if (rc && op->required)
            return rc;
        if (rc)
            rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s gets no doorbell %zu: %s",
                   msg->sender, i, err);
    }
    return 0;
}

static int s_on_register_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Devices__RegisterDevice *op)
{
    partition_t *p = rt_actor_state(self);
    char err[192] = "";
    for (size_t i = 0; i < op->n_irq_lines; i++)
        if (op->irq_lines[i] >= PARTITION_IRQ_LINES)
            return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                  "irq line %u beyond the IO-APIC's 24 inputs", op->irq_lines[i]);
    if (*op->endpoint && strncmp(op->endpoint, "ipc://", 6) && strncmp(op->endpoint, "tcp://", 6))
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "endpoint %s: ipc:// or tcp:// only", op->endpoint);
    /* A device host that restarted registers its device again, often
     * before the loss of its predecessor was noticed: the old registration
     * is the same actor's, and goes. */
    rt_msg_t listed;
    const Vmm__Registry__Devices *list;
    if (*op->endpoint && !partition_registry_list(self, &listed, &list)) {
        for (size_t i = 0; i < list->n_devices; i++)
            if (!strcmp(list->devices[i]->name, op->name) &&
                !strcmp(list->devices[i]->actor, msg->sender)) {
                s_forget(self, list->devices[i]->handle, msg->sender);
                p->stats.devices_replaced++;
                rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
                       "device %s (%s) registers again: its host restarted", op->name,
                       msg->sender);
                break;
            }
        rt_msg_release(&listed);
    }
    uint64_t handle, doorbells[PARTITION_MAX_DOORBELL_REQUESTS] = {0};
    if (op->n_doorbells > PARTITION_MAX_DOORBELL_REQUESTS)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "%zu doorbells, at most %d", op->n_doorbells,
                              PARTITION_MAX_DOORBELL_REQUESTS);
    int rc = s_registry_add(self, msg->sender, op, &handle, err, sizeof err);
    if (!rc) {
        /* A device in another process: VPs reach it at its own endpoint. */
        if (*op->endpoint && ((rc = rt_directory_set_key(rt_actor_rt(self), msg->sender,
                                                         op->endpoint,
                                                         *op->server_key ? op->server_key
                                                                         : NULL)) ||
                              (rc = s_watch_remote(p, msg->sender, op->name, handle))))
            snprintf(err, sizeof err, "cannot route to %s at %s: %s", msg->sender,
                     op->endpoint, strerror(-rc));
        else
            rc = s_grant_doorbells(self, msg, op, doorbells, err, sizeof err);
        if (rc)
            s_forget(self, handle, msg->sender);
    }
    if (rc) {
        p->stats.refused++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "device %s (%s) refused: %s", op->name,
               msg->sender, err);
        return rt_reply_error(self, msg, rt_error_code(rc), "%s", err);
    }
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "device %s registered by %s", op->name,
           msg->sender);
    Vmm__Devices__DeviceRegistration reg = VMM__DEVICES__DEVICE_REGISTRATION__INIT;
    reg.handle = handle;
    reg.n_ports = op->n_ports;
    reg.ports = op->ports;
    reg.n_mmio = op->n_mmio;
    reg.mmio = op->mmio;
    reg.n_irq_lines = op->n_irq_lines;
    reg.irq_lines = op->irq_lines;
    reg.msi_count = op->msi_count;
    reg.n_doorbells = op->n_doorbells;
    reg.doorbells = doorbells;
    reg.vm_instance = p->instance;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_REGISTRATION;
    r.registration = &reg;
    return s_reply_after_routes(self, msg, &r, handle);
}

static int s_on_unregister_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                  const Vmm__Devices__UnregisterDevice *op)
{
    int rc = s_forget(self, op->handle, msg->sender);
    if (rc == -EPERM)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "registration %llu was made by another actor",
                              (unsigned long long)op->handle);
    if (rc)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__NOT_FOUND, "no registration %llu",
                              (unsigned long long)op->handle);
    return s_reply_after_routes(self, msg, NULL, 0);
}

/* The host address of [gpa, gpa + len) when it lies in one RAM range. */
static uint8_t *s_guest_ptr(partition_t *p, uint64_t gpa, uint64_t len)
{
    for (size_t i = 0; i < p->n_ram; i++) {
        const partition_ram_t *r = &p->ram[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return (uint8_t *)r->host + (gpa - r->gpa);
    }
    return NULL;
}

static int s_on_guest_memory(rt_actor_t *self, const Vmm__Envelope *msg, bool write,
                             uint64_t gpa, uint64_t len, const uint8_t *data)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (len > PARTITION_MAX_GUEST_IO)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "%llu bytes, at most %u per request", (unsigned long long)len,
                              PARTITION_MAX_GUEST_IO);
    uint8_t *host = s_guest_ptr(p, gpa, len);
    if (!host)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "0x%llx+%llu is not guest RAM", (unsigned long long)gpa,
                              (unsigned long long)len);
    if (write) {
        p->stats.guest_writes++;
        memcpy(host, data, len);
        return rt_reply_ack(self, msg);
    }
    p->stats.guest_reads++;
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){len, host};
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY;
    r.read_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

/* An irqfd for one of a registered device's MSIs: where it lies in this
 * process, for the device to take with pidfd_getfd(2). */
static int s_on_get_msi_irqfd(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Devices__GetMsiIrqfd *op)
{
    partition_t *p = rt_actor_state(self);
    const partition_grants_t *g = s_grants(self, msg->sender);
    if (!g || !g->device || !g->msi_count)
        return partition_deny(self, msg, "only a registered device given MSIs may have irqfds");
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    char err[160];
    size_t i;
    int rc = partition_irqfd(self, msg->sender, op->address, op->data, &i, err, sizeof err);
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), err);
    Vmm__Devices__MsiIrqfd res = VMM__DEVICES__MSI_IRQFD__INIT;
    res.pid = (int32_t)getpid();
    res.fd = p->irqfds[i].efd;
    res.ram_fd = p->ram_fd;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_MSI_IRQFD;
    r.msi_irqfd = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

/* Replies HostFds: descriptors fd and resample_fd of this process. */
static int s_reply_host_fds(rt_actor_t *self, const Vmm__Envelope *msg, int fd, int resample_fd)
{
    partition_t *p = rt_actor_state(self);
    Vmm__Devices__HostFds res = VMM__DEVICES__HOST_FDS__INIT;
    res.pid = (int32_t)getpid();
    res.fd = fd;
    res.ram_fd = p->ram_fd;
    res.resample_fd = resample_fd;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_HOST_FDS;
    r.host_fds = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

/* One of a registered device's doorbells, handed to it to wait on. */
static int s_on_get_doorbell_fd(rt_actor_t *self, const Vmm__Envelope *msg,
                                const Vmm__Devices__GetDoorbellFd *op)
{
    const partition_grants_t *g = s_grants(self, msg->sender);
    if (!g || !g->device)
        return partition_deny(self, msg, "only a registered device may wait on its doorbells");
    /* Before Build too: the eventfd is made at registration, KVM told of it
     * at Build. */
    int efd, rc = partition_hand_doorbell(self, msg->sender, op->handle, &efd);
    if (rc) {
        char err[96];
        snprintf(err, sizeof err, "doorbell %llu: %s", (unsigned long long)op->handle,
                 rc == -ENOENT ? "not one of this device's" : strerror(-rc));
        return partition_refuse(self, msg, rt_error_code(rc), err);
    }
    return s_reply_host_fds(self, msg, efd, -1);
}

/* An irqfd for one of a registered device's lines. */
static int s_on_get_line_irqfd(rt_actor_t *self, const Vmm__Envelope *msg,
                               const Vmm__Devices__GetLineIrqfd *op)
{
    partition_t *p = rt_actor_state(self);
    const partition_grants_t *g = s_grants(self, msg->sender);
    if (!g || !g->device || !s_has_irq(g, op->line))
        return partition_deny(self, msg, "only a registered device may have irqfds for its "
                                         "own lines");
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    char err[160];
    size_t i;
    int rc = partition_line_irqfd(self, msg->sender, op->line, &i, err, sizeof err);
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), err);
    return s_reply_host_fds(self, msg, p->line_irqfds[i].efd, p->line_irqfds[i].resample_efd);
}

/* The synic's actors: "<vm>/synic" and "<vm>/synic/vp/<N>", which the
 * partition started itself. */
static bool s_is_synic(const partition_t *p, const char *actor)
{
    size_t n = p->synic ? strlen(p->synic) : 0;
    return n && !strncmp(actor, p->synic, n) &&
           (!actor[n] || !strncmp(actor + n, "/vp/", 4));
}

/* Where guest RAM lies in its memory file, for a registered device or the
 * synic: on this host it may map the file rather than send its reads and
 * writes (device.h says why that is safe enough); elsewhere it learns the
 * ranges its accesses must lie in. */
static int s_on_map_guest_memory(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    const partition_grants_t *g = s_grants(self, msg->sender);
    if ((!g || !g->device) && !s_is_synic(p, msg->sender))
        return partition_deny(self, msg,
                              "only a registered device or the synic may map guest memory");
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    partition_fill_finish(p, self, false); /* its mapping would see pages not filled as zeroes */
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getpid(), p->ram_fd);
    /* Read through path itself: where /proc is not this process's (another
     * PID namespace's), the link does not match and no device maps. */
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "%s: %s", path,
                              strerror(errno));
    link[n] = 0;
    Vmm__Devices__GuestRamRange ranges[PARTITION_MAX_RAM_RANGES];
    Vmm__Devices__GuestRamRange *range_ptrs[PARTITION_MAX_RAM_RANGES];
    for (size_t i = 0; i < p->n_ram; i++) {
        vmm__devices__guest_ram_range__init(&ranges[i]);
        ranges[i].gpa = p->ram[i].gpa;
        ranges[i].size = p->ram[i].size;
        ranges[i].offset = p->ram[i].offset;
        range_ptrs[i] = &ranges[i];
    }
    Vmm__Devices__GuestMemoryMap map = VMM__DEVICES__GUEST_MEMORY_MAP__INIT;
    map.n_ranges = p->n_ram;
    map.ranges = range_ptrs;
    map.path = path;
    map.link = link;
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP;
    r.guest_memory_map = &map;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

static int s_on_guest_update(rt_actor_t *self, const Vmm__Envelope *msg,
                             const Vmm__Devices__UpdateGuestMemory *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if ((op->size != 1 && op->size != 2 && op->size != 4 && op->size != 8) ||
        op->gpa % op->size)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "an update of %u bytes at 0x%llx: 1, 2, 4 or 8, aligned", op->size,
                              (unsigned long long)op->gpa);
    uint8_t *host = s_guest_ptr(p, op->gpa, op->size);
    if (!host)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "0x%llx+%u is not guest RAM", (unsigned long long)op->gpa,
                              op->size);
    p->stats.guest_updates++;
    uint64_t old = device_guest_atomic_update(host, op->size, op->and_mask, op->or_mask);
    uint8_t bytes[8];
    for (uint32_t i = 0; i < op->size; i++)
        bytes[i] = (uint8_t)(old >> (8 * i));
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){op->size, bytes};
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_UPDATE_GUEST_MEMORY;
    r.update_guest_memory = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    return rt_reply(self, msg, &env);
}

int partition_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Devices__Request *req = msg->device_request;
    if (!partition_permitted(self, msg))
        return 0;
    s_heard(self, msg->sender);
    switch (req->op_case) {
    case VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE:
        return s_on_register_device(self, msg, req->register_device);
    case VMM__DEVICES__REQUEST__OP_UNREGISTER_DEVICE:
        return s_on_unregister_device(self, msg, req->unregister_device);
    case VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY:
        return s_on_guest_memory(self, msg, false, req->read_guest_memory->gpa,
                                 req->read_guest_memory->length, NULL);
    case VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY:
        return s_on_guest_update(self, msg, req->update_guest_memory);
    case VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY:
        return s_on_guest_memory(self, msg, true, req->write_guest_memory->gpa,
                                 req->write_guest_memory->data.len,
                                 req->write_guest_memory->data.data);
    case VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY:
        return s_on_map_guest_memory(self, msg);
    case VMM__DEVICES__REQUEST__OP_GET_MSI_IRQFD:
        return s_on_get_msi_irqfd(self, msg, req->get_msi_irqfd);
    case VMM__DEVICES__REQUEST__OP_GET_DOORBELL_FD:
        return s_on_get_doorbell_fd(self, msg, req->get_doorbell_fd);
    case VMM__DEVICES__REQUEST__OP_GET_LINE_IRQFD:
        return s_on_get_line_irqfd(self, msg, req->get_line_irqfd);
    default:
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "the partition takes device registrations and guest memory "
                                "requests only");
    }
}

/* A device's line changed level: only the device that registered the line
 * drives it. */
static int s_on_irq_line(rt_actor_t *self, const Vmm__Envelope *msg,
                         const Vmm__Devices__IrqLineChanged *change)
{
    partition_grants_t g;
    if (!partition_grants_of(rt_actor_state(self), msg->sender, &g) ||
        !s_has_irq(&g, change->irq)) {
        char why[96];
        snprintf(why, sizeof why, "IRQ %u is not among its registered lines", change->irq);
        return partition_deny(self, msg, why);
    }
    return partition_irq_level(self, msg, change->irq, change->high);
}

int partition_on_shared_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Devices__Event *ev = msg->device_event;
    if (!ev || ev->event_case != VMM__DEVICES__EVENT__EVENT_IRQ_LINE_CHANGED ||
        !ev->irq_line_changed)
        return RT_NOT_SHARED;
    if (!partition_permitted_shared(self, msg))
        return 0;
    return s_on_irq_line(self, msg, ev->irq_line_changed);
}

/* A device asks for a whole-VM power action (every VP halts with it), or
 * sets a line's level. */
int partition_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    if (!partition_permitted(self, msg))
        return 0;
    s_heard(self, msg->sender);
    if (ev->event_case == VMM__DEVICES__EVENT__EVENT_IRQ_LINE_CHANGED)
        return s_on_irq_line(self, msg, ev->irq_line_changed);
    if (ev->event_case != VMM__DEVICES__EVENT__EVENT_POWER_REQUEST ||
        ev->power_request->action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_UNSPECIFIED)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "the partition takes line levels and power requests (with an "
                                "action) only");
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    p->stats.power_requests++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s asks for %s", msg->sender,
           ev->power_request->action == VMM__DEVICES__POWER_ACTION__POWER_ACTION_RESET
               ? "a reset"
               : "power off");
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = (Vmm__Devices__Event *)ev;
    for (uint32_t i = 0; i < p->vp_count; i++)
        if (rt_send(self, p->vp_names[i], &env))
            rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "cannot tell %s", p->vp_names[i]);
    /* A device whose VP waits asks: answered once every VP was told. */
    if (msg->request_id) {
        rt_flush(self);
        return rt_reply_ack(self, msg);
    }
    return 0;
}

void partition_devices_fini(rt_actor_t *self)
{
    partition_t *p = rt_actor_state(self);
    s_grants_forget(p);
    for (size_t i = 0; i < p->n_remotes; i++)
        s_remote_free(&p->remotes[i]);
    free(p->remotes);
    /* Registrations still waiting for the VPs are refused. */
    while (p->n_waits) {
        partition_route_wait_t *w = &p->waits[p->n_waits - 1];
        snprintf(w->why, sizeof w->why, "the partition stopped");
        w->handle = 0;
        s_wait_done(self, p->n_waits - 1);
    }
    free(p->waits);
}

