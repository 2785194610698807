/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "lmdb" engine's layout in LMDB's main database (lmdb_internal.h):
 * the stored forms of keys and values, applying one write inside a
 * transaction with its effect on the expiry counts, scanning in hash
 * order, and converting stores of earlier layouts.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "lmdb_internal.h"

/* Keys, and bytes of values, converted per write transaction when opening
   a store of an earlier layout. */
#define CONVERT_KEYS 4096
#define CONVERT_BYTES (64u << 20)

/* The meta record holding the expiry counts: u64 keys, u64 low and u64 high
   half of the sum of their times, little-endian. */
static const unsigned char expiry_meta[] = {LMDB_META_TAG, 'e', 'x', 'p', 'i', 'r', 'y'};
#define EXPIRY_META_LEN 24

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- keys and values ---- */

MDB_val kvs__lmdb_key(unsigned char *buf, kvs_slice key)
{
    buf[0] = LMDB_KEY_TAG;
    put_be64(buf + 1, XXH3_64bits(key.data, key.len));
    if (key.len)
        memcpy(buf + LMDB_KEY_HEAD, key.data, key.len);
    MDB_val k = {key.len + LMDB_KEY_HEAD, buf};
    return k;
}

/*
 * The order of LMDB's default comparison (mdb_cmp_memn: memcmp over the
 * shorter length, then the shorter key first), reached sooner: the tag
 * and the hash, which decide nearly every comparison of a lookup, are
 * compared as one byte and one 64-bit number instead of through memcmp,
 * which was 6% of the server's CPU under GET. Being the same order, it
 * reads and writes the same files as the default: a program that opens
 * the store without it (mdb_stat, mdb_dump, an older kvs) agrees.
 */
int kvs__lmdb_key_cmp(const MDB_val *a, const MDB_val *b)
{
    const unsigned char *p = a->mv_data, *q = b->mv_data;
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    if (n >= LMDB_KEY_HEAD) {
        if (p[0] != q[0])
            return p[0] < q[0] ? -1 : 1;
        uint64_t x, y;
        memcpy(&x, p + 1, 8);
        memcpy(&y, q + 1, 8);
        x = be64toh(x);
        y = be64toh(y);
        if (x != y)
            return x < y ? -1 : 1;
        p += LMDB_KEY_HEAD;
        q += LMDB_KEY_HEAD;
        n -= LMDB_KEY_HEAD;
    }
    int d = n ? memcmp(p, q, n) : 0;
    if (d != 0)
        return d;
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* Is k a user key, and which hash does it carry? */
static bool user_key(const MDB_val *k, uint64_t *hash)
{
    const unsigned char *p = k->mv_data;
    if (k->mv_size < LMDB_KEY_HEAD || p[0] != LMDB_KEY_TAG)
        return false;
    *hash = get_be64(p + 1);
    return true;
}

int kvs__lmdb_val_parse(const MDB_val *v, kvs_slice *value, int64_t *expire_at)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 1 || (p[0] & ~LMDB_VAL_EXPIRES))
        return KVS_ECORRUPT;
    size_t head = 1;
    *expire_at = 0;
    if (p[0] & LMDB_VAL_EXPIRES) {
        if (v->mv_size < LMDB_VAL_HEAD_MAX)
            return KVS_ECORRUPT;
        uint64_t at = get_le64(p + 1);
        if (at == 0 || at > INT64_MAX)
            return KVS_ECORRUPT;
        *expire_at = (int64_t)at;
        head = LMDB_VAL_HEAD_MAX;
    }
    *value = kvs_slice_of(p + head, v->mv_size - head);
    return 0;
}

/* The expiry time stored under key in txn: 0 with *found false when the
   key is absent. Returns an MDB_* code (MDB_CORRUPTED for a bad value). */
static int stored_expiry(struct lmdb_db *db, MDB_txn *txn, MDB_val key, bool *found,
                         int64_t *expire_at)
{
    MDB_val v;
    kvs_slice bare;
    *found = false;
    *expire_at = 0;
    int mrc = mdb_get(txn, db->dbi, &key, &v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return mrc;
    *found = true;
    return kvs__lmdb_val_parse(&v, &bare, expire_at) == 0 ? 0 : MDB_CORRUPTED;
}

static void count(struct lmdb_counts *cnt, int64_t expire_at, int sign)
{
    if (!expire_at)
        return;
    cnt->expires += sign;
    cnt->sum += sign * (__int128)expire_at;
}

/* Store a bare value with its header, written in place (MDB_RESERVE). */
static int put_value(struct lmdb_db *db, MDB_txn *txn, MDB_val key, MDB_val val, int64_t expire_at)
{
    size_t head = expire_at ? LMDB_VAL_HEAD_MAX : 1;
    MDB_val v = {head + val.mv_size, NULL};
    int mrc = mdb_put(txn, db->dbi, &key, &v, MDB_RESERVE);
    if (mrc != 0)
        return mrc;
    unsigned char *p = v.mv_data;
    p[0] = expire_at ? LMDB_VAL_EXPIRES : 0;
    if (expire_at)
        put_le64(p + 1, (uint64_t)expire_at);
    if (val.mv_size)
        memcpy(p + head, val.mv_data, val.mv_size);
    return 0;
}

int kvs__lmdb_apply(struct lmdb_db *db, MDB_txn *txn, const struct lmdb_write *w, int *result,
                    struct lmdb_counts *cnt)
{
    *result = 0;
    bool found;
    int64_t old;
    int mrc = 0;
    switch (w->op) {
    case LMDB_PUT:
        mrc = stored_expiry(db, txn, w->key, &found, &old);
        if (mrc == 0)
            mrc = put_value(db, txn, w->key, w->val, w->expire_at);
        if (mrc == 0) {
            count(cnt, old, -1);
            count(cnt, w->expire_at, 1);
        }
        return mrc;
    case LMDB_DEL:
    case LMDB_EXPIRE:
        mrc = stored_expiry(db, txn, w->key, &found, &old);
        if (mrc != 0)
            return mrc;
        if (!found || (w->op == LMDB_EXPIRE && (!old || old > w->expire_at))) {
            *result = KVS_ENOTFOUND;
            return 0;
        }
        mrc = mdb_del(txn, db->dbi, (MDB_val *)&w->key, NULL);
        if (mrc == 0)
            count(cnt, old, -1);
        return mrc;
    case LMDB_DROP:
        mrc = mdb_drop(txn, db->dbi, 0);
        if (mrc == 0)
            *cnt = (struct lmdb_counts){.reset = true};
        return mrc;
    case LMDB_RAW_DEL:
        mrc = mdb_del(txn, db->dbi, (MDB_val *)&w->key, NULL);
        if (mrc == MDB_NOTFOUND) {
            *result = KVS_ENOTFOUND;
            mrc = 0;
        }
        return mrc;
    }
    return MDB_INVALID;
}

int kvs__lmdb_counts_store(struct lmdb_db *db, MDB_txn *txn, const struct lmdb_counts *cnt)
{
    if (!cnt->reset && cnt->expires == 0 && cnt->sum == 0)
        return 0;
    uint64_t n = (cnt->reset ? 0 : db->expires) + (uint64_t)cnt->expires;
    unsigned __int128 sum = (cnt->reset ? 0 : db->expire_sum) + (unsigned __int128)cnt->sum;
    MDB_val k = {sizeof(expiry_meta), (void *)expiry_meta};
    if (n == 0) {
        /* No record is zero: a store without expiry times holds none. */
        int mrc = mdb_del(txn, db->dbi, &k, NULL);
        return mrc == MDB_NOTFOUND ? 0 : mrc;
    }
    unsigned char rec[EXPIRY_META_LEN];
    put_le64(rec, n);
    put_le64(rec + 8, (uint64_t)sum);
    put_le64(rec + 16, (uint64_t)(sum >> 64));
    MDB_val v = {sizeof(rec), rec};
    return mdb_put(txn, db->dbi, &k, &v, 0);
}

int kvs__lmdb_meta_records(struct lmdb_db *db, MDB_txn *txn, size_t *n)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, db->dbi, &cur);
    if (mrc != 0)
        return mrc;
    unsigned char tag = LMDB_META_TAG;
    MDB_val k = {1, &tag}, v;
    *n = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && ((const unsigned char *)k.mv_data)[0] == LMDB_META_TAG;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        (*n)++;
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* Read the expiry counts into the handle (open only). */
static int counts_load(struct lmdb_db *db)
{
    MDB_txn *txn;
    int rc = kvs__lmdb_read_begin(db, &txn);
    if (rc != 0)
        return rc;
    MDB_val k = {sizeof(expiry_meta), (void *)expiry_meta}, v;
    int mrc = mdb_get(txn, db->dbi, &k, &v);
    if (mrc == 0 && v.mv_size == EXPIRY_META_LEN) {
        const unsigned char *p = v.mv_data;
        db->expires = get_le64(p);
        db->expire_sum = (unsigned __int128)get_le64(p + 16) << 64 | get_le64(p + 8);
    } else if (mrc == 0) {
        mrc = MDB_CORRUPTED;
    }
    kvs__lmdb_read_end(db, txn);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kvs__lmdb_err(mrc);
}

/* ---- scanning ---- */

/* A read transaction and a cursor on the main database in it; the caller
   closes the cursor and ends the transaction with kvs__lmdb_read_end(). */
static int cursor_begin(struct lmdb_db *db, MDB_txn **txn, MDB_cursor **cur)
{
    int rc = kvs__lmdb_read_begin(db, txn);
    if (rc != 0)
        return rc;
    int mrc = mdb_cursor_open(*txn, db->dbi, cur);
    if (mrc != 0) {
        kvs__lmdb_read_end(db, *txn);
        return kvs__lmdb_err(mrc);
    }
    return 0;
}

/*
 * A step starts at the first key whose hash is at least the cursor and
 * takes count keys, then every further key with the same hash as the last
 * one, so that the next cursor, that hash plus one, skips none. Keys the
 * flags leave out (expired, or not) count a tenth each, so that a step
 * over many of them stays short. It runs in one read transaction: a
 * snapshot, which writers do not wait for, so each key comes with the
 * value it had in that snapshot.
 */
int kvs__lmdb_scan(struct kvs_db *base, uint64_t cursor, size_t count, unsigned flags,
                   kvs_scan_fn fn, void *ctx, uint64_t *next)
{
    struct lmdb_db *db = (struct lmdb_db *)base;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = cursor_begin(db, &txn, &cur);
    if (rc != 0)
        return rc;
    int64_t now = kvs_now_ms();
    int mrc;
    unsigned char start[LMDB_KEY_HEAD];
    start[0] = LMDB_KEY_TAG;
    put_be64(start + 1, cursor);
    MDB_val k = {sizeof(start), start}, v;
    size_t seen = 0; /* in tenths */
    uint64_t hash = 0, end = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t h;
        if (!user_key(&k, &h))
            break; /* past the user keys */
        if (seen >= count * 10 && h != hash) {
            end = hash + 1; /* 0 if hash was the largest: then the pass is over */
            break;
        }
        hash = h;
        kvs_slice val;
        int64_t at;
        if (kvs__lmdb_val_parse(&v, &val, &at) != 0) {
            rc = KVS_ECORRUPT;
            break;
        }
        bool expired = at && at <= now;
        if (expired != !!(flags & KVS_SCAN_EXPIRED)) {
            seen++;
            continue;
        }
        seen += 10;
        kvs_slice key =
            kvs_slice_of((const char *)k.mv_data + LMDB_KEY_HEAD, k.mv_size - LMDB_KEY_HEAD);
        rc = fn(ctx, key, (flags & KVS_SCAN_VALUES) ? &val : NULL, at);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    kvs__lmdb_read_end(db, txn);
    if (rc != 0)
        return rc;
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return kvs__lmdb_err(mrc);
    *next = end;
    return 0;
}

/* ---- converting earlier layouts ---- */

/* Is k a key of an earlier layout; where does the user key start in it? */
static size_t old_key_head(const MDB_val *k)
{
    const unsigned char *p = k->mv_data;
    if (k->mv_size >= 1 && p[0] == LMDB_V1_KEY_TAG)
        return 1;
    if (k->mv_size >= LMDB_KEY_HEAD && p[0] == LMDB_V2_KEY_TAG)
        return LMDB_KEY_HEAD;
    return 0;
}

/* Old keys taken at once: copied out of a read transaction, then
   rewritten by one write batch (which grows the map as needed). */
struct old_batch {
    kvs_buf arena; /* per key: its stored length, the stored key, the value's length, the value */
    size_t n;
};

/* Copy the first old keys and their values (a batch's worth) into b;
   b->n == 0 when none is left. Layout 2's keys sort first ('h' < 'k'). */
static int read_old(struct lmdb_db *db, struct old_batch *b)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = cursor_begin(db, &txn, &cur);
    if (rc != 0)
        return rc;
    unsigned char tag = LMDB_V2_KEY_TAG;
    MDB_val k = {1, &tag}, v;
    b->n = 0;
    b->arena.len = 0;
    int mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && old_key_head(&k);
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (b->n == CONVERT_KEYS || (b->n > 0 && b->arena.len + v.mv_size > CONVERT_BYTES))
            break;
        size_t at = b->arena.len, klen = k.mv_size;
        rc = kvs_buf_reserve(&b->arena, at + 2 * sizeof(size_t) + klen + v.mv_size);
        if (rc != 0)
            break;
        char *p = (char *)b->arena.data + at;
        memcpy(p, &klen, sizeof(klen));
        memcpy(p + sizeof(klen), k.mv_data, klen);
        memcpy(p + sizeof(klen) + klen, &v.mv_size, sizeof(size_t));
        memcpy(p + 2 * sizeof(size_t) + klen, v.mv_data, v.mv_size);
        b->arena.len = at + 2 * sizeof(size_t) + klen + v.mv_size;
        b->n++;
    }
    mdb_cursor_close(cur);
    kvs__lmdb_read_end(db, txn);
    if (rc != 0)
        return rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kvs__lmdb_err(mrc);
}

/* Store the keys of b in the current layout and delete their old form, in
   one transaction. */
static int rewrite_old(struct lmdb_db *db, struct old_batch *b)
{
    struct lmdb_write *w = malloc(2 * b->n * sizeof(*w));
    unsigned char *keys = malloc(b->n * (size_t)LMDB_LIB_MAX_KEY);
    int *results = malloc(2 * b->n * sizeof(*results));
    int rc = KVS_ENOMEM;
    if (!w || !keys || !results)
        goto out;
    const char *p = b->arena.data;
    for (size_t i = 0; i < b->n; i++) {
        size_t klen, vlen;
        memcpy(&klen, p, sizeof(klen));
        const char *stored = p + sizeof(klen);
        memcpy(&vlen, stored + klen, sizeof(vlen));
        const char *val = stored + klen + sizeof(vlen);
        p = val + vlen;
        MDB_val old = {klen, (void *)stored};
        size_t head = old_key_head(&old);
        kvs_slice key = kvs_slice_of(stored + head, klen - head);
        w[2 * i] = (struct lmdb_write){.op = LMDB_PUT,
                                       .key = kvs__lmdb_key(keys + i * LMDB_LIB_MAX_KEY, key),
                                       .val = {vlen, (void *)val}};
        w[2 * i + 1] = (struct lmdb_write){.op = LMDB_RAW_DEL, .key = old};
    }
    rc = kvs__lmdb_write_batch(db, w, 2 * b->n, results);
out:
    free(w);
    free(keys);
    free(results);
    return rc;
}

/* Count the keys of earlier layouts and the longest of them. */
static int survey_old(struct lmdb_db *db, size_t *old, size_t *longest)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = cursor_begin(db, &txn, &cur);
    if (rc != 0)
        return rc;
    unsigned char tag = LMDB_V2_KEY_TAG;
    MDB_val k = {1, &tag}, v;
    int mrc;
    *old = *longest = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t head = old_key_head(&k);
        if (!head)
            break;
        (*old)++;
        if (k.mv_size - head > *longest)
            *longest = k.mv_size - head;
    }
    mdb_cursor_close(cur);
    kvs__lmdb_read_end(db, txn);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kvs__lmdb_err(mrc);
}

int kvs__lmdb_layout_open(struct lmdb_db *db, char *why)
{
    /* First make sure every old key fits the current layout, touching
       nothing if one does not. */
    size_t old, longest;
    int rc = survey_old(db, &old, &longest);
    if (rc != 0) {
        kvs__why(why, "lmdb: reading the store: %s", kvs_strerror(rc));
        return rc;
    }
    if (longest > LMDB_MAX_KEY) {
        kvs__why(why,
                 "lmdb: this store holds a key of %zu bytes, longer than the %d this version "
                 "stores; open it with the previous version and shorten or remove such keys",
                 longest, LMDB_MAX_KEY);
        return KVS_EKEYSIZE;
    }
    if (old > 0) {
        /* A batch per transaction: a crash between them leaves both
           layouts, and the next open carries on. */
        struct old_batch b = {0};
        do {
            rc = read_old(db, &b);
            if (rc == 0 && b.n > 0)
                rc = rewrite_old(db, &b);
        } while (rc == 0 && b.n > 0);
        kvs_buf_free(&b.arena);
        if (rc == 0)
            rc = kvs__lmdb_sync_now(db);
        if (rc != 0) {
            kvs__why(why, "lmdb: converting the store's layout: %s", kvs_strerror(rc));
            return rc;
        }
        kvs__log(&db->opts, "lmdb: converted %zu keys to the current layout", old);
    }
    rc = counts_load(db);
    if (rc != 0)
        kvs__why(why, "lmdb: reading the expiry counts: %s", kvs_strerror(rc));
    return rc;
}
