/* Traces to Perfetto: vmm/trace_export.h. */
#include "vmm/trace_export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/perfetto.pb-c.h"
#include "runtime/pbtext.h"
#include "runtime/trace.h"

#define S_CLOCK_MONOTONIC 3 /* Perfetto's BUILTIN_CLOCK_MONOTONIC */
#define S_CLOCK_BOOTTIME 6
#define S_SEQUENCE 1        /* every packet on one sequence */
#define S_STATE_CLEARED 1   /* SEQ_INCREMENTAL_STATE_CLEARED */

typedef struct {
    uint64_t t, order, track;
    Vmm__Perfetto__TrackEvent__Type type;
    char *name, *from, *fields; /* owned; NULL for none */
    uint64_t flow, end_flow;    /* flow ids through and ending here; 0: none */
} s_event_t;

typedef struct {
    uint64_t uuid, parent;
    char *name;
} s_track_t;

/* An actor of the file being read: its track and the slice it is in. */
typedef struct {
    char *name;
    uint64_t track;
    bool open;
    uint64_t end; /* the slice's last record so far */
} s_actor_t;

/* One-way envelopes from one actor to another, counted where they left
 * and where they arrived: the n-th of each is the same envelope. */
typedef struct {
    char *key;
    uint64_t sent, taken;
} s_pair_t;

typedef struct {
    s_event_t *events;
    size_t n_events, cap_events;
    s_track_t *tracks;
    size_t n_tracks;
    s_pair_t *pairs;
    size_t n_pairs;
    uint64_t order;
    trace_export_stats_t stats;
    bool failed; /* out of memory: reported once, at the end */
    /* The first file's host, and its realtime clock less its monotonic. */
    char *host0;
    int64_t clock0;
    /* The file being read. */
    size_t file;
    uint64_t process;
    int64_t shift;
    s_actor_t *actors;
    size_t n_actors;
} s_export_t;

/* ---- Names to numbers ----------------------------------------------------------- */

/* FNV-1a of printf's text: track uuids and flow ids, never 0. */
static uint64_t s_id(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static uint64_t s_id(const char *fmt, ...)
{
    char key[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h | 1;
}

static char *s_dup(s_export_t *x, const char *s)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        x->failed = true;
    return copy;
}

/* A track, once per uuid. */
static uint64_t s_track(s_export_t *x, uint64_t uuid, uint64_t parent, const char *name)
{
    for (size_t i = 0; i < x->n_tracks; i++)
        if (x->tracks[i].uuid == uuid)
            return uuid;
    s_track_t *grown = realloc(x->tracks, (x->n_tracks + 1) * sizeof *grown);
    if (!grown) {
        x->failed = true;
        return uuid;
    }
    x->tracks = grown;
    x->tracks[x->n_tracks++] = (s_track_t){uuid, parent, s_dup(x, name)};
    x->stats.tracks++;
    return uuid;
}

static s_actor_t *s_actor(s_export_t *x, const char *name)
{
    for (size_t i = 0; i < x->n_actors; i++)
        if (!strcmp(x->actors[i].name, name))
            return &x->actors[i];
    s_actor_t *grown = realloc(x->actors, (x->n_actors + 1) * sizeof *grown);
    char *copy = strdup(name);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            x->actors = grown;
        x->failed = true;
        return NULL;
    }
    x->actors = grown;
    uint64_t track = s_track(x, s_id("actor|%zu|%s", x->file, name), x->process, name);
    x->actors[x->n_actors] = (s_actor_t){.name = copy, .track = track};
    return &x->actors[x->n_actors++];
}

/* The flow of a request: from its sending to its reply's arrival. */
static uint64_t s_request_flow(const char *asker, uint64_t id)
{
    return s_id("request|%s|%" PRIu64, asker, id);
}

/* The flow of the next one-way envelope from sender to receiver, counted
 * where it left (sent) or where it arrived. */
static uint64_t s_event_flow(s_export_t *x, const char *sender, const char *receiver, bool sent)
{
    char key[600];
    snprintf(key, sizeof key, "%s|%s", sender, receiver);
    s_pair_t *pair = NULL;
    for (size_t i = 0; i < x->n_pairs && !pair; i++)
        if (!strcmp(x->pairs[i].key, key))
            pair = &x->pairs[i];
    if (!pair) {
        s_pair_t *grown = realloc(x->pairs, (x->n_pairs + 1) * sizeof *grown);
        char *copy = strdup(key);
        if (!grown || !copy) {
            free(copy);
            if (grown)
                x->pairs = grown;
            x->failed = true;
            return 0;
        }
        x->pairs = grown;
        pair = &x->pairs[x->n_pairs++];
        *pair = (s_pair_t){.key = copy};
    }
    uint64_t n = sent ? ++pair->sent : ++pair->taken;
    return s_id("event|%s|%" PRIu64, key, n);
}

/* ---- Events -------------------------------------------------------------------- */

static s_event_t *s_event(s_export_t *x, uint64_t t, uint64_t track,
                          Vmm__Perfetto__TrackEvent__Type type, const char *name)
{
    if (x->n_events == x->cap_events) {
        size_t cap = x->cap_events ? x->cap_events * 2 : 1024;
        s_event_t *grown = realloc(x->events, cap * sizeof *grown);
        if (!grown) {
            x->failed = true;
            return NULL;
        }
        x->events = grown;
        x->cap_events = cap;
    }
    s_event_t *e = &x->events[x->n_events++];
    *e = (s_event_t){.t = t, .order = x->order++, .track = track, .type = type,
                     .name = s_dup(x, name)};
    return e;
}

/* The actor's slice ends at its last record. */
static void s_close(s_export_t *x, s_actor_t *a)
{
    if (a && a->open) {
        s_event(x, a->end, a->track, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_END, NULL);
        a->open = false;
    }
}

/* A record of the actor's own: its slice goes on at least until t. */
static void s_touch(s_actor_t *a, uint64_t t)
{
    if (a && a->open && t > a->end)
        a->end = t;
}

/* A new slice: what the actor does next, at t. */
static s_event_t *s_begin(s_export_t *x, s_actor_t *a, uint64_t t, const char *name)
{
    if (!a)
        return NULL;
    s_close(x, a);
    a->open = true;
    a->end = t;
    x->stats.slices++;
    return s_event(x, t, a->track, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN, name);
}

static s_event_t *s_instant(s_export_t *x, s_actor_t *a, uint64_t t, const char *name)
{
    if (!a)
        return NULL;
    s_touch(a, t);
    x->stats.instants++;
    return s_event(x, t, a->track, VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_INSTANT, name);
}

/* An envelope: an instant where it left (tx, nested); where it arrived
 * (rx, nested), a slice for its handling, or an instant for a reply. */
static void s_message(s_export_t *x, const Vmm__Trace__Message *m, uint64_t t)
{
    s_actor_t *a = s_actor(x, m->actor);
    Vmm__Envelope *env = rt_trace_envelope(m);
    if (!env) {
        s_instant(x, a, t, "bytes that are no envelope");
        return;
    }
    char kind[96], name[700], fields[1024];
    rt_trace_kind(env, kind, sizeof kind);
    rt_pb_text(rt_trace_body(env), fields, sizeof fields);
    bool reply = env->reply_to != 0;
    uint64_t flow = reply              ? s_request_flow(env->receiver, env->reply_to)
                    : env->request_id ? s_request_flow(env->sender, env->request_id)
                                      : 0;
    bool left = m->dir == VMM__TRACE__DIR__TX || m->dir == VMM__TRACE__DIR__NESTED;
    bool arrived = m->dir == VMM__TRACE__DIR__RX || m->dir == VMM__TRACE__DIR__NESTED;
    if (left) {
        snprintf(name, sizeof name, "to %s: %s", env->receiver, kind);
        s_event_t *e = s_instant(x, a, t, name);
        if (e) {
            e->flow = flow ? flow : s_event_flow(x, env->sender, env->receiver, true);
            e->fields = s_dup(x, fields);
            x->stats.flows += !reply;
        }
    }
    if (arrived) {
        s_actor_t *b = m->dir == VMM__TRACE__DIR__NESTED ? s_actor(x, env->receiver) : a;
        s_event_t *e;
        if (reply) {
            snprintf(name, sizeof name, "reply from %s: %s", env->sender, kind);
            if ((e = s_instant(x, b, t, name)))
                e->end_flow = flow;
        } else if ((e = s_begin(x, b, t, kind))) {
            if (flow)
                e->flow = flow; /* on to the reply */
            else
                e->end_flow = s_event_flow(x, env->sender, env->receiver, false);
            e->from = s_dup(x, env->sender);
        }
        if (e && !e->fields)
            e->fields = s_dup(x, fields);
    }
    vmm__envelope__free_unpacked(env, NULL);
}

static void s_record(s_export_t *x, const Vmm__Trace__Record *rec)
{
    char name[128];
    switch (rec->record_case) {
    case VMM__TRACE__RECORD__RECORD_MESSAGE:
        s_message(x, rec->message, rec->message->t_ns + (uint64_t)x->shift);
        break;
    case VMM__TRACE__RECORD__RECORD_INPUT: {
        const Vmm__Trace__Input *in = rec->input;
        s_actor_t *a = s_actor(x, in->actor);
        uint64_t t = in->t_ns + (uint64_t)x->shift;
        if (in->input_case == VMM__TRACE__INPUT__INPUT_TIMER) {
            snprintf(name, sizeof name, "timer %" PRIu64, in->timer);
            s_begin(x, a, t, name);
        } else {
            s_touch(a, t);
        }
        break;
    }
    case VMM__TRACE__RECORD__RECORD_OUTPUT:
        s_touch(s_actor(x, rec->output->actor), rec->output->t_ns + (uint64_t)x->shift);
        break;
    case VMM__TRACE__RECORD__RECORD_LOST:
        s_instant(x, s_actor(x, rec->lost->actor), rec->lost->t_ns + (uint64_t)x->shift,
                  "a record too large to be written");
        break;
    case VMM__TRACE__RECORD__RECORD_ACTOR: {
        s_actor_t *a = s_actor(x, rec->actor->name);
        if (rec->actor->stopped)
            s_close(x, a);
        break;
    }
    default:
        break;
    }
}

/* Reads one file: its host's and process's tracks, its actors' events. */
static int s_file(s_export_t *x, const char *path, char *err, size_t errlen)
{
    char why[300];
    rt_trace_reader_t *r = rt_trace_open(path, err, errlen);
    if (!r)
        return -EBADMSG;
    const Vmm__Trace__Header *h = rt_trace_header(r);
    uint64_t host = s_track(x, s_id("host|%s", h->host), 0, h->host);
    char name[400];
    snprintf(name, sizeof name, "%s (pid %u)", h->process, h->pid);
    x->process = s_track(x, s_id("process|%zu|%u", x->file, h->pid), host, name);
    /* Another host's clock: aligned by the realtime clocks at the start. */
    int64_t clock = (int64_t)(h->start_realtime_ns - h->start_monotonic_ns);
    x->shift = 0;
    if (!x->host0) {
        x->host0 = s_dup(x, h->host);
        x->clock0 = clock;
    } else if (strcmp(x->host0, h->host)) {
        x->shift = clock - x->clock0;
    }
    const Vmm__Trace__Record *rec;
    int rc;
    while ((rc = rt_trace_next(r, &rec, why, sizeof why)) == 1)
        s_record(x, rec);
    for (size_t i = 0; i < x->n_actors; i++) {
        s_close(x, &x->actors[i]);
        free(x->actors[i].name);
    }
    free(x->actors);
    x->actors = NULL;
    x->n_actors = 0;
    rt_trace_close(&r);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -EBADMSG;
    }
    return 0;
}

/* ---- Writing -------------------------------------------------------------------------- */

static int s_by_time(const void *pa, const void *pb)
{
    const s_event_t *a = pa, *b = pb;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* One packet, as Trace's field 1. */
static int s_put(FILE *out, const Vmm__Perfetto__TracePacket *p)
{
    size_t len = vmm__perfetto__trace_packet__get_packed_size(p);
    uint8_t head[11], *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    vmm__perfetto__trace_packet__pack(p, buf);
    size_t n = 0;
    head[n++] = 1 << 3 | 2;
    for (uint64_t v = len; n < sizeof head; v >>= 7) {
        head[n++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        if (v < 0x80)
            break;
    }
    int rc = fwrite(head, 1, n, out) == n && fwrite(buf, 1, len, out) == len ? 0 : -EIO;
    free(buf);
    return rc;
}

static int s_write_clock(FILE *out, uint64_t t)
{
    Vmm__Perfetto__ClockSnapshot__Clock mono = VMM__PERFETTO__CLOCK_SNAPSHOT__CLOCK__INIT;
    Vmm__Perfetto__ClockSnapshot__Clock boot = VMM__PERFETTO__CLOCK_SNAPSHOT__CLOCK__INIT;
    Vmm__Perfetto__ClockSnapshot__Clock *clocks[] = {&mono, &boot};
    mono.has_clock_id = mono.has_timestamp = boot.has_clock_id = boot.has_timestamp = true;
    mono.clock_id = S_CLOCK_MONOTONIC;
    boot.clock_id = S_CLOCK_BOOTTIME;
    mono.timestamp = boot.timestamp = t;
    Vmm__Perfetto__ClockSnapshot snap = VMM__PERFETTO__CLOCK_SNAPSHOT__INIT;
    snap.n_clocks = 2;
    snap.clocks = clocks;
    snap.has_primary_trace_clock = true;
    snap.primary_trace_clock = S_CLOCK_MONOTONIC;
    Vmm__Perfetto__TracePacket p = VMM__PERFETTO__TRACE_PACKET__INIT;
    p.clock_snapshot = &snap;
    p.has_timestamp = p.has_timestamp_clock_id = true;
    p.timestamp = t;
    p.timestamp_clock_id = S_CLOCK_MONOTONIC;
    p.has_trusted_packet_sequence_id = true;
    p.trusted_packet_sequence_id = S_SEQUENCE;
    return s_put(out, &p);
}

static int s_write_track(FILE *out, const s_track_t *t)
{
    Vmm__Perfetto__TrackDescriptor d = VMM__PERFETTO__TRACK_DESCRIPTOR__INIT;
    d.has_uuid = true;
    d.uuid = t->uuid;
    d.name = t->name;
    d.has_parent_uuid = t->parent != 0;
    d.parent_uuid = t->parent;
    Vmm__Perfetto__TracePacket p = VMM__PERFETTO__TRACE_PACKET__INIT;
    p.track_descriptor = &d;
    p.has_trusted_packet_sequence_id = true;
    p.trusted_packet_sequence_id = S_SEQUENCE;
    return s_put(out, &p);
}

static int s_write_event(FILE *out, const s_event_t *e, bool first)
{
    Vmm__Perfetto__TrackEvent ev = VMM__PERFETTO__TRACK_EVENT__INIT;
    Vmm__Perfetto__DebugAnnotation from = VMM__PERFETTO__DEBUG_ANNOTATION__INIT;
    Vmm__Perfetto__DebugAnnotation fields = VMM__PERFETTO__DEBUG_ANNOTATION__INIT;
    Vmm__Perfetto__DebugAnnotation *args[2];
    char *category = "vmm";
    ev.has_type = ev.has_track_uuid = true;
    ev.type = e->type;
    ev.track_uuid = e->track;
    ev.name = e->name;
    if (e->type != VMM__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_END) {
        ev.n_categories = 1;
        ev.categories = &category;
    }
    uint64_t flow = e->flow, end_flow = e->end_flow;
    ev.n_flow_ids = flow != 0;
    ev.flow_ids = &flow;
    ev.n_terminating_flow_ids = end_flow != 0;
    ev.terminating_flow_ids = &end_flow;
    if (e->from) {
        from.name = "from";
        from.string_value = e->from;
        args[ev.n_debug_annotations++] = &from;
    }
    if (e->fields) {
        fields.name = "fields";
        fields.string_value = e->fields;
        args[ev.n_debug_annotations++] = &fields;
    }
    ev.debug_annotations = args;
    Vmm__Perfetto__TracePacket p = VMM__PERFETTO__TRACE_PACKET__INIT;
    p.track_event = &ev;
    p.has_timestamp = p.has_timestamp_clock_id = true;
    p.timestamp = e->t;
    p.timestamp_clock_id = S_CLOCK_MONOTONIC;
    p.has_trusted_packet_sequence_id = true;
    p.trusted_packet_sequence_id = S_SEQUENCE;
    p.has_sequence_flags = first;
    p.sequence_flags = S_STATE_CLEARED;
    return s_put(out, &p);
}

static int s_write(const s_export_t *x, const char *path, char *err, size_t errlen)
{
    FILE *out = fopen(path, "wb");
    if (!out) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    int rc = s_write_clock(out, x->n_events ? x->events[0].t : 0);
    for (size_t i = 0; !rc && i < x->n_tracks; i++)
        rc = s_write_track(out, &x->tracks[i]);
    for (size_t i = 0; !rc && i < x->n_events; i++)
        rc = s_write_event(out, &x->events[i], i == 0);
    if (fclose(out) && !rc)
        rc = -EIO;
    if (rc)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}

static void s_free(s_export_t *x)
{
    for (size_t i = 0; i < x->n_events; i++) {
        free(x->events[i].name);
        free(x->events[i].from);
        free(x->events[i].fields);
    }
    free(x->events);
    for (size_t i = 0; i < x->n_tracks; i++)
        free(x->tracks[i].name);
    free(x->tracks);
    for (size_t i = 0; i < x->n_pairs; i++)
        free(x->pairs[i].key);
    free(x->pairs);
    free(x->host0);
}

int trace_export(const char *const *files, size_t n, const char *out,
                 trace_export_stats_t *stats, char *err, size_t errlen)
{
    s_export_t x = {0};
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        x.file = i;
        rc = s_file(&x, files[i], err, errlen);
    }
    if (!rc && x.failed) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (!rc) {
        if (x.n_events) /* (qsort() may not be given NULL) */
            qsort(x.events, x.n_events, sizeof *x.events, s_by_time);
        rc = s_write(&x, out, err, errlen);
    }
    if (!rc && stats)
        *stats = x.stats;
    s_free(&x);
    return rc;
}
