/*
 * What an operator may send the control endpoint: any bytes into the
 * control actor's mailbox, as `vmm ctl` over ipc:// would send them
 * (envelopes for the VM's actors, which it refuses or passes on, and its
 * own Pause, Resume, Reset, PowerOff, ListActors and Snapshot). The VM
 * behind it is absent, so that what it passes on fails at once. The actor
 * must answer every request and stay alive: every 256 inputs a Ping must
 * come back within 15 s.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/control/control.h"
#include "runtime/rt_internal.h"

static rt_t *s_rt;
static void *s_peer;

static void s_start(void)
{
    rt_config_t cfg = {.log_level = RT_LOG_ERROR, .log_level_set = true};
    s_rt = rt_new(&cfg);
    rt_executor_t *ex = s_rt ? rt_executor_new(s_rt, "control") : NULL;
    control_config_t ctl = {.vm = "vm0", .owner = "vm0/vmm", .n_vps = 2};
    rt_actor_spec_t spec = {.name = "vm0/control", .ops = &control_ops, .arg = &ctl};
    if (!ex || rt_actor_start(ex, &spec))
        abort();
    s_peer = zmq_socket(s_rt->zctx, ZMQ_DEALER);
    /* Long beside the control actor's own waits (5 s at most, for actors
     * that exist here none), so that only a stuck actor fails, not a
     * machine busy with other work. */
    int timeout = 15000, zero = 0;
    zmq_setsockopt(s_peer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s_peer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s_peer, "inproc://rt/vm0/control"))
        abort();
}

/* Takes what came back without waiting. */
static void s_drain(void)
{
    char buf[4096];
    while (zmq_recv(s_peer, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;
}

/* A Ping request to the control actor itself must be answered. */
static void s_expect_alive(void)
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
    if (zmq_send(s_peer, buf, len, 0) != (int)len)
        abort();
    uint8_t reply[4096];
    for (;;) {
        int n = zmq_recv(s_peer, reply, sizeof reply, 0);
        if (n < 0)
            abort(); /* no answer: the actor is stuck or gone */
        Vmm__Envelope *r = vmm__envelope__unpack(NULL, (size_t)n < sizeof reply ? (size_t)n : 0,
                                                 reply);
        bool mine = r && r->reply_to == id;
        if (r)
            vmm__envelope__free_unpacked(r, NULL);
        if (mine)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    if (!s_rt)
        s_start();
    if (zmq_send(s_peer, data, size, 0) != (int)size)
        abort();
    s_drain();
    if (++runs % 256 == 0)
        s_expect_alive();
    return 0;
}
