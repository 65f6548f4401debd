/* The console actor alone (driven by a client standing for its device), and
 * behind a UART's device actor: output in order, bounded by the window,
 * input only as far as asked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "actors/console/console.h"
#include "actors/devices/serial.h"
#include "actors/devices/testing/fake_vm.h"

#define CONSOLE "vm0/console"
#define DEVICE "vm0/dev/com1"

static fake_vm_t *s_vm;
static rt_client_t *s_device; /* stands for the device, in the first tests */
static int s_out[2], s_in[2];

static void s_setup(void)
{
    s_vm = fake_vm_new();
    cr_assert_not_null(s_vm);
    cr_assert_eq(pipe(s_out), 0);
    cr_assert_eq(pipe(s_in), 0);
}

static void s_teardown(void)
{
    fake_vm_destroy(&s_vm);
    close(s_out[0]);
    close(s_out[1]);
    close(s_in[0]);
    close(s_in[1]);
}

/* On an executor of its own, as in a VM: made after the device's, so that
 * it ends after it and takes the device's last output. */
static void s_start_console(int out_fd, int in_fd)
{
    rt_executor_t *ex = rt_executor_new(s_vm->rt, "console");
    cr_assert_not_null(ex);
    console_config_t cfg = {.device = DEVICE, .out_fd = out_fd, .in_fd = in_fd};
    rt_actor_spec_t spec = {.name = CONSOLE, .ops = &console_ops, .arg = &cfg};
    cr_assert_eq(rt_actor_start(ex, &spec), 0);
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

static void s_send(rt_client_t *from, Vmm__Devices__Event *ev)
{
    cr_assert_eq(fake_vm_send_event(from, CONSOLE, ev), 0);
}

static void s_output(rt_client_t *from, const char *text)
{
    Vmm__Devices__ConsoleOutput out = VMM__DEVICES__CONSOLE_OUTPUT__INIT;
    out.data = (ProtobufCBinaryData){strlen(text), (uint8_t *)text};
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_OUTPUT;
    ev.console_output = &out;
    s_send(from, &ev);
}

static void s_want(rt_client_t *from, uint64_t total)
{
    Vmm__Devices__ConsoleWant want = VMM__DEVICES__CONSOLE_WANT__INIT;
    want.total = total;
    Vmm__Devices__Event ev = VMM__DEVICES__EVENT__INIT;
    ev.event_case = VMM__DEVICES__EVENT__EVENT_CONSOLE_WANT;
    ev.console_want = &want;
    s_send(from, &ev);
}

/* The next event to the device: of kind, else the test fails. */
static const Vmm__Devices__Event *s_expect(Vmm__Devices__Event__EventCase kind)
{
    const Vmm__Envelope *env = fake_vm_recv(s_vm, s_device, 2000);
    cr_assert_not_null(env, "the console answered");
    cr_assert_eq(env->body_case, VMM__ENVELOPE__BODY_DEVICE_EVENT);
    cr_assert_eq(env->device_event->event_case, kind, "event %d", env->device_event->event_case);
    return env->device_event;
}

Test(console, writes_output_in_order_and_says_how_much, .init = s_setup, .fini = s_teardown)
{
    s_device = fake_vm_client(s_vm, DEVICE);
    s_start_console(s_out[1], -1);
    s_output(s_device, "hello, ");
    s_output(s_device, "world\n");
    cr_expect_eq(s_expect(VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN)->console_written->total, 7);
    cr_expect_eq(s_expect(VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN)->console_written->total,
                 13);
    char buf[32] = {0};
    cr_assert_eq(s_read_fd(s_out[0], buf, 13, 2000), 13);
    cr_expect_str_eq(buf, "hello, world\n");
}

Test(console, output_it_cannot_write_is_counted_and_acknowledged, .init = s_setup,
     .fini = s_teardown)
{
    s_device = fake_vm_client(s_vm, DEVICE);
    int read_only = open("/dev/null", O_RDONLY); /* writes fail: EBADF */
    cr_assert_geq(read_only, 0);
    s_start_console(read_only, -1);
    s_output(s_device, "lost\n");
    cr_expect_eq(s_expect(VMM__DEVICES__EVENT__EVENT_CONSOLE_WRITTEN)->console_written->total, 5,
                 "the window moves on");
    cr_expect_eq(fake_vm_inspect(s_vm, CONSOLE, "lost"), 5);
    close(read_only);
}

Test(console, reads_input_only_as_far_as_asked, .init = s_setup, .fini = s_teardown)
{
    s_device = fake_vm_client(s_vm, DEVICE);
    s_start_console(-1, s_in[0]);
    cr_assert_eq(write(s_in[1], "abcdef", 6), 6);
    fake_vm_expect_quiet(s_vm, s_device, 50); /* nothing asked for yet */
    s_want(s_device, 4);
    size_t got = 0;
    char buf[8] = {0};
    while (got < 4) {
        const Vmm__Devices__Event *ev = s_expect(VMM__DEVICES__EVENT__EVENT_CONSOLE_INPUT);
        memcpy(buf + got, ev->console_input->data.data, ev->console_input->data.len);
        got += ev->console_input->data.len;
    }
    cr_expect_eq(got, 4);
    cr_expect_str_eq(buf, "abcd");
    fake_vm_expect_quiet(s_vm, s_device, 50);
    char state[16];
    cr_assert_eq(fake_vm_inspect_text(s_vm, CONSOLE, "input", state, sizeof state), 0);
    cr_expect_str_eq(state, "held", "the rest waits in the descriptor");
    s_want(s_device, 6);
    const Vmm__Devices__Event *ev = s_expect(VMM__DEVICES__EVENT__EVENT_CONSOLE_INPUT);
    cr_expect_eq(ev->console_input->data.len, 2);
    close(s_in[1]);
    s_in[1] = -1;
    s_want(s_device, 7);
    for (int i = 0; i < 2000 && strcmp(state, "closed"); i++) {
        usleep(1000);
        fake_vm_inspect_text(s_vm, CONSOLE, "input", state, sizeof state);
    }
    cr_expect_str_eq(state, "closed", "the end of input is noticed");
}

Test(console, messages_from_others_are_refused, .init = s_setup, .fini = s_teardown)
{
    s_device = fake_vm_client(s_vm, DEVICE);
    rt_client_t *other = fake_vm_client(s_vm, "vm0/dev/other");
    s_start_console(s_out[1], -1);
    s_output(other, "not mine\n");
    s_want(other, 10);
    for (int i = 0; i < 2000 && fake_vm_inspect(s_vm, CONSOLE, "refused_events") != 2; i++)
        usleep(1000);
    cr_expect_eq(fake_vm_inspect(s_vm, CONSOLE, "refused_events"), 2);
    cr_expect_eq(fake_vm_inspect(s_vm, CONSOLE, "out_bytes"), 0);
    fake_vm_expect_quiet(s_vm, other, 20);
}

/* ---- Behind a UART ---------------------------------------------------------------- */

static void s_start_uart(void)
{
    s_start_console(s_out[1], s_in[0]);
    device_actor_config_t cfg = {.new_model = dev_serial_new, .console = CONSOLE};
    cr_assert_eq(fake_vm_start(s_vm, DEVICE, &cfg, 0, NULL), 0);
}

Test(uart, what_the_guest_transmits_reaches_the_output_in_order, .init = s_setup,
     .fini = s_teardown)
{
    s_start_uart();
    enum { N = 20000 }; /* many lines, and more than one line buffer */
    static char sent[N], got[N];
    for (int i = 0; i < N; i++)
        sent[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
    for (int i = 0; i < N; i++)
        cr_assert_eq(fake_vm_write_posted(s_vm, DEVICE, false, 0x3f8, 1, (uint8_t)sent[i]), 0);
    cr_assert_eq(s_read_fd(s_out[0], got, N, 2000), N);
    cr_expect_eq(memcmp(sent, got, N), 0);
    cr_expect_eq(fake_vm_inspect(s_vm, DEVICE, "tx_lost"), 0);
}

Test(uart, a_partial_line_is_written_when_the_uart_ends, .init = s_setup, .fini = s_teardown)
{
    s_start_uart();
    for (const char *p = "no newline"; *p; p++)
        cr_assert_eq(fake_vm_write_posted(s_vm, DEVICE, false, 0x3f8, 1, (uint8_t)*p), 0);
    fake_vm_destroy(&s_vm); /* before its flush timer */
    char buf[16] = {0};
    cr_assert_eq(s_read_fd(s_out[0], buf, 10, 2000), 10);
    cr_expect_str_eq(buf, "no newline");
}

Test(uart, host_input_reaches_rbr_and_none_is_lost, .init = s_setup, .fini = s_teardown)
{
    s_start_uart();
    cr_assert_eq(fake_vm_write(s_vm, DEVICE, false, 0x3fa, 1, 0x01), 0); /* FIFOs on */
    const char *typed = "the quick brown fox jumps over the lazy dog";
    cr_assert_eq(write(s_in[1], typed, strlen(typed)), (ssize_t)strlen(typed));
    char got[64] = {0};
    size_t n = 0;
    for (int i = 0; i < 4000 && n < strlen(typed); i++) {
        uint64_t lsr, rbr;
        cr_assert_eq(fake_vm_read(s_vm, DEVICE, false, 0x3fd, 1, &lsr), 0);
        if (!(lsr & 0x01)) {
            usleep(500);
            continue;
        }
        cr_assert_eq(fake_vm_read(s_vm, DEVICE, false, 0x3f8, 1, &rbr), 0);
        got[n++] = (char)rbr;
    }
    cr_expect_str_eq(got, typed, "16 bytes of FIFO, 43 typed: every one in order");
    cr_expect_eq(fake_vm_inspect(s_vm, DEVICE, "overruns"), 0);
}
