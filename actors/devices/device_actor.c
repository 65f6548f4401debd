/*
 * The device actor (device_actor.h): the devices protocol around any model.
 * Its state begins with the model's environment, whose operations turn the
 * model's effects into messages and runtime calls.
 */
#define _GNU_SOURCE /* strdup */
#include "actors/devices/device_actor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/device_guest.h"
#include "actors/devices/device_irqfd.h"
#include "actors/devices/device_models.h"
#include "actors/devices/synic_link.h"
#include "runtime/pbtext.h"

/* How long the partition may take to answer a registration. */
#define S_REGISTER_TIMEOUT_MS 5000
#define S_EFFECT_TIMEOUT_MS 2000
/* Console output: held until a newline, a full line buffer, or this long
 * after its first byte; at most a window in flight to the console, beyond
 * which the model sees no room (its transmitter busy) until the console
 * says it wrote some. */
#define S_CONSOLE_LINE 4096
#define S_CONSOLE_FLUSH_NS 5000000ull
#define S_CONSOLE_WINDOW 65536u
/* The runtime timer of the console's flush; the model's timers are its
 * own 32-bit ids, below it. */
#define S_FLUSH_TIMER (1ull << 32)

struct device_deferred_s {
    struct device_deferred_s *next;
    uint64_t token;
    char *vp;      /* who gets IoCompleted; NULL for a posted write */
    uint32_t size; /* a read's size; 0 for a write */
    /* Completed while its access was still being handled: answered then. */
    bool done;
    int status;
    uint64_t value;
};

typedef struct {
    device_env_t env; /* first: the model's environment is the actor's state */
    rt_actor_t *self;
    device_t *model;
    char *partition, *owner, *manager, *calls, *console; /* owned; each may be NULL */
    bool halt_if_lost;
    bool console_unbuffered;

    uint64_t register_id; /* the registration's request, until answered */
    uint64_t handle;      /* 0 until registered */
    uint64_t vm_instance; /* the VM's, from the registration: names a kept state */
    char registration[192];
    uint64_t doorbells[DEVICE_MAX_DOORBELLS]; /* handles, by spec index */
    bool irq_high[DEVICE_MAX_IRQS];           /* levels sent, by spec index */
    device_guest_t guest;
    device_irqfds_t irqfds;
    int storage_fd; /* the backing store; -1: none */
    bool storage_open;
    /* The kept state (state_file): its descriptor (-1: none; under a replay
     * none either), what it holds, and what was found there at start. */
    int state_fd;
    bool keeps_state;
    uint8_t *kept;
    size_t kept_len;
    bool kept_found; /* a state was found at start, not yet resumed from */
    synic_link_t synic;

    /* The access being handled, and the token its model made for it. */
    const Vmm__Envelope *access;
    device_deferred_t *current;
    device_deferred_t *deferred; /* outstanding, newest first */
    uint64_t next_token;

    uint8_t out[S_CONSOLE_LINE];
    size_t out_len;
    uint64_t out_sent, out_written; /* totals: to the console, written by it */
    bool flush_armed;
    bool out_blocked; /* the model saw no room: tell it when there is */
    uint64_t in_taken, in_wanted; /* input totals: taken, asked for */

    struct {
        uint64_t reads, writes, posted_writes, deferred, completed;
        uint64_t bad_requests, denied, unsent, console_dropped;
    } counts;
} s_actor_t;

static s_actor_t *s_of(device_env_t *env)
{
    return (s_actor_t *)env;
}

/* ---- Sending ----------------------------------------------------------------- */

/* One-way: nothing a guest did can fix a failed send, so failures (and a
 * NULL receiver) are counted in unsent and logged, not returned. */
static void s_send(s_actor_t *a, const char *to, Vmm__Envelope *env)
{
    if (!to) {
        a->counts.unsent++;
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_DEBUG, "no receiver for body kind %d",
               env->body_case);
        return;
    }
    int rc = rt_send(a->self, to, env);
    if (rc) {
        a->counts.unsent++;
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_WARN, "sending body kind %d to %s: %s",
               env->body_case, to, strerror(-rc));
    }
}

static void s_send_event(s_actor_t *a, const char *to, Vmm__Devices__Event *ev)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = ev;
    s_send(a, to, &env);
}

/* Refuses bad input: answered when it is a request, logged and counted.
 * Returns 0. */
__attribute__((format(printf, 4, 5))) static int
s_refuse(s_actor_t *a, const Vmm__Envelope *msg, Vmm__ErrorCode code, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    a->counts.bad_requests++;
    if (code == VMM__ERROR_CODE__PERMISSION_DENIED)
        a->counts.denied++;
    rt_log(rt_actor_rt(a->self), a->self, RT_LOG_INFO, "refused %s from %s: %s",
           msg->request_id ? "a request" : "a one-way message", msg->sender, text);
    if (msg->request_id)
        rt_reply_error(a->self, msg, code, "%s: %s", rt_actor_name(a->self), text);
    return 0;
}

/* ---- The environment ------------------------------------------------------------ */

/*
 * Sends an effect (a line's level, a power request) to the partition. Made
 * inside an access a VP waits on, it is a request, answered once the
 * partition has applied it, so that it lands before the VP goes on, as on
 * hardware: a guest that lowers a line, then EOIs, sees no second
 * interrupt; one that raises it takes it at its next instruction; one that
 * powers off runs no further than the VPs' stop takes. Returns 0, or a
 * negative errno (logged by the caller).
 */
static int s_to_partition(s_actor_t *a, Vmm__Devices__Event *ev)
{
    if (!a->partition || !a->access || !a->access->request_id) {
        s_send_event(a, a->partition, ev);
        return 0;
    }
    Vmm__Envelope req = VMM__ENVELOPE__INIT;
    req.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    req.device_event = ev;
    rt_msg_t reply;
    int rc = rt_call(a->self, a->partition, &req, &reply, S_EFFECT_TIMEOUT_MS);
    if (!rc) {
        if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR)
            rc = rt_errno_of(reply.env->error->code);
        rt_msg_release(&reply);
    }
    a->counts.unsent += rc != 0;
    return rc;
}

static void s_env_irq_set(device_env_t *env, uint32_t line, bool high)
{
    s_actor_t *a = s_of(env);
    const device_spec_t *spec = &a->model->spec;
    size_t i = 0;
    while (i < spec->n_irq_lines && spec->irq_lines[i] != line)
        i++;
    if (i == spec->n_irq_lines) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_ERROR,
               "the model drives IRQ %u, which it did not claim", line);
        return;
    }
    if (a->irq_high[i] == high)
        return;
    a->irq_high[i] = high;
    Vmm__Devices__IrqLineChanged change = VMM__DEVICES__IRQ_LINE_CHANGED__INIT;
    change.irq = line;
    change.high = high;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_IRQ_LINE_CHANGED;
    ev.irq_line_changed = &change;
    /* In a device host on the VM's host: KVM takes it from the irqfd. */
    if (!device_irqfd_line(&a->irqfds, &a->guest, a->self, a->partition, line, high)) {
        Vmm__Envelope env_ = VMM__ENVELOPE__INIT;
        env_.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
        env_.device_event = &ev;
        rt_note_sent(a->self, a->partition, &env_);
        return;
    }
    if (s_to_partition(a, &ev))
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_WARN, "setting IRQ %u %s failed", line,
               high ? "high" : "low");
}

static void s_env_msi(device_env_t *env, uint64_t address, uint32_t data)
{
    s_actor_t *a = s_of(env);
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = address;
    msi.data = data;
    Vmm__Partition__RequestMsi request_msi = VMM__PARTITION__REQUEST_MSI__INIT;
    request_msi.vtl = VMM__VTL__VTL0;
    request_msi.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &request_msi;
    Vmm__Envelope env_ = VMM__ENVELOPE__INIT;
    env_.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env_.partition_request = &req;
    /* In a device host on the VM's host: KVM takes it from the irqfd. */
    if (!device_irqfd_raise(&a->irqfds, &a->guest, a->self, a->partition, address, data))
        rt_note_sent(a->self, a->partition, &env_);
    else
        s_send(a, a->partition, &env_);
}

static int s_env_guest_read(device_env_t *env, uint64_t gpa, void *buf, size_t len)
{
    s_actor_t *a = s_of(env);
    return device_guest_io(&a->guest, a->self, a->partition, gpa, buf, NULL, len);
}

static int s_env_guest_write(device_env_t *env, uint64_t gpa, const void *buf, size_t len)
{
    s_actor_t *a = s_of(env);
    return device_guest_io(&a->guest, a->self, a->partition, gpa, NULL, buf, len);
}

static uint64_t s_env_now_ns(device_env_t *env)
{
    return rt_now_ns(s_of(env)->self);
}

static uint64_t s_env_wall_ns(device_env_t *env)
{
    s_actor_t *a = s_of(env);
    struct timespec ts;
    uint64_t ns = 0;
    if (!clock_gettime(CLOCK_REALTIME, &ts))
        ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    /* Under a replay, the recording's reading replaces the host's; one the
     * trace lacks has diverged the replay (which reports it), and the
     * host's reading is all there is. */
    int rc = rt_actor_input(a->self, DEVICE_INPUT_WALL_CLOCK, 0, &ns, sizeof ns);
    if (rc)
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_WARN,
               "no recorded wall clock to replay (%s): the host's is used", strerror(-rc));
    return ns;
}

static int s_env_entropy(device_env_t *env, void *buf, size_t len)
{
    s_actor_t *a = s_of(env);
    ssize_t got = rt_actor_replaying(a->self) ? (ssize_t)len : getrandom(buf, len, 0);
    if (got != (ssize_t)len)
        return got < 0 ? -errno : -EIO;
    return rt_actor_input(a->self, DEVICE_INPUT_ENTROPY, 0, buf, len);
}

/* ---- The backing store ------------------------------------------------------ */

/* An operation's outcome, taken from the replay or recorded: rc, or the
 * recording's. */
static int64_t s_storage_result(s_actor_t *a, uint64_t offset, int64_t rc)
{
    int in = rt_actor_input(a->self, DEVICE_INPUT_STORAGE_RESULT, offset, &rc, sizeof rc);
    return in ? in : rc;
}

static int s_env_storage_open(device_env_t *env, const char *path, bool readonly,
                              uint64_t *size)
{
    s_actor_t *a = s_of(env);
    if (a->storage_open)
        return -EBUSY;
    int64_t rc = 0;
    if (!rt_actor_replaying(a->self)) {
        a->storage_fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        off_t end = a->storage_fd >= 0 ? lseek(a->storage_fd, 0, SEEK_END) : -1;
        rc = end < 0 ? -errno : end;
        if (end < 0 && a->storage_fd >= 0) {
            close(a->storage_fd);
            a->storage_fd = -1;
        }
    }
    rc = s_storage_result(a, 0, rc);
    if (rc < 0)
        return (int)rc;
    a->storage_open = true;
    *size = (uint64_t)rc;
    return 0;
}

static int s_env_storage_read(device_env_t *env, uint64_t offset, void *buf, size_t len)
{
    s_actor_t *a = s_of(env);
    if (!a->storage_open)
        return -EBADF;
    int64_t rc = 0;
    for (size_t done = 0; !rt_actor_replaying(a->self) && done < len;) {
        ssize_t n = pread(a->storage_fd, (uint8_t *)buf + done, len - done,
                          (off_t)(offset + done));
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO; /* 0: past the end */
            break;
        }
        done += (size_t)n;
    }
    rc = s_storage_result(a, offset, rc);
    if (!rc)
        rc = rt_actor_input(a->self, DEVICE_INPUT_STORAGE_READ, offset, buf, len);
    return (int)rc;
}

static int s_env_storage_write(device_env_t *env, uint64_t offset, const void *buf,
                               size_t len)
{
    s_actor_t *a = s_of(env);
    if (!a->storage_open)
        return -EBADF;
    rt_actor_output(a->self, DEVICE_OUTPUT_STORAGE_WRITE, offset, buf, len);
    int64_t rc = 0;
    for (size_t done = 0; !rt_actor_replaying(a->self) && done < len;) {
        ssize_t n = pwrite(a->storage_fd, (const uint8_t *)buf + done, len - done,
                           (off_t)(offset + done));
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
    return (int)s_storage_result(a, offset, rc);
}

static int s_env_storage_flush(device_env_t *env)
{
    s_actor_t *a = s_of(env);
    if (!a->storage_open)
        return -EBADF;
    int64_t rc = 0;
    if (!rt_actor_replaying(a->self) && fdatasync(a->storage_fd) < 0)
        rc = -errno;
    return (int)s_storage_result(a, 0, rc);
}

static void s_on_model_timer(rt_actor_t *self, uint64_t id)
{
    s_actor_t *a = rt_actor_state(self);
    if (a->model->ops->timer)
        a->model->ops->timer(a->model, (uint32_t)id);
}

static int s_env_timer_set(device_env_t *env, uint32_t id, uint64_t deadline_ns)
{
    return rt_timer_set(s_of(env)->self, id, deadline_ns, s_on_model_timer);
}

static void s_env_timer_cancel(device_env_t *env, uint32_t id)
{
    rt_timer_cancel(s_of(env)->self, id);
}

static void s_env_power(device_env_t *env, Vmm__Devices__PowerAction action, int exit_code)
{
    s_actor_t *a = s_of(env);
    Vmm__Devices__PowerRequest power = VMM__DEVICES__POWER_REQUEST__INIT;
    power.action = action;
    if (exit_code >= 0) {
        power.opt_exit_code_case = VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE_EXIT_CODE;
        power.exit_code = (uint32_t)exit_code;
    }
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_POWER_REQUEST;
    ev.power_request = &power;
    if (s_to_partition(a, &ev))
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_WARN, "the power request failed");
}

static void s_env_log(device_env_t *env, rt_log_level_t level, const char *text)
{
    s_actor_t *a = s_of(env);
    rt_log(rt_actor_rt(a->self), a->self, level, "%s", text);
}

static device_deferred_t *s_env_defer(device_env_t *env)
{
    s_actor_t *a = s_of(env);
    if (!a->access || a->current) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_ERROR,
               "the model deferred outside an access, or twice in one");
        return NULL;
    }
    device_deferred_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->token = ++a->next_token;
    a->current = d;
    return d;
}

/* The little-endian bytes of a value of size bytes. */
static void s_bytes(uint64_t value, uint32_t size, uint8_t *out)
{
    for (uint32_t i = 0; i < size; i++)
        out[i] = (uint8_t)(value >> (8 * i));
}

static void s_free_deferred(device_deferred_t *d)
{
    free(d->vp);
    free(d);
}

static void s_env_complete(device_env_t *env, device_deferred_t *d, int status, uint64_t value)
{
    s_actor_t *a = s_of(env);
    if (d == a->current) { /* within its access: answered when the model returns */
        d->done = true;
        d->status = status;
        d->value = value;
        return;
    }
    device_deferred_t **link = &a->deferred;
    while (*link && *link != d)
        link = &(*link)->next;
    if (!*link) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_ERROR,
               "the model completed an access that is not deferred");
        return;
    }
    *link = d->next;
    a->counts.completed++;
    if (d->vp) {
        uint8_t bytes[8];
        s_bytes(value, d->size, bytes);
        Vmm__Error err = VMM__ERROR__INIT;
        char text[128];
        Vmm__Devices__IoCompleted done = VMM__DEVICES__IO_COMPLETED__INIT;
        done.token = d->token;
        if (status < 0) {
            snprintf(text, sizeof text, "%s: the deferred access failed: %s",
                     rt_actor_name(a->self), strerror(-status));
            err.code = rt_error_code(status);
            err.text = text;
            done.error = &err;
        } else {
            done.data = (ProtobufCBinaryData){d->size, bytes};
        }
        Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
        ev.event_case = VMM__DEVICES__EVENT__EVENT_IO_COMPLETED;
        ev.io_completed = &done;
        s_send_event(a, d->vp, &ev);
    }
    s_free_deferred(d);
}

static void s_console_flush(s_actor_t *a)
{
    if (a->flush_armed) {
        rt_timer_cancel(a->self, S_FLUSH_TIMER);
        a->flush_armed = false;
    }
    if (!a->out_len)
        return;
    Vmm__Devices__ConsoleOutput out = VMM__DEVICES__CONSOLE_OUTPUT__INIT;
    out.data = (ProtobufCBinaryData){a->out_len, a->out};
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_OUTPUT;
    ev.console_output = &out;
    s_send_event(a, a->console, &ev);
    a->out_sent += a->out_len;
    a->out_len = 0;
}

static void s_on_flush_timer(rt_actor_t *self, uint64_t id)
{
    (void)id;
    s_actor_t *a = rt_actor_state(self);
    a->flush_armed = false;
    s_console_flush(a);
}

static size_t s_env_console_room(device_env_t *env)
{
    s_actor_t *a = s_of(env);
    if (!a->console)
        return S_CONSOLE_WINDOW; /* discarded: never busy */
    uint64_t held = a->out_sent - a->out_written + a->out_len;
    size_t room = held < S_CONSOLE_WINDOW ? (size_t)(S_CONSOLE_WINDOW - held) : 0;
    if (!room)
        a->out_blocked = true;
    return room;
}

static size_t s_env_console_write(device_env_t *env, const uint8_t *bytes, size_t len)
{
    s_actor_t *a = s_of(env);
    if (!a->console) {
        a->counts.console_dropped += len;
        return len;
    }
    size_t room = s_env_console_room(env);
    size_t n = len < room ? len : room;
    if (n < len)
        a->out_blocked = true;
    bool newline = false;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < S_CONSOLE_LINE - a->out_len ? n - done : S_CONSOLE_LINE - a->out_len;
        memcpy(a->out + a->out_len, bytes + done, k);
        newline |= memchr(bytes + done, '\n', k) != NULL;
        a->out_len += k;
        done += k;
        if (a->out_len == S_CONSOLE_LINE)
            s_console_flush(a);
    }
    if (newline || a->console_unbuffered)
        s_console_flush(a);
    else if (a->out_len && !a->flush_armed &&
             !rt_timer_set(a->self, S_FLUSH_TIMER, rt_now_ns(a->self) + S_CONSOLE_FLUSH_NS,
                           s_on_flush_timer))
        a->flush_armed = true;
    else if (a->out_len && !a->flush_armed)
        s_console_flush(a); /* no timer: hold nothing */
    return n;
}

static void s_env_console_want(device_env_t *env, size_t room)
{
    s_actor_t *a = s_of(env);
    uint64_t total = a->in_taken + room;
    if (!a->console || total <= a->in_wanted)
        return;
    a->in_wanted = total;
    Vmm__Devices__ConsoleWant want = VMM__DEVICES__CONSOLE_WANT__INIT;
    want.total = total;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_WANT;
    ev.console_want = &want;
    s_send_event(a, a->console, &ev);
}

static void s_env_guest_call(device_env_t *env, uint32_t vp_index, uint32_t kind,
                             const uint32_t *args, size_t n_args)
{
    s_actor_t *a = s_of(env);
    Vmm__Devices__GuestCall call = VMM__DEVICES__GUEST_CALL__INIT;
    call.vp_index = vp_index;
    call.kind = kind;
    call.n_args = n_args;
    call.args = (uint32_t *)args; /* only read */
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_GUEST_CALL;
    ev.guest_call = &call;
    s_send_event(a, a->calls ? a->calls : a->owner, &ev);
}

static int s_env_synic_connect(device_env_t *env, bool message, uint32_t connection_id)
{
    s_actor_t *a = s_of(env);
    return synic_link_connect(a->self, &a->synic, message, connection_id);
}

static int s_env_synic_disconnect(device_env_t *env, bool message, uint32_t connection_id)
{
    s_actor_t *a = s_of(env);
    return synic_link_disconnect(a->self, &a->synic, message, connection_id);
}

static int s_env_synic_post(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t type,
                            const uint8_t *payload, size_t len)
{
    s_actor_t *a = s_of(env);
    return synic_link_post(a->self, &a->synic, vp, sint, type, payload, len);
}

static int s_env_synic_signal(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t flag)
{
    s_actor_t *a = s_of(env);
    return synic_link_signal(a->self, &a->synic, vp, sint, flag);
}

static int s_env_synic_assert(device_env_t *env, uint32_t vp, uint32_t sint)
{
    s_actor_t *a = s_of(env);
    return synic_link_assert(a->self, &a->synic, vp, sint);
}

static const device_env_ops_t s_env_ops = {
    .irq_set = s_env_irq_set,
    .msi = s_env_msi,
    .guest_read = s_env_guest_read,
    .guest_write = s_env_guest_write,
    .now_ns = s_env_now_ns,
    .timer_set = s_env_timer_set,
    .timer_cancel = s_env_timer_cancel,
    .wall_ns = s_env_wall_ns,
    .entropy = s_env_entropy,
    .storage_open = s_env_storage_open,
    .storage_read = s_env_storage_read,
    .storage_write = s_env_storage_write,
    .storage_flush = s_env_storage_flush,
    .power = s_env_power,
    .log = s_env_log,
    .defer = s_env_defer,
    .complete = s_env_complete,
    .console_write = s_env_console_write,
    .console_room = s_env_console_room,
    .console_want = s_env_console_want,
    .guest_call = s_env_guest_call,
    .synic_connect = s_env_synic_connect,
    .synic_disconnect = s_env_synic_disconnect,
    .synic_post = s_env_synic_post,
    .synic_signal = s_env_synic_signal,
    .synic_assert = s_env_synic_assert,
};

/* ---- Accesses ------------------------------------------------------------------ */

/* Writes the model's ranges as "port 0x3f8+8, mmio 0x..." into buf. */
static void s_ranges_text(const device_spec_t *spec, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < spec->n_ranges && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s 0x%llx+0x%llx", i ? ", " : "",
                         spec->ranges[i].mmio ? "mmio" : "port",
                         (unsigned long long)spec->ranges[i].start,
                         (unsigned long long)spec->ranges[i].len);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static bool s_inside(const device_spec_t *spec, const device_io_t *io)
{
    for (size_t i = 0; i < spec->n_ranges; i++) {
        const device_range_t *r = &spec->ranges[i];
        if (r->mmio == io->mmio && io->address >= r->start && io->address - r->start < r->len &&
            io->size <= r->len - (io->address - r->start))
            return true;
    }
    return false;
}

/* Takes the access a request carries into io (and a write's value).
 * Returns 0, or refuses it (answered, counted) and returns -EINVAL. */
static int s_decode(s_actor_t *a, const Vmm__Envelope *msg, device_io_t *io, bool *write,
                    uint64_t *value)
{
    const Vmm__Devices__Request *req = msg->device_request;
    const ProtobufCBinaryData *data = NULL;
    bool have = false; /* only a call within one executor can lend a body without its member */
    memset(io, 0, sizeof *io);
    *write = false;
    *value = 0;
    switch (req->op_case) {
    case VMM__DEVICES__REQUEST__OP_READ_IO:
        if ((have = req->read_io)) {
            io->vp_index = req->read_io->vp_index;
            io->address = req->read_io->port;
            io->size = req->read_io->size;
        }
        break;
    case VMM__DEVICES__REQUEST__OP_WRITE_IO:
        if ((have = req->write_io)) {
            io->vp_index = req->write_io->vp_index;
            io->address = req->write_io->port;
            data = &req->write_io->data;
        }
        break;
    case VMM__DEVICES__REQUEST__OP_READ_MMIO:
        if ((have = req->read_mmio)) {
            io->mmio = true;
            io->vp_index = req->read_mmio->vp_index;
            io->address = req->read_mmio->address;
            io->size = req->read_mmio->size;
        }
        break;
    default: /* WRITE_MMIO */
        if ((have = req->write_mmio)) {
            io->mmio = true;
            io->vp_index = req->write_mmio->vp_index;
            io->address = req->write_mmio->address;
            data = &req->write_mmio->data;
        }
        break;
    }
    if (!have) {
        s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "a device_request without its access");
        return -EINVAL;
    }
    uint32_t max = io->mmio ? 8 : 4;
    const char *space = io->mmio ? "MMIO address" : "port";
    if (data) {
        *write = true;
        if (data->len != 1 && data->len != 2 && data->len != 4 && data->len != max) {
            s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                     "a write of %zu bytes to %s 0x%llx: the data must be 1, 2, 4%s bytes",
                     data->len, space, (unsigned long long)io->address,
                     io->mmio ? " or 8" : "");
            return -EINVAL;
        }
        io->size = (uint32_t)data->len;
        for (uint32_t i = 0; i < io->size; i++)
            *value |= (uint64_t)data->data[i] << (8 * i);
    } else if (!msg->request_id) {
        s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a read sent one-way cannot be answered");
        return -EINVAL;
    }
    if (io->size != 1 && io->size != 2 && io->size != 4 && io->size != max) {
        s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a read of size %u at %s 0x%llx: the size must be 1, 2, 4%s", io->size, space,
                 (unsigned long long)io->address, io->mmio ? " or 8" : "");
        return -EINVAL;
    }
    if (!s_inside(&a->model->spec, io)) {
        char ranges[192];
        s_ranges_text(&a->model->spec, ranges, sizeof ranges);
        s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a %u-byte access at %s 0x%llx is outside the device's ranges (%s)", io->size,
                 space, (unsigned long long)io->address, ranges);
        return -EINVAL;
    }
    return 0;
}

/* Answers an access: a read with its value, a write with an Ack (nothing
 * for a posted one), a failure with its error. What the access caused
 * leaves first, so that the VP resumes after it. */
static int s_answer(s_actor_t *a, const Vmm__Envelope *msg, const device_io_t *io, bool write,
                    int status, uint64_t value)
{
    if (!msg->request_id)
        return 0;
    rt_flush(a->self);
    if (status < 0)
        return rt_reply_error(a->self, msg, rt_error_code(status), "%s: the access failed: %s",
                              rt_actor_name(a->self), strerror(-status));
    if (write)
        return rt_reply_ack(a->self, msg);
    uint8_t bytes[8];
    s_bytes(value, io->size, bytes);
    Vmm__Devices__ReadResult result = VMM__DEVICES__READ_RESULT__INIT;
    result.data = (ProtobufCBinaryData){io->size, bytes};
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    if (io->mmio) {
        reply.result_case = VMM__DEVICES__REPLY__RESULT_READ_MMIO;
        reply.read_mmio = &result;
    } else {
        reply.result_case = VMM__DEVICES__REPLY__RESULT_READ_IO;
        reply.read_io = &result;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    return rt_reply(a->self, msg, &env);
}

/* The model deferred the access: keep its token, tell the VP. */
static int s_deferred(s_actor_t *a, const Vmm__Envelope *msg, const device_io_t *io, bool write,
                      device_deferred_t *d)
{
    if (d->done) {
        int rc = s_answer(a, msg, io, write, d->status, d->value);
        s_free_deferred(d);
        return rc;
    }
    if (msg->request_id && !(d->vp = strdup(msg->sender))) {
        s_free_deferred(d);
        return s_answer(a, msg, io, write, -ENOMEM, 0);
    }
    d->size = write ? 0 : io->size;
    d->next = a->deferred;
    a->deferred = d;
    a->counts.deferred++;
    if (!msg->request_id)
        return 0;
    rt_flush(a->self);
    Vmm__Devices__IoDeferred deferred = VMM__DEVICES__IO_DEFERRED__INIT;
    deferred.token = d->token;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_DEFERRED;
    reply.deferred = &deferred;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    return rt_reply(a->self, msg, &env);
}

/* ---- The kept state ------------------------------------------------------------ */

/* What the file holds: the VM's instance (DeviceRegistration.vm_instance,
 * 8 bytes), then the model's state. */
#define S_KEPT_HEADER 8
#define S_KEPT_MAX (1u << 20)

/* Keeps the model's state, with the VM it serves, when it changed. */
static void s_keep_state(s_actor_t *a)
{
    /* What the VM sent a dead predecessor may reach a restarted host before
     * its registration is answered: the state found at start waits for it
     * (s_resume_kept()), and is not written over meanwhile. */
    if (a->state_fd < 0 || a->kept_found)
        return;
    ProtobufCBinaryData st = {0};
    if (a->model->ops->save(a->model, &st))
        return;
    size_t len = S_KEPT_HEADER + st.len;
    uint8_t *bytes = malloc(len);
    if (bytes) {
        memcpy(bytes, &a->vm_instance, S_KEPT_HEADER);
        memcpy(bytes + S_KEPT_HEADER, st.data, st.len);
    }
    free(st.data);
    if (!bytes || (len == a->kept_len && !memcmp(bytes, a->kept, len))) {
        free(bytes);
        return;
    }
    if (pwrite(a->state_fd, bytes, len, 0) != (ssize_t)len || ftruncate(a->state_fd, (off_t)len))
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_WARN, "keeping its state: %s",
               strerror(errno));
    free(a->kept);
    a->kept = bytes;
    a->kept_len = len;
}

/* At start: opens the state file and takes what it holds (a replay: what
 * the run found). 0, or a negative errno. */
static int s_open_kept(s_actor_t *a, const char *path)
{
    uint64_t len = 0;
    a->keeps_state = true;
    if (!rt_actor_replaying(a->self)) {
        a->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (a->state_fd < 0)
            return -errno;
        off_t end = lseek(a->state_fd, 0, SEEK_END);
        len = end > 0 && end <= S_KEPT_MAX ? (uint64_t)end : 0;
    }
    if (rt_actor_input(a->self, DEVICE_INPUT_KEPT_STATE, 0, &len, sizeof len) ||
        len > S_KEPT_MAX)
        len = 0;
    if (len && !(a->kept = malloc(len)))
        return -ENOMEM;
    if (len && !rt_actor_replaying(a->self) &&
        pread(a->state_fd, a->kept, len, 0) != (ssize_t)len)
        len = 0;
    if (len && rt_actor_input(a->self, DEVICE_INPUT_KEPT_STATE, 1, a->kept, len))
        len = 0;
    a->kept_len = len;
    a->kept_found = len > S_KEPT_HEADER;
    return 0;
}

/* Once registered (a->vm_instance is the registration's): the state found
 * at start, when it was kept for this same VM, is restored and the model
 * resumed; else the model goes on afresh. */
static void s_resume_kept(s_actor_t *a)
{
    if (!a->keeps_state)
        return;
    uint64_t vm = 0;
    if (a->kept_found)
        memcpy(&vm, a->kept, S_KEPT_HEADER);
    int same = vm && vm == a->vm_instance;
    /* What the run decided, so that a replay of a trace decides alike. */
    if (rt_actor_input(a->self, DEVICE_INPUT_KEPT_STATE, 2, &same, sizeof same))
        same = 0;
    int rc = same ? a->model->ops->restore(a->model, a->kept + S_KEPT_HEADER,
                                           a->kept_len - S_KEPT_HEADER)
                  : -ESRCH;
    if (!rc) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_INFO,
               "restored the state it kept before a restart");
        if (a->model->ops->resume)
            a->model->ops->resume(a->model);
    } else if (a->kept_found) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_INFO, "the state kept in its file %s",
               rc == -ESRCH ? "was another VM's: starting afresh" : "does not restore");
    }
    a->kept_found = false;
    s_keep_state(a);
}

static int s_on_access(s_actor_t *a, const Vmm__Envelope *msg)
{
    device_io_t io;
    bool write;
    uint64_t value;
    if (s_decode(a, msg, &io, &write, &value))
        return 0;
    if (write) {
        a->counts.writes++;
        if (!msg->request_id)
            a->counts.posted_writes++;
    } else {
        a->counts.reads++;
    }
    a->access = msg;
    int rc = write ? a->model->ops->write(a->model, &io, value)
                   : a->model->ops->read(a->model, &io, &value);
    a->access = NULL;
    device_deferred_t *d = a->current;
    a->current = NULL;
    if (rc == DEVICE_IO_DEFERRED && d)
        return s_deferred(a, msg, &io, write, d);
    if (d) {
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_ERROR,
               "the model made a token for an access it did not defer");
        s_free_deferred(d);
    }
    if (rc == DEVICE_IO_DEFERRED)
        rc = -EIO; /* deferred without a token */
    if (rc < 0) {
        a->counts.bad_requests++;
        rt_log(rt_actor_rt(a->self), a->self, RT_LOG_INFO,
               "the model refused a %u-byte %s at 0x%llx from %s: %s", io.size,
               write ? "write" : "read", (unsigned long long)io.address, msg->sender,
               strerror(-rc));
    }
    if (write)
        s_keep_state(a); /* before the guest sees the write done */
    return s_answer(a, msg, &io, write, rc, value);
}

/* ---- Its life: reset, save, restore -------------------------------------------- */

static bool s_may_manage(s_actor_t *a, const char *sender)
{
    return (a->owner && !strcmp(sender, a->owner)) ||
           (a->manager && !strcmp(sender, a->manager)) ||
           (a->partition && !strcmp(sender, a->partition));
}

static int s_on_save(s_actor_t *a, const Vmm__Envelope *msg)
{
    ProtobufCBinaryData state = {0};
    int rc = a->model->ops->save(a->model, &state);
    if (rc)
        return rt_reply_error(a->self, msg, rt_error_code(rc), "saving %s: %s",
                              rt_actor_name(a->self), strerror(-rc));
    Vmm__Devices__DeviceState ds = VMM__DEVICES__DEVICE_STATE__INIT;
    ds.kind = (char *)a->model->ops->kind;
    ds.state = state;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_DEVICE_STATE;
    reply.device_state = &ds;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    rc = rt_reply(a->self, msg, &env);
    free(state.data);
    return rc;
}

static int s_on_restore(s_actor_t *a, const Vmm__Envelope *msg,
                        const Vmm__Devices__RestoreDevice *op)
{
    const char *kind = a->model->ops->kind;
    if (!op || !op->state || strcmp(op->state->kind, kind))
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "a state of kind \"%s\" for a device of kind \"%s\"",
                        op && op->state ? op->state->kind : "", kind);
    if (a->model->ops->restore(a->model, op->state->state.data, op->state->state.len))
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "the %s state does not decode or holds a value out of range", kind);
    s_keep_state(a); /* a restart of its host goes on from here */
    rt_flush(a->self);
    return rt_reply_ack(a->self, msg);
}

static int s_on_life(s_actor_t *a, const Vmm__Envelope *msg)
{
    if (!s_may_manage(a, msg->sender))
        return s_refuse(a, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                        "only its owner, its manager or its partition may reset, save or "
                        "restore it");
    if (!msg->request_id)
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "reset, save and restore are requests, not one-way messages");
    const Vmm__Devices__Request *req = msg->device_request;
    switch (req->op_case) {
    case VMM__DEVICES__REQUEST__OP_RESET_DEVICE:
        a->model->ops->reset(a->model);
        s_keep_state(a);
        rt_flush(a->self);
        return rt_reply_ack(a->self, msg);
    case VMM__DEVICES__REQUEST__OP_SAVE_DEVICE:
        return s_on_save(a, msg);
    default:
        return s_on_restore(a, msg, req->restore_device);
    }
}

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_actor_t *a = rt_actor_state(self);
    switch (msg->device_request->op_case) {
    case VMM__DEVICES__REQUEST__OP_READ_IO:
    case VMM__DEVICES__REQUEST__OP_WRITE_IO:
    case VMM__DEVICES__REQUEST__OP_READ_MMIO:
    case VMM__DEVICES__REQUEST__OP_WRITE_MMIO:
        return s_on_access(a, msg);
    case VMM__DEVICES__REQUEST__OP_RESET_DEVICE:
    case VMM__DEVICES__REQUEST__OP_SAVE_DEVICE:
    case VMM__DEVICES__REQUEST__OP_RESTORE_DEVICE:
        return s_on_life(a, msg);
    case VMM__DEVICES__REQUEST__OP__NOT_SET:
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "a device_request with no op");
    default:
        return s_refuse(a, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "a device serves accesses, reset, save and restore, not op %d",
                        (int)msg->device_request->op_case);
    }
}

/* ---- Events: its console, doorbells ------------------------------------------- */

static int s_on_console_written(s_actor_t *a, const Vmm__Envelope *msg, uint64_t total)
{
    if (total < a->out_written || total > a->out_sent)
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "the console wrote %llu bytes in all, but %llu were sent and %llu "
                        "written before",
                        (unsigned long long)total, (unsigned long long)a->out_sent,
                        (unsigned long long)a->out_written);
    a->out_written = total;
    if (a->out_blocked && s_env_console_room(&a->env)) {
        a->out_blocked = false;
        if (a->model->ops->console_ready)
            a->model->ops->console_ready(a->model);
    }
    return 0;
}

static int s_on_console_input(s_actor_t *a, const Vmm__Envelope *msg,
                              const ProtobufCBinaryData *data)
{
    if (data->len > a->in_wanted - a->in_taken)
        return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "%zu input bytes, but the device asked for %llu more", data->len,
                        (unsigned long long)(a->in_wanted - a->in_taken));
    a->in_taken += data->len;
    if (a->model->ops->console_input && data->len)
        a->model->ops->console_input(a->model, data->data, data->len);
    return 0;
}

static int s_on_device_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_actor_t *a = rt_actor_state(self);
    const Vmm__Devices__Event *ev = msg->device_event;
    bool console = ev->event_case == VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN ||
                   ev->event_case == VMM__DEVICES__EVENT__EVENT_CONSOLE_INPUT;
    if (!console)
        return s_refuse(a, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                        "a device takes only its console's events, not event %d",
                        (int)ev->event_case);
    if (!a->console || strcmp(msg->sender, a->console))
        return s_refuse(a, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                        "console events come from its console, %s",
                        a->console ? a->console : "none");
    if (ev->event_case == VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN)
        return s_on_console_written(a, msg, ev->console_written->total);
    return s_on_console_input(a, msg, &ev->console_input->data);
}

static int s_on_partition_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_actor_t *a = rt_actor_state(self);
    const Vmm__Partition__Event *ev = msg->partition_event;
    if (!a->partition || strcmp(msg->sender, a->partition))
        return s_refuse(a, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                        "partition events come from its partition");
    if (ev->event_case == VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED)
        for (size_t i = 0; i < a->model->spec.n_doorbells; i++)
            if (a->doorbells[i] && a->doorbells[i] == ev->doorbell_signalled->handle) {
                if (a->model->ops->doorbell)
                    a->model->ops->doorbell(a->model, i);
                /* Answered once looked at: the partition holds the rings
                 * meanwhile (partition.c, s_signal_doorbell()). */
                return msg->request_id ? rt_reply_ack(self, msg) : 0;
            }
    return s_refuse(a, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                    "a partition event (%d) for no doorbell of this device", (int)ev->event_case);
}

/* ---- Registration ---------------------------------------------------------------- */

static void s_tell_owner(s_actor_t *a, int code, const char *text)
{
    Vmm__Error err = VMM__ERROR__INIT;
    Vmm__Devices__DeviceRegistered reg = VMM__DEVICES__DEVICE_REGISTERED__INIT;
    reg.name = (char *)a->model->spec.name;
    reg.handle = a->handle;
    if (code) {
        err.code = (Vmm__ErrorCode)code;
        err.text = (char *)text;
        reg.error = &err;
    }
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_REGISTERED;
    ev.registered = &reg;
    if (a->owner)
        s_send_event(a, a->owner, &ev);
}

/* The partition's answer (or the runtime's TIMEOUT for its absence). */
static void s_on_reply(rt_actor_t *self, const Vmm__Envelope *reply)
{
    s_actor_t *a = rt_actor_state(self);
    if (reply->reply_to != a->register_id)
        return;
    a->register_id = 0;
    const device_spec_t *spec = &a->model->spec;
    const Vmm__Devices__DeviceRegistration *reg = NULL;
    char why[160] = "";
    Vmm__ErrorCode code = VMM__ERROR_CODE__INTERNAL;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR) {
        snprintf(why, sizeof why, "%s", reply->error->text);
        code = reply->error->code;
    } else if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
               reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_REGISTRATION) {
        snprintf(why, sizeof why, "an answer of body kind %d", reply->body_case);
    } else if ((reg = reply->device_reply->registration),
               reg->n_ports + reg->n_mmio != spec->n_ranges ||
                   reg->n_doorbells != spec->n_doorbells) {
        /* required = true: a success grants all that was asked for. */
        snprintf(why, sizeof why, "it granted %zu of %zu ranges and %zu of %zu doorbells",
                 reg->n_ports + reg->n_mmio, spec->n_ranges, reg->n_doorbells,
                 spec->n_doorbells);
    }
    if (*why) {
        snprintf(a->registration, sizeof a->registration, "refused: %s", why);
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s did not register device %s: %s",
               a->partition, spec->name, why);
        s_tell_owner(a, code, why);
        return;
    }
    a->handle = reg->handle;
    a->vm_instance = reg->vm_instance;
    for (size_t i = 0; i < reg->n_doorbells; i++)
        a->doorbells[i] = reg->doorbells[i];
    snprintf(a->registration, sizeof a->registration, "registered");
    /* In a device host on the VM's host: the doorbells are waited on here. */
    device_irqfd_doorbells(&a->irqfds, &a->guest, self, a->partition, a->doorbells,
                           reg->n_doorbells);
    s_resume_kept(a);
    s_tell_owner(a, 0, NULL);
}

/* A doorbell's eventfd this actor waits on itself was signalled: handled
 * as the partition's DoorbellSignalled it stands for, and recorded so. */
static void s_on_doorbell_fd(rt_actor_t *self, int fd)
{
    s_actor_t *a = rt_actor_state(self);
    uint64_t handle = device_irqfd_rung(&a->irqfds, fd);
    if (!handle)
        return;
    Vmm__Partition__DoorbellSignalled ds = VMM__PARTITION__DOORBELL_SIGNALLED__INIT;
    ds.handle = handle;
    for (size_t i = 0; i < a->model->spec.n_doorbells; i++)
        if (a->doorbells[i] == handle)
            ds.guest_address = a->model->spec.doorbells[i].address;
    Vmm__Partition__Event ev = VMM__PARTITION__EVENT__INIT;
    ev.event_case = VMM__PARTITION__EVENT__EVENT_DOORBELL_SIGNALLED;
    ev.doorbell_signalled = &ds;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_EVENT;
    env.partition_event = &ev;
    rt_note_received(self, a->partition, &env);
}

static void s_on_resample_fd(rt_actor_t *self, int fd)
{
    s_actor_t *a = rt_actor_state(self);
    device_irqfd_resampled(&a->irqfds, fd);
}

static int s_register(s_actor_t *a)
{
    const device_spec_t *spec = &a->model->spec;
    Vmm__Devices__PortRange ports[DEVICE_MAX_RANGES], *port_ptrs[DEVICE_MAX_RANGES];
    Vmm__MemoryRange mmio[DEVICE_MAX_RANGES], *mmio_ptrs[DEVICE_MAX_RANGES];
    Vmm__Devices__DoorbellRequest bells[DEVICE_MAX_DOORBELLS], *bell_ptrs[DEVICE_MAX_DOORBELLS];
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.ports = port_ptrs;
    reg.mmio = mmio_ptrs;
    for (size_t i = 0; i < spec->n_ranges; i++) {
        const device_range_t *r = &spec->ranges[i];
        if (r->mmio) {
            vmm__memory_range__init(&mmio[reg.n_mmio]);
            mmio[reg.n_mmio].start = r->start;
            mmio[reg.n_mmio].end = r->start + r->len;
            mmio_ptrs[reg.n_mmio] = &mmio[reg.n_mmio];
            reg.n_mmio++;
        } else {
            vmm__devices__port_range__init(&ports[reg.n_ports]);
            ports[reg.n_ports].start = (uint32_t)r->start;
            ports[reg.n_ports].len = (uint32_t)r->len;
            port_ptrs[reg.n_ports] = &ports[reg.n_ports];
            reg.n_ports++;
        }
    }
    for (size_t i = 0; i < spec->n_doorbells; i++) {
        const device_doorbell_t *d = &spec->doorbells[i];
        vmm__devices__doorbell_request__init(&bells[i]);
        bells[i].guest_address = d->address;
        if (d->has_value) {
            bells[i].opt_value_case = VMM__DEVICES__DOORBELL_REQUEST__OPT_VALUE_VALUE;
            bells[i].value = d->value;
        }
        if (d->length) {
            bells[i].opt_length_case = VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH_LENGTH;
            bells[i].length = d->length;
        }
        bell_ptrs[i] = &bells[i];
    }
    reg.name = (char *)spec->name;
    reg.n_irq_lines = spec->n_irq_lines;
    reg.irq_lines = (uint32_t *)spec->irq_lines; /* only read */
    reg.msi_count = spec->msi_count;
    reg.n_doorbells = spec->n_doorbells;
    reg.doorbells = bell_ptrs;
    reg.required = true;
    reg.posted_writes = spec->posted_writes;
    reg.halt_if_lost = a->halt_if_lost;
    /* A device listening on an endpoint of its own lives in another process
     * than its VM (a device host): the VM reaches it there, and over tcp://
     * checks that it reaches this host by its CURVE key. */
    char endpoint[256], key[64];
    rt_t *rt = rt_actor_rt(a->self);
    if (!rt_endpoint_of(rt, rt_actor_name(a->self), endpoint, sizeof endpoint))
        reg.endpoint = endpoint;
    if (!strncmp(reg.endpoint, "tcp://", 6) && !rt_curve_public_key(rt, key, sizeof key))
        reg.server_key = key;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    snprintf(a->registration, sizeof a->registration, "asked");
    int rc = rt_request(a->self, a->partition, &env, S_REGISTER_TIMEOUT_MS, &a->register_id);
    if (rc)
        rt_log(rt, a->self, RT_LOG_ERROR, "cannot ask %s to register it: %s", a->partition,
               strerror(-rc));
    return rc;
}

/* Whether the model's claims are well formed: ranges that are not empty,
 * ports in 16 bits, doorbells in its MMIO ranges. */
static bool s_spec_valid(const device_spec_t *spec)
{
    if (!spec->name || !*spec->name || !spec->n_ranges || spec->n_ranges > DEVICE_MAX_RANGES ||
        spec->n_irq_lines > DEVICE_MAX_IRQS || spec->n_doorbells > DEVICE_MAX_DOORBELLS)
        return false;
    for (size_t i = 0; i < spec->n_ranges; i++) {
        const device_range_t *r = &spec->ranges[i];
        if (!r->len || r->start + r->len < r->start ||
            (!r->mmio && (r->start > 0xffff || r->len > 0x10000 - r->start)))
            return false;
    }
    for (size_t i = 0; i < spec->n_doorbells; i++) {
        device_io_t io = {.mmio = true, .address = spec->doorbells[i].address,
                          .size = spec->doorbells[i].length ? spec->doorbells[i].length : 1};
        if (!s_inside(spec, &io))
            return false;
    }
    return true;
}

int device_actor_wait_registered(rt_client_t *owner, size_t n, int timeout_ms, char *err,
                                 size_t errlen)
{
    uint64_t deadline = rt_now_ns(rt_client_actor(owner)) + (uint64_t)timeout_ms * 1000000u;
    for (size_t done = 0; done < n;) {
        uint64_t now = rt_now_ns(rt_client_actor(owner));
        rt_msg_t msg;
        if (now >= deadline ||
            rt_client_recv(owner, &msg, (int)((deadline - now + 999999) / 1000000))) {
            snprintf(err, errlen, "%zu of %zu devices did not hear from their partition in %d ms",
                     n - done, n, timeout_ms);
            return -ETIMEDOUT;
        }
        const Vmm__Envelope *env = msg.env;
        int rc = 0;
        if (env->body_case == VMM__ENVELOPE__BODY_DEVICE_EVENT &&
            env->device_event->event_case == VMM__DEVICES__EVENT__EVENT_REGISTERED) {
            const Vmm__Devices__DeviceRegistered *r = env->device_event->registered;
            if (r->error) {
                snprintf(err, errlen, "device %s did not register: %s", r->name, r->error->text);
                rc = rt_errno_of(r->error->code);
            }
            done++;
        }
        rt_msg_release(&msg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- Lifecycle ------------------------------------------------------------------- */

static void s_release(s_actor_t *a)
{
    while (a->deferred) {
        device_deferred_t *d = a->deferred;
        a->deferred = d->next;
        s_free_deferred(d);
    }
    device_destroy(&a->model);
    device_irqfds_fini(&a->irqfds, a->self);
    device_guest_fini(&a->guest);
    synic_link_release(&a->synic);
    if (a->storage_fd >= 0)
        close(a->storage_fd);
    if (a->state_fd >= 0)
        close(a->state_fd);
    free(a->kept);
    free(a->partition);
    free(a->owner);
    free(a->manager);
    free(a->calls);
    free(a->console);
    free(a);
}

static char *s_dup(const char *s, int *rc)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        *rc = -ENOMEM;
    return copy;
}

static int s_init(rt_actor_t *self, void *arg)
{
    const device_actor_config_t *cfg = arg;
    if (!cfg || !cfg->new_model)
        return -EINVAL;
    s_actor_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    int rc = 0;
    a->env.ops = &s_env_ops;
    a->self = self;
    a->storage_fd = -1;
    a->state_fd = -1;
    a->halt_if_lost = cfg->halt_if_lost;
    a->console_unbuffered = cfg->console_unbuffered;
    a->guest.by_message = cfg->guest_by_message;
    a->irqfds.enabled = cfg->msi_irqfd;
    a->irqfds.on_doorbell = s_on_doorbell_fd;
    a->irqfds.own_doorbells = cfg->doorbell_fds;
    a->irqfds.on_resample = s_on_resample_fd;
    a->irqfds.off = !cfg->msi_irqfd;
    a->irqfds.decided = !cfg->msi_irqfd;
    a->guest.no_file = rt_actor_replaying(self);
    a->partition = s_dup(cfg->partition, &rc);
    a->owner = s_dup(cfg->owner, &rc);
    a->manager = s_dup(cfg->manager, &rc);
    a->calls = s_dup(cfg->guest_calls, &rc);
    a->console = s_dup(cfg->console, &rc);
    a->synic.synic = s_dup(cfg->synic, &rc);
    snprintf(a->registration, sizeof a->registration, "none (no partition)");
    /* The model's constructor may already use its environment. */
    rt_actor_set_state(self, a);
    char why[256];
    if (!rc && cfg->model_args &&
        !(a->model = device_model_new_args(cfg->new_model, cfg->model_args, &a->env, why,
                                           sizeof why))) {
        rc = errno ? -errno : -EINVAL;
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "%s", why);
    } else if (!rc && !cfg->model_args &&
               !(a->model = cfg->new_model(cfg->model_config, &a->env))) {
        rc = errno ? -errno : -EINVAL;
    }
    if (!rc && cfg->state_file && (rc = s_open_kept(a, cfg->state_file)))
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "its state file %s: %s",
               cfg->state_file, strerror(-rc));
    if (!rc && !s_spec_valid(&a->model->spec)) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "the model's ranges are malformed");
        rc = -EINVAL;
    }
    if (!rc && a->partition)
        rc = s_register(a);
    if (rc) {
        s_release(a);
        rt_actor_set_state(self, NULL);
    }
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    s_actor_t *a = rt_actor_state(self);
    s_console_flush(a); /* what the guest wrote last reaches the console */
    rt_flush(self);
    s_release(a);
    rt_actor_set_state(self, NULL);
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    s_actor_t *a = rt_actor_state(self);
    char ranges[192];
    s_ranges_text(&a->model->spec, ranges, sizeof ranges);
    rt_inspect_add(node, "model", "%s", a->model->ops->kind);
    rt_inspect_add(node, "ranges", "%s", ranges);
    rt_inspect_add(node, "partition", "%s", a->partition ? a->partition : "");
    rt_inspect_add(node, "registration", "%s", a->registration);
    device_inspect_count(node, "handle", a->handle);
    device_inspect_count(node, "reads", a->counts.reads);
    device_inspect_count(node, "writes", a->counts.writes);
    device_inspect_count(node, "posted_writes", a->counts.posted_writes);
    device_inspect_count(node, "deferred", a->counts.deferred);
    device_inspect_count(node, "completed", a->counts.completed);
    device_inspect_count(node, "bad_requests", a->counts.bad_requests);
    device_inspect_count(node, "denied", a->counts.denied);
    device_inspect_count(node, "unsent", a->counts.unsent);
    rt_inspect_add(node, "guest_ram", "%s", device_guest_state(&a->guest));
    device_irqfds_inspect(&a->irqfds, node);
    rt_inspect_add(node, "console", "%s", a->console ? a->console : "");
    device_inspect_count(node, "console_sent", a->out_sent);
    device_inspect_count(node, "console_written", a->out_written);
    device_inspect_count(node, "console_dropped", a->counts.console_dropped);
    device_inspect_count(node, "console_input", a->in_taken);
    synic_link_inspect(&a->synic, node);
    a->model->ops->inspect(a->model, node);
}

/* ---- Traces and replays -------------------------------------------------------- */

static int s_recipe(const void *arg, ProtobufCBinaryData *out)
{
    const device_actor_config_t *cfg = arg;
    const char *model = cfg ? device_model_kind(cfg->new_model) : NULL;
    Vmm__Devices__DeviceRecipe r = VMM__DEVICES__DEVICE_RECIPE__INIT;
    if (!cfg)
        return -EINVAL;
    r.model = (char *)(model ? model : "");
    r.model_configured = cfg->model_config != NULL && !cfg->model_args;
    r.model_args = (char *)(cfg->model_args ? cfg->model_args : "");
    r.kept_state = cfg->state_file != NULL;
    r.doorbell_fds = cfg->doorbell_fds;
    r.partition = (char *)(cfg->partition ? cfg->partition : "");
    r.owner = (char *)(cfg->owner ? cfg->owner : "");
    r.manager = (char *)(cfg->manager ? cfg->manager : "");
    r.guest_calls = (char *)(cfg->guest_calls ? cfg->guest_calls : "");
    r.console = (char *)(cfg->console ? cfg->console : "");
    r.synic = (char *)(cfg->synic ? cfg->synic : "");
    r.halt_if_lost = cfg->halt_if_lost;
    r.console_unbuffered = cfg->console_unbuffered;
    r.guest_by_message = cfg->guest_by_message;
    r.msi_irqfd = cfg->msi_irqfd;
    return rt_pb_pack(&r.base, out);
}

static const char *s_or_null(const char *s)
{
    return *s ? s : NULL;
}

/* The model a replay uses instead of the recorded one, if any. */
typedef struct {
    device_new_fn new_model;
    const void *model_config;
} s_replay_model_t;

/* The configuration the recipe recorded, with the model it names or the
 * one the caller gives. */
static int s_replay_start(rt_replay_config_t *cfg, const ProtobufCMessage *recipe, void *ctx,
                          rt_replay_result_t *out, char *err, size_t errlen)
{
    const s_replay_model_t *m = ctx;
    const Vmm__Devices__DeviceRecipe *r = (const Vmm__Devices__DeviceRecipe *)recipe;
    device_actor_config_t dcfg = {
        .new_model = m->new_model ? m->new_model : device_model_find(r->model),
        .model_config = m->new_model ? m->model_config : NULL,
        .model_args = m->new_model ? NULL : s_or_null(r->model_args),
        .partition = s_or_null(r->partition),
        .owner = s_or_null(r->owner),
        .manager = s_or_null(r->manager),
        .guest_calls = s_or_null(r->guest_calls),
        .console = s_or_null(r->console),
        .synic = s_or_null(r->synic),
        .halt_if_lost = r->halt_if_lost,
        .console_unbuffered = r->console_unbuffered,
        .guest_by_message = r->guest_by_message,
        .msi_irqfd = r->msi_irqfd,
        .state_file = r->kept_state ? "" : NULL,
        .doorbell_fds = r->doorbell_fds,
    };
    if (!dcfg.new_model || (r->model_configured && !m->new_model)) {
        snprintf(err, errlen,
                 dcfg.new_model ? "its model (%s) had a configuration of its own, which the "
                                  "trace does not hold: replay it with its config"
                                : "its model (\"%s\") is not one this VMM has by name (%s)",
                 r->model, device_model_kinds());
        return -ENOTSUP;
    }
    cfg->ops = &device_actor_ops;
    cfg->arg = &dcfg;
    return rt_replay(cfg, out, err, errlen);
}

int device_actor_replay(const char *trace, const char *actor, device_new_fn new_model,
                        const void *model_config, rt_replay_result_t *out, char *err,
                        size_t errlen)
{
    s_replay_model_t m = {new_model, model_config};
    return rt_replay_recipe(trace, actor, "device", &vmm__devices__device_recipe__descriptor,
                            s_replay_start, &m, out, err, errlen);
}

/* What the guest posted or signalled to a connection of the model's. */
static int s_on_synic_event(rt_actor_t *self, const Vmm__Envelope *msg)
{
    s_actor_t *a = rt_actor_state(self);
    return synic_link_on_event(self, &a->synic, a->model, msg);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
    {VMM__ENVELOPE__BODY_SYNIC_EVENT, s_on_synic_event},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_on_device_event},
    {VMM__ENVELOPE__BODY_PARTITION_EVENT, s_on_partition_event},
};

const rt_actor_ops_t device_actor_ops = {
    .kind = "device",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .on_reply = s_on_reply,
    .inspect = s_inspect,
    .recipe = s_recipe,
};
