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

/* Turns one kind off (*flag), saying why once. Returns -ENOTSUP. */
static int s_off(bool *flag, rt_actor_t *self, const char *what, const char *why, int err)
{
    *flag = true;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%s by message: %s%s%s", what, why,
           err ? ": " : "", err ? strerror(err) : "");
    return -ENOTSUP;
}

typedef struct {
    int pid, fd, ram_fd, resample_fd;
} s_where_t;

static int s_on_reply(void *arg, const Vmm__Envelope *reply)
{
    s_where_t *w = arg;
    if (reply->body_case == VMM__ENVELOPE__BODY_ERROR)
        return rt_errno_of(reply->error->code);
    if (reply->body_case != VMM__ENVELOPE__BODY_DEVICE_REPLY)
        return -EPROTO;
    const Vmm__Devices__Reply *r = reply->device_reply;
    if (r->result_case == VMM__DEVICES__REPLY__RESULT_MSI_IRQFD)
        *w = (s_where_t){r->msi_irqfd->pid, r->msi_irqfd->fd, r->msi_irqfd->ram_fd, -1};
    else if (r->result_case == VMM__DEVICES__REPLY__RESULT_HOST_FDS)
        *w = (s_where_t){r->host_fds->pid, r->host_fds->fd, r->host_fds->ram_fd,
                         r->host_fds->resample_fd};
    else
        return -EPROTO;
    return 0;
}

/* Asks the partition where the descriptors of req are. */
static int s_ask(rt_actor_t *self, const char *partition, Vmm__Devices__Request *req,
                 s_where_t *w)
{
    Vmm__Envelope env = VMM__ENVELOPE__INIT;
    env.body_case = VMM__ENVELOPE__BODY_DEVICE_REQUEST;
    env.device_request = req;
    return rt_call_with(self, partition, &env, S_CALL_TIMEOUT_MS, s_on_reply, w);
}

/* Takes descriptor `fd` of the VMM's process w->pid, which must still be
 * the one whose memory file g mapped: its pidfd, then the memory file's
 * link through it, then the descriptor. Returns it, or a negative errno
 * with the reason in *why. */
static int s_take(const device_guest_t *g, const s_where_t *w, int want, const char **why)
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
    } else if ((fd = (int)syscall(SYS_pidfd_getfd, pidfd, want, 0)) < 0) {
        fd = -errno;
        *why = "cannot take the descriptor from the VMM's process";
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

/* What stands for a descriptor a replay does not have, and for none. */
#define S_REPLAYED (-1)
#define S_NOT_TAKEN (-2)

/* Descriptor `want` of w's process taken, or S_REPLAYED under a replay
 * (the run took it), or S_NOT_TAKEN with why said; whether it was is an
 * input of `kind` at `at`. */
static int s_taken(const device_guest_t *g, rt_actor_t *self, const s_where_t *w, int want,
                   uint32_t kind, uint64_t at, const char **why)
{
    *why = "the recorded run could not take it";
    int fd = rt_actor_replaying(self) ? S_REPLAYED : s_take(g, w, want, why);
    int taken = fd >= 0 || fd == S_REPLAYED;
    if (rt_actor_input(self, kind, at, &taken, sizeof taken))
        taken = 0;
    if (taken)
        return fd;
    if (fd >= 0)
        close(fd);
    return S_NOT_TAKEN;
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
    s_where_t w;
    int rc = s_ask(self, partition, &req, &w);
    if (rc)
        return s_off(&f->off, self, "MSIs", "the partition gives no irqfd", -rc);
    const char *why = "";
    int fd = s_taken(g, self, &w, w.fd, DEVICE_INPUT_IRQFD_TAKEN, address, &why);
    if (fd == S_NOT_TAKEN)
        return s_off(&f->off, self, "MSIs", why, 0);
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
        return f->applies;
    f->decided = true;
    int apply = !device_guest_prepare(g, self, partition) && g->mapped && g->pid &&
                g->pid != getpid();
    if (rt_actor_input(self, DEVICE_INPUT_IRQFDS_APPLY, 0, &apply, sizeof apply))
        apply = 0;
    f->applies = apply;
    if (!apply)
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
               "MSIs, lines and doorbells by message: guest RAM is %s",
               !g->mapped ? "not mapped here (another host)"
               : g->pid == getpid() ? "this process's own" : "not known");
    return apply;
}

int device_irqfd_raise(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                       const char *partition, uint64_t address, uint32_t data)
{
    if (!partition || !s_apply(f, g, self, partition) || f->off)
        return -ENOTSUP;
    int i = s_irqfd(f, g, self, partition, address, data);
    if (i < 0)
        return -ENOTSUP;
    uint64_t one = 1;
    if (f->slot[i].fd >= 0 && write(f->slot[i].fd, &one, sizeof one) != sizeof one)
        return s_off(&f->off, self, "MSIs", "writing the irqfd", errno);
    f->raised++;
    return 0;
}

/* ---- Lines ------------------------------------------------------------------------- */

/* The slot of line's irqfd: found, or asked for and taken; -ENOTSUP where
 * lines go by message. */
static int s_line(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                  const char *partition, uint32_t line)
{
    for (size_t i = 0; i < f->n_lines; i++)
        if (f->lines[i].line == line)
            return (int)i;
    if (f->lines_off || f->n_lines == DEVICE_MAX_IRQS)
        return -ENOTSUP;
    Vmm__Devices__GetLineIrqfd op = VMM__DEVICES__GET_LINE_IRQFD__INIT;
    op.line = line;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_GET_LINE_IRQFD;
    req.get_line_irqfd = &op;
    s_where_t w;
    int rc = s_ask(self, partition, &req, &w);
    if (rc)
        return s_off(&f->lines_off, self, "lines", "the partition gives no irqfd", -rc);
    const char *why = "";
    int fd = s_taken(g, self, &w, w.fd, DEVICE_INPUT_LINE_IRQFD_TAKEN, line, &why);
    if (fd == S_NOT_TAKEN)
        return s_off(&f->lines_off, self, "lines", why, 0);
    int resample = fd == S_REPLAYED ? S_REPLAYED : s_take(g, &w, w.resample_fd, &why);
    if (resample == S_REPLAYED || (resample >= 0 && !rt_actor_watch_fd(self, resample,
                                                                      f->on_resample))) {
        f->lines[f->n_lines++] = (typeof(f->lines[0])){.line = line, .fd = fd,
                                                       .resample_fd = resample};
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "line %u by irqfd", line);
        return (int)f->n_lines - 1;
    }
    /* The run took the irqfd but not its resampler: a replay cannot tell,
     * and the run cannot keep a level without it. */
    if (resample >= 0)
        close(resample);
    close(fd);
    return s_off(&f->lines_off, self, "lines", "the resample eventfd could not be taken", 0);
}

int device_irqfd_line(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                      const char *partition, uint32_t line, bool high)
{
    if (!partition || !s_apply(f, g, self, partition))
        return -ENOTSUP;
    int i = s_line(f, g, self, partition, line);
    if (i < 0)
        return -ENOTSUP;
    f->lines[i].high = high;
    uint64_t one = 1;
    /* Lowered by KVM at the guest's EOI: nothing to do when it falls. */
    if (high && f->lines[i].fd >= 0 && write(f->lines[i].fd, &one, sizeof one) != sizeof one)
        rt_log(rt_actor_rt(self), self, RT_LOG_WARN, "line %u: writing its irqfd: %s", line,
               strerror(errno));
    f->lines_raised += high;
    return 0;
}

void device_irqfd_resampled(device_irqfds_t *f, int fd)
{
    uint64_t count, one = 1;
    if (read(fd, &count, sizeof count) != sizeof count)
        return;
    for (size_t i = 0; i < f->n_lines; i++)
        if (f->lines[i].resample_fd == fd) {
            f->resampled++;
            if (f->lines[i].high && write(f->lines[i].fd, &one, sizeof one) == sizeof one)
                f->lines_raised++;
            return;
        }
}

/* ---- Doorbells --------------------------------------------------------------------- */

static void s_drop_bells(device_irqfds_t *f, rt_actor_t *self)
{
    for (size_t i = 0; i < f->n_bells; i++)
        if (f->bells[i].fd >= 0) {
            rt_actor_unwatch_fd(self, f->bells[i].fd);
            close(f->bells[i].fd);
        }
    f->n_bells = 0;
}

/* The eventfd of doorbell `handle` taken, or S_REPLAYED, or S_NOT_TAKEN
 * with why said: from the VMM's process, or (own) this process's own,
 * duplicated. */
static int s_take_bell(device_guest_t *g, rt_actor_t *self, const char *partition,
                       uint64_t handle, bool own, const char **why)
{
    Vmm__Devices__GetDoorbellFd op = VMM__DEVICES__GET_DOORBELL_FD__INIT;
    op.handle = handle;
    Vmm__Devices__Request req = VMM__DEVICES__REQUEST__INIT;
    req.op_case = VMM__DEVICES__REQUEST__OP_GET_DOORBELL_FD;
    req.get_doorbell_fd = &op;
    s_where_t w;
    *why = "the partition does not hand it over";
    if (s_ask(self, partition, &req, &w))
        return S_NOT_TAKEN;
    if (!own)
        return s_taken(g, self, &w, w.fd, DEVICE_INPUT_DOORBELL_FD_TAKEN, handle, why);
    int fd = rt_actor_replaying(self) ? S_REPLAYED
             : w.pid == getpid()       ? fcntl(w.fd, F_DUPFD_CLOEXEC, 0)
                                       : S_NOT_TAKEN;
    int taken = fd >= 0 || fd == S_REPLAYED;
    if (rt_actor_input(self, DEVICE_INPUT_DOORBELL_FD_TAKEN, handle, &taken, sizeof taken))
        taken = 0;
    if (taken)
        return fd;
    if (fd >= 0)
        close(fd);
    *why = "it is not this process's";
    return S_NOT_TAKEN;
}

void device_irqfd_doorbells(device_irqfds_t *f, device_guest_t *g, rt_actor_t *self,
                            const char *partition, const uint64_t *handles, size_t n)
{
    s_drop_bells(f, self);
    if (!partition || !n || (!f->own_doorbells && !s_apply(f, g, self, partition)))
        return;
    for (size_t i = 0; i < n && i < DEVICE_MAX_DOORBELLS; i++) {
        const char *why = "";
        int fd = s_take_bell(g, self, partition, handles[i], f->own_doorbells, &why);
        if (fd >= 0 && rt_actor_watch_fd(self, fd, f->on_doorbell)) {
            close(fd);
            fd = S_NOT_TAKEN;
            why = "it cannot be watched";
        }
        if (fd == S_NOT_TAKEN) {
            rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "doorbell %llu by message: %s",
                   (unsigned long long)handles[i], why);
            continue;
        }
        f->bells[f->n_bells++] = (typeof(f->bells[0])){.handle = handles[i], .fd = fd};
    }
    if (f->n_bells)
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO, "%zu doorbells waited on here",
               f->n_bells);
}

uint64_t device_irqfd_rung(device_irqfds_t *f, int fd)
{
    uint64_t count;
    for (size_t i = 0; i < f->n_bells; i++)
        if (f->bells[i].fd == fd) {
            if (read(fd, &count, sizeof count) != sizeof count)
                return 0;
            f->rung++;
            return f->bells[i].handle;
        }
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
    if (f->lines_off)
        rt_inspect_add(node, "line_irqfds", "off");
    else
        rt_inspect_add(node, "line_irqfds", "%zu", f->n_lines);
    rt_inspect_add(node, "line_raises_by_irqfd", "%llu", (unsigned long long)f->lines_raised);
    rt_inspect_add(node, "line_resamples", "%llu", (unsigned long long)f->resampled);
    rt_inspect_add(node, "doorbell_fds", "%zu", f->n_bells);
    rt_inspect_add(node, "doorbells_by_fd", "%llu", (unsigned long long)f->rung);
}

void device_irqfds_fini(device_irqfds_t *f, rt_actor_t *self)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->slot[i].fd >= 0)
            close(f->slot[i].fd);
    f->n = 0;
    for (size_t i = 0; i < f->n_lines; i++) {
        if (f->lines[i].resample_fd >= 0) {
            rt_actor_unwatch_fd(self, f->lines[i].resample_fd);
            close(f->lines[i].resample_fd);
        }
        if (f->lines[i].fd >= 0)
            close(f->lines[i].fd);
    }
    f->n_lines = 0;
    s_drop_bells(f, self);
}
