/*
 * A device in another process: a forked child plays a device host (a UART
 * at COM2 registering over ipc:// with the VM's partition), is killed, and
 * is started again. The VM notices the loss, its ranges become nobody's,
 * and the new host registers the same device. The child is forked before
 * the VM exists (a process with threads forks badly) and waits for a go.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/device_actor.h"
#include "actors/devices/serial.h"
#include "actors/devices/testdev.h"
#include "actors/devices/testdev_abi.h"
#include "guest/demo_embedded.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

static char s_dir[64], s_partition[128], s_com2[128], s_record[128], s_testdev[128];

/* ---- A port device that counts, for the kill in the middle of a stream ---- */

/* Shared with the device hosts (mapped before they fork): the writes each
 * incarnation took, and whether they came in order. */
typedef struct {
    _Atomic long taken[2];
    _Atomic long next;     /* the byte the next write should carry, or -1 */
    _Atomic long disorder; /* writes out of order, missing or twice */
} s_tally_t;

static s_tally_t *s_tally;

typedef struct {
    device_t dev;
    int incarnation;
} s_counter_t;

static int s_counter_read(device_t *dev, const device_io_t *io, uint64_t *value)
{
    (void)dev;
    (void)io;
    *value = 0x5a; /* reads: served */
    return 0;
}

static int s_counter_write(device_t *dev, const device_io_t *io, uint64_t value)
{
    (void)io;
    long next = atomic_load(&s_tally->next);
    if (next >= 0 && (long)value != next)
        atomic_fetch_add(&s_tally->disorder, 1);
    atomic_store(&s_tally->next, (long)((value + 1) & 0xff));
    atomic_fetch_add(&s_tally->taken[((s_counter_t *)dev)->incarnation], 1);
    return 0;
}

static void s_counter_inspect(device_t *dev, Vmm__Rt__InspectNode *node)
{
    rt_inspect_add(node, "incarnation", "%d", ((s_counter_t *)dev)->incarnation);
}

static void s_counter_destroy(device_t *dev)
{
    free(dev);
}

static const device_ops_t s_counter_ops = {
    .kind = "counter",
    .read = s_counter_read,
    .write = s_counter_write,
    .reset = device_reset_none,
    .inspect = s_counter_inspect,
    .save = device_save_none,
    .restore = device_restore_none,
    .destroy = s_counter_destroy,
};

/* A port device at COM2's ports that counts the writes (config: the
 * incarnation, an int *). */
static device_t *s_counter_new(const void *config, device_env_t *env)
{
    s_counter_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->incarnation = *(const int *)config;
    c->dev = (device_t){.ops = &s_counter_ops, .env = env};
    c->dev.spec = (device_spec_t){.name = "com2", .n_ranges = 1,
                                  .ranges = {{.start = 0x2f8, .len = 8}},
                                  .posted_writes = true};
    return &c->dev;
}

/* ---- Device hosts ----------------------------------------------------------- */

/* What a forked device host serves at COM2's ports. */
typedef enum {
    S_SERIAL,          /* a UART */
    S_SERIAL_REQUIRED, /* a UART the VM cannot do without */
    S_COUNTER_FIRST,   /* the counter, with its delivery record */
    S_COUNTER_SECOND,  /* the same, restarted */
    S_TESTDEV,         /* the test device (its MSI by irqfd), at s_testdev */
} s_host_kind_t;

/* The device host: waits for the go, registers its device, then lives
 * until killed (or until its parent dies). */
static void s_host_main(int go, s_host_kind_t kind)
{
    char byte;
    if (read(go, &byte, 1) != 1)
        _exit(2);
    rt_t *rt = rt_new(NULL);
    rt_directory_set(rt, VM_PARTITION, s_partition);
    rt_executor_t *ex = rt_executor_new(rt, "devhost");
    dev_serial_config_t serial = {.name = "com2", .base = 0x2f8, .irq = 3};
    int incarnation = kind == S_COUNTER_SECOND;
    device_actor_config_t cfg = {.new_model = dev_serial_new, .model_config = &serial,
                                 .partition = VM_PARTITION,
                                 .halt_if_lost = kind == S_SERIAL_REQUIRED};
    rt_actor_spec_t spec = {.name = "vm0/dev/com2", .ops = &device_actor_ops, .arg = &cfg,
                            .endpoint = s_com2};
    if (kind == S_COUNTER_FIRST || kind == S_COUNTER_SECOND) {
        cfg.new_model = s_counter_new;
        cfg.model_config = &incarnation;
        spec.delivery_record = s_record;
    } else if (kind == S_TESTDEV) {
        cfg.new_model = dev_testdev_new;
        cfg.model_config = NULL;
        cfg.msi_irqfd = true;
        spec.name = "vm0/dev/testdev";
        spec.endpoint = s_testdev;
    }
    if (rt_actor_start(ex, &spec))
        _exit(3);
    for (;;)
        pause();
}

/* Forks a device host; *go starts it. */
static pid_t s_host_fork(int *go, s_host_kind_t kind)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[1]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        s_host_main(fds[0], kind);
    }
    close(fds[0]);
    *go = fds[1];
    return pid;
}

static void s_go(int go)
{
    cr_assert_eq(write(go, "g", 1), 1);
    close(go);
}

static long long s_partition_number(vm_t *vm, const char *key)
{
    return echo_inspect_number(vm_client(vm), VM_PARTITION, key);
}

/* Waits up to 10 s for the partition's counter key to reach want;
 * returns the ms it took, or -1. */
static long s_wait_number(vm_t *vm, const char *key, long long want)
{
    for (long ms = 0; ms < 10000; ms += 10) {
        if (s_partition_number(vm, key) == want)
            return ms;
        struct timespec pause = {0, 10 * 1000000};
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* A private folder for the endpoints. */
static void s_dir_new(void)
{
    strcpy(s_dir, "/tmp/vmm-devhost-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_partition, sizeof s_partition, "ipc://%s/partition", s_dir);
    snprintf(s_com2, sizeof s_com2, "ipc://%s/com2", s_dir);
    snprintf(s_record, sizeof s_record, "%s/com2.record", s_dir);
    snprintf(s_testdev, sizeof s_testdev, "ipc://%s/testdev", s_dir);
}

static void s_dir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Test(devhost, a_lost_device_host_is_noticed_and_a_new_one_registers_again)
{
    vm_harness_need_kvm();
    s_dir_new();
    int go1, go2;
    pid_t first = s_host_fork(&go1, S_SERIAL);
    pid_t second = s_host_fork(&go2, S_SERIAL);

    vm_config_t cfg = {.elf = guest_demo_elf, .elf_len = guest_demo_elf_len,
                       .mem_size = 16u << 20, .serial_out = -1, .serial_in = -1,
                       .partition_endpoint = s_partition};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    cr_assert_not_null(vm, "%s", err);
    long long local = s_partition_number(vm, "devices");

    s_go(go1);
    cr_assert_eq(vm_wait_device(vm, "com2", 10000), 0, "the first host did not register");
    cr_expect_eq(s_partition_number(vm, "devices"), local + 1);

    kill(first, SIGKILL);
    waitpid(first, NULL, 0);
    long noticed = s_wait_number(vm, "devices_lost", 1);
    cr_assert_geq(noticed, 0, "the loss was not noticed within 10 s");
    cr_expect_eq(s_partition_number(vm, "devices"), local, "com2's ranges are nobody's");
    /* A figure, not a target. */
    printf("a killed device host was noticed %ld ms after its death\n", noticed);

    s_go(go2);
    cr_assert_eq(vm_wait_device(vm, "com2", 10000), 0, "the second host did not register");
    cr_expect_eq(s_partition_number(vm, "devices"), local + 1);
    cr_expect_eq(s_partition_number(vm, "devices_lost"), 1, "the new host is alive");

    kill(second, SIGKILL);
    waitpid(second, NULL, 0);
    vm_destroy(&vm);
    s_dir_remove();
}

/* The demo's MSI from the test device in a device host: by the irqfd the
 * partition made for it, written in the host; the partition takes no
 * RequestMsi, and the guest takes its interrupt and powers off. */
Test(devhost, a_device_host_raises_its_msi_by_irqfd)
{
    vm_harness_need_kvm();
    s_dir_new();
    /* The host takes the irqfd from this process with pidfd_getfd(2):
     * under Yama's restricted ptrace it needs naming as this process's
     * tracer; under admin-only ptrace nothing lets it. */
    FILE *yama = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    int scope = 0;
    if (yama) {
        if (fscanf(yama, "%d", &scope) != 1)
            scope = 0;
        fclose(yama);
    }
    if (scope >= 2)
        cr_skip_test("Yama's ptrace_scope is %d: no process may take this one's irqfds", scope);
    int go;
    pid_t host = s_host_fork(&go, S_TESTDEV);
    if (scope == 1)
        cr_assert_eq(prctl(PR_SET_PTRACER, (unsigned long)host), 0);
    static const char *const elsewhere[] = {"testdev"};
    vm_config_t cfg = {.elf = guest_demo_elf, .elf_len = guest_demo_elf_len,
                       .mem_size = 16u << 20, .serial_out = -1, .serial_in = -1,
                       .partition_endpoint = s_partition, .elsewhere = elsewhere,
                       .n_elsewhere = 1};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    cr_assert_not_null(vm, "%s", err);
    cr_assert_eq(rt_directory_set(vm_rt(vm), "vm0/dev/testdev", s_testdev), 0);
    s_go(go);
    cr_assert_eq(vm_wait_device(vm, "testdev", 10000), 0, "the host did not register");
    cr_assert_eq(vm_start(vm), 0);
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, 10000), 0, "the guest did not end");
    cr_assert_eq(ev.kind, VM_EVENT_HALT, "a guest call %u", ev.call);
    cr_expect_eq(ev.reason, VMM__VP__HALTED__REASON_POWER_OFF, "%s", ev.text);
    cr_expect_eq(s_partition_number(vm, "msi_irqfds"), 1);
    cr_expect_eq(s_partition_number(vm, "msis"), 0, "no RequestMsi reached the partition");
    cr_expect_eq(echo_inspect_number(vm_client(vm), "vm0/dev/testdev", "msis_by_irqfd"), 1);
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    vm_destroy(&vm);
    s_dir_remove();
}

/* The com2_poll guest polls COM2 in a device host, which is killed once the
 * guest has seen it work; returns the event that ends the run and the ms
 * it came after the kill. */
static vm_event_t s_poll_and_kill(bool required, double *after_ms)
{
    vm_harness_need_kvm();
    s_dir_new();
    int go;
    pid_t host = s_host_fork(&go, required ? S_SERIAL_REQUIRED : S_SERIAL);
    vm_harness_file_t guest = vm_harness_read("tests/guests/com2_poll");
    vm_config_t cfg = {.elf = guest.elf, .elf_len = guest.len, .mem_size = 16u << 20,
                       .serial_out = -1, .serial_in = -1, .partition_endpoint = s_partition};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(guest.elf);
    cr_assert_not_null(vm, "%s", err);
    s_go(go);
    cr_assert_eq(vm_wait_device(vm, "com2", 10000), 0, "the host did not register");
    cr_assert_eq(vm_start(vm), 0);
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, 10000), 0, "no sync point");
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    cr_assert_eq(ev.call, TESTDEV_CALL_SYNC);

    double killed = s_now_ms();
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    cr_assert_eq(vm_next_event(vm, &ev, 10000), 0, "the guest went on polling");
    *after_ms = s_now_ms() - killed;
    /* The partition's own liveness check may end a little after the VP's
     * wait (3 s without an answer, checked on a timer): it comes. */
    long long lost = 0;
    for (int i = 0; i < 100 && (lost = s_partition_number(vm, "devices_lost")) != 1; i++)
        usleep(50 * 1000);
    cr_expect_eq(lost, 1);
    vm_destroy(&vm);
    s_dir_remove();
    return ev;
}

Test(devhost, a_lost_device_reads_as_nobodys_and_the_guest_goes_on)
{
    double ms;
    vm_event_t ev = s_poll_and_kill(false, &ms);
    cr_assert_eq(ev.kind, VM_EVENT_HALT);
    cr_assert_eq(ev.reason, VMM__VP__HALTED__REASON_POWER_OFF, "%s", ev.text);
    cr_expect_eq(ev.exit_code, 2 * 7 + 1, "the guest read all ones and exited");
    printf("the guest read all ones from its lost UART %.0f ms after the kill\n", ms);
}

Test(devhost, a_lost_required_device_halts_the_vp_that_touches_it)
{
    double ms;
    vm_event_t ev = s_poll_and_kill(true, &ms);
    cr_assert_eq(ev.kind, VM_EVENT_HALT);
    cr_assert_eq(ev.reason, VMM__VP__HALTED__REASON_INVALID_VM_STATE, "%s", ev.text);
    cr_expect(strstr(ev.text, "vm0/dev/com2") && strstr(ev.text, "cannot do without"), "%s",
              ev.text);
    printf("a VP touching its lost required UART halted %.0f ms after the kill: %s\n", ms,
           ev.text);
}

/* Waits until taken[i] passes at_least; asserts it does within 10 s. */
static void s_wait_taken(int i, long at_least)
{
    for (int ms = 0; atomic_load(&s_tally->taken[i]) < at_least && ms < 10000; ms++)
        usleep(1000);
    cr_assert_geq(atomic_load(&s_tally->taken[i]), at_least, "host %d took %ld writes", i + 1,
                  atomic_load(&s_tally->taken[i]));
}

/* Waits until the sum of what both took holds still for 100 ms. */
static long s_settled_total(void)
{
    long total = -1, now;
    for (int i = 0; i < 100; i++) {
        usleep(100 * 1000);
        now = atomic_load(&s_tally->taken[0]) + atomic_load(&s_tally->taken[1]);
        if (now == total)
            break;
        total = now;
    }
    return total;
}

/*
 * The guest streams posted writes to a device host, which is killed in the
 * middle of the stream and started again with its delivery record. The
 * guest sees service resume (its reads are served again), and the writes
 * the VP sent are taken once each, in order, by one host or the other:
 * what was in flight when the first died goes to the second. The kill may
 * land between the runtime taking a write and the device counting it: then
 * exactly one write is missing, never one too many.
 */
Test(devhost, a_host_killed_mid_stream_loses_nothing_and_repeats_nothing)
{
    vm_harness_need_kvm();
    s_dir_new();
    s_tally = mmap(NULL, sizeof *s_tally, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(s_tally, MAP_FAILED);
    atomic_store(&s_tally->next, -1);
    int go1, go2;
    pid_t first = s_host_fork(&go1, S_COUNTER_FIRST);
    pid_t second = s_host_fork(&go2, S_COUNTER_SECOND);
    vm_harness_file_t guest = vm_harness_read("tests/guests/com2_stream");
    vm_config_t cfg = {.elf = guest.elf, .elf_len = guest.len, .mem_size = 16u << 20,
                       .serial_out = -1, .serial_in = -1, .partition_endpoint = s_partition};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(guest.elf);
    cr_assert_not_null(vm, "%s", err);
    s_go(go1);
    cr_assert_eq(vm_wait_device(vm, "com2", 10000), 0, "the first host did not register");
    cr_assert_eq(vm_start(vm), 0);
    s_wait_taken(0, 20000);

    kill(first, SIGKILL);
    waitpid(first, NULL, 0);
    cr_assert_geq(s_wait_number(vm, "devices_lost", 1), 0, "the loss was not noticed");
    s_go(go2);
    cr_assert_eq(vm_wait_device(vm, "com2", 10000), 0, "the second host did not register");
    vm_event_t ev;
    cr_assert_eq(vm_next_event(vm, &ev, 10000), 0, "the guest did not see service resume");
    cr_assert_eq(ev.kind, VM_EVENT_GUEST_CALL, "a halt instead: %s", ev.text);
    s_wait_taken(1, 20000);

    /* Stop the guest; what the VP sent settles at the second host. */
    vm_harness_stop_vp(vm_client(vm), 0);
    long total = s_settled_total();
    long long sent = echo_inspect_number(vm_client(vm), "vm0/vp/0", "posted_writes");
    long taken1 = atomic_load(&s_tally->taken[0]), taken2 = atomic_load(&s_tally->taken[1]);
    rt_stats_t stats;
    rt_stats(vm_rt(vm), &stats);
    printf("the VP sent %lld writes: the first host took %ld, the second %ld; %llu frames "
           "were sent again; %lld writes went nowhere while the device was lost\n",
           sent, taken1, taken2, (unsigned long long)stats.tx_resent,
           echo_inspect_number(vm_client(vm), "vm0/vp/0", "unregistered_writes"));
    cr_expect(total == sent || total == sent - 1, "sent %lld, taken %ld + %ld", sent, taken1,
              taken2);
    cr_expect_leq(atomic_load(&s_tally->disorder), sent - total,
                  "writes out of order or twice: %ld", atomic_load(&s_tally->disorder));

    kill(second, SIGKILL);
    waitpid(second, NULL, 0);
    vm_destroy(&vm);
    munmap(s_tally, sizeof *s_tally);
    s_dir_remove();
}
