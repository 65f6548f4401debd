/*
 * Replaying one actor from a trace (docs/trace-format.md): the actor is
 * started again, alone, on the calling thread, and driven with what the
 * trace says it received and consumed, in its recorded order:
 *
 *   - the envelopes that reached it (requests, events, the replies to its
 *     rt_request()s), through the same checks as in the run, so recorded
 *     bad input is refused again;
 *   - the replies to its calls, handed back to the very call;
 *   - its clock (rt_now_ns()), its timers as they fired, the bytes it read
 *     through rt_actor_input().
 *
 * Every envelope it sends, and every rt_actor_output(), is compared field
 * by field with the one the trace has at that point; the first difference
 * ends the replay with a report of where and why. Nothing else runs: no
 * other actor, no KVM, no sockets to peers, no wall clock, no timerfd. A
 * call whose reply the trace lacks fails with -ETIMEDOUT, as it did.
 *
 * What cannot be replayed: an actor that polls descriptors of its own
 * (rt_actor_watch_fd() fails with -ENOTSUP), or starts other actors.
 */
#ifndef VMM_RT_REPLAY_H
#define VMM_RT_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

typedef struct {
    const char *trace; /* the trace file */
    const char *actor; /* the actor's name in it */
    /* How to start it again: the same ops as in the run, and an init arg
     * with the configuration it had (its recipe says which). */
    const rt_actor_ops_t *ops;
    void *arg;
} rt_replay_config_t;

typedef struct {
    bool matched;       /* it sent exactly what the trace says */
    uint64_t delivered; /* envelopes and timers handed to it */
    uint64_t compared;  /* envelopes and outputs it sent, compared */
    uint64_t inputs;    /* clock readings and bytes given back */
    /* The trace ends before the actor stopped (a run cut short, a file
     * still being written): what its fini sent could not be compared. */
    bool unfinished;
    /* When it did not match: */
    uint64_t index;      /* the record (0: the header) where it differs */
    char kind[96];       /* what the actor sent there ("device_reply.read"),
                            or "nothing" */
    char field[256];     /* the field that differs ("read.value"), or "" */
    char expected[512];  /* what the trace has there */
    char got[512];       /* what the actor did */
    uint64_t cause_index; /* the record delivered when it happened */
    char cause[768];     /* that record, as text */
    char report[3072];   /* all of it, as lines for people */
} rt_replay_result_t;

/*
 * Replays cfg->actor from cfg->trace. Returns 0 with *out telling whether
 * it matched (out->report says where not); or, when the replay could not
 * run to the end, a negative errno with the reason in err: -ENOENT (no
 * such actor in the trace), -EBADMSG (the file is not a trace, is of a
 * newer version, is cut short or corrupt before the actor's end), -ENOTSUP
 * (a trace recorded with a kind filter, or one that lost a record of the
 * actor), or init's error.
 */
int rt_replay(const rt_replay_config_t *cfg, rt_replay_result_t *out, char *err,
              size_t errlen);

/*
 * For a kind of actor's own replay helper (synic_replay(), ...): finds
 * actor in trace, checks that it is of kind and has a recipe of type
 * recipe_type, and calls start with cfg (its trace and actor filled in)
 * and the recipe decoded (lent for the call); start sets cfg->ops and
 * cfg->arg from it and returns rt_replay()'s result (or its own errno
 * with the reason in err). Returns start's result, rt_trace_find_actor()'s
 * error, or -EINVAL (another kind, no recipe, one that does not decode).
 */
typedef int (*rt_replay_start_fn)(rt_replay_config_t *cfg, const ProtobufCMessage *recipe,
                                  void *ctx, rt_replay_result_t *out, char *err, size_t errlen);
int rt_replay_recipe(const char *trace, const char *actor, const char *kind,
                     const ProtobufCMessageDescriptor *recipe_type, rt_replay_start_fn start,
                     void *ctx, rt_replay_result_t *out, char *err, size_t errlen);

#endif
