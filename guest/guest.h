/*
 * The test-guest library, in the manner of the Linux KVM selftests: what a
 * freestanding guest program needs to talk to the VMM.
 *
 * A guest program defines guest_main(vp). Every VP enters _start (start.S)
 * in 64-bit mode at CPL 0 as the loader prepared it (loader/loader.h), loads
 * the IDT (VP 0 fills it first) and calls guest_main with its index. If
 * guest_main returns, the VP reports guest_done(); then VP 0 powers the VM
 * off and any other VP halts for good.
 *
 * Code at CPL 0 is emulated and slow on some hosts (about 1 us per
 * instruction): keep it short, and run long loops at CPL 3 (guest_run_user).
 * The port helpers, printing and guest calls work at CPL 3 too (the TSS
 * allows every port); cli, sti and hlt do not.
 */
#ifndef VMM_GUEST_H
#define VMM_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/devices/testdev_abi.h"
#include "guest/port_io.h"

#define GUEST_COM1 0x3f8
#define GUEST_PORT_DEBUG_EXIT 0xf4
#define GUEST_PORT_POWER 0x604
#define GUEST_POWER_SLP_EN 0x2000
#define GUEST_APIC_BASE 0xfee00000ul

/* Each guest program defines it; every VP runs it. */
void guest_main(uint32_t vp);

/* How many VPs the VM has, as the loader said (in guest_main: VP 0 sets it
 * before the others leave the IDT's wait). */
uint32_t guest_vp_count(void);

/* Interrupt flag and halting (CPL 0 only). guest_sti_hlt() enables
 * interrupts and halts in one sequence: an interrupt cannot slip in between
 * (STI's one-instruction shadow), so a wait loop that checks its condition
 * with interrupts off never sleeps through its wake-up. */
static inline void guest_cli(void)
{
    __asm__ volatile("cli" : : : "memory");
}

static inline void guest_sti(void)
{
    __asm__ volatile("sti" : : : "memory");
}

static inline void guest_hlt(void)
{
    __asm__ volatile("hlt" : : : "memory");
}

static inline void guest_sti_hlt(void)
{
    __asm__ volatile("sti; hlt" : : : "memory");
}

static inline void guest_pause(void)
{
    __asm__ volatile("pause" : : : "memory");
}

static inline uint64_t guest_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

/* Halts for good with interrupts off (at CPL 3, where hlt is not allowed,
 * spins instead). */
__attribute__((noreturn)) void guest_halt_forever(void);

/* Powers the VM off (the VMM exits 0), then halts for good. */
__attribute__((noreturn)) void guest_power_off(void);

/* Writes v to isa-debug-exit (the VMM exits with 2v+1), then halts. */
__attribute__((noreturn)) void guest_exit(uint8_t v);

/* A spinlock VPs share; zero-initialised is unlocked. Taken at CPL 0, it
 * also keeps interrupts off until released. */
typedef struct {
    volatile uint32_t locked;
    uint64_t rflags;
} guest_lock_t;

void guest_lock(guest_lock_t *lock);
void guest_unlock(guest_lock_t *lock);

/* Prints to COM1 under one lock, so a line printed by one call stays whole
 * among several VPs. Formats: %s %c %d %u %x %p %%, and %ld %lu %lx.
 * Printing from a handler is fine; faulting inside the printer deadlocks. */
void guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void guest_vprintf(const char *fmt, va_list ap);

/* Guest calls through the test device: args[0..n) then the kind. */
void guest_call(uint32_t kind, const uint32_t *args, size_t n);

/* guest_sync(n, ...): a sync point with its number and up to 7 more
 * arguments (more fail to compile: excess elements in the initialiser). */
#define GUEST_CALL(kind, ...)                                                                   \
    guest_call((kind), (const uint32_t[TESTDEV_MAX_ARGS]){__VA_ARGS__},                        \
               sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))
#define guest_sync(...) GUEST_CALL(TESTDEV_CALL_SYNC, __VA_ARGS__)

void guest_done(void);

/* On failure prints "assertion failed: <expr> at <file>:<line>" to COM1,
 * makes an assert call with the line, and halts for good. */
#define GUEST_ASSERT(cond)                                                                      \
    do {                                                                                        \
        if (!(cond))                                                                            \
            guest_assert_failed(#cond, __FILE__, __LINE__);                                     \
    } while (0)

__attribute__((noreturn)) void guest_assert_failed(const char *expr, const char *file, int line);

/* The registers an interrupt entry saved, lowest address first. A handler
 * may change them: the entry restores them and returns with iretq. */
struct guest_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code; /* error_code is 0 where the CPU pushes none */
    uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*guest_handler_t)(struct guest_frame *frame);

/* Sets vector's handler for every VP (NULL restores the default). The
 * default for an exception (0-31) and for any other vector prints the
 * vector, error code and RIP, then fails as an assertion does. A #UD
 * handler never sees the one that ends guest_run_user. */
void guest_set_handler(uint8_t vector, guest_handler_t fn);

/* The local APIC (xAPIC, MMIO). MSIs are dropped until it is enabled. */
/* Masks the legacy PICs, then SVR = 0x1ff: enabled, spurious vector 0xff. */
void guest_apic_enable(void);
void guest_apic_eoi(void);
uint32_t guest_apic_id(void);

/* Asks the test device for an MSI: fixed delivery to apic_id, vector. */
void guest_request_msi(uint32_t apic_id, uint8_t vector);

/*
 * Runs fn(arg) at CPL 3 on the stack ending at stack_top and returns when fn
 * returns. Call it at CPL 0, not nested. fn runs with interrupts enabled
 * (hosts that run CPL 3 natively force IF on there anyway): an interrupt
 * then needs a handler. The caller's RFLAGS come back on return.
 *
 * Entry: iretq to the user code segment. Return: fn returns into a
 * trampoline whose `ud2` raises #UD. The #UD entry knows that address and,
 * coming from CPL 3, it is on the TSS's RSP0, which guest_run_user pointed
 * at the caller's saved registers: it drops the CPU's frame and resumes the
 * caller. Neither `int n` nor `syscall` would do here: on the PVM host of
 * platform.md `int n` at CPL 3 raises #UD, and `syscall` reaches LSTAR
 * still at CPL 3. Exceptions and interrupts at CPL 3 use the stack below
 * the saved registers and return to fn with iretq.
 */
void guest_run_user(void (*fn)(void *arg), void *arg, void *stack_top);

#endif
