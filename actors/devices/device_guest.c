#define _GNU_SOURCE /* F_GET_SEALS */
#include "actors/devices/device_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a guest memory access waits for each of its messages. */
#define S_GUEST_TIMEOUT_MS 5000
/* The most one ReadGuestMemory or WriteGuestMemory carries (devices.proto). */
#define S_MAX_GUEST_IO 65536u

/* Drops the guest RAM description and its mapping. */
static void s_release(device_guest_t *g)
{
    if (g->map)
        munmap(g->map, g->map_size);
    free(g->ram);
    g->ram = NULL;
    g->n_ram = 0;
    g->map = NULL;
    g->map_size = 0;
    g->mapped = false;
    g->pid = 0;
    g->link[0] = 0;
}

bool device_guest_links_to(const char *path, const char *link)
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
static int s_map_file(const Vmm__Devices__GuestMemoryMap *map, size_t size, void **out,
                      uint64_t *ino)
{
    /* Looked at before opening: elsewhere path may name an unrelated file,
     * which even opening could disturb (a FIFO, a device). */
    if (!*map->link || !device_guest_links_to(map->path, map->link))
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
    if (!device_guest_links_to(own, map->link))
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
            *out = m, *ino = (uint64_t)st.st_ino;
    }
    close(fd);
    return rc;
}

int device_guest_map(device_guest_t *g, const Vmm__Devices__GuestMemoryMap *map)
{
    s_release(g);
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
    g->ram = calloc(map->n_ranges, sizeof *g->ram);
    if (!g->ram)
        return -ENOMEM;
    g->n_ram = map->n_ranges;
    for (size_t i = 0; i < map->n_ranges; i++)
        g->ram[i] = (device_ram_t){.gpa = map->ranges[i]->gpa, .size = map->ranges[i]->size};
    void *m = NULL;
    int rc = g->no_file ? -EXDEV : s_map_file(map, (size_t)end, &m, &g->ino);
    if (rc)
        return rc;
    g->map = m;
    g->map_size = (size_t)end;
    g->mapped = true;
    int fd;
    if (sscanf(map->path, "/proc/%d/fd/%d", &g->pid, &fd) != 2)
        g->pid = 0;
    snprintf(g->link, sizeof g->link, "%s", map->link);
    for (size_t i = 0; i < map->n_ranges; i++)
        g->ram[i].host = (uint8_t *)m + map->ranges[i]->offset;
    return 0;
}

typedef struct {
    device_guest_t *g;
    rt_actor_t *self;
    const char *partition;
} s_map_call_t;

static int s_on_map_reply(void *arg, const Vmm__Envelope *reply)
{
    const s_map_call_t *call = arg;
    rt_t *rt = rt_actor_rt(call->self);
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rt_log(rt, call->self, RT_LOG_WARN, "%s does not say where guest RAM is: %s",
               call->partition, reply->error->text);
        return rt_errno_of(reply->error->code);
    }
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_GUEST_MEMORY_MAP)
        return -EPROTO;
    const Vmm__Devices__GuestMemoryMap *map = reply->device_reply->guest_memory_map;
    int rc = device_guest_map(call->g, map);
    /* Whether it could: the host's to say, so a replay says it again. */
    rt_actor_input(call->self, DEVICE_GUEST_INPUT_MAPPED, 0, &rc, sizeof rc);
    call->g->mapped = !rc && call->g->ram;
    if (!rc)
        rt_log(rt, call->self, RT_LOG_INFO, "guest RAM mapped from %s", map->path);
    else if (call->g->ram)
        rt_log(rt, call->self, RT_LOG_INFO, "guest RAM by message: cannot map %s: %s",
               map->path, strerror(-rc));
    return call->g->ram ? 0 : rc == -EINVAL ? -EPROTO : rc;
}

/* Learns where guest RAM is, once: its ranges, and its mapping if any. */
static int s_guest_known(device_guest_t *g, rt_actor_t *self, const char *partition)
{
    if (g->ram)
        return 0;
    if (!partition)
        return -ENOTCONN;
    Vmm__Devices__MapGuestMemory op = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY;
    req.map_guest_memory = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    s_map_call_t call = {g, self, partition};
    return rt_call_with(self, partition, &env, S_GUEST_TIMEOUT_MS, s_on_map_reply, &call);
}

/* The RAM range holding [gpa, gpa + len), or NULL. */
static const device_ram_t *s_ram_at(const device_guest_t *g, uint64_t gpa, size_t len)
{
    for (size_t i = 0; i < g->n_ram; i++) {
        const device_ram_t *r = &g->ram[i];
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
        return rt_errno_of(reply->error->code);
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
static int s_guest_message(rt_actor_t *self, const char *partition, uint64_t gpa, uint8_t *to,
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
    return rt_call_with(self, partition, &env, S_GUEST_TIMEOUT_MS, s_on_io_reply, &call);
}

int device_guest_io(device_guest_t *g, rt_actor_t *self, const char *partition, uint64_t gpa,
                    void *to, const void *from, size_t len)
{
    int rc = s_guest_known(g, self, partition);
    if (rc)
        return rc;
    const device_ram_t *r = s_ram_at(g, gpa, len);
    if (!r)
        return -EFAULT;
    if (g->mapped && !g->by_message) {
        /* No bytes of a mapping under a replay: the trace has them. */
        uint8_t *host = r->host ? r->host + (gpa - r->gpa) : NULL;
        if (to) {
            if (host)
                memcpy(to, host, len);
            return rt_actor_input(self, DEVICE_GUEST_RAM, gpa, to, len);
        }
        if (host)
            memcpy(host, from, len);
        rt_actor_output(self, DEVICE_GUEST_RAM, gpa, from, len);
        return 0;
    }
    if (!partition)
        return -ENOTCONN; /* ranges given by device_guest_map alone */
    for (size_t done = 0; done < len;) {
        size_t n = len - done < S_MAX_GUEST_IO ? len - done : S_MAX_GUEST_IO;
        rc = s_guest_message(self, partition, gpa + done, to ? (uint8_t *)to + done : NULL,
                             to ? NULL : (const uint8_t *)from + done, n);
        if (rc)
            return rc;
        done += n;
    }
    return 0;
}

uint64_t device_guest_atomic_update(void *p, uint32_t size, uint64_t and_mask, uint64_t or_mask)
{
#define S_UPDATE(type)                                                                          \
    do {                                                                                        \
        type *at = p, was = __atomic_load_n(at, __ATOMIC_RELAXED);                             \
        while (!__atomic_compare_exchange_n(at, &was, (type)((was & and_mask) | or_mask), true, \
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))                \
            ;                                                                                   \
        return was;                                                                             \
    } while (0)
    switch (size) {
    case 1:
        S_UPDATE(uint8_t);
    case 2:
        S_UPDATE(uint16_t);
    case 4:
        S_UPDATE(uint32_t);
    default:
        S_UPDATE(uint64_t);
    }
#undef S_UPDATE
}

/* The partition's reply to UpdateGuestMemory: the bytes that were there. */
static int s_on_update_reply(void *arg, const Vmm__Envelope *reply)
{
    uint64_t *old = arg;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR)
        return rt_errno_of(reply->error->code);
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_UPDATE_GUEST_MEMORY ||
        reply->device_reply->update_guest_memory->data.len > 8)
        return -EPROTO;
    const ProtobufCBinaryData *d = &reply->device_reply->update_guest_memory->data;
    *old = 0;
    for (size_t i = 0; i < d->len; i++)
        *old |= (uint64_t)d->data[i] << (8 * i);
    return 0;
}

int device_guest_update(device_guest_t *g, rt_actor_t *self, const char *partition, uint64_t gpa,
                        uint32_t size, uint64_t and_mask, uint64_t or_mask, uint64_t *old)
{
    if ((size != 1 && size != 2 && size != 4 && size != 8) || gpa % size)
        return -EINVAL;
    int rc = s_guest_known(g, self, partition);
    if (rc)
        return rc;
    const device_ram_t *r = s_ram_at(g, gpa, size);
    if (!r)
        return -EFAULT;
    uint64_t mask = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
    if (g->mapped && !g->by_message) {
        /* What was there is an input (a replay gives it back); what is
         * left there an output. Little-endian, as the guest sees it. */
        uint8_t *host = r->host ? r->host + (gpa - r->gpa) : NULL;
        uint64_t was = host ? device_guest_atomic_update(host, size, and_mask, or_mask) : 0;
        rc = rt_actor_input(self, DEVICE_GUEST_RAM, gpa, &was, size);
        if (rc)
            return rc;
        uint64_t now = ((was & and_mask) | or_mask) & mask;
        rt_actor_output(self, DEVICE_GUEST_RAM, gpa, &now, size);
        *old = was & mask;
        return 0;
    }
    if (!partition)
        return -ENOTCONN;
    Vmm__Devices__UpdateGuestMemory update = VMM__DEVICES__UPDATE_GUEST_MEMORY__INIT;
    update.gpa = gpa;
    update.size = size;
    update.and_mask = and_mask;
    update.or_mask = or_mask;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY;
    req.update_guest_memory = &update;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    return rt_call_with(self, partition, &env, S_GUEST_TIMEOUT_MS, s_on_update_reply, old);
}

int device_guest_prepare(device_guest_t *g, rt_actor_t *self, const char *partition)
{
    return s_guest_known(g, self, partition);
}

void device_guest_fini(device_guest_t *g)
{
    s_release(g);
}

const char *device_guest_state(const device_guest_t *g)
{
    if (!g->ram)
        return "not asked for yet";
    return g->mapped && !g->by_message ? "mapped" : "by message";
}
