/*
 * dev_serial: a 16550A UART (COM1 by default: ports 0x3f8-0x3ff, IRQ 4),
 * enough for a polling guest and for Linux's 8250 driver. The register
 * behaviour follows the National Semiconductor PC16550D datasheet.
 *
 * Its line is the device's console (device_console_write() and the rest):
 * a byte the guest transmits leaves at once while the console has room,
 * and the transmitter shows busy (LSR THRE and TEMT clear, no THRE
 * interrupt) while it has none, so that a guest that waits for THRE loses
 * nothing; a byte written to a busy transmitter is lost and counted, as on
 * the chip. Input enters the 16-byte receive FIFO; the model asks its
 * console only for what fits, so host input is never dropped. In loopback
 * mode transmitted bytes are received instead, and those that find the
 * FIFO full are lost as on the chip: counted as overruns and flagged in
 * LSR.
 *
 * Its interrupt output is the level of its IRQ line: high while an enabled
 * source is pending, MCR OUT2 is set (a PC wires the interrupt through it)
 * and not in loopback.
 */
#ifndef VMM_DEV_SERIAL_H
#define VMM_DEV_SERIAL_H

#include <stdint.h>

#include "actors/devices/device.h"

typedef struct {
    const char *name; /* registration name; NULL: "com1" */
    uint16_t base;    /* first of 8 ports; 0: 0x3f8 */
    uint8_t irq;      /* IO-APIC input; 0: 4 */
} dev_serial_config_t;

/* A device_new_fn: config is a dev_serial_config_t * (NULL: COM1). The
 * name is copied. */
device_t *dev_serial_new(const void *config, device_env_t *env);

#endif
