/*
 * The trace writer (rt_trace_start()): records go straight into the trace
 * file through a shared mapping. A thread reserves a record's bytes with
 * one atomic add, fills them, and publishes the record by writing its
 * first byte last; the file grows ahead of the writers. What a writer put
 * in the mapping is the kernel's to keep once the write is done, so a
 * process that crashes loses at most the record it was writing, and a
 * reader sees every record whose first byte is there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "proto/trace.pb-c.h"
#include "runtime/rt_internal.h"

/* Address space the mapping reserves (not memory): the longest trace. */
#define S_MAP_MAX (64ull << 30)
/* The file grows this much at a time, ahead of the writers, and the
 * grower thread keeps it S_AHEAD ahead of them. */
#define S_GROW (4ull << 20)
#define S_AHEAD (16ull << 20)
/* Written pages are let go this far behind the newest record, so that a
 * long run keeps little of the trace mapped. */
#define S_RELEASE (16ull << 20)
/* The length prefix: a varint in exactly this many bytes. */
#define S_PREFIX 4
#define S_MAX_RECORD ((1u << 28) - 1)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define S_POPULATE_WRITE MADV_POPULATE_WRITE

struct rt_trace_s {
    int fd;
    uint8_t *map;
    _Atomic uint64_t used;  /* bytes reserved */
    _Atomic uint64_t size;  /* the file's size */
    pthread_mutex_t grow;   /* one thread grows the file at a time */
    uint64_t released;      /* pages let go below this offset */
    /* The grower thread: woken (kicked) by a writer past mark. */
    pthread_t grower;
    bool grower_running, stopping, kicked;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    _Atomic uint64_t mark;
    atomic_bool kick_sent;
    char **actors;          /* name prefixes; none: every actor */
    size_t n_actors;
    bool kinds[64];         /* by body field number; all false: every kind */
    bool any_kind;
    _Atomic uint64_t records, dropped;
};

/* ---- Encoding ---------------------------------------------------------------- */

static size_t s_key_varint(uint32_t field, uint64_t v)
{
    return rt_wire_varint_size((uint64_t)field << 3) + rt_wire_varint_size(v);
}

static size_t s_key_bytes(uint32_t field, size_t len)
{
    return rt_wire_varint_size((uint64_t)field << 3 | 2) + rt_wire_varint_size(len) + len;
}

static uint8_t *s_put_varint(uint8_t *p, uint32_t field, uint64_t v)
{
    p = rt_wire_put_varint(p, (uint64_t)field << 3);
    return rt_wire_put_varint(p, v);
}

static uint8_t *s_put_bytes(uint8_t *p, uint32_t field, const void *bytes, size_t len)
{
    p = rt_wire_put_varint(p, (uint64_t)field << 3 | 2);
    p = rt_wire_put_varint(p, len);
    memcpy(p, bytes, len);
    return p + len;
}

static uint8_t *s_put_key_len(uint8_t *p, uint32_t field, size_t len)
{
    p = rt_wire_put_varint(p, (uint64_t)field << 3 | 2);
    return rt_wire_put_varint(p, len);
}

/* ---- Reserving and publishing ---------------------------------------------------- */

/* Makes the file hold end bytes, rounded up to S_GROW, its pages made
 * ahead; lets go of pages well behind. Called with t->grow held. Returns
 * 0 or a negative errno. */
static int s_grow_locked(rt_trace_t *t, uint64_t end)
{
    int rc = 0;
    uint64_t size = atomic_load(&t->size);
    if (end > S_MAP_MAX)
        end = S_MAP_MAX;
    if (end > size) {
        uint64_t want = (end + S_GROW - 1) / S_GROW * S_GROW;
        rc = ftruncate(t->fd, (off_t)want) ? -errno : 0;
        /* Its pages made now, in one go, not a fault at a time by the
         * writers (where it can: Linux 5.14 and later). */
        if (!rc)
            madvise(t->map + size, want - size, S_POPULATE_WRITE);
        if (!rc)
            atomic_store(&t->size, want);
    }
    /* Pages well behind the writers are written back and let go. */
    uint64_t used = atomic_load(&t->used);
    while (!rc && used > t->released + 2 * S_RELEASE) {
        madvise(t->map + t->released, S_RELEASE, MADV_DONTNEED);
        t->released += S_RELEASE;
    }
    return rc;
}

/* The grower: keeps the file S_AHEAD bytes ahead of the writers, so that
 * making pages (zeroing, accounting: most of what a record would cost) is
 * this thread's work, not theirs. A writer past the mark wakes it. */
static void *s_grower_main(void *arg)
{
    rt_trace_t *t = arg;
    pthread_mutex_lock(&t->wake_lock);
    while (!t->stopping) {
        if (!t->kicked) {
            pthread_cond_wait(&t->wake, &t->wake_lock);
            continue;
        }
        t->kicked = false;
        pthread_mutex_unlock(&t->wake_lock);
        pthread_mutex_lock(&t->grow);
        s_grow_locked(t, atomic_load(&t->used) + S_AHEAD);
        pthread_mutex_unlock(&t->grow);
        atomic_store(&t->mark, atomic_load(&t->size) - S_AHEAD / 2);
        atomic_store(&t->kick_sent, false);
        pthread_mutex_lock(&t->wake_lock);
    }
    pthread_mutex_unlock(&t->wake_lock);
    return NULL;
}

/* Reserves a record of len bytes: where its bytes go, or NULL (dropped,
 * counted). */
static uint8_t *s_reserve(rt_trace_t *t, size_t len, uint64_t *at)
{
    if (len > S_MAX_RECORD) { /* only the header and actors can get here */
        atomic_fetch_add(&t->dropped, 1);
        return NULL;
    }
    uint64_t off = atomic_fetch_add(&t->used, S_PREFIX + len), end = off + S_PREFIX + len;
    if (end > atomic_load_explicit(&t->mark, memory_order_relaxed) &&
        !atomic_exchange(&t->kick_sent, true)) {
        pthread_mutex_lock(&t->wake_lock);
        t->kicked = true;
        pthread_cond_signal(&t->wake);
        pthread_mutex_unlock(&t->wake_lock);
    }
    int rc = 0;
    if (end > atomic_load(&t->size)) { /* ahead of the grower: grow here */
        pthread_mutex_lock(&t->grow);
        rc = end > S_MAP_MAX ? -ENOSPC : s_grow_locked(t, end);
        pthread_mutex_unlock(&t->grow);
    }
    if (rc || end > atomic_load(&t->size)) {
        atomic_fetch_add(&t->dropped, 1);
        return NULL;
    }
    *at = off;
    return t->map + off + S_PREFIX;
}

/* Writes the length prefix, its first byte last: the record exists for a
 * reader from then on. */
static void s_publish(rt_trace_t *t, uint64_t at, size_t len)
{
    uint8_t *p = t->map + at;
    p[1] = (uint8_t)(0x80 | ((len >> 7) & 0x7f));
    p[2] = (uint8_t)(0x80 | ((len >> 14) & 0x7f));
    p[3] = (uint8_t)((len >> 21) & 0x7f);
    __atomic_store_n(&p[0], (uint8_t)(0x80 | (len & 0x7f)), __ATOMIC_RELEASE);
    atomic_fetch_add(&t->records, 1);
}

/* A record protobuf-c packs (the rare ones: the header, actors). */
static void s_write_packed(rt_trace_t *t, const Vmm__Trace__Record *r)
{
    size_t len = vmm__trace__record__get_packed_size(r);
    uint64_t at;
    uint8_t *p = s_reserve(t, len, &at);
    if (!p)
        return;
    vmm__trace__record__pack(r, p);
    s_publish(t, at, len);
}

/* ---- Filters ------------------------------------------------------------------- */

static bool s_actor_wanted(const rt_trace_t *t, const char *name)
{
    if (!t->n_actors)
        return true;
    for (size_t i = 0; i < t->n_actors; i++)
        if (!strncmp(name, t->actors[i], strlen(t->actors[i])))
            return true;
    return false;
}

static bool s_kind_wanted(const rt_trace_t *t, uint32_t body)
{
    return t->any_kind || (body < 64 && t->kinds[body]);
}

/* The envelope body field of a kind's name ("device_request"), or 0. */
static uint32_t s_body_of(const char *kind)
{
    const ProtobufCMessageDescriptor *d = &vmm__envelope__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id >= 10 && !strcmp(d->fields[i].name, kind))
            return d->fields[i].id;
    return 0;
}

/* ---- Records ---------------------------------------------------------------------- */

/* A record in place of one too large to be written. */
static void s_lost(rt_trace_t *t, const rt_actor_t *actor, uint64_t now, uint64_t seq,
                   size_t length)
{
    Vmm__Trace__Lost l = VMM__TRACE__LOST__INIT;
    l.t_ns = now;
    l.actor = actor->name;
    l.executor = actor->ex->name;
    l.seq = seq;
    l.length = length;
    Vmm__Trace__Record r = VMM__TRACE__RECORD__INIT;
    r.record_case = VMM__TRACE__RECORD__RECORD_LOST;
    r.lost = &l;
    s_write_packed(t, &r);
    atomic_fetch_add(&t->dropped, 1);
}

/* What every record of an actor's starts with: the time, its thread's
 * count, the names' lengths. */
typedef struct {
    uint64_t now, seq;
    size_t name_len, ex_len;
} s_head_t;

static s_head_t s_head(const rt_actor_t *actor)
{
    return (s_head_t){rt_now_ns(NULL),
                      atomic_fetch_add_explicit(&actor->ex->trace_seq, 1, memory_order_relaxed) + 1,
                      strlen(actor->name),
                      strlen(actor->ex->name)};
}

/* Reserves a record whose top-level field `record` holds inner bytes, and
 * writes its key and length: where the inner bytes go, or NULL (a record
 * too large is written as Lost). */
static uint8_t *s_begin(rt_trace_t *t, const rt_actor_t *actor, const s_head_t *h,
                        uint32_t record, size_t inner, uint64_t *at)
{
    size_t total = s_key_bytes(record, inner);
    if (total > S_MAX_RECORD) {
        s_lost(t, actor, h->now, h->seq, total);
        return NULL;
    }
    uint8_t *p = s_reserve(t, total, at);
    return p ? s_put_key_len(p, record, inner) : NULL;
}

static void s_message(rt_t *rt, rt_trace_dir_t dir, const rt_actor_t *actor,
                      const rt_actor_t *peer, const Vmm__Envelope *env, const uint8_t *bytes,
                      size_t len, uint32_t extra_frames)
{
    rt_trace_t *t = atomic_load_explicit(&rt->trace, memory_order_acquire);
    if (!t || !(s_actor_wanted(t, actor->name) || (peer && s_actor_wanted(t, peer->name))))
        return;
    if (!t->any_kind &&
        !s_kind_wanted(t, bytes ? (uint32_t)rt_peek_body(bytes, len) : (uint32_t)env->body_case))
        return;
    /* An envelope not packed yet is packed straight into the record. */
    rt_wire_size_t sizes;
    if (!bytes)
        len = rt_wire_measure(env, &sizes);
    s_head_t h = s_head(actor);
    size_t inner = s_key_varint(1, h.now) + s_key_varint(2, dir) + s_key_bytes(3, h.name_len) +
                   s_key_bytes(4, h.ex_len) + s_key_varint(5, h.seq) + s_key_bytes(6, len) +
                   (extra_frames ? s_key_varint(7, extra_frames) : 0);
    uint64_t at;
    uint8_t *p = s_begin(t, actor, &h, 3, inner, &at);
    if (!p)
        return;
    p = s_put_varint(p, 1, h.now);
    p = s_put_varint(p, 2, dir);
    p = s_put_bytes(p, 3, actor->name, h.name_len);
    p = s_put_bytes(p, 4, actor->ex->name, h.ex_len);
    p = s_put_varint(p, 5, h.seq);
    if (extra_frames)
        p = s_put_varint(p, 7, extra_frames);
    if (bytes) {
        s_put_bytes(p, 6, bytes, len);
    } else {
        p = s_put_key_len(p, 6, len);
        rt_wire_pack(env, &sizes, p);
    }
    s_publish(t, at, s_key_bytes(3, inner));
}

void rt_trace_message(rt_t *rt, rt_trace_dir_t dir, const rt_actor_t *actor,
                      const rt_actor_t *peer, const Vmm__Envelope *env, const uint8_t *bytes,
                      size_t len)
{
    s_message(rt, dir, actor, peer, env, bytes, len, 0);
}

void rt_trace_rx_extra(rt_t *rt, const rt_actor_t *actor, const uint8_t *bytes, size_t len,
                       uint32_t extra_frames)
{
    s_message(rt, RT_TRACE_RX, actor, NULL, NULL, bytes, len, extra_frames);
}

/* An Input (record 4) or Output (record 5) record: member is the field
 * that holds a varint value, or with data a Bytes (kind, address, data). */
static void s_input(rt_trace_t *t, const rt_actor_t *actor, uint32_t record, uint32_t member,
                    uint64_t value, uint32_t kind, const void *data, size_t len)
{
    s_head_t h = s_head(actor);
    size_t b = s_key_varint(1, kind) + s_key_varint(2, value) + s_key_bytes(3, len);
    size_t m = data ? s_key_bytes(member, b) : s_key_varint(member, value);
    size_t inner = s_key_varint(1, h.now) + s_key_bytes(2, h.name_len) +
                   s_key_bytes(3, h.ex_len) + s_key_varint(4, h.seq) + m;
    uint64_t at;
    uint8_t *p = s_begin(t, actor, &h, record, inner, &at);
    if (!p)
        return;
    p = s_put_varint(p, 1, h.now);
    p = s_put_bytes(p, 2, actor->name, h.name_len);
    p = s_put_bytes(p, 3, actor->ex->name, h.ex_len);
    p = s_put_varint(p, 4, h.seq);
    if (data) {
        p = s_put_key_len(p, member, b);
        p = s_put_varint(p, 1, kind);
        p = s_put_varint(p, 2, value);
        s_put_bytes(p, 3, data, len);
    } else {
        s_put_varint(p, member, value);
    }
    s_publish(t, at, s_key_bytes(record, inner));
}

void rt_trace_input(rt_t *rt, const rt_actor_t *actor, rt_trace_input_t what, uint64_t value)
{
    rt_trace_t *t = atomic_load_explicit(&rt->trace, memory_order_acquire);
    if (t && s_actor_wanted(t, actor->name))
        s_input(t, actor, 4, what == RT_TRACE_CLOCK ? 5 : 6, value, 0, NULL, 0);
}

int rt_actor_input(rt_actor_t *self, uint32_t kind, uint64_t address, void *data, size_t len)
{
    if (self->ex->replay)
        return rt_replay_bytes(self, true, kind, address, data, len);
    rt_trace_t *t = atomic_load_explicit(&self->rt->trace, memory_order_acquire);
    if (t && s_actor_wanted(t, self->name))
        s_input(t, self, 4, 7, address, kind, data ? data : "", len);
    return 0;
}

void rt_actor_output(rt_actor_t *self, uint32_t kind, uint64_t address, const void *data,
                     size_t len)
{
    if (self->ex->replay) {
        rt_replay_bytes(self, false, kind, address, (void *)data, len);
        return;
    }
    rt_trace_t *t = atomic_load_explicit(&self->rt->trace, memory_order_acquire);
    if (t && s_actor_wanted(t, self->name))
        s_input(t, self, 5, 5, address, kind, data ? data : "", len);
}

/* An Actor record; stopped: after its fini. */
static void s_actor(rt_t *rt, const rt_actor_t *actor, const void *arg, bool stopped)
{
    rt_trace_t *t = atomic_load_explicit(&rt->trace, memory_order_acquire);
    if (!t || !s_actor_wanted(t, actor->name))
        return;
    Vmm__Trace__Actor a = VMM__TRACE__ACTOR__INIT;
    a.name = actor->name;
    a.kind = (char *)(actor->ops->kind ? actor->ops->kind : "");
    a.executor = actor->ex->name;
    a.stopped = stopped;
    a.endpoint = actor->extra_endpoint ? actor->extra_endpoint : "";
    if (!stopped && actor->ops->recipe && actor->ops->recipe(arg, &a.recipe))
        rt_log(rt, actor, RT_LOG_WARN, "trace: no recipe: a replay cannot start it alone");
    Vmm__Trace__Record r = VMM__TRACE__RECORD__INIT;
    r.record_case = VMM__TRACE__RECORD__RECORD_ACTOR;
    r.actor = &a;
    s_write_packed(t, &r);
    free(a.recipe.data);
}

void rt_trace_actor(rt_t *rt, const rt_actor_t *actor, const void *arg)
{
    s_actor(rt, actor, arg, false);
}

void rt_trace_actor_stopped(rt_t *rt, const rt_actor_t *actor)
{
    s_actor(rt, actor, NULL, true);
}

/* ---- Starting and stopping ---------------------------------------------------------- */

static void s_free(rt_trace_t *t)
{
    if (t->grower_running) {
        pthread_mutex_lock(&t->wake_lock);
        t->stopping = true;
        pthread_cond_signal(&t->wake);
        pthread_mutex_unlock(&t->wake_lock);
        pthread_join(t->grower, NULL);
    }
    if (t->map && t->map != MAP_FAILED)
        munmap(t->map, S_MAP_MAX);
    if (t->fd >= 0)
        close(t->fd);
    for (size_t i = 0; i < t->n_actors; i++)
        free(t->actors[i]);
    free(t->actors);
    pthread_mutex_destroy(&t->grow);
    pthread_mutex_destroy(&t->wake_lock);
    pthread_cond_destroy(&t->wake);
    free(t);
}

static uint64_t s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void s_write_header(rt_t *rt, rt_trace_t *t, const rt_trace_config_t *cfg)
{
    char host[256] = "", key[64] = "";
    rt_curve_public_key(rt, key, sizeof key);
    gethostname(host, sizeof host - 1);
    Vmm__Trace__Header h = VMM__TRACE__HEADER__INIT;
    h.magic = RT_TRACE_MAGIC;
    h.version = RT_TRACE_VERSION;
    h.process = (char *)(cfg->process ? cfg->process : "vmm");
    h.pid = (uint32_t)getpid();
    h.host = host;
    h.start_monotonic_ns = s_clock(CLOCK_MONOTONIC);
    h.start_realtime_ns = s_clock(CLOCK_REALTIME);
    h.n_actor_filters = cfg->n_actors;
    h.actor_filters = (char **)cfg->actors;
    h.n_kind_filters = cfg->n_kinds;
    h.kind_filters = (char **)cfg->kinds;
    h.curve_public_key = key;
    Vmm__Trace__Record r = VMM__TRACE__RECORD__INIT;
    r.record_case = VMM__TRACE__RECORD__RECORD_HEADER;
    r.header = &h;
    s_write_packed(t, &r);
}

int rt_trace_start(rt_t *rt, const rt_trace_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->path) {
        snprintf(err, errlen, "no trace file");
        return -EINVAL;
    }
    if (atomic_load(&rt->trace)) {
        snprintf(err, errlen, "a trace is being written already");
        return -EEXIST;
    }
    rt_trace_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->grow, NULL);
    pthread_mutex_init(&t->wake_lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    t->fd = -1;
    int rc = 0;
    t->any_kind = !cfg->n_kinds;
    for (size_t i = 0; i < cfg->n_kinds; i++) {
        uint32_t body = s_body_of(cfg->kinds[i]);
        if (!body || body >= 64) {
            snprintf(err, errlen, "no message kind \"%s\" (they are the envelope's body "
                                  "fields, e.g. device_request)",
                     cfg->kinds[i]);
            rc = -EINVAL;
            goto fail;
        }
        t->kinds[body] = true;
    }
    t->actors = calloc(cfg->n_actors ? cfg->n_actors : 1, sizeof *t->actors);
    for (size_t i = 0; t->actors && i < cfg->n_actors; i++)
        if ((t->actors[t->n_actors] = strdup(cfg->actors[i])))
            t->n_actors++;
    if (!t->actors || t->n_actors != cfg->n_actors) {
        rc = -ENOMEM;
        goto fail;
    }
    t->fd = open(cfg->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", cfg->path, strerror(errno));
        goto fail;
    }
    t->map = mmap(NULL, S_MAP_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, t->fd, 0);
    if (t->map == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "mapping %s: %s", cfg->path, strerror(errno));
        goto fail;
    }
    /* The first stretch made here; the grower makes the rest. */
    pthread_mutex_lock(&t->grow);
    rc = s_grow_locked(t, S_AHEAD);
    pthread_mutex_unlock(&t->grow);
    if (rc) {
        snprintf(err, errlen, "growing %s: %s", cfg->path, strerror(-rc));
        goto fail;
    }
    atomic_store(&t->mark, S_AHEAD / 2);
    if ((rc = -pthread_create(&t->grower, NULL, s_grower_main, t))) {
        snprintf(err, errlen, "starting the trace's grower: %s", strerror(-rc));
        goto fail;
    }
    t->grower_running = true;
    s_write_header(rt, t, cfg);
    atomic_store_explicit(&rt->trace, t, memory_order_release);
    return 0;
fail:
    s_free(t);
    return rc;
}

void rt_trace_stop(rt_t *rt)
{
    rt_trace_t *t = atomic_exchange(&rt->trace, NULL);
    if (!t)
        return;
    /* Every writer is done (the executors have stopped): the file ends at
     * the last record. */
    if (ftruncate(t->fd, (off_t)atomic_load(&t->used)))
        rt_log(rt, NULL, RT_LOG_WARN, "trace: %s", strerror(errno));
    s_free(t);
}

void rt_trace_stats(rt_t *rt, uint64_t *records, uint64_t *dropped)
{
    rt_trace_t *t = atomic_load(&rt->trace);
    *records = t ? atomic_load(&t->records) : 0;
    *dropped = t ? atomic_load(&t->dropped) : 0;
}
