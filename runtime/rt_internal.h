/* Private structures shared by the runtime's source files. */
#ifndef VMM_RT_INTERNAL_H
#define VMM_RT_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zmq.h>

#include "runtime/map.h"
#include "runtime/rt.h"

/* A CURVE key in Z85 text. */
#define RT_Z85_KEY_LEN 40

/* ZeroMQ's queues are invisible to ThreadSanitizer (libzmq is not built
 * with it): every send marks a release and every receive an acquire of one
 * key of the process's, so that what a message carries is ordered by it as
 * it is in fact. (A race that only unrelated messages in between would
 * order can so hide from TSan.) */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char rt_tsan_key;
static inline void rt_tsan_sent(void)
{
    __tsan_release(&rt_tsan_key);
}
static inline void rt_tsan_received(void)
{
    __tsan_acquire(&rt_tsan_key);
}
#else
static inline void rt_tsan_sent(void) {}
static inline void rt_tsan_received(void) {}
#endif

typedef struct rt_auth_s rt_auth_t;
typedef struct rt_trace_s rt_trace_t;
typedef struct rt_replay_s rt_replay_t;

/* A directory entry: an endpoint elsewhere, and the CURVE public key its
 * server must prove ("" for none). One allocation. */
typedef struct {
    char server_key[RT_Z85_KEY_LEN + 1];
    char endpoint[];
} rt_dir_entry_t;

/* rt_log()'s limit for one actor, or the runtime: the generic cell rate
 * algorithm, lock-free (any thread may log for an actor). */
typedef struct {
    _Atomic int64_t next_us; /* when the limit is back to a full burst */
    atomic_uint_fast64_t held;  /* suppressed since the last line written */
    atomic_uint_fast64_t total; /* suppressed in all */
} rt_log_limit_t;

struct rt_s {
    void *zctx;
    rt_config_t cfg;
    pthread_mutex_t lock;     /* guards the maps and the executor list */
    rt_log_limit_t log_limit; /* for rt_log() without an actor */
    rt_map_t *actors;         /* name -> rt_actor_t, in this process */
    rt_map_t *directory;      /* name -> rt_dir_entry_t, elsewhere */
    rt_executor_t **executors;
    size_t n_executors;
    rt_client_t **clients;
    size_t n_clients;
    /* Bumped when an actor leaves, so executors drop cached routes to it. */
    atomic_uint_fast64_t removals;
    /* Read-held around a shared handler run for a sender (actor.c), so that
     * an actor with shared handlers neither closes nor leaves meanwhile:
     * both take it to write. */
    pthread_rwlock_t shared_lock;
    atomic_uint_fast64_t next_actor_serial;
    _Atomic(rt_tap_fn) tap;
    void *_Atomic tap_arg;
    _Atomic(rt_trace_t *) trace; /* the trace being written, or NULL */
    /* Under a replay: the key pair's public half the traced runtime had,
     * which its actors named (RT_Z85_KEY_LEN + 1 bytes), or NULL. */
    char *replay_key;
    rt_stats_t retired; /* counts of executors and clients now gone */
    /* CURVE (auth.c): the key pair, the admitted peers and the ZAP
     * thread; NULL without a key pair. */
    rt_auth_t *auth;
    /* rt_fault_drop()'s pairs, "from\0to" each, under lock; n_drops is
     * read first so that sends without faults take no lock. */
    char **drops;
    atomic_size_t n_drops;
};

/* Counters with one writer, the executor's thread, so that counting costs
 * no locked instruction and no cache line moves between threads; rt_stats()
 * reads them from any thread. */
typedef struct {
    _Atomic uint64_t rx, tx, rx_malformed, rx_oversized, rx_unknown_kind, rx_misaddressed,
        rx_stale_reply, rx_denied, tx_refused, errors_sent, tx_resent, rx_duplicate;
} rt_counters_t;

static inline void rt_count(_Atomic uint64_t *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* How a request being handled is answered. */
typedef enum {
    RT_CTX_NESTED,  /* a caller on this thread waits in rt_call() */
    RT_CTX_LOCAL,   /* queued by an actor on this executor */
    RT_CTX_MAILBOX, /* arrived on the mailbox: reply by routing id */
} rt_ctx_kind_t;

typedef struct rt_ctx_s {
    rt_ctx_kind_t kind;
    const Vmm__Envelope *req;
    bool replied;
    struct rt_ctx_s *prev;
    /* RT_CTX_MAILBOX: the peer's routing id, and whether the peer is in
     * another process (it came over ipc:// or tcp://). */
    unsigned char ident[256];
    size_t ident_len;
    bool remote;
    /* From a CURVE peer: its key, the ZAP User-Id ("" otherwise). */
    char peer[RT_Z85_KEY_LEN + 1];
    /* RT_CTX_MAILBOX: the mailbox it arrived at, which replies leave by,
     * and the actor it is for when that is another actor of the same
     * executor (the mailbox is its process's gateway; NULL: the
     * mailbox's own actor). */
    void *via;
    rt_actor_t *to;
    /* The caller waiting for the reply (RT_CTX_NESTED, or a remote call):
     * it takes the reply borrowed through fn, or owned in *owned. */
    rt_actor_t *caller;
    rt_reply_fn fn;
    void *fn_arg;
    rt_msg_t *owned;
    int reply_rc; /* RT_CTX_NESTED: what delivering the reply returned */
    /* RT_CTX_NESTED: a shared handler runs on the caller's thread (its
     * counts go to the caller's executor), and its request is recorded
     * once it is known to be handled there; `as` is who sent it (the
     * caller, or an actor whose shared handler sends on the caller's
     * thread), `to` the actor whose shared handler runs. */
    bool shared, shared_untapped;
    rt_actor_t *as;
} rt_ctx_t;

/* Sets every field but the routing id's bytes, which are written before
 * they are read: zeroing the whole context costs more than the rest of a
 * dispatch. */
static inline void rt_ctx_init(rt_ctx_t *ctx, rt_ctx_kind_t kind)
{
    ctx->kind = kind;
    ctx->req = NULL;
    ctx->replied = false;
    ctx->prev = NULL;
    ctx->ident_len = 0;
    ctx->remote = false;
    ctx->peer[0] = '\0';
    ctx->via = NULL;
    ctx->to = NULL;
    ctx->caller = NULL;
    ctx->fn = NULL;
    ctx->fn_arg = NULL;
    ctx->owned = NULL;
    ctx->reply_rc = 0;
    ctx->shared = false;
    ctx->shared_untapped = false;
    ctx->as = NULL;
}

/* ---- Links (link.c): one-way envelopes to another process, once and in
 * order ---- */

/* A frame of one-way envelopes on a link: the marker (a field number no
 * envelope starts with), the link's id and the frame's sequence number
 * (8 bytes each, little endian), then the frame as it would be without a
 * link (one envelope, or a batch). An acknowledgement is the ack marker,
 * the id and the last sequence number taken; a gap report is the same
 * with the gap marker, sent at once when a frame came after a gap: the
 * sender sends again what follows that number. */
#define RT_LINK_MARKER 0x01
#define RT_LINK_ACK_MARKER 0x02
#define RT_LINK_GAP_MARKER 0x03
#define RT_LINK_HEADER 17

/* A frame sent and not yet acknowledged, as it went on the wire. */
typedef struct rt_link_frame_s {
    struct rt_link_frame_s *next;
    uint64_t seq;
    size_t len;
    uint8_t bytes[];
} rt_link_frame_t;

/* The sending side: an executor's link to one receiver name. */
typedef struct {
    char *to;
    uint64_t id;
    uint64_t next_seq;
    rt_link_frame_t *head, *tail; /* unacknowledged, oldest first */
    size_t n_unacked;
    int64_t progress_us; /* the last acknowledgement (or first frame) */
    int64_t resend_us;   /* the wait before sending the oldest again */
    bool unsent;         /* a frame could not be sent: all go again */
    uint64_t gap_seq;    /* the last gap report acted on: only later ones are */
    unsigned gave_up;
} rt_link_t;

/* What a receiver took from one link; the layout of a record file. */
typedef struct {
    uint64_t id, last_seq, taken;
} rt_link_entry_t;

/* The acknowledgement a receiver owes a link (not kept in the file). */
typedef struct {
    unsigned char ident[256]; /* the sender's routing id at the mailbox */
    size_t ident_len;
    unsigned owed;   /* frames taken or dropped since the last one */
    int64_t due_us;  /* when it goes out at the latest */
    int64_t used_us; /* when the link last sent a frame */
    /* last_seq + 1 when a gap after last_seq was reported (0: none): one
     * report per gap, not one per frame that follows it. */
    uint64_t gap_told;
} rt_link_ack_t;

typedef struct {
    rt_link_entry_t *entries; /* in the file's mapping, or the heap */
    rt_link_ack_t *acks;
    size_t cap, n_owed;
    void *map;
    int fd;
} rt_link_record_t;

struct rt_actor_s {
    rt_executor_t *ex;
    rt_t *rt;
    char *name;
    uint64_t serial;
    const rt_actor_ops_t *ops;
    void *state;
    void *mailbox; /* ROUTER */
    char *endpoint;       /* inproc://rt/<name> */
    char *extra_endpoint; /* the spec's ipc:// or tcp:// endpoint, if any */
    bool bound, extra_bound;
    bool curve; /* the extra endpoint is a CURVE server (auth.c) */
    rt_handler_fn *table; /* indexed by body case */
    size_t table_len;
    int depth;            /* handlers of this actor on the stack */
    rt_ctx_t *ctx;        /* innermost request being handled */
    bool run_again;
    bool terminated;
    struct {
        uint64_t rx, tx, bad;
    } counts;
    rt_log_limit_t log_limit;
    /* Its shared handlers may run (after init, before fini): changed under
     * rt->shared_lock held to write. */
    bool shared_open;
    /* What its shared handlers took and sent, on senders' threads. */
    atomic_uint_fast64_t shared_rx, shared_tx;
    /* Envelopes actors of this process sent it that were not delivered. */
    atomic_uint_fast64_t lost;
    /* A batch frame being taken apart (rt_actor_receive_mailbox()). */
    bool in_batch;
    zmq_msg_t batch;
    size_t batch_pos;
    unsigned char batch_ident[256];
    size_t batch_ident_len;
    bool batch_remote;
    char batch_peer[RT_Z85_KEY_LEN + 1];
    /* What it took from links: made on the first link frame, or opened
     * from the spec's delivery_record. */
    rt_link_record_t *record;
};

/* A route cached by an executor: a local actor, or a socket to a mailbox. */
typedef struct {
    rt_actor_t *local;
    /* An actor of another executor in this process that has shared
     * handlers (rt_actor_ops_t), valid while no actor has left since the
     * executor last checked its routes (rt->removals). */
    rt_actor_t *shared;
    const rt_actor_ops_t *shared_ops; /* its ops, readable while it leaves */
    uint64_t serial; /* of the in-process actor the dealer reaches, or 0 */
    void *dealer;
    int rcvtimeo_ms; /* the dealer's ZMQ_RCVTIMEO, set only when it changes */
    /* One-way envelopes coalesced for the dealer (see s_emit() in
     * actor.c): a batch frame being built. */
    uint8_t *batch;
    size_t batch_len, batch_cap;
    unsigned batch_count;
    bool batch_listed; /* in the executor's list of routes to flush */
    rt_link_t *link;   /* to another process: its one-way frames go on it */
    /* A send waited send_timeout_ms for room and found none: until one
     * finds room, sends do not wait (rt_route_send()). */
    bool stalled;
} rt_route_t;

/* A packed envelope waiting for an actor on the same executor. */
typedef struct rt_qitem_s {
    struct rt_qitem_s *next;
    rt_actor_t *to;
    size_t len;
    uint8_t bytes[];
} rt_qitem_t;

typedef struct {
    uint64_t id;
    rt_actor_t *actor;
    int64_t deadline_us;
    uint64_t serial; /* of the receiver, when it is in this process but not on ex */
    bool gone;       /* that receiver left without answering: expired now */
} rt_pending_t;

/* How often a wait for an in-process actor's answer looks whether it left
 * (what its mailbox held when it went, nobody reads). */
#define RT_GONE_SLICE_MS 100

typedef struct {
    int fd;
    rt_actor_t *actor;
    rt_fd_fn fn;
} rt_watch_t;

/* An armed timer of an actor (rt_timer_set()). */
typedef struct {
    rt_actor_t *actor;
    uint64_t id;
    uint64_t deadline_ns;
    rt_timer_fn fn;
} rt_timer_t;

/*
 * Whether a waiting thread should poll before it blocks (rt.c). Polling
 * pays on an idle machine; on a busy one the poller takes the CPU from the
 * very thread it waits for. The spin is timed against the thread's own CPU
 * time: when the thread got much less CPU than the wall time that passed,
 * the CPUs are contended, and polling pauses for a while.
 */
typedef struct {
    unsigned skip;    /* waits left to block without polling */
    unsigned backoff; /* the next pause, doubled while contention lasts */
    int64_t wall0, cpu0;
} rt_spin_t;

/* Whether the next wait will poll (without counting it as a wait). */
bool rt_spin_enabled(const rt_t *rt, const rt_spin_t *spin);
/* Returns the µs to poll for this wait (0: block at once). */
int rt_spin_begin(rt_t *rt, rt_spin_t *spin);
void rt_spin_end(rt_spin_t *spin);
/* Polls fd for up to spin_us; true once it is readable. On an idle machine
 * a blocked thread takes tens of µs to wake (design.md), longer than most
 * replies take to come back. */
bool rt_spin_fd(int fd, int spin_us);
/* The same over several descriptors; poll()'s result, 0 when none became
 * readable in time. */
int rt_spin_poll(struct pollfd *pfds, size_t n, int spin_us);

/* One input of an executor's loop (see executor.c). */
typedef struct {
    enum { RT_IN_PIPE, RT_IN_MAILBOX, RT_IN_DEALER, RT_IN_FD, RT_IN_TIMERS } kind;
    void *socket;      /* NULL for RT_IN_FD */
    int fd;            /* the socket's ZMQ_FD, or the watched descriptor */
    rt_actor_t *actor; /* the mailbox's or the descriptor's owner */
    rt_fd_fn fn;
    bool drain; /* a socket to read until EAGAIN before blocking */
    bool ready; /* readable in this round */
} rt_input_t;

struct rt_executor_s {
    rt_t *rt;
    char *name;
    bool manual; /* a client's: driven by its owner thread */
    pthread_t thread;
    void *pipe;       /* owner end of the control pipe */
    void *pipe_inner; /* executor end */
    rt_actor_t **actors;
    size_t n_actors;
    rt_map_t *routes; /* name -> rt_route_t */
    uint64_t removals_seen;
    uint64_t pending_removals_seen; /* of the pending requests' receivers */
    void **dealers;
    size_t n_dealers;
    rt_qitem_t *q_head, *q_tail;
    rt_pending_t *pending;
    size_t n_pending, cap_pending;
    rt_watch_t *watches;
    size_t n_watches;
    /* Its actors' timers, and one timerfd armed for the earliest: an input
     * like any other, so that the watcher kicks a blocking actor for it. */
    rt_timer_t *timers;
    size_t n_timers;
    int timer_fd; /* -1 until the first timer */
    rt_input_t *inputs;
    struct pollfd *pfds; /* in the order of inputs */
    size_t n_inputs;
    bool items_dirty; /* actors, dealers or watches changed: rebuild inputs */
    rt_route_t **batched; /* routes with coalesced envelopes to send */
    size_t n_batched, cap_batched;
    rt_link_t **links; /* to names in other processes, kept across routes */
    size_t n_links;
    uint64_t next_id;
    /* Records written to the trace for this executor's actors: by its own
     * thread, and by senders running its actors' shared handlers. */
    atomic_uint_fast64_t trace_seq;
    rt_replay_t *replay; /* a replay's (replay.c): no thread, no sockets */
    rt_counters_t stats;
    rt_spin_t spin;
    bool stop;
    rt_actor_t *blocking; /* the actor with ops->run, if any */
    /* Wakes the blocking actor out of ops->run (see executor.c). */
    pthread_t watcher;
    bool watcher_running;
    int watcher_stop_fd;  /* eventfd: ends the watcher */
    int watcher_rearm_fd; /* eventfd: the executor has drained its inputs */
    int watcher_refresh_fd; /* eventfd: watch_fds changed */
    atomic_int kick_pending;
    atomic_int in_run;
    /* Blocked in its one mailbox's receive (see s_park() in executor.c). */
    atomic_int parked;
    atomic_int pipe_pending; /* a command waits on the pipe */
    pthread_mutex_t pipe_lock; /* one command at a time on the owner end */
    pthread_mutex_t watch_lock; /* guards watch_fds */
    int *watch_fds;
    size_t n_watch_fds;
};

struct rt_client_s {
    rt_executor_t *ex;
    rt_actor_t *actor;
    rt_ctx_t ctx; /* the last request received, until answered */
    /* Who that request came from and its id, copied: the owner may release
     * the request before the next receive settles it. */
    char *owed_to;
    uint64_t owed_id;
};

typedef struct {
    size_t sender, receiver, body;
    size_t member; /* a oneof body's member, packed (see wire.c), or 0 */
    bool whole; /* all of it is packed by protobuf-c (unknown fields) */
} rt_wire_size_t;

/* loop.c: a descriptor the executor must poll from now on (its first
 * timer, a watched descriptor): its inputs are rebuilt at the next round,
 * and a blocking actor's watcher polls it at once. */
void rt_executor_new_input(rt_executor_t *ex, int fd);

/* route.c */
int rt_executor_route(rt_executor_t *ex, const char *to, rt_route_t **route);
/* Sends one frame, retrying when a kick signal interrupts the call. */
int rt_send_frame(void *socket, zmq_msg_t *frame, int flags);
/* Sends one frame on a route's dealer. A dealer whose in-process receiver
 * has left has no peer, and ZeroMQ would hold the send for the whole send
 * timeout: this fails at once (-ENOENT) instead. Else it waits, at most
 * the send timeout, while the receiver is there but behind (-EAGAIN). */
int rt_route_send(rt_executor_t *ex, rt_route_t *route, zmq_msg_t *frame);
/* Whether the in-process actor of that serial (rt_route_t.serial) has left
 * the runtime since; false for serial 0 (another process's, or ex's own). */
bool rt_serial_gone(rt_t *rt, uint64_t serial);
/* Adds a packed one-way envelope to the route's batch on self's executor,
 * tapped as sent by `as` (self, or the actor of a shared handler self's
 * thread runs). */
int rt_route_batch(rt_actor_t *self, const rt_actor_t *as, rt_route_t *route,
                   const Vmm__Envelope *env, size_t len,
                   const rt_wire_size_t *sizes);
void rt_route_flush(rt_executor_t *ex, rt_route_t *route);
/* Counts n envelopes lost to the in-process actor named `to` (or, when to
 * is NULL, of that serial): nothing when it is not in this process. */
void rt_note_lost(rt_t *rt, const char *to, uint64_t serial, unsigned n);
/* Whether rt_fault_drop() made envelopes from `from` to `to` fail. */
bool rt_fault_drops(rt_t *rt, const char *from, const char *to);
/* Sends what the executor's routes have coalesced: when its turn ends. */
void rt_executor_flush(rt_executor_t *ex);
void rt_route_close(void *arg, const char *key, void *value);

/* executor.c */
/* A socket with the runtime's options (no linger, deep queues, the send
 * timeout). */
void *rt_socket(rt_t *rt, int type);
int rt_executor_add_actor(rt_executor_t *ex, const rt_actor_spec_t *spec);
void rt_executor_remove_actor(rt_executor_t *ex, rt_actor_t *actor);
void rt_executor_free_core(rt_executor_t *ex);
rt_executor_t *rt_executor_new_manual(rt_t *rt, const char *name);
/* Runs the commands waiting on the pipe; true once it is empty. */
bool rt_executor_drain_pipe(rt_executor_t *ex);
/* Removes the actors that terminated and are off the stack. */
void rt_executor_reap(rt_executor_t *ex);

/* timer.c */
/* Fires the timers that are due (the timerfd was readable). */
void rt_executor_fire_timers(rt_executor_t *ex);
/* Forgets actor's timers, as it leaves. */
void rt_executor_drop_timers(rt_executor_t *ex, rt_actor_t *actor);

/* loop.c */
void rt_executor_drain_local_for(rt_executor_t *ex, rt_actor_t *actor);
/* Handles what waits in the mailboxes and the local queue, without
 * blocking (bounded): before the actors terminate. */
void rt_executor_drain_inputs(rt_executor_t *ex);
int rt_executor_poll_inputs(rt_executor_t *ex, int timeout_ms);
int rt_executor_rebuild_inputs(rt_executor_t *ex);
rt_actor_t *rt_executor_pending_take(rt_executor_t *ex, uint64_t id);
/* Expires at once the pending requests whose receiver left, once any actor
 * left since it last looked; returns the milliseconds until it should look
 * again (-1: no receiver to watch). */
int rt_executor_pending_watch(rt_executor_t *ex);
/* serial: the receiver's route's, so that its leaving ends the wait. */
int rt_executor_pending_add(rt_executor_t *ex, rt_actor_t *actor, uint64_t id,
                            uint64_t serial, int timeout_ms);
void rt_executor_enqueue(rt_executor_t *ex, rt_qitem_t *item);
/* Keeps a reply taken from a dealer for someone else (a caller waiting for
 * its own): the loop hands it over later. Dropped without memory. */
void rt_executor_set_aside(rt_executor_t *ex, const uint8_t *bytes, size_t len);
/* Something was sent on socket: drain it before blocking. */
void rt_executor_mark_sent(rt_executor_t *ex, void *socket);
/* Whether input waits that no descriptor will signal again: local items,
 * or a socket whose drain stopped early or that was sent on since (a send
 * may consume ZMQ_FD's signal) and holds a message. A blocking actor must
 * not block then. A socket found empty needs no drain any more. */
bool rt_executor_input_waits(rt_executor_t *ex);
/* rt_notice_arrivals(): every mailbox is looked at again before a blocking
 * actor goes on. */
void rt_executor_mark_mailboxes(rt_executor_t *ex);

/* actor.c */
void rt_actor_dispatch(rt_actor_t *actor, const Vmm__Envelope *env, rt_ctx_t *ctx);
/* Receives one envelope from the mailbox (flags: ZMQ_DONTWAIT, or 0 to
 * block). Returns 1 with *msg to dispatch, 0 when the input was refused
 * (answered and counted), or a negative errno (-EAGAIN: empty). */
int rt_actor_receive_mailbox(rt_actor_t *actor, rt_msg_t *msg, rt_ctx_t *ctx, int flags);
int rt_actor_match_reply(rt_executor_t *ex, const uint8_t *bytes, size_t len, uint64_t want,
                         rt_msg_t *msg, rt_actor_t **who);
void rt_actor_receive_reply(rt_executor_t *ex, const uint8_t *bytes, size_t len);
void rt_actor_receive_local(rt_executor_t *ex, rt_qitem_t *item);
void rt_actor_expire(rt_executor_t *ex, rt_actor_t *actor, const rt_pending_t *p);
/* Fills env and err as the TIMEOUT reply to request `id`, or the NOT_FOUND
 * one when its receiver left without answering. */
void rt_timeout_reply(Vmm__Envelope *env, Vmm__Error *err, char *receiver, uint64_t id,
                      bool gone);

/* link.c */
/* The executor's link to `to`, made if new; NULL without memory. */
rt_link_t *rt_link_for(rt_executor_t *ex, const char *to);
void rt_link_free_all(rt_executor_t *ex);
/* Sends a frame (one envelope or a batch) on the route's link, keeping a
 * copy until acknowledged. A send that fails is retried later; returns 0
 * or -ENOMEM. */
int rt_link_send(rt_executor_t *ex, rt_route_t *route, const uint8_t *payload, size_t len);
/* Sends every unacknowledged frame of link again, oldest first. */
void rt_link_resend(rt_executor_t *ex, rt_link_t *link, void *dealer);
/* Takes an acknowledgement or a gap report arriving on a dealer (a gap
 * report sends again what it names); false when bytes are neither. */
bool rt_link_take_ack(rt_executor_t *ex, const uint8_t *bytes, size_t len);
/* Opens actor's record: the file at path, or in memory for NULL. Returns 0,
 * -EINVAL for a file that is not a record, or another negative errno. */
int rt_link_record_open(rt_actor_t *actor, const char *path);
void rt_link_record_close(rt_link_record_t **record);
/* Checks a link frame that reached actor: 1 to take what follows the
 * header, 0 for one taken already or after a gap (dropped, counted), or
 * -EBADMSG / -ENOMEM. */
int rt_link_take(rt_actor_t *actor, const rt_ctx_t *ctx, const uint8_t *bytes, size_t len);
/* When the executor next owes an acknowledgement or a resend (µs on
 * rt_now_us()'s clock; INT64_MAX: never). */
int64_t rt_link_next_us(rt_executor_t *ex);
/* Sends the acknowledgements and resends that are due. */
void rt_link_tick(rt_executor_t *ex);

/* auth.c: ZeroMQ CURVE for tcp:// */
bool rt_z85_key_valid(const char *key);
/* Checks the key pair (both or neither) and, with one, starts the thread
 * that answers ZAP requests. Returns 0, -EINVAL or another negative errno. */
int rt_auth_start(rt_t *rt, const char *public_key, const char *secret_key);
/* Once nothing else uses the context: stops the thread, frees rt->auth. */
void rt_auth_stop(rt_t *rt);
/* Makes actor's mailbox a CURVE server whose handshakes are watched;
 * before it binds its tcp:// endpoint, on the executor's thread. */
int rt_auth_serve(rt_actor_t *actor);
/* Makes socket a CURVE client with the runtime's key pair, of the server
 * with server_key; before it connects. */
int rt_auth_client(rt_t *rt, void *socket, const char *server_key);
/* Whether the admitted peer (its key) may address receiver: 0, -EACCES
 * outside its scope, -ENOENT for a key not admitted. */
int rt_auth_permits(rt_t *rt, const char *peer, const char *receiver);
void rt_auth_add_stats(rt_t *rt, rt_stats_t *out);

/* rt.c */
int64_t rt_now_us(void);
/* Log lines of self's that rt_log()'s limit kept out. */
uint64_t rt_log_suppressed(const rt_actor_t *self);
void rt_tap_slow(rt_t *rt, rt_tap_dir_t dir, const rt_actor_t *actor, const Vmm__Envelope *env,
                 const uint8_t *bytes, size_t len);
void rt_tap_nested_slow(rt_t *rt, const rt_actor_t *from, const rt_actor_t *to,
                        const Vmm__Envelope *env);
/* rt_tap() of what the mailbox took with extra_frames more frames. */
void rt_tap_rx_extra(rt_t *rt, const rt_actor_t *actor, const uint8_t *bytes, size_t len,
                     uint32_t extra_frames);

/* Hands an envelope to the tap and the trace, if either is on; env is
 * packed only then when bytes is NULL. */
static inline void rt_tap(rt_t *rt, rt_tap_dir_t dir, const rt_actor_t *actor,
                          const Vmm__Envelope *env, const uint8_t *bytes, size_t len)
{
    if (atomic_load_explicit(&rt->tap, memory_order_acquire) ||
        atomic_load_explicit(&rt->trace, memory_order_acquire))
        rt_tap_slow(rt, dir, actor, env, bytes, len);
}

/* An envelope from one actor to another of the same executor, handed over
 * at once: the tap sees its TX and its RX, the trace one record. */
static inline void rt_tap_nested(rt_t *rt, const rt_actor_t *from, const rt_actor_t *to,
                                 const Vmm__Envelope *env)
{
    if (atomic_load_explicit(&rt->tap, memory_order_acquire) ||
        atomic_load_explicit(&rt->trace, memory_order_acquire))
        rt_tap_nested_slow(rt, from, to, env);
}

/* trace.c: the trace writer. */
#define RT_TRACE_MAGIC "vmm-trace"
#define RT_TRACE_VERSION 1
typedef enum { RT_TRACE_TX = 1, RT_TRACE_RX = 2, RT_TRACE_NESTED = 3 } rt_trace_dir_t;
typedef enum { RT_TRACE_CLOCK, RT_TRACE_TIMER } rt_trace_input_t;
/* An envelope that actor sent (TX, NESTED: to peer) or took: its packed
 * bytes, or when bytes is NULL env, then packed into the record. */
void rt_trace_message(rt_t *rt, rt_trace_dir_t dir, const rt_actor_t *actor,
                      const rt_actor_t *peer, const Vmm__Envelope *env, const uint8_t *bytes,
                      size_t len);
/* An envelope actor received with extra_frames more frames after it. */
void rt_trace_rx_extra(rt_t *rt, const rt_actor_t *actor, const uint8_t *bytes, size_t len,
                       uint32_t extra_frames);
/* A clock actor read, or a timer of its that fired. */
void rt_trace_input(rt_t *rt, const rt_actor_t *actor, rt_trace_input_t what, uint64_t value);
/* An actor that starts (arg: its init's, for its recipe), and one that
 * stopped. */
void rt_trace_actor(rt_t *rt, const rt_actor_t *actor, const void *arg);
void rt_trace_actor_stopped(rt_t *rt, const rt_actor_t *actor);
/* Ends the trace (the file ends at its last record); executors are gone. */
void rt_trace_stop(rt_t *rt);

/* replay.c: an executor under a replay hands what its actor sends and
 * consumes to these, which compare it with the trace or give back what the
 * trace has, instead of the sockets and the clock. */
rt_executor_t *rt_executor_new_replay(rt_t *rt, const char *name, rt_replay_t *replay);
/* env, prepared: compared with the next envelope the actor sent in the
 * trace; its request id there into *recorded_id. 0, or -ECANCELED once
 * the replay has diverged. */
int rt_replay_emit(rt_actor_t *self, const Vmm__Envelope *env, uint64_t *recorded_id);
/* An rt_request() of id: its reply, when the trace has it, goes to
 * on_reply with this id. */
int rt_replay_request(rt_actor_t *self, const Vmm__Envelope *env, uint64_t id);
/* A call: the request compared, its recorded reply handed to ctx. */
int rt_replay_call(rt_actor_t *self, const Vmm__Envelope *env, rt_ctx_t *ctx);
uint64_t rt_replay_clock(rt_actor_t *self);
/* rt_actor_input() (input) and rt_actor_output(). */
int rt_replay_bytes(rt_actor_t *self, bool input, uint32_t kind, uint64_t address, void *data,
                    size_t len);
/* actor.c: checks and decodes one envelope that reached actor's mailbox.
 * Returns 1 with *msg to dispatch, or 0 when it was refused (answered
 * where possible, counted). */
int rt_actor_take(rt_actor_t *actor, rt_msg_t *msg, rt_ctx_t *ctx, const uint8_t *bytes,
                  size_t len);
/* The same for an envelope that came with `extra` more frames in its
 * message: recorded so, counted and refused. */
void rt_actor_refuse_extra(rt_actor_t *actor, rt_ctx_t *ctx, const uint8_t *bytes, size_t len,
                           uint32_t extra);

/* Keeps the counts of an executor or client that is leaving rt's lists;
 * called with rt->lock held. */
void rt_retire_stats_locked(rt_t *rt, rt_executor_t *ex);
int rt_register_actor(rt_t *rt, rt_actor_t *actor);
void rt_unregister_actor(rt_t *rt, rt_actor_t *actor);
/* Opens (after init) or closes (before fini) an actor's shared handlers
 * to senders; waits for those running. Nothing for an actor without. */
void rt_actor_share(rt_actor_t *actor, bool open);
int rt_msg_unpack(rt_msg_t *msg, const uint8_t *bytes, size_t len);

/* wire.c: the envelope's encoding, byte for byte protobuf-c's, faster.
 * rt_wire_measure() returns the packed size and notes the parts' sizes,
 * which rt_wire_pack() then reuses. */
size_t rt_wire_measure(const Vmm__Envelope *env, rt_wire_size_t *sizes);
void rt_wire_pack(const Vmm__Envelope *env, const rt_wire_size_t *sizes, uint8_t *out);
/* alloc must be an arena: a fallback leaves the fast path's pieces in it. */
int rt_wire_unpack(ProtobufCAllocator *alloc, const uint8_t *bytes, size_t len,
                   Vmm__Envelope **out);
/* Whether an envelope's bytes nest no deeper than the decoder allows (for
 * a plain vmm__envelope__unpack() of bytes from a file). */
bool rt_wire_depth_ok(const uint8_t *bytes, size_t len);
size_t rt_wire_varint_size(uint64_t v);
uint8_t *rt_wire_put_varint(uint8_t *p, uint64_t v);
int rt_wire_get_varint_long(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Reads a varint at *p; 0, or -1 when it runs past end or 10 bytes. */
static inline int rt_wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    if (*p < end && **p < 0x80) { /* most keys and lengths are one byte */
        *out = *(*p)++;
        return 0;
    }
    return rt_wire_get_varint_long(p, end, out);
}
/* Top-level request_id / reply_to of packed bytes, read without decoding
 * (0 when absent or unreadable): so that input refused undecoded can still
 * be answered to the request it was. */
uint64_t rt_peek_request_id(const uint8_t *bytes, size_t len);
/* The body's field number (its kind), or 0. */
uint64_t rt_peek_body(const uint8_t *bytes, size_t len);
uint64_t rt_peek_reply_to(const uint8_t *bytes, size_t len);

/* A frame whose first byte is 0 (a field number no envelope can start
 * with) is a batch: envelopes, each preceded by its length as a varint. */
#define RT_BATCH_MARKER 0x00

#endif
