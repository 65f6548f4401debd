#include "bench/raw_kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "actors/devices/testdev_abi.h"
#include "loader/loader.h"

#define S_PORT_POWER 0x604 /* the PM1a control register guests power off by */
#define S_COM1 0x3f8
#define S_COM1_LSR 0x3fd
#define S_LSR_THRE 0x20

void raw_kvm_close(raw_kvm_t *k)
{
    if (k->run)
        munmap(k->run, k->run_size);
    if (k->mem)
        munmap(k->mem, k->mem_size);
    int fds[] = {k->vcpu, k->vm, k->kvm};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    *k = (raw_kvm_t){.kvm = -1, .vm = -1, .vcpu = -1};
}

static void s_seg(const loader_segment_t *in, struct kvm_segment *out)
{
    *out = (struct kvm_segment){
        .base = in->base, .limit = in->limit, .selector = in->selector, .type = in->type,
        .present = in->present, .dpl = in->dpl, .db = in->db, .s = in->s, .l = in->l,
        .g = in->g, .avl = in->avl, .unusable = in->unusable,
    };
}

/* The vCPU's start state from the loader; CPUID first, which KVM wants
 * before SREGS (it checks CR4 and EFER bits against the CPUID). */
static int s_boot_state(raw_kvm_t *k, int vcpu, const loader_vp_state_t *st)
{
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + 256 * sizeof cpuid->entries[0]);
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = 256;
    int rc = ioctl(k->kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 ||
                     ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0
                 ? -errno
                 : 0;
    free(cpuid);
    struct kvm_sregs s;
    if (rc || ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
        return rc ? rc : -errno;
    s_seg(&st->cs, &s.cs), s_seg(&st->ds, &s.ds), s_seg(&st->es, &s.es);
    s_seg(&st->fs, &s.fs), s_seg(&st->gs, &s.gs), s_seg(&st->ss, &s.ss);
    s_seg(&st->tr, &s.tr), s_seg(&st->ldt, &s.ldt);
    s.gdt = (struct kvm_dtable){.base = st->gdt.base, .limit = st->gdt.limit};
    s.idt = (struct kvm_dtable){.base = st->idt.base, .limit = st->idt.limit};
    s.cr0 = st->cr0, s.cr3 = st->cr3, s.cr4 = st->cr4, s.efer = st->efer;
    struct kvm_regs r = {.rip = st->rip, .rsp = st->rsp, .rax = st->rax, .rbx = st->rbx,
                         .rsi = st->rsi, .rdi = st->rdi, .rflags = st->rflags};
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0 || ioctl(vcpu, KVM_SET_REGS, &r) < 0)
        return -errno;
    return 0;
}

int raw_kvm_open_image(raw_kvm_t *k, const loader_image_t *image, char *err, size_t errlen)
{
    size_t n_ram;
    const loader_range_t *ram = loader_image_ram(image, &n_ram);
    uint64_t mem_size = ram[n_ram - 1].end;
    *k = (raw_kvm_t){.kvm = -1, .vm = -1, .vcpu = -1, .mem_size = mem_size};
    const char *what = "/dev/kvm";
    int rc;
    if ((k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
        goto fail;
    what = "KVM_CREATE_VM";
    if ((k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0)) < 0)
        goto fail;
    if (ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
        ioctl(k->vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);
    what = "KVM_CREATE_IRQCHIP";
    if (ioctl(k->vm, KVM_CREATE_IRQCHIP, 0) < 0)
        goto fail;
    what = "guest RAM";
    k->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->mem == MAP_FAILED) {
        k->mem = NULL;
        goto fail;
    }
    /* One slot per RAM range, at the same offset in the mapping as in the
     * guest: the gap between them is mapped but never given to KVM. */
    for (size_t i = 0; i < n_ram; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = (uint32_t)i, .guest_phys_addr = ram[i].start,
            .memory_size = ram[i].end - ram[i].start,
            .userspace_addr = (uint64_t)(uintptr_t)k->mem + ram[i].start};
        if (ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
            goto fail;
    }
    size_t n;
    const loader_chunk_t *chunks = loader_image_chunks(image, &n);
    for (size_t i = 0; i < n; i++)
        memcpy((uint8_t *)k->mem + chunks[i].gpa, chunks[i].bytes, chunks[i].len);
    what = "the vCPU";
    raw_kvm_vcpu_t v;
    if ((rc = raw_kvm_add_vcpu(k, image, 0, &v))) {
        errno = -rc;
        goto fail;
    }
    k->vcpu = v.fd;
    k->run = v.run;
    k->run_size = v.run_size;
    what = "KVM_GET_TSC_KHZ";
    int khz = ioctl(k->vcpu, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0)
        goto fail;
    k->tsc_khz = (uint32_t)khz;
    return 0;
fail:
    rc = -errno;
    snprintf(err, errlen, "%s: %s", what, strerror(-rc));
    return rc;
}

int raw_kvm_open(raw_kvm_t *k, const uint8_t *elf, size_t elf_len, uint64_t mem_size,
                 char *err, size_t errlen)
{
    *k = (raw_kvm_t){.kvm = -1, .vm = -1, .vcpu = -1};
    loader_image_t *image = loader_image_new(elf, elf_len, mem_size, 1, err, errlen);
    if (!image)
        return -errno;
    int rc = raw_kvm_open_image(k, image, err, errlen);
    loader_image_destroy(&image);
    return rc;
}

int raw_kvm_add_vcpu(raw_kvm_t *k, const loader_image_t *image, uint32_t index,
                     raw_kvm_vcpu_t *out)
{
    *out = (raw_kvm_vcpu_t){.fd = -1};
    int size = ioctl(k->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0 || (out->fd = ioctl(k->vm, KVM_CREATE_VCPU, index)) < 0)
        return -errno;
    out->run_size = (size_t)size;
    out->run = mmap(NULL, out->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
    int rc = out->run == MAP_FAILED ? -errno : s_boot_state(k, out->fd, loader_image_vp(image, index));
    /* An AP would wait for INIT and SIPI: this one starts as VP 0 does. */
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (!rc && index && ioctl(out->fd, KVM_SET_MP_STATE, &mp) < 0)
        rc = -errno;
    if (out->run == MAP_FAILED)
        out->run = NULL;
    if (rc)
        raw_kvm_close_vcpu(out);
    return rc;
}

void raw_kvm_close_vcpu(raw_kvm_vcpu_t *v)
{
    if (v->run)
        munmap(v->run, v->run_size);
    if (v->fd >= 0)
        close(v->fd);
    *v = (raw_kvm_vcpu_t){.fd = -1};
}

/* One port exit. Returns 1 once the guest powered off, 0 to go on, or a
 * negative errno. */
static int s_port(raw_kvm_t *k, const raw_kvm_guest_t *g, uint32_t *args, size_t *n_args,
                  char *err, size_t errlen)
{
    struct kvm_run *run = k->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    uint32_t value = 0;
    memcpy(&value, data, run->io.size <= 4 ? run->io.size : 4);
    switch (out ? run->io.port : 0) {
    case S_COM1:
        if (g->com1)
            g->com1(g->arg, (uint8_t)value);
        else
            fputc(value & 0xff, stderr);
        return 0;
    case TESTDEV_PORT_ARG:
        if (*n_args < TESTDEV_MAX_ARGS)
            args[(*n_args)++] = value;
        return 0;
    case S_PORT_POWER:
        return 1;
    case TESTDEV_PORT_CALL: {
        size_t got = *n_args;
        *n_args = 0;
        if (value == TESTDEV_CALL_SYNC && !g->sync(g->arg, args, got))
            return 0;
        snprintf(err, errlen, "the guest made call %u (%zu args, first %u)", value, got,
                 got ? args[0] : 0);
        return -EPROTO;
    }
    }
    if (!out && run->io.port == S_COM1_LSR) {
        *data = S_LSR_THRE;
        return 0;
    }
    int rc = g->port(g->arg, k, out, run->io.port, run->io.size, data, err, errlen);
    if (rc == -ENOENT)
        snprintf(err, errlen, "unexpected %s port 0x%x", out ? "write to" : "read from",
                 run->io.port);
    return rc;
}

/* The synthetic MSRs to user space, as the partition sends them. */
static int s_trap_msrs(raw_kvm_t *k, char *err, size_t errlen)
{
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                                 .args = {KVM_MSR_EXIT_REASON_FILTER}};
    static uint8_t deny[0x100 / 8]; /* a 0 bit denies: every synthetic MSR */
    struct kvm_msr_filter filter = {
        .flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
        .ranges = {{.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
                    .nmsrs = 0x100,
                    .base = 0x40000000,
                    .bitmap = deny}},
    };
    if (ioctl(k->vm, KVM_ENABLE_CAP, &cap) < 0 || ioctl(k->vm, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
        snprintf(err, errlen, "cannot send the synthetic MSRs to user space: %s",
                 strerror(errno));
        return -errno;
    }
    return 0;
}

static void s_msr(raw_kvm_t *k, const raw_kvm_guest_t *g)
{
    struct kvm_run *run = k->run;
    bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
    uint64_t data = run->msr.data;
    run->msr.error = g->msr(g->arg, k, write, run->msr.index, &data) ? 1 : 0;
    if (!write && !run->msr.error)
        run->msr.data = data;
}

int raw_kvm_run(raw_kvm_t *k, const raw_kvm_guest_t *g, char *err, size_t errlen)
{
    uint32_t args[TESTDEV_MAX_ARGS];
    size_t n_args = 0;
    int rc = g->msr ? s_trap_msrs(k, err, errlen) : 0;
    while (!rc) {
        if (ioctl(k->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            rc = -errno;
            snprintf(err, errlen, "KVM_RUN: %s", strerror(errno));
        } else if (k->run->exit_reason == KVM_EXIT_IO) {
            rc = s_port(k, g, args, &n_args, err, errlen);
        } else if (g->msr && (k->run->exit_reason == KVM_EXIT_X86_RDMSR ||
                              k->run->exit_reason == KVM_EXIT_X86_WRMSR)) {
            s_msr(k, g);
        } else if (k->run->exit_reason != KVM_EXIT_INTR) {
            rc = -EPROTO;
            snprintf(err, errlen, "unexpected exit reason %u", k->run->exit_reason);
        }
    }
    return rc == 1 ? 0 : rc;
}
