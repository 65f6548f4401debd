/*
 * dev_hyperv_testdev: QEMU's hyperv-testdev (hw/misc/hyperv_testdev.c), the
 * device kvm-unit-tests' Hyper-V SynIC tests drive, on this VMM's synic
 * actor through the device environment. One 4-byte port at 0x3000; a write
 * of (connection id << 24) | (control << 16) | (VP index << 8) | SINT:
 *
 *   1  create a SINT route to (VP, SINT)       2  destroy one
 *   3  assert the SINT of an existing route (no message, no flag)
 *   4  create a message connection: what the guest posts (HvPostMessage)
 *      to the connection id comes back as the same message to (VP, SINT)
 *   5  destroy it (by connection id)
 *   6  create an event connection: a guest HvSignalEvent to the connection
 *      id sets event flag number <connection id> of (VP, SINT) and
 *      interrupts it
 *   7  destroy it
 *
 * Other controls are ignored, as QEMU ignores them (counted). Reads return
 * 0. Accesses of another width are refused, as QEMU's port refuses them.
 * Where QEMU asserts (a route or connection that is not there, one made
 * twice), the model refuses the write, logs and counts it. The echo of a
 * message waits in the synic's queue for a busy slot instead of failing
 * the guest's post with HV_STATUS_INSUFFICIENT_BUFFERS: the synic told the
 * guest its post succeeded before the device saw it. Writes are not
 * posted: what a write makes exists before the VP goes on.
 */
#ifndef VMM_DEV_HYPERV_TESTDEV_H
#define VMM_DEV_HYPERV_TESTDEV_H

#include "actors/devices/device.h"

#define DEV_HYPERV_TESTDEV_PORT 0x3000
#define DEV_HYPERV_TESTDEV_MAX 16 /* routes, and connections of each kind */

/* A device_new_fn; it takes no configuration (config is ignored). */
device_t *dev_hyperv_testdev_new(const void *config, device_env_t *env);

#endif
