#define _GNU_SOURCE /* F_GET_SEALS */
#include "actors/devices/device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long init waits for the partition's answer, and a guest memory
 * access for each of its messages. */
#define S_REGISTER_TIMEOUT_MS 5000
#define S_GUEST_TIMEOUT_MS 5000
/* The most one ReadGuestMemory or WriteGuestMemory carries (devices.proto). */
#define S_MAX_GUEST_IO 65536u

/* The errno a refusal stands for. */
static int s_errno_of(Vmm__ErrorCode code)
{
    switch (code) {
    case VMM__ERROR_CODE__NOT_SUPPORTED:
        return -ENOTSUP;
    case VMM__ERROR_CODE__INVALID_ARGUMENT:
        return -EINVAL;
    case VMM__ERROR_CODE__NOT_FOUND:
        return -ENOENT;
    case VMM__ERROR_CODE__BUSY:
        return -EBUSY;
    case VMM__ERROR_CODE__TIMEOUT:
        return -ETIMEDOUT;
    case VMM__ERROR_CODE__PERMISSION_DENIED:
        return -EPERM;
    default:
        return -EIO;
    }
}

/* Checks the partition's answer to RegisterDevice. */
static int s_registered(device_t *dev, rt_actor_t *self, const Vmm__Envelope *reply)
{
    rt_t *rt = rt_actor_rt(self);
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_log(rt, self, RT_LOG_ERROR, "%s refused the registration: %s", dev->partition,
               reply->error->text);
        return s_errno_of(reply->error->code);
    }
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_REGISTRATION) {
        rt_log(rt, self, RT_LOG_ERROR, "%s answered the registration with body kind %d",
               dev->partition, reply->body_case);
        return -EPROTO;
    }
    const Vmm__Devices__DeviceRegistration *reg = reply->device_reply->registration;
    /* required = true: a success grants every range asked for. */
    if (reg->n_ports != dev->n_ranges) {
        rt_log(rt, self, RT_LOG_ERROR, "%s granted %zu port ranges of the %zu asked for",
               dev->partition, reg->n_ports, dev->n_ranges);
        return -EPROTO;
    }
    dev->handle = reg->handle;
    return 0;
}

static int s_register(device_t *dev, rt_actor_t *self, const device_spec_t *spec)
{
    Vmm__Devices__PortRange ranges[DEVICE_MAX_RANGES];
    Vmm__Devices__PortRange *range_ptrs[DEVICE_MAX_RANGES];
    for (size_t i = 0; i < spec->n_ranges; i++) {
        vmm__devices__port_range__init(&ranges[i]);
        ranges[i].start = spec->ranges[i].start;
        ranges[i].len = spec->ranges[i].len;
        range_ptrs[i] = &ranges[i];
    }
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = (char *)spec->name;
    reg.n_ports = spec->n_ranges;
    reg.ports = range_ptrs;
    reg.n_irq_lines = spec->n_irq_lines;
    reg.irq_lines = (uint32_t *)spec->irq_lines;
    reg.required = true;
    reg.posted_writes = spec->posted_writes;
    reg.msi_count = spec->msi_count;
    reg.halt_if_lost = spec->halt_if_lost;
    /* A device listening on an endpoint of its own lives in another process
     * than its VM (a device host): the VM reaches it there. */
    char endpoint[256], key[64];
    if (!rt_endpoint_of(rt_actor_rt(self), rt_actor_name(self), endpoint, sizeof endpoint))
        reg.endpoint = endpoint;
    /* Over tcp:// the VM checks it reaches this host by its CURVE key. */
    if (!strncmp(reg.endpoint, "tcp://", 6) &&
        !rt_curve_public_key(rt_actor_rt(self), key, sizeof key))
        reg.server_key = key;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;

    rt_msg_t reply;
    int rc = rt_call(self, dev->partition, &env, &reply, S_REGISTER_TIMEOUT_MS);
    if (rc) {
        rt_log(rt_actor_rt(self), self, RT_LOG_ERROR, "registering with %s: %s",
               dev->partition, strerror(-rc));
        return rc;
    }
    rc = s_registered(dev, self, reply.env);
    rt_msg_release(&reply);
    return rc;
}

int device_init(device_t *dev, rt_actor_t *self, const char *partition,
                const device_spec_t *spec)
{
    if (!spec->n_ranges || spec->n_ranges > DEVICE_MAX_RANGES)
        return -EINVAL;
    for (size_t i = 0; i < spec->n_ranges; i++)
        if (!spec->ranges[i].len || spec->ranges[i].start > 0xffff ||
            spec->ranges[i].len > 0x10000 - spec->ranges[i].start)
            return -EINVAL; /* ports are 16 bits */
    memset(dev, 0, sizeof *dev);
    memcpy(dev->ranges, spec->ranges, spec->n_ranges * sizeof *spec->ranges);
    dev->n_ranges = spec->n_ranges;
    if (!partition)
        return 0;
    dev->partition = strdup(partition);
    if (!dev->partition)
        return -ENOMEM;
    int rc = s_register(dev, self, spec);
    if (rc)
        device_fini(dev);
    return rc;
}

/* Drops the guest RAM description and its mapping. */
static void s_guest_release(device_t *dev)
{
    if (dev->ram_map)
        munmap(dev->ram_map, dev->ram_map_size);
    free(dev->ram);
    dev->ram = NULL;
    dev->n_ram = 0;
    dev->ram_map = NULL;
    dev->ram_map_size = 0;
}

void device_fini(device_t *dev)
{
    s_guest_release(dev);
    free(dev->partition);
    dev->partition = NULL;
    dev->handle = 0;
}

/* Writes the ranges as "0x3f8+8, ..." into buf. */
static void s_ranges_text(const device_t *dev, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < dev->n_ranges && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s0x%x+%u", i ? ", " : "",
                         dev->ranges[i].start, dev->ranges[i].len);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static bool s_inside(const device_t *dev, uint32_t port, uint32_t size)
{
    for (size_t i = 0; i < dev->n_ranges; i++) {
        const device_range_t *r = &dev->ranges[i];
        if (port >= r->start && port - r->start < r->len && size <= r->len - (port - r->start))
            return true;
    }
    return false;
}

/* Answers (when it is a request), logs and counts a bad request. */
__attribute__((format(printf, 5, 0))) static int
s_refuse(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
         const char *fmt, va_list ap)
{
    char text[400];
    vsnprintf(text, sizeof text, fmt, ap);
    dev->counters.bad_requests++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "refused %s from %s: %s",
           msg->request_id ? "a request" : "a one-way request", msg->sender, text);
    if (msg->request_id)
        rt_reply_error(self, msg, code, "%s: %s", rt_actor_name(self), text);
    return -EINVAL;
}

__attribute__((format(printf, 5, 6))) static int
s_refuse_with(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg, Vmm__ErrorCode code,
              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_refuse(dev, self, msg, code, fmt, ap);
    va_end(ap);
    return rc;
}

int device_access_refuse(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_refuse(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, fmt, ap);
    va_end(ap);
    return 0;
}

int device_access_get(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                      device_access_t *access)
{
    const Vmm__Devices__Request *req = msg->device_request;
    Vmm__Devices__Request__OpCase op = req ? req->op_case : VMM__DEVICES__REQUEST__OP__NOT_SET;
    /* Only a call within one executor can lend a body without its member. */
    if ((op == VMM__DEVICES__REQUEST__OP_READ_IO && !req->read_io) ||
        (op == VMM__DEVICES__REQUEST__OP_WRITE_IO && !req->write_io))
        op = VMM__DEVICES__REQUEST__OP__NOT_SET;
    memset(access, 0, sizeof *access);
    switch (op) {
    case VMM__DEVICES__REQUEST__OP_READ_IO:
        if (!msg->request_id)
            return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                 "a read sent one-way cannot be answered");
        access->vp_index = req->read_io->vp_index;
        access->port = req->read_io->port;
        access->size = req->read_io->size;
        break;
    case VMM__DEVICES__REQUEST__OP_WRITE_IO: {
        const ProtobufCBinaryData *data = &req->write_io->data;
        access->write = true;
        access->vp_index = req->write_io->vp_index;
        access->port = req->write_io->port;
        if (data->len != 1 && data->len != 2 && data->len != 4)
            return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                 "a write of %zu bytes to port 0x%x: the data must be 1, 2 or "
                                 "4 bytes",
                                 data->len, access->port);
        access->size = (uint32_t)data->len;
        for (uint32_t i = 0; i < access->size; i++)
            access->value |= (uint32_t)data->data[i] << (8 * i);
        break;
    }
    case VMM__DEVICES__REQUEST__OP__NOT_SET:
        return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                             "a device_request with no op");
    default:
        return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                             "a port device serves read_io and write_io, not op %d", (int)op);
    }
    if (access->size != 1 && access->size != 2 && access->size != 4)
        return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                             "a read of size %u at port 0x%x: the size must be 1, 2 or 4",
                             access->size, access->port);
    if (!s_inside(dev, access->port, access->size)) {
        char ranges[128];
        s_ranges_text(dev, ranges, sizeof ranges);
        return s_refuse_with(dev, self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                             "a %u-byte access at port 0x%x is outside the device's ports (%s)",
                             access->size, access->port, ranges);
    }
    return 0;
}

int device_access_done(device_t *dev, rt_actor_t *self, const Vmm__Envelope *msg,
                       const device_access_t *access, uint32_t value)
{
    if (access->write) {
        dev->counters.writes++;
        if (!msg->request_id) {
            dev->counters.posted_writes++;
            return 0;
        }
        rt_flush(self);
        return rt_reply_ack(self, msg);
    }
    dev->counters.reads++;
    uint8_t bytes[4];
    for (uint32_t i = 0; i < access->size; i++)
        bytes[i] = (uint8_t)(value >> (8 * i));
    Vmm__Devices__ReadResult result = VMM__DEVICES__READ_RESULT__INIT;
    result.data.data = bytes;
    result.data.len = access->size;
    Vmm__Devices__Reply reply = VMM__DEVICES__REPLY__INIT;
    reply.result_case = VMM__DEVICES__REPLY__RESULT_READ_IO;
    reply.read_io = &result;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &reply;
    return rt_reply(self, msg, &env);
}

void device_send(device_t *dev, rt_actor_t *self, const char *to, Vmm__Envelope *env)
{
    if (!to) {
        dev->counters.unsent++;
        rt_log(rt_actor_rt(self), self, RT_LOG_DEBUG, "no receiver for body kind %d",
               env->body_case);
        return;
    }
    int rc = rt_send(self, to, env);
    if (rc) {
        dev->counters.unsent++;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "sending body kind %d to %s: %s",
               env->body_case, to, strerror(-rc));
    }
}

static void s_send_partition(device_t *dev, rt_actor_t *self, Vmm__Partition__Request *req)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    device_send(dev, self, dev->partition, &env);
}

void device_assert_irq(device_t *dev, rt_actor_t *self, uint32_t irq)
{
    Vmm__Partition__AssertIrq assert_irq = VMM__PARTITION__ASSERT_IRQ__INIT;
    assert_irq.irq = irq;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_ASSERT_IRQ;
    req.assert_irq = &assert_irq;
    s_send_partition(dev, self, &req);
}

void device_request_msi(device_t *dev, rt_actor_t *self, uint64_t address, uint32_t data)
{
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = address;
    msi.data = data;
    Vmm__Partition__RequestMsi request_msi = VMM__PARTITION__REQUEST_MSI__INIT;
    request_msi.vtl = VMM__VTL__VTL0;
    request_msi.request = &msi;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &request_msi;
    s_send_partition(dev, self, &req);
}

void device_power(device_t *dev, rt_actor_t *self, Vmm__Devices__PowerAction action,
                  bool has_exit_code, uint32_t exit_code)
{
    Vmm__Devices__PowerRequest power = VMM__DEVICES__POWER_REQUEST__INIT;
    power.action = action;
    if (has_exit_code) {
        power.opt_exit_code_case = VMM__DEVICES__POWER_REQUEST__OPT_EXIT_CODE_EXIT_CODE;
        power.exit_code = exit_code;
    }
    Vmm__Devices__Event event = VMM__DEVICES__EVENT__INIT;
    event.event_case = VMM__DEVICES__EVENT__EVENT_POWER_REQUEST;
    event.power_request = &power;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = &event;
    device_send(dev, self, dev->partition, &env);
}

/* ---- Guest memory ------------------------------------------------------------- */

/* Whether path is a symbolic link to link. */
static bool s_links_to(const char *path, const char *link)
{
    char got[256];
    ssize_t n = readlink(path, got, sizeof got - 1);
    if (n < 0)
        return false;
    got[n] = 0;
    return !strcmp(got, link);
}

/* Maps the first size bytes of the memory file map describes, when it is
 * the one map->link names and cannot shrink. */
static int s_map_file(const Vmm__Devices__GuestMemoryMap *map, size_t size, void **out)
{
    /* Looked at before opening: elsewhere path may name an unrelated file,
     * which even opening could disturb (a FIFO, a device). */
    if (!*map->link || !s_links_to(map->path, map->link))
        return -EXDEV;
    int fd = open(map->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* And after: the process behind path may have changed in between. */
    char own[64];
    snprintf(own, sizeof own, "/proc/self/fd/%d", fd);
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    int rc = 0;
    if (!s_links_to(own, map->link))
        rc = -EXDEV;
    else if (seals < 0 || !(seals & F_SEAL_SHRINK))
        rc = -EPERM; /* it could shrink under the mapping: faults, not errors */
    else if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
        rc = -ERANGE;
    if (!rc) {
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            rc = -errno;
        else
            *out = m;
    }
    close(fd);
    return rc;
}

int device_guest_map(device_t *dev, const Vmm__Devices__GuestMemoryMap *map)
{
    s_guest_release(dev);
    if (!map->n_ranges)
        return -EINVAL;
    uint64_t end = 0;
    for (size_t i = 0; i < map->n_ranges; i++) {
        const Vmm__Devices__GuestRamRange *r = map->ranges[i];
        if (!r->size || r->gpa + r->size < r->gpa || r->offset + r->size < r->offset)
            return -EINVAL;
        if (r->offset + r->size > end)
            end = r->offset + r->size;
    }
    dev->ram = calloc(map->n_ranges, sizeof *dev->ram);
    if (!dev->ram)
        return -ENOMEM;
    dev->n_ram = map->n_ranges;
    for (size_t i = 0; i < map->n_ranges; i++)
        dev->ram[i] = (device_ram_t){.gpa = map->ranges[i]->gpa, .size = map->ranges[i]->size};
    void *m;
    int rc = s_map_file(map, (size_t)end, &m);
    if (rc)
        return rc;
    dev->ram_map = m;
    dev->ram_map_size = (size_t)end;
    for (size_t i = 0; i < map->n_ranges; i++)
        dev->ram[i].host = (uint8_t *)m + map->ranges[i]->offset;
    return 0;
}

typedef struct {
    device_t *dev;
    rt_actor_t *self;
} s_map_call_t;

static int s_on_map_reply(void *arg, const Vmm__Envelope *reply)
{
    const s_map_call_t *call = arg;
    rt_t *rt = rt_actor_rt(call->self);
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_log(rt, call->self, RT_LOG_WARN, "%s does not say where guest RAM is: %s",
               call->dev->partition, reply->error->text);
        return s_errno_of(reply->error->code);
    }
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP)
        return -EPROTO;
    const Vmm__Devices__GuestMemoryMap *map = reply->device_reply->guest_memory_map;
    int rc = device_guest_map(call->dev, map);
    if (!rc)
        rt_log(rt, call->self, RT_LOG_INFO, "guest RAM mapped from %s", map->path);
    else if (call->dev->ram)
        rt_log(rt, call->self, RT_LOG_INFO, "guest RAM by message: cannot map %s: %s",
               map->path, strerror(-rc));
    return call->dev->ram ? 0 : rc == -EINVAL ? -EPROTO : rc;
}

/* Learns where guest RAM is, once: its ranges, and its mapping if any. */
static int s_guest_known(device_t *dev, rt_actor_t *self)
{
    if (dev->ram)
        return 0;
    if (!dev->partition)
        return -ENOTCONN;
    Vmm__Devices__MapGuestMemory op = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY;
    req.map_guest_memory = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    s_map_call_t call = {dev, self};
    return rt_call_with(self, dev->partition, &env, S_GUEST_TIMEOUT_MS, s_on_map_reply, &call);
}

/* The RAM range holding [gpa, gpa + len), or NULL. */
static const device_ram_t *s_ram_at(const device_t *dev, uint64_t gpa, size_t len)
{
    for (size_t i = 0; i < dev->n_ram; i++) {
        const device_ram_t *r = &dev->ram[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

/* One guest memory message's reply: into to (len bytes) for a read,
 * an Ack for a write (to NULL). */
typedef struct {
    uint8_t *to;
    size_t len;
} s_io_call_t;

static int s_on_io_reply(void *arg, const Vmm__Envelope *reply)
{
    const s_io_call_t *call = arg;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR)
        return s_errno_of(reply->error->code);
    if (!call->to)
        return reply->body_case == VMM__ENVELOPE__BODY_ACK ? 0 : -EPROTO;
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_READ_GUEST_MEMORY ||
        reply->device_reply->read_guest_memory->data.len != call->len)
        return -EPROTO;
    memcpy(call->to, reply->device_reply->read_guest_memory->data.data, call->len);
    return 0;
}

/* One ReadGuestMemory (into to) or WriteGuestMemory (from from) of at
 * most S_MAX_GUEST_IO bytes. */
static int s_guest_message(device_t *dev, rt_actor_t *self, uint64_t gpa, uint8_t *to,
                           const uint8_t *from, size_t len)
{
    Vmm__Devices__ReadGuestMemory read = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    Vmm__Devices__WriteGuestMemory write = VMM__DEVICES__WRITE_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    if (to) {
        read.gpa = gpa;
        read.length = (uint32_t)len;
        req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
        req.read_guest_memory = &read;
    } else {
        write.gpa = gpa;
        write.data = (ProtobufCBinaryData){len, (uint8_t *)from}; /* only read */
        req.op_case = VMM__DEVICES__REQUEST__OP_WRITE_GUEST_MEMORY;
        req.write_guest_memory = &write;
    }
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    s_io_call_t call = {to, len};
    return rt_call_with(self, dev->partition, &env, S_GUEST_TIMEOUT_MS, s_on_io_reply, &call);
}

/* A read into to, or a write from from (the other NULL). */
static int s_guest_io(device_t *dev, rt_actor_t *self, uint64_t gpa, uint8_t *to,
                      const uint8_t *from, size_t len)
{
    int rc = s_guest_known(dev, self);
    if (rc)
        return rc;
    const device_ram_t *r = s_ram_at(dev, gpa, len);
    if (!r)
        return -EFAULT;
    if (r->host && !dev->guest_by_message) {
        uint8_t *host = r->host + (gpa - r->gpa);
        if (to)
            memcpy(to, host, len);
        else
            memcpy(host, from, len);
        return 0;
    }
    if (!dev->partition)
        return -ENOTCONN; /* ranges given by device_guest_map alone */
    for (size_t done = 0; done < len;) {
        size_t n = len - done < S_MAX_GUEST_IO ? len - done : S_MAX_GUEST_IO;
        rc = s_guest_message(dev, self, gpa + done, to ? to + done : NULL,
                             to ? NULL : from + done, n);
        if (rc)
            return rc;
        done += n;
    }
    return 0;
}

int device_guest_read(device_t *dev, rt_actor_t *self, uint64_t gpa, void *buf, size_t len)
{
    return s_guest_io(dev, self, gpa, buf, NULL, len);
}

int device_guest_write(device_t *dev, rt_actor_t *self, uint64_t gpa, const void *buf,
                       size_t len)
{
    return s_guest_io(dev, self, gpa, NULL, buf, len);
}

void device_inspect(const device_t *dev, Vmm__Rt__InspectNode *node)
{
    char ranges[128];
    s_ranges_text(dev, ranges, sizeof ranges);
    rt_inspect_add(node, "ports", "%s", ranges);
    rt_inspect_add(node, "partition", "%s", dev->partition ? dev->partition : "");
    rt_inspect_add(node, "handle", "%llu", (unsigned long long)dev->handle);
    rt_inspect_add(node, "reads", "%llu", (unsigned long long)dev->counters.reads);
    rt_inspect_add(node, "writes", "%llu", (unsigned long long)dev->counters.writes);
    rt_inspect_add(node, "posted_writes", "%llu",
                   (unsigned long long)dev->counters.posted_writes);
    rt_inspect_add(node, "bad_requests", "%llu",
                   (unsigned long long)dev->counters.bad_requests);
    rt_inspect_add(node, "unsent", "%llu", (unsigned long long)dev->counters.unsent);
    const char *guest_ram = "by message";
    if (!dev->ram)
        guest_ram = "not asked for yet";
    else if (dev->ram_map && !dev->guest_by_message)
        guest_ram = "mapped";
    rt_inspect_add(node, "guest_ram", "%s", guest_ram);
}
