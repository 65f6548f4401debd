#define _GNU_SOURCE /* strdup */
#include "actors/registry/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/registry/table.h"
#include "runtime/pbtext.h"

typedef struct {
    char *partition;
    registry_t *table;
    struct {
        uint64_t added, removed, lost, refused, denied, bad_requests;
    } counts;
} s_registry_t;

static int s_reply(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Registry__Reply *r)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_REGISTRY_REPLY;
    env.registry_reply = r;
    return rt_reply(self, msg, &env);
}

/* A refusal of what the table would not do: its errno as a code. */
static int s_refuse(rt_actor_t *self, const Vmm__Envelope *msg, int rc, const char *why)
{
    s_registry_t *s = rt_actor_state(self);
    s->counts.refused++;
    return rt_reply_error(self, msg, rt_error_code(rc), "%s", why);
}

static int s_on_add(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Registry__Add *op)
{
    s_registry_t *s = rt_actor_state(self);
    if (!op->device || !*op->actor)
        return s_refuse(self, msg, -EINVAL, "an Add names an actor and its device");
    char err[192] = "";
    uint64_t handle;
    int rc = registry_add(s->table, op->actor, op->origin, op->device, &handle, err, sizeof err);
    if (rc)
        return s_refuse(self, msg, rc, err);
    s->counts.added++;
    Vmm__Registry__Added added = VMM__REGISTRY__ADDED__INIT;
    added.handle = handle;
    Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
    r.result_case = VMM__REGISTRY__REPLY__RESULT_ADDED;
    r.added = &added;
    return s_reply(self, msg, &r);
}

static int s_on_remove(rt_actor_t *self, const Vmm__Envelope *msg,
                       const Vmm__Registry__Remove *op)
{
    s_registry_t *s = rt_actor_state(self);
    int rc = registry_remove(s->table, op->handle, op->actor);
    char why[128];
    snprintf(why, sizeof why, rc == -EPERM ? "registration %llu was made by another actor"
                                           : "no registration %llu",
             (unsigned long long)op->handle);
    if (rc)
        return s_refuse(self, msg, rc, why);
    s->counts.removed++;
    return rt_reply_ack(self, msg);
}

static int s_on_lose(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Registry__Lose *op)
{
    s_registry_t *s = rt_actor_state(self);
    int rc = registry_lose(s->table, op->handle);
    if (rc < 0)
        return s_refuse(self, msg, rc, "no such registration");
    s->counts.lost++;
    Vmm__Registry__Lost lost = VMM__REGISTRY__LOST__INIT;
    lost.kept = rc == 1;
    Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
    r.result_case = VMM__REGISTRY__REPLY__RESULT_LOST;
    r.lost = &lost;
    return s_reply(self, msg, &r);
}

static int s_on_routes(rt_actor_t *self, const Vmm__Envelope *msg,
                       const Vmm__Registry__GetRoutes *op)
{
    s_registry_t *s = rt_actor_state(self);
    Vmm__Vp__SetIoRoutes routes;
    int rc = registry_routes(s->table, op->posted_ok, &routes);
    if (rc)
        return rc;
    Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
    r.result_case = VMM__REGISTRY__REPLY__RESULT_ROUTES;
    r.routes = &routes;
    rc = s_reply(self, msg, &r);
    registry_routes_free(&routes);
    return rc;
}

static int s_on_grants(rt_actor_t *self, const Vmm__Envelope *msg,
                       const Vmm__Registry__GetGrants *op)
{
    s_registry_t *s = rt_actor_state(self);
    Vmm__Registry__Grants grants;
    int rc = registry_grants(s->table, op->actor, &grants);
    if (rc)
        return rc;
    Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
    r.result_case = VMM__REGISTRY__REPLY__RESULT_GRANTS;
    r.grants = &grants;
    rc = s_reply(self, msg, &r);
    registry_grants_free(&grants);
    return rc;
}

static int s_on_owns(rt_actor_t *self, const Vmm__Envelope *msg, const Vmm__Registry__Owns *op)
{
    s_registry_t *s = rt_actor_state(self);
    Vmm__Registry__Owned owned = VMM__REGISTRY__OWNED__INIT;
    owned.owns = registry_owns(s->table, op->actor, true, op->address, op->length);
    Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
    r.result_case = VMM__REGISTRY__REPLY__RESULT_OWNED;
    r.owned = &owned;
    return s_reply(self, msg, &r);
}

static int s_on_list(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_registry_t *s = rt_actor_state(self);
    size_t n = registry_count(s->table);
    Vmm__Registry__Devices__Device *devs = calloc(n ? n : 1, sizeof *devs);
    Vmm__Registry__Devices__Device **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    int rc = -ENOMEM;
    if (devs && ptrs) {
        for (size_t i = 0; i < n; i++) {
            vmm__registry__devices__device__init(&devs[i]);
            devs[i].name = (char *)registry_name(s->table, i);
            devs[i].actor = (char *)registry_actor(s->table, i);
            devs[i].handle = registry_handle(s->table, i);
            devs[i].lost = registry_lost(s->table, i);
            ptrs[i] = &devs[i];
        }
        Vmm__Registry__Devices list = VMM__REGISTRY__DEVICES__INIT;
        list.n_devices = n;
        list.devices = ptrs;
        Vmm__Registry__Reply r = VMM__REGISTRY__REPLY__INIT;
        r.result_case = VMM__REGISTRY__REPLY__RESULT_DEVICES;
        r.devices = &list;
        rc = s_reply(self, msg, &r);
    }
    free(ptrs);
    free(devs);
    return rc;
}

static int s_on_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_registry_t *s = rt_actor_state(self);
    const Vmm__Registry__Request *req = msg->registry_request;
    if (!msg->request_id) {
        s->counts.bad_requests++;
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
               "dropped a registry request sent one-way by %s", msg->sender);
        return 0;
    }
    if (strcmp(msg->sender, s->partition)) {
        s->counts.denied++;
        return rt_reply_error(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                              "the device registry answers its partition, %s, only",
                              s->partition);
    }
    switch (req->op_case) {
    case VMM__REGISTRY__REQUEST__OP_ADD:
        return s_on_add(self, msg, req->add);
    case VMM__REGISTRY__REQUEST__OP_REMOVE:
        return s_on_remove(self, msg, req->remove);
    case VMM__REGISTRY__REQUEST__OP_LOSE:
        return s_on_lose(self, msg, req->lose);
    case VMM__REGISTRY__REQUEST__OP_GET_ROUTES:
        return s_on_routes(self, msg, req->get_routes);
    case VMM__REGISTRY__REQUEST__OP_GET_GRANTS:
        return s_on_grants(self, msg, req->get_grants);
    case VMM__REGISTRY__REQUEST__OP_OWNS:
        return s_on_owns(self, msg, req->owns);
    case VMM__REGISTRY__REQUEST__OP_LIST:
        return s_on_list(self, msg);
    default:
        s->counts.bad_requests++;
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                              "registry operation %d is not one the registry knows",
                              (int)req->op_case);
    }
}

/* ---- Lifecycle, traces -------------------------------------------------------------- */

static void s_release(s_registry_t *s)
{
    registry_destroy(&s->table);
    free(s->partition);
    free(s);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const registry_config_t *cfg = arg;
    if (!cfg || !cfg->partition || !*cfg->partition)
        return -EINVAL;
    s_registry_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->partition = strdup(cfg->partition);
    s->table = registry_new();
    if (!s->partition || !s->table) {
        s_release(s);
        return -ENOMEM;
    }
    rt_actor_set_state(self, s);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    s_release(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    s_registry_t *s = rt_actor_state(self);
    rt_inspect_add(node, "partition", "%s", s->partition);
    Vmm__Rt__InspectNode *devices =
        rt_inspect_add(node, "devices", "%zu", registry_count(s->table));
    for (size_t i = 0; devices && i < registry_count(s->table); i++)
        rt_inspect_add(devices, registry_name(s->table, i), "%s%s",
                       registry_actor(s->table, i), registry_lost(s->table, i) ? " (lost)" : "");
    rt_inspect_add(node, "added", "%llu", (unsigned long long)s->counts.added);
    rt_inspect_add(node, "removed", "%llu", (unsigned long long)s->counts.removed);
    rt_inspect_add(node, "lost", "%llu", (unsigned long long)s->counts.lost);
    rt_inspect_add(node, "refused", "%llu", (unsigned long long)s->counts.refused);
    rt_inspect_add(node, "denied", "%llu", (unsigned long long)s->counts.denied);
    rt_inspect_add(node, "bad_requests", "%llu", (unsigned long long)s->counts.bad_requests);
}

static int s_recipe(const void *arg, ProtobufCBinaryData *out)
{
    const registry_config_t *cfg = arg;
    if (!cfg)
        return -EINVAL;
    Vmm__Registry__RegistryRecipe r = VMM__REGISTRY__REGISTRY_RECIPE__INIT;
    r.partition = (char *)(cfg->partition ? cfg->partition : "");
    return rt_pb_pack(&r.base, out);
}

static int s_replay_start(rt_replay_config_t *cfg, const ProtobufCMessage *recipe, void *ctx,
                          rt_replay_result_t *out, char *err, size_t errlen)
{
    (void)ctx;
    const Vmm__Registry__RegistryRecipe *r = (const Vmm__Registry__RegistryRecipe *)recipe;
    registry_config_t rcfg = {.partition = r->partition};
    cfg->ops = &registry_ops;
    cfg->arg = &rcfg;
    return rt_replay(cfg, out, err, errlen);
}

int registry_replay(const char *trace, const char *actor, rt_replay_result_t *out, char *err,
                    size_t errlen)
{
    return rt_replay_recipe(trace, actor, "registry", &vmm__registry__registry_recipe__descriptor,
                            s_replay_start, NULL, out, err, errlen);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_REGISTRY_REQUEST, s_on_request},
};

const rt_actor_ops_t registry_ops = {
    .kind = "registry",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
    .recipe = s_recipe,
};
