/*
 * The partition-wide state (the seed's PartitionAccessState, AccessVmState):
 * the hypercall MSRs and the reference TSC page MSR, which the synic holds
 * (KVM has no Hyper-V here), and the reference time, which the partition
 * keeps with the synic. A partition without the Hyper-V interface has
 * none of them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

#include "actors/partition/partition_internal.h"
#include "actors/synic/synic_tlfs.h"
#include "proto/synic.pb-c.h"

#define S_SYNIC_TIMEOUT_MS 5000

/* A synic request from the partition; 0 when answered as hoped (*out, if
 * given, holds an MsrResult's value), else a negative errno with why. */
static int s_synic(rt_actor_t *self, Vmm__Synic__Request *req, uint64_t *out, char *why,
                   size_t n)
{
    partition_t *p = rt_actor_state(self);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_SYNIC_REQUEST;
    env.synic_request = req;
    rt_msg_t reply;
    int rc = rt_call(self, p->synic, &env, &reply, S_SYNIC_TIMEOUT_MS);
    if (rc) {
        snprintf(why, n, "%s did not answer: %s", p->synic, strerror(-rc));
        return rc;
    }
    const Vmm__Envelope *r = reply.env;
    if (r->body_case == VMM__ENVELOPE__BODY_ERROR) {
        rc = rt_errno_of(r->error->code);
        snprintf(why, n, "%s: %s", p->synic, r->error->text);
    } else if (out && (r->body_case != VMM__ENVELOPE__BODY_SYNIC_REPLY ||
                       r->synic_reply->result_case != VMM__SYNIC__REPLY__RESULT_MSR_RESULT)) {
        rc = -EIO;
        snprintf(why, n, "%s answered with body kind %d", p->synic, r->body_case);
    } else if (out && r->synic_reply->msr_result->gp) {
        rc = -EINVAL;
        snprintf(why, n, "the synic refused the value 0x%llx for MSR 0x%x (a #GP)",
                 (unsigned long long)*out, req->access_msr->index);
    } else if (out) {
        *out = r->synic_reply->msr_result->value;
    }
    rt_msg_release(&reply);
    return rc;
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
    return s_synic(self, &req, value, why, n);
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
    Vmm__Partition__VmState st = VMM__PARTITION__VM_STATE__INIT;
    Vmm__Partition__HypercallMsrs hc = VMM__PARTITION__HYPERCALL_MSRS__INIT;
    Vmm__Partition__ReferenceTimeCounter rt = VMM__PARTITION__REFERENCE_TIME_COUNTER__INIT;
    Vmm__Partition__ReferenceTscPage page = VMM__PARTITION__REFERENCE_TSC_PAGE__INIT;
    char why[256];
    if (p->hv) {
        int rc = s_msr(self, SYNIC_MSR_GUEST_OS_ID, false, &hc.guest_os_id, why, sizeof why);
        if (!rc)
            rc = s_msr(self, SYNIC_MSR_HYPERCALL, false, &hc.hypercall, why, sizeof why);
        if (!rc)
            rc = s_msr(self, SYNIC_MSR_REFERENCE_TSC, false, &page.value, why, sizeof why);
        if (rc)
            return partition_refuse(self, msg, rt_error_code(rc), why);
        rt.value = partition_reference_time(p);
        st.hypercall = &hc;
        st.reftime = &rt;
        st.reference_tsc_page = &page;
    }
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
    int rc = s_synic(self, &req, NULL, why, n);
    if (!rc) /* modulo 2^64: the difference the reference time is made of holds */
        p->tsc_at_zero =
            guest_tsc - (uint64_t)((unsigned __int128)value * p->tsc_khz / 10000);
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
    const Vmm__Partition__VmState *st = op->state;
    if (!st)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no state given");
    if (!p->hv && (st->hypercall || st->reftime || st->reference_tsc_page))
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "the partition has no Hyper-V interface (NewPartition without "
                                "HvConfig): no hypercall MSRs, reference time or TSC page");
    char why[256];
    int rc = 0;
    /* The time first: the TSC page written next carries it. */
    if (st->reftime)
        rc = s_set_reftime(self, st->reftime->value, why, sizeof why);
    if (!rc && st->hypercall) {
        uint64_t os = st->hypercall->guest_os_id, hc = st->hypercall->hypercall;
        rc = s_msr(self, SYNIC_MSR_GUEST_OS_ID, true, &os, why, sizeof why);
        if (!rc)
            rc = s_msr(self, SYNIC_MSR_HYPERCALL, true, &hc, why, sizeof why);
    }
    if (!rc && st->reference_tsc_page) {
        uint64_t v = st->reference_tsc_page->value;
        rc = s_msr(self, SYNIC_MSR_REFERENCE_TSC, true, &v, why, sizeof why);
    }
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), why);
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}
