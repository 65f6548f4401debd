/*
 * The actor runtime: actors, executors, addressing, request/reply, tracing.
 *
 * An actor is a name, a mailbox (a ZeroMQ ROUTER socket), private state and
 * a handler per envelope body kind. Executors are threads that host one or
 * more actors and poll their mailboxes plus raw file descriptors in one loop.
 * Which actors share an executor is configuration: actor code only ever names
 * its peers, and the runtime picks the path:
 *
 *   - same executor: the receiver's handler runs directly on the caller's
 *     thread (a request borrows the caller's envelope; nothing is packed
 *     unless a tap is set);
 *   - another executor in this process: inproc:// ZeroMQ sockets;
 *   - another process or host: the endpoint the directory gives for the name
 *     (ipc:// or tcp://).
 *
 * One-way events to another executor are coalesced per destination and
 * leave as one ZeroMQ message when the sending handler's turn ends (see
 * rt_send()).
 *
 * The runtime knows nothing of KVM. Errors are 0 or a negative errno.
 */
#ifndef VMM_RT_H
#define VMM_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/envelope.pb-c.h"

typedef struct rt_s rt_t;
typedef struct rt_executor_s rt_executor_t;
typedef struct rt_actor_s rt_actor_t;
typedef struct rt_client_s rt_client_t;

/* Logging levels; messages above the configured level are dropped. */
typedef enum {
    RT_LOG_ERROR = 0,
    RT_LOG_WARN,
    RT_LOG_INFO,
    RT_LOG_DEBUG,
    RT_LOG_TRACE,
} rt_log_level_t;

typedef struct {
    /* Largest envelope taken from a socket or packed to be sent; larger
     * ones are refused with an error reply and counted. (A call within one
     * executor packs nothing and is not limited.) A peer that sends a frame
     * over four times this, and at least 256 KiB, is disconnected by
     * ZeroMQ before it is buffered. 0 picks the default (1 MiB). */
    size_t max_message_bytes;
    /* A thread waiting for input (a caller for its reply, an executor for
     * its next message) polls this long before it blocks (design.md: a
     * blocking wake-up costs tens of µs on an idle machine). A thread that
     * finds its CPU time falling behind the clock while it polls (a busy
     * machine) blocks at once for a while instead. 0 picks the default
     * (50 µs); a negative value never polls. */
    int spin_us;
    /* How long a send may wait on a full peer queue before failing with
     * -EAGAIN. 0 picks the default (5000 ms). Once a send to a peer has
     * waited so in vain, sends to it fail at once while its queue stays
     * full, and wait again once one found room. Replies never wait: a peer
     * that does not read them loses them (counted in tx_refused). */
    int send_timeout_ms;
    /* How many messages a socket queues per peer, each way. 0 picks the
     * default (100000). A mailbox bound to an ipc:// or tcp:// endpoint
     * queues fewer from each peer: as many frames of the largest size
     * ZeroMQ lets in (see max_message_bytes) as fit in 128 MiB, at least
     * 16, so that a peer flooding it holds that much of this process's
     * memory at most. */
    int queue_messages;
    /* How long a link (rt_send() from another process) must have sent this
     * process's actor nothing before the actor, its table of links full,
     * forgets it for a new one. 0 picks the default (30000 ms): longer
     * than a sender waits to send its unacknowledged frames again (8 s at
     * most), so a forgotten link had nothing in flight, and a peer
     * inventing links cannot make another's frames be taken twice. A new
     * link's frames meanwhile are dropped (counted in rx_duplicate) and
     * sent again by their sender. */
    int link_idle_ms;
    /* Logging threshold; the default is RT_LOG_WARN (quiet). The VMM_LOG
     * environment variable (error|warn|info|debug|trace) overrides it. */
    rt_log_level_t log_level;
    bool log_level_set;
    /*
     * The runtime's own ZeroMQ CURVE key pair, 40 Z85 characters each
     * (zmq_curve_keypair(), `vmm keygen`); both or neither, copied. With
     * them, tcp:// is CURVE or nothing: a mailbox bound to a tcp://
     * endpoint is a CURVE server that admits only the keys given to
     * rt_peer_allow(), and a route to a tcp:// directory entry is a CURVE
     * client that checks its server's key (rt_directory_set_key()). ipc://
     * and inproc:// stay plain (the file system and the process guard
     * them). rt_new() refuses a malformed key, or a public key that is not
     * the secret key's. Without keys tcp:// is plain: for trusted networks
     * and tests.
     */
    const char *curve_public_key;
    const char *curve_secret_key;
} rt_config_t;

/* Runtime-wide counters of bad input and routing failures. */
typedef struct {
    uint64_t rx;              /* envelopes received by handlers */
    uint64_t tx;              /* envelopes handed to a transport (counted
                                 before they leave, so a reply's receiver
                                 sees the reply counted) */
    uint64_t rx_malformed;    /* could not be decoded, or invalid ids/body */
    uint64_t rx_oversized;    /* over max_message_bytes */
    uint64_t rx_unknown_kind; /* body kind the receiver has no handler for */
    uint64_t rx_misaddressed; /* arrived at a mailbox not named receiver */
    uint64_t rx_stale_reply;  /* a reply nobody waits for (late or unknown) */
    uint64_t rx_denied;       /* not taken from where it came (Terminate
                                 from another process, or from a CURVE
                                 peer to an actor outside its scope) */
    uint64_t tx_refused;      /* oversized, unroutable or failed sends (a
                                 failed send counts in tx as well) */
    uint64_t errors_sent;     /* Error replies sent */
    /* Links (rt_send() to another process, rt_actor_spec_t): */
    uint64_t tx_resent;       /* frames sent again, unacknowledged */
    uint64_t rx_duplicate;    /* frames dropped: taken already, after a
                                 gap, or of a new link while every link
                                 the receiver keeps is busy (the sender
                                 sends them again) */
    /* CURVE mailboxes (rt_config_t.curve_*): each refused connection is
     * counted once, in one of the two. */
    uint64_t auth_denied;     /* a CURVE key not admitted (rt_peer_allow()) */
    uint64_t auth_failed;     /* a handshake that failed otherwise: a peer
                                 not speaking CURVE (plain ZeroMQ), with the
                                 wrong server key, not speaking ZeroMQ at
                                 all, or gone before it ended (see
                                 rt_peer_allow()) */
} rt_stats_t;

/*
 * A received message. The envelope and everything it points to live in the
 * message's own arena; rt_msg_release() frees them. Small messages need no
 * heap allocation: they live inside the rt_msg_t itself, which therefore
 * must not be copied (receive into the rt_msg_t that is to keep it).
 */
typedef struct rt_arena_chunk_s rt_arena_chunk_t;
typedef struct {
    Vmm__Envelope *env;
    /* private */
    size_t used;
    rt_arena_chunk_t *chunks;
    _Alignas(16) unsigned char inline_buf[1024];
} rt_msg_t;

void rt_msg_release(rt_msg_t *msg);

/* ---- The runtime ---------------------------------------------------- */

/* Creates a runtime with its own ZeroMQ context, which may hold as many
 * sockets as half the process's open-file limit (ZeroMQ's default is 1023;
 * a VM of many VPs needs more). cfg may be NULL. Returns NULL (errno
 * EINVAL) for a malformed CURVE key pair. */
rt_t *rt_new(const rt_config_t *cfg);

/* Terminates every executor still running, oldest first (so an actor that
 * started executors can stop them itself as it terminates), then every
 * client, then frees the runtime and nulls *rt. */
void rt_destroy(rt_t **rt);

/* Maps an actor name that lives outside this process to an endpoint
 * (ipc://... or tcp://...). Names of actors in this process need no entry.
 * The same as rt_directory_set_key() without a key: a runtime with a CURVE
 * key pair refuses a tcp:// endpoint here (-EINVAL). */
int rt_directory_set(rt_t *rt, const char *name, const char *endpoint);

/*
 * Like rt_directory_set(), with the CURVE public key (40 Z85 characters)
 * of the runtime serving the tcp:// endpoint: the route connects as a
 * CURVE client with this runtime's key pair, and reaches only a server
 * that holds the matching secret key. The server must have admitted this
 * runtime's public key (rt_peer_allow()); otherwise it refuses the
 * connection, and calls through it time out. Secure by default: a runtime
 * with a key pair refuses a tcp:// entry without a server key, and a key
 * is refused for other transports and by a runtime without a key pair.
 * Setting a name again replaces its entry. Returns 0, -EINVAL, or -ENOMEM.
 */
int rt_directory_set_key(rt_t *rt, const char *name, const char *endpoint,
                         const char *server_public_key_z85);

/*
 * Admits a peer's CURVE public key (40 Z85 characters) to this runtime's
 * tcp:// mailboxes, for envelopes to the actors whose names start with
 * scope ("vm0/"; "" for any). Needs the runtime's own key pair.
 *
 * A runtime thread answers ZeroMQ's authentication requests (ZAP) for the
 * runtime's context: a listed key is admitted, its connection tagged with
 * the key itself (the ZAP User-Id), and each envelope on it is checked
 * against the key's scope when it arrives; one for an actor outside it is
 * refused (an Error PERMISSION_DENIED for a request), counted in
 * rx_denied and logged at WARN. Any other key is refused in the
 * handshake, counted in auth_denied and logged at WARN with its Z85 text.
 * Peers that fail the handshake otherwise (plain ZeroMQ, bytes that are
 * not ZeroMQ, a wrong server key) are counted in auth_failed and logged;
 * libzmq drops some of them silently, which then count when the
 * connection closes before its handshake ended (with handshakes
 * overlapping, the count may lag until the others end).
 *
 * Admitting a key again changes its scope, for its open connections too.
 * Both strings are copied. Returns 0, -EINVAL (a malformed key, a NULL
 * scope, or a runtime without a key pair) or -ENOMEM.
 */
int rt_peer_allow(rt_t *rt, const char *public_key_z85, const char *scope);

/* Copies the runtime's CURVE public key (41 bytes with the NUL) into buf,
 * for peers that must name it as their server key. Returns 0, -ENOENT
 * without a key pair, or -ENOSPC. */
int rt_curve_public_key(rt_t *rt, char *buf, size_t size);

/* Copies the endpoint an actor of this process was bound to (its spec's
 * endpoint, with a wildcard port resolved) into buf. Returns 0, or -ENOENT
 * for an unknown actor or one bound to no such endpoint. */
int rt_endpoint_of(rt_t *rt, const char *name, char *buf, size_t size);

/* Copies the counters into *out. */
void rt_stats(rt_t *rt, rt_stats_t *out);

/*
 * Every envelope sent or received by an actor of this runtime passes through
 * one path, which hands it packed to the tap, if one is set. The tap runs on
 * executor threads and must be thread-safe. Set it before starting actors,
 * or to NULL to stop tapping.
 */
typedef enum { RT_TAP_TX, RT_TAP_RX } rt_tap_dir_t;
typedef void (*rt_tap_fn)(void *arg, rt_tap_dir_t dir, const char *actor,
                          const uint8_t *bytes, size_t len);
void rt_set_tap(rt_t *rt, rt_tap_fn fn, void *arg);

/*
 * Logs at `level`, tagged with the actor's name (self may be NULL: the
 * runtime's own lines). Each actor (and the runtime) writes at most
 * RT_LOG_BURST lines at once and RT_LOG_PER_S a second after that, so that
 * a peer sending bad input cannot flood the log: lines beyond are counted
 * (an actor's "logs_suppressed" in its Inspect, there once it is not 0) and
 * their number is given with the next line written.
 */
#define RT_LOG_BURST 100
#define RT_LOG_PER_S 20
void rt_log(rt_t *rt, const rt_actor_t *self, rt_log_level_t level,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- Traces ----------------------------------------------------------- */

typedef struct {
    const char *path;    /* the trace file: made (mode 0600) or emptied */
    const char *process; /* what this process is, for readers ("vmm run") */
    /* What to record: actor name prefixes (a message is recorded when its
     * actor, or for a nested call either actor, matches) and body kinds by
     * the envelope's field names ("device_request"); none: everything. */
    const char *const *actors;
    size_t n_actors;
    const char *const *kinds;
    size_t n_kinds;
} rt_trace_config_t;

/*
 * Records what the actors of this runtime send, receive and consume into a
 * trace file (proto/trace.proto, docs/trace-format.md): every envelope
 * that reaches an actor or leaves it, as it went on the wire, with a
 * monotonic time and its thread's order; the clock each actor read
 * (rt_now_ns()), the timers that fired, and what actors hand to
 * rt_actor_input() and rt_actor_output(). Start it before the actors it is to see; it ends at
 * rt_destroy(). Records go to the file as they are made: a process that
 * crashes loses at most the one being written, and a reader may read the
 * file meanwhile. Returns 0, or -EINVAL (an unknown kind), -EEXIST (one
 * is being written), or open's or mmap's error, each with the reason in
 * err.
 */
int rt_trace_start(rt_t *rt, const rt_trace_config_t *cfg, char *err, size_t errlen);

/* Records written, and records dropped (too large, or the file could not
 * grow), so far; 0 and 0 without a trace. */
void rt_trace_stats(rt_t *rt, uint64_t *records, uint64_t *dropped);

/* ---- Actors ---------------------------------------------------------- */

/* A handler for one body kind. msg is borrowed for the call: copy what must
 * outlive it. A request must be answered by rt_reply() or rt_reply_error()
 * before the handler returns; a handler that returns a negative errno
 * without replying gets an Error reply made from that errno. */
typedef int (*rt_handler_fn)(rt_actor_t *self, const Vmm__Envelope *msg);

typedef struct {
    Vmm__Envelope__BodyCase body;
    rt_handler_fn fn;
} rt_handler_t;

/* What a shared handler returns to leave an envelope to the actor's own
 * executor (see rt_actor_ops_t.shared_handlers). */
#define RT_NOT_SHARED 1

/* What the blocking work of an actor reports (see rt_actor_ops_t.run). */
typedef enum {
    RT_RUN_IDLE = 0,  /* nothing to run until a message changes that */
    RT_RUN_AGAIN = 1, /* call run again once pending messages are handled */
} rt_run_t;

typedef struct {
    const char *kind; /* e.g. "vp", shown in logs and introspection */
    /* Runs on the executor thread before the actor receives anything. */
    int (*init)(rt_actor_t *self, void *arg);
    /* Releases the state on terminate. */
    void (*fini)(rt_actor_t *self);
    const rt_handler_t *handlers;
    size_t n_handlers;
    /* Replies to rt_request(); NULL if the actor makes none. */
    void (*on_reply)(rt_actor_t *self, const Vmm__Envelope *reply);
    /* Adds the actor's own state to its introspection tree. */
    void (*inspect)(rt_actor_t *self, Vmm__Rt__InspectNode *node);
    /*
     * Blocking work (a VP's KVM_RUN). An executor hosts at most one actor
     * with `run`; others may share it (a VP's devices, which its run then
     * calls without a thread hop). The executor calls run whenever its
     * inputs are empty and the last call returned RT_RUN_AGAIN. When a
     * message arrives meanwhile, for any of the executor's actors, the
     * runtime calls kick (from another thread) and sends the executor
     * thread the kick signal (rt_kick_signal()), so run must return
     * promptly after kick. Events that run sends are coalesced like
     * any others: run calls rt_flush() before it blocks.
     */
    rt_run_t (*run)(rt_actor_t *self);
    void (*kick)(rt_actor_t *self);
    /*
     * Handlers that may run on any thread of the process, beside the
     * actor's own executor and each other: for work that must not wait for
     * the actor's thread (an interrupt a device raises reaches KVM on the
     * device's thread). An envelope of their body kinds that an actor of
     * this process on another executor sends (rt_send()) or calls with
     * (rt_call(), rt_call_with()) is handled at once on the sender's
     * thread, recorded in a trace as a call within one executor is, and a
     * reply goes straight to the caller. The handler gets the actor and
     * may reply, log and send one-way (rt_send(): it leaves from the
     * sender's thread, recorded as the actor's); it must be thread-safe,
     * touch the actor's state only where the actor made that safe, and
     * never call (rt_call() fails with -EDEADLK), arm timers or wait for
     * another actor (the actor's fini waits for it). It returns RT_NOT_SHARED,
     * without replying, to leave the envelope to the usual path (the
     * mailbox, then ops->handlers). Envelopes from the actor's own
     * executor, other processes and rt_request() always take the usual
     * path, so ops->handlers must handle these kinds too. An envelope
     * handled here may overtake one-way envelopes the same sender sent
     * earlier by the usual path.
     */
    const rt_handler_t *shared_handlers;
    size_t n_shared_handlers;
    /*
     * A proxy's handler (the control endpoint's): envelopes that reach the
     * actor's mailbox from another process addressed to an actor that is
     * neither it nor one of its executor's (which the mailbox is the gateway
     * to) come here, whatever their body kind, instead of being refused as
     * misaddressed. It answers or passes on each, as any handler does; a
     * CURVE peer's scope (rt_peer_allow()) is checked against the proxy's
     * own name, and what the peer may ask through it is the proxy's to
     * decide (rt_peer_key()). NULL: no proxy.
     */
    rt_handler_fn forward;
    /* Optional, for traces: packs what starts the actor again from init's
     * arg (its kind's own message) into *out, malloc'ed and then the
     * caller's, so that a replay can rebuild it from the trace alone (see
     * proto/trace.proto Actor.recipe). Returns 0 or a negative errno. */
    int (*recipe)(const void *arg, ProtobufCBinaryData *out);
} rt_actor_ops_t;

typedef struct {
    const char *name;        /* its address, e.g. "vm0/vp/3" */
    const rt_actor_ops_t *ops;
    void *arg;               /* passed to init */
    /* An extra endpoint to bind the mailbox to, so that other processes or
     * hosts can reach it (ipc://... or tcp://...); NULL for none. Under a
     * CURVE key pair, tcp:// is a CURVE server (rt_config_t). Peers there
     * reach the other actors of its executor too, by name: the endpoint is
     * their gateway (a device host asks the synic at the partition's). */
    const char *endpoint;
    /* A file (made mode 0600 if absent) where the actor records what it
     * took from each sender in another process (see rt_send()), so that
     * the actor restarted in a new process with the same file takes
     * neither twice nor never what was sent to its predecessor; NULL:
     * kept in memory (a restart may then take again what its predecessor
     * took but had not yet acknowledged). */
    const char *delivery_record;
} rt_actor_spec_t;

/* Starts an actor on an executor; blocks until its init has run (an actor
 * may start one on its own executor: init then runs at once). Returns 0,
 * -EEXIST for a name in use, -EBUSY for a second blocking actor on one
 * executor, or init's error. */
int rt_actor_start(rt_executor_t *ex, const rt_actor_spec_t *spec);

const char *rt_actor_name(const rt_actor_t *self);
/* The executor the actor runs on (to start a neighbour there). */
rt_executor_t *rt_actor_executor(const rt_actor_t *self);
rt_t *rt_actor_rt(const rt_actor_t *self);
void *rt_actor_state(const rt_actor_t *self);
void rt_actor_set_state(rt_actor_t *self, void *state);

/*
 * Bytes the actor read from outside the runtime (guest memory through a
 * mapped file, a CPU counter): data holds what it read. Recorded in the
 * trace, when one is being written, as an input of kind (the actor's own
 * number) at address. Under a replay (runtime/replay.h) data is
 * overwritten with what the recording read there instead, and the result
 * is -ENODATA when the recording read nothing of the kind there (the
 * replay has diverged). Returns 0 otherwise.
 */
int rt_actor_input(rt_actor_t *self, uint32_t kind, uint64_t address, void *data, size_t len);

/* The CURVE public key (Z85) of the peer whose envelope self is handling,
 * as the handshake proved it; NULL when it came otherwise (this process,
 * ipc://, plain tcp://). Valid until the handler returns. */
const char *rt_peer_key(const rt_actor_t *self);

/* Whether the envelope self is handling came from another process (by any
 * transport; on a replay, from an actor the trace does not hold): its
 * sender's name is only what that process wrote, bound to nothing but
 * rt_peer_key() where CURVE proved one. */
bool rt_peer_remote(const rt_actor_t *self);

/* Calls fn with the name and kind of every actor of this process (a
 * client's kind is "client"), in no order, under the runtime's lock: fn
 * must not call into the runtime (NULL: only count). Returns how many
 * there were. */
size_t rt_actors_each(rt_t *rt, void (*fn)(void *arg, const char *name, const char *kind),
                      void *arg);

/* Whether the actor is being replayed from a trace (runtime/replay.h):
 * what it would reach outside the runtime (a file it maps) is the trace's
 * to give back through rt_actor_input(), so it opens nothing itself. */
bool rt_actor_replaying(const rt_actor_t *self);

/* Bytes the actor wrote outside the runtime (guest memory through a mapped
 * file): recorded like rt_actor_input(), and under a replay compared with
 * what the recording wrote, as a message sent would be. */
void rt_actor_output(rt_actor_t *self, uint32_t kind, uint64_t address, const void *data,
                     size_t len);

/* Called when fd becomes readable; runs on the actor's executor. */
typedef void (*rt_fd_fn)(rt_actor_t *self, int fd);

/* Polls a raw descriptor (eventfd, timerfd) in the actor's executor loop.
 * The descriptor stays owned by the caller. */
int rt_actor_watch_fd(rt_actor_t *self, int fd, rt_fd_fn fn);
int rt_actor_unwatch_fd(rt_actor_t *self, int fd);

/* ---- Time ------------------------------------------------------------- */

/*
 * The runtime's clock: CLOCK_MONOTONIC, in ns. Actors read time only here
 * and are woken only by the timers below, never by the wall clock or a
 * timerfd of their own: what an actor consumes then all passes through
 * the runtime, which a trace can record and a replay give back.
 */
uint64_t rt_now_ns(rt_actor_t *self);

/* Called on the actor's executor when its timer `id` is due. */
typedef void (*rt_timer_fn)(rt_actor_t *self, uint64_t id);

/*
 * Arms self's timer `id` (any number the actor chooses) to call fn once
 * rt_now_ns() reaches deadline_ns; a deadline already past fires at the
 * executor's next turn. Arming an armed timer moves it. A timer fires
 * once; it is forgotten when it fires, is cancelled or its actor
 * terminates. An executor whose blocking actor is in its run is kicked
 * for it, as for a message. Returns 0, -ENOMEM, or timerfd's error.
 */
int rt_timer_set(rt_actor_t *self, uint64_t id, uint64_t deadline_ns, rt_timer_fn fn);
/* Disarms self's timer `id`. Returns 0, or -ENOENT when it was not armed. */
int rt_timer_cancel(rt_actor_t *self, uint64_t id);

/* ---- Messages --------------------------------------------------------- */

/*
 * Sends a one-way event. The runtime sets sender and receiver; env stays
 * owned by the caller and is copied before this returns. Success means
 * queued for delivery. Events to another executor are coalesced and leave
 * when the sending handler's turn ends (or before the next request to the
 * same actor, which never overtakes them).
 *
 * Events to another process go on a link: numbered, kept until the
 * receiver acknowledges them, and sent again when the receiver's directory
 * entry is set again (a restarted process announced itself) or nothing was
 * acknowledged for a second (then two, four, up to eight). The receiver
 * takes each once and in order (see rt_actor_spec_t.delivery_record for a
 * receiver that restarts), so a peer that dies and comes back loses
 * nothing queued for it and gets nothing twice. Requests and replies are
 * not on links: a caller's timeout covers them.
 */
int rt_send(rt_actor_t *self, const char *to, Vmm__Envelope *env);

/*
 * Records env as sent to `to` without delivering it: for what went by
 * other means the receiver handed out (an irqfd a device host writes for
 * its MSI), so that the request stays a message in the trace and a replay
 * compares it as any send. Counted as sent. Returns 0 or -EINVAL.
 */
int rt_note_sent(rt_actor_t *self, const char *to, Vmm__Envelope *env);

/*
 * The other side of rt_note_sent(): hands env (one-way) to self's own
 * handlers as if `from` had sent it, and records it so. For what reached
 * the actor by other means the sender handed out (a doorbell's eventfd a
 * device host waits on itself), so that it stays a message in the trace
 * and a replay delivers it as any other. Call it on self's executor, not
 * from within a handler of self's. Returns 0 or -EINVAL.
 */
int rt_note_received(rt_actor_t *self, const char *from, Vmm__Envelope *env);

/*
 * After a call whose callee, before it replied, sent actors of self's
 * executor something they must act on before self's executor goes on (a
 * synic's central actor sends its VPs' actors the new port table before
 * it answers that a port is gone): they take it before a blocking actor of
 * this executor (a VP) runs again, rather than when the kick watcher
 * notices it, which may be after the VP ran the guest on. It costs a look
 * at each mailbox, so only such callers make it.
 */
void rt_notice_arrivals(rt_actor_t *self);

/* Delivers now the events self's executor holds: those coalesced for other
 * executors (see rt_send()), and those queued for actors of this executor
 * that are not on the call stack (their handlers run here). For an actor
 * about to block in its run. */
void rt_flush(rt_actor_t *self);

/*
 * Sends a request and waits for its reply, at most timeout_ms. On success
 * *reply holds the reply (an Error body is a success of the call); release
 * it with rt_msg_release(). env stays owned by the caller.
 * Returns -ETIMEDOUT, -ENOENT for a name with no route or for an actor of
 * this process that left before answering (within 100 ms of its leaving,
 * not at the timeout), -EMSGSIZE for an oversized request, -EDEADLK for a call into an actor already on this
 * thread's stack. A timeout says that no reply came in time, not that the
 * request was not handled: a peer that was away may still get and handle
 * it later (its reply is then dropped and counted as stale), so a request
 * that must not happen twice needs its own way to tell.
 *
 * A call to an actor on the same executor runs its handler right here. A
 * call to another executor blocks this one until the reply comes: its other
 * actors wait meanwhile, and calls that go round in a circle between
 * executors end in -ETIMEDOUT. Keep synchronous calls flowing one way (a VP
 * calls its devices, a device calls its partition) and use rt_request()
 * against the flow.
 */
int rt_call(rt_actor_t *self, const char *to, Vmm__Envelope *env,
            rt_msg_t *reply, int timeout_ms);

/*
 * rt_call() for a reply of body kind `want` (VMM__ENVELOPE__BODY_ACK for an
 * Ack): an Error reply becomes its code's negative errno (rt_errno_of()),
 * another kind -EIO, a failed call its own error, each with a one-line
 * reason naming `to` in why (NULL: none). On success the reply is left in
 * *reply when given (the caller releases it), else released.
 */
int rt_call_expect(rt_actor_t *self, const char *to, Vmm__Envelope *env, int want,
                   rt_msg_t *reply, int timeout_ms, char *why, size_t whylen);

/*
 * Like rt_call(), but lends the reply to fn instead of returning a copy: fn
 * runs once, before this returns, and must copy what it keeps. With the
 * callee on the same executor nothing is copied or packed at all.
 * Returns fn's result, or the call's error (then fn is not called).
 */
typedef int (*rt_reply_fn)(void *arg, const Vmm__Envelope *reply);
int rt_call_with(rt_actor_t *self, const char *to, Vmm__Envelope *env, int timeout_ms,
                 rt_reply_fn fn, void *arg);

/*
 * Sends a request without waiting. Its reply, or an Error with code TIMEOUT
 * after timeout_ms (NOT_FOUND once an actor of this process it went to has
 * left without answering), reaches ops->on_reply with reply_to == *id.
 */
int rt_request(rt_actor_t *self, const char *to, Vmm__Envelope *env,
               int timeout_ms, uint64_t *id);

/* Answers the request `req` that is being handled. body is copied. */
int rt_reply(rt_actor_t *self, const Vmm__Envelope *req, Vmm__Envelope *body);
int rt_reply_error(rt_actor_t *self, const Vmm__Envelope *req,
                   Vmm__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int rt_reply_ack(rt_actor_t *self, const Vmm__Envelope *req);

/*
 * Answers later: takes over the reply to `req`, the request being handled,
 * so that the handler may return without one (and wait for replies of its
 * own, say, from rt_request()). The reply must then come from this actor,
 * on its executor, by rt_reply_deferred(), before the actor terminates.
 * Returns NULL when req cannot wait: a caller on this very thread waits
 * in rt_call() (then answer now), or memory ran out. Owned by the caller.
 */
typedef struct rt_deferred_s rt_deferred_t;
rt_deferred_t *rt_defer(rt_actor_t *self, const Vmm__Envelope *req);
/* Sends the deferred reply (body copied) and frees *d, nulling it. */
int rt_reply_deferred(rt_actor_t *self, rt_deferred_t **d, Vmm__Envelope *body);

/* Maps an errno to an error code: ENOTSUP -> NOT_SUPPORTED, and so on. */
Vmm__ErrorCode rt_error_code(int err);
/* And back, as a negative errno: NOT_SUPPORTED -> -ENOTSUP, BUSY ->
 * -EBUSY, ..., anything else -> -EIO. */
int rt_errno_of(Vmm__ErrorCode code);

/* ---- Introspection ----------------------------------------------------- */

/* Adds a child "name = value" to node; value is printf-formatted. The tree
 * is owned and freed by the runtime. Returns the child, or NULL. */
Vmm__Rt__InspectNode *rt_inspect_add(Vmm__Rt__InspectNode *node,
                                     const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Executors --------------------------------------------------------- */

/* Starts an executor thread; blocks until it is ready. */
rt_executor_t *rt_executor_new(rt_t *rt, const char *name);

/* Terminates every actor on it, after handling what had reached their
 * mailboxes (bounded: a peer that never stops sending cannot hold it up):
 * fini, then mailbox closed. Joins the thread and nulls *ex. */
void rt_executor_destroy(rt_executor_t **ex);

/* The signal the runtime sends to wake a blocking actor's thread (a
 * real-time signal with a handler that does nothing, so that blocking
 * system calls return EINTR). */
int rt_kick_signal(void);

/* ---- Clients: non-actor threads (main, tests) talking to actors -------- */

/* A named endpoint driven by the calling thread instead of an executor. It
 * can call, send, and receive events and requests addressed to its name. */
rt_client_t *rt_client_new(rt_t *rt, const char *name);
void rt_client_destroy(rt_client_t **client);

/* The client's actor, for rt_call(), rt_send() and rt_request(). */
rt_actor_t *rt_client_actor(rt_client_t *client);

/* Waits up to timeout_ms (0: only takes what is there) for the next message
 * addressed to the client.
 * Replies that arrived after their call timed out are dropped (and counted
 * as stale) here.
 * Requests among them must be answered with rt_reply*() before the next
 * receive. Returns 0, or -ETIMEDOUT. Release *msg with rt_msg_release(). */
int rt_client_recv(rt_client_t *client, rt_msg_t *msg, int timeout_ms);

/* How many envelopes actors of this process sent to the client that could
 * not be delivered (a connect or send that failed): an owner waiting for
 * events that may never come checks it, rather than wait for ever. */
uint64_t rt_client_lost(const rt_client_t *client);

/* ---- Fault injection, for tests ---------------------------------------- */

/* From now on, one-way envelopes actor `from` sends to `to` fail with
 * -EPIPE, as if their route had broken, and count as lost to `to`. Both
 * are copied. Returns 0, or -ENOMEM. */
int rt_fault_drop(rt_t *rt, const char *from, const char *to);

#endif
