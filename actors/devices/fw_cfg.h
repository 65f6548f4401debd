/*
 * dev_fw_cfg: QEMU's firmware configuration device (its docs/specs/fw_cfg.rst),
 * the I/O port interface only, without DMA: the interface item says 1.
 *
 * The guest writes a 16-bit key to the selector (port 0x510), which
 * restarts the item's offset, then reads the item a byte at a time at the
 * data port (0x511); past the item's end, and for a key with no item, bytes
 * read as 0. As in QEMU the two ports are one region: a byte read at either
 * reads data, a byte write at either is ignored (QEMU dropped data writes in
 * v2.4) and a 16-bit write at 0x510 selects. A 16-bit read of 0x510 is
 * refused, logged and counted, as QEMU refuses it; wider accesses run past
 * the two ports and the device actor refuses them. Bits 14 (write channel)
 * and 15 (architecture-local) of a key are not part of its index; no
 * architecture-local key has an item here.
 *
 * Items, little endian but the directory:
 *
 *   0x00  "QEMU"                0x05  the CPUs (u16)
 *   0x01  the interface: 1      0x0f  the maximum CPUs (u16)
 *   0x03  the RAM size (u64)    0x19  the file directory
 *
 * The directory is a big-endian u32 count, then per file its size (u32),
 * its key (u16), a reserved u16 and its name in 56 bytes, NUL-padded, all
 * big endian. Files are sorted by name (strcmp) and take the keys from 0x20
 * in that order, as QEMU lays them out; every other key reads as zeros.
 * Writes are posted: a select is seen by nothing but the device's next read.
 */
#ifndef VMM_DEV_FW_CFG_H
#define VMM_DEV_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "actors/devices/device.h"

/* QEMU's default file slots: keys 0x20 to 0x3f. */
#define DEV_FW_CFG_MAX_FILES 32
/* A file name's length, without its NUL (the directory holds 56 bytes). */
#define DEV_FW_CFG_NAME_MAX 55

typedef struct {
    const char *name; /* e.g. "etc/boot-fail-wait"; unique, 1 to 55 bytes */
    const uint8_t *bytes;
    size_t len; /* below 4 GiB - 1, as QEMU's items */
} dev_fw_cfg_file_t;

typedef struct {
    uint16_t n_cpus;   /* at least 1 */
    uint16_t max_cpus; /* at least n_cpus; 0: n_cpus */
    uint64_t ram_size; /* bytes */
    const dev_fw_cfg_file_t *files; /* copied: the caller's still */
    size_t n_files;
} dev_fw_cfg_config_t;

/* A device_new_fn: config is a dev_fw_cfg_config_t * (NULL: one CPU, no
 * RAM size, no files). EINVAL for a configuration that breaks the limits
 * above or names a file twice. */
device_t *dev_fw_cfg_new(const void *config, device_env_t *env);

#endif
