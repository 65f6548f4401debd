/*
 * The multiboot test-kernel library: what a freestanding 32-bit kernel
 * needs to test a PC platform as kvm-unit-tests does, and to run under
 * this VMM and under QEMU alike (`-kernel`).
 *
 * A kernel defines mb_main(). _start (start.S) takes a stack, mb_start()
 * loads the kernel's own GDT (flat 32-bit code 0x08 and data 0x10, 16-bit
 * code 0x18 and data 0x20 for a trip to real mode) and IDT, then calls
 * mb_main with what the loader passed. Checks print "PASS: ..." or
 * "FAIL: ..." lines to COM1; when mb_main returns the kernel writes the
 * failure count (0 or 1) to QEMU's isa-debug-exit port, so that the VMM
 * (and QEMU) exits with status 1 after a clean run and 3 after a failure.
 *
 * Everything runs at CPL 0, emulated and slow on some hosts (about 1 us
 * per instruction): keep kernels short.
 */
#ifndef VMM_GUEST_MB_H
#define VMM_GUEST_MB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/port_io.h"

#define MB_LOADER_MAGIC 0x2badb002u
#define MB_COM1 0x3f8
#define MB_PORT_DEBUG_EXIT 0xf4
#define MB_FW_CFG_SELECT 0x510
#define MB_FW_CFG_DATA 0x511
#define MB_APIC_BASE 0xfee00000u
#define MB_IOAPIC_BASE 0xfec00000u

#define MB_SEL_CODE 0x08
#define MB_SEL_DATA 0x10
#define MB_SEL_CODE16 0x18
#define MB_SEL_DATA16 0x20

/* The information structure's flags. */
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MMAP (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

typedef struct __attribute__((packed)) {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
    uint32_t boot_loader_name, apm_table;
} mb_info_t;

typedef struct __attribute__((packed)) {
    uint32_t size; /* of the rest of the entry */
    uint64_t addr, len;
    uint32_t type;
} mb_mmap_t;

typedef struct {
    uint32_t start, end, string, reserved;
} mb_module_t;

/* Each kernel defines it. */
void mb_main(uint32_t magic, const mb_info_t *info);

/* ---- The CPU ------------------------------------------------------------ */

static inline uint64_t mb_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline uint64_t mb_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void mb_wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline void mb_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

/* A pointer to physical address addr (paging is off), hidden from gcc's
 * bounds checks, which take addresses near 0 for null pointer bugs. */
static inline void *mb_phys(uintptr_t addr)
{
    void *p = (void *)addr;
    __asm__("" : "+r"(p));
    return p;
}

static inline uint32_t mb_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}

static inline void mb_write32(uintptr_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

static inline void mb_sti(void)
{
    __asm__ volatile("sti" : : : "memory");
}

static inline void mb_cli(void)
{
    __asm__ volatile("cli" : : : "memory");
}

/* Waits for an interrupt with interrupts on, then turns them off. */
static inline void mb_sti_hlt_cli(void)
{
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

/* ---- Interrupts ---------------------------------------------------------- */

typedef void (*mb_handler_t)(uint32_t vector);

/* The handler of a vector (NULL: an unexpected interrupt is a failure). */
void mb_set_handler(uint8_t vector, mb_handler_t fn);

/* The local APIC software-enabled (spurious vector 0xff), its EOI, its ID. */
void mb_apic_enable(void);
void mb_apic_eoi(void);
uint32_t mb_apic_id(void);

/* IO-APIC input pin to vector on APIC 0, fixed delivery, unmasked. */
void mb_ioapic_route(uint32_t pin, uint8_t vector, bool level);
void mb_ioapic_mask(uint32_t pin);

/* ---- Output and checks ------------------------------------------------ */

/* To COM1: %c %s %d %u %x %p, with l or ll, a width and 0 padding. */
void mb_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "PASS: what" or "FAIL: line N: what" and counts a failure. */
bool mb_check(bool ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define MB_CHECK(cond, ...) mb_check((cond), __LINE__, __VA_ARGS__)

uint32_t mb_failures(void);

/* Writes code to isa-debug-exit: the VMM exits with (code << 1) | 1. */
void mb_exit(uint32_t code) __attribute__((noreturn));

/* ---- QEMU's fw_cfg (I/O port interface) -------------------------------- */

void mb_fw_cfg_read(uint16_t key, void *buf, uint32_t len);
uint64_t mb_fw_cfg_u64(uint16_t key); /* the item's first 8 bytes, LE */

/* ---- SMP ------------------------------------------------------------- */

/* Starts every other VP by INIT/SIPI through a real-mode trampoline at
 * 0x20000; each runs fn(its APIC ID) on a stack of its own (up to
 * MB_MAX_APS of them) and halts. Returns how many had started once
 * `expected` had, or timeout_ms had passed. */
#define MB_MAX_APS 15
typedef void (*mb_ap_fn)(uint32_t apic_id);
uint32_t mb_start_aps(mb_ap_fn fn, uint32_t expected, uint32_t timeout_ms);

/* ---- Time ------------------------------------------------------------- */

#define MB_PM_TIMER 0x608
#define MB_PM_TIMER_HZ 3579545u

/* The ACPI PM timer's count (32 bits, at MB_PM_TIMER_HZ). */
static inline uint32_t mb_pm_timer(void)
{
    return inl(MB_PM_TIMER);
}

/* Whether ms have passed since the PM timer read start. */
bool mb_pm_elapsed(uint32_t start, uint32_t ms);

/* ---- C library bits the compiler may call ---------------------------- */

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
