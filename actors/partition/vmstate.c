/*
 * The partition-wide state (the seed's PartitionAccessState, AccessVmState):
 * the hypercall MSRs and the reference TSC page MSR, which the synic holds
 * (KVM has no Hyper-V here), and the reference time, which the partition
 * keeps with the synic. A partition without the Hyper-V interface has
 * none of them. And what a snapshot keeps of the partition (SaveState,
 * RestoreState): that, KVM's interrupt controllers, PIT and clock, and the
 * IRQ lines' routes and levels.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <x86intrin.h>

#include "actors/partition/partition_internal.h"
#include "actors/synic/synic_tlfs.h"
#include "proto/synic.pb-c.h"

#define S_SYNIC_TIMEOUT_MS 5000

/* A synic request from the partition whose reply is body kind `want`
 * (left in *reply when given, for the caller to release). */
static int s_synic(rt_actor_t *self, Vmm__Synic__Request *req, int want, rt_msg_t *reply,
                   char *why, size_t n)
{
    partition_t *p = rt_actor_state(self);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    return rt_call_expect(self, p->synic, &env, want, reply, S_SYNIC_TIMEOUT_MS, why, n);
}

/* A partition-wide MSR, as VP 0 would read or write it. */
static int s_msr(rt_actor_t *self, uint32_t index, bool write, uint64_t *value, char *why,
                 size_t n)
{
    Vmm__Synic__AccessMsr op = VMM__SYNIC__ACCESS_MSR__INIT;
    op.vp = 0;
    op.index = index;
    op.write = write;
    op.value = *value;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_ACCESS_MSR;
    req.access_msr = &op;
    rt_msg_t reply;
    int rc = s_synic(self, &req, VMM__ENVELOPE__BODY_SYNIC_REPLY, &reply, why, n);
    if (rc)
        return rc;
    const Vmm__Synic__Reply *r = reply.env->synic_reply;
    if (r->result_case != VMM__SYNIC__REPLY__RESULT_MSR_RESULT) {
        rc = -EIO;
        snprintf(why, n, "the synic answered MSR 0x%x with result %d", index, r->result_case);
    } else if (r->msr_result->gp) {
        rc = -EINVAL;
        snprintf(why, n, "the synic refused the value 0x%llx for MSR 0x%x (a #GP)",
                 (unsigned long long)*value, index);
    } else {
        *value = r->msr_result->value;
    }
    rt_msg_release(&reply);
    return rc;
}

/* The partition-wide state, in storage the caller gives (the elements
 * point into it); none of it without Hyper-V. */
typedef struct {
    Vmm__Partition__VmState st;
    Vmm__Partition__HypercallMsrs hc;
    Vmm__Partition__ReferenceTimeCounter rt;
    Vmm__Partition__ReferenceTscPage page;
} s_vm_state_t;

static int s_get(rt_actor_t *self, s_vm_state_t *v, char *why, size_t n)
{
    partition_t *p = rt_actor_state(self);
    vmm__partition__vm_state__init(&v->st);
    vmm__partition__hypercall_msrs__init(&v->hc);
    vmm__partition__reference_time_counter__init(&v->rt);
    vmm__partition__reference_tsc_page__init(&v->page);
    if (!p->hv)
        return 0;
    int rc = s_msr(self, SYNIC_MSR_GUEST_OS_ID, false, &v->hc.guest_os_id, why, n);
    if (!rc)
        rc = s_msr(self, SYNIC_MSR_HYPERCALL, false, &v->hc.hypercall, why, n);
    if (!rc)
        rc = s_msr(self, SYNIC_MSR_REFERENCE_TSC, false, &v->page.value, why, n);
    if (rc)
        return rc;
    v->rt.value = partition_reference_time(p);
    v->st.hypercall = &v->hc;
    v->st.reftime = &v->rt;
    v->st.reference_tsc_page = &v->page;
    return 0;
}

int partition_on_get_vm_state(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__GetVmState *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    s_vm_state_t v;
    char why[256];
    int rc = s_get(self, &v, why, sizeof why);
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), why);
    Vmm__Partition__VmState st = v.st;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_VM_STATE;
    r.vm_state = &st;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REPLY;
    env.partition_reply = &r;
    return rt_reply(self, msg, &env);
}

/* The reference time becomes `value` now, here and in the synic. */
static int s_set_reftime(rt_actor_t *self, uint64_t value, char *why, size_t n)
{
    partition_t *p = rt_actor_state(self);
    uint64_t guest_tsc = __rdtsc() + (uint64_t)p->tsc_offset;
    Vmm__Synic__SetTimeBase base = VMM__SYNIC__SET_TIME_BASE__INIT;
    base.ref_time = value;
    base.guest_tsc = guest_tsc;
    Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
    req.op_case = VMM__SYNIC__REQUEST__OP_SET_TIME_BASE;
    req.set_time_base = &base;
    int rc = s_synic(self, &req, VMM__ENVELOPE__BODY_ACK, NULL, why, n);
    if (!rc) /* modulo 2^64: the difference the reference time is made of holds */
        p->tsc_at_zero =
            guest_tsc - (uint64_t)((unsigned __int128)value * p->tsc_khz / 10000);
    return rc;
}

/* Sets what st holds. Returns 0, or a negative errno with why. */
static int s_set(rt_actor_t *self, const Vmm__Partition__VmState *st, char *why, size_t n)
{
    partition_t *p = rt_actor_state(self);
    if (!p->hv && (st->hypercall || st->reftime || st->reference_tsc_page)) {
        snprintf(why, n, "the partition has no Hyper-V interface (NewPartition without "
                         "HvConfig): no hypercall MSRs, reference time or TSC page");
        return -ENOTSUP;
    }
    int rc = 0;
    /* The time first: the TSC page written next carries it. */
    if (st->reftime)
        rc = s_set_reftime(self, st->reftime->value, why, n);
    if (!rc && st->hypercall) {
        uint64_t os = st->hypercall->guest_os_id, hc = st->hypercall->hypercall;
        rc = s_msr(self, SYNIC_MSR_GUEST_OS_ID, true, &os, why, n);
        if (!rc)
            rc = s_msr(self, SYNIC_MSR_HYPERCALL, true, &hc, why, n);
    }
    if (!rc && st->reference_tsc_page) {
        uint64_t v = st->reference_tsc_page->value;
        rc = s_msr(self, SYNIC_MSR_REFERENCE_TSC, true, &v, why, n);
    }
    return rc;
}

int partition_on_set_vm_state(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__SetVmState *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    if (!op->state)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no state given");
    char why[256];
    int rc = s_set(self, op->state, why, sizeof why);
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), why);
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

/* ---- Snapshots -------------------------------------------------------------------- */

int partition_on_save_state(rt_actor_t *self, const Vmm__Envelope *msg)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    char why[256];
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock = {0};
    int rc = 0;
    for (uint32_t chip = 0; !rc && chip < 3; chip++) {
        memset(&chips[chip], 0, sizeof chips[chip]);
        chips[chip].chip_id = chip;
        if (ioctl(p->vm_fd, KVM_GET_IRQCHIP, &chips[chip]) < 0)
            rc = -errno;
    }
    if (!rc && ioctl(p->vm_fd, KVM_GET_PIT2, &pit) < 0)
        rc = -errno;
    if (!rc && ioctl(p->vm_fd, KVM_GET_CLOCK, &clock) < 0)
        rc = -errno;
    if (rc) {
        snprintf(why, sizeof why, "reading KVM's interrupt controllers, PIT and clock: %s",
                 strerror(-rc));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, why);
    }
    s_vm_state_t v;
    if ((rc = s_get(self, &v, why, sizeof why)))
        return partition_refuse(self, msg, rt_error_code(rc), why);
    rt_msg_t synic = {0};
    bool has_synic = false;
    if (p->hv) {
        Vmm__Synic__SaveState op = VMM__SYNIC__SAVE_STATE__INIT;
        Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
        req.op_case = VMM__SYNIC__REQUEST__OP_SAVE_STATE;
        req.save_state = &op;
        if ((rc = s_synic(self, &req, VMM__ENVELOPE__BODY_SYNIC_REPLY, &synic, why, sizeof why)))
            return partition_refuse(self, msg, rt_error_code(rc), why);
        has_synic = true;
        if (synic.env->synic_reply->result_case != VMM__SYNIC__REPLY__RESULT_SAVED_STATE) {
            rt_msg_release(&synic);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL,
                                    "the synic answered SaveState with no SavedState");
        }
    }
    Vmm__Partition__SavedIrqRoute routes[PARTITION_IRQ_LINES];
    Vmm__Partition__SavedIrqRoute *route_ptrs[PARTITION_IRQ_LINES];
    uint32_t high[PARTITION_IRQ_LINES];
    Vmm__Partition__SavedState st = VMM__PARTITION__SAVED_STATE__INIT;
    pthread_mutex_lock(&p->irq_lock);
    for (uint32_t i = 0; i < PARTITION_IRQ_LINES; i++) {
        if (p->irq_high[i])
            high[st.n_lines_high++] = i;
        if (!p->irq_routes[i].msi)
            continue;
        vmm__partition__saved_irq_route__init(&routes[st.n_irq_routes]);
        routes[st.n_irq_routes].irq = i;
        routes[st.n_irq_routes].address = p->irq_routes[i].address;
        routes[st.n_irq_routes].data = p->irq_routes[i].data;
        route_ptrs[st.n_irq_routes] = &routes[st.n_irq_routes];
        st.n_irq_routes++;
    }
    pthread_mutex_unlock(&p->irq_lock);
    st.irq_routes = route_ptrs;
    st.lines_high = high;
    st.pic_master = (ProtobufCBinaryData){sizeof chips[0].chip, (uint8_t *)&chips[0].chip};
    st.pic_slave = (ProtobufCBinaryData){sizeof chips[1].chip, (uint8_t *)&chips[1].chip};
    st.ioapic = (ProtobufCBinaryData){sizeof chips[2].chip, (uint8_t *)&chips[2].chip};
    st.pit = (ProtobufCBinaryData){sizeof pit, (uint8_t *)&pit};
    st.clock_ns = clock.clock;
    st.vm_state = &v.st;
    st.synic = has_synic ? synic.env->synic_reply->saved_state : NULL;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_SAVED_STATE;
    r.saved_state = &st;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REPLY;
    env.partition_reply = &r;
    rc = rt_reply(self, msg, &env);
    if (has_synic)
        rt_msg_release(&synic);
    return rc;
}

int partition_on_restore_state(rt_actor_t *self, const Vmm__Envelope *msg,
                               const Vmm__Partition__RestoreState *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    const Vmm__Partition__SavedState *st = op->state;
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
    const ProtobufCBinaryData *parts[3] = {st ? &st->pic_master : NULL, st ? &st->pic_slave : NULL,
                                           st ? &st->ioapic : NULL};
    char why[256];
    if (!st || st->pit.len != sizeof pit || !st->vm_state)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "a saved state with KVM's PIT of this kernel and the VM state");
    for (int i = 0; i < 3; i++)
        if (parts[i]->len != sizeof chips[i].chip)
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                    "the saved interrupt controllers are not this kernel's");
    for (size_t i = 0; i < st->n_irq_routes; i++)
        if (st->irq_routes[i]->irq >= PARTITION_IRQ_LINES)
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                    "a saved route of an IRQ beyond the IO-APIC's 24");
    for (size_t i = 0; i < st->n_lines_high; i++)
        if (st->lines_high[i] >= PARTITION_IRQ_LINES)
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                    "a saved line beyond the IO-APIC's 24");
    int rc = 0;
    for (uint32_t chip = 0; !rc && chip < 3; chip++) {
        memset(&chips[chip], 0, sizeof chips[chip]);
        chips[chip].chip_id = chip;
        memcpy(&chips[chip].chip, parts[chip]->data, sizeof chips[chip].chip);
        if (ioctl(p->vm_fd, KVM_SET_IRQCHIP, &chips[chip]) < 0)
            rc = -errno;
    }
    memcpy(&pit, st->pit.data, sizeof pit);
    if (!rc && ioctl(p->vm_fd, KVM_SET_PIT2, &pit) < 0)
        rc = -errno;
    struct kvm_clock_data clock = {.clock = st->clock_ns};
    if (!rc && ioctl(p->vm_fd, KVM_SET_CLOCK, &clock) < 0)
        rc = -errno;
    if (rc) {
        snprintf(why, sizeof why, "setting KVM's interrupt controllers, PIT and clock: %s",
                 strerror(-rc));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, why);
    }
    pthread_mutex_lock(&p->irq_lock);
    memset(p->irq_routes, 0, sizeof p->irq_routes);
    for (size_t i = 0; i < st->n_irq_routes; i++) {
        const Vmm__Partition__SavedIrqRoute *r = st->irq_routes[i];
        p->irq_routes[r->irq].msi = true;
        p->irq_routes[r->irq].address = r->address;
        p->irq_routes[r->irq].data = r->data;
    }
    rc = partition_apply_irq_routes(p);
    for (uint32_t line = 0; !rc && line < PARTITION_IRQ_LINES; line++) {
        bool level = false;
        for (size_t i = 0; i < st->n_lines_high; i++)
            level |= st->lines_high[i] == line;
        struct kvm_irq_level l = {.irq = line, .level = level};
        if (ioctl(p->vm_fd, KVM_IRQ_LINE, &l) < 0)
            rc = -errno;
        else
            p->irq_high[line] = level;
    }
    pthread_mutex_unlock(&p->irq_lock);
    if (rc) {
        snprintf(why, sizeof why, "setting the IRQ routes and lines: %s", strerror(-rc));
        return partition_refuse(self, msg, VMM__ERROR_CODE__INTERNAL, why);
    }
    /* The synic's registers as saved, then the time and the partition-wide
     * MSRs (the TSC page written again for the new time base). */
    if (p->hv && st->synic) {
        Vmm__Synic__RestoreState op = VMM__SYNIC__RESTORE_STATE__INIT;
        op.state = st->synic;
        Vmm__Synic__Request req = VMM__SYNIC__REQUEST__INIT;
        req.op_case = VMM__SYNIC__REQUEST__OP_RESTORE_STATE;
        req.restore_state = &op;
        if ((rc = s_synic(self, &req, VMM__ENVELOPE__BODY_ACK, NULL, why, sizeof why)))
            return partition_refuse(self, msg, rt_error_code(rc), why);
    }
    if ((rc = s_set(self, st->vm_state, why, sizeof why)))
        return partition_refuse(self, msg, rt_error_code(rc), why);
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}
