/*
 * The device registry's table: which device actor owns which port and MMIO
 * ranges, IRQ lines and MSIs (the routing behind the seed's CpuIo). Plain
 * data: the registry actor (registry.h) keeps one and answers its
 * partition's questions from it.
 */
#ifndef VMM_REGISTRY_TABLE_H
#define VMM_REGISTRY_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/devices.pb-c.h"
#include "proto/registry.pb-c.h"
#include "proto/vp.pb-c.h"

typedef struct registry_s registry_t;

/* The most MSIs one registration may ask for. */
#define REGISTRY_MAX_MSIS 2048
/* The most IRQ lines one registration may name: the IO-APIC's inputs. */
#define REGISTRY_MAX_IRQ_LINES 24

registry_t *registry_new(void);
void registry_destroy(registry_t **reg);

/* Claims what req names (ranges, IRQ lines, MSIs) for the device actor
 * `actor`, all or nothing: a malformed range or too many of anything is
 * -EINVAL, a range already claimed (or a name in use) is -EBUSY, an origin
 * (registry.proto Add.origin) other than that of the actor's registrations
 * so far is -EPERM, each with a readable reason in err. A lost device of
 * the same name (see registry_lose()) is replaced. On success *handle is
 * the registration's handle (never 0). */
int registry_add(registry_t *reg, const char *actor, const char *origin,
                 const Vmm__Devices__RegisterDevice *req, uint64_t *handle, char *err,
                 size_t errlen);

/* Releases a registration; only the actor that made it may (-EPERM), an
 * unknown handle is -ENOENT. */
int registry_remove(registry_t *reg, uint64_t handle, const char *actor);

/* The device's host is lost. A device registered with halt_if_lost stays,
 * marked lost (its routes say so, and it acts for nobody) until a new
 * registration of its name replaces it: returns 1. Any other is removed:
 * returns 0. -ENOENT for an unknown handle. */
int registry_lose(registry_t *reg, uint64_t handle);

/* Whether actor made any registration (lost ones included). */
bool registry_is_device(const registry_t *reg, const char *actor);
/* Whether [address, address + len) lies in one range of actor's (port
 * or MMIO); len 0 counts as 1. */
bool registry_owns(const registry_t *reg, const char *actor, bool mmio, uint64_t address,
                   uint64_t len);
/* Whether actor registered IO-APIC input irq. */
bool registry_has_irq(const registry_t *reg, const char *actor, uint32_t irq);
/* The MSIs actor's registrations were given. */
uint32_t registry_msi_count(const registry_t *reg, const char *actor);
/* All of that at once (registry.proto Grants), with the origin of actor's
 * registrations: irq_lines malloc'ed, freed by registry_grants_free();
 * origin borrowed from the table until it changes. Returns 0 or -ENOMEM. */
int registry_grants(const registry_t *reg, const char *actor, Vmm__Registry__Grants *out);
void registry_grants_free(Vmm__Registry__Grants *grants);

/* The routing table for VPs, written into *out; free it with
 * registry_routes_free(). A device that registered posted writes gets
 * them only with posted_ok: the partition allows them where the order of
 * accesses holds without waiting (one VP). Returns 0 or -ENOMEM. */
int registry_routes(const registry_t *reg, bool posted_ok, Vmm__Vp__SetIoRoutes *out);
void registry_routes_free(Vmm__Vp__SetIoRoutes *routes);

/* How many devices are registered; the name, actor, handle and loss of
 * device i. */
size_t registry_count(const registry_t *reg);
const char *registry_name(const registry_t *reg, size_t i);
const char *registry_actor(const registry_t *reg, size_t i);
uint64_t registry_handle(const registry_t *reg, size_t i);
bool registry_lost(const registry_t *reg, size_t i);

#endif
