#include "runtime/testing/echo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    echo_config_t cfg;
    unsigned long long pings, events;
    char last_sender[128];
} echo_t;

static int s_init(rt_actor_t *self, void *arg)
{
    echo_t *echo = calloc(1, sizeof *echo);
    if (!echo)
        return -ENOMEM;
    if (arg)
        echo->cfg = *(echo_config_t *)arg;
    rt_actor_set_state(self, echo);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    free(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

static int s_reply_pong(rt_actor_t *self, const Vmm__Envelope *req, ProtobufCBinaryData payload)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Pong pong = VMM__RT__PONG__INIT;
    pong.payload = payload;
    env.body_case = VMM__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    return rt_reply(self, req, &env);
}

static int s_on_ping(rt_actor_t *self, const Vmm__Envelope *msg)
{
    echo_t *echo = rt_actor_state(self);
    if (!msg->request_id) {
        echo->events++;
        return 0;
    }
    echo->pings++;
    size_t len = strnlen(msg->sender, sizeof echo->last_sender - 1);
    memcpy(echo->last_sender, msg->sender, len);
    echo->last_sender[len] = 0;
    if (echo->cfg.delay_ms) {
        struct timespec ts = {echo->cfg.delay_ms / 1000, (echo->cfg.delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
    return s_reply_pong(self, msg, msg->ping->payload);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    echo_t *echo = rt_actor_state(self);
    rt_inspect_add(node, "pings", "%llu", echo->pings);
    rt_inspect_add(node, "events", "%llu", echo->events);
    rt_inspect_add(node, "last_sender", "%s", echo->last_sender);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_PING, s_on_ping},
};

const rt_actor_ops_t echo_ops = {
    .kind = "echo",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};

void echo_ping(Vmm__Envelope *env, Vmm__Rt__Ping *ping, const void *data, size_t len)
{
    vmm__envelope__init(env);
    vmm__rt__ping__init(ping);
    ping->payload.data = (uint8_t *)data;
    ping->payload.len = len;
    env->body_case = VMM__ENVELOPE__BODY_PING;
    env->ping = ping;
}

int echo_reply_text(rt_actor_t *self, const Vmm__Envelope *req, const char *text)
{
    ProtobufCBinaryData payload = {.len = strlen(text), .data = (uint8_t *)text};
    return s_reply_pong(self, req, payload);
}

int echo_inspect_text(rt_actor_t *self, const char *to, const char *name, char *buf,
                      size_t size)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    rt_msg_t reply;
    int rc = rt_call(self, to, &env, &reply, 5000);
    if (rc)
        return rc;
    rc = -ENOENT;
    const Vmm__Rt__InspectNode *node =
        reply.env->body_case == VMM__ENVELOPE__BODY_INSPECT_REPLY ? reply.env->inspect_reply
                                                                  : NULL;
    /* Down the path, a segment at a time. */
    for (const char *seg = name; node;) {
        size_t len = strcspn(seg, "/");
        const Vmm__Rt__InspectNode *next = NULL;
        for (size_t i = 0; i < node->n_children && !next; i++)
            if (strlen(node->children[i]->name) == len &&
                !strncmp(node->children[i]->name, seg, len))
                next = node->children[i];
        node = next;
        if (!seg[len])
            break;
        seg += len + 1;
    }
    if (node) {
        snprintf(buf, size, "%s", node->value);
        rc = 0;
    }
    rt_msg_release(&reply);
    return rc;
}

long long echo_inspect_number(rt_actor_t *self, const char *to, const char *name)
{
    char text[64];
    if (echo_inspect_text(self, to, name, text, sizeof text))
        return -1;
    return strtoll(text, NULL, 0);
}

void *echo_raw_dealer(void *zctx, int timeout_ms)
{
    void *d = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    if (d && (zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero) ||
              zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms))) {
        zmq_close(d);
        return NULL;
    }
    return d;
}
