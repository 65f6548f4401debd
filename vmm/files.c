/* Whole files and folders (files.h). */
#include "vmm/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *files_read(const char *path, uint64_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    int e = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > max) {
        e = EINVAL;
        snprintf(err, errlen, "%s: not a regular file of 1 byte to %llu MiB", path,
                 (unsigned long long)(max >> 20));
    } else if (!(buf = malloc((size_t)st.st_size))) {
        e = ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
    }
    for (size_t got = 0; buf && got < (size_t)st.st_size;) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(e) : "file shrank");
            free(buf);
            buf = NULL;
        } else {
            got += (size_t)n;
        }
    }
    close(fd);
    if (buf)
        *len = (size_t)st.st_size;
    errno = e;
    return buf;
}

void files_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(dir);
}
