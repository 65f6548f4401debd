/* VP 0 says it is about to spin, then spins at CPL 3 until stopped. */
#include "guest/guest.h"

static uint8_t s_user_stack[4096] __attribute__((aligned(16)));

static void s_spin(void *arg)
{
    (void)arg;
    for (;;)
        __asm__ volatile("" ::: "memory");
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    guest_sync(1);
    guest_run_user(s_spin, NULL, s_user_stack + sizeof s_user_stack);
}
