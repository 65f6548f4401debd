/*
 * A bare KVM VM for the benchmarks' baselines: no actors, one vCPU, an
 * in-kernel irqchip, guest RAM at 0 with an ELF guest loaded by //loader
 * and the vCPU in its 64-bit start state. The benchmark runs KVM_RUN
 * itself and answers exits inline: the cheapest a VMM can be.
 */
#ifndef VMM_BENCH_RAW_KVM_H
#define VMM_BENCH_RAW_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

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
void raw_kvm_close(raw_kvm_t *k);

#endif
