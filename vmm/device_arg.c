#include "vmm/device_arg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *kind, *name; /* name: a fixed one, else kind + a number */
} s_kinds[] = {
    [DEVICE_ARG_SERIAL] = {"serial", "com1"},
    [DEVICE_ARG_TESTDEV] = {"testdev", "testdev"},
    [DEVICE_ARG_VIRTIO_BLK] = {"virtio-blk", NULL},
    [DEVICE_ARG_VIRTIO_CONSOLE] = {"virtio-console", NULL},
    [DEVICE_ARG_VIRTIO_RNG] = {"virtio-rng", NULL},
};
#define S_N_KINDS (sizeof s_kinds / sizeof *s_kinds)

static const char *const s_hosts[] = {
    [DEVICE_ARG_IPC] = "ipc",
    [DEVICE_ARG_TCP] = "tcp",
    [DEVICE_ARG_REMOTE] = "remote",
};

/* The lines virtio devices take in turn: ISA inputs no PC device uses. */
static const uint32_t s_virtio_irqs[] = {5, 6, 7, 10, 11};
#define S_N_VIRTIO (sizeof s_virtio_irqs / sizeof *s_virtio_irqs)

/* Whether the n bytes at s are word. */
static bool s_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && !strncmp(s, word, n);
}

/* Whether the n bytes at s are "key=" and a value; *value then after the
 * '=' (not NUL-terminated). */
static bool s_key(const char *s, size_t n, const char *key, const char **value)
{
    size_t k = strlen(key);
    if (n <= k + 1 || strncmp(s, key, k) || s[k] != '=')
        return false;
    *value = s + k + 1;
    return true;
}

static bool s_number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    char buf[32], *end;
    if (!n || n >= sizeof buf || *s == '-')
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 0);
    if (*end || errno || v > max)
        return false;
    *out = v;
    return true;
}

bool device_arg_virtio(const device_arg_t *d)
{
    return d->kind >= DEVICE_ARG_VIRTIO_BLK;
}

/* One setting of a virtio device: true when taken. */
static bool s_setting(device_arg_t *d, const char *s, size_t n)
{
    const char *v;
    uint64_t x;
    bool blk = d->kind == DEVICE_ARG_VIRTIO_BLK;
    if ((blk || d->kind == DEVICE_ARG_VIRTIO_CONSOLE) && !d->file[0] &&
        s_key(s, n, "file", &v) && (size_t)(s + n - v) < sizeof d->file) {
        memcpy(d->file, v, (size_t)(s + n - v));
        return true;
    }
    if (blk && !d->readonly && s_is(s, n, "readonly"))
        return d->readonly = true;
    if (!d->name[0] && s_key(s, n, "name", &v) && (size_t)(s + n - v) < sizeof d->name) {
        memcpy(d->name, v, (size_t)(s + n - v));
        return true;
    }
    if (!d->has_base && s_key(s, n, "base", &v) &&
        s_number(v, (size_t)(s + n - v), UINT32_MAX, &x) && !(x & 0xfff)) {
        d->base = x;
        return d->has_base = true;
    }
    if (!d->has_irq && s_key(s, n, "irq", &v) && s_number(v, (size_t)(s + n - v), 23, &x)) {
        d->irq = (uint32_t)x;
        return d->has_irq = true;
    }
    return false;
}

int device_arg_parse(const char *s, bool allow_host, device_arg_t *out, char *err,
                     size_t errlen)
{
    *out = (device_arg_t){0};
    size_t n = strcspn(s, ",");
    size_t k = 0;
    while (k < S_N_KINDS && !s_is(s, n, s_kinds[k].kind))
        k++;
    if (k == S_N_KINDS) {
        snprintf(err, errlen,
                 "%.*s: not a device kind (serial, testdev, virtio-blk, virtio-console or "
                 "virtio-rng)",
                 (int)n, s);
        return -EINVAL;
    }
    out->kind = (device_arg_kind_t)k;
    if (s_kinds[k].name)
        snprintf(out->name, sizeof out->name, "%s", s_kinds[k].name);
    bool have_host = false;
    for (s += n; *s; s += n) {
        s++; /* the comma */
        n = strcspn(s, ",");
        if (s_is(s, n, "required") && !out->required) {
            out->required = true;
            continue;
        }
        if (allow_host && !have_host && n > 5 && !strncmp(s, "host=", 5)) {
            size_t h = DEVICE_ARG_IPC;
            while (h < sizeof s_hosts / sizeof *s_hosts && !s_is(s + 5, n - 5, s_hosts[h]))
                h++;
            if (h < sizeof s_hosts / sizeof *s_hosts) {
                out->host = (device_arg_host_t)h;
                have_host = true;
                continue;
            }
        }
        if (device_arg_virtio(out) && s_setting(out, s, n))
            continue;
        snprintf(err, errlen, "%.*s: not an option of a %s here, or given twice", (int)n, s,
                 s_kinds[k].kind);
        return -EINVAL;
    }
    if (allow_host && out->required && out->host == DEVICE_ARG_IN_VM) {
        snprintf(err, errlen, "required is for a device in a device host (host=...)");
        return -EINVAL;
    }
    if (out->kind == DEVICE_ARG_VIRTIO_BLK && !out->file[0]) {
        snprintf(err, errlen, "virtio-blk needs file=PATH, its disk image");
        return -EINVAL;
    }
    return 0;
}

int device_arg_place(device_arg_t *d, size_t n, char *err, size_t errlen)
{
    unsigned count[S_N_KINDS] = {0};
    size_t slot = 0;
    for (size_t i = 0; i < n; i++) {
        if (!device_arg_virtio(&d[i])) {
            if (count[d[i].kind]++) {
                snprintf(err, errlen, "%s: named twice", s_kinds[d[i].kind].kind);
                return -EINVAL;
            }
            continue;
        }
        if (!d[i].name[0])
            snprintf(d[i].name, sizeof d[i].name, "%s%u", s_kinds[d[i].kind].kind,
                     count[d[i].kind]);
        count[d[i].kind]++;
        if ((!d[i].has_base || !d[i].has_irq) && slot == S_N_VIRTIO) {
            snprintf(err, errlen, "%s: at most %zu virtio devices are placed without base= "
                                  "and irq=", d[i].name, S_N_VIRTIO);
            return -EINVAL;
        }
        if (!d[i].has_base)
            d[i].base = DEVICE_ARG_VIRTIO_BASE + slot * DEVICE_ARG_VIRTIO_SIZE;
        if (!d[i].has_irq)
            d[i].irq = s_virtio_irqs[slot];
        d[i].has_base = d[i].has_irq = true;
        slot++;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(d[i].actor, sizeof d[i].actor, "vm0/dev/%s", d[i].name);
        for (size_t j = 0; j < i; j++) {
            const char *same = !strcmp(d[i].name, d[j].name) ? "a name"
                               : device_arg_virtio(&d[i]) && device_arg_virtio(&d[j]) &&
                                         d[i].base == d[j].base
                                   ? "a register block"
                               : device_arg_virtio(&d[i]) && device_arg_virtio(&d[j]) &&
                                         d[i].irq == d[j].irq
                                   ? "an irq line"
                                   : NULL;
            if (same) {
                snprintf(err, errlen, "%s and %s share %s", d[j].name, d[i].name, same);
                return -EINVAL;
            }
        }
    }
    return 0;
}

void device_arg_format(const device_arg_t *d, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s%s", s_kinds[d->kind].kind, d->required ? ",required" : "");
    if (device_arg_virtio(d) && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ",name=%s,base=0x%" PRIx64 ",irq=%u%s%s%s",
                 d->name, d->base, d->irq, d->file[0] ? ",file=" : "", d->file,
                 d->readonly ? ",readonly" : "");
}

void device_arg_model_args(const device_arg_t *d, char *buf, size_t size)
{
    bool blk = d->kind == DEVICE_ARG_VIRTIO_BLK;
    snprintf(buf, size, "name=%s,base=0x%" PRIx64 ",irq=%u%s%s%s", d->name, d->base, d->irq,
             blk ? ",file=" : "", blk ? d->file : "", d->readonly ? ",readonly" : "");
}

void device_arg_linux(const device_arg_t *d, char *buf, size_t size)
{
    snprintf(buf, size, "virtio_mmio.device=4K@0x%" PRIx64 ":%u", d->base, d->irq);
}
