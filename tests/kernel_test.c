/*
 * Kernels booted on the PC platform (vmm/vm.h with a kernel): the
 * multiboot test kernels of tests/kernels/, each checking itself as
 * kvm-unit-tests' do (PASS and FAIL lines, its status through
 * isa-debug-exit) and printing what the host checks against what it asked
 * for. Skips where /dev/kvm is absent.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/testing/vm_harness.h"
#include "vmm/vm.h"

#define S_TIMEOUT_MS 30000
#define S_OUT 65536
#define MIB (1ull << 20)
/* What a clean run of a test kernel exits with: isa-debug-exit's (0 << 1) | 1. */
#define S_PASSED 1

typedef struct {
    uint32_t n_vps;
    uint64_t mem;
    const char *append;
    const uint8_t *initrd;
    size_t initrd_len;
    const char *initrd_name;
    bool hyperv;
    vm_placement_t placement;
} s_boot_t;

static char s_out[S_OUT];

/* Boots tests/kernels/<name> as b says and waits for it to power off:
 * returns its exit status (-1 for another halt); COM1's output is left
 * in s_out. */
static int s_boot(const char *name, const s_boot_t *b)
{
    vm_harness_need_kvm();
    char path[256];
    snprintf(path, sizeof path, "tests/kernels/%s", name);
    vm_harness_file_t file = vm_harness_read(path);
    loader_kernel_config_t k = {.kernel = file.elf, .kernel_len = file.len, .kernel_name = path,
                                .append = b->append, .initrd = b->initrd,
                                .initrd_len = b->initrd_len, .initrd_name = b->initrd_name};
    FILE *out = tmpfile();
    cr_assert_not_null(out);
    vm_config_t cfg = {.kernel = &k, .mem_size = b->mem ? b->mem : 64 * MIB,
                       .n_vps = b->n_vps ? b->n_vps : 1, .serial_out = fileno(out),
                       .serial_in = -1, .hyperv = b->hyperv, .placement = b->placement};
    char err[256] = "";
    vm_t *vm = vm_new(&cfg, err, sizeof err);
    free(file.elf);
    cr_assert_not_null(vm, "vm_new: %s", err);
    cr_assert_eq(vm_start(vm), 0);
    int status = -1;
    for (;;) {
        vm_event_t ev;
        int rc = vm_next_event(vm, &ev, S_TIMEOUT_MS);
        if (rc) {
            vm_destroy(&vm);
            cr_assert_fail("%s: no power off within %d ms", name, S_TIMEOUT_MS);
        }
        if (ev.kind != VM_EVENT_HALT)
            continue;
        if (ev.reason == VMM__VP__HALTED__REASON_POWER_OFF)
            status = ev.exit_code;
        else
            cr_log_error("%s: %s", name, ev.text);
        break;
    }
    vm_destroy(&vm); /* flushes COM1 */
    rewind(out);
    size_t n = fread(s_out, 1, sizeof s_out - 1, out);
    s_out[n] = 0;
    fclose(out);
    return status;
}

/* Expects a clean run: status 1 and no FAIL line. */
static void s_expect_passed(const char *name, int status)
{
    cr_expect_eq(status, S_PASSED, "%s exited %d; its output:\n%s", name, status, s_out);
    cr_expect_null(strstr(s_out, "FAIL"), "%s failed a check:\n%s", name, s_out);
}

/* The unsigned number after "key" in the output; the test fails without it. */
static unsigned long long s_value(const char *key)
{
    const char *at = strstr(s_out, key);
    cr_assert_not_null(at, "no \"%s\" in the output:\n%s", key, s_out);
    return strtoull(at + strlen(key), NULL, 0);
}

static void s_expect_line(const char *line)
{
    cr_expect_not_null(strstr(s_out, line), "no \"%s\" in the output:\n%s", line, s_out);
}

/* ---- The multiboot loader ----------------------------------------------- */

static uint32_t s_sum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    while (len--)
        sum = sum * 31 + *p++;
    return sum;
}

Test(multiboot, the_information_structure_reaches_the_kernel)
{
    static uint8_t initrd[10000];
    for (size_t i = 0; i < sizeof initrd; i++)
        initrd[i] = (uint8_t)(i * 3 + 1);
    s_boot_t b = {.append = "console=ttyS0 answer=42", .initrd = initrd,
                  .initrd_len = sizeof initrd, .initrd_name = "tests/kernels/env"};
    s_expect_passed("info", s_boot("info", &b));
    s_expect_line("cmdline=[tests/kernels/info console=ttyS0 answer=42]");
    s_expect_line("mem_lower=639 mem_upper=64512");
    s_expect_line("loader=[vmm]");
    s_expect_line("mmap: 0x0 0x9fc00 1");
    s_expect_line("mmap: 0x100000 0x3f00000 1");
    cr_expect_eq(s_value("ram="), 64 * MIB - (0x100000 - 0x9fc00));
    cr_expect_eq(s_value("mods="), 1);
    cr_expect_eq(s_value("len="), sizeof initrd);
    cr_expect_eq(s_value("sum="), s_sum(initrd, sizeof initrd));
    cr_expect_eq(s_value("aligned="), 1);
    s_expect_line("string=[tests/kernels/env]");
}

Test(multiboot, ram_over_3_gib_is_mapped_above_4_gib)
{
    s_boot_t b = {.mem = 5ull << 30};
    s_expect_passed("info", s_boot("info", &b));
    s_expect_line("mmap: 0x100000000 0x80000000 1");
    cr_expect_eq(s_value("ram="), (5ull << 30) - (0x100000 - 0x9fc00));
    cr_expect_eq(s_value("mem_upper="), ((3ull << 30) - MIB) / 1024);
    cr_expect_eq(s_value("mods="), 0);
}

Test(multiboot, a_flat_image_boots_by_the_aout_kludge)
{
    s_boot_t b = {.append = "flat"};
    s_expect_passed("info_aout.bin", s_boot("info_aout.bin", &b));
    s_expect_line("cmdline=[tests/kernels/info_aout.bin flat]");
}

/* ---- QEMU's test devices ------------------------------------------------ */

Test(qemu_devices, pc_testdev_port_by_port)
{
    s_boot_t b = {0};
    s_expect_passed("pc_testdev", s_boot("pc_testdev", &b));
    s_expect_line("PASS: IRQ line 19 raised by pc-testdev reaches its IO-APIC handler");
    s_expect_line("PASS: level-triggered line 23");
}

Test(qemu_devices, pc_testdev_with_the_devices_apart)
{
    s_boot_t b = {.placement = VM_DEVICES_APART};
    s_expect_passed("pc_testdev", s_boot("pc_testdev", &b));
}

Test(qemu_devices, the_bochs_shutdown_port_powers_off)
{
    s_boot_t b = {0};
    cr_expect_eq(s_boot("bochs_shutdown", &b), 0, "a plain power off:\n%s", s_out);
    s_expect_line("still running after a broken word");
    cr_expect_null(strstr(s_out, "after Shutdown"), "%s", s_out);
}

/* ---- The PC platform ---------------------------------------------------- */

Test(pc, a_real_mode_interrupt_goes_through_the_vector_table)
{
    s_boot_t b = {0};
    s_expect_passed("realmode", s_boot("realmode", &b));
    s_expect_line("PASS: IRQ 5 through our vector 0x0d: 1 interrupts");
}

Test(pc, acpi_tables_are_found_and_checksummed)
{
    s_boot_t b = {.n_vps = 4};
    s_expect_passed("acpi", s_boot("acpi", &b));
    cr_expect_eq(s_value("lapics="), 4);
    cr_expect_eq(s_value("pm_tmr="), 0x608);
    cr_expect_eq(s_value("pm1a_evt="), 0x600);
    cr_expect_eq(s_value("pm1a_cnt="), 0x604);
    cr_expect_eq(s_value("sci="), 9);
}

Test(qemu_devices, fw_cfg_answers_as_qemu)
{
    s_boot_t b = {.n_vps = 3, .mem = 128 * MIB};
    s_expect_passed("fw_cfg", s_boot("fw_cfg", &b));
    cr_expect_eq(s_value("cpus="), 3);
    cr_expect_eq(s_value("max_cpus="), 3);
    cr_expect_eq(s_value("ram_size="), 128 * MIB);
    s_expect_line("file: etc/e820 size=100 key=0x20");
}

Test(pc, the_rtc_tells_the_host_s_time_and_ticks_on_irq_8)
{
    s_boot_t b = {.n_vps = 2, .mem = 5ull << 30};
    time_t before = time(NULL);
    s_expect_passed("rtc", s_boot("rtc", &b));
    time_t after = time(NULL);
    const char *at = strstr(s_out, "rtc=");
    cr_assert_not_null(at, "%s", s_out);
    struct tm tm = {0};
    cr_assert_not_null(strptime(at + 4, "%Y-%m-%d %H:%M:%S", &tm), "%s", at);
    time_t rtc = timegm(&tm);
    cr_expect(rtc >= before - 1 && rtc <= after + 1, "the RTC says %s, the host %ld..%ld", at,
              (long)before, (long)after);
    cr_expect_eq(s_value("base="), 640);
    cr_expect_eq(s_value("ext="), 0xffff, "extended memory above 1 MiB, capped");
    cr_expect_eq(s_value("above16m="), ((3ull << 30) - 16 * MIB) / 65536);
    cr_expect_eq(s_value("above4g="), (2ull << 30) / 65536);
    cr_expect_eq(s_value("cpus="), 2);
}

Test(pc, the_pm_timer_runs_at_its_rate_by_the_reference_counter)
{
    s_boot_t b = {.hyperv = true};
    s_expect_passed("pm_timer", s_boot("pm_timer", &b));
    cr_expect_gt(s_value("pm_ticks="), 700000);
}

Test(pc, smp_with_2_vps_starts_by_init_and_sipi)
{
    s_boot_t b = {.n_vps = 2};
    s_expect_passed("smp", s_boot("smp", &b));
    cr_expect_eq(s_value("aps="), 1);
}

Test(pc, smp_with_4_vps_starts_by_init_and_sipi)
{
    s_boot_t b = {.n_vps = 4};
    s_expect_passed("smp", s_boot("smp", &b));
    cr_expect_eq(s_value("aps="), 3);
}

Test(qemu_devices, hyperv_testdev_delivers_messages_and_events)
{
    s_boot_t b = {.hyperv = true};
    s_expect_passed("hyperv", s_boot("hyperv", &b));
    cr_expect_eq(s_value("sints="), 3);
}
