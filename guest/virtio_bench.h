/*
 * The virtio-blk workloads of //bench:virtio_bench, shared by its guest
 * (guest/bench_virtio.c, 64-bit, run at CPL 3) and its multiboot kernel
 * (bench/kernels/virtio_rw.c, which QEMU runs too), each timed with rdtsc
 * and handed to report():
 *
 *   1  4 KiB reads at random 4 KiB offsets, one in flight     n
 *   2  the same, 32 in flight                                 n
 *   3  64 KiB sequential reads, one in flight                 n / 4
 *   4  64 KiB sequential writes, one in flight (from 1 MiB)   n / 4
 *
 * Offsets stay below VIRTIO_BENCH_SPAN: the image is at least that. The
 * driver polls the used ring; it asks for no interrupts. Requests that
 * fail, or never come back, are counted in *failed.
 */
#ifndef VMM_GUEST_VIRTIO_BENCH_H
#define VMM_GUEST_VIRTIO_BENCH_H

#include <stdint.h>

#include "guest/virtio.h"

#define VIRTIO_BENCH_SPAN (32u << 20)
#define VIRTIO_BENCH_PHASES 4

typedef void (*virtio_bench_report_fn)(uint32_t phase, uint64_t cycles, uint32_t ops,
                                       uint32_t bytes);

/* Reads the 32-bit word at byte 0 of the disk (the benchmark's n). */
uint32_t virtio_bench_first_word(guest_virtio_t *blk);

/* Runs the four workloads on blk (set up, queue 0) with n operations. */
void virtio_bench_blk(guest_virtio_t *blk, uint32_t n, virtio_bench_report_fn report,
                      uint32_t *failed);

#endif
