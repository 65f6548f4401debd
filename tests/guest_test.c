/*
 * Whole VMs (vmm/vm.h) running test guests built from C (tests/guests/,
 * the guest library): the demo's greeting and MSI, guest calls from every
 * VP, a doorbell, stopping a VP that spins at CPL 3, guest assertions, the
 * exit device, reset and re-run, and device placement. Skips where
 * /dev/kvm is absent.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev_abi.h"
#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_mmio.h"
#include "actors/devices/virtio_rng.h"
#include "actors/synic/synic.h"
#include "guest/demo_embedded.h"
#include "runtime/replay.h"
#include "runtime/testing/echo.h"
#include "tests/guests/virtio_blk_pattern.h"
#include "tests/testing/mailbox.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

/* A bound, not a speed check: guest code at CPL 0 is emulated, and the
 * virtio-blk guests take 3.4 s here alone and failed 10 s on a machine
 * busy with fuzzers and the suite. */
#define S_TIMEOUT_MS 30000

/* With VMM_TRACE_DIR set, the next VM a test makes after naming its trace
 * here records into $VMM_TRACE_DIR/NAME.trace: how the traces in
 * tests/traces/ are made again (see the README there). */
static const char *s_trace_as;

static void s_record_as(const char *name)
{
    s_trace_as = name;
}

/* A VM running the guest at path (NULL: the demo) as cfg says; 16 MiB of
 * RAM unless it says otherwise. */
static vm_t *s_vm_cfg(const char *path, vm_config_t cfg)
{
    vm_harness_need_kvm();
    vm_harness_file_t file = {0};
    if (!cfg.mem_size)
        cfg.mem_size = 16u << 20;
    if (path) {
        file = vm_harness_read(path);
        cfg.elf = file.elf;
        cfg.elf_len = file.len;
    } else {
        cfg.elf = guest_demo_elf;
        cfg.elf_len = guest_demo_elf_len;
    }
    char trace_path[4096];
    rt_trace_config_t trace = {.path = trace_path, .process = "guest_test"};
    const char *dir = getenv("VMM_TRACE_DIR");
    if (dir && s_trace_as) {
        snprintf(trace_path, sizeof trace_path, "%s/%s.trace", dir, s_trace_as);
        cfg.trace = &trace;
    }
    s_trace_as = NULL;
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(file.elf);
    cr_assert_not_null(vm, "vm_new: %s", err);
    return vm;
}

/* A VM running the guest at path (NULL: the demo), COM1 to serial_out,
 * with the Hyper-V interface or without. */
static vm_t *s_vm_with(const char *path, uint32_t n_vps, int serial_out,
                       vm_placement_t placement, bool hyperv)
{
    vm_config_t cfg = {.n_vps = n_vps, .serial_out = serial_out, .serial_in = -1,
                       .placement = placement, .hyperv = hyperv};
    return s_vm_cfg(path, cfg);
}

/* A VM with the Hyper-V interface for the hyperv tests: at least n_vps
 * VPs, more when GUEST_TEST_HV_VPS asks (their guests idle the VPs they do
 * not use), and the devices and test actors with VP 0, or apart when
 * GUEST_TEST_HV_PLACEMENT is "apart": the //tests:guest_test_hv_* targets
 * run the suite so, as the synic must serve it however it is placed. */
static vm_t *s_vm_hv(const char *path, uint32_t n_vps)
{
    const char *vps = getenv("GUEST_TEST_HV_VPS");
    const char *placement = getenv("GUEST_TEST_HV_PLACEMENT");
    uint32_t want = vps ? (uint32_t)strtoul(vps, NULL, 10) : 0;
    return s_vm_with(path, want > n_vps ? want : n_vps, -1,
                     placement && !strcmp(placement, "apart") ? VM_DEVICES_APART
                                                              : VM_DEVICES_WITH_VP0,
                     true);
}

static vm_t *s_vm(const char *path, uint32_t n_vps, int serial_out, vm_placement_t placement)
{
    return s_vm_with(path, n_vps, serial_out, placement, false);
}

static void s_expect_sync(vm_t *vm, uint32_t *vp, uint32_t point, uint32_t *args, size_t n)
{
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, S_TIMEOUT_MS), 0, "no sync point %u", point);
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    cr_assert_eq(ev.call, TESTDEV_CALL_SYNC);
    cr_assert_eq(ev.n_args, n + 1);
    cr_expect_eq(ev.args[0], point);
    if (n)
        memcpy(args, ev.args + 1, n * sizeof *args);
    if (vp)
        *vp = ev.vp;
}

static void s_expect_halt(vm_t *vm, int reason)
{
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, S_TIMEOUT_MS), 0, "no halt");
    cr_assert_eq(ev.kind, VM_EVENT_HALT, "a guest call %u instead", ev.call);
    cr_expect_eq(ev.reason, reason, "%s", ev.text);
}

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- The demo ------------------------------------------------------------------ */

static void s_demo(vm_placement_t placement)
{
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    vm_t *vm = s_vm(NULL, 1, fileno(out), placement);
    char why[160] = "";
    cr_expect_eq(vm_run(vm, why, sizeof why), 0, "%s", why);
    cr_expect(strstr(why, "powered off") != NULL, "%s", why);
    vm_destroy(&vm); /* flushes COM1 */
    char text[256] = "";
    rewind(out);
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = 0;
    fclose(out);
    cr_expect_str_eq(text, "Hello from the demo guest on vp 0 of 1\n"
                           "1 of 1 VPs up\n"
                           "MSI received on vector 0x40\n");
}

Test(guest, the_demo_greets_takes_its_msi_and_powers_off)
{
    s_record_as("demo");
    s_demo(VM_DEVICES_WITH_VP0);
}

Test(guest, the_demo_with_its_devices_on_another_executor)
{
    s_demo(VM_DEVICES_APART);
}

/* ---- COM1 input -------------------------------------------------------------------- */

Test(guest, com1_takes_what_is_typed_and_the_guest_answers)
{
    s_record_as("uart");
    FILE *out = tmpfile();
    int in[2];
    cr_assert_not_null(out);
    cr_assert_eq(pipe(in), 0);
    vm_config_t cfg = {.serial_out = fileno(out), .serial_in = in[0]};
    vm_t *vm = s_vm_cfg("tests/guests/uart_echo", cfg);
    const char typed[] = "hello, uart\n";
    cr_assert_eq(write(in[1], typed, sizeof typed - 1), (ssize_t)sizeof typed - 1);
    char why[160] = "";
    cr_expect_eq(vm_run(vm, why, sizeof why), 0, "%s", why);
    vm_destroy(&vm); /* flushes COM1 */
    close(in[0]);
    close(in[1]);
    char text[256] = "";
    rewind(out);
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = 0;
    fclose(out);
    cr_expect_str_eq(text, "type a line:\nyou typed: hello, uart\n");
}

/* ---- Guest calls, several VPs ------------------------------------------------------- */

Test(guest, every_vp_starts_where_the_loader_put_it)
{
    const uint32_t n = 3;
    vm_t *vm = s_vm("tests/guests/calls", n, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    bool seen[3] = {false};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t vp, arg;
        s_expect_sync(vm, &vp, 1, &arg, 1);
        cr_assert_lt(vp, n);
        cr_expect_eq(arg, vp, "vp %u got RDI %u", vp, arg);
        seen[vp] = true;
    }
    cr_expect(seen[0] && seen[1] && seen[2]);
    for (uint32_t vp = 0; vp < n; vp++) {
        /* each is halted in the guest: the stop kicks it out */
        vm_harness_stop_vp(vm_client(vm), vp);
        s_expect_halt(vm, VMM__VP__HALTED__REASON_STOP);
    }
    vm_destroy(&vm);
}

Test(guest, a_failed_guest_assertion_ends_the_run)
{
    vm_t *vm = s_vm("tests/guests/assert", 1, -1, VM_DEVICES_WITH_VP0);
    char why[160] = "";
    cr_expect_eq(vm_run(vm, why, sizeof why), 1);
    cr_expect(strstr(why, "assertion failed at line 6") != NULL, "%s", why);
    vm_destroy(&vm);
}

Test(guest, the_exit_device_sets_the_status)
{
    vm_t *vm = s_vm("tests/guests/exit", 1, -1, VM_DEVICES_WITH_VP0);
    char why[160] = "";
    cr_expect_eq(vm_run(vm, why, sizeof why), 11, "%s", why);
    vm_destroy(&vm);
}

/* Writes a 32-bit value into guest RAM (a go flag the guest waits on). */
static void s_poke(vm_t *vm, uint64_t gpa, uint32_t value)
{
    vm_harness_write_ram_from(vm_client(vm), gpa, &value, sizeof value);
}

/* ---- Doorbells ---------------------------------------------------------------------- */

/* Registers db (owned by "vm0/test/doorbell"); returns its handle. */
static uint64_t s_register_doorbell(vm_t *vm, Vmm__Partition__RegisterDoorbell *db)
{
    db->owner = "vm0/test/doorbell";
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL;
    req.register_doorbell = db;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(vm), VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY, "%s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text : "?");
    uint64_t handle = reply.env->partition_reply->doorbell->handle;
    rt_msg_release(&reply);
    return handle;
}

/* Waits up to a second for the partition to have counted want rings. */
static long long s_wait_rings(vm_t *vm, long long want)
{
    long long rings = 0;
    for (int i = 0; i < 1000 && rings < want; i++) {
        rings = echo_inspect_number(vm_client(vm), VM_PARTITION, "doorbells_signalled");
        if (rings < want)
            usleep(1000);
    }
    return rings;
}

/* The owner's next message, which must be a signal of doorbell handle
 * (at 0xd0000000). */
static void s_expect_signal(rt_client_t *owner, uint64_t handle, rt_msg_t *msg)
{
    cr_assert_eq(rt_client_recv(owner, msg, S_TIMEOUT_MS), 0, "the owner heard nothing");
    cr_assert_eq(msg->env->body_case, VMM__ENVELOPE__BODY_PARTITION_EVENT);
    cr_expect_eq(msg->env->partition_event->doorbell_signalled->handle, handle);
    cr_expect_eq(msg->env->partition_event->doorbell_signalled->guest_address, 0xd0000000);
}

/* A VM running the guest at path, with a doorbell at 0xd0000000 owned by
 * *owner (*handle its handle). */
static vm_t *s_doorbell_vm(const char *path, rt_client_t **owner, uint64_t *handle)
{
    vm_t *vm = s_vm(path, 1, -1, VM_DEVICES_WITH_VP0);
    *owner = rt_client_new(vm_rt(vm), "vm0/test/doorbell");
    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    db.guest_address = 0xd0000000;
    *handle = s_register_doorbell(vm, &db);
    return vm;
}

Test(guest, a_doorbell_reaches_its_owner_without_an_exit)
{
    rt_client_t *owner;
    uint64_t handle;
    vm_t *vm = s_doorbell_vm("tests/guests/doorbell", &owner, &handle);
    /* A second one that rings only for a 4-byte write of 2. */
    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    db.guest_address = 0xd0000010;
    db.opt_value_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_VALUE_VALUE;
    db.value = 2;
    db.opt_length_case = VMM__PARTITION__REGISTER_DOORBELL__OPT_LENGTH_LENGTH;
    db.length = 4;
    s_register_doorbell(vm, &db);

    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 2, NULL, 0);
    /* The partition reads the eventfd when its loop comes to it. */
    long long rings = s_wait_rings(vm, 4);
    cr_expect_eq(rings, 4, "three rings of the first, one matching ring of the second");
    rt_msg_t msg;
    s_expect_signal(owner, handle, &msg);
    rt_msg_release(&msg);
    /* Only the two writes the second does not match leave the kernel. */
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/vp/0", "mmio_exits"), 2);
    vm_destroy(&vm);
}

/* A guest ringing while its doorbell's owner has not answered the last
 * signal: the rings are held and go as one signal once it answers, so
 * that they cannot pile up in a slow owner's queue. */
Test(guest, rings_before_the_owner_answers_go_as_one_signal)
{
    rt_client_t *owner;
    uint64_t handle;
    vm_t *vm = s_doorbell_vm("tests/guests/doorbell_held", &owner, &handle);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t go;
    s_expect_sync(vm, NULL, 1, &go, 1);
    rt_msg_t first;
    s_expect_signal(owner, handle, &first);
    cr_expect_neq(first.env->request_id, 0, "a signal to be answered");

    s_poke(vm, go, 1); /* nine rings more, the first signal unanswered */
    s_expect_sync(vm, NULL, 2, NULL, 0);
    cr_expect_eq(s_wait_rings(vm, 10), 10);
    /* (Another receive by the owner would answer the first for it.) */
    cr_expect_eq(echo_inspect_number(vm_client(vm), VM_PARTITION, "doorbell_signals"), 1,
                 "a second signal before the first was answered");
    cr_expect_eq(echo_inspect_number(vm_client(vm), VM_PARTITION, "doorbell_rings_held"), 9);

    rt_msg_t next;
    cr_assert_eq(rt_reply_ack(rt_client_actor(owner), first.env), 0);
    rt_msg_release(&first);
    s_expect_signal(owner, handle, &next); /* the rings held */
    cr_assert_eq(rt_reply_ack(rt_client_actor(owner), next.env), 0);
    rt_msg_release(&next);
    cr_expect_eq(rt_client_recv(owner, &next, 200), -ETIMEDOUT, "a signal for no ring");
    cr_expect_eq(echo_inspect_number(vm_client(vm), VM_PARTITION, "doorbell_signals"), 2);
    rt_client_destroy(&owner);
    vm_destroy(&vm);
}

/* A device woken by its doorbell reads and writes guest RAM (through the
 * mapped memory file: its bytes are inputs and outputs of the trace). */
Test(guest, a_doorbell_wakes_a_device_that_works_on_guest_memory)
{
    s_record_as("mailbox");
    const vm_device_t dev = {.name = "vm0/dev/mailbox", .new_model = dev_mailbox_new};
    vm_config_t cfg = {.serial_out = -1, .serial_in = -1, .devices = &dev, .n_devices = 1};
    vm_t *vm = s_vm_cfg("tests/guests/mailbox", cfg);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t counter[2];
    s_expect_sync(vm, NULL, 4, counter, 2);
    cr_expect_eq(counter[0], 3, "three rings, one added each");
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/dev/mailbox", "rings"), 3);
    char ram[32];
    cr_assert_eq(echo_inspect_text(vm_client(vm), "vm0/dev/mailbox", "guest_ram", ram,
                                   sizeof ram), 0);
    cr_expect_str_eq(ram, "mapped");
    vm_destroy(&vm);
}

/* Reads a 64-bit value from guest RAM. */
static uint64_t s_peek(vm_t *vm, uint64_t gpa)
{
    uint64_t value;
    vm_harness_read_ram_from(vm_client(vm), gpa, &value, sizeof value);
    return value;
}

/* A replay maps no guest RAM of its own, even beside the very VM it
 * recorded, whose memory file it could open (the trace names it, and it
 * is still there): what the device read comes from the trace, and what it
 * writes goes nowhere. */
Test(guest, a_replay_beside_the_vm_it_recorded_leaves_its_memory_alone)
{
    char dir[] = "/tmp/vmm-replay-beside-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/mailbox.trace", dir);
    rt_trace_config_t trace = {.path = path, .process = "guest_test"};
    const vm_device_t dev = {.name = "vm0/dev/mailbox", .new_model = dev_mailbox_new};
    vm_config_t cfg = {.serial_out = -1, .serial_in = -1, .devices = &dev, .n_devices = 1,
                       .trace = &trace};
    vm_t *vm = s_vm_cfg("tests/guests/mailbox", cfg);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t counter[2];
    s_expect_sync(vm, NULL, 4, counter, 2);
    cr_assert_eq(counter[0], 3);
    /* A value the replay's writes (1, 2 and 3, as recorded) would undo. */
    s_poke(vm, counter[1], 100);
    cr_assert_eq(s_peek(vm, counter[1]), 100);

    rt_replay_result_t res;
    char err[1024] = "";
    cr_assert_eq(device_actor_replay(path, "vm0/dev/mailbox", dev_mailbox_new, NULL, &res, err,
                                     sizeof err),
                 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_geq(res.compared, 3, "three counter writes: %s", res.report);
    cr_expect_eq(s_peek(vm, counter[1]), 100, "the replay wrote into the running VM");
    vm_destroy(&vm);
    unlink(path);
    rmdir(dir);
}

/* ---- Stopping, resetting --------------------------------------------------------------- */

Test(guest, stop_takes_a_vp_spinning_at_cpl3_out_promptly)
{
    vm_t *vm = s_vm("tests/guests/user_spin", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    struct timespec pause = {0, 50 * 1000000};
    nanosleep(&pause, NULL); /* well inside the loop at CPL 3 */
    double t0 = s_now_us();
    vm_harness_stop_vp(vm_client(vm), 0);
    s_expect_halt(vm, VMM__VP__HALTED__REASON_STOP);
    double us = s_now_us() - t0;

    Vmm__Vp__StateKind kind = VMM__VP__STATE_KIND__SEGMENTS;
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.n_kinds = 1;
    get.kinds = &kind;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    req.get_state = &get;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(vm), "vm0/vp/0", &env, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_VP_REPLY);
    cr_expect_eq(reply.env->vp_reply->state->segments->cs->selector & 3, 3,
                 "stopped at CPL %u", reply.env->vp_reply->state->segments->cs->selector & 3);
    rt_msg_release(&reply);
    /* A figure, not a target: timed assertions flake on these machines. */
    printf("stop of a VP spinning at CPL 3: %.0f us from the Stop to its halt\n", us);
    vm_destroy(&vm);
}

Test(guest, a_reset_the_guest_asks_for_and_a_run_after_it)
{
    vm_t *vm = s_vm("tests/guests/reset", 2, -1, VM_DEVICES_WITH_VP0);
    for (int boot = 0; boot < 2; boot++) {
        cr_assert_eq(vm_start(vm), 0);
        /* The boot's sync point, and the i8042 reset halting every VP: in
         * any order, since they come from different actors. */
        int syncs = 0, resets = 0;
        for (int i = 0; i < 3; i++) {
            vm_event_t ev;
            cr_assert_eq(vm_next_event(vm, &ev, S_TIMEOUT_MS), 0, "boot %d: %d syncs, %d resets",
                         boot, syncs, resets);
            if (ev.kind == VM_EVENT_GUEST_CALL)
                syncs += ev.call == TESTDEV_CALL_SYNC && ev.args[0] == 1;
            else
                resets += ev.reason == VMM__VP__HALTED__REASON_RESET;
        }
        cr_expect_eq(syncs, 1);
        cr_expect_eq(resets, 2);
        char err[160] = "";
        cr_assert_eq(vm_reset(vm, err, sizeof err), 0, "%s", err);
    }
    vm_destroy(&vm);
}

Test(guest, reset_is_refused_while_a_vp_runs)
{
    vm_t *vm = s_vm("tests/guests/calls", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t arg;
    s_expect_sync(vm, NULL, 1, &arg, 1);
    char err[160] = "";
    cr_expect_neq(vm_reset(vm, err, sizeof err), 0);
    cr_expect(strstr(err, "running") != NULL, "%s", err);
    vm_destroy(&vm);
}

/* ---- Interrupts --------------------------------------------------------------------- */

/* A partition request from `from`; returns the reply's error code (0 when
 * it succeeded) and, for a handle, the handle. */
static int s_partition(rt_actor_t *from, Vmm__Partition__Request *req, uint64_t *handle)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(from, VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    int code = reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? (int)reply.env->error->code : 0;
    if (handle && reply.env->body_case == VMM__ENVELOPE__BODY_PARTITION_REPLY) {
        const Vmm__Partition__Reply *r = reply.env->partition_reply;
        *handle = r->result_case == VMM__PARTITION__REPLY__RESULT_MSI_TARGET ? r->msi_target->handle
                                                                              : r->msi_interrupt->handle;
    }
    rt_msg_release(&reply);
    return code;
}

static void s_expect_vector(vm_t *vm, uint32_t vector)
{
    uint32_t got;
    s_expect_sync(vm, NULL, 2, &got, 1);
    cr_expect_eq(got, vector, "took vector 0x%x, expected 0x%x", got, vector);
}

Test(guest, msi_interrupts_irq_routes_and_nmi_reach_the_guest)
{
    vm_t *vm = s_vm("tests/guests/interrupts", 1, -1, VM_DEVICES_WITH_VP0);
    rt_actor_t *me = vm_client(vm);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);

    /* An MSI made from the partition's MSI target (the seed's MsiControl). */
    uint64_t target, msi;
    Vmm__Partition__NewMsiTarget nt = VMM__PARTITION__NEW_MSI_TARGET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET;
    req.new_msi_target = &nt;
    cr_assert_eq(s_partition(me, &req, &target), 0);
    Vmm__Partition__NewMsiInterrupt ni = VMM__PARTITION__NEW_MSI_INTERRUPT__INIT;
    ni.target = target;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_MSI_INTERRUPT;
    req.new_msi_interrupt = &ni;
    cr_assert_eq(s_partition(me, &req, &msi), 0);
    Vmm__Partition__SignalMsiInterrupt sig = VMM__PARTITION__SIGNAL_MSI_INTERRUPT__INIT;
    sig.interrupt = msi;
    sig.address = 0xfee00000;
    sig.data = 0x41;
    req.op_case = VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT;
    req.signal_msi_interrupt = &sig;
    cr_expect_eq(s_partition(me, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "not enabled yet");
    Vmm__Partition__EnableMsiInterrupt en = VMM__PARTITION__ENABLE_MSI_INTERRUPT__INIT;
    en.interrupt = msi;
    en.address = 0xfee00000;
    en.data = 0x41;
    req.op_case = VMM__PARTITION__REQUEST__OP_ENABLE_MSI_INTERRUPT;
    req.enable_msi_interrupt = &en;
    cr_assert_eq(s_partition(me, &req, NULL), 0);
    rt_client_t *other = rt_client_new(vm_rt(vm), "vm0/test/other");
    req.op_case = VMM__PARTITION__REQUEST__OP_SIGNAL_MSI_INTERRUPT;
    req.signal_msi_interrupt = &sig;
    cr_expect_eq(s_partition(rt_client_actor(other), &req, NULL),
                 VMM__ERROR_CODE__PERMISSION_DENIED, "only its maker signals it");
    sig.data = 0x42;
    cr_expect_eq(s_partition(me, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "not the data it was enabled with");
    sig.data = 0x41;
    cr_assert_eq(s_partition(me, &req, NULL), 0);
    s_expect_vector(vm, 0x41);

    /* IO-APIC input 5 routed to an MSI, then asserted. */
    Vmm__Partition__MsiRequest route = VMM__PARTITION__MSI_REQUEST__INIT;
    route.address = 0xfee00000;
    route.data = 0x42;
    Vmm__Partition__SetIrqRoute sr = VMM__PARTITION__SET_IRQ_ROUTE__INIT;
    sr.irq = 5;
    sr.request = &route;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE;
    req.set_irq_route = &sr;
    cr_assert_eq(s_partition(me, &req, NULL), 0);
    Vmm__Partition__AssertIrq ai = VMM__PARTITION__ASSERT_IRQ__INIT;
    ai.irq = 5;
    req.op_case = VMM__PARTITION__REQUEST__OP_ASSERT_IRQ;
    req.assert_irq = &ai;
    cr_assert_eq(s_partition(me, &req, NULL), 0);
    s_expect_vector(vm, 0x42);
    ai.irq = 24;
    cr_expect_eq(s_partition(me, &req, NULL), VMM__ERROR_CODE__INVALID_ARGUMENT);

    /* LINT1: an NMI. */
    Vmm__Partition__PulseLint pl = VMM__PARTITION__PULSE_LINT__INIT;
    pl.lint = 1;
    req.op_case = VMM__PARTITION__REQUEST__OP_PULSE_LINT;
    req.pulse_lint = &pl;
    cr_assert_eq(s_partition(me, &req, NULL), 0);
    s_expect_vector(vm, 2);
    pl.lint = 0;
    cr_expect_eq(s_partition(me, &req, NULL), VMM__ERROR_CODE__NOT_SUPPORTED);
    vm_destroy(&vm);
}

Test(guest, a_level_triggered_line_interrupts_again_after_eoi_until_it_falls)
{
    vm_t *vm = s_vm("tests/guests/level", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    uint32_t got[5];
    s_expect_sync(vm, NULL, 2, got, 5);
    /* Once, and again after each of two EOIs while it stayed high; after
     * it fell, only what the local APIC held already. */
    cr_expect_eq(got[0], 3 + got[1], "the line interrupted %u times, %u held when it fell",
                 got[0], got[1]);
    cr_expect_eq(got[2], 1, "the fence MSI");
    cr_expect_eq(got[3], 0, "the device's line reads low");
    cr_expect_eq(got[4], 0, "the IO-APIC owes no EOI");
    s_expect_halt(vm, VMM__VP__HALTED__REASON_POWER_OFF);
    cr_expect_eq(echo_inspect_number(vm_client(vm), VM_PARTITION, "line_changes"), 2);
    vm_destroy(&vm);
}

Test(guest, a_device_started_on_the_running_vps_executor_registers_and_serves)
{
    vm_t *vm = s_vm("tests/guests/late_com2", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0); /* VP 0 runs now, on that executor */
    rt_client_t *owner = rt_client_new(vm_rt(vm), "vm0/test/owner");
    dev_serial_config_t com2 = {.name = "com2", .base = 0x2f8, .irq = 3};
    device_actor_config_t cfg = {.new_model = dev_serial_new, .model_config = &com2,
                                 .partition = VM_PARTITION, .owner = "vm0/test/owner"};
    rt_actor_spec_t spec = {.name = "vm0/dev/com2", .ops = &device_actor_ops, .arg = &cfg};
    cr_assert_eq(rt_actor_start(vm_devices_executor(vm), &spec), 0);
    char why[256] = "";
    cr_expect_eq(device_actor_wait_registered(owner, 1, S_TIMEOUT_MS, why, sizeof why), 0, "%s",
                 why);
    s_expect_sync(vm, NULL, 2, NULL, 0); /* the guest reached COM2 */
    s_expect_halt(vm, VMM__VP__HALTED__REASON_POWER_OFF);
    rt_client_destroy(&owner);
    vm_destroy(&vm);
}

/* ---- Deferred accesses ---------------------------------------------------------------- */

Test(guest, a_deferred_read_waits_stoppably_and_completes_after_run)
{
    vm_t *vm = s_vm("tests/guests/slow", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0); /* the read of 3 s starts now */
    struct timespec pause = {0, 200 * 1000000};
    nanosleep(&pause, NULL);
    char waiting[64] = "";
    echo_inspect_text(vm_client(vm), "vm0/vp/0", "waiting_for", waiting, sizeof waiting);
    cr_expect_str_eq(waiting, "vm0/dev/testdev", "the VP waits for the device");
    double t_stop = s_now_us();
    vm_harness_stop_vp(vm_client(vm), 0);
    s_expect_halt(vm, VMM__VP__HALTED__REASON_STOP);
    double halted = s_now_us();
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/dev/testdev", "completed"), 0,
                 "the Stop took effect before the device answered");
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/vp/0", "deferred"), 1);
    cr_assert_eq(vm_start(vm), 0, "run again: the read goes on waiting");
    uint32_t value;
    s_expect_sync(vm, NULL, 2, &value, 1);
    cr_expect_eq(value, 3000, "the device's answer reached the guest");
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/dev/testdev", "completed"), 1);
    s_expect_halt(vm, VMM__VP__HALTED__REASON_POWER_OFF);
    /* A figure, not a target: timed assertions flake on these machines. */
    printf("stop of a VP waiting for a deferred read: %.0f us from the Stop to its halt\n",
           halted - t_stop);
    vm_destroy(&vm);
}

/* ---- Ordering ---------------------------------------------------------------------------- */

/* Runs the lock_lines guest on n VPs and checks every line came out whole
 * and once. */
static void s_lines_under_a_lock(uint32_t n, vm_placement_t placement)
{
    enum { LINES = 6 };
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    vm_t *vm = s_vm("tests/guests/lock_lines", n, fileno(out), placement);
    double t0 = s_now_us();
    cr_assert_eq(vm_start(vm), 0);
    for (uint32_t i = 0; i < n; i++) {
        /* VPs that spin for the lock (emulated at CPL 0) take the CPUs
         * from the one that holds it: on a loaded machine under ASan this
         * takes many times its usual second. */
        vm_event_t ev;
        cr_assert_eq(vm_next_event(vm, &ev, 120000), 0, "%u VPs: %u of them did not finish",
                     n, n - i);
        cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
        cr_assert_eq(ev.call, TESTDEV_CALL_SYNC);
    }
    vm_destroy(&vm); /* COM1's last output reaches the file */
    printf("%u VPs, devices %s: %u lines under a lock in %.0f ms\n", n,
           placement == VM_DEVICES_APART ? "apart" : "with VP 0", n * LINES,
           (s_now_us() - t0) / 1e3);
    rewind(out);
    bool seen[16][LINES] = {{false}};
    char line[256];
    size_t whole = 0;
    while (fgets(line, sizeof line, out)) {
        unsigned vp, k;
        int end = 0;
        if (sscanf(line, "vp %u line %u: the quick brown fox jumps over the lazy dog\n%n", &vp,
                   &k, &end) == 2 &&
            end == (int)strlen(line) && vp < n && k < LINES && !seen[vp][k]) {
            seen[vp][k] = true;
            whole++;
        } else {
            cr_expect_fail("%u VPs: a broken or repeated line: \"%.*s\"", n,
                           (int)strcspn(line, "\n"), line);
        }
    }
    cr_expect_eq(whole, (size_t)n * LINES, "%u VPs: %zu whole lines of %u", n, whole,
                 n * LINES);
    fclose(out);
}

Test(guest, lines_printed_under_a_lock_by_many_vps_come_out_whole)
{
    for (int round = 0; round < 2; round++) {
        s_lines_under_a_lock(4, VM_DEVICES_WITH_VP0);
        s_lines_under_a_lock(8, VM_DEVICES_WITH_VP0);
        s_lines_under_a_lock(8, VM_DEVICES_APART);
    }
}

/* ---- MMIO ------------------------------------------------------------------------------ */

Test(guest, mmio_goes_to_the_registered_device)
{
    vm_t *vm = s_vm("tests/guests/mmio", 1, -1, VM_DEVICES_WITH_VP0);
    rt_client_t *dev = rt_client_new(vm_rt(vm), "vm0/test/mmio");
    rt_msg_t msg;
    cr_assert_eq(vm_harness_register(rt_client_actor(dev), "mmio", true, 0xd0001000, 0x1000,
                                     false, &msg),
                 0);
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
    rt_msg_release(&msg);
    cr_assert_eq(vm_start(vm), 0);

    cr_assert_eq(rt_client_recv(dev, &msg, S_TIMEOUT_MS), 0);
    const Vmm__Devices__Request *r = msg.env->device_request;
    cr_assert_eq(r->op_case, VMM__DEVICES__REQUEST__OP_WRITE_MMIO);
    cr_expect_eq(r->write_mmio->address, 0xd0001000);
    cr_assert_eq(r->write_mmio->data.len, 4);
    uint32_t written;
    memcpy(&written, r->write_mmio->data.data, 4);
    cr_expect_eq(written, 0x12345678);
    rt_reply_ack(rt_client_actor(dev), msg.env);
    rt_msg_release(&msg);

    cr_assert_eq(rt_client_recv(dev, &msg, S_TIMEOUT_MS), 0);
    r = msg.env->device_request;
    cr_assert_eq(r->op_case, VMM__DEVICES__REQUEST__OP_READ_MMIO);
    cr_expect_eq(r->read_mmio->address, 0xd0001008);
    cr_assert_eq(r->read_mmio->size, 8);
    uint64_t value = 0x1122334455667788ull;
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){8, (uint8_t *)&value};
    Vmm__Devices__Reply rep = VMM__DEVICES__REPLY__INIT;
    rep.result_case = VMM__DEVICES__REPLY__RESULT_READ_MMIO;
    rep.read_mmio = &res;
    Vmm__Envelope out = VMM__ENVELOPE__INIT;
    out.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    out.device_reply = &rep;
    cr_assert_eq(rt_reply(rt_client_actor(dev), msg.env, &out), 0);
    rt_msg_release(&msg);

    uint32_t halves[2];
    s_expect_sync(vm, NULL, 3, halves, 2);
    cr_expect_eq(halves[0], 0x55667788);
    cr_expect_eq(halves[1], 0x11223344);
    vm_destroy(&vm);
}

/* ---- Hyper-V ------------------------------------------------------------------------- */

/* A synic request from `from`; the reply stays in *reply. */
static void s_synic(rt_actor_t *from, Vmm__Synic__Request *req, rt_msg_t *reply)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    cr_assert_eq(rt_call(from, "vm0/synic", &env, reply, S_TIMEOUT_MS), 0);
    cr_assert_neq(reply->env->body_case, VMM__ENVELOPE__BODY_ERROR, "%s",
                  reply->env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply->env->error->text
                                                                      : "");
}

static void s_register_port(rt_actor_t *from, bool message, uint32_t connection,
                            const char *target)
{
    Vmm__Synic__RegisterHostEventPort ev = VMM__SYNIC__REGISTER_HOST_EVENT_PORT__INIT;
    Vmm__Synic__RegisterHostMessagePort msg = VMM__SYNIC__REGISTER_HOST_MESSAGE_PORT__INIT;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    if (message) {
        msg.connection_id = connection;
        msg.target = (char *)target;
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_MESSAGE_PORT;
        req.register_host_message_port = &msg;
    } else {
        ev.connection_id = connection;
        ev.target = (char *)target;
        req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_HOST_EVENT_PORT;
        req.register_host_event_port = &ev;
    }
    rt_msg_t reply;
    s_synic(from, &req, &reply);
    rt_msg_release(&reply);
}

static void s_post(vm_t *vm, uint32_t vp, uint32_t sint, uint32_t type, const void *payload,
                   size_t len)
{
    Vmm__Synic__PostMessage post = VMM__SYNIC__POST_MESSAGE__INIT;
    post.vp = vp;
    post.sint = sint;
    post.message_type = type;
    post.payload = (ProtobufCBinaryData){len, (uint8_t *)payload};
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_POST_MESSAGE;
    req.post_message = &post;
    rt_msg_t reply;
    s_synic(vm_client(vm), &req, &reply);
    rt_msg_release(&reply);
}

/* Each guest below does several things in a row; each test runs the guest
 * in a VM of its own and checks one of them. */

/* tests/guests/hv_basics: what it reported. */
typedef struct {
    uint32_t vendor[3], privileges, privileges_high, vp_index, os_id_high, ref_runs;
    uint32_t page[3], signal_status, unknown_status;
    uint32_t signalled_connection, signalled_flag;
} s_basics_t;

static void s_run_basics(s_basics_t *b)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_basics", 1);
    rt_client_t *events = rt_client_new(vm_rt(vm), "vm0/test/events");
    s_register_port(rt_client_actor(events), false, 7, "vm0/test/events");
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[3];
    s_expect_sync(vm, NULL, 1, b->vendor, 3);
    s_expect_sync(vm, NULL, 2, a, 3);
    b->privileges = a[0], b->privileges_high = a[1];
    s_expect_sync(vm, NULL, 3, &b->vp_index, 1);
    s_expect_sync(vm, NULL, 4, a, 2);
    b->os_id_high = a[0], b->ref_runs = a[1];
    s_expect_sync(vm, NULL, 5, b->page, 3);
    s_expect_sync(vm, NULL, 6, a, 2);
    b->signal_status = a[0], b->unknown_status = a[1];
    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(events, &msg, S_TIMEOUT_MS), 0, "the port's target heard nothing");
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
    cr_assert_not_null(msg.env->synic_event->host_event_signalled);
    b->signalled_connection = msg.env->synic_event->host_event_signalled->connection_id;
    b->signalled_flag = msg.env->synic_event->host_event_signalled->flag;
    rt_msg_release(&msg);
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/vp/0", "hypercalls"), 2);
    vm_destroy(&vm);
}

Test(hyperv, cpuid_leaves_name_the_interface_and_what_it_implements)
{
    s_basics_t b;
    s_run_basics(&b);
    char vendor[13] = "";
    memcpy(vendor, b.vendor, 12);
    cr_expect_str_eq(vendor, "Microsoft Hv");
    cr_expect_eq(b.privileges & 0x26e, 0x26e, "privileges 0x%x: reference counter and TSC page, "
                 "SynIC, timers, hypercall and VP index MSRs", b.privileges);
    cr_expect_eq(b.privileges_high & 0x30, 0x30, "PostMessages and SignalEvents");
}

Test(hyperv, vp_index_guest_os_id_and_reference_counter_msrs)
{
    s_basics_t b;
    s_run_basics(&b);
    cr_expect_eq(b.vp_index, 0, "VP_INDEX");
    cr_expect_eq(b.os_id_high, 0x81000000, "GUEST_OS_ID reads back");
    cr_expect_eq(b.ref_runs, 1, "the reference counter runs");
}

Test(hyperv, the_hypercall_page_exits_to_the_vmm)
{
    s_basics_t b;
    s_run_basics(&b);
    cr_expect(b.page[0] == 0xe5 && b.page[1] == 0xf5 && b.page[2] == 0xc3,
              "the page holds in eax, 0xf5; ret");
    cr_expect_eq(b.unknown_status, 2, "an unknown call is HV_STATUS_INVALID_HYPERCALL_CODE");
}

Test(hyperv, hv_signal_event_reaches_a_host_actor)
{
    s_basics_t b;
    s_run_basics(&b);
    cr_expect_eq(b.signal_status, 0, "HvSignalEvent succeeded");
    cr_expect_eq(b.signalled_connection, 7);
    cr_expect_eq(b.signalled_flag, 3);
}

Test(hyperv, synthetic_msrs_fault_where_the_tlfs_says)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_msrs", 1);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[4];
    s_expect_sync(vm, NULL, 1, a, 4);
    cr_expect_eq(a[0], 1, "an MSR the synic does not have: #GP");
    cr_expect_eq(a[1], 1, "VP_INDEX is read-only: #GP");
    cr_expect_eq(a[2], 1, "SVERSION is read-only: #GP");
    cr_expect_eq(a[3], 1, "a SINT vector below 16: #GP");
    s_expect_sync(vm, NULL, 2, a, 4);
    cr_expect_eq(a[0], 0, "no faults on the good accesses");
    cr_expect_eq(a[1], 1, "SVERSION");
    cr_expect_eq(a[2], 1, "SINT0 starts masked");
    cr_expect_eq(a[3], 1, "SCONTROL reads back");
    vm_destroy(&vm);
}

/* tests/guests/hv_sint: ten messages posted at once, then an event port
 * signalled twice before the guest clears its flag. */
typedef struct {
    uint32_t message[10][4]; /* type, payload size, first payload word, flags */
    uint32_t event_vector, event_flags;
    long long event_msis;
} s_sint_t;

static void s_run_sint(s_sint_t *r)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_sint", 1);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t payload = 100 + i;
        s_post(vm, 0, 2, 0x100 + (uint32_t)i, &payload, sizeof payload);
    }
    for (int i = 0; i < 10; i++)
        s_expect_sync(vm, NULL, 2, r->message[i], 4);

    Vmm__Synic__NewGuestEventPort np = VMM__SYNIC__NEW_GUEST_EVENT_PORT__INIT;
    np.sint = 3;
    np.flag = 5;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_NEW_GUEST_EVENT_PORT;
    req.new_guest_event_port = &np;
    rt_msg_t reply;
    s_synic(vm_client(vm), &req, &reply);
    Vmm__Synic__SignalGuestEventPort sig = VMM__SYNIC__SIGNAL_GUEST_EVENT_PORT__INIT;
    sig.handle = reply.env->synic_reply->guest_event_port->handle;
    rt_msg_release(&reply);
    long long msis = echo_inspect_number(vm_client(vm), "vm0/synic/vp/0", "msis");
    req.op_case = VMM__SYNIC__REQUEST__OP_SIGNAL_GUEST_EVENT_PORT;
    req.signal_guest_event_port = &sig;
    for (int i = 0; i < 2; i++) {
        s_synic(vm_client(vm), &req, &reply);
        rt_msg_release(&reply);
    }
    uint32_t a[2];
    s_expect_sync(vm, NULL, 3, a, 2);
    r->event_vector = a[0], r->event_flags = a[1];
    r->event_msis = echo_inspect_number(vm_client(vm), "vm0/synic/vp/0", "msis") - msis;
    vm_destroy(&vm);
}

Test(hyperv, a_posted_message_arrives_with_its_type_and_payload)
{
    s_record_as("hv_messages");
    s_sint_t r;
    s_run_sint(&r);
    cr_expect_eq(r.message[0][0], 0x100, "its type");
    cr_expect_eq(r.message[0][1], 8, "its payload size");
    cr_expect_eq(r.message[0][2], 100, "its payload");
}

Test(hyperv, a_burst_of_messages_arrives_complete_and_in_order_across_eom)
{
    s_sint_t r;
    s_run_sint(&r);
    for (uint32_t i = 0; i < 10; i++) {
        cr_expect_eq(r.message[i][0], 0x100 + i, "message %u in order", i);
        cr_expect_eq(r.message[i][2], 100 + i, "message %u's own payload", i);
    }
}

Test(hyperv, a_guest_event_port_sets_its_bit_and_interrupts_once)
{
    s_sint_t r;
    s_run_sint(&r);
    cr_expect_eq(r.event_vector, 0x51, "the event's SINT vector");
    cr_expect_eq(r.event_flags, 1u << 5, "flag 5 set in the SIEFP page");
    cr_expect_eq(r.event_msis, 1, "the second signal found the flag set: no second interrupt");
}

/* The synic's replay, like a device's, maps no guest RAM of its own: beside
 * the VM it recorded, it writes none of the messages it delivered there
 * into that VM's SIMP page. */
Test(guest, a_synic_replay_beside_the_vm_it_recorded_leaves_its_memory_alone)
{
    char dir[] = "/tmp/vmm-synic-beside-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/hv.trace", dir);
    rt_trace_config_t trace = {.path = path, .process = "guest_test"};
    vm_config_t cfg = {.n_vps = 1, .serial_out = -1, .serial_in = -1,
                       .placement = VM_DEVICES_WITH_VP0, .hyperv = true, .trace = &trace};
    vm_t *vm = s_vm_cfg("tests/guests/hv_sint", cfg);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t payload = 100 + i;
        s_post(vm, 0, 2, 0x100 + (uint32_t)i, &payload, sizeof payload);
    }
    uint32_t message[4];
    for (int i = 0; i < 10; i++)
        s_expect_sync(vm, NULL, 2, message, 4);
    long long simp = echo_inspect_number(vm_client(vm), "vm0/synic/vp/0", "vp0/simp");
    cr_assert_gt(simp, 0, "the SIMP MSR");
    /* SINT 2's slot, freed by the guest: the first payload word is where
     * each recorded delivery wrote 100 to 109. */
    uint64_t payload_gpa = ((uint64_t)simp & ~0xfffull) + 2 * 256 + 16;
    s_poke(vm, payload_gpa, 0x5eed);

    rt_replay_result_t res;
    char err[1024] = "";
    cr_assert_eq(synic_replay(path, "vm0/synic/vp/0", &res, err, sizeof err), 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_geq(res.compared, 10, "ten deliveries: %s", res.report);
    cr_expect_eq(s_peek(vm, payload_gpa) & 0xffffffff, 0x5eed,
                 "the replay wrote into the running VM");
    vm_destroy(&vm);
    unlink(path);
    rmdir(dir);
}

Test(hyperv, every_sint_on_two_vps)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_sints", 2);
    cr_assert_eq(vm_start(vm), 0);
    bool ready[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        uint32_t vp;
        s_expect_sync(vm, NULL, 1, &vp, 1);
        cr_assert_lt(vp, 2);
        ready[vp] = true;
    }
    cr_assert(ready[0] && ready[1]);
    for (uint32_t vp = 0; vp < 2; vp++)
        for (uint32_t sint = 0; sint < 16; sint++)
            s_post(vm, vp, sint, 0x200 + sint, NULL, 0);
    for (int i = 0; i < 2; i++) {
        uint32_t a[2];
        s_expect_sync(vm, NULL, 2, a, 2);
        cr_expect_eq(a[1], 16, "vp %u: all 16 SINTs took their own message", a[0]);
    }
    vm_destroy(&vm);
}

/* tests/guests/hv_post: HvPostMessage to connection 8, to 99 (nobody's)
 * and with 241 bytes. */
static void s_run_post(uint32_t status[3], rt_msg_t *heard)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_post", 1);
    rt_client_t *port = rt_client_new(vm_rt(vm), "vm0/test/port");
    s_register_port(rt_client_actor(port), true, 8, "vm0/test/port");
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, status, 3);
    cr_assert_eq(rt_client_recv(port, heard, S_TIMEOUT_MS), 0, "the port's target heard nothing");
    rt_msg_t more;
    cr_expect_eq(rt_client_recv(port, &more, 100), -ETIMEDOUT, "the refused ones reached nobody");
    vm_destroy(&vm);
}

Test(hyperv, hv_post_message_reaches_a_host_actor)
{
    s_record_as("hv_post");
    uint32_t status[3];
    rt_msg_t msg;
    s_run_post(status, &msg);
    cr_expect_eq(status[0], 0, "posted");
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
    const Vmm__Synic__HostMessage *hm = msg.env->synic_event->host_message;
    cr_assert_not_null(hm);
    cr_expect_eq(hm->connection_id, 8);
    cr_expect_eq(hm->message_type, 1);
    cr_assert_eq(hm->payload.len, 4);
    cr_expect_eq(memcmp(hm->payload.data, "ping", 4), 0);
    rt_msg_release(&msg);
}

Test(hyperv, unknown_connections_and_oversized_payloads_get_their_status)
{
    uint32_t status[3];
    rt_msg_t msg;
    s_run_post(status, &msg);
    rt_msg_release(&msg);
    cr_expect_eq(status[1], 0x12, "HV_STATUS_INVALID_CONNECTION_ID");
    cr_expect_eq(status[2], 5, "HV_STATUS_INVALID_PARAMETER for 241 bytes");
}

Test(hyperv, the_monitor_page_signals_once_per_set_bit)
{
    s_record_as("hv_monitor");
    vm_t *vm = s_vm_hv("tests/guests/hv_monitor", 1);
    rt_client_t *port = rt_client_new(vm_rt(vm), "vm0/test/monitor");
    s_register_port(rt_client_actor(port), false, 9, "vm0/test/monitor");
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[2];
    s_expect_sync(vm, NULL, 1, a, 2);
    Vmm__Synic__SetMonitorPage page = VMM__SYNIC__SET_MONITOR_PAGE__INIT;
    page.opt_gpa_case = VMM__SYNIC__SET_MONITOR_PAGE__OPT_GPA_GPA;
    page.gpa = a[0];
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SET_MONITOR_PAGE;
    req.set_monitor_page = &page;
    rt_msg_t reply;
    s_synic(vm_client(vm), &req, &reply);
    rt_msg_release(&reply);
    Vmm__Synic__RegisterMonitor mon = VMM__SYNIC__REGISTER_MONITOR__INIT;
    mon.monitor_id = 3;
    mon.connection_id = 9;
    req.op_case = VMM__SYNIC__REQUEST__OP_REGISTER_MONITOR;
    req.register_monitor = &mon;
    s_synic(vm_client(vm), &req, &reply);
    rt_msg_release(&reply);
    s_poke(vm, a[1], 1); /* go: the guest sets the bit twice, each time until taken */
    for (int i = 0; i < 2; i++) {
        rt_msg_t msg;
        cr_assert_eq(rt_client_recv(port, &msg, S_TIMEOUT_MS), 0, "setting %d was not seen", i);
        cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_SYNIC_EVENT);
        cr_expect_eq(msg.env->synic_event->host_event_signalled->connection_id, 9);
        rt_msg_release(&msg);
    }
    s_expect_sync(vm, NULL, 2, a, 2); /* the guest is past its settings */
    rt_msg_t msg;
    cr_expect_eq(rt_client_recv(port, &msg, 100), -ETIMEDOUT, "once per setting, no more");
    vm_destroy(&vm);
}

Test(hyperv, the_reference_counter_runs_at_10mhz_on_the_partition_s_clock)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_monitor", 1);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[2];
    s_expect_sync(vm, NULL, 1, a, 2);
    uint64_t go_gpa = a[1];
    /* Each guest reading is bracketed by host times: taken before the poke
     * that asks for it and after the sync that reports it. The counter's
     * advance must then lie between 10 MHz times the inner interval and
     * 10 MHz times the outer one, however slowly the guest runs. */
    double before0 = s_now_us();
    s_poke(vm, go_gpa, 3); /* go, without the monitor part */
    s_expect_sync(vm, NULL, 2, a, 2);
    double after0 = s_now_us();
    uint64_t ref0 = a[0] | (uint64_t)a[1] << 32;
    struct timespec pause = {0, 250 * 1000000};
    nanosleep(&pause, NULL);
    Vmm__Partition__GetReferenceTime get = VMM__PARTITION__GET_REFERENCE_TIME__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_REFERENCE_TIME;
    req.get_reference_time = &get;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(vm), VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    uint64_t ref_mid = reply.env->partition_reply->reference_time->ref_time;
    rt_msg_release(&reply);
    nanosleep(&pause, NULL);
    double before1 = s_now_us();
    s_poke(vm, go_gpa, 2);
    s_expect_sync(vm, NULL, 3, a, 2);
    double after1 = s_now_us();
    uint64_t ref1 = a[0] | (uint64_t)a[1] << 32;
    cr_expect(ref0 < ref_mid && ref_mid < ref1, "the partition's reference time %llu lies "
              "between the guest's readings %llu and %llu",
              (unsigned long long)ref_mid, (unsigned long long)ref0, (unsigned long long)ref1);
    /* 100 ns units; 1% for the host clock's and the counter's granularity. */
    double ticks = (double)(ref1 - ref0);
    double least = (before1 - after0) * 10.0 * 0.99, most = (after1 - before0) * 10.0 * 1.01;
    printf("reference counter: %.0f ticks in %.0f to %.0f us of host time\n", ticks,
           before1 - after0, after1 - before0);
    cr_expect(ticks >= least && ticks <= most, "the reference counter advanced %.0f ticks "
              "where 10 MHz gives %.0f to %.0f", ticks, least / 0.99, most / 1.01);
    vm_destroy(&vm);
}

/* tests/guests/hv_timer: three expiries of a periodic timer, one of a
 * one-shot timer, then a direct-mode one. */
typedef struct {
    uint32_t periodic[3][5], one_shot[3], direct[2];
} s_timers_t;

static void s_run_timers(s_timers_t *t)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_timer", 1);
    cr_assert_eq(vm_start(vm), 0);
    for (int n = 0; n < 3; n++)
        s_expect_sync(vm, NULL, 1, t->periodic[n], 5);
    s_expect_sync(vm, NULL, 3, t->one_shot, 3);
    s_expect_sync(vm, NULL, 2, t->direct, 2);
    vm_destroy(&vm);
}

Test(hyperv, a_periodic_timer_posts_its_expiries)
{
    s_record_as("hv_timers");
    s_timers_t t;
    s_run_timers(&t);
    for (int n = 0; n < 3; n++) {
        cr_expect_eq(t.periodic[n][0], 0x52, "expiry %d on SINT 0's vector", n);
        cr_expect_eq(t.periodic[n][1], 0x80000010, "HVMSG_TIMER_EXPIRED");
        cr_expect_eq(t.periodic[n][2], 0, "timer 0");
        cr_expect_eq(t.periodic[n][3], 1, "delivered at or after its expiration time");
        cr_expect_eq(t.periodic[n][4], 1, "each expiration later than the one before");
    }
}

Test(hyperv, a_one_shot_timer_posts_once_and_disables_itself)
{
    s_timers_t t;
    s_run_timers(&t);
    cr_expect_eq(t.one_shot[0], 2, "the message names timer 2");
    cr_expect_eq(t.one_shot[1], 1, "its expiration time is the count written");
    cr_expect_eq(t.one_shot[2], 0, "a one-shot timer disables itself");
}

Test(hyperv, a_direct_mode_timer_raises_its_own_vector)
{
    s_timers_t t;
    s_run_timers(&t);
    cr_expect_eq(t.direct[0], 0x53, "the direct-mode vector");
    cr_expect_eq(t.direct[1], 1, "not before its time");
}

/* Devices register while the VPs are nearly always in a call to the
 * synic: the partition must not wait for a VP to take the new routes while
 * it holds a thread the VP may wait on, or both wait until one times out.
 * Each registration is answered promptly. */
Test(hyperv, devices_register_while_the_vp_waits_on_the_synic)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_spin", 1);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    for (uint32_t i = 0; i < 10; i++) {
        char name[32], actor[48];
        snprintf(name, sizeof name, "late%u", i);
        snprintf(actor, sizeof actor, "vm0/dev/late%u", i);
        rt_client_t *dev = rt_client_new(vm_rt(vm), actor);
        rt_msg_t reply;
        double t0 = s_now_us();
        cr_assert_eq(vm_harness_register(rt_client_actor(dev), name, false, 0x700 + 8 * i, 8,
                                         false, &reply),
                     0);
        double ms = (s_now_us() - t0) / 1000;
        cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY, "%s",
                     reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                       : "?");
        /* Well short of the route timeout a deadlock would end in; room
         * for a loaded machine. */
        cr_expect_lt(ms, 3000, "registration %u took %.0f ms", i, ms);
        rt_msg_release(&reply);
        rt_client_destroy(&dev);
    }
    vm_harness_stop_vp(vm_client(vm), 0);
    vm_destroy(&vm);
}

/* ---- virtio ---------------------------------------------------------------------- */

/* tests/guests/virtio_rng: the guest's virtio driver (guest/virtio.h)
 * against the virtio-rng model, with VP 0 and apart. */
static void s_virtio_rng(vm_placement_t placement)
{
    dev_virtio_rng_config_t rng = {.base = 0xd0100000ull, .irq = 11};
    const vm_device_t devices[] = {
        {.name = "vm0/dev/virtio-rng", .new_model = dev_virtio_rng_new, .model_config = &rng},
    };
    vm_config_t cfg = {.n_vps = 1, .serial_out = -1, .serial_in = -1, .placement = placement,
                       .devices = devices, .n_devices = 1};
    vm_t *vm = s_vm_cfg("tests/guests/virtio_rng", cfg);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[7];
    s_expect_sync(vm, NULL, 1, a, 7);
    cr_expect_eq(a[0], 0, "the driver's initialization failed at step %u", a[0]);
    cr_expect_eq(a[1], 64, "the first request's bytes");
    cr_expect_eq(a[2], 64, "the second request's bytes");
    cr_expect_eq(a[3], 1, "two requests, two different answers");
    cr_expect_eq(a[4], 1, "not all zeros");
    cr_expect_eq(a[5] & 0x40, 0, "no DEVICE_NEEDS_RESET (status 0x%x)", a[5]);
    cr_expect_eq(a[5] & 0x4, 0x4, "DRIVER_OK");
    cr_expect_eq(a[6], 1, "the used-buffer interrupt, and no other");
    vm_destroy(&vm);
}

Test(virtio, rng_with_vp0)
{
    s_virtio_rng(VM_DEVICES_WITH_VP0);
}

Test(virtio, rng_apart)
{
    s_virtio_rng(VM_DEVICES_APART);
}

/* A disk image of 1 MiB in a new temporary folder: its path in path. */
static void s_make_image(char *dir, char *path, size_t size)
{
    strcpy(dir, "/tmp/vmm-blk-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, size, "%s/disk.img", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
}

/* What tests/guests/virtio_blk reported, and the image it wrote. */
static void s_check_blk(const uint32_t *a, const char *path)
{
    cr_expect_eq(a[0], 0, "the driver's initialization failed at step %u", a[0]);
    cr_expect_eq(a[1], 32, "writes answered OK: %u of 32", a[1]);
    cr_expect_eq(a[2], VIRTIO_BLK_S_OK, "the flush's status");
    cr_expect_eq(a[3], 32, "reads that matched: %u of 32", a[3]);
    cr_expect_eq(memcmp(&a[4], "disk", 4), 0, "GET_ID: the image's name");
    cr_expect_eq(a[5] & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0, "status 0x%x", a[5]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    static uint8_t image[1 << 20];
    cr_assert_eq(read(fd, image, sizeof image), (ssize_t)sizeof image);
    close(fd);
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < 32 * 4096; i++)
        wrong += image[i] != virtio_blk_byte(i);
    for (uint32_t i = 32 * 4096; i < sizeof image; i++)
        wrong += image[i] != 0;
    cr_expect_eq(wrong, 0, "%u bytes of the image are not what the guest wrote", wrong);
}

/* tests/guests/virtio_blk against virtio-blk on an image, with VP 0 and
 * apart. */
static void s_virtio_blk(vm_placement_t placement)
{
    char dir[64], path[96], args[256];
    s_make_image(dir, path, sizeof path);
    snprintf(args, sizeof args, "base=0xd0000000,irq=5,file=%s", path);
    const vm_device_t devices[] = {
        {.name = "vm0/dev/virtio-blk", .new_model = dev_virtio_blk_new, .model_args = args},
    };
    vm_config_t cfg = {.n_vps = 1, .serial_out = -1, .serial_in = -1, .placement = placement,
                       .devices = devices, .n_devices = 1};
    vm_t *vm = s_vm_cfg("tests/guests/virtio_blk", cfg);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[6];
    s_expect_sync(vm, NULL, 1, a, 6);
    vm_destroy(&vm);
    s_check_blk(a, path);
    unlink(path);
    rmdir(dir);
}

Test(virtio, blk_with_vp0)
{
    s_record_as("virtio_blk");
    s_virtio_blk(VM_DEVICES_WITH_VP0);
}

Test(virtio, blk_apart)
{
    s_virtio_blk(VM_DEVICES_APART);
}

/* tests/guests/virtio_console against virtio-console on two pipes: its
 * greeting comes out, and a line written in comes back echoed. */
static void s_virtio_console(vm_placement_t placement)
{
    int out[2], in[2];
    cr_assert_eq(pipe(out), 0);
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(write(in[1], "ping\n", 5), 5);
    vm_console_t console = {.out_fd = out[1], .in_fd = in[0]};
    const vm_device_t devices[] = {
        {.name = "vm0/dev/virtio-console", .new_model = dev_virtio_console_new,
         .model_args = "base=0xd0001000,irq=6", .console = &console},
    };
    vm_config_t cfg = {.n_vps = 1, .serial_out = -1, .serial_in = -1, .placement = placement,
                       .devices = devices, .n_devices = 1};
    vm_t *vm = s_vm_cfg("tests/guests/virtio_console", cfg);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t a[5];
    s_expect_sync(vm, NULL, 1, a, 5);
    vm_destroy(&vm);
    close(out[1]);
    char got[256] = "";
    ssize_t n = read(out[0], got, sizeof got - 1);
    close(out[0]);
    close(in[0]);
    close(in[1]);
    cr_expect_eq(a[0], 0, "the driver's initialization failed at step %u", a[0]);
    cr_expect_eq(a[1], 1, "the greeting was used");
    cr_expect_eq(a[2], 5, "the line came in: %u bytes", a[2]);
    cr_expect_eq(a[3], 11, "the echo was used");
    cr_expect_eq(a[4] & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0, "status 0x%x", a[4]);
    cr_expect_str_eq(n > 0 ? got : "", "virtio-console: hello\necho: ping\n");
}

Test(virtio, console_with_vp0)
{
    s_record_as("virtio_console");
    s_virtio_console(VM_DEVICES_WITH_VP0);
}

Test(virtio, console_apart)
{
    s_virtio_console(VM_DEVICES_APART);
}

/* ---- Memory mapped beside RAM --------------------------------------------------- */

static int s_map(vm_t *vm, const char *object, uint64_t gpa, uint64_t size, uint64_t offset,
                 bool writable, bool executable)
{
    Vmm__Partition__MapMemory map = VMM__PARTITION__MAP_MEMORY__INIT;
    map.memory_object = (char *)object;
    map.gpa = gpa;
    map.size = size;
    map.offset = offset;
    map.writable = writable;
    map.executable = executable;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_MAP_MEMORY;
    req.map_memory = &map;
    return s_partition(vm_client(vm), &req, NULL);
}

static int s_range_op(vm_t *vm, int op, uint64_t gpa, uint64_t size)
{
    Vmm__Partition__UnmapMemory unmap = VMM__PARTITION__UNMAP_MEMORY__INIT;
    Vmm__Partition__PrefetchMemory prefetch = VMM__PARTITION__PREFETCH_MEMORY__INIT;
    Vmm__Partition__PinMemory pin = VMM__PARTITION__PIN_MEMORY__INIT;
    unmap.gpa = prefetch.gpa = pin.gpa = gpa;
    unmap.size = prefetch.size = pin.size = size;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = op;
    if (op == VMM__PARTITION__REQUEST__OP_UNMAP_MEMORY)
        req.unmap_memory = &unmap;
    else if (op == VMM__PARTITION__REQUEST__OP_PREFETCH_MEMORY)
        req.prefetch_memory = &prefetch;
    else
        req.pin_memory = &pin;
    return s_partition(vm_client(vm), &req, NULL);
}

/* tests/guests/mapper: a RAM page mapped again, writable and read-only,
 * and a page of another memory object, seen by the guest; the mapper's
 * refusals; prefetch, pin and unmap. */
Test(mapper, mapped_memory_reaches_the_guest)
{
    const uint64_t alias = 0x80000000ull, page = 4096;
    vm_t *vm = s_vm("tests/guests/mapper", 1, -1, VM_DEVICES_WITH_VP0);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t at[2];
    s_expect_sync(vm, NULL, 1, at, 2);
    cr_assert_eq(s_map(vm, "ram", alias, page, at[0], true, true), 0);
    cr_assert_eq(s_map(vm, "ram", alias + page, page, at[0], false, true), 0);
    cr_assert_eq(s_map(vm, "scratch", alias + 2 * page, page, 0, true, true), 0);
    /* Refused: over RAM, over a mapping, unaligned, past RAM's end, and
     * what KVM cannot do. */
    cr_expect_eq(s_map(vm, "ram", 0, page, 0, true, true), VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(s_map(vm, "ram", alias, page, 0, true, true), VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(s_map(vm, "ram", alias + 3 * page + 1, page, 0, true, true),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(s_map(vm, "ram", alias + 3 * page, page, 1ull << 40, true, true),
                 VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect_eq(s_map(vm, "ram", alias + 3 * page, page, 0, true, false),
                 VMM__ERROR_CODE__NOT_SUPPORTED);
    s_poke(vm, at[1], 1);
    uint32_t r[5];
    s_expect_sync(vm, NULL, 2, r, 5);
    cr_expect_eq(r[0], 1, "the writable alias reads the page");
    cr_expect_eq(r[1], 1, "the read-only alias reads the page");
    cr_expect_eq(r[2], 1, "a write through the writable alias lands in the page");
    cr_expect_eq(r[3], 1, "a write through the read-only alias is dropped");
    cr_expect_eq(r[4], 1, "the object's page keeps what was written");

    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_PREFETCH_MEMORY, 0, 1 << 20), 0);
    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_PREFETCH_MEMORY, alias, 3 * page),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "across three mappings");
    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_PIN_MEMORY, alias, page), 0);
    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_UNMAP_MEMORY, alias, page + 1),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "a mapping partly outside");
    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_UNMAP_MEMORY, alias, 3 * page), 0);
    cr_expect_eq(s_range_op(vm, VMM__PARTITION__REQUEST__OP_UNMAP_MEMORY, alias, 3 * page),
                 VMM__ERROR_CODE__NOT_FOUND);
    cr_expect_eq(s_map(vm, "ram", alias, page, at[0], true, true), 0, "the range is free again");
    vm_destroy(&vm);
}

/* ---- The partition-wide state ---------------------------------------------------- */

typedef struct {
    bool hypercall, reftime, page;
    uint64_t os_id, hypercall_msr, ref, page_msr;
} s_vm_state_t;

static s_vm_state_t s_get_vm_state(vm_t *vm)
{
    Vmm__Partition__GetVmState get = VMM__PARTITION__GET_VM_STATE__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_VM_STATE;
    req.get_vm_state = &get;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(vm_client(vm), VM_PARTITION, &env, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY, "%s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text : "");
    const Vmm__Partition__VmState *st = reply.env->partition_reply->vm_state;
    s_vm_state_t out = {
        .hypercall = st->hypercall, .reftime = st->reftime, .page = st->reference_tsc_page,
        .os_id = st->hypercall ? st->hypercall->guest_os_id : 0,
        .hypercall_msr = st->hypercall ? st->hypercall->hypercall : 0,
        .ref = st->reftime ? st->reftime->value : 0,
        .page_msr = st->reference_tsc_page ? st->reference_tsc_page->value : 0,
    };
    rt_msg_release(&reply);
    return out;
}

static int s_set_vm_state(vm_t *vm, Vmm__Partition__VmState *st)
{
    Vmm__Partition__SetVmState set = VMM__PARTITION__SET_VM_STATE__INIT;
    set.state = st;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_VM_STATE;
    req.set_vm_state = &set;
    return s_partition(vm_client(vm), &req, NULL);
}

/* TIME_REF_COUNT as VP vp's synic actor reads it. */
static uint64_t s_synic_ref_count(vm_t *vm, uint32_t vp)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = vp;
    op.index = 0x40000020; /* HV_X64_MSR_TIME_REF_COUNT */
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &op;
    rt_msg_t reply;
    s_synic(vm_client(vm), &req, &reply);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_SYNIC_REPLY);
    uint64_t v = reply.env->synic_reply->msr_result->value;
    rt_msg_release(&reply);
    return v;
}

/* tests/guests/hv_post enables the hypercall page; the partition-wide
 * state reads it, and moves the reference time in the partition and in
 * every synic actor; a VM without Hyper-V has none of it. */
Test(vm_state, the_partition_wide_state_reads_and_writes)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_post", 2);
    cr_assert_eq(vm_start(vm), 0);
    uint32_t status[3];
    s_expect_sync(vm, NULL, 1, status, 3);
    s_vm_state_t st = s_get_vm_state(vm);
    cr_assert(st.hypercall && st.reftime && st.page);
    cr_expect_eq(st.os_id, 0x8100000000000000ull, "the guest's OS ID");
    cr_expect_eq(st.hypercall_msr & 1, 1, "the hypercall page enabled");
    cr_expect_eq(st.page_msr, 0);

    /* The reference time moves to 1000 s, in the partition and each VP's
     * synic actor alike. */
    const uint64_t later = 10000000000ull, slack = 100000000ull; /* 10 s */
    Vmm__Partition__ReferenceTimeCounter ref = VMM__PARTITION__REFERENCE_TIME_COUNTER__INIT;
    ref.value = later;
    Vmm__Partition__ReferenceTscPage page = VMM__PARTITION__REFERENCE_TSC_PAGE__INIT;
    page.value = 0x300000 | 1;
    Vmm__Partition__HypercallMsrs hc = VMM__PARTITION__HYPERCALL_MSRS__INIT;
    hc.guest_os_id = 0x8100000000001234ull;
    hc.hypercall = st.hypercall_msr;
    Vmm__Partition__VmState set = VMM__PARTITION__VM_STATE__INIT;
    set.reftime = &ref;
    set.reference_tsc_page = &page;
    set.hypercall = &hc;
    cr_assert_eq(s_set_vm_state(vm, &set), 0);
    st = s_get_vm_state(vm);
    cr_expect(st.ref >= later && st.ref < later + slack, "the partition's: %llu",
              (unsigned long long)st.ref);
    for (uint32_t vp = 0; vp < 2; vp++) {
        uint64_t r = s_synic_ref_count(vm, vp);
        cr_expect(r >= later && r < later + slack, "VP %u's synic: %llu", vp,
                  (unsigned long long)r);
    }
    cr_expect_eq(st.os_id, 0x8100000000001234ull);
    cr_expect_eq(st.page_msr, 0x300000 | 1);
    /* The TSC page's offset says the same time. */
    uint8_t p[24];
    vm_harness_read_ram_from(vm_client(vm), 0x300000, p, sizeof p);
    uint32_t seq;
    uint64_t scale, offset;
    memcpy(&seq, p, 4);
    memcpy(&scale, p + 8, 8);
    memcpy(&offset, p + 16, 8);
    rt_msg_t reply;
    /* VP 0's TSC (stopped for it: the guest only halts now). */
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request vreq = VMM__VP__REQUEST__INIT;
    vreq.op_case = VMM__VP__REQUEST__OP_STOP;
    vreq.stop = &stop;
    Vmm__Envelope venv = VMM__ENVELOPE__INIT;
    venv.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    venv.vp_request = &vreq;
    cr_assert_eq(rt_call(vm_client(vm), "vm0/vp/0", &venv, &reply, S_TIMEOUT_MS), 0);
    rt_msg_release(&reply);
    Vmm__Vp__StateKind kinds[] = {VMM__VP__STATE_KIND__TSC};
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.kinds = kinds;
    get.n_kinds = 1;
    vreq.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    vreq.get_state = &get;
    cr_assert_eq(rt_call(vm_client(vm), "vm0/vp/0", &venv, &reply, S_TIMEOUT_MS), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_VP_REPLY);
    uint64_t tsc = reply.env->vp_reply->state->tsc->value;
    rt_msg_release(&reply);
    uint64_t ref_page = (uint64_t)(((unsigned __int128)tsc * scale) >> 64) + offset;
    uint64_t ref_now = s_get_vm_state(vm).ref;
    cr_expect_neq(seq, 0);
    cr_expect(ref_page <= ref_now && ref_now - ref_page < slack,
              "the TSC page says %llu at VP 0's TSC, the partition %llu after",
              (unsigned long long)ref_page, (unsigned long long)ref_now);
    /* A #GP in the synic is refused: reserved bits in the TSC page MSR. */
    page.value = 0x300000 | 2;
    Vmm__Partition__VmState bad = VMM__PARTITION__VM_STATE__INIT;
    bad.reference_tsc_page = &page;
    cr_expect_eq(s_set_vm_state(vm, &bad), VMM__ERROR_CODE__INVALID_ARGUMENT);
    vm_destroy(&vm);

    vm = s_vm("tests/guests/exit", 1, -1, VM_DEVICES_WITH_VP0);
    st = s_get_vm_state(vm);
    cr_expect(!st.hypercall && !st.reftime && !st.page, "no Hyper-V, no such state");
    cr_expect_eq(s_set_vm_state(vm, &set), VMM__ERROR_CODE__NOT_SUPPORTED);
    vm_destroy(&vm);
}

static void s_synic_msr(vm_t *vm, uint32_t vp, uint32_t index, bool write, uint64_t *value)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = vp;
    op.index = index;
    op.write = write;
    op.value = *value;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &op;
    rt_msg_t reply;
    s_synic(vm_client(vm), &req, &reply);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_SYNIC_REPLY);
    cr_assert_not(reply.env->synic_reply->msr_result->gp, "MSR 0x%x", index);
    *value = reply.env->synic_reply->msr_result->value;
    rt_msg_release(&reply);
}

/* tests/guests/hv_sint sets up its SynIC; the partition's SaveState holds
 * it, a change is undone by RestoreState, and the restored SynIC delivers
 * a message as before. */
Test(vm_state, the_synic_saves_and_restores_with_the_partition)
{
    vm_t *vm = s_vm_hv("tests/guests/hv_sint", 1);
    cr_assert_eq(vm_start(vm), 0);
    s_expect_sync(vm, NULL, 1, NULL, 0);
    Vmm__Partition__SaveState save = VMM__PARTITION__SAVE_STATE__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SAVE_STATE;
    req.save_state = &save;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = &req;
    rt_msg_t saved;
    cr_assert_eq(rt_call(vm_client(vm), VM_PARTITION, &env, &saved, S_TIMEOUT_MS), 0);
    cr_assert_eq(saved.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY, "%s",
                 saved.env->body_case == VMM__ENVELOPE__BODY_ERROR ? saved.env->error->text : "");
    Vmm__Partition__SavedState *st = saved.env->partition_reply->saved_state;
    cr_assert_not_null(st->synic);
    cr_assert_eq(st->synic->n_vps, 1);
    const Vmm__Synic__SavedVp *vp0 = st->synic->vps[0];
    cr_assert_eq(vp0->n_sints, 16);
    cr_expect_eq(vp0->sints[2] & 0xff, 0x50, "SINT2's vector, as the guest set it");
    cr_expect_eq(vp0->scontrol & 1, 1);
    cr_expect_eq(vp0->simp & 1, 1);
    cr_expect_eq(st->synic->guest_os_id, 0, "hv_sint sets no OS ID");

    const uint64_t masked = (1ull << 16) | 0x50;
    uint64_t w = masked;
    s_synic_msr(vm, 0, 0x40000092 /* SINT2 */, true, &w);
    uint64_t v = 0;
    s_synic_msr(vm, 0, 0x40000092, false, &v);
    cr_expect_eq(v, masked, "SINT2 read 0x%llx", (unsigned long long)v);

    Vmm__Partition__RestoreState restore = VMM__PARTITION__RESTORE_STATE__INIT;
    restore.state = st;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESTORE_STATE;
    req.restore_state = &restore;
    cr_expect_eq(s_partition(vm_client(vm), &req, NULL), 0);
    s_synic_msr(vm, 0, 0x40000092, false, &v);
    cr_expect_eq(v, vp0->sints[2], "SINT2 as saved again");
    rt_msg_release(&saved);

    uint64_t payload = 77;
    s_post(vm, 0, 2, 0x123, &payload, sizeof payload);
    uint32_t got[4];
    s_expect_sync(vm, NULL, 2, got, 4);
    cr_expect_eq(got[0], 0x123, "the restored SynIC delivers");
    cr_expect_eq(got[2], 77);
    vm_destroy(&vm);
}
