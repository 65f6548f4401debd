/*
 * Links: one-way envelopes to an actor in another process, delivered once
 * and in order even when that process dies and another takes its place.
 *
 * Sender (an executor, per receiver name): each frame of one-way envelopes
 * carries the link's id and a sequence number, and a copy stays until the
 * receiver acknowledges it. The copies are sent again, in order, on a new
 * route to the name (its directory entry changed: a restarted device host
 * registered again), when the receiver reports a gap, and when a frame
 * could not be sent. When no acknowledgement came for a while only the
 * oldest goes again: a receiver busy in a long turn has the rest queued,
 * and sending them all again would bury it in duplicates; one that lost
 * them takes the oldest, then reports the gap at the next.
 *
 * Receiver (an actor): it takes frame last + 1 only, drops what it took
 * already (a duplicate) and what comes after a gap (reported at once, once
 * a gap: the sender fills it), and acknowledges what it took, cumulatively
 * and lazily (every S_ACK_FRAMES frames, or once S_ACK_DELAY_US passed
 * since the first unacknowledged one): an acknowledgement reaching a VP
 * wakes it from KVM_RUN. What it took per link is kept in memory, or in a
 * file (rt_actor_spec_t.delivery_record) that a restarted actor opens
 * again, so that it neither takes twice what its predecessor took nor
 * misses what it did not. A
 * link is forgotten only for room, and only once it has been quiet for
 * rt_config_t.link_idle_ms: then nothing of it is in flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt_internal.h"

#define S_ACK_FRAMES 256
#define S_ACK_DELAY_US 5000
/* No acknowledgement for this long: the oldest frame goes again, then
 * after twice as long, up to S_RESEND_MAX_US. */
#define S_RESEND_US 1000000
#define S_RESEND_MAX_US 8000000
/* Beyond this many unacknowledged frames the oldest are given up (counted
 * in tx_refused): a receiver that never comes back must not exhaust the
 * sender's memory. */
#define S_MAX_UNACKED 65536
#define S_RECORD_MAGIC 0x31646365722d7472ull /* "rt-recd1" */
#define S_RECORD_BYTES 4096
/* Links an actor without a record file keeps (one per sending executor:
 * a few per peer process); a record file keeps S_RECORD_ENTRIES. */
#define S_MEMORY_ENTRIES 32

/* A record file: a header, then the entries. */
typedef struct {
    uint64_t magic, n;
} s_record_head_t;

#define S_RECORD_ENTRIES ((S_RECORD_BYTES - sizeof(s_record_head_t)) / sizeof(rt_link_entry_t))

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- Sender ------------------------------------------------------------------- */

rt_link_t *rt_link_for(rt_executor_t *ex, const char *to)
{
    for (size_t i = 0; i < ex->n_links; i++)
        if (!strcmp(ex->links[i]->to, to))
            return ex->links[i];
    rt_link_t **grown = realloc(ex->links, (ex->n_links + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    ex->links = grown;
    rt_link_t *link = calloc(1, sizeof *link);
    if (!link || !(link->to = strdup(to))) {
        free(link);
        return NULL;
    }
    /* Ids tell one sender's links apart in a receiver's record: a
     * restarted sender starts new links, never continues old ones. */
    while (!link->id)
        if (getrandom(&link->id, sizeof link->id, 0) != sizeof link->id)
            link->id = (uint64_t)rt_now_us() ^ (uint64_t)(uintptr_t)link;
    link->next_seq = 1;
    link->resend_us = S_RESEND_US;
    ex->links[ex->n_links++] = link;
    return link;
}

static void s_frame_drop(rt_link_t *link)
{
    rt_link_frame_t *f = link->head;
    link->head = f->next;
    if (!link->head)
        link->tail = NULL;
    link->n_unacked--;
    free(f);
}

void rt_link_free_all(rt_executor_t *ex)
{
    for (size_t i = 0; i < ex->n_links; i++) {
        while (ex->links[i]->head)
            s_frame_drop(ex->links[i]);
        free(ex->links[i]->to);
        free(ex->links[i]);
    }
    free(ex->links);
    ex->links = NULL;
    ex->n_links = 0;
}

static int s_send_copy(void *dealer, const rt_link_frame_t *f)
{
    zmq_msg_t frame;
    if (zmq_msg_init_size(&frame, f->len))
        return -ENOMEM;
    memcpy(zmq_msg_data(&frame), f->bytes, f->len);
    int rc = rt_send_frame(dealer, &frame, ZMQ_DONTWAIT);
    if (rc)
        zmq_msg_close(&frame);
    return rc;
}

int rt_link_send(rt_executor_t *ex, rt_route_t *route, const uint8_t *payload, size_t len)
{
    rt_link_t *link = route->link;
    rt_link_frame_t *f = malloc(sizeof *f + RT_LINK_HEADER + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->seq = link->next_seq++;
    f->len = RT_LINK_HEADER + len;
    f->bytes[0] = RT_LINK_MARKER;
    s_put64(f->bytes + 1, link->id);
    s_put64(f->bytes + 9, f->seq);
    memcpy(f->bytes + RT_LINK_HEADER, payload, len);
    if (link->tail)
        link->tail->next = f;
    else
        link->head = f;
    link->tail = f;
    if (!link->n_unacked++)
        link->progress_us = rt_now_us();
    if (link->n_unacked > S_MAX_UNACKED) {
        s_frame_drop(link);
        rt_count(&ex->stats.tx_refused);
        if (!link->gave_up++)
            rt_log(ex->rt, NULL, RT_LOG_WARN,
                   "%s acknowledges nothing: frames beyond %d are given up", link->to,
                   S_MAX_UNACKED);
    }
    /* Not sent now (a full queue, no peer): the copies go again later. */
    int rc = s_send_copy(route->dealer, f);
    if (rc)
        link->unsent = true;
    rt_executor_mark_sent(ex, route->dealer);
    return rc == -ENOMEM ? rc : 0;
}

/* Sends the unacknowledged frames again, oldest first: all of them, or
 * only the oldest. */
static void s_resend(rt_executor_t *ex, rt_link_t *link, void *dealer, bool all)
{
    bool sent_all = true;
    for (rt_link_frame_t *f = link->head; f; f = all ? f->next : NULL) {
        if (s_send_copy(dealer, f)) {
            sent_all = false;
            break;
        }
        rt_count(&ex->stats.tx_resent);
    }
    if (all)
        link->unsent = !sent_all;
    rt_executor_mark_sent(ex, dealer);
    link->progress_us = rt_now_us();
}

void rt_link_resend(rt_executor_t *ex, rt_link_t *link, void *dealer)
{
    s_resend(ex, link, dealer, true);
}

bool rt_link_take_ack(rt_executor_t *ex, const uint8_t *bytes, size_t len)
{
    if (len != RT_LINK_HEADER ||
        (bytes[0] != RT_LINK_ACK_MARKER && bytes[0] != RT_LINK_GAP_MARKER))
        return false;
    uint64_t id = s_get64(bytes + 1), seq = s_get64(bytes + 9);
    for (size_t i = 0; i < ex->n_links; i++) {
        rt_link_t *link = ex->links[i];
        if (link->id != id)
            continue;
        bool progress = false;
        while (link->head && link->head->seq <= seq) {
            s_frame_drop(link);
            progress = true;
        }
        if (progress) {
            link->progress_us = rt_now_us();
            link->resend_us = S_RESEND_US;
        }
        /* A receiver reports a gap once; one that repeats a report must
         * not make the sender send its frames again and again. */
        rt_route_t *route;
        if (bytes[0] == RT_LINK_GAP_MARKER && seq > link->gap_seq && link->head &&
            (route = rt_map_get(ex->routes, link->to)) && route->dealer) {
            link->gap_seq = seq;
            rt_log(ex->rt, NULL, RT_LOG_INFO, "%s missed frames after %llu: %zu frames again",
                   link->to, (unsigned long long)seq, link->n_unacked);
            rt_link_resend(ex, link, route->dealer);
        }
        break;
    }
    return true;
}

/* ---- Receiver ------------------------------------------------------------------ */

int rt_link_record_open(rt_actor_t *actor, const char *path)
{
    rt_link_record_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = -1;
    if (!path) {
        r->cap = S_MEMORY_ENTRIES;
        r->entries = calloc(r->cap, sizeof *r->entries);
    } else {
        /* Only this user's: it says what the actor has taken. */
        r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct stat st;
        int rc = r->fd < 0 || fstat(r->fd, &st) ? -errno : 0;
        if (!rc && st.st_size != S_RECORD_BYTES && st.st_size != 0)
            rc = -EINVAL; /* not a record */
        if (!rc && !st.st_size && ftruncate(r->fd, S_RECORD_BYTES))
            rc = -errno;
        void *map = rc ? MAP_FAILED
                       : mmap(NULL, S_RECORD_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
        if (!rc && map == MAP_FAILED)
            rc = -errno;
        s_record_head_t *head = map == MAP_FAILED ? NULL : map;
        if (head && !st.st_size)
            head->magic = S_RECORD_MAGIC;
        if (head && head->magic != S_RECORD_MAGIC)
            rc = -EINVAL;
        if (rc) {
            if (head)
                munmap(map, S_RECORD_BYTES);
            if (r->fd >= 0)
                close(r->fd);
            free(r);
            return rc;
        }
        r->map = map;
        r->cap = S_RECORD_ENTRIES;
        r->entries = (rt_link_entry_t *)(head + 1);
    }
    r->acks = calloc(r->cap, sizeof *r->acks);
    if (!r->entries || !r->acks) {
        rt_link_record_close(&r);
        return -ENOMEM;
    }
    /* A predecessor's links may have frames in flight: as if used now. */
    int64_t now = rt_now_us();
    for (size_t i = 0; i < r->cap; i++)
        if (r->entries[i].id)
            r->acks[i].used_us = now;
    actor->record = r;
    return 0;
}

void rt_link_record_close(rt_link_record_t **record)
{
    rt_link_record_t *r = *record;
    if (!r)
        return;
    if (r->map)
        munmap(r->map, S_RECORD_BYTES);
    else
        free(r->entries);
    if (r->fd >= 0)
        close(r->fd);
    free(r->acks);
    free(r);
    *record = NULL;
}

/* The entry of link id; a new one if none (in place of the link quiet the
 * longest, when full and it was quiet for idle_us), or r->cap when every
 * link kept may still have frames in flight. */
static size_t s_entry(rt_link_record_t *r, uint64_t id, int64_t now, int64_t idle_us,
                      bool *fresh)
{
    size_t free_slot = r->cap, quietest = 0;
    for (size_t i = 0; i < r->cap; i++) {
        if (r->entries[i].id == id) {
            *fresh = false;
            return i;
        }
        if (!r->entries[i].id && free_slot == r->cap)
            free_slot = i;
        if (r->acks[i].used_us < r->acks[quietest].used_us)
            quietest = i;
    }
    size_t i = free_slot;
    if (i == r->cap) {
        if (now - r->acks[quietest].used_us < idle_us)
            return r->cap;
        i = quietest;
    }
    r->entries[i] = (rt_link_entry_t){.id = id};
    if (r->acks[i].owed)
        r->n_owed--;
    r->acks[i] = (rt_link_ack_t){0};
    *fresh = true;
    return i;
}

/* Acknowledges what link i took (marker: RT_LINK_ACK_MARKER), or reports
 * a gap after it (RT_LINK_GAP_MARKER). */
static void s_send_ack(rt_actor_t *actor, size_t i, uint8_t marker)
{
    rt_link_record_t *r = actor->record;
    rt_link_ack_t *a = &r->acks[i];
    uint8_t ack[RT_LINK_HEADER];
    ack[0] = marker;
    s_put64(ack + 1, r->entries[i].id);
    s_put64(ack + 9, r->entries[i].last_seq);
    /* Replies never wait: a sender that is gone loses it, and sends
     * again what it thinks unacknowledged. */
    rt_tsan_sent();
    if (zmq_send(actor->mailbox, a->ident, a->ident_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(actor->mailbox, ack, sizeof ack, ZMQ_DONTWAIT);
    rt_executor_mark_sent(actor->ex, actor->mailbox); /* the send may take a signal (loop.c) */
    if (a->owed) {
        a->owed = 0;
        a->due_us = 0;
        r->n_owed--;
    }
}

int rt_link_take(rt_actor_t *actor, const rt_ctx_t *ctx, const uint8_t *bytes, size_t len)
{
    if (len <= RT_LINK_HEADER)
        return -EBADMSG;
    if (!actor->record && rt_link_record_open(actor, NULL))
        return -ENOMEM;
    rt_link_record_t *r = actor->record;
    uint64_t id = s_get64(bytes + 1), seq = s_get64(bytes + 9);
    bool fresh;
    int64_t now = rt_now_us();
    size_t i = s_entry(r, id, now, (int64_t)actor->rt->cfg.link_idle_ms * 1000, &fresh);
    if (i == r->cap) {
        rt_count(&actor->ex->stats.rx_duplicate);
        rt_log(actor->rt, actor, RT_LOG_WARN,
               "a frame of a new link dropped: the %zu links kept are all in use", r->cap);
        return 0;
    }
    rt_link_entry_t *e = &r->entries[i];
    rt_link_ack_t *a = &r->acks[i];
    a->used_us = now;
    if (ctx->ident_len <= sizeof a->ident) {
        memcpy(a->ident, ctx->ident, ctx->ident_len);
        a->ident_len = ctx->ident_len;
    }
    /* A link seen first takes what comes: an actor without a record of
     * its own cannot tell what a predecessor took. */
    bool take = fresh || seq == e->last_seq + 1;
    bool gap = !take && seq > e->last_seq + 1;
    if (take) {
        e->last_seq = seq;
        e->taken++;
    } else {
        rt_count(&actor->ex->stats.rx_duplicate);
    }
    if (!a->owed++) {
        a->due_us = now + S_ACK_DELAY_US;
        r->n_owed++;
    }
    if (gap && a->gap_told != e->last_seq + 1) {
        a->gap_told = e->last_seq + 1;
        s_send_ack(actor, i, RT_LINK_GAP_MARKER);
    } else if (a->owed >= S_ACK_FRAMES || now >= a->due_us) {
        /* Due: now, not when the turn ends, which a receiver taking frame
         * after frame of long work may not reach for seconds. */
        s_send_ack(actor, i, RT_LINK_ACK_MARKER);
    }
    return take ? 1 : 0;
}

/* Takes the acknowledgements waiting on the link's route. A VP in KVM_RUN
 * is not woken for them: its own sends consume the socket's signal, so
 * they wait until it looks, here, when it is about to run the guest again
 * and has many frames unacknowledged. Anything else found there is queued
 * for the executor, as a waiting caller does (actor.c). */
static void s_take_acks(rt_executor_t *ex, rt_link_t *link)
{
    rt_route_t *route = rt_map_get(ex->routes, link->to);
    if (!route || !route->dealer)
        return;
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, route->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        rt_tsan_received();
        const uint8_t *bytes = zmq_msg_data(&frame);
        size_t len = zmq_msg_size(&frame);
        if (!rt_link_take_ack(ex, bytes, len))
            rt_executor_set_aside(ex, bytes, len);
        zmq_msg_close(&frame);
    }
}

/* ---- Both: what is due when a turn ends ---------------------------------------- */

int64_t rt_link_next_us(rt_executor_t *ex)
{
    int64_t first = INT64_MAX;
    for (size_t k = 0; k < ex->n_actors; k++) {
        rt_link_record_t *r = ex->actors[k]->record;
        for (size_t i = 0; r && r->n_owed && i < r->cap; i++)
            if (r->acks[i].owed && r->acks[i].due_us < first)
                first = r->acks[i].due_us;
    }
    for (size_t i = 0; i < ex->n_links; i++)
        if (ex->links[i]->n_unacked) {
            int64_t at = ex->links[i]->progress_us + ex->links[i]->resend_us;
            if (at < first)
                first = at;
        }
    return first;
}

void rt_link_tick(rt_executor_t *ex)
{
    int64_t now = 0;
    for (size_t k = 0; k < ex->n_actors; k++) {
        rt_link_record_t *r = ex->actors[k]->record;
        if (r && r->n_owed && !now)
            now = rt_now_us();
        for (size_t i = 0; r && r->n_owed && i < r->cap; i++)
            if (r->acks[i].owed && r->acks[i].due_us <= now)
                s_send_ack(ex->actors[k], i, RT_LINK_ACK_MARKER);
    }
    for (size_t i = 0; i < ex->n_links; i++) {
        rt_link_t *link = ex->links[i];
        rt_route_t *route;
        if (link->n_unacked && !now)
            now = rt_now_us();
        if (link->n_unacked >= S_ACK_FRAMES ||
            (link->n_unacked && now - link->progress_us > 2 * S_ACK_DELAY_US))
            s_take_acks(ex, link);
        if (!link->n_unacked || now - link->progress_us < link->resend_us ||
            rt_executor_route(ex, link->to, &route) || !route->dealer)
            continue;
        rt_log(ex->rt, NULL, RT_LOG_INFO,
               "%s acknowledged nothing for %lld ms: %s of %zu frames again", link->to,
               (long long)(link->resend_us / 1000), link->unsent ? "all" : "the oldest",
               link->n_unacked);
        s_resend(ex, link, route->dealer, link->unsent);
        link->resend_us = link->resend_us * 2 > S_RESEND_MAX_US ? S_RESEND_MAX_US
                                                                : link->resend_us * 2;
    }
}
