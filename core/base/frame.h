/* The relay's binary data frame header (docs/protocol.md, "Data frames"): 16 bytes, big-endian.
 * Header-only; no state. */
#ifndef COBROWSE_CORE_FRAME_H
#define COBROWSE_CORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN    16
#define FRAME_VERSION       1
#define FRAME_KIND_SNAPSHOT 1
#define FRAME_KIND_EVENT    2

struct frame_header {
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint64_t seq;
};

/* Parses the header of a message of len bytes. Returns 0, or -1 if it is too short, of another
 * version or kind, or has reserved bits set. */
static inline int frame_parse(const unsigned char *p, size_t len, struct frame_header *h)
{
    if (len < FRAME_HEADER_LEN)
        return -1;
    h->version = p[0];
    h->kind = p[1];
    h->flags = (uint16_t)(p[2] << 8 | p[3]);
    uint32_t reserved = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    h->seq = 0;
    for (int i = 8; i < 16; i++)
        h->seq = h->seq << 8 | p[i];
    if (h->version != FRAME_VERSION ||
        (h->kind != FRAME_KIND_SNAPSHOT && h->kind != FRAME_KIND_EVENT) || (h->flags & ~1u) != 0 ||
        reserved != 0 || h->seq == 0)
        return -1;
    return 0;
}

static inline void frame_write(unsigned char *p, uint8_t kind, uint16_t flags, uint64_t seq)
{
    p[0] = FRAME_VERSION;
    p[1] = kind;
    p[2] = (unsigned char)(flags >> 8);
    p[3] = (unsigned char)flags;
    p[4] = p[5] = p[6] = p[7] = 0;
    for (int i = 15; i >= 8; i--) {
        p[i] = (unsigned char)seq;
        seq >>= 8;
    }
}

#endif
