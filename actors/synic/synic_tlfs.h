/*
 * The guest interface of the synic actor: the Hyper-V TLFS facts it
 * implements (MSR numbers, register bits, guest page layouts, hypercall
 * codes and statuses), for the actor itself, its tests, and the VP and
 * partition actors that route the guest's accesses to it.
 *
 * Sources: the Hyper-V TLFS (learn.microsoft.com, "Hypervisor Top Level
 * Functional Specification", and its older MSDN pages mirrored at
 * gerhart01.github.io: SCONTROL, SIMP, SINTx, synthetic timer
 * configuration and count registers, HvPostMessage, HvSignalEvent, common
 * hypercall status codes, HV_REFERENCE_TSC_PAGE); Linux's
 * include/asm-generic/hyperv-tlfs.h and drivers/hv/hyperv_vmbus.h for the
 * bit positions and the monitor page layout.
 */
#ifndef VMM_SYNIC_TLFS_H
#define VMM_SYNIC_TLFS_H

/* ---- Synthetic MSRs ------------------------------------------------------ */

#define SYNIC_MSR_FIRST 0x40000000u
#define SYNIC_MSR_LAST 0x400000ffu

#define SYNIC_MSR_GUEST_OS_ID 0x40000000u    /* partition-wide */
#define SYNIC_MSR_HYPERCALL 0x40000001u      /* partition-wide */
#define SYNIC_MSR_VP_INDEX 0x40000002u       /* read-only */
#define SYNIC_MSR_TIME_REF_COUNT 0x40000020u /* read-only, partition-wide */
#define SYNIC_MSR_REFERENCE_TSC 0x40000021u  /* partition-wide */
#define SYNIC_MSR_SCONTROL 0x40000080u
#define SYNIC_MSR_SVERSION 0x40000081u /* read-only */
#define SYNIC_MSR_SIEFP 0x40000082u
#define SYNIC_MSR_SIMP 0x40000083u
#define SYNIC_MSR_EOM 0x40000084u /* write-only; reads 0 */
/* SINTn is SYNIC_MSR_SINT0 + n, n below SYNIC_SINTS. */
#define SYNIC_MSR_SINT0 0x40000090u
/* STIMERn_CONFIG is SYNIC_MSR_STIMER0_CONFIG + 2n, STIMERn_COUNT the next
 * one, n below SYNIC_TIMERS. */
#define SYNIC_MSR_STIMER0_CONFIG 0x400000b0u
#define SYNIC_MSR_STIMER0_COUNT 0x400000b1u

#define SYNIC_SINTS 16
#define SYNIC_TIMERS 4
#define SYNIC_VERSION 1

/* HYPERCALL: bit 0 enable, bit 1 locked (immutable until reset), bits
 * 63:12 the page's GPA. GUEST_OS_ID must be non-zero first. */
#define SYNIC_HYPERCALL_ENABLE 0x1ull
#define SYNIC_HYPERCALL_LOCKED 0x2ull
/* SCONTROL, SIMP, SIEFP, REFERENCE_TSC: bit 0 enable; the three pages'
 * GPA in bits 63:12. */
#define SYNIC_ENABLE 0x1ull
#define SYNIC_GPA_MASK 0xfffffffffffff000ull

/* SINTn: vector in bits 7:0 (16 to 255 when unmasked), masked, auto-EOI,
 * polling. The reset value is SYNIC_SINT_MASKED. */
#define SYNIC_SINT_VECTOR_MASK 0xffull
#define SYNIC_SINT_MASKED (1ull << 16)
#define SYNIC_SINT_AUTO_EOI (1ull << 17)
#define SYNIC_SINT_POLLING (1ull << 18)
#define SYNIC_FIRST_VALID_VECTOR 16

/* STIMERn_CONFIG. COUNT is in 100 ns reference time units: the absolute
 * expiration of a one-shot timer, the period of a periodic one. */
#define SYNIC_STIMER_ENABLE (1ull << 0)
#define SYNIC_STIMER_PERIODIC (1ull << 1)
#define SYNIC_STIMER_LAZY (1ull << 2)
#define SYNIC_STIMER_AUTO_ENABLE (1ull << 3)
#define SYNIC_STIMER_VECTOR_SHIFT 4 /* bits 11:4, direct mode */
#define SYNIC_STIMER_DIRECT_MODE (1ull << 12)
#define SYNIC_STIMER_SINT_SHIFT 16 /* bits 19:16 */

/* ---- Guest pages ---------------------------------------------------------- */

#define SYNIC_PAGE_SIZE 4096u

/* The SIM page: SINT s's message slot (HV_MESSAGE) at SIMP + 256 s:
 *   0  u32 message type (0: the slot is free)
 *   4  u8  payload size
 *   5  u8  flags (bit 0: message pending, more wait: write EOM)
 *   6  u8  reserved[2]
 *   8  u64 sender / port id
 *   16 u8  payload[240] */
#define SYNIC_MESSAGE_SIZE 256u
#define SYNIC_MESSAGE_PAYLOAD_OFFSET 16u
#define SYNIC_MESSAGE_FLAGS_OFFSET 5u
#define SYNIC_MESSAGE_PENDING 0x01u
#define SYNIC_PAYLOAD_MAX 240u
#define SYNIC_HVMSG_NONE 0x00000000u
#define SYNIC_HVMSG_TIMER_EXPIRED 0x80000010u
/* The HVMSG_TIMER_EXPIRED payload: u32 timer index, u32 reserved, u64
 * expiration time, u64 delivery time (reference time units). */
#define SYNIC_TIMER_PAYLOAD_SIZE 24u

/* The SIEF page: SINT s's 2048 event flags at SIEFP + 256 s, flag f in
 * byte f / 8, bit f % 8. */
#define SYNIC_EVENT_FLAGS 2048u
#define SYNIC_EVENT_FLAGS_BYTES 256u

/* The reference TSC page (HV_REFERENCE_TSC_PAGE): u32 sequence (0:
 * invalid, use the MSR), u32 reserved, u64 scale, s64 offset;
 * reference time = ((guest TSC * scale) >> 64) + offset. */
#define SYNIC_TSC_PAGE_SEQUENCE_OFFSET 0u
#define SYNIC_TSC_PAGE_SCALE_OFFSET 8u
#define SYNIC_TSC_PAGE_OFFSET_OFFSET 16u

/* The monitor page (HV_MONITOR_PAGE): u32 trigger state (group enable
 * bits), u32 reserved, then 4 trigger groups of {u32 pending, u32 armed}
 * at 8 + 8 g; next check times at 0x40, u16 latency[4][32] at 0x240,
 * parameters {u32 connection id, u16 flag, u16 reserved}[4][32] at 0x440.
 * Monitor id m is bit m % 32 of group m / 32's pending word. */
#define SYNIC_MONITOR_GROUPS 4
#define SYNIC_MONITOR_IDS 128
#define SYNIC_MONITOR_PENDING_OFFSET(group) (8u + 8u * (group))
/* The latency the guest asks for monitor id m, in 100 ns units (u16). */
#define SYNIC_MONITOR_LATENCY_OFFSET(id) (0x240u + 2u * (id))

/* ---- Hypercalls ------------------------------------------------------------ */

/* The input value (RCX): call code 15:0, fast 16, variable header size
 * 26:17, rep count 43:32, rep start 59:48; bits 31:27, 47:44 and 63:60
 * reserved. RAX: status 15:0, reps completed 43:32. */
#define SYNIC_HYPERCALL_CODE_MASK 0xffffull
#define SYNIC_HYPERCALL_FAST (1ull << 16)
#define SYNIC_HYPERCALL_VARHEAD_MASK (0x3ffull << 17)
#define SYNIC_HYPERCALL_REP_COUNT_MASK (0xfffull << 32)
#define SYNIC_HYPERCALL_REP_START_MASK (0xfffull << 48)
#define SYNIC_HYPERCALL_RESERVED_MASK ((0x1full << 27) | (0xfull << 44) | (0xfull << 60))

/* HvPostMessage: input page {u32 connection id, u32 reserved, u32 message
 * type (non-zero, bit 31 clear), u32 payload size (at most 240), payload},
 * 8-byte aligned and within one page. */
#define SYNIC_HVCALL_POST_MESSAGE 0x005cu
#define SYNIC_POST_MESSAGE_INPUT_SIZE 256u
/* HvSignalEvent, usually fast: RDX = connection id (bits 31:0) | flag
 * number (47:32); bits 63:48 reserved. The same 8 bytes in memory when
 * not fast. */
#define SYNIC_HVCALL_SIGNAL_EVENT 0x005du
/* HV_CONNECTION_ID: a 24-bit id. */
#define SYNIC_CONNECTION_ID_MAX 0xffffffu

#define SYNIC_HV_STATUS_SUCCESS 0x0000u
#define SYNIC_HV_STATUS_INVALID_HYPERCALL_CODE 0x0002u
#define SYNIC_HV_STATUS_INVALID_HYPERCALL_INPUT 0x0003u
#define SYNIC_HV_STATUS_INVALID_ALIGNMENT 0x0004u
#define SYNIC_HV_STATUS_INVALID_PARAMETER 0x0005u
#define SYNIC_HV_STATUS_ACCESS_DENIED 0x0006u
#define SYNIC_HV_STATUS_INVALID_PORT_ID 0x0011u
#define SYNIC_HV_STATUS_INVALID_CONNECTION_ID 0x0012u
#define SYNIC_HV_STATUS_INSUFFICIENT_BUFFERS 0x0013u

#endif
