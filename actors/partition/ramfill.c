/*
 * Guest RAM restored on demand (LoadMemory without `copy`), as Firecracker
 * restores with a userfaultfd: the memory file is emptied, the partition's
 * mappings of it (those KVM reads guest RAM through) are registered with a
 * userfaultfd, and a thread of the partition's own fills them from the
 * snapshot's RAM file. It serves first any page a VP or the partition
 * touches (the toucher waits for that page alone), and copies the rest in
 * file order meanwhile, so that the guest runs at once, however large its
 * RAM. Once every page the file holds is in, it unregisters: a page still
 * missing is one of the file's holes, and zeroes are what it holds.
 *
 * Another mapping of the memory file (a device's, the synic's, the memory
 * mapper's) would see a page not yet filled as zeroes, and reading the file
 * itself (SaveMemory) too: the partition finishes the fill
 * (partition_fill_finish()) before it allows any of them.
 */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE, fallocate */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "actors/partition/partition_internal.h"

#define S_PAGE 4096u
/* What one copy in file order moves; what one fault brings in around the
 * page touched (neighbours are likely next). */
#define S_CHUNK (2u << 20)
#define S_AROUND (64u << 10)

struct partition_fill {
    int uffd, file_fd;
    const uint8_t *src; /* the RAM file, mapped read-only */
    uint64_t total;
    partition_ram_t ram[PARTITION_MAX_RAM_RANGES];
    size_t n_ram;
    pthread_t thread;
    rt_t *rt;
    rt_actor_t *self; /* for log lines only */
    atomic_bool stop; /* the VM is going: leave the rest */
    /* Written by the thread; read by Inspect while it runs. */
    atomic_uint_fast64_t faults, copied;
    atomic_bool ended;
    bool whole; /* it filled all the file holds (else it stopped or failed) */
    uint64_t started_ns, ended_ns; /* read once it has ended */
    int rc;
};

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The range holding memory-file offset off, or NULL. */
static const partition_ram_t *s_range_at(const partition_fill_t *f, uint64_t off)
{
    for (size_t i = 0; i < f->n_ram; i++)
        if (off >= f->ram[i].offset && off - f->ram[i].offset < f->ram[i].size)
            return &f->ram[i];
    return NULL;
}

/* Copies [off, off + len) of the file into guest RAM, within one range,
 * skipping pages already there. 0, or a negative errno. */
static int s_copy(partition_fill_t *f, uint64_t off, uint64_t len)
{
    const partition_ram_t *r = s_range_at(f, off);
    if (!r)
        return 0; /* a gap between ranges in the memory file */
    uint64_t end = off + len, range_end = r->offset + r->size;
    if (end > range_end)
        end = range_end;
    while (off < end) {
        struct uffdio_copy c = {
            .dst = (uint64_t)(uintptr_t)r->host + (off - r->offset),
            .src = (uint64_t)(uintptr_t)(f->src + off),
            .len = end - off,
        };
        int failed = ioctl(f->uffd, UFFDIO_COPY, &c) < 0 ? errno : 0;
        uint64_t done = c.copy > 0 ? (uint64_t)c.copy : 0;
        f->copied += done;
        off += done;
        if (!failed)
            continue;
        if (failed == EEXIST) {
            off += S_PAGE; /* there already: touched and filled, or copied */
        } else if (failed != EAGAIN && failed != EINTR) {
            return -failed;
        }
    }
    return 0;
}

/* Serves the faults waiting: each page touched, with its neighbours. */
static int s_serve(partition_fill_t *f)
{
    struct uffd_msg msgs[16];
    for (;;) {
        ssize_t n = read(f->uffd, msgs, sizeof msgs);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        for (size_t i = 0; i < (size_t)n / sizeof *msgs; i++) {
            if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
                continue;
            uint64_t at = msgs[i].arg.pagefault.address & ~(uint64_t)(S_PAGE - 1);
            for (size_t k = 0; k < f->n_ram; k++) {
                uint64_t host = (uint64_t)(uintptr_t)f->ram[k].host;
                if (at < host || at - host >= f->ram[k].size)
                    continue;
                uint64_t off = f->ram[k].offset + (at - host);
                uint64_t from = off & ~(uint64_t)(S_AROUND - 1);
                if (from < f->ram[k].offset)
                    from = f->ram[k].offset;
                f->faults++;
                int rc = s_copy(f, from, S_AROUND);
                /* Whoever filled it, its toucher goes on. */
                struct uffdio_range page = {.start = at, .len = S_PAGE};
                ioctl(f->uffd, UFFDIO_WAKE, &page);
                if (rc)
                    return rc;
            }
        }
    }
}

static void *s_fill_main(void *arg)
{
    partition_fill_t *f = arg;
    int rc = 0;
    for (uint64_t at = 0; !rc && !atomic_load(&f->stop) && at < f->total;) {
        off_t data = lseek(f->file_fd, (off_t)at, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no data after at */
        off_t hole = lseek(f->file_fd, data, SEEK_HOLE);
        uint64_t end = hole < 0 || (uint64_t)hole > f->total ? f->total : (uint64_t)hole;
        for (uint64_t off = (uint64_t)data & ~(uint64_t)(S_PAGE - 1);
             !rc && !atomic_load(&f->stop) && off < end;) {
            rc = s_serve(f);
            uint64_t len = end - off < S_CHUNK ? end - off : S_CHUNK;
            if (!rc)
                rc = s_copy(f, off, len);
            off += len;
        }
        at = end;
    }
    if (!rc)
        rc = s_serve(f);
    f->whole = !rc && !atomic_load(&f->stop);
    /* Every page the file holds is in (or the rest is left): what is
     * missing reads as zeroes. */
    for (size_t i = 0; i < f->n_ram; i++) {
        struct uffdio_range r = {.start = (uint64_t)(uintptr_t)f->ram[i].host,
                                 .len = f->ram[i].size};
        ioctl(f->uffd, UFFDIO_UNREGISTER, &r);
    }
    f->rc = rc;
    f->ended_ns = s_now_ns();
    atomic_store(&f->ended, true);
    if (rc)
        rt_log(f->rt, f->self, RT_LOG_ERROR,
               "filling guest RAM from its snapshot failed (%s): the pages not filled read as "
               "zeroes",
               strerror(-rc));
    return NULL;
}

/* A userfaultfd for faults of the kernel's too (KVM reading guest RAM):
 * the system call, else /dev/userfaultfd. */
static int s_userfaultfd(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0 || errno != EPERM)
        return fd >= 0 ? fd : -errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -EPERM;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    int rc = fd >= 0 ? fd : -errno;
    close(dev);
    return rc;
}

static void s_free(partition_fill_t *f)
{
    if (f->src && f->src != MAP_FAILED)
        munmap((void *)f->src, f->total);
    if (f->file_fd >= 0)
        close(f->file_fd);
    if (f->uffd >= 0)
        close(f->uffd);
    free(f);
}

int partition_fill_start(partition_t *p, rt_actor_t *self, int fd, uint64_t total, char *why,
                         size_t n)
{
    partition_fill_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(why, n, "out of memory");
        return -ENOMEM;
    }
    f->file_fd = fd;
    f->total = total;
    f->n_ram = p->n_ram;
    memcpy(f->ram, p->ram, p->n_ram * sizeof *p->ram);
    f->rt = rt_actor_rt(self);
    f->self = self;
    const char *step = "userfaultfd";
    int rc = f->uffd = s_userfaultfd();
    struct uffdio_api api = {.api = UFFD_API};
    if (rc >= 0) {
        step = "UFFDIO_API";
        rc = ioctl(f->uffd, UFFDIO_API, &api) < 0 ? -errno : 0;
    }
    if (!rc && !(api.features & UFFD_FEATURE_MISSING_SHMEM))
        rc = -ENOTSUP;
    if (!rc) {
        step = "mapping the file";
        f->src = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
        rc = f->src == MAP_FAILED ? -errno : 0;
    }
    /* What the memory file holds goes: every page is the file's. */
    if (!rc) {
        step = "emptying guest RAM";
        rc = fallocate(p->ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                       (off_t)partition_ram_bytes(p)) < 0
                 ? -errno
                 : 0;
    }
    size_t registered = 0;
    for (; !rc && registered < p->n_ram; registered++) {
        step = "UFFDIO_REGISTER";
        struct uffdio_register reg = {
            .range = {.start = (uint64_t)(uintptr_t)p->ram[registered].host,
                      .len = p->ram[registered].size},
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        rc = ioctl(f->uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
    }
    if (!rc) {
        f->started_ns = s_now_ns();
        step = "starting its thread";
        rc = -pthread_create(&f->thread, NULL, s_fill_main, f);
    }
    if (rc) {
        for (size_t i = 0; i < registered; i++) {
            struct uffdio_range r = {.start = (uint64_t)(uintptr_t)p->ram[i].host,
                                     .len = p->ram[i].size};
            ioctl(f->uffd, UFFDIO_UNREGISTER, &r);
        }
        f->file_fd = -1; /* the caller's again */
        snprintf(why, n, "%s: %s", step, strerror(-rc));
        s_free(f);
        return rc;
    }
    p->fill = f;
    return 0;
}

void partition_fill_finish(partition_t *p, rt_actor_t *self, bool stop)
{
    partition_fill_t *f = p->fill;
    if (!f)
        return;
    if (stop)
        atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    p->fill = NULL;
    p->fill_faults += atomic_load(&f->faults);
    p->fill_bytes += atomic_load(&f->copied);
    p->fills++;
    p->fill_ms = (f->ended_ns - f->started_ns) / 1000000u;
    rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
           "guest RAM %s from its snapshot: %llu KiB in %llu ms, %llu faults served first",
           f->whole ? "filled" : "left part filled", (unsigned long long)(atomic_load(&f->copied) >> 10),
           (unsigned long long)p->fill_ms, (unsigned long long)atomic_load(&f->faults));
    s_free(f);
}

void partition_fill_inspect(partition_t *p, rt_actor_t *self, Vmm__Rt__InspectNode *node)
{
    if (p->fill && atomic_load(&p->fill->ended))
        partition_fill_finish(p, self, false);
    const partition_fill_t *f = p->fill;
    Vmm__Rt__InspectNode *n =
        rt_inspect_add(node, "ram_fill", "%s", f ? "filling" : p->fills ? "done" : "none");
    if (!n)
        return;
    rt_inspect_add(n, "faults", "%llu",
                   (unsigned long long)(f ? atomic_load(&f->faults) : p->fill_faults));
    rt_inspect_add(n, "bytes", "%llu",
                   (unsigned long long)(f ? atomic_load(&f->copied) : p->fill_bytes));
    if (!f && p->fills)
        rt_inspect_add(n, "last_ms", "%llu", (unsigned long long)p->fill_ms);
}
