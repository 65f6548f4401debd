#include "actors/devices/testing/fake_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fake_env_t *s_of(device_env_t *env)
{
    return (fake_env_t *)env;
}

static void s_irq_set(device_env_t *env, uint32_t line, bool high)
{
    fake_env_t *f = s_of(env);
    if (line >= FAKE_ENV_LINES)
        return;
    if (high && !f->irq[line])
        f->irq_rises[line]++;
    f->irq[line] = high;
}

static void s_msi(device_env_t *env, uint64_t address, uint32_t data)
{
    fake_env_t *f = s_of(env);
    if (f->n_msis < FAKE_ENV_MAX)
        f->msis[f->n_msis++] = (fake_env_msi_t){address, data};
}

static int s_guest(fake_env_t *f, uint64_t gpa, size_t len)
{
    return gpa <= f->ram_size && len <= f->ram_size - gpa ? 0 : -EFAULT;
}

static int s_guest_read(device_env_t *env, uint64_t gpa, void *buf, size_t len)
{
    fake_env_t *f = s_of(env);
    int rc = s_guest(f, gpa, len);
    if (!rc)
        memcpy(buf, f->ram + gpa, len);
    return rc;
}

static int s_guest_write(device_env_t *env, uint64_t gpa, const void *buf, size_t len)
{
    fake_env_t *f = s_of(env);
    int rc = s_guest(f, gpa, len);
    if (!rc)
        memcpy(f->ram + gpa, buf, len);
    return rc;
}

static uint64_t s_now_ns(device_env_t *env)
{
    return s_of(env)->now_ns;
}

static int s_timer_set(device_env_t *env, uint32_t id, uint64_t deadline_ns)
{
    fake_env_t *f = s_of(env);
    if (id >= FAKE_ENV_TIMERS)
        return -EINVAL;
    f->timer_armed[id] = true;
    f->timer_deadline[id] = deadline_ns;
    return 0;
}

static void s_timer_cancel(device_env_t *env, uint32_t id)
{
    fake_env_t *f = s_of(env);
    if (id < FAKE_ENV_TIMERS)
        f->timer_armed[id] = false;
}

static uint64_t s_wall_ns(device_env_t *env)
{
    fake_env_t *f = s_of(env);
    f->wall_reads++;
    return f->wall_ns;
}

static int s_entropy(device_env_t *env, void *buf, size_t len)
{
    fake_env_t *f = s_of(env);
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)f->entropy_taken++;
    return 0;
}

static int s_storage_open(device_env_t *env, const char *path, bool readonly, uint64_t *size)
{
    fake_env_t *f = s_of(env);
    if (!f->disk)
        return -ENOENT;
    snprintf(f->disk_path, sizeof f->disk_path, "%s", path);
    f->disk_open = true;
    f->disk_readonly = readonly;
    *size = f->disk_size;
    return 0;
}

/* The error the test set for this operation, once; -EBADF before open, and
 * -EFAULT past the disk (where a file would read short). */
static int s_storage_check(fake_env_t *f, uint64_t offset, size_t len)
{
    int rc = f->storage_error;
    f->storage_error = 0;
    if (rc)
        return rc;
    if (!f->disk_open)
        return -EBADF;
    return offset > f->disk_size || len > f->disk_size - offset ? -EFAULT : 0;
}

static int s_storage_read(device_env_t *env, uint64_t offset, void *buf, size_t len)
{
    fake_env_t *f = s_of(env);
    int rc = s_storage_check(f, offset, len);
    if (!rc) {
        memcpy(buf, f->disk + offset, len);
        f->disk_reads++;
    }
    return rc;
}

static int s_storage_write(device_env_t *env, uint64_t offset, const void *buf, size_t len)
{
    fake_env_t *f = s_of(env);
    int rc = s_storage_check(f, offset, len);
    if (!rc && f->disk_readonly)
        rc = -EBADF;
    if (!rc) {
        memcpy(f->disk + offset, buf, len);
        f->disk_writes++;
        f->unflushed++;
    }
    return rc;
}

static int s_storage_flush(device_env_t *env)
{
    fake_env_t *f = s_of(env);
    int rc = s_storage_check(f, 0, 0);
    if (!rc) {
        f->disk_flushes++;
        f->unflushed = 0;
    }
    return rc;
}

static void s_power(device_env_t *env, Vmm__Devices__PowerAction action, int exit_code)
{
    fake_env_t *f = s_of(env);
    f->power_requests++;
    f->power_action = action;
    f->power_exit_code = exit_code;
}

static void s_log(device_env_t *env, rt_log_level_t level, const char *text)
{
    (void)level;
    fake_env_t *f = s_of(env);
    f->logs++;
    snprintf(f->last_log, sizeof f->last_log, "%s", text);
}

static device_deferred_t *s_defer(device_env_t *env)
{
    fake_env_t *f = s_of(env);
    if (f->n_tokens == FAKE_ENV_MAX)
        return NULL;
    device_deferred_t *d = &f->tokens[f->n_tokens++];
    memset(d, 0, sizeof *d);
    return d;
}

static void s_complete(device_env_t *env, device_deferred_t *d, int status, uint64_t value)
{
    fake_env_t *f = s_of(env);
    if (d->completed) {
        f->bad_completions++;
        return;
    }
    d->completed = true;
    d->status = status;
    d->value = value;
}

static size_t s_console_room(device_env_t *env)
{
    return s_of(env)->console_room;
}

static size_t s_console_write(device_env_t *env, const uint8_t *bytes, size_t len)
{
    fake_env_t *f = s_of(env);
    size_t n = len < f->console_room ? len : f->console_room;
    if (n > sizeof f->console_out - f->console_len)
        n = sizeof f->console_out - f->console_len;
    memcpy(f->console_out + f->console_len, bytes, n);
    f->console_len += n;
    f->console_room -= n;
    return n;
}

static void s_console_want(device_env_t *env, size_t room)
{
    s_of(env)->console_want = room;
}

static void s_guest_call(device_env_t *env, uint32_t vp_index, uint32_t kind,
                         const uint32_t *args, size_t n_args)
{
    fake_env_t *f = s_of(env);
    if (f->n_calls == FAKE_ENV_MAX)
        return;
    fake_env_call_t *c = &f->calls[f->n_calls++];
    c->vp = vp_index;
    c->kind = kind;
    c->n_args = n_args < 8 ? n_args : 8;
    for (size_t i = 0; i < c->n_args; i++)
        c->args[i] = args[i];
}

/* Records a SynIC call; returns what the test set. */
static int s_synic(fake_env_t *f, fake_synic_call_t call)
{
    if (f->n_synic < FAKE_ENV_MAX)
        f->synic[f->n_synic++] = call;
    return f->synic_result;
}

static int s_synic_connect(device_env_t *env, bool message, uint32_t connection_id)
{
    return s_synic(s_of(env), (fake_synic_call_t){.op = FAKE_SYNIC_CONNECT, .message = message,
                                                  .connection_id = connection_id});
}

static int s_synic_disconnect(device_env_t *env, bool message, uint32_t connection_id)
{
    return s_synic(s_of(env), (fake_synic_call_t){.op = FAKE_SYNIC_DISCONNECT,
                                                  .message = message,
                                                  .connection_id = connection_id});
}

static int s_synic_post(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t type,
                        const uint8_t *payload, size_t len)
{
    fake_synic_call_t call = {.op = FAKE_SYNIC_POST, .vp = vp, .sint = sint, .type = type,
                              .len = len};
    memcpy(call.payload, payload, len < sizeof call.payload ? len : sizeof call.payload);
    return s_synic(s_of(env), call);
}

static int s_synic_signal(device_env_t *env, uint32_t vp, uint32_t sint, uint32_t flag)
{
    return s_synic(s_of(env), (fake_synic_call_t){.op = FAKE_SYNIC_SIGNAL, .vp = vp,
                                                  .sint = sint, .flag = flag});
}

static int s_synic_assert(device_env_t *env, uint32_t vp, uint32_t sint)
{
    return s_synic(s_of(env),
                   (fake_synic_call_t){.op = FAKE_SYNIC_ASSERT, .vp = vp, .sint = sint});
}

static const device_env_ops_t s_ops = {
    .irq_set = s_irq_set,
    .msi = s_msi,
    .guest_read = s_guest_read,
    .guest_write = s_guest_write,
    .now_ns = s_now_ns,
    .timer_set = s_timer_set,
    .timer_cancel = s_timer_cancel,
    .wall_ns = s_wall_ns,
    .entropy = s_entropy,
    .storage_open = s_storage_open,
    .storage_read = s_storage_read,
    .storage_write = s_storage_write,
    .storage_flush = s_storage_flush,
    .power = s_power,
    .log = s_log,
    .defer = s_defer,
    .complete = s_complete,
    .console_write = s_console_write,
    .console_room = s_console_room,
    .console_want = s_console_want,
    .guest_call = s_guest_call,
    .synic_connect = s_synic_connect,
    .synic_disconnect = s_synic_disconnect,
    .synic_post = s_synic_post,
    .synic_signal = s_synic_signal,
    .synic_assert = s_synic_assert,
};

fake_env_t *fake_env_new(size_t ram_size)
{
    fake_env_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->env.ops = &s_ops;
    f->console_room = FAKE_ENV_ROOM;
    f->wall_ns = FAKE_ENV_WALL_NS;
    f->power_exit_code = -1;
    f->ram_size = ram_size;
    if (ram_size && !(f->ram = calloc(1, ram_size))) {
        free(f);
        return NULL;
    }
    return f;
}

void fake_env_destroy(fake_env_t **env)
{
    fake_env_t *f = *env;
    if (!f)
        return;
    device_destroy(&f->dev);
    free(f->disk);
    free(f->ram);
    free(f);
    *env = NULL;
}

/* The clock to `to` (not before now), the wall clock as far. */
static void s_move(fake_env_t *f, uint64_t to)
{
    f->wall_ns += to - f->now_ns;
    f->now_ns = to;
}

void fake_env_advance(fake_env_t *f, uint64_t ns)
{
    uint64_t end = f->now_ns + ns;
    for (;;) {
        int next = -1;
        for (int i = 0; i < FAKE_ENV_TIMERS; i++)
            if (f->timer_armed[i] && f->timer_deadline[i] <= end &&
                (next < 0 || f->timer_deadline[i] < f->timer_deadline[next]))
                next = i;
        if (next < 0)
            break;
        f->timer_armed[next] = false;
        if (f->timer_deadline[next] > f->now_ns)
            s_move(f, f->timer_deadline[next]);
        if (f->dev && f->dev->ops->timer)
            f->dev->ops->timer(f->dev, (uint32_t)next);
    }
    s_move(f, end);
}

int fake_env_read(fake_env_t *f, bool mmio, uint64_t address, uint32_t size, uint64_t *value)
{
    device_io_t io = {.mmio = mmio, .address = address, .size = size};
    *value = 0;
    return f->dev->ops->read(f->dev, &io, value);
}

int fake_env_write(fake_env_t *f, bool mmio, uint64_t address, uint32_t size, uint64_t value)
{
    device_io_t io = {.mmio = mmio, .address = address, .size = size};
    return f->dev->ops->write(f->dev, &io, value);
}

long long fake_env_inspect(fake_env_t *f, const char *name)
{
    Vmm__Rt__InspectNode *root = calloc(1, sizeof *root);
    if (!root)
        return -1;
    vmm__rt__inspect_node__init(root);
    f->dev->ops->inspect(f->dev, root);
    long long value = -1;
    for (size_t i = 0; i < root->n_children; i++)
        if (!strcmp(root->children[i]->name, name))
            value = strtoll(root->children[i]->value, NULL, 0);
    vmm__rt__inspect_node__free_unpacked(root, NULL);
    return value;
}

int fake_env_save_restore(device_t *from, device_t *to)
{
    ProtobufCBinaryData state = {0};
    int rc = from->ops->save(from, &state);
    if (!rc)
        rc = to->ops->restore(to, state.data, state.len);
    free(state.data);
    return rc;
}
