/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The string commands' effects on the store; see string_ops.h. Each
 * decision runs under its key's lock (store_update), so it only computes:
 * no I/O, no lock. A value read is the caller's buffer, which a decision
 * may grow in place and then write back.
 */
#include "string_ops.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "strval.h"

static kvs_slice value_of(const struct store_rmw *u)
{
    return (kvs_slice){u->value->data, u->value->len};
}

void str_decide_append(void *ctx, struct store_rmw *u)
{
    struct str_append *a = ctx;
    size_t old = u->found ? u->value->len : 0;
    if (a->add.len > STRING_MAX_BYTES - old) {
        a->too_big = true;
        return;
    }
    a->len = old + a->add.len;
    if (!u->found) {
        u->action = STORE_PUT;
        u->put_value = a->add;
        return;
    }
    if (a->add.len == 0)
        return;
    kvs_buf *v = (kvs_buf *)u->value;
    if (kvs_buf_reserve(v, a->len) != 0) {
        a->oom = true;
        return;
    }
    memcpy((char *)v->data + v->len, a->add.data, a->add.len);
    v->len = a->len;
    u->action = STORE_PUT;
    u->put_value = value_of(u);
    u->put_expire_at = u->expire_at;
}

void str_decide_incr(void *ctx, struct store_rmw *u)
{
    struct str_incr *in = ctx;
    long long v = 0;
    if (u->found && slice_to_ll(value_of(u), &v) != 0) {
        in->err = STR_INCR_NOT_INT;
        return;
    }
    if ((in->by < 0 && v < 0 && in->by < LLONG_MIN - v) ||
        (in->by > 0 && v > 0 && in->by > LLONG_MAX - v)) {
        in->err = STR_INCR_OVERFLOW;
        return;
    }
    in->result = v + in->by;
    int n = snprintf(in->text, sizeof(in->text), "%lld", in->result);
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){in->text, (size_t)n};
    u->put_expire_at = u->found ? u->expire_at : 0;
}

void str_decide_setnx(void *ctx, struct store_rmw *u)
{
    if (u->found)
        return;
    u->action = STORE_PUT;
    u->put_value = *(const kvs_slice *)ctx;
}

void str_decide_setrange(void *ctx, struct store_rmw *u)
{
    struct str_setrange *s = ctx;
    size_t old = u->found ? u->value->len : 0;
    if (s->add.len == 0) {
        s->len = old; /* nothing written, nothing created */
        return;
    }
    if (s->offset + s->add.len > STRING_MAX_BYTES) {
        s->too_big = true;
        return;
    }
    size_t len = s->offset + s->add.len > old ? s->offset + s->add.len : old;
    kvs_buf *v = (kvs_buf *)u->value;
    if (!u->found)
        v->len = 0;
    if (kvs_buf_reserve(v, len) != 0) {
        s->oom = true;
        return;
    }
    if (s->offset > v->len)
        memset((char *)v->data + v->len, 0, s->offset - v->len);
    memcpy((char *)v->data + s->offset, s->add.data, s->add.len);
    v->len = len;
    s->len = len;
    u->action = STORE_PUT;
    u->put_value = value_of(u);
    u->put_expire_at = u->found ? u->expire_at : 0;
}

void str_decide_setbit(void *ctx, struct store_rmw *u)
{
    struct str_setbit *s = ctx;
    size_t byte = (size_t)(s->offset >> 3);
    kvs_buf *v = (kvs_buf *)u->value;
    if (!u->found)
        v->len = 0;
    if (byte >= v->len) {
        if (kvs_buf_reserve(v, byte + 1) != 0) {
            s->oom = true;
            return;
        }
        memset((char *)v->data + v->len, 0, byte + 1 - v->len);
        v->len = byte + 1;
    }
    unsigned char *p = (unsigned char *)v->data + byte;
    int bit = 7 - (int)(s->offset & 7);
    s->old = (*p >> bit) & 1;
    *p = (unsigned char)((*p & ~(1u << bit)) | ((unsigned)s->on << bit));
    u->action = STORE_PUT;
    u->put_value = (kvs_slice){v->data, v->len};
    u->put_expire_at = u->found ? u->expire_at : 0;
}

static bool same_key(kvs_slice a, kvs_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

int str_copy(struct store_txn *t, kvs_buf *v, kvs_slice src, kvs_slice dst, bool move, bool replace,
             bool *done)
{
    *done = false;
    int64_t at = 0;
    int rc = store_txn_get(t, src, v, &at);
    if (rc != 0)
        return rc;
    if (same_key(src, dst)) {
        *done = true; /* RENAME k k: nothing to do */
        return 0;
    }
    if (!replace) {
        kvs_buf probe = {0};
        int e = store_txn_get(t, dst, &probe, NULL);
        kvs_buf_free(&probe);
        if (e == 0)
            return 0;
        if (e != KVS_ENOTFOUND)
            return e;
    }
    rc = store_txn_write(t, STORE_SET, dst, (kvs_slice){v->data, v->len}, at);
    if (rc == 0 && move) {
        rc = store_txn_write(t, STORE_DEL, src, (kvs_slice){NULL, 0}, 0);
        rc = rc == STORE_SKIPPED ? 0 : rc;
    }
    *done = rc == 0;
    return rc;
}

int str_msetnx(struct store_txn *t, kvs_buf *scratch, const kvs_slice *kv, size_t npairs, bool *set)
{
    *set = false;
    for (size_t i = 0; i < npairs; i++) {
        int rc = store_txn_get(t, kv[2 * i], scratch, NULL);
        if (rc == 0)
            return 0; /* one exists: none is set */
        if (rc != KVS_ENOTFOUND)
            return rc;
    }
    for (size_t i = 0; i < npairs; i++) {
        int rc = store_txn_write(t, STORE_SET, kv[2 * i], kv[2 * i + 1], 0);
        if (rc != 0)
            return rc;
    }
    *set = true;
    return 0;
}

int str_bitop_named(kvs_slice name)
{
    if (slice_is_cstr(name, "and"))
        return STR_BITOP_AND;
    if (slice_is_cstr(name, "or"))
        return STR_BITOP_OR;
    if (slice_is_cstr(name, "xor"))
        return STR_BITOP_XOR;
    if (slice_is_cstr(name, "not"))
        return STR_BITOP_NOT;
    return -1;
}

int str_bitop(struct store_txn *t, enum str_bitop op, kvs_slice dest, const kvs_slice *srckeys,
              size_t nsrc, size_t *len)
{
    size_t maxlen = 0;
    kvs_buf *src = calloc(nsrc, sizeof(*src));
    kvs_buf res = {0};
    int rc = src ? 0 : KVS_ENOMEM;
    for (size_t i = 0; i < nsrc && rc == 0; i++) {
        rc = store_txn_get(t, srckeys[i], &src[i], NULL);
        if (rc == KVS_ENOTFOUND) {
            src[i].len = 0;
            rc = 0;
        }
        if (src[i].len > maxlen)
            maxlen = src[i].len;
    }
    if (rc == 0 && maxlen && kvs_buf_reserve(&res, maxlen) != 0)
        rc = KVS_ENOMEM;
    if (rc == 0 && maxlen) {
        unsigned char *out = res.data;
        for (size_t j = 0; j < maxlen; j++) {
            unsigned char acc = j < src[0].len ? ((const unsigned char *)src[0].data)[j] : 0;
            if (op == STR_BITOP_NOT)
                acc = (unsigned char)~acc;
            for (size_t i = 1; i < nsrc; i++) {
                unsigned char b = j < src[i].len ? ((const unsigned char *)src[i].data)[j] : 0;
                if (op == STR_BITOP_AND)
                    acc &= b;
                else if (op == STR_BITOP_OR)
                    acc |= b;
                else
                    acc ^= b;
            }
            out[j] = acc;
        }
        res.len = maxlen;
    }
    if (rc == 0) {
        rc = maxlen ? store_txn_write(t, STORE_SET, dest, (kvs_slice){res.data, res.len}, 0)
                    : store_txn_write(t, STORE_DEL, dest, (kvs_slice){NULL, 0}, 0);
        if (rc == STORE_SKIPPED)
            rc = 0;
    }
    for (size_t i = 0; src && i < nsrc; i++)
        kvs_buf_free(&src[i]);
    free(src);
    kvs_buf_free(&res);
    *len = maxlen;
    return rc;
}
