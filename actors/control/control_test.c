/*
 * The control actor around stand-ins for a VM's VPs and partition (no KVM):
 * an operator in another runtime (another ZeroMQ context, so a peer as a
 * `vmm ctl` process is) reaches them through the control endpoint over
 * ipc:// and tcp:// with CURVE; what is outside the operator's scope is
 * refused and counted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/control/control.h"
#include "runtime/rt.h"
#include "runtime/testing/echo.h"

#define S_MS 5000

/* ---- Stand-ins ------------------------------------------------------------- */

/* What the stand-ins were asked, read by the test once they answered. */
static struct {
    _Atomic int stops[2], runs[2], gets;
    char report_to[2][64];
    _Atomic int power_action, exit_code;
} s_seen;

static int s_vp_index(rt_actor_t *self)
{
    return rt_actor_name(self)[strlen(rt_actor_name(self)) - 1] - '0';
}

static int s_fake_vp(rt_actor_t *self, const Vmm__Envelope *msg)
{
    int i = s_vp_index(self);
    const Vmm__Vp__Request *req = msg->vp_request;
    if (req->op_case == VMM__VP__REQUEST__OP_STOP) {
        s_seen.stops[i]++;
    } else if (req->op_case == VMM__VP__REQUEST__OP_RUN) {
        snprintf(s_seen.report_to[i], sizeof s_seen.report_to[i], "%s", req->run->report_to);
        s_seen.runs[i]++;
    } else if (req->op_case == VMM__VP__REQUEST__OP_GET_STATE) {
        s_seen.gets++;
        Vmm__Vp__GeneralRegisters regs = VMM__VP__GENERAL_REGISTERS__INIT;
        regs.rip = 0x1234;
        Vmm__Vp__VpState state = VMM__VP__VP_STATE__INIT;
        state.general_registers = &regs;
        Vmm__Vp__Reply result = VMM__VP__REPLY__INIT;
        result.result_case = VMM__VP__REPLY__RESULT_STATE;
        result.state = &state;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_VP_REPLY;
        env.vp_reply = &result;
        return rt_reply(self, msg, &env);
    }
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

static const rt_handler_t s_vp_handlers[] = {{VMM__ENVELOPE__BODY_VP_REQUEST, s_fake_vp}};
static const rt_actor_ops_t s_vp_ops = {.kind = "vp", .handlers = s_vp_handlers,
                                        .n_handlers = 1};

static int s_fake_power(rt_actor_t *self, const Vmm__Envelope *msg)
{
    const Vmm__Devices__PowerRequest *p = msg->device_event->power_request;
    s_seen.exit_code = (int)p->exit_code;
    s_seen.power_action = p->action;
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

static int s_fake_memory(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    return rt_reply_error(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no RAM there");
}

/* Lists one device registered from a device host, as the partition does. */
static void s_fake_partition_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    (void)self;
    Vmm__Rt__InspectNode *devices = rt_inspect_add(node, "devices", "1");
    rt_inspect_add(devices, "com1", "vm0/dev/com1");
}

static const rt_handler_t s_partition_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_fake_power},
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_fake_memory},
};
static const rt_actor_ops_t s_partition_ops = {.kind = "partition",
                                               .handlers = s_partition_handlers,
                                               .n_handlers = 2,
                                               .inspect = s_fake_partition_inspect};

/* ---- A VM and an operator ------------------------------------------------------ */

typedef struct {
    char dir[64], endpoint[128];
    char pub[41], sec[41], op_pub[41], op_sec[41];
    rt_t *rt;
    rt_t *op_rt; /* the operator's runtime */
    rt_client_t *op;
} s_vm_t;

static const char *const s_names[] = {"vm0/control", "vm0/vp/0",     "vm0/vp/1",
                                      "vm0/partition", "vm0/synic", "vm0/dev/com1"};

/* The control actor's max_pending for the next s_start() (0: its default). */
static size_t s_max_pending;

/* Starts the stand-ins and the control actor (on tcp:// with CURVE when
 * curve), and an operator with the operator's key. */
static void s_start(s_vm_t *vm, bool curve)
{
    memset(&s_seen, 0, sizeof s_seen);
    memset(vm, 0, sizeof *vm);
    cr_assert_eq(zmq_curve_keypair(vm->pub, vm->sec), 0);
    cr_assert_eq(zmq_curve_keypair(vm->op_pub, vm->op_sec), 0);
    rt_config_t cfg = {0};
    if (curve) {
        cfg.curve_public_key = vm->pub;
        cfg.curve_secret_key = vm->sec;
    }
    vm->rt = rt_new(&cfg);
    cr_assert_not_null(vm->rt);
    rt_executor_t *vps = rt_executor_new(vm->rt, "vps");
    rt_executor_t *ctl = rt_executor_new(vm->rt, "control");
    cr_assert(vps && ctl);
    cr_assert_eq(rt_actor_start(vps, &(rt_actor_spec_t){.name = "vm0/vp/0", .ops = &s_vp_ops}), 0);
    cr_assert_eq(rt_actor_start(vps, &(rt_actor_spec_t){.name = "vm0/vp/1", .ops = &s_vp_ops}), 0);
    cr_assert_eq(rt_actor_start(vps, &(rt_actor_spec_t){.name = "vm0/partition",
                                                         .ops = &s_partition_ops}),
                 0);
    cr_assert_eq(rt_actor_start(vps, &(rt_actor_spec_t){.name = "vm0/synic", .ops = &echo_ops}),
                 0);
    const char *keys[] = {vm->op_pub};
    control_config_t cc = {.vm = "vm0", .owner = "vm0/vmm", .n_vps = 2,
                           .operator_keys = keys, .n_operator_keys = 1,
                           .max_pending = s_max_pending};
    if (curve) {
        cr_assert_eq(rt_peer_allow(vm->rt, vm->op_pub, "vm0/control"), 0);
        snprintf(vm->endpoint, sizeof vm->endpoint, "tcp://127.0.0.1:*");
    } else {
        snprintf(vm->dir, sizeof vm->dir, "/tmp/control-XXXXXX");
        cr_assert_not_null(mkdtemp(vm->dir));
        snprintf(vm->endpoint, sizeof vm->endpoint, "ipc://%s/control", vm->dir);
    }
    rt_actor_spec_t spec = {.name = "vm0/control", .ops = &control_ops, .arg = &cc,
                            .endpoint = vm->endpoint};
    cr_assert_eq(rt_actor_start(ctl, &spec), 0);
    cr_assert_eq(rt_endpoint_of(vm->rt, "vm0/control", vm->endpoint, sizeof vm->endpoint), 0);

    rt_config_t op_cfg = {0};
    if (curve) {
        op_cfg.curve_public_key = vm->op_pub;
        op_cfg.curve_secret_key = vm->op_sec;
    }
    vm->op_rt = rt_new(&op_cfg);
    cr_assert_not_null(vm->op_rt);
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++)
        cr_assert_eq(rt_directory_set_key(vm->op_rt, s_names[i], vm->endpoint,
                                          curve ? vm->pub : NULL),
                     0);
    vm->op = rt_client_new(vm->op_rt, "operator");
    cr_assert_not_null(vm->op);
}

static void s_stop(s_vm_t *vm)
{
    rt_destroy(&vm->op_rt);
    rt_destroy(&vm->rt);
    if (vm->dir[0])
        rmdir(vm->dir);
}

/* Calls `to` with env as the operator; the reply's body kind, and its error
 * code into *code when it is an Error. */
static int s_call(s_vm_t *vm, const char *to, Vmm__Envelope *env, Vmm__ErrorCode *code)
{
    rt_msg_t reply;
    int rc = rt_call(rt_client_actor(vm->op), to, env, &reply, S_MS);
    cr_assert_eq(rc, 0, "call %s: %s", to, strerror(-rc));
    int body = reply.env->body_case;
    if (code)
        *code = body == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->code : 0;
    rt_msg_release(&reply);
    return body;
}

static void s_expect_denied(s_vm_t *vm, const char *to, Vmm__Envelope *env)
{
    Vmm__ErrorCode code;
    cr_expect_eq(s_call(vm, to, env, &code), VMM__ENVELOPE__BODY_ERROR, "%s answered", to);
    cr_expect_eq(code, VMM__ERROR_CODE__PERMISSION_DENIED, "%s", to);
}

static void s_vp_request(Vmm__Envelope *env, Vmm__Vp__Request *req, int op, void *body)
{
    vmm__envelope__init(env);
    vmm__vp__request__init(req);
    req->op_case = op;
    req->stop = body; /* any member of the oneof: they share the storage */
    env->body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env->vp_request = req;
}

static void s_control(Vmm__Envelope *env, Vmm__Control__Request *req, int op, void *body)
{
    vmm__envelope__init(env);
    vmm__control__request__init(req);
    req->op_case = op;
    req->pause = body;
    env->body_case = VMM__ENVELOPE__BODY_CONTROL_REQUEST;
    env->control_request = req;
}

static long long s_denied(s_vm_t *vm)
{
    return echo_inspect_number(rt_client_actor(vm->op), "vm0/control", "denied");
}

/* ---- The scope, alone ---------------------------------------------------------- */

Test(control, the_operator_scope_is_a_short_list)
{
    char buf[192];
    Vmm__Envelope env;
    Vmm__Vp__Request vreq;
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_GET_STATE, &get);
    env.request_id = 1;
    env.receiver = "vm0/vp/3";
    cr_expect_null(control_refusal("vm0", &env, buf, sizeof buf), "%s", buf);
    env.receiver = "vm1/vp/3";
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "another VM");
    env.receiver = "vm0/partition";
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "a VP request elsewhere");

    Vmm__Vp__Run run = VMM__VP__RUN__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_RUN, &run);
    env.request_id = 1;
    env.receiver = "vm0/vp/0";
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "Run is the owner's");
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_STOP, &stop);
    env.receiver = "vm0/vp/0";
    cr_expect_null(control_refusal("vm0", &env, buf, sizeof buf), "a one-way Stop: %s", buf);

    Vmm__Partition__Request preq = VMM__PARTITION__REQUEST__INIT;
    Vmm__Partition__Build build = VMM__PARTITION__BUILD__INIT;
    preq.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    preq.build = &build;
    vmm__envelope__init(&env);
    env.request_id = 1;
    env.receiver = "vm0/partition";
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &preq;
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "Build");
    Vmm__Partition__RequestMsi msi = VMM__PARTITION__REQUEST_MSI__INIT;
    preq.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    preq.request_msi = &msi;
    cr_expect_null(control_refusal("vm0", &env, buf, sizeof buf), "%s", buf);
    env.request_id = 0;
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "a one-way MSI");

    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    Vmm__Devices__MapGuestMemory map = VMM__DEVICES__MAP_GUEST_MEMORY__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_MAP_GUEST_MEMORY;
    dreq.map_guest_memory = &map;
    vmm__envelope__init(&env);
    env.request_id = 1;
    env.receiver = "vm0/partition";
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &dreq;
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "the memory file");
    Vmm__Devices__ReadGuestMemory read = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    dreq.read_guest_memory = &read;
    cr_expect_null(control_refusal("vm0", &env, buf, sizeof buf), "%s", buf);
    env.receiver = "vm0/dev/com1";
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "memory is the partition's");

    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    vmm__envelope__init(&env);
    env.request_id = 1;
    env.receiver = "vm0/vp/0";
    env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    env.terminate = &term;
    cr_expect_not_null(control_refusal("vm0", &env, buf, sizeof buf), "Terminate");
}

/* ---- Through the endpoint ---------------------------------------------------- */

static void s_passes_and_refuses(bool curve)
{
    s_vm_t vm;
    s_start(&vm, curve);
    Vmm__Envelope env;
    Vmm__Vp__Request vreq;
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_GET_STATE, &get);
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(vm.op), "vm0/vp/1", &env, &reply, S_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_VP_REPLY, "the VP's own reply");
    cr_expect_eq(reply.env->vp_reply->state->general_registers->rip, 0x1234);
    rt_msg_release(&reply);

    /* An Error from the actor comes back as it was. */
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    Vmm__Devices__ReadGuestMemory read = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    dreq.read_guest_memory = &read;
    vmm__envelope__init(&env);
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &dreq;
    Vmm__ErrorCode code;
    cr_expect_eq(s_call(&vm, "vm0/partition", &env, &code), VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(code, VMM__ERROR_CODE__INVALID_ARGUMENT);

    /* Outside the scope: refused, counted, and nothing reached the VP. */
    Vmm__Vp__Run run = VMM__VP__RUN__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_RUN, &run);
    s_expect_denied(&vm, "vm0/vp/0", &env);
    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    vmm__envelope__init(&env);
    env.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    env.terminate = &term;
    s_expect_denied(&vm, "vm0/partition", &env);
    cr_expect_eq(s_denied(&vm), 2);
    cr_expect_eq(s_seen.runs[0], 0);

    /* Inspect and Ping reach any actor of the VM. */
    char kind[32];
    cr_expect_eq(echo_inspect_text(rt_client_actor(vm.op), "vm0/vp/0", "executor", kind,
                                   sizeof kind),
                 0);
    cr_expect_str_eq(kind, "vps");
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "hi", 2);
    cr_expect_eq(s_call(&vm, "vm0/synic", &env, NULL), VMM__ENVELOPE__BODY_PONG);
    s_stop(&vm);
}

Test(control, passes_on_within_the_scope_and_refuses_the_rest_over_ipc)
{
    s_passes_and_refuses(false);
}

Test(control, passes_on_within_the_scope_and_refuses_the_rest_over_tcp_with_curve)
{
    s_passes_and_refuses(true);
}

Test(control, a_curve_key_that_is_no_operators_is_refused)
{
    s_vm_t vm;
    s_start(&vm, true);
    /* A device host's key: admitted to the VM's actors, not an operator. */
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cr_assert_eq(rt_peer_allow(vm.rt, pub, "vm0/"), 0);
    rt_t *rt = rt_new(&(rt_config_t){.curve_public_key = pub, .curve_secret_key = sec});
    cr_assert_not_null(rt);
    cr_assert_eq(rt_directory_set_key(rt, "vm0/vp/0", vm.endpoint, vm.pub), 0);
    cr_assert_eq(rt_directory_set_key(rt, "vm0/control", vm.endpoint, vm.pub), 0);
    rt_client_t *c = rt_client_new(rt, "vm0/dev/host");
    Vmm__Envelope env;
    Vmm__Vp__Request vreq;
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    s_vp_request(&env, &vreq, VMM__VP__REQUEST__OP_GET_STATE, &get);
    Vmm__Control__Request creq;
    Vmm__Control__Pause pause = VMM__CONTROL__PAUSE__INIT;
    Vmm__Envelope ctl;
    s_control(&ctl, &creq, VMM__CONTROL__REQUEST__OP_PAUSE, &pause);
    const char *to[] = {"vm0/vp/0", "vm0/control"};
    Vmm__Envelope *what[] = {&env, &ctl};
    for (int i = 0; i < 2; i++) {
        rt_msg_t reply;
        cr_assert_eq(rt_call(rt_client_actor(c), to[i], what[i], &reply, S_MS), 0);
        cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
        cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__PERMISSION_DENIED);
        rt_msg_release(&reply);
    }
    cr_expect_eq(s_seen.gets, 0);
    cr_expect_eq(s_seen.stops[0] + s_seen.stops[1], 0);
    cr_expect_eq(s_denied(&vm), 2);
    rt_destroy(&rt);
    s_stop(&vm);
}

Test(control, pause_and_resume_stop_and_run_the_vps_for_their_owner)
{
    s_vm_t vm;
    s_start(&vm, false);
    Vmm__Envelope env;
    Vmm__Control__Request req;
    Vmm__Control__Pause pause = VMM__CONTROL__PAUSE__INIT;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_PAUSE, &pause);
    cr_expect_eq(s_call(&vm, "vm0/control", &env, NULL), VMM__ENVELOPE__BODY_ACK);
    cr_expect(s_seen.stops[0] == 1 && s_seen.stops[1] == 1);

    Vmm__Control__Resume resume = VMM__CONTROL__RESUME__INIT;
    resume.opt_vp_index_case = VMM__CONTROL__RESUME__OPT_VP_INDEX_VP_INDEX;
    resume.vp_index = 1;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_RESUME, &resume);
    cr_expect_eq(s_call(&vm, "vm0/control", &env, NULL), VMM__ENVELOPE__BODY_ACK);
    cr_expect(s_seen.runs[0] == 0 && s_seen.runs[1] == 1);
    cr_expect_str_eq(s_seen.report_to[1], "vm0/vmm", "halts go to the VM's owner");

    resume.vp_index = 2;
    Vmm__ErrorCode code;
    cr_expect_eq(s_call(&vm, "vm0/control", &env, &code), VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(code, VMM__ERROR_CODE__INVALID_ARGUMENT, "a VP the VM does not have");
    s_stop(&vm);
}

Test(control, power_off_asks_the_partition_then_runs_paused_vps_to_halt)
{
    s_vm_t vm;
    s_start(&vm, false);
    Vmm__Envelope env;
    Vmm__Control__Request req;
    Vmm__Control__Pause pause = VMM__CONTROL__PAUSE__INIT;
    pause.opt_vp_index_case = VMM__CONTROL__PAUSE__OPT_VP_INDEX_VP_INDEX;
    pause.vp_index = 1;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_PAUSE, &pause);
    cr_expect_eq(s_call(&vm, "vm0/control", &env, NULL), VMM__ENVELOPE__BODY_ACK);
    Vmm__Control__PowerOff off = VMM__CONTROL__POWER_OFF__INIT;
    off.exit_code = 7;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_POWER_OFF, &off);
    cr_expect_eq(s_call(&vm, "vm0/control", &env, NULL), VMM__ENVELOPE__BODY_ACK);
    cr_expect_eq(s_seen.power_action, VMM__DEVICES__POWER_ACTION__POWER_ACTION_POWER_OFF);
    cr_expect_eq(s_seen.exit_code, 7);
    /* VP 0 runs and halts with it; VP 1, paused, runs again to halt. */
    cr_expect(s_seen.runs[0] == 0 && s_seen.runs[1] == 1);
    cr_expect_str_eq(s_seen.report_to[1], "vm0/vmm");
    s_stop(&vm);
}

/* The VM may go as soon as the partition has the power off: a paused VP
 * gone by the time it would run again is no failure. */
Test(control, power_off_succeeds_when_a_paused_vp_went_with_the_vm)
{
    s_vm_t vm;
    s_start(&vm, false);
    Vmm__Envelope env;
    Vmm__Control__Request req;
    Vmm__Control__Pause pause = VMM__CONTROL__PAUSE__INIT;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_PAUSE, &pause);
    cr_expect_eq(s_call(&vm, "vm0/control", &env, NULL), VMM__ENVELOPE__BODY_ACK);
    rt_client_t *owner = rt_client_new(vm.rt, "vm0/vmm");
    cr_assert_not_null(owner);
    Vmm__Rt__Terminate term = VMM__RT__TERMINATE__INIT;
    Vmm__Envelope stop = VMM__ENVELOPE__INIT;
    stop.body_case = VMM__ENVELOPE__BODY_TERMINATE;
    stop.terminate = &term;
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(owner), "vm0/vp/1", &stop, &reply, S_MS), 0);
    rt_msg_release(&reply);
    Vmm__Rt__Ping ping;
    echo_ping(&env, &ping, "gone?", 5);
    for (int i = 0; i < 100 && !rt_call(rt_client_actor(owner), "vm0/vp/1", &env, &reply, 50); i++) {
        rt_msg_release(&reply);
        usleep(10000);
    }
    Vmm__Control__PowerOff off = VMM__CONTROL__POWER_OFF__INIT;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_POWER_OFF, &off);
    Vmm__ErrorCode code = 0;
    cr_expect_eq(s_call(&vm, "vm0/control", &env, &code), VMM__ENVELOPE__BODY_ACK,
                 "error code %d", code);
    cr_expect_eq(s_seen.runs[0], 1, "VP 0 ran again to halt");
    s_stop(&vm);
}

Test(control, list_actors_names_the_vm_here_and_in_device_hosts)
{
    s_vm_t vm;
    s_start(&vm, false);
    Vmm__Envelope env;
    Vmm__Control__Request req;
    Vmm__Control__ListActors list = VMM__CONTROL__LIST_ACTORS__INIT;
    s_control(&env, &req, VMM__CONTROL__REQUEST__OP_LIST_ACTORS, &list);
    rt_msg_t reply;
    cr_assert_eq(rt_call(rt_client_actor(vm.op), "vm0/control", &env, &reply, S_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_CONTROL_REPLY);
    const Vmm__Control__Actors *a = reply.env->control_reply->actors;
    char seen[512] = "";
    for (size_t i = 0; i < a->n_actors; i++) {
        size_t n = strlen(seen);
        snprintf(seen + n, sizeof seen - n, "%s=%s%s;", a->actors[i]->name, a->actors[i]->kind,
                 a->actors[i]->elsewhere ? "@" : "");
    }
    cr_expect_eq(a->n_actors, 6, "%s", seen);
    cr_expect(strstr(seen, "vm0/vp/1=vp;") && strstr(seen, "vm0/control=control;") &&
                  strstr(seen, "vm0/dev/com1=device@;") && strstr(seen, "vm0/synic=echo;"),
              "%s", seen);
    rt_msg_release(&reply);
    s_stop(&vm);
}

/* ---- Requests waiting at once -------------------------------------------------- */

/* A device that holds every request until it gets an event. */
static struct {
    rt_deferred_t *held[16];
    size_t n;
} s_holder;

static int s_hold(rt_actor_t *self, const Vmm__Envelope *msg)
{
    if (s_holder.n < 16 && (s_holder.held[s_holder.n] = rt_defer(self, msg))) {
        s_holder.n++;
        return 0;
    }
    return rt_reply_error(self, msg, VMM__ERROR_CODE__INTERNAL, "cannot hold it");
}

static int s_release(rt_actor_t *self, const Vmm__Envelope *msg)
{
    (void)msg;
    Vmm__Ack ack = VMM__ACK__INIT;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    for (size_t i = 0; i < s_holder.n; i++)
        rt_reply_deferred(self, &s_holder.held[i], &env);
    s_holder.n = 0;
    return 0;
}

static const rt_handler_t s_holder_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_hold},
    {VMM__ENVELOPE__BODY_DEVICE_EVENT, s_release},
};
static const rt_actor_ops_t s_holder_ops = {.kind = "holder", .handlers = s_holder_handlers,
                                            .n_handlers = 2};

enum { S_OPERATORS = 6, S_MAX_PENDING = 4 };

typedef struct {
    rt_client_t *c;
    _Atomic int body, code; /* the reply's; 0 until it came */
} s_operator_t;

/* One operator's read of COM1's line status, through the control actor. */
static void *s_read_lsr(void *arg)
{
    s_operator_t *o = arg;
    Vmm__Devices__ReadIo rio = VMM__DEVICES__READ_IO__INIT;
    rio.port = 0x3fd;
    rio.size = 1;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_IO;
    req.read_io = &rio;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    rt_msg_t reply;
    if (rt_call(rt_client_actor(o->c), "vm0/dev/com1", &env, &reply, 3 * S_MS))
        return NULL;
    o->code = reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? (int)reply.env->error->code : 0;
    o->body = reply.env->body_case;
    rt_msg_release(&reply);
    return NULL;
}

/* Operators sending faster than an actor answers: the control actor keeps
 * max_pending of their requests waiting, answers the rest BUSY at once and
 * counts them; the ones it kept get their answers when the actor gives
 * them. */
Test(control, beyond_max_pending_a_request_is_busy)
{
    s_vm_t vm;
    s_max_pending = S_MAX_PENDING;
    s_start(&vm, false);
    s_max_pending = 0;
    memset(&s_holder, 0, sizeof s_holder);
    rt_executor_t *dev = rt_executor_new(vm.rt, "dev");
    cr_assert_not_null(dev);
    cr_assert_eq(rt_actor_start(dev, &(rt_actor_spec_t){.name = "vm0/dev/com1",
                                                        .ops = &s_holder_ops}),
                 0);
    s_operator_t ops[S_OPERATORS];
    pthread_t threads[S_OPERATORS];
    for (int i = 0; i < S_OPERATORS; i++) {
        char name[32];
        snprintf(name, sizeof name, "operator%d", i);
        ops[i] = (s_operator_t){.c = rt_client_new(vm.op_rt, name)};
        cr_assert_not_null(ops[i].c);
        cr_assert_eq(pthread_create(&threads[i], NULL, s_read_lsr, &ops[i]), 0);
    }
    /* Until S_MAX_PENDING wait and the others were answered. */
    int busy = 0, waited;
    for (waited = 0; waited < 2 * S_MS; waited += 10) {
        busy = 0;
        for (int i = 0; i < S_OPERATORS; i++)
            busy += ops[i].body == VMM__ENVELOPE__BODY_ERROR;
        if (busy == S_OPERATORS - S_MAX_PENDING &&
            echo_inspect_number(rt_client_actor(vm.op), "vm0/control", "pending") ==
                S_MAX_PENDING)
            break;
        usleep(10 * 1000);
    }
    cr_expect_eq(busy, S_OPERATORS - S_MAX_PENDING, "answered at once: %d", busy);
    cr_expect_eq(echo_inspect_number(rt_client_actor(vm.op), "vm0/control", "busy"),
                 S_OPERATORS - S_MAX_PENDING);

    rt_client_t *local = rt_client_new(vm.rt, "vm0/vmm");
    cr_assert_not_null(local);
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    Vmm__Envelope release = VMM__ENVELOPE__INIT;
    release.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    release.device_event = &ev;
    cr_assert_eq(rt_send(rt_client_actor(local), "vm0/dev/com1", &release), 0);
    int acks = 0, busy_codes = 0;
    for (int i = 0; i < S_OPERATORS; i++) {
        pthread_join(threads[i], NULL);
        acks += ops[i].body == VMM__ENVELOPE__BODY_ACK;
        busy_codes += ops[i].code == VMM__ERROR_CODE__BUSY;
    }
    cr_expect_eq(acks, S_MAX_PENDING);
    cr_expect_eq(busy_codes, S_OPERATORS - S_MAX_PENDING);
    cr_expect_eq(echo_inspect_number(rt_client_actor(vm.op), "vm0/control", "pending"), 0);
    cr_expect_eq(s_denied(&vm), 0, "busy is no refusal of the operator's");
    s_stop(&vm);
}
