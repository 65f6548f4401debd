#include "fuzz/fuzz_pong.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

#include "proto/envelope.pb-c.h"

void fuzz_expect_pong(void *peer, const char *sender, const char *receiver)
{
    static uint64_t id = 1ull << 62; /* far from the ids inputs use */
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    env.sender = (char *)sender;
    env.receiver = (char *)receiver;
    env.request_id = ++id;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    uint8_t buf[256];
    size_t len = vmm__envelope__pack(&env, buf);
    if (zmq_send(peer, buf, len, 0) != (int)len)
        abort();
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    time_t until = now.tv_sec + 15;
    static uint8_t reply[1 << 20];
    while (now.tv_sec < until) {
        zmq_pollitem_t item = {.socket = peer, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 1000);
        int n = zmq_recv(peer, reply, sizeof reply, ZMQ_DONTWAIT);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (n < 0 || (size_t)n > sizeof reply)
            continue;
        Vmm__Envelope *r = vmm__envelope__unpack(NULL, (size_t)n, reply);
        bool mine = r && r->reply_to == id;
        if (r)
            vmm__envelope__free_unpacked(r, NULL);
        if (mine)
            return;
    }
    abort(); /* no answer: the actor is stuck or gone */
}
