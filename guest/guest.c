/* The test-guest library: printing, guest calls, the IDT, the local APIC. */
#include "guest/guest.h"

#include <stdbool.h>

#include "loader/layout.h"

#define COM1_LSR (GUEST_COM1 + 5)
#define LSR_THRE 0x20
#define RFLAGS_IF 0x200
#define APIC_ID 0x20
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define IDT_VECTORS 256
#define GATE_INTERRUPT 0xe

/* Called from start.S. */
__attribute__((noreturn)) void guest_start(uint32_t vp, uint32_t n_vps);
void guest_interrupt(struct guest_frame *frame);

/* start.S: each vector's entry, and the #UD entry, which also ends
 * guest_run_user. */
extern const uint64_t guest_interrupt_entries[];
extern const char guest_ud_entry[];
#define VECTOR_UD 6

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t attributes; /* present, DPL, type */
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};

static struct idt_gate s_idt[IDT_VECTORS];
static volatile uint32_t s_idt_ready;
static guest_handler_t volatile s_handlers[IDT_VECTORS];
static guest_lock_t s_print_lock;
static guest_lock_t s_call_lock;

/* gcc may emit calls to these four even when freestanding. The first three
 * are single string instructions, so the compiler cannot turn their bodies
 * into calls to themselves. */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    if ((uintptr_t)dst <= (uintptr_t)src || (uintptr_t)dst >= (uintptr_t)src + n)
        return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards. */
    void *d = (char *)dst + n - 1;
    const void *s = (const char *)src + n - 1;
    __asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i])
            return x[i] - y[i];
    }
    return 0;
}

/* CS's RPL. (At CPL 3 a host that runs it natively may show its own user
 * selector, 0x33 on the PVM host, but with RPL 3 all the same.) */
static unsigned s_cpl(void)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

void guest_halt_forever(void)
{
    if (s_cpl() != 0) {
        for (;;)
            guest_pause();
    }
    for (;;)
        __asm__ volatile("cli; hlt" : : : "memory");
}

void guest_power_off(void)
{
    outw(GUEST_PORT_POWER, GUEST_POWER_SLP_EN);
    guest_halt_forever();
}

void guest_exit(uint8_t v)
{
    outb(GUEST_PORT_DEBUG_EXIT, v);
    guest_halt_forever();
}

void guest_lock(guest_lock_t *lock)
{
    uint64_t rflags = 0;
    if (s_cpl() == 0)
        __asm__ volatile("pushfq; pop %0; cli" : "=r"(rflags) : : "memory");
    while (__atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE))
        guest_pause();
    lock->rflags = rflags;
}

void guest_unlock(guest_lock_t *lock)
{
    uint64_t rflags = lock->rflags;
    __atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
    if (rflags & RFLAGS_IF)
        guest_sti();
}

static void s_putc(char c)
{
    while (!(inb(COM1_LSR) & LSR_THRE))
        guest_pause();
    outb(GUEST_COM1, (uint8_t)c);
}

static void s_puts(const char *s)
{
    while (*s)
        s_putc(*s++);
}

static void s_put_unsigned(uint64_t v, unsigned base)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n > 0)
        s_putc(digits[--n]);
}

void guest_vprintf(const char *fmt, va_list ap)
{
    guest_lock(&s_print_lock);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            s_putc(*fmt);
            continue;
        }
        bool is_long = fmt[1] == 'l';
        fmt += is_long ? 2 : 1;
        switch (*fmt) {
        case 'd': {
            int64_t v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0)
                s_putc('-');
            s_put_unsigned(v < 0 ? -(uint64_t)v : (uint64_t)v, 10);
            break;
        }
        case 'u':
            s_put_unsigned(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
            break;
        case 'x':
            s_put_unsigned(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
            break;
        case 'p':
            s_puts("0x");
            s_put_unsigned((uintptr_t)va_arg(ap, void *), 16);
            break;
        case 'c':
            s_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            s_puts(s ? s : "(null)");
            break;
        }
        case '%':
            s_putc('%');
            break;
        case '\0': /* a lone '%' ends the format */
            fmt--;
            break;
        default:
            s_putc('%');
            s_putc(*fmt);
            break;
        }
    }
    guest_unlock(&s_print_lock);
}

void guest_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    guest_vprintf(fmt, ap);
    va_end(ap);
}

void guest_call(uint32_t kind, const uint32_t *args, size_t n)
{
    /* The device collects arguments until the call: one VP at a time. */
    guest_lock(&s_call_lock);
    for (size_t i = 0; i < n && i < TESTDEV_MAX_ARGS; i++)
        outl(TESTDEV_PORT_ARG, args[i]);
    outl(TESTDEV_PORT_CALL, kind);
    guest_unlock(&s_call_lock);
}

void guest_done(void)
{
    guest_call(TESTDEV_CALL_DONE, NULL, 0);
}

void guest_assert_failed(const char *expr, const char *file, int line)
{
    guest_printf("assertion failed: %s at %s:%d\n", expr, file, line);
    GUEST_CALL(TESTDEV_CALL_ASSERT, (uint32_t)line);
    guest_halt_forever();
}

static void s_set_gate(uint8_t vector, const void *entry)
{
    uintptr_t offset = (uintptr_t)entry;
    s_idt[vector] = (struct idt_gate){
        .offset_low = (uint16_t)offset,
        .selector = LOADER_SEL_KERNEL_CODE,
        .attributes = 0x80 | GATE_INTERRUPT, /* present, DPL 0 */
        .offset_mid = (uint16_t)(offset >> 16),
        .offset_high = (uint32_t)(offset >> 32),
    };
}

/* VP 0 fills the IDT; the others wait for it. Every VP loads it. */
static void s_load_idt(uint32_t vp)
{
    if (vp == 0) {
        for (unsigned v = 0; v < IDT_VECTORS; v++)
            s_set_gate((uint8_t)v, (const void *)guest_interrupt_entries[v]);
        s_set_gate(VECTOR_UD, guest_ud_entry);
        __atomic_store_n(&s_idt_ready, 1, __ATOMIC_RELEASE);
    }
    while (!__atomic_load_n(&s_idt_ready, __ATOMIC_ACQUIRE))
        guest_pause();
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) idtr = {sizeof(s_idt) - 1, (uintptr_t)s_idt};
    __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

static uint32_t s_vp_count;

uint32_t guest_vp_count(void)
{
    return s_vp_count;
}

void guest_start(uint32_t vp, uint32_t n_vps)
{
    if (vp == 0)
        s_vp_count = n_vps;
    s_load_idt(vp);
    guest_main(vp);
    guest_done();
    if (vp == 0)
        guest_power_off();
    guest_halt_forever();
}

void guest_set_handler(uint8_t vector, guest_handler_t fn)
{
    s_handlers[vector] = fn;
}

void guest_interrupt(struct guest_frame *frame)
{
    guest_handler_t fn = s_handlers[frame->vector];
    if (fn) {
        fn(frame);
        return;
    }
    guest_printf("unexpected %s %lu, error code 0x%lx, at rip 0x%lx\n",
                 frame->vector < 32 ? "exception" : "interrupt", frame->vector,
                 frame->error_code, frame->rip);
    GUEST_CALL(TESTDEV_CALL_ASSERT, __LINE__, (uint32_t)frame->vector);
    guest_halt_forever();
}

static volatile uint32_t *s_apic(uint32_t reg)
{
    return (volatile uint32_t *)(GUEST_APIC_BASE + reg);
}

void guest_apic_enable(void)
{
    /* The legacy PICs are masked, as an OS that uses the APIC does: ISA
     * lines reach the PIC too, and one nobody programmed would pass them
     * to LINT0 as vectors from 0, the exceptions'. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    *s_apic(APIC_SVR) = 0x1ff;
}

void guest_apic_eoi(void)
{
    *s_apic(APIC_EOI) = 0;
}

uint32_t guest_apic_id(void)
{
    return *s_apic(APIC_ID) >> 24;
}

void guest_request_msi(uint32_t apic_id, uint8_t vector)
{
    outl(TESTDEV_PORT_MSI, apic_id << 8 | vector);
}
