/*
 * dev_serial: a 16550A UART. The register behaviour follows the National
 * Semiconductor PC16550D datasheet; transmission takes no time, so THR and
 * the transmitter are always empty by the time the guest looks.
 */
#include "actors/devices/serial.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "actors/devices/device.h"

#define S_PORTS 8
#define S_FIFO 16
#define S_OUT_BYTES 4096
#define S_DEFAULT_FLUSH_MS 5
/* How long a full output descriptor may hold up the device before the
 * bytes it refuses are counted as lost. */
#define S_WRITE_WAIT_MS 5000

/* Register offsets from the base port. */
enum {
    S_RBR_THR = 0, /* DLL with DLAB */
    S_IER = 1,     /* DLM with DLAB */
    S_IIR_FCR = 2,
    S_LCR = 3,
    S_MCR = 4,
    S_LSR = 5,
    S_MSR = 6,
    S_SCR = 7,
};

#define S_IER_RDA 0x01  /* received data available */
#define S_IER_THRE 0x02 /* transmitter holding register empty */
#define S_IER_RLS 0x04  /* receiver line status */
#define S_IER_MS 0x08   /* modem status */
#define S_IER_MASK 0x0f

#define S_IIR_NONE 0x01
#define S_IIR_MS 0x00
#define S_IIR_THRE 0x02
#define S_IIR_RDA 0x04
#define S_IIR_RLS 0x06
#define S_IIR_CTI 0x0c  /* character timeout: data below the trigger level */
#define S_IIR_FIFO 0xc0 /* FIFOs enabled */

#define S_FCR_ENABLE 0x01
#define S_FCR_CLEAR_RX 0x02
#define S_FCR_TRIGGER 0xc0

#define S_LCR_DLAB 0x80

#define S_MCR_DTR 0x01
#define S_MCR_RTS 0x02
#define S_MCR_OUT1 0x04
#define S_MCR_OUT2 0x08 /* gates the interrupt output on a PC */
#define S_MCR_LOOP 0x10
#define S_MCR_MASK 0x1f

#define S_LSR_DR 0x01
#define S_LSR_OE 0x02
#define S_LSR_THRE 0x20
#define S_LSR_TEMT 0x40

#define S_MSR_DCTS 0x01
#define S_MSR_DDSR 0x02
#define S_MSR_TERI 0x04
#define S_MSR_DDCD 0x08
#define S_MSR_DELTAS 0x0f
#define S_MSR_CTS 0x10
#define S_MSR_DSR 0x20
#define S_MSR_RI 0x40
#define S_MSR_DCD 0x80

typedef struct {
    device_t dev;
    uint32_t base, irq;
    int out_fd, in_fd, timer_fd;
    int flush_delay_ms;
    bool in_watched, in_closed, timer_armed;

    uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
    bool overrun;      /* LSR OE, until LSR is read */
    bool thre_pending; /* the THR empty interrupt, until IIR shows it or THR is written */
    bool irq_high;     /* the interrupt output as last seen, for its edges */

    uint8_t rx[S_FIFO];
    unsigned rx_head, rx_count;
    uint8_t out[S_OUT_BYTES];
    size_t out_len;

    struct {
        uint64_t tx_bytes, rx_bytes;
        uint64_t overruns;       /* received bytes lost to a full FIFO */
        uint64_t rx_cleared;     /* received bytes the guest discarded (FCR) */
        uint64_t out_lost;       /* transmitted bytes the output refused */
        uint64_t irqs;           /* rising edges, each an AssertIrq */
        uint64_t ignored_writes; /* to the read-only LSR and MSR */
    } counts;
} serial_t;

/* ---- Host output ------------------------------------------------------ */

static void s_flush(rt_actor_t *self, serial_t *s)
{
    size_t off = 0;
    while (off < s->out_len) {
        ssize_t n = write(s->out_fd, s->out + off, s->out_len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};
            int rc = poll(&pfd, 1, S_WRITE_WAIT_MS);
            if (rc > 0 || (rc < 0 && errno == EINTR))
                continue;
        }
        s->counts.out_lost += s->out_len - off;
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "output refused %zu bytes: %s",
               s->out_len - off, n < 0 ? strerror(errno) : "nothing written");
        break;
    }
    s->out_len = 0;
}

/* A partial line waits at most flush_delay_ms. The timer is not disarmed
 * by an earlier flush: firing early only flushes a later line sooner. */
static void s_arm_timer(rt_actor_t *self, serial_t *s)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = s->flush_delay_ms / 1000,
                     .tv_nsec = (long)(s->flush_delay_ms % 1000) * 1000000L},
    };
    if (timerfd_settime(s->timer_fd, 0, &its, NULL)) {
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "output timer: %s", strerror(errno));
        s_flush(self, s); /* no timer: hold nothing */
        return;
    }
    s->timer_armed = true;
}

static void s_on_timer(rt_actor_t *self, int fd)
{
    serial_t *s = rt_actor_state(self);
    uint64_t expirations;
    if (read(fd, &expirations, sizeof expirations) != sizeof expirations)
        return; /* not expired after all */
    s->timer_armed = false;
    s_flush(self, s);
}

static void s_output(rt_actor_t *self, serial_t *s, uint8_t byte)
{
    s->counts.tx_bytes++;
    if (s->out_fd < 0)
        return;
    s->out[s->out_len++] = byte;
    if (byte == '\n' || s->out_len == sizeof s->out)
        s_flush(self, s);
    else if (!s->timer_armed)
        s_arm_timer(self, s);
}

/* ---- Receiver ---------------------------------------------------------- */

static unsigned s_rx_capacity(const serial_t *s)
{
    return (s->fcr & S_FCR_ENABLE) ? S_FIFO : 1; /* without FIFOs: RBR alone */
}

static unsigned s_rx_trigger(const serial_t *s)
{
    static const unsigned levels[] = {1, 4, 8, 14};
    return levels[s->fcr >> 6];
}

static void s_rx_push(serial_t *s, uint8_t byte)
{
    if (s->rx_count < s_rx_capacity(s)) {
        s->rx[(s->rx_head + s->rx_count++) % S_FIFO] = byte;
        return;
    }
    /* The chip loses the byte in its shift register (with FIFOs) or the one
     * in RBR (without), and flags the overrun. */
    if (!(s->fcr & S_FCR_ENABLE))
        s->rx[s->rx_head] = byte;
    s->overrun = true;
    s->counts.overruns++;
}

static uint8_t s_rx_pop(serial_t *s)
{
    if (!s->rx_count)
        return 0;
    uint8_t byte = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % S_FIFO;
    s->rx_count--;
    return byte;
}

static void s_on_input(rt_actor_t *self, int fd);

/* Host input is read only while the receiver listens and has room, so it
 * waits in the descriptor rather than being lost. */
static void s_update_input(rt_actor_t *self, serial_t *s)
{
    bool want = s->in_fd >= 0 && !s->in_closed && !(s->mcr & S_MCR_LOOP) &&
                s->rx_count < s_rx_capacity(s);
    if (want == s->in_watched)
        return;
    int rc = want ? rt_actor_watch_fd(self, s->in_fd, s_on_input)
                  : rt_actor_unwatch_fd(self, s->in_fd);
    if (rc) {
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "input descriptor %d: %s; input off",
               s->in_fd, strerror(-rc));
        s->in_closed = true;
        return;
    }
    s->in_watched = want;
}

/* ---- Interrupts -------------------------------------------------------- */

/* The pending source of highest priority, as IIR bits 3:0. */
static uint8_t s_iir_id(const serial_t *s)
{
    if ((s->ier & S_IER_RLS) && s->overrun)
        return S_IIR_RLS;
    if ((s->ier & S_IER_RDA) && s->rx_count) {
        /* No timer runs: data below the trigger level reports the timeout
         * at once, as it would after four character times. */
        bool below = (s->fcr & S_FCR_ENABLE) && s->rx_count < s_rx_trigger(s);
        return below ? S_IIR_CTI : S_IIR_RDA;
    }
    if ((s->ier & S_IER_THRE) && s->thre_pending)
        return S_IIR_THRE;
    if ((s->ier & S_IER_MS) && (s->msr & S_MSR_DELTAS))
        return S_IIR_MS;
    return S_IIR_NONE;
}

static uint8_t s_iir(const serial_t *s)
{
    return s_iir_id(s) | ((s->fcr & S_FCR_ENABLE) ? S_IIR_FIFO : 0);
}

static uint8_t s_lsr(const serial_t *s)
{
    return (s->rx_count ? S_LSR_DR : 0) | (s->overrun ? S_LSR_OE : 0) | S_LSR_THRE |
           S_LSR_TEMT;
}

/* A PC wires the interrupt through OUT2, whose pin loopback mode forces
 * inactive. */
static void s_update_irq(rt_actor_t *self, serial_t *s)
{
    bool high = s_iir_id(s) != S_IIR_NONE && (s->mcr & S_MCR_OUT2) && !(s->mcr & S_MCR_LOOP);
    if (high && !s->irq_high) {
        s->counts.irqs++;
        device_assert_irq(&s->dev, self, s->irq);
    }
    s->irq_high = high;
}

/* ---- Modem lines ------------------------------------------------------- */

/* The modem inputs: in loopback the outputs fed back, otherwise a host
 * that is always ready (CTS, DSR and DCD on). */
static uint8_t s_modem_inputs(const serial_t *s)
{
    if (!(s->mcr & S_MCR_LOOP))
        return S_MSR_CTS | S_MSR_DSR | S_MSR_DCD;
    return ((s->mcr & S_MCR_RTS) ? S_MSR_CTS : 0) | ((s->mcr & S_MCR_DTR) ? S_MSR_DSR : 0) |
           ((s->mcr & S_MCR_OUT1) ? S_MSR_RI : 0) | ((s->mcr & S_MCR_OUT2) ? S_MSR_DCD : 0);
}

static void s_set_modem_inputs(serial_t *s, uint8_t inputs)
{
    uint8_t changed = (uint8_t)((s->msr ^ inputs) & 0xf0);
    uint8_t deltas = s->msr & S_MSR_DELTAS;
    if (changed & S_MSR_CTS)
        deltas |= S_MSR_DCTS;
    if (changed & S_MSR_DSR)
        deltas |= S_MSR_DDSR;
    if (changed & S_MSR_DCD)
        deltas |= S_MSR_DDCD;
    if ((changed & S_MSR_RI) && !(inputs & S_MSR_RI))
        deltas |= S_MSR_TERI; /* the trailing edge only */
    s->msr = inputs | deltas;
}

/* ---- Registers --------------------------------------------------------- */

static void s_transmit(rt_actor_t *self, serial_t *s, uint8_t byte)
{
    /* Writing THR clears its interrupt; the byte leaves at once and THR is
     * empty again, which raises it anew: a fresh edge per byte. */
    s->thre_pending = false;
    s_update_irq(self, s);
    if (s->mcr & S_MCR_LOOP)
        s_rx_push(s, byte);
    else
        s_output(self, s, byte);
    s->thre_pending = true;
}

static void s_write_fcr(serial_t *s, uint8_t value)
{
    /* Switching the FIFOs on or off empties them. */
    if ((value ^ s->fcr) & S_FCR_ENABLE)
        value |= S_FCR_CLEAR_RX;
    if (value & S_FCR_CLEAR_RX) {
        s->counts.rx_cleared += s->rx_count;
        s->rx_head = s->rx_count = 0;
    }
    s->fcr = value & (S_FCR_ENABLE | S_FCR_TRIGGER);
}

static void s_write(rt_actor_t *self, serial_t *s, unsigned offset, uint8_t value)
{
    bool dlab = s->lcr & S_LCR_DLAB;
    switch (offset) {
    case S_RBR_THR:
        if (dlab)
            s->dll = value;
        else
            s_transmit(self, s, value);
        break;
    case S_IER:
        if (dlab) {
            s->dlm = value;
        } else {
            /* Enabling the THRE interrupt with THR empty raises it: Linux
             * checks for that. */
            if (!(s->ier & S_IER_THRE) && (value & S_IER_THRE))
                s->thre_pending = true;
            s->ier = value & S_IER_MASK;
        }
        break;
    case S_IIR_FCR:
        s_write_fcr(s, value);
        break;
    case S_LCR:
        s->lcr = value;
        break;
    case S_MCR:
        s->mcr = value & S_MCR_MASK;
        s_set_modem_inputs(s, s_modem_inputs(s));
        break;
    case S_SCR:
        s->scr = value;
        break;
    default: /* LSR and MSR: read-only */
        s->counts.ignored_writes++;
        break;
    }
}

static uint8_t s_read(serial_t *s, unsigned offset)
{
    bool dlab = s->lcr & S_LCR_DLAB;
    uint8_t value;
    switch (offset) {
    case S_RBR_THR:
        return dlab ? s->dll : s_rx_pop(s);
    case S_IER:
        return dlab ? s->dlm : s->ier;
    case S_IIR_FCR:
        value = s_iir(s);
        if ((value & 0x0f) == S_IIR_THRE)
            s->thre_pending = false; /* reading IIR takes the THRE interrupt */
        return value;
    case S_LCR:
        return s->lcr;
    case S_MCR:
        return s->mcr;
    case S_LSR:
        value = s_lsr(s);
        s->overrun = false;
        return value;
    case S_MSR:
        value = s->msr;
        s->msr &= (uint8_t)~S_MSR_DELTAS;
        return value;
    default:
        return s->scr;
    }
}

static void s_on_input(rt_actor_t *self, int fd)
{
    serial_t *s = rt_actor_state(self);
    uint8_t buf[S_FIFO];
    size_t room = s_rx_capacity(s) - s->rx_count;
    ssize_t n = room ? read(fd, buf, room) : 0;
    if (n > 0) {
        for (ssize_t i = 0; i < n; i++)
            s_rx_push(s, buf[i]);
        s->counts.rx_bytes += (uint64_t)n;
    } else if (n == 0 && room) {
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "input descriptor %d closed", fd);
        s->in_closed = true;
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "input descriptor %d: %s; input off", fd,
               strerror(errno));
        s->in_closed = true;
    }
    s_update_input(self, s);
    s_update_irq(self, s);
}

/* ---- The actor ---------------------------------------------------------- */

static int s_on_device_request(rt_actor_t *self, const Vmm__Envelope *msg)
{
    serial_t *s = rt_actor_state(self);
    device_access_t access;
    if (device_access_get(&s->dev, self, msg, &access))
        return 0;
    /* A wide access reaches consecutive registers, a byte each. */
    uint32_t value = 0;
    for (uint32_t i = 0; i < access.size; i++) {
        unsigned offset = access.port - s->base + i;
        if (access.write)
            s_write(self, s, offset, (uint8_t)(access.value >> (8 * i)));
        else
            value |= (uint32_t)s_read(s, offset) << (8 * i);
        s_update_input(self, s);
        s_update_irq(self, s);
    }
    return device_access_done(&s->dev, self, msg, &access, value);
}

static void s_release(rt_actor_t *self, serial_t *s)
{
    if (s->in_watched)
        rt_actor_unwatch_fd(self, s->in_fd);
    if (s->timer_fd >= 0) {
        rt_actor_unwatch_fd(self, s->timer_fd);
        close(s->timer_fd);
    }
    device_fini(&s->dev);
    free(s);
}

static int s_init(rt_actor_t *self, void *arg)
{
    const dev_serial_config_t *cfg = arg;
    if (!cfg || cfg->flush_delay_ms < 0)
        return -EINVAL;
    serial_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->base = cfg->base ? cfg->base : 0x3f8;
    s->irq = cfg->irq ? cfg->irq : 4;
    s->out_fd = cfg->out_fd;
    s->in_fd = cfg->in_fd;
    s->timer_fd = -1;
    s->flush_delay_ms = cfg->flush_delay_ms ? cfg->flush_delay_ms : S_DEFAULT_FLUSH_MS;
    s->msr = s_modem_inputs(s);
    s->dll = 1; /* 115200 baud */
    rt_actor_set_state(self, s);

    int rc = 0;
    if (s->out_fd >= 0) {
        s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        rc = s->timer_fd < 0 ? -errno : rt_actor_watch_fd(self, s->timer_fd, s_on_timer);
        if (rc && s->timer_fd >= 0) {
            close(s->timer_fd);
            s->timer_fd = -1;
        }
    }
    if (!rc)
        s_update_input(self, s);
    if (!rc) {
        const device_range_t ports = {s->base, S_PORTS};
        device_spec_t spec = {
            .name = cfg->name ? cfg->name : "com1",
            .ranges = &ports,
            .n_ranges = 1,
            .irq_lines = &s->irq,
            .n_irq_lines = 1,
            .posted_writes = true, /* ordered with later requests: nothing to wait for */
            .halt_if_lost = cfg->halt_if_lost,
        };
        rc = device_init(&s->dev, self, cfg->partition, &spec);
    }
    if (rc) {
        s_release(self, s);
        rt_actor_set_state(self, NULL);
    }
    return rc;
}

static void s_fini(rt_actor_t *self)
{
    serial_t *s = rt_actor_state(self);
    s_flush(self, s);
    s_release(self, s);
    rt_actor_set_state(self, NULL);
}

/* none: no descriptor; read: watched; held: left in the descriptor while
 * the FIFO is full or in loopback; closed: at its end or failed. */
static const char *s_input_state(const serial_t *s)
{
    if (s->in_fd < 0)
        return "none";
    if (s->in_closed)
        return "closed";
    return s->in_watched ? "read" : "held";
}

static void s_inspect(rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    serial_t *s = rt_actor_state(self);
    rt_inspect_add(node, "irq", "%u", s->irq);
    rt_inspect_add(node, "ier", "0x%02x", s->ier);
    rt_inspect_add(node, "iir", "0x%02x", s_iir(s));
    rt_inspect_add(node, "fcr", "0x%02x", s->fcr);
    rt_inspect_add(node, "lcr", "0x%02x", s->lcr);
    rt_inspect_add(node, "mcr", "0x%02x", s->mcr);
    rt_inspect_add(node, "lsr", "0x%02x", s_lsr(s));
    rt_inspect_add(node, "msr", "0x%02x", s->msr);
    rt_inspect_add(node, "scr", "0x%02x", s->scr);
    rt_inspect_add(node, "divisor", "%u", (unsigned)s->dlm << 8 | s->dll);
    rt_inspect_add(node, "rx_fifo", "%u", s->rx_count);
    rt_inspect_add(node, "irq_high", "%d", s->irq_high);
    rt_inspect_add(node, "input", "%s", s_input_state(s));
    rt_inspect_add(node, "tx_bytes", "%llu", (unsigned long long)s->counts.tx_bytes);
    rt_inspect_add(node, "rx_bytes", "%llu", (unsigned long long)s->counts.rx_bytes);
    rt_inspect_add(node, "overruns", "%llu", (unsigned long long)s->counts.overruns);
    rt_inspect_add(node, "rx_cleared", "%llu", (unsigned long long)s->counts.rx_cleared);
    rt_inspect_add(node, "out_lost", "%llu", (unsigned long long)s->counts.out_lost);
    rt_inspect_add(node, "irqs", "%llu", (unsigned long long)s->counts.irqs);
    rt_inspect_add(node, "ignored_writes", "%llu", (unsigned long long)s->counts.ignored_writes);
    device_inspect(&s->dev, node);
}

static const rt_handler_t s_handlers[] = {
    {VMM__ENVELOPE__BODY_DEVICE_REQUEST, s_on_device_request},
};

const rt_actor_ops_t dev_serial_ops = {
    .kind = "serial",
    .init = s_init,
    .fini = s_fini,
    .handlers = s_handlers,
    .n_handlers = sizeof s_handlers / sizeof *s_handlers,
    .inspect = s_inspect,
};
