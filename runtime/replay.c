/*
 * Replaying one actor from a trace: runtime/replay.h.
 *
 * The actor lives on an executor with no thread of its own, driven from
 * the caller's. Its stream is the trace's records that concern it, in file
 * order, which is its thread's order: what reached it (rx, a nested call
 * into it, a timer), what it sent (tx, a nested call out of it, outputs)
 * and what it consumed (clock, bytes). The driver hands it each delivery;
 * whatever the actor sends or consumes meanwhile is taken from the stream
 * where the runtime would have sent or read it (the hooks below, called by
 * actor.c, timer.c and trace.c), so a difference shows at the very record.
 */
#define _GNU_SOURCE
#include "runtime/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/pbtext.h"
#include "runtime/rt_internal.h"
#include "runtime/trace.h"

/* Records read ahead of the actor at most (fini's messages are told from
 * a divergence by finding the stop after them): a bound on memory. */
#define S_AHEAD_MAX 65536

/* A request the actor made by rt_request(): its id in the trace and now. */
typedef struct {
    uint64_t recorded, replayed;
} s_request_t;

/* A record of the actor's stream, read ahead. */
typedef struct {
    Vmm__Trace__Record *rec;
    Vmm__Envelope *env; /* a message's envelope, decoded (NULL: none, or bad) */
    uint64_t index;
} s_item_t;

struct rt_replay_s {
    const rt_replay_config_t *cfg;
    rt_replay_result_t *out;
    rt_trace_reader_t *reader;
    const Vmm__Trace__Header *header;
    s_item_t *ahead;
    size_t n_ahead, cap_ahead;
    bool at_end;       /* the reader has no more */
    int read_rc;       /* its error, once it failed */
    char read_err[300];
    char **local;      /* actors of the traced process, by name */
    size_t n_local;
    s_request_t *requests;
    size_t n_requests;
    rt_executor_t *ex;
    rt_actor_t *actor;
    bool stopped;      /* the stream's stop is reached */
    bool diverged;
    bool ignore;       /* past the trace's end: nothing more to compare */
    uint64_t clock;    /* the last reading given */
    uint64_t cause_index;
    char cause[768];
};

/* Copies src into dst, cut short where it does not fit. */
static void s_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- The stream --------------------------------------------------------------- */

static bool s_named(const rt_replay_t *r, const char *name)
{
    return name && !strcmp(name, r->cfg->actor);
}

static void s_note_local(rt_replay_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_local; i++)
        if (!strcmp(r->local[i], name))
            return;
    char **grown = realloc(r->local, (r->n_local + 1) * sizeof *grown);
    if (!grown)
        return;
    r->local = grown;
    if ((r->local[r->n_local] = strdup(name)))
        r->n_local++;
}

static bool s_is_local(const rt_replay_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_local; i++)
        if (!strcmp(r->local[i], name))
            return true;
    return false;
}

/* Whether rec is of the actor's stream; a message's envelope decoded into
 * *env (the caller's). */
static bool s_mine(rt_replay_t *r, const Vmm__Trace__Record *rec, Vmm__Envelope **env)
{
    *env = NULL;
    switch (rec->record_case) {
    case VMM__TRACE__RECORD__RECORD_MESSAGE: {
        const Vmm__Trace__Message *m = rec->message;
        bool own = s_named(r, m->actor);
        if (!own && m->dir != VMM__TRACE__DIR__NESTED)
            return false;
        *env = rt_trace_envelope(m);
        if (own || (*env && s_named(r, (*env)->receiver)))
            return true;
        if (*env)
            vmm__envelope__free_unpacked(*env, NULL);
        *env = NULL;
        return false;
    }
    case VMM__TRACE__RECORD__RECORD_INPUT:
        return s_named(r, rec->input->actor);
    case VMM__TRACE__RECORD__RECORD_OUTPUT:
        return s_named(r, rec->output->actor);
    case VMM__TRACE__RECORD__RECORD_LOST:
        return s_named(r, rec->lost->actor);
    case VMM__TRACE__RECORD__RECORD_ACTOR:
        s_note_local(r, rec->actor->name);
        return rec->actor->stopped && s_named(r, rec->actor->name);
    default:
        return false;
    }
}

/* Reads the next record of the stream into the look-ahead. Returns false
 * at the end, or when reading failed (r->read_rc). */
static bool s_read_one(rt_replay_t *r)
{
    if (r->at_end || r->n_ahead == S_AHEAD_MAX)
        return false;
    for (;;) {
        Vmm__Trace__Record *rec;
        int rc = rt_trace_take(r->reader, &rec, r->read_err, sizeof r->read_err);
        if (rc != 1) {
            r->at_end = true;
            r->read_rc = rc;
            return false;
        }
        Vmm__Envelope *env;
        if (s_mine(r, rec, &env)) {
            if (r->n_ahead == r->cap_ahead) {
                size_t cap = r->cap_ahead ? r->cap_ahead * 2 : 16;
                s_item_t *grown = realloc(r->ahead, cap * sizeof *grown);
                if (!grown) {
                    if (env)
                        vmm__envelope__free_unpacked(env, NULL);
                    vmm__trace__record__free_unpacked(rec, NULL);
                    r->at_end = true;
                    r->read_rc = -ENOMEM;
                    snprintf(r->read_err, sizeof r->read_err, "out of memory");
                    return false;
                }
                r->ahead = grown;
                r->cap_ahead = cap;
            }
            r->ahead[r->n_ahead++] = (s_item_t){rec, env, rt_trace_index(r->reader)};
            return true;
        }
        vmm__trace__record__free_unpacked(rec, NULL);
    }
}

/* The k-th record ahead, or NULL. */
static s_item_t *s_peek_at(rt_replay_t *r, size_t k)
{
    while (r->n_ahead <= k)
        if (!s_read_one(r))
            return NULL;
    return &r->ahead[k];
}

static s_item_t *s_peek(rt_replay_t *r)
{
    return s_peek_at(r, 0);
}

static void s_item_free(s_item_t *it)
{
    if (it->env)
        vmm__envelope__free_unpacked(it->env, NULL);
    vmm__trace__record__free_unpacked(it->rec, NULL);
}

/* Takes the first record ahead out of the stream: the caller's, to free
 * with s_item_free(). */
static s_item_t s_take(rt_replay_t *r)
{
    s_item_t it = r->ahead[0];
    memmove(&r->ahead[0], &r->ahead[1], --r->n_ahead * sizeof r->ahead[0]);
    return it;
}

static void s_drop(rt_replay_t *r)
{
    s_item_t it = s_take(r);
    s_item_free(&it);
}

/* ---- What a record is to the actor ---------------------------------------------- */

static const Vmm__Trace__Message *s_message(const s_item_t *it)
{
    return it->rec->record_case == VMM__TRACE__RECORD__RECORD_MESSAGE ? it->rec->message
                                                                      : NULL;
}

/* Something the actor sent: tx, or a nested call or reply from it. */
static bool s_is_emission(const rt_replay_t *r, const s_item_t *it)
{
    const Vmm__Trace__Message *m = s_message(it);
    if (m)
        return s_named(r, m->actor) &&
               (m->dir == VMM__TRACE__DIR__TX || m->dir == VMM__TRACE__DIR__NESTED);
    return it->rec->record_case == VMM__TRACE__RECORD__RECORD_OUTPUT;
}

/* Something handed to the actor: rx, a nested envelope into it, a timer. */
static bool s_is_delivery(const rt_replay_t *r, const s_item_t *it)
{
    const Vmm__Trace__Message *m = s_message(it);
    if (m)
        return m->dir == VMM__TRACE__DIR__RX ||
               (m->dir == VMM__TRACE__DIR__NESTED && !s_named(r, m->actor));
    return it->rec->record_case == VMM__TRACE__RECORD__RECORD_INPUT &&
           it->rec->input->input_case == VMM__TRACE__INPUT__INPUT_TIMER;
}

static bool s_is_stop(const s_item_t *it)
{
    return it->rec->record_case == VMM__TRACE__RECORD__RECORD_ACTOR;
}

/* A record as text, without the leading blanks of dump's time column. */
static void s_describe(const rt_replay_t *r, const s_item_t *it, char *buf, size_t size)
{
    char line[1024];
    rt_trace_describe(r->header, it->rec, line, sizeof line);
    const char *p = line;
    while (*p == ' ')
        p++;
    s_copy(buf, size, p);
}

/* ---- Divergence ----------------------------------------------------------------- */

/* The replay differs from the trace at the record ahead (or the end):
 * kind is what the actor did ("nothing" when it did not). */
static void s_diverge(rt_replay_t *r, const char *kind, const char *field, const char *expected,
                      const char *got, ...) __attribute__((format(printf, 5, 6)));
static void s_diverge(rt_replay_t *r, const char *kind, const char *field, const char *expected,
                      const char *fmt, ...)
{
    if (r->diverged)
        return;
    r->diverged = true;
    rt_replay_result_t *out = r->out;
    s_item_t *it = r->n_ahead ? &r->ahead[0] : NULL;
    out->index = it ? it->index : rt_trace_index(r->reader) + 1;
    s_copy(out->kind, sizeof out->kind, kind);
    s_copy(out->field, sizeof out->field, field ? field : "");
    s_copy(out->expected, sizeof out->expected, expected);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->got, sizeof out->got, fmt, ap);
    va_end(ap);
    out->cause_index = r->cause_index;
    s_copy(out->cause, sizeof out->cause, r->cause);
}

/* What the trace has ahead, as text for a report. */
static void s_expected(rt_replay_t *r, char *buf, size_t size)
{
    s_item_t *it = s_peek(r);
    if (it)
        s_describe(r, it, buf, size);
    else
        snprintf(buf, size, "the end of the actor's records");
}

static void s_report(rt_replay_t *r)
{
    rt_replay_result_t *out = r->out;
    if (!r->diverged) {
        snprintf(out->report, sizeof out->report,
                 "replay of %s from %s: matched: %" PRIu64 " delivered, %" PRIu64
                 " sent and compared, %" PRIu64 " inputs given back%s\n",
                 r->cfg->actor, r->cfg->trace, out->delivered, out->compared, out->inputs,
                 out->unfinished ? "; the trace ends before the actor stopped, so what its "
                                   "fini sent was not compared"
                                 : "");
        return;
    }
    snprintf(out->report, sizeof out->report,
             "replay of %s from %s diverged at record %" PRIu64 ":\n"
             "  actor:    %s\n"
             "  it sent:  %s\n"
             "%s%s%s"
             "  expected: %s\n"
             "  got:      %s\n"
             "  after record %" PRIu64 ": %s\n",
             r->cfg->actor, r->cfg->trace, out->index, r->cfg->actor, out->kind,
             *out->field ? "  field:    " : "", out->field, *out->field ? "\n" : "",
             out->expected, out->got, out->cause_index, out->cause);
}

/* ---- Hooks: what the actor sends and consumes ------------------------------------ */

static rt_replay_t *s_of(rt_actor_t *self)
{
    return self->ex->replay;
}

/* Whether env (the actor's) and the recorded one differ; says where. */
static bool s_differs(const Vmm__Envelope *want, const Vmm__Envelope *have, char *field,
                      size_t fsize, char *a, size_t asize, char *b, size_t bsize)
{
    /* Request ids are the executor's to number: only whether there is one
     * is compared. */
    Vmm__Envelope w = *want, h = *have;
    w.request_id = w.request_id != 0;
    h.request_id = h.request_id != 0;
    return rt_pb_diff(&w.base, &h.base, field, fsize, a, asize, b, bsize);
}

int rt_replay_emit(rt_actor_t *self, const Vmm__Envelope *env, uint64_t *recorded_id)
{
    rt_replay_t *r = s_of(self);
    if (r->ignore)
        return 0;
    if (r->diverged)
        return -ECANCELED;
    char kind[96], expected[768], got[768];
    rt_trace_kind(env, kind, sizeof kind);
    s_item_t *it = s_peek(r);
    const Vmm__Trace__Message *m = it && s_is_emission(r, it) ? s_message(it) : NULL;
    if (!m || !it->env) {
        s_expected(r, expected, sizeof expected);
        char text[512];
        rt_pb_text(&env->base, text, sizeof text);
        s_diverge(r, kind, NULL, expected, "%s -> %s %s %s", env->sender, env->receiver, kind,
                  text);
        return -ECANCELED;
    }
    char field[256];
    if (s_differs(it->env, env, field, sizeof field, expected, sizeof expected, got,
                  sizeof got)) {
        s_diverge(r, kind, field, expected, "%s", got);
        return -ECANCELED;
    }
    if (recorded_id)
        *recorded_id = it->env->request_id;
    s_drop(r);
    r->out->compared++;
    return 0;
}

int rt_replay_request(rt_actor_t *self, const Vmm__Envelope *env, uint64_t id)
{
    rt_replay_t *r = s_of(self);
    uint64_t recorded = 0;
    int rc = rt_replay_emit(self, env, &recorded);
    if (rc || r->ignore)
        return rc;
    s_request_t *grown = realloc(r->requests, (r->n_requests + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    r->requests = grown;
    r->requests[r->n_requests++] = (s_request_t){recorded, id};
    return 0;
}

/* Whether the record ahead is the reply to the actor's recorded request. */
static bool s_is_reply_to(const rt_replay_t *r, const s_item_t *it, uint64_t recorded)
{
    const Vmm__Trace__Message *m = it ? s_message(it) : NULL;
    return m && it->env && it->env->reply_to == recorded && s_is_delivery(r, it);
}

int rt_replay_call(rt_actor_t *self, const Vmm__Envelope *env, rt_ctx_t *ctx)
{
    rt_replay_t *r = s_of(self);
    uint64_t recorded = 0;
    int rc = rt_replay_emit(self, env, &recorded);
    if (rc)
        return rc;
    if (r->ignore)
        return -ETIMEDOUT;
    s_item_t *it = s_peek(r);
    if (!s_is_reply_to(r, it, recorded))
        return -ETIMEDOUT; /* the run's call got no reply either */
    s_item_t reply = s_take(r);
    r->out->delivered++;
    const ProtobufCBinaryData *b = &reply.rec->message->envelope;
    if (ctx->fn) {
        rt_msg_t msg;
        rc = rt_msg_unpack(&msg, b->data, b->len);
        if (!rc) {
            rc = ctx->fn(ctx->fn_arg, msg.env);
            rt_msg_release(&msg);
        }
    } else {
        rc = rt_msg_unpack(ctx->owned, b->data, b->len);
    }
    s_item_free(&reply);
    return rc;
}

uint64_t rt_replay_clock(rt_actor_t *self)
{
    rt_replay_t *r = s_of(self);
    if (r->ignore || r->diverged)
        return r->clock;
    s_item_t *it = s_peek(r);
    if (it && it->rec->record_case == VMM__TRACE__RECORD__RECORD_INPUT &&
        it->rec->input->input_case == VMM__TRACE__INPUT__INPUT_CLOCK_NS) {
        r->clock = it->rec->input->clock_ns;
        s_drop(r);
        r->out->inputs++;
        return r->clock;
    }
    char expected[768];
    s_expected(r, expected, sizeof expected);
    s_diverge(r, "nothing", NULL, expected, "it read the clock");
    return r->clock;
}

int rt_replay_bytes(rt_actor_t *self, bool input, uint32_t kind, uint64_t address, void *data,
                    size_t len)
{
    rt_replay_t *r = s_of(self);
    if (r->ignore)
        return input ? -ENODATA : 0;
    if (r->diverged)
        return -ECANCELED;
    s_item_t *it = s_peek(r);
    const Vmm__Trace__Bytes *b = NULL;
    if (it && input && it->rec->record_case == VMM__TRACE__RECORD__RECORD_INPUT &&
        it->rec->input->input_case == VMM__TRACE__INPUT__INPUT_BYTES)
        b = it->rec->input->bytes;
    if (it && !input && it->rec->record_case == VMM__TRACE__RECORD__RECORD_OUTPUT)
        b = it->rec->output->bytes;
    char expected[768];
    if (!b || b->kind != kind || b->address != address || b->data.len != len ||
        (!input && len && memcmp(b->data.data, data, len))) {
        s_expected(r, expected, sizeof expected);
        if (b && b->kind == kind && b->address == address && b->data.len == len) {
            /* Written, at the place the trace says, but not the same. */
            size_t at = 0;
            while (((const uint8_t *)data)[at] == b->data.data[at])
                at++;
            char field[64], what[96];
            snprintf(field, sizeof field, "byte %zu", at);
            snprintf(what, sizeof what, "output of kind %u at 0x%" PRIx64, kind, address);
            snprintf(expected, sizeof expected, "0x%02x", b->data.data[at]);
            s_diverge(r, what, field, expected, "0x%02x", ((const uint8_t *)data)[at]);
        } else {
            s_diverge(r, input ? "nothing" : "output", NULL, expected,
                      "it %s %zu bytes of kind %u at 0x%" PRIx64, input ? "read" : "wrote",
                      len, kind, address);
        }
        return input ? -ENODATA : 0;
    }
    if (input) {
        memcpy(data, b->data.data, len);
        r->out->inputs++;
    } else {
        r->out->compared++;
    }
    s_drop(r);
    return 0;
}

/* ---- Driving the actor ------------------------------------------------------------ */

static void s_set_cause(rt_replay_t *r, const s_item_t *it)
{
    r->cause_index = it->index;
    s_describe(r, it, r->cause, sizeof r->cause);
}

/* A reply to one of the actor's rt_request()s: to its on_reply. */
static void s_deliver_reply(rt_replay_t *r, s_item_t *it)
{
    rt_actor_t *a = r->actor;
    char kind[96], expected[768];
    for (size_t i = 0; i < r->n_requests; i++) {
        if (r->requests[i].recorded != it->env->reply_to)
            continue;
        uint64_t id = r->requests[i].replayed;
        r->requests[i] = r->requests[--r->n_requests];
        s_item_t reply = s_take(r);
        const ProtobufCBinaryData *b = &reply.rec->message->envelope;
        rt_msg_t msg;
        if (!rt_msg_unpack(&msg, b->data, b->len)) {
            msg.env->reply_to = id;
            a->counts.rx++;
            if (a->ops->on_reply && !a->terminated) {
                a->depth++;
                a->ops->on_reply(a, msg.env);
                a->depth--;
            }
            rt_msg_release(&msg);
        }
        s_item_free(&reply);
        r->out->delivered++;
        return;
    }
    rt_trace_kind(it->env, kind, sizeof kind);
    s_describe(r, it, expected, sizeof expected);
    s_diverge(r, "nothing", NULL, expected,
              "no request of the actor waits for this reply (%s to request %" PRIu64 ")", kind,
              it->env->reply_to);
}

/* A message into the actor: through the checks of its mailbox (rx), or
 * straight to its handler (a nested call). */
static void s_deliver_message(rt_replay_t *r)
{
    rt_actor_t *a = r->actor;
    s_item_t it = s_take(r);
    const Vmm__Trace__Message *m = it.rec->message;
    rt_ctx_t ctx;
    rt_msg_t msg;
    r->out->delivered++;
    if (m->dir == VMM__TRACE__DIR__NESTED) {
        rt_ctx_init(&ctx, RT_CTX_NESTED);
        if (!rt_msg_unpack(&msg, m->envelope.data, m->envelope.len)) {
            rt_actor_dispatch(a, msg.env, &ctx);
            rt_msg_release(&msg);
        }
    } else {
        rt_ctx_init(&ctx, RT_CTX_MAILBOX);
        /* From another process: what the mailbox refuses from there (a
         * Terminate) is refused again. */
        ctx.remote = it.env && !s_is_local(r, it.env->sender);
        if (m->extra_frames)
            rt_actor_refuse_extra(a, &ctx, m->envelope.data, m->envelope.len, m->extra_frames);
        else if (rt_actor_take(a, &msg, &ctx, m->envelope.data, m->envelope.len) == 1) {
            rt_actor_dispatch(a, msg.env, &ctx);
            rt_msg_release(&msg);
        }
    }
    s_item_free(&it);
}

static void s_fire_timer(rt_replay_t *r)
{
    rt_actor_t *a = r->actor;
    rt_executor_t *ex = r->ex;
    uint64_t id = r->ahead[0].rec->input->timer;
    for (size_t i = 0; i < ex->n_timers; i++) {
        rt_timer_t t = ex->timers[i];
        if (t.actor != a || t.id != id)
            continue;
        ex->timers[i] = ex->timers[--ex->n_timers];
        s_drop(r);
        r->out->delivered++;
        a->depth++;
        t.fn(a, t.id);
        a->depth--;
        return;
    }
    char expected[768];
    s_expected(r, expected, sizeof expected);
    s_diverge(r, "nothing", NULL, expected, "its timer %" PRIu64 " is not armed", id);
}

/* The actor stops: fini, and what it sends then is compared up to the
 * stop the trace has. */
static void s_stop(rt_replay_t *r)
{
    rt_actor_t *a = r->actor;
    snprintf(r->cause, sizeof r->cause, "the actor's stop (its fini)");
    if (!a->terminated && a->ops->fini)
        a->ops->fini(a);
    a->terminated = true;
    s_item_t *it = s_peek(r);
    if (!r->diverged && (!it || !s_is_stop(it))) {
        char expected[768];
        s_expected(r, expected, sizeof expected);
        s_diverge(r, "nothing", NULL, expected, "it stopped");
        return;
    }
    if (it && s_is_stop(it))
        s_drop(r);
    r->stopped = true;
}

/* Whether the actor's records from here to its stop are all its own doing
 * (sent, read): what its fini did. */
static bool s_fini_ahead(rt_replay_t *r)
{
    for (size_t k = 0;; k++) {
        s_item_t *it = s_peek_at(r, k);
        if (!it)
            return false;
        if (s_is_stop(it))
            return true;
        if (s_is_delivery(r, it))
            return false;
    }
}

/* One step at the top: hands the actor the delivery ahead, or stops it.
 * Returns false at the end of the stream. */
static bool s_step(rt_replay_t *r)
{
    s_item_t *it = s_peek(r);
    if (!it)
        return false;
    char expected[768];
    if (it->rec->record_case == VMM__TRACE__RECORD__RECORD_LOST) {
        s_describe(r, it, expected, sizeof expected);
        s_diverge(r, "nothing", NULL, expected,
                  "the trace lost a record of the actor here: it cannot be replayed further");
        r->read_rc = -ENOTSUP;
        snprintf(r->read_err, sizeof r->read_err,
                 "record %" PRIu64 " of %s is one the recording could not write (too large)",
                 it->index, r->cfg->actor);
        return false;
    }
    if (!s_is_delivery(r, it) && (s_is_stop(it) || s_fini_ahead(r))) {
        s_stop(r);
        return false;
    }
    if (!s_is_delivery(r, it)) {
        s_describe(r, it, expected, sizeof expected);
        s_diverge(r, "nothing", NULL, expected, "it was done with record %" PRIu64,
                  r->cause_index);
        return false;
    }
    s_set_cause(r, it);
    const Vmm__Trace__Message *m = s_message(it);
    if (!m)
        s_fire_timer(r);
    /* With both ids it is malformed: the mailbox refused it in the run. */
    else if (it->env && it->env->reply_to && !it->env->request_id)
        s_deliver_reply(r, it);
    else
        s_deliver_message(r);
    if (r->actor->terminated && !r->diverged)
        s_stop(r); /* a Terminate: its fini has run */
    return !r->stopped;
}

/* ---- Starting --------------------------------------------------------------------- */

/* Reads up to the actor's start, noting the actors before it. */
static int s_find_start(rt_replay_t *r, char *err, size_t errlen)
{
    const Vmm__Trace__Record *rec;
    int rc;
    while ((rc = rt_trace_next(r->reader, &rec, err, errlen)) == 1) {
        if (rec->record_case != VMM__TRACE__RECORD__RECORD_ACTOR)
            continue;
        s_note_local(r, rec->actor->name);
        if (!rec->actor->stopped && s_named(r, rec->actor->name))
            return 0;
    }
    return -EBADMSG; /* rt_trace_find_actor() found it: the file changed */
}

static void s_free(rt_replay_t *r)
{
    while (r->n_ahead)
        s_drop(r);
    free(r->ahead);
    for (size_t i = 0; i < r->n_local; i++)
        free(r->local[i]);
    free(r->local);
    free(r->requests);
    rt_trace_close(&r->reader);
}

int rt_replay(const rt_replay_config_t *cfg, rt_replay_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cfg || !cfg->trace || !cfg->actor || !cfg->ops) {
        snprintf(err, errlen, "a replay needs a trace, an actor's name and its ops");
        return -EINVAL;
    }
    rt_replay_t r = {.cfg = cfg, .out = out};
    if (!(r.reader = rt_trace_open(cfg->trace, err, errlen)))
        return -EBADMSG;
    r.header = rt_trace_header(r.reader);
    int rc = 0;
    if (r.header->n_kind_filters) {
        snprintf(err, errlen,
                 "%s was recorded with a kind filter (%s...): the actor's other messages are "
                 "missing, so it cannot be replayed",
                 cfg->trace, r.header->kind_filters[0]);
        rc = -ENOTSUP;
        goto out;
    }
    Vmm__Trace__Actor *start;
    if ((rc = rt_trace_find_actor(cfg->trace, cfg->actor, &start, err, errlen)))
        goto out;
    if ((rc = s_find_start(&r, err, errlen))) {
        vmm__trace__actor__free_unpacked(start, NULL);
        goto out;
    }
    /* What the actor may ask of the runtime about itself is as it was:
     * its executor's name, its endpoint, the runtime's key. */
    rt_t *rt = rt_new(NULL);
    const char *key = r.header->curve_public_key;
    if (rt && strlen(key) == RT_Z85_KEY_LEN && !(rt->replay_key = strdup(key)))
        rt_destroy(&rt);
    r.ex = rt ? rt_executor_new_replay(rt, start->executor, &r) : NULL;
    if (!r.ex) {
        vmm__trace__actor__free_unpacked(start, NULL);
        rt_destroy(&rt);
        rc = -ENOMEM;
        goto out;
    }
    snprintf(r.cause, sizeof r.cause, "the actor's start (its init)");
    rt_actor_spec_t spec = {.name = cfg->actor, .ops = cfg->ops, .arg = cfg->arg,
                            .endpoint = *start->endpoint ? start->endpoint : NULL};
    rc = rt_executor_add_actor(r.ex, &spec);
    vmm__trace__actor__free_unpacked(start, NULL);
    if (rc && !r.diverged) {
        snprintf(err, errlen, "%s did not start again: %s", cfg->actor, strerror(-rc));
    } else {
        rc = 0;
        r.actor = r.ex->n_actors ? r.ex->actors[0] : NULL;
        while (r.actor && !r.diverged && s_step(&r))
            ;
        if (r.read_rc < 0) {
            snprintf(err, errlen, "%s: %s", cfg->trace, r.read_err);
            rc = r.read_rc; /* -EBADMSG, -ENOTSUP (a record lost) or -ENOMEM */
        }
        if (r.actor && !r.stopped && !r.diverged && !rc) {
            /* The trace ends with the actor still running. */
            out->unfinished = true;
            r.ignore = true;
        }
        if (r.actor) {
            if (!r.actor->terminated && r.actor->ops->fini)
                r.actor->ops->fini(r.actor);
            r.actor->terminated = true;
            rt_executor_remove_actor(r.ex, r.actor);
        }
    }
    rt_executor_free_core(r.ex);
    rt_destroy(&rt);
    out->matched = !r.diverged;
    s_report(&r);
out:
    s_free(&r);
    return rc;
}

int rt_replay_recipe(const char *trace, const char *actor, const char *kind,
                     const ProtobufCMessageDescriptor *recipe_type, rt_replay_start_fn start,
                     void *ctx, rt_replay_result_t *out, char *err, size_t errlen)
{
    Vmm__Trace__Actor *a;
    int rc = rt_trace_find_actor(trace, actor, &a, err, errlen);
    if (rc)
        return rc;
    ProtobufCMessage *recipe =
        a->recipe.len ? protobuf_c_message_unpack(recipe_type, NULL, a->recipe.len,
                                                  a->recipe.data)
                      : NULL;
    if (strcmp(a->kind, kind)) {
        snprintf(err, errlen, "%s is a %s actor, not a %s", actor, a->kind, kind);
        rc = -EINVAL;
    } else if (!recipe) {
        snprintf(err, errlen, "%s: %s has %s", trace, actor,
                 a->recipe.len ? "a recipe that does not decode" : "no recipe to start it again");
        rc = -EINVAL;
    } else {
        rt_replay_config_t cfg = {.trace = trace, .actor = actor};
        rc = start(&cfg, recipe, ctx, out, err, errlen);
    }
    if (recipe)
        protobuf_c_message_free_unpacked(recipe, NULL);
    vmm__trace__actor__free_unpacked(a, NULL);
    return rc;
}
