/*
 * QEMU's hyperv-testdev as kvm-unit-tests' SynIC tests drive it, from a
 * 32-bit kernel with the Hyper-V interface: a SINT route asserted alone, a
 * message connection echoing what the guest posts by HvPostMessage, an
 * event connection setting the flag of its id when the guest signals it by
 * HvSignalEvent, and both gone once destroyed.
 */
#include "guest/mb/mb.h"

#define HV_GUEST_OS_ID 0x40000000u
#define HV_HYPERCALL 0x40000001u
#define HV_SCONTROL 0x40000080u
#define HV_SIEFP 0x40000082u
#define HV_SIMP 0x40000083u
#define HV_EOM 0x40000084u
#define HV_SINT0 0x40000090u
#define HV_POST_MESSAGE 0x005c
#define HV_SIGNAL_EVENT 0x005d
#define HV_FAST (1u << 16)
#define HV_STATUS_INVALID_CONNECTION_ID 0x12

#define TESTDEV 0x3000
#define SINT 2
#define VECTOR 0x60
#define MSG_CONN 5
#define EVT_CONN 9

enum { ROUTE_CREATE = 1, ROUTE_DESTROY, SET_SINT, MSG_CREATE, MSG_DESTROY, EVT_CREATE,
       EVT_DESTROY };

static uint8_t s_hypercall_page[4096] __attribute__((aligned(4096)));
static volatile uint8_t s_simp[4096] __attribute__((aligned(4096)));
static volatile uint8_t s_siefp[4096] __attribute__((aligned(4096)));
static uint8_t s_input[256] __attribute__((aligned(8)));
static volatile uint32_t s_sints;
static void *s_hypercall_entry = s_hypercall_page;

static void s_ctl(uint32_t ctl, uint32_t vp, uint32_t sint, uint32_t conn)
{
    outl(TESTDEV, conn << 24 | ctl << 16 | vp << 8 | sint);
}

static void s_on_sint(uint32_t vector)
{
    (void)vector;
    s_sints++;
    mb_apic_eoi();
}

/* A hypercall in the 32-bit convention: control in EDX:EAX, input in
 * EBX:ECX, output in EDI:ESI; the result in EDX:EAX. */
static uint64_t s_hypercall(uint64_t control, uint64_t input, uint64_t output)
{
    uint32_t eax = (uint32_t)control, edx = (uint32_t)(control >> 32);
    uint32_t ebx = (uint32_t)(input >> 32), ecx = (uint32_t)input;
    uint32_t edi = (uint32_t)(output >> 32), esi = (uint32_t)output;
    __asm__ volatile("call *%[entry]"
                     : "+a"(eax), "+d"(edx), "+b"(ebx), "+c"(ecx), "+D"(edi), "+S"(esi)
                     : [entry] "m"(s_hypercall_entry)
                     : "memory");
    return (uint64_t)edx << 32 | eax;
}

/* Waits for the SINT interrupts to reach n, halted with interrupts on (an
 * emulated CPL 0 loop takes them late); the host's timeout bounds it. */
static void s_wait_sints(uint32_t n)
{
    while (s_sints < n)
        mb_sti_hlt_cli();
}

static uint32_t s_post(uint32_t conn, uint32_t type, const char *text)
{
    uint32_t len = (uint32_t)strlen(text);
    memset(s_input, 0, sizeof s_input);
    memcpy(s_input + 0, &conn, 4);
    memcpy(s_input + 8, &type, 4);
    memcpy(s_input + 12, &len, 4);
    memcpy(s_input + 16, text, len);
    return (uint32_t)s_hypercall(HV_POST_MESSAGE, (uint32_t)(uintptr_t)s_input, 0) & 0xffff;
}

static uint32_t s_signal(uint32_t conn)
{
    return (uint32_t)s_hypercall(HV_SIGNAL_EVENT | HV_FAST, conn, 0) & 0xffff;
}

static void s_enable(void)
{
    mb_wrmsr(HV_GUEST_OS_ID, 0x8100000000000000ull);
    mb_wrmsr(HV_HYPERCALL, (uint32_t)(uintptr_t)s_hypercall_page | 1);
    mb_wrmsr(HV_SIMP, (uint32_t)(uintptr_t)s_simp | 1);
    mb_wrmsr(HV_SIEFP, (uint32_t)(uintptr_t)s_siefp | 1);
    mb_wrmsr(HV_SCONTROL, 1);
    mb_wrmsr(HV_SINT0 + SINT, VECTOR);
    mb_apic_enable();
    mb_set_handler(VECTOR, s_on_sint);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    uint32_t r[4];
    mb_cpuid(0x40000000, 0, r);
    MB_CHECK(r[1] == 0x7263694d, "the Hyper-V interface is there");
    s_enable();

    s_ctl(ROUTE_CREATE, 0, SINT, 0);
    s_ctl(SET_SINT, 0, SINT, 0);
    s_wait_sints(1);
    MB_CHECK(s_sints == 1, "SET_SINT interrupts through the SINT once (%u)", s_sints);
    s_ctl(ROUTE_DESTROY, 0, SINT, 0);

    s_ctl(MSG_CREATE, 0, SINT, MSG_CONN);
    uint32_t status = s_post(MSG_CONN, 0x1234, "hello synic");
    MB_CHECK(status == 0, "HvPostMessage to connection %u: status 0x%x", MSG_CONN, status);
    s_wait_sints(2);
    MB_CHECK(s_sints == 2, "the echo interrupts (%u)", s_sints);
    volatile uint8_t *slot = s_simp + 256 * SINT;
    uint32_t type = slot[0] | slot[1] << 8 | slot[2] << 16 | (uint32_t)slot[3] << 24;
    MB_CHECK(type == 0x1234, "the echo has the posted type (0x%x)", type);
    MB_CHECK(slot[4] == 11 && !memcmp((const void *)(slot + 16), "hello synic", 11),
             "and the posted payload (%u bytes)", slot[4]);
    slot[0] = slot[1] = slot[2] = slot[3] = 0;
    mb_wrmsr(HV_EOM, 0);

    s_ctl(EVT_CREATE, 0, SINT, EVT_CONN);
    status = s_signal(EVT_CONN);
    MB_CHECK(status == 0, "HvSignalEvent to connection %u: status 0x%x", EVT_CONN, status);
    s_wait_sints(3);
    MB_CHECK(s_sints == 3, "the event interrupts (%u)", s_sints);
    volatile uint8_t *flags = s_siefp + 256 * SINT;
    MB_CHECK(flags[EVT_CONN / 8] & (1u << (EVT_CONN % 8)), "event flag %u is set", EVT_CONN);

    s_ctl(MSG_DESTROY, 0, 0, MSG_CONN);
    s_ctl(EVT_DESTROY, 0, 0, EVT_CONN);
    status = s_post(MSG_CONN, 0x1234, "gone");
    MB_CHECK(status == HV_STATUS_INVALID_CONNECTION_ID, "a post after MSG_CONN_DESTROY: 0x%x",
             status);
    status = s_signal(EVT_CONN);
    MB_CHECK(status == HV_STATUS_INVALID_CONNECTION_ID, "a signal after EVT_CONN_DESTROY: 0x%x",
             status);
    mb_printf("sints=%u\n", s_sints);
}
