/* What the virtio-blk test guests write, which the host checks in the
 * image afterwards: tests/guests/virtio_blk's bytes at each offset. */
#ifndef VMM_VIRTIO_BLK_PATTERN_H
#define VMM_VIRTIO_BLK_PATTERN_H

#include <stdint.h>

/* tests/guests/virtio_blk_stream: its writes, and the sectors they go
 * round. */
#define VIRTIO_BLK_STREAM_WRITES 20000u
#define VIRTIO_BLK_STREAM_SECTORS 1024u

static inline uint8_t virtio_blk_byte(uint32_t offset)
{
    return (uint8_t)((offset * 2654435761u) >> 24 ^ offset >> 12);
}

#endif
