/*
 * Virtual devices (the seed's Hv1::new_virtual_device and DeviceBuilder)
 * and their VPCI interrupts (VpciInterruptMapper): a device asks for an
 * interrupt on a vector and processor, and gets the MSI address and data
 * that the in-kernel local APIC delivers there. KVM's APIC delivers an MSI
 * to several processors only in logical destination mode, whose IDs the
 * guest programs itself, so an interrupt targets one processor,
 * physically addressed (its APIC ID is its VP index), and a multicast or
 * several targets are refused saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/partition/partition_internal.h"

#define S_MSI_BASE 0xfee00000ull
#define S_MAX_VECTORS 32 /* multi-message MSI */

static partition_vdev_t *s_find(partition_t *p, uint64_t handle)
{
    for (size_t i = 0; i < p->n_vdevs; i++)
        if (p->vdevs[i].handle == handle)
            return &p->vdevs[i];
    return NULL;
}

/* The device `handle` of msg's sender; refused (and NULL) otherwise. */
static partition_vdev_t *s_mine(rt_actor_t *self, const Vmm__Envelope *msg, uint64_t handle)
{
    partition_t *p = rt_actor_state(self);
    partition_vdev_t *d = s_find(p, handle);
    char text[160];
    if (!d) {
        snprintf(text, sizeof text, "no virtual device %llu", (unsigned long long)handle);
        partition_refuse(self, msg, VMM__ERROR_CODE__NOT_FOUND, text);
        return NULL;
    }
    if (strcmp(d->owner, msg->sender)) {
        snprintf(text, sizeof text, "virtual device %llu is %s's", (unsigned long long)handle,
                 d->owner);
        partition_refuse(self, msg, VMM__ERROR_CODE__PERMISSION_DENIED, text);
        return NULL;
    }
    return d;
}

bool partition_has_virtual_device(partition_t *p, uint64_t handle, const char *owner)
{
    partition_vdev_t *d = s_find(p, handle);
    return d && !strcmp(d->owner, owner);
}

static int s_reply(rt_actor_t *self, const Vmm__Envelope *msg, Vmm__Partition__Reply *r)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PARTITION_REPLY;
    env.partition_reply = r;
    return rt_reply(self, msg, &env);
}

int partition_on_new_virtual_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                    const Vmm__Partition__NewVirtualDevice *op)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (op->vtl != VMM__VTL__VTL0)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "only VTL0 exists on KVM");
    for (size_t i = 0; i < p->n_vdevs; i++)
        if (p->vdevs[i].device_id == op->device_id) {
            char text[96];
            snprintf(text, sizeof text, "device id %llu is taken",
                     (unsigned long long)op->device_id);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
    partition_vdev_t *grown = realloc(p->vdevs, (p->n_vdevs + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    p->vdevs = grown;
    partition_vdev_t d = {.handle = ++p->next_vdev, .device_id = op->device_id,
                          .owner = strdup(msg->sender)};
    if (!d.owner)
        return -ENOMEM;
    p->vdevs[p->n_vdevs++] = d;
    Vmm__Partition__VirtualDeviceHandle h = VMM__PARTITION__VIRTUAL_DEVICE_HANDLE__INIT;
    h.handle = d.handle;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_VIRTUAL_DEVICE;
    r.virtual_device = &h;
    return s_reply(self, msg, &r);
}

static void s_vdev_free(partition_vdev_t *d)
{
    free(d->owner);
    free(d->irqs);
}

int partition_on_drop_virtual_device(rt_actor_t *self, const Vmm__Envelope *msg,
                                     const Vmm__Partition__DropVirtualDevice *op)
{
    partition_t *p = rt_actor_state(self);
    partition_vdev_t *d = s_mine(self, msg, op->device);
    if (!d)
        return 0;
    s_vdev_free(d); /* its interrupts go with it */
    *d = p->vdevs[--p->n_vdevs];
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}

int partition_on_register_vpci_interrupt(rt_actor_t *self, const Vmm__Envelope *msg,
                                         const Vmm__Partition__RegisterVpciInterrupt *op)
{
    partition_t *p = rt_actor_state(self);
    partition_vdev_t *d = s_mine(self, msg, op->device);
    if (!d)
        return 0;
    const Vmm__Partition__VpciInterruptParameters *params = op->params;
    uint32_t count = op->vector_count;
    char text[200];
    if (!params || !params->n_target_processors)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT,
                                "a VPCI interrupt needs a vector and a target processor");
    if (params->multicast || params->n_target_processors > 1)
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "KVM's local APIC delivers an MSI to several processors only "
                                "in logical destination mode, whose IDs the guest programs: "
                                "target one processor");
    uint32_t vp = params->target_processors[0];
    uint32_t vector = params->vector;
    if (vp >= p->vp_count) {
        snprintf(text, sizeof text, "processor %u: the partition has %u", vp, p->vp_count);
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
    }
    if (vp > 254) /* 255 is the broadcast ID; above, x2APIC IDs need the IOMMU's help */
        return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_SUPPORTED,
                                "an MSI addresses APIC IDs 0 to 254 physically on KVM without "
                                "interrupt remapping");
    if (!count || count > S_MAX_VECTORS || (count & (count - 1)) || vector < 16 ||
        vector + count > 256 || vector % count) {
        snprintf(text, sizeof text,
                 "vector %u, count %u: 1 to %d vectors (a power of 2) from 16 to 255, the "
                 "first aligned to the count",
                 vector, count, S_MAX_VECTORS);
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
    }
    partition_vpci_irq_t irq = {.address = S_MSI_BASE | (uint64_t)vp << 12, .data = vector,
                                .count = count};
    for (size_t i = 0; i < d->n_irqs; i++)
        if (d->irqs[i].address == irq.address && d->irqs[i].data == irq.data) {
            snprintf(text, sizeof text, "vector %u on processor %u is registered already",
                     vector, vp);
            return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, text);
        }
    partition_vpci_irq_t *grown = realloc(d->irqs, (d->n_irqs + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    d->irqs = grown;
    d->irqs[d->n_irqs++] = irq;
    Vmm__Partition__MsiAddressData ad = VMM__PARTITION__MSI_ADDRESS_DATA__INIT;
    ad.address = irq.address;
    ad.data = irq.data;
    Vmm__Partition__Reply r = VMM__PARTITION__REPLY__INIT;
    r.result_case = VMM__PARTITION__REPLY__RESULT_VPCI_INTERRUPT;
    r.vpci_interrupt = &ad;
    return s_reply(self, msg, &r);
}

int partition_on_unregister_vpci_interrupt(rt_actor_t *self, const Vmm__Envelope *msg,
                                           const Vmm__Partition__UnregisterVpciInterrupt *op)
{
    partition_vdev_t *d = s_mine(self, msg, op->device);
    if (!d)
        return 0;
    for (size_t i = 0; i < d->n_irqs; i++)
        if (d->irqs[i].address == op->address && d->irqs[i].data == op->data) {
            d->irqs[i] = d->irqs[--d->n_irqs];
            return msg->request_id ? rt_reply_ack(self, msg) : 0;
        }
    char text[128];
    snprintf(text, sizeof text, "no VPCI interrupt 0x%llx/0x%x on virtual device %llu",
             (unsigned long long)op->address, op->data, (unsigned long long)op->device);
    return partition_refuse(self, msg, VMM__ERROR_CODE__NOT_FOUND, text);
}

void partition_vdevs_fini(partition_t *p)
{
    for (size_t i = 0; i < p->n_vdevs; i++)
        s_vdev_free(&p->vdevs[i]);
    free(p->vdevs);
    p->vdevs = NULL;
    p->n_vdevs = 0;
}
