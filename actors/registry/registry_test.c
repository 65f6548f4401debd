/* The device registry actor by messages, a client playing its partition:
 * registrations, what a device may do, routes, losses; and refusals of
 * anyone else, of one-way requests and of unknown operations. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "actors/registry/registry.h"
#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_TIMEOUT_MS 5000

static rt_t *s_rt;
static rt_client_t *s_partition, *s_stranger;

static void s_setup(void)
{
    s_rt = rt_new(NULL);
    rt_executor_t *ex = rt_executor_new(s_rt, "vm0/partition");
    registry_config_t cfg = {.partition = "vm0/partition"};
    rt_actor_spec_t spec = {.name = "vm0/devices", .ops = &registry_ops, .arg = &cfg};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
    s_partition = rt_client_new(s_rt, "vm0/partition");
    s_stranger = rt_client_new(s_rt, "vm0/dev/rogue");
}

static void s_teardown(void)
{
    rt_destroy(&s_rt);
}

/* Sends req from `from`; the reply stays in *reply. */
static void s_ask(rt_client_t *from, Vmm__Registry__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_REGISTRY_REQUEST;
    env.registry_request = req;
    cr_assert_eq(rt_call(rt_client_actor(from), "vm0/devices", &env, reply, S_TIMEOUT_MS), 0);
}

static Vmm__ErrorCode s_error(const rt_msg_t *reply)
{
    if (reply->env->body_case != VMM__ENVELOPE__BODY_ERROR)
        return VMM__ERROR_CODE__ERROR_CODE_UNSPECIFIED;
    return reply->env->error->code;
}

/* Adds a device owning ports [port, port + 8), IRQ irq and an MMIO page;
 * returns its handle, or 0 with the refusal's code in *code. */
static uint64_t s_add(const char *actor, const char *name, uint32_t port, uint32_t irq,
                      bool halt_if_lost, Vmm__ErrorCode *code)
{
    Vmm__Devices__PortRange range = VMM__DEVICES__PORT_RANGE__INIT, *ranges[] = {&range};
    Vmm__MemoryRange mmio = VMM__MEMORY_RANGE__INIT, *mmios[] = {&mmio};
    range.start = port;
    range.len = 8;
    mmio.start = 0xd0000000ull + port * 0x1000ull;
    mmio.end = mmio.start + 0x1000;
    Vmm__Devices__RegisterDevice dev = VMM__DEVICES__REGISTER_DEVICE__INIT;
    dev.name = (char *)name;
    dev.n_ports = 1;
    dev.ports = ranges;
    dev.n_mmio = 1;
    dev.mmio = mmios;
    dev.n_irq_lines = 1;
    dev.irq_lines = &irq;
    dev.msi_count = 2;
    dev.halt_if_lost = halt_if_lost;
    Vmm__Registry__Add add = VMM__REGISTRY__ADD__INIT;
    add.actor = (char *)actor;
    add.device = &dev;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_ADD;
    req.add = &add;
    rt_msg_t reply;
    s_ask(s_partition, &req, &reply);
    uint64_t handle = 0;
    *code = s_error(&reply);
    if (reply.env->body_case == VMM__ENVELOPE__BODY_REGISTRY_REPLY)
        handle = reply.env->registry_reply->added->handle;
    rt_msg_release(&reply);
    return handle;
}

Test(registry, registrations_grants_routes_and_losses, .init = s_setup, .fini = s_teardown)
{
    Vmm__ErrorCode code;
    uint64_t com1 = s_add("vm0/dev/com1", "com1", 0x3f8, 4, false, &code);
    cr_assert_neq(com1, 0);
    uint64_t com2 = s_add("vm0/dev/com2", "com2", 0x2f8, 3, true, &code);
    cr_assert_neq(com2, 0);
    cr_expect_eq(s_add("vm0/dev/other", "other", 0x3fc, 5, false, &code), 0);
    cr_expect_eq(code, VMM__ERROR_CODE__BUSY, "its ports are COM1's");

    Vmm__Registry__GetGrants g = VMM__REGISTRY__GET_GRANTS__INIT;
    g.actor = "vm0/dev/com1";
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_GET_GRANTS;
    req.get_grants = &g;
    rt_msg_t reply;
    s_ask(s_partition, &req, &reply);
    const Vmm__Registry__Grants *grants = reply.env->registry_reply->grants;
    cr_expect(grants->device);
    cr_assert_eq(grants->n_irq_lines, 1);
    cr_expect_eq(grants->irq_lines[0], 4);
    cr_expect_eq(grants->msi_count, 2);
    rt_msg_release(&reply);

    Vmm__Registry__Owns o = VMM__REGISTRY__OWNS__INIT;
    o.actor = "vm0/dev/com1";
    o.address = 0xd0000000ull + 0x3f8 * 0x1000ull + 0x10;
    o.length = 4;
    req.op_case = VMM__REGISTRY__REQUEST__OP_OWNS;
    req.owns = &o;
    s_ask(s_partition, &req, &reply);
    cr_expect(reply.env->registry_reply->owned->owns);
    rt_msg_release(&reply);
    o.actor = "vm0/dev/com2";
    s_ask(s_partition, &req, &reply);
    cr_expect_not(reply.env->registry_reply->owned->owns, "COM1's page, not COM2's");
    rt_msg_release(&reply);

    Vmm__Registry__GetRoutes r = VMM__REGISTRY__GET_ROUTES__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_GET_ROUTES;
    req.get_routes = &r;
    s_ask(s_partition, &req, &reply);
    cr_expect_eq(reply.env->registry_reply->routes->n_routes, 4, "two ranges each");
    rt_msg_release(&reply);

    /* COM2 must be there: lost, it stays. COM1 goes. */
    Vmm__Registry__Lose lose = VMM__REGISTRY__LOSE__INIT;
    lose.handle = com2;
    req.op_case = VMM__REGISTRY__REQUEST__OP_LOSE;
    req.lose = &lose;
    s_ask(s_partition, &req, &reply);
    cr_expect(reply.env->registry_reply->lost->kept);
    rt_msg_release(&reply);
    lose.handle = com1;
    s_ask(s_partition, &req, &reply);
    cr_expect_not(reply.env->registry_reply->lost->kept);
    rt_msg_release(&reply);
    s_ask(s_partition, &req, &reply);
    cr_expect_eq(s_error(&reply), VMM__ERROR_CODE__NOT_FOUND, "gone already");
    rt_msg_release(&reply);

    Vmm__Registry__List list = VMM__REGISTRY__LIST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_LIST;
    req.list = &list;
    s_ask(s_partition, &req, &reply);
    const Vmm__Registry__Devices *devs = reply.env->registry_reply->devices;
    cr_assert_eq(devs->n_devices, 1);
    cr_expect_str_eq(devs->devices[0]->name, "com2");
    cr_expect(devs->devices[0]->lost);
    rt_msg_release(&reply);

    Vmm__Registry__Remove rm = VMM__REGISTRY__REMOVE__INIT;
    rm.handle = com2;
    rm.actor = "vm0/dev/com1";
    req.op_case = VMM__REGISTRY__REQUEST__OP_REMOVE;
    req.remove = &rm;
    s_ask(s_partition, &req, &reply);
    cr_expect_eq(s_error(&reply), VMM__ERROR_CODE__PERMISSION_DENIED, "COM2's, not COM1's");
    rt_msg_release(&reply);
    rm.actor = "vm0/dev/com2";
    s_ask(s_partition, &req, &reply);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(rt_client_actor(s_partition), "vm0/devices", "devices"),
                 0);
}

Test(registry, it_answers_its_partition_only, .init = s_setup, .fini = s_teardown)
{
    Vmm__Registry__List list = VMM__REGISTRY__LIST__INIT;
    Vmm__Registry__Request req = VMM__REGISTRY__REQUEST__INIT;
    req.op_case = VMM__REGISTRY__REQUEST__OP_LIST;
    req.list = &list;
    rt_msg_t reply;
    s_ask(s_stranger, &req, &reply);
    cr_expect_eq(s_error(&reply), VMM__ERROR_CODE__PERMISSION_DENIED);
    cr_expect_neq(strstr(reply.env->error->text, "vm0/partition"), NULL, "%s",
                  reply.env->error->text);
    rt_msg_release(&reply);

    /* No op, and one-way. */
    Vmm__Registry__Request none = VMM__REGISTRY__REQUEST__INIT;
    s_ask(s_partition, &none, &reply);
    cr_expect_eq(s_error(&reply), VMM__ERROR_CODE__INVALID_ARGUMENT);
    rt_msg_release(&reply);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_REGISTRY_REQUEST;
    env.registry_request = &req;
    cr_assert_eq(rt_send(rt_client_actor(s_partition), "vm0/devices", &env), 0);
    rt_actor_t *p = rt_client_actor(s_partition);
    cr_expect_eq(echo_inspect_number(p, "vm0/devices", "denied"), 1);
    cr_expect_eq(echo_inspect_number(p, "vm0/devices", "bad_requests"), 2);

    /* An Add without its device. */
    Vmm__Registry__Add add = VMM__REGISTRY__ADD__INIT;
    add.actor = "vm0/dev/x";
    req.op_case = VMM__REGISTRY__REQUEST__OP_ADD;
    req.add = &add;
    s_ask(s_partition, &req, &reply);
    cr_expect_eq(s_error(&reply), VMM__ERROR_CODE__INVALID_ARGUMENT);
    rt_msg_release(&reply);
}
