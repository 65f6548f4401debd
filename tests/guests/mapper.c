/*
 * Memory mapped beside guest RAM (partition.proto MapMemory): VP 0 says
 * where its page and go flag lie, waits until the test has mapped the page
 * twice (writable at MAPPER_ALIAS, read-only at MAPPER_ALIAS + 4 KiB) and a
 * page of a memory object of its own (at MAPPER_ALIAS + 8 KiB), then
 * reports what it read and wrote through each.
 */
#include "guest/guest.h"

#define MAPPER_ALIAS 0x80000000ull
#define PATTERN 0x1122334455667788ull

static volatile uint64_t s_page[512] __attribute__((aligned(4096)));
static volatile uint32_t s_go;

void guest_main(uint32_t vp)
{
    if (vp)
        guest_halt_forever();
    s_page[0] = PATTERN;
    guest_sync(1, (uint32_t)(uintptr_t)s_page, (uint32_t)(uintptr_t)&s_go);
    while (!s_go)
        guest_pause();
    volatile uint64_t *rw = (volatile uint64_t *)MAPPER_ALIAS;
    volatile uint64_t *ro = (volatile uint64_t *)(MAPPER_ALIAS + 0x1000);
    volatile uint64_t *own = (volatile uint64_t *)(MAPPER_ALIAS + 0x2000);
    uint32_t read_rw = rw[0] == PATTERN, read_ro = ro[0] == PATTERN;
    rw[1] = 0xabcd;                 /* lands in s_page */
    ro[2] = 0x5555;                 /* a read-only slot: dropped */
    own[0] = 0x77;                  /* the object's own page */
    guest_sync(2, read_rw, read_ro, s_page[1] == 0xabcd, s_page[2] == 0, own[0] == 0x77);
    guest_halt_forever();
}
