/* dev_serial: its console, the 16550A registers, its interrupt line, its
 * state. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "actors/devices/serial.h"
#include "actors/devices/testing/fake_env.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
       LSR = 5, MSR = 6, SCR = 7 };

static uint32_t s_base = 0x3f8;

static fake_env_t *s_new(const dev_serial_config_t *cfg)
{
    fake_env_t *f = fake_env_new(0);
    cr_assert_not_null(f);
    f->dev = dev_serial_new(cfg, &f->env);
    cr_assert_not_null(f->dev);
    s_base = cfg && cfg->base ? cfg->base : 0x3f8;
    return f;
}

static uint8_t s_in(fake_env_t *f, unsigned reg)
{
    uint64_t value;
    cr_assert_eq(fake_env_read(f, false, s_base + reg, 1, &value), 0, "read of register %u", reg);
    return (uint8_t)value;
}

static void s_out(fake_env_t *f, unsigned reg, uint8_t value)
{
    cr_assert_eq(fake_env_write(f, false, s_base + reg, 1, value), 0, "write of register %u",
                 reg);
}

static long long s_count(fake_env_t *f, const char *name)
{
    return fake_env_inspect(f, name);
}

static void s_input(fake_env_t *f, const char *bytes)
{
    f->dev->ops->console_input(f->dev, (const uint8_t *)bytes, strlen(bytes));
}

/* ---- Its console: output ---------------------------------------------------- */

Test(output, bytes_reach_the_console_in_order)
{
    fake_env_t *vm = s_new(NULL);
    const char *line = "hello, world\n";
    for (const char *p = line; *p; p++)
        s_out(vm, THR, (uint8_t)*p);
    cr_assert_eq(vm->console_len, strlen(line));
    cr_expect_eq(memcmp(vm->console_out, line, strlen(line)), 0);
    cr_expect_eq(s_count(vm, "tx_bytes"), (long long)strlen(line));
    cr_expect_eq(s_in(vm, LSR), 0x60, "THRE and TEMT: empty again at once");
    fake_env_destroy(&vm);
}

Test(output, a_busy_console_shows_the_transmitter_busy)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, MCR, 0x08); /* OUT2 */
    s_out(vm, IER, 0x02);
    cr_expect_eq(s_in(vm, IIR), 0x02);
    vm->console_room = 2;
    s_out(vm, THR, 'a');
    cr_expect_eq(s_in(vm, LSR) & 0x60, 0x60, "room for one more");
    s_out(vm, THR, 'b');
    cr_expect_eq(s_in(vm, LSR) & 0x60, 0, "no room: THR is full");
    cr_expect_eq(s_in(vm, IIR), 0x01, "and no THR empty interrupt");
    cr_expect_not(vm->irq[4]);
    s_out(vm, THR, 'c'); /* a guest that did not wait for THRE */
    cr_expect_eq(s_count(vm, "tx_lost"), 1);
    cr_expect_eq(vm->console_len, 2);
    /* The console wrote some: THR empties and says so. */
    vm->console_room = 100;
    vm->dev->ops->console_ready(vm->dev);
    cr_expect(vm->irq[4], "the THR empty interrupt");
    cr_expect_eq(s_in(vm, IIR), 0x02);
    cr_expect_eq(s_in(vm, LSR) & 0x60, 0x60);
    s_out(vm, THR, 'd');
    cr_expect_eq(memcmp(vm->console_out, "abd", 3), 0);
    fake_env_destroy(&vm);
}

Test(output, bytes_in_loopback_do_not_leave)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, MCR, 0x10);
    s_out(vm, THR, 'Z');
    s_out(vm, MCR, 0x00);
    s_out(vm, THR, '\n');
    cr_assert_eq(vm->console_len, 1);
    cr_expect_eq(vm->console_out[0], '\n', "only the byte sent outside loopback");
    fake_env_destroy(&vm);
}

/* ---- Its console: input ------------------------------------------------------ */

Test(input, it_asks_for_what_fits_and_bytes_appear_in_rbr)
{
    fake_env_t *vm = s_new(NULL);
    cr_expect_eq(vm->console_want, 1, "FIFOs off: RBR alone");
    s_out(vm, FCR, 0x01);
    cr_expect_eq(vm->console_want, 16, "FIFOs on");
    cr_expect_eq(s_in(vm, LSR), 0x60, "empty: THRE and TEMT only");
    s_input(vm, "hi!");
    cr_expect_eq(s_in(vm, LSR), 0x61, "DR");
    cr_expect_eq(s_in(vm, RBR), 'h');
    cr_expect_eq(vm->console_want, 14, "one taken: room for 14 more");
    cr_expect_eq(s_in(vm, RBR), 'i');
    cr_expect_eq(s_in(vm, RBR), '!');
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);
    cr_expect_eq(s_count(vm, "rx_bytes"), 3);
    fake_env_destroy(&vm);
}

Test(input, host_input_waits_while_the_fifo_has_no_room)
{
    fake_env_t *vm = s_new(NULL);
    s_input(vm, "ab"); /* FIFOs off: RBR takes one, the other waits */
    cr_expect_eq(s_count(vm, "host_input_waiting"), 1);
    cr_expect_eq(s_in(vm, RBR), 'a');
    cr_expect_eq(s_in(vm, RBR), 'b', "moved in as RBR emptied");
    cr_expect_eq(s_count(vm, "overruns"), 0, "nothing lost");
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x10); /* loopback cuts the receiver off from the line */
    s_input(vm, "xy");
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);
    s_out(vm, MCR, 0x00);
    cr_expect_eq(s_in(vm, RBR), 'x', "delivered when loopback ends");
    cr_expect_eq(s_in(vm, RBR), 'y');
    fake_env_destroy(&vm);
}

/* ---- Registers ------------------------------------------------------------ */

Test(registers, fifo_overflow_in_loopback_is_counted_and_flagged)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x10);
    for (int i = 0; i < 20; i++)
        s_out(vm, THR, (uint8_t)('a' + i));
    cr_expect_eq(s_in(vm, LSR), 0x63, "DR, OE, THRE, TEMT");
    cr_expect_eq(s_in(vm, LSR), 0x61, "reading LSR clears OE");
    cr_expect_eq(s_count(vm, "overruns"), 4);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(s_in(vm, RBR), 'a' + i, "the first 16 bytes, in order");
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);

    /* Without FIFOs RBR holds one byte, and a second overwrites it. */
    s_out(vm, FCR, 0x00);
    s_out(vm, THR, '1');
    s_out(vm, THR, '2');
    cr_expect_eq(s_in(vm, LSR), 0x63);
    cr_expect_eq(s_in(vm, RBR), '2');
    cr_expect_eq(s_count(vm, "overruns"), 5);
    fake_env_destroy(&vm);
}

Test(registers, fcr_clears_the_receive_fifo)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x10);
    s_out(vm, THR, 'a');
    s_out(vm, THR, 'b');
    s_out(vm, FCR, 0x03);
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);
    cr_expect_eq(s_count(vm, "rx_cleared"), 2);
    fake_env_destroy(&vm);
}

Test(registers, divisor_latch)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, IER, 0x05);
    s_out(vm, LCR, 0x83);
    s_out(vm, DLL, 0x0c);
    s_out(vm, DLM, 0x02);
    cr_expect_eq(s_in(vm, DLL), 0x0c);
    cr_expect_eq(s_in(vm, DLM), 0x02);
    cr_expect_eq(s_in(vm, LCR), 0x83);
    cr_expect_eq(s_count(vm, "divisor"), 0x20c);
    cr_expect_eq(s_count(vm, "tx_bytes"), 0, "a DLL write transmits nothing");
    s_out(vm, LCR, 0x03);
    cr_expect_eq(s_in(vm, IER), 0x05, "IER untouched by the DLM write");
    s_out(vm, IER, 0x00);
    s_out(vm, LCR, 0x83);
    cr_expect_eq(s_in(vm, DLM), 0x02, "DLM untouched by the IER write");
    fake_env_destroy(&vm);
}

Test(registers, scratch_reads_back)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, SCR, 0x55);
    cr_expect_eq(s_in(vm, SCR), 0x55);
    s_out(vm, SCR, 0xaa);
    cr_expect_eq(s_in(vm, SCR), 0xaa);
    fake_env_destroy(&vm);
}

Test(registers, ier_keeps_its_four_bits)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, IER, 0xff);
    cr_expect_eq(s_in(vm, IER), 0x0f);
    s_out(vm, IER, 0x00);
    cr_expect_eq(s_in(vm, IER), 0x00);
    fake_env_destroy(&vm);
}

Test(registers, loopback_reflects_mcr_into_msr)
{
    fake_env_t *vm = s_new(NULL);
    cr_expect_eq(s_in(vm, MSR), 0xb0, "outside loopback: CTS, DSR, DCD");
    s_out(vm, MCR, 0x1a); /* LOOP | OUT2 | RTS: Linux's autodetection */
    cr_expect_eq(s_in(vm, MSR) & 0xf0, 0x90, "CTS from RTS, DCD from OUT2");
    s_out(vm, MCR, 0x15); /* LOOP | OUT1 | DTR */
    cr_expect_eq(s_in(vm, MSR), 0x6b, "DSR and RI; CTS, DSR and DCD changed");
    cr_expect_eq(s_in(vm, MSR), 0x60, "deltas cleared by the read");
    s_out(vm, MCR, 0x11);
    cr_expect_eq(s_in(vm, MSR), 0x24, "RI fell: TERI");
    s_out(vm, MCR, 0x1f);
    cr_expect_eq(s_in(vm, MCR), 0x1f);
    s_out(vm, MCR, 0xff);
    cr_expect_eq(s_in(vm, MCR), 0x1f, "bits 5-7 read 0");

    s_out(vm, THR, 'Q');
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0x01);
    cr_expect_eq(s_in(vm, RBR), 'Q', "a transmitted byte comes back");
    s_out(vm, MCR, 0x00);
    cr_expect_eq(s_in(vm, MSR) & 0xf0, 0xb0);
    fake_env_destroy(&vm);
}

Test(registers, wide_accesses_reach_consecutive_registers)
{
    fake_env_t *vm = s_new(NULL);
    cr_assert_eq(fake_env_write(vm, false, 0x3f8 + LCR, 2, 0x0b03), 0);
    cr_expect_eq(s_in(vm, LCR), 0x03);
    cr_expect_eq(s_in(vm, MCR), 0x0b);
    s_out(vm, SCR, 0x7e);
    uint64_t value;
    cr_assert_eq(fake_env_read(vm, false, 0x3f8 + MCR, 4, &value), 0);
    cr_expect_eq(value, 0x7eb0600b, "MCR, LSR, MSR, SCR: 0x%08llx", (unsigned long long)value);
    fake_env_destroy(&vm);
}

Test(registers, linux_8250_autoconfig_sees_a_16550a)
{
    fake_env_t *vm = s_new(NULL);
    /* autoconfig(): IER probe, loopback test, FIFO type. */
    s_out(vm, IER, 0);
    cr_expect_eq(s_in(vm, IER) & 0x0f, 0);
    s_out(vm, IER, 0x0f);
    cr_expect_eq(s_in(vm, IER) & 0x0f, 0x0f);
    s_out(vm, IER, 0);
    uint8_t save_mcr = s_in(vm, MCR);
    s_out(vm, MCR, 0x10 | 0x0a);
    cr_expect_eq(s_in(vm, MSR) & 0xf0, 0x90);
    s_out(vm, MCR, save_mcr);
    s_out(vm, LCR, 0xbf);
    s_out(vm, 2, 0); /* EFR on chips that have one: FCR here */
    s_out(vm, LCR, 0);
    s_out(vm, FCR, 0x01);
    cr_expect_eq(s_in(vm, IIR) >> 6, 3, "FIFOs on: a 16550A");
    /* autoconfig_16550a(): no EFR, no NS SuperIO, no 16750, no XScale. */
    s_out(vm, LCR, 0x80);
    cr_expect_neq(s_in(vm, 2), 0);
    s_out(vm, LCR, 0);
    s_out(vm, FCR, 0x01 | 0x20);
    cr_expect_eq(s_in(vm, IIR) >> 5, 6, "no 64-byte FIFO");
    s_out(vm, IER, 0x40);
    cr_expect_eq(s_in(vm, IER) & 0x40, 0, "no UUE bit");
    fake_env_destroy(&vm);
}

/* ---- Interrupt identification ---------------------------------------------- */

Test(iir, reports_the_highest_priority_source)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, FCR, 0x01);
    cr_expect_eq(s_in(vm, IIR), 0xc1, "nothing pending; FIFO bits set");
    s_out(vm, IER, 0x0f);
    cr_expect_eq(s_in(vm, IIR), 0xc2, "THR empty, raised by enabling it");
    cr_expect_eq(s_in(vm, IIR), 0xc1, "taken by the IIR read");
    s_out(vm, MCR, 0x10);
    cr_expect_eq(s_in(vm, IIR), 0xc0, "modem status: the loopback changed the lines");
    s_in(vm, MSR);
    cr_expect_eq(s_in(vm, IIR), 0xc1);
    s_out(vm, THR, 'x');
    cr_expect_eq(s_in(vm, IIR), 0xc4, "received data over THR empty");
    s_out(vm, FCR, 0x41);
    cr_expect_eq(s_in(vm, IIR), 0xcc, "below a trigger of 4: character timeout");
    s_out(vm, FCR, 0x01);
    for (int i = 0; i < 16; i++)
        s_out(vm, THR, 'y');
    cr_expect_eq(s_in(vm, IIR), 0xc6, "line status (overrun) first of all");
    s_in(vm, LSR);
    cr_expect_eq(s_in(vm, IIR), 0xc4);
    for (int i = 0; i < 16; i++)
        s_in(vm, RBR);
    cr_expect_eq(s_in(vm, IIR), 0xc2, "then THR empty");
    cr_expect_eq(s_in(vm, IIR), 0xc1);
    s_out(vm, THR, 'z');
    s_out(vm, IER, 0x00);
    cr_expect_eq(s_in(vm, IIR), 0xc1, "disabled sources do not show");
    s_out(vm, FCR, 0x00);
    cr_expect_eq(s_in(vm, IIR), 0x01, "FIFOs off: bits 7:6 clear");
    fake_env_destroy(&vm);
}

Test(iir, writing_thr_rearms_thr_empty)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, IER, 0x02);
    cr_expect_eq(s_in(vm, IIR), 0x02);
    cr_expect_eq(s_in(vm, IIR), 0x01);
    s_out(vm, THR, 'a');
    cr_expect_eq(s_in(vm, IIR), 0x02, "re-armed by the THR write");
    cr_expect_eq(s_in(vm, IIR), 0x01);
    /* Linux's THRE test: re-enabling the interrupt raises it again. */
    s_out(vm, IER, 0x00);
    s_out(vm, IER, 0x02);
    cr_expect_eq(s_in(vm, IIR), 0x02);
    fake_env_destroy(&vm);
}

/* ---- Its interrupt line ------------------------------------------------------- */

Test(irq, thr_empty_with_out2_raises_the_configured_line)
{
    dev_serial_config_t cfg = {.name = "com2", .base = 0x2f8, .irq = 3};
    fake_env_t *vm = s_new(&cfg);
    cr_expect_str_eq(vm->dev->spec.name, "com2");
    cr_expect_eq(vm->dev->spec.ranges[0].start, 0x2f8);
    cr_expect_eq(vm->dev->spec.irq_lines[0], 3);
    s_out(vm, MCR, 0x0b); /* DTR | RTS | OUT2 */
    s_out(vm, IER, 0x02);
    cr_expect(vm->irq[3]);
    cr_expect_eq(s_in(vm, IIR), 0x02);
    cr_expect_not(vm->irq[3], "taken by the IIR read: the line falls");
    s_out(vm, THR, 'a');
    cr_expect(vm->irq[3]);
    s_out(vm, THR, 'b'); /* without taking the interrupt: a new edge all the same */
    cr_expect_eq(vm->irq_rises[3], 3);
    cr_expect_eq(s_count(vm, "irqs"), 3);
    cr_expect_eq(s_count(vm, "irq_high"), 1);
    for (int line = 0; line < FAKE_ENV_LINES; line++)
        if (line != 3)
            cr_expect_eq(vm->irq_rises[line], 0, "line %d", line);
    fake_env_destroy(&vm);
}

Test(irq, none_without_out2_or_in_loopback)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, MCR, 0x03); /* DTR | RTS */
    s_out(vm, IER, 0x02);
    cr_expect_eq(s_count(vm, "iir"), 0x02, "pending, but OUT2 keeps it from the PIC");
    s_out(vm, MCR, 0x1b); /* OUT2 in loopback: the pin is forced inactive */
    cr_expect_eq(s_count(vm, "iir"), 0x02);
    cr_expect_eq(vm->irq_rises[4], 0);
    s_out(vm, MCR, 0x0b);
    cr_expect(vm->irq[4]);
    cr_expect_eq(s_count(vm, "irqs"), 1);
    fake_env_destroy(&vm);
}

Test(irq, received_data_raises_the_line_until_read)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, MCR, 0x08);
    s_out(vm, IER, 0x01);
    cr_expect_not(vm->irq[4]);
    s_input(vm, "k");
    cr_expect(vm->irq[4]);
    cr_expect_eq(s_in(vm, IIR), 0x04);
    cr_expect_eq(s_in(vm, RBR), 'k');
    cr_expect_eq(s_in(vm, IIR), 0x01, "reading RBR took the interrupt");
    cr_expect_not(vm->irq[4]);
    fake_env_destroy(&vm);
}

/* ---- Its life ------------------------------------------------------------------- */

Test(life, reset_returns_to_power_on_and_lowers_the_line)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x08);
    s_out(vm, IER, 0x01);
    s_out(vm, SCR, 0x42);
    s_input(vm, "zz");
    cr_expect(vm->irq[4]);
    vm->dev->ops->reset(vm->dev);
    cr_expect_not(vm->irq[4]);
    cr_expect_eq(s_in(vm, IER), 0);
    cr_expect_eq(s_in(vm, SCR), 0);
    cr_expect_eq(s_in(vm, IIR), 0x01);
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0, "the FIFO was emptied");
    cr_expect_eq(vm->console_want, 1, "FIFOs off again");
    fake_env_destroy(&vm);
}

Test(life, a_saved_state_restores_registers_fifo_and_line)
{
    fake_env_t *vm = s_new(NULL), *other = s_new(NULL);
    s_out(vm, LCR, 0x83);
    s_out(vm, DLL, 0x0c);
    s_out(vm, LCR, 0x03);
    s_out(vm, FCR, 0x41);
    s_out(vm, MCR, 0x08);
    s_out(vm, IER, 0x05);
    s_out(vm, SCR, 0x99);
    s_input(vm, "abc");
    cr_assert_eq(fake_env_save_restore(vm->dev, other->dev), 0);
    cr_expect(other->irq[4], "the restored UART's line is high too");
    cr_expect_eq(s_in(other, LCR), 0x03);
    cr_expect_eq(s_in(other, SCR), 0x99);
    cr_expect_eq(s_in(other, IIR), 0xcc, "below the trigger of 4: timeout");
    cr_expect_eq(s_in(other, RBR), 'a');
    cr_expect_eq(s_in(other, RBR), 'b');
    cr_expect_eq(s_in(other, RBR), 'c');
    cr_expect_eq(s_count(other, "divisor"), 0x0c);
    fake_env_destroy(&vm);
    fake_env_destroy(&other);
}

Test(life, a_state_out_of_range_is_refused_and_changes_nothing)
{
    fake_env_t *vm = s_new(NULL);
    s_out(vm, SCR, 0x11);
    static const uint8_t ier_too_wide[] = {0x08, 0xff, 0x01}; /* ier = 255 */
    cr_expect_eq(vm->dev->ops->restore(vm->dev, ier_too_wide, sizeof ier_too_wide), -EINVAL);
    static const uint8_t fifo_without_fifos[] = {0x5a, 0x02, 'a', 'b'}; /* rx = "ab", fcr 0 */
    cr_expect_eq(vm->dev->ops->restore(vm->dev, fifo_without_fifos, sizeof fifo_without_fifos),
                 -EINVAL);
    static const uint8_t garbage[] = {0x5a, 0x7f};
    cr_expect_eq(vm->dev->ops->restore(vm->dev, garbage, sizeof garbage), -EINVAL);
    cr_expect_eq(s_in(vm, SCR), 0x11);
    fake_env_destroy(&vm);
}
