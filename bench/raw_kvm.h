/*
 * A bare KVM VM for the benchmarks' baselines: no actors, one vCPU, an
 * in-kernel irqchip, guest RAM at 0 with an ELF guest loaded by //loader
 * and the vCPU in its 64-bit start state. The benchmark runs KVM_RUN
 * itself and answers exits inline: the cheapest a VMM can be.
 */
#ifndef VMM_BENCH_RAW_KVM_H
#define VMM_BENCH_RAW_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

typedef struct {
    int kvm, vm, vcpu;
    void *mem;
    uint64_t mem_size;
    struct kvm_run *run;
    size_t run_size;
    uint32_t tsc_khz; /* the guest TSC's */
} raw_kvm_t;

/* Opens the VM with elf loaded into mem_size bytes of RAM. Returns 0, or a
 * negative errno with what failed in err; raw_kvm_close() either way. */
int raw_kvm_open(raw_kvm_t *k, const uint8_t *elf, size_t elf_len, uint64_t mem_size,
                 char *err, size_t errlen);
/* The same with an image the loader made (a kernel on a PC, say): its RAM
 * ranges, chunks and VP 0's state; the image stays the caller's. */
int raw_kvm_open_image(raw_kvm_t *k, const loader_image_t *image, char *err, size_t errlen);
void raw_kvm_close(raw_kvm_t *k);

/* A further vCPU, which its caller runs. */
typedef struct {
    int fd;
    struct kvm_run *run;
    size_t run_size;
} raw_kvm_vcpu_t;

/* Adds vCPU `index` in the start state the image gives VP index
 * (raw_kvm_open_image() makes 0 so; a further one starts running, not
 * waiting for INIT and SIPI). Returns 0, or a negative errno with nothing
 * left open. */
int raw_kvm_add_vcpu(raw_kvm_t *k, const loader_image_t *image, uint32_t index,
                     raw_kvm_vcpu_t *out);
void raw_kvm_close_vcpu(raw_kvm_vcpu_t *v);

/* What a benchmark answers itself while raw_kvm_run() runs its guest. */
typedef struct {
    /* Its own ports: 0 when taken (a read's bytes written to data), 1 to
     * end the run (as a power off), -ENOENT for a port it does not know,
     * or another negative errno with the reason in err. */
    int (*port)(void *arg, raw_kvm_t *k, bool out, uint16_t port, uint32_t size, uint8_t *data,
                char *err, size_t errlen);
    /* A sync point's arguments (a bench guest's: part, cycles low, high):
     * 0 when taken, else -EPROTO. */
    int (*sync)(void *arg, const uint32_t *args, size_t n);
    /* Optional: what the guest writes to COM1, a byte at a time (NULL: to
     * stderr). */
    void (*com1)(void *arg, uint8_t byte);
    /* Optional: the Hyper-V synthetic MSRs (0x40000000-0x400000ff), sent to
     * user space as the partition sends them: 0 with a read's value in
     * *data, or -EPERM for a #GP. NULL: KVM answers them (#GP). */
    int (*msr)(void *arg, raw_kvm_t *k, bool write, uint32_t index, uint64_t *data);
    void *arg;
} raw_kvm_guest_t;

/* Runs the guest until it powers off, answering each exit inline: the
 * ports of guest/guest.h here (COM1's text to g->com1 or stderr, a failed
 * assertion's; its line status; the test device's calls, a sync point to
 * g->sync; the PM1a power off), the others by g->port. Returns 0 at the
 * power off, or a negative errno with the reason in err. */
int raw_kvm_run(raw_kvm_t *k, const raw_kvm_guest_t *g, char *err, size_t errlen);

#endif
