/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the record decoder of the kvs engine
 * (engines/log/record.h) and the segment header check (segment.h).
 *
 * Input: byte 0 holds flags, the rest is the bytes of a segment. With
 * FIX_HEAD/FIX_SUM the harness writes the correct header check / record
 * checksum into each record before decoding it, and with FIX_SEG the
 * segment header's checksum, so that the fuzzer reaches the code behind the
 * checksums instead of spending its time guessing hashes.
 *
 * The records are walked as recovery does (decode, advance by the record's
 * length, stop at the first bad one). For each: klog_rec_head and
 * klog_rec_decode agree; the fields are the header's bytes; a valid header
 * re-encodes to the same bytes; a record decodes the same from an
 * exact-size copy, and any shorter copy is "cut short" (a bad header stays
 * bad); a value copied out verifies against the stored checksum.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engines/log/record.h"
#include "engines/log/segment.h"
#include "fuzz.h"
#include "kvs/error.h"

enum {
    FIX_HEAD = 1, /* write each record's header check */
    FIX_SUM = 2,  /* write each complete record's checksum */
    SEG_HEAD = 4, /* the bytes start with a segment header */
    FIX_SEG = 8,  /* write the segment header's checksum */
};

static void fixup(unsigned char *p, size_t avail, unsigned flags)
{
    if (avail < KLOG_REC_HDR)
        return;
    if (flags & FIX_HEAD)
        kvs__put_le32(p + 8, XXH32(p + 12, KLOG_REC_HDR - 12, 0));
    uint64_t klen = kvs__get_le32(p + 16), vlen = kvs__get_le32(p + 20);
    uint64_t hl = p[13] & KLOG_REC_EXPIRES ? KLOG_REC_HDR_MAX : KLOG_REC_HDR;
    if ((flags & FIX_SUM) && hl + klen + vlen <= avail)
        kvs__put_le64(p, klog_rec_sum(p, p + hl, klen, p + hl + klen, vlen));
}

static enum klog_rec_status decode_copy(const unsigned char *p, size_t n, struct klog_rec *r)
{
    unsigned char *copy = fuzz_dup(p, n);
    enum klog_rec_status st = klog_rec_decode(copy, n, r);
    free(copy);
    return st;
}

static enum klog_rec_status check_record(const unsigned char *p, size_t avail, struct klog_rec *out)
{
    struct klog_rec h, d, c;
    memset(&h, 0xa5, sizeof(h));
    enum klog_rec_status sh = klog_rec_head(p, avail, &h);
    enum klog_rec_status st = klog_rec_decode(p, avail, &d);
    CHECK(sh >= KLOG_REC_OK && sh <= KLOG_REC_BAD_SUM && sh != KLOG_REC_BAD_SUM);
    CHECK(st >= KLOG_REC_OK && st <= KLOG_REC_BAD_SUM);
    CHECK(sh == KLOG_REC_OK ? (st == KLOG_REC_OK || st == KLOG_REC_BAD_SUM) : st == sh);
    CHECK(klog_rec_status_str(st) != NULL);
    if (avail < KLOG_REC_HDR) {
        CHECK(sh == KLOG_REC_SHORT);
        return st;
    }

    /* The header's fields, as the format defines them. */
    CHECK(h.head == p && h.sum == kvs__get_le64(p) && h.type == p[12]);
    CHECK(h.klen == kvs__get_le32(p + 16) && h.vlen == kvs__get_le32(p + 20));
    CHECK(h.hlen == (p[13] & KLOG_REC_EXPIRES ? KLOG_REC_HDR_MAX : KLOG_REC_HDR));
    CHECK(h.len == (uint64_t)h.hlen + h.klen + h.vlen);

    if (sh == KLOG_REC_BAD_HEAD) {
        /* Decided by the header alone, or by an expiry time no writer
           produces, once the whole record is there. */
        CHECK(decode_copy(p, KLOG_REC_HDR, &c) == KLOG_REC_BAD_HEAD ||
              (h.hlen == KLOG_REC_HDR_MAX && h.len <= avail &&
               decode_copy(p, (size_t)h.len, &c) == KLOG_REC_BAD_HEAD));
        return st;
    }
    if (sh == KLOG_REC_SHORT) {
        CHECK(h.len > avail && h.key == NULL && h.val == NULL);
        CHECK(decode_copy(p, KLOG_REC_HDR, &c) == KLOG_REC_SHORT);
        return st;
    }

    /* A valid header: fields a writer could have produced. */
    CHECK(h.len <= avail && h.key == p + h.hlen && h.val == h.key + h.klen);
    CHECK(h.klen <= KLOG_MAX_KEY && h.vlen <= KLOG_MAX_VALUE);
    CHECK((p[13] == 0 || (p[13] == KLOG_REC_EXPIRES && h.type == KLOG_REC_PUT)) && p[14] == 0 &&
          p[15] == 0);
    CHECK(h.hlen == KLOG_REC_HDR
              ? h.expire_at == 0
              : h.expire_at > 0 && (uint64_t)h.expire_at == kvs__get_le64(p + KLOG_REC_HDR));
    CHECK(h.type == KLOG_REC_PUT || (h.type == KLOG_REC_DEL && h.vlen == 0) ||
          (h.type == KLOG_REC_CLEAR && h.klen == 0 && h.vlen == 0));
    unsigned char enc[KLOG_REC_HDR_MAX];
    CHECK(klog_rec_encode(enc, h.type, kvs_slice_of(h.key, h.klen), kvs_slice_of(h.val, h.vlen),
                          h.expire_at) == h.hlen);
    CHECK(memcmp(enc + 8, p + 8, h.hlen - 8) == 0);
    CHECK((memcmp(enc, p, 8) == 0) == (st == KLOG_REC_OK));

    /* Exactly its own bytes are needed, no more and no fewer. */
    CHECK(decode_copy(p, (size_t)h.len, &c) == st && c.len == h.len);
    if (h.len > KLOG_REC_HDR) {
        CHECK(decode_copy(p, (size_t)h.len - 1, &c) == KLOG_REC_SHORT);
        CHECK(decode_copy(p, KLOG_REC_HDR, &c) == KLOG_REC_SHORT);
    }
    /* A value copied out verifies as the engine's get does. */
    unsigned char *val = fuzz_dup(h.val, h.vlen);
    CHECK((klog_rec_sum(h.head, h.key, h.klen, val, h.vlen) == h.sum) == (st == KLOG_REC_OK));
    free(val);
    *out = h;
    return st;
}

/* Check the segment header at p (len bytes); returns the records' offset. */
static size_t check_seg_head(unsigned char *p, size_t len, unsigned flags)
{
    const char *what = NULL;
    if (len < KLOG_SEG_HDR) {
        CHECK(klog_seg_head_check(p, len, 0, 0, &what) == KVS_ECORRUPT && what);
        return len;
    }
    if (flags & FIX_SEG)
        kvs__put_le32(p + 28, XXH32(p, 28, 0));
    uint64_t id = kvs__get_le64(p + 16);
    unsigned sub = kvs__get_le32(p + 12);
    unsigned char *copy = fuzz_dup(p, KLOG_SEG_HDR);
    int rc = klog_seg_head_check(copy, KLOG_SEG_HDR, id, sub, &what);
    CHECK(rc == 0 || ((rc == KVS_ECORRUPT || rc == KVS_EVERSION) && what != NULL));
    if (rc == 0) {
        CHECK(memcmp(p, "KVSSEG\0\0", 8) == 0 && kvs__get_le32(p + 8) >= KLOG_SEG_VERSION_MIN &&
              kvs__get_le32(p + 8) <= KLOG_SEG_VERSION);
        CHECK(kvs__get_le32(p + 28) == XXH32(p, 28, 0));
        CHECK(klog_seg_head_check(copy, KLOG_SEG_HDR, id ^ 1, sub, &what) == KVS_ECORRUPT);
        CHECK(klog_seg_head_check(copy, KLOG_SEG_HDR, id, sub ^ 1, &what) == KVS_ECORRUPT);
        /* Bytes 24..27 are documented as zero but only the checksum covers
           them; with them zero, the header is exactly what the writer makes. */
        if (kvs__get_le32(p + 24) == 0 && kvs__get_le32(p + 8) == KLOG_SEG_VERSION) {
            unsigned char enc[KLOG_SEG_HDR];
            klog_seg_head_encode(enc, id, sub);
            CHECK(memcmp(enc, p, KLOG_SEG_HDR) == 0);
        }
    }
    free(copy);
    return KLOG_SEG_HDR;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n < 1)
        return 0;
    unsigned flags = in[0];
    size_t len = n - 1;
    unsigned char *buf = fuzz_dup(in + 1, len);
    size_t off = flags & SEG_HEAD ? check_seg_head(buf, len, flags) : 0;
    for (;;) {
        if (flags & (FIX_HEAD | FIX_SUM))
            fixup(buf + off, len - off, flags);
        struct klog_rec rec;
        if (check_record(buf + off, len - off, &rec) != KLOG_REC_OK)
            break;
        CHECK(rec.len > 0 && rec.len <= len - off);
        off += (size_t)rec.len;
    }
    free(buf);
    return 0;
}
