/*
 * virtio-blk in a `vmm devhost` on this machine, started by the test
 * beside a VM: with the data path by descriptors, the VMM's process sees
 * neither the queue's doorbell nor the interrupt line (the partition
 * signals no doorbell and sets no line; the device counts doorbells by its
 * eventfd and raises by its irqfd); with --by-message, both go through the
 * partition, and the guest's I/O is the same. And the device host killed
 * under a stream of writes and started again, three times: every write is
 * in the image, each completed once, and the stream carries on; and the
 * same stream by message, seconds of work, without the device taken for
 * lost. Skips without /dev/kvm.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/testing/echo.h"
#include "tests/guests/virtio_blk_pattern.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

#define S_VMM "vmm/vmm"
#define S_DEVICE "vm0/dev/virtio-blk0"

static char s_dir[64], s_image[96];

static void s_setup(void)
{
    vm_harness_need_kvm();
    strcpy(s_dir, "/tmp/vmm-vdh-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_image, sizeof s_image, "%s/disk.img", s_dir);
    int fd = open(s_image, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
}

static void s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}

/* `vmm devhost` for the VM's partition at endpoint, with virtio-blk on the
 * image; extra: NULL or one more option. */
static pid_t s_devhost(const char *endpoint, const char *extra)
{
    char device[256];
    snprintf(device, sizeof device, "virtio-blk,file=%s", s_image);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        const char *argv[] = {S_VMM, "devhost", "--vm", endpoint, "--dir", s_dir,
                              "--device", device, extra, NULL};
        execv(S_VMM, (char *const *)argv);
        _exit(126);
    }
    return pid;
}

static long long s_number(vm_t *vm, const char *actor, const char *key)
{
    return echo_inspect_number(vm_client(vm), actor, key);
}

/* Runs tests/guests/virtio_blk against the device host; checks the guest's
 * report and the image; *doorbells, *lines: what went through the
 * partition; *by_fd, *by_irqfd: what the device did by descriptor. */
static void s_run(const char *extra, long long *doorbells, long long *lines, long long *by_fd,
                  long long *by_irqfd)
{
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/partition", s_dir);
    vm_harness_file_t file = vm_harness_read("tests/guests/virtio_blk");
    vm_config_t cfg = {.n_vps = 1, .mem_size = 16u << 20, .serial_out = -1, .serial_in = -1,
                       .elf = file.elf, .elf_len = file.len, .partition_endpoint = endpoint};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(file.elf);
    cr_assert_not_null(vm, "vm_new: %s", err);
    pid_t host = s_devhost(endpoint, extra);
    cr_assert_eq(vm_wait_device(vm, "virtio-blk0", 10000), 0, "the device host registered");
    cr_assert_eq(vm_start(vm), 0);
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, 60000), 0, "no sync point");
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    cr_assert_eq(ev.n_args, 7);
    cr_expect_eq(ev.args[1], 0, "the driver's initialization failed at step %u", ev.args[1]);
    cr_expect_eq(ev.args[2], 32, "writes answered OK");
    cr_expect_eq(ev.args[3], 0, "the flush's status");
    cr_expect_eq(ev.args[4], 32, "reads that matched");
    *doorbells = s_number(vm, VM_PARTITION, "doorbells_signalled");
    *lines = s_number(vm, VM_PARTITION, "line_changes");
    *by_fd = s_number(vm, S_DEVICE, "doorbells_by_fd");
    *by_irqfd = s_number(vm, S_DEVICE, "line_raises_by_irqfd");
    long long notifies = s_number(vm, S_DEVICE, "notifies");
    cr_expect_geq(notifies, 4, "the guest kicked the queue (%lld)", notifies);
    vm_destroy(&vm);
    kill(host, SIGTERM);
    int status;
    cr_expect_eq(waitpid(host, &status, 0), host);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the device host ended well");

    static uint8_t bytes[1 << 20];
    int fd = open(s_image, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    close(fd);
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < sizeof bytes; i++)
        wrong += bytes[i] != (i < 32 * 4096 ? virtio_blk_byte(i) : 0);
    cr_expect_eq(wrong, 0, "%u bytes of the image are not what the guest wrote", wrong);
}

TestSuite(virtio_devhost, .init = s_setup, .fini = s_teardown, .timeout = 120);

Test(virtio_devhost, the_data_path_skips_the_vmm_process)
{
    long long doorbells, lines, by_fd, by_irqfd;
    s_run(NULL, &doorbells, &lines, &by_fd, &by_irqfd);
    cr_expect_eq(doorbells, 0, "the partition signalled %lld doorbells", doorbells);
    cr_expect_eq(lines, 0, "the partition set the line %lld times", lines);
    cr_expect_geq(by_fd, 4, "doorbells by eventfd: %lld", by_fd);
    cr_expect_geq(by_irqfd, 1, "line raises by irqfd: %lld", by_irqfd);
}

Test(virtio_devhost, by_message_the_same_io_goes_through_the_partition)
{
    long long doorbells, lines, by_fd, by_irqfd;
    s_run("--by-message", &doorbells, &lines, &by_fd, &by_irqfd);
    cr_expect_geq(doorbells, 4, "the partition signalled %lld doorbells", doorbells);
    cr_expect_geq(lines, 1, "the partition set the line %lld times", lines);
    cr_expect_eq(by_fd, -1, "no descriptors: %lld", by_fd);
}

/* Waits up to 20 s for the device (this incarnation) to have taken n
 * write requests. */
static bool s_wait_writes(vm_t *vm, long long n)
{
    for (int ms = 0; ms < 20000; ms += 5) {
        if (s_number(vm, S_DEVICE, "write_requests") >= n)
            return true;
        struct timespec pause = {0, 5 * 1000000};
        nanosleep(&pause, NULL);
    }
    return false;
}

/* tests/guests/virtio_blk_stream against a device host (extra: NULL or one
 * more option), killed and started again `kills` times under the stream:
 * every write completed once, and the image holds the last of each. */
static void s_stream(const char *extra, int kills)
{
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/partition", s_dir);
    vm_harness_file_t file = vm_harness_read("tests/guests/virtio_blk_stream");
    vm_config_t cfg = {.n_vps = 1, .mem_size = 16u << 20, .serial_out = -1, .serial_in = -1,
                       .elf = file.elf, .elf_len = file.len, .partition_endpoint = endpoint};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(file.elf);
    cr_assert_not_null(vm, "vm_new: %s", err);
    pid_t host = s_devhost(endpoint, extra);
    cr_assert_eq(vm_wait_device(vm, "virtio-blk0", 10000), 0, "the device host registered");
    cr_assert_eq(vm_start(vm), 0);
    for (int kill_no = 0; kill_no < kills; kill_no++) {
        cr_assert(s_wait_writes(vm, 1500),
                  "incarnation %d took no stream: write_requests %lld, notifies %lld, "
                  "needs_reset %lld, doorbells_by_fd %lld; the partition's devices_lost %lld",
                  kill_no, s_number(vm, S_DEVICE, "write_requests"),
                  s_number(vm, S_DEVICE, "notifies"), s_number(vm, S_DEVICE, "needs_reset"),
                  s_number(vm, S_DEVICE, "doorbells_by_fd"),
                  s_number(vm, VM_PARTITION, "devices_lost"));
        vm_event_t early;
        cr_assert_eq(vm_next_event(vm, &early, 0), -ETIMEDOUT, "the stream ended before kill %d",
                     kill_no);
        cr_assert_eq(kill(host, SIGKILL), 0);
        cr_assert_eq(waitpid(host, NULL, 0), host);
        host = s_devhost(endpoint, extra);
        cr_assert_eq(vm_wait_device(vm, "virtio-blk0", 10000), 0, "restart %d registered",
                     kill_no);
    }
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, 120000), 0, "the stream did not end");
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    cr_assert_eq(ev.n_args, 6);
    cr_expect_eq(ev.args[1], 0, "the driver's initialization failed at step %u", ev.args[1]);
    cr_expect_eq(ev.args[2], VIRTIO_BLK_STREAM_WRITES, "writes completed: %u", ev.args[2]);
    cr_expect_eq(ev.args[3], 0, "requests used twice: %u", ev.args[3]);
    cr_expect_eq(ev.args[4], 0, "writes failed: %u", ev.args[4]);
    cr_expect_eq(ev.args[5] & 0x40, 0, "status 0x%x", ev.args[5]);
    cr_log_info("%lld rings, %lld signals to the device, %lld rings held",
                s_number(vm, VM_PARTITION, "doorbells_signalled"),
                s_number(vm, VM_PARTITION, "doorbell_signals"),
                s_number(vm, VM_PARTITION, "doorbell_rings_held"));
    vm_destroy(&vm);
    kill(host, SIGTERM);
    waitpid(host, NULL, 0);

    /* Sector s holds the last write that went to it. */
    static uint32_t words[VIRTIO_BLK_STREAM_SECTORS * 128];
    int fd = open(s_image, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, words, sizeof words), (ssize_t)sizeof words);
    close(fd);
    uint32_t wrong = 0;
    for (uint32_t s = 0; s < VIRTIO_BLK_STREAM_SECTORS; s++) {
        uint32_t last = (VIRTIO_BLK_STREAM_WRITES - 1 - s) / VIRTIO_BLK_STREAM_SECTORS *
                            VIRTIO_BLK_STREAM_SECTORS +
                        s;
        for (uint32_t w = 0; w < 128; w++)
            wrong += words[s * 128 + w] != last;
    }
    cr_expect_eq(wrong, 0, "%u words of the image are not the last write to them", wrong);
}

Test(virtio_devhost, a_host_killed_under_a_stream_of_writes_resumes_exactly)
{
    s_stream(NULL, 3);
}

/* By message the device is busy for seconds on end, its pongs behind its
 * work: the partition must not take it for lost. */
Test(virtio_devhost, by_message_a_long_stream_keeps_its_device)
{
    s_stream("--by-message", 0);
}
