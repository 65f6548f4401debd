#define _GNU_SOURCE
#include "actors/devices/device_irqfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Asking the partition for one: it is across a socket. */
#define S_CALL_TIMEOUT_MS 5000

/* Turns irqfds off, saying why once. Returns -ENOTSUP. */
static int s_off(device_irqfds_t *f, rt_actor_t *self, const char *why, int err)
{
    f->off = true;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "MSIs by message: %s%s%s", why,
           err ? ": " : "", err ? strerror(err) : "");
    return -ENOTSUP;
}

typedef struct {
    int pid, fd, ram_fd;
} s_where_t;

static int s_on_reply(void *arg, const Vmm__Envelope *reply)
{
    s_where_t *w = arg;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR)
        return rt_errno_of(reply->error->code);
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY ||
        reply->device_reply->result_case != VMM__DEVICES__REPLY__RESULT_MSI_IRQFD)
        return -EPROTO;
    const Vmm__Devices__MsiIrqfd *m = reply->device_reply->msi_irqfd;
    *w = (s_where_t){m->pid, m->fd, m->ram_fd};
    return 0;
}

/* Takes descriptor w->fd of the VMM's process, which must still be the
 * one whose memory file g mapped: its pidfd, then the memory file's link
 * through it, then the descriptor. Returns it, or a negative errno with
 * the reason in *why. */
static int s_take(const device_guest_t *g, const s_where_t *w, const char **why)
{
    int pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
    if (pidfd < 0) {
        *why = "cannot open the VMM's process";
        return -errno;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", w->pid, w->ram_fd);
    int fd = -ESRCH;
    if (w->pid != g->pid || !device_guest_links_to(path, g->link)) {
        *why = "the irqfd's process is not the one whose guest RAM is mapped";
    } else if ((fd = (int)syscall(SYS_pidfd_getfd, pidfd, w->fd, 0)) < 0) {
        fd = -errno;
        *why = "cannot take the irqfd from the VMM's process";
    } else {
        char own[64];
        snprintf(own, sizeof own, "/proc/self/fd/%d", fd);
        if (!device_guest_links_to(own, "anon_inode:[eventfd]")) {
            close(fd);
            fd = -EBADF;
            *why = "what the VMM's process has there is no eventfd";
        } else {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    close(pidfd);
    return fd;
}

/* The slot of (address, data)'s irqfd: found, or asked for and taken;
 * -ENOTSUP where it goes by message. */
static int s_irqfd(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                   const char *partition, uint64_t address, uint32_t data)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->slot[i].address == address && f->slot[i].data == data)
            return (int)i;
    if (f->n == DEVICE_MAX_IRQFDS)
        return -ENOTSUP; /* this one by message; the others keep theirs */
    Vmm__Devices__GetMsiIrqfd op = VMM__DEVICES__GET_MSI_IRQFD__INIT;
    op.address = address;
    op.data = data;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_GET_MSI_IRQFD;
    req.get_msi_irqfd = &op;
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = &req;
    s_where_t w;
    int rc = rt_call_with(self, partition, &env, S_CALL_TIMEOUT_MS, s_on_reply, &w);
    if (rc)
        return s_off(f, self, "the partition gives no irqfd", -rc);
    const char *why = "the recorded run could not take it";
    /* A replay has no descriptor: -1 stands for the one the run took. */
    int fd = rt_actor_replaying(self) ? -1 : s_take(g, &w, &why);
    int taken = fd >= 0;
    if (rt_actor_input(self, DEVICE_INPUT_IRQFD_TAKEN, address, &taken, sizeof taken))
        taken = 0;
    if (!taken) {
        if (fd >= 0)
            close(fd);
        return s_off(f, self, why, fd < -1 ? -fd : 0);
    }
    f->slot[f->n].address = address;
    f->slot[f->n].data = data;
    f->slot[f->n].fd = fd;
    f->n++;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "MSI 0x%llx/0x%x by irqfd",
           (unsigned long long)address, data);
    return (int)f->n - 1;
}

/* Whether irqfds apply: guest RAM mapped from another process (not
 * another host, not the VMM's own process). Decided once. */
static bool s_apply(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                    const char *partition)
{
    if (f->decided)
        return !f->off;
    f->decided = true;
    int apply = !device_guest_prepare(g, self, partition) && g->mapped && g->pid &&
                g->pid != getpid();
    if (rt_actor_input(self, DEVICE_INPUT_IRQFDS_APPLY, 0, &apply, sizeof apply))
        apply = 0;
    f->off = !apply;
    if (!apply)
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
               "MSIs by message: guest RAM is %s", !g->mapped ? "not mapped here (another host)"
               : g->pid == getpid() ? "this process's own" : "not known");
    return apply;
}

int device_irqfd_raise(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                       const char *partition, uint64_t address, uint32_t data)
{
    if (!partition || !s_apply(f, g, self, partition))
        return -ENOTSUP;
    int i = s_irqfd(f, g, self, partition, address, data);
    if (i < 0)
        return -ENOTSUP;
    uint64_t one = 1;
    if (f->slot[i].fd >= 0 && write(f->slot[i].fd, &one, sizeof one) != sizeof one)
        return s_off(f, self, "writing the irqfd", errno);
    f->raised++;
    return 0;
}

void device_irqfds_inspect(const device_irqfds_t *f, Vmm__Rt__InspectNode *node)
{
    if (!f->enabled)
        return;
    if (f->off)
        rt_inspect_add(node, "msi_irqfds", "off");
    else
        rt_inspect_add(node, "msi_irqfds", "%zu", f->n);
    rt_inspect_add(node, "msis_by_irqfd", "%llu", (unsigned long long)f->raised);
}

void device_irqfds_fini(device_irqfds_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->slot[i].fd >= 0)
            close(f->slot[i].fd);
    f->n = 0;
}
