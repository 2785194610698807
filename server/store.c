/*
 * The one place where client writes reach the engine; see store.h.
 * Runs on the worker threads (any of them, at once).
 */
#include "store.h"

#include <xxhash.h>

int store_init(struct store *st, kvs_db *db)
{
    st->db = db;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&st->clear_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        return KVS_ENOMEM;
    for (size_t i = 0; i < STORE_STRIPES; i++) {
        if (pthread_mutex_init(&st->stripes[i], NULL) != 0) {
            while (i-- > 0)
                pthread_mutex_destroy(&st->stripes[i]);
            pthread_rwlock_destroy(&st->clear_lock);
            return KVS_ENOMEM;
        }
    }
    return 0;
}

void store_destroy(struct store *st)
{
    for (size_t i = 0; i < STORE_STRIPES; i++)
        pthread_mutex_destroy(&st->stripes[i]);
    pthread_rwlock_destroy(&st->clear_lock);
}

static pthread_mutex_t *stripe_of(struct store *st, kvs_slice key)
{
    return &st->stripes[XXH3_64bits(key.data, key.len) & (STORE_STRIPES - 1)];
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
    pthread_mutex_t *stripe = stripe_of(st, key);
    pthread_rwlock_rdlock(&st->clear_lock);
    pthread_mutex_lock(stripe);
    if (op == STORE_SET) {
        rc = set_locked(st, key, value, cond, old, had_old);
    } else {
        rc = kvs_db_remove(st->db, key);
        if (rc == KVS_ENOTFOUND)
            rc = STORE_SKIPPED;
    }
    pthread_mutex_unlock(stripe);
    pthread_rwlock_unlock(&st->clear_lock);
    return rc;
}
