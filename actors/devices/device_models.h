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

#endif
