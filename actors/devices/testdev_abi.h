/*
 * The test device's port interface, shared by test guests (guest/) and the
 * device actor (dev_testdev_). Plain constants only: guests are built
 * freestanding.
 *
 * A guest call, in the manner of the KVM selftests' ucall: the guest pushes
 * up to TESTDEV_MAX_ARGS 32-bit arguments with `outl` to TESTDEV_PORT_ARG,
 * then writes the call's kind with `outl` to TESTDEV_PORT_CALL. The device
 * reports the call (devices.proto GuestCall) and forgets the arguments.
 *
 * An MSI on request: `outl` of (destination APIC id << 8) | vector to
 * TESTDEV_PORT_MSI makes the device ask the partition actor for that MSI
 * (fixed delivery, physical destination, edge).
 *
 * A slow register: `outl` of a delay in ms to TESTDEV_PORT_DELAY; an
 * `inl` from it is then answered that much later (the device defers it),
 * with the delay as its value.
 *
 * A line: `outl` of 1 or 0 to TESTDEV_PORT_LINE sets the level of IO-APIC
 * input TESTDEV_IRQ; an `inl` reads the level back.
 */
#ifndef VMM_TESTDEV_ABI_H
#define VMM_TESTDEV_ABI_H

#define TESTDEV_PORT_BASE 0x5e0
#define TESTDEV_PORT_CALL 0x5e0
#define TESTDEV_PORT_ARG 0x5e4
#define TESTDEV_PORT_MSI 0x5e8
#define TESTDEV_PORT_DELAY 0x5ec
#define TESTDEV_PORT_LINE 0x5f0
#define TESTDEV_PORT_COUNT 20

#define TESTDEV_IRQ 10

#define TESTDEV_MAX_ARGS 8

#define TESTDEV_CALL_SYNC 1   /* args: the sync point's number, ... */
#define TESTDEV_CALL_ASSERT 2 /* args: the line; the text went to COM1 */
#define TESTDEV_CALL_DONE 3   /* no args */

#endif
