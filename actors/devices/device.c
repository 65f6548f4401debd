/* What every device model shares: destruction, logging, packing a state. */
#include "actors/devices/device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/pbtext.h"

void device_destroy(device_t **dev)
{
    if (!*dev)
        return;
    (*dev)->ops->destroy(*dev);
    *dev = NULL;
}

void device_log(device_t *dev, rt_log_level_t level, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    dev->env->ops->log(dev->env, level, text);
}

int device_pack_state(const ProtobufCMessage *msg, ProtobufCBinaryData *out)
{
    return rt_pb_pack(msg, out);
}

void device_inspect_count(Vmm__Rt__InspectNode *node, const char *name, uint64_t value)
{
    rt_inspect_add(node, name, "%llu", (unsigned long long)value);
}

void device_reset_none(device_t *dev)
{
    (void)dev;
}

int device_save_none(device_t *dev, ProtobufCBinaryData *out)
{
    (void)dev;
    *out = (ProtobufCBinaryData){0, NULL};
    return 0;
}

int device_restore_none(device_t *dev, const uint8_t *bytes, size_t len)
{
    (void)dev;
    (void)bytes;
    return len ? -EINVAL : 0;
}
