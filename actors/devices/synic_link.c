#include "actors/devices/synic_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/synic/synic.h"
#include "proto/envelope.pb-c.h"

#define S_CALL_TIMEOUT_MS 2000

/* Calls the synic with req: what is about VP vp (vp >= 0) goes to that
 * VP's actor of a split synic, which runs beside the VP (sent to the
 * synic's central actor from the VP's own executor, the request would wait
 * for its own thread), or to the synic itself when it is whole. A
 * successful reply's result is copied out by what the caller passes
 * (handle may be NULL). */
static int s_call(rt_actor_t *self, synic_link_t *l, int64_t vp, Vmm__Synic__Request *req,
                  uint64_t *handle)
{
    if (!l->synic)
        return -ENODEV;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    rt_msg_t reply;
    char to[256];
    int rc = -ENOENT;
    if (vp >= 0 && !synic_vp_actor(to, sizeof to, l->synic, (uint32_t)vp))
        rc = rt_call(self, to, &env, &reply, S_CALL_TIMEOUT_MS);
    if (rc == -ENOENT)
        rc = rt_call(self, l->synic, &env, &reply, S_CALL_TIMEOUT_MS);
    if (rc)
        return rc;
    const Vmm__Envelope *r = reply.env;
    if (r->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s refused: %s", l->synic, r->error->text);
        rc = rt_errno_of(r->error->code);
    } else if (handle) {
        const Vmm__Synic__Reply *sr = r->body_case == VMM__ENVELOPE__BODY_SYNIC_REPLY
                                          ? r->synic_reply
                                          : NULL;
        if (sr && sr->result_case == VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT)
            *handle = sr->host_event_port->handle;
        else if (sr && sr->result_case == VMM__SYNIC__REPLY__RESULT_HOST_MESSAGE_PORT)
            *handle = sr->host_message_port->handle;
        else if (sr && sr->result_case == VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT)
            *handle = sr->guest_event_port->handle;
        else
            rc = -EPROTO;
    }
    rt_msg_release(&reply);
    return rc;
}

static synic_link_host_port_t *s_host(synic_link_t *l, bool message, uint32_t connection_id)
{
    for (size_t i = 0; i < l->n_host; i++)
        if (l->host[i].message == message && l->host[i].connection_id == connection_id)
            return &l->host[i];
    return NULL;
}

int synic_link_connect(rt_actor_t *self, synic_link_t *l, bool message, uint32_t connection_id)
{
    if (s_host(l, message, connection_id))
        return -EEXIST;
    if (l->n_host == SYNIC_LINK_MAX_PORTS)
        return -ENOSPC;
    Vmm__Synic__RegisterHostMessagePort m = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    Vmm__Synic__RegisterHostEventPort e = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    if (message) {
        m.connection_id = connection_id;
        m.target = (char *)rt_actor_name(self);
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT;
        req.register_host_message_port = &m;
    } else {
        e.connection_id = connection_id;
        e.target = (char *)rt_actor_name(self);
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
        req.register_host_event_port = &e;
    }
    uint64_t handle = 0;
    int rc = s_call(self, l, -1, &req, &handle);
    if (rc == -EINVAL) /* the synic's word for a connection id taken */
        rc = -EEXIST;
    if (!rc)
        l->host[l->n_host++] = (synic_link_host_port_t){message, connection_id, handle};
    return rc;
}

int synic_link_disconnect(rt_actor_t *self, synic_link_t *l, bool message,
                          uint32_t connection_id)
{
    synic_link_host_port_t *p = s_host(l, message, connection_id);
    if (!p)
        return -ENOENT;
    Vmm__Synic__UnregisterHostMessagePort m = VMM__SYNIC__UNREGISTER_HOST_MESSAGE_PORT__INIT;
    Vmm__Synic__UnregisterHostEventPort e = VMM__SYNIC__UNREGISTER_HOST_EVENT_PORT__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    if (message) {
        m.handle = p->handle;
        req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_MESSAGE_PORT;
        req.unregister_host_message_port = &m;
    } else {
        e.handle = p->handle;
        req.op_case = VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_EVENT_PORT;
        req.unregister_host_event_port = &e;
    }
    int rc = s_call(self, l, -1, &req, NULL);
    /* The VP's synic actor has the table without the port (central sent
     * it first): it takes it before the guest runs on and posts. */
    rt_notice_arrivals(self);
    *p = l->host[--l->n_host];
    return rc;
}

int synic_link_post(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint, uint32_t type,
                    const uint8_t *payload, size_t len)
{
    Vmm__Synic__PostMessage op = VMM__SYNIC__POST_MESSAGE__INIT;
    op.vp = vp;
    op.sint = sint;
    op.message_type = type;
    op.payload = (ProtobufCBinaryData){len, (uint8_t *)payload};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &op;
    return s_call(self, l, vp, &req, NULL);
}

int synic_link_signal(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint,
                      uint32_t flag)
{
    synic_link_guest_port_t *port = NULL;
    for (size_t i = 0; i < l->n_guest && !port; i++)
        if (l->guest[i].vp == vp && l->guest[i].sint == sint && l->guest[i].flag == flag)
            port = &l->guest[i];
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    if (!port) {
        if (l->n_guest == SYNIC_LINK_MAX_PORTS)
            return -ENOSPC;
        Vmm__Synic__NewGuestEventPort op = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
        op.vp = vp;
        op.sint = sint;
        op.flag = flag;
        req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
        req.new_guest_event_port = &op;
        uint64_t handle = 0;
        int rc = s_call(self, l, -1, &req, &handle);
        if (rc)
            return rc;
        port = &l->guest[l->n_guest++];
        *port = (synic_link_guest_port_t){vp, sint, flag, handle};
    }
    Vmm__Synic__SignalGuestEventPort sig = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    sig.handle = port->handle;
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &sig;
    return s_call(self, l, vp, &req, NULL);
}

int synic_link_assert(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint)
{
    Vmm__Synic__AssertSint op = VMM__SYNIC__ASSERT_SINT__INIT;
    op.vp = vp;
    op.sint = sint;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ASSERT_SINT;
    req.assert_sint = &op;
    return s_call(self, l, vp, &req, NULL);
}

int synic_link_on_event(rt_actor_t *self, synic_link_t *l, device_t *model,
                        const Vmm__Envelope *msg)
{
    const Vmm__Synic__Event *ev = msg->synic_event;
    const char *why = NULL;
    size_t n = l->synic ? strlen(l->synic) : 0;
    if (!n || strncmp(msg->sender, l->synic, n) ||
        (msg->sender[n] && strncmp(msg->sender + n, "/vp/", 4)))
        why = "it is not from the VM's synic";
    else if (ev->event_case == VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE && ev->host_message &&
             s_host(l, true, ev->host_message->connection_id) && model->ops->synic_message) {
        const Vmm__Synic__HostMessage *m = ev->host_message;
        l->messages_in++;
        model->ops->synic_message(model, m->connection_id, m->message_type, m->payload.data,
                                  m->payload.len);
    } else if (ev->event_case == VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED &&
               ev->host_event_signalled &&
               s_host(l, false, ev->host_event_signalled->connection_id) &&
               model->ops->synic_event) {
        const Vmm__Synic__HostEventSignalled *e = ev->host_event_signalled;
        l->events_in++;
        model->ops->synic_event(model, e->connection_id, e->flag);
    } else {
        why = "it is for no connection the model made";
    }
    if (why) {
        l->refused++;
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "refused a synic event from %s: %s",
               msg->sender, why);
    }
    return 0;
}

void synic_link_inspect(const synic_link_t *l, Vmm__Rt__InspectNode *node)
{
    rt_inspect_add(node, "synic", "%s", l->synic ? l->synic : "none");
    device_inspect_count(node, "synic_connections", l->n_host);
    device_inspect_count(node, "synic_messages_in", l->messages_in);
    device_inspect_count(node, "synic_events_in", l->events_in);
    device_inspect_count(node, "synic_refused", l->refused);
}

void synic_link_release(synic_link_t *l)
{
    free(l->synic);
    *l = (synic_link_t){0};
}
