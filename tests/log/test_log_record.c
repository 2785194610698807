/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's on-disk formats as pure functions: records, segment
 * headers, hint files and file names. Every truncation and every flipped
 * byte must be told apart from a valid encoding.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <xxhash.h>

#include "engines/log/hint.h"
#include "engines/log/record.h"
#include "engines/log/segment.h"
#include "kvs/error.h"

static size_t encode_ex(unsigned char *out, unsigned type, const char *key, size_t klen,
                        const char *val, size_t vlen, int64_t expire_at)
{
    uint32_t hlen =
        klog_rec_encode(out, type, kvs_slice_of(key, klen), kvs_slice_of(val, vlen), expire_at);
    memcpy(out + hlen, key, klen);
    memcpy(out + hlen + klen, val, vlen);
    return hlen + klen + vlen;
}

static size_t encode(unsigned char *out, unsigned type, const char *key, size_t klen,
                     const char *val, size_t vlen)
{
    return encode_ex(out, type, key, klen, val, vlen, 0);
}

/* A put with an expiry time: 8 more bytes of header, carried through
   decoding, covered by the checksum; only puts may have one. */
Test(log_record, expiry_time)
{
    unsigned char buf[128];
    int64_t at = INT64_C(1767225600123);
    size_t len = encode_ex(buf, KLOG_REC_PUT, "key", 3, "value", 5, at);
    cr_assert_eq(len, KLOG_REC_HDR_MAX + 8);
    struct klog_rec r;
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_OK);
    cr_assert_eq(r.expire_at, at);
    cr_assert_eq(r.hlen, KLOG_REC_HDR_MAX);
    cr_assert_eq(memcmp(r.key, "key", 3), 0);
    cr_assert_eq(memcmp(r.val, "value", 5), 0);
    cr_assert_eq(klog_rec_sum(r.head, r.key, r.klen, "value", 5), r.sum);
    for (size_t n = 0; n < len; n++)
        cr_assert_eq(klog_rec_decode(buf, n, &r), KLOG_REC_SHORT, "cut at %zu", n);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        cr_assert_neq(klog_rec_decode(buf, len, &r), KLOG_REC_OK, "byte %zu", i);
        buf[i] ^= 0x10;
    }
    /* Without a time the record is the old one, byte for byte. */
    unsigned char plain[64];
    size_t plen = encode(plain, KLOG_REC_PUT, "key", 3, "value", 5);
    cr_assert_eq(klog_rec_decode(plain, plen, &r), KLOG_REC_OK);
    cr_assert_eq(r.expire_at, 0);
    cr_assert_eq(plen, KLOG_REC_HDR + 8);
}

Test(log_record, round_trip)
{
    unsigned char buf[128];
    size_t len = encode(buf, KLOG_REC_PUT, "k\0y", 3, "va\0lue", 6);
    struct klog_rec r;
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_OK);
    cr_assert_eq(r.type, KLOG_REC_PUT);
    cr_assert_eq(r.klen, 3);
    cr_assert_eq(r.vlen, 6);
    cr_assert_eq(r.len, len);
    cr_assert_eq(memcmp(r.key, "k\0y", 3), 0);
    cr_assert_eq(memcmp(r.val, "va\0lue", 6), 0);
    /* Trailing bytes belong to the next record. */
    cr_assert_eq(klog_rec_decode(buf, sizeof(buf), &r), KLOG_REC_OK);
    cr_assert_eq(r.len, len);
    /* The sum checks a value copied elsewhere too. */
    cr_assert_eq(klog_rec_sum(r.head, r.key, r.klen, "va\0lue", 6), r.sum);
    cr_assert_neq(klog_rec_sum(r.head, r.key, r.klen, "va\0luf", 6), r.sum);
}

Test(log_record, empty_key_value_tombstone_clear)
{
    unsigned char buf[64];
    struct klog_rec r;
    size_t len = encode(buf, KLOG_REC_PUT, "", 0, "", 0);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_OK);
    cr_assert_eq(r.len, KLOG_REC_HDR);
    len = encode(buf, KLOG_REC_DEL, "gone", 4, "", 0);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_OK);
    cr_assert_eq(r.type, KLOG_REC_DEL);
    len = encode(buf, KLOG_REC_CLEAR, "", 0, "", 0);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_OK);
    cr_assert_eq(r.type, KLOG_REC_CLEAR);
}

Test(log_record, every_truncation_is_short)
{
    unsigned char buf[64];
    size_t len = encode(buf, KLOG_REC_PUT, "key", 3, "value", 5);
    struct klog_rec r;
    for (size_t n = 0; n < len; n++)
        cr_assert_eq(klog_rec_decode(buf, n, &r), KLOG_REC_SHORT, "cut at %zu", n);
}

/* A damaged length must never pass for a record cut short: that is what
   the header check is for. */
Test(log_record, every_flipped_byte_is_caught)
{
    unsigned char buf[64], bad[64];
    size_t len = encode(buf, KLOG_REC_PUT, "key", 3, "value", 5);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, buf, len);
            bad[i] ^= (unsigned char)(1u << bit);
            struct klog_rec r;
            enum klog_rec_status st = klog_rec_decode(bad, len, &r);
            if (i < KLOG_REC_HDR && i >= 8)
                cr_assert_eq(st, KLOG_REC_BAD_HEAD, "byte %zu bit %d: %s", i, bit,
                             klog_rec_status_str(st));
            else
                cr_assert_eq(st, KLOG_REC_BAD_SUM, "byte %zu bit %d: %s", i, bit,
                             klog_rec_status_str(st));
        }
    }
}

Test(log_record, impossible_headers_rejected)
{
    unsigned char buf[64];
    struct klog_rec r;
    /* A tombstone with a value, a clear with a key, an unknown type. */
    size_t len = encode(buf, KLOG_REC_DEL, "k", 1, "v", 1);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_BAD_HEAD);
    len = encode(buf, KLOG_REC_CLEAR, "k", 1, "", 0);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_BAD_HEAD);
    len = encode(buf, 9, "k", 1, "", 0);
    cr_assert_eq(klog_rec_decode(buf, len, &r), KLOG_REC_BAD_HEAD);
    /* All zeros, what a power loss can leave. */
    memset(buf, 0, sizeof(buf));
    cr_assert_eq(klog_rec_decode(buf, sizeof(buf), &r), KLOG_REC_BAD_HEAD);
}

Test(log_record, segment_header)
{
    unsigned char h[KLOG_SEG_HDR];
    const char *what = NULL;
    klog_seg_head_encode(h, 42, 7);
    cr_assert_eq(klog_seg_head_check(h, sizeof(h), 42, 7, &what), 0);
    cr_assert_eq(klog_seg_head_check(h, sizeof(h), 43, 7, &what), KVS_ECORRUPT);
    cr_assert_eq(klog_seg_head_check(h, sizeof(h) - 1, 42, 7, &what), KVS_ECORRUPT);
    for (size_t i = 0; i < sizeof(h); i++) {
        unsigned char bad[KLOG_SEG_HDR];
        memcpy(bad, h, sizeof(h));
        bad[i] ^= 0x10;
        cr_assert_neq(klog_seg_head_check(bad, sizeof(bad), 42, 7, &what), 0, "byte %zu", i);
    }
}

Test(log_record, file_names)
{
    char name[KLOG_SEG_NAME_LEN];
    uint64_t id;
    unsigned sub;
    enum klog_file_kind kind;
    klog_file_name(name, 9999999999ull, 9999, KLOG_FILE_HINT_TMP);
    cr_assert_str_eq(name, "seg-9999999999-9999.hint.tmp");
    cr_assert(klog_file_parse(name, &id, &sub, &kind));
    cr_assert_eq(id, 9999999999ull);
    cr_assert_eq(sub, 9999);
    cr_assert_eq(kind, KLOG_FILE_HINT_TMP);
    klog_file_name(name, 12, 0, KLOG_FILE_SEG);
    cr_assert_str_eq(name, "seg-0000000012-0000.log");
    cr_assert(klog_file_parse(name, &id, &sub, &kind));
    cr_assert_eq(kind, KLOG_FILE_SEG);
    static const char *const others[] = {
        "ENGINE",
        "seg-1-0.log",
        "seg-0000000012-0000.log~",
        "seg-00000000x2-0000.log",
        "seg-0000000012-0000.LOG",
        "seg-0000000012_0000.log",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        cr_assert_not(klog_file_parse(others[i], &id, &sub, &kind), "%s", others[i]);
}

Test(log_record, hint_round_trip_and_damage)
{
    struct klog_hint_buf h = {0};
    cr_assert_eq(klog_hint_begin(&h, 5, 2), 0);
    cr_assert_eq(klog_hint_add(&h, 0x1111, 32, 40, 0), 0);
    cr_assert_eq(klog_hint_add(&h, 0x2222, 72, 30, 1767225600000), 0);
    cr_assert_eq(klog_hint_finish(&h, 102), 0);
    struct klog_hint_view v;
    cr_assert_null(klog_hint_parse(h.data, h.len, 5, 2, 102, &v));
    cr_assert_eq(v.n, 2);
    uint64_t hash;
    uint32_t off, len;
    int64_t at;
    klog_hint_entry(&v, 1, &hash, &off, &len, &at);
    cr_assert_eq(hash, 0x2222);
    cr_assert_eq(off, 72);
    cr_assert_eq(len, 30);
    cr_assert_eq(at, 1767225600000);
    /* Another segment, another size, any cut, any flipped byte. */
    cr_assert_not_null(klog_hint_parse(h.data, h.len, 5, 3, 102, &v));
    cr_assert_not_null(klog_hint_parse(h.data, h.len, 5, 2, 103, &v));
    for (size_t n = 0; n < h.len; n++)
        cr_assert_not_null(klog_hint_parse(h.data, n, 5, 2, 102, &v), "cut at %zu", n);
    for (size_t i = 0; i < h.len; i++) {
        h.data[i] ^= 4;
        cr_assert_not_null(klog_hint_parse(h.data, h.len, 5, 2, 102, &v), "byte %zu", i);
        h.data[i] ^= 4;
    }
    klog_hint_buf_free(&h);

    /* Entries outside the segment or overlapping are refused even with a
       valid checksum. */
    cr_assert_eq(klog_hint_begin(&h, 5, 2), 0);
    cr_assert_eq(klog_hint_add(&h, 1, 32, 40, 0), 0);
    cr_assert_eq(klog_hint_add(&h, 2, 60, 30, 0), 0);
    cr_assert_eq(klog_hint_finish(&h, 102), 0);
    cr_assert_not_null(klog_hint_parse(h.data, h.len, 5, 2, 102, &v));
    klog_hint_buf_free(&h);
}

/* A hint of version 1 (16-byte entries, before expiry) is still read, its
   entries without an expiry time. */
Test(log_record, hint_version_1_read)
{
    unsigned char b[KLOG_HINT_HDR + KLOG_HINT_ENTRY_V1 + 8];
    memset(b, 0, sizeof(b));
    memcpy(b, "KVSHINT", 8);
    kvs__put_le32(b + 8, 1);
    kvs__put_le32(b + 12, 2);
    kvs__put_le64(b + 16, 5);
    kvs__put_le64(b + 24, 102);
    kvs__put_le64(b + KLOG_HINT_HDR, 0x3333);
    kvs__put_le32(b + KLOG_HINT_HDR + 8, 32);
    kvs__put_le32(b + KLOG_HINT_HDR + 12, 40);
    kvs__put_le64(b + sizeof(b) - 8, XXH3_64bits(b, sizeof(b) - 8));
    struct klog_hint_view v;
    cr_assert_null(klog_hint_parse(b, sizeof(b), 5, 2, 102, &v));
    cr_assert_eq(v.n, 1);
    uint64_t hash;
    uint32_t off, len;
    int64_t at = -1;
    klog_hint_entry(&v, 0, &hash, &off, &len, &at);
    cr_assert_eq(hash, 0x3333);
    cr_assert_eq(off, 32);
    cr_assert_eq(len, 40);
    cr_assert_eq(at, 0);
}
