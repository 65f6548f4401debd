/* Snapshots of a VM (snapshot.h). */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "vmm/snapshot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/files.h"

#define S_CALL_MS 10000
/* Writing a large guest RAM takes a while. */
#define S_RAM_MS 120000
/* A guest or kernel of up to 256 MiB and an initrd of up to 1 GiB (main.c),
 * and room for the rest. */
#define S_MAX_MANIFEST (1344ull << 20)

/* ---- The build ---------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t size;
    int rc;
} s_build_t;

static int s_find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    s_build_t *b = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *n;
            const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
            if (desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                if (2 * n->n_descsz + 1 > b->size) {
                    b->rc = -ENOSPC;
                    return 1;
                }
                for (uint32_t k = 0; k < n->n_descsz; k++)
                    sprintf(b->buf + 2 * k, "%02x", desc[k]);
                b->rc = 0;
                return 1;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 1; /* the program comes first: not a library's */
}

int snapshot_build_id(char *buf, size_t size)
{
    s_build_t b = {buf, size, -ENOENT};
    dl_iterate_phdr(s_find_build_id, &b);
    return b.rc;
}

/* ---- Requests ------------------------------------------------------------------- */

static int s_partition(rt_actor_t *owner, const char *partition, Vmm__Partition__Request *req,
                       int want, rt_msg_t *reply, int ms, char *err, size_t errlen)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REQUEST;
    env.partition_request = req;
    return rt_call_expect(owner, partition, &env, want, reply, ms, err, errlen);
}

static int s_device(rt_actor_t *owner, const char *actor, Vmm__Devices__Request *req, int want,
                    rt_msg_t *reply, char *err, size_t errlen)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = req;
    return rt_call_expect(owner, actor, &env, want, reply, S_CALL_MS, err, errlen);
}

static int s_vp(rt_actor_t *owner, const char *vm, uint32_t vp, Vmm__Vp__Request *req, int want,
                rt_msg_t *reply, char *err, size_t errlen)
{
    char name[96];
    snprintf(name, sizeof name, "%s/vp/%u", vm, vp);
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_VP_REQUEST;
    env.vp_request = req;
    return rt_call_expect(owner, name, &env, want, reply, S_CALL_MS, err, errlen);
}

/* The partition's Inspect lists each registered device: name = actor. */
static int s_devices(rt_actor_t *owner, const char *partition, rt_msg_t *tree,
                     const Vmm__Rt__InspectNode **devices, char *err, size_t errlen)
{
    Vmm__Rt__Inspect inspect = VMM__RT__INSPECT__INIT;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_INSPECT;
    env.inspect = &inspect;
    int rc = rt_call_expect(owner, partition, &env, VMM__ENVELOPE__BODY_INSPECT_REPLY, tree,
                            S_CALL_MS, err, errlen);
    if (rc)
        return rc;
    *devices = NULL;
    const Vmm__Rt__InspectNode *root = tree->env->inspect_reply;
    for (size_t i = 0; i < root->n_children; i++)
        if (!strcmp(root->children[i]->name, "devices"))
            *devices = root->children[i];
    return 0;
}

/* ---- Writing ---------------------------------------------------------------------- */

void snapshot_remove(const char *dir)
{
    files_remove_dir(dir);
}

static int s_write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t done = 0; !rc && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;
        else
            done += (size_t)n;
    }
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int snapshot_write(rt_actor_t *owner, const char *partition, const char *vm, uint32_t n_vps,
                   const Vmm__Snapshot__Machine *machine, const char *dir, char *err,
                   size_t errlen)
{
    char build[96], path[4200];
    if (snapshot_build_id(build, sizeof build)) {
        snprintf(err, errlen, "this vmm has no build ID to mark a snapshot with");
        return -ENOENT;
    }
    if (mkdir(dir, 0700) < 0) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
        return rc;
    }
    rt_msg_t saved = {0}, tree = {0};
    rt_msg_t *vp_replies = calloc(n_vps ? n_vps : 1, sizeof *vp_replies);
    Vmm__Vp__VpState **vps = calloc(n_vps ? n_vps : 1, sizeof *vps);
    size_t n_vp_replies = 0, n_dev_replies = 0, n_devices = 0;
    rt_msg_t *dev_replies = NULL;
    Vmm__Snapshot__Device *devs = NULL, **dev_ptrs = NULL;
    bool have_saved = false, have_tree = false;
    int rc = vp_replies && vps ? 0 : -ENOMEM;
    if (rc)
        snprintf(err, errlen, "out of memory");

    /* Each VP's whole state: they must be stopped (a running one is BUSY). */
    Vmm__Vp__GetState get = VMM__VP__GET_STATE__INIT;
    Vmm__Vp__Request vreq = VMM__VP__REQUEST__INIT;
    vreq.op_case = VMM__VP__REQUEST__OP_GET_STATE;
    vreq.get_state = &get;
    for (uint32_t i = 0; !rc && i < n_vps; i++) {
        rc = s_vp(owner, vm, i, &vreq, VMM__ENVELOPE__BODY_VP_REPLY, &vp_replies[i], err, errlen);
        if (!rc) {
            n_vp_replies++;
            vps[i] = vp_replies[i].env->vp_reply->state;
            if (!vps[i]) {
                rc = -EIO;
                snprintf(err, errlen, "%s/vp/%u gave no state", vm, i);
            }
        }
    }
    Vmm__Partition__SaveState ss = VMM__PARTITION__SAVE_STATE__INIT;
    Vmm__Partition__Request preq = VMM__PARTITION__REQUEST__INIT;
    preq.op_case = VMM__PARTITION__REQUEST__OP_SAVE_STATE;
    preq.save_state = &ss;
    if (!rc && !(rc = s_partition(owner, partition, &preq, VMM__ENVELOPE__BODY_PARTITION_REPLY,
                                  &saved, S_CALL_MS, err, errlen)))
        have_saved = true;
    const Vmm__Rt__InspectNode *devices = NULL;
    if (!rc && !(rc = s_devices(owner, partition, &tree, &devices, err, errlen)))
        have_tree = true;
    size_t want = devices ? devices->n_children : 0;
    if (!rc && want) {
        dev_replies = calloc(want, sizeof *dev_replies);
        devs = calloc(want, sizeof *devs);
        dev_ptrs = calloc(want, sizeof *dev_ptrs);
        if (!dev_replies || !devs || !dev_ptrs) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
        }
    }
    Vmm__Devices__SaveDevice sd = VMM__DEVICES__SAVE_DEVICE__INIT;
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_SAVE_DEVICE;
    dreq.save_device = &sd;
    for (size_t i = 0; !rc && i < want; i++) {
        const Vmm__Rt__InspectNode *d = devices->children[i];
        rc = s_device(owner, d->value, &dreq, VMM__ENVELOPE__BODY_DEVICE_REPLY, &dev_replies[i],
                      err, errlen);
        if (rc)
            break;
        n_dev_replies++;
        const Vmm__Devices__Reply *r = dev_replies[i].env->device_reply;
        if (r->result_case != VMM__DEVICES__REPLY__RESULT_DEVICE_STATE) {
            rc = -EIO;
            snprintf(err, errlen, "%s gave no state", d->value);
            break;
        }
        vmm__snapshot__device__init(&devs[n_devices]);
        devs[n_devices].name = d->name;
        devs[n_devices].actor = d->value;
        devs[n_devices].state = r->device_state;
        dev_ptrs[n_devices] = &devs[n_devices];
        n_devices++;
    }
    snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_RAM);
    Vmm__Partition__SaveMemory sm = VMM__PARTITION__SAVE_MEMORY__INIT;
    sm.path = path;
    preq.op_case = VMM__PARTITION__REQUEST__OP_SAVE_MEMORY;
    preq.save_memory = &sm;
    if (!rc)
        rc = s_partition(owner, partition, &preq, VMM__ENVELOPE__BODY_ACK, NULL, S_RAM_MS, err,
                           errlen);
    struct stat st;
    if (!rc && stat(path, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    }
    if (!rc) {
        Vmm__Snapshot__Snapshot snap = VMM__SNAPSHOT__SNAPSHOT__INIT;
        snap.format_version = SNAPSHOT_FORMAT_VERSION;
        snap.build_id = build;
        snap.machine = (Vmm__Snapshot__Machine *)machine;
        snap.partition = saved.env->partition_reply->saved_state;
        snap.vps = vps;
        snap.n_vps = n_vps;
        snap.devices = dev_ptrs;
        snap.n_devices = n_devices;
        snap.ram_bytes = (uint64_t)st.st_size;
        size_t len = vmm__snapshot__snapshot__get_packed_size(&snap);
        uint8_t *buf = malloc(len ? len : 1);
        rc = buf ? 0 : -ENOMEM;
        if (buf) {
            vmm__snapshot__snapshot__pack(&snap, buf);
            snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_MANIFEST);
            rc = s_write_file(path, buf, len);
            free(buf);
        }
        if (rc)
            snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
    }
    for (size_t i = 0; i < n_vp_replies; i++)
        rt_msg_release(&vp_replies[i]);
    for (size_t i = 0; i < n_dev_replies; i++)
        rt_msg_release(&dev_replies[i]);
    if (have_saved)
        rt_msg_release(&saved);
    if (have_tree)
        rt_msg_release(&tree);
    free(vp_replies);
    free(vps);
    free(dev_replies);
    free(devs);
    free(dev_ptrs);
    if (rc)
        snapshot_remove(dir);
    return rc;
}

/* ---- Reading and restoring ------------------------------------------------------------ */

int snapshot_read(const char *dir, Vmm__Snapshot__Snapshot **out, char *err, size_t errlen)
{
    char path[4200], build[96];
    *out = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_MANIFEST);
    size_t len = 0;
    uint8_t *buf = files_read(path, S_MAX_MANIFEST, &len, err, errlen);
    if (!buf && errno == EINVAL) { /* empty, or too large to be one */
        snprintf(err, errlen, "%s: not a snapshot's manifest (%s)", path, strerror(EINVAL));
        return -EINVAL;
    }
    if (!buf)
        return -errno; /* err says why */
    *out = vmm__snapshot__snapshot__unpack(NULL, len, buf);
    free(buf);
    if (!*out) {
        snprintf(err, errlen, "%s: not a snapshot's manifest (it does not decode)", path);
        return -EINVAL;
    }
    const Vmm__Snapshot__Snapshot *s = *out;
    const char *why = NULL;
    if (s->format_version != SNAPSHOT_FORMAT_VERSION)
        why = "it is of another format version";
    else if (snapshot_build_id(build, sizeof build) || strcmp(build, s->build_id))
        why = "another build of vmm wrote it (its messages and KVM structures are that "
              "build's)";
    else if (!s->machine || !s->partition || !s->machine->n_vps ||
             s->n_vps != s->machine->n_vps ||
             (!s->machine->kernel && !s->machine->guest.len) ||
             (s->machine->kernel && !s->machine->kernel->image.len))
        why = "a piece is missing: the machine, its guest or kernel, the partition, or a "
              "VP's state";
    if (why) {
        snprintf(err, errlen, "%s: %s (format %u, build %s)", dir, why, s->format_version,
                 s->build_id);
        vmm__snapshot__snapshot__free_unpacked(*out, NULL);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

int snapshot_restore(rt_actor_t *owner, const char *partition, const char *vm,
                     const Vmm__Snapshot__Snapshot *snap, const char *dir, bool copy, char *err,
                     size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_RAM);
    Vmm__Partition__LoadMemory lm = VMM__PARTITION__LOAD_MEMORY__INIT;
    lm.path = path;
    lm.copy = copy;
    Vmm__Partition__Request preq = VMM__PARTITION__REQUEST__INIT;
    preq.op_case = VMM__PARTITION__REQUEST__OP_LOAD_MEMORY;
    preq.load_memory = &lm;
    int rc = s_partition(owner, partition, &preq, VMM__ENVELOPE__BODY_ACK, NULL, S_RAM_MS, err,
                         errlen);
    Vmm__Partition__RestoreState rs = VMM__PARTITION__RESTORE_STATE__INIT;
    rs.state = snap->partition;
    preq.op_case = VMM__PARTITION__REQUEST__OP_RESTORE_STATE;
    preq.restore_state = &rs;
    if (!rc)
        rc = s_partition(owner, partition, &preq, VMM__ENVELOPE__BODY_ACK, NULL, S_CALL_MS,
                         err, errlen);
    Vmm__Vp__SetState set = VMM__VP__SET_STATE__INIT;
    Vmm__Vp__Request vreq = VMM__VP__REQUEST__INIT;
    vreq.op_case = VMM__VP__REQUEST__OP_SET_STATE;
    vreq.set_state = &set;
    for (uint32_t i = 0; !rc && i < snap->n_vps; i++) {
        set.state = snap->vps[i];
        rc = s_vp(owner, vm, i, &vreq, VMM__ENVELOPE__BODY_ACK, NULL, err, errlen);
    }
    return rc;
}

static bool s_among(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

int snapshot_restore_devices(rt_actor_t *owner, const Vmm__Snapshot__Snapshot *snap,
                             const char *const *names, size_t n_names, bool named, char *err,
                             size_t errlen)
{
    int rc = 0;
    Vmm__Devices__RestoreDevice rd = VMM__DEVICES__RESTORE_DEVICE__INIT;
    Vmm__Devices__Request dreq = VMM__DEVICES__REQUEST__INIT;
    dreq.op_case = VMM__DEVICES__REQUEST__OP_RESTORE_DEVICE;
    dreq.restore_device = &rd;
    for (size_t i = 0; !rc && i < snap->n_devices; i++) {
        if (s_among(snap->devices[i]->name, names, n_names) != named)
            continue;
        rd.state = snap->devices[i]->state;
        rc = s_device(owner, snap->devices[i]->actor, &dreq, VMM__ENVELOPE__BODY_ACK, NULL,
                      err, errlen);
    }
    return rc;
}
