/*
 * Replays of the traces in tests/traces/, recorded from real runs of the
 * test guests (the README there says how each is made again): every device,
 * the synic and the device registry, alone, with no KVM, must send what
 * they sent then. A changed
 * copy of a model must not: its replay reports where it diverged. Runs
 * anywhere.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "actors/devices/device_actor.h"
#include "actors/devices/serial.h"
#include "actors/registry/registry.h"
#include "actors/synic/synic.h"
#include "runtime/replay.h"
#include "tests/testing/mailbox.h"

#define S_TRACES "tests/traces/"

typedef enum { S_DEVICE, S_SYNIC, S_REGISTRY } s_kind_t;

static void s_expect_match(const char *trace, const char *actor, s_kind_t kind,
                           uint64_t min_delivered)
{
    char path[256], err[1024] = "";
    snprintf(path, sizeof path, S_TRACES "%s", trace);
    rt_replay_result_t res;
    int rc = kind == S_SYNIC      ? synic_replay(path, actor, &res, err, sizeof err)
             : kind == S_REGISTRY ? registry_replay(path, actor, &res, err, sizeof err)
                                  : device_actor_replay(path, actor, NULL, NULL, &res, err,
                                                        sizeof err);
    cr_assert_eq(rc, 0, "%s %s: %s", trace, actor, err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_not(res.unfinished, "%s", res.report);
    cr_expect_geq(res.delivered, min_delivered, "%s", res.report);
}

Test(replay, the_uart_greets_reads_a_line_and_answers)
{
    s_expect_match("demo.trace", "vm0/dev/com1", S_DEVICE, 100);
    s_expect_match("uart.trace", "vm0/dev/com1", S_DEVICE, 100);
}

Test(replay, the_test_device_s_msi_and_the_power_devices)
{
    s_expect_match("demo.trace", "vm0/dev/testdev", S_DEVICE, 2);
    s_expect_match("demo.trace", "vm0/dev/pm1a", S_DEVICE, 2);
    s_expect_match("demo.trace", "vm0/dev/i8042", S_DEVICE, 1);
    s_expect_match("demo.trace", "vm0/dev/debug-exit", S_DEVICE, 1);
}

/* The device registry: what each device asked for, as the partition
 * passed it on, and what each was granted. */
/* virtio-blk without its image (the trace holds what it read and wrote),
 * its doorbells recorded as the partition's DoorbellSignalled though it
 * waited on their eventfds itself; virtio-console with its console's
 * input. */
Test(replay, virtio_blk_and_virtio_console)
{
    s_expect_match("virtio_blk.trace", "vm0/dev/virtio-blk", S_DEVICE, 10);
    s_expect_match("virtio_console.trace", "vm0/dev/virtio-console", S_DEVICE, 10);
}

Test(replay, the_device_registry)
{
    s_expect_match("demo.trace", "vm0/devices", S_REGISTRY, 5);
    s_expect_match("mailbox.trace", "vm0/devices", S_REGISTRY, 6);
    s_expect_match("devhost.trace", "vm0/devices", S_REGISTRY, 5);
}

Test(replay, a_device_in_a_device_host)
{
    s_expect_match("devhost.trace.devhost0", "vm0/dev/com1", S_DEVICE, 100);
}

/* Both parts of the split synic: its central actor (ports, monitors,
 * what it hands on) and VP 0's (MSRs, hypercalls, messages, timers). */
Test(replay, the_synic_s_messages_event_ports_timers_and_monitor_page)
{
    s_expect_match("hv_messages.trace", "vm0/synic", S_SYNIC, 2);
    s_expect_match("hv_messages.trace", "vm0/synic/vp/0", S_SYNIC, 20);
    s_expect_match("hv_post.trace", "vm0/synic", S_SYNIC, 2);
    s_expect_match("hv_post.trace", "vm0/synic/vp/0", S_SYNIC, 5);
    s_expect_match("hv_timers.trace", "vm0/synic/vp/0", S_SYNIC, 20);
    s_expect_match("hv_monitor.trace", "vm0/synic", S_SYNIC, 50);
}

/* A model the VMM does not know by name: its test names it (the C API). */
Test(replay, a_doorbell_and_guest_memory_through_the_mapping)
{
    rt_replay_result_t res;
    char err[1024] = "";
    cr_assert_eq(device_actor_replay(S_TRACES "mailbox.trace", "vm0/dev/mailbox",
                                     dev_mailbox_new, NULL, &res, err, sizeof err),
                 0, "%s", err);
    cr_expect(res.matched, "%s", res.report);
    cr_expect_geq(res.inputs, 4, "the mapping's outcome and three counter reads: %s",
                  res.report);
    cr_expect_geq(res.compared, 3, "three counter writes among them: %s", res.report);

    /* Without it, the replay says what is missing. */
    cr_expect_eq(device_actor_replay(S_TRACES "mailbox.trace", "vm0/dev/mailbox", NULL, NULL,
                                     &res, err, sizeof err),
                 -ENOTSUP);
    cr_expect_neq(strstr(err, "not one this VMM has by name"), NULL, "%s", err);
}

/* ---- Changed models diverge ------------------------------------------------------- */

Test(replay, a_changed_mailbox_diverges_at_the_byte_it_writes)
{
    const dev_mailbox_config_t twice = {.step = 2};
    rt_replay_result_t res;
    char err[1024] = "";
    cr_assert_eq(device_actor_replay(S_TRACES "mailbox.trace", "vm0/dev/mailbox",
                                     dev_mailbox_new, &twice, &res, err, sizeof err),
                 0, "%s", err);
    cr_assert_not(res.matched, "a step of 2 writes 2 where the run wrote 1");
    printf("%s", res.report);
    cr_expect_eq(strncmp(res.kind, "output of kind ", 15), 0, "%s", res.kind);
    cr_expect_str_eq(res.field, "byte 0");
    cr_expect_str_eq(res.expected, "0x01");
    cr_expect_str_eq(res.got, "0x02");
    cr_expect_neq(strstr(res.cause, "doorbell_signalled"), NULL, "%s", res.cause);
}

/* COM1 as recorded, but for a line status that no longer says the
 * transmitter is empty: the guest's first poll is answered otherwise. */
static int (*s_serial_read)(device_t *, const device_io_t *, uint64_t *);
static device_ops_t s_changed_ops;

static int s_changed_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    int rc = s_serial_read(dev, io, value);
    if (!rc && io->address == 0x3fd)
        *value &= ~0x40ull; /* LSR TEMT */
    return rc;
}

static device_t *s_changed_serial_new(const void *config, device_env_t *env)
{
    device_t *dev = dev_serial_new(config, env);
    if (dev) {
        s_changed_ops = *dev->ops;
        s_serial_read = s_changed_ops.read;
        s_changed_ops.read = s_changed_read;
        dev->ops = &s_changed_ops;
    }
    return dev;
}

Test(replay, a_changed_uart_diverges_at_the_reply_it_changed)
{
    rt_replay_result_t res;
    char err[1024] = "";
    cr_assert_eq(device_actor_replay(S_TRACES "demo.trace", "vm0/dev/com1",
                                     s_changed_serial_new, NULL, &res, err, sizeof err),
                 0, "%s", err);
    cr_assert_not(res.matched);
    printf("%s", res.report);
    cr_expect_str_eq(res.kind, "device_reply.read_io");
    cr_expect_str_eq(res.field, "device_reply.read_io.data");
    cr_expect_str_eq(res.expected, "\"`\"", "LSR 0x60: THRE and TEMT");
    cr_expect_str_eq(res.got, "\" \"", "LSR 0x20: THRE alone");
    cr_expect_neq(strstr(res.cause, "device_request.read_io"), NULL, "%s", res.cause);
    cr_expect_neq(strstr(res.cause, "port: 1021"), NULL, "%s", res.cause);
}
