/*
 * The device actor's link to its VM's synic actor (proto/synic.proto): what
 * a model's SynIC environment calls become. A connection is a host port
 * the synic sends this actor's guest posts or signals through; an event
 * flag goes through a guest event port made on first use and kept; a SINT
 * alone through AssertSint. Every request is a blocking call to the synic
 * (a device calls its partition's side, never the other way): what is
 * about one VP to that VP's actor of the synic, the rest to the synic.
 * Events come from any of the synic's actors.
 */
#ifndef VMM_SYNIC_LINK_H
#define VMM_SYNIC_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device.h"
#include "runtime/rt.h"

#define SYNIC_LINK_MAX_PORTS 32

typedef struct {
    bool message;
    uint32_t connection_id;
    uint64_t handle;
} synic_link_host_port_t;

typedef struct {
    uint32_t vp, sint, flag;
    uint64_t handle;
} synic_link_guest_port_t;

typedef struct {
    char *synic; /* owned; NULL: the VM has no SynIC */
    synic_link_host_port_t host[SYNIC_LINK_MAX_PORTS];
    size_t n_host;
    synic_link_guest_port_t guest[SYNIC_LINK_MAX_PORTS];
    size_t n_guest;
    uint64_t events_in, messages_in, refused; /* counts */
} synic_link_t;

/* Each returns 0 or a negative errno (-ENODEV without a synic, -ENOSPC
 * past SYNIC_LINK_MAX_PORTS, the synic's refusal as its errno). */
int synic_link_connect(rt_actor_t *self, synic_link_t *l, bool message, uint32_t connection_id);
int synic_link_disconnect(rt_actor_t *self, synic_link_t *l, bool message,
                          uint32_t connection_id);
int synic_link_post(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint, uint32_t type,
                    const uint8_t *payload, size_t len);
int synic_link_signal(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint,
                      uint32_t flag);
int synic_link_assert(rt_actor_t *self, synic_link_t *l, uint32_t vp, uint32_t sint);

/* A synic Event for the actor: from its synic and for a connection it
 * made, handed to the model; anything else refused (logged, counted).
 * Returns 0. */
int synic_link_on_event(rt_actor_t *self, synic_link_t *l, device_t *model,
                        const Vmm__Envelope *msg);

/* Adds its counts and connections to an introspection tree. */
void synic_link_inspect(const synic_link_t *l, Vmm__Rt__InspectNode *node);

/* Frees what l holds (its ports stay with the synic, which drops sends to
 * an actor that is gone). */
void synic_link_release(synic_link_t *l);

#endif
