/* CURVE key files: a generated pair reads back, secret keys must be
 * private, and anything that is not a key is refused with its reason. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/keys.h"

static char s_dir[64];

static void s_mkdir(void)
{
    strcpy(s_dir, "/tmp/vmm-keys-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void s_rmdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}

static void s_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", s_dir, name);
}

static void s_write(const char *name, const char *text, mode_t mode)
{
    char path[128];
    s_path(path, sizeof path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

Test(keys, a_generated_pair_reads_back, .init = s_mkdir, .fini = s_rmdir)
{
    char prefix[128], path[128], err[256] = "", pub[KEYS_Z85_LEN + 1], back[KEYS_Z85_LEN + 1];
    s_path(prefix, sizeof prefix, "vm");
    cr_assert_eq(keys_generate(prefix, false, pub, err, sizeof err), 0, "%s", err);
    cr_expect_eq(strlen(pub), KEYS_Z85_LEN);
    s_path(path, sizeof path, "vm.pub");
    cr_assert_eq(keys_read(path, false, back, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(back, pub);
    s_path(path, sizeof path, "vm.key");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "the secret key is the owner's only");
    cr_assert_eq(keys_read(path, true, back, err, sizeof err), 0, "%s", err);
    cr_expect_str_neq(back, pub);
    char derived[KEYS_Z85_LEN + 1], secret[KEYS_Z85_LEN + 1];
    cr_assert_eq(keys_read_pair(path, derived, secret, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(derived, pub, "the public key follows from the secret one");
    cr_expect_str_eq(secret, back);
}

Test(keys, existing_files_are_kept_unless_forced, .init = s_mkdir, .fini = s_rmdir)
{
    char prefix[128], path[128], err[256] = "", first[KEYS_Z85_LEN + 1], again[KEYS_Z85_LEN + 1];
    s_path(prefix, sizeof prefix, "vm");
    cr_assert_eq(keys_generate(prefix, false, first, err, sizeof err), 0, "%s", err);
    cr_expect_eq(keys_generate(prefix, false, again, err, sizeof err), -EEXIST);
    cr_expect(strstr(err, "--force") != NULL, "%s", err);
    s_path(path, sizeof path, "vm.pub");
    char back[KEYS_Z85_LEN + 1];
    cr_assert_eq(keys_read(path, false, back, err, sizeof err), 0);
    cr_expect_str_eq(back, first, "the refused run changed nothing");
    cr_assert_eq(keys_generate(prefix, true, again, err, sizeof err), 0, "%s", err);
    cr_assert_eq(keys_read(path, false, back, err, sizeof err), 0);
    cr_expect_str_eq(back, again);
}

Test(keys, a_secret_key_open_to_others_is_refused, .init = s_mkdir, .fini = s_rmdir)
{
    char prefix[128], path[128], err[256] = "", pub[KEYS_Z85_LEN + 1], key[KEYS_Z85_LEN + 1];
    s_path(prefix, sizeof prefix, "vm");
    cr_assert_eq(keys_generate(prefix, false, pub, err, sizeof err), 0, "%s", err);
    s_path(path, sizeof path, "vm.key");
    cr_assert_eq(chmod(path, 0644), 0);
    cr_expect_eq(keys_read(path, true, key, err, sizeof err), -EPERM);
    cr_expect(strstr(err, "644") != NULL, "%s", err);
    cr_expect_eq(keys_read(path, false, key, err, sizeof err), 0, "a public key may be read");
}

Test(keys, what_is_not_a_key_is_refused, .init = s_mkdir, .fini = s_rmdir)
{
    char path[128], err[256], key[KEYS_Z85_LEN + 1];
    s_write("short", "tooshort\n", 0600);
    s_write("long", "0123456789012345678901234567890123456789xyz\n", 0600);
    s_write("bad", "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n", 0600); /* ~ is not Z85 */
    s_write("empty", "", 0600);
    const char *names[] = {"short", "long", "bad", "empty"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        s_path(path, sizeof path, names[i]);
        cr_expect_eq(keys_read(path, true, key, err, sizeof err), -EINVAL, "%s", names[i]);
        cr_expect(strstr(err, "not a CURVE key") != NULL, "%s: %s", names[i], err);
    }
    s_path(path, sizeof path, "missing");
    cr_expect_eq(keys_read(path, false, key, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "missing") != NULL, "%s", err);
}
