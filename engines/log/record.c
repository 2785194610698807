/* SPDX-License-Identifier: BSD-3-Clause */
/* Records of the kvs engine's log; see record.h for the format. */
#include "record.h"

#include <stdbool.h>
#include <xxhash.h>

uint64_t klog_key_hash(const void *key, size_t len)
{
    return XXH3_64bits(len ? key : "", len);
}

uint64_t klog_rec_sum(const unsigned char *head, const void *key, size_t klen, const void *val,
                      size_t vlen)
{
    /* Key and value live in separate buffers when a record is written and
       when a value is checked after being copied out, so the sum is a chain
       of one-shot hashes rather than one hash over contiguous bytes. */
    uint32_t hlen = head[13] & KLOG_REC_EXPIRES ? KLOG_REC_HDR_MAX : KLOG_REC_HDR;
    uint64_t sum = XXH3_64bits(head + 8, hlen - 8);
    sum = XXH3_64bits_withSeed(klen ? key : "", klen, sum);
    return XXH3_64bits_withSeed(vlen ? val : "", vlen, sum);
}

static uint32_t head_check(const unsigned char *head)
{
    return XXH32(head + 12, KLOG_REC_HDR - 12, 0);
}

uint32_t klog_rec_encode(unsigned char head[KLOG_REC_HDR_MAX], unsigned type, kvs_slice key,
                         kvs_slice val, int64_t expire_at)
{
    memset(head, 0, KLOG_REC_HDR);
    head[12] = (unsigned char)type;
    if (expire_at) {
        head[13] = KLOG_REC_EXPIRES;
        kvs__put_le64(head + KLOG_REC_HDR, (uint64_t)expire_at);
    }
    kvs__put_le32(head + 16, (uint32_t)key.len);
    kvs__put_le32(head + 20, (uint32_t)val.len);
    kvs__put_le32(head + 8, head_check(head));
    kvs__put_le64(head, klog_rec_sum(head, key.data, key.len, val.data, val.len));
    return klog_rec_hlen(expire_at);
}

/* Fields a writer of this format never produces. */
static bool impossible(const struct klog_rec *r, const unsigned char *h)
{
    if ((h[13] & ~KLOG_REC_EXPIRES) || h[14] || h[15])
        return true;
    if ((h[13] & KLOG_REC_EXPIRES) && r->type != KLOG_REC_PUT)
        return true;
    if (r->klen > KLOG_MAX_KEY || r->vlen > KLOG_MAX_VALUE)
        return true;
    switch (r->type) {
    case KLOG_REC_PUT:
        return false;
    case KLOG_REC_DEL:
        return r->vlen != 0;
    case KLOG_REC_CLEAR:
        return r->klen != 0 || r->vlen != 0;
    default:
        return true;
    }
}

enum klog_rec_status klog_rec_head(const void *p, size_t avail, struct klog_rec *r)
{
    const unsigned char *h = p;
    if (avail < KLOG_REC_HDR)
        return KLOG_REC_SHORT;
    r->head = h;
    r->sum = kvs__get_le64(h);
    r->type = h[12];
    r->klen = kvs__get_le32(h + 16);
    r->vlen = kvs__get_le32(h + 20);
    r->hlen = h[13] & KLOG_REC_EXPIRES ? KLOG_REC_HDR_MAX : KLOG_REC_HDR;
    r->len = (uint64_t)r->hlen + r->klen + r->vlen;
    r->expire_at = 0;
    r->key = r->val = NULL;
    if (kvs__get_le32(h + 8) != head_check(h) || impossible(r, h))
        return KLOG_REC_BAD_HEAD;
    if (r->len > avail)
        return KLOG_REC_SHORT;
    if (r->hlen > KLOG_REC_HDR) {
        /* Not covered by the head check: the checksum covers it. A time
           that is not positive no writer produces. */
        uint64_t at = kvs__get_le64(h + KLOG_REC_HDR);
        if (at == 0 || at > INT64_MAX)
            return KLOG_REC_BAD_HEAD;
        r->expire_at = (int64_t)at;
    }
    r->key = h + r->hlen;
    r->val = r->key + r->klen;
    return KLOG_REC_OK;
}

enum klog_rec_status klog_rec_decode(const void *p, size_t avail, struct klog_rec *r)
{
    enum klog_rec_status st = klog_rec_head(p, avail, r);
    if (st != KLOG_REC_OK)
        return st;
    if (klog_rec_sum(r->head, r->key, r->klen, r->val, r->vlen) != r->sum)
        return KLOG_REC_BAD_SUM;
    return KLOG_REC_OK;
}

const char *klog_rec_status_str(enum klog_rec_status st)
{
    switch (st) {
    case KLOG_REC_OK:
        return "valid";
    case KLOG_REC_SHORT:
        return "cut short";
    case KLOG_REC_BAD_HEAD:
        return "bad header";
    case KLOG_REC_BAD_SUM:
        return "checksum mismatch";
    }
    return "unknown";
}

uint64_t klog_rec_find(const void *p, uint64_t len, uint64_t from)
{
    for (uint64_t at = from; at < len; at++) {
        struct klog_rec rec;
        if (klog_rec_decode((const unsigned char *)p + at, len - at, &rec) == KLOG_REC_OK)
            return at;
    }
    return len;
}
