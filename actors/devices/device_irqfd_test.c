/* The device side's checks on the descriptors it takes from the VMM's
 * process (device_irqfd.h): only from the process whose memory file it
 * mapped, through that file's descriptor there, and only an eventfd. A
 * forked child plays the VMM's process, holding what it inherited; a fake
 * partition on a thread answers GetMsiIrqfd as the test says. */
#define _GNU_SOURCE /* memfd_create */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/devices/device_irqfd.h"
#include "actors/devices/testing/fake_vm.h"

#define S_RAM (64u * 1024)

static int s_memfd(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, S_RAM), 0);
    cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
    return fd;
}

/* A process that holds this one's descriptors (without FD_CLOEXEC, which
 * a fork keeps anyway) until killed. */
static pid_t s_holder(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

/* What the fake partition answers a GetMsiIrqfd with. */
typedef struct {
    fake_vm_t *vm;
    int pid, fd, ram_fd;
    int asked;
} s_partition_t;

static void *s_partition_main(void *arg)
{
    s_partition_t *sp = arg;
    rt_actor_t *self = rt_client_actor(sp->vm->partition);
    rt_msg_t msg;
    while (!rt_client_recv(sp->vm->partition, &msg, 5000)) {
        if (msg.env->body_case != VMM__ENVELOPE__BODY_DEVICE_REQUEST) {
            rt_msg_release(&msg);
            break;
        }
        Vmm__Devices__MsiIrqfd res = VMM__DEVICES__MSI_IRQFD__INIT;
        res.pid = sp->pid;
        res.fd = sp->fd;
        res.ram_fd = sp->ram_fd;
        Vmm__Devices__Reply r = VMM__DEVICES__REPLY__INIT;
        r.result_case = VMM__DEVICES__REPLY__RESULT_MSI_IRQFD;
        r.msi_irqfd = &res;
        Vmm__Envelope env = VMM__ENVELOPE__INIT;
        env.body_case = VMM__ENVELOPE__BODY_DEVICE_REPLY;
        env.device_reply = &r;
        sp->asked++;
        rt_reply(self, msg.env, &env);
        rt_msg_release(&msg);
    }
    return NULL;
}

/* Raises one MSI with irqfds fresh and guest RAM mapped from holder's
 * descriptor ram_fd, the partition answering (pid, fd, ram_fd) of sp;
 * returns device_irqfd_raise()'s result. */
static int s_raise(s_partition_t *sp, pid_t holder, int ram_fd)
{
    rt_actor_t *self = rt_client_actor(sp->vm->vp);
    Vmm__Devices__GuestRamRange range = VMM__DEVICES__GUEST_RAM_RANGE__INIT;
    range.size = S_RAM;
    Vmm__Devices__GuestRamRange *ranges[] = {&range};
    Vmm__Devices__GuestMemoryMap map = VMM__DEVICES__GUEST_MEMORY_MAP__INIT;
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)holder, ram_fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    cr_assert_gt(n, 0, "%s: %s", path, strerror(errno));
    link[n] = 0;
    map.n_ranges = 1;
    map.ranges = ranges;
    map.path = path;
    map.link = link;
    device_guest_t g = {0};
    cr_assert_eq(device_guest_map(&g, &map), 0);
    cr_assert_eq(g.pid, holder);
    device_irqfds_t f = {.enabled = true};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_partition_main, sp), 0);
    int rc = device_irqfd_raise(&f, &g, self, FAKE_VM_PARTITION, 0xfee00000, 0x41);
    /* A Ping ends the partition's thread. */
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    Vmm__Rt__Ping ping = VMM__RT__PING__INIT;
    env.body_case = VMM__ENVELOPE__BODY_PING;
    env.ping = &ping;
    cr_assert_eq(rt_send(self, FAKE_VM_PARTITION, &env), 0);
    pthread_join(thread, NULL);
    device_irqfds_fini(&f, self);
    device_guest_fini(&g);
    return rc;
}

Test(irqfd, only_an_eventfd_of_the_process_whose_memory_is_mapped_is_taken)
{
    int ram = s_memfd("irqfd-test-ram"), other_ram = s_memfd("irqfd-test-other");
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), pipes[2];
    cr_assert_geq(efd, 0);
    cr_assert_eq(pipe2(pipes, O_CLOEXEC), 0);
    pid_t vmm = s_holder(), other = s_holder();
    int pidfd = (int)syscall(SYS_pidfd_open, vmm, 0);
    int probe = pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, efd, 0) : -1;
    if (probe < 0) {
        int err = errno;
        kill(vmm, SIGKILL);
        kill(other, SIGKILL);
        waitpid(vmm, NULL, 0);
        waitpid(other, NULL, 0);
        cr_skip_test("pidfd_getfd(2) from a child is not allowed here: %s", strerror(err));
    }
    close(probe);
    close(pidfd);
    fake_vm_t *vm = fake_vm_new();

    /* The eventfd of the process whose memory file is mapped: taken, and
     * the MSI raised through it. */
    s_partition_t sp = {.vm = vm, .pid = vmm, .fd = efd, .ram_fd = ram};
    cr_expect_eq(s_raise(&sp, vmm, ram), 0);
    uint64_t count = 0;
    cr_expect_eq(read(efd, &count, sizeof count), (ssize_t)sizeof count);
    cr_expect_eq(count, 1, "raised through the eventfd taken");

    /* A descriptor that is no eventfd: by message instead. */
    sp = (s_partition_t){.vm = vm, .pid = vmm, .fd = pipes[1], .ram_fd = ram};
    cr_expect_eq(s_raise(&sp, vmm, ram), -ENOTSUP, "a pipe");
    cr_expect_eq(sp.asked, 1);

    /* Another process, though it holds the same file and eventfd. */
    sp = (s_partition_t){.vm = vm, .pid = other, .fd = efd, .ram_fd = ram};
    cr_expect_eq(s_raise(&sp, vmm, ram), -ENOTSUP, "another process");

    /* The right process, but its descriptor ram_fd is not the mapped file. */
    sp = (s_partition_t){.vm = vm, .pid = vmm, .fd = efd, .ram_fd = other_ram};
    cr_expect_eq(s_raise(&sp, vmm, ram), -ENOTSUP, "another memory file");
    cr_expect_eq(read(efd, &count, sizeof count), -1, "nothing raised through it since");

    fake_vm_destroy(&vm);
    kill(vmm, SIGKILL);
    kill(other, SIGKILL);
    waitpid(vmm, NULL, 0);
    waitpid(other, NULL, 0);
    close(pipes[0]);
    close(pipes[1]);
    close(efd);
    close(other_ram);
    close(ram);
}
