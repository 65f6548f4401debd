#include "vmm/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static int s_write_key(const char *path, const char *key, mode_t mode, bool force, char *err,
                       size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s%s", path, strerror(-rc),
                 rc == -EEXIST ? " (--force replaces it)" : "");
        return rc;
    }
    /* An existing file keeps its mode under O_TRUNC: set it. */
    int rc = fchmod(fd, mode) < 0 ? -errno : 0;
    char line[KEYS_Z85_LEN + 2];
    int n = snprintf(line, sizeof line, "%s\n", key);
    if (!rc && write(fd, line, (size_t)n) != n)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (rc)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}

int keys_generate(const char *prefix, bool force, char public_key[KEYS_Z85_LEN + 1], char *err,
                  size_t errlen)
{
    char secret[KEYS_Z85_LEN + 1];
    if (zmq_curve_keypair(public_key, secret) < 0) {
        snprintf(err, errlen, "cannot make a CURVE key pair: %s", zmq_strerror(errno));
        return -ENOTSUP;
    }
    char pub_path[4096], key_path[4096];
    if ((size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >= sizeof pub_path ||
        (size_t)snprintf(key_path, sizeof key_path, "%s.key", prefix) >= sizeof key_path) {
        snprintf(err, errlen, "%s: the name is too long", prefix);
        return -ENAMETOOLONG;
    }
    /* The secret first: a pair is only ever half written on the public side. */
    int rc = s_write_key(key_path, secret, 0600, force, err, errlen);
    if (!rc && (rc = s_write_key(pub_path, public_key, 0644, force, err, errlen)))
        unlink(key_path);
    memset(secret, 0, sizeof secret);
    return rc;
}

int keys_read(const char *path, bool secret, char key[KEYS_Z85_LEN + 1], char *err,
              size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (!rc && secret && (st.st_mode & 077)) {
        snprintf(err, errlen, "%s: a secret key open to others (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        rc = -EPERM;
        goto out;
    }
    char buf[KEYS_Z85_LEN + 3];
    ssize_t n = rc ? -1 : read(fd, buf, sizeof buf);
    if (n < 0) {
        rc = rc ? rc : -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        goto out;
    }
    /* 40 Z85 characters, then at most a newline. */
    size_t len = (size_t)n;
    if (len && buf[len - 1] == '\n')
        len--;
    uint8_t raw[32];
    buf[len < sizeof buf ? len : sizeof buf - 1] = 0;
    if (len != KEYS_Z85_LEN || !zmq_z85_decode(raw, buf)) {
        snprintf(err, errlen, "%s: not a CURVE key (40 Z85 characters, as vmm keygen writes)",
                 path);
        rc = -EINVAL;
        goto out;
    }
    memcpy(key, buf, KEYS_Z85_LEN + 1);
out:
    close(fd);
    return rc;
}

int keys_read_pair(const char *path, char public_key[KEYS_Z85_LEN + 1],
                   char secret_key[KEYS_Z85_LEN + 1], char *err, size_t errlen)
{
    int rc = keys_read(path, true, secret_key, err, errlen);
    if (rc)
        return rc;
    if (zmq_curve_public(public_key, secret_key) < 0) {
        snprintf(err, errlen, "%s: not a CURVE secret key: %s", path, zmq_strerror(errno));
        return -EINVAL;
    }
    return 0;
}
