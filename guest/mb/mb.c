/* The multiboot test-kernel library. */
#include "guest/mb/mb.h"

#define S_LSR (MB_COM1 + 5)
#define S_LSR_THRE 0x20
#define S_TRAMPOLINE_GPA 0x20000u
#define S_APIC_SVR 0xf0
#define S_APIC_EOI 0xb0
#define S_APIC_ID 0x20
#define S_APIC_ICR_LO 0x300
#define S_APIC_ICR_HI 0x310

/* The kernel's GDT: null, flat 32-bit code and data, 16-bit code and data
 * (base 0, limit 64 KiB) for real mode's sake. */
static const uint64_t s_gdt[] = {
    0,
    0x00cf9a000000ffffull,
    0x00cf92000000ffffull,
    0x00009a000000ffffull,
    0x000092000000ffffull,
};

static uint64_t s_idt[256];
static mb_handler_t s_handlers[256];
static volatile uint32_t s_failures;

extern const uint32_t mb_isr_table[256];
extern const uint8_t mb_trampoline[], mb_trampoline_end[], mb_tramp_gdtr[], mb_tramp_target[];
extern void mb_ap_entry(void);
void mb_start(uint32_t magic, const mb_info_t *info) __attribute__((noreturn));
void mb_interrupt(uint32_t vector);
void mb_ap_main(void);

volatile uint32_t mb_ap_next;
uint8_t mb_ap_stacks[(MB_MAX_APS + 1) * 4096] __attribute__((aligned(4096)));
static volatile uint32_t s_aps_started;
static mb_ap_fn s_ap_fn;

/* ---- The C library bits ------------------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++)
        if (*a != *b || !*a)
            return (uint8_t)*a - (uint8_t)*b;
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, (size_t)-1);
}

/* 64-bit division, which gcc leaves to libgcc on i386: shift and subtract. */
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t q = 0, r = 0;
    for (int i = 63; i >= 0; i--) {
        r = r << 1 | (n >> i & 1);
        if (r >= d) {
            r -= d;
            q |= 1ull << i;
        }
    }
    if (rem)
        *rem = r;
    return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
    return __udivmoddi4(n, d, 0);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
    uint64_t r;
    __udivmoddi4(n, d, &r);
    return r;
}

/* ---- Output ------------------------------------------------------------ */

static void s_putc(char c)
{
    if (c == '\n')
        s_putc('\r');
    while (!(inb(S_LSR) & S_LSR_THRE))
        ;
    outb(MB_COM1, (uint8_t)c);
}

static void s_number(uint64_t v, unsigned base, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n)
        s_putc(pad);
    while (n--)
        s_putc(buf[n]);
}

static void s_vprintf(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            s_putc(*fmt);
            continue;
        }
        char pad = ' ';
        int width = 0, longs = 0;
        if (*++fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            longs++, fmt++;
        uint64_t v = 0;
        if (*fmt == 'd' || *fmt == 'u' || *fmt == 'x')
            v = longs > 1 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
        switch (*fmt) {
        case 'd':
            if ((longs > 1 && (int64_t)v < 0) || (longs < 2 && (int32_t)v < 0)) {
                s_putc('-');
                v = longs > 1 ? -v : (uint32_t) - (int32_t)v;
            }
            s_number(v, 10, width, pad);
            break;
        case 'u':
            s_number(v, 10, width, pad);
            break;
        case 'x':
            s_number(v, 16, width, pad);
            break;
        case 'p':
            s_putc('0'), s_putc('x');
            s_number((uintptr_t)va_arg(ap, void *), 16, 8, '0');
            break;
        case 'c':
            s_putc((char)va_arg(ap, int));
            break;
        case 's':
            for (const char *s = va_arg(ap, const char *); *s; s++)
                s_putc(*s);
            break;
        case '%':
            s_putc('%');
            break;
        default:
            return;
        }
    }
}

void mb_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vprintf(fmt, ap);
    va_end(ap);
}

bool mb_check(bool ok, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ok) {
        mb_printf("PASS: ");
    } else {
        s_failures++;
        mb_printf("FAIL: line %d: ", line);
    }
    s_vprintf(fmt, ap);
    va_end(ap);
    s_putc('\n');
    return ok;
}

uint32_t mb_failures(void)
{
    return s_failures;
}

void mb_exit(uint32_t code)
{
    outl(MB_PORT_DEBUG_EXIT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- fw_cfg ---------------------------------------------------------------- */

void mb_fw_cfg_read(uint16_t key, void *buf, uint32_t len)
{
    outw(MB_FW_CFG_SELECT, key);
    for (uint32_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = inb(MB_FW_CFG_DATA);
}

uint64_t mb_fw_cfg_u64(uint16_t key)
{
    uint64_t v = 0;
    mb_fw_cfg_read(key, &v, sizeof v);
    return v;
}

/* ---- Interrupts ---------------------------------------------------------- */

void mb_set_handler(uint8_t vector, mb_handler_t fn)
{
    s_handlers[vector] = fn;
}

void mb_interrupt(uint32_t vector)
{
    if (s_handlers[vector]) {
        s_handlers[vector](vector);
        return;
    }
    mb_check(false, __LINE__, "unexpected interrupt or exception, vector %u", vector);
    mb_exit(1);
}

void mb_apic_enable(void)
{
    mb_write32(MB_APIC_BASE + S_APIC_SVR, 0x1ff);
}

void mb_apic_eoi(void)
{
    mb_write32(MB_APIC_BASE + S_APIC_EOI, 0);
}

uint32_t mb_apic_id(void)
{
    return mb_read32(MB_APIC_BASE + S_APIC_ID) >> 24;
}

static void s_ioapic_write(uint32_t reg, uint32_t v)
{
    mb_write32(MB_IOAPIC_BASE, reg);
    mb_write32(MB_IOAPIC_BASE + 0x10, v);
}

void mb_ioapic_route(uint32_t pin, uint8_t vector, bool level)
{
    s_ioapic_write(0x11 + 2 * pin, 0); /* destination APIC 0 */
    s_ioapic_write(0x10 + 2 * pin, vector | (level ? 1u << 15 : 0));
}

void mb_ioapic_mask(uint32_t pin)
{
    s_ioapic_write(0x10 + 2 * pin, 1u << 16);
}

/* ---- Time and SMP ------------------------------------------------------- */

bool mb_pm_elapsed(uint32_t start, uint32_t ms)
{
    return (uint32_t)(mb_pm_timer() - start) >= (uint64_t)ms * (MB_PM_TIMER_HZ / 1000);
}

void mb_ap_main(void)
{
    /* fn first: once counted, the BSP may look at what it did. */
    if (s_ap_fn)
        s_ap_fn(mb_apic_id());
    __atomic_fetch_add(&s_aps_started, 1, __ATOMIC_SEQ_CST);
}

uint32_t mb_start_aps(mb_ap_fn fn, uint32_t expected, uint32_t timeout_ms)
{
    s_ap_fn = fn;
    uint8_t *page = (uint8_t *)S_TRAMPOLINE_GPA;
    memcpy(page, mb_trampoline, (size_t)(mb_trampoline_end - mb_trampoline));
    uint8_t *gdtr = page + (mb_tramp_gdtr - mb_trampoline);
    uint16_t limit = sizeof s_gdt - 1;
    uint32_t base = (uint32_t)(uintptr_t)s_gdt, entry = (uint32_t)(uintptr_t)mb_ap_entry;
    uint16_t sel = MB_SEL_CODE;
    memcpy(gdtr, &limit, 2);
    memcpy(gdtr + 2, &base, 4);
    uint8_t *target = page + (mb_tramp_target - mb_trampoline);
    memcpy(target, &entry, 4);
    memcpy(target + 4, &sel, 2);
    /* INIT, then SIPI twice, to all but self. */
    mb_write32(MB_APIC_BASE + S_APIC_ICR_HI, 0);
    mb_write32(MB_APIC_BASE + S_APIC_ICR_LO, 0xc4500);
    uint32_t vector = S_TRAMPOLINE_GPA >> 12;
    mb_write32(MB_APIC_BASE + S_APIC_ICR_LO, 0xc4600 | vector);
    mb_write32(MB_APIC_BASE + S_APIC_ICR_LO, 0xc4600 | vector);
    uint32_t start = mb_pm_timer();
    while (s_aps_started < expected && !mb_pm_elapsed(start, timeout_ms))
        __asm__ volatile("pause");
    return s_aps_started;
}

/* ---- Start ------------------------------------------------------------ */

static void s_load_tables(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint32_t base;
    } gdtr = {sizeof s_gdt - 1, (uint32_t)(uintptr_t)s_gdt},
      idtr = {sizeof s_idt - 1, (uint32_t)(uintptr_t)s_idt};
    __asm__ volatile("lgdt %0\n\t"
                     "ljmp %1, $1f\n"
                     "1:\n\t"
                     "mov %2, %%ax\n\t"
                     "mov %%ax, %%ds\n\t"
                     "mov %%ax, %%es\n\t"
                     "mov %%ax, %%ss\n\t"
                     "mov %%ax, %%fs\n\t"
                     "mov %%ax, %%gs"
                     :
                     : "m"(gdtr), "i"(MB_SEL_CODE), "i"(MB_SEL_DATA)
                     : "eax", "memory");
    for (int v = 0; v < 256; v++) {
        uint32_t at = mb_isr_table[v];
        /* A 32-bit interrupt gate, present, DPL 0. */
        s_idt[v] = (at & 0xffff) | (uint64_t)MB_SEL_CODE << 16 | (uint64_t)0x8e00 << 32 |
                   (uint64_t)(at >> 16) << 48;
    }
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

void mb_start(uint32_t magic, const mb_info_t *info)
{
    s_load_tables();
    mb_main(magic, info);
    mb_printf("%s: %u failures\n", mb_failures() ? "FAILED" : "DONE", mb_failures());
    mb_exit(mb_failures() ? 1 : 0);
}
