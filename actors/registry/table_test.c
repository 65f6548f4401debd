/* The device registry's table: claims, overlaps, ownership and the routes VPs get. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "actors/registry/table.h"

typedef struct {
    Vmm__Devices__RegisterDevice req;
    Vmm__Devices__PortRange port;
    Vmm__Devices__PortRange *ports[1];
    Vmm__MemoryRange mmio;
    Vmm__MemoryRange *mmios[1];
} s_claim_t;

/* A claim of one port range (len 0: none) and one MMIO range (end 0: none). */
static Vmm__Devices__RegisterDevice *s_claim(s_claim_t *c, const char *name, uint32_t port,
                                             uint32_t len, uint64_t start, uint64_t end)
{
    vmm__devices__register_device__init(&c->req);
    vmm__devices__port_range__init(&c->port);
    vmm__memory_range__init(&c->mmio);
    c->req.name = (char *)name;
    c->port.start = port;
    c->port.len = len;
    c->ports[0] = &c->port;
    c->mmio.start = start;
    c->mmio.end = end;
    c->mmios[0] = &c->mmio;
    if (len) {
        c->req.n_ports = 1;
        c->req.ports = c->ports;
    }
    if (end) {
        c->req.n_mmio = 1;
        c->req.mmio = c->mmios;
    }
    return &c->req;
}

Test(table, claims_overlaps_and_names)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t com1, nic;
    cr_assert_eq(registry_add(reg, "vm0/dev/com1", "", s_claim(&c, "com1", 0x3f8, 8, 0, 0), &com1,
                              err, sizeof err),
                 0);
    cr_expect_neq(com1, 0);
    cr_assert_eq(registry_add(reg, "vm0/dev/nic", "", s_claim(&c, "nic", 0x400, 4, 0xfe000000,
                                                          0xfe001000),
                              &nic, err, sizeof err),
                 0);
    cr_expect_neq(nic, com1);

    uint64_t h;
    cr_expect_eq(registry_add(reg, "x", "", s_claim(&c, "x", 0x3ff, 1, 0, 0), &h, err, sizeof err),
                 -EBUSY);
    cr_expect(strstr(err, "com1") && strstr(err, "0x3ff"), "%s", err);
    cr_expect_eq(registry_add(reg, "x", "", s_claim(&c, "x", 0, 0, 0xfe000fff, 0xfe002000), &h, err,
                              sizeof err),
                 -EBUSY);
    cr_expect(strstr(err, "nic") != NULL, "%s", err);
    cr_expect_eq(registry_add(reg, "x", "", s_claim(&c, "com1", 0x500, 1, 0, 0), &h, err, sizeof err),
                 -EBUSY, "a name is taken once");
    /* The same numbers in the other space do not overlap. */
    cr_expect_eq(registry_add(reg, "y", "", s_claim(&c, "y", 0, 0, 0x3f8, 0x400), &h, err, sizeof err),
                 0);
    cr_expect_eq(registry_count(reg), 3);
    cr_expect_str_eq(registry_name(reg, 0), "com1");
    cr_expect_str_eq(registry_actor(reg, 1), "vm0/dev/nic");
    cr_expect_null(registry_name(reg, 3));
    registry_destroy(&reg);
    cr_expect_null(reg);
}

Test(table, malformed_claims_are_refused)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h;
    cr_expect_eq(registry_add(reg, "a", "", s_claim(&c, "", 0x10, 1, 0, 0), &h, err, sizeof err),
                 -EINVAL, "a device needs a name");
    cr_expect_eq(registry_add(reg, "a", "", s_claim(&c, "a", 0xffff, 2, 0, 0), &h, err, sizeof err),
                 -EINVAL, "beyond port 0xffff");
    cr_expect_eq(registry_add(reg, "a", "", s_claim(&c, "a", 0x10000, 1, 0, 0), &h, err, sizeof err),
                 -EINVAL);
    cr_expect_eq(registry_add(reg, "a", "", s_claim(&c, "a", 0, 0, 0x2000, 0x1000), &h, err, sizeof err),
                 -EINVAL, "an MMIO range that ends before it starts");
    /* A range claimed twice in one registration. */
    Vmm__Devices__RegisterDevice *req = s_claim(&c, "a", 0x10, 4, 0, 0);
    Vmm__Devices__PortRange again = c.port;
    Vmm__Devices__PortRange *two[] = {&c.port, &again};
    req->n_ports = 2;
    req->ports = two;
    cr_expect_eq(registry_add(reg, "a", "", req, &h, err, sizeof err), -EINVAL, "%s", err);
    cr_expect_eq(registry_count(reg), 0, "nothing is half claimed");
    registry_destroy(&reg);
}

Test(table, only_the_owner_unregisters)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h, h2;
    cr_assert_eq(registry_add(reg, "vm0/dev/a", "", s_claim(&c, "a", 0x10, 1, 0, 0), &h, err,
                              sizeof err),
                 0);
    cr_expect_eq(registry_remove(reg, h, "vm0/dev/b"), -EPERM);
    cr_expect_eq(registry_remove(reg, h + 100, "vm0/dev/a"), -ENOENT);
    cr_expect_eq(registry_remove(reg, h, "vm0/dev/a"), 0);
    cr_expect_eq(registry_add(reg, "vm0/dev/b", "", s_claim(&c, "b", 0x10, 1, 0, 0), &h2, err,
                              sizeof err),
                 0, "a released range is free again");
    cr_expect_neq(h2, h, "handles are not reused");
    registry_destroy(&reg);
}

/* An actor's registrations keep the origin of its first (a name from
 * another process holds only for where it registered from), lost ones
 * too, until the last goes. */
Test(table, an_actors_registrations_keep_one_origin)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h, h2;
    const char *key_a = "peer:0123456789012345678901234567890123456789";
    cr_assert_eq(registry_add(reg, "vm0/dev/a", key_a, s_claim(&c, "a", 0x10, 1, 0, 0), &h, err,
                              sizeof err),
                 0, "%s", err);
    Vmm__Registry__Grants g;
    cr_assert_eq(registry_grants(reg, "vm0/dev/a", &g), 0);
    cr_expect_str_eq(g.origin, key_a);
    registry_grants_free(&g);
    cr_expect_eq(registry_add(reg, "vm0/dev/a", "peer:", s_claim(&c, "a2", 0x20, 1, 0, 0), &h2,
                              err, sizeof err),
                 -EPERM, "another origin");
    cr_expect(strstr(err, key_a) != NULL, "%s", err);
    cr_expect_eq(registry_add(reg, "vm0/dev/a", "", s_claim(&c, "a2", 0x20, 1, 0, 0), &h2, err,
                              sizeof err),
                 -EPERM, "the partition's own process");
    cr_expect_eq(registry_add(reg, "vm0/dev/a", key_a, s_claim(&c, "a2", 0x20, 1, 0, 0), &h2, err,
                              sizeof err),
                 0, "the same origin: %s", err);
    cr_expect_eq(registry_remove(reg, h, "vm0/dev/a"), 0);
    cr_expect_eq(registry_add(reg, "vm0/dev/a", "peer:", s_claim(&c, "a3", 0x30, 1, 0, 0), &h,
                              err, sizeof err),
                 -EPERM, "while one registration is left");
    cr_expect_eq(registry_lose(reg, h2), 0);
    cr_expect_eq(registry_add(reg, "vm0/dev/a", "peer:", s_claim(&c, "a3", 0x30, 1, 0, 0), &h,
                              err, sizeof err),
                 0, "once none is: %s", err);
    cr_assert_eq(registry_grants(reg, "vm0/dev/b", &g), 0);
    cr_expect_str_eq(g.origin, "", "no device, no origin");
    registry_grants_free(&g);
    registry_destroy(&reg);
}

Test(table, routes_name_each_range_and_its_device)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h;
    Vmm__Devices__RegisterDevice *req = s_claim(&c, "nic", 0x400, 4, 0xfe000000, 0xfe001000);
    req->posted_writes = true;
    cr_assert_eq(registry_add(reg, "vm0/dev/nic", "", req, &h, err, sizeof err), 0);
    Vmm__Vp__SetIoRoutes routes;
    cr_assert_eq(registry_routes(reg, false, &routes), 0);
    for (size_t i = 0; i < routes.n_routes; i++)
        cr_expect_not(routes.routes[i]->posted_writes, "not where posting breaks the order");
    registry_routes_free(&routes);
    cr_assert_eq(registry_routes(reg, true, &routes), 0);
    cr_assert_eq(routes.n_routes, 2);
    cr_expect_not(routes.routes[0]->mmio);
    cr_expect_eq(routes.routes[0]->start, 0x400);
    cr_expect_eq(routes.routes[0]->len, 4);
    cr_expect(routes.routes[1]->mmio);
    cr_expect_eq(routes.routes[1]->start, 0xfe000000);
    cr_expect_eq(routes.routes[1]->len, 0x1000);
    for (int i = 0; i < 2; i++) {
        cr_expect_str_eq(routes.routes[i]->actor, "vm0/dev/nic");
        cr_expect(routes.routes[i]->posted_writes);
    }
    /* The routes pack as a VP request would carry them. */
    uint8_t buf[256];
    cr_expect_gt(vmm__vp__set_io_routes__pack(&routes, buf), 0);
    registry_routes_free(&routes);
    registry_destroy(&reg);
}

Test(table, a_device_acts_within_its_ranges_lines_and_msis)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h;
    Vmm__Devices__RegisterDevice *req = s_claim(&c, "nic", 0x500, 8, 0xd0000000, 0xd0001000);
    uint32_t lines[] = {5, 9};
    req->n_irq_lines = 2;
    req->irq_lines = lines;
    req->msi_count = 3;
    cr_assert_eq(registry_add(reg, "vm0/dev/nic", "", req, &h, err, sizeof err), 0, "%s", err);
    cr_expect(registry_is_device(reg, "vm0/dev/nic"));
    cr_expect_not(registry_is_device(reg, "vm0/dev/other"));
    cr_expect(registry_owns(reg, "vm0/dev/nic", true, 0xd0000ff8, 8));
    cr_expect_not(registry_owns(reg, "vm0/dev/nic", true, 0xd0000ffc, 8), "runs past the end");
    cr_expect_not(registry_owns(reg, "vm0/dev/nic", false, 0xd0000000, 1), "not a port");
    cr_expect(registry_owns(reg, "vm0/dev/nic", false, 0x507, 0));
    cr_expect_not(registry_owns(reg, "vm0/dev/other", false, 0x500, 1));
    cr_expect(registry_has_irq(reg, "vm0/dev/nic", 9));
    cr_expect_not(registry_has_irq(reg, "vm0/dev/nic", 4));
    cr_expect_eq(registry_msi_count(reg, "vm0/dev/nic"), 3);
    cr_expect_eq(registry_msi_count(reg, "vm0/dev/other"), 0);

    req = s_claim(&c, "y", 0x700, 8, 0, 0);
    req->msi_count = REGISTRY_MAX_MSIS + 1;
    cr_expect_eq(registry_add(reg, "vm0/dev/y", "", req, &h, err, sizeof err), -EINVAL);
    cr_expect(strstr(err, "MSIs") != NULL, "%s", err);
    registry_destroy(&reg);
}

/* A lost device is removed, unless the VM cannot do without it: then its
 * routes say lost, it acts for nobody, and its next registration replaces
 * it. */
Test(table, a_lost_device_goes_or_stays_marked_until_it_comes_back)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t plain, vital, again;
    cr_assert_eq(registry_add(reg, "vm0/dev/a", "", s_claim(&c, "a", 0x500, 8, 0, 0), &plain, err,
                              sizeof err),
                 0);
    Vmm__Devices__RegisterDevice *req = s_claim(&c, "b", 0x600, 8, 0, 0);
    req->halt_if_lost = true;
    req->msi_count = 1;
    cr_assert_eq(registry_add(reg, "vm0/dev/b", "", req, &vital, err, sizeof err), 0);

    cr_expect_eq(registry_lose(reg, plain), 0);
    cr_expect_eq(registry_lose(reg, vital), 1);
    cr_expect_eq(registry_lose(reg, 999), -ENOENT);
    cr_expect_eq(registry_count(reg), 1);
    cr_expect_eq(registry_msi_count(reg, "vm0/dev/b"), 0, "a lost device acts for nobody");
    Vmm__Vp__SetIoRoutes routes;
    cr_assert_eq(registry_routes(reg, true, &routes), 0);
    cr_assert_eq(routes.n_routes, 1);
    cr_expect(routes.routes[0]->lost);
    cr_expect(routes.routes[0]->halt_if_lost);
    registry_routes_free(&routes);

    cr_expect_eq(registry_add(reg, "vm0/dev/c", "", s_claim(&c, "c", 0x604, 8, 0, 0), &again, err,
                              sizeof err),
                 -EBUSY, "a lost device keeps its ranges");
    req = s_claim(&c, "b", 0x600, 8, 0, 0);
    req->halt_if_lost = true;
    cr_assert_eq(registry_add(reg, "vm0/dev/b", "", req, &again, err, sizeof err), 0, "%s", err);
    cr_expect_eq(registry_count(reg), 1);
    cr_assert_eq(registry_routes(reg, true, &routes), 0);
    cr_assert_eq(routes.n_routes, 1);
    cr_expect_not(routes.routes[0]->lost);
    registry_routes_free(&routes);
    registry_destroy(&reg);
}

/* Lines have a limit of their own: the IO-APIC's 24 inputs, all of which
 * pc-testdev drives. */
Test(table, a_registration_names_at_most_24_lines)
{
    registry_t *reg = registry_new();
    s_claim_t c;
    char err[160];
    uint64_t h;
    uint32_t lines[REGISTRY_MAX_IRQ_LINES + 1];
    for (uint32_t i = 0; i < REGISTRY_MAX_IRQ_LINES + 1; i++)
        lines[i] = i;
    Vmm__Devices__RegisterDevice *req = s_claim(&c, "many", 0x2000, 24, 0, 0);
    req->irq_lines = lines;
    req->n_irq_lines = 25;
    cr_expect_eq(registry_add(reg, "vm0/dev/many", "", req, &h, err, sizeof err), -EINVAL);
    cr_expect(strstr(err, "25 IRQ lines, at most 24") != NULL, "%s", err);
    cr_expect_eq(registry_count(reg), 0);
    req->n_irq_lines = 24;
    cr_assert_eq(registry_add(reg, "vm0/dev/many", "", req, &h, err, sizeof err), 0, "%s", err);
    cr_expect(registry_has_irq(reg, "vm0/dev/many", 0));
    cr_expect(registry_has_irq(reg, "vm0/dev/many", 23));
    Vmm__Registry__Grants grants;
    cr_assert_eq(registry_grants(reg, "vm0/dev/many", &grants), 0);
    cr_expect_eq(grants.n_irq_lines, 24);
    cr_expect_eq(grants.irq_lines[23], 23);
    registry_grants_free(&grants);
    registry_destroy(&reg);
}
