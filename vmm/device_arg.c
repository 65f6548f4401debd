#include "vmm/device_arg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *kind, *name, *actor;
} s_kinds[] = {
    [DEVICE_ARG_SERIAL] = {"serial", "com1", "vm0/dev/com1"},
    [DEVICE_ARG_TESTDEV] = {"testdev", "testdev", "vm0/dev/testdev"},
};

static const char *const s_hosts[] = {
    [DEVICE_ARG_IPC] = "ipc",
    [DEVICE_ARG_TCP] = "tcp",
    [DEVICE_ARG_REMOTE] = "remote",
};

/* Whether the n bytes at s are word. */
static bool s_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && !strncmp(s, word, n);
}

int device_arg_parse(const char *s, bool allow_host, device_arg_t *out, char *err,
                     size_t errlen)
{
    *out = (device_arg_t){0};
    size_t n = strcspn(s, ",");
    size_t k = 0;
    while (k < sizeof s_kinds / sizeof *s_kinds && !s_is(s, n, s_kinds[k].kind))
        k++;
    if (k == sizeof s_kinds / sizeof *s_kinds) {
        snprintf(err, errlen, "%.*s: not a device kind (serial or testdev)", (int)n, s);
        return -EINVAL;
    }
    out->kind = (device_arg_kind_t)k;
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
        snprintf(err, errlen, "%.*s: not an option of a device here (%s)", (int)n, s,
                 allow_host ? "host=ipc|tcp|remote or required, each once" : "required");
        return -EINVAL;
    }
    if (allow_host && out->required && out->host == DEVICE_ARG_IN_VM) {
        snprintf(err, errlen, "required is for a device in a device host (host=...)");
        return -EINVAL;
    }
    return 0;
}

const char *device_arg_name(device_arg_kind_t kind)
{
    return s_kinds[kind].name;
}

const char *device_arg_actor(device_arg_kind_t kind)
{
    return s_kinds[kind].actor;
}

void device_arg_format(const device_arg_t *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", s_kinds[d->kind].kind, d->required ? ",required" : "");
}
