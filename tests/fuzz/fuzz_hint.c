/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the hint-file decoder of the kvs engine
 * (engines/log/hint.h), and for the file names that locate hints and
 * segments (segment.h).
 *
 * Input: byte 0 holds flags, byte 1 says which of the segment's identity
 * (id, sub, size) to get wrong, the rest is a hint file. The segment the
 * hint is checked against is the one its own header names, so that valid
 * hints are reachable; with FIX_MAGIC and FIX_SUM the harness writes the
 * magic, version and trailing checksum so that the fuzzer reaches the
 * entries behind them.
 *
 * A hint the decoder accepts must have the layout hint.h documents, its
 * entries in order inside the segment, and be byte for byte what
 * klog_hint_begin/add/finish write for those entries. A hint checked
 * against another segment than its own must be refused.
 *
 * With NAMES set the rest is a file name instead: klog_file_parse accepts it
 * only if klog_file_name gives it back, and names built from the input's
 * numbers parse back to them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engines/log/hint.h"
#include "engines/log/record.h"
#include "engines/log/segment.h"
#include "fuzz.h"

enum {
    FIX_SUM = 1,   /* write the trailing checksum */
    FIX_MAGIC = 2, /* write the magic and the version */
    NAMES = 4,     /* the input is a file name */
};

static void check_names(const unsigned char *data, size_t len)
{
    char *name = malloc(len + 1);
    CHECK(name != NULL);
    if (len)
        memcpy(name, data, len);
    name[len] = '\0';
    uint64_t id;
    unsigned sub;
    enum klog_file_kind kind;
    if (klog_file_parse(name, &id, &sub, &kind)) {
        CHECK(id <= KLOG_SEG_MAX_ID && sub <= KLOG_SEG_MAX_SUB && kind <= KLOG_FILE_HINT_TMP);
        char again[KLOG_SEG_NAME_LEN];
        klog_file_name(again, id, sub, kind);
        CHECK(strcmp(again, name) == 0);
    }
    free(name);

    if (len >= 13) {
        uint64_t want_id = kvs__get_le64(data) % (KLOG_SEG_MAX_ID + 1);
        unsigned want_sub = kvs__get_le32(data + 8) % (KLOG_SEG_MAX_SUB + 1);
        enum klog_file_kind want_kind = (enum klog_file_kind)(data[12] % 4);
        char built[KLOG_SEG_NAME_LEN];
        klog_file_name(built, want_id, want_sub, want_kind);
        CHECK(klog_file_parse(built, &id, &sub, &kind));
        CHECK(id == want_id && sub == want_sub && kind == want_kind);
    }
}

/* An accepted hint: the documented layout, and what the writer makes. */
static void check_valid(const unsigned char *b, size_t len, uint64_t id, unsigned sub,
                        uint64_t seg_size, const struct klog_hint_view *view)
{
    uint32_t version = kvs__get_le32(b + 8);
    CHECK(version == 1 || version == KLOG_HINT_VERSION);
    size_t entry = version == 1 ? KLOG_HINT_ENTRY_V1 : KLOG_HINT_ENTRY;
    CHECK(view->entry == entry);
    CHECK(len >= KLOG_HINT_HDR + 8 && (len - KLOG_HINT_HDR - 8) % entry == 0);
    CHECK(view->entries == b + KLOG_HINT_HDR);
    CHECK(view->n == (len - KLOG_HINT_HDR - 8) / entry);
    struct klog_hint_buf h = {NULL, 0, 0};
    CHECK(klog_hint_begin(&h, id, sub) == 0);
    uint64_t end = KLOG_SEG_HDR;
    for (size_t i = 0; i < view->n; i++) {
        uint64_t hash;
        uint32_t off, rlen;
        int64_t at;
        klog_hint_entry(view, i, &hash, &off, &rlen, &at);
        CHECK(off >= end && rlen >= KLOG_REC_HDR && (uint64_t)off + rlen <= seg_size);
        CHECK(at >= 0 && (version == KLOG_HINT_VERSION || at == 0));
        end = (uint64_t)off + rlen;
        CHECK(klog_hint_add(&h, hash, off, rlen, at) == 0);
    }
    CHECK(klog_hint_finish(&h, seg_size) == 0);
    /* The current version re-encodes to the same bytes. */
    CHECK(version == 1 || (h.len == len && memcmp(h.data, b, len) == 0));
    klog_hint_buf_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n < 2)
        return 0;
    unsigned flags = in[0], wrong = in[1] & 7;
    size_t len = n - 2;
    if (flags & NAMES) {
        check_names(in + 2, len);
        return 0;
    }
    unsigned char *b = fuzz_dup(in + 2, len);
    if ((flags & FIX_MAGIC) && len >= 12) {
        memcpy(b, "KVSHINT", 8);
        kvs__put_le32(b + 8, KLOG_HINT_VERSION);
    }
    uint64_t id = 0, seg_size = 0;
    unsigned sub = 0;
    if (len >= KLOG_HINT_HDR) {
        sub = kvs__get_le32(b + 12);
        id = kvs__get_le64(b + 16);
        seg_size = kvs__get_le64(b + 24);
    }
    id ^= wrong & 1;
    sub ^= (wrong >> 1) & 1;
    seg_size ^= (wrong >> 2) & 1;
    if ((flags & FIX_SUM) && len >= 8)
        kvs__put_le64(b + len - 8, XXH3_64bits(b, len - 8));

    struct klog_hint_view view;
    const char *bad = klog_hint_parse(b, len, id, sub, seg_size, &view);
    if (bad)
        CHECK(bad[0] != '\0');
    else
        check_valid(b, len, id, sub, seg_size, &view);
    CHECK(bad || wrong == 0);
    free(b);
    return 0;
}
