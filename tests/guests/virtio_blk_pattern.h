/* The bytes tests/guests/virtio_blk writes at each offset of its disk,
 * which the host checks in the image afterwards. */
#ifndef VMM_VIRTIO_BLK_PATTERN_H
#define VMM_VIRTIO_BLK_PATTERN_H

#include <stdint.h>

static inline uint8_t virtio_blk_byte(uint32_t offset)
{
    return (uint8_t)((offset * 2654435761u) >> 24 ^ offset >> 12);
}

#endif
