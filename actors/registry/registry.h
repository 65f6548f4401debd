/*
 * The device registry actor: which device actor owns which port and MMIO
 * ranges, IRQ lines and MSIs of a VM (registry.proto), kept in its table
 * (table.h). Its partition starts it beside itself, "<vm>/devices", and is
 * the only actor it answers: devices register with the partition
 * (devices.proto RegisterDevice), which does what needs KVM or the runtime
 * and keeps here what it granted, asks here what a device may do, and
 * takes from here the routes it sends the VPs. An actor of its own, so
 * that its decisions can be replayed from a trace (runtime/replay.h).
 *
 * A request from another actor is PERMISSION_DENIED, one-way input and
 * unknown operations INVALID_ARGUMENT; each is counted (inspect: denied,
 * bad_requests).
 */
#ifndef VMM_REGISTRY_H
#define VMM_REGISTRY_H

#include "runtime/replay.h"
#include "runtime/rt.h"

typedef struct {
    const char *partition; /* the one actor it answers, e.g. "vm0/partition" */
} registry_config_t;

/* Starts with arg a registry_config_t *, copied by init; -EINVAL without a
 * partition. In a trace its recipe is a registry.proto RegistryRecipe. */
extern const rt_actor_ops_t registry_ops;

/* Replays the registry actor `actor` from a trace with the configuration
 * its recipe recorded. Returns rt_replay()'s result, or -EINVAL for an
 * actor that is no registry or has no recipe. */
int registry_replay(const char *trace, const char *actor, rt_replay_result_t *out, char *err,
                    size_t errlen);

#endif
