/*
 * dev_i8042: a PC keyboard controller (ports 0x60 and 0x64) with no
 * keyboard or mouse behind it, enough for a guest to reset the machine and
 * for Linux's probe: the status register (0x64: output buffer full, the
 * system flag, whether the last write was a command), the command byte,
 * and the commands a guest uses at boot:
 *
 *   0x20 / 0x60  read / write the command byte (its data at 0x60)
 *   0xaa         controller self-test: answers 0x55
 *   0xab         keyboard interface test: answers 0x00
 *   0xad / 0xae  disable / enable the keyboard (command byte bit 4)
 *   0xd1         write the output port (its data at 0x60): bit 0 clear
 *                pulls the reset line
 *   0xfe         pulse the reset line
 *
 * A reset asks the VMM to reset the VM. Answers wait in the output buffer
 * (read at 0x60); other commands, and bytes for the absent keyboard, are
 * counted and ignored. It raises no interrupt: nothing behind it types.
 * Writes are not posted: the VP resumes only after a reset request left.
 */
#ifndef VMM_DEV_I8042_H
#define VMM_DEV_I8042_H

#include "actors/devices/device.h"

/* A device_new_fn; it takes no configuration (config is ignored). */
device_t *dev_i8042_new(const void *config, device_env_t *env);

#endif
