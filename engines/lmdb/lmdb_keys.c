/*
 * The "lmdb" engine's key layout (lmdb_internal.h): the stored form of a
 * key, scanning in hash order, and converting stores of the old layout.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "lmdb_internal.h"

/* Keys, and bytes of values, converted per write transaction when
   opening a store of the old layout. */
#define CONVERT_KEYS 4096
#define CONVERT_BYTES (64u << 20)

static uint64_t key_hash(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

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

MDB_val kvs__lmdb_key(unsigned char *buf, kvs_slice key)
{
    buf[0] = LMDB_KEY_TAG;
    put_be64(buf + 1, key_hash(key.data, key.len));
    if (key.len)
        memcpy(buf + LMDB_KEY_HEAD, key.data, key.len);
    MDB_val k = {key.len + LMDB_KEY_HEAD, buf};
    return k;
}

/* Is k a user key of the current layout, and which hash does it carry? */
static bool user_key(const MDB_val *k, uint64_t *hash)
{
    const unsigned char *p = k->mv_data;
    if (k->mv_size < LMDB_KEY_HEAD || p[0] != LMDB_KEY_TAG)
        return false;
    *hash = get_be64(p + 1);
    return true;
}

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
 * one, so that the next cursor, that hash plus one, skips none. It runs in
 * one read transaction: a snapshot, which writers do not wait for, so each
 * key comes with the value it had in that snapshot.
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
    int mrc;
    unsigned char start[LMDB_KEY_HEAD];
    start[0] = LMDB_KEY_TAG;
    put_be64(start + 1, cursor);
    MDB_val k = {sizeof(start), start}, v;
    size_t seen = 0;
    uint64_t hash = 0, end = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t h;
        if (!user_key(&k, &h))
            break; /* past the user keys */
        if (seen >= count && h != hash) {
            end = hash + 1; /* 0 if hash was the largest: then the pass is over */
            break;
        }
        hash = h;
        seen++;
        kvs_slice key =
            kvs_slice_of((const char *)k.mv_data + LMDB_KEY_HEAD, k.mv_size - LMDB_KEY_HEAD);
        kvs_slice val = kvs_slice_of(v.mv_data, v.mv_size);
        rc = fn(ctx, key, (flags & KVS_SCAN_VALUES) ? &val : NULL);
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

/* Old keys taken at once: copied out of a read transaction, then
   rewritten by one write batch (which grows the map as needed). */
struct old_batch {
    kvs_buf arena; /* per key: its length, the key, the value's length, the value */
    size_t n;
};

/* Copy the first old keys and their values (a batch's worth) into b;
   b->n == 0 when none is left. */
static int read_old(struct lmdb_db *db, struct old_batch *b)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = cursor_begin(db, &txn, &cur);
    if (rc != 0)
        return rc;
    int mrc;
    unsigned char tag = LMDB_OLD_KEY_TAG;
    MDB_val k = {1, &tag}, v;
    b->n = 0;
    b->arena.len = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && ((const unsigned char *)k.mv_data)[0] == LMDB_OLD_KEY_TAG;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (b->n == CONVERT_KEYS || (b->n > 0 && b->arena.len + v.mv_size > CONVERT_BYTES))
            break;
        size_t at = b->arena.len, klen = k.mv_size - 1;
        rc = kvs_buf_reserve(&b->arena, at + 2 * sizeof(size_t) + klen + v.mv_size);
        if (rc != 0)
            break;
        char *p = (char *)b->arena.data + at;
        memcpy(p, &klen, sizeof(klen));
        memcpy(p + sizeof(klen), (const char *)k.mv_data + 1, klen);
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

/* Store the keys of b in the new layout and delete their old form, in one
   transaction. */
static int rewrite_old(struct lmdb_db *db, struct old_batch *b)
{
    struct lmdb_write *w = malloc(2 * b->n * sizeof(*w));
    unsigned char *keys = malloc(b->n * (size_t)(LMDB_LIB_MAX_KEY + LMDB_LIB_MAX_KEY));
    int *results = malloc(2 * b->n * sizeof(*results));
    int rc = KVS_ENOMEM;
    if (!w || !keys || !results)
        goto out;
    const char *p = b->arena.data;
    for (size_t i = 0; i < b->n; i++) {
        size_t klen, vlen;
        memcpy(&klen, p, sizeof(klen));
        const char *key = p + sizeof(klen);
        memcpy(&vlen, key + klen, sizeof(vlen));
        const char *val = key + klen + sizeof(vlen);
        p = val + vlen;
        unsigned char *nk = keys + i * (size_t)(2 * LMDB_LIB_MAX_KEY);
        unsigned char *ok = nk + LMDB_LIB_MAX_KEY;
        ok[0] = LMDB_OLD_KEY_TAG;
        memcpy(ok + 1, key, klen);
        w[2 * i] = (struct lmdb_write){.op = LMDB_PUT,
                                       .key = kvs__lmdb_key(nk, kvs_slice_of(key, klen)),
                                       .val = {vlen, (void *)val}};
        w[2 * i + 1] = (struct lmdb_write){.op = LMDB_DEL, .key = {klen + 1, ok}};
    }
    rc = kvs__lmdb_write_batch(db, w, 2 * b->n, results);
out:
    free(w);
    free(keys);
    free(results);
    return rc;
}

int kvs__lmdb_convert_old_keys(struct lmdb_db *db, char *why)
{
    /* First make sure every old key fits the new layout, touching nothing
       if one does not. */
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0)
        goto out_err;
    MDB_cursor *cur;
    mrc = mdb_cursor_open(txn, db->dbi, &cur);
    if (mrc != 0) {
        mdb_txn_abort(txn);
        goto out_err;
    }
    unsigned char tag = LMDB_OLD_KEY_TAG;
    MDB_val k = {1, &tag}, v;
    size_t old = 0, longest = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && ((const unsigned char *)k.mv_data)[0] == LMDB_OLD_KEY_TAG;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        old++;
        if (k.mv_size - 1 > longest)
            longest = k.mv_size - 1;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        goto out_err;
    if (old == 0)
        return 0;
    if (longest > LMDB_MAX_KEY) {
        kvs__why(why,
                 "lmdb: this store holds a key of %zu bytes, longer than the %d this version "
                 "stores; open it with the previous version and shorten or remove such keys",
                 longest, LMDB_MAX_KEY);
        return KVS_EKEYSIZE;
    }
    /* A batch per transaction: a crash between them leaves both layouts,
       and the next open carries on. */
    struct old_batch b = {0};
    int rc;
    do {
        rc = read_old(db, &b);
        if (rc == 0 && b.n > 0)
            rc = rewrite_old(db, &b);
    } while (rc == 0 && b.n > 0);
    kvs_buf_free(&b.arena);
    if (rc != 0) {
        kvs__why(why, "lmdb: converting the key layout: %s", kvs_strerror(rc));
        return rc;
    }
    rc = kvs__lmdb_sync_now(db);
    if (rc != 0) {
        kvs__why(why, "lmdb: syncing the converted store: %s", kvs_strerror(rc));
        return rc;
    }
    kvs__log(&db->opts, "lmdb: converted %zu keys to the hash-ordered layout", old);
    return 0;

out_err:
    kvs__why(why, "lmdb: converting the key layout: %s", mdb_strerror(mrc));
    return kvs__lmdb_err(mrc);
}
