/*
 * A stand-in partition for synic tests: an rt_client on a thread of its
 * own (the synic calls it while the test thread waits on the synic), that
 * holds guest RAM from GPA 0 in a sealed memory file, which it offers to
 * map (MapGuestMemory) as the partition does, serves ReadGuestMemory /
 * WriteGuestMemory / UpdateGuestMemory from it too (a range outside RAM is
 * INVALID_ARGUMENT, as the real partition answers), and records the MSIs
 * it is asked for (RequestMsi). The test
 * thread plays the guest: it reads and writes the same RAM and takes the
 * MSIs in order.
 */
#ifndef VMM_SYNIC_FAKE_PARTITION_H
#define VMM_SYNIC_FAKE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

typedef struct fake_partition_s fake_partition_t;

typedef struct {
    uint64_t address;
    uint32_t data;
} fake_msi_t;

/* Starts the partition client `name` with ram_size bytes of zeroed RAM;
 * returns once it receives. NULL on failure. */
fake_partition_t *fake_partition_new(rt_t *rt, const char *name, size_t ram_size);
/* Stops the thread, destroys its client, frees the RAM; nulls *fp. */
void fake_partition_destroy(fake_partition_t **fp);

/* The guest's accesses to its RAM: 0, or -EINVAL outside it. */
int fake_partition_read(fake_partition_t *fp, uint64_t gpa, void *buf, size_t len);
int fake_partition_write(fake_partition_t *fp, uint64_t gpa, const void *buf, size_t len);

/* Takes the oldest MSI not yet taken, waiting up to timeout_ms: 0, or
 * -ETIMEDOUT. */
int fake_partition_next_msi(fake_partition_t *fp, int timeout_ms, fake_msi_t *msi);
/* MSIs asked for so far, taken or not. */
uint64_t fake_partition_msis(fake_partition_t *fp);
/* Guest memory requests answered with data or an Ack, and refused. */
uint64_t fake_partition_memory_served(fake_partition_t *fp);
uint64_t fake_partition_memory_refused(fake_partition_t *fp);

#endif
