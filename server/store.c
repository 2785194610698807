/*
 * The one place where client writes reach the engine; see store.h.
 * Runs on the worker threads (any of them, at once).
 */
#include "store.h"

#include <stdint.h>
#include <xxhash.h>

int store_init(struct store *st, kvs_db *db)
{
    st->db = db;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&st->clear_lock, &attr);
    if (rc != 0)
        goto out_attr;
    for (size_t i = 0; i < STORE_STRIPES; i++) {
        rc = pthread_rwlock_init(&st->stripes[i], &attr);
        if (rc != 0) {
            while (i-- > 0)
                pthread_rwlock_destroy(&st->stripes[i]);
            pthread_rwlock_destroy(&st->clear_lock);
            break;
        }
    }
out_attr:
    pthread_rwlockattr_destroy(&attr);
    return rc != 0 ? KVS_ENOMEM : 0;
}

void store_destroy(struct store *st)
{
    for (size_t i = 0; i < STORE_STRIPES; i++)
        pthread_rwlock_destroy(&st->stripes[i]);
    pthread_rwlock_destroy(&st->clear_lock);
}

static size_t stripe_index(kvs_slice key)
{
    return XXH3_64bits(key.data, key.len) & (STORE_STRIPES - 1);
}

/* A SET with its optional check and read of the old value; the key's
   stripe is held. */
static int set_locked(struct store *st, kvs_slice key, kvs_slice value, enum store_cond cond,
                      kvs_buf *old, bool *had_old)
{
    if (old) {
        int rc = kvs_db_get(st->db, key, old);
        if (rc != 0 && rc != KVS_ENOTFOUND)
            return rc;
        *had_old = rc == 0;
        if (!*had_old)
            old->len = 0;
        if ((cond == STORE_IF_ABSENT && *had_old) || (cond == STORE_IF_PRESENT && !*had_old))
            return STORE_SKIPPED;
    }
    return kvs_db_set(st->db, key, value);
}

int store_write(struct store *st, enum store_op op, kvs_slice key, kvs_slice value,
                enum store_cond cond, kvs_buf *old, bool *had_old)
{
    int rc;
    if (op == STORE_CLEAR) {
        pthread_rwlock_wrlock(&st->clear_lock);
        rc = kvs_db_clear(st->db);
        pthread_rwlock_unlock(&st->clear_lock);
        return rc;
    }
    if (cond != STORE_ALWAYS && (op != STORE_SET || !old))
        return KVS_EINVAL;
    pthread_rwlock_t *stripe = &st->stripes[stripe_index(key)];
    pthread_rwlock_rdlock(&st->clear_lock);
    if (old)
        pthread_rwlock_wrlock(stripe);
    else
        pthread_rwlock_rdlock(stripe);
    if (op == STORE_SET) {
        rc = set_locked(st, key, value, cond, old, had_old);
    } else {
        rc = kvs_db_remove(st->db, key);
        if (rc == KVS_ENOTFOUND)
            rc = STORE_SKIPPED;
    }
    pthread_rwlock_unlock(stripe);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}

_Static_assert(STORE_STRIPES <= 64, "a batch's stripes are one 64-bit mask");

int store_write_batch(struct store *st, kvs_op *ops, size_t n)
{
    if (n == 0)
        return 0;
    /* The stripes the batch touches, taken in ascending order. */
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        used |= UINT64_C(1) << stripe_index(ops[i].key);
    pthread_rwlock_rdlock(&st->clear_lock);
    for (uint64_t m = used; m; m &= m - 1)
        pthread_rwlock_rdlock(&st->stripes[__builtin_ctzll(m)]);
    int rc = kvs_db_write(st->db, ops, n);
    for (uint64_t m = used; m; m &= m - 1)
        pthread_rwlock_unlock(&st->stripes[__builtin_ctzll(m)]);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}
