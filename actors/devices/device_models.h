/*
 * The device models this VMM has, by kind ("serial", "testdev"): how a
 * trace's recipe names a model, and how a replay finds it again.
 */
#ifndef VMM_DEVICE_MODELS_H
#define VMM_DEVICE_MODELS_H

#include "actors/devices/device.h"

/* The constructor of the model of this kind, or NULL. */
device_new_fn device_model_find(const char *kind);

/* The kind of the model this constructor makes, or NULL for one the table
 * does not hold. */
const char *device_model_kind(device_new_fn new_model);

/* The kinds, joined by ", ", for messages. */
const char *device_model_kinds(void);

/*
 * A model whose configuration is given as text, as a command line and a
 * trace's recipe give it: "KEY=VALUE,..." for the kinds that take one
 * (virtio-blk, virtio-console, virtio-rng):
 *
 *   name=NAME    its name in the VM (default: the kind)
 *   base=ADDR    its register block's guest physical address (needed)
 *   irq=N        its IO-APIC input, 0 to 23 (needed)
 *   file=PATH    virtio-blk's disk image (needed there)
 *   readonly     virtio-blk: the guest may not write
 *   serial=ID    virtio-blk: what GET_ID answers (20 bytes at most)
 *
 * Returns the model, or NULL with errno set and a one-line reason in err:
 * EINVAL for a key the kind does not take, a value out of range or one
 * missing; the constructor's errno otherwise (ENOENT: no such image).
 */
device_t *device_model_new_args(device_new_fn new_model, const char *args, device_env_t *env,
                                char *err, size_t errlen);

/* Whether models of this constructor take their configuration as text. */
bool device_model_takes_args(device_new_fn new_model);

#endif
