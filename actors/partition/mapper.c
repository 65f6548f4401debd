/*
 * The memory mapper (the seed's PartitionMemoryMap): ranges of a memory
 * object mapped into guest physical memory as KVM memory slots, beside
 * guest RAM. The seed maps a process address; across actors a memory
 * object is named instead: "ram" is guest RAM's own memory file (an
 * alias of some of it), any other name a memory file of the partition's,
 * made at its first mapping, grown to cover each, and dropped with its
 * last. A read-only mapping is a read-only slot: a guest write there exits
 * as MMIO and reaches no device. KVM slots are always executable, so a
 * mapping that forbids execution is refused. Prefetch faults a range in
 * (MADV_POPULATE_WRITE, or READ for read-only); Pin locks it in memory
 * (mlock, within RLIMIT_MEMLOCK).
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/partition/partition_internal.h"

#define S_PAGE 4096ull
#define S_RAM_OBJECT "ram"
/* Slots of mappings come after the RAM ranges'. */
#define S_FIRST_SLOT PARTITION_MAX_RAM_RANGES

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

static bool s_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static partition_memobj_t *s_object(partition_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_objects; i++)
        if (!strcmp(p->objects[i].name, name))
            return &p->objects[i];
    return NULL;
}

/* The object `name`, made or grown to `size` bytes at least. */
static int s_object_for(partition_t *p, const char *name, uint64_t size, partition_memobj_t **out,
                        char *err, size_t errlen)
{
    partition_memobj_t *o = s_object(p, name);
    if (!o) {
        partition_memobj_t *grown = realloc(p->objects, (p->n_objects + 1) * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        p->objects = grown;
        partition_memobj_t made = {.name = strdup(name), .fd = memfd_create(name, MFD_CLOEXEC)};
        if (!made.name || made.fd < 0) {
            int rc = made.fd < 0 ? -errno : -ENOMEM;
            snprintf(err, errlen, "cannot make memory object %s: %s", name, strerror(-rc));
            free(made.name);
            if (made.fd >= 0)
                close(made.fd);
            return rc;
        }
        o = &p->objects[p->n_objects++];
        *o = made;
    }
    if (o->size < size) {
        if (ftruncate(o->fd, (off_t)size) < 0) {
            int rc = -errno;
            snprintf(err, errlen, "cannot grow memory object %s to %llu bytes: %s", name,
                     (unsigned long long)size, strerror(-rc));
            return rc;
        }
        o->size = size;
    }
    *out = o;
    return 0;
}

static void s_object_release(partition_t *p, const char *name)
{
    partition_memobj_t *o = s_object(p, name);
    if (!o || --o->users > 0)
        return;
    close(o->fd);
    free(o->name);
    *o = p->objects[--p->n_objects];
}

static int s_slot(partition_t *p)
{
    int max = ioctl(p->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    for (int slot = S_FIRST_SLOT; slot < max; slot++) {
        bool used = false;
        for (size_t i = 0; i < p->n_mappings && !used; i++)
            used = p->mappings[i].slot == slot;
        if (!used)
            return slot;
    }
    return -ENOSPC;
}

static int s_refuse_errno(rt_actor_t *self, const Vmm__Envelope *msg, int rc, const char *text)
{
    return partition_refuse(self, msg, rt_error_code(rc), text);
}

int partition_on_map_memory(rt_actor_t *self, const Vmm__Envelope *msg,
                            const Vmm__Partition__MapMemory *op)
{
    partition_t *p = rt_actor_state(self);
    char text[256];
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    partition_fill_finish(p, self, false); /* another mapping sees the file itself */
    if (op->vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    if (!op->executable)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "a KVM memory slot cannot forbid execution");
    if (!op->size || op->gpa % S_PAGE || op->size % S_PAGE || op->offset % S_PAGE ||
        op->gpa + op->size < op->gpa || !*op->memory_object) {
        snprintf(text, sizeof text, "0x%llx+0x%llx at offset 0x%llx of \"%s\": page-aligned, "
                 "not empty, of a named object",
                 (unsigned long long)op->gpa, (unsigned long long)op->size,
                 (unsigned long long)op->offset, op->memory_object);
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
    }
    for (size_t i = 0; i < p->n_ram; i++)
        if (s_overlap(op->gpa, op->size, p->ram[i].gpa, p->ram[i].size)) {
            snprintf(text, sizeof text, "0x%llx+0x%llx overlaps guest RAM at 0x%llx",
                     (unsigned long long)op->gpa, (unsigned long long)op->size,
                     (unsigned long long)p->ram[i].gpa);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
    for (size_t i = 0; i < p->n_mappings; i++)
        if (s_overlap(op->gpa, op->size, p->mappings[i].gpa, p->mappings[i].size)) {
            snprintf(text, sizeof text, "0x%llx+0x%llx overlaps the mapping at 0x%llx",
                     (unsigned long long)op->gpa, (unsigned long long)op->size,
                     (unsigned long long)p->mappings[i].gpa);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
    int fd;
    uint64_t ram_size = partition_ram_bytes(p);
    partition_memobj_t *o = NULL;
    int rc = 0;
    if (!strcmp(op->memory_object, S_RAM_OBJECT)) {
        if (op->offset + op->size > ram_size || op->offset + op->size < op->offset) {
            snprintf(text, sizeof text, "offset 0x%llx+0x%llx is past guest RAM's %llu bytes",
                     (unsigned long long)op->offset, (unsigned long long)op->size,
                     (unsigned long long)ram_size);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
        fd = p->ram_fd;
    } else if ((rc = s_object_for(p, op->memory_object, op->offset + op->size, &o, text,
                                  sizeof text))) {
        return s_refuse_errno(self, msg, rc, text);
    } else {
        fd = o->fd;
        o->users++; /* released below on failure */
    }
    int slot = s_slot(p);
    partition_mapping_t *grown = realloc(p->mappings, (p->n_mappings + 1) * sizeof *grown);
    void *host = MAP_FAILED;
    if (slot < 0) {
        rc = slot;
        snprintf(text, sizeof text, "KVM has no memory slot left");
    } else if (!grown) {
        rc = -ENOMEM;
        snprintf(text, sizeof text, "out of memory");
    } else {
        p->mappings = grown;
        host = mmap(NULL, op->size, PROT_READ | (op->writable ? PROT_WRITE : 0), MAP_SHARED, fd,
                    (off_t)op->offset);
        if (host == MAP_FAILED) {
            rc = -errno;
            snprintf(text, sizeof text, "cannot map it: %s", strerror(-rc));
        }
    }
    if (!rc) {
        struct kvm_userspace_memory_region region = {
            .slot = (uint32_t)slot,
            .flags = op->writable ? 0 : KVM_MEM_READONLY,
            .guest_phys_addr = op->gpa,
            .memory_size = op->size,
            .userspace_addr = (uint64_t)(uintptr_t)host,
        };
        if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
            rc = -errno;
            snprintf(text, sizeof text, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-rc));
        }
    }
    if (rc) {
        if (host != MAP_FAILED)
            munmap(host, op->size);
        if (o)
            s_object_release(p, op->memory_object);
        return s_refuse_errno(self, msg, rc, text);
    }
    partition_mapping_t m = {.gpa = op->gpa, .size = op->size, .slot = slot, .host = host,
                             .writable = op->writable, .object = strdup(op->memory_object)};
    if (!m.object) {
        struct kvm_userspace_memory_region gone = {.slot = (uint32_t)slot};
        ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &gone);
        munmap(host, op->size);
        if (o)
            s_object_release(p, op->memory_object);
        return -ENOMEM;
    }
    p->mappings[p->n_mappings++] = m;
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

static void s_unmap(partition_t *p, size_t i)
{
    partition_mapping_t *m = &p->mappings[i];
    struct kvm_userspace_memory_region gone = {.slot = (uint32_t)m->slot};
    ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &gone); /* size 0: the slot goes */
    munmap(m->host, m->size);
    if (strcmp(m->object, S_RAM_OBJECT))
        s_object_release(p, m->object);
    free(m->object);
    *m = p->mappings[--p->n_mappings];
}

int partition_on_unmap_memory(rt_actor_t *self, const Vmm__Envelope *msg,
                              const Vmm__Partition__UnmapMemory *op)
{
    partition_t *p = rt_actor_state(self);
    char text[160];
    if (op->vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    /* Every mapping the range touches must lie wholly inside it. */
    size_t found = 0;
    for (size_t i = 0; i < p->n_mappings; i++) {
        const partition_mapping_t *m = &p->mappings[i];
        if (!s_overlap(op->gpa, op->size, m->gpa, m->size))
            continue;
        if (m->gpa < op->gpa || m->gpa + m->size > op->gpa + op->size) {
            snprintf(text, sizeof text, "the mapping 0x%llx+0x%llx lies partly outside the range",
                     (unsigned long long)m->gpa, (unsigned long long)m->size);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
        found++;
    }
    if (!found) {
        snprintf(text, sizeof text, "nothing is mapped in 0x%llx+0x%llx",
                 (unsigned long long)op->gpa, (unsigned long long)op->size);
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_FOUND, text);
    }
    for (size_t i = p->n_mappings; i-- > 0;)
        if (s_overlap(op->gpa, op->size, p->mappings[i].gpa, p->mappings[i].size))
            s_unmap(p, i);
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

/* Where [gpa, gpa + size) lies in this process: in one RAM range or one
 * mapping, wholly; NULL otherwise. */
static void *s_host(partition_t *p, uint64_t gpa, uint64_t size, bool *writable)
{
    for (size_t i = 0; i < p->n_ram; i++)
        if (gpa >= p->ram[i].gpa && size <= p->ram[i].size &&
            gpa - p->ram[i].gpa <= p->ram[i].size - size) {
            *writable = true;
            return (char *)p->ram[i].host + (gpa - p->ram[i].gpa);
        }
    for (size_t i = 0; i < p->n_mappings; i++) {
        const partition_mapping_t *m = &p->mappings[i];
        if (gpa >= m->gpa && size <= m->size && gpa - m->gpa <= m->size - size) {
            *writable = m->writable;
            return (char *)m->host + (gpa - m->gpa);
        }
    }
    return NULL;
}

/* Prefetch and Pin: a page-aligned range of RAM or of one mapping. */
int partition_on_touch_memory(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Vtl vtl,
                              uint64_t gpa, uint64_t size, bool pin)
{
    partition_t *p = rt_actor_state(self);
    char text[192];
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    partition_fill_finish(p, self, false); /* another mapping sees the file itself */
    if (vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    bool writable = false;
    void *host = !size || gpa % S_PAGE || size % S_PAGE ? NULL : s_host(p, gpa, size, &writable);
    if (!host) {
        snprintf(text, sizeof text, "0x%llx+0x%llx: page-aligned, within guest RAM or one mapping",
                 (unsigned long long)gpa, (unsigned long long)size);
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
    }
    int rc = pin ? mlock(host, size)
                 : madvise(host, size, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
    if (rc < 0 && !pin && errno == EINVAL) /* a kernel before 5.14: a hint only */
        rc = madvise(host, size, MADV_WILLNEED);
    if (rc < 0) {
        rc = -errno;
        snprintf(text, sizeof text, "%s 0x%llx+0x%llx: %s%s", pin ? "mlock" : "madvise",
                 (unsigned long long)gpa, (unsigned long long)size, strerror(-rc),
                 pin && (rc == -ENOMEM || rc == -EPERM) ? " (RLIMIT_MEMLOCK)" : "");
        return s_refuse_errno(self, msg, rc, text);
    }
    if (pin)
        p->pinned_bytes += size;
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

void partition_mapper_fini(partition_t *p)
{
    while (p->n_mappings)
        s_unmap(p, p->n_mappings - 1);
    free(p->mappings);
    p->mappings = NULL;
    for (size_t i = 0; i < p->n_objects; i++) { /* any a failed mapping left */
        close(p->objects[i].fd);
        free(p->objects[i].name);
    }
    free(p->objects);
    p->objects = NULL;
    p->n_objects = 0;
}
