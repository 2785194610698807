/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Records of the kvs engine's log: the unit of atomicity on disk.
 *
 * A record is a 24-byte header, for a put with an expiry time 8 bytes more
 * (a 32-byte header), then the key and the value. All integers are
 * little-endian.
 *
 *   off size field
 *     0    8 sum   XXH3-64 of header bytes 8 to the header's end, then the
 *                  key, then the value, chained through the seed
 *                  (klog_rec_sum)
 *     8    4 head  XXH32 of header bytes 12..23
 *    12    1 type  KLOG_REC_PUT, KLOG_REC_DEL or KLOG_REC_CLEAR
 *    13    1 flags KLOG_REC_EXPIRES (puts only), else 0
 *    14    2 zero
 *    16    4 klen
 *    20    4 vlen
 *    24    8 expire_at  only with KLOG_REC_EXPIRES: ms since the epoch, > 0
 *
 * Segments of version 1 hold no flags (written before expiry existed);
 * version 2 segments may. A record with the flag is read the same way in
 * either.
 *
 * The separate head check exists so that recovery can tell a record cut
 * short by a crash (valid header, bytes missing at the end of the file) from
 * a record whose lengths were damaged (which would otherwise look like a
 * record running past the end and be cut off silently).
 *
 * Decoding is a pure function over a byte range: the engine, a fuzzer and an
 * offline checker share one definition of a valid record.
 */
#ifndef KVS_LOG_RECORD_H
#define KVS_LOG_RECORD_H

#include <stdint.h>
#include <string.h>

#include "core/endian.h"
#include "kvs/slice.h"

#define KLOG_REC_HDR 24     /* the header without an expiry time */
#define KLOG_REC_HDR_MAX 32 /* with one */
#define KLOG_REC_EXPIRES 1u /* flags: an expiry time follows the header */
#define KLOG_MAX_KEY 65535u
#define KLOG_MAX_VALUE (512u << 20)

enum klog_rec_type {
    KLOG_REC_PUT = 1,   /* key now has value */
    KLOG_REC_DEL = 2,   /* key removed (tombstone); vlen 0 */
    KLOG_REC_CLEAR = 3, /* every earlier record is void; klen and vlen 0 */
};

enum klog_rec_status {
    KLOG_REC_OK,       /* header and checksum valid */
    KLOG_REC_SHORT,    /* the range ends inside the header or the record */
    KLOG_REC_BAD_HEAD, /* the header fails its check or holds impossible fields */
    KLOG_REC_BAD_SUM,  /* the header is valid, the record's checksum is not */
};

/* A decoded record; key and val point into the decoded range. */
struct klog_rec {
    unsigned type;
    uint32_t klen;
    uint32_t vlen;
    uint64_t sum;      /* as stored */
    uint64_t len;      /* hlen + klen + vlen */
    uint32_t hlen;     /* KLOG_REC_HDR, or KLOG_REC_HDR_MAX with an expiry time */
    int64_t expire_at; /* 0: none */
    const unsigned char *head;
    const unsigned char *key;
    const unsigned char *val;
};

/* The hash of a key that the index and hint files use. Stable across runs:
   hint files store it. */
uint64_t klog_key_hash(const void *key, size_t len);

/* The length of a record's header: with an expiry time or without. */
static inline uint32_t klog_rec_hlen(int64_t expire_at)
{
    return expire_at ? KLOG_REC_HDR_MAX : KLOG_REC_HDR;
}

/*
 * klog_rec_encode - fill head with the header of a record of type over key
 * and val (val empty for KLOG_REC_DEL, both empty for KLOG_REC_CLEAR),
 * expiring at expire_at (puts only; 0: never). Returns the header's length
 * (klog_rec_hlen()). The caller writes the header, key and val in that
 * order.
 */
uint32_t klog_rec_encode(unsigned char head[KLOG_REC_HDR_MAX], unsigned type, kvs_slice key,
                         kvs_slice val, int64_t expire_at);

/*
 * klog_rec_sum - the checksum of a record whose header is at head and whose
 * key and value are given separately, so that a value can be verified after
 * it was copied out.
 */
uint64_t klog_rec_sum(const unsigned char *head, const void *key, size_t klen, const void *val,
                      size_t vlen);

/*
 * klog_rec_head - decode the header at p, of which avail bytes are readable,
 * without verifying the checksum. On KLOG_REC_OK and on KLOG_REC_SHORT with a
 * complete header, r holds the header's fields (key and val are set only on
 * KLOG_REC_OK).
 */
enum klog_rec_status klog_rec_head(const void *p, size_t avail, struct klog_rec *r);

/* klog_rec_decode - klog_rec_head, then verify the checksum. */
enum klog_rec_status klog_rec_decode(const void *p, size_t avail, struct klog_rec *r);

/* klog_rec_find - the first offset at or after from where a whole valid
   record starts in p[0..len), or len when there is none: where reading can
   go on after damage, or whether anything follows it. Slow (a decode at
   every offset): for damaged files only. */
uint64_t klog_rec_find(const void *p, uint64_t len, uint64_t from);

/* A short phrase for a status, for messages. */
const char *klog_rec_status_str(enum klog_rec_status st);

#endif
