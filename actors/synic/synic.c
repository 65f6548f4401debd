/*
 * The synic actor: its requests (synic.proto), the guest's hypercalls,
 * host ports, guest event ports and the monitor page, and which actor of a
 * split synic serves what. Per VP state and the MSRs are in synic_vp.c,
 * the split synic's messages between its actors in synic_split.c.
 */
#include "actors/synic/synic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/synic/synic_internal.h"
#include "runtime/pbtext.h"

/* How often the monitor page is read while monitors are registered: a bit
 * the guest sets is signalled within about this long (plus the cost of the
 * read, a direct call on the partition's executor). */
#define S_MONITOR_POLL_NS 1000000L
/* The shortest poll interval a guest's latency may ask for. */
#define S_MONITOR_POLL_MIN_NS 100000L

#define S_TARGET_MAX 255
/* How long central waits for each VP's actor to move its reference time. */
#define S_TIME_BASE_TIMEOUT_MS 5000

/* ---- Replies and refusals ----------------------------------------------------- */

/* Answers (when it is a request), logs and counts a refused request. */
__attribute__((format(printf, 4, 0))) static int
s_refuse_va(synic_t *s, const Vmm__Envelope *msg, Vmm__ErrorCode code, const char *fmt,
            va_list ap)
{
    char text[400];
    vsnprintf(text, sizeof text, fmt, ap);
    if (code == VMM__ERROR_CODE__NOT_SUPPORTED)
        s->counts.unsupported++;
    else
        s->counts.bad_requests++;
    rt_log(rt_actor_rt(s->self), s->self, RT_LOG_INFO, "refused %s from %s: %s",
           msg->request_id ? "a request" : "a one-way request",
           msg->sender ? msg->sender : "?", text);
    if (msg->request_id)
        rt_reply_error(s->self, msg, code, "%s: %s", rt_actor_name(s->self), text);
    return 0;
}

__attribute__((format(printf, 4, 5))) static int
s_refuse(synic_t *s, const Vmm__Envelope *msg, Vmm__ErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_refuse_va(s, msg, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int s_reply(synic_t *s, const Vmm__Envelope *msg, Vmm__Synic__Reply *reply)
{
    if (!msg->request_id)
        return 0;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REPLY;
    env.synic_reply = reply;
    return rt_reply(s->self, msg, &env);
}

static int s_ack(synic_t *s, const Vmm__Envelope *msg)
{
    return msg->request_id ? rt_reply_ack(s->self, msg) : 0;
}

/* Replies with the handle a registration made. */
static int s_reply_handle(synic_t *s, const Vmm__Envelope *msg,
                          Vmm__Synic__Reply__ResultCase kind, uint64_t handle, uint32_t vp)
{
    char signal_to[256];
    if (s->role != SYNIC_CENTRAL ||
        synic_vp_actor(signal_to, sizeof signal_to, rt_actor_name(s->self), vp))
        snprintf(signal_to, sizeof signal_to, "%s", rt_actor_name(s->self));
    Vmm__Synic__Reply reply = VMM__SYNIC__REPLY__INIT;
    Vmm__Synic__HostEventPortHandle host_event = VMM__SYNIC__HOST_EVENT_PORT_HANDLE__INIT;
    Vmm__Synic__HostMessagePortHandle host_message = VMM__SYNIC__HOST_MESSAGE_PORT_HANDLE__INIT;
    Vmm__Synic__GuestEventPortHandle guest_event = VMM__SYNIC__GUEST_EVENT_PORT_HANDLE__INIT;
    Vmm__Synic__MonitorHandle monitor = VMM__SYNIC__MONITOR_HANDLE__INIT;
    reply.result_case = kind;
    switch (kind) {
    case VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT:
        host_event.handle = handle;
        reply.host_event_port = &host_event;
        break;
    case VMM__SYNIC__REPLY__RESULT_HOST_MESSAGE_PORT:
        host_message.handle = handle;
        reply.host_message_port = &host_message;
        break;
    case VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT:
        guest_event.handle = handle;
        guest_event.signal_to = signal_to;
        reply.guest_event_port = &guest_event;
        break;
    default:
        monitor.handle = handle;
        reply.monitor = &monitor;
        break;
    }
    return s_reply(s, msg, &reply);
}

static int s_reply_status(synic_t *s, const Vmm__Envelope *msg, uint32_t status)
{
    Vmm__Synic__HypercallStatus hs = VMM__SYNIC__HYPERCALL_STATUS__INIT;
    hs.hv_status = status;
    Vmm__Synic__Reply reply = VMM__SYNIC__REPLY__INIT;
    reply.result_case = VMM__SYNIC__REPLY__RESULT_HYPERCALL_STATUS;
    reply.hypercall_status = &hs;
    return s_reply(s, msg, &reply);
}

/* Refuses a VTL other than 0 (KVM here has no VTLs); true when refused. */
static bool s_refuse_vtl(synic_t *s, const Vmm__Envelope *msg, Vmm__Vtl vtl)
{
    if (vtl == VMM__VTL__VTL0)
        return false;
    if (vtl == VMM__VTL__VTL1 || vtl == VMM__VTL__VTL2)
        s_refuse(s, msg, VMM__ERROR_CODE__NOT_SUPPORTED, "VTL%d: this synic serves VTL0 only",
                 (int)vtl);
    else
        s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "VTL %d does not exist", (int)vtl);
    return true;
}

static bool s_refuse_vp(synic_t *s, const Vmm__Envelope *msg, uint32_t vp)
{
    if (vp < s->vp_count)
        return false;
    s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "VP %u out of range: the partition has %u",
             vp, s->vp_count);
    return true;
}

static bool s_refuse_sint(synic_t *s, const Vmm__Envelope *msg, uint32_t sint)
{
    if (sint < SYNIC_SINTS)
        return false;
    s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
             "SINT %u out of range: a VP has SINTs 0 to %d", sint, SYNIC_SINTS - 1);
    return true;
}

static const char *s_sender(const Vmm__Envelope *msg)
{
    return msg->sender ? msg->sender : "";
}

/* ---- Host ports and what the guest sends them ---------------------------------- */

/* A port was made, moved or dropped: the tables leave for a split synic's
 * VPs now, before the owner's reply, not coalesced at the turn's end. They
 * reach a VP's actor on central's own connection, so what the owner or the
 * guest sends that actor after the reply, over another, may come first:
 * for that moment a port just made is asked of central (which has it), and
 * one just dropped or moved still takes the VP's signals. */
static void s_ports_changed(synic_t *s)
{
    if (s->role == SYNIC_CENTRAL) {
        synic_push_ports(s);
        rt_flush(s->self);
    }
}

static synic_host_port_t *s_host_port_by_connection(synic_t *s, uint32_t connection_id)
{
    for (size_t i = 0; i < s->n_host_ports; i++)
        if (s->host_ports[i].connection_id == connection_id)
            return &s->host_ports[i];
    return NULL;
}

/* Finds the port of connection_id the guest (at vtl) may reach: a status
 * other than success says why not. */
static uint32_t s_host_port_for(synic_t *s, uint32_t vtl, uint32_t connection_id, bool message,
                                synic_host_port_t **port)
{
    *port = s_host_port_by_connection(s, connection_id);
    if (!*port)
        return SYNIC_HV_STATUS_INVALID_CONNECTION_ID;
    if ((*port)->message != message) /* TLFS: not a port of that type */
        return SYNIC_HV_STATUS_INVALID_PORT_ID;
    if (vtl < (*port)->minimum_vtl)
        return SYNIC_HV_STATUS_ACCESS_DENIED;
    return SYNIC_HV_STATUS_SUCCESS;
}

static uint32_t s_send_event(synic_t *s, Vmm__Synic__Event *event, const char *target)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_EVENT;
    env.synic_event = event;
    int rc = rt_send(s->self, target, &env);
    if (!rc)
        return SYNIC_HV_STATUS_SUCCESS;
    s->counts.unsent++;
    rt_log(rt_actor_rt(s->self), s->self, RT_LOG_WARN, "sending to %s: %s", target,
           strerror(-rc));
    return SYNIC_HV_STATUS_INSUFFICIENT_BUFFERS;
}

/* The guest signalled flag of connection_id (HvSignalEvent, a monitor). */
static uint32_t s_route_event(synic_t *s, uint32_t vtl, uint32_t connection_id, uint32_t flag)
{
    synic_host_port_t *port;
    uint32_t status = s_host_port_for(s, vtl, connection_id, false, &port);
    if (!port && s->role == SYNIC_VP) /* not in its table yet */
        return synic_central_route(s, vtl, connection_id, flag, NULL, 0, 0);
    if (status)
        return status;
    if (flag >= SYNIC_EVENT_FLAGS) /* a port has at most a SIEF area's flags */
        return SYNIC_HV_STATUS_INVALID_PARAMETER;
    Vmm__Synic__HostEventSignalled signalled = VMM__SYNIC__HOST_EVENT_SIGNALLED__INIT;
    signalled.handle = port->handle;
    signalled.connection_id = connection_id;
    signalled.flag = flag;
    Vmm__Synic__Event event = VMM__SYNIC__EVENT__INIT;
    event.event_case = VMM__SYNIC__EVENT__EVENT_HOST_EVENT_SIGNALLED;
    event.host_event_signalled = &signalled;
    status = s_send_event(s, &event, port->target);
    if (!status)
        s->counts.host_events++;
    return status;
}

/* TLFS HvPostMessage: a type is non-zero with bit 31 clear (the
 * hypervisor's), a payload at most 240 bytes. */
static uint32_t s_check_guest_message(uint32_t type, uint64_t size)
{
    if (type == SYNIC_HVMSG_NONE || (type & 0x80000000u) || size > SYNIC_PAYLOAD_MAX)
        return SYNIC_HV_STATUS_INVALID_PARAMETER;
    return SYNIC_HV_STATUS_SUCCESS;
}

/* The guest posted a message to connection_id (HvPostMessage). */
static uint32_t s_route_message(synic_t *s, uint32_t vtl, uint32_t connection_id, uint32_t type,
                                const uint8_t *payload, uint32_t size)
{
    uint32_t status = s_check_guest_message(type, size);
    if (status)
        return status;
    synic_host_port_t *port;
    status = s_host_port_for(s, vtl, connection_id, true, &port);
    if (!port && s->role == SYNIC_VP)
        return synic_central_route(s, vtl, connection_id, 0, payload, type, size);
    if (status)
        return status;
    Vmm__Synic__HostMessage host_message = VMM__SYNIC__HOST_MESSAGE__INIT;
    host_message.handle = port->handle;
    host_message.connection_id = connection_id;
    host_message.message_type = type;
    host_message.payload.data = (uint8_t *)payload;
    host_message.payload.len = size;
    Vmm__Synic__Event event = VMM__SYNIC__EVENT__INIT;
    event.event_case = VMM__SYNIC__EVENT__EVENT_HOST_MESSAGE;
    event.host_message = &host_message;
    status = s_send_event(s, &event, port->target);
    if (!status)
        s->counts.host_messages++;
    return status;
}

static int s_register_host_port(synic_t *s, const Vmm__Envelope *msg, bool message,
                                uint32_t connection_id, Vmm__Vtl minimum_vtl, const char *target)
{
    if (connection_id > SYNIC_CONNECTION_ID_MAX)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "connection id 0x%x: a connection id has 24 bits", connection_id);
    if ((uint32_t)minimum_vtl > VMM__VTL__VTL2)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "minimum VTL %d does not exist",
                        (int)minimum_vtl);
    if (!target || !target[0] || strlen(target) > S_TARGET_MAX)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "a port needs a target actor name of 1 to %d characters", S_TARGET_MAX);
    const synic_host_port_t *taken = s_host_port_by_connection(s, connection_id);
    if (taken)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "connection id %u is taken by the %s port of %s", connection_id,
                        taken->message ? "message" : "event", taken->owner);
    synic_host_port_t *ports =
        realloc(s->host_ports, (s->n_host_ports + 1) * sizeof *s->host_ports);
    if (!ports)
        return -ENOMEM;
    s->host_ports = ports;
    synic_host_port_t *port = &ports[s->n_host_ports];
    *port = (synic_host_port_t){.handle = s->next_handle, .message = message,
                                .connection_id = connection_id,
                                .minimum_vtl = (uint32_t)minimum_vtl,
                                .target = strdup(target), .owner = strdup(s_sender(msg))};
    if (!port->target || !port->owner) {
        free(port->target);
        free(port->owner);
        return -ENOMEM;
    }
    s->n_host_ports++;
    s->next_handle++;
    s_ports_changed(s);
    return s_reply_handle(s, msg,
                          message ? VMM__SYNIC__REPLY__RESULT_HOST_MESSAGE_PORT
                                  : VMM__SYNIC__REPLY__RESULT_HOST_EVENT_PORT,
                          port->handle, 0);
}

static int s_unregister_host_port(synic_t *s, const Vmm__Envelope *msg, bool message,
                                  uint64_t handle)
{
    for (size_t i = 0; i < s->n_host_ports; i++) {
        synic_host_port_t *port = &s->host_ports[i];
        if (port->handle != handle || port->message != message)
            continue;
        if (strcmp(port->owner, s_sender(msg)))
            return s_refuse(s, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                            "host port %llu belongs to %s", (unsigned long long)handle,
                            port->owner);
        free(port->target);
        free(port->owner);
        s->host_ports[i] = s->host_ports[--s->n_host_ports];
        s_ports_changed(s);
        return s_ack(s, msg);
    }
    return s_refuse(s, msg, VMM__ERROR_CODE__NOT_FOUND, "no host %s port %llu",
                    message ? "message" : "event", (unsigned long long)handle);
}

/* ---- Hypercalls ------------------------------------------------------------------ */

/* HvSignalEvent: RDX, or 8 bytes at the GPA in RDX. */
static uint32_t s_hv_signal_event(synic_t *s, bool fast, uint64_t input)
{
    uint64_t value = input;
    if (!fast) {
        uint8_t bytes[8];
        /* TLFS: misaligned or outside the GPA space is an alignment error. */
        if ((input & 7) || synic_guest_read(s, input, bytes, sizeof bytes))
            return SYNIC_HV_STATUS_INVALID_ALIGNMENT;
        value = synic_get64(bytes);
    }
    if (value >> 48) /* RsvdZ */
        return SYNIC_HV_STATUS_INVALID_PARAMETER;
    return s_route_event(s, VMM__VTL__VTL0, (uint32_t)value, (uint32_t)(value >> 32) & 0xffff);
}

/* HvPostMessage: its input page at the GPA in RDX. */
static uint32_t s_hv_post_message(synic_t *s, bool fast, uint64_t input)
{
    if (fast) /* 256 bytes do not fit two registers */
        return SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT;
    if ((input & 7) || (input & (SYNIC_PAGE_SIZE - 1)) + SYNIC_POST_MESSAGE_INPUT_SIZE >
                           SYNIC_PAGE_SIZE)
        return SYNIC_HV_STATUS_INVALID_ALIGNMENT;
    uint8_t in[SYNIC_POST_MESSAGE_INPUT_SIZE];
    if (synic_guest_read(s, input, in, sizeof in))
        return SYNIC_HV_STATUS_INVALID_ALIGNMENT;
    if (synic_get32(in + 4)) /* RsvdZ */
        return SYNIC_HV_STATUS_INVALID_PARAMETER;
    uint32_t size = synic_get32(in + 12);
    if (size > SYNIC_PAYLOAD_MAX)
        return SYNIC_HV_STATUS_INVALID_PARAMETER;
    return s_route_message(s, VMM__VTL__VTL0, synic_get32(in), synic_get32(in + 8), in + 16,
                           size);
}

static uint32_t s_hypercall(synic_t *s, uint64_t control, uint64_t input)
{
    uint32_t code = (uint32_t)(control & SYNIC_HYPERCALL_CODE_MASK);
    if (code != SYNIC_HVCALL_POST_MESSAGE && code != SYNIC_HVCALL_SIGNAL_EVENT)
        return SYNIC_HV_STATUS_INVALID_HYPERCALL_CODE;
    /* Both are simple calls: no rep count, start or variable header. */
    if (control & (SYNIC_HYPERCALL_RESERVED_MASK | SYNIC_HYPERCALL_VARHEAD_MASK |
                   SYNIC_HYPERCALL_REP_COUNT_MASK | SYNIC_HYPERCALL_REP_START_MASK))
        return SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT;
    bool fast = control & SYNIC_HYPERCALL_FAST;
    if (code == SYNIC_HVCALL_SIGNAL_EVENT)
        return s_hv_signal_event(s, fast, input);
    return s_hv_post_message(s, fast, input);
}

static int s_on_hypercall(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__Hypercall *op)
{
    if (s_refuse_vp(s, msg, op->vp))
        return 0;
    uint32_t status = s_hypercall(s, op->control, op->input);
    s->counts.hypercalls++;
    if (status)
        s->counts.hypercall_errors++;
    Vmm__Synic__HypercallResult result = VMM__SYNIC__HYPERCALL_RESULT__INIT;
    result.rax = status; /* simple calls complete no reps */
    Vmm__Synic__Reply reply = VMM__SYNIC__REPLY__INIT;
    reply.result_case = VMM__SYNIC__REPLY__RESULT_HYPERCALL_RESULT;
    reply.hypercall_result = &result;
    return s_reply(s, msg, &reply);
}

static int s_on_access_msr(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__AccessMsr *op)
{
    if (s_refuse_vp(s, msg, op->vp))
        return 0;
    Vmm__Synic__MsrResult result = VMM__SYNIC__MSR_RESULT__INIT;
    int rc;
    if (op->write) {
        s->counts.msr_writes++;
        rc = synic_msr_write(s, op->vp, op->index, op->value);
    } else {
        s->counts.msr_reads++;
        rc = synic_msr_read(s, op->vp, op->index, &result.value);
    }
    if (rc) {
        s->counts.msr_gp++;
        result.gp = true;
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_DEBUG, "#GP for VP %u %s MSR 0x%x",
               op->vp, op->write ? "writing" : "reading", op->index);
    }
    Vmm__Synic__Reply reply = VMM__SYNIC__REPLY__INIT;
    reply.result_case = VMM__SYNIC__REPLY__RESULT_MSR_RESULT;
    reply.msr_result = &result;
    return s_reply(s, msg, &reply);
}

static int s_on_signal_event(synic_t *s, const Vmm__Envelope *msg,
                             const Vmm__Synic__SignalEvent *op)
{
    if (s_refuse_vtl(s, msg, op->vtl))
        return 0;
    return s_reply_status(s, msg, s_route_event(s, op->vtl, op->connection_id, op->flag));
}

static int s_on_handle_post_message(synic_t *s, const Vmm__Envelope *msg,
                                    const Vmm__Synic__HandlePostMessage *op)
{
    if (s_refuse_vtl(s, msg, op->vtl))
        return 0;
    uint32_t status = op->payload.len > SYNIC_PAYLOAD_MAX
                          ? SYNIC_HV_STATUS_INVALID_PARAMETER
                          : s_route_message(s, op->vtl, op->connection_id, op->message_type,
                                            op->payload.data, (uint32_t)op->payload.len);
    return s_reply_status(s, msg, status);
}

/* ---- Host to guest ----------------------------------------------------------------- */

static int s_on_post_message(synic_t *s, const Vmm__Envelope *msg,
                             const Vmm__Synic__PostMessage *op)
{
    if (s_refuse_vtl(s, msg, op->vtl) || s_refuse_vp(s, msg, op->vp) ||
        s_refuse_sint(s, msg, op->sint))
        return 0;
    if (op->message_type == SYNIC_HVMSG_NONE)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "message type 0 marks a free slot: a message needs another");
    if (op->payload.len > SYNIC_PAYLOAD_MAX)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "a payload of %zu bytes: at most %u fit a message", op->payload.len,
                        SYNIC_PAYLOAD_MAX);
    int rc = synic_post(s, op->vp, op->sint, op->message_type, op->payload.data,
                        (uint32_t)op->payload.len);
    if (rc == -EBUSY)
        return s_refuse(s, msg, VMM__ERROR_CODE__BUSY,
                        "%u messages wait for the slot of VP %u SINT %u already",
                        s->queue_limit, op->vp, op->sint);
    return rc ? rc : s_ack(s, msg);
}

static int s_on_assert_sint(synic_t *s, const Vmm__Envelope *msg,
                            const Vmm__Synic__AssertSint *op)
{
    if (s_refuse_vtl(s, msg, op->vtl) || s_refuse_vp(s, msg, op->vp) ||
        s_refuse_sint(s, msg, op->sint))
        return 0;
    synic_assert_sint(s, op->vp, op->sint);
    return s_ack(s, msg);
}

static synic_guest_port_t *s_guest_port(synic_t *s, uint64_t handle)
{
    for (size_t i = 0; i < s->n_guest_ports; i++)
        if (s->guest_ports[i].handle == handle)
            return &s->guest_ports[i];
    return NULL;
}

static int s_on_new_guest_event_port(synic_t *s, const Vmm__Envelope *msg,
                                     const Vmm__Synic__NewGuestEventPort *op)
{
    if (s_refuse_vtl(s, msg, op->vtl) || s_refuse_vp(s, msg, op->vp) ||
        s_refuse_sint(s, msg, op->sint))
        return 0;
    if (op->flag >= SYNIC_EVENT_FLAGS)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "event flag %u out of range: a SINT has flags 0 to %u", op->flag,
                        SYNIC_EVENT_FLAGS - 1);
    synic_guest_port_t *ports =
        realloc(s->guest_ports, (s->n_guest_ports + 1) * sizeof *s->guest_ports);
    if (!ports)
        return -ENOMEM;
    s->guest_ports = ports;
    synic_guest_port_t *port = &ports[s->n_guest_ports];
    *port = (synic_guest_port_t){.handle = s->next_handle, .vp = op->vp, .sint = op->sint,
                                 .flag = op->flag, .owner = strdup(s_sender(msg))};
    if (!port->owner)
        return -ENOMEM;
    s->n_guest_ports++;
    s->next_handle++;
    s_ports_changed(s);
    return s_reply_handle(s, msg, VMM__SYNIC__REPLY__RESULT_GUEST_EVENT_PORT, port->handle,
                          op->vp);
}

/* Hands a signal for another VP's port to that VP's actor, which has the
 * port in its table (central sent it there first). A caller waiting on
 * this thread gets the Ack once it is sent: nothing but a port dropped
 * meanwhile could fail it there. */
static int s_signal_elsewhere(synic_t *s, const Vmm__Envelope *msg, uint32_t vp)
{
    char to[256];
    if (synic_vp_actor(to, sizeof to, s->central, vp))
        return s_refuse(s, msg, VMM__ERROR_CODE__INTERNAL, "no name for VP %u's synic", vp);
    /* A VP's actor asking central waits for the answer, and VP vp's may
     * be that one: it must not wait for vp's. */
    size_t n = strlen(s->central);
    bool from_vp = !strncmp(s_sender(msg), s->central, n) && !strncmp(s_sender(msg) + n, "/vp/", 4);
    if (from_vp && msg->request_id) {
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
        env.synic_request = msg->synic_request;
        s->counts.passed_on++;
        if (rt_send(s->self, to, &env))
            return s_refuse(s, msg, VMM__ERROR_CODE__INTERNAL, "cannot reach %s", to);
        return s_ack(s, msg);
    }
    return synic_pass(s, msg, to, SYNIC_PASS_ACK);
}

static int s_on_signal_guest_event_port(synic_t *s, const Vmm__Envelope *msg,
                                        const Vmm__Synic__SignalGuestEventPort *op)
{
    const synic_guest_port_t *port = s_guest_port(s, op->handle);
    /* A VP's table may not have a new port yet: central knows it. */
    if (!port && s->role == SYNIC_VP && strcmp(s_sender(msg), s->central))
        return synic_pass(s, msg, s->central, SYNIC_PASS_CALL);
    if (!port)
        return s_refuse(s, msg, VMM__ERROR_CODE__NOT_FOUND, "no guest event port %llu",
                        (unsigned long long)op->handle);
    if (!synic_owns(s, port->vp))
        return s_signal_elsewhere(s, msg, port->vp);
    synic_signal_flag(s, port->vp, port->sint, port->flag);
    return s_ack(s, msg);
}

/* Finds a guest event port its owner is changing; NULL when refused. */
static synic_guest_port_t *s_owned_guest_port(synic_t *s, const Vmm__Envelope *msg,
                                              uint64_t handle)
{
    synic_guest_port_t *port = s_guest_port(s, handle);
    if (!port)
        s_refuse(s, msg, VMM__ERROR_CODE__NOT_FOUND, "no guest event port %llu",
                 (unsigned long long)handle);
    else if (strcmp(port->owner, s_sender(msg)))
        s_refuse(s, msg, VMM__ERROR_CODE__PERMISSION_DENIED, "guest event port %llu belongs to %s",
                 (unsigned long long)handle, port->owner);
    else
        return port;
    return NULL;
}

static int s_on_retarget_guest_event_port(synic_t *s, const Vmm__Envelope *msg,
                                          const Vmm__Synic__RetargetGuestEventPort *op)
{
    synic_guest_port_t *port = s_owned_guest_port(s, msg, op->handle);
    if (!port || s_refuse_vp(s, msg, op->vp))
        return 0;
    bool has_sint = op->opt_sint_case == VMM__SYNIC__RETARGET_GUEST_EVENT_PORT__OPT_SINT_SINT;
    if (has_sint && s_refuse_sint(s, msg, op->sint))
        return 0;
    port->vp = op->vp;
    if (has_sint)
        port->sint = op->sint;
    s_ports_changed(s);
    return s_ack(s, msg);
}

static int s_on_unregister_guest_event_port(synic_t *s, const Vmm__Envelope *msg,
                                            const Vmm__Synic__UnregisterGuestEventPort *op)
{
    synic_guest_port_t *port = s_owned_guest_port(s, msg, op->handle);
    if (!port)
        return 0;
    free(port->owner);
    *port = s->guest_ports[--s->n_guest_ports];
    s_ports_changed(s);
    return s_ack(s, msg);
}

/* ---- Monitor page -------------------------------------------------------------------- */

static void s_on_monitor_timer(rt_actor_t *self, uint64_t id);

/* Polls while a page is set and monitors watch it: the next poll one
 * interval from now. */
static void s_monitor_arm(synic_t *s)
{
    if (!s->monitor_poll_ns)
        s->monitor_poll_ns = S_MONITOR_POLL_NS;
    if (!s->monitor_page_set || !s->n_monitors) {
        rt_timer_cancel(s->self, SYNIC_RT_MONITOR);
        return;
    }
    int rc = rt_timer_set(s->self, SYNIC_RT_MONITOR,
                          rt_now_ns(s->self) + (uint64_t)s->monitor_poll_ns, s_on_monitor_timer);
    if (rc)
        rt_log(rt_actor_rt(s->self), s->self, RT_LOG_ERROR, "arming the monitor poll: %s",
               strerror(-rc));
}

static void s_monitor_masks(synic_t *s)
{
    memset(s->monitor_mask, 0, sizeof s->monitor_mask);
    for (size_t i = 0; i < s->n_monitors; i++) {
        uint32_t id = s->monitors[i].monitor_id;
        s->monitor_mask[id / 32] |= 1u << (id % 32);
    }
}

static const synic_monitor_t *s_monitor_by_id(const synic_t *s, uint32_t monitor_id)
{
    for (size_t i = 0; i < s->n_monitors; i++)
        if (s->monitors[i].monitor_id == monitor_id)
            return &s->monitors[i];
    return NULL;
}

/* Clears the bits seen of one trigger group, then signals those it
 * cleared: at once, so that a bit the guest sets meanwhile (with a locked
 * instruction) is neither lost nor signalled before it is seen. */
static void s_monitor_group(synic_t *s, uint32_t group, uint32_t pending)
{
    uint32_t seen = pending & s->monitor_mask[group];
    if (!seen)
        return;
    uint64_t gpa = s->monitor_gpa + SYNIC_MONITOR_PENDING_OFFSET(group), old;
    if (synic_guest_update(s, gpa, 4, ~(uint64_t)seen, 0, &old))
        return; /* not cleared: signalled next time */
    seen &= (uint32_t)old;
    for (uint32_t bit = 0; bit < 32; bit++) {
        if (!(seen & (1u << bit)))
            continue;
        const synic_monitor_t *m = s_monitor_by_id(s, group * 32 + bit);
        if (!m || s_route_event(s, VMM__VTL__VTL0, m->connection_id, 0))
            s->counts.monitor_unrouted++;
        else
            s->counts.monitor_signals++;
    }
}

/* Polls as often as the least latency the guest set in the page for a
 * registered monitor asks (TLFS: a set bit is noticed within its group's
 * latency), between S_MONITOR_POLL_MIN_NS and S_MONITOR_POLL_NS. */
static void s_monitor_follow_latency(synic_t *s)
{
    uint8_t latency[2 * SYNIC_MONITOR_IDS];
    if (synic_guest_read(s, s->monitor_gpa + SYNIC_MONITOR_LATENCY_OFFSET(0), latency,
                         sizeof latency))
        return;
    long poll_ns = S_MONITOR_POLL_NS;
    for (size_t i = 0; i < s->n_monitors; i++) {
        uint32_t id = s->monitors[i].monitor_id;
        long ns = (long)(latency[2 * id] | latency[2 * id + 1] << 8) * 100;
        if (ns && ns < poll_ns)
            poll_ns = ns < S_MONITOR_POLL_MIN_NS ? S_MONITOR_POLL_MIN_NS : ns;
    }
    if (poll_ns != s->monitor_poll_ns) {
        s->monitor_poll_ns = poll_ns;
        s_monitor_arm(s);
    }
}

static void s_on_monitor_timer(rt_actor_t *self, uint64_t id)
{
    (void)id;
    synic_t *s = rt_actor_state(self);
    if (!s->monitor_page_set || !s->n_monitors)
        return;
    s_monitor_arm(s); /* the next poll, unless the latency changes it */
    s->counts.monitor_polls++;
    uint8_t groups[8 * SYNIC_MONITOR_GROUPS];
    if (synic_guest_read(s, s->monitor_gpa + SYNIC_MONITOR_PENDING_OFFSET(0), groups,
                         sizeof groups))
        return;
    for (uint32_t g = 0; g < SYNIC_MONITOR_GROUPS; g++)
        s_monitor_group(s, g, synic_get32(groups + 8 * g));
    s_monitor_follow_latency(s);
}

static int s_on_register_monitor(synic_t *s, const Vmm__Envelope *msg,
                                 const Vmm__Synic__RegisterMonitor *op)
{
    if (op->monitor_id >= SYNIC_MONITOR_IDS)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "monitor id %u out of range: the page has ids 0 to %d", op->monitor_id,
                        SYNIC_MONITOR_IDS - 1);
    if (op->connection_id > SYNIC_CONNECTION_ID_MAX)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "connection id 0x%x: a connection id has 24 bits", op->connection_id);
    const synic_monitor_t *taken = s_monitor_by_id(s, op->monitor_id);
    if (taken)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "monitor id %u is registered by %s already", op->monitor_id,
                        taken->owner);
    synic_monitor_t *monitors = realloc(s->monitors, (s->n_monitors + 1) * sizeof *s->monitors);
    if (!monitors)
        return -ENOMEM;
    s->monitors = monitors;
    synic_monitor_t *m = &monitors[s->n_monitors];
    *m = (synic_monitor_t){.handle = s->next_handle, .monitor_id = op->monitor_id,
                           .connection_id = op->connection_id, .owner = strdup(s_sender(msg))};
    if (!m->owner)
        return -ENOMEM;
    s->n_monitors++;
    s->next_handle++;
    s_monitor_masks(s);
    s_monitor_arm(s);
    return s_reply_handle(s, msg, VMM__SYNIC__REPLY__RESULT_MONITOR, m->handle, 0);
}

static int s_on_unregister_monitor(synic_t *s, const Vmm__Envelope *msg,
                                   const Vmm__Synic__UnregisterMonitor *op)
{
    for (size_t i = 0; i < s->n_monitors; i++) {
        synic_monitor_t *m = &s->monitors[i];
        if (m->handle != op->handle)
            continue;
        if (strcmp(m->owner, s_sender(msg)))
            return s_refuse(s, msg, VMM__ERROR_CODE__PERMISSION_DENIED,
                            "monitor %llu belongs to %s", (unsigned long long)op->handle,
                            m->owner);
        free(m->owner);
        *m = s->monitors[--s->n_monitors];
        s_monitor_masks(s);
        s_monitor_arm(s);
        return s_ack(s, msg);
    }
    return s_refuse(s, msg, VMM__ERROR_CODE__NOT_FOUND, "no monitor %llu",
                    (unsigned long long)op->handle);
}

static int s_on_set_monitor_page(synic_t *s, const Vmm__Envelope *msg,
                                 const Vmm__Synic__SetMonitorPage *op)
{
    if (s_refuse_vtl(s, msg, op->vtl))
        return 0;
    bool set = op->opt_gpa_case == VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA_GPA;
    if (set && (op->gpa & (SYNIC_PAGE_SIZE - 1)))
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "monitor page 0x%llx is not page aligned", (unsigned long long)op->gpa);
    s->monitor_page_set = set;
    s->monitor_gpa = set ? op->gpa : 0;
    s_monitor_arm(s);
    return s_ack(s, msg);
}

/* ---- Dispatch ------------------------------------------------------------------------- */

static int s_on_simple_query(synic_t *s, const Vmm__Envelope *msg, bool monitor_support)
{
    Vmm__Synic__Reply reply = VMM__SYNIC__REPLY__INIT;
    Vmm__Synic__MonitorSupport support = VMM__SYNIC__MONITOR_SUPPORT__INIT;
    Vmm__Synic__PreferOsEvents prefer = VMM__SYNIC__PREFER_OS_EVENTS__INIT;
    if (monitor_support) {
        support.supported = true;
        reply.result_case = VMM__SYNIC__REPLY__RESULT_MONITOR_SUPPORT;
        reply.monitor_support = &support;
    } else {
        /* Signals go through this actor, not an eventfd a kernel dispatches. */
        prefer.prefer = false;
        reply.result_case = VMM__SYNIC__REPLY__RESULT_PREFER_OS_EVENTS;
        reply.prefer_os_events = &prefer;
    }
    return s_reply(s, msg, &reply);
}

/* The op's member: NULL when unset (a call within one executor can lend a
 * body with a case but no member). */
static const void *s_member(const Vmm__Synic__Request *req)
{
    switch (req->op_case) {
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT:
        return req->register_host_event_port;
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_EVENT_PORT:
        return req->unregister_host_event_port;
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT:
        return req->register_host_message_port;
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_MESSAGE_PORT:
        return req->unregister_host_message_port;
    case VMM__SYNIC__REQUEST__OP_SIGNAL_EVENT:
        return req->signal_event;
    case VMM__SYNIC__REQUEST__OP_HANDLE_POST_MESSAGE:
        return req->handle_post_message;
    case VMM__SYNIC__REQUEST__OP_POST_MESSAGE:
        return req->post_message;
    case VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT:
        return req->new_guest_event_port;
    case VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT:
        return req->signal_guest_event_port;
    case VMM__SYNIC__REQUEST__OP_RETARGET_GUEST_EVENT_PORT:
        return req->retarget_guest_event_port;
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_GUEST_EVENT_PORT:
        return req->unregister_guest_event_port;
    case VMM__SYNIC__REQUEST__OP_GET_PREFER_OS_EVENTS:
        return req->get_prefer_os_events;
    case VMM__SYNIC__REQUEST__OP_GET_MONITOR_SUPPORT:
        return req->get_monitor_support;
    case VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR:
        return req->register_monitor;
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_MONITOR:
        return req->unregister_monitor;
    case VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE:
        return req->set_monitor_page;
    case VMM__SYNIC__REQUEST__OP_ACCESS_MSR:
        return req->access_msr;
    case VMM__SYNIC__REQUEST__OP_HYPERCALL:
        return req->hypercall;
    case VMM__SYNIC__REQUEST__OP_ASSERT_SINT:
        return req->assert_sint;
    case VMM__SYNIC__REQUEST__OP_PORT_TABLE:
        return req->port_table;
    case VMM__SYNIC__REQUEST__OP_SET_TIME_BASE:
        return req->set_time_base;
    case VMM__SYNIC__REQUEST__OP_SAVE_STATE:
        return req->save_state;
    case VMM__SYNIC__REQUEST__OP_RESTORE_STATE:
        return req->restore_state;
    default:
        return NULL;
    }
}

/* Moving the time, saving and restoring come from the partition, or to a
 * VP's actor from central; refused (and false) otherwise. */
static bool s_from_owner(synic_t *s, const Vmm__Envelope *msg, const char *what)
{
    const char *from = s->role == SYNIC_VP ? s->central : s->partition;
    if (!strcmp(msg->sender, from))
        return true;
    s_refuse(s, msg, VMM__ERROR_CODE__PERMISSION_DENIED, "%s may not %s: only %s may",
             msg->sender, what, from);
    return false;
}

/* A synic request to VP vp's actor, from central, whose reply is body
 * kind `want` (left in *reply when given, for the caller to release). */
static int s_call_vp(synic_t *s, uint32_t vp, Vmm__Synic__Request *req, int want,
                     rt_msg_t *reply)
{
    char to[256];
    int rc = synic_vp_actor(to, sizeof to, rt_actor_name(s->self), vp);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    return rc ? rc
              : rt_call_expect(s->self, to, &env, want, reply, S_TIME_BASE_TIMEOUT_MS, NULL, 0);
}

/* The partition's (or, to a VP's actor, central's): central passes it on
 * to every VP's actor first, so that the answer means every one moved. */
static int s_on_set_time_base(synic_t *s, const Vmm__Envelope *msg,
                              const Vmm__Synic__SetTimeBase *op)
{
    if (!s_from_owner(s, msg, "move the reference time"))
        return 0;
    if (s->role == SYNIC_CENTRAL) {
        Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
        req.op_case = VMM__SYNIC__REQUEST__OP_SET_TIME_BASE;
        req.set_time_base = (Vmm__Synic__SetTimeBase *)op;
        for (uint32_t vp = 0; vp < s->vp_count; vp++) {
            int rc = s_call_vp(s, vp, &req, VMM__ENVELOPE__BODY_ACK, NULL);
            if (rc)
                return s_refuse(s, msg, rt_error_code(rc), "VP %u's actor did not move its "
                                "reference time: %s", vp, strerror(-rc));
        }
    }
    synic_time_rebase(s, op->ref_time, op->guest_tsc);
    return rt_reply_ack(s->self, msg);
}

static int s_on_save_state(synic_t *s, const Vmm__Envelope *msg)
{
    if (!s_from_owner(s, msg, "save the synic"))
        return 0;
    Vmm__Synic__SavedVp **vps = NULL;
    size_t n = 0;
    int rc = synic_vps_save(s, &vps, &n);
    if (rc)
        return rc;
    if (s->role == SYNIC_CENTRAL) { /* each VP's actor holds its VP */
        Vmm__Synic__SavedVp **all = calloc(s->vp_count ? s->vp_count : 1, sizeof *all);
        rc = all ? 0 : -ENOMEM;
        Vmm__Synic__SaveState op = VMM__SYNIC__SAVE_STATE__INIT;
        Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
        req.op_case = VMM__SYNIC__REQUEST__OP_SAVE_STATE;
        req.save_state = &op;
        for (uint32_t vp = 0; !rc && vp < s->vp_count; vp++) {
            rt_msg_t reply;
            if ((rc = s_call_vp(s, vp, &req, VMM__ENVELOPE__BODY_SYNIC_REPLY, &reply)))
                break;
            const Vmm__Synic__Reply *r = reply.env->synic_reply;
            if (r->result_case != VMM__SYNIC__REPLY__RESULT_SAVED_STATE ||
                r->saved_state->n_vps != 1)
                rc = -EIO;
            else { /* a copy of its own: the reply goes */
                uint8_t *buf = malloc(vmm__synic__saved_vp__get_packed_size(r->saved_state->vps[0]));
                if (buf) {
                    size_t len = vmm__synic__saved_vp__pack(r->saved_state->vps[0], buf);
                    all[n++] = vmm__synic__saved_vp__unpack(NULL, len, buf);
                    free(buf);
                }
                rc = buf && all[n - 1] ? 0 : -ENOMEM;
                if (buf && !all[n - 1])
                    n--;
            }
            rt_msg_release(&reply);
        }
        synic_saved_vps_free(vps, 0);
        vps = all;
        if (rc) {
            synic_saved_vps_free(vps, n);
            return s_refuse(s, msg, rt_error_code(rc), "a VP's actor did not save: %s",
                            strerror(-rc));
        }
    }
    Vmm__Synic__SavedState st = VMM__SYNIC__SAVED_STATE__INIT;
    if (s->role != SYNIC_VP) {
        st.guest_os_id = s->guest_os_id;
        st.hypercall = s->hypercall;
        st.reference_tsc = s->reference_tsc;
        st.tsc_sequence = s->tsc_sequence;
    }
    st.vps = vps;
    st.n_vps = n;
    Vmm__Synic__Reply r = VMM__SYNIC__REPLY__INIT;
    r.result_case = VMM__SYNIC__REPLY__RESULT_SAVED_STATE;
    r.saved_state = &st;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REPLY;
    env.synic_reply = &r;
    rc = rt_reply(s->self, msg, &env);
    synic_saved_vps_free(vps, n);
    return rc;
}

static int s_on_restore_state(synic_t *s, const Vmm__Envelope *msg,
                              const Vmm__Synic__RestoreState *op)
{
    if (!s_from_owner(s, msg, "restore the synic"))
        return 0;
    const Vmm__Synic__SavedState *st = op->state;
    if (!st)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no state given");
    char why[192];
    for (size_t i = 0; i < st->n_vps; i++) {
        const Vmm__Synic__SavedVp *v = st->vps[i];
        int rc;
        if (v->vp >= s->vp_count) {
            return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                            "a saved VP %u of a synic of %u", v->vp, s->vp_count);
        } else if (s->role == SYNIC_CENTRAL) {
            Vmm__Synic__SavedVp *one[1] = {(Vmm__Synic__SavedVp *)v};
            Vmm__Synic__SavedState part = VMM__SYNIC__SAVED_STATE__INIT;
            part.vps = one;
            part.n_vps = 1;
            Vmm__Synic__RestoreState rop = VMM__SYNIC__RESTORE_STATE__INIT;
            rop.state = &part;
            Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
            req.op_case = VMM__SYNIC__REQUEST__OP_RESTORE_STATE;
            req.restore_state = &rop;
            rc = s_call_vp(s, v->vp, &req, VMM__ENVELOPE__BODY_ACK, NULL);
            snprintf(why, sizeof why, "VP %u's actor did not restore: %s", v->vp,
                     strerror(-rc));
        } else {
            rc = synic_vp_restore(s, v, why, sizeof why);
        }
        if (rc)
            return s_refuse(s, msg, rt_error_code(rc), "%s", why);
    }
    if (s->role != SYNIC_VP) {
        s->guest_os_id = st->guest_os_id;
        s->hypercall = st->hypercall;
        s->reference_tsc = st->reference_tsc;
        s->tsc_sequence = st->tsc_sequence;
    }
    return rt_reply_ack(s->self, msg);
}

static int s_dispatch(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__Request *req)
{
    switch (req->op_case) {
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT: {
        const Vmm__Synic__RegisterHostEventPort *op = req->register_host_event_port;
        return s_register_host_port(s, msg, false, op->connection_id, op->minimum_vtl,
                                    op->target);
    }
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_EVENT_PORT:
        return s_unregister_host_port(s, msg, false, req->unregister_host_event_port->handle);
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT: {
        const Vmm__Synic__RegisterHostMessagePort *op = req->register_host_message_port;
        return s_register_host_port(s, msg, true, op->connection_id, op->minimum_vtl,
                                    op->target);
    }
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_MESSAGE_PORT:
        return s_unregister_host_port(s, msg, true, req->unregister_host_message_port->handle);
    case VMM__SYNIC__REQUEST__OP_SIGNAL_EVENT:
        return s_on_signal_event(s, msg, req->signal_event);
    case VMM__SYNIC__REQUEST__OP_HANDLE_POST_MESSAGE:
        return s_on_handle_post_message(s, msg, req->handle_post_message);
    case VMM__SYNIC__REQUEST__OP_POST_MESSAGE:
        return s_on_post_message(s, msg, req->post_message);
    case VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT:
        return s_on_new_guest_event_port(s, msg, req->new_guest_event_port);
    case VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT:
        return s_on_signal_guest_event_port(s, msg, req->signal_guest_event_port);
    case VMM__SYNIC__REQUEST__OP_RETARGET_GUEST_EVENT_PORT:
        return s_on_retarget_guest_event_port(s, msg, req->retarget_guest_event_port);
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_GUEST_EVENT_PORT:
        return s_on_unregister_guest_event_port(s, msg, req->unregister_guest_event_port);
    case VMM__SYNIC__REQUEST__OP_GET_PREFER_OS_EVENTS:
        return s_on_simple_query(s, msg, false);
    case VMM__SYNIC__REQUEST__OP_GET_MONITOR_SUPPORT:
        return s_on_simple_query(s, msg, true);
    case VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR:
        return s_on_register_monitor(s, msg, req->register_monitor);
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_MONITOR:
        return s_on_unregister_monitor(s, msg, req->unregister_monitor);
    case VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE:
        return s_on_set_monitor_page(s, msg, req->set_monitor_page);
    case VMM__SYNIC__REQUEST__OP_ACCESS_MSR:
        return s_on_access_msr(s, msg, req->access_msr);
    case VMM__SYNIC__REQUEST__OP_HYPERCALL:
        return s_on_hypercall(s, msg, req->hypercall);
    case VMM__SYNIC__REQUEST__OP_ASSERT_SINT:
        return s_on_assert_sint(s, msg, req->assert_sint);
    case VMM__SYNIC__REQUEST__OP_PORT_TABLE:
        return synic_take_ports(s, msg, req->port_table);
    case VMM__SYNIC__REQUEST__OP_SET_TIME_BASE:
        return s_on_set_time_base(s, msg, req->set_time_base);
    case VMM__SYNIC__REQUEST__OP_SAVE_STATE:
        return s_on_save_state(s, msg);
    case VMM__SYNIC__REQUEST__OP_RESTORE_STATE:
        return s_on_restore_state(s, msg, req->restore_state);
    default:
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "synic op %d is unknown",
                        (int)req->op_case);
    }
}

/* The VP a request is about, for those one VP's actor serves: its MSRs
 * (the partition-wide ones too, from its own VP), hypercalls, messages
 * and SINTs. */
static bool s_vp_of(const Vmm__Synic__Request *req, uint32_t *vp)
{
    switch (req->op_case) {
    case VMM__SYNIC__REQUEST__OP_POST_MESSAGE:
        *vp = req->post_message->vp;
        return true;
    case VMM__SYNIC__REQUEST__OP_ASSERT_SINT:
        *vp = req->assert_sint->vp;
        return true;
    case VMM__SYNIC__REQUEST__OP_HYPERCALL:
        *vp = req->hypercall->vp;
        return true;
    case VMM__SYNIC__REQUEST__OP_ACCESS_MSR:
        *vp = req->access_msr->vp;
        return true;
    default:
        return false;
    }
}

/* Which actor of a split synic serves the request: true when it was
 * handed on or refused here, false to serve it here. */
static bool s_elsewhere(synic_t *s, const Vmm__Envelope *msg, const Vmm__Synic__Request *req)
{
    uint32_t vp;
    bool about_vp = s_vp_of(req, &vp);
    char to[256];
    if (s->role == SYNIC_CENTRAL) {
        if (!about_vp || vp >= s->vp_count ||
            (req->op_case == VMM__SYNIC__REQUEST__OP_ACCESS_MSR &&
             synic_partition_wide_msr(req->access_msr->index)))
            return false;
        if (synic_vp_actor(to, sizeof to, rt_actor_name(s->self), vp))
            return false;
        synic_pass(s, msg, to, SYNIC_PASS_REFUSE);
        return true;
    }
    if (s->role != SYNIC_VP)
        return false;
    if (about_vp && !synic_owns(s, vp)) {
        if (synic_vp_actor(to, sizeof to, s->central, vp))
            snprintf(to, sizeof to, "%s", s->central);
        s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "this actor serves VP %u: send VP %u's requests to %s", s->vp_first, vp, to);
        return true;
    }
    switch (req->op_case) {
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT:
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_EVENT_PORT:
    case VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT:
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_HOST_MESSAGE_PORT:
    case VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT:
    case VMM__SYNIC__REQUEST__OP_RETARGET_GUEST_EVENT_PORT:
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_GUEST_EVENT_PORT:
    case VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR:
    case VMM__SYNIC__REQUEST__OP_UNREGISTER_MONITOR:
    case VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE:
        s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "ports and monitors are %s's: send op %d there", s->central, (int)req->op_case);
        return true;
    default:
        return false;
    }
}

static int s_synic_request(synic_t *s, const Vmm__Envelope *msg)
{
    const Vmm__Synic__Request *req = msg->synic_request;
    if (!req || req->op_case == VMM__SYNIC__REQUEST__OP__NOT_SET || !s_member(req))
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "a synic_request with no op");
    /* Only what says "may be sent one-way" may go unanswered. */
    if (!msg->request_id && req->op_case != VMM__SYNIC__REQUEST__OP_POST_MESSAGE &&
        req->op_case != VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT &&
        req->op_case != VMM__SYNIC__REQUEST__OP_ASSERT_SINT &&
        req->op_case != VMM__SYNIC__REQUEST__OP_PORT_TABLE)
        return s_refuse(s, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                        "synic op %d sent one-way: it must be a request", (int)req->op_case);
    return s_elsewhere(s, msg, req) ? 0 : s_dispatch(s, msg, req);
}

static int s_on_synic_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    synic_t *s = rt_actor_state(self);
    pthread_mutex_lock(&s->lock);
    int rc = s_synic_request(s, msg);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/*
 * A VP's actor takes event signals for its own VP's ports, and SINT
 * assertions for its VP, on the sender's thread when it comes from
 * another executor (rt_actor_ops_t.shared_handlers): the flag goes into
 * the mapped SIEF page and the MSI to KVM from there, and the VP's thread
 * is not woken. Anything else, or when the actor is busy on its own
 * thread, or guest RAM is not mapped yet, takes the usual path.
 */
static int s_on_shared_synic_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    synic_t *s = rt_actor_state(self);
    const Vmm__Synic__Request *req = msg->synic_request;
    if (!s || s->role != SYNIC_VP || !req || !s_member(req) ||
        (req->op_case != VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT &&
         req->op_case != VMM__SYNIC__REQUEST__OP_ASSERT_SINT) ||
        pthread_mutex_trylock(&s->lock))
        return RT_NOT_SHARED;
    int rc = RT_NOT_SHARED;
    if (s->guest.mapped && !s->guest.by_message) {
        if (req->op_case == VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT) {
            const synic_guest_port_t *port = s_guest_port(s, req->signal_guest_event_port->handle);
            if (port && synic_owns(s, port->vp)) {
                synic_signal_flag(s, port->vp, port->sint, port->flag);
                rc = s_ack(s, msg);
            }
        } else {
            const Vmm__Synic__AssertSint *op = req->assert_sint;
            if (op->vtl == VMM__VTL__VTL0 && synic_owns(s, op->vp) && op->sint < SYNIC_SINTS) {
                synic_assert_sint(s, op->vp, op->sint);
                rc = s_ack(s, msg);
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- Lifecycle ------------------------------------------------------------------------ */

static void s_release(synic_t *s)
{
    synic_passes_free(s);
    synic_vps_free(s);
    synic_ports_clear(s);
    for (size_t i = 0; i < s->n_monitors; i++)
        free(s->monitors[i].owner);
    free(s->monitors);
    device_guest_fini(&s->guest);
    free(s->central);
    free(s->partition);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const synic_config_t *cfg = arg;
    if (!cfg || !cfg->partition || !cfg->partition[0] || !cfg->vp_count ||
        cfg->vp_count > SYNIC_MAX_VPS || cfg->role > SYNIC_VP ||
        (cfg->role == SYNIC_VP && (!cfg->central || !*cfg->central || cfg->vp >= cfg->vp_count)))
        return -EINVAL;
    synic_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->self = self;
    pthread_mutex_init(&s->lock, NULL);
    s->next_handle = 1;
    s->vp_count = cfg->vp_count;
    s->queue_limit = cfg->queue_limit ? cfg->queue_limit : 64;
    s->role = cfg->role;
    s->vp_first = cfg->role == SYNIC_VP ? cfg->vp : 0;
    s->n_owned = cfg->role == SYNIC_WHOLE ? cfg->vp_count : cfg->role == SYNIC_VP ? 1 : 0;
    /* A replay has the trace's guest RAM, not the file's. */
    s->guest.no_file = rt_actor_replaying(self);
    int rc = synic_time_init(s, cfg);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    s->partition = strdup(cfg->partition);
    s->central = strdup(cfg->role == SYNIC_VP ? cfg->central : rt_actor_name(self));
    s->vps = calloc(s->n_owned ? s->n_owned : 1, sizeof *s->vps);
    if (!s->partition || !s->central || !s->vps)
        goto fail;
    for (uint32_t v = 0; v < s->n_owned; v++)
        for (int sint = 0; sint < SYNIC_SINTS; sint++)
            s->vps[v].sint[sint] = SYNIC_SINT_MASKED;
    rt_actor_set_state(self, s);
    return 0;

fail:
    s_release(s);
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    s_release(rt_actor_state(self));
    rt_actor_set_state(self, NULL);
}

#define S_COUNT(node, s, field) \
    rt_inspect_add(node, #field, "%llu", (unsigned long long)(s)->counts.field)

static void s_inspect_locked(synic_t *s, Vmm__Rt__InspectNode *node);

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    synic_t *s = rt_actor_state(self);
    pthread_mutex_lock(&s->lock);
    s_inspect_locked(s, node);
    pthread_mutex_unlock(&s->lock);
}

static void s_inspect_locked(synic_t *s, Vmm__Rt__InspectNode *node)
{
    static const char *const roles[] = {"whole", "central", "vp"};
    rt_inspect_add(node, "role", "%s", roles[s->role]);
    rt_inspect_add(node, "partition", "%s", s->partition);
    rt_inspect_add(node, "vp_count", "%u", s->vp_count);
    rt_inspect_add(node, "guest_ram", "%s", device_guest_state(&s->guest));
    rt_inspect_add(node, "queue_limit", "%u", s->queue_limit);
    rt_inspect_add(node, "tsc_khz", "%llu", (unsigned long long)s->tsc_khz);
    rt_inspect_add(node, "reference_time", "%llu", (unsigned long long)synic_ref_time(s));
    rt_inspect_add(node, "guest_os_id", "0x%llx", (unsigned long long)s->guest_os_id);
    rt_inspect_add(node, "hypercall", "0x%llx", (unsigned long long)s->hypercall);
    rt_inspect_add(node, "reference_tsc", "0x%llx", (unsigned long long)s->reference_tsc);
    rt_inspect_add(node, "host_ports", "%zu", s->n_host_ports);
    rt_inspect_add(node, "guest_ports", "%zu", s->n_guest_ports);
    rt_inspect_add(node, "monitors", "%zu", s->n_monitors);
    rt_inspect_add(node, "monitor_poll_us", "%ld",
                   (s->monitor_poll_ns ? s->monitor_poll_ns : S_MONITOR_POLL_NS) / 1000);
    if (s->monitor_page_set)
        rt_inspect_add(node, "monitor_page", "0x%llx", (unsigned long long)s->monitor_gpa);
    else
        rt_inspect_add(node, "monitor_page", "none");
    S_COUNT(node, s, msr_reads);
    S_COUNT(node, s, msr_writes);
    S_COUNT(node, s, msr_gp);
    S_COUNT(node, s, hypercalls);
    S_COUNT(node, s, hypercall_errors);
    S_COUNT(node, s, posted);
    S_COUNT(node, s, busy);
    S_COUNT(node, s, delivered);
    S_COUNT(node, s, eoms);
    S_COUNT(node, s, events_signalled);
    S_COUNT(node, s, events_coalesced);
    S_COUNT(node, s, sints_asserted);
    S_COUNT(node, s, events_deferred);
    S_COUNT(node, s, msis);
    S_COUNT(node, s, unsent);
    S_COUNT(node, s, host_events);
    S_COUNT(node, s, host_messages);
    S_COUNT(node, s, timer_expiries);
    S_COUNT(node, s, timer_missed);
    S_COUNT(node, s, monitor_polls);
    S_COUNT(node, s, monitor_signals);
    S_COUNT(node, s, monitor_unrouted);
    S_COUNT(node, s, memory_errors);
    S_COUNT(node, s, bad_requests);
    S_COUNT(node, s, unsupported);
    S_COUNT(node, s, passed_on);
    S_COUNT(node, s, tables_pushed);
    S_COUNT(node, s, tables_taken);
    synic_vps_inspect(s, node);
}

/* ---- Traces and replays ---------------------------------------------------------------- */

static int s_recipe(const void *arg, ProtobufCBinaryData *out)
{
    const synic_config_t *cfg = arg;
    if (!cfg)
        return -EINVAL;
    Vmm__Synic__SynicRecipe r = VMM__SYNIC__SYNIC_RECIPE__INIT;
    r.partition = (char *)(cfg->partition ? cfg->partition : "");
    r.vp_count = cfg->vp_count;
    r.tsc_khz = cfg->tsc_khz;
    r.tsc_offset = cfg->tsc_offset;
    r.tsc_at_zero = cfg->tsc_at_zero;
    r.queue_limit = cfg->queue_limit;
    r.role = (uint32_t)cfg->role;
    r.vp = cfg->vp;
    r.central = (char *)(cfg->central ? cfg->central : "");
    return rt_pb_pack(&r.base, out);
}

static int s_replay_start(rt_replay_config_t *cfg, const ProtobufCMessage *recipe, void *ctx,
                          rt_replay_result_t *out, char *err, size_t errlen)
{
    (void)ctx;
    const Vmm__Synic__SynicRecipe *r = (const Vmm__Synic__SynicRecipe *)recipe;
    synic_config_t scfg = {.partition = r->partition, .vp_count = r->vp_count,
                           .tsc_khz = r->tsc_khz, .tsc_offset = r->tsc_offset,
                           .tsc_at_zero = r->tsc_at_zero, .queue_limit = r->queue_limit,
                           .role = (synic_role_t)r->role, .vp = r->vp, .central = r->central};
    cfg->ops = &synic_ops;
    cfg->arg = &scfg;
    return rt_replay(cfg, out, err, errlen);
}

int synic_replay(const char *trace, const char *actor, rt_replay_result_t *out, char *err,
                 size_t errlen)
{
    return rt_replay_recipe(trace, actor, "synic", &vmm__synic__synic_recipe__descriptor,
                            s_replay_start, NULL, out, err, errlen);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_SYNIC_REQUEST, s_on_synic_request},
};

static const rt_handler_t s_shared_handlers[] = {
    {VMM__ENVELOPE__BODY_SYNIC_REQUEST, s_on_shared_synic_request},
};

const rt_actor_ops_t synic_ops = {
    .kind = "synic",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .shared_handlers = s_shared_handlers,
    .n_shared_handlers = sizeof s_shared_handlers / sizeof *s_shared_handlers,
    .on_reply = synic_on_reply,
    .inspect = s_inspect,
    .recipe = s_recipe,
};
