/*
 * Devices named on the command line, `vmm run --device` and `vmm devhost
 * --device`: KIND[,host=ipc|tcp|remote][,required].
 *
 *   KIND      serial (COM1) or testdev (the test device, which raises the
 *             demo guest's MSI)
 *   host=     where it runs: in the VM's process (no host=), in a device
 *             host vmm starts over ipc:// or over tcp:// on this machine,
 *             or in a device host started elsewhere (remote)
 *   required  the VM cannot do without it: once its host is lost, a VP
 *             that touches it halts
 */
#ifndef VMM_DEVICE_ARG_H
#define VMM_DEVICE_ARG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { DEVICE_ARG_SERIAL, DEVICE_ARG_TESTDEV } device_arg_kind_t;

typedef enum {
    DEVICE_ARG_IN_VM = 0,
    DEVICE_ARG_IPC,
    DEVICE_ARG_TCP,
    DEVICE_ARG_REMOTE,
} device_arg_host_t;

typedef struct {
    device_arg_kind_t kind;
    device_arg_host_t host;
    bool required;
} device_arg_t;

/* Parses s into *out; host= only when allow_host. Returns 0, or -EINVAL
 * with a one-line reason in err. */
int device_arg_parse(const char *s, bool allow_host, device_arg_t *out, char *err,
                     size_t errlen);

/* The device's name in the VM ("com1", "testdev") and its actor's. */
const char *device_arg_name(device_arg_kind_t kind);
const char *device_arg_actor(device_arg_kind_t kind);

/* How the device is written on the command line, without host=. */
void device_arg_format(const device_arg_t *d, char *buf, size_t size);

#endif
