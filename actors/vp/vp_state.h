/*
 * The VP's state (vp.proto VpState) read from and written to a vCPU with
 * KVM's state ioctls. Private to the VP actor; a separate file because it
 * is a long, flat translation.
 */
#ifndef VMM_VP_STATE_H
#define VMM_VP_STATE_H

#include <linux/kvm.h>
#include <stddef.h>

#include "proto/vp.pb-c.h"

/* The most MSRs one GetState may name. */
#define VP_STATE_MAX_MSRS 64

/* A VpState and everything it points to, filled by vp_state_read(); lives
 * on the caller's side (about 6 KiB), nothing to free. */
typedef struct {
    Vmm__Vp__VpState state;
    Vmm__Vp__GeneralRegisters general;
    Vmm__Vp__Segments segments;
    Vmm__Vp__SegmentRegister seg[8];
    Vmm__Vp__TableRegister tables[2];
    Vmm__Vp__ControlRegisters control;
    Vmm__Vp__Activity activity;
    Vmm__Vp__PendingException exception;
    Vmm__Vp__Xsave xsave;
    struct kvm_xsave xsave_area;
    Vmm__Vp__Apic apic;
    struct kvm_lapic_state lapic;
    Vmm__Vp__Msrs msrs;
    Vmm__Vp__Msr msr[VP_STATE_MAX_MSRS];
    Vmm__Vp__Msr *msr_ptrs[VP_STATE_MAX_MSRS];
    Vmm__Vp__DebugRegisters debug;
    Vmm__Vp__Tsc tsc;
} vp_state_buf_t;

/* Reads the elements req asks for (all when it names none) into buf.
 * Returns 0, or a negative errno with a readable reason in err. */
int vp_state_read(int vcpu_fd, const Vmm__Vp__GetState *req, vp_state_buf_t *buf,
                  char *err, size_t errlen);

/* Writes the elements present in state, in field order. The whole state is
 * checked before anything is written, so that a malformed element changes
 * nothing. Returns 0, or a negative errno with a readable reason in err. */
int vp_state_write(int vcpu_fd, const Vmm__Vp__VpState *state, char *err, size_t errlen);

#endif
