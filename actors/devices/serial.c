/*
 * dev_serial: a 16550A UART. Transmission takes no time: a byte leaves
 * for the console as THR is written, so THR and the transmitter are empty
 * again at once unless the console has no room.
 */
#include "actors/devices/serial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device_state.pb-c.h"

#define S_PORTS 8
#define S_FIFO 16
/* Host input held while the FIFO has no room (loopback, FIFOs switched
 * off): never more than the model asked its console for. */
#define S_BACKLOG (2 * S_FIFO)

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
    char name[32];
    uint16_t base;
    uint8_t irq;

    uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
    bool overrun;      /* LSR OE, until LSR is read */
    bool thre_pending; /* the THR empty interrupt, until IIR shows it or THR is written */
    bool irq_high;     /* the interrupt output as last set */

    uint8_t rx[S_FIFO];
    unsigned rx_head, rx_count;
    uint8_t backlog[S_BACKLOG];
    unsigned backlog_len;

    struct {
        uint64_t tx_bytes, rx_bytes;
        uint64_t tx_lost;        /* written while the transmitter was busy */
        uint64_t overruns;       /* received bytes lost to a full FIFO */
        uint64_t rx_cleared;     /* received bytes the guest discarded (FCR) */
        uint64_t irqs;           /* rises of the interrupt output */
        uint64_t ignored_writes; /* to the read-only LSR and MSR */
    } counts;
} serial_t;

static serial_t *s_of(device_t *dev)
{
    return (serial_t *)dev;
}

/* ---- The line ------------------------------------------------------------------- */

static bool s_loop(const serial_t *s)
{
    return s->mcr & S_MCR_LOOP;
}

/* Whether THR can take a byte: in loopback always, else while the console
 * has room. */
static bool s_thr_empty(serial_t *s)
{
    return s_loop(s) || device_console_room(&s->dev) > 0;
}

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

/* Moves host input into the FIFO while it has room (the receiver is cut
 * off from the line in loopback), and asks the console for as much more
 * as then fits. */
static void s_pump_input(serial_t *s)
{
    if (s_loop(s))
        return;
    unsigned moved = 0;
    while (moved < s->backlog_len && s->rx_count < s_rx_capacity(s)) {
        s_rx_push(s, s->backlog[moved++]);
        s->counts.rx_bytes++;
    }
    memmove(s->backlog, s->backlog + moved, s->backlog_len - moved);
    s->backlog_len -= moved;
    unsigned used = s->rx_count + s->backlog_len;
    if (used < s_rx_capacity(s))
        device_console_want(&s->dev, s_rx_capacity(s) - used);
}

/* ---- Interrupts ----------------------------------------------------------------- */

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

static uint8_t s_lsr(serial_t *s)
{
    return (s->rx_count ? S_LSR_DR : 0) | (s->overrun ? S_LSR_OE : 0) |
           (s_thr_empty(s) ? S_LSR_THRE | S_LSR_TEMT : 0);
}

/* A PC wires the interrupt through OUT2, whose pin loopback mode forces
 * inactive. */
static void s_update_irq(serial_t *s)
{
    bool high = s_iir_id(s) != S_IIR_NONE && (s->mcr & S_MCR_OUT2) && !s_loop(s);
    if (high && !s->irq_high)
        s->counts.irqs++;
    if (high != s->irq_high)
        device_irq_set(&s->dev, s->irq, high);
    s->irq_high = high;
}

/* ---- Modem lines ---------------------------------------------------------------- */

/* The modem inputs: in loopback the outputs fed back, otherwise a host
 * that is always ready (CTS, DSR and DCD on). */
static uint8_t s_modem_inputs(const serial_t *s)
{
    if (!s_loop(s))
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

/* ---- Registers ------------------------------------------------------------------ */

static void s_transmit(serial_t *s, uint8_t byte)
{
    /* Writing THR clears its interrupt; the byte leaves at once and THR is
     * empty again, which raises it anew: a fresh edge per byte. */
    s->thre_pending = false;
    s_update_irq(s);
    if (s_loop(s)) {
        s_rx_push(s, byte);
    } else if (device_console_write(&s->dev, &byte, 1) == 1) {
        s->counts.tx_bytes++;
    } else {
        s->counts.tx_lost++; /* written while THRE showed it busy */
    }
    /* With no room left, THR stays full until the console has some. */
    s->thre_pending = s_thr_empty(s);
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

static void s_write_reg(serial_t *s, unsigned offset, uint8_t value)
{
    bool dlab = s->lcr & S_LCR_DLAB;
    switch (offset) {
    case S_RBR_THR:
        if (dlab)
            s->dll = value;
        else
            s_transmit(s, value);
        break;
    case S_IER:
        if (dlab) {
            s->dlm = value;
        } else {
            /* Enabling the THRE interrupt with THR empty raises it: Linux
             * checks for that. */
            if (!(s->ier & S_IER_THRE) && (value & S_IER_THRE) && s_thr_empty(s))
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

static uint8_t s_read_reg(serial_t *s, unsigned offset)
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

/* A wide access reaches consecutive registers, a byte each. */
static int s_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    serial_t *s = s_of(dev);
    *value = 0;
    for (uint32_t i = 0; i < io->size; i++) {
        *value |= (uint64_t)s_read_reg(s, (unsigned)(io->address - s->base) + i) << (8 * i);
        s_pump_input(s);
        s_update_irq(s);
    }
    return 0;
}

static int s_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    serial_t *s = s_of(dev);
    for (uint32_t i = 0; i < io->size; i++) {
        s_write_reg(s, (unsigned)(io->address - s->base) + i, (uint8_t)(value >> (8 * i)));
        s_pump_input(s);
        s_update_irq(s);
    }
    return 0;
}

/* ---- Its console ---------------------------------------------------------------- */

static void s_console_input(device_t *dev, const uint8_t *bytes, size_t len)
{
    serial_t *s = s_of(dev);
    for (size_t i = 0; i < len; i++) {
        if (s->backlog_len < S_BACKLOG) {
            s->backlog[s->backlog_len++] = bytes[i];
        } else {
            s->counts.overruns++; /* more than was asked for */
            s->overrun = true;
        }
    }
    s_pump_input(s);
    s_update_irq(s);
}

static void s_console_ready(device_t *dev)
{
    serial_t *s = s_of(dev);
    if (s_loop(s))
        return;
    s->thre_pending = true; /* THR has emptied */
    s_update_irq(s);
}

/* ---- Its life ------------------------------------------------------------------- */

static void s_reset(device_t *dev)
{
    serial_t *s = s_of(dev);
    s->ier = s->lcr = s->mcr = s->scr = s->fcr = s->dlm = 0;
    s->dll = 1; /* 115200 baud */
    s->overrun = s->thre_pending = false;
    s->counts.rx_cleared += s->rx_count;
    s->rx_head = s->rx_count = 0;
    s->msr = s_modem_inputs(s);
    s_pump_input(s); /* host input waiting is the host's: it stays */
    s_update_irq(s);
}

static void s_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    serial_t *s = s_of(dev);
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
    rt_inspect_add(node, "host_input_waiting", "%u", s->backlog_len);
    rt_inspect_add(node, "irq_high", "%d", s->irq_high);
    device_inspect_count(node, "tx_bytes", s->counts.tx_bytes);
    device_inspect_count(node, "rx_bytes", s->counts.rx_bytes);
    device_inspect_count(node, "tx_lost", s->counts.tx_lost);
    device_inspect_count(node, "overruns", s->counts.overruns);
    device_inspect_count(node, "rx_cleared", s->counts.rx_cleared);
    device_inspect_count(node, "irqs", s->counts.irqs);
    device_inspect_count(node, "ignored_writes", s->counts.ignored_writes);
}

static int s_save(device_t *dev, ProtobufCBinaryData *out)
{
    serial_t *s = s_of(dev);
    uint8_t rx[S_FIFO];
    for (unsigned i = 0; i < s->rx_count; i++)
        rx[i] = s->rx[(s->rx_head + i) % S_FIFO];
    Vmm__DeviceState__Serial st = VMM__DEVICE_STATE__SERIAL__INIT;
    st.ier = s->ier, st.lcr = s->lcr, st.mcr = s->mcr, st.msr = s->msr, st.scr = s->scr;
    st.dll = s->dll, st.dlm = s->dlm, st.fcr = s->fcr;
    st.overrun = s->overrun;
    st.thre_pending = s->thre_pending;
    st.rx = (ProtobufCBinaryData){s->rx_count, rx};
    st.host_input = (ProtobufCBinaryData){s->backlog_len, s->backlog};
    return device_pack_state(&st.base, out);
}

static bool s_state_valid(const Vmm__DeviceState__Serial *st)
{
    unsigned capacity = (st->fcr & S_FCR_ENABLE) ? S_FIFO : 1;
    return st->ier <= S_IER_MASK && st->lcr <= 0xff && st->mcr <= S_MCR_MASK &&
           st->msr <= 0xff && st->scr <= 0xff && st->dll <= 0xff && st->dlm <= 0xff &&
           !(st->fcr & ~(uint32_t)(S_FCR_ENABLE | S_FCR_TRIGGER)) && st->rx.len <= capacity &&
           st->host_input.len <= S_BACKLOG;
}

static int s_restore(device_t *dev, const uint8_t *bytes, size_t len)
{
    Vmm__DeviceState__Serial *st = vmm__device_state__serial__unpack(NULL, len, bytes);
    if (!st)
        return -EINVAL;
    if (!s_state_valid(st)) {
        vmm__device_state__serial__free_unpacked(st, NULL);
        return -EINVAL;
    }
    serial_t *s = s_of(dev);
    s->ier = (uint8_t)st->ier, s->lcr = (uint8_t)st->lcr, s->mcr = (uint8_t)st->mcr;
    s->msr = (uint8_t)st->msr, s->scr = (uint8_t)st->scr, s->dll = (uint8_t)st->dll;
    s->dlm = (uint8_t)st->dlm, s->fcr = (uint8_t)st->fcr;
    s->overrun = st->overrun;
    s->thre_pending = st->thre_pending;
    s->rx_head = 0;
    s->rx_count = (unsigned)st->rx.len;
    for (unsigned i = 0; i < s->rx_count; i++)
        s->rx[i] = st->rx.data[i];
    s->backlog_len = (unsigned)st->host_input.len;
    for (unsigned i = 0; i < s->backlog_len; i++)
        s->backlog[i] = st->host_input.data[i];
    vmm__device_state__serial__free_unpacked(st, NULL);
    s_pump_input(s);
    s_update_irq(s);
    return 0;
}

static void s_destroy(device_t *dev)
{
    free(s_of(dev));
}

static const device_ops_t s_ops = {
    .kind = "serial",
    .read = s_read,
    .write = s_write,
    .reset = s_reset,
    .inspect = s_inspect,
    .save = s_save,
    .restore = s_restore,
    .console_input = s_console_input,
    .console_ready = s_console_ready,
    .destroy = s_destroy,
};

device_t *dev_serial_new(const void *config, device_env_t *env)
{
    const dev_serial_config_t *cfg = config;
    serial_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->name, sizeof s->name, "%s", cfg && cfg->name ? cfg->name : "com1");
    s->base = cfg && cfg->base ? cfg->base : 0x3f8;
    s->irq = cfg && cfg->irq ? cfg->irq : 4;
    s->dev = (device_t){.ops = &s_ops, .env = env};
    s->dev.spec = (device_spec_t){
        .name = s->name,
        .n_ranges = 1,
        .ranges = {{.start = s->base, .len = S_PORTS}},
        .n_irq_lines = 1,
        .irq_lines = {s->irq},
        /* Nothing a write does is seen elsewhere before the UART's next
         * access: its output is ordered by the UART itself. */
        .posted_writes = true,
    };
    s_reset(&s->dev);
    return &s->dev;
}
