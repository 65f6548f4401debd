/*
 * `vmm run --device virtio-...` as a user runs it: each virtio device in
 * the VM's process, in a device host vmm starts over ipc://, and over
 * tcp:// with CURVE, against the test guests in tests/guests (which power
 * off when what they saw was right): virtio-blk's image checked byte by
 * byte afterwards, virtio-console's greeting and echo on stdout, virtio-rng.
 * Skips without /dev/kvm.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/guests/virtio_blk_pattern.h"
#include "tests/testing/vm_harness.h"

#define S_VMM "vmm/vmm"
#define S_TIMEOUT_S 60

static char s_dir[64];

static void s_setup(void)
{
    vm_harness_need_kvm();
    strcpy(s_dir, "/tmp/vmm-virtio-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_expect_eq(system(cmd), 0);
}

/* Runs vmm with args (NULL-terminated), stdin from the file in (or
 * /dev/null), stdout and stderr into s_dir/out and s_dir/err; its exit
 * status, or -1 when it did not end within S_TIMEOUT_S (then killed). */
static int s_vmm(const char *in, const char *const *args)
{
    char out[128], err[128];
    snprintf(out, sizeof out, "%s/out", s_dir);
    snprintf(err, sizeof err, "%s/err", s_dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int i = open(in ? in : "/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(125);
        const char *argv[32] = {S_VMM};
        for (size_t k = 0; args[k] && k < 30; k++)
            argv[k + 1] = args[k];
        execv(S_VMM, (char *const *)argv);
        _exit(126);
    }
    int status;
    for (int ms = 0; ms < S_TIMEOUT_S * 1000; ms += 20) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* The file s_dir/name, NUL-terminated, in buf. */
static void s_read(const char *name, char *buf, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}

/* Runs the guest with one device (its settings; host, or NULL for the
 * VM's process); COM1 goes to s_dir/com1. Expects status 0 and the
 * guest's "ok" line. */
static void s_run(const char *guest, const char *device, const char *host, const char *in)
{
    char dev[512], com1[128], path[64], text[4096], err[4096];
    snprintf(dev, sizeof dev, "%s%s%s", device, host ? ",host=" : "", host ? host : "");
    snprintf(com1, sizeof com1, "%s/com1", s_dir);
    snprintf(path, sizeof path, "tests/guests/%s", guest);
    const char *args[] = {"run", "--guest", path, "--mem", "16M", "--serial", com1,
                          "--device", dev, NULL};
    int status = s_vmm(in, args);
    s_read("com1", text, sizeof text);
    s_read("err", err, sizeof err);
    cr_expect_eq(status, 0, "vmm run --device %s: status %d; COM1: %s; stderr: %s", dev, status,
                 text, err);
    char want[64];
    snprintf(want, sizeof want, "%s: ok", guest);
    for (char *p = want; *p; p++)
        if (*p == '_')
            *p = '-';
    cr_expect_not_null(strstr(text, want), "COM1: %s", text);
}

/* ---- virtio-blk -------------------------------------------------------------- */

static void s_blk(const char *host)
{
    char image[128], device[256];
    snprintf(image, sizeof image, "%s/disk.img", s_dir);
    int fd = open(image, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    snprintf(device, sizeof device, "virtio-blk,file=%s", image);
    s_run("virtio_blk", device, host, NULL);
    static uint8_t bytes[1 << 20];
    fd = open(image, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    close(fd);
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < sizeof bytes; i++)
        wrong += bytes[i] != (i < 32 * 4096 ? virtio_blk_byte(i) : 0);
    cr_expect_eq(wrong, 0, "%u bytes of the image are not what the guest wrote", wrong);
}

TestSuite(virtio_cli, .init = s_setup, .fini = s_teardown, .timeout = 180);

Test(virtio_cli, blk_in_the_vm)
{
    s_blk(NULL);
}

Test(virtio_cli, blk_in_a_device_host_over_ipc)
{
    s_blk("ipc");
}

Test(virtio_cli, blk_in_a_device_host_over_tcp_with_curve)
{
    s_blk("tcp");
}

/* ---- virtio-console ------------------------------------------------------------ */

static void s_console(const char *host)
{
    char in[128], out[4096];
    snprintf(in, sizeof in, "%s/in", s_dir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    fputs("ping\n", f);
    fclose(f);
    s_run("virtio_console", "virtio-console,base=0xd0001000,irq=6", host, in);
    s_read("out", out, sizeof out);
    cr_expect_str_eq(out, "virtio-console: hello\necho: ping\n");
}

Test(virtio_cli, console_in_the_vm)
{
    s_console(NULL);
}

Test(virtio_cli, console_in_a_device_host_over_ipc)
{
    s_console("ipc");
}

Test(virtio_cli, console_in_a_device_host_over_tcp_with_curve)
{
    s_console("tcp");
}

/* ---- virtio-rng ----------------------------------------------------------------- */

Test(virtio_cli, rng_in_the_vm)
{
    s_run("virtio_rng", "virtio-rng,base=0xd0100000,irq=11", NULL, NULL);
}

Test(virtio_cli, rng_in_a_device_host_over_ipc)
{
    s_run("virtio_rng", "virtio-rng,base=0xd0100000,irq=11", "ipc", NULL);
}

Test(virtio_cli, rng_in_a_device_host_over_tcp_with_curve)
{
    s_run("virtio_rng", "virtio-rng,base=0xd0100000,irq=11", "tcp", NULL);
}

/* ---- Settings refused before anything runs ---------------------------------------- */

Test(virtio_cli, a_missing_image_is_one_line_and_status_1)
{
    const char *args[] = {"run", "--device", "virtio-blk,file=/nonexistent.img", NULL};
    cr_expect_eq(s_vmm(NULL, args), 1);
    char err[512];
    s_read("err", err, sizeof err);
    cr_expect_str_eq(err, "vmm run: --device virtio-blk0: /nonexistent.img: No such file or "
                          "directory\n");
}
