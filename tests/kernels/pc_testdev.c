/*
 * QEMU's pc-testdev, port by port as kvm-unit-tests uses it: the 32-bit
 * latch at 0xe0 and its byte twin at 0xe8, the flush-page port, the 64 KiB
 * MMIO window, and its IRQ lines reaching IO-APIC handlers, edge- and
 * level-triggered, below 16 and above.
 */
#include "guest/mb/mb.h"

#define WINDOW 0xff000000u
#define VECTOR 0x50

static volatile uint32_t s_hits, s_level_pin, s_held;

static void s_on_edge(uint32_t vector)
{
    (void)vector;
    s_hits++;
    mb_apic_eoi();
}

/* A level-triggered line interrupts until the source lowers it; here
 * before the EOI. Some KVMs (platform.md's) keep the vector pending in
 * the local APIC's IRR while it is in service, which brings it once more
 * after the EOI whatever the line: s_held notes it. */
static void s_on_level(uint32_t vector)
{
    (void)vector;
    if (s_hits++ == 0)
        s_held = mb_read32(MB_APIC_BASE + 0x200 + 0x10 * (VECTOR / 32)) >> (VECTOR % 32) & 1;
    outb(0x2000 + s_level_pin, 0);
    mb_apic_eoi();
}

/* Waits (bounded) for the handler to have run `hits` times. */
static void s_wait_hits(uint32_t hits)
{
    for (uint32_t i = 0; i < 200000 && s_hits < hits; i++) {
        mb_sti();
        __asm__ volatile("nop; nop");
        mb_cli();
    }
}

static void s_latch(void)
{
    outl(0xe0, 0x12345678);
    MB_CHECK(inl(0xe0) == 0x12345678, "latch 0xe0 reads back 0x%x", inl(0xe0));
    MB_CHECK(inb(0xe1) == 0x56, "a byte at 0xe1 is bits 8..15: 0x%x", inb(0xe1));
    MB_CHECK(inw(0xe2) == 0x1234, "a word at 0xe2 is bits 16..31: 0x%x", inw(0xe2));
    outb(0xe3, 0xab);
    MB_CHECK(inl(0xe0) == 0xab345678, "a byte written at 0xe3: 0x%x", inl(0xe0));
    outw(0xe0, 0xbeef);
    MB_CHECK(inl(0xe0) == 0xab34beef, "a word written at 0xe0: 0x%x", inl(0xe0));
    outl(0xe8, 0xa1b2c3d4);
    MB_CHECK(inl(0xe8) == 0xa1b2c3d4, "latch 0xe8 reads back 0x%x", inl(0xe8));
    MB_CHECK(inb(0xea) == 0xb2, "a byte at 0xea: 0x%x", inb(0xea));
    MB_CHECK(inl(0xe0) == 0xa1b2c3d4, "0xe0 and 0xe8 share the latch: 0x%x", inl(0xe0));
}

static void s_flush(void)
{
    static uint8_t page[4096] __attribute__((aligned(4096)));
    page[0] = 0x5a;
    page[4095] = 0xa5;
    outl(0xe4, (uint32_t)(uintptr_t)page);
    MB_CHECK(page[0] == 0x5a && page[4095] == 0xa5, "a page keeps its bytes across a flush");
}

static void s_window(void)
{
    mb_write32(WINDOW, 0xdeadbeef);
    MB_CHECK(mb_read32(WINDOW) == 0xdeadbeef, "window dword: 0x%x", mb_read32(WINDOW));
    MB_CHECK(*(volatile uint8_t *)(WINDOW + 1) == 0xbe, "window byte at 1");
    MB_CHECK(*(volatile uint16_t *)(WINDOW + 2) == 0xdead, "window word at 2");
    *(volatile uint8_t *)(WINDOW + 3) = 0x11;
    MB_CHECK(mb_read32(WINDOW) == 0x11adbeef, "window byte written at 3: 0x%x",
             mb_read32(WINDOW));
    mb_write32(WINDOW + 0xfffc, 0xcafef00d);
    MB_CHECK(mb_read32(WINDOW + 0xfffc) == 0xcafef00d, "the window's last dword");
    MB_CHECK(*(volatile uint16_t *)(WINDOW + 0xfffe) == 0xcafe, "the window's last word");
}

static void s_edge(uint32_t pin)
{
    mb_set_handler(VECTOR, s_on_edge);
    mb_ioapic_route(pin, VECTOR, false);
    s_hits = 0;
    /* As kvm-unit-tests expects: taken by the instruction after the write
     * that raised the line, as with QEMU. */
    mb_sti();
    outb(0x2000 + pin, 1);
    __asm__ volatile("nop");
    uint32_t at_once = s_hits;
    mb_cli();
    s_wait_hits(1);
    outb(0x2000 + pin, 0);
    MB_CHECK(at_once == 1 && s_hits == 1,
             "IRQ line %u raised by pc-testdev reaches its IO-APIC handler at once (%u, %u)",
             pin, at_once, s_hits);
    mb_ioapic_mask(pin);
}

static void s_level(uint32_t pin)
{
    mb_set_handler(VECTOR, s_on_level);
    s_level_pin = pin;
    mb_ioapic_route(pin, VECTOR, true);
    s_hits = 0;
    outb(0x2000 + pin, 1);
    s_wait_hits(1);
    s_wait_hits(2); /* lowered by the handler: no second interrupt */
    MB_CHECK(s_hits == 1 + s_held,
             "level-triggered line %u interrupts once per raise (%u, %u held in IRR by KVM)", pin,
             s_hits, s_held);
    mb_ioapic_mask(pin);
}

void mb_main(uint32_t magic, const mb_info_t *info)
{
    (void)magic, (void)info;
    s_latch();
    s_flush();
    s_window();
    outb(0x21, 0xff); /* the PICs masked: only the IO-APIC delivers */
    outb(0xa1, 0xff);
    mb_apic_enable();
    s_edge(5);
    s_edge(19);
    s_level(11);
    s_level(23);
}
