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
#include "guest/demo_embedded.h"
#include "runtime/testing/echo.h"
#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

static char s_dir[64], s_partition[128], s_com2[128];

/* The device host: waits for the go, registers COM2, then lives until
 * killed (or until its parent dies). */
static void s_host_main(int go)
{
    char byte;
    if (read(go, &byte, 1) != 1)
        _exit(2);
    rt_t *rt = rt_new(NULL);
    rt_directory_set(rt, VM_PARTITION, s_partition);
    rt_executor_t *ex = rt_executor_new(rt, "devhost");
    dev_serial_config_t cfg = {.name = "com2", .partition = VM_PARTITION, .base = 0x2f8,
                               .irq = 3, .out_fd = -1, .in_fd = -1};
    rt_actor_spec_t spec = {.name = "vm0/dev/com2", .ops = &dev_serial_ops, .arg = &cfg,
                            .endpoint = s_com2};
    if (rt_actor_start(ex, &spec))
        _exit(3);
    for (;;)
        pause();
}

/* Forks a device host; *go starts it. */
static pid_t s_host_fork(int *go)
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
        s_host_main(fds[0]);
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

Test(devhost, a_lost_device_host_is_noticed_and_a_new_one_registers_again)
{
    vm_harness_need_kvm();
    strcpy(s_dir, "/tmp/vmm-devhost-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_partition, sizeof s_partition, "ipc://%s/partition", s_dir);
    snprintf(s_com2, sizeof s_com2, "ipc://%s/com2", s_dir);
    int go1, go2;
    pid_t first = s_host_fork(&go1);
    pid_t second = s_host_fork(&go2);

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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}
