/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest
 * common subsequence of two values, as Redis 7.0's lcsCommand computes
 * and answers it (the same table, the same walk back, so that the
 * matches come in the same order). Run on the connection's worker thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "keyspace.h"
#include "reply.h"
#include "strval.h"
#include "worker.h"

struct lcs_read {
    struct conn *c;
    kvs_slice keys[2];
    kvs_buf vals[2];
    int rc;
};

/* Both values, read at one moment (keyspace.h); a missing key is "". */
static bool read_both(void *ctx)
{
    struct lcs_read *r = ctx;
    for (int i = 0; i < 2; i++) {
        int rc = ks_get(r->c, r->keys[i], &r->vals[i], NULL);
        if (rc == KVS_ENOTFOUND) {
            r->vals[i].len = 0;
            rc = 0;
        }
        r->rc = rc;
        if (rc != 0)
            return false;
    }
    return true;
}

struct range {
    uint32_t a_start, a_end, b_start, b_end;
};

void cmd_lcs(struct conn *c, size_t argc, const kvs_slice *argv)
{
    long long minmatchlen = 0;
    bool getlen = false, getidx = false, withmatchlen = false;
    struct lcs_read r = {.c = c, .keys = {argv[1], argv[2]}};
    uint32_t *lcs = NULL;
    char *result = NULL;
    struct range *ranges = NULL;
    ks_read_many(c, r.keys, 2, 1, read_both, &r);
    if (r.rc != 0) {
        reply_kvs_error(c, r.rc);
        goto out;
    }
    for (size_t j = 3; j < argc; j++) {
        bool more = j + 1 < argc;
        if (slice_is_cstr(argv[j], "idx")) {
            getidx = true;
        } else if (slice_is_cstr(argv[j], "len")) {
            getlen = true;
        } else if (slice_is_cstr(argv[j], "withmatchlen")) {
            withmatchlen = true;
        } else if (slice_is_cstr(argv[j], "minmatchlen") && more) {
            if (slice_to_ll(argv[j + 1], &minmatchlen) != 0) {
                reply_error(c, "ERR value is not an integer or out of range");
                goto out;
            }
            if (minmatchlen < 0)
                minmatchlen = 0;
            j++;
        } else {
            reply_error(c, "ERR syntax error");
            goto out;
        }
    }
    if (getidx && getlen) {
        reply_error(c, "ERR If you want both the length and indexes, please just use IDX.");
        goto out;
    }
    const unsigned char *a = r.vals[0].data, *b = r.vals[1].data;
    if (r.vals[0].len >= UINT32_MAX - 1 || r.vals[1].len >= UINT32_MAX - 1) {
        reply_error(c, "ERR String too long for LCS");
        goto out;
    }
    uint32_t alen = (uint32_t)r.vals[0].len, blen = (uint32_t)r.vals[1].len;
    unsigned long long cells = (unsigned long long)(alen + 1) * (blen + 1);
    if (cells * sizeof(uint32_t) > STRING_MAX_BYTES) {
        reply_error(c, "ERR Insufficient memory, transient memory for LCS exceeds "
                       "proto-max-bulk-len");
        goto out;
    }
    lcs = malloc(cells * sizeof(uint32_t));
    if (!lcs) {
        reply_error(c, "ERR Insufficient memory, failed allocating transient memory for LCS");
        goto out;
    }
#define LCS(A, B) lcs[(B) + (size_t)(A) * (blen + 1)]
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1])
                LCS(i, j) = LCS(i - 1, j - 1) + 1;
            else
                LCS(i, j) = LCS(i - 1, j) > LCS(i, j - 1) ? LCS(i - 1, j) : LCS(i, j - 1);
        }
    }
    uint32_t idx = LCS(alen, blen);
    bool computelcs = getidx || !getlen;
    size_t nranges = 0, cap = 0;
    if (computelcs && !(result = malloc(idx ? idx : 1))) {
        c->flags |= CONN_KILL;
        goto out;
    }
    uint32_t arange_start = alen, arange_end = 0, brange_start = 0, brange_end = 0;
    uint32_t i = alen, j = blen;
    while (computelcs && i > 0 && j > 0) {
        bool emit = false;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = (char)a[i - 1];
            if (arange_start == alen) {
                arange_start = arange_end = i - 1;
                brange_start = brange_end = j - 1;
            } else if (arange_start == i && brange_start == j) {
                arange_start--;
                brange_start--;
            } else {
                emit = true;
            }
            if (arange_start == 0 || brange_start == 0)
                emit = true;
            idx--;
            i--;
            j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1))
                i--;
            else
                j--;
            if (arange_start != alen)
                emit = true;
        }
        uint32_t match_len = arange_end - arange_start + 1;
        if (emit) {
            if (getidx && (minmatchlen == 0 || match_len >= minmatchlen)) {
                if (nranges == cap) {
                    cap = cap ? cap * 2 : 16;
                    struct range *p = realloc(ranges, cap * sizeof(*ranges));
                    if (!p) {
                        c->flags |= CONN_KILL;
                        goto out;
                    }
                    ranges = p;
                }
                ranges[nranges++] =
                    (struct range){arange_start, arange_end, brange_start, brange_end};
            }
            arange_start = alen;
        }
    }
    if (getidx) {
        reply_array(c, 4);
        reply_bulk_str(c, "matches");
        reply_array(c, nranges);
        for (size_t k = 0; k < nranges; k++) {
            const struct range *g = &ranges[k];
            reply_array(c, 2 + withmatchlen);
            reply_array(c, 2);
            reply_int(c, g->a_start);
            reply_int(c, g->a_end);
            reply_array(c, 2);
            reply_int(c, g->b_start);
            reply_int(c, g->b_end);
            if (withmatchlen)
                reply_int(c, (long long)g->a_end - g->a_start + 1);
        }
        reply_bulk_str(c, "len");
        reply_int(c, LCS(alen, blen));
    } else if (getlen) {
        reply_int(c, idx);
    } else {
        reply_bulk(c, result, LCS(alen, blen));
    }
#undef LCS
out:
    free(lcs);
    free(result);
    free(ranges);
    kvs_buf_free(&r.vals[0]);
    kvs_buf_free(&r.vals[1]);
}
