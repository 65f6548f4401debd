/*
 * For gdb (tests/gdb_test.sh): VP 0 adds 1 to 4 to gdb_total, one call of
 * gdb_target_add each, then exits through isa-debug-exit with the total
 * (10: status 21).
 */
#include "guest/guest.h"

volatile uint32_t gdb_total;

__attribute__((noinline)) void gdb_target_add(uint32_t n)
{
    gdb_total += n;
}

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    for (uint32_t i = 1; i <= 4; i++)
        gdb_target_add(i);
    guest_printf("gdb: total %u\n", gdb_total);
    guest_exit((uint8_t)gdb_total);
}
