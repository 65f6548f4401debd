/*
 * dev_serial: a 16550A UART (COM1 by default: ports 0x3f8-0x3ff, IRQ 4),
 * enough for a polling guest and for Linux's 8250 driver.
 *
 * Bytes the guest transmits go to the host output descriptor, a line at a
 * time: written on a newline, when the buffer is full, flush_delay_ms after
 * the first byte still waiting, and on terminate; never reordered. Bytes
 * read from the host input descriptor enter the 16-byte receive FIFO; the
 * descriptor is read only while the FIFO has room, so host input is never
 * dropped. In loopback mode transmitted bytes are received instead, and
 * those that find the FIFO full are lost as on the chip: counted as
 * overruns and flagged in LSR.
 *
 * Interrupts: when the UART's interrupt output rises (an enabled source
 * pending, MCR OUT2 set, not in loopback), the device sends AssertIrq for
 * its irq to the partition actor.
 *
 * Writes may be posted: the device registers with posted_writes.
 */
#ifndef VMM_DEV_SERIAL_H
#define VMM_DEV_SERIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/rt.h"

typedef struct {
    const char *name;      /* registration name; NULL: "com1" */
    const char *partition; /* e.g. "vm0/partition"; NULL: not registered, no
                              interrupts sent (unit tests) */
    uint16_t base;         /* first of 8 ports; 0: 0x3f8 */
    uint8_t irq;           /* IO-APIC input; 0: 4 */
    int out_fd;            /* the guest's output goes here; -1: discarded */
    int in_fd;             /* the guest's input comes from here; -1: none */
    int flush_delay_ms;    /* longest wait of a partial line; 0: 5 ms */
    bool halt_if_lost;     /* in a device host: the VM halts a VP that
                              touches the UART once the host is lost */
} dev_serial_config_t;

/* Starts with arg a dev_serial_config_t *, copied by init. The descriptors
 * stay the caller's: it closes them after the actor has terminated. */
extern const rt_actor_ops_t dev_serial_ops;

#endif
