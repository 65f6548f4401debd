#define _GNU_SOURCE /* strdup */
#include "actors/registry/table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep one registration's size sane. */
#define S_MAX_RANGES 64
#define S_PORT_SPACE 0x10000ull

typedef struct {
    bool mmio;
    uint64_t start, len;
} s_range_t;

typedef struct {
    uint64_t handle;
    char *name, *actor, *origin;
    bool posted, remote, halt_if_lost, lost;
    s_range_t *ranges;
    size_t n_ranges;
    uint32_t *irq_lines;
    size_t n_irq_lines;
    uint32_t msi_count;
} s_device_t;

struct registry_s {
    s_device_t *devices;
    size_t n_devices;
    uint64_t next_handle;
};

registry_t *registry_new(void)
{
    registry_t *reg = calloc(1, sizeof *reg);
    if (reg)
        reg->next_handle = 1;
    return reg;
}

static void s_device_free(s_device_t *d)
{
    free(d->name);
    free(d->actor);
    free(d->origin);
    free(d->ranges);
    free(d->irq_lines);
}

void registry_destroy(registry_t **reg)
{
    if (!*reg)
        return;
    for (size_t i = 0; i < (*reg)->n_devices; i++)
        s_device_free(&(*reg)->devices[i]);
    free((*reg)->devices);
    free(*reg);
    *reg = NULL;
}

static bool s_overlap(const s_range_t *a, const s_range_t *b)
{
    return a->mmio == b->mmio && a->start < b->start + b->len && b->start < a->start + a->len;
}

static void s_describe(const s_range_t *r, char *buf, size_t size)
{
    snprintf(buf, size, "%s 0x%llx-0x%llx", r->mmio ? "MMIO" : "port",
             (unsigned long long)r->start, (unsigned long long)(r->start + r->len - 1));
}

/* Collects and checks req's ranges into out (S_MAX_RANGES entries). */
static int s_collect(const Vmm__Devices__RegisterDevice *req, s_range_t *out, size_t *n,
                     char *err, size_t errlen)
{
    if (req->n_ports + req->n_mmio > S_MAX_RANGES) {
        snprintf(err, errlen, "%zu ranges, at most %d", req->n_ports + req->n_mmio, S_MAX_RANGES);
        return -EINVAL;
    }
    *n = 0;
    for (size_t i = 0; i < req->n_ports; i++) {
        const Vmm__Devices__PortRange *p = req->ports[i];
        if (!p->len || p->start >= S_PORT_SPACE || p->len > S_PORT_SPACE - p->start) {
            snprintf(err, errlen, "port range 0x%x+%u is empty or beyond port 0xffff", p->start,
                     p->len);
            return -EINVAL;
        }
        out[(*n)++] = (s_range_t){.start = p->start, .len = p->len};
    }
    for (size_t i = 0; i < req->n_mmio; i++) {
        const Vmm__MemoryRange *m = req->mmio[i];
        if (m->end <= m->start) {
            snprintf(err, errlen, "MMIO range 0x%llx-0x%llx is empty",
                     (unsigned long long)m->start, (unsigned long long)m->end);
            return -EINVAL;
        }
        out[(*n)++] = (s_range_t){.mmio = true, .start = m->start, .len = m->end - m->start};
    }
    for (size_t i = 0; i < *n; i++)
        for (size_t j = 0; j < i; j++)
            if (s_overlap(&out[i], &out[j])) {
                char a[64];
                s_describe(&out[i], a, sizeof a);
                snprintf(err, errlen, "%s is claimed twice in one registration", a);
                return -EINVAL;
            }
    return 0;
}

/* The first of actor's registrations, lost ones included; NULL: none. */
static const s_device_t *s_first_of(const registry_t *reg, const char *actor)
{
    for (size_t i = 0; i < reg->n_devices; i++)
        if (!strcmp(reg->devices[i].actor, actor))
            return &reg->devices[i];
    return NULL;
}

int registry_add(registry_t *reg, const char *actor, const char *origin,
                 const Vmm__Devices__RegisterDevice *req, uint64_t *handle, char *err,
                 size_t errlen)
{
    if (!req->name || !*req->name) {
        snprintf(err, errlen, "a device needs a name");
        return -EINVAL;
    }
    /* Its name is what the sender wrote: bound to where it first came from. */
    const s_device_t *first = s_first_of(reg, actor);
    if (first && strcmp(first->origin, origin)) {
        snprintf(err, errlen, "%s registered from %s before, not %s", actor,
                 *first->origin ? first->origin : "the partition's process",
                 *origin ? origin : "the partition's process");
        return -EPERM;
    }
    s_range_t ranges[S_MAX_RANGES];
    size_t n;
    int rc = s_collect(req, ranges, &n, err, errlen);
    if (rc)
        return rc;
    if (req->msi_count > REGISTRY_MAX_MSIS) {
        snprintf(err, errlen, "%u MSIs, at most %d", req->msi_count, REGISTRY_MAX_MSIS);
        return -EINVAL;
    }
    if (req->n_irq_lines > REGISTRY_MAX_IRQ_LINES) {
        snprintf(err, errlen, "%zu IRQ lines, at most %d", req->n_irq_lines,
                 REGISTRY_MAX_IRQ_LINES);
        return -EINVAL;
    }
    /* A lost device that must not be missed keeps its ranges until its
     * host registers it again, which replaces it. */
    size_t replaces = reg->n_devices;
    for (size_t d = 0; d < reg->n_devices; d++) {
        const s_device_t *other = &reg->devices[d];
        if (other->lost && !strcmp(other->name, req->name)) {
            replaces = d;
            continue;
        }
        if (!strcmp(other->name, req->name)) {
            snprintf(err, errlen, "a device named %s is registered already (by %s)", req->name,
                     other->actor);
            return -EBUSY;
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < other->n_ranges; j++)
                if (s_overlap(&ranges[i], &other->ranges[j])) {
                    char a[64], b[64];
                    s_describe(&ranges[i], a, sizeof a);
                    s_describe(&other->ranges[j], b, sizeof b);
                    snprintf(err, errlen, "%s overlaps %s of %s (%s)", a, b, other->name,
                             other->actor);
                    return -EBUSY;
                }
    }

    s_device_t *devices = realloc(reg->devices, (reg->n_devices + 1) * sizeof *devices);
    if (!devices)
        return -ENOMEM;
    reg->devices = devices;
    s_device_t d = {
        .handle = reg->next_handle,
        .name = strdup(req->name),
        .actor = strdup(actor),
        .origin = strdup(origin),
        .posted = req->posted_writes,
        .remote = req->endpoint && *req->endpoint,
        .halt_if_lost = req->halt_if_lost,
        .ranges = malloc((n ? n : 1) * sizeof *d.ranges),
        .n_ranges = n,
        .irq_lines = malloc((req->n_irq_lines ? req->n_irq_lines : 1) * sizeof *d.irq_lines),
        .n_irq_lines = req->n_irq_lines,
        .msi_count = req->msi_count,
    };
    if (!d.name || !d.actor || !d.origin || !d.ranges || !d.irq_lines) {
        s_device_free(&d);
        return -ENOMEM;
    }
    memcpy(d.ranges, ranges, n * sizeof *ranges);
    if (req->n_irq_lines)
        memcpy(d.irq_lines, req->irq_lines, req->n_irq_lines * sizeof *d.irq_lines);
    if (replaces < reg->n_devices) {
        s_device_free(&reg->devices[replaces]);
        reg->devices[replaces] = reg->devices[--reg->n_devices];
    }
    reg->devices[reg->n_devices++] = d;
    *handle = reg->next_handle++;
    return 0;
}

int registry_remove(registry_t *reg, uint64_t handle, const char *actor)
{
    for (size_t i = 0; i < reg->n_devices; i++) {
        if (reg->devices[i].handle != handle)
            continue;
        if (strcmp(reg->devices[i].actor, actor))
            return -EPERM;
        s_device_free(&reg->devices[i]);
        reg->devices[i] = reg->devices[--reg->n_devices];
        return 0;
    }
    return -ENOENT;
}

int registry_lose(registry_t *reg, uint64_t handle)
{
    for (size_t i = 0; i < reg->n_devices; i++) {
        s_device_t *d = &reg->devices[i];
        if (d->handle != handle)
            continue;
        if (d->halt_if_lost) {
            d->lost = true;
            return 1;
        }
        s_device_free(d);
        *d = reg->devices[--reg->n_devices];
        return 0;
    }
    return -ENOENT;
}

/* Devices whose host is lost act for nobody. */
static bool s_acts(const s_device_t *d, const char *actor)
{
    return !d->lost && !strcmp(d->actor, actor);
}

bool registry_is_device(const registry_t *reg, const char *actor)
{
    return s_first_of(reg, actor) != NULL;
}

bool registry_owns(const registry_t *reg, const char *actor, bool mmio, uint64_t address,
                   uint64_t len)
{
    const s_range_t want = {.mmio = mmio, .start = address, .len = len ? len : 1};
    for (size_t i = 0; i < reg->n_devices; i++) {
        const s_device_t *d = &reg->devices[i];
        for (size_t j = 0; s_acts(d, actor) && j < d->n_ranges; j++) {
            const s_range_t *r = &d->ranges[j];
            if (r->mmio == mmio && want.start >= r->start && want.start - r->start < r->len &&
                want.len <= r->len - (want.start - r->start))
                return true;
        }
    }
    return false;
}

bool registry_has_irq(const registry_t *reg, const char *actor, uint32_t irq)
{
    for (size_t i = 0; i < reg->n_devices; i++) {
        const s_device_t *d = &reg->devices[i];
        for (size_t j = 0; s_acts(d, actor) && j < d->n_irq_lines; j++)
            if (d->irq_lines[j] == irq)
                return true;
    }
    return false;
}

uint32_t registry_msi_count(const registry_t *reg, const char *actor)
{
    uint32_t n = 0;
    for (size_t i = 0; i < reg->n_devices; i++)
        if (s_acts(&reg->devices[i], actor))
            n += reg->devices[i].msi_count;
    return n;
}

int registry_grants(const registry_t *reg, const char *actor, Vmm__Registry__Grants *out)
{
    vmm__registry__grants__init(out);
    const s_device_t *first = s_first_of(reg, actor);
    out->device = first != NULL;
    if (first)
        out->origin = first->origin;
    out->msi_count = registry_msi_count(reg, actor);
    size_t n = 0;
    for (size_t i = 0; i < reg->n_devices; i++)
        if (s_acts(&reg->devices[i], actor))
            n += reg->devices[i].n_irq_lines;
    out->irq_lines = calloc(n ? n : 1, sizeof *out->irq_lines);
    if (!out->irq_lines)
        return -ENOMEM;
    for (size_t i = 0; i < reg->n_devices; i++)
        for (size_t j = 0; s_acts(&reg->devices[i], actor) && j < reg->devices[i].n_irq_lines;
             j++)
            out->irq_lines[out->n_irq_lines++] = reg->devices[i].irq_lines[j];
    return 0;
}

void registry_grants_free(Vmm__Registry__Grants *grants)
{
    free(grants->irq_lines);
    grants->irq_lines = NULL;
    grants->n_irq_lines = 0;
}

size_t registry_count(const registry_t *reg)
{
    return reg->n_devices;
}

const char *registry_name(const registry_t *reg, size_t i)
{
    return i < reg->n_devices ? reg->devices[i].name : NULL;
}

const char *registry_actor(const registry_t *reg, size_t i)
{
    return i < reg->n_devices ? reg->devices[i].actor : NULL;
}

uint64_t registry_handle(const registry_t *reg, size_t i)
{
    return i < reg->n_devices ? reg->devices[i].handle : 0;
}

bool registry_lost(const registry_t *reg, size_t i)
{
    return i < reg->n_devices && reg->devices[i].lost;
}

int registry_routes(const registry_t *reg, bool posted_ok, Vmm__Vp__SetIoRoutes *out)
{
    vmm__vp__set_io_routes__init(out);
    size_t n = 0;
    for (size_t d = 0; d < reg->n_devices; d++)
        n += reg->devices[d].n_ranges;
    /* One block: the pointer array, then the routes. */
    void *block = calloc(1, n * (sizeof(Vmm__Vp__IoRoute *) + sizeof(Vmm__Vp__IoRoute)) + 1);
    if (!block)
        return -ENOMEM;
    Vmm__Vp__IoRoute **ptrs = block;
    Vmm__Vp__IoRoute *routes = (Vmm__Vp__IoRoute *)(ptrs + n);
    size_t k = 0;
    for (size_t d = 0; d < reg->n_devices; d++) {
        const s_device_t *dev = &reg->devices[d];
        for (size_t i = 0; i < dev->n_ranges; i++, k++) {
            vmm__vp__io_route__init(&routes[k]);
            routes[k].mmio = dev->ranges[i].mmio;
            routes[k].start = dev->ranges[i].start;
            routes[k].len = dev->ranges[i].len;
            routes[k].actor = dev->actor;
            routes[k].posted_writes = dev->posted && posted_ok;
            routes[k].remote = dev->remote;
            routes[k].lost = dev->lost;
            routes[k].halt_if_lost = dev->halt_if_lost;
            ptrs[k] = &routes[k];
        }
    }
    out->routes = ptrs;
    out->n_routes = n;
    return 0;
}

void registry_routes_free(Vmm__Vp__SetIoRoutes *routes)
{
    free(routes->routes);
    routes->routes = NULL;
    routes->n_routes = 0;
}
