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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/devices/serial.h"
#include "actors/devices/testdev_abi.h"
#include "guest/demo_embedded.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

static char s_dir[64], s_partition[128], s_com2[128];

/* The device host: waits for the go, registers COM2 (one the VM cannot
 * do without when required), then lives until killed (or until its parent
 * dies). */
static void s_host_main(int go, bool required)
{
    char byte;
    if (read(go, &byte, 1) != 1)
        _exit(2);
    rt_t *rt = rt_new(NULL);
    rt_directory_set(rt, VM_PARTITION, s_partition);
    rt_executor_t *ex = rt_executor_new(rt, "devhost");
    dev_serial_config_t cfg = {.name = "com2", .partition = VM_PARTITION, .base = 0x2f8,
                               .irq = 3, .out_fd = -1, .in_fd = -1,
                               .halt_if_lost = required};
    rt_actor_spec_t spec = {.name = "vm0/dev/com2", .ops = &dev_serial_ops, .arg = &cfg,
                            .endpoint = s_com2};
    if (rt_actor_start(ex, &spec))
        _exit(3);
    for (;;)
        pause();
}

/* Forks a device host; *go starts it. */
static pid_t s_host_fork(int *go, bool required)
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
        s_host_main(fds[0], required);
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
    pid_t first = s_host_fork(&go1, false);
    pid_t second = s_host_fork(&go2, false);

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

/* The com2_poll guest polls COM2 in a device host, which is killed once the
 * guest has seen it work; returns the event that ends the run and the ms
 * it came after the kill. */
static vm_event_t s_poll_and_kill(bool required, double *after_ms)
{
    vm_harness_need_kvm();
    s_dir_new();
    int go;
    pid_t host = s_host_fork(&go, required);
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
    cr_expect_eq(s_partition_number(vm, "devices_lost"), 1);
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
