/*
 * What an operator may send the control endpoint: any bytes into the
 * control actor's mailbox over ipc://, as `vmm ctl` would send them
 * (envelopes for the VM's actors, which it refuses or passes on, and its
 * own Pause, Resume, Reset, PowerOff, ListActors and Snapshot). The VM
 * behind it is absent, so that what it passes on fails at once. The actor
 * must answer every request and stay alive: every 256 inputs a Ping must
 * come back within 15 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "actors/control/control.h"
#include "fuzz/fuzz_pong.h"
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
    int zero = 0;
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
        fuzz_expect_pong(s_peer, "op", "vm0/control");
    return 0;
}
