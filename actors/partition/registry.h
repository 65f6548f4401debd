/*
 * The device registry of a partition: which device actor owns which port
 * and MMIO ranges (the routing behind the seed's CpuIo). Plain data, no KVM:
 * the partition actor keeps one and sends VPs its routes.
 */
#ifndef VMM_REGISTRY_H
#define VMM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/devices.pb-c.h"
#include "proto/vp.pb-c.h"

typedef struct registry_s registry_t;

registry_t *registry_new(void);
void registry_destroy(registry_t **reg);

/* Claims what req names for the device actor `actor`, all or nothing: a
 * malformed range is -EINVAL, one already claimed (or a name in use) is
 * -EBUSY, each with a readable reason in err. On success *handle is the
 * registration's handle (never 0). */
int registry_add(registry_t *reg, const char *actor, const Vmm__Devices__RegisterDevice *req,
                 uint64_t *handle, char *err, size_t errlen);

/* Releases a registration; only the actor that made it may (-EPERM), an
 * unknown handle is -ENOENT. */
int registry_remove(registry_t *reg, uint64_t handle, const char *actor);

/* The routing table for VPs, written into *out; free it with
 * registry_routes_free(). Returns 0 or -ENOMEM. */
int registry_routes(const registry_t *reg, Vmm__Vp__SetIoRoutes *out);
void registry_routes_free(Vmm__Vp__SetIoRoutes *routes);

/* How many devices are registered; the name and actor of device i. */
size_t registry_count(const registry_t *reg);
const char *registry_name(const registry_t *reg, size_t i);
const char *registry_actor(const registry_t *reg, size_t i);

#endif
