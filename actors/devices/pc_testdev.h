/*
 * dev_pc_testdev: QEMU's pc-testdev (hw/misc/pc-testdev.c), the device
 * kvm-unit-tests drive on x86, with what a guest sees of it:
 *
 *   ports 0xe0-0xe3     a 32-bit latch: an access of 1, 2 or 4 bytes reads
 *                       or writes its bytes at the port's offset
 *   port 0xe4           flush-page: a 4-byte write of a guest physical
 *                       address; reads return 0
 *   ports 0xe8-0xeb     the same latch (QEMU implements it a byte at a time)
 *   ports 0x2000-0x2017 a byte written at 0x2000 + n sets IRQ line n (the
 *                       IO-APIC's input n) to !!byte, a level; reads return 0
 *   MMIO 0xff000000     64 KiB that read back what was written, at any width
 *
 * Port accesses are cut as QEMU's memory core cuts them: into pieces inside
 * one of the regions above and no wider than the region takes (4 bytes; 1
 * for the IRQ lines, so a wider write sets one line per byte). A piece of
 * the flush port narrower than 4 bytes is refused as QEMU refuses it,
 * logged and counted: it reads as 0 and writes nothing. An access that is
 * all refused is refused (the VP counts it, and a read sees all ones where
 * QEMU's reads 0).
 *
 * QEMU flushes by mprotect()ing the host page, so that KVM faults it in
 * again; a model cannot reach the host's mappings, so it checks that the
 * page is guest RAM by reading it, and counts the flush (or logs and counts
 * an address outside RAM, which QEMU ignores). Nothing else the guest could
 * see. QEMU asserts on lines 16 to 23, which its ISA bus lacks; here they
 * are the IO-APIC's inputs 16 to 23, as in the first pc-testdev. Writes are
 * not posted: an interrupt is raised before the VP goes on.
 */
#ifndef VMM_DEV_PC_TESTDEV_H
#define VMM_DEV_PC_TESTDEV_H

#include "actors/devices/device.h"

/* A device_new_fn; it takes no configuration (config is ignored). */
device_t *dev_pc_testdev_new(const void *config, device_env_t *env);

#endif
