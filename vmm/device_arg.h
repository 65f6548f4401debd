/*
 * Devices named on the command line, `vmm run --device` and `vmm devhost
 * --device`:
 *
 *   KIND[,host=ipc|tcp|remote][,required][,SETTING...]
 *
 *   KIND      serial (COM1), testdev (the test device, which raises the
 *             demo guest's MSI), virtio-blk, virtio-console or virtio-rng
 *   host=     where it runs: in the VM's process (no host=), in a device
 *             host vmm starts over ipc:// or over tcp:// on this machine,
 *             or in a device host started elsewhere (remote)
 *   required  the VM cannot do without it: once its host is lost, a VP
 *             that touches it halts
 *
 * Settings of the virtio devices (virtio-mmio, as Firecracker places them):
 *
 *   file=PATH  virtio-blk: its raw disk image (needed); virtio-console: the
 *              file its output goes to (default: stdout, and input from
 *              stdin)
 *   readonly   virtio-blk: the guest may not write
 *   name=NAME  its name in the VM (default: the kind and a number counting
 *              from 0, "virtio-blk0")
 *   base=ADDR  its 4 KiB register block (default: 0xd0000000 for the first
 *              virtio device, then each 4 KiB on)
 *   irq=N      its IO-APIC input (default: 5, 6, 7, 10, 11 in turn)
 *
 * Values may not hold commas.
 */
#ifndef VMM_DEVICE_ARG_H
#define VMM_DEVICE_ARG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DEVICE_ARG_SERIAL,
    DEVICE_ARG_TESTDEV,
    DEVICE_ARG_VIRTIO_BLK,
    DEVICE_ARG_VIRTIO_CONSOLE,
    DEVICE_ARG_VIRTIO_RNG,
} device_arg_kind_t;

typedef enum {
    DEVICE_ARG_IN_VM = 0,
    DEVICE_ARG_IPC,
    DEVICE_ARG_TCP,
    DEVICE_ARG_REMOTE,
} device_arg_host_t;

#define DEVICE_ARG_VIRTIO_BASE 0xd0000000ull
#define DEVICE_ARG_VIRTIO_SIZE 0x1000ull

typedef struct {
    device_arg_kind_t kind;
    device_arg_host_t host;
    bool required;
    char file[4096]; /* file=; "" for none */
    bool readonly;
    /* The name in the VM ("com1", "virtio-blk0") and the actor's
     * ("vm0/dev/com1"); a virtio device's block and line. Given, or set by
     * device_arg_place(). */
    char name[32], actor[48];
    uint64_t base;
    uint32_t irq;
    bool has_base, has_irq;
} device_arg_t;

/* Parses s into *out; host= only when allow_host. Returns 0, or -EINVAL with a one-line reason in err. */
int device_arg_parse(const char *s, bool allow_host, device_arg_t *out, char *err,
                     size_t errlen);

/* Whether it is a virtio device. */
bool device_arg_virtio(const device_arg_t *d);

/*
 * Names and places the virtio devices of a command line that were given no
 * name, block or line, in order; then checks that no two devices share a
 * name, a block or a line, and that serial and testdev come once. Returns
 * 0, or -EINVAL with the reason in err.
 */
int device_arg_place(device_arg_t *devices, size_t n, char *err, size_t errlen);

/* How the device is written on a device host's command line, placed,
 * without host=. */
void device_arg_format(const device_arg_t *d, char *buf, size_t size);

/* A virtio device's model settings (device_models.h). */
void device_arg_model_args(const device_arg_t *d, char *buf, size_t size);

/* What a Linux kernel is told of a virtio device on its command line
 * ("virtio_mmio.device=4K@0xd0000000:5"). */
void device_arg_linux(const device_arg_t *d, char *buf, size_t size);

#endif
