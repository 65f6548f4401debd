/*
 * Guest RAM to and from a file, for snapshots (SaveMemory, LoadMemory):
 * the memory file's layout (each RAM range at its offset), sparse. Only
 * the pages the memory file holds are copied (SEEK_DATA and SEEK_HOLE on
 * it), and of those, pages of zeroes stay holes.
 */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/partition/partition_internal.h"

#define S_PAGE 4096u

uint64_t partition_ram_bytes(const partition_t *p)
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->n_ram; i++)
        total = p->ram[i].offset + p->ram[i].size > total ? p->ram[i].offset + p->ram[i].size
                                                          : total;
    return total;
}

/* The host address of memory-file offset `off`, which lies in RAM range *i. */
static uint8_t *s_host_at(const partition_t *p, uint64_t off, size_t *i)
{
    for (*i = 0; *i < p->n_ram; (*i)++)
        if (off >= p->ram[*i].offset && off - p->ram[*i].offset < p->ram[*i].size)
            return (uint8_t *)p->ram[*i].host + (off - p->ram[*i].offset);
    return NULL;
}

static bool s_zero(const uint8_t *page)
{
    static const uint8_t zeros[S_PAGE];
    return !memcmp(page, zeros, S_PAGE);
}

static int s_pwrite_all(int fd, const uint8_t *buf, size_t len, off_t at)
{
    while (len) {
        ssize_t n = pwrite(fd, buf, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

static int s_save(partition_t *p, const char *path, char *why, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(why, n, "%s: %s", path, strerror(-rc));
        return rc;
    }
    uint64_t total = partition_ram_bytes(p);
    int rc = ftruncate(fd, (off_t)total) < 0 ? -errno : 0;
    /* The pages the memory file holds, each written unless all zeroes. */
    for (off_t at = 0; !rc && (uint64_t)at < total;) {
        off_t data = lseek(p->ram_fd, at, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no data after at */
        off_t hole = lseek(p->ram_fd, data, SEEK_HOLE);
        if (hole < 0 || (uint64_t)hole > total)
            hole = (off_t)total;
        for (off_t page = data & ~(off_t)(S_PAGE - 1); !rc && page < hole; page += S_PAGE) {
            size_t range;
            const uint8_t *host = s_host_at(p, (uint64_t)page, &range);
            if (host && !s_zero(host))
                rc = s_pwrite_all(fd, host, S_PAGE, page);
        }
        at = hole;
    }
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc) {
        snprintf(why, n, "writing guest RAM to %s: %s", path, strerror(-rc));
        unlink(path);
    }
    return rc;
}

/* Copies the RAM file fd holds into guest RAM, skipping its holes. */
static int s_copy_in(partition_t *p, int fd, uint64_t total)
{
    int rc = 0;
    for (off_t at = 0; !rc && (uint64_t)at < total;) {
        off_t data = lseek(fd, at, SEEK_DATA);
        if (data < 0)
            break;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0 || (uint64_t)hole > total)
            hole = (off_t)total;
        for (off_t off = data; !rc && off < hole;) {
            size_t range;
            uint8_t *host = s_host_at(p, (uint64_t)off, &range);
            if (!host) { /* a gap between ranges in the memory file */
                off += S_PAGE;
                continue;
            }
            size_t left = (size_t)(p->ram[range].offset + p->ram[range].size - (uint64_t)off);
            size_t want = (size_t)(hole - off) < left ? (size_t)(hole - off) : left;
            ssize_t got = pread(fd, host, want, off);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                rc = got < 0 ? -errno : -EIO;
            else
                off += got;
        }
        at = hole;
    }
    return rc;
}

static int s_load(partition_t *p, rt_actor_t *self, const char *path, bool copy, char *why,
                  size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(why, n, "%s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    uint64_t total = partition_ram_bytes(p);
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (!rc && (uint64_t)st.st_size != total) {
        snprintf(why, n, "%s holds %lld bytes of RAM, the VM has %llu", path,
                 (long long)st.st_size, (unsigned long long)total);
        close(fd);
        return -EINVAL;
    }
    if (!rc && !copy) {
        char fill_why[256];
        if (!partition_fill_start(p, self, fd, total, fill_why, sizeof fill_why))
            return 0; /* the fill has fd */
        rt_log(rt_actor_rt(self), self, RT_LOG_INFO,
               "guest RAM is read back from %s, not filled on demand: %s", path, fill_why);
    }
    if (!rc)
        rc = s_copy_in(p, fd, total);
    close(fd);
    if (rc)
        snprintf(why, n, "reading guest RAM from %s: %s", path, strerror(-rc));
    return rc;
}

int partition_on_ram_file(rt_actor_t *self, const Vmm__Envelope *msg, const char *path, bool save,
                          bool copy)
{
    partition_t *p = rt_actor_state(self);
    if (p->stage != PARTITION_BUILT)
        return partition_stage_error(self, msg, PARTITION_BUILT);
    if (!path || !*path)
        return partition_refuse(self, msg, VMM__ERROR_CODE__INVALID_ARGUMENT, "no path given");
    partition_fill_finish(p, self, false); /* the memory file is read or written whole */
    char why[4400];
    int rc = save ? s_save(p, path, why, sizeof why) : s_load(p, self, path, copy, why, sizeof why);
    if (rc)
        return partition_refuse(self, msg, rt_error_code(rc), why);
    return msg->request_id ? rt_reply_ack(self, msg) : 0;
}
