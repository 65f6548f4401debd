/*
 * Every device model through its fake environment (actors/devices/testing):
 * the first byte picks the model, the rest is a program of guest accesses
 * inside its ranges, guest RAM contents (virtqueues, descriptors), time
 * passing, restores of its own state and of arbitrary bytes, resets,
 * doorbells, console input and SynIC messages. ASan and UBSan watch the
 * model; it must not crash, whatever the guest or a saved state says.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/devices/bochs_shutdown.h"
#include "actors/devices/debug_exit.h"
#include "actors/devices/fw_cfg.h"
#include "actors/devices/hyperv_testdev.h"
#include "actors/devices/i8042.h"
#include "actors/devices/pc_testdev.h"
#include "actors/devices/power.h"
#include "actors/devices/rtc.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/testing/fake_env.h"
#include "actors/devices/virtio_blk.h"
#include "actors/devices/virtio_console.h"
#include "actors/devices/virtio_rng.h"

#define S_RAM (64u << 10)
#define S_DISK (64u << 10)
#define S_BASE 0x8000ull /* virtio's register block, inside the fake RAM's span */

typedef struct {
    const uint8_t *p, *end;
} s_in_t;

static uint64_t s_take(s_in_t *in, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && in->p < in->end; i++)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static device_t *s_model(unsigned which, fake_env_t *f)
{
    static const dev_rtc_config_t rtc = {.ram_below_4g = 64u << 20, .n_cpus = 2};
    static const uint8_t file[] = "fuzz";
    static const dev_fw_cfg_file_t files[] = {{.name = "etc/fuzz", .bytes = file, .len = 4}};
    static const dev_fw_cfg_config_t fw = {.n_cpus = 2, .ram_size = 64u << 20, .files = files,
                                           .n_files = 1};
    static const dev_virtio_blk_config_t blk = {.base = S_BASE, .irq = 5, .path = "/disk"};
    static const dev_virtio_console_config_t con = {.base = S_BASE, .irq = 6};
    static const dev_virtio_rng_config_t rng = {.base = S_BASE, .irq = 7};
    switch (which % 13) {
    case 0: return dev_serial_new(NULL, &f->env);
    case 1: return dev_debug_exit_new(NULL, &f->env);
    case 2: return dev_i8042_new(NULL, &f->env);
    case 3: return dev_power_new(NULL, &f->env);
    case 4: return dev_rtc_new(&rtc, &f->env);
    case 5: return dev_testdev_new(NULL, &f->env);
    case 6: return dev_fw_cfg_new(&fw, &f->env);
    case 7: return dev_bochs_shutdown_new(NULL, &f->env);
    case 8: return dev_pc_testdev_new(NULL, &f->env);
    case 9: return dev_hyperv_testdev_new(NULL, &f->env);
    case 10: return dev_virtio_blk_new(&blk, &f->env);
    case 11: return dev_virtio_console_new(&con, &f->env);
    default: return dev_virtio_rng_new(&rng, &f->env);
    }
}

/* An access inside one of the model's ranges, of a width it may take. */
static void s_access(fake_env_t *f, s_in_t *in, bool write)
{
    const device_spec_t *spec = &f->dev->spec;
    if (!spec->n_ranges)
        return;
    const device_range_t *r = &spec->ranges[s_take(in, 1) % spec->n_ranges];
    static const uint32_t sizes[] = {1, 2, 4, 8};
    uint32_t size = sizes[s_take(in, 1) % (r->mmio ? 4 : 3)];
    uint64_t off = r->len > size ? s_take(in, 2) % (r->len - size + 1) : 0;
    uint64_t value = s_take(in, size);
    if (write)
        fake_env_write(f, r->mmio, r->start + off, size, value);
    else
        fake_env_read(f, r->mmio, r->start + off, size, &value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_in_t in = {data, data + size};
    fake_env_t *f = fake_env_new(S_RAM);
    if (!f)
        return 0;
    f->disk = calloc(1, S_DISK);
    f->disk_size = f->disk ? S_DISK : 0;
    f->dev = s_model((unsigned)s_take(&in, 1), f);
    if (!f->dev) {
        fake_env_destroy(&f);
        return 0;
    }
    const device_ops_t *ops = f->dev->ops;
    for (int steps = 0; in.p < in.end && steps < 4096; steps++) {
        switch (s_take(&in, 1) % 10) {
        case 0:
            s_access(f, &in, false);
            break;
        case 1:
            s_access(f, &in, true);
            break;
        case 2:
            fake_env_advance(f, s_take(&in, 2) * 1000u);
            break;
        case 3: { /* guest RAM: what queues and buffers hold */
            size_t at = (size_t)s_take(&in, 2) % S_RAM, n = (size_t)s_take(&in, 1);
            for (size_t i = 0; i < n && at + i < S_RAM && in.p < in.end; i++)
                f->ram[at + i] = *in.p++;
            break;
        }
        case 4: { /* its own state, saved and restored */
            ProtobufCBinaryData st = {0};
            if (!ops->save(f->dev, &st))
                ops->restore(f->dev, st.data, st.len);
            free(st.data);
            break;
        }
        case 5: { /* a state from anywhere: refused, or taken whole */
            size_t n = (size_t)s_take(&in, 1);
            if (n > (size_t)(in.end - in.p))
                n = (size_t)(in.end - in.p);
            ops->restore(f->dev, in.p, n);
            in.p += n;
            break;
        }
        case 6:
            ops->reset(f->dev);
            break;
        case 7:
            if (ops->doorbell && f->dev->spec.n_doorbells)
                ops->doorbell(f->dev, (size_t)s_take(&in, 1) % f->dev->spec.n_doorbells);
            break;
        case 8: { /* console input, no more than the model asked for */
            size_t n = (size_t)s_take(&in, 1);
            if (n > f->console_want)
                n = f->console_want;
            if (n > (size_t)(in.end - in.p))
                n = (size_t)(in.end - in.p);
            if (ops->console_input && n)
                ops->console_input(f->dev, in.p, n);
            in.p += n;
            break;
        }
        default: { /* the SynIC hands on a message or an event */
            uint32_t id = (uint32_t)s_take(&in, 1), type = (uint32_t)s_take(&in, 4);
            size_t n = (size_t)s_take(&in, 1) % 241;
            if (n > (size_t)(in.end - in.p))
                n = (size_t)(in.end - in.p);
            if (ops->synic_message)
                ops->synic_message(f->dev, id, type, in.p, n);
            if (ops->synic_event)
                ops->synic_event(f->dev, id, type & 0x7ff);
            in.p += n;
            break;
        }
        }
    }
    fake_env_destroy(&f);
    return 0;
}
