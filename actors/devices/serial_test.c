/* dev_serial: host output and input, the 16550A registers, interrupts. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "actors/devices/serial.h"
#include "actors/devices/testing/fake_vm.h"

#define DEV "vm0/dev/com1"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
       LSR = 5, MSR = 6, SCR = 7 };

static uint32_t s_base;

/* Starts the UART on a fresh fake VM (registered with its partition). */
static fake_vm_t *s_start(dev_serial_config_t *cfg)
{
    fake_vm_t *vm = fake_vm_new();
    cr_assert_not_null(vm);
    cfg->partition = FAKE_VM_PARTITION;
    s_base = cfg->base ? cfg->base : 0x3f8;
    rt_actor_spec_t spec = {.name = DEV, .ops = &dev_serial_ops, .arg = cfg};
    cr_assert_eq(fake_vm_start(vm, &spec, 0, NULL), 0);
    return vm;
}

static fake_vm_t *s_start_plain(void)
{
    dev_serial_config_t cfg = {.out_fd = -1, .in_fd = -1};
    return s_start(&cfg);
}

static uint8_t s_in(fake_vm_t *vm, unsigned reg)
{
    uint32_t value;
    int rc = fake_vm_read(vm, DEV, s_base + reg, 1, &value);
    cr_assert_eq(rc, 0, "read of register %u: %d %s", reg, rc, vm->last_error);
    return (uint8_t)value;
}

static void s_out(fake_vm_t *vm, unsigned reg, uint8_t value)
{
    int rc = fake_vm_write(vm, DEV, s_base + reg, 1, value);
    cr_assert_eq(rc, 0, "write of register %u: %d %s", reg, rc, vm->last_error);
}

static void s_out_posted(fake_vm_t *vm, unsigned reg, uint8_t value)
{
    cr_assert_eq(fake_vm_write_posted(vm, DEV, s_base + reg, 1, value), 0);
}

/* Reads up to want bytes from fd, waiting at most timeout_ms for each. */
static size_t s_read_fd(int fd, char *buf, size_t want, int timeout_ms)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            break;
        ssize_t n = read(fd, buf + got, want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* Waits until LSR shows received data. */
static void s_wait_data(fake_vm_t *vm)
{
    for (int i = 0; i < 2000; i++) {
        if (s_in(vm, LSR) & 0x01)
            return;
        usleep(1000);
    }
    cr_assert_fail("no received data within 2 s");
}

static long long s_inspect(fake_vm_t *vm, const char *name)
{
    return fake_vm_inspect(vm, DEV, name);
}

/* ---- Host output ---------------------------------------------------------- */

Test(output, a_line_reaches_the_output_in_order)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    dev_serial_config_t cfg = {.out_fd = out[1], .in_fd = -1};
    fake_vm_t *vm = s_start(&cfg);
    const char *line = "hello, world\n";
    for (const char *p = line; *p; p++)
        s_out_posted(vm, THR, (uint8_t)*p);
    char buf[64] = {0};
    cr_assert_eq(s_read_fd(out[0], buf, strlen(line), 2000), strlen(line));
    cr_expect_str_eq(buf, line);
    cr_expect_eq(s_inspect(vm, "tx_bytes"), (long long)strlen(line));

    /* A partial line leaves once nothing more follows. */
    for (const char *p = "login: "; *p; p++)
        s_out_posted(vm, THR, (uint8_t)*p);
    memset(buf, 0, sizeof buf);
    cr_assert_eq(s_read_fd(out[0], buf, 7, 2000), 7);
    cr_expect_str_eq(buf, "login: ");
    fake_vm_destroy(&vm);
    close(out[0]);
    close(out[1]);
}

Test(output, many_lines_and_full_buffers_keep_every_byte_in_order)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    dev_serial_config_t cfg = {.out_fd = out[1], .in_fd = -1};
    fake_vm_t *vm = s_start(&cfg);
    enum { N = 12000 }; /* three output buffers and more, within a pipe's 64 KiB */
    static char sent[N], got[N];
    for (int i = 0; i < N; i++)
        sent[i] = i < 6000 ? (char)('a' + i % 26) : (i % 61 == 0 ? '\n' : (char)('0' + i % 10));
    for (int i = 0; i < N; i++)
        s_out_posted(vm, THR, (uint8_t)sent[i]);
    cr_assert_eq(s_read_fd(out[0], got, N, 2000), N);
    cr_expect_eq(memcmp(sent, got, N), 0);
    cr_expect_eq(s_inspect(vm, "out_lost"), 0);
    fake_vm_destroy(&vm);
    close(out[0]);
    close(out[1]);
}

Test(output, a_partial_line_is_written_on_terminate)
{
    FILE *file = tmpfile();
    cr_assert_not_null(file);
    dev_serial_config_t cfg = {.out_fd = fileno(file), .in_fd = -1, .flush_delay_ms = 60000};
    fake_vm_t *vm = s_start(&cfg);
    for (const char *p = "no newline"; *p; p++)
        s_out_posted(vm, THR, (uint8_t)*p);
    cr_expect_eq(s_inspect(vm, "tx_bytes"), 10, "all written to the UART");
    char buf[32] = {0};
    cr_expect_eq(pread(fileno(file), buf, sizeof buf, 0), 0, "still held: %s", buf);
    rt_executor_destroy(&vm->ex);
    cr_expect_eq(pread(fileno(file), buf, sizeof buf, 0), 10);
    cr_expect_str_eq(buf, "no newline");
    fake_vm_destroy(&vm);
    fclose(file);
}

Test(output, bytes_in_loopback_do_not_leave)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    dev_serial_config_t cfg = {.out_fd = out[1], .in_fd = -1};
    fake_vm_t *vm = s_start(&cfg);
    s_out(vm, MCR, 0x10);
    s_out(vm, THR, 'Z');
    s_out(vm, MCR, 0x00);
    s_out(vm, THR, '\n');
    char buf[4] = {0};
    cr_assert_eq(s_read_fd(out[0], buf, 1, 2000), 1);
    cr_expect_eq(buf[0], '\n', "only the byte sent outside loopback");
    fake_vm_destroy(&vm);
    close(out[0]);
    close(out[1]);
}

Test(output, bytes_the_output_refuses_are_counted)
{
    int read_only = open("/dev/null", O_RDONLY); /* writes fail: EBADF */
    cr_assert_geq(read_only, 0);
    dev_serial_config_t cfg = {.out_fd = read_only, .in_fd = -1};
    fake_vm_t *vm = s_start(&cfg);
    for (const char *p = "lost\n"; *p; p++)
        s_out_posted(vm, THR, (uint8_t)*p);
    cr_expect_eq(s_inspect(vm, "out_lost"), 5);
    cr_expect_eq(s_inspect(vm, "tx_bytes"), 5);
    fake_vm_destroy(&vm);
    close(read_only);
}

/* ---- Host input ----------------------------------------------------------- */

Test(input, bytes_from_the_host_appear_in_rbr_with_dr_set)
{
    int in[2];
    cr_assert_eq(pipe(in), 0);
    dev_serial_config_t cfg = {.out_fd = -1, .in_fd = in[0]};
    fake_vm_t *vm = s_start(&cfg);
    cr_expect_eq(s_in(vm, LSR), 0x60, "empty: THRE and TEMT only");
    cr_assert_eq(write(in[1], "hi!", 3), 3);
    s_wait_data(vm);
    cr_expect_eq(s_in(vm, RBR), 'h');
    s_wait_data(vm);
    cr_expect_eq(s_in(vm, RBR), 'i');
    s_wait_data(vm);
    cr_expect_eq(s_in(vm, RBR), '!');
    cr_expect_eq(s_in(vm, LSR), 0x60, "DR clear once read");
    cr_expect_eq(s_inspect(vm, "rx_bytes"), 3);
    fake_vm_destroy(&vm);
    close(in[0]);
    close(in[1]);
}

Test(input, host_input_waits_while_the_fifo_is_full)
{
    int in[2];
    cr_assert_eq(pipe(in), 0);
    dev_serial_config_t cfg = {.out_fd = -1, .in_fd = in[0]};
    fake_vm_t *vm = s_start(&cfg);
    s_out(vm, FCR, 0x01);
    char sent[40];
    for (int i = 0; i < 40; i++)
        sent[i] = (char)('A' + i);
    cr_assert_eq(write(in[1], sent, sizeof sent), (ssize_t)sizeof sent);
    for (int i = 0; i < 2000 && s_inspect(vm, "rx_fifo") < 16; i++)
        usleep(1000);
    cr_assert_eq(s_inspect(vm, "rx_fifo"), 16);
    int left = 0;
    cr_assert_eq(ioctl(in[0], FIONREAD, &left), 0);
    cr_expect_eq(left, 24, "the rest waits in the pipe");
    char input[16];
    cr_assert_eq(fake_vm_inspect_text(vm, DEV, "input", input, sizeof input), 0);
    cr_expect_str_eq(input, "held", "not read while the FIFO is full");
    cr_expect_eq(s_inspect(vm, "overruns"), 0);
    for (int i = 0; i < 40; i++) {
        s_wait_data(vm);
        cr_assert_eq(s_in(vm, RBR), (uint8_t)sent[i], "byte %d", i);
    }
    cr_expect_eq(s_inspect(vm, "overruns"), 0, "nothing lost");
    fake_vm_destroy(&vm);
    close(in[0]);
    close(in[1]);
}

Test(input, closed_input_is_noticed)
{
    int in[2];
    cr_assert_eq(pipe(in), 0);
    dev_serial_config_t cfg = {.out_fd = -1, .in_fd = in[0]};
    fake_vm_t *vm = s_start(&cfg);
    cr_assert_eq(write(in[1], "x", 1), 1);
    close(in[1]);
    s_wait_data(vm);
    cr_expect_eq(s_in(vm, RBR), 'x');
    char input[16] = "";
    for (int i = 0; i < 2000 && strcmp(input, "closed"); i++) {
        cr_assert_eq(fake_vm_inspect_text(vm, DEV, "input", input, sizeof input), 0);
        usleep(1000);
    }
    cr_expect_str_eq(input, "closed");
    fake_vm_destroy(&vm);
    close(in[0]);
}

/* ---- Registers ------------------------------------------------------------ */

Test(registers, fifo_overflow_in_loopback_is_counted_and_flagged)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x10);
    for (int i = 0; i < 20; i++)
        s_out(vm, THR, (uint8_t)('a' + i));
    cr_expect_eq(s_in(vm, LSR), 0x63, "DR, OE, THRE, TEMT");
    cr_expect_eq(s_in(vm, LSR), 0x61, "reading LSR clears OE");
    cr_expect_eq(s_inspect(vm, "overruns"), 4);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(s_in(vm, RBR), 'a' + i, "the first 16 bytes, in order");
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);

    /* Without FIFOs RBR holds one byte, and a second overwrites it. */
    s_out(vm, FCR, 0x00);
    s_out(vm, THR, '1');
    s_out(vm, THR, '2');
    cr_expect_eq(s_in(vm, LSR), 0x63);
    cr_expect_eq(s_in(vm, RBR), '2');
    cr_expect_eq(s_inspect(vm, "overruns"), 5);
    fake_vm_destroy(&vm);
}

Test(registers, fcr_clears_the_receive_fifo)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, FCR, 0x01);
    s_out(vm, MCR, 0x10);
    s_out(vm, THR, 'a');
    s_out(vm, THR, 'b');
    s_out(vm, FCR, 0x03);
    cr_expect_eq(s_in(vm, LSR) & 0x01, 0);
    cr_expect_eq(s_inspect(vm, "rx_cleared"), 2);
    fake_vm_destroy(&vm);
}

Test(registers, divisor_latch)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, IER, 0x05);
    s_out(vm, LCR, 0x83);
    s_out(vm, DLL, 0x0c);
    s_out(vm, DLM, 0x02);
    cr_expect_eq(s_in(vm, DLL), 0x0c);
    cr_expect_eq(s_in(vm, DLM), 0x02);
    cr_expect_eq(s_in(vm, LCR), 0x83);
    cr_expect_eq(s_inspect(vm, "divisor"), 0x20c);
    cr_expect_eq(s_inspect(vm, "tx_bytes"), 0, "a DLL write transmits nothing");
    s_out(vm, LCR, 0x03);
    cr_expect_eq(s_in(vm, IER), 0x05, "IER untouched by the DLM write");
    s_out(vm, IER, 0x00);
    s_out(vm, LCR, 0x83);
    cr_expect_eq(s_in(vm, DLM), 0x02, "DLM untouched by the IER write");
    fake_vm_destroy(&vm);
}

Test(registers, scratch_reads_back)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, SCR, 0x55);
    cr_expect_eq(s_in(vm, SCR), 0x55);
    s_out(vm, SCR, 0xaa);
    cr_expect_eq(s_in(vm, SCR), 0xaa);
    fake_vm_destroy(&vm);
}

Test(registers, ier_keeps_its_four_bits)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, IER, 0xff);
    cr_expect_eq(s_in(vm, IER), 0x0f);
    s_out(vm, IER, 0x00);
    cr_expect_eq(s_in(vm, IER), 0x00);
    fake_vm_destroy(&vm);
}

Test(registers, loopback_reflects_mcr_into_msr)
{
    fake_vm_t *vm = s_start_plain();
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
    fake_vm_destroy(&vm);
}

Test(registers, wide_accesses_reach_consecutive_registers)
{
    fake_vm_t *vm = s_start_plain();
    cr_assert_eq(fake_vm_write(vm, DEV, s_base + LCR, 2, 0x0b03), 0, "%s", vm->last_error);
    cr_expect_eq(s_in(vm, LCR), 0x03);
    cr_expect_eq(s_in(vm, MCR), 0x0b);
    s_out(vm, SCR, 0x7e);
    uint32_t value;
    cr_assert_eq(fake_vm_read(vm, DEV, s_base + MCR, 4, &value), 0, "%s", vm->last_error);
    cr_expect_eq(value, 0x7eb0600b, "MCR, LSR, MSR, SCR: 0x%08x", value);
    cr_expect_eq(fake_vm_read(vm, DEV, s_base + LSR, 4, &value),
                 VMM__ERROR_CODE__INVALID_ARGUMENT, "past the last register");
    fake_vm_destroy(&vm);
}

Test(registers, linux_8250_autoconfig_sees_a_16550a)
{
    fake_vm_t *vm = s_start_plain();
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
    fake_vm_destroy(&vm);
}

/* ---- Interrupt identification ---------------------------------------------- */

Test(iir, reports_the_highest_priority_source)
{
    fake_vm_t *vm = s_start_plain();
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
    fake_vm_destroy(&vm);
}

Test(iir, writing_thr_rearms_thr_empty)
{
    fake_vm_t *vm = s_start_plain();
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
    fake_vm_destroy(&vm);
}

/* ---- Interrupts to the partition ------------------------------------------- */

Test(irq, thr_empty_with_out2_asserts_the_configured_irq)
{
    dev_serial_config_t cfg = {.name = "com2", .base = 0x2f8, .irq = 3, .out_fd = -1,
                               .in_fd = -1};
    fake_vm_t *vm = s_start(&cfg);
    s_out(vm, MCR, 0x0b); /* DTR | RTS | OUT2 */
    s_out(vm, IER, 0x02);
    fake_vm_expect_assert_irq(vm, vm->partition, 3);
    cr_expect_eq(s_in(vm, IIR), 0x02);
    s_out(vm, THR, 'a');
    fake_vm_expect_assert_irq(vm, vm->partition, 3);
    s_out(vm, THR, 'b'); /* without taking the interrupt: a new edge all the same */
    fake_vm_expect_assert_irq(vm, vm->partition, 3);
    cr_expect_eq(s_inspect(vm, "irqs"), 3);
    cr_expect_eq(s_inspect(vm, "irq_high"), 1);
    fake_vm_expect_quiet(vm, vm->partition, 50);
    fake_vm_destroy(&vm);
}

Test(irq, none_without_out2_or_in_loopback)
{
    fake_vm_t *vm = s_start_plain();
    s_out(vm, MCR, 0x03); /* DTR | RTS */
    s_out(vm, IER, 0x02);
    cr_expect_eq(s_inspect(vm, "iir"), 0x02, "pending, but OUT2 keeps it from the PIC");
    s_out(vm, MCR, 0x1b); /* OUT2 in loopback: the pin is forced inactive */
    cr_expect_eq(s_inspect(vm, "iir"), 0x02);
    cr_expect_eq(s_inspect(vm, "irqs"), 0);
    fake_vm_expect_quiet(vm, vm->partition, 100);
    s_out(vm, MCR, 0x0b);
    fake_vm_expect_assert_irq(vm, vm->partition, 4);
    cr_expect_eq(s_inspect(vm, "irqs"), 1);
    fake_vm_destroy(&vm);
}

Test(irq, received_data_from_the_host_asserts_the_irq)
{
    int in[2];
    cr_assert_eq(pipe(in), 0);
    dev_serial_config_t cfg = {.out_fd = -1, .in_fd = in[0]};
    fake_vm_t *vm = s_start(&cfg);
    s_out(vm, MCR, 0x08);
    s_out(vm, IER, 0x01);
    fake_vm_expect_quiet(vm, vm->partition, 20);
    cr_assert_eq(write(in[1], "k", 1), 1);
    fake_vm_expect_assert_irq(vm, vm->partition, 4);
    cr_expect_eq(s_in(vm, IIR), 0x04);
    cr_expect_eq(s_in(vm, RBR), 'k');
    cr_expect_eq(s_in(vm, IIR), 0x01, "reading RBR took the interrupt");
    cr_expect_eq(s_inspect(vm, "irq_high"), 0);
    fake_vm_destroy(&vm);
    close(in[0]);
    close(in[1]);
}

/* ---- Posted writes ---------------------------------------------------------- */

Test(posted, writes_sent_one_way_get_no_reply)
{
    fake_vm_t *vm = s_start_plain();
    s_out_posted(vm, SCR, 0x42);
    s_out_posted(vm, LCR, 0x03);
    cr_expect_eq(s_in(vm, SCR), 0x42, "applied before the next request");
    cr_expect_eq(s_in(vm, LCR), 0x03);
    cr_expect_eq(s_inspect(vm, "posted_writes"), 2);
    cr_expect_eq(s_inspect(vm, "writes"), 2);
    fake_vm_expect_quiet(vm, vm->vp, 50);
    rt_stats_t stats;
    rt_stats(vm->rt, &stats);
    cr_expect_eq(stats.errors_sent, 0);
    cr_expect_eq(stats.rx_stale_reply, 0);
    fake_vm_destroy(&vm);
}
