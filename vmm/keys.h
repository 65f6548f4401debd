/*
 * CURVE key files, for the tcp:// links between a VM and its device hosts
 * (ZeroMQ CURVE): `vmm keygen` writes a pair, and the VM and device hosts
 * read them. A key file holds one Z85 key (40 characters) and a newline;
 * a secret key file must be readable by its owner only, as ssh insists.
 */
#ifndef VMM_KEYS_H
#define VMM_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEYS_Z85_LEN 40

/* Generates a key pair into PREFIX.pub (mode 0644) and PREFIX.key (mode
 * 0600), refusing to replace existing files unless force. The public key
 * goes to public_key (41 bytes). Returns 0, or a negative errno with a
 * one-line reason in err. */
int keys_generate(const char *prefix, bool force, char public_key[KEYS_Z85_LEN + 1], char *err,
                  size_t errlen);

/* Reads the key in path into key (41 bytes, NUL-terminated). A secret key
 * file open to its group or others is refused (-EPERM). Returns 0, or a
 * negative errno with a one-line reason in err. */
int keys_read(const char *path, bool secret, char key[KEYS_Z85_LEN + 1], char *err,
              size_t errlen);

/* Reads the secret key in path (as keys_read() does) and derives its
 * public key, so that a process needs its .key file only. Returns 0, or a
 * negative errno with a one-line reason in err. */
int keys_read_pair(const char *path, char public_key[KEYS_Z85_LEN + 1],
                   char secret_key[KEYS_Z85_LEN + 1], char *err, size_t errlen);

#endif
