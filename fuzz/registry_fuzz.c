/*
 * The device registry's table under any sequence of registrations (each a
 * RegisterDevice decoded from the input, as a device host sends it),
 * removals, losses and queries, from four actors and three origins. After
 * each step the routes VPs would get may not overlap, and each must be
 * owned by the actor it names: no registration may take what another
 * holds; an actor's registrations all keep the origin of its first.
 *
 * Input: steps of [op][actor][n][n bytes]; op picks add, remove, lose or
 * query; actor's low two bits pick the actor, the next the origin; n bytes
 * are the RegisterDevice (add) or the query's numbers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/registry/table.h"

static const char *const s_actors[] = {"vm0/dev/a", "vm0/dev/b", "remote/c", "d"};
static const char *const s_origins[] = {"", "peer:", "peer:rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf"};

static int s_cmp(const void *x, const void *y)
{
    const Vmm__Vp__IoRoute *a = *(Vmm__Vp__IoRoute *const *)x, *b = *(Vmm__Vp__IoRoute *const *)y;
    if (a->mmio != b->mmio)
        return a->mmio ? 1 : -1;
    return (a->start > b->start) - (a->start < b->start);
}

static void s_check(const registry_t *reg, bool posted_ok)
{
    Vmm__Vp__SetIoRoutes routes;
    if (registry_routes(reg, posted_ok, &routes))
        return;
    qsort(routes.routes, routes.n_routes, sizeof *routes.routes, s_cmp);
    for (size_t i = 0; i < routes.n_routes; i++) {
        const Vmm__Vp__IoRoute *r = routes.routes[i];
        if (!r->lost && !registry_owns(reg, r->actor, r->mmio, r->start, r->len))
            abort(); /* a route its actor does not own */
        if (i && routes.routes[i - 1]->mmio == r->mmio) {
            const Vmm__Vp__IoRoute *p = routes.routes[i - 1];
            uint64_t p_end = p->start + (p->len ? p->len : 1);
            if (p_end > p->start && p_end > r->start)
                abort(); /* two routes overlap */
        }
    }
    registry_routes_free(&routes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    registry_t *reg = registry_new();
    if (!reg)
        return 0;
    uint64_t handles[64];
    size_t n_handles = 0;
    char err[256];
    for (size_t at = 0; at + 3 <= size;) {
        uint8_t op = data[at] % 4;
        const char *actor = s_actors[data[at + 1] % 4];
        const char *origin = s_origins[(data[at + 1] >> 2) % 3];
        size_t n = data[at + 2];
        at += 3;
        if (n > size - at)
            n = size - at;
        const uint8_t *arg = data + at;
        at += n;
        switch (op) {
        case 0: {
            Vmm__Devices__RegisterDevice *req =
                vmm__devices__register_device__unpack(NULL, n, arg);
            if (!req)
                break;
            uint64_t handle = 0;
            err[0] = 0;
            int rc = registry_add(reg, actor, origin, req, &handle, err, sizeof err);
            if (!rc && (!handle || !registry_is_device(reg, actor)))
                abort();
            Vmm__Registry__Grants g;
            if (!rc && !registry_grants(reg, actor, &g)) {
                bool same = !strcmp(g.origin, origin);
                registry_grants_free(&g);
                if (!same)
                    abort(); /* one actor, two origins */
            }
            if (rc && rc != -ENOMEM && !err[0])
                abort(); /* a refusal says why */
            if (!rc && n_handles < 64)
                handles[n_handles++] = handle;
            vmm__devices__register_device__free_unpacked(req, NULL);
            break;
        }
        case 1:
        case 2: {
            uint64_t handle = n && n_handles ? handles[arg[0] % n_handles] : (uint64_t)n;
            if (op == 1)
                registry_remove(reg, handle, actor);
            else
                registry_lose(reg, handle);
            break;
        }
        default: {
            uint64_t address = 0, len = 0;
            memcpy(&address, arg, n < 8 ? n : 8);
            if (n > 8)
                memcpy(&len, arg + 8, n - 8 < 8 ? n - 8 : 8);
            registry_owns(reg, actor, n & 1, address, len);
            registry_has_irq(reg, actor, (uint32_t)address);
            Vmm__Registry__Grants grants;
            if (!registry_grants(reg, actor, &grants))
                registry_grants_free(&grants);
            for (size_t i = 0; i < registry_count(reg); i++)
                if (!registry_name(reg, i) || !registry_actor(reg, i) || !registry_handle(reg, i))
                    abort();
            break;
        }
        }
        s_check(reg, op & 1);
    }
    registry_destroy(&reg);
    return 0;
}
