#define _GNU_SOURCE /* strdup */
#include "actors/console/console.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long one write may make no progress before the rest is given up. */
#define S_WRITE_WAIT_MS 5000
/* The most one ConsoleInput carries. */
#define S_INPUT_CHUNK 256

typedef struct {
    char *device;
    int out_fd, in_fd;
    bool in_watched, in_closed;
    uint64_t written;         /* output bytes done (written or lost) */
    uint64_t wanted, sent_in; /* input: asked for, sent, in total */
    struct {
        uint64_t out_bytes, lost, in_bytes, refused;
    } counts;
} console_t;

/* Writes len bytes, waiting at most S_WRITE_WAIT_MS for each piece of
 * progress; returns how many were written. */
static size_t s_write_all(rt_actor_t *self, int fd, const uint8_t *bytes, size_t len)
{
    size_t off = 0;
    while (off < len) {
        /* A pipe that polls writable takes at least PIPE_BUF bytes without
         * blocking: never block on a write that may never finish. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc = poll(&pfd, 1, S_WRITE_WAIT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0 || (pfd.revents & (POLLERR | POLLNVAL))) {
            rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "output %s: %zu bytes lost",
                   rc == 0 ? "made no progress for 5 s" : "failed", len - off);
            break;
        }
        size_t piece = len - off < PIPE_BUF ? len - off : PIPE_BUF;
        ssize_t n = write(fd, bytes + off, piece);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
            rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "output: %s; %zu bytes lost",
                   strerror(errno), len - off);
            break;
        }
    }
    return off;
}

static void s_send_event(rt_actor_t *self, console_t *c, Vmm__Devices__Event *ev)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = ev;
    int rc = rt_send(self, c->device, &env);
    /* A device that has ended (its VM stopping) is no failure. */
    if (rc)
        rt_log(rt_actor_rt(self), self, rc == -ENOENT ? RT_LOG_INFO : RT_LOG_WARN,
               "cannot reach %s: %s", c->device, strerror(-rc));
}

static void s_on_input(rt_actor_t *self, int fd);

/* Reads input only while the device has room for it. */
static void s_update_input(rt_actor_t *self, console_t *c)
{
    bool want = c->in_fd >= 0 && !c->in_closed && c->sent_in < c->wanted;
    if (want == c->in_watched)
        return;
    int rc = want ? rt_actor_watch_fd(self, c->in_fd, s_on_input)
                  : rt_actor_unwatch_fd(self, c->in_fd);
    if (rc) {
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "input descriptor %d: %s; input off",
               c->in_fd, strerror(-rc));
        c->in_closed = true;
        return;
    }
    c->in_watched = want;
}

static void s_on_input(rt_actor_t *self, int fd)
{
    console_t *c = rt_actor_state(self);
    uint8_t buf[S_INPUT_CHUNK];
    uint64_t room = c->wanted - c->sent_in;
    ssize_t n = read(fd, buf, room < sizeof buf ? (size_t)room : sizeof buf);
    if (n > 0) {
        Vmm__Devices__ConsoleInput in = VMM__DEVICES__CONSOLE_INPUT__INIT;
        in.data = (ProtobufCBinaryData){(size_t)n, buf};
        Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
        ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_INPUT;
        ev.console_input = &in;
        s_send_event(self, c, &ev);
        c->sent_in += (uint64_t)n;
        c->counts.in_bytes += (uint64_t)n;
    } else if (n == 0) {
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "input descriptor %d closed", fd);
        c->in_closed = true;
    } else if (errno != EINTR && errno != EAGAIN) {
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "input descriptor %d: %s; input off", fd,
               strerror(errno));
        c->in_closed = true;
    }
    s_update_input(self, c);
}

static int s_refuse(rt_actor_t *self, console_t *c, const Vmm__Envelope *msg, const char *why)
{
    c->counts.refused++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "refused a message from %s: %s", msg->sender,
           why);
    if (msg->request_id)
        return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "%s: %s",
                              rt_actor_name(self), why);
    return 0;
}

static int s_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    console_t *c = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    if (strcmp(msg->sender, c->device))
        return s_refuse(self, c, msg, "a console serves its own device only");
    if (ev->event_case == VMM__DEVICES__EVENT__EVENT_CONSOLE_WANT) {
        if (ev->console_want->total > c->wanted)
            c->wanted = ev->console_want->total;
        s_update_input(self, c);
        return 0;
    }
    if (ev->event_case != VMM__DEVICES__EVENT__EVENT_CONSOLE_OUTPUT)
        return s_refuse(self, c, msg, "a console takes output and wants, nothing else");
    const ProtobufCBinaryData *d = &ev->console_output->data;
    size_t done = c->out_fd >= 0 ? s_write_all(self, c->out_fd, d->data, d->len) : d->len;
    c->counts.out_bytes += done;
    c->counts.lost += d->len - done;
    c->written += d->len; /* lost bytes are done with too: the window moves on */
    Vmm__Devices__ConsoleWritten w = VMM__DEVICES__CONSOLE_WRITTEN__INIT;
    w.total = c->written;
    Vmm__Devices__Event reply = VMM__DEVICES__EVENT__INIT;
    reply.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN;
    reply.console_written = &w;
    s_send_event(self, c, &reply);
    return 0;
}

static int s_init(rt_actor_t *self, void *arg)
{
    const console_config_t *cfg = arg;
    if (!cfg || !cfg->device)
        return -EINVAL;
    console_t *c = calloc(1, sizeof *c);
    if (!c || !(c->device = strdup(cfg->device))) {
        free(c);
        return -ENOMEM;
    }
    c->out_fd = cfg->out_fd;
    c->in_fd = cfg->in_fd;
    rt_actor_set_state(self, c);
    return 0;
}

static void s_fini(rt_actor_t *self)
{
    console_t *c = rt_actor_state(self);
    if (c->in_watched)
        rt_actor_unwatch_fd(self, c->in_fd);
    free(c->device);
    free(c);
    rt_actor_set_state(self, NULL);
}

/* none: no descriptor; read: watched; held: left in the descriptor until
 * the device has room; closed: at its end or failed. */
static const char *s_input_state(const console_t *c)
{
    if (c->in_fd < 0)
        return "none";
    if (c->in_closed)
        return "closed";
    return c->in_watched ? "read" : "held";
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    console_t *c = rt_actor_state(self);
    rt_inspect_add(node, "device", "%s", c->device);
    rt_inspect_add(node, "input", "%s", s_input_state(c));
    rt_inspect_add(node, "out_bytes", "%llu", (unsigned long long)c->counts.out_bytes);
    rt_inspect_add(node, "lost", "%llu", (unsigned long long)c->counts.lost);
    rt_inspect_add(node, "in_bytes", "%llu", (unsigned long long)c->counts.in_bytes);
    rt_inspect_add(node, "wanted", "%llu", (unsigned long long)c->wanted);
    rt_inspect_add(node, "refused_events", "%llu", (unsigned long long)c->counts.refused);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_on_device_event},
};

const rt_actor_ops_t console_ops = {
    .kind = "console",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
