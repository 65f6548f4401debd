/* Reading a snapshot's manifest: one of this build reads back; another
 * format version, another build, a missing piece or bytes that do not
 * decode are refused with the reason. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/snapshot.h"

static char s_dir[] = "/tmp/snapshot-test-XXXXXX";
static char s_build[96];

static void s_setup(void)
{
    cr_assert_not_null(mkdtemp(s_dir));
    cr_assert_eq(snapshot_build_id(s_build, sizeof s_build), 0, "the test has a build ID");
}

static void s_teardown(void)
{
    snapshot_remove(s_dir);
}

static void s_write(const uint8_t *bytes, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, SNAPSHOT_MANIFEST);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

/* A whole manifest of this build, of an ELF guest on 2 VPs, changed by
 * `change` before it is written. */
static void s_manifest(void (*change)(Vmm__Snapshot__Snapshot *))
{
    static uint8_t elf[] = {0x7f, 'E', 'L', 'F'};
    Vmm__Snapshot__Machine m = VMM__SNAPSHOT__MACHINE__INIT;
    m.mem_size = 64u << 20;
    m.n_vps = 2;
    m.guest = (ProtobufCBinaryData){sizeof elf, elf};
    Vmm__Partition__SavedState part = VMM__PARTITION__SAVED_STATE__INIT;
    Vmm__Vp__VpState vp0 = VMM__VP__VP_STATE__INIT, vp1 = VMM__VP__VP_STATE__INIT;
    Vmm__Vp__VpState *vps[] = {&vp0, &vp1};
    Vmm__Snapshot__Snapshot s = VMM__SNAPSHOT__SNAPSHOT__INIT;
    s.format_version = SNAPSHOT_FORMAT_VERSION;
    s.build_id = s_build;
    s.machine = &m;
    s.partition = &part;
    s.vps = vps;
    s.n_vps = 2;
    if (change)
        change(&s);
    size_t len = vmm__snapshot__snapshot__get_packed_size(&s);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    vmm__snapshot__snapshot__pack(&s, buf);
    s_write(buf, len);
    free(buf);
}

/* snapshot_read()'s refusal: its errno, and that err holds `why`. */
static void s_refused(int want, const char *why)
{
    Vmm__Snapshot__Snapshot *out = (void *)1;
    char err[4400] = "";
    cr_expect_eq(snapshot_read(s_dir, &out, err, sizeof err), want, "%s", err);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err, why), "the reason: %s", err);
}

Test(snapshot, one_of_this_build_reads_back, .init = s_setup, .fini = s_teardown)
{
    s_manifest(NULL);
    Vmm__Snapshot__Snapshot *out = NULL;
    char err[4400] = "";
    cr_assert_eq(snapshot_read(s_dir, &out, err, sizeof err), 0, "%s", err);
    cr_expect_eq(out->machine->n_vps, 2);
    cr_expect_eq(out->machine->mem_size, 64u << 20);
    cr_expect_str_eq(out->build_id, s_build);
    vmm__snapshot__snapshot__free_unpacked(out, NULL);
}

static void s_version_2(Vmm__Snapshot__Snapshot *s)
{
    s->format_version = 2;
}

static void s_other_build(Vmm__Snapshot__Snapshot *s)
{
    s->build_id = "0123456789abcdef";
}

static void s_no_partition(Vmm__Snapshot__Snapshot *s)
{
    s->partition = NULL;
}

static void s_no_machine(Vmm__Snapshot__Snapshot *s)
{
    s->machine = NULL;
}

static void s_one_vp_missing(Vmm__Snapshot__Snapshot *s)
{
    s->n_vps = 1;
}

static void s_no_guest(Vmm__Snapshot__Snapshot *s)
{
    s->machine->guest = (ProtobufCBinaryData){0, NULL};
}

static void s_empty_kernel(Vmm__Snapshot__Snapshot *s)
{
    static Vmm__Snapshot__Kernel k = VMM__SNAPSHOT__KERNEL__INIT;
    s->machine->guest = (ProtobufCBinaryData){0, NULL};
    s->machine->kernel = &k;
}

Test(snapshot, another_format_or_build_is_refused_naming_it, .init = s_setup,
     .fini = s_teardown)
{
    s_manifest(s_version_2);
    s_refused(-EINVAL, "another format version (format 2,");
    s_manifest(s_other_build);
    s_refused(-EINVAL, "another build of vmm wrote it");
    s_refused(-EINVAL, "build 0123456789abcdef");
}

Test(snapshot, a_missing_piece_is_refused, .init = s_setup, .fini = s_teardown)
{
    void (*const changes[])(Vmm__Snapshot__Snapshot *) = {
        s_no_partition, s_no_machine, s_one_vp_missing, s_no_guest, s_empty_kernel,
    };
    for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
        s_manifest(changes[i]);
        s_refused(-EINVAL, "a piece is missing");
    }
}

Test(snapshot, what_is_no_manifest_is_refused, .init = s_setup, .fini = s_teardown)
{
    s_refused(-ENOENT, "snapshot.pb: No such file or directory");
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f};
    s_write(junk, sizeof junk);
    s_refused(-EINVAL, "not a snapshot's manifest (it does not decode)");
    s_write(junk, 0);
    s_refused(-EINVAL, "not a snapshot's manifest");
}
