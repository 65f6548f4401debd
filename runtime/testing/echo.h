/*
 * An actor for tests and benchmarks: answers Ping with a Pong carrying the
 * same payload, and counts one-way Pings. Its introspection tree shows the
 * counts ("pings", "events") and the last sender ("last_sender").
 */
#ifndef VMM_RT_TESTING_ECHO_H
#define VMM_RT_TESTING_ECHO_H

#include "runtime/rt.h"

typedef struct {
    int delay_ms; /* sleep this long before each reply: a slow peer */
} echo_config_t;

/* The ops to start it with; arg is an echo_config_t * or NULL, copied. */
extern const rt_actor_ops_t echo_ops;

/* Fills env as a Ping carrying len bytes of data (lent, not copied). */
void echo_ping(Vmm__Envelope *env, Vmm__Rt__Ping *ping, const void *data, size_t len);

/* Answers req with a Pong carrying text. */
int echo_reply_text(rt_actor_t *self, const Vmm__Envelope *req, const char *text);

/* Asks `to` for its introspection tree and copies the value of the child
 * `name` into buf: a top-level child, or one below it by a path
 * ("ram_fill/faults"). Returns 0, -ENOENT when there is no such child, or
 * the call's error. */
int echo_inspect_text(rt_actor_t *self, const char *to, const char *name, char *buf,
                      size_t size);

/* The same parsed as a number (decimal, or hex with 0x), or -1. */
long long echo_inspect_number(rt_actor_t *self, const char *to, const char *name);

/* A ZeroMQ DEALER in zctx, for a test that plays a peer by hand: it drops
 * what is unsent when closed, and a receive waits timeout_ms at most. Not
 * connected yet. NULL when ZeroMQ cannot make it. */
void *echo_raw_dealer(void *zctx, int timeout_ms);

#endif
