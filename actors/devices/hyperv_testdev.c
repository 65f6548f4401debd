#include "actors/devices/hyperv_testdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

enum {
    S_ROUTE_CREATE = 1,
    S_ROUTE_DESTROY,
    S_SET_SINT,
    S_MSG_CONN_CREATE,
    S_MSG_CONN_DESTROY,
    S_EVT_CONN_CREATE,
    S_EVT_CONN_DESTROY,
};

typedef struct {
    uint32_t connection_id, vp, sint;
} s_conn_t;

/* Message (0) and event (1) connections. */
typedef struct {
    s_conn_t items[DEV_HYPERV_TESTDEV_MAX];
    size_t n;
} s_conns_t;

typedef struct {
    device_t dev;
    struct {
        uint32_t vp, sint;
    } routes[DEV_HYPERV_TESTDEV_MAX];
    size_t n_routes;
    s_conns_t conns[2];
    struct {
        uint64_t controls, ignored, refused, echoed, signalled, lost;
    } counts;
} hyperv_testdev_t;

static hyperv_testdev_t *s_of(device_t *dev)
{
    return (hyperv_testdev_t *)dev;
}

static int s_refuse(hyperv_testdev_t *h, int rc, const char *what, uint32_t a, uint32_t b)
{
    h->counts.refused++;
    device_log(&h->dev, RT_LOG_WARN, "%s (%u, %u): %s", what, a, b, strerror(-rc));
    return 0; /* the guest's write is done; QEMU would have asserted */
}

static int s_route(hyperv_testdev_t *h, uint32_t vp, uint32_t sint)
{
    for (size_t i = 0; i < h->n_routes; i++)
        if (h->routes[i].vp == vp && h->routes[i].sint == sint)
            return (int)i;
    return -1;
}

static s_conn_t *s_conn(hyperv_testdev_t *h, bool message, uint32_t connection_id)
{
    s_conns_t *c = &h->conns[!message];
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].connection_id == connection_id)
            return &c->items[i];
    return NULL;
}

static int s_conn_create(hyperv_testdev_t *h, bool message, uint32_t id, uint32_t vp,
                         uint32_t sint)
{
    const char *what = message ? "a message connection" : "an event connection";
    s_conns_t *c = &h->conns[!message];
    if (s_conn(h, message, id))
        return s_refuse(h, -EEXIST, what, id, vp);
    if (c->n == DEV_HYPERV_TESTDEV_MAX)
        return s_refuse(h, -ENOSPC, what, id, vp);
    int rc = device_synic_connect(&h->dev, message, id);
    if (rc)
        return s_refuse(h, rc, what, id, vp);
    c->items[c->n++] = (s_conn_t){id, vp, sint};
    return 0;
}

static int s_conn_destroy(hyperv_testdev_t *h, bool message, uint32_t id)
{
    s_conn_t *conn = s_conn(h, message, id);
    if (!conn)
        return s_refuse(h, -ENOENT, message ? "destroying a message connection"
                                            : "destroying an event connection",
                        id, 0);
    int rc = device_synic_disconnect(&h->dev, message, id);
    s_conns_t *c = &h->conns[!message];
    *conn = c->items[--c->n];
    return rc ? s_refuse(h, rc, "disconnecting from the synic", id, 0) : 0;
}

static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    (void)dev;
    if (io->size != 4)
        return -EINVAL;
    *value = 0;
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    hyperv_testdev_t *h = s_of(dev);
    if (io->size != 4) {
        device_log(dev, RT_LOG_INFO, "a %u-byte write: the port takes 4", io->size);
        return -EINVAL;
    }
    uint32_t sint = value & 0xff, vp = value >> 8 & 0xff, ctl = value >> 16 & 0xff;
    uint32_t id = value >> 24 & 0xff;
    h->counts.controls++;
    int route = s_route(h, vp, sint);
    switch (ctl) {
    case S_ROUTE_CREATE:
        if (h->n_routes == DEV_HYPERV_TESTDEV_MAX)
            return s_refuse(h, -ENOSPC, "a SINT route", vp, sint);
        h->routes[h->n_routes].vp = vp;
        h->routes[h->n_routes++].sint = sint;
        return 0;
    case S_ROUTE_DESTROY:
        if (route < 0)
            return s_refuse(h, -ENOENT, "destroying a SINT route", vp, sint);
        h->routes[route] = h->routes[--h->n_routes];
        return 0;
    case S_SET_SINT: {
        if (route < 0)
            return s_refuse(h, -ENOENT, "asserting a SINT without its route", vp, sint);
        int rc = device_synic_assert(dev, vp, sint);
        return rc ? s_refuse(h, rc, "asserting a SINT", vp, sint) : 0;
    }
    case S_MSG_CONN_CREATE:
    case S_EVT_CONN_CREATE:
        return s_conn_create(h, ctl == S_MSG_CONN_CREATE, id, vp, sint);
    case S_MSG_CONN_DESTROY:
    case S_EVT_CONN_DESTROY:
        return s_conn_destroy(h, ctl == S_MSG_CONN_DESTROY, id);
    default:
        h->counts.ignored++;
        device_log(dev, RT_LOG_DEBUG, "control %u ignored", ctl);
        return 0;
    }
}

/* The guest posted to a message connection: the same message goes back. */
static void s_synic_message(device_t *dev, uint32_t connection_id, uint32_t type,
                            const uint8_t *payload, size_t len)
{
    hyperv_testdev_t *h = s_of(dev);
    const s_conn_t *c = s_conn(h, true, connection_id);
    if (c && !device_synic_post(dev, c->vp, c->sint, type, payload, len)) {
        h->counts.echoed++;
        return;
    }
    h->counts.lost++;
    device_log(dev, RT_LOG_WARN, "a message to connection %u could not be echoed",
               connection_id);
}

/* The guest signalled an event connection: flag <connection id> is set. */
static void s_synic_event(device_t *dev, uint32_t connection_id, uint32_t flag)
{
    (void)flag;
    hyperv_testdev_t *h = s_of(dev);
    const s_conn_t *c = s_conn(h, false, connection_id);
    if (c && !device_synic_signal(dev, c->vp, c->sint, connection_id)) {
        h->counts.signalled++;
        return;
    }
    h->counts.lost++;
    device_log(dev, RT_LOG_WARN, "an event on connection %u could not be passed on",
               connection_id);
}

/* Drops every route and connection, disconnecting from the synic. */
static void s_clear(hyperv_testdev_t *h)
{
    for (int kind = 0; kind < 2; kind++)
        while (h->conns[kind].n)
            s_conn_destroy(h, kind == 0, h->conns[kind].items[0].connection_id);
    h->n_routes = 0;
}

static void s_reset(device_t *dev)
{
    s_clear(s_of(dev));
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    hyperv_testdev_t *h = s_of(dev);
    device_inspect_count(node, "routes", h->n_routes);
    device_inspect_count(node, "message_connections", h->conns[0].n);
    device_inspect_count(node, "event_connections", h->conns[1].n);
    device_inspect_count(node, "controls", h->counts.controls);
    device_inspect_count(node, "ignored", h->counts.ignored);
    device_inspect_count(node, "refused", h->counts.refused);
    device_inspect_count(node, "echoed", h->counts.echoed);
    device_inspect_count(node, "signalled", h->counts.signalled);
    device_inspect_count(node, "lost", h->counts.lost);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    hyperv_testdev_t *h = s_of(dev);
    Vmm__DeviceState__HypervTestdev st = VMM__DEVICE_STATE__HYPERV_TESTDEV__INIT;
    Vmm__DeviceState__HypervTestdev__Route routes[DEV_HYPERV_TESTDEV_MAX];
    Vmm__DeviceState__HypervTestdev__Route *route_ptrs[DEV_HYPERV_TESTDEV_MAX];
    Vmm__DeviceState__HypervTestdev__Connection conns[2][DEV_HYPERV_TESTDEV_MAX];
    Vmm__DeviceState__HypervTestdev__Connection *conn_ptrs[2][DEV_HYPERV_TESTDEV_MAX];
    for (size_t i = 0; i < h->n_routes; i++) {
        vmm__device_state__hyperv_testdev__route__init(&routes[i]);
        routes[i].vp = h->routes[i].vp;
        routes[i].sint = h->routes[i].sint;
        route_ptrs[i] = &routes[i];
    }
    for (int kind = 0; kind < 2; kind++)
        for (size_t i = 0; i < h->conns[kind].n; i++) {
            const s_conn_t *c = &h->conns[kind].items[i];
            vmm__device_state__hyperv_testdev__connection__init(&conns[kind][i]);
            conns[kind][i].connection_id = c->connection_id;
            conns[kind][i].vp = c->vp;
            conns[kind][i].sint = c->sint;
            conn_ptrs[kind][i] = &conns[kind][i];
        }
    st.n_routes = h->n_routes;
    st.routes = route_ptrs;
    st.n_message_connections = h->conns[0].n;
    st.message_connections = conn_ptrs[0];
    st.n_event_connections = h->conns[1].n;
    st.event_connections = conn_ptrs[1];
    return device_pack_state(&st.base, out);
}

static bool s_conns_valid(Vmm__DeviceState__HypervTestdev__Connection *const *c, size_t n)
{
    if (n > DEV_HYPERV_TESTDEV_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (c[i]->connection_id > 0xff || c[i]->vp > 0xff || c[i]->sint > 0xff)
            return false;
        for (size_t j = 0; j < i; j++)
            if (c[j]->connection_id == c[i]->connection_id)
                return false;
    }
    return true;
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    hyperv_testdev_t *h = s_of(dev);
    Vmm__DeviceState__HypervTestdev *st =
        vmm__device_state__hyperv_testdev__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    bool ok = st->n_routes <= DEV_HYPERV_TESTDEV_MAX &&
              s_conns_valid(st->message_connections, st->n_message_connections) &&
              s_conns_valid(st->event_connections, st->n_event_connections);
    for (size_t i = 0; ok && i < st->n_routes; i++)
        ok = st->routes[i]->vp <= 0xff && st->routes[i]->sint <= 0xff;
    if (ok) {
        s_clear(h);
        for (size_t i = 0; i < st->n_routes; i++) {
            h->routes[i].vp = st->routes[i]->vp;
            h->routes[i].sint = st->routes[i]->sint;
        }
        h->n_routes = st->n_routes;
        for (size_t i = 0; i < st->n_message_connections; i++) {
            const Vmm__DeviceState__HypervTestdev__Connection *c = st->message_connections[i];
            s_conn_create(h, true, c->connection_id, c->vp, c->sint);
        }
        for (size_t i = 0; i < st->n_event_connections; i++) {
            const Vmm__DeviceState__HypervTestdev__Connection *c = st->event_connections[i];
            s_conn_create(h, false, c->connection_id, c->vp, c->sint);
        }
    }
    vmm__device_state__hyperv_testdev__free_unpacked(st, NULL);
    return ok ? 0 : -EINVAL;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "hyperv-testdev",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .synic_message = s_synic_message,
    .synic_event = s_synic_event,
    .destroy = s_destroy,
};

device_t *dev_hyperv_testdev_new(const void *config, device_env_t *env)
{
    (void)config;
    hyperv_testdev_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->dev = (device_t){.ops = &s_ops, .env = env};
    h->dev.spec = (device_spec_t){
        .name = "hyperv-testdev",
        .n_ranges = 1,
        .ranges = {{.start = DEV_HYPERV_TESTDEV_PORT, .len = 4}},
    };
    return &h->dev;
}
