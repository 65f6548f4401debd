/*
 * Whole files and folders, as `vmm run` and snapshots handle them: a file
 * read into memory with its size bounded, a folder of files removed.
 */
#ifndef VMM_FILES_H
#define VMM_FILES_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the whole regular file path, of 1 byte to max bytes, into a buffer
 * of the caller's (free()); its length in *len. NULL with errno set and a
 * one-line reason naming path in err: open's errno, EINVAL for what is not
 * a regular file of that size, ENOMEM, or EIO when it shrank.
 */
uint8_t *files_read(const char *path, uint64_t max, size_t *len, char *err, size_t errlen);

/* Removes dir and the files in it (not folders below it). */
void files_remove_dir(const char *dir);

#endif
