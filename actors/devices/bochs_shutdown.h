/*
 * dev_bochs_shutdown: the Bochs BIOS shutdown port (0x8900), which old
 * QEMU PC machines had too. Byte writes that spell "Shutdown", in order and
 * with nothing between, power the VM off (without an exit code: the VMM
 * exits 0). A wrong byte starts the match again, an 'S' as its first
 * letter. Reads return all ones at any width, as in Bochs and QEMU, where
 * the port has no reader. It claims the one port, as QEMU did: wider
 * accesses run past it and the device actor refuses them (QEMU's memory
 * core would pass a wider write's low byte on; Bochs compared the whole
 * value). Writes are not posted: the VP resumes only after a power request
 * has left.
 */
#ifndef VMM_DEV_BOCHS_SHUTDOWN_H
#define VMM_DEV_BOCHS_SHUTDOWN_H

#include "actors/devices/device.h"

/* A device_new_fn; it takes no configuration (config is ignored). */
device_t *dev_bochs_shutdown_new(const void *config, device_env_t *env);

#endif
