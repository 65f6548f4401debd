/*
 * Snapshots of a VM (proto/snapshot.proto, docs/snapshot-format.md): the
 * VM's owner writes one of its stopped VM into a new folder, the
 * partition's state (its synic's with it), each VP's, each device's, and
 * guest RAM; and restores one into a VM built again as its Machine says.
 * Everything goes by the actors' own requests, as the owner may make them.
 */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/snapshot.pb-c.h"
#include "runtime/rt.h"

#define SNAPSHOT_FORMAT_VERSION 1
#define SNAPSHOT_MANIFEST "snapshot.pb"
#define SNAPSHOT_RAM "ram"

/* The GNU build ID of this program, in hex, into buf (41 bytes at least).
 * Returns 0, or -ENOENT when it was linked without one. */
int snapshot_build_id(char *buf, size_t size);

/*
 * Writes a snapshot of the VM driven by `owner` (its VPs stopped) into
 * dir, made mode 0700 (one that exists is refused): the VM's partition
 * `partition`, its n_vps VPs "<vm>/vp/<i>" and every device the partition
 * lists. machine is copied into the manifest. Returns 0, or a negative
 * errno with a one-line reason in err (the folder is then removed).
 */
int snapshot_write(rt_actor_t *owner, const char *partition, const char *vm, uint32_t n_vps,
                   const Vmm__Snapshot__Machine *machine, const char *dir, char *err,
                   size_t errlen);

/* Removes a snapshot's folder and the files in it. */
void snapshot_remove(const char *dir);

/* Reads dir's manifest, refusing another format or build, or one missing a
 * piece. *out is the caller's (vmm__snapshot__snapshot__free_unpacked(*out,
 * NULL)), NULL on failure. Returns 0, or a negative errno with a one-line
 * reason in err. */
int snapshot_read(const char *dir, Vmm__Snapshot__Snapshot **out, char *err, size_t errlen);

/* Restores snap (read from dir) into the VM driven by `owner`, built as
 * snap's machine says and not yet run: guest RAM, the partition and each
 * VP. Guest RAM is filled on demand behind the running guest where the
 * partition can (partition.proto LoadMemory), read back first with copy.
 * Returns 0, or a negative errno with a reason in err. */
int snapshot_restore(rt_actor_t *owner, const char *partition, const char *vm,
                     const Vmm__Snapshot__Snapshot *snap, const char *dir, bool copy, char *err,
                     size_t errlen);

/* Restores the state of snap's devices whose names ("com1") are among
 * names[0..n_names) when `named`, or are not when !named: those in the
 * VMM's process first, those of device hosts once registered. Returns 0,
 * or a negative errno with a reason in err. */
int snapshot_restore_devices(rt_actor_t *owner, const Vmm__Snapshot__Snapshot *snap,
                             const char *const *names, size_t n_names, bool named, char *err,
                             size_t errlen);

#endif
