/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Little-endian integers in byte buffers, as every on-disk format of the
 * project stores them (the kvs engine's records and hints, the mem
 * engine's snapshots), whatever the machine's byte order.
 */
#ifndef KVS_CORE_ENDIAN_H
#define KVS_CORE_ENDIAN_H

#include <stdint.h>

static inline void kvs__put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void kvs__put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t kvs__get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t kvs__get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
