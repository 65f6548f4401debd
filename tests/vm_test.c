/*
 * The partition and VP actors on KVM, driven by messages as a VMM would,
 * with tiny real-mode guests written as bytes. A client plays the device
 * ("vm0/dev/probe"): it registers ports with the partition and answers the
 * VP's requests itself, so that what the VP sends is checked exactly.
 * Everything here skips where /dev/kvm is absent.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "actors/partition/partition.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"

#define S_CODE 0x1000
#define S_MEM (2u << 20)

/* ---- A device played by a client ------------------------------------------- */

static rt_client_t *s_probe_new(vm_harness_t *h, uint32_t port, uint32_t len, bool posted)
{
    rt_client_t *probe = rt_client_new(h->rt, "vm0/dev/probe");
    rt_msg_t reply;
    cr_assert_eq(vm_harness_register(rt_client_actor(probe), "probe", false, port, len, posted,
                                     &reply),
                 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY, "registration: %s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "?");
    cr_expect_neq(reply.env->device_reply->registration->handle, 0);
    rt_msg_release(&reply);
    return probe;
}

/* Takes the next request; checks it is a write of `value` (size bytes) to
 * port, from vp, and acks it unless it was posted. */
static void s_probe_write(rt_client_t *probe, uint32_t vp, uint32_t port, uint32_t value,
                          uint32_t size)
{
    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(probe, &msg, 10000), 0, "no write to 0x%x", port);
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REQUEST);
    const Vmm__Devices__Request *req = msg.env->device_request;
    cr_assert_eq(req->op_case, VMM__DEVICES__REQUEST__OP_WRITE_IO, "op %d", req->op_case);
    cr_expect_eq(req->write_io->vp_index, vp);
    cr_expect_eq(req->write_io->port, port);
    cr_assert_eq(req->write_io->data.len, size);
    uint32_t got = 0;
    memcpy(&got, req->write_io->data.data, size);
    cr_expect_eq(got, value, "wrote 0x%x to 0x%x, expected 0x%x", got, port, value);
    cr_expect_eq(req->write_io->posted, msg.env->request_id == 0);
    if (msg.env->request_id)
        cr_assert_eq(rt_reply_ack(rt_client_actor(probe), msg.env), 0);
    rt_msg_release(&msg);
}

/* Takes the next request; checks it reads size bytes at port and answers
 * value. */
static void s_probe_read(rt_client_t *probe, uint32_t port, uint32_t size, uint32_t value)
{
    rt_msg_t msg;
    cr_assert_eq(rt_client_recv(probe, &msg, 10000), 0, "no read of 0x%x", port);
    cr_assert_eq(msg.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REQUEST);
    const Vmm__Devices__Request *req = msg.env->device_request;
    cr_assert_eq(req->op_case, VMM__DEVICES__REQUEST__OP_READ_IO, "op %d", req->op_case);
    cr_expect_eq(req->read_io->port, port);
    cr_assert_eq(req->read_io->size, size);
    Vmm__Devices__ReadResult res = VMM__DEVICES__READ_RESULT__INIT;
    res.data = (ProtobufCBinaryData){size, (uint8_t *)&value};
    Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
    r.result_case = VMM__DEVICES__REPLY__RESULT_READ_IO;
    r.read_io = &res;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
    env.device_reply = &r;
    cr_assert_eq(rt_reply(rt_client_actor(probe), msg.env, &env), 0);
    rt_msg_release(&msg);
}

static void s_vp_simple(vm_harness_t *h, uint32_t vp, Vmm__Vp__Request__OpCase op)
{
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT; /* every control op is an empty message */
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = op;
    req.stop = &stop; /* one oneof member: the same slot for each */
    vm_harness_vp_ack(h, vp, &req);
}

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Loads code at S_CODE and points VP 0 there in real mode. */
static void s_load(vm_harness_t *h, const uint8_t *code, size_t len)
{
    vm_harness_write(h, S_CODE, code, len);
    vm_harness_real_mode(h, 0, S_CODE);
}

/* ---- Port I/O -------------------------------------------------------------- */

Test(vm, port_io_goes_to_the_registered_device)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *probe = s_probe_new(&h, 0x3f8, 2, false);
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
        0xb0, 0x41,       /* mov al, 'A' */
        0xee,             /* out dx, al */
        0xec,             /* in al, dx */
        0x42,             /* inc dx */
        0xee,             /* out dx, al: what was read */
        0xe4, 0x81,       /* in al, 0x81: nobody's port */
        0xe6, 0x80,       /* out 0x80, al: dropped */
        0xee,             /* out dx, al: all ones, the last access */
        0xeb, 0xfe,       /* jmp $ */
    };
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    s_probe_write(probe, 0, 0x3f8, 'A', 1);
    s_probe_read(probe, 0x3f8, 1, 0x5a);
    s_probe_write(probe, 0, 0x3f9, 0x5a, 1);
    s_probe_write(probe, 0, 0x3f9, 0xff, 1);

    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    Vmm__Vp__GeneralRegisters regs;
    vm_harness_regs(&h, 0, &regs);
    cr_expect_eq(regs.rip, S_CODE + sizeof code - 2, "stopped at 0x%llx",
                 (unsigned long long)regs.rip);
    rt_actor_t *test = rt_client_actor(h.client);
    cr_expect_eq(echo_inspect_number(test, "vm0/vp/0", "unregistered_reads"), 1);
    cr_expect_eq(echo_inspect_number(test, "vm0/vp/0", "unregistered_writes"), 1);
    cr_expect_eq(echo_inspect_number(test, "vm0/vp/0", "device_calls"), 4);
    vm_harness_stop(&h);
}

Test(vm, posted_writes_need_no_answer_and_keep_their_order)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *probe = s_probe_new(&h, 0x3f8, 1, true);
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
        0xb0, 0x01,       /* mov al, 1 */
        0xee,             /* out dx, al */
        0xfe, 0xc0,       /* inc al */
        0xee,             /* out dx, al */
        0xfe, 0xc0,       /* inc al */
        0xee,             /* out dx, al */
        0xeb, 0xfe,       /* jmp $ */
    };
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    for (uint32_t v = 1; v <= 3; v++)
        s_probe_write(probe, 0, 0x3f8, v, 1);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    rt_actor_t *test = rt_client_actor(h.client);
    cr_expect_eq(echo_inspect_number(test, "vm0/vp/0", "posted_writes"), 3);
    cr_expect_eq(echo_inspect_number(test, "vm0/vp/0", "device_calls"), 0);
    vm_harness_stop(&h);
}

Test(vm, overlapping_registration_is_refused_with_the_owner_named)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    s_probe_new(&h, 0x3f8, 8, false);
    rt_msg_t reply;
    cr_assert_eq(vm_harness_register(rt_client_actor(h.client), "other", false, 0x3ff, 2, false,
                                     &reply),
                 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__BUSY);
    cr_expect(strstr(reply.env->error->text, "probe") != NULL, "%s", reply.env->error->text);
    rt_msg_release(&reply);
    vm_harness_stop(&h);
}

/* ---- Halts --------------------------------------------------------------------- */

Test(vm, stop_takes_a_spinning_vp_out_promptly)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    static const uint8_t code[] = {0xeb, 0xfe}; /* jmp $ */
    s_load(&h, code, sizeof code);
    double worst = 0, total = 0;
    const int rounds = 5;
    for (int i = 0; i < rounds; i++) {
        vm_harness_run(&h, 0);
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
        double t0 = s_now_us();
        s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
        cr_assert_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
        double us = s_now_us() - t0;
        total += us;
        worst = us > worst ? us : worst;
    }
    /* A figure, not a target: a timed assertion would flake here. */
    printf("stop of a spinning VP (real mode, CPL 0): mean %.0f us, worst %.0f us over %d\n",
           total / rounds, worst, rounds);
    vm_harness_stop(&h);
}

Test(vm, cancel_and_flush)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    static const uint8_t code[] = {0xeb, 0xfe}; /* jmp $ */
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_CANCEL);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_CANCEL);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_FLUSH_ASYNC_REQUESTS);
    /* Run again after a cancel, as the seed allows: it resumes. */
    vm_harness_run(&h, 0);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    Vmm__Vp__GeneralRegisters regs;
    vm_harness_regs(&h, 0, &regs);
    cr_expect_eq(regs.rip, S_CODE);
    vm_harness_stop(&h);
}

Test(vm, an_unemulated_instruction_halts_with_its_rip_and_bytes)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    static const uint8_t code[] = {
        0x90,             /* nop */
        0x0f, 0x01, 0xd0, /* xgetbv: beyond the instruction emulator */
        0xeb, 0xfe,       /* jmp $, should it run after all */
    };
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    rt_msg_t msg;
    int reason = vm_harness_wait_halt(&h, 0, 10000, &msg);
    cr_assert_eq(reason, VMM__VP__HALTED__REASON_EMULATION_FAILURE, "reason %d", reason);
    const Vmm__Vp__EmulationFailure *f = msg.env->vp_event->halted->emulation_failure;
    cr_expect_eq(f->rip, S_CODE + 1);
    cr_assert_geq(f->instruction.len, 2);
    cr_expect_eq(f->instruction.data[0], 0x0f);
    cr_expect_eq(f->instruction.data[1], 0x01);
    cr_expect(strstr(f->text, "0x1001") != NULL, "%s", f->text);
    rt_msg_release(&msg);
    vm_harness_stop(&h);
}

Test(vm, a_triple_fault_is_reported)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    /* Protected mode (CR0.PE, nothing else needed before the fault), so
     * that the IDT's limit is checked when #UD is delivered. */
    static const uint8_t code[] = {
        0x0f, 0x01, 0x1e, 0x00, 0x11, /* lidt [0x1100]: an empty IDT */
        0x0f, 0x20, 0xc0,             /* mov eax, cr0 */
        0x0c, 0x01,                   /* or al, 1 */
        0x0f, 0x22, 0xc0,             /* mov cr0, eax */
        0x0f, 0x0b,                   /* ud2: #UD, #GP, #DF, shutdown */
        0xeb, 0xfe,                   /* jmp $, should it survive */
    };
    static const uint8_t empty_idt[6] = {0};
    vm_harness_write(&h, 0x1100, empty_idt, sizeof empty_idt);
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_TRIPLE_FAULT);
    vm_harness_stop(&h);
}

Test(vm, yield_leaves_the_vp_running)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *probe = s_probe_new(&h, 0x3f8, 1, false);
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
        0x31, 0xc0,       /* xor ax, ax */
        0x40,             /* loop: inc ax */
        0xee,             /* out dx, al */
        0xeb, 0xfc,       /* jmp loop */
    };
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    s_probe_write(probe, 0, 0x3f8, 1, 1);
    /* The yield arrives while the VP waits for the answer to write 2. */
    Vmm__Partition__RequestYield y = VMM__PARTITION__REQUEST_YIELD__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_YIELD;
    req.request_yield = &y;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    for (uint32_t v = 2; v <= 6; v++)
        s_probe_write(probe, 0, 0x3f8, v, 1);
    /* The VP waits for the answer to write 7: a stop takes effect once
     * that exit is complete, so keep answering until it halts. */
    Vmm__Vp__Stop stop = VMM__VP__STOP__INIT;
    Vmm__Vp__Request stop_req = VMM__VP__REQUEST__INIT;
    stop_req.op_case = VMM__VP__REQUEST__OP_STOP;
    stop_req.stop = &stop;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = &stop_req;
    cr_assert_eq(rt_send(rt_client_actor(h.client), "vm0/vp/0", &env), 0);
    rt_flush(rt_client_actor(h.client));
    bool halted = false;
    for (int i = 0; i < 1000 && !halted; i++) {
        rt_msg_t msg;
        if (rt_client_recv(probe, &msg, 5) == 0) {
            rt_reply_ack(rt_client_actor(probe), msg.env);
            rt_msg_release(&msg);
        }
        if (rt_client_recv(h.client, &msg, 5) == 0) {
            halted = msg.env->body_case == VMM__ENVELOPE__BODY_VP_EVENT &&
                     msg.env->vp_event->halted->reason_case == VMM__VP__HALTED__REASON_STOP;
            rt_msg_release(&msg);
        }
    }
    cr_expect(halted);
    vm_harness_stop(&h);
}

/* ---- State and debugging --------------------------------------------------- */

Test(vm, general_registers_round_trip)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    Vmm__Vp__GeneralRegisters in = VMM__VP__GENERAL_REGISTERS__INIT;
    uint64_t *fields[] = {&in.rax, &in.rcx, &in.rdx, &in.rbx, &in.rsp, &in.rbp,
                          &in.rsi, &in.rdi, &in.r8,  &in.r9,  &in.r10, &in.r11,
                          &in.r12, &in.r13, &in.r14, &in.r15, &in.rip};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        *fields[i] = 0x1111111111111111ull * (i + 1) >> 4;
    in.rflags = 0x202;
    Vmm__Vp__VpState st = VMM__VP__VP_STATE__INIT;
    st.general_registers = &in;
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    set.state = &st;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &set;
    vm_harness_vp_ack(&h, 0, &req);
    Vmm__Vp__GeneralRegisters out;
    vm_harness_regs(&h, 0, &out);
    cr_expect_eq(out.rax, in.rax);
    cr_expect_eq(out.rsp, in.rsp);
    cr_expect_eq(out.r15, in.r15);
    cr_expect_eq(out.rip, in.rip);
    cr_expect_eq(out.rflags, in.rflags);
    vm_harness_stop(&h);
}

static void s_set_debug(vm_harness_t *h, bool step, uint64_t breakpoint)
{
    Vmm__Vp__HardwareBreakpoint bp = VMM__VP__HARDWARE_BREAKPOINT__INIT;
    bp.address = breakpoint;
    Vmm__Vp__DebugState ds = VMM__VP__DEBUG_STATE__INIT;
    ds.single_step = step;
    ds.dr0 = breakpoint ? &bp : NULL;
    Vmm__Vp__SetDebugState set = VMM__VP__SET_DEBUG_STATE__INIT;
    set.state = &ds;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_DEBUG_STATE;
    req.set_debug_state = &set;
    vm_harness_vp_ack(h, 0, &req);
}

Test(vm, single_step_and_a_hardware_breakpoint)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    static const uint8_t code[] = {
        0x90,       /* nop */
        0x90,       /* nop */
        0x40,       /* inc ax */
        0x40,       /* inc ax */
        0xeb, 0xfe, /* jmp $ */
    };
    s_load(&h, code, sizeof code);
    s_set_debug(&h, true, 0);
    Vmm__Vp__GeneralRegisters regs;
    for (int i = 1; i <= 2; i++) {
        vm_harness_run(&h, 0);
        cr_assert_eq(vm_harness_wait_halt(&h, 0, 10000, NULL),
                     VMM__VP__HALTED__REASON_SINGLE_STEP);
        vm_harness_regs(&h, 0, &regs);
        cr_expect_eq(regs.rip, S_CODE + i, "step %d at 0x%llx", i, (unsigned long long)regs.rip);
    }

    s_set_debug(&h, false, S_CODE + 3); /* the second inc; cs base is 0 */
    vm_harness_run(&h, 0);
    rt_msg_t msg;
    cr_assert_eq(vm_harness_wait_halt(&h, 0, 10000, &msg), VMM__VP__HALTED__REASON_HW_BREAK);
    cr_expect_eq(msg.env->vp_event->halted->hw_break->breakpoint->address, S_CODE + 3);
    rt_msg_release(&msg);
    vm_harness_regs(&h, 0, &regs);
    cr_expect_eq(regs.rip, S_CODE + 3);
    cr_expect_eq(regs.rax & 0xffff, 1, "one inc before the breakpoint");

    /* Run again: it steps over the breakpoint and spins at jmp $. */
    vm_harness_run(&h, 0);
    struct timespec pause = {0, 20 * 1000000};
    nanosleep(&pause, NULL);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    vm_harness_regs(&h, 0, &regs);
    cr_expect_eq(regs.rip, S_CODE + 4);
    cr_expect_eq(regs.rax & 0xffff, 2);
    vm_harness_stop(&h);
}

/* ---- Several VPs, placement ------------------------------------------------------ */

Test(vm, two_vps_run_side_by_side)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 2, S_MEM, NULL);
    rt_client_t *probe = s_probe_new(&h, 0x3f8, 1, false);
    /* Each VP writes its own mark, once. */
    static const uint8_t code0[] = {0xba, 0xf8, 0x03, 0xb0, 0x10, 0xee, 0xeb, 0xfe};
    static const uint8_t code1[] = {0xba, 0xf8, 0x03, 0xb0, 0x11, 0xee, 0xeb, 0xfe};
    vm_harness_write(&h, S_CODE, code0, sizeof code0);
    vm_harness_write(&h, S_CODE + 0x100, code1, sizeof code1);
    vm_harness_real_mode(&h, 0, S_CODE);
    vm_harness_real_mode(&h, 1, S_CODE + 0x100);
    vm_harness_run(&h, 0);
    vm_harness_run(&h, 1);
    bool seen[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        rt_msg_t msg;
        cr_assert_eq(rt_client_recv(probe, &msg, 10000), 0);
        const Vmm__Devices__WriteIo *w = msg.env->device_request->write_io;
        cr_assert_not_null(w);
        cr_assert_lt(w->vp_index, 2);
        cr_expect_eq(w->data.data[0], 0x10 + w->vp_index, "vp %u wrote its own mark",
                     w->vp_index);
        seen[w->vp_index] = true;
        rt_reply_ack(rt_client_actor(probe), msg.env);
        rt_msg_release(&msg);
    }
    cr_expect(seen[0] && seen[1]);
    for (uint32_t vp = 0; vp < 2; vp++) {
        s_vp_simple(&h, vp, VMM__VP__REQUEST__OP_STOP);
        cr_expect_eq(vm_harness_wait_halt(&h, vp, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    }
    vm_harness_stop(&h);
}

/* ---- Refusals ------------------------------------------------------------------ */

static void s_expect_error(vm_harness_t *h, Vmm__Partition__Request *req, Vmm__ErrorCode code,
                           const char *mention)
{
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR, "op %d was not refused",
                 req->op_case);
    cr_expect_eq(reply.env->error->code, code, "op %d: code %d (%s)", req->op_case,
                 reply.env->error->code, reply.env->error->text);
    cr_expect(strstr(reply.env->error->text, mention) != NULL, "op %d: \"%s\" should name %s",
              req->op_case, reply.env->error->text, mention);
    rt_msg_release(&reply);
}

Test(vm, configurations_kvm_cannot_honour_are_refused_by_name)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_open(&h);

    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    Vmm__Partition__IsAvailable avail = VMM__PARTITION__IS_AVAILABLE__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_IS_AVAILABLE;
    req.is_available = &avail;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    cr_expect(reply.env->partition_reply->availability->available, "%s",
              reply.env->partition_reply->availability->missing);
    rt_msg_release(&reply);

    Vmm__Partition__Build build = VMM__PARTITION__BUILD__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    req.build = &build;
    s_expect_error(&h, &req, VMM__ERROR_CODE__BUSY, "NewPartition");

    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    s_expect_error(&h, &req, VMM__ERROR_CODE__INVALID_ARGUMENT, "vp_count");
    topo.vp_count = 1;
    np.isolation = VMM__PARTITION__ISOLATION_TYPE__SNP;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "isolation");
    np.isolation = VMM__PARTITION__ISOLATION_TYPE__NONE;
    Vmm__Partition__Vtl2Config vtl2 = VMM__PARTITION__VTL2_CONFIG__INIT;
    Vmm__Partition__HvConfig hv = VMM__PARTITION__HV_CONFIG__INIT;
    hv.vtl2 = &vtl2;
    np.hv_config = &hv;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "vtl2");
    np.hv_config = NULL;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);

    req.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    req.build = &build;
    build.opt_vtl0_alias_map_case = VMM__PARTITION__BUILD__OPT_VTL0_ALIAS_MAP_VTL0_ALIAS_MAP;
    build.vtl0_alias_map = 1ull << 40;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "vtl0_alias_map");
    build.opt_vtl0_alias_map_case = VMM__PARTITION__BUILD__OPT_VTL0_ALIAS_MAP__NOT_SET;
    s_expect_error(&h, &req, VMM__ERROR_CODE__INVALID_ARGUMENT, "mem_layout");
    Vmm__MemoryRange odd = VMM__MEMORY_RANGE__INIT;
    odd.end = 0x1234; /* not page-aligned */
    Vmm__Partition__RamRange ram = VMM__PARTITION__RAM_RANGE__INIT;
    ram.range = &odd;
    Vmm__Partition__RamRange *rams[] = {&ram};
    Vmm__Partition__MemoryLayout layout = VMM__PARTITION__MEMORY_LAYOUT__INIT;
    layout.n_ram = 1;
    layout.ram = rams;
    build.mem_layout = &layout;
    s_expect_error(&h, &req, VMM__ERROR_CODE__INVALID_ARGUMENT, "ram[0]");

    Vmm__Partition__ScrubVtl scrub = VMM__PARTITION__SCRUB_VTL__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SCRUB_VTL;
    req.scrub_vtl = &scrub;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "VTL");
    Vmm__Partition__AcceptInitialPages accept = VMM__PARTITION__ACCEPT_INITIAL_PAGES__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_ACCEPT_INITIAL_PAGES;
    req.accept_initial_pages = &accept;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "isolated");
    Vmm__Partition__ModifyVtlPageSetting modify = VMM__PARTITION__MODIFY_VTL_PAGE_SETTING__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_MODIFY_VTL_PAGE_SETTING;
    req.modify_vtl_page_setting = &modify;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "VTL");
    Vmm__Partition__SetSpiIrq spi = VMM__PARTITION__SET_SPI_IRQ__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_SPI_IRQ;
    req.set_spi_irq = &spi;
    s_expect_error(&h, &req, VMM__ERROR_CODE__NOT_SUPPORTED, "GIC");
    vm_harness_stop(&h);
}

/* ---- CPUID ----------------------------------------------------------------------- */

static Vmm__Partition__CpuidRegisters s_cpuid(vm_harness_t *h, uint32_t eax, uint32_t ecx)
{
    Vmm__Partition__GetCpuid get = VMM__PARTITION__GET_CPUID__INIT;
    get.eax = eax;
    get.ecx = ecx;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_CPUID;
    req.get_cpuid = &get;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    Vmm__Partition__CpuidRegisters regs = *reply.env->partition_reply->cpuid->result;
    rt_msg_release(&reply);
    return regs;
}

static uint32_t s_phys_bits(vm_harness_t *h)
{
    Vmm__Partition__GetMaxPhysicalAddressSize get =
        VMM__PARTITION__GET_MAX_PHYSICAL_ADDRESS_SIZE__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_MAX_PHYSICAL_ADDRESS_SIZE;
    req.get_max_physical_address_size = &get;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    uint32_t bits = reply.env->partition_reply->max_physical_address_size->bits;
    rt_msg_release(&reply);
    return bits;
}

Test(vm, default_cpuid_hides_what_the_emulator_cannot_run_and_leaves_merge_under_masks)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_open(&h);

    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = 1;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    rt_msg_release(&reply);

    Vmm__Partition__CpuidRegisters leaf1 = s_cpuid(&h, 1, 0);
    cr_expect_eq(leaf1.ecx & (1u << 13), 0, "CMPXCHG16B hidden");
    cr_expect_eq(leaf1.ecx & (1u << 26), 0, "XSAVE hidden");
    cr_expect_eq(leaf1.ecx & (1u << 23), 0, "POPCNT hidden");
    cr_expect_neq(leaf1.ecx & (1u << 31), 0, "a hypervisor is present");
    cr_expect_neq(leaf1.edx & (1u << 0), 0, "an FPU is still there");
    Vmm__Partition__CpuidRegisters ext = s_cpuid(&h, 0x80000001, 0);
    cr_expect_eq(ext.edx & (1u << 27), 0, "RDTSCP hidden");
    uint32_t bits = s_phys_bits(&h);
    cr_expect_geq(bits, 32);
    Vmm__Partition__CpuidRegisters before = s_cpuid(&h, 0x80000008, 0);

    /* Build with eax[7:0] of leaf 0x80000008 replaced: the rest stays. */
    Vmm__Partition__CpuidRegisters result = VMM__PARTITION__CPUID_REGISTERS__INIT;
    result.eax = 0xffffff24;
    Vmm__Partition__CpuidRegisters mask = VMM__PARTITION__CPUID_REGISTERS__INIT;
    mask.eax = 0xff;
    Vmm__Partition__CpuidLeaf leaf = VMM__PARTITION__CPUID_LEAF__INIT;
    leaf.function = 0x80000008;
    leaf.result = &result;
    leaf.mask = &mask;
    Vmm__Partition__CpuidLeaf *leaves[] = {&leaf};
    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.end = S_MEM;
    Vmm__Partition__RamRange ram = VMM__PARTITION__RAM_RANGE__INIT;
    ram.range = &range;
    Vmm__Partition__RamRange *rams[] = {&ram};
    Vmm__Partition__MemoryLayout layout = VMM__PARTITION__MEMORY_LAYOUT__INIT;
    layout.n_ram = 1;
    layout.ram = rams;
    Vmm__Partition__Build build = VMM__PARTITION__BUILD__INIT;
    build.mem_layout = &layout;
    build.n_cpuid = 1;
    build.cpuid = leaves;
    req.op_case = VMM__PARTITION__REQUEST__OP_BUILD;
    req.build = &build;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    rt_msg_release(&reply);
    Vmm__Partition__CpuidRegisters after = s_cpuid(&h, 0x80000008, 0);
    cr_expect_eq(after.eax & 0xff, 0x24);
    cr_expect_eq(after.eax & ~0xffu, before.eax & ~0xffu, "bits outside the mask kept");
    cr_expect_eq(after.ebx, before.ebx);
    cr_expect_eq(s_phys_bits(&h), 0x24);
    vm_harness_stop(&h);
}

/* ---- The whole VP state ------------------------------------------------------------- */

Test(vm, every_state_element_reads_and_writes_back)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_msg_t first;
    Vmm__Vp__VpState *st = vm_harness_get_state(&h, 0, NULL, 0, &first);
    cr_assert_not_null(st->general_registers);
    cr_assert_not_null(st->segments);
    cr_assert_not_null(st->control_registers);
    cr_assert_not_null(st->activity);
    cr_assert_not_null(st->xsave);
    cr_assert_not_null(st->apic);
    cr_assert_not_null(st->msrs);
    cr_assert_not_null(st->debug_registers);
    cr_assert_not_null(st->tsc);
    cr_expect_eq(st->apic->registers.len, 1024);
    cr_expect_eq(st->apic->apic_base & 0xfffff000, 0xfee00000);
    cr_assert_gt(st->msrs->n_msrs, 0);

    /* Change what the VP keeps faithfully, write everything back. */
    st->debug_registers->dr0 = 0x1000;
    st->debug_registers->dr7 = 0x401; /* L0 */
    for (size_t i = 0; i < st->msrs->n_msrs; i++)
        if (st->msrs->msrs[i]->index == 0xc0000082) /* LSTAR */
            st->msrs->msrs[i]->value = 0xffffffff81000000ull;
    st->general_registers->rbx = 0xb0b;
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    set.state = st;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    req.set_state = &set;
    vm_harness_vp_ack(&h, 0, &req);

    rt_msg_t second;
    Vmm__Vp__VpState *back = vm_harness_get_state(&h, 0, NULL, 0, &second);
    cr_expect_eq(back->debug_registers->dr0, 0x1000);
    cr_expect_eq(back->debug_registers->dr7 & 0xff, 0x01);
    cr_expect_eq(back->general_registers->rbx, 0xb0b);
    bool lstar = false;
    for (size_t i = 0; i < back->msrs->n_msrs; i++)
        if (back->msrs->msrs[i]->index == 0xc0000082) {
            lstar = true;
            cr_expect_eq(back->msrs->msrs[i]->value, 0xffffffff81000000ull);
        }
    cr_expect(lstar, "LSTAR is among the MSRs saved");
    cr_expect_eq(back->control_registers->cr0, st->control_registers->cr0);
    cr_expect_eq(back->segments->cs->selector, st->segments->cs->selector);
    cr_expect_eq(back->activity->mp_state, st->activity->mp_state);
    cr_expect_eq(memcmp(back->apic->registers.data, st->apic->registers.data, 0x20), 0,
                 "the APIC ID and version registers came back");

    /* A malformed element changes nothing: the check comes first. */
    Vmm__Vp__Xsave bad = *st->xsave;
    bad.data.len = 100;
    st->xsave = &bad;
    st->general_registers->rbx = 0xdead;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_vp_call(&h, 0, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(reply.env->error->text, "xsave") != NULL, "%s", reply.env->error->text);
    rt_msg_release(&reply);
    Vmm__Vp__GeneralRegisters regs;
    vm_harness_regs(&h, 0, &regs);
    cr_expect_eq(regs.rbx, 0xb0b);

    rt_msg_release(&second);
    rt_msg_release(&first);
    vm_harness_stop(&h);
}

Test(vm, only_vtl0_is_inspectable_and_state_needs_a_stopped_vp)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    for (int vtl = 0; vtl <= 2; vtl++) {
        Vmm__Vp__IsVtlInspectable is = VMM__VP__IS_VTL_INSPECTABLE__INIT;
        is.vtl = (Vmm__Vtl)vtl;
        Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
        req.op_case = VMM__VP__REQUEST__OP_IS_VTL_INSPECTABLE;
        req.is_vtl_inspectable = &is;
        rt_msg_t reply;
        cr_assert_eq(vm_harness_vp_call(&h, 0, &req, &reply), 0);
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_VP_REPLY);
        cr_expect_eq(reply.env->vp_reply->vtl_inspectable->inspectable, vtl == 0, "vtl %d", vtl);
        rt_msg_release(&reply);
    }
    static const uint8_t code[] = {0xeb, 0xfe}; /* jmp $ */
    s_load(&h, code, sizeof code);
    vm_harness_run(&h, 0);
    Vmm__Vp__StateKind kind = VMM__VP__STATE_KIND__GENERAL_REGISTERS;
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    get.n_kinds = 1;
    get.kinds = &kind;
    Vmm__Vp__Request req = VMM__VP__REQUEST__INIT;
    req.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    req.get_state = &get;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_vp_call(&h, 0, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__BUSY);
    rt_msg_release(&reply);
    s_vp_simple(&h, 0, VMM__VP__REQUEST__OP_STOP);
    cr_expect_eq(vm_harness_wait_halt(&h, 0, 10000, NULL), VMM__VP__HALTED__REASON_STOP);
    vm_harness_stop(&h);
}

/* An HvConfig puts the Microsoft hypervisor interface in the guest's CPUID;
 * without one, the guest sees none of it. */
static void s_new_partition(vm_harness_t *h, Vmm__Partition__HvConfig *hv)
{
    Vmm__Partition__ProcessorTopology topo = VMM__PARTITION__PROCESSOR_TOPOLOGY__INIT;
    topo.vp_count = 2;
    Vmm__Partition__NewPartition np = VMM__PARTITION__NEW_PARTITION__INIT;
    np.processor_topology = &topo;
    np.hv_config = hv;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_PARTITION;
    req.new_partition = &np;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK, "%s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text : "?");
    rt_msg_release(&reply);
}

static bool s_caps_hv1(vm_harness_t *h)
{
    Vmm__Partition__GetCaps get = VMM__PARTITION__GET_CAPS__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_CAPS;
    req.get_caps = &get;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    bool hv1 = reply.env->partition_reply->caps->x86->hv1;
    rt_msg_release(&reply);
    return hv1;
}

/* GetCaps says what the guest's CPUID and KVM say. */
Test(vm, caps_come_from_the_guests_cpuid_and_kvm)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_open(&h);
    s_new_partition(&h, NULL);
    Vmm__Partition__GetCaps get = VMM__PARTITION__GET_CAPS__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_CAPS;
    req.get_caps = &get;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_partition(&h, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_PARTITION_REPLY);
    const Vmm__Partition__X86Capabilities *x = reply.env->partition_reply->caps->x86;
    Vmm__Partition__CpuidRegisters one = s_cpuid(&h, 1, 0), d0 = s_cpuid(&h, 0xd, 0);
    Vmm__Partition__CpuidRegisters ext = s_cpuid(&h, 0x80000001, 0);
    cr_expect_eq(x->reset_rdx, one.eax);
    cr_expect_eq(x->x2apic, (one.ecx >> 21) & 1);
    cr_expect_eq(x->xsave->features & 3, 3, "x87 and SSE always");
    if (one.ecx & (1u << 26)) {
        cr_expect_eq(x->xsave->features, d0.eax | (uint64_t)d0.edx << 32);
        cr_expect_eq(x->xsave->standard_len, d0.ecx);
        cr_expect_leq(x->xsave->compact_len, x->xsave->standard_len + 64 * 64);
    } else {
        cr_expect_eq(x->xsave->features, 3, "no XSAVE: the legacy area");
        cr_expect_eq(x->xsave->standard_len, 576);
    }
    cr_expect_geq(x->xsave->compact_len, 576);
    cr_expect_eq(x->tsc_aux, ((ext.edx >> 27) & 1) || ((s_cpuid(&h, 7, 0).ecx >> 22) & 1));
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    cr_assert_geq(kvm, 0);
    cr_expect_eq(x->can_freeze_time, ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK) > 0);
    close(kvm);
    cr_expect_geq(x->physical_address_width, 32);
    rt_msg_release(&reply);
    vm_harness_stop(&h);
}

static int s_vdev_call(vm_harness_t *h, Vmm__Partition__Request *req, rt_msg_t *reply)
{
    cr_assert_eq(vm_harness_partition(h, req, reply), 0);
    int body = reply->env->body_case;
    return body == VMM__ENVELOPE__BODY_ERROR ? -(int)reply->env->error->code : body;
}

/* Virtual devices and their VPCI interrupts: one processor's vector as an
 * MSI the in-kernel APIC takes, and refusals that say why. */
Test(vm, virtual_devices_map_vpci_interrupts_to_msis)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 2, S_MEM, NULL);
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    Vmm__Partition__NewVirtualDevice nd = VMM__PARTITION__NEW_VIRTUAL_DEVICE__INIT;
    nd.device_id = 0x1234;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_VIRTUAL_DEVICE;
    req.new_virtual_device = &nd;
    rt_msg_t reply;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_PARTITION_REPLY);
    uint64_t dev = reply.env->partition_reply->virtual_device->handle;
    rt_msg_release(&reply);
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a device id twice");
    rt_msg_release(&reply);

    uint32_t one[1] = {1}, two[2] = {0, 1};
    Vmm__Partition__VpciInterruptParameters params = VMM__PARTITION__VPCI_INTERRUPT_PARAMETERS__INIT;
    params.vector = 0x40;
    params.target_processors = one;
    params.n_target_processors = 1;
    Vmm__Partition__RegisterVpciInterrupt reg = VMM__PARTITION__REGISTER_VPCI_INTERRUPT__INIT;
    reg.device = dev;
    reg.vector_count = 4;
    reg.params = &params;
    req.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_VPCI_INTERRUPT;
    req.register_vpci_interrupt = &reg;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_PARTITION_REPLY);
    cr_expect_eq(reply.env->partition_reply->vpci_interrupt->address, 0xfee01000ull,
                 "physical destination, APIC ID 1");
    cr_expect_eq(reply.env->partition_reply->vpci_interrupt->data, 0x40);
    rt_msg_release(&reply);

    params.target_processors = two;
    params.n_target_processors = 2;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__NOT_SUPPORTED);
    cr_expect(strstr(reply.env->error->text, "logical destination mode"), "%s",
              reply.env->error->text);
    rt_msg_release(&reply);
    params.target_processors = one;
    params.n_target_processors = 1;
    params.vector = 0x42; /* not aligned to 4 */
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__INVALID_ARGUMENT);
    rt_msg_release(&reply);
    params.vector = 0x40;
    one[0] = 2; /* the VM has 2 VPs */
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__INVALID_ARGUMENT);
    rt_msg_release(&reply);

    /* An MSI target of the device, then the interrupt gone, then the
     * device. */
    Vmm__Partition__NewMsiTarget nt = VMM__PARTITION__NEW_MSI_TARGET__INIT;
    nt.device = dev;
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET;
    req.new_msi_target = &nt;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_PARTITION_REPLY);
    rt_msg_release(&reply);
    Vmm__Partition__UnregisterVpciInterrupt un = VMM__PARTITION__UNREGISTER_VPCI_INTERRUPT__INIT;
    un.device = dev;
    un.address = 0xfee01000ull;
    un.data = 0x40;
    req.op_case = VMM__PARTITION__REQUEST__OP_UNREGISTER_VPCI_INTERRUPT;
    req.unregister_vpci_interrupt = &un;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__NOT_FOUND, "gone already");
    rt_msg_release(&reply);
    Vmm__Partition__DropVirtualDevice drop = VMM__PARTITION__DROP_VIRTUAL_DEVICE__INIT;
    drop.device = dev;
    req.op_case = VMM__PARTITION__REQUEST__OP_DROP_VIRTUAL_DEVICE;
    req.drop_virtual_device = &drop;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__NOT_FOUND);
    rt_msg_release(&reply);
    req.op_case = VMM__PARTITION__REQUEST__OP_NEW_MSI_TARGET;
    req.new_msi_target = &nt;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__NOT_FOUND, "its target too");
    rt_msg_release(&reply);
    vm_harness_stop(&h);
}

/* SaveState, then changes (a route, a line, the clock), then RestoreState:
 * the partition is as saved; what does not fit this kernel is refused. */
Test(vm, the_partition_state_saves_and_restores)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    Vmm__Partition__SetIrqRoute route = VMM__PARTITION__SET_IRQ_ROUTE__INIT;
    Vmm__Partition__MsiRequest msi = VMM__PARTITION__MSI_REQUEST__INIT;
    msi.address = 0xfee00000;
    msi.data = 0x45;
    route.irq = 5;
    route.request = &msi;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE;
    req.set_irq_route = &route;
    rt_msg_t reply;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);

    Vmm__Partition__SaveState save = VMM__PARTITION__SAVE_STATE__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_SAVE_STATE;
    req.save_state = &save;
    rt_msg_t saved;
    cr_assert_eq(s_vdev_call(&h, &req, &saved), VMM__ENVELOPE__BODY_PARTITION_REPLY);
    Vmm__Partition__SavedState *st = saved.env->partition_reply->saved_state;
    cr_assert_eq(st->n_irq_routes, 1);
    cr_expect_eq(st->irq_routes[0]->irq, 5);
    cr_expect_eq(st->irq_routes[0]->data, 0x45);
    cr_expect_gt(st->pit.len, 0);
    cr_expect_not_null(st->vm_state);
    cr_expect_null(st->vm_state->reftime, "no Hyper-V, no reference time");

    /* Changed: the route gone; the clock set far ahead. */
    route.request = NULL;
    req.op_case = VMM__PARTITION__REQUEST__OP_SET_IRQ_ROUTE;
    req.set_irq_route = &route;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);

    uint64_t clock = st->clock_ns;
    Vmm__Partition__RestoreState restore = VMM__PARTITION__RESTORE_STATE__INIT;
    restore.state = st;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESTORE_STATE;
    req.restore_state = &restore;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    req.op_case = VMM__PARTITION__REQUEST__OP_SAVE_STATE;
    req.save_state = &save;
    rt_msg_t again;
    cr_assert_eq(s_vdev_call(&h, &req, &again), VMM__ENVELOPE__BODY_PARTITION_REPLY);
    Vmm__Partition__SavedState *st2 = again.env->partition_reply->saved_state;
    cr_expect_eq(st2->n_irq_routes, 1, "the route is back");
    cr_expect_eq(st2->ioapic.len, st->ioapic.len);
    cr_expect_eq(memcmp(st2->pic_master.data, st->pic_master.data, st->pic_master.len), 0);
    cr_expect(st2->clock_ns >= clock && st2->clock_ns - clock < 2000000000ull,
              "the clock goes on from the saved one: %llu then %llu",
              (unsigned long long)clock, (unsigned long long)st2->clock_ns);
    rt_msg_release(&again);

    /* A PIT of another size is another kernel's. */
    st->pit.len = 3;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESTORE_STATE;
    req.restore_state = &restore;
    cr_expect_eq(s_vdev_call(&h, &req, &reply), -VMM__ERROR_CODE__INVALID_ARGUMENT);
    rt_msg_release(&reply);
    rt_msg_release(&saved);
    vm_harness_stop(&h);
}

/* A devices.proto request's error code (0: answered). */
static int s_device_code(rt_actor_t *from, Vmm__Devices__Request *req)
{
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(from, req, &reply), 0);
    int code = reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? (int)reply.env->error->code : 0;
    rt_msg_release(&reply);
    return code;
}

/* Asks for the irqfd of the MSI at 0xfee00000 with data, as from; returns
 * the reply's error code (0 for a success). */
static int s_get_msi_irqfd(rt_actor_t *from, uint32_t data)
{
    Vmm__Devices__GetMsiIrqfd get = VMM__DEVICES__GET_MSI_IRQFD__INIT;
    get.address = 0xfee00000;
    get.data = data;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_GET_MSI_IRQFD;
    req.get_msi_irqfd = &get;
    return s_device_code(from, &req);
}

/* Guest memory by message: at most 64 KiB a request, inside RAM, and an
 * update of 1, 2, 4 or 8 aligned bytes; anything else is refused. */
Test(vm, guest_memory_requests_are_bounded_and_checked)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    const int invalid = VMM__ERROR_CODE__INVALID_ARGUMENT;
    Vmm__Devices__ReadGuestMemory rd = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    req.read_guest_memory = &rd;
    rd.length = 65536;
    cr_expect_eq(s_device_code(rt_client_actor(h.client), &req), 0, "64 KiB at once");
    rd.length = 65537;
    cr_expect_eq(s_device_code(rt_client_actor(h.client), &req), invalid, "a byte more");
    rd.gpa = S_MEM - 4;
    rd.length = 8;
    cr_expect_eq(s_device_code(rt_client_actor(h.client), &req), invalid, "across RAM's end");

    Vmm__Devices__UpdateGuestMemory up = VMM__DEVICES__UPDATE_GUEST_MEMORY__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY;
    req.update_guest_memory = &up;
    up.gpa = 0x1000;
    up.size = 4;
    up.and_mask = ~0ull;
    cr_expect_eq(s_device_code(rt_client_actor(h.client), &req), 0, "4 aligned bytes");
    const struct {
        uint64_t gpa;
        uint32_t size;
    } bad[] = {{0x1000, 3}, {0x1000, 0}, {0x1002, 4}, {0x1004, 16}, {S_MEM - 4, 8}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        up.gpa = bad[i].gpa;
        up.size = bad[i].size;
        cr_expect_eq(s_device_code(rt_client_actor(h.client), &req), invalid, "an update of %u at 0x%llx",
                     bad[i].size, (unsigned long long)bad[i].gpa);
    }
    vm_harness_stop(&h);
}

/* SaveMemory, or LoadMemory (read back first with copy, else on demand). */
static int s_ram_file(vm_harness_t *h, bool save, const char *path, bool copy)
{
    Vmm__Partition__SaveMemory sm = VMM__PARTITION__SAVE_MEMORY__INIT;
    Vmm__Partition__LoadMemory lm = VMM__PARTITION__LOAD_MEMORY__INIT;
    sm.path = lm.path = (char *)path;
    lm.copy = copy;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = save ? VMM__PARTITION__REQUEST__OP_SAVE_MEMORY
                       : VMM__PARTITION__REQUEST__OP_LOAD_MEMORY;
    if (save)
        req.save_memory = &sm;
    else
        req.load_memory = &lm;
    rt_msg_t reply;
    int rc = s_vdev_call(h, &req, &reply);
    rt_msg_release(&reply);
    return rc;
}

/* Guest RAM to a sparse file and back, after a reset cleared it. */
Test(vm, guest_ram_saves_to_a_sparse_file_and_loads_back)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    static const char a[] = "first page", b[] = "one near the end";
    vm_harness_write(&h, 0x1000, a, sizeof a);
    vm_harness_write(&h, S_MEM - 0x1000, b, sizeof b);
    char dir[] = "/tmp/ramfile-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ram", dir);
    cr_assert_eq(s_ram_file(&h, true, path, false), VMM__ENVELOPE__BODY_ACK);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, S_MEM);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_expect_lt((uint64_t)st.st_blocks * 512, S_MEM / 4, "sparse: %lld bytes on disk",
                 (long long)st.st_blocks * 512);
    cr_expect_eq(s_ram_file(&h, true, path, false), -VMM__ERROR_CODE__INTERNAL, "not over a file");

    Vmm__Partition__Reset reset = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &reset;
    rt_msg_t reply;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    char got[32];
    vm_harness_read_ram(&h, 0x1000, got, sizeof a);
    cr_expect_neq(memcmp(got, a, sizeof a), 0, "the reset cleared RAM");

    cr_assert_eq(s_ram_file(&h, false, path, true), VMM__ENVELOPE__BODY_ACK);
    vm_harness_read_ram(&h, 0x1000, got, sizeof a);
    cr_expect_str_eq(got, a);
    vm_harness_read_ram(&h, S_MEM - 0x1000, got, sizeof b);
    cr_expect_str_eq(got, b);

    cr_assert_eq(truncate(path, S_MEM / 2), 0);
    cr_expect_eq(s_ram_file(&h, false, path, true), -VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "a file of another size");
    cr_expect_eq(s_ram_file(&h, false, path, false), -VMM__ERROR_CODE__INVALID_ARGUMENT,
                 "on demand too");
    unlink(path);
    rmdir(dir);
    vm_harness_stop(&h);
}

/* The partition's "ram_fill" (state into state), then its faults and
 * bytes (read after the state: they only grow). */
static void s_fill_state(vm_harness_t *h, char *state, size_t size, uint64_t *faults,
                         uint64_t *bytes)
{
    rt_actor_t *self = rt_client_actor(h->client);
    if (echo_inspect_text(self, "vm0/partition", "ram_fill", state, size))
        snprintf(state, size, "absent");
    *faults = (uint64_t)echo_inspect_number(self, "vm0/partition", "ram_fill/faults");
    *bytes = (uint64_t)echo_inspect_number(self, "vm0/partition", "ram_fill/bytes");
}

static bool s_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    static char x[1 << 20], y[1 << 20];
    bool same = true;
    for (size_t n; same && (n = fread(x, 1, sizeof x, fa)) > 0;)
        same = fread(y, 1, sizeof y, fb) == n && !memcmp(x, y, n);
    same = same && fread(y, 1, 1, fb) == 0;
    fclose(fa);
    fclose(fb);
    return same;
}

/* Guest RAM loaded on demand: LoadMemory answers at once, a page touched
 * while the fill runs is served first, pages the file has as holes read as
 * zeroes whatever RAM held, SaveMemory meanwhile waits for the whole, and a
 * reset stops it. */
Test(vm, guest_ram_loads_on_demand_a_page_touched_first)
{
    vm_harness_need_kvm();
    const uint64_t mem = 256u << 20, used = 192u << 20;
    vm_harness_t h;
    vm_harness_start(&h, 1, mem, NULL);
    static uint32_t chunk[65536 / 4]; /* what one WriteGuestMemory takes */
    for (uint64_t gpa = 0; gpa < used; gpa += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk / 4; i++)
            chunk[i] = (uint32_t)(gpa + 4 * i) ^ 0x5a5a5a5a;
        vm_harness_write(&h, gpa, chunk, sizeof chunk);
    }
    char dir[] = "/tmp/ramfill-XXXXXX", path[64], again[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ram", dir);
    snprintf(again, sizeof again, "%s/again", dir);
    cr_assert_eq(s_ram_file(&h, true, path, false), VMM__ENVELOPE__BODY_ACK);
    static const char junk[] = "not in the snapshot";
    vm_harness_write(&h, mem - 0x1000, junk, sizeof junk);

    cr_assert_eq(s_ram_file(&h, false, path, false), VMM__ENVELOPE__BODY_ACK);
    char state[32];
    uint64_t faults = 0, bytes = 0;
    s_fill_state(&h, state, sizeof state, &faults, &bytes);
    if (!strcmp(state, "none")) {
        unlink(path);
        rmdir(dir);
        vm_harness_stop(&h);
        cr_skip_test("no userfaultfd here: LoadMemory read guest RAM back instead");
    }
    bool early = !strcmp(state, "filling") && bytes < used / 2;
    uint32_t got[1024];
    vm_harness_read_ram(&h, used - sizeof got, got, sizeof got); /* the last page the file holds */
    for (size_t i = 0; i < 1024; i++)
        cr_assert_eq(got[i], (uint32_t)(used - sizeof got + 4 * i) ^ 0x5a5a5a5a,
                     "word %zu of the last page", i);
    s_fill_state(&h, state, sizeof state, &faults, &bytes);
    if (early)
        cr_expect_geq(faults, 1, "the page read while the fill was early was served first");
    else
        fprintf(stderr, "the fill had passed half way before the read: no fault to check\n");
    char tail[sizeof junk];
    vm_harness_read_ram(&h, mem - 0x1000, tail, sizeof tail);
    cr_expect_eq(memcmp(tail, (char[sizeof junk]){0}, sizeof junk), 0,
                 "a hole in the file reads as zeroes");

    cr_assert_eq(s_ram_file(&h, true, again, false), VMM__ENVELOPE__BODY_ACK);
    s_fill_state(&h, state, sizeof state, &faults, &bytes);
    cr_expect_str_eq(state, "done", "SaveMemory waited for the fill");
    /* Every byte the file holds, and the zeroes around a fault in a hole. */
    cr_expect(bytes >= used && bytes <= used + 2 * 65536, "filled %llu bytes",
              (unsigned long long)bytes);
    cr_expect(s_same_file(path, again), "saved again, RAM is the snapshot's");

    /* A reset while it fills stops it: the pages read as zeroes. */
    cr_assert_eq(s_ram_file(&h, false, path, false), VMM__ENVELOPE__BODY_ACK);
    s_fill_state(&h, state, sizeof state, &faults, &bytes);
    if (strcmp(state, "filling")) /* a machine fast past belief: nothing is wrong */
        fprintf(stderr, "the fill ended before the reset: no stop to check\n");
    Vmm__Partition__Reset reset = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &reset;
    rt_msg_t reply;
    cr_assert_eq(s_vdev_call(&h, &req, &reply), VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    vm_harness_read_ram(&h, used - sizeof got, got, sizeof got);
    cr_expect_eq(memcmp(got, (uint32_t[1024]){0}, sizeof got), 0, "the reset cleared RAM");
    unlink(path);
    unlink(again);
    rmdir(dir);
    vm_harness_stop(&h);
}

Test(vm, hv_config_presents_the_microsoft_hypervisor_interface)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_open(&h);
    Vmm__Partition__HvConfig hv = VMM__PARTITION__HV_CONFIG__INIT;
    s_new_partition(&h, &hv);
    Vmm__Partition__CpuidRegisters id = s_cpuid(&h, 0x40000000, 0);
    char vendor[13] = "";
    memcpy(vendor, &id.ebx, 4);
    memcpy(vendor + 4, &id.ecx, 4);
    memcpy(vendor + 8, &id.edx, 4);
    cr_expect_str_eq(vendor, "Microsoft Hv");
    cr_expect_geq(id.eax, 0x40000005);
    Vmm__Partition__CpuidRegisters iface = s_cpuid(&h, 0x40000001, 0);
    cr_expect_eq(iface.eax, 0x31237648, "Hv#1");
    cr_expect_eq(s_cpuid(&h, 0x40000005, 0).eax, 2, "the VP limit");
    cr_expect(s_caps_hv1(&h));
    vm_harness_stop(&h);

    vm_harness_open(&h);
    s_new_partition(&h, NULL);
    id = s_cpuid(&h, 0x40000000, 0);
    memcpy(vendor, &id.ebx, 4);
    memcpy(vendor + 4, &id.ecx, 4);
    memcpy(vendor + 8, &id.edx, 4);
    cr_expect_str_neq(vendor, "Microsoft Hv");
    cr_expect_neq(s_cpuid(&h, 0x40000001, 0).eax, 0x31237648);
    cr_expect_not(s_caps_hv1(&h));
    vm_harness_stop(&h);
}

/* A device in another process names its endpoint; anything but ipc:// or
 * tcp:// is refused and leaves nothing registered. */
Test(vm, a_device_endpoint_must_be_ipc_or_tcp)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    Vmm__Devices__PortRange range = VMM__DEVICES__PORT_RANGE__INIT;
    range.start = 0x2f8;
    range.len = 8;
    Vmm__Devices__PortRange *ranges[] = {&range};
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = "com2";
    reg.n_ports = 1;
    reg.ports = ranges;
    reg.endpoint = "inproc://elsewhere";
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(rt_client_actor(h.client), &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(reply.env->error->text, "inproc://elsewhere") != NULL, "%s",
              reply.env->error->text);
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(rt_client_actor(h.client), VM_HARNESS_PARTITION, "devices"),
                 0);
    vm_harness_stop(&h);
}

/* ---- What a device may do -------------------------------------------------------- */

/* Sends a partition request from `from`; returns the reply's error code
 * (0 for a success). */
static int s_partition_code(rt_actor_t *from, Vmm__Partition__Request *req)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    rt_msg_t reply;
    cr_assert_eq(rt_call(from, VM_HARNESS_PARTITION, &env, &reply, 10000), 0);
    int code = reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? (int)reply.env->error->code : 0;
    rt_msg_release(&reply);
    return code;
}

static int s_request_msi(rt_actor_t *from)
{
    Vmm__Partition__MsiRequest m = VMM__PARTITION__MSI_REQUEST__INIT;
    m.address = 0xfee00000;
    m.data = 0x40;
    Vmm__Partition__RequestMsi op = VMM__PARTITION__REQUEST_MSI__INIT;
    op.request = &m;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REQUEST_MSI;
    req.request_msi = &op;
    return s_partition_code(from, &req);
}

static int s_assert_irq(rt_actor_t *from, uint32_t irq)
{
    Vmm__Partition__AssertIrq op = VMM__PARTITION__ASSERT_IRQ__INIT;
    op.irq = irq;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_ASSERT_IRQ;
    req.assert_irq = &op;
    return s_partition_code(from, &req);
}

/* Registers ports 0x500-0x507, IRQ line 5 and msi_count MSIs for `from`. */
static void s_register_device(rt_actor_t *from, const char *name, uint32_t msi_count,
                              uint32_t first_port)
{
    Vmm__Devices__PortRange range = VMM__DEVICES__PORT_RANGE__INIT;
    range.start = first_port;
    range.len = 8;
    Vmm__Devices__PortRange *ranges[] = {&range};
    uint32_t lines[] = {5};
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = (char *)name;
    reg.n_ports = 1;
    reg.ports = ranges;
    reg.n_irq_lines = 1;
    reg.irq_lines = lines;
    reg.msi_count = msi_count;
    reg.required = true;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(from, &req, &reply), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY, "%s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text : "?");
    cr_expect_eq(reply.env->device_reply->registration->msi_count, msi_count);
    rt_msg_release(&reply);
}

/* A registered device raises only the IRQ lines and MSIs it was given,
 * puts doorbells only in its own ranges and has no say over the VM; an
 * actor of another VM may not act on this one at all. Each refusal is
 * PERMISSION_DENIED, counted. */
Test(vm, a_device_acts_only_within_its_registration)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *plain = rt_client_new(h.rt, "vm0/dev/plain");
    rt_client_t *msi = rt_client_new(h.rt, "vm0/dev/msi");
    rt_client_t *stranger = rt_client_new(h.rt, "vm1/dev/stranger");
    rt_actor_t *dev = rt_client_actor(plain);
    s_register_device(dev, "plain", 0, 0x500);
    s_register_device(rt_client_actor(msi), "msi", 1, 0x508);
    const int denied = VMM__ERROR_CODE__PERMISSION_DENIED;

    cr_expect_eq(s_request_msi(dev), denied, "an MSI it was not given");
    cr_expect_eq(s_request_msi(rt_client_actor(msi)), 0, "an MSI it was given");
    cr_expect_eq(s_assert_irq(dev, 6), denied, "another line");
    cr_expect_eq(s_assert_irq(dev, 5), 0, "its own line");

    Vmm__Partition__RegisterDoorbell db = VMM__PARTITION__REGISTER_DOORBELL__INIT;
    db.guest_address = 0xd0000000;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_REGISTER_DOORBELL;
    req.register_doorbell = &db;
    cr_expect_eq(s_partition_code(dev, &req), denied, "a doorbell outside its ranges");

    Vmm__Partition__Reset reset = VMM__PARTITION__RESET__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &reset;
    cr_expect_eq(s_partition_code(dev, &req), denied, "a reset of the VM");

    /* A line's level, one-way: its own line is taken, another's refused
     * (counted; the call after it comes after it). */
    Vmm__Devices__IrqLineChanged line = VMM__DEVICES__IRQ_LINE_CHANGED__INIT;
    line.irq = 6;
    line.high = true;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_IRQ_LINE_CHANGED;
    ev.irq_line_changed = &line;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_EVENT;
    env.device_event = &ev;
    cr_assert_eq(rt_send(dev, VM_HARNESS_PARTITION, &env), 0);
    line.irq = 5;
    cr_assert_eq(rt_send(dev, VM_HARNESS_PARTITION, &env), 0);
    line.high = false;
    cr_assert_eq(rt_send(dev, VM_HARNESS_PARTITION, &env), 0);
    /* Descriptors: an MSI's irqfd to a device given no MSI, a line's irqfd
     * for another's line, a doorbell not its own. */
    Vmm__Devices__GetMsiIrqfd get = VMM__DEVICES__GET_MSI_IRQFD__INIT;
    get.address = 0xfee00000;
    get.data = 0x41;
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_GET_MSI_IRQFD;
    dreq.get_msi_irqfd = &get;
    cr_expect_eq(s_device_code(dev, &dreq), denied, "an irqfd for no MSI of its own");
    Vmm__Devices__GetLineIrqfd get_line = VMM__DEVICES__GET_LINE_IRQFD__INIT;
    get_line.line = 6;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_GET_LINE_IRQFD;
    dreq.get_line_irqfd = &get_line;
    cr_expect_eq(s_device_code(dev, &dreq), denied, "an irqfd for another's line");
    Vmm__Devices__GetDoorbellFd get_db = VMM__DEVICES__GET_DOORBELL_FD__INIT;
    get_db.handle = 12345;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_GET_DOORBELL_FD;
    dreq.get_doorbell_fd = &get_db;
    cr_expect_eq(s_device_code(dev, &dreq), VMM__ERROR_CODE__NOT_FOUND,
                 "a doorbell not its own");

    cr_expect_eq(s_request_msi(rt_client_actor(stranger)), denied, "another VM's actor");
    rt_msg_t reply;
    cr_assert_eq(vm_harness_register(rt_client_actor(stranger), "stranger", false, 0x600, 8,
                                     false, &reply),
                 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, denied);
    rt_msg_release(&reply);

    rt_actor_t *test = rt_client_actor(h.client);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "denied"), 9);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "msis"), 1);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "devices"), 2);
    rt_client_destroy(&stranger);
    rt_client_destroy(&msi);
    rt_client_destroy(&plain);
    vm_harness_stop(&h);
}

/* A peer in another runtime (as a device host would be), reaching the
 * partition at endpoint over CURVE with its own key pair, admitted to
 * "vm0/"; its actors are clients of that runtime. */
typedef struct {
    char pub[41], sec[41];
    rt_t *rt;
} s_peer_t;

static void s_peer_start(s_peer_t *peer, rt_t *vm_rt, const char *endpoint)
{
    cr_assert_eq(zmq_curve_keypair(peer->pub, peer->sec), 0);
    char server[41];
    cr_assert_eq(rt_curve_public_key(vm_rt, server, sizeof server), 0);
    cr_assert_eq(rt_peer_allow(vm_rt, peer->pub, "vm0/"), 0);
    rt_config_t cfg = {.curve_public_key = peer->pub, .curve_secret_key = peer->sec};
    peer->rt = rt_new(&cfg);
    cr_assert_not_null(peer->rt);
    cr_assert_eq(rt_directory_set_key(peer->rt, VM_HARNESS_PARTITION, endpoint, server), 0);
}

/* A sender's name from another process is only what that process wrote:
 * there it acts only as a device it registered, and only from the key it
 * registered with; never for the VM itself. */
Test(vm, a_peer_acts_only_as_a_device_it_registered_with_its_own_key)
{
    vm_harness_need_kvm();
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    rt_config_t cfg = {.curve_public_key = pub, .curve_secret_key = sec};
    vm_harness_t h;
    vm_harness_start_listening(&h, 1, S_MEM, NULL, &cfg, "tcp://127.0.0.1:*");
    char endpoint[256];
    cr_assert_eq(rt_endpoint_of(h.rt, VM_HARNESS_PARTITION, endpoint, sizeof endpoint), 0);
    s_peer_t a, b;
    s_peer_start(&a, h.rt, endpoint);
    s_peer_start(&b, h.rt, endpoint);
    rt_client_t *dev_a = rt_client_new(a.rt, "vm0/dev/x");
    rt_client_t *dev_b = rt_client_new(b.rt, "vm0/dev/x"); /* the same name, another key */
    rt_client_t *nobody = rt_client_new(b.rt, "vm0/anybody");
    rt_client_t *host = rt_client_new(b.rt, "host"); /* a name of the host's own kind */
    const int denied = VMM__ERROR_CODE__PERMISSION_DENIED;

    /* Not a device: nothing for the VM itself, nor guest memory. */
    Vmm__Partition__Reset reset = VMM__PARTITION__RESET__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_RESET;
    req.reset = &reset;
    cr_expect_eq(s_partition_code(rt_client_actor(nobody), &req), denied, "a peer's reset");
    cr_expect_eq(s_partition_code(rt_client_actor(host), &req), denied, "a peer's reset, as host");
    Vmm__Devices__ReadGuestMemory read = VMM__DEVICES__READ_GUEST_MEMORY__INIT;
    read.gpa = 0x1000;
    read.length = 8;
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_READ_GUEST_MEMORY;
    dreq.read_guest_memory = &read;
    cr_expect_eq(s_device_code(rt_client_actor(nobody), &dreq), denied, "a peer's memory read");
    cr_expect_eq(s_request_msi(rt_client_actor(dev_a)), denied, "an MSI before registering");

    /* Registered from a's key: a acts as the device; b, signing as it, may
     * neither act nor register it again. */
    s_register_device(rt_client_actor(dev_a), "x", 1, 0x500);
    cr_expect_eq(s_request_msi(rt_client_actor(dev_a)), 0, "its MSI");
    cr_expect_eq(s_assert_irq(rt_client_actor(dev_a), 5), 0, "its line");
    cr_expect_eq(s_device_code(rt_client_actor(dev_a), &dreq), 0, "its memory read");
    cr_expect_eq(s_request_msi(rt_client_actor(dev_b)), denied, "its MSI, from another key");
    cr_expect_eq(s_assert_irq(rt_client_actor(dev_b), 5), denied, "its line, from another key");
    cr_expect_eq(s_device_code(rt_client_actor(dev_b), &dreq), denied,
                 "a memory read, from another key");
    rt_msg_t reply;
    cr_assert_eq(vm_harness_register(rt_client_actor(dev_b), "y", false, 0x600, 8, false, &reply),
                 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, denied);
    cr_expect(strstr(reply.env->error->text, "registered from peer:") != NULL, "%s",
              reply.env->error->text);
    rt_msg_release(&reply);
    /* A device is no owner: a's reset is refused too. */
    cr_expect_eq(s_partition_code(rt_client_actor(dev_a), &req), denied, "a device's reset");

    /* The partition's endpoint is the gateway to the registry beside it,
     * which answers its partition alone. */
    cr_assert_eq(rt_directory_set_key(b.rt, "vm0/devices", endpoint, pub), 0);
    Vmm__Registry__Remove remove = VMM__REGISTRY__REMOVE__INIT;
    remove.handle = 1;
    remove.actor = "vm0/dev/x";
    Vmm__Registry__Request rreq = VMM__REGISTRY__REQUEST__INIT;
    rreq.op_case = VMM__REGISTRY__REQUEST__OP_REMOVE;
    rreq.remove = &remove;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_REGISTRY_REQUEST;
    env.registry_request = &rreq;
    cr_assert_eq(rt_call(rt_client_actor(nobody), "vm0/devices", &env, &reply, 10000), 0);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR);
    cr_expect_eq(reply.env->error->code, denied, "%s", reply.env->error->text);
    rt_msg_release(&reply);

    rt_actor_t *test = rt_client_actor(h.client);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "denied"), 9);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "devices"), 1);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "msis"), 1);
    rt_client_destroy(&host);
    rt_client_destroy(&nobody);
    rt_client_destroy(&dev_b);
    rt_client_destroy(&dev_a);
    rt_destroy(&b.rt);
    rt_destroy(&a.rt);
    vm_harness_stop(&h);
}

/* What the partition keeps of senders that are no devices is bounded:
 * names a peer invents cannot grow it. */
Test(vm, grants_of_senders_that_are_no_devices_are_cached_up_to_a_bound)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    Vmm__Partition__GetIsolation iso = VMM__PARTITION__GET_ISOLATION__INIT;
    Vmm__Partition__Request req = VMM__PARTITION__REQUEST__INIT;
    req.op_case = VMM__PARTITION__REQUEST__OP_GET_ISOLATION;
    req.get_isolation = &iso;
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "vm0/sender/%d", i);
        rt_client_t *c = rt_client_new(h.rt, name);
        cr_assert_not_null(c);
        cr_assert_eq(s_partition_code(rt_client_actor(c), &req), 0, "%s", name);
        rt_client_destroy(&c);
    }
    long long cached = echo_inspect_number(rt_client_actor(h.client), VM_HARNESS_PARTITION,
                                           "grants_cached");
    cr_expect_eq(cached, 256, "the test's own client and the first 255 others: %lld", cached);
    vm_harness_stop(&h);
}

/* Registers an MMIO device at [0xd0000000, +0x1000) asking for doorbells
 * at the addresses given; returns the reply (released by the caller). */
/* One past the doorbells a registration may ask for. */
#define S_DOORBELLS_TOO_MANY 65

static void s_register_with_doorbells(rt_actor_t *from, const uint64_t *at, size_t n,
                                      bool required, rt_msg_t *reply)
{
    Vmm__MemoryRange range = VMM__MEMORY_RANGE__INIT;
    range.start = 0xd0000000;
    range.end = 0xd0001000;
    Vmm__MemoryRange *ranges[] = {&range};
    Vmm__Devices__DoorbellRequest dbs[S_DOORBELLS_TOO_MANY], *db_ptrs[S_DOORBELLS_TOO_MANY];
    cr_assert_leq(n, S_DOORBELLS_TOO_MANY);
    for (size_t i = 0; i < n; i++) {
        vmm__devices__doorbell_request__init(&dbs[i]);
        dbs[i].guest_address = at[i];
        dbs[i].opt_length_case = VMM__DEVICES__DOORBELL_REQUEST__OPT_LENGTH_LENGTH;
        dbs[i].length = 4;
        db_ptrs[i] = &dbs[i];
    }
    Vmm__Devices__RegisterDevice reg = VMM__DEVICES__REGISTER_DEVICE__INIT;
    reg.name = "nic";
    reg.n_mmio = 1;
    reg.mmio = ranges;
    reg.n_doorbells = n;
    reg.doorbells = db_ptrs;
    reg.required = required;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_REGISTER_DEVICE;
    req.register_device = &reg;
    cr_assert_eq(vm_harness_device_call(from, &req, reply), 0);
}

/* The doorbells a registration asks for are made with it, in the device's
 * own MMIO ranges only, and go when it unregisters. */
Test(vm, a_registration_gets_the_doorbells_it_asks_for)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *nic = rt_client_new(h.rt, "vm0/dev/nic");
    rt_actor_t *dev = rt_client_actor(nic), *test = rt_client_actor(h.client);
    rt_msg_t reply;

    const uint64_t outside[] = {0xd0000100, 0xd0002000};
    s_register_with_doorbells(dev, outside, 2, true, &reply);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR, "all or nothing");
    cr_expect(strstr(reply.env->error->text, "0xd0002000") != NULL, "%s",
              reply.env->error->text);
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "doorbells"), 0);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "devices"), 0);

    s_register_with_doorbells(dev, outside, 2, false, &reply);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
    const Vmm__Devices__DeviceRegistration *reg = reply.env->device_reply->registration;
    cr_assert_eq(reg->n_doorbells, 2);
    cr_expect_neq(reg->doorbells[0], 0, "in its range: made");
    cr_expect_eq(reg->doorbells[1], 0, "outside: not made");
    uint64_t handle = reg->handle;
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "doorbells"), 1);

    Vmm__Devices__UnregisterDevice un = VMM__DEVICES__UNREGISTER_DEVICE__INIT;
    un.handle = handle;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_UNREGISTER_DEVICE;
    req.unregister_device = &un;
    cr_assert_eq(vm_harness_device_call(dev, &req, &reply), 0);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ACK);
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "doorbells"), 0,
                 "its doorbells went with it");
    rt_client_destroy(&nic);
    vm_harness_stop(&h);
}

/* A device's descriptors and doorbells are bounded: a registration asks
 * for at most 64 doorbells (PARTITION_MAX_DOORBELL_REQUESTS), and a device
 * holds at most 64 MSI irqfds (PARTITION_MAX_IRQFDS_PER_DEVICE); beyond,
 * the request is refused with a reason and nothing is made. */
Test(vm, doorbells_and_irqfds_of_a_device_are_bounded)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_actor_t *test = rt_client_actor(h.client);
    rt_client_t *nic = rt_client_new(h.rt, "vm0/dev/nic");
    rt_client_t *msi = rt_client_new(h.rt, "vm0/dev/msi");
    cr_assert(nic && msi);

    enum { MANY = S_DOORBELLS_TOO_MANY };
    uint64_t at[MANY];
    for (size_t i = 0; i < MANY; i++)
        at[i] = 0xd0000000 + 8 * i;
    rt_msg_t reply;
    s_register_with_doorbells(rt_client_actor(nic), at, MANY, false, &reply);
    cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_ERROR, "65 doorbells");
    cr_expect_eq(reply.env->error->code, VMM__ERROR_CODE__INVALID_ARGUMENT);
    cr_expect(strstr(reply.env->error->text, "64") != NULL, "%s", reply.env->error->text);
    rt_msg_release(&reply);
    s_register_with_doorbells(rt_client_actor(nic), at, MANY - 1, false, &reply);
    cr_expect_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY, "64 doorbells: %s",
                 reply.env->body_case == VMM__ENVELOPE__BODY_ERROR ? reply.env->error->text
                                                                   : "granted");
    rt_msg_release(&reply);
    cr_expect_eq(echo_inspect_number(test, VM_HARNESS_PARTITION, "doorbells"), MANY - 1);

    s_register_device(rt_client_actor(msi), "msi", 1, 0x508);
    int granted = 0, code = 0;
    for (uint32_t i = 0; i < MANY; i++) {
        code = s_get_msi_irqfd(rt_client_actor(msi), 0x40 + i);
        granted += !code;
    }
    cr_expect_eq(granted, MANY - 1);
    cr_expect_eq(code, VMM__ERROR_CODE__BUSY, "the 65th: %d", code);
    cr_expect_eq(s_get_msi_irqfd(rt_client_actor(msi), 0x40), 0, "one it holds, asked again");
    rt_client_destroy(&msi);
    rt_client_destroy(&nic);
    vm_harness_stop(&h);
}

/* The VM holds at most 1024 MSI irqfds (PARTITION_MAX_IRQFDS): 16
 * devices with 64 each fill it, and a 17th device's first is BUSY. */
Test(vm, msi_irqfds_of_the_vm_are_bounded)
{
    vm_harness_need_kvm();
    enum { DEVICES = 16, EACH = 64 };
    /* 1024 eventfds in this process, the partition's. */
    struct rlimit files;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &files), 0);
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < 2048)
        cr_skip_test("the open-file limit (%llu) is below 2048",
                     (unsigned long long)files.rlim_max);
    if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < 2048) {
        files.rlim_cur = 2048;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &files), 0);
    }
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    rt_client_t *devs[DEVICES + 1];
    for (int d = 0; d <= DEVICES; d++) {
        char name[32], full[48];
        snprintf(name, sizeof name, "msi%d", d);
        snprintf(full, sizeof full, "vm0/dev/%s", name);
        devs[d] = rt_client_new(h.rt, full);
        cr_assert_not_null(devs[d]);
        s_register_device(rt_client_actor(devs[d]), name, 1, 0x600 + 8 * (uint32_t)d);
    }
    int granted = 0, code = 0;
    for (int d = 0; d < DEVICES; d++)
        for (uint32_t i = 0; i < EACH; i++) {
            code = s_get_msi_irqfd(rt_client_actor(devs[d]), 0x40 + i);
            granted += !code;
        }
    cr_expect_eq(granted, DEVICES * EACH, "granted %d, the last refused with %d", granted, code);
    cr_expect_eq(s_get_msi_irqfd(rt_client_actor(devs[DEVICES]), 0x40), VMM__ERROR_CODE__BUSY,
                 "the 1025th");
    cr_expect_eq(echo_inspect_number(rt_client_actor(h.client), VM_HARNESS_PARTITION,
                                     "msi_irqfds"),
                 DEVICES * EACH);
    for (int d = 0; d <= DEVICES; d++)
        rt_client_destroy(&devs[d]);
    vm_harness_stop(&h);
}

/* Sends UpdateGuestMemory; returns the reply's error code (0 for a
 * success, with *old set). */
static int s_update(vm_harness_t *h, uint64_t gpa, uint32_t size, uint64_t and_mask,
                    uint64_t or_mask, uint64_t *old)
{
    Vmm__Devices__UpdateGuestMemory op = VMM__DEVICES__UPDATE_GUEST_MEMORY__INIT;
    op.gpa = gpa;
    op.size = size;
    op.and_mask = and_mask;
    op.or_mask = or_mask;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_UPDATE_GUEST_MEMORY;
    req.update_guest_memory = &op;
    rt_msg_t reply;
    cr_assert_eq(vm_harness_device_call(rt_client_actor(h->client), &req, &reply), 0);
    int code = 0;
    if (reply.env->body_case == VMM__ENVELOPE__BODY_ERROR) {
        code = (int)reply.env->error->code;
    } else {
        cr_assert_eq(reply.env->body_case, VMM__ENVELOPE__BODY_DEVICE_REPLY);
        const Vmm__Devices__ReadResult *r = reply.env->device_reply->update_guest_memory;
        cr_assert_not_null(r);
        cr_assert_eq(r->data.len, size);
        *old = 0;
        for (uint32_t i = 0; i < size; i++)
            *old |= (uint64_t)r->data.data[i] << (8 * i);
    }
    rt_msg_release(&reply);
    return code;
}

/* UpdateGuestMemory: new = (old & and) | or at once, the old value back;
 * sizes 1 to 8, aligned, inside RAM only. */
Test(vm, guest_memory_updates_at_once_and_answers_what_was_there)
{
    vm_harness_need_kvm();
    vm_harness_t h;
    vm_harness_start(&h, 1, S_MEM, NULL);
    const uint8_t start[8] = {0xf0, 0x0f, 0xaa, 0x55, 1, 2, 3, 4};
    vm_harness_write(&h, 0x8000, start, sizeof start);
    uint64_t old;
    cr_assert_eq(s_update(&h, 0x8000, 1, 0xff, 0x01, &old), 0);
    cr_expect_eq(old, 0xf0);
    cr_assert_eq(s_update(&h, 0x8000, 1, 0xff, 0, &old), 0);
    cr_expect_eq(old, 0xf1, "the bit set before stays");
    cr_assert_eq(s_update(&h, 0x8002, 2, ~0x0f00ull, 0, &old), 0);
    cr_expect_eq(old, 0x55aa);
    cr_assert_eq(s_update(&h, 0x8000, 8, ~0ull, 0, &old), 0);
    cr_expect_eq(old, 0x0403020150aa0ff1ull, "0x%llx", (unsigned long long)old);
    cr_assert_eq(s_update(&h, 0x8004, 4, 0, 0xdeadbeef, &old), 0);
    cr_expect_eq(old, 0x04030201);
    cr_assert_eq(s_update(&h, 0x8004, 4, ~0ull, 0, &old), 0);
    cr_expect_eq(old, 0xdeadbeef);

    const int bad = VMM__ERROR_CODE__INVALID_ARGUMENT;
    cr_expect_eq(s_update(&h, 0x8001, 2, ~0ull, 0, &old), bad, "unaligned");
    cr_expect_eq(s_update(&h, 0x8000, 3, ~0ull, 0, &old), bad, "three bytes");
    cr_expect_eq(s_update(&h, S_MEM, 4, ~0ull, 0, &old), bad, "past RAM");
    cr_expect_eq(echo_inspect_number(rt_client_actor(h.client), VM_HARNESS_PARTITION,
                                     "guest_updates"),
                 6);
    vm_harness_stop(&h);
}
